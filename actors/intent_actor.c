/*
 * The actor of one live intent. It sleeps until the intent's next due time (a timer on its
 * worker's wheel), checks the constraints in api.md's order, hands the execution to the
 * executor, and waits for the outcome; a constraint that fails makes the intent `delayed` with a
 * retry time (the window's next opening, or exponential backoff with jitter).
 *
 * The next due time is always computed from (startAt, frequency, executionCount, lastExecution)
 * by sched_next_due, never remembered, so a restart or a reload computes the same one. An
 * execution in flight (a signed or broadcast row for the period, or a job handed over and not
 * answered yet) is never handed over again for the same period until its outcome, or a watchdog
 * that finds no live row for it; the executor's unique index on (intent, period) makes even a
 * second hand-over harmless.
 *
 * The registry's count of an intent loaded at start-up is read once (at its first due time, in
 * the batch of its balance and allowance reads), and again after a "wrong count": when the chain
 * has more executions than the database (restored from an older backup, or a log cursor that
 * started late), nothing is signed (the registry would refuse it); the chain follower adopts the
 * missing Executed logs, and their outcomes bring the count up. An intent created or activated
 * while the process runs needs no such read: the follower sees every execution of it.
 *
 * A reorg that takes back a payment the intent counted (the follower gives the period back,
 * actors/chain_follower.h) makes the actor read its row again and announce it; an intent that
 * payment had completed is active again and gets an actor again, which pays the period unless
 * the payment's transaction is in flight again.
 *
 * Every reply carries the generation (`gen`) it was asked in; a reload, an outcome or a clock
 * move bumps it, so an answer to a question that no longer matters is ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "actors/chain_follower.h"
#include "actors/engine_clock.h"
#include "actors/engine_internal.h"
#include "actors/notification_model.h"
#include "chain/rfc3339.h"
#include "runtime/log.h"

#define BACKOFF_MIN_S 15
#define BACKOFF_MAX_S 3600
#define SUBMIT_RETRY_MS 1000 /* the executor's queue was full */
#define DB_RETRY_MS 1000     /* the database's queue was full */
#define WATCHDOG_MS 30000    /* no outcome this long after a hand-over: look at the database */
#define WRONG_COUNT_RELOAD_MS 3000 /* a count the database lags: re-read, doubling to 96 s */

/* what a database reply answers (the low byte of corr; the generation above it); Q_EV_*: the
 * row read for an event of that type */
enum {
    Q_GET = 1,
    Q_WATCH,
    Q_NEXT,
    Q_DELAY,
    Q_COMPLETE,
    Q_FAIL,
    Q_LOW,
    Q_REOPEN,
    Q_CHANGE, /* the row after the API's change (ENGINE_RELOAD_CHANGED) */
    Q_EV_CREATED,
    Q_EV_UPDATED,
    Q_EV_DELAYED,
};
/* timer tags */
enum { T_DUE = 1, T_WATCHDOG, T_SUBMIT, T_RELOAD, T_REOPEN, T_CHANGE };
/* Events waiting for their row read, one read at a time: the database's connections may answer
 * out of order, and each event must show the row after the change it announces. More than this
 * waiting (a burst of changes): an event of the type last queued is merged into it (its read
 * comes later, so it shows the newer row). */
#define EVENT_QUEUE_MAX 16

typedef enum en_phase_t {
    PHASE_IDLE,      /* paused, pending a signature, or no row yet */
    PHASE_WAITING,   /* a timer to the due (or retry) time */
    PHASE_CHECKING,  /* the chain facts are being read */
    PHASE_SUBMITTED, /* handed to the executor: waiting for the outcome */
} phase_t;

