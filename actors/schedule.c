#include "actors/schedule.h"
#include <string.h>
#include "chain/common.h"

/* CHAIN_ASSERT stays on with NDEBUG: a schedule computed from a broken invariant is a payment
 * at the wrong time, which is worse than stopping. */
#define SCHED_ASSERT(cond) CHAIN_ASSERT(cond)

/* days from 0000-01-01 to 1970-01-01 */
#define SCHED__EPOCH_DAYS INT64_C(719528)
/* days in the Gregorian calendar's 400-year cycle */
#define SCHED__DAYS_PER_400Y INT64_C(146097)
#define SCHED__YEAR_MAX 9999

/* floor division and the matching non-negative remainder: C's `/` truncates toward zero, which
 * would put 1969-12-31T23:00:00Z (-3600) on day 0 instead of day -1 */
static int64_t sched__floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t sched__floor_mod(int64_t a, int64_t b)
{
    return a - sched__floor_div(a, b) * b;
}

/* ---- calendar ---- */

bool sched_is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

unsigned sched_days_in_month(int64_t year, unsigned month)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    SCHED_ASSERT(month >= 1 && month <= 12);
    return days[month - 1] + (month == 2 && sched_is_leap(year) ? 1u : 0u);
}

/* days from 0000-01-01 to year-01-01: 365 per year plus one per leap year in [0, year), i.e. the
 * multiples of 4, less those of 100, plus those of 400 (year 0 itself is a leap year) */
static int64_t sched__days_before_year(int64_t year)
{
    SCHED_ASSERT(year >= 0 && year <= SCHED__YEAR_MAX + 1);
    return 365 * year + (year + 3) / 4 - (year + 99) / 100 + (year + 399) / 400;
}

int64_t sched_days_from_civil(int64_t year, unsigned month, unsigned day)
{
    SCHED_ASSERT(year >= 0 && year <= SCHED__YEAR_MAX);
    SCHED_ASSERT(month >= 1 && month <= 12 && day >= 1 && day <= sched_days_in_month(year, month));
    int64_t days = sched__days_before_year(year);
    for (unsigned m = 1; m < month; ++m) /* at most 11 turns */
        days += sched_days_in_month(year, m);
    return days + (day - 1) - SCHED__EPOCH_DAYS;
}

void sched_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    int64_t n = days + SCHED__EPOCH_DAYS; /* days since 0000-01-01 */
    SCHED_ASSERT(n >= 0 && n < sched__days_before_year(SCHED__YEAR_MAX + 1));
    /* The mean year is 146097 / 400 days and days_before_year stays within two days of
     * year * 365.2425, so this estimate is the year or one off: at most one step corrects it. */
    int64_t y = n * 400 / SCHED__DAYS_PER_400Y;
    for (int i = 0; i != 2 && sched__days_before_year(y) > n; ++i)
        --y;
    for (int i = 0; i != 2 && sched__days_before_year(y + 1) <= n; ++i)
        ++y;
    SCHED_ASSERT(sched__days_before_year(y) <= n && n < sched__days_before_year(y + 1));
    int64_t rest = n - sched__days_before_year(y);
    unsigned m = 1;
    while (m < 12 && rest >= sched_days_in_month(y, m)) /* at most 11 turns */
        rest -= sched_days_in_month(y, m++);
    SCHED_ASSERT(rest >= 0 && rest < sched_days_in_month(y, m));
    *year = y;
    *month = m;
    *day = (unsigned)rest + 1;
}

unsigned sched_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday, ISO index 3 */
    return (unsigned)sched__floor_mod(days + 3, 7);
}

/* ---- schedules ---- */

/* the invariants sched_init establishes; checked where a schedule is used, so that a struct the
 * caller filled by hand from a database row cannot silently compute nonsense */
