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
 * The registry's count of an intent loaded at start-up is read once, alone, ahead of its first due
 * time (at most COUNT_AHEAD_S before it), and again at the due time if that read did not settle it
 * (in the batch of its balance and allowance reads), and after a "wrong count": when the chain
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
 *
 * The database's connections may answer out of order, so every statement's reply carries its
 * sequence number (`seq`), and the actor decides from the newest state it knows (`basis_seq`: the
 * newest row read it applied, or the completion or failure it wrote since). A row read sent
 * before that is not applied (a pause read after a resume's would leave an active intent
 * unscheduled; a read from before a cancel would schedule it again), and the result of a
 * completion or failure that a newer read overtook does not make the actor leave: a reorg may
 * have reopened the intent meanwhile (the follower's reopening, read and planned), and leaving
 * would leave its period unpaid until a restart. Such a write that changed the row is followed by
 * a read of it (that read, sent after the write committed, is the truth), and one that changed
 * nothing (the row is not as the actor thought: reopened, cancelled) too, instead of leaving.
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
/* The executor's queue was full: handed over again this much later, doubling while it stays full
 * up to SUBMIT_RETRY_MAX_SHIFT times, plus as much jitter. A burst fills it for tens of
 * milliseconds (a lane takes ~200 jobs a batch): with a fixed second here, the 1,808 of 10,000
 * intents due together that found the queue's 8,192 taken missed the block the rest went into
 * (executor_bench, engine mode); an executor that stays full (the chain not answering) is asked
 * about once a second per intent. */
#define SUBMIT_RETRY_MS 50
#define SUBMIT_RETRY_MAX_SHIFT 4
/* The constraint reader held too many requests: asked again this much later, plus as much
 * jitter. The reader answers a batch in tens of milliseconds, so room comes back soon; a
 * second's wait made the overflow of a large due burst miss the block the rest went into. */
#define READ_BUSY_RETRY_MS 50
#define DB_RETRY_MS 1000  /* the database's queue was full */
#define WATCHDOG_MS 30000 /* no outcome this long after a hand-over: look at the database */
#define WRONG_COUNT_RELOAD_MS 3000 /* a count the database lags: re-read, doubling to 96 s */
#define DB_RETRY_MAX_SHIFT 3       /* the database refusing: retried after 1, 2, 4, then 8 s */
/* A row the loader read that may have been created just now, through this process's API (created
 * at or after the engine's start, less this much for the database's clock): its actor waits for
 * the creation hook at most this long before it plans (see on_init). */
#define CREATED_GRACE_MS 2000
/* How long before its first due time after a start-up an intent reads the registry's count of its
 * executions, alone. Read at the due time, in the burst of an hour's or a day's first second, the
 * counts were 10,000 eth_calls that held back the hand-over of 10,000 intents due together by
 * ~0.5 s (executor_bench, engine mode); read ahead, the due time reads only balances and
 * allowances. The count stays good: the chain follower sees every execution after the read. */
#define COUNT_AHEAD_S 60
/* An intent due later than that reads it on a timer between COUNT_AHEAD_S and COUNT_AHEAD_S -
 * COUNT_SPREAD_S before the due time, placed by its id, so that the reads of a large burst
 * (100,000 intents due at Monday 09:00) come over half a minute instead of in one second, within
 * what the constraint readers hold (READ_MAX_PENDING per worker; beyond it a read is refused and
 * the count is read at the due time). */
#define COUNT_SPREAD_S 30
/* The corr of a count read ahead (its low 32 bits: the generation it was asked in); a due
 * time's read carries the generation alone. */
#define COUNT_AHEAD_CORR ((uint64_t)1 << 32)

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
    Q_CHANGE,  /* the row after the API's change (ENGINE_RELOAD_CHANGED) */
    Q_RECHECK, /* the row after a completion or failure a read overtook (announced if final) */
    Q_EV_CREATED,
    Q_EV_UPDATED,
    Q_EV_DELAYED,
};
/* timer tags: `timer` (the plan's: re-armed by every re-plan) takes T_DUE .. T_CREATED, `retry`
 * only T_RETRY */