typedef struct st_intent_state_t {
    engine_t *engine;
    engine_intent_t in;
    bool have_row, leaving;
    bool leave_after_event; /* completed or failed: leave once its event is published */
    phase_t phase;
    uint32_t gen;
    int64_t retry_at;     /* engine seconds of a delay's retry; SCHED_NONE: none */
    int64_t check_at;     /* the due (or retry) time being acted on, engine seconds */
    uint32_t delays;      /* delays in a row (backoff exponent) */
    uint32_t failures;    /* failed executions of the current period in a row */
    bool submitted;       /* a job for `submitted_period` is with the executor */
    bool count_agreed;    /* the registry's count was read and not ahead of ours */
    uint32_t count_waits; /* looks at a registry count ahead of ours, in a row */
    uint32_t submitted_period;
    bool change_rides_next; /* a change's announcement is the Q_NEXT write's event */
    bool event_reading;     /* an event's row read is in flight (event_queue[event_head]) */
    uint8_t event_head, event_count;
    uint8_t event_queue[EVENT_QUEUE_MAX]; /* Q_EV_* kinds, event_head first */
    rt_actor_timer_t timer;
} intent_state_t;

const size_t engine__intent_state_size = sizeof(intent_state_t);

static void plan(rt_actor_t *self);
static void reload(rt_actor_t *self, int kind);

void engine__intent_init(rt_actor_t *self, engine_t *e, const char *id)
{
    intent_state_t *st = rt_actor_state(self);
    st->engine = e;
    snprintf(st->in.id, sizeof(st->in.id), "%s", id);
    st->retry_at = SCHED_NONE;
    st->count_agreed = true; /* until the start-up loader says otherwise */
}

static uint64_t corr_of(const intent_state_t *st, int kind)
{
    return ((uint64_t)st->gen << 8) | (uint64_t)kind;
}

static void query(rt_actor_t *self, int kind, int statement, int nparams, const char *const *p)
{
    intent_state_t *st = rt_actor_state(self);
    if (!store_pg_query(st->engine->config.pg, self, corr_of(st, kind), statement, nparams, p))
        rt_log_warn("engine", "intent %s: database busy, statement %d not sent", st->in.id,
                    statement);
}

static void leave(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->leaving)
        return;
    st->leaving = true;
    rt_actor_timer_cancel(self, &st->timer);
    engine__forget(st->engine, st->in.id, self);
    rt_actor_stop(self);
}

static int64_t now_ms(void)
{
    return engine_clock_now_ms();
}

/* Exponential backoff with jitter: 15 s, 30 s, ... up to an hour, each drawn in [d/2, d] so
 * that intents delayed together do not all come back together. */
static int64_t backoff_s(uint32_t n)
{
    int64_t d = BACKOFF_MIN_S;
    for (uint32_t i = 1; i < n && d < BACKOFF_MAX_S; ++i)
        d *= 2;
    if (d > BACKOFF_MAX_S)
        d = BACKOFF_MAX_S;
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
        r = (uint32_t)now_ms();
    return d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1));
}

static void arm_at(rt_actor_t *self, int64_t at_s, int tag)
{
    intent_state_t *st = rt_actor_state(self);
    int64_t delay_ms = at_s * 1000 - now_ms();
    rt_actor_timer_start(self, &st->timer, delay_ms > 0 ? (uint64_t)delay_ms : 0, (uint64_t)tag);
}

static void write_next(rt_actor_t *self, int64_t at)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->in.next_execution == at)
        return;
    st->in.next_execution = at;
    char id[INTENT_ID_SIZE], at_text[24];
    snprintf(id, sizeof(id), "%s", st->in.id);
    snprintf(at_text, sizeof(at_text), "%lld", (long long)at);
    const char *params[] = {id, at_text};
    query(self, Q_NEXT, engine__st_next, 2, params);
}

/* ---- the event of a change, from a fresh row ---- */

static void publish_row(rt_actor_t *self, const PGresult *res, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    static __thread intent_t full;
    engine_intent_t row;
    if (PQntuples(res) != 1 || !engine__row_parse(st->engine, res, 0, 0, &row, &full))
        return;
    const char *type = kind == Q_EV_CREATED   ? "intent.created"
                       : kind == Q_EV_DELAYED ? "intent.delayed"
                                              : "intent.updated";
    events_publish(st->engine->config.events, row.user_id, type, intent_to_json(&full), 0);
}

/* Sends the row read of the first waiting event; one that cannot be sent is dropped (logged).
 * With none left, an actor that waited for its last event leaves. */
