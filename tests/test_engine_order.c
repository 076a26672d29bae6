/*
 * The intent actor decides from the newest state it has read, whatever order the database's
 * connections answer in (actors/intent_actor.c, "sequence number"). The actor runs on a real
 * runtime against a real database (engine_chain.h's, with the schema) and a job sink instead of
 * an executor; a wrapper around its behaviour holds one database reply back and hands it over
 * later, which forces the interleavings end to end tests cannot:
 *
 * - a completion's reply arriving after the follower's reopening was read and planned (a reorg
 *   took the last payment back): the actor must stay and pay the reopened period;
 * - a pause's row read answered after the resume's: the actor must not park an active intent;
 * - the follower's reopening committed before the completion's statement runs: the completion
 *   must change nothing (engine_complete's count guard), and the reopened period is paid;
 * - a final failure's write that finds the intent paused (changing nothing), answered after the
 *   resume was read: the actor must not leave the resumed intent.
 *
 * The job sink refuses the first hand-over after the newest read (the executor's queue full:
 * retried a second later), so that a wrong decision taken meanwhile shows as a period never
 * handed over.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "actors/engine_internal.h"
#include "support/engine_chain.h"
#include "support/harness.h"

#define MSG_RELEASE (RT_MSG_USER + 0x6f0) /* the wrapper: hand the held reply over now */
#define WAIT_MS 15000                     /* bounded waits (margin for ASan) */

/* What the wrapper and the sink saw; under `mutex`, signalled on `cond`. */
typedef struct st_watch_t {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool hold_next; /* hold the next database reply back */
    rt_msg_t *held;
    bool stopped;        /* the actor left */
    unsigned ok_replies; /* database replies handed to the actor */
    unsigned refuse;
    unsigned refused, jobs;
    uint32_t last_period;
} watch_t;

static watch_t w = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct {
    echain_t chain;
    net_http_client_t *http;
    harness_t h;
    store_pg_t *pg;
    engine_t *engine;
    intent_token_t token;
    rt_actor_t *actor;
    executor_job_t job;
} fx;

static bool sink(void *ctx, const executor_job_t *job)
{
    (void)ctx;
    pthread_mutex_lock(&w.mutex);
    bool take = w.refuse == 0;
    if (take) {
        ++w.jobs;
        w.last_period = job->period;
    } else {
        --w.refuse;
        ++w.refused;
    }
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.mutex);
    return take;
}

/* The intent actor's behaviour, with one database reply held back on demand. */
static void wrapped(rt_actor_t *self, rt_msg_t *msg)
{
    pthread_mutex_lock(&w.mutex);
    bool hold = msg->type == STORE_PG_MSG_RESULT && w.hold_next;
    if (hold) {
        w.hold_next = false;
        w.held = msg;
        rt_msg_keep(msg);
    }
    if (msg->type == STORE_PG_MSG_RESULT && !hold &&
        ((store_pg_result_t *)rt_msg_payload(msg))->status == STORE_PG_OK)
        ++w.ok_replies;
    rt_msg_t *release = msg->type == MSG_RELEASE ? w.held : NULL;
    if (msg->type == MSG_RELEASE)
        w.held = NULL;
    if (msg->type == RT_MSG_STOP)
        w.stopped = true;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.mutex);
    if (release != NULL) {
        engine__intent_behaviour(self, release);
        rt_msg_free(release);
    } else if (!hold && msg->type != MSG_RELEASE) {
        engine__intent_behaviour(self, msg);
    }
}

/* Waits until `done()` holds (under the mutex) or WAIT_MS passes; returns whether it did. */
static bool wait_for(bool (*done)(void))
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&w.mutex);
    int r = 0;
    while (!done() && r == 0)
        r = pthread_cond_timedwait(&w.cond, &w.mutex, &until);
    bool ok = done();
    pthread_mutex_unlock(&w.mutex);
    return ok;
}