enum { T_DUE = 1, T_COUNT, T_WATCHDOG, T_SUBMIT, T_RELOAD, T_CREATED, T_RETRY };
/* Row reads the database refused, waiting for `retry` (reads_wanted): each is a change still to
 * apply and, for CHANGE and REOPEN, to announce. Not on the plan's timer: a re-plan (a due time, a
 * delay, a clock move, an outcome) re-arms that one, and a retry armed there was lost, and with it
 * the change's event. One read serves all that wait: it shows the newest row. */
enum { W_GET = 1, W_REOPEN = 2, W_CHANGE = 4 };
/* Writes in flight whose event also announces a change (rides): if such a write fails, the change
 * is announced on its own instead. */
enum { RIDE_NEXT = 1, RIDE_DELAY = 2 };
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
    bool count_reading;   /* a count read ahead of the due time is in flight */
    uint32_t count_waits; /* looks at a registry count ahead of ours, in a row */
    uint32_t submitted_period;
    bool announce_next;    /* a change's announcement: taken by the plan's next write, if any */
    bool awaiting_created; /* the loader's row of a fresh intent: the creation hook comes first */
    uint8_t rides;         /* RIDE_* */
    uint8_t reads_wanted;  /* W_* */
    uint8_t db_retries;    /* database refusals in a row (retry backoff) */
    uint8_t submit_waits;  /* hand-overs the executor's full queue refused in a row */
    bool event_reading;    /* an event's row read is in flight (event_queue[event_head]) */
    uint8_t event_head, event_count;
    uint8_t event_queue[EVENT_QUEUE_MAX]; /* Q_EV_* kinds, event_head first */
    uint64_t seq;           /* statements sent (the high bits of their replies' corr) */
    uint64_t basis_seq;     /* the newest row read applied, or completion/failure sent since */
    uint64_t final_seq;     /* the completion or failure in flight (0: none) */
    uint8_t after_final;    /* W_REOPEN: a reopening's read it overtook, to announce after it */
    rt_actor_timer_t timer; /* the plan's */
    rt_actor_timer_t retry; /* the database's refusals: reads_wanted, the events */
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

/* A new statement's corr: its sequence number, and what it is. */
static uint64_t corr_of(intent_state_t *st, int kind)
{
    return (++st->seq << 8) | (uint64_t)kind;
}

static bool query(rt_actor_t *self, int kind, int statement, int nparams, const char *const *p)
{
    intent_state_t *st = rt_actor_state(self);
    if (store_pg_query(st->engine->config.pg, self, corr_of(st, kind), statement, nparams, p))
        return true;
    rt_log_warn("engine", "intent %s: database busy, statement %d not sent", st->in.id, statement);
    return false;
}

/* Arms the retry of what the database refused, unless it is armed already (then that retry serves
 * this one too): 1 s, doubling to 8 s while the refusals go on. */
static void arm_retry(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->retry.actor != NULL) /* armed (the runtime clears it when the timer fires) */
        return;
    uint32_t shift = st->db_retries < DB_RETRY_MAX_SHIFT ? st->db_retries : DB_RETRY_MAX_SHIFT;
    if (st->db_retries != UINT8_MAX)
        ++st->db_retries;
    rt_actor_timer_start(self, &st->retry, (uint64_t)DB_RETRY_MS << shift, T_RETRY);
}

/* A row read (`kind`: Q_GET, Q_WATCH, Q_COMPLETE, Q_FAIL, Q_REOPEN, Q_CHANGE, Q_RECHECK) that the
 * database refused or did not take: read again on the retry timer. */
static void want_read(rt_actor_t *self, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    st->reads_wanted |= kind == Q_CHANGE ? W_CHANGE : kind == Q_REOPEN ? W_REOPEN : W_GET;
    arm_retry(self);
}

static void leave(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->leaving)
        return;
    st->leaving = true;
    rt_actor_timer_cancel(self, &st->timer);
    rt_actor_timer_cancel(self, &st->retry);
    engine__forget(st->engine, st->in.id, self);
    /* stopped after what is queued already (not with it): a hook's message that found this actor
     * in the map before it left is passed on (pass_on), not dropped with the mailbox */
    rt_actor_send_stop(self);
}

/* A message that reached the actor after it chose to leave. A reload (a change of the API, or
 * the follower's reopening: the intent may run again) goes to the intent's next actor, spawned
 * for it, which reads the row afresh and announces it; lost here, the change would go
 * unannounced, and a reopened intent unscheduled. Rows (INIT) are older than what made this one
 * leave, and outcomes are in the database already: dropped. */