static void next_event(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    while (!st->event_reading && st->event_count != 0) {
        const char *params[] = {st->in.id};
        int kind = st->event_queue[st->event_head];
        if (store_pg_query(st->engine->config.pg, self, corr_of(st, kind), engine__st_get, 1,
                           params)) {
            st->event_reading = true;
            return;
        }
        rt_log_warn("engine", "intent %s: database busy, event %d dropped", st->in.id, kind);
        st->event_head = (uint8_t)((st->event_head + 1) % EVENT_QUEUE_MAX);
        --st->event_count;
    }
    if (!st->event_reading && st->leave_after_event)
        leave(self);
}

/* Announces the intent's row as it is once read (`kind`: Q_EV_*), after the events asked
 * before. Without live events, nothing (an actor waiting to leave leaves). */
static void ask_event(rt_actor_t *self, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->engine->config.events == NULL) {
        if (st->leave_after_event)
            leave(self);
        return;
    }
    if (st->event_count == EVENT_QUEUE_MAX) {
        int last = st->event_queue[(st->event_head + st->event_count - 1) % EVENT_QUEUE_MAX];
        if (last != kind)
            rt_log_warn("engine", "intent %s: too many events waiting, event %d dropped", st->in.id,
                        kind);
        return;
    }
    st->event_queue[(st->event_head + st->event_count) % EVENT_QUEUE_MAX] = (uint8_t)kind;
    ++st->event_count;
    next_event(self);
}

/* An event's row came back (`res`; NULL: the read failed): published, then the next. */
static void on_event_row(rt_actor_t *self, const PGresult *res, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    if (res != NULL)
        publish_row(self, res, kind);
    st->event_reading = false;
    st->event_head = (uint8_t)((st->event_head + 1) % EVENT_QUEUE_MAX);
    --st->event_count;
    next_event(self);
}

static void publish_notification(rt_actor_t *self, const PGresult *res, int first_col)
{
    intent_state_t *st = rt_actor_state(self);
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, first_col))
        return;
    json_t *n = notification_to_json(res, 0, first_col);
    if (n != NULL)
        events_publish(st->engine->config.events, st->in.user_id, "notification.created", n, 0);
}

/* ---- the end of an intent's schedule, or of its chances ---- */

static void complete(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    const char *params[] = {st->in.id};
    query(self, Q_COMPLETE, engine__st_complete, 1, params);
    st->in.status = INTENT_COMPLETED;
    st->phase = PHASE_IDLE;
    rt_actor_timer_cancel(self, &st->timer); /* leaves once the database has it */
}

static void fail(rt_actor_t *self, const char *error)
{
    intent_state_t *st = rt_actor_state(self);
    const char *params[] = {st->in.id, error};
    query(self, Q_FAIL, engine__st_fail, 2, params);
    st->in.status = INTENT_FAILED;
    st->phase = PHASE_IDLE;
    rt_actor_timer_cancel(self, &st->timer);
}

/* ---- delays ---- */

static const char *reason_text(sched_delay_t r)
{
    switch (r) {
    case SCHED_DELAY_OUTSIDE_TIME_WINDOW:
        return "it is outside the intent's time window";
    case SCHED_DELAY_CHAIN_UNAVAILABLE:
        return "the chain cannot be reached";
    case SCHED_DELAY_INSUFFICIENT_BALANCE:
        return "the balance is below the amount";
    case SCHED_DELAY_BELOW_SAFETY_BUFFER:
        return "the payment would take the balance below the safety buffer";
    case SCHED_DELAY_ALLOWANCE_TOO_LOW:
        return "the allowance to the registry is below the amount";
    case SCHED_DELAY_GAS_PRICE_ABOVE_CAP:
        return "the gas price is above the intent's cap";
    default:
        return "";
    }
}