static unsigned want_jobs, want_refused;
static bool jobs_reached(void)
{
    return w.jobs >= want_jobs || w.stopped;
}
static bool refused_reached(void)
{
    return w.refused >= want_refused || w.stopped;
}
static bool replied(void)
{
    return w.ok_replies >= 1 || w.stopped;
}
static bool held(void)
{
    return w.held != NULL || w.stopped;
}

static void send_to_actor(uint32_t type, uint64_t corr)
{
    rt_msg_t *msg = rt_msg_new(type, 0);
    msg->corr = corr;
    rt_actor_send(fx.actor, msg);
}

/* The executor's outcome of our job for `period`: confirmed (`error` NULL) or failed. */
static void send_outcome(uint32_t period, const char *error)
{
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_OUTCOME, sizeof(executor_outcome_t));
    executor_outcome_t *o = rt_msg_payload(msg);
    memset(o, 0, sizeof(*o));
    snprintf(o->intent_id, sizeof(o->intent_id), "%s", fx.job.intent_id);
    snprintf(o->user_id, sizeof(o->user_id), "%s", fx.job.user_id);
    o->period = period;
    o->status = error == NULL ? EXECUTOR_CONFIRMED : EXECUTOR_FAILED;
    if (error != NULL)
        snprintf(o->error, sizeof(o->error), "%s", error);
    o->block_time_s = (int64_t)time(NULL);
    o->by_us = true;
    rt_actor_send(fx.actor, msg);
}

static void send_confirmed(uint32_t period)
{
    send_outcome(period, NULL);
}

static void hold_next_reply(void)
{
    pthread_mutex_lock(&w.mutex);
    w.hold_next = true;
    pthread_mutex_unlock(&w.mutex);
}

static void refuse_next_job(void)
{
    pthread_mutex_lock(&w.mutex);
    w.refuse = 1;
    pthread_mutex_unlock(&w.mutex);
}

static unsigned want_replies;
static bool replies_reached(void)
{
    return w.ok_replies >= want_replies || w.stopped;
}

/* Sends the API hook's reload (a committed change) and waits until the actor has its reply. */
static void change_read(void)
{
    pthread_mutex_lock(&w.mutex);
    want_replies = w.ok_replies + 1;
    pthread_mutex_unlock(&w.mutex);
    send_to_actor(ENGINE_MSG_RELOAD, ENGINE_RELOAD_CHANGED);
    cr_assert(wait_for(replies_reached) && !w.stopped, "the change was not read");
}

static void db(const char *fmt)
{
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, fx.job.intent_id);
    cr_assert(echain_db_exec(&fx.chain, sql), "%s", sql);
}

static void db_expect(const char *fmt, const char *want)
{
    char sql[512], got[128];
    snprintf(sql, sizeof(sql), fmt, fx.job.intent_id);
    cr_assert(echain_db_value(&fx.chain, sql, got, sizeof(got)), "%s", sql);
    cr_assert_str_eq(got, want, "%s", sql);
}

/* The chain (for the schema and the registry's address), the runtime, the engine with the sink,
 * one intent (maxExecutions `max`) and its actor, which has read its row once: with `due`, it
 * handed period 0 over. */