static void sched__check(const sched_t *s)
{
    SCHED_ASSERT(s != NULL);
    SCHED_ASSERT(s->start_at >= 0 && s->start_at <= SCHED_TIME_MAX);
    SCHED_ASSERT(s->end_at == SCHED_NONE ||
                 (s->end_at > s->start_at && s->end_at <= SCHED_TIME_MAX));
    SCHED_ASSERT(s->freq != CHAIN_INTENT_CUSTOM ||
                 (s->interval_s >= SCHED_CUSTOM_MIN_S && s->interval_s <= SCHED_CUSTOM_MAX_S));
    SCHED_ASSERT(s->freq != CHAIN_INTENT_ONCE || s->max_executions == 1);
    SCHED_ASSERT(s->min_interval_s <= (uint64_t)SCHED_CUSTOM_MAX_S);
}

void sched_init(sched_t *s, chain_intent_freq_t freq, uint64_t interval_s, int64_t start_at,
                int64_t end_at, uint32_t max_executions)
{
    SCHED_ASSERT(s != NULL && freq >= CHAIN_INTENT_ONCE && freq <= CHAIN_INTENT_CUSTOM);
    memset(s, 0, sizeof(*s));
    s->freq = freq;
    s->interval_s = freq == CHAIN_INTENT_CUSTOM ? interval_s : 0;
    s->start_at = start_at;
    s->end_at = end_at;
    s->max_executions = freq == CHAIN_INTENT_ONCE ? 1 : max_executions;
    s->min_interval_s = chain_intent_min_interval(freq, s->interval_s);
    sched__check(s);
}

uint64_t sched_period_s(const sched_t *s)
{
    switch (s->freq) {
    case CHAIN_INTENT_DAILY:
        return SCHED_DAY_S;
    case CHAIN_INTENT_WEEKLY:
        return 7 * SCHED_DAY_S;
    case CHAIN_INTENT_CUSTOM:
        return s->interval_s;
    default:
        return 0;
    }
}

/* the k-th month after start_at, on start_at's day of month clamped to the month's length, at
 * start_at's time of day; computed from start_at alone so that a clamp never carries over */
static bool sched__monthly_at(int64_t start_at, uint32_t k, int64_t *at)
{
    int64_t days = sched__floor_div(start_at, SCHED_DAY_S);
    int64_t tod_s = start_at - days * SCHED_DAY_S;
    int64_t y;
    unsigned m, d;
    sched_civil_from_days(days, &y, &m, &d);
    int64_t index = y * 12 + (m - 1) + k; /* months since 0000-01 */
    int64_t ny = index / 12;
    if (ny > SCHED__YEAR_MAX)
        return false;
    unsigned nm = (unsigned)(index % 12) + 1;
    unsigned dim = sched_days_in_month(ny, nm);
    unsigned nd = d < dim ? d : dim;
    *at = sched_days_from_civil(ny, nm, nd) * SCHED_DAY_S + tod_s;
    SCHED_ASSERT(*at >= start_at && *at <= SCHED_TIME_MAX);
    return true;
}

bool sched_period_at(const sched_t *s, uint32_t k, int64_t *at)
{
    sched__check(s);
    if (s->freq == CHAIN_INTENT_ONCE) {
        *at = s->start_at;
        return k == 0;
    }
    if (s->freq == CHAIN_INTENT_MONTHLY)
        return sched__monthly_at(s->start_at, k, at);
    /* k < 2^32 and period <= SCHED_CUSTOM_MAX_S < 2^29, so the product fits in 61 bits */
    uint64_t offset = (uint64_t)k * sched_period_s(s);
    SCHED_ASSERT(sched_period_s(s) > 0);
    if (offset > (uint64_t)(SCHED_TIME_MAX - s->start_at))
        return false;
    *at = s->start_at + (int64_t)offset;
    return true;
}

int64_t sched_next_due(const sched_t *s, uint32_t execution_count, int64_t last_execution)
{
    sched__check(s);
    SCHED_ASSERT(last_execution == SCHED_NONE ||
                 (last_execution >= 0 && last_execution <= SCHED_TIME_MAX));
    if (s->max_executions != 0 && execution_count >= s->max_executions)
        return SCHED_NONE;
    int64_t due;
    if (!sched_period_at(s, execution_count, &due))
        return SCHED_NONE;
    if (last_execution != SCHED_NONE) {
        /* the registry refuses an execution before last + minInterval: a late execution shifts
         * this one (both terms are below 2^39, no overflow) */
        int64_t earliest = last_execution + (int64_t)s->min_interval_s;
        if (earliest > due)
            due = earliest;
    }
    if (due > SCHED_TIME_MAX || (s->end_at != SCHED_NONE && due > s->end_at))
        return SCHED_NONE;
    return due;
}

