#include "chain/address.h"
#include "chain/hex.h"
#include "chain/keccak.h"

#define CHAIN__ADDR_HEX_LEN (2 * CHAIN_ADDR_LEN)

/*
 * Writes the 40 EIP-55 digits of `a` to `out` (no prefix, no NUL): lowercase hex, then each
 * letter uppercased where the matching nibble of keccak256(lowercase hex) is 8 or more.
 */
static void chain__addr_checksum_digits(const chain_addr_t *a, char out[CHAIN__ADDR_HEX_LEN])
{
    char lower[CHAIN__ADDR_HEX_LEN + 1];
    int ret = chain_hex_encode(lower, sizeof(lower), a->bytes, CHAIN_ADDR_LEN, 0);
    CHAIN_ASSERT(ret == CHAIN_OK);
    uint8_t hash[CHAIN_KECCAK256_LEN];
    chain_keccak256(lower, CHAIN__ADDR_HEX_LEN, hash);
    for (size_t i = 0; i != CHAIN__ADDR_HEX_LEN; ++i) {
        unsigned nibble = (i % 2 == 0) ? hash[i / 2] >> 4 : hash[i / 2] & 0xf;
        char c = lower[i];
        out[i] = (c >= 'a' && c <= 'f' && nibble >= 8) ? (char)(c - 'a' + 'A') : c;
    }
}

void chain_addr_format(const chain_addr_t *a, char out[CHAIN_ADDR_STR_SIZE])
{
    CHAIN_ASSERT(a != NULL && out != NULL);
    out[0] = '0';
    out[1] = 'x';
    chain__addr_checksum_digits(a, out + 2);
    out[CHAIN_ADDR_STR_SIZE - 1] = '\0';
}

int chain_addr_parse(chain_addr_t *a, const char *s, size_t len)
{
    CHAIN_ASSERT(a != NULL);
    CHAIN_ASSERT(s != NULL || len == 0);
    if (len != 2 + CHAIN__ADDR_HEX_LEN)
        return CHAIN_ERR_LENGTH;
    chain_addr_t parsed;
    int ret = chain_hex_decode_exact(parsed.bytes, CHAIN_ADDR_LEN, s, len, CHAIN_HEX_0X_REQUIRED);
    if (ret != CHAIN_OK)
        return ret;

    const char *digits = s + 2;
    bool has_lower = false, has_upper = false;
    for (size_t i = 0; i != CHAIN__ADDR_HEX_LEN; ++i) {
        has_lower |= digits[i] >= 'a' && digits[i] <= 'f';
        has_upper |= digits[i] >= 'A' && digits[i] <= 'F';
    }
    if (has_lower && has_upper) {
        char expected[CHAIN__ADDR_HEX_LEN];
        chain__addr_checksum_digits(&parsed, expected);
        if (memcmp(expected, digits, CHAIN__ADDR_HEX_LEN) != 0)
            return CHAIN_ERR_CHECKSUM;
    }
    *a = parsed;
    return CHAIN_OK;
}
