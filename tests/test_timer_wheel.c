/* The timer wheel: expiry order, cancellation, far timers, a million timers, and a randomized
 * comparison against a brute-force reference. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include "runtime/timer_wheel.h"

typedef struct {
    uint64_t *fired_at;  /* expiry of each firing, in firing order */
    uint64_t *fired_now; /* the wheel time passed to advance when it fired */
    size_t count, cap;
    uint64_t advance_to;
} record_t;

static void record(rt_timer_t *t, void *data)
{
    record_t *r = data;
    cr_assert_lt(r->count, r->cap);
    r->fired_at[r->count] = t->expires_ms;
    r->fired_now[r->count] = r->advance_to;
    ++r->count;
}

static record_t *record_new(size_t cap)
{
    record_t *r = calloc(1, sizeof(*r));
    r->fired_at = calloc(cap, sizeof(uint64_t));
    r->fired_now = calloc(cap, sizeof(uint64_t));
    r->cap = cap;
    return r;
}

static void record_free(record_t *r)
{
    free(r->fired_at);
    free(r->fired_now);
    free(r);
}

static uint64_t advance(rt_timer_wheel_t *w, record_t *r, uint64_t now)
{
    r->advance_to = now;
    return rt_wheel_advance(w, now, record, r);
}

Test(timer_wheel, fires_in_expiry_order_and_not_early)
{
    static rt_timer_wheel_t w;
    rt_wheel_init(&w, 1000);
    uint64_t delays[] = {5, 1, 70, 64, 63, 4096, 4097, 300000, 0, 65};
    rt_timer_t timers[10];
    for (int i = 0; i != 10; ++i) {
        rt_timer_init(&timers[i]);
        rt_wheel_arm(&w, &timers[i], 1000 + delays[i]);
    }
    record_t *r = record_new(16);
    for (uint64_t now = 1000; now <= 1000 + 300000; now += 7)
        advance(&w, r, now);
    advance(&w, r, 1000 + 300000);
    cr_assert_eq(r->count, 10);
    for (size_t i = 0; i != r->count; ++i) {
        cr_assert_geq(r->fired_now[i], r->fired_at[i], "fired early");
        cr_assert_lt(r->fired_now[i] - r->fired_at[i], 7, "fired late");
        if (i > 0)
            cr_assert_leq(r->fired_at[i - 1], r->fired_at[i], "out of order");
    }
    cr_assert_eq(w.armed, 0);
    record_free(r);
}

Test(timer_wheel, cancel_prevents_firing_and_rearm_moves)
{
    static rt_timer_wheel_t w;
    rt_wheel_init(&w, 0);
    rt_timer_t a, b, c;
    rt_timer_init(&a);
    rt_timer_init(&b);
    rt_timer_init(&c);
    rt_wheel_arm(&w, &a, 10);
    rt_wheel_arm(&w, &b, 5000);
    rt_wheel_arm(&w, &c, 20);
    rt_wheel_cancel(&w, &a);
    rt_wheel_cancel(&w, &a); /* twice is harmless */
    cr_assert_not(rt_timer_is_armed(&a));
    rt_wheel_arm(&w, &b, 30); /* re-arm moves it earlier */
    record_t *r = record_new(4);
    cr_assert_eq(advance(&w, r, 100), 2);
    cr_assert_eq(r->fired_at[0], 20);
    cr_assert_eq(r->fired_at[1], 30);
    cr_assert_eq(rt_wheel_next_event_ms(&w), UINT64_MAX);
    record_free(r);
}