size_t sched_upcoming(const sched_t *s, uint32_t execution_count, int64_t last_execution,
                      int64_t until, int64_t *out, size_t cap)
{
    SCHED_ASSERT(out != NULL || cap == 0);
    size_t n = 0;
    uint64_t count = execution_count;
    while (n < cap && count <= UINT32_MAX) { /* bounded by cap */
        int64_t due = sched_next_due(s, (uint32_t)count, last_execution);
        if (due == SCHED_NONE || due > until)
            break;
        out[n++] = due;
        last_execution = due;
        ++count;
    }
    return n;
}

/* ---- time windows ---- */

/* reads exactly two digits */
static bool sched__two_digits(const char *s, unsigned *v)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return false;
    *v = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
    return true;
}

bool sched_parse_hhmm(const char *s, size_t len, uint16_t *minutes)
{
    unsigned hh, mm;
    if (s == NULL || len != 5 || s[2] != ':' || !sched__two_digits(s, &hh) ||
        !sched__two_digits(s + 3, &mm) || hh > 23 || mm > 59)
        return false;
    *minutes = (uint16_t)(hh * 60 + mm);
    return true;
}

bool sched_parse_offset(const char *s, size_t len, int16_t *minutes)
{
    unsigned hh, mm;
    if (s == NULL || len != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' ||
        !sched__two_digits(s + 1, &hh) || !sched__two_digits(s + 4, &mm) || mm % 15 != 0 || mm > 45)
        return false;
    int v = (int)(hh * 60 + mm);
    if (s[0] == '-') {
        if (v == 0)
            return false; /* "-00:00": RFC 3339's "unknown offset", not UTC */
        v = -v;
    }
    if (v < SCHED_OFFSET_MIN_MIN || v > SCHED_OFFSET_MAX_MIN)
        return false;
    *minutes = (int16_t)v;
    return true;
}

static const char sched__day_names[7][4] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

bool sched_parse_day(const char *s, size_t len, unsigned *iso_index)
{
    if (s == NULL || len != 3)
        return false;
    for (unsigned i = 0; i != 7; ++i) {
        if (memcmp(s, sched__day_names[i], 3) == 0) {
            *iso_index = i;
            return true;
        }
    }
    return false;
}

const char *sched_day_name(unsigned iso_index)
{
    SCHED_ASSERT(iso_index < 7);
    return sched__day_names[iso_index];
}

void sched_format_hhmm(uint16_t minutes, char out[6])
{
    SCHED_ASSERT(minutes < 24 * 60);
    out[0] = (char)('0' + minutes / 600);
    out[1] = (char)('0' + minutes / 60 % 10);
    out[2] = ':';
    out[3] = (char)('0' + minutes % 60 / 10);
    out[4] = (char)('0' + minutes % 10);
    out[5] = '\0';
}

void sched_format_offset(int16_t minutes, char out[7])
{
    SCHED_ASSERT(minutes >= SCHED_OFFSET_MIN_MIN && minutes <= SCHED_OFFSET_MAX_MIN);
    out[0] = minutes < 0 ? '-' : '+';
    sched_format_hhmm((uint16_t)(minutes < 0 ? -minutes : minutes), out + 1);
}

static void sched__window_check(const sched_window_t *w)
{
    SCHED_ASSERT(w != NULL);
    SCHED_ASSERT(w->start_min < 24 * 60 && w->end_min < 24 * 60 && w->start_min != w->end_min);
    SCHED_ASSERT(w->offset_min >= SCHED_OFFSET_MIN_MIN && w->offset_min <= SCHED_OFFSET_MAX_MIN);
    SCHED_ASSERT(w->days != 0 && (w->days & ~SCHED_ALL_DAYS) == 0);
}

/* true when the window opens on local day `day` (days since 1970-01-01 in local time) */
static bool sched__opens_on(const sched_window_t *w, int64_t day)
{
    return (w->days & SCHED_DAY_BIT(sched_weekday(day))) != 0;
}

