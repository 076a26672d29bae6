/*
 * RLP (Recursive Length Prefix), the serialisation of Ethereum transactions, from the Yellow
 * Paper, appendix B.
 *
 * The writer fills a caller's buffer. A list's length prefix depends on the size of its
 * contents, which is known only when the list ends, so the writer reserves one header byte at
 * list_begin (enough for payloads under 56 bytes, the common case) and at list_end, when the
 * payload turned out to be 56 bytes or more, moves it up by the 1 to 8 extra header bytes. Cost:
 * O(1) per short list, O(payload) per long one, so O(total * depth) in the worst case; depth is
 * small (a transaction with an access list nests 3 deep). Passing a NULL buffer measures the
 * encoding without writing it, for callers that size a buffer first.
 *
 * The reader accepts only canonical RLP, as Ethereum clients do: a second spelling of the same
 * value is an error, not an alternative, so that a signature or hash over the bytes is
 * unambiguous. It never reads past the input and never recurses; nesting is bounded by
 * CHAIN_RLP_MAX_DEPTH.
 */
#ifndef CHAIN_RLP_H
#define CHAIN_RLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/common.h"
#include "chain/u256.h"

/** The most lists that may be open at once, in the writer and in the reader. */
#define CHAIN_RLP_MAX_DEPTH 16
/** Returned by chain_rlp_iter_next when a list has no more items (not an error). */
#define CHAIN_RLP_END 1

/** An RLP writer over a caller's buffer. Errors are sticky: check once, at finish. */
typedef struct st_chain_rlp_writer_t {
    uint8_t *buf; /* NULL when only measuring */
    size_t cap;
    size_t len;
    size_t open[CHAIN_RLP_MAX_DEPTH]; /* payload offset of each open list */
    unsigned depth;
    int err; /* the first error, or CHAIN_OK */
} chain_rlp_writer_t;

/** One decoded item. For a single byte below 0x80, `payload` is that byte itself. */
typedef struct st_chain_rlp_item_t {
    const uint8_t *payload; /* the string's bytes, or the encoded items of the list */
    size_t payload_len;
    size_t encoded_len; /* header and payload: how far the item reaches in its input */
    bool is_list;
    unsigned depth; /* lists enclosing this item: 0 for the top item */
} chain_rlp_item_t;

/** Walks the items of a list, one at a time. */
typedef struct st_chain_rlp_iter_t {
    const uint8_t *pos;
    size_t left;
    unsigned depth; /* of the items returned */
} chain_rlp_iter_t;

/** Starts writing to `buf` of `cap` bytes; a NULL `buf` only measures (cap is ignored). */
void chain_rlp_writer_init(chain_rlp_writer_t *w, uint8_t *buf, size_t cap);
/** Appends a byte string; a single byte below 0x80 is written as itself. */
void chain_rlp_put_bytes(chain_rlp_writer_t *w, const void *data, size_t len);
/** Appends an integer as its minimal big-endian string (0 is the empty string, 0x80). */
void chain_rlp_put_u64(chain_rlp_writer_t *w, uint64_t v);
/** Appends a 256-bit integer as its minimal big-endian string. */
void chain_rlp_put_u256(chain_rlp_writer_t *w, const chain_u256_t *v);
/** Appends an item that is already RLP-encoded, verbatim and unchecked. */
void chain_rlp_put_raw(chain_rlp_writer_t *w, const void *encoded, size_t len);
/** Opens a list; CHAIN_ERR_DEPTH beyond CHAIN_RLP_MAX_DEPTH open lists. */
void chain_rlp_list_begin(chain_rlp_writer_t *w);
/** Closes the innermost open list and writes its length prefix; see the cost above. */
void chain_rlp_list_end(chain_rlp_writer_t *w);
/**
 * Ends writing: returns the first error (CHAIN_ERR_SHORT_BUFFER, CHAIN_ERR_DEPTH,
 * CHAIN_ERR_STATE for unbalanced lists), or CHAIN_OK with the encoded length in `*len`.
 */
int chain_rlp_writer_finish(chain_rlp_writer_t *w, size_t *len);

/**
 * Decodes the header of the one item at the start of `src`, checking that it is canonical and
 * that its payload lies within the `len` bytes; the payload itself is not examined, and bytes
 * after the item are allowed. `item->depth` is set to 0. Returns CHAIN_OK,
 * CHAIN_ERR_TRUNCATED or CHAIN_ERR_NONCANONICAL.
 */
int chain_rlp_decode_header(const uint8_t *src, size_t len, chain_rlp_item_t *item);
/**
 * Decodes `src` as exactly one item and validates everything nested in it: every header
 * canonical and within its list, depth at most CHAIN_RLP_MAX_DEPTH, no bytes after the item
 * (CHAIN_ERR_TRAILING). On CHAIN_OK `*top` is the item. O(len), no recursion.
 */
int chain_rlp_decode(const uint8_t *src, size_t len, chain_rlp_item_t *top);

/** Starts iterating the items of `list`; CHAIN_ERR_TYPE when it is a string. */
int chain_rlp_iter_init(chain_rlp_iter_t *it, const chain_rlp_item_t *list);
/**
 * Decodes the next item into `item`: CHAIN_OK, CHAIN_RLP_END when none is left, or the error of
 * chain_rlp_decode_header, or CHAIN_ERR_DEPTH for a list nested too deep.
 */
int chain_rlp_iter_next(chain_rlp_iter_t *it, chain_rlp_item_t *item);

/** The payload of a string item; CHAIN_ERR_TYPE for a list. */
int chain_rlp_item_bytes(const chain_rlp_item_t *item, const uint8_t **data, size_t *len);
/**
 * Copies a string item of exactly `len` bytes (an address, a hash) to `dst`: CHAIN_ERR_TYPE for
 * a list, CHAIN_ERR_LENGTH for any other size.
 */
int chain_rlp_item_fixed(const chain_rlp_item_t *item, uint8_t *dst, size_t len);
/**
 * Reads a string item as an integer: CHAIN_ERR_TYPE for a list, CHAIN_ERR_NONCANONICAL for a
 * leading zero byte (0 must be the empty string), CHAIN_ERR_OVERFLOW above 8 bytes.
 */
int chain_rlp_item_u64(const chain_rlp_item_t *item, uint64_t *v);
/** Like chain_rlp_item_u64, for up to 32 bytes. */
int chain_rlp_item_u256(const chain_rlp_item_t *item, chain_u256_t *v);

#endif
