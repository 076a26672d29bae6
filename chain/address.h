/*
 * 20-byte account addresses and their EIP-55 text form ("0x" + 40 hex digits whose letter case
 * encodes a checksum of the address).
 *
 * Input in one case (all lower or all upper) carries no checksum and is accepted as is; input
 * in mixed case claims a checksum, and a wrong one is refused with its own error code, because
 * it most likely means a mistyped address that would send funds nowhere.
 */
#ifndef CHAIN_ADDRESS_H
#define CHAIN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "chain/common.h"

/** Length of an address in bytes. */
#define CHAIN_ADDR_LEN 20
/** Buffer size for chain_addr_format: "0x", 40 digits and the NUL. */
#define CHAIN_ADDR_STR_SIZE 43

/** An account or contract address. */
typedef struct st_chain_addr_t {
    uint8_t bytes[CHAIN_ADDR_LEN];
} chain_addr_t;

/**
 * Parses "0x" followed by exactly 40 hex digits (lowercase x). Returns CHAIN_OK;
 * CHAIN_ERR_LENGTH for another length; CHAIN_ERR_SYNTAX for a missing prefix or a non-hex
 * digit; CHAIN_ERR_CHECKSUM for mixed case with a wrong EIP-55 checksum. `a` is set only on
 * success.
 */
int chain_addr_parse(chain_addr_t *a, const char *s, size_t len);
/** Writes `a` in EIP-55 checksummed form, NUL-terminated (42 characters). */
void chain_addr_format(const chain_addr_t *a, char out[CHAIN_ADDR_STR_SIZE]);
/** True when `a` and `b` are the same address. */
static inline bool chain_addr_eq(const chain_addr_t *a, const chain_addr_t *b);
/** True for the zero address, which no one holds a key for. */
static inline bool chain_addr_is_zero(const chain_addr_t *a);

/* inline definitions */

static inline bool chain_addr_eq(const chain_addr_t *a, const chain_addr_t *b)
{
    return memcmp(a->bytes, b->bytes, CHAIN_ADDR_LEN) == 0;
}

static inline bool chain_addr_is_zero(const chain_addr_t *a)
{
    static const chain_addr_t zero;
    return chain_addr_eq(a, &zero);
}

#endif
