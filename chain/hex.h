/*
 * Hexadecimal encoding of byte strings, as used by JSON-RPC ("0x..." data and quantities) and
 * by the API (salts, hashes, signatures).
 *
 * The decoder is strict on purpose: an odd digit count or a stray character is an error, not
 * something to guess at, because a silently shortened hash or signature would be signed or
 * compared as if it were right.
 */
#ifndef CHAIN_HEX_H
#define CHAIN_HEX_H

#include <stddef.h>
#include <stdint.h>
#include "chain/common.h"

/** Encode: write a leading "0x". */
#define CHAIN_HEX_0X 0x1
/** Decode: accept a leading "0x" (lowercase x only), or none. */
#define CHAIN_HEX_0X_OPTIONAL 0x2
/** Decode: require a leading "0x"; without it the input is CHAIN_ERR_SYNTAX. */
#define CHAIN_HEX_0X_REQUIRED 0x4

/**
 * The buffer size chain_hex_encode needs for `len` bytes with `flags`, the final NUL included.
 */
static inline size_t chain_hex_encoded_size(size_t len, int flags);

/**
 * Writes `len` bytes of `src` as lowercase hex into `dst` (NUL-terminated), with "0x" first when
 * `flags` has CHAIN_HEX_0X. Returns CHAIN_OK, or CHAIN_ERR_SHORT_BUFFER (and writes nothing)
 * when `dst_size` is below chain_hex_encoded_size(len, flags). O(len).
 */
int chain_hex_encode(char *dst, size_t dst_size, const void *src, size_t len, int flags);

/**
 * Decodes the `src_len` characters of `src` into `dst`, setting `*out_len` to the byte count.
 * Digits may be upper or lower case. A "0x" prefix is allowed only with CHAIN_HEX_0X_OPTIONAL
 * and demanded with CHAIN_HEX_0X_REQUIRED; "0x" alone is zero bytes.
 * Returns CHAIN_OK; CHAIN_ERR_SYNTAX for a non-hex character or a missing required prefix;
 * CHAIN_ERR_LENGTH for an odd number of digits; CHAIN_ERR_SHORT_BUFFER when the result exceeds
 * `dst_size`. On error `dst` may be partly written and `*out_len` is 0.
 */
int chain_hex_decode(uint8_t *dst, size_t dst_size, size_t *out_len, const char *src,
                     size_t src_len, int flags);

/**
 * Like chain_hex_decode, but the input must hold exactly `len` bytes (a hash, an address, a
 * salt); any other count is CHAIN_ERR_LENGTH.
 */
int chain_hex_decode_exact(uint8_t *dst, size_t len, const char *src, size_t src_len, int flags);

/** The value of one hex digit (either case), or -1 when `c` is not one. */
static inline int chain_hex_digit(char c);

/* inline definitions */

static inline size_t chain_hex_encoded_size(size_t len, int flags)
{
    CHAIN_ASSERT(len <= (SIZE_MAX - 3) / 2);
    return 2 * len + ((flags & CHAIN_HEX_0X) != 0 ? 2 : 0) + 1;
}

static inline int chain_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
