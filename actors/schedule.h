/*
 * When an intent is due, and whether it may run: the pure schedule and constraint logic that the
 * API (upcoming executions, the intent object's nextExecution) and the engine share.
 *
 * No I/O and no clock: every function takes the time it reasons about as a parameter (unix
 * seconds, UTC), so the engine, the API and the tests get the same answers for the same inputs.
 *
 * Schedules (api.md, "Intents"). Period k (0-based, the registry's `count`) is due at:
 *   once           startAt, and there is no period 1;
 *   daily, weekly, custom   startAt + k * period (86400, 604800 or intervalSeconds);
 *   monthly        the day of month of startAt in the k-th month after it, clamped to that
 *                  month's last day, at startAt's time of day (Jan 31 -> Feb 28/29 -> Mar 31).
 * Each period is computed from startAt, never from the previous due date, so a clamped month
 * does not drift the ones after it. Everything is UTC: no daylight saving time exists here. The
 * engine never executes before lastExecution + minInterval (the registry refuses it), so the next
 * due time is max(scheduled time of period executionCount, lastExecution + minInterval). There
 * is none once executionCount reaches maxExecutions, or when that time is after endAt (the
 * registry's validUntil, inclusive).
 *
 * Calendar arithmetic is our own (sched_days_from_civil and back) rather than timegm/gmtime_r:
 * timegm is not ISO C and its -1 error return is also a valid time (1969-12-31T23:59:59Z), it
 * silently normalises a day that does not exist (Feb 30 becomes Mar 2, the very drift monthly
 * clamping must avoid), and struct tm's int fields make overflow checks awkward. The
 * proleptic Gregorian arithmetic is a few lines and is tested day by day over 400 years.
 *
 * Time windows (constraints.timeWindow): [start, end) in the window's local time, local = UTC +
 * utcOffset; end < start wraps past midnight (22:00-02:00). A window belongs to the day it opens
 * on: with days ["mon"], 22:00-02:00 covers Monday 22:00 to Tuesday 02:00 local time.
 */
#ifndef ACTORS_SCHEDULE_H
#define ACTORS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/eip712.h"
#include "chain/u256.h"

/** "No such time": an absent lastExecution, endAt, or due time. */
#define SCHED_NONE INT64_MIN
/** The last second the API can write (9999-12-31T23:59:59Z); no due time lies beyond it. */
#define SCHED_TIME_MAX INT64_C(253402300799)
/** Seconds per day. */
#define SCHED_DAY_S 86400
/** Smallest custom interval (api.md). */
#define SCHED_CUSTOM_MIN_S 60
/** Largest custom interval we accept: ten 365-day years (keeps k * interval far from overflow). */
#define SCHED_CUSTOM_MAX_S (INT64_C(3650) * SCHED_DAY_S)
/** Bit of each day in sched_window_t.days, Monday first (ISO 8601 order). */
#define SCHED_DAY_BIT(iso_index) (1u << (iso_index))
/** All seven days. */
#define SCHED_ALL_DAYS 0x7fu
/** Offsets accepted for a window: -12:00 to +14:00 (the zones in use), in minutes. */
#define SCHED_OFFSET_MIN_MIN (-12 * 60)
#define SCHED_OFFSET_MAX_MIN (14 * 60)

/** An intent's schedule; the frequency values are chain/'s, which derives minInterval from them. */
typedef struct st_sched_t {
    chain_intent_freq_t freq;
    uint64_t interval_s;     /* custom only: SCHED_CUSTOM_MIN_S .. SCHED_CUSTOM_MAX_S; else 0 */
    int64_t start_at;        /* unix seconds, 0 .. SCHED_TIME_MAX */
    int64_t end_at;          /* unix seconds, > start_at; SCHED_NONE for no end */
    uint32_t max_executions; /* 0: unlimited; a `once` schedule has exactly 1 */
    uint64_t min_interval_s; /* the signed term: the registry's minimum gap between executions */
} sched_t;

/** A daily time window in a fixed UTC offset, parsed from constraints.timeWindow. */
typedef struct st_sched_window_t {
    uint16_t start_min; /* minutes after local midnight, 0..1439 */
    uint16_t end_min;   /* likewise, != start_min; below start_min: wraps past midnight */
    int16_t offset_min; /* local time = UTC + offset */
    uint8_t days;       /* SCHED_DAY_BIT set for each day the window opens on; never 0 */
    bool days_given;    /* false: "days" was absent (every day), and stays absent when written */
} sched_window_t;

/** Why a due execution is held back, in api.md's order of precedence (first wins). */
typedef enum en_sched_delay_t {
    SCHED_DELAY_NONE = 0,
    SCHED_DELAY_OUTSIDE_TIME_WINDOW,
    SCHED_DELAY_CHAIN_UNAVAILABLE,
    SCHED_DELAY_INSUFFICIENT_BALANCE,
    SCHED_DELAY_BELOW_SAFETY_BUFFER,
    SCHED_DELAY_ALLOWANCE_TOO_LOW,
    SCHED_DELAY_GAS_PRICE_ABOVE_CAP,
} sched_delay_t;

/** What is known when an execution comes due; amounts in the token's base units. */
typedef struct st_sched_facts_t {
    bool inside_window;         /* true when the intent has no window */
    bool chain_available;       /* false: the fields below are unknown and not looked at */
    chain_u256_t balance;       /* the owner's token balance */
    chain_u256_t amount;        /* the intent's amount */
    chain_u256_t safety_buffer; /* to stay in the owner's account after the transfer */
    chain_u256_t allowance;     /* what the owner approved to the registry */
    chain_u256_t gas_price_wei; /* the price the executor would pay now */
    bool has_gas_cap;           /* constraints.maxGasPriceGwei was given */
    chain_u256_t gas_cap_wei;   /* that cap, in wei (chain_u256_parse_gwei: exact) */
} sched_facts_t;

