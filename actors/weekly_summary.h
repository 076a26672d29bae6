/*
 * The weekly summary: every Monday at 09:00 UTC, one `weekly_summary` notification for each
 * user with activity in the 7 days before (payments executed and failed, delays, volume per
 * token), pushed to their sockets as `notification.created`.
 *
 * Once, even with several processes: each summary is inserted together with its row in
 * `weekly_summaries`, keyed by (user, week), in one statement; a process that comes second
 * inserts nothing. So every process may run every week, and a run may be repeated (after a
 * database outage, or a restart on Monday morning) without doubling anything.
 *
 * "Delayed" counts the user's `execution_delayed` notifications of the week; "executed" and
 * "failed" their executions created in the week with status confirmed and failed; volume sums
 * the confirmed ones per token, in token units when the token is in the registry.
 *
 * One actor on worker 0 does it, a page of users at a time (bounded memory), retrying a run that
 * met a database failure a bounded number of times.
 */
#ifndef ACTORS_WEEKLY_SUMMARY_H
#define ACTORS_WEEKLY_SUMMARY_H

#include <stddef.h>
#include <stdint.h>
#include "actors/events.h"
#include "actors/intent_model.h"
#include "runtime/worker.h"
#include "store/pg.h"

typedef struct st_weekly_summary_t weekly_summary_t;

/** Registers the statements; before any database pool is created. */
void weekly_summary_register_statements(void);
/** Starts the schedule (runtime running, `pg` open). `tokens` (the registry) must outlive it.
 * With `week_end_s` > 0 the week ending then is summarised at once (the test and operations
 * hook, WEEKLY_SUMMARY_AT); otherwise a process started within 24 h after a Monday 09:00 runs
 * that week at once (catching up). */
weekly_summary_t *weekly_summary_start(rt_runtime_t *rt, store_pg_t *pg, events_t *events,
                                       const intent_token_t *tokens, size_t num_tokens,
                                       int64_t week_end_s);
/** Runs the summary of the 7 days before `week_end_s` (unix seconds) now, besides the schedule.
 * Any thread. */
void weekly_summary_run(weekly_summary_t *ws, int64_t week_end_s);
/** How many summaries this process has created (for tests and logs). */
uint64_t weekly_summary_created(const weekly_summary_t *ws);
/** Stops the actor; while the runtime runs, before the database pool is closed. */
void weekly_summary_stop(weekly_summary_t *ws);
/** Frees, after the runtime has stopped. NULL is ignored. */
void weekly_summary_free(weekly_summary_t *ws);
/** The next Monday 09:00 UTC strictly after `now_s`. Pure. */
int64_t weekly_summary_next(int64_t now_s);

#endif