static void begin(uint32_t max, bool due)
{
    cr_assert(echain_start(&fx.chain, NULL), "anvil, the contracts or the database did not start");
    engine_register_statements();
    fx.http = net_http_client_create(NULL);
    harness_start(&fx.h, fx.http, 1, 2000);
    fx.pg = store_pg_create(fx.h.rt, &(store_pg_config_t){.url = fx.chain.db_url});
    fx.token = (intent_token_t){.address = fx.chain.usdc, .decimals = 6, .symbol = "USDC"};
    fx.engine = engine_create(&(engine_config_t){.rt = fx.h.rt,
                                                 .pg = fx.pg,
                                                 .tokens = &fx.token,
                                                 .num_tokens = 1,
                                                 .chain_id = 31337,
                                                 .registry = fx.chain.registry,
                                                 .submit = sink,
                                                 .facts_always_hold = true});
    cr_assert_not_null(fx.engine);
    cr_assert(echain_job(&fx.chain, 1, 9, 1000, max, 0, 0x4444, &fx.job));
    /* its nextExecution as the plan computes it (period 0: startAt), so that the plan writes
     * nothing and the only replies are the ones each step expects */
    if (due)
        db("UPDATE intents SET start_at = date_trunc('second', now()), next_execution ="
           " date_trunc('second', now()) WHERE id = '%s'");
    else
        db("UPDATE intents SET start_at = date_trunc('second', now()) + interval '1 day',"
           " next_execution = date_trunc('second', now()) + interval '1 day' WHERE id = '%s'");
    fx.actor = rt_actor_spawn(fx.h.rt, 0, wrapped, engine__intent_state_size);
    engine__intent_init(fx.actor, fx.engine, fx.job.intent_id);
    /* its first read, retried by the actor until the pool has connected */
    send_to_actor(ENGINE_MSG_RELOAD, 0);
    if (due) {
        want_jobs = 1;
        cr_assert(wait_for(jobs_reached) && !w.stopped, "period 0 was not handed over");
        cr_assert_eq(w.last_period, 0);
    } else {
        cr_assert(wait_for(replied) && !w.stopped, "the row was not read");
    }
}

static void end(void)
{
    if (fx.engine != NULL)
        engine_stop(fx.engine);
    if (fx.actor != NULL) {
        rt_actor_send_stop(fx.actor);
        rt_actor_release(fx.actor);
    }
    if (fx.pg != NULL)
        store_pg_free(fx.pg);
    if (fx.h.rt != NULL)
        harness_stop(&fx.h);
    engine_free(fx.engine);
    if (fx.http != NULL)
        net_http_client_free(fx.http);
    if (w.held != NULL)
        rt_msg_free(w.held);
    echain_stop(&fx.chain);
}

/* The follower's reopening message, read and planned (its first hand-over refused, retried a
 * second later) while the completion's reply is held back; then that reply: the actor must stay
 * and hand the reopened period 0 over again. */
static void reopen_then_release_completion(void)
{
    refuse_next_job();
    send_to_actor(ENGINE_MSG_RELOAD, ENGINE_RELOAD_ANNOUNCE);
    want_refused = 1;
    cr_assert(wait_for(refused_reached) && !w.stopped, "the reopened intent was not planned");
    send_to_actor(MSG_RELEASE, 0);
    want_jobs = 2;
    bool paid = wait_for(jobs_reached);
    cr_assert(!w.stopped, "the actor left a reopened, active intent: its period is never paid");
    cr_assert(paid, "the reopened period was not handed over again");
    cr_assert_eq(w.last_period, 0);
}

/* The last period paid (maxExecutions 1): the actor writes the completion; a reorg takes the
 * payment back before its reply arrives, the follower reopens the intent, and the actor reads
 * and plans it. The completion's reply, arriving only then, must not make the actor leave: the
 * reopened period is handed over. */
Test(engine_order, a_completion_overtaken_by_a_reopening_leaves_the_period_scheduled,
     .timeout = 120, .fini = end)
{
    begin(1, true);
    /* the executor's confirmation: the count, and the completion by maxExecutions */
    db("UPDATE intents SET execution_count = 1, last_execution = now(), status = 'completed'"
       " WHERE id = '%s'");
    hold_next_reply(); /* the completion's reply */
    send_confirmed(0);
    cr_assert(wait_for(held) && !w.stopped, "no completion written");
    db_expect("SELECT status || ' ' || (next_execution IS NULL) FROM intents WHERE id = '%s'",
              "completed true");

    /* the follower's reopening (chain_follower.c's REOPEN_CTES), and its message */
    db("UPDATE intents SET execution_count = 0, last_execution = NULL, status = 'active',"
       " next_execution = NULL WHERE id = '%s'");
    reopen_then_release_completion();
    db_expect("SELECT status FROM intents WHERE id = '%s'", "active");
}

/* A pause then a resume (the API's hook after each commit): the pause's row read is answered
 * after the resume's. The actor must follow the resume (the newest read), not park the active
 * intent. */
