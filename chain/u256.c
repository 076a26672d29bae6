#include <string.h>
#include "chain/u256.h"

typedef unsigned __int128 chain__u128_t;

/* 10^19, the largest power of ten in a uint64: to_dec peels 19 digits per division */
#define CHAIN__POW10_19 10000000000000000000ull

int chain_u256_cmp(const chain_u256_t *a, const chain_u256_t *b)
{
    for (int i = 3; i >= 0; --i) {
        if (a->limb[i] != b->limb[i])
            return a->limb[i] < b->limb[i] ? -1 : 1;
    }
    return 0;
}

bool chain_u256_add(chain_u256_t *r, const chain_u256_t *a, const chain_u256_t *b)
{
    uint64_t carry = 0;
    for (int i = 0; i != 4; ++i) {
        chain__u128_t s = (chain__u128_t)a->limb[i] + b->limb[i] + carry;
        r->limb[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    return carry != 0;
}

bool chain_u256_sub(chain_u256_t *r, const chain_u256_t *a, const chain_u256_t *b)
{
    uint64_t borrow = 0;
    for (int i = 0; i != 4; ++i) {
        uint64_t ai = a->limb[i], bi = b->limb[i];
        uint64_t d = ai - bi - borrow;
        /* borrow out when bi + borrow exceeds ai, computed without overflowing bi + borrow */
        borrow = (ai < bi || (ai == bi && borrow != 0)) ? 1 : 0;
        r->limb[i] = d;
    }
    return borrow != 0;
}

bool chain_u256_mul_small(chain_u256_t *r, const chain_u256_t *a, uint64_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i != 4; ++i) {
        chain__u128_t p = (chain__u128_t)a->limb[i] * m + carry;
        r->limb[i] = (uint64_t)p;
        carry = (uint64_t)(p >> 64);
    }
    return carry != 0;
}

uint64_t chain_u256_divmod_small(chain_u256_t *q, const chain_u256_t *a, uint64_t d)
{
    CHAIN_ASSERT(d != 0);
    chain_u256_t tmp;
    uint64_t rem = 0;
    for (int i = 3; i >= 0; --i) {
        chain__u128_t cur = (chain__u128_t)rem << 64 | a->limb[i];
        tmp.limb[i] = (uint64_t)(cur / d);
        rem = (uint64_t)(cur % d);
    }
    CHAIN_ASSERT(rem < d);
    if (q != NULL)
        *q = tmp;
    return rem;
}

void chain_u256_from_be(chain_u256_t *r, const uint8_t be[32])
{
    int ret = chain_u256_from_be_var(r, be, 32);
    CHAIN_ASSERT(ret == CHAIN_OK);
}

void chain_u256_to_be(const chain_u256_t *a, uint8_t be[32])
{
    for (unsigned k = 0; k != 32; ++k)
        be[31 - k] = (uint8_t)(a->limb[k / 8] >> (8 * (k % 8)));
}

int chain_u256_from_be_var(chain_u256_t *r, const uint8_t *be, size_t len)
{
    CHAIN_ASSERT(be != NULL || len == 0);
    if (len > 32)
        return CHAIN_ERR_OVERFLOW;
    memset(r, 0, sizeof(*r));
    for (size_t k = 0; k != len; ++k)
        r->limb[k / 8] |= (uint64_t)be[len - 1 - k] << (8 * (k % 8));
    return CHAIN_OK;
}

unsigned chain_u256_byte_len(const chain_u256_t *a)
{
    for (int i = 3; i >= 0; --i) {
        if (a->limb[i] != 0) {
            unsigned bits = 64 - (unsigned)__builtin_clzll(a->limb[i]);
            return 8 * (unsigned)i + (bits + 7) / 8;
        }
    }
    return 0;
}

/* r = r * 10 + digit; true when that wrapped */
static bool chain__u256_push_digit(chain_u256_t *r, unsigned digit)
{
    chain_u256_t d = chain_u256_from_u64(digit);
    bool wrapped = chain_u256_mul_small(r, r, 10);
    return chain_u256_add(r, r, &d) || wrapped;
}

static int chain__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int chain_u256_from_dec(chain_u256_t *r, const char *s, size_t len)
{
    CHAIN_ASSERT(s != NULL || len == 0);
    if (len == 0)
        return CHAIN_ERR_LENGTH;
    chain_u256_t v = {{0}};
    bool wrapped = false;
    for (size_t i = 0; i != len; ++i) {
        if (!chain__is_digit(s[i]))
            return CHAIN_ERR_SYNTAX;
        /* keep going after a wrap so that a bad character later still reports SYNTAX */
        wrapped |= chain__u256_push_digit(&v, (unsigned)(s[i] - '0'));
    }
    if (wrapped)
        return CHAIN_ERR_OVERFLOW;
    *r = v;
    return CHAIN_OK;
}

size_t chain_u256_to_dec(const chain_u256_t *a, char dst[CHAIN_U256_DEC_SIZE])
{
    /* fill right to left, 19 digits per division: 5 rounds cover 95 >= 78 digits */
    char tmp[5 * 19];
    size_t pos = sizeof(tmp);
    chain_u256_t v = *a;
    for (int round = 0; round != 5 && !chain_u256_is_zero(&v); ++round) {
        uint64_t chunk = chain_u256_divmod_small(&v, &v, CHAIN__POW10_19);
        for (int k = 0; k != 19; ++k) {
            tmp[--pos] = (char)('0' + chunk % 10);
            chunk /= 10;
        }
    }
    CHAIN_ASSERT(chain_u256_is_zero(&v));
    while (pos != sizeof(tmp) && tmp[pos] == '0')
        ++pos;
    size_t n = sizeof(tmp) - pos;
    if (n == 0) {
        dst[0] = '0';
        n = 1;
    } else {
        CHAIN_ASSERT(n < CHAIN_U256_DEC_SIZE);
        memcpy(dst, tmp + pos, n);
    }
    dst[n] = '\0';
    return n;
}

/*
 * Checks DIGITS [ "." DIGITS ] and reports where the parts are. Returns CHAIN_OK or
 * CHAIN_ERR_SYNTAX; a lone "." on either side is rejected so that "5." and ".5" do not become
 * a second spelling of "5" and "0.5".
 */
static int chain__units_split(const char *s, size_t len, size_t *int_len, size_t *frac_len)
{
    size_t i = 0;
    while (i != len && chain__is_digit(s[i]))
        ++i;
    if (i == 0)
        return CHAIN_ERR_SYNTAX;
    *int_len = i;
    *frac_len = 0;
    if (i == len)
        return CHAIN_OK;
    if (s[i] != '.')
        return CHAIN_ERR_SYNTAX;
    size_t j = i + 1;
    while (j != len && chain__is_digit(s[j]))
        ++j;
    if (j == i + 1 || j != len)
        return CHAIN_ERR_SYNTAX;
    *frac_len = j - i - 1;
    return CHAIN_OK;
}

int chain_u256_parse_units(chain_u256_t *r, const char *s, size_t len, unsigned decimals)
{
    CHAIN_ASSERT(s != NULL || len == 0);
    CHAIN_ASSERT(decimals <= CHAIN_U256_DECIMALS_MAX);
    if (len == 0)
        return CHAIN_ERR_LENGTH;
    size_t int_len, frac_len;
    int ret = chain__units_split(s, len, &int_len, &frac_len);
    if (ret != CHAIN_OK)
        return ret;
    if (frac_len > decimals)
        return CHAIN_ERR_PRECISION;

    /* value = all digits as one integer, times 10 for each fractional place not written */
    chain_u256_t v = {{0}};
    bool wrapped = false;
    for (size_t i = 0; i != len; ++i) {
        if (i != int_len)
            wrapped |= chain__u256_push_digit(&v, (unsigned)(s[i] - '0'));
    }
    CHAIN_ASSERT(frac_len <= decimals);
    for (size_t k = frac_len; k < decimals; ++k)
        wrapped |= chain_u256_mul_small(&v, &v, 10);
    if (wrapped)
        return CHAIN_ERR_OVERFLOW;
    *r = v;
    return CHAIN_OK;
}

size_t chain_u256_format_units(const chain_u256_t *a, unsigned decimals,
                               char dst[CHAIN_U256_UNITS_SIZE])
{
    CHAIN_ASSERT(decimals <= CHAIN_U256_DECIMALS_MAX);
    char digits[CHAIN_U256_DEC_SIZE];
    size_t n = chain_u256_to_dec(a, digits);
    if (decimals == 0) {
        memcpy(dst, digits, n + 1);
        return n;
    }

    /* split the digits at `decimals` from the right, padding the fraction with zeros */
    size_t out = 0;
    const char *frac;
    size_t frac_zeros, frac_digits;
    if (n > decimals) {
        memcpy(dst, digits, n - decimals);
        out = n - decimals;
        frac = digits + out;
        frac_zeros = 0;
        frac_digits = decimals;
    } else {
        dst[out++] = '0';
        frac = digits;
        frac_zeros = decimals - n;
        frac_digits = n;
    }
    /* shortest form: drop trailing zeros; all of them when the value is whole */
    while (frac_digits != 0 && frac[frac_digits - 1] == '0')
        --frac_digits;
    if (frac_digits != 0) {
        CHAIN_ASSERT(out + 1 + frac_zeros + frac_digits < CHAIN_U256_UNITS_SIZE);
        dst[out++] = '.';
        memset(dst + out, '0', frac_zeros);
        out += frac_zeros;
        memcpy(dst + out, frac, frac_digits);
        out += frac_digits;
    }
    dst[out] = '\0';
    return out;
}
