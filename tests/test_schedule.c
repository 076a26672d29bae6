/*
 * actors/schedule: calendar arithmetic, due times, time windows and delay reasons. Expected
 * times are written as RFC 3339 strings and read with chain/rfc3339 (a separate calendar
 * implementation), so that one calendar bug can not hide behind the same bug in the check.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "actors/schedule.h"
#include "chain/rfc3339.h"

/* unix seconds of an RFC 3339 string */
static int64_t T(const char *s)
{
    int64_t t;
    cr_assert_eq(chain_rfc3339_parse(s, strlen(s), &t, NULL), CHAIN_OK, "%s", s);
    return t;
}

/* RFC 3339 of unix seconds, in a static buffer per call site's use */
static const char *R(int64_t t, char buf[CHAIN_RFC3339_SIZE])
{
    if (t == SCHED_NONE)
        return "none";
    cr_assert_eq(chain_rfc3339_format(t, buf), CHAIN_OK);
    return buf;
}

#define assert_time(got, want)                                                                     \
    do {                                                                                           \
        char b1_[CHAIN_RFC3339_SIZE], b2_[CHAIN_RFC3339_SIZE];                                     \
        int64_t g_ = (got), w_ = (want);                                                           \
        cr_assert_eq(g_, w_, "got %s, want %s", R(g_, b1_), R(w_, b2_));                           \
    } while (0)

static sched_t mk(chain_intent_freq_t f, uint64_t interval, const char *start, const char *end,
                  uint32_t max)
{
    sched_t s;
    sched_init(&s, f, interval, T(start), end != NULL ? T(end) : SCHED_NONE, max);
    return s;
}

/* ---- calendar ---- */

Test(sched_calendar, leap_years)
{
    cr_assert(sched_is_leap(2000));
    cr_assert(!sched_is_leap(2100));
    cr_assert(!sched_is_leap(1900));
    cr_assert(sched_is_leap(2400));
    cr_assert(sched_is_leap(2024));
    cr_assert(sched_is_leap(2028));
    cr_assert(!sched_is_leap(2026));
    cr_assert(sched_is_leap(0));
    cr_assert_eq(sched_days_in_month(2000, 2), 29);
    cr_assert_eq(sched_days_in_month(2100, 2), 28);
    cr_assert_eq(sched_days_in_month(2028, 2), 29);
    cr_assert_eq(sched_days_in_month(2027, 2), 28);
    cr_assert_eq(sched_days_in_month(2027, 4), 30);
    cr_assert_eq(sched_days_in_month(2027, 12), 31);
}

