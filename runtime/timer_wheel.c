#include "runtime/timer_wheel.h"
#include <assert.h>
#include <stddef.h>
#include <string.h>

#define SLOT_MASK ((uint64_t)RT_WHEEL_SLOTS - 1)

static inline unsigned level_shift(int level)
{
    return (unsigned)(level * RT_WHEEL_SLOT_BITS);
}

void rt_wheel_init(rt_timer_wheel_t *wheel, uint64_t now_ms)
{
    memset(wheel, 0, sizeof(*wheel));
    wheel->now_ms = now_ms;
    for (int l = 0; l != RT_WHEEL_LEVELS; ++l)
        for (int s = 0; s != RT_WHEEL_SLOTS; ++s)
            wheel->slots[l][s].next = wheel->slots[l][s].prev = &wheel->slots[l][s];
}

/* Files a timer by the highest bit in which its expiry (or now, if past) differs from now: timers
 * that differ only in the low 6 bits land on level 0, and so on. Its slot at that level is always
 * ahead of now's index there, so it is cascaded exactly when now reaches that slot. */
static void file_timer(rt_timer_wheel_t *wheel, rt_timer_t *timer)
{
    uint64_t at = timer->expires_ms;
    if (at < wheel->now_ms)
        at = wheel->now_ms;
    uint64_t diff = at ^ wheel->now_ms;
    int level = diff < RT_WHEEL_SLOTS ? 0 : (63 - __builtin_clzll(diff)) / RT_WHEEL_SLOT_BITS;
    assert(level < RT_WHEEL_LEVELS);
    unsigned slot = (unsigned)((at >> level_shift(level)) & SLOT_MASK);
    rt_timer_t *head = &wheel->slots[level][slot];
    timer->next = head;
    timer->prev = head->prev;
    head->prev->next = timer;
    head->prev = timer;
    wheel->occupied[level] |= UINT64_C(1) << slot;
}

static void unlink_timer(rt_timer_wheel_t *wheel, rt_timer_t *timer)
{
    timer->prev->next = timer->next;
    timer->next->prev = timer->prev;
    /* a slot that became empty clears its occupancy bit; then next == prev == the sentinel,
     * whose address tells the level and slot */
    if (timer->next == timer->prev) {
        rt_timer_t *head = timer->next;
        ptrdiff_t index = head - &wheel->slots[0][0];
        if (index >= 0 && index < RT_WHEEL_LEVELS * RT_WHEEL_SLOTS)
            wheel->occupied[index / RT_WHEEL_SLOTS] &= ~(UINT64_C(1) << (index % RT_WHEEL_SLOTS));
    }
    timer->next = timer->prev = 0;
}

void rt_wheel_arm(rt_timer_wheel_t *wheel, rt_timer_t *timer, uint64_t expires_ms)
{
    if (rt_timer_is_armed(timer))
        rt_wheel_cancel(wheel, timer);
    timer->expires_ms = expires_ms;
    file_timer(wheel, timer);
    ++wheel->armed;
}

void rt_wheel_cancel(rt_timer_wheel_t *wheel, rt_timer_t *timer)
{
    if (!rt_timer_is_armed(timer))
        return;
    unlink_timer(wheel, timer);
    assert(wheel->armed > 0);
    --wheel->armed;
}

uint64_t rt_wheel_next_event_ms(const rt_timer_wheel_t *wheel)
{
    uint64_t now = wheel->now_ms, best = UINT64_MAX;
    for (int l = 0; l != RT_WHEEL_LEVELS; ++l) {
        unsigned shift = level_shift(l);
        unsigned cur = (unsigned)((now >> shift) & SLOT_MASK);
        /* level 0 fires at its slot; higher levels cascade when now reaches the slot's start,
         * which for the current index has already happened unless now sits exactly on it */
        bool at_boundary = l == 0 || (now & ((UINT64_C(1) << shift) - 1)) == 0;
        uint64_t mask = wheel->occupied[l] & (~UINT64_C(0) << cur);
        if (!at_boundary)
            mask &= ~(UINT64_C(1) << cur);
        if (mask == 0)
            continue;
        uint64_t slot = (uint64_t)__builtin_ctzll(mask);
        unsigned block_bits = shift + RT_WHEEL_SLOT_BITS; /* the top level spans all 64 bits */
        uint64_t block = block_bits >= 64 ? 0 : now & ~((UINT64_C(1) << block_bits) - 1);
        uint64_t when = block | (slot << shift);
        if (when < best)
            best = when;
    }
    return best;
}

/* Re-files every timer of one slot relative to the current now (moving them down a level). */
static void cascade(rt_timer_wheel_t *wheel, int level, unsigned slot)
{
    rt_timer_t *head = &wheel->slots[level][slot];
    rt_timer_t *t = head->next;
    head->next = head->prev = head;
    wheel->occupied[level] &= ~(UINT64_C(1) << slot);
    while (t != head) {
        rt_timer_t *next = t->next;
        file_timer(wheel, t);
        t = next;
    }
}

/* Processes the single tick wheel->now_ms: cascades, then fires level 0's slot. */
static uint64_t process_tick(rt_timer_wheel_t *wheel, rt_timer_cb cb, void *cb_data)
{
    uint64_t now = wheel->now_ms, fired = 0;
    for (int l = RT_WHEEL_LEVELS - 1; l >= 1; --l) {
        unsigned shift = level_shift(l);
        if ((now & ((UINT64_C(1) << shift) - 1)) == 0)
            cascade(wheel, l, (unsigned)((now >> shift) & SLOT_MASK));
    }
    unsigned slot = (unsigned)(now & SLOT_MASK);
    rt_timer_t *head = &wheel->slots[0][slot];
    while (head->next != head) {
        rt_timer_t *t = head->next;
        unlink_timer(wheel, t);
        assert(t->expires_ms <= now);
        --wheel->armed;
        ++fired;
        cb(t, cb_data);
    }
    return fired;
}

uint64_t rt_wheel_advance(rt_timer_wheel_t *wheel, uint64_t now_ms, rt_timer_cb cb, void *cb_data)
{
    uint64_t fired = 0;
    while (wheel->now_ms <= now_ms) {
        uint64_t next = rt_wheel_next_event_ms(wheel);
        if (next > now_ms) {
            wheel->now_ms = now_ms + 1; /* nothing due in between: jump */
            break;
        }
        wheel->now_ms = next;
        fired += process_tick(wheel, cb, cb_data);
        ++wheel->now_ms;
    }
    return fired;
}