bool sched_window_contains(const sched_window_t *w, int64_t t)
{
    sched__window_check(w);
    int64_t local = t + (int64_t)w->offset_min * 60;
    int64_t day = sched__floor_div(local, SCHED_DAY_S);
    int64_t tod_s = local - day * SCHED_DAY_S;
    int64_t start_s = (int64_t)w->start_min * 60, end_s = (int64_t)w->end_min * 60;
    if (w->start_min < w->end_min)
        return tod_s >= start_s && tod_s < end_s && sched__opens_on(w, day);
    /* wraps: the evening part belongs to today's opening, the morning part to yesterday's */
    return (tod_s >= start_s && sched__opens_on(w, day)) ||
           (tod_s < end_s && sched__opens_on(w, day - 1));
}

int64_t sched_window_next_open(const sched_window_t *w, int64_t t)
{
    if (sched_window_contains(w, t))
        return t;
    int64_t offset_s = (int64_t)w->offset_min * 60;
    int64_t day = sched__floor_div(t + offset_s, SCHED_DAY_S);
    /* Outside now, so the next moment inside is an opening: today's if still ahead, or one of
     * the next seven days', and every weekday is among those eight, one of which is allowed. */
    for (int64_t i = 0; i != 8; ++i) {
        int64_t open = (day + i) * SCHED_DAY_S + (int64_t)w->start_min * 60 - offset_s;
        if (open >= t && sched__opens_on(w, day + i))
            return open;
    }
    SCHED_ASSERT(!"a window with a day always opens within 8 days");
    return SCHED_NONE;
}

/* ---- delays ---- */

sched_delay_t sched_delay_reason(const sched_facts_t *f)
{
    SCHED_ASSERT(f != NULL);
    if (!f->inside_window)
        return SCHED_DELAY_OUTSIDE_TIME_WINDOW;
    if (!f->chain_available)
        return SCHED_DELAY_CHAIN_UNAVAILABLE;
    if (chain_u256_cmp(&f->balance, &f->amount) < 0)
        return SCHED_DELAY_INSUFFICIENT_BALANCE;
    chain_u256_t needed;
    /* a sum past 2^256 can not be held by anyone: the buffer is then certainly not there */
    if (chain_u256_add(&needed, &f->amount, &f->safety_buffer) ||
        chain_u256_cmp(&f->balance, &needed) < 0)
        return SCHED_DELAY_BELOW_SAFETY_BUFFER;
    if (chain_u256_cmp(&f->allowance, &f->amount) < 0)
        return SCHED_DELAY_ALLOWANCE_TOO_LOW;
    if (f->has_gas_cap && chain_u256_cmp(&f->gas_price_wei, &f->gas_cap_wei) > 0)
        return SCHED_DELAY_GAS_PRICE_ABOVE_CAP;
    return SCHED_DELAY_NONE;
}

static const char *const sched__delay_names[] = {
    [SCHED_DELAY_OUTSIDE_TIME_WINDOW] = "outside_time_window",
    [SCHED_DELAY_CHAIN_UNAVAILABLE] = "chain_unavailable",
    [SCHED_DELAY_INSUFFICIENT_BALANCE] = "insufficient_balance",
    [SCHED_DELAY_BELOW_SAFETY_BUFFER] = "below_safety_buffer",
    [SCHED_DELAY_ALLOWANCE_TOO_LOW] = "allowance_too_low",
    [SCHED_DELAY_GAS_PRICE_ABOVE_CAP] = "gas_price_above_cap",
};

const char *sched_delay_name(sched_delay_t reason)
{
    SCHED_ASSERT(reason >= SCHED_DELAY_NONE && reason <= SCHED_DELAY_GAS_PRICE_ABOVE_CAP);
    return sched__delay_names[reason];
}

bool sched_delay_parse(const char *name, sched_delay_t *reason)
{
    if (name == NULL)
        return false;
    for (int r = SCHED_DELAY_OUTSIDE_TIME_WINDOW; r <= SCHED_DELAY_GAS_PRICE_ABOVE_CAP; ++r) {
        if (strcmp(name, sched__delay_names[r]) == 0) {
            *reason = (sched_delay_t)r;
            return true;
        }
    }
    return false;
}
