/*
 * Hierarchical timing wheel with 1 ms ticks (single-threaded: one per worker).
 *
 * Eleven levels of 64 slots cover every 64-bit time, so no timer ever needs parking and
 * re-filing (the lower six levels already reach two years). Insert and cancel are O(1); advancing
 * costs O(timers fired + timers cascaded) plus O(levels) per non-empty slot visited, because
 * per-level occupancy bitmaps let the wheel jump straight over empty stretches of time. A timer
 * is an intrusive node that the caller owns (typically inside an actor's state), so a million
 * armed timers cost 32 bytes each and no allocation.
 */
#ifndef RUNTIME_TIMER_WHEEL_H
#define RUNTIME_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define RT_WHEEL_LEVELS 11
#define RT_WHEEL_SLOT_BITS 6
#define RT_WHEEL_SLOTS (1 << RT_WHEEL_SLOT_BITS)

typedef struct st_rt_timer_t rt_timer_t;
/** Called for each expired timer, already unlinked; it may re-arm it or arm others. */
typedef void (*rt_timer_cb)(rt_timer_t *timer, void *cb_data);

struct st_rt_timer_t {
    rt_timer_t *next, *prev; /* NULL prev: not armed */
    uint64_t expires_ms;
    uint64_t tag; /* the owner's: which of its timers this is */
};

typedef struct st_rt_timer_wheel_t {
    uint64_t now_ms; /* every tick before now_ms has been processed */
    uint64_t occupied[RT_WHEEL_LEVELS];
    rt_timer_t slots[RT_WHEEL_LEVELS][RT_WHEEL_SLOTS]; /* list heads (circular sentinels) */
    uint64_t armed;                                    /* number of armed timers */
} rt_timer_wheel_t;

/** Prepares an empty wheel whose clock starts at `now_ms`. */
void rt_wheel_init(rt_timer_wheel_t *wheel, uint64_t now_ms);
/** Zeroes a timer node so that rt_timer_is_armed is false. */
static inline void rt_timer_init(rt_timer_t *timer);
/** True between arm and fire/cancel. */
static inline bool rt_timer_is_armed(const rt_timer_t *timer);
/** Arms `timer` to fire at `expires_ms` (a past time fires on the next advance). Re-arms if armed.
 */
void rt_wheel_arm(rt_timer_wheel_t *wheel, rt_timer_t *timer, uint64_t expires_ms);
/** Disarms; a no-op for a timer that is not armed. O(1). */
void rt_wheel_cancel(rt_timer_wheel_t *wheel, rt_timer_t *timer);
/** Fires, in expiry order, every timer that expires at or before `now_ms`; returns how many. */
uint64_t rt_wheel_advance(rt_timer_wheel_t *wheel, uint64_t now_ms, rt_timer_cb cb, void *cb_data);
/** The earliest time at which the wheel has work, UINT64_MAX when empty. It may be earlier than
 * the next expiry (when a far slot must cascade) but never later. O(levels). */
uint64_t rt_wheel_next_event_ms(const rt_timer_wheel_t *wheel);

/* inline definitions */

static inline void rt_timer_init(rt_timer_t *timer)
{
    timer->next = timer->prev = 0;
    timer->expires_ms = 0;
}

static inline bool rt_timer_is_armed(const rt_timer_t *timer)
{
    return timer->prev != 0;
}

#endif