static void delay(rt_actor_t *self, sched_delay_t reason, int64_t retry_at)
{
    intent_state_t *st = rt_actor_state(self);
    ++st->delays;
    st->retry_at = retry_at;
    st->in.status = INTENT_DELAYED;
    st->in.delay_reason = reason;
    st->in.next_execution = retry_at;
    st->phase = PHASE_WAITING;
    arm_at(self, retry_at, T_DUE);
    char at_text[24], when[CHAIN_RFC3339_SIZE], message[256];
    snprintf(at_text, sizeof(at_text), "%lld", (long long)retry_at);
    chain_rfc3339_format(retry_at, when);
    snprintf(message, sizeof(message), "held back because %s; tried again at %s",
             reason_text(reason), when);
    const char *params[] = {st->in.id, sched_delay_name(reason), at_text, "Payment delayed",
                            message};
    query(self, Q_DELAY, engine__st_delay, 5, params);
}

/* ---- due: constraints, then the hand-over ---- */

static void low_buffer_check(rt_actor_t *self, const engine_facts_t *f)
{
    intent_state_t *st = rt_actor_state(self);
    /* warn when, after this payment, the next one would take the balance under the safety
     * buffer: balance < 2 * amount + buffer (this payment itself passed balance >= amount +
     * buffer, or it would have been delayed) */
    chain_u256_t need;
    if (st->in.low_buffer_period == (int32_t)st->in.execution_count ||
        chain_u256_add(&need, &st->in.terms.amount, &st->in.terms.amount) ||
        chain_u256_add(&need, &need, &st->in.safety_buffer) ||
        chain_u256_cmp(&f->balance, &need) >= 0)
        return;
    st->in.low_buffer_period = (int32_t)st->in.execution_count;
    char period[16];
    snprintf(period, sizeof(period), "%u", st->in.execution_count);
    const char *params[] = {st->in.id, period, "Balance running low",
                            "after this payment, the next one would take the balance below the "
                            "safety buffer"};
    query(self, Q_LOW, engine__st_low_buffer, 4, params);
}

static void hand_over(rt_actor_t *self, const engine_facts_t *f)
{
    intent_state_t *st = rt_actor_state(self);
    executor_job_t job;
    memset(&job, 0, sizeof(job));
    snprintf(job.intent_id, sizeof(job.intent_id), "%s", st->in.id);
    snprintf(job.user_id, sizeof(job.user_id), "%s", st->in.user_id);
    job.terms = st->in.terms;
    memcpy(job.signature, st->in.signature, sizeof(job.signature));
    job.period = st->in.execution_count;
    if (!engine__submit(st->engine, &job)) { /* full: try again soon, no delay recorded */
        st->phase = PHASE_WAITING;
        rt_actor_timer_start(self, &st->timer, SUBMIT_RETRY_MS + (uint64_t)(now_ms() % 1000),
                             T_SUBMIT);
        return;
    }
    engine__record_lateness(st->engine, engine_clock_now_us() - st->check_at * 1000000);
    st->submitted = true;
    st->submitted_period = job.period;
    st->phase = PHASE_SUBMITTED;
    st->delays = 0;
    st->retry_at = SCHED_NONE;
    rt_actor_timer_start(self, &st->timer, WATCHDOG_MS, T_WATCHDOG);
    if (f->available && !st->engine->config.facts_always_hold)
        low_buffer_check(self, f);
}

/* The registry counts more executions than the database: the follower adopts their logs (the
 * outcomes raise the count); until then nothing is signed, and the row is read again, backing
 * off, in case the adoption came another way. */
static void wait_for_adoption(rt_actor_t *self, uint64_t chain_count)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->count_waits++ == 0)
        rt_log_warn("engine",
                    "intent %s: the registry counts %llu executions, the database %u:"
                    " adopting them, nothing signed",
                    st->in.id, (unsigned long long)chain_count, st->in.execution_count);
    uint8_t id[32];
    chain_intent_hash(&st->in.terms, id);
    chain_follower_backfill(engine_executor(st->engine), id);
    st->phase = PHASE_WAITING;
    uint32_t shift = st->count_waits - 1 < 5 ? st->count_waits - 1 : 5;
    rt_actor_timer_start(self, &st->timer, (uint64_t)WRONG_COUNT_RELOAD_MS << shift, T_RELOAD);
}