Test(engine_order, a_pause_read_answered_after_the_resume_read_is_ignored, .timeout = 120,
     .fini = end)
{
    begin(0, false);
    db("UPDATE intents SET status = 'paused' WHERE id = '%s'");
    hold_next_reply(); /* the pause's read */
    send_to_actor(ENGINE_MSG_RELOAD, ENGINE_RELOAD_CHANGED);
    cr_assert(wait_for(held) && !w.stopped, "the pause was not read");

    /* resumed, and due now */
    db("UPDATE intents SET status = 'active', start_at = now() - interval '1 minute'"
       " WHERE id = '%s'");
    refuse_next_job();
    send_to_actor(ENGINE_MSG_RELOAD, ENGINE_RELOAD_CHANGED);
    want_refused = 1;
    cr_assert(wait_for(refused_reached) && !w.stopped, "the resumed intent was not planned");

    send_to_actor(MSG_RELEASE, 0); /* the pause's read, late */
    want_jobs = 1;
    cr_assert(wait_for(jobs_reached) && !w.stopped && w.jobs == 1,
              "the resumed intent was parked by the older pause read: never handed over");
    cr_assert_eq(w.last_period, 0);
}

/* The last period paid (maxExecutions 1); before the actor's completion statement runs, a reorg
 * takes the payment back and the follower's reopening commits (the other order of the first
 * test). The completion must find the count gone back and change nothing (engine_complete runs
 * only at the count the actor decided on): completing the reopened row would leave its period
 * unpaid for good, since the follower's message then reads a completed intent. */
Test(engine_order, a_reopening_committed_before_the_completion_runs_is_not_completed,
     .timeout = 120, .fini = end)
{
    begin(1, true);
    /* the executor's confirmation, then the follower's reopening: both committed first */
    db("UPDATE intents SET execution_count = 1, last_execution = now(), status = 'completed'"
       " WHERE id = '%s'");
    db("UPDATE intents SET execution_count = 0, last_execution = NULL, status = 'active',"
       " next_execution = NULL WHERE id = '%s'");
    hold_next_reply(); /* the completion's */
    send_confirmed(0);
    cr_assert(wait_for(held) && !w.stopped, "no completion written");
    db_expect("SELECT status || ' ' || execution_count FROM intents WHERE id = '%s'", "active 0");

    /* the follower's message, read and planned before the completion's reply arrives */
    reopen_then_release_completion();
    db_expect("SELECT status || ' ' || execution_count FROM intents WHERE id = '%s'", "active 0");
}

/* Period 0 handed over; the owner pauses, and that commits before the actor's failure write (a
 * final refusal of the registry) runs, which then changes nothing. The pause's and the resume's
 * reads are answered before the failure's reply. The actor must follow the resume: leaving on
 * the failure's reply would leave an active intent that nothing runs until a restart. */
Test(engine_order, a_failure_overtaken_by_a_pause_and_a_resume_leaves_the_intent_scheduled,
     .timeout = 120, .fini = end)
{
    begin(0, true);
    db("UPDATE intents SET status = 'paused' WHERE id = '%s'");
    hold_next_reply(); /* the failure's */
    send_outcome(0, "bad signature");
    cr_assert(wait_for(held) && !w.stopped, "no failure written");
    db_expect("SELECT status FROM intents WHERE id = '%s'", "paused");

    change_read(); /* the pause's hook */
    db("UPDATE intents SET status = 'active' WHERE id = '%s'");
    refuse_next_job();
    send_to_actor(ENGINE_MSG_RELOAD, ENGINE_RELOAD_CHANGED); /* the resume's hook */
    want_refused = 1;
    cr_assert(wait_for(refused_reached) && !w.stopped, "the resumed intent was not planned");

    send_to_actor(MSG_RELEASE, 0); /* the failure's reply, late: it changed nothing */
    want_jobs = 2;
    bool paid = wait_for(jobs_reached);
    cr_assert(!w.stopped, "the actor left a resumed, active intent on a stale failure");
    cr_assert(paid, "the resumed intent's period was not handed over again");
    cr_assert_eq(w.last_period, 0);
    db_expect("SELECT status FROM intents WHERE id = '%s'", "active");
}