/* ---- calendar (proleptic Gregorian, years 0 to 9999) ---- */

/** True for a leap year: divisible by 4, except centuries not divisible by 400. */
bool sched_is_leap(int64_t year);
/** Days of `month` (1..12) of `year`. */
unsigned sched_days_in_month(int64_t year, unsigned month);
/** Days from 1970-01-01 to year-month-day (negative before 1970). The date must exist. O(1). */
int64_t sched_days_from_civil(int64_t year, unsigned month, unsigned day);
/** The date `days` after 1970-01-01 (years 0..9999). O(1). */
void sched_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day);
/** Day of the week of `days` after 1970-01-01: 0 Monday .. 6 Sunday. */
unsigned sched_weekday(int64_t days);

/* ---- schedules ---- */

/**
 * Fills `s` with its minInterval derived the api.md way (chain_intent_min_interval) and, for
 * `once`, max_executions 1. `interval_s` is ignored unless `freq` is custom; `end_at` may be
 * SCHED_NONE. The arguments must already be valid (the validator's job); asserts otherwise.
 */
void sched_init(sched_t *s, chain_intent_freq_t freq, uint64_t interval_s, int64_t start_at,
                int64_t end_at, uint32_t max_executions);
/** The fixed period of `s` in seconds (86400, 604800, interval_s); 0 for once and monthly. */
uint64_t sched_period_s(const sched_t *s);
/**
 * The scheduled time of period `k`, ignoring executions, endAt and maxExecutions. Returns false
 * when there is no such period: k > 0 of a once schedule, or a time past SCHED_TIME_MAX. O(1).
 */
bool sched_period_at(const sched_t *s, uint32_t k, int64_t *at);
/**
 * The next due time of an intent that has run `execution_count` times, the last at
 * `last_execution` (SCHED_NONE: never). Returns SCHED_NONE when the schedule is over (count
 * reached maxExecutions, or the next time would be after endAt): the intent is completed. The
 * result may lie in the past (an overdue execution). O(1).
 */
int64_t sched_next_due(const sched_t *s, uint32_t execution_count, int64_t last_execution);
/**
 * The upcoming due times up to `until` (inclusive), at most `cap` of them, into `out`, assuming
 * each runs exactly when due (so later ones follow from earlier ones through minInterval).
 * The first may be overdue (before any "now" the caller has). Returns how many. O(cap).
 */
size_t sched_upcoming(const sched_t *s, uint32_t execution_count, int64_t last_execution,
                      int64_t until, int64_t *out, size_t cap);

/* ---- time windows ---- */

/** Parses "HH:MM" (exactly 5 characters, 00..23, 00..59) into minutes; false otherwise. */
bool sched_parse_hhmm(const char *s, size_t len, uint16_t *minutes);
/**
 * Parses a UTC offset "+HH:MM" / "-HH:MM" (exactly 6 characters) into minutes. Accepted:
 * -12:00 to +14:00 with minutes 00, 15, 30 or 45 (every zone in use: -09:30, +05:45, +12:45);
 * "-00:00" is refused (RFC 3339 gives it the meaning "offset unknown"), write "+00:00".
 */
bool sched_parse_offset(const char *s, size_t len, int16_t *minutes);
/** Parses a day name ("mon" .. "sun", lowercase) into its ISO index 0..6; false otherwise. */
bool sched_parse_day(const char *s, size_t len, unsigned *iso_index);
/** The name of ISO day `iso_index` (0..6): "mon" .. "sun". */
const char *sched_day_name(unsigned iso_index);
/** Writes `minutes` (0..1439) as "HH:MM" and a NUL. */
void sched_format_hhmm(uint16_t minutes, char out[6]);
/** Writes an offset in minutes as "+HH:MM" / "-HH:MM" and a NUL ("+00:00" for zero). */
void sched_format_offset(int16_t minutes, char out[7]);
/** True when `t` (unix seconds) is inside `w`: [start, end) on an allowed opening day. O(1). */
bool sched_window_contains(const sched_window_t *w, int64_t t);
/**
 * The first time at or after `t` that is inside `w`: `t` itself when inside, otherwise the next
 * opening. The retry time of an outside_time_window delay. Looks at no more than 8 local days of
 * openings (today's and the next seven), which always holds one since `days` is never empty.
 */
int64_t sched_window_next_open(const sched_window_t *w, int64_t t);

/* ---- delays ---- */

/**
 * The first reason, in api.md's order, that holds back an execution given `f`:
 * outside_time_window, chain_unavailable, insufficient_balance (balance < amount),
 * below_safety_buffer (balance < amount + safetyBuffer), allowance_too_low (allowance < amount),
 * gas_price_above_cap (price > cap; a price equal to the cap passes); SCHED_DELAY_NONE when
 * none holds.
 */
sched_delay_t sched_delay_reason(const sched_facts_t *f);
/** The API's name of a reason ("outside_time_window"...); NULL for SCHED_DELAY_NONE. */
const char *sched_delay_name(sched_delay_t reason);
/** The reason named by the NUL-terminated `name`; false for an unknown name. */
bool sched_delay_parse(const char *name, sched_delay_t *reason);

#endif