static void pass_on(rt_actor_t *self, rt_msg_t *msg)
{
    intent_state_t *st = rt_actor_state(self);
    if (msg->type != ENGINE_MSG_RELOAD)
        return;
    rt_msg_keep(msg);
    engine__deliver(st->engine, st->in.id, msg, ENGINE_SPAWN_NEW);
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

/* A change waiting to be announced (announce_next) rides the write just sent (`ride`): that
 * write's event is its announcement. */
static void take_announcement(rt_actor_t *self, uint8_t ride)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->announce_next) {
        st->announce_next = false;
        st->rides |= ride;
    }
}

static void write_next(rt_actor_t *self, int64_t at)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->in.next_execution == at)
        return;
    char id[INTENT_ID_SIZE], at_text[24];
    snprintf(id, sizeof(id), "%s", st->in.id);
    snprintf(at_text, sizeof(at_text), "%lld", (long long)at);
    const char *params[] = {id, at_text};
    if (query(self, Q_NEXT, engine__st_next, 2, params)) {
        st->in.next_execution = at;
        take_announcement(self, RIDE_NEXT);
    } else {
        st->in.next_execution = SCHED_NONE; /* written by the next plan */
    }
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

/* Sends the row read of the first waiting event; one that cannot be sent stays first and is
 * sent again on the retry timer (never dropped, nor overtaken by a later one). With none left,
 * an actor that waited for its last event leaves. */
static void next_event(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->event_reading)
        return;
    if (st->event_count != 0) {
        const char *params[] = {st->in.id};
        int kind = st->event_queue[st->event_head];
        if (store_pg_query(st->engine->config.pg, self, corr_of(st, kind), engine__st_get, 1,
                           params)) {
            st->event_reading = true;
            return;
        }
        rt_log_warn("engine", "intent %s: database busy, event %d waits", st->in.id, kind);
        arm_retry(self);
        return;
    }
    if (st->leave_after_event)
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

/* An event's row came back: published, then the next. (One the database refused stays first,
 * on the retry timer.) */
static void on_event_row(rt_actor_t *self, const PGresult *res, int kind)
{
    intent_state_t *st = rt_actor_state(self);
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

/* Completes the intent in the database, unless its count went back meanwhile (a reorg took a
 * payment back: the follower reopened it, and its read is on the way). */
static void complete(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    char count[16];
    snprintf(count, sizeof(count), "%u", st->in.execution_count);
    const char *params[] = {st->in.id, count};
    if (query(self, Q_COMPLETE, engine__st_complete, 2, params))
        st->basis_seq = st->final_seq = st->seq; /* newer than any row read sent before */
    else
        want_read(self, Q_COMPLETE); /* as when it fails: the row again, then the plan again */
    st->in.status = INTENT_COMPLETED;
    st->phase = PHASE_IDLE;
    rt_actor_timer_cancel(self, &st->timer); /* leaves once the database has it */
}

static void fail(rt_actor_t *self, const char *error)
{
    intent_state_t *st = rt_actor_state(self);
    const char *params[] = {st->in.id, error};
    if (query(self, Q_FAIL, engine__st_fail, 2, params))
        st->basis_seq = st->final_seq = st->seq;
    else
        want_read(self, Q_FAIL);
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
    if (query(self, Q_DELAY, engine__st_delay, 5, params))
        take_announcement(self, RIDE_DELAY);
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
        uint64_t wait_ms = (uint64_t)SUBMIT_RETRY_MS << st->submit_waits;
        if (st->submit_waits < SUBMIT_RETRY_MAX_SHIFT)
            ++st->submit_waits;
        rt_actor_timer_start(self, &st->timer, wait_ms + (uint64_t)now_ms() % wait_ms, T_SUBMIT);
        return;
    }
    st->submit_waits = 0;
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
/* Asks the chain follower for the intent's Executed logs the database lacks. */
static void ask_adoption(intent_state_t *st)
{
    uint8_t id[32];
    chain_intent_hash(&st->in.terms, id);
    chain_follower_backfill(engine_executor(st->engine), id);
}

static void wait_for_adoption(rt_actor_t *self, uint64_t chain_count)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->count_waits++ == 0)
        rt_log_warn("engine",
                    "intent %s: the registry counts %llu executions, the database %u:"
                    " adopting them, nothing signed",
                    st->in.id, (unsigned long long)chain_count, st->in.execution_count);
    ask_adoption(st);
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