static void decide(rt_actor_t *self, const engine_facts_t *f)
{
    intent_state_t *st = rt_actor_state(self);
    if (f->has_count && f->executed_count > st->in.execution_count) {
        wait_for_adoption(self, f->executed_count);
        return;
    }
    if (f->has_count) {
        st->count_agreed = true;
        st->count_waits = 0;
    }
    if (st->engine->config.facts_always_hold) {
        hand_over(self, f);
        return;
    }
    sched_facts_t facts = {.inside_window = true,
                           .chain_available = f->available,
                           .balance = f->balance,
                           .amount = st->in.terms.amount,
                           .safety_buffer = st->in.safety_buffer,
                           .allowance = f->allowance};
    if (st->in.constraints.has_max_gas) {
        gas_snapshot_t gas;
        facts.has_gas_cap = true;
        facts.gas_cap_wei = st->in.constraints.max_gas_price_wei;
        if (st->engine->config.gas == NULL || !gas_oracle_read(st->engine->config.gas, &gas))
            facts.chain_available = false;
        else
            chain_u256_add(&facts.gas_price_wei, &gas.base_fee_wei, &gas.priority_fee_wei);
    }
    sched_delay_t reason = sched_delay_reason(&facts);
    if (reason != SCHED_DELAY_NONE)
        delay(self, reason, engine_clock_now_s() + backoff_s(st->delays + 1));
    else
        hand_over(self, f);
}

static void check(rt_actor_t *self, int64_t at)
{
    intent_state_t *st = rt_actor_state(self);
    engine_t *e = st->engine;
    st->phase = PHASE_CHECKING;
    st->check_at = at;
    int64_t now = engine_clock_now_s();
    if (st->in.constraints.has_window && !sched_window_contains(&st->in.constraints.window, now)) {
        delay(self, SCHED_DELAY_OUTSIDE_TIME_WINDOW,
              sched_window_next_open(&st->in.constraints.window, now));
        return;
    }
    if (e->config.facts_always_hold || e->config.rpc == NULL) {
        engine_facts_t f = {.available = e->config.facts_always_hold};
        decide(self, &f);
        return;
    }
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_READ, sizeof(engine_read_t));
    engine_read_t *r = rt_msg_payload(msg);
    r->owner = st->in.terms.owner;
    r->token = st->in.terms.token;
    r->want_count = !st->count_agreed;
    if (r->want_count)
        chain_intent_hash(&st->in.terms, r->on_chain_id);
    rt_actor_request(self, e->readers[self->home], msg, st->gen);
}

/* ---- the plan: what to do next, from the state alone ---- */

static void plan(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    if (!st->have_row || st->leaving)
        return;
    switch (st->in.status) {
    case INTENT_COMPLETED:
    case INTENT_CANCELLED:
    case INTENT_FAILED:
        leave(self);
        return;
    case INTENT_PENDING_SIGNATURE:
    case INTENT_PAUSED:
    case INTENT_CONFLICT:
        st->phase = PHASE_IDLE;
        rt_actor_timer_cancel(self, &st->timer);
        return;
    default:
        break;
    }
    if (st->submitted) {
        if (st->in.next_execution == SCHED_NONE) /* in flight again after a reorg reopened it */
            write_next(
                self, sched_next_due(&st->in.sched, st->in.execution_count, st->in.last_execution));
        st->phase = PHASE_SUBMITTED;
        rt_actor_timer_start(self, &st->timer, WATCHDOG_MS, T_WATCHDOG);
        return;
    }
    int64_t due = sched_next_due(&st->in.sched, st->in.execution_count, st->in.last_execution);
    if (due == SCHED_NONE) {
        complete(self);
        return;
    }
    int64_t at = st->retry_at != SCHED_NONE && st->retry_at > due ? st->retry_at : due;
    write_next(self, at);
    if (at * 1000 <= now_ms()) {
        check(self, at);
        return;
    }
    st->phase = PHASE_WAITING;
    arm_at(self, at, T_DUE);
}

/* ---- messages ---- */

/* A fresh row. `trust_db`: the watchdog asked, so a job the database does not show in flight is
 * taken as lost and handed over again; otherwise (the API's hook) a job just handed over may not
 * have its row yet, and stays in flight. */
