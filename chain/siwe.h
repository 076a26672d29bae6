/*
 * Sign-In with Ethereum (EIP-4361) messages: a strict parser, the relying party's checks, and a
 * composer for the messages the API hands out.
 *
 * The parser follows the ABNF of the current EIP text (with the optional "scheme://" before the
 * domain, added in 2023) line by line: every character of the message is checked by some rule,
 * and anything the grammar does not produce is refused, since a lenient reading of a signed
 * text is how two parties come to disagree about what was signed. In particular:
 *   - the address must be in its EIP-55 checksummed form (the ABNF requires it for EOAs, which
 *     is all the API signs in);
 *   - without a statement, the address is followed by two empty lines; with one, by an empty
 *     line, the statement and another empty line;
 *   - the URI, each resource and the domain (an RFC 3986 authority) are checked against RFC
 *     3986; the statement may hold only RFC 3986 reserved and unreserved characters and spaces;
 *   - the nonce is at least 8 letters or digits, Version is "1", Chain ID is decimal;
 *   - times are RFC 3339 (chain/rfc3339.h); the message ends right after its last field.
 * Field values are spans pointing into the caller's message, which must outlive the result.
 */
#ifndef CHAIN_SIWE_H
#define CHAIN_SIWE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/address.h"
#include "chain/common.h"

/** Longest message accepted (and composed); real ones are a few hundred bytes. */
#define CHAIN_SIWE_MAX_LEN 8192
/** Issued At may be this far in the future (clock skew between wallet and server). */
#define CHAIN_SIWE_SKEW_S 60

/** A piece of the parsed message: `len` bytes at `ptr`, not NUL-terminated. */
typedef struct st_chain_span_t {
    const char *ptr;
    size_t len;
} chain_span_t;

/** A parsed message. Optional fields have a flag; absent ones have empty spans. */
typedef struct st_chain_siwe_t {
    bool has_scheme;
    chain_span_t scheme; /* "https" of "https://example.com wants you ..." */
    chain_span_t domain; /* a non-empty RFC 3986 authority: host, optional userinfo and port */
    chain_addr_t address;
    bool has_statement;
    chain_span_t statement;
    chain_span_t uri;
    uint64_t chain_id;
    chain_span_t nonce;
    /* unix seconds, rounded so that a check on whole seconds is never too lenient:
     * issued_at and expiration_time down, not_before up */
    int64_t issued_at;
    bool has_expiration_time;
    int64_t expiration_time;
    bool has_not_before;
    int64_t not_before;
    bool has_request_id;
    chain_span_t request_id; /* may be empty even when present */
    bool has_resources;
    size_t resource_count;
    chain_span_t resources; /* the lines after "Resources:", see chain_siwe_next_resource */
    /* on a parse error: the field that failed ("address", "nonce", ...), for the API's 400 */
    const char *err_field;
} chain_siwe_t;

/** What chain_siwe_compose writes. Strings are NUL-terminated; optional ones may be NULL. */
typedef struct st_chain_siwe_params_t {
    const char *domain;
    const chain_addr_t *address;
    const char *statement; /* NULL or "" for none */
    const char *uri;
    uint64_t chain_id;
    const char *nonce;
    int64_t issued_at; /* unix seconds */
    bool has_expiration_time;
    int64_t expiration_time;
} chain_siwe_params_t;

/**
 * Parses the `len` bytes of `msg` into `m`. Returns CHAIN_OK; CHAIN_ERR_LENGTH above
 * CHAIN_SIWE_MAX_LEN; CHAIN_ERR_CHECKSUM for an address not in EIP-55 form; CHAIN_ERR_OVERFLOW
 * for a chain id above 2^64-1; CHAIN_ERR_SYNTAX for anything else the ABNF does not allow. On
 * error, `m->err_field` names the field (or "message" for the layout). O(len).
 */
int chain_siwe_parse(chain_siwe_t *m, const char *msg, size_t len);

/**
 * The relying party's checks on a parsed message, at unix time `now_s`: the domain is
 * `domain` (ASCII case-insensitive; the scheme, when given, is the wallet's business: it checks
 * it against the page's origin) and the chain id is `chain_id` (else CHAIN_ERR_MISMATCH);
 * Issued At is at most CHAIN_SIWE_SKEW_S ahead of `now_s` and Not Before, when given, is not
 * after `now_s` (else CHAIN_ERR_NOT_YET); Expiration Time, when given, is after `now_s` (else
 * CHAIN_ERR_EXPIRED). The nonce and the signature are the caller's to check.
 */
int chain_siwe_validate(const chain_siwe_t *m, const char *domain, size_t domain_len,
                        uint64_t chain_id, int64_t now_s);

/**
 * Steps through the resources: start with `*offset` 0; each call sets `*res` to the next URI
 * and returns true, or returns false after the last one.
 */
bool chain_siwe_next_resource(const chain_siwe_t *m, size_t *offset, chain_span_t *res);

/**
 * Writes a message for `p` into `out` (`cap` bytes, CHAIN_SIWE_MAX_LEN + 1 is always enough),
 * NUL-terminated, its length in `*len`: no scheme, the statement when given, Issued At and
 * Expiration Time as "YYYY-MM-DDTHH:MM:SSZ". The result is parsed back before returning, so
 * CHAIN_OK means chain_siwe_parse accepts it. Returns CHAIN_ERR_SHORT_BUFFER, or the parse
 * error that inputs outside the grammar cause (CHAIN_ERR_SYNTAX for a bad domain, URI, nonce
 * or statement), or CHAIN_ERR_OVERFLOW for a time outside the years 0000 to 9999.
 */
int chain_siwe_compose(char *out, size_t cap, size_t *len, const chain_siwe_params_t *p);

#endif
