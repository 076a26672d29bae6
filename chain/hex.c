#include <string.h>
#include "chain/hex.h"

static const char chain__hex_lower[] = "0123456789abcdef";

int chain_hex_encode(char *dst, size_t dst_size, const void *src, size_t len, int flags)
{
    CHAIN_ASSERT(dst != NULL);
    CHAIN_ASSERT(src != NULL || len == 0);
    if (dst_size < chain_hex_encoded_size(len, flags))
        return CHAIN_ERR_SHORT_BUFFER;

    const uint8_t *p = src;
    char *q = dst;
    if ((flags & CHAIN_HEX_0X) != 0) {
        *q++ = '0';
        *q++ = 'x';
    }
    for (size_t i = 0; i != len; ++i) {
        *q++ = chain__hex_lower[p[i] >> 4];
        *q++ = chain__hex_lower[p[i] & 0xf];
    }
    *q = '\0';
    return CHAIN_OK;
}

/* Strips the "0x" prefix as `flags` allow or demand; returns CHAIN_OK or CHAIN_ERR_SYNTAX. */
static int chain__hex_strip_prefix(const char **src, size_t *src_len, int flags)
{
    int has_prefix = *src_len >= 2 && (*src)[0] == '0' && (*src)[1] == 'x';
    if (has_prefix && (flags & (CHAIN_HEX_0X_OPTIONAL | CHAIN_HEX_0X_REQUIRED)) != 0) {
        *src += 2;
        *src_len -= 2;
        return CHAIN_OK;
    }
    /* without permission, "0x" falls through and fails below on the 'x' */
    return (flags & CHAIN_HEX_0X_REQUIRED) != 0 ? CHAIN_ERR_SYNTAX : CHAIN_OK;
}

int chain_hex_decode(uint8_t *dst, size_t dst_size, size_t *out_len, const char *src,
                     size_t src_len, int flags)
{
    CHAIN_ASSERT(out_len != NULL);
    CHAIN_ASSERT(src != NULL || src_len == 0);
    *out_len = 0;

    int ret = chain__hex_strip_prefix(&src, &src_len, flags);
    if (ret != CHAIN_OK)
        return ret;
    /* check every character before the length, so that "0xg" reports the bad digit */
    for (size_t i = 0; i != src_len; ++i) {
        if (chain_hex_digit(src[i]) < 0)
            return CHAIN_ERR_SYNTAX;
    }
    if (src_len % 2 != 0)
        return CHAIN_ERR_LENGTH;
    size_t n = src_len / 2;
    if (n > dst_size)
        return CHAIN_ERR_SHORT_BUFFER;
    CHAIN_ASSERT(dst != NULL || n == 0);
    for (size_t i = 0; i != n; ++i)
        dst[i] = (uint8_t)(chain_hex_digit(src[2 * i]) << 4 | chain_hex_digit(src[2 * i + 1]));
    *out_len = n;
    return CHAIN_OK;
}

int chain_hex_decode_exact(uint8_t *dst, size_t len, const char *src, size_t src_len, int flags)
{
    size_t got;
    int ret = chain_hex_decode(dst, len, &got, src, src_len, flags);
    if (ret == CHAIN_ERR_SHORT_BUFFER)
        return CHAIN_ERR_LENGTH;
    if (ret != CHAIN_OK)
        return ret;
    return got == len ? CHAIN_OK : CHAIN_ERR_LENGTH;
}
