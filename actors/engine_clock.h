/*
 * The engine's clock: CLOCK_REALTIME plus an offset that only the test mode can move.
 *
 * Tests must let months of schedules pass in seconds without sleeping. So the engine never reads
 * the wall clock itself; it asks engine_clock_now_ms, which adds an offset that starts at 0 and
 * can only grow, and only when the process was started with ENGINE_TEST_CLOCK=1. The test moves
 * anvil's clock by the same amount (evm_increaseTime), so the registry's block times and the
 * engine's due times stay in step. A production process has no way to move it: the endpoint is
 * not routed and engine_clock_advance refuses. (A benchmark sets a sub-second offset, possibly
 * negative, once before its engine starts: engine__clock_set_offset_ms, also test mode only.)
 *
 * The offset is one atomic: readers on any worker see either the old or the new value, and a
 * move is announced to a listener (the engine), which re-arms its intents' timers.
 */
#ifndef ACTORS_ENGINE_CLOCK_H
#define ACTORS_ENGINE_CLOCK_H

#include <h2o.h>
#include <stdbool.h>
#include <stdint.h>

/** Largest single move the test endpoint accepts: ten years, in seconds. */
#define ENGINE_CLOCK_MAX_ADVANCE_S (INT64_C(3650) * 86400)

/** Called after the clock moved, on the thread that moved it; must not block. */
typedef void (*engine_clock_listener_fn)(void *ctx);

/** Allows (or forbids) moving the clock; at start-up, before any worker runs. */
void engine_clock_set_test_mode(bool enabled);
/** True when the clock may be moved (ENGINE_TEST_CLOCK=1). */
bool engine_clock_test_mode(void);
/** Sets who hears of moves (one listener; NULL: nobody). Before the workers run, or with care:
 * the pair is read without a lock. */
void engine_clock_set_listener(engine_clock_listener_fn fn, void *ctx);
/** Engine time in unix milliseconds. Any thread; never blocks. */
int64_t engine_clock_now_ms(void);
/** Engine time in unix microseconds (for lateness figures). */
int64_t engine_clock_now_us(void);
/** Engine time in unix seconds (rounded down). */
int64_t engine_clock_now_s(void);
/** The offset from CLOCK_REALTIME, in milliseconds (0 outside tests). */
int64_t engine_clock_offset_ms(void);
/** Moves the clock forward by `seconds` (1 .. ENGINE_CLOCK_MAX_ADVANCE_S). False (nothing moved)
 * outside the test mode or for a value out of range. Tells the listener. */
bool engine_clock_advance(int64_t seconds);
/**
 * Benchmarks: sets the offset to `ms` (either sign, less than a day away from 0), so that
 * a whole-second due time falls at a chosen millisecond of the wall clock (bench/executor_bench.c
 * puts it at a point of anvil's block interval, behind the wall clock so that the chain's time
 * has reached it). False (nothing moved) outside the test mode or out of range. Tells the
 * listener.
 */
bool engine__clock_set_offset_ms(int64_t ms);
/**
 * The test endpoint, for net_http_route at "/internal/test/clock": POST {"advanceSeconds": N}
 * answers 200 {"now": unix seconds, "offsetSeconds": total}; GET answers the same without moving.
 * Only loopback peers are served (others get 404, as if it did not exist); a bad body is a 400
 * problem naming the field.
 */
int engine_clock_handle(h2o_req_t *req, void *data);

#endif