/* Asks the worker's constraint reader for the intent's chain facts (ENGINE_MSG_FACTS answers with
 * `corr`): its balance and allowance and, unless the registry's count agrees already, that count;
 * or (`count_only`) that count alone. */
static void request_facts(rt_actor_t *self, bool count_only, uint64_t corr)
{
    intent_state_t *st = rt_actor_state(self);
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_READ, sizeof(engine_read_t));
    engine_read_t *r = rt_msg_payload(msg);
    r->owner = st->in.terms.owner;
    r->token = st->in.terms.token;
    r->count_only = count_only;
    r->want_count = count_only || !st->count_agreed;
    if (r->want_count)
        chain_intent_hash(&st->in.terms, r->on_chain_id);
    rt_actor_request(self, st->engine->readers[self->home], msg, corr);
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
    request_facts(self, false, st->gen);
}

/* The intent's place in the COUNT_SPREAD_S before its count is read (from its id: a uuid's hex
 * digits are random). */
static int64_t spread_s(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p != '\0'; ++p)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return (int64_t)(h % COUNT_SPREAD_S);
}

/* Reads the registry's count of the intent alone, ahead of its due time (COUNT_AHEAD_S). */
static void read_count_ahead(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    engine_t *e = st->engine;
    if (e->config.facts_always_hold || e->config.rpc == NULL) /* check() reads no count either */
        return;
    st->count_reading = true;
    request_facts(self, true, COUNT_AHEAD_CORR | st->gen);
}

/* The answer of read_count_ahead. Not there (busy, the chain not answering) or asked before the
 * row changed: the due time's check reads the count. Ahead of the database's: the follower's
 * adoption starts now, and the due time's check reads it again. */
static void on_count_ahead(rt_actor_t *self, const engine_facts_t *f, uint32_t gen)
{
    intent_state_t *st = rt_actor_state(self);
    st->count_reading = false;
    if (gen != st->gen || !f->has_count)
        return;
    if (f->executed_count > st->in.execution_count) {
        ask_adoption(st);
        return;
    }
    st->count_agreed = true;
}

/* ---- the plan: what to do next, from the state alone ---- */