static void apply_row(rt_actor_t *self, const engine_intent_t *row, bool trust_db)
{
    intent_state_t *st = rt_actor_state(self);
    bool still_ours = st->submitted && row->execution_count <= st->submitted_period && !trust_db;
    if (st->in.execution_count != row->execution_count)
        st->failures = 0;
    st->in = *row;
    st->have_row = true;
    ++st->gen;
    if (row->in_flight) {
        st->submitted = true;
        st->submitted_period = row->execution_count;
    } else if (!still_ours) {
        st->submitted = false;
    }
    st->retry_at = SCHED_NONE; /* a change by the user is looked at now */
}

/* The registry's refusals that no retry can change (contracts/IntentRegistry.sol): the intent
 * fails. Anything else (not yet valid, too early, a token's transfer failing, a count the
 * database has not caught up with) is retried. */
static bool failure_is_final(const char *error)
{
    static const char *const final[] = {"wrong signer",           "revoked",       "expired",
                                        "max executions reached", "bad signature", "high s",
                                        "invalid signature"};
    for (size_t i = 0; i != sizeof(final) / sizeof(final[0]); ++i)
        if (strstr(error, final[i]) != NULL)
            return true;
    return false;
}

static void on_outcome(rt_actor_t *self, const executor_outcome_t *o)
{
    intent_state_t *st = rt_actor_state(self);
    if (!st->have_row)
        return;
    /* completing, failing or cancelled: the actor leaves once that is written and announced;
     * the outcome is in the database already (the executor and the follower record an outcome
     * before they report it), and another complete() here would find nothing left to change
     * and leave before the announcement */
    if (st->in.status == INTENT_COMPLETED || st->in.status == INTENT_FAILED ||
        st->in.status == INTENT_CANCELLED)
        return;
    ++st->gen;
    if (o->status == EXECUTOR_REVOKED) {
        st->in.status = INTENT_CANCELLED; /* the follower wrote it */
        st->leave_after_event = true;     /* the owner's screens learn it, then we go */
        ask_event(self, Q_EV_UPDATED);
        return;
    }
    bool ours = st->submitted && o->period == st->submitted_period;
    if (o->status == EXECUTOR_CONFIRMED) {
        if (o->period + 1 > st->in.execution_count) {
            st->in.execution_count = o->period + 1;
            st->in.last_execution = o->block_time_s;
            st->failures = 0;
        }
        if (st->submitted && st->submitted_period <= o->period)
            st->submitted = false;
        if (st->in.status == INTENT_DELAYED) { /* the executor cleared it with the payment */
            st->in.status = INTENT_ACTIVE;
            st->in.delay_reason = SCHED_DELAY_NONE;
        }
        st->delays = 0;
        st->retry_at = SCHED_NONE;
        if (st->in.sched.max_executions != 0 &&
            st->in.execution_count >= st->in.sched.max_executions) {
            complete(self); /* the executor wrote the status; this clears next_execution */
            return;
        }
    } else if (!ours && o->period < st->in.execution_count) {
        /* a period counted as paid failed after all (a reorg took its payment off the chain,
         * and the follower gave the period back): the database has the count now */
        reload(self, Q_GET);
        return;
    } else if (ours) {
        st->submitted = false;
        ++st->failures;
        if (failure_is_final(o->error)) {
            fail(self, o->error);
            return;
        }
        if (strstr(o->error, "wrong count") != NULL) {
            /* the chain's count is not the database's: an execution the follower has not
             * adopted yet (a crash between mining and recording). Look again soon; the count
             * comes from the database, never guessed here, and the next check reads the
             * registry's too. */
            st->count_agreed = false;
            st->phase = PHASE_WAITING;
            uint32_t shift = st->failures - 1 < 5 ? st->failures - 1 : 5;
            rt_actor_timer_start(self, &st->timer, (uint64_t)WRONG_COUNT_RELOAD_MS << shift,
                                 T_RELOAD);
            return;
        }
        st->retry_at = engine_clock_now_s() + backoff_s(st->failures);
    }
    plan(self);
}

