#include <criterion/criterion.h>
#include <string.h>
#include "chain/rfc3339.h"

static int parse(const char *s, int64_t *t, uint32_t *ns)
{
    return chain_rfc3339_parse(s, strlen(s), t, ns);
}

Test(chain_rfc3339, valid)
{
    static const struct {
        const char *s;
        int64_t t;
        uint32_t ns;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2021-09-30T16:25:24Z", 1633019124, 0}, /* EIP-4361's example */
        {"2021-09-30t16:25:24z", 1633019124, 0},
        {"2021-09-30T18:25:24+02:00", 1633019124, 0},
        {"2021-09-30T11:55:24-04:30", 1633019124, 0},
        {"2021-09-30T16:25:24.000Z", 1633019124, 0},
        {"2021-09-30T16:25:24.5Z", 1633019124, 500000000},
        {"2021-09-30T16:25:24.123456789123Z", 1633019124, 123456789},
        {"2026-11-21T09:00:00Z", 1795251600, 0},
        {"1969-12-31T23:59:59Z", -1, 0},
        {"2000-02-29T12:00:00Z", 951825600, 0},
        {"2024-02-29T23:59:59+23:59", 1709164859, 0},
        {"2024-02-29T00:00:00-23:59", 1709251140, 0},
        {"0000-01-01T00:00:00Z", -62167219200, 0},
        {"9999-12-31T23:59:59Z", 253402300799, 0},
        {"2016-12-31T23:59:60Z", 1483228799, 0}, /* a real leap second, counted as :59 */
        {"2038-01-19T03:14:08Z", 2147483648, 0}, /* past 32-bit time_t */
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        int64_t t = 42;
        uint32_t ns = 42;
        cr_assert_eq(parse(cases[i].s, &t, &ns), CHAIN_OK, "%s", cases[i].s);
        cr_assert_eq(t, cases[i].t, "%s: %lld", cases[i].s, (long long)t);
        cr_assert_eq(ns, cases[i].ns, "%s: %u", cases[i].s, ns);
    }
}

Test(chain_rfc3339, invalid)
{
    static const char *const cases[] = {
        "",
        "2021-09-30",
        "2021-09-30T16:25:24",       /* no offset */
        "2021-09-30 16:25:24Z",      /* space for T */
        "2021-09-30T16:25Z",         /* no seconds */
        "2021-9-30T16:25:24Z",       /* one-digit month */
        "21-09-30T16:25:24Z",        /* two-digit year */
        "+2021-09-30T16:25:24Z",     /* sign */
        "2021-13-01T00:00:00Z",      /* month 13 */
        "2021-00-01T00:00:00Z",      /* month 0 */
        "2021-09-00T00:00:00Z",      /* day 0 */
        "2021-09-31T00:00:00Z",      /* September has 30 days */
        "2021-02-29T00:00:00Z",      /* not a leap year */
        "2100-02-29T00:00:00Z",      /* centuries are not, unless by 400 */
        "2021-09-30T24:00:00Z",      /* hour 24 */
        "2021-09-30T23:60:00Z",      /* minute 60 */
        "2021-09-30T23:59:61Z",      /* second 61 */
        "2021-09-30T16:25:24.Z",     /* point without digits */
        "2021-09-30T16:25:24,5Z",    /* comma */
        "2021-09-30T16:25:24+0200",  /* offset without colon */
        "2021-09-30T16:25:24+02",    /* offset without minutes */
        "2021-09-30T16:25:24+24:00", /* offset hour 24 */
        "2021-09-30T16:25:24+02:60", /* offset minute 60 */
        "2021-09-30T16:25:24Z ",     /* trailing space */
        "2021-09-30T16:25:24ZZ",     /* trailing garbage */
        "2021-09-30T16:25:24.5",     /* fraction, no offset */
        "2021-09-30T16:25:24UTC",    /* zone name */
        "2021-09-30T1a:25:24Z",      /* letter in a field */
        "2021-09-30T16:25:24\xc2\xa0Z" /* non-ASCII */,
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        int64_t t = 42;
        cr_assert_eq(parse(cases[i], &t, NULL), CHAIN_ERR_SYNTAX, "%s", cases[i]);
        cr_assert_eq(t, 42, "output written on error");
    }
    /* a length that cuts a valid string is an error, never a read past it */
    const char *s = "2021-09-30T16:25:24.123+02:00";
    for (size_t n = 0; n < strlen(s); ++n) {
        int64_t t;
        int ret = chain_rfc3339_parse(s, n, &t, NULL);
        if (n == 0 || n != strlen(s))
            cr_assert_eq(ret, CHAIN_ERR_SYNTAX, "length %zu", n);
    }
}

Test(chain_rfc3339, format)
{
    char out[CHAIN_RFC3339_SIZE];
    cr_assert_eq(chain_rfc3339_format(0, out), CHAIN_OK);
    cr_assert_str_eq(out, "1970-01-01T00:00:00Z");
    cr_assert_eq(chain_rfc3339_format(1795251600, out), CHAIN_OK);
    cr_assert_str_eq(out, "2026-11-21T09:00:00Z");
    cr_assert_eq(chain_rfc3339_format(-1, out), CHAIN_OK);
    cr_assert_str_eq(out, "1969-12-31T23:59:59Z");
    cr_assert_eq(chain_rfc3339_format(951825600, out), CHAIN_OK);
    cr_assert_str_eq(out, "2000-02-29T12:00:00Z");
    cr_assert_eq(chain_rfc3339_format(-62167219200, out), CHAIN_OK);
    cr_assert_str_eq(out, "0000-01-01T00:00:00Z");
    cr_assert_eq(chain_rfc3339_format(253402300799, out), CHAIN_OK);
    cr_assert_str_eq(out, "9999-12-31T23:59:59Z");
    memcpy(out, "unchanged", 10);
    cr_assert_eq(chain_rfc3339_format(253402300800, out), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(chain_rfc3339_format(-62167219201, out), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(chain_rfc3339_format(INT64_MIN, out), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(chain_rfc3339_format(INT64_MAX, out), CHAIN_ERR_OVERFLOW);
    cr_assert_str_eq(out, "unchanged");
}

/* format then parse gives the same second, over the whole range, every day boundary and
 * month end included */
Test(chain_rfc3339, round_trip)
{
    const int64_t first = -62167219200, last = 253402300799;
    for (int64_t t = first; t < last; t += 86400 * 7 + 3601) {
        char out[CHAIN_RFC3339_SIZE];
        int64_t back;
        cr_assert_eq(chain_rfc3339_format(t, out), CHAIN_OK, "%lld", (long long)t);
        cr_assert_eq(parse(out, &back, NULL), CHAIN_OK, "%s", out);
        cr_assert_eq(back, t, "%s", out);
    }
    for (int64_t day = -1000; day != 1000; ++day) {
        char out[CHAIN_RFC3339_SIZE];
        int64_t back, t = 1700000000 + day * 86400 + 86399;
        cr_assert_eq(chain_rfc3339_format(t, out), CHAIN_OK);
        cr_assert_eq(parse(out, &back, NULL), CHAIN_OK, "%s", out);
        cr_assert_eq(back, t, "%s", out);
    }
}