static void plan(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    if (!st->have_row || st->leaving)
        return;
    st->awaiting_created = false; /* planned: a creation hook after this only announces */
    switch (st->in.status) {
    case INTENT_COMPLETED:
    case INTENT_CANCELLED:
    case INTENT_FAILED:
        if (st->event_count != 0 || st->event_reading) { /* the events asked for go out first */
            st->phase = PHASE_IDLE;
            rt_actor_timer_cancel(self, &st->timer);
            st->leave_after_event = true;
            return;
        }
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
    if (!st->count_agreed && !st->count_reading) {
        if (at * 1000 - now_ms() > COUNT_AHEAD_S * 1000) {
            arm_at(self, at - COUNT_AHEAD_S + spread_s(st->in.id), T_COUNT);
            return;
        }
        read_count_ahead(self);
    }
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

/* A row read sent before what the actor knows now (a newer read applied, or a completion or
 * failure written since): not applied, only the change it was to announce is (from a fresh read).
 * A reopening read before a completion or failure is announced after that write, by the read
 * that follows it when the write found the intent changed (on_final). */
static void on_stale_row(rt_actor_t *self, int kind)
{
    intent_state_t *st = rt_actor_state(self);
    bool final = st->in.status == INTENT_COMPLETED || st->in.status == INTENT_CANCELLED ||
                 st->in.status == INTENT_FAILED;
    if (kind == Q_REOPEN && st->final_seq != 0)
        st->after_final |= W_REOPEN;
    else if (kind == Q_CHANGE || (kind == Q_REOPEN && !final))
        ask_event(self, Q_EV_UPDATED);
}

/* The intent's row read again (Q_GET, Q_WATCH, Q_REOPEN, Q_CHANGE or Q_RECHECK; `seq`: when it
 * was sent): applied, then the plan. */
static void on_row(rt_actor_t *self, const PGresult *res, int kind, uint64_t seq)
{
    intent_state_t *st = rt_actor_state(self);
    engine_intent_t row;
    if (seq < st->basis_seq) {
        on_stale_row(self, kind);
        return;
    }
    st->basis_seq = seq;
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
    if (!final) /* live again (the follower reopened it): it stays, whatever it waited to leave */
        st->leave_after_event = false;
    if ((kind == Q_CHANGE || kind == Q_RECHECK) && final) { /* cancelled, completed or failed:
                                                             * the owner's screens learn it */
        st->phase = PHASE_IDLE;
        rt_actor_timer_cancel(self, &st->timer);
        st->leave_after_event = true;
        ask_event(self, Q_EV_UPDATED);
        return;
    }
    /* the API's change, or the follower's (a period given back, a completed intent active
     * again): announced once, by the plan's own write of nextExecution or delay (whose event then
     * shows it) or here */
    st->announce_next = kind == Q_CHANGE || (kind == Q_REOPEN && !final);
    plan(self);
    if (st->announce_next) {
        st->announce_next = false;
        if (!st->leaving)
            ask_event(self, Q_EV_UPDATED);
    }
}

/* The write `ride` (Q_NEXT's or Q_DELAY's) failed, so it has no event: a change that counted on
 * it is announced on its own. (A failed nextExecution is written again by the next plan.) */
static void on_write_failed(rt_actor_t *self, uint8_t ride)
{
    intent_state_t *st = rt_actor_state(self);
    if (ride == RIDE_NEXT)
        st->in.next_execution = SCHED_NONE;
    if (st->rides & ride) {
        st->rides &= (uint8_t)~ride;
        ask_event(self, Q_EV_UPDATED);
    }
}

/* The reply of a completion or failure (`seq`: when it was sent). The intent is not ours to run
 * any more when the write changed it and no newer read was applied since: the actor leaves once
 * the change's event is out (never before an event already asked for). A newer read applied
 * first decides instead (a reorg may have reopened the intent): if this write changed the row,
 * that read may have run before its commit, so the row is read again. A write that changed
 * nothing found the row not as the actor thought (reopened, cancelled): read again, then the
 * plan; leaving here would leave a reopened intent unscheduled. */
static void on_final(rt_actor_t *self, const PGresult *res, uint64_t seq)
{
    intent_state_t *st = rt_actor_state(self);
    bool changed = PQntuples(res) == 1;
    uint8_t after = 0;
    if (seq == st->final_seq) {
        st->final_seq = 0;
        after = st->after_final;
        st->after_final = 0;
    }
    if (seq < st->basis_seq) {
        if (changed)
            reload(self, Q_RECHECK);
        return;
    }
    if (!changed) {
        reload(self, after & W_REOPEN ? Q_REOPEN : Q_GET);
        return;
    }
    if (st->engine->config.events != NULL) {
        st->leave_after_event = true;
        ask_event(self, Q_EV_UPDATED);
    } else if (!st->leave_after_event) {
        leave(self);
    }
}

static void on_db(rt_actor_t *self, rt_msg_t *msg)
{
    intent_state_t *st = rt_actor_state(self);
    store_pg_result_t *r = rt_msg_payload(msg);
    int kind = (int)(msg->corr & 0xff);
    uint64_t seq = msg->corr >> 8;
    if (r->status != STORE_PG_OK) {
        rt_log_warn("engine", "intent %s: statement kind %d: %s %s", st->in.id, kind,
                    store_pg_status_name(r->status), r->message);
        if (kind == Q_COMPLETE || kind == Q_FAIL) {
            if (seq == st->final_seq) {
                st->final_seq = 0;
                st->reads_wanted |= st->after_final; /* the reopening's read, announced */
                st->after_final = 0;
            }
            want_read(self, kind);
        } else if (kind == Q_GET || kind == Q_WATCH || kind == Q_REOPEN || kind == Q_CHANGE ||
                   kind == Q_RECHECK) {
            want_read(self, kind);
        } else if (kind == Q_NEXT || kind == Q_DELAY) {
            on_write_failed(self, kind == Q_NEXT ? RIDE_NEXT : RIDE_DELAY);
        } else if (kind >= Q_EV_CREATED) { /* the event stays first: read again on the retry */
            st->event_reading = false;
            arm_retry(self);
        }
        return;
    }
    st->db_retries = 0;
    const PGresult *res = r->results[0];
    switch (kind) {
    case Q_GET:
    case Q_WATCH:
    case Q_REOPEN:
    case Q_CHANGE:
    case Q_RECHECK:
        on_row(self, res, kind, seq);
        break;
    case Q_DELAY:
        st->rides &= (uint8_t)~RIDE_DELAY; /* its event (below) shows a change it carried */
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
        st->rides &= (uint8_t)~RIDE_NEXT;
        ask_event(self, Q_EV_UPDATED);
        break;
    case Q_COMPLETE:
    case Q_FAIL:
        on_final(self, res, seq);
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
        want_read(self, kind);
}

/* The retry timer: the row reads the database refused (one read, of the kind that announces
 * most: a change's shows the follower's reopening too), and the first waiting event's. */
static void on_retry(rt_actor_t *self)
{
    intent_state_t *st = rt_actor_state(self);
    uint8_t wanted = st->reads_wanted;
    st->reads_wanted = 0;
    if (wanted != 0)
        reload(self, wanted & W_CHANGE ? Q_CHANGE : wanted & W_REOPEN ? Q_REOPEN : Q_GET);
    next_event(self);
}

static void on_timer(rt_actor_t *self, uint64_t tag)
{
    intent_state_t *st = rt_actor_state(self);
    switch (tag) {
    case T_DUE:
    case T_COUNT: /* the plan reads the count now */
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
    case T_CREATED: /* no creation hook came (another process's intent, or an older one) */
        if (st->awaiting_created)
            plan(self);
        break;
    case T_RETRY:
        on_retry(self);
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

/* `row` from the loader, or from the creation hook (`created`, NULL for the loader's).
 *
 * The loader and the hook race when an intent is created while the loader reads its slice: the
 * insert commits, the loader's page can see it, and only then does the API's worker call the hook.
 * Were the loader's row planned at once, an intent due now could have its delay (or its
 * nextExecution's write) announced before its intent.created. So the loader marks a row created at
 * or after the engine's start (`fresh`: maybe this process's, whose hook is on its way; rows older
 * than that have no hook coming, the API sends none before the engine exists) and its actor
 * waits for the hook, at most CREATED_GRACE_MS (another process's row gets no hook here), before
 * it plans: the announcement of the creation comes first. */
static void on_init(rt_actor_t *self, const engine_intent_t *row, const engine_created_t *created,
                    bool fresh)
{
    intent_state_t *st = rt_actor_state(self);
    st->count_agreed = false; /* loaded at start-up: the database may lag the chain */
    if (created != NULL)
        announce_created(self, created);
    if (created != NULL && st->awaiting_created) { /* the loader's row is here, unplanned */
        rt_actor_timer_cancel(self, &st->timer);
        plan(self);
        return;
    }
    if (st->have_row || st->leaving) /* the other one's row, or a newer one, is already here */
        return;
    apply_row(self, row, false);
    if (st->in.status == INTENT_DELAYED) /* keep the backoff a restart found */
        st->retry_at = st->in.next_execution;
    if (fresh) {
        st->awaiting_created = true;
        rt_actor_timer_start(self, &st->timer, CREATED_GRACE_MS, T_CREATED);
        return;
    }
    plan(self);
}

void engine__intent_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    intent_state_t *st = rt_actor_state(self);
    if (st->leaving) {
        pass_on(self, msg);
        return;
    }
    switch (msg->type) {
    case ENGINE_MSG_INIT: {
        const engine_created_t *created =
            msg->corr == ENGINE_INIT_CREATED ? rt_msg_payload(msg) : NULL;
        on_init(self, created != NULL ? &created->row : rt_msg_payload(msg), created,
                msg->corr == ENGINE_INIT_FRESH);
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
        if (msg->corr & COUNT_AHEAD_CORR) {
            on_count_ahead(self, rt_msg_payload(msg), (uint32_t)msg->corr);
        } else if (msg->corr == st->gen && st->phase == PHASE_CHECKING) {
            engine_facts_t *f = rt_msg_payload(msg);
            if (f->busy) {
                st->phase = PHASE_WAITING;
                rt_actor_timer_start(self, &st->timer,
                                     READ_BUSY_RETRY_MS + (uint64_t)(now_ms() % READ_BUSY_RETRY_MS),
                                     T_SUBMIT);
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
        rt_actor_timer_cancel(self, &st->retry);
        break;
    }
}