Test(sched_calendar, anchors)
{
    cr_assert_eq(sched_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(sched_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(sched_days_from_civil(2000, 1, 1), 10957);
    cr_assert_eq(sched_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(sched_days_from_civil(9999, 12, 31), 2932896);
    cr_assert_eq(sched_days_from_civil(1, 1, 1), -719162);
    cr_assert_eq(sched_days_from_civil(2026, 11, 21) * SCHED_DAY_S, T("2026-11-21T00:00:00Z"));
    cr_assert_eq(sched_weekday(0), 3, "1970-01-01 was a Thursday");
    cr_assert_eq(sched_weekday(-1), 2, "1969-12-31 was a Wednesday");
    cr_assert_eq(sched_weekday(sched_days_from_civil(2026, 11, 21)), 5, "a Saturday");
    cr_assert_eq(sched_weekday(sched_days_from_civil(2000, 1, 1)), 5, "a Saturday");
}

/* every day of 800 years (two full 400-year cycles, 1900..2699, with 2000 leap and 2100, 2200,
 * 2300, 2500.. not): a plain day counter against both conversions and the weekday */
Test(sched_calendar, day_by_day)
{
    int64_t y = 1900;
    unsigned m = 1, d = 1, wd = sched_weekday(sched_days_from_civil(1900, 1, 1));
    cr_assert_eq(wd, 0, "1900-01-01 was a Monday");
    int64_t first = sched_days_from_civil(1900, 1, 1);
    for (int64_t n = first; n != first + 2 * 146097; ++n) {
        cr_assert_eq(sched_days_from_civil(y, m, d), n, "%lld-%u-%u", (long long)y, m, d);
        int64_t cy;
        unsigned cm, cd;
        sched_civil_from_days(n, &cy, &cm, &cd);
        cr_assert(cy == y && cm == m && cd == d, "%lld: %lld-%u-%u", (long long)n, (long long)cy,
                  cm, cd);
        cr_assert_eq(sched_weekday(n), wd);
        wd = (wd + 1) % 7;
        if (++d > sched_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                ++y;
            }
        }
    }
    cr_assert_eq(y, 2700);
}

Test(sched_calendar, extremes)
{
    int64_t y;
    unsigned m, d;
    sched_civil_from_days(sched_days_from_civil(0, 1, 1), &y, &m, &d);
    cr_assert(y == 0 && m == 1 && d == 1);
    sched_civil_from_days(2932896, &y, &m, &d);
    cr_assert(y == 9999 && m == 12 && d == 31);
    sched_civil_from_days(sched_days_from_civil(2100, 2, 28) + 1, &y, &m, &d);
    cr_assert(y == 2100 && m == 3 && d == 1, "2100 is not a leap year");
    sched_civil_from_days(sched_days_from_civil(2000, 2, 28) + 1, &y, &m, &d);
    cr_assert(y == 2000 && m == 2 && d == 29, "2000 is a leap year");
}

/* ---- schedules ---- */

Test(sched_due, min_interval_from_api_md)
{
    cr_assert_eq(mk(CHAIN_INTENT_ONCE, 0, "2026-01-01T00:00:00Z", NULL, 0).min_interval_s, 0);
    cr_assert_eq(mk(CHAIN_INTENT_DAILY, 0, "2026-01-01T00:00:00Z", NULL, 0).min_interval_s, 86100);
    cr_assert_eq(mk(CHAIN_INTENT_WEEKLY, 0, "2026-01-01T00:00:00Z", NULL, 0).min_interval_s,
                 604500);
    cr_assert_eq(mk(CHAIN_INTENT_MONTHLY, 0, "2026-01-01T00:00:00Z", NULL, 0).min_interval_s,
                 2418900);
    cr_assert_eq(mk(CHAIN_INTENT_CUSTOM, 60, "2026-01-01T00:00:00Z", NULL, 0).min_interval_s, 54);
    cr_assert_eq(mk(CHAIN_INTENT_CUSTOM, 3600, "2026-01-01T00:00:00Z", NULL, 0).min_interval_s,
                 3300);
    sched_t once = mk(CHAIN_INTENT_ONCE, 0, "2026-01-01T00:00:00Z", NULL, 0);
    cr_assert_eq(once.max_executions, 1, "once means 1");
    sched_t daily = mk(CHAIN_INTENT_DAILY, 999, "2026-01-01T00:00:00Z", NULL, 0);
    cr_assert_eq(daily.interval_s, 0, "intervalSeconds only for custom");
}

/* Jan 31 through a year and a bit: clamped to each month's end, and back to the 31st where the
 * month has one (no drift), Feb 29 in 2028 */
Test(sched_due, monthly_from_jan_31)
{
    static const char *const want[] = {
        "2027-01-31T09:00:00Z", "2027-02-28T09:00:00Z", "2027-03-31T09:00:00Z",
        "2027-04-30T09:00:00Z", "2027-05-31T09:00:00Z", "2027-06-30T09:00:00Z",
        "2027-07-31T09:00:00Z", "2027-08-31T09:00:00Z", "2027-09-30T09:00:00Z",
        "2027-10-31T09:00:00Z", "2027-11-30T09:00:00Z", "2027-12-31T09:00:00Z",
        "2028-01-31T09:00:00Z", "2028-02-29T09:00:00Z", "2028-03-31T09:00:00Z",
        "2028-04-30T09:00:00Z",
    };
    sched_t s = mk(CHAIN_INTENT_MONTHLY, 0, "2027-01-31T09:00:00Z", NULL, 0);
    for (uint32_t k = 0; k != sizeof(want) / sizeof(want[0]); ++k) {
        int64_t at;
        cr_assert(sched_period_at(&s, k, &at));
        assert_time(at, T(want[k]));
        /* executing exactly on time, the next due time is the next period's */
        if (k > 0)
            assert_time(sched_next_due(&s, k, T(want[k - 1])), T(want[k]));
    }
}

Test(sched_due, monthly_from_leap_day_and_the_30th)
{
    sched_t s = mk(CHAIN_INTENT_MONTHLY, 0, "2028-02-29T23:59:59Z", NULL, 0);
    int64_t at;
    cr_assert(sched_period_at(&s, 1, &at));
    assert_time(at, T("2028-03-29T23:59:59Z"));
    cr_assert(sched_period_at(&s, 12, &at));
    assert_time(at, T("2029-02-28T23:59:59Z"));
    cr_assert(sched_period_at(&s, 48, &at));
    assert_time(at, T("2032-02-29T23:59:59Z"));
    /* 2100 is not a leap year, 2400 is */
    s = mk(CHAIN_INTENT_MONTHLY, 0, "2099-01-29T00:00:00Z", NULL, 0);
    cr_assert(sched_period_at(&s, 13, &at));
    assert_time(at, T("2100-02-28T00:00:00Z"));
    s = mk(CHAIN_INTENT_MONTHLY, 0, "2399-12-30T00:00:00Z", NULL, 0);
    cr_assert(sched_period_at(&s, 2, &at));
    assert_time(at, T("2400-02-29T00:00:00Z"));
    cr_assert(sched_period_at(&s, 3, &at));
    assert_time(at, T("2400-03-30T00:00:00Z"));
    /* the end of time the API can write */
    s = mk(CHAIN_INTENT_MONTHLY, 0, "9999-11-30T00:00:00Z", NULL, 0);
    cr_assert(sched_period_at(&s, 1, &at));
    assert_time(at, T("9999-12-30T00:00:00Z"));
    cr_assert(!sched_period_at(&s, 2, &at), "year 10000");
    cr_assert_eq(sched_next_due(&s, 2, SCHED_NONE), SCHED_NONE);
}

Test(sched_due, fixed_periods)
{
    int64_t at, start = T("2026-03-28T01:30:00Z");
    sched_t d = mk(CHAIN_INTENT_DAILY, 0, "2026-03-28T01:30:00Z", NULL, 0);
    cr_assert(sched_period_at(&d, 0, &at));
    assert_time(at, start);
    /* across the European DST change (2026-03-29): UTC has none, 01:30Z stays 01:30Z */
    cr_assert(sched_period_at(&d, 2, &at));
    assert_time(at, T("2026-03-30T01:30:00Z"));
    cr_assert(sched_period_at(&d, 365, &at));
    assert_time(at, T("2027-03-28T01:30:00Z"));
    sched_t w = mk(CHAIN_INTENT_WEEKLY, 0, "2026-03-28T01:30:00Z", NULL, 0);
    cr_assert(sched_period_at(&w, 52, &at));
    assert_time(at, T("2027-03-27T01:30:00Z"));
    sched_t c = mk(CHAIN_INTENT_CUSTOM, 90, "2026-03-28T01:30:00Z", NULL, 0);
    cr_assert(sched_period_at(&c, 3, &at));
    assert_time(at, T("2026-03-28T01:34:30Z"));
    /* the largest count: 2^32 - 1 minutes is past year 9999, 4e9 are not */
    cr_assert(!sched_period_at(&c, UINT32_MAX, &at));
    sched_t c60 = mk(CHAIN_INTENT_CUSTOM, 60, "1970-01-01T00:00:00Z", NULL, 0);
    cr_assert(sched_period_at(&c60, 4000000000u, &at));
    cr_assert_eq(at, INT64_C(240000000000));
    sched_t big =
        mk(CHAIN_INTENT_CUSTOM, (uint64_t)SCHED_CUSTOM_MAX_S, "9991-01-01T00:00:00Z", NULL, 0);
    cr_assert(!sched_period_at(&big, 1, &at), "past year 9999");
    cr_assert_eq(sched_next_due(&big, 1, SCHED_NONE), SCHED_NONE);
}

Test(sched_due, once)
{
    sched_t s = mk(CHAIN_INTENT_ONCE, 0, "2026-11-21T09:00:00Z", NULL, 0);
    assert_time(sched_next_due(&s, 0, SCHED_NONE), T("2026-11-21T09:00:00Z"));
    cr_assert_eq(sched_next_due(&s, 1, T("2026-11-21T09:00:05Z")), SCHED_NONE);
    int64_t at;
    cr_assert(!sched_period_at(&s, 1, &at));
}

/* api.md: "the engine never executes before lastExecution + minInterval, so a late execution
 * can shift the next one" */
Test(sched_due, late_execution_shifts_the_next)
{
    int64_t t0 = T("2026-11-21T09:00:00Z");
    sched_t s = mk(CHAIN_INTENT_DAILY, 0, "2026-11-21T09:00:00Z", NULL, 0);
    assert_time(sched_next_due(&s, 1, t0), t0 + 86400);
    /* up to 300 s late: the slack keeps the next one on time */
    assert_time(sched_next_due(&s, 1, t0 + 300), t0 + 86400);
    /* 10 minutes late: the next is due 86100 s after it */
    assert_time(sched_next_due(&s, 1, t0 + 600), t0 + 600 + 86100);
    /* a day late (period 1 ran at period 2's time): period 2 waits minInterval */
    assert_time(sched_next_due(&s, 2, t0 + 2 * 86400), t0 + 2 * 86400 + 86100);
    /* an overdue period with an old last execution is due now-ish: its scheduled time */
    assert_time(sched_next_due(&s, 5, t0), t0 + 5 * 86400);
    sched_t m = mk(CHAIN_INTENT_MONTHLY, 0, "2027-01-31T09:00:00Z", NULL, 0);
    /* Feb 28 is 28 days after Jan 31: more than the 27.99-day minInterval, so no shift */
    assert_time(sched_next_due(&m, 1, T("2027-01-31T09:00:00Z")), T("2027-02-28T09:00:00Z"));
    /* Jan 31 executed on Feb 3: Feb 28 is then too early, minInterval decides */
    assert_time(sched_next_due(&m, 1, T("2027-02-03T09:00:00Z")),
                T("2027-02-03T09:00:00Z") + 2418900);
}

Test(sched_due, end_and_max_executions)
{
    int64_t t0 = T("2026-11-21T09:00:00Z");
    sched_t s = mk(CHAIN_INTENT_DAILY, 0, "2026-11-21T09:00:00Z", "2026-11-23T09:00:00Z", 0);
    assert_time(sched_next_due(&s, 2, t0 + 86400), t0 + 2 * 86400); /* endAt is inclusive */
    cr_assert_eq(sched_next_due(&s, 3, t0 + 2 * 86400), SCHED_NONE);
    /* a shift that crosses endAt ends it: the registry would refuse after validUntil */
    cr_assert_eq(sched_next_due(&s, 2, t0 + 86400 + 3600), SCHED_NONE);
    sched_t e = mk(CHAIN_INTENT_DAILY, 0, "2026-11-21T09:00:00Z", "2026-11-23T08:59:59Z", 0);
    cr_assert_eq(sched_next_due(&e, 2, t0 + 86400), SCHED_NONE);
    sched_t m = mk(CHAIN_INTENT_WEEKLY, 0, "2026-11-21T09:00:00Z", NULL, 3);
    assert_time(sched_next_due(&m, 2, t0 + 7 * 86400), t0 + 14 * 86400);
    cr_assert_eq(sched_next_due(&m, 3, t0 + 14 * 86400), SCHED_NONE);
    cr_assert_eq(sched_next_due(&m, 4, t0 + 14 * 86400), SCHED_NONE);
    sched_t u = mk(CHAIN_INTENT_WEEKLY, 0, "2026-11-21T09:00:00Z", NULL, 0);
    assert_time(sched_next_due(&u, 1000, SCHED_NONE), t0 + 1000 * 7 * 86400);
}

Test(sched_due, upcoming)
{
    int64_t t0 = T("2026-11-21T09:00:00Z"), out[16];
    sched_t s = mk(CHAIN_INTENT_DAILY, 0, "2026-11-21T09:00:00Z", NULL, 0);
    /* from before the start, within 7 days: 7 periods (day 7 exactly is included) */
    size_t n = sched_upcoming(&s, 0, SCHED_NONE, t0 + 7 * 86400, out, 16);
    cr_assert_eq(n, 8);
    for (size_t i = 0; i != n; ++i)
        assert_time(out[i], t0 + (int64_t)i * 86400);
    cr_assert_eq(sched_upcoming(&s, 0, SCHED_NONE, t0 + 7 * 86400, out, 3), 3, "cap");
    cr_assert_eq(sched_upcoming(&s, 0, SCHED_NONE, t0 - 1, out, 16), 0);
    /* a late last execution shifts every projected time after it */
    n = sched_upcoming(&s, 1, t0 + 3600, t0 + 3 * 86400 + 3600, out, 16);
    cr_assert_eq(n, 3);
    assert_time(out[0], t0 + 3600 + 86100);
    /* each period catches up by the 300 s slack */
    assert_time(out[1], t0 + 2 * 86400 + 3000);
    assert_time(out[2], t0 + 3 * 86400 + 2700);
    /* 12 periods later it is back on schedule */
    n = sched_upcoming(&s, 1, t0 + 3600, t0 + 20 * 86400, out, 16);
    cr_assert_eq(n, 16);
    assert_time(out[11], t0 + 12 * 86400 + 0);
    assert_time(out[12], t0 + 13 * 86400);
    /* ends with maxExecutions and with endAt */
    sched_t m = mk(CHAIN_INTENT_DAILY, 0, "2026-11-21T09:00:00Z", "2026-11-22T09:00:00Z", 0);
    cr_assert_eq(sched_upcoming(&m, 0, SCHED_NONE, t0 + 30 * 86400, out, 16), 2);
    sched_t o = mk(CHAIN_INTENT_ONCE, 0, "2026-11-21T09:00:00Z", NULL, 0);
    cr_assert_eq(sched_upcoming(&o, 0, SCHED_NONE, t0 + 30 * 86400, out, 16), 1);
    cr_assert_eq(sched_upcoming(&o, 1, t0, t0 + 30 * 86400, out, 16), 0);
}

/* ---- windows ---- */

Test(sched_window, parse_hhmm)
{
    uint16_t m;
    cr_assert(sched_parse_hhmm("09:00", 5, &m) && m == 540);
    cr_assert(sched_parse_hhmm("00:00", 5, &m) && m == 0);
    cr_assert(sched_parse_hhmm("23:59", 5, &m) && m == 1439);
    static const char *const bad[] = {"24:00", "9:00",  "09:60", "0900", "09:00 ", " 09:00",
                                      "09-00", "ab:cd", "",      "09:0", "+9:00"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert(!sched_parse_hhmm(bad[i], strlen(bad[i]), &m), "%s", bad[i]);
    char buf[6];
    sched_format_hhmm(1439, buf);
    cr_assert_str_eq(buf, "23:59");
    sched_format_hhmm(65, buf);
    cr_assert_str_eq(buf, "01:05");
}

/* quarter hours from -12:00 to +14:00: -09:30 (Marquesas), +05:45 (Nepal) and +12:45 (Chatham)
 * are real zones and accepted; -00:00 means "unknown" in RFC 3339 and is refused */
Test(sched_window, parse_offset)
{
    static const struct {
        const char *s;
        int v;
    } good[] = {{"+00:00", 0},    {"+02:00", 120},  {"+14:00", 840},
                {"-12:00", -720}, {"-09:30", -570}, {"+05:45", 345},
                {"+12:45", 765},  {"+05:30", 330},  {"-03:15", -195}};
    for (size_t i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        int16_t m;
        cr_assert(sched_parse_offset(good[i].s, 6, &m), "%s", good[i].s);
        cr_assert_eq(m, good[i].v, "%s", good[i].s);
        char buf[7];
        sched_format_offset(m, buf);
        cr_assert_str_eq(buf, good[i].s);
    }
    static const char *const bad[] = {"+14:15", "-12:15", "+15:00", "-13:00", "+05:20",
                                      "-00:00", "+2:00",  "Z",      "02:00",  "+02:00 ",
                                      "+0200",  "+02:60", "+99:00", ""};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        int16_t m;
        cr_assert(!sched_parse_offset(bad[i], strlen(bad[i]), &m), "%s", bad[i]);
    }
}

Test(sched_window, parse_day)
{
    static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    for (unsigned i = 0; i != 7; ++i) {
        unsigned d;
        cr_assert(sched_parse_day(names[i], 3, &d) && d == i);
        cr_assert_str_eq(sched_day_name(i), names[i]);
    }
    unsigned d;
    cr_assert(!sched_parse_day("Mon", 3, &d));
    cr_assert(!sched_parse_day("monday", 6, &d));
    cr_assert(!sched_parse_day("mo", 2, &d));
    cr_assert(!sched_parse_day(NULL, 0, &d));
}

static sched_window_t win(const char *start, const char *end, const char *offset, uint8_t days)
{
    sched_window_t w = {.days = days, .days_given = days != SCHED_ALL_DAYS};
    cr_assert(sched_parse_hhmm(start, 5, &w.start_min));
    cr_assert(sched_parse_hhmm(end, 5, &w.end_min));
    cr_assert(sched_parse_offset(offset, 6, &w.offset_min));
    return w;
}

#define MON SCHED_DAY_BIT(0)
#define TUE SCHED_DAY_BIT(1)
#define FRI SCHED_DAY_BIT(4)
#define SAT SCHED_DAY_BIT(5)
#define SUN SCHED_DAY_BIT(6)

Test(sched_window, contains_plain)
{
    sched_window_t w = win("09:00", "17:00", "+00:00", SCHED_ALL_DAYS);
    cr_assert(sched_window_contains(&w, T("2026-11-21T09:00:00Z")), "start is inside");
    cr_assert(sched_window_contains(&w, T("2026-11-21T16:59:59Z")));
    cr_assert(!sched_window_contains(&w, T("2026-11-21T17:00:00Z")), "end is outside");
    cr_assert(!sched_window_contains(&w, T("2026-11-21T08:59:59Z")));
    /* +02:00: 09:00-17:00 local is 07:00-15:00 UTC */
    sched_window_t o = win("09:00", "17:00", "+02:00", SCHED_ALL_DAYS);
    cr_assert(sched_window_contains(&o, T("2026-11-21T07:00:00Z")));
    cr_assert(sched_window_contains(&o, T("2026-11-21T09:00:00+02:00")));
    cr_assert(!sched_window_contains(&o, T("2026-11-21T15:00:00Z")));
    cr_assert(!sched_window_contains(&o, T("2026-11-21T06:59:59Z")));
    /* before 1970 too (floor division) */
    cr_assert(sched_window_contains(&w, T("1969-12-31T10:00:00Z")));
    cr_assert(!sched_window_contains(&w, T("1969-12-31T20:00:00Z")));
}

Test(sched_window, wraps_past_midnight)
{
    sched_window_t w = win("22:00", "02:00", "+00:00", SCHED_ALL_DAYS);
    cr_assert(sched_window_contains(&w, T("2026-11-21T22:00:00Z")));
    cr_assert(sched_window_contains(&w, T("2026-11-21T23:59:59Z")));
    cr_assert(sched_window_contains(&w, T("2026-11-22T00:00:00Z")));
    cr_assert(sched_window_contains(&w, T("2026-11-22T01:59:59Z")));
    cr_assert(!sched_window_contains(&w, T("2026-11-22T02:00:00Z")));
    cr_assert(!sched_window_contains(&w, T("2026-11-21T21:59:59Z")));
    cr_assert(!sched_window_contains(&w, T("2026-11-21T12:00:00Z")));
    /* the window belongs to the day it opens: Monday 22:00 to Tuesday 02:00 */
    sched_window_t m = win("22:00", "02:00", "+00:00", MON);
    cr_assert(sched_window_contains(&m, T("2026-11-23T23:00:00Z")), "Monday night");
    cr_assert(sched_window_contains(&m, T("2026-11-24T01:00:00Z")), "Tuesday morning");
    cr_assert(!sched_window_contains(&m, T("2026-11-23T01:00:00Z")), "Monday morning is Sunday's");
    cr_assert(!sched_window_contains(&m, T("2026-11-24T23:00:00Z")), "Tuesday night");
}

/* the day filter is in local time: with +14:00, Saturday starts at Friday 10:00 UTC; with
 * -09:30, Friday lasts until Saturday 09:30 UTC */
Test(sched_window, days_in_local_time_near_midnight_utc)
{
    sched_window_t kiri = win("00:00", "06:00", "+14:00", SAT);
    cr_assert(sched_window_contains(&kiri, T("2026-11-20T10:00:00Z")), "Fri 10:00Z = Sat 00:00");
    cr_assert(!sched_window_contains(&kiri, T("2026-11-20T09:59:59Z")), "Fri 23:59:59 local");
    cr_assert(!sched_window_contains(&kiri, T("2026-11-21T00:00:00Z")), "Sat 14:00 local");
    sched_window_t marq = win("18:00", "23:00", "-09:30", FRI);
    cr_assert(sched_window_contains(&marq, T("2026-11-21T05:00:00Z")), "Sat 05:00Z = Fri 19:30");
    cr_assert(!sched_window_contains(&marq, T("2026-11-22T05:00:00Z")), "Sat 19:30 local");
    cr_assert(!sched_window_contains(&marq, T("2026-11-20T05:00:00Z")), "Thu 19:30 local");
    /* the same instant is Saturday in UTC but Friday local */
    sched_window_t utc = win("18:00", "23:00", "+00:00", FRI);
    cr_assert(!sched_window_contains(&utc, T("2026-11-21T05:00:00Z")));
}

Test(sched_window, next_open)
{
    sched_window_t w = win("09:00", "17:00", "+02:00", SCHED_ALL_DAYS);
    int64_t inside = T("2026-11-21T10:00:00Z");
    assert_time(sched_window_next_open(&w, inside), inside);
    assert_time(sched_window_next_open(&w, T("2026-11-21T05:00:00Z")), T("2026-11-21T07:00:00Z"));
    assert_time(sched_window_next_open(&w, T("2026-11-21T15:00:00Z")), T("2026-11-22T07:00:00Z"));
    assert_time(sched_window_next_open(&w, T("2026-11-21T23:30:00Z")), T("2026-11-22T07:00:00Z"));
    /* weekdays only: Saturday afternoon -> Monday 09:00 local */
    sched_window_t wd = win("09:00", "17:00", "+02:00", SCHED_ALL_DAYS & ~(SAT | SUN));
    assert_time(sched_window_next_open(&wd, T("2026-11-21T15:00:00Z")),
                T("2026-11-23T09:00:00+02:00"));
    /* only today's weekday, and today's window is over: a week later (the 8th candidate) */
    sched_window_t sat = win("09:00", "10:00", "+00:00", SAT);
    assert_time(sched_window_next_open(&sat, T("2026-11-21T10:00:00Z")), T("2026-11-28T09:00:00Z"));
    assert_time(sched_window_next_open(&sat, T("2026-11-21T08:59:59Z")), T("2026-11-21T09:00:00Z"));
    /* wrapping, Mondays: Tuesday 01:00 is inside; Tuesday 03:00 waits for next Monday 22:00 */
    sched_window_t m = win("22:00", "02:00", "+00:00", MON);
    assert_time(sched_window_next_open(&m, T("2026-11-24T01:00:00Z")), T("2026-11-24T01:00:00Z"));
    assert_time(sched_window_next_open(&m, T("2026-11-24T03:00:00Z")), T("2026-11-30T22:00:00Z"));
}

/* a small deterministic generator, so that a failure reproduces */
static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 33;
}

/* against a definition by brute force: minute by minute, next_open is inside and nothing
 * between t and it is; contains agrees with a direct reading of local day and time */
Test(sched_window, next_open_brute_force)
{
    uint64_t seed = 42;
    for (int round = 0; round != 60; ++round) {
        sched_window_t w = {0};
        w.start_min = (uint16_t)(lcg(&seed) % 1440);
        do
            w.end_min = (uint16_t)(lcg(&seed) % 1440);
        while (w.end_min == w.start_min);
        w.offset_min = (int16_t)((int)(lcg(&seed) % 105) * 15 - 720);
        do
            w.days = (uint8_t)(lcg(&seed) % 128);
        while (w.days == 0);
        w.days_given = true;
        int64_t t = T("2026-01-01T00:00:00Z") + (int64_t)(lcg(&seed) % (400 * 86400));
        int64_t next = sched_window_next_open(&w, t);
        cr_assert(next >= t && next - t <= 8 * 86400);
        cr_assert(sched_window_contains(&w, next));
        /* whole minutes in local time: the window's edges are on minute boundaries */
        for (int64_t u = t; u < next; u += 60 - ((u + w.offset_min * 60) % 60 + 60) % 60)
            cr_assert(!sched_window_contains(&w, u), "round %d: inside before next_open", round);
        for (int k = 0; k != 50; ++k) {
            int64_t u = t + (int64_t)(lcg(&seed) % (8 * 86400));
            int64_t local = u + w.offset_min * 60, day = local / 86400, tod = local % 86400 / 60;
            unsigned today = sched_weekday(day), yesterday = sched_weekday(day - 1);
            bool want;
            if (w.start_min < w.end_min)
                want = tod >= w.start_min && tod < w.end_min && (w.days >> today & 1);
            else
                want = (tod >= w.start_min && (w.days >> today & 1)) ||
                       (tod < w.end_min && (w.days >> yesterday & 1));
            cr_assert_eq(sched_window_contains(&w, u), want, "round %d", round);
        }
    }
}

/* ---- delay reasons ---- */

static sched_facts_t ok_facts(void)
{
    sched_facts_t f = {.inside_window = true, .chain_available = true};
    f.balance = chain_u256_from_u64(1000);
    f.amount = chain_u256_from_u64(100);
    f.safety_buffer = chain_u256_from_u64(50);
    f.allowance = chain_u256_from_u64(100);
    f.gas_price_wei = chain_u256_from_u64(1500000000);
    f.has_gas_cap = true;
    cr_assert_eq(chain_u256_parse_gwei(&f.gas_cap_wei, "1.5", 3), CHAIN_OK);
    return f;
}

Test(sched_delay, each_reason_alone)
{
    sched_facts_t f = ok_facts();
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_NONE, "price equal to the cap passes");
    f.inside_window = false;
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_OUTSIDE_TIME_WINDOW);
    f = ok_facts();
    f.chain_available = false;
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_CHAIN_UNAVAILABLE);
    f = ok_facts();
    f.balance = chain_u256_from_u64(99);
    f.safety_buffer = chain_u256_from_u64(0);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_INSUFFICIENT_BALANCE);
    f = ok_facts();
    f.balance = chain_u256_from_u64(149);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_BELOW_SAFETY_BUFFER);
    f.balance = chain_u256_from_u64(150);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_NONE, "amount + buffer exactly is enough");
    f = ok_facts();
    f.allowance = chain_u256_from_u64(99);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_ALLOWANCE_TOO_LOW);
    f = ok_facts();
    f.gas_price_wei = chain_u256_from_u64(1500000001); /* 1 wei above 1.5 gwei */
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_GAS_PRICE_ABOVE_CAP);
    f.has_gas_cap = false;
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_NONE, "no cap, no limit");
}

