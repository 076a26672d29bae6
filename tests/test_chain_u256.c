#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>
#include "chain/u256.h"

#define MAX_DEC "115792089237316195423570985008687907853269984665640564039457584007913129639935"
#define MAX_PLUS_ONE_DEC                                                                           \
    "115792089237316195423570985008687907853269984665640564039457584007913129639936"

static const chain_u256_t u256_max = {{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};

static int from_dec(chain_u256_t *r, const char *s)
{
    return chain_u256_from_dec(r, s, strlen(s));
}

static int units(chain_u256_t *r, const char *s, unsigned decimals)
{
    return chain_u256_parse_units(r, s, strlen(s), decimals);
}

static void assert_u256_eq(const chain_u256_t *a, const chain_u256_t *b)
{
    cr_assert_eq(chain_u256_cmp(a, b), 0,
                 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 " != %016" PRIx64
                 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                 a->limb[3], a->limb[2], a->limb[1], a->limb[0], b->limb[3], b->limb[2], b->limb[1],
                 b->limb[0]);
}

Test(chain_u256, max_round_trips_through_decimal)
{
    chain_u256_t v;
    cr_assert_eq(from_dec(&v, MAX_DEC), CHAIN_OK);
    assert_u256_eq(&v, &u256_max);
    char s[CHAIN_U256_DEC_SIZE];
    cr_assert_eq(chain_u256_to_dec(&v, s), 78);
    cr_assert_str_eq(s, MAX_DEC);
}

Test(chain_u256, decimal_overflow_at_two_to_the_256)
{
    chain_u256_t v = chain_u256_from_u64(42);
    cr_assert_eq(from_dec(&v, MAX_PLUS_ONE_DEC), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(v.limb[0], 42, "output written on error");
    cr_assert_eq(from_dec(&v, MAX_DEC "0"), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(from_dec(&v, "9" MAX_DEC), CHAIN_ERR_OVERFLOW);
}

Test(chain_u256, decimal_is_strict)
{
    chain_u256_t v;
    cr_assert_eq(from_dec(&v, ""), CHAIN_ERR_LENGTH);
    const char *bad[] = {"+1", "-1", " 1", "1 ", "1e3", "0x10", "1.0", "1_000", "\xd9\xa1"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_eq(from_dec(&v, bad[i]), CHAIN_ERR_SYNTAX, "accepted \"%s\"", bad[i]);
    cr_assert_eq(from_dec(&v, "0"), CHAIN_OK);
    cr_assert(chain_u256_is_zero(&v));
    cr_assert_eq(from_dec(&v, "007"), CHAIN_OK);
    cr_assert_eq(v.limb[0], 7);
}

Test(chain_u256, to_dec_small_and_limb_boundaries)
{
    char s[CHAIN_U256_DEC_SIZE];
    chain_u256_t v = chain_u256_from_u64(0);
    cr_assert_eq(chain_u256_to_dec(&v, s), 1);
    cr_assert_str_eq(s, "0");
    v = chain_u256_from_u64(UINT64_MAX);
    chain_u256_to_dec(&v, s);
    cr_assert_str_eq(s, "18446744073709551615");
    chain_u256_t one = chain_u256_from_u64(1);
    cr_assert_not(chain_u256_add(&v, &v, &one));
    chain_u256_to_dec(&v, s);
    cr_assert_str_eq(s, "18446744073709551616"); /* 2^64: a carry into limb 1 */
    v = chain_u256_from_u64(10000000000000000000ull);
    chain_u256_to_dec(&v, s);
    cr_assert_str_eq(s, "10000000000000000000"); /* exactly one 10^19 chunk */
}

Test(chain_u256, add_and_sub_report_wrap)
{
    chain_u256_t one = chain_u256_from_u64(1), r;
    cr_assert(chain_u256_add(&r, &u256_max, &one));
    cr_assert(chain_u256_is_zero(&r));
    cr_assert_not(chain_u256_add(&r, &one, &one));
    cr_assert_eq(r.limb[0], 2);
    chain_u256_t zero = chain_u256_from_u64(0);
    cr_assert(chain_u256_sub(&r, &zero, &one));
    assert_u256_eq(&r, &u256_max);
    cr_assert_not(chain_u256_sub(&r, &u256_max, &u256_max));
    cr_assert(chain_u256_is_zero(&r));
    /* borrow across limbs: 2^128 - 1 */
    chain_u256_t p128 = {{0, 0, 1, 0}};
    cr_assert_not(chain_u256_sub(&r, &p128, &one));
    cr_assert_eq(r.limb[0], UINT64_MAX);
    cr_assert_eq(r.limb[1], UINT64_MAX);
    cr_assert_eq(r.limb[2], 0);
    /* aliasing: r = r + r */
    r = chain_u256_from_u64(UINT64_MAX);
    cr_assert_not(chain_u256_add(&r, &r, &r));
    cr_assert_eq(r.limb[0], UINT64_MAX - 1);
    cr_assert_eq(r.limb[1], 1);
}

Test(chain_u256, mul_small_and_divmod_small)
{
    chain_u256_t r;
    cr_assert(chain_u256_mul_small(&r, &u256_max, 2));
    cr_assert_not(chain_u256_mul_small(&r, &u256_max, 1));
    assert_u256_eq(&r, &u256_max);
    cr_assert_eq(chain_u256_divmod_small(&r, &u256_max, 10), 5);
    char s[CHAIN_U256_DEC_SIZE];
    chain_u256_to_dec(&r, s);
    cr_assert_str_eq(
        s, "11579208923731619542357098500868790785326998466564056403945758400791312963993");
    /* (max / 10) * 10 + 5 == max, no wrap */
    cr_assert_not(chain_u256_mul_small(&r, &r, 10));
    chain_u256_t five = chain_u256_from_u64(5);
    cr_assert_not(chain_u256_add(&r, &r, &five));
    assert_u256_eq(&r, &u256_max);
    cr_assert_eq(chain_u256_divmod_small(NULL, &u256_max, UINT64_MAX), 0);
}

Test(chain_u256, compare)
{
    chain_u256_t a = {{5, 0, 0, 1}}, b = {{6, 0, 0, 0}};
    cr_assert_eq(chain_u256_cmp(&a, &b), 1);
    cr_assert_eq(chain_u256_cmp(&b, &a), -1);
    cr_assert_eq(chain_u256_cmp(&a, &a), 0);
}

Test(chain_u256, big_endian_round_trip)
{
    uint8_t be[32], back[32];
    for (int i = 0; i != 32; ++i)
        be[i] = (uint8_t)(i + 1);
    chain_u256_t v;
    chain_u256_from_be(&v, be);
    cr_assert_eq(v.limb[3], 0x0102030405060708ull);
    cr_assert_eq(v.limb[0], 0x191a1b1c1d1e1f20ull);
    chain_u256_to_be(&v, back);
    cr_assert_arr_eq(be, back, 32);
    cr_assert_eq(chain_u256_byte_len(&v), 32);

    const uint8_t small[] = {0x04, 0x00};
    cr_assert_eq(chain_u256_from_be_var(&v, small, 2), CHAIN_OK);
    cr_assert_eq(v.limb[0], 1024);
    cr_assert_eq(chain_u256_byte_len(&v), 2);
    cr_assert_eq(chain_u256_from_be_var(&v, NULL, 0), CHAIN_OK);
    cr_assert(chain_u256_is_zero(&v));
    cr_assert_eq(chain_u256_byte_len(&v), 0);
    uint8_t too_long[33] = {0};
    cr_assert_eq(chain_u256_from_be_var(&v, too_long, 33), CHAIN_ERR_OVERFLOW);
}

Test(chain_u256, parse_units_examples)
{
    chain_u256_t v;
    cr_assert_eq(units(&v, "100.5", 6), CHAIN_OK);
    cr_assert_eq(v.limb[0], 100500000);
    cr_assert_eq(units(&v, "0.000001", 6), CHAIN_OK);
    cr_assert_eq(v.limb[0], 1);
    cr_assert_eq(units(&v, "42", 6), CHAIN_OK);
    cr_assert_eq(v.limb[0], 42000000);
    cr_assert_eq(units(&v, "42", 0), CHAIN_OK);
    cr_assert_eq(v.limb[0], 42);
    cr_assert_eq(units(&v, "0", 255), CHAIN_OK);
    cr_assert(chain_u256_is_zero(&v));
    cr_assert_eq(units(&v, "1.000000", 6), CHAIN_OK, "trailing zeros within decimals are fine");
    cr_assert_eq(v.limb[0], 1000000);
    cr_assert_eq(units(&v, "1", 18), CHAIN_OK);
    cr_assert_eq(v.limb[0], 1000000000000000000ull);
}

Test(chain_u256, parse_units_rejects_extra_precision)
{
    chain_u256_t v = chain_u256_from_u64(7);
    cr_assert_eq(units(&v, "0.0000001", 6), CHAIN_ERR_PRECISION);
    cr_assert_eq(units(&v, "1.0000000", 6), CHAIN_ERR_PRECISION);
    cr_assert_eq(units(&v, "1.0", 0), CHAIN_ERR_PRECISION);
    cr_assert_eq(v.limb[0], 7, "output written on error");
}

Test(chain_u256, parse_units_rejects_bad_syntax)
{
    chain_u256_t v;
    cr_assert_eq(units(&v, "", 6), CHAIN_ERR_LENGTH);
    const char *bad[] = {"-1",    "+1",  "1e6",  "1E6", " 1",   "1 ",  ".5",   "5.",
                         "1.2.3", "1,5", "0x10", "-0",  "1..2", "abc", "1.-2", "\t1"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_eq(units(&v, bad[i], 6), CHAIN_ERR_SYNTAX, "accepted \"%s\"", bad[i]);
}

Test(chain_u256, parse_units_overflow)
{
    chain_u256_t v;
    /* exactly 2^256 - 1 base units, written with 9 decimals, fits */
    cr_assert_eq(units(&v,
                       "115792089237316195423570985008687907853269984665640564039457584007913."
                       "129639935",
                       9),
                 CHAIN_OK);
    assert_u256_eq(&v, &u256_max);
    cr_assert_eq(units(&v,
                       "115792089237316195423570985008687907853269984665640564039457584007913."
                       "129639936",
                       9),
                 CHAIN_ERR_OVERFLOW);
    /* 10^77 < 2^256 < 2 * 10^77 */
    cr_assert_eq(units(&v, "1", 77), CHAIN_OK);
    cr_assert_eq(units(&v, "2", 77), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(units(&v, "1", 255), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(units(&v, MAX_PLUS_ONE_DEC, 0), CHAIN_ERR_OVERFLOW);
}

static void assert_format(uint64_t base_units, unsigned decimals, const char *want)
{
    char s[CHAIN_U256_UNITS_SIZE];
    chain_u256_t v = chain_u256_from_u64(base_units);
    size_t n = chain_u256_format_units(&v, decimals, s);
    cr_assert_str_eq(s, want);
    cr_assert_eq(n, strlen(want));
}

Test(chain_u256, format_units_shortest)
{
    assert_format(100500000, 6, "100.5");
    assert_format(1, 6, "0.000001");
    assert_format(0, 6, "0");
    assert_format(1000000, 6, "1");
    assert_format(10000000, 6, "10");
    assert_format(123456, 6, "0.123456");
    assert_format(1234567, 6, "1.234567");
    assert_format(42, 0, "42");
    assert_format(0, 0, "0");
    assert_format(50, 2, "0.5");
}

Test(chain_u256, format_units_extremes)
{
    char s[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_units(&u256_max, 18, s);
    cr_assert_str_eq(s, "115792089237316195423570985008687907853269984665640564039457."
                        "584007913129639935");
    chain_u256_format_units(&u256_max, 78, s);
    cr_assert_str_eq(s, "0." MAX_DEC);
    /* the longest output: "0." then 254 zeros and a 1 */
    chain_u256_t one = chain_u256_from_u64(1);
    size_t n = chain_u256_format_units(&one, 255, s);
    cr_assert_eq(n, 257);
    cr_assert_eq(s[256], '1');
    cr_assert_eq(strspn(s + 2, "0"), 254);
}

Test(chain_u256, gwei)
{
    chain_u256_t wei;
    cr_assert_eq(chain_u256_parse_gwei(&wei, "1.5", 3), CHAIN_OK);
    cr_assert_eq(wei.limb[0], 1500000000);
    cr_assert_eq(chain_u256_parse_gwei(&wei, "0.000000001", 11), CHAIN_OK);
    cr_assert_eq(wei.limb[0], 1);
    cr_assert_eq(chain_u256_parse_gwei(&wei, "0.0000000001", 12), CHAIN_ERR_PRECISION);
    char s[CHAIN_U256_UNITS_SIZE];
    wei = chain_u256_from_u64(25000000000ull);
    chain_u256_format_gwei(&wei, s);
    cr_assert_str_eq(s, "25");
    wei = chain_u256_from_u64(1500000001ull);
    chain_u256_format_gwei(&wei, s);
    cr_assert_str_eq(s, "1.500000001");
}

/* xorshift64: a fixed-seed generator so that a failure reproduces */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

Test(chain_u256, random_units_round_trip)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i != 20000; ++i) {
        chain_u256_t v;
        /* vary the magnitude: keep 1 to 4 limbs, and sometimes only a few bits */
        for (int k = 0; k != 4; ++k)
            v.limb[k] = next_rand(&seed);
        unsigned limbs = 1 + next_rand(&seed) % 4;
        for (unsigned k = limbs; k != 4; ++k)
            v.limb[k] = 0;
        if (next_rand(&seed) % 4 == 0)
            v.limb[0] %= 1000;
        unsigned decimals = next_rand(&seed) % 100;
        char s[CHAIN_U256_UNITS_SIZE];
        size_t n = chain_u256_format_units(&v, decimals, s);
        cr_assert_eq(n, strlen(s));
        chain_u256_t back;
        cr_assert_eq(chain_u256_parse_units(&back, s, n, decimals), CHAIN_OK, "\"%s\" (%u)", s,
                     decimals);
        assert_u256_eq(&back, &v);
        char d[CHAIN_U256_DEC_SIZE];
        chain_u256_to_dec(&v, d);
        cr_assert_eq(from_dec(&back, d), CHAIN_OK);
        assert_u256_eq(&back, &v);
    }
}