Test(timer_wheel, past_and_very_far_timers)
{
    static rt_timer_wheel_t w;
    rt_wheel_init(&w, 1000000);
    rt_timer_t past, far;
    rt_timer_init(&past);
    rt_timer_init(&far);
    rt_wheel_arm(&w, &past, 5);                            /* already due */
    rt_wheel_arm(&w, &far, 1000000 + (UINT64_C(1) << 40)); /* beyond the wheel's span */
    record_t *r = record_new(4);
    cr_assert_eq(advance(&w, r, 1000000), 1);
    cr_assert_eq(r->fired_at[0], 5);
    cr_assert_eq(advance(&w, r, 1000000 + (UINT64_C(1) << 40) - 1), 0, "far timer fired early");
    cr_assert_eq(advance(&w, r, 1000000 + (UINT64_C(1) << 40)), 1);
    record_free(r);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(timer_wheel, a_million_timers_fire_once_each_in_order, .timeout = 60)
{
    enum { N = 1000000 };
    static rt_timer_wheel_t w;
    rt_wheel_init(&w, 0);
    rt_timer_t *timers = calloc(N, sizeof(rt_timer_t));
    uint64_t *expected = calloc(N, sizeof(uint64_t));
    srand(42);
    for (int i = 0; i != N; ++i) {
        uint64_t at = (uint64_t)rand() % (3600 * 1000); /* within an hour */
        expected[i] = at;
        rt_wheel_arm(&w, &timers[i], at);
    }
    cr_assert_eq(w.armed, N);
    qsort(expected, N, sizeof(uint64_t), cmp_u64);
    record_t *r = record_new(N);
    for (uint64_t now = 0; now <= 3600 * 1000; now += 997)
        advance(&w, r, now);
    advance(&w, r, 3600 * 1000);
    cr_assert_eq(r->count, N);
    for (size_t i = 0; i != N; ++i)
        cr_assert_eq(r->fired_at[i], expected[i], "firing %zu: %lu != %lu", i,
                     (unsigned long)r->fired_at[i], (unsigned long)expected[i]);
    record_free(r);
    free(timers);
    free(expected);
}

/* Random arms, cancels and advances, checked against a brute-force list of what is armed. */
Test(timer_wheel, randomized_against_reference, .timeout = 60)
{
    enum { T = 512, STEPS = 200000 };
    static rt_timer_wheel_t w;
    static rt_timer_t timers[T];
    static bool armed[T];
    uint64_t now = 123456789;
    rt_wheel_init(&w, now);
    record_t *r = record_new(STEPS);
    srand(7);
    for (int step = 0; step != STEPS; ++step) {
        int op = rand() % 10, i = rand() % T;
        if (op < 5) {
            uint64_t span = (uint64_t)1 << (rand() % 30);
            /* never in the past here (past arms are covered above), so expiry order is exact */
            rt_wheel_arm(&w, &timers[i], w.now_ms + (uint64_t)rand() % span);
            armed[i] = true;
        } else if (op < 7) {
            rt_wheel_cancel(&w, &timers[i]);
            armed[i] = false;
        } else {
            /* time moves forward: the wheel has processed every tick up to `now` already */
            uint64_t to = now + 1 + (uint64_t)rand() % (op == 9 ? 5000000 : 100);
            size_t before = r->count;
            advance(&w, r, to);
            /* reference: exactly the armed timers with expiry <= to fired, in order */
            size_t due = 0;
            for (int k = 0; k != T; ++k) {
                if (armed[k] && timers[k].expires_ms <= to) {
                    cr_assert_not(rt_timer_is_armed(&timers[k]), "timer %d did not fire", k);
                    armed[k] = false;
                    ++due;
                } else if (armed[k]) {
                    cr_assert(rt_timer_is_armed(&timers[k]), "timer %d fired early", k);
                }
            }
            cr_assert_eq(r->count - before, due);
            for (size_t k = before + 1; k < r->count; ++k)
                cr_assert_leq(r->fired_at[k - 1], r->fired_at[k]);
            now = to;
        }
        /* a timer armed at or before a processed tick is due at the next tick, w.now_ms */
        uint64_t next = rt_wheel_next_event_ms(&w);
        for (int k = 0; k != T; ++k)
            if (armed[k])
                cr_assert_leq(next,
                              timers[k].expires_ms < w.now_ms ? w.now_ms : timers[k].expires_ms,
                              "next event later than an armed timer");
    }
    record_free(r);
}