/* The intent's row read again (Q_GET, Q_WATCH, Q_REOPEN or Q_CHANGE): applied, then the plan. */
static void on_row(rt_actor_t *self, const PGresult *res, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    engine_intent_t row;
    if (PQntuples(res) != 1) {
        leave(self); /* no such intent */
        return;
    }
    if (!engine__row_parse(st->engine, res, 0, 0, &row, NULL)) {
        rt_log_error("engine", "intent %s: row not usable, not scheduled", st->in.id);
        leave(self);
        return;
    }
    apply_row(self, &row, kind == Q_WATCH);
    bool final = st->in.status == INTENT_COMPLETED || st->in.status == INTENT_CANCELLED ||
                 st->in.status == INTENT_FAILED;
    if (kind == Q_CHANGE && final) { /* cancelled: the owner's screens learn it, then we go */
        st->phase = PHASE_IDLE;
        rt_actor_timer_cancel(self, &st->timer);
        st->leave_after_event = true;
        ask_event(self, Q_EV_UPDATED);
        return;
    }
    int64_t next = st->in.next_execution;
    st->change_rides_next = false;
    plan(self);
    /* the API's change, or the follower's (a period given back, a completed intent active
     * again): announced once, by the plan's own write of nextExecution (or delay) or here */
    bool announce = kind == Q_CHANGE || (kind == Q_REOPEN && !final);
    if (!announce || st->leaving)
        return;
    if (st->in.next_execution == next)
        ask_event(self, Q_EV_UPDATED);
    else
        st->change_rides_next = true; /* if that write fails, announced then */
}

/* The plan's write of nextExecution failed: written again by the next plan; a change that
 * counted on its event is announced now. */
static void on_next_failed(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    st->in.next_execution = SCHED_NONE;
    if (st->change_rides_next) {
        st->change_rides_next = false;
        ask_event(self, Q_EV_UPDATED);
    }
}

static void on_db(rt_actor_t *self, rt_msg_t *msg)
{
    intent_state_t *st = rt_actor_state(self);
    store_pg_result_t *r = rt_msg_payload(msg);
    int kind = (int)(msg->corr & 0xff);
    if (r->status != STORE_PG_OK) {
        rt_log_warn("engine", "intent %s: statement kind %d: %s %s", st->in.id, kind,
                    store_pg_status_name(r->status), r->message);
        if (kind == Q_GET || kind == Q_WATCH || kind == Q_COMPLETE || kind == Q_FAIL ||
            kind == Q_REOPEN || kind == Q_CHANGE)
            rt_actor_timer_start(self, &st->timer, DB_RETRY_MS,
                                 kind == Q_REOPEN   ? T_REOPEN
                                 : kind == Q_CHANGE ? T_CHANGE
                                                    : T_RELOAD);
        else if (kind == Q_NEXT)
            on_next_failed(self);
        else if (kind >= Q_EV_CREATED)
            on_event_row(self, NULL, kind);
        return;
    }
    const PGresult *res = r->results[0];
    switch (kind) {
    case Q_GET:
    case Q_WATCH:
    case Q_REOPEN:
    case Q_CHANGE:
        on_row(self, res, kind);
        break;
    case Q_DELAY:
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) { /* the reason changed */
            publish_notification(self, res, 1);
            ask_event(self, Q_EV_DELAYED);
        } else if (PQntuples(res) == 1) { /* the same reason, a new retry time */
            ask_event(self, Q_EV_UPDATED);
        }
        break;
    case Q_LOW:
        publish_notification(self, res, 0);
        break;
    case Q_NEXT: /* the owner's screens (and read caches) learn the new nextExecution */
        st->change_rides_next = false;
        ask_event(self, Q_EV_UPDATED);
        break;
    case Q_COMPLETE:
    case Q_FAIL:
        /* whatever the row says now, it is not ours to run any more; leave once the event of
         * the change (if it was ours) is out, never before an event already asked for */
        if (PQntuples(res) == 1 && st->engine->config.events != NULL) {
            st->leave_after_event = true;
            ask_event(self, Q_EV_UPDATED);
        } else if (!st->leave_after_event) {
            leave(self);
        }
        break;
    case Q_EV_CREATED:
    case Q_EV_UPDATED:
    case Q_EV_DELAYED:
        on_event_row(self, res, kind);
        break;
    }
}

