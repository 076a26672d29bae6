/*
 * 256-bit unsigned integers: EVM words, token amounts in base units, wei.
 *
 * Four 64-bit limbs, least significant first, so that carries run in loop order. Every
 * operation that can wrap reports it, because an amount that silently wraps is a wrong payment.
 * Decimal strings are the API's representation of amounts ("100.5" of a 6-decimal token is
 * 100500000 base units); the parsers are strict so that one string has one meaning.
 */
#ifndef CHAIN_U256_H
#define CHAIN_U256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/common.h"

/** A 256-bit unsigned integer; limb[0] holds the least significant 64 bits. */
typedef struct st_chain_u256_t {
    uint64_t limb[4];
} chain_u256_t;

/** Buffer size for chain_u256_to_dec: 78 digits (2^256-1 has 78) and the NUL. */
#define CHAIN_U256_DEC_SIZE 79
/** Largest `decimals` the unit functions take (ERC-20 decimals() is a uint8). */
#define CHAIN_U256_DECIMALS_MAX 255
/** Buffer size for chain_u256_format_units: "0." + 255 digits + NUL, the longest output. */
#define CHAIN_U256_UNITS_SIZE 258
/** Decimals of gwei relative to wei. */
#define CHAIN_U256_GWEI_DECIMALS 9

/** Returns the value `v`. */
static inline chain_u256_t chain_u256_from_u64(uint64_t v);
/** True when `a` is zero. */
static inline bool chain_u256_is_zero(const chain_u256_t *a);
/** Returns -1, 0 or 1 as `a` is below, equal to or above `b`. */
int chain_u256_cmp(const chain_u256_t *a, const chain_u256_t *b);
/**
 * Stores a + b mod 2^256 in `r` (which may alias `a` or `b`); returns true when it wrapped.
 */
bool chain_u256_add(chain_u256_t *r, const chain_u256_t *a, const chain_u256_t *b);
/**
 * Stores a - b mod 2^256 in `r` (which may alias `a` or `b`); returns true when b > a.
 */
bool chain_u256_sub(chain_u256_t *r, const chain_u256_t *a, const chain_u256_t *b);
/** Stores a * m mod 2^256 in `r` (may alias `a`); returns true when it wrapped. */
bool chain_u256_mul_small(chain_u256_t *r, const chain_u256_t *a, uint64_t m);
/**
 * Stores a / d in `q` (may alias `a`, or be NULL) and returns a % d. `d` must not be 0.
 */
uint64_t chain_u256_divmod_small(chain_u256_t *q, const chain_u256_t *a, uint64_t d);

/** Reads a 32-byte big-endian word (the EVM and ABI layout). */
void chain_u256_from_be(chain_u256_t *r, const uint8_t be[32]);
/** Writes `a` as a 32-byte big-endian word. */
void chain_u256_to_be(const chain_u256_t *a, uint8_t be[32]);
/**
 * Reads `len` big-endian bytes (0 to 32; 0 bytes is zero). Leading zero bytes are accepted.
 * Returns CHAIN_OK, or CHAIN_ERR_OVERFLOW when `len` > 32 and `r` is left untouched.
 */
int chain_u256_from_be_var(chain_u256_t *r, const uint8_t *be, size_t len);
/** The number of bytes of the minimal big-endian form of `a`: 0 for zero, at most 32. */
unsigned chain_u256_byte_len(const chain_u256_t *a);

/**
 * Parses a decimal integer: one or more ASCII digits and nothing else (no sign, no space, no
 * exponent; leading zeros are accepted). Returns CHAIN_OK, CHAIN_ERR_LENGTH for an empty
 * string, CHAIN_ERR_SYNTAX, or CHAIN_ERR_OVERFLOW at 2^256 and above. `r` is set only on success.
 */
int chain_u256_from_dec(chain_u256_t *r, const char *s, size_t len);
/** Writes `a` in decimal without leading zeros ("0" for zero); returns the length. */
size_t chain_u256_to_dec(const chain_u256_t *a, char dst[CHAIN_U256_DEC_SIZE]);

/**
 * Parses an amount such as "100.5" of a token with `decimals` into base units (100500000 with 6
 * decimals). Grammar: DIGITS [ "." DIGITS ], with at most `decimals` digits after the point.
 * Rejected: empty (CHAIN_ERR_LENGTH), any sign, space, exponent, ".5" or "5."
 * (CHAIN_ERR_SYNTAX), too many fractional digits even if zeros (CHAIN_ERR_PRECISION), a value of
 * 2^256 base units or more (CHAIN_ERR_OVERFLOW). `r` is set only on success.
 * O(len + decimals).
 */
int chain_u256_parse_units(chain_u256_t *r, const char *s, size_t len, unsigned decimals);
/**
 * Writes base units `a` of a token with `decimals` as the shortest exact decimal: no trailing
 * fractional zeros, no point for whole values ("100.5", "0.000001", "0"). Returns the length.
 */
size_t chain_u256_format_units(const chain_u256_t *a, unsigned decimals,
                               char dst[CHAIN_U256_UNITS_SIZE]);
/** chain_u256_parse_units for gwei: "1.5" gives 1500000000 wei. */
static inline int chain_u256_parse_gwei(chain_u256_t *wei, const char *s, size_t len);
/** chain_u256_format_units for gwei: 1500000000 wei gives "1.5". */
static inline size_t chain_u256_format_gwei(const chain_u256_t *wei,
                                            char dst[CHAIN_U256_UNITS_SIZE]);

/* inline definitions */

static inline chain_u256_t chain_u256_from_u64(uint64_t v)
{
    chain_u256_t r = {{v, 0, 0, 0}};
    return r;
}

static inline bool chain_u256_is_zero(const chain_u256_t *a)
{
    return (a->limb[0] | a->limb[1] | a->limb[2] | a->limb[3]) == 0;
}

static inline int chain_u256_parse_gwei(chain_u256_t *wei, const char *s, size_t len)
{
    return chain_u256_parse_units(wei, s, len, CHAIN_U256_GWEI_DECIMALS);
}

static inline size_t chain_u256_format_gwei(const chain_u256_t *wei,
                                            char dst[CHAIN_U256_UNITS_SIZE])
{
    return chain_u256_format_units(wei, CHAIN_U256_GWEI_DECIMALS, dst);
}

#endif
