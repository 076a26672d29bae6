#include <stdbool.h>
#include <string.h>
#include "chain/rfc3339.h"

#define CHAIN__SECS_PER_DAY 86400
/* days from 0000-01-01 to 1970-01-01 in the proleptic Gregorian calendar */
#define CHAIN__DAYS_TO_EPOCH 719528
/* days in 400 Gregorian years, the calendar's full cycle */
#define CHAIN__DAYS_PER_400Y 146097
#define CHAIN__YEAR_MAX 9999

/* days before the first of each month, in a common year */
static const uint16_t chain__days_before_month[12] = {0,   31,  59,  90,  120, 151,
                                                      181, 212, 243, 273, 304, 334};

static bool chain__is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned chain__days_in_month(int64_t y, unsigned m)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    CHAIN_ASSERT(m >= 1 && m <= 12);
    return days[m - 1] + (m == 2 && chain__is_leap(y) ? 1 : 0);
}

/* days from 0000-01-01 to y-01-01 (y >= 0): 365 a year plus the leap years in [0, y) */
static int64_t chain__days_before_year(int64_t y)
{
    CHAIN_ASSERT(y >= 0);
    return 365 * y + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
}

/* reads exactly `n` digits at `s`; false when one is not a digit */
static bool chain__digits(const char *s, unsigned n, unsigned *v)
{
    unsigned acc = 0;
    for (unsigned i = 0; i != n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        acc = acc * 10 + (unsigned)(s[i] - '0');
    }
    *v = acc;
    return true;
}

/* reads "." 1*DIGIT at *pos (if there), keeping 9 digits; false for "." without a digit */
static bool chain__fraction(const char *s, size_t len, size_t *pos, uint32_t *ns)
{
    *ns = 0;
    if (*pos >= len || s[*pos] != '.')
        return true;
    size_t start = ++*pos;
    uint32_t scale = 100000000;
    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        *ns += (uint32_t)(s[*pos] - '0') * scale;
        scale /= 10;
        ++*pos;
    }
    return *pos > start;
}

/* reads "Z" / "z" / ("+" / "-") hh ":" mm, which must end the input; offset in seconds */
static bool chain__offset(const char *s, size_t len, size_t pos, int64_t *offset_s)
{
    if (pos + 1 == len && (s[pos] == 'Z' || s[pos] == 'z')) {
        *offset_s = 0;
        return true;
    }
    unsigned hh, mm;
    if (pos + 6 != len || (s[pos] != '+' && s[pos] != '-') || s[pos + 3] != ':' ||
        !chain__digits(s + pos + 1, 2, &hh) || !chain__digits(s + pos + 4, 2, &mm) || hh > 23 ||
        mm > 59)
        return false;
    int64_t v = (int64_t)hh * 3600 + (int64_t)mm * 60;
    *offset_s = s[pos] == '-' ? -v : v;
    return true;
}

int chain_rfc3339_parse(const char *s, size_t len, int64_t *unix_s, uint32_t *frac_ns)
{
    CHAIN_ASSERT(s != NULL || len == 0);
    CHAIN_ASSERT(unix_s != NULL);
    /* "YYYY-MM-DDTHH:MM:SS" is 19 characters, and an offset follows */
    unsigned y, mo, d, h, mi, sec;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return CHAIN_ERR_SYNTAX;
    if (!chain__digits(s, 4, &y) || !chain__digits(s + 5, 2, &mo) || !chain__digits(s + 8, 2, &d) ||
        !chain__digits(s + 11, 2, &h) || !chain__digits(s + 14, 2, &mi) ||
        !chain__digits(s + 17, 2, &sec))
        return CHAIN_ERR_SYNTAX;
    if (mo < 1 || mo > 12 || d < 1 || d > chain__days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return CHAIN_ERR_SYNTAX;
    size_t pos = 19;
    uint32_t ns;
    int64_t offset_s;
    if (!chain__fraction(s, len, &pos, &ns) || !chain__offset(s, len, pos, &offset_s))
        return CHAIN_ERR_SYNTAX;

    int64_t days = chain__days_before_year(y) + chain__days_before_month[mo - 1] +
                   (mo > 2 && chain__is_leap(y) ? 1 : 0) + (d - 1) - CHAIN__DAYS_TO_EPOCH;
    unsigned whole_sec = sec == 60 ? 59 : sec;
    *unix_s =
        days * CHAIN__SECS_PER_DAY + (int64_t)h * 3600 + (int64_t)mi * 60 + whole_sec - offset_s;
    if (frac_ns != NULL)
        *frac_ns = ns;
    return CHAIN_OK;
}

/* writes `v` as exactly `n` decimal digits at `out` */
static void chain__put_digits(char *out, unsigned n, unsigned v)
{
    for (unsigned i = n; i != 0; --i) {
        out[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    CHAIN_ASSERT(v == 0);
}

int chain_rfc3339_format(int64_t unix_s, char out[CHAIN_RFC3339_SIZE])
{
    CHAIN_ASSERT(out != NULL);
    const int64_t min_s = -(int64_t)CHAIN__DAYS_TO_EPOCH * CHAIN__SECS_PER_DAY;
    const int64_t max_s = (chain__days_before_year(CHAIN__YEAR_MAX + 1) - CHAIN__DAYS_TO_EPOCH) *
                              CHAIN__SECS_PER_DAY -
                          1;
    if (unix_s < min_s || unix_s > max_s)
        return CHAIN_ERR_OVERFLOW;
    int64_t days = unix_s / CHAIN__SECS_PER_DAY + CHAIN__DAYS_TO_EPOCH;
    int64_t rem = unix_s % CHAIN__SECS_PER_DAY;
    if (rem < 0) {
        rem += CHAIN__SECS_PER_DAY;
        --days;
    }
    /* a first guess from the average year length, then at most a step or two to correct it */
    int64_t y = days * 400 / CHAIN__DAYS_PER_400Y;
    for (int i = 0; i != 4 && chain__days_before_year(y) > days; ++i)
        --y;
    for (int i = 0; i != 4 && chain__days_before_year(y + 1) <= days; ++i)
        ++y;
    CHAIN_ASSERT(chain__days_before_year(y) <= days && days < chain__days_before_year(y + 1));
    unsigned doy = (unsigned)(days - chain__days_before_year(y));
    unsigned mo = 1;
    for (; mo != 12; ++mo) {
        unsigned next = chain__days_before_month[mo] + (mo >= 2 && chain__is_leap(y) ? 1 : 0);
        if (doy < next)
            break;
    }
    unsigned first = chain__days_before_month[mo - 1] + (mo > 2 && chain__is_leap(y) ? 1 : 0);
    /* "YYYY-MM-DDTHH:MM:SSZ": digits placed by hand, every field known to be in range */
    memcpy(out, "0000-00-00T00:00:00Z", CHAIN_RFC3339_SIZE);
    chain__put_digits(out, 4, (unsigned)y);
    chain__put_digits(out + 5, 2, mo);
    chain__put_digits(out + 8, 2, doy - first + 1);
    chain__put_digits(out + 11, 2, (unsigned)(rem / 3600));
    chain__put_digits(out + 14, 2, (unsigned)(rem / 60 % 60));
    chain__put_digits(out + 17, 2, (unsigned)(rem % 60));
    return CHAIN_OK;
}