static void reload(rt_actor_t *self, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    const char *params[] = {st->in.id};
    if (!store_pg_query(st->engine->config.pg, self, corr_of(st, kind), engine__st_get, 1, params))
        rt_actor_timer_start(self, &st->timer, DB_RETRY_MS,
                             kind == Q_REOPEN   ? T_REOPEN
                             : kind == Q_CHANGE ? T_CHANGE
                                                : T_RELOAD);
}

static void on_timer(rt_actor_t *self, uint64_t tag)
{
    intent_state_t *st = rt_actor_state(self);
    switch (tag) {
    case T_DUE:
    case T_SUBMIT:
        ++st->gen;
        plan(self);
        break;
    case T_WATCHDOG:
        reload(self, Q_WATCH);
        break;
    case T_RELOAD:
        reload(self, Q_GET);
        break;
    case T_REOPEN:
        reload(self, Q_REOPEN);
        break;
    case T_CHANGE:
        reload(self, Q_CHANGE);
        break;
    }
}

/* A row handed over: the loader's (start-up) or the API's creation hook's (`created`), in
 * either order. Only the creation is announced, exactly once (its hook sends one message), and
 * first: before anything the plan may write. */
/* The creation hook's announcement: the API's rendered object when no other event of the intent
 * waits (a new actor: the usual case, which then costs no read of the row), else the row as read
 * after those, in order. */
static void announce_created(rt_actor_t *self, const engine_created_t *c)
{
    intent_state_t *st = rt_actor_state(self);
    events_t *events = st->engine->config.events;
    if (c->json_len != 0 && events != NULL && st->event_count == 0 && !st->event_reading)
        events_publish_text(events, c->row.user_id, "intent.created", c->json, c->json_len, 0);
    else
        ask_event(self, Q_EV_CREATED);
}

/* `row` from the loader, or from the creation hook (`created`, NULL for the loader's). */
static void on_init(rt_actor_t *self, const engine_intent_t *row, const engine_created_t *created)
{
    intent_state_t *st = rt_actor_state(self);
    st->count_agreed = false; /* loaded at start-up: the database may lag the chain */
    if (created != NULL)
        announce_created(self, created);
    if (st->have_row || st->leaving) /* the other one's row, or a newer one, is already here */
        return;
    apply_row(self, row, false);
    if (st->in.status == INTENT_DELAYED) /* keep the backoff a restart found */
        st->retry_at = st->in.next_execution;
    plan(self);
}

void engine__intent_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->leaving)
        return;
    switch (msg->type) {
    case ENGINE_MSG_INIT: {
        const engine_created_t *created =
            msg->corr == ENGINE_INIT_CREATED ? rt_msg_payload(msg) : NULL;
        on_init(self, created != NULL ? &created->row : rt_msg_payload(msg), created);
        break;
    }
    case ENGINE_MSG_RELOAD:
        reload(self, msg->corr == ENGINE_RELOAD_ANNOUNCE  ? Q_REOPEN
                     : msg->corr == ENGINE_RELOAD_CHANGED ? Q_CHANGE
                                                          : Q_GET);
        break;
    case ENGINE_MSG_CLOCK:
        if (st->phase == PHASE_WAITING)
            plan(self);
        break;
    case ENGINE_MSG_OUTCOME:
        on_outcome(self, rt_msg_payload(msg));
        break;
    case ENGINE_MSG_FACTS:
        if (msg->corr == st->gen && st->phase == PHASE_CHECKING) {
            engine_facts_t *f = rt_msg_payload(msg);
            if (f->busy) {
                st->phase = PHASE_WAITING;
                rt_actor_timer_start(self, &st->timer, SUBMIT_RETRY_MS, T_SUBMIT);
            } else {
                decide(self, f);
            }
        }
        break;
    case STORE_PG_MSG_RESULT:
        on_db(self, msg);
        break;
    case RT_MSG_TIMER:
        on_timer(self, msg->corr);
        break;
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &st->timer);
        break;
    }
}