Test(sched_delay, first_in_api_md_order_wins)
{
    sched_facts_t f = ok_facts();
    f.balance = chain_u256_from_u64(0);
    f.allowance = chain_u256_from_u64(0);
    f.gas_price_wei = chain_u256_from_u64(UINT64_MAX);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_INSUFFICIENT_BALANCE);
    f.chain_available = false;
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_CHAIN_UNAVAILABLE);
    f.inside_window = false;
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_OUTSIDE_TIME_WINDOW);
    f = ok_facts();
    f.balance = chain_u256_from_u64(120); /* enough for the amount, not the buffer */
    f.allowance = chain_u256_from_u64(0);
    f.gas_price_wei = chain_u256_from_u64(UINT64_MAX);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_BELOW_SAFETY_BUFFER);
    f.balance = chain_u256_from_u64(150);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_ALLOWANCE_TOO_LOW);
    f.allowance = chain_u256_from_u64(100);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_GAS_PRICE_ABOVE_CAP);
}

Test(sched_delay, huge_amounts)
{
    sched_facts_t f = ok_facts();
    /* amount + buffer wraps 2^256: no balance can cover it */
    memset(&f.balance, 0xff, sizeof(f.balance));
    memset(&f.allowance, 0xff, sizeof(f.allowance));
    f.amount = f.balance;
    f.safety_buffer = chain_u256_from_u64(1);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_BELOW_SAFETY_BUFFER);
    f.safety_buffer = chain_u256_from_u64(0);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_NONE);
    /* a price beyond 64 bits against a 1000000000-gwei cap */
    f.gas_price_wei = (chain_u256_t){{0, 1, 0, 0}};
    cr_assert_eq(chain_u256_parse_gwei(&f.gas_cap_wei, "1000000000", 10), CHAIN_OK);
    cr_assert_eq(sched_delay_reason(&f), SCHED_DELAY_GAS_PRICE_ABOVE_CAP);
}

Test(sched_delay, names)
{
    static const char *const names[] = {"outside_time_window",  "chain_unavailable",
                                        "insufficient_balance", "below_safety_buffer",
                                        "allowance_too_low",    "gas_price_above_cap"};
    cr_assert_null(sched_delay_name(SCHED_DELAY_NONE));
    for (int r = SCHED_DELAY_OUTSIDE_TIME_WINDOW; r <= SCHED_DELAY_GAS_PRICE_ABOVE_CAP; ++r) {
        cr_assert_str_eq(sched_delay_name((sched_delay_t)r), names[r - 1]);
        sched_delay_t back;
        cr_assert(sched_delay_parse(names[r - 1], &back) && back == (sched_delay_t)r);
    }
    sched_delay_t x;
    cr_assert(!sched_delay_parse("none", &x));
    cr_assert(!sched_delay_parse("", &x));
}
