#include "store/pg.h"
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "runtime/io.h"
#include "runtime/log.h"

/* Messages to a connection actor. */
enum { PG_MSG_START = RT_MSG_USER - 15, PG_MSG_UNIT };
/* Timer and poll tags: the low byte says what, the rest is the connection generation, so a
 * completion that belongs to a connection already torn down is recognised and ignored. */
enum { TAG_POLL_IN = 1, TAG_POLL_OUT, TAG_RECONNECT, TAG_WATCHDOG, TAG_CONNECT_DEADLINE };

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define WATCHDOG_PERIOD_MS 1000

typedef struct st_statement_t {
    char name[16];
    const char *sql;
    int nparams;
} statement_t;

static statement_t statements[STORE_PG_MAX_STATEMENTS];
static int num_statements;

/* One statement of a unit: which, and where its parameters start in the offsets array. */
typedef struct st_unit_stmt_t {
    uint16_t statement;
    uint16_t nparams;
    uint32_t first_param;
} unit_stmt_t;

/* PG_MSG_UNIT payload, followed by uint32_t param_offsets[total_params] and the text arena. */
typedef struct st_unit_t {
    rt_msg_t *next_in_flight; /* the connection's FIFO of units sent and not yet answered */
    uint64_t deadline_ms;
    uint32_t nstatements, total_params, arena_size;
    uint32_t results_seen; /* statement results collected so far */
    uint32_t steps_done;   /* prepare/exec steps finished (each ends with a NULL result) */
    uint32_t nsteps;
    bool prepare_sync_pending; /* the prepares' own Sync has not come back yet */
    uint8_t step_is_exec[2 * STORE_PG_MAX_UNIT_STATEMENTS];
    uint16_t step_statement[2 * STORE_PG_MAX_UNIT_STATEMENTS]; /* the statement of each step */
    unit_stmt_t stmts[STORE_PG_MAX_UNIT_STATEMENTS];
    store_pg_result_t reply; /* accumulated here, copied into the reply */
} unit_t;

#define NULL_PARAM UINT32_MAX

typedef enum en_conn_state_t { CONN_DOWN, CONN_CONNECTING, CONN_READY } conn_state_t;

typedef struct st_conn_t {
    store_pg_t *pool;
    PGconn *pg;
    conn_state_t state;
    _Atomic int connected; /* read by other threads for readiness */
    uint32_t generation;
    rt_io_op_t poll_in, poll_out; /* outstanding one-shot polls, 0 when none */
    uint64_t backoff_ms;
    rt_actor_timer_t reconnect_timer, watchdog_timer;
    rt_msg_t *in_flight_head, *in_flight_tail;
    uint32_t in_flight;
    rt_msg_t *waiting_head, *waiting_tail; /* accepted units beyond the pipeline bound */
    uint32_t waiting;
    uint64_t prepared[(STORE_PG_MAX_STATEMENTS + 63) / 64];
    char *url;
} conn_t;

struct st_store_pg_t {
    rt_runtime_t *rt;
    store_pg_config_t config;
    int per_worker;
    rt_actor_t **conns;       /* [worker * per_worker + i] */
    _Atomic int stopped;      /* connection actors that have closed, for a synchronous free */
    _Atomic unsigned *cursor; /* per worker round robin */
};

const char *store_pg_status_name(store_pg_status_t status)
{
    static const char *const names[] = {"ok",      "error", "unavailable", "connection_lost",
                                        "timeout", "busy"};
    return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

int store_pg_statement(const char *name, const char *sql)
{
    if (num_statements == STORE_PG_MAX_STATEMENTS)
        rt_log_fatal("pg", "too many statements (max %d)", STORE_PG_MAX_STATEMENTS);
    statement_t *st = &statements[num_statements];
    snprintf(st->name, sizeof(st->name), "s%d", num_statements);
    st->sql = sql;
    (void)name; /* the name documents the call site; the wire name is short and unique */
    return num_statements++;
}

/* ---- replies ---- */

static void dispose_result(rt_msg_t *msg)
{
    store_pg_result_t *r = rt_msg_payload(msg);
    for (int i = 0; i != r->nresults; ++i)
        PQclear(r->results[i]);
    r->nresults = 0;
}

/* Sends the unit's reply to its requester and frees the unit. */
static void finish_unit(rt_msg_t *unit_msg, store_pg_status_t status, const char *message)
{
    unit_t *unit = rt_msg_payload(unit_msg);
    if (status != STORE_PG_OK && unit->reply.status == STORE_PG_OK) {
        unit->reply.status = status;
        snprintf(unit->reply.message, sizeof(unit->reply.message), "%s", message);
    }
    if (unit->reply.status != STORE_PG_OK) { /* no partial results on failure */
        for (int i = 0; i != unit->reply.nresults; ++i)
            PQclear(unit->reply.results[i]);
        unit->reply.nresults = 0;
    }
    rt_msg_t *reply = rt_msg_new(STORE_PG_MSG_RESULT, sizeof(store_pg_result_t));
    memcpy(rt_msg_payload(reply), &unit->reply, sizeof(unit->reply));
    reply->dispose = dispose_result;
    unit->reply.nresults = 0; /* ownership of the PGresults moved to the reply */
    rt_actor_reply(unit_msg, reply);
    rt_msg_free(unit_msg);
}

static void fail_all(conn_t *c, store_pg_status_t status, const char *message)
{
    rt_msg_t *m;
    while ((m = c->in_flight_head) != NULL) {
        c->in_flight_head = ((unit_t *)rt_msg_payload(m))->next_in_flight;
        finish_unit(m, status, message);
    }
    c->in_flight_tail = NULL;
    c->in_flight = 0;
    while ((m = c->waiting_head) != NULL) {
        c->waiting_head = ((unit_t *)rt_msg_payload(m))->next_in_flight;
        finish_unit(m, status, message);
    }
    c->waiting_tail = NULL;
    c->waiting = 0;
}

/* ---- polling the socket through the ring ---- */

static uint64_t tag(conn_t *c, int what)
{
    return ((uint64_t)c->generation << 8) | (uint64_t)what;
}

static void want_read(rt_actor_t *self, conn_t *c)
{
    if (c->poll_in == 0)
        c->poll_in = rt_io_poll(self, PQsocket(c->pg), POLLIN, tag(c, TAG_POLL_IN));
}

static void want_write(rt_actor_t *self, conn_t *c)
{
    if (c->poll_out == 0)
        c->poll_out = rt_io_poll(self, PQsocket(c->pg), POLLOUT, tag(c, TAG_POLL_OUT));
}

static void cancel_polls(rt_actor_t *self, conn_t *c)
{
    if (c->poll_in != 0)
        rt_io_cancel(self, c->poll_in);
    if (c->poll_out != 0)
        rt_io_cancel(self, c->poll_out);
    c->poll_in = c->poll_out = 0;
}

/* ---- connection life cycle ---- */

static void schedule_reconnect(rt_actor_t *self, conn_t *c)
{
    /* exponential backoff with full jitter, so that many workers do not reconnect in step */
    c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS : c->backoff_ms * 2;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uint64_t delay = c->backoff_ms / 2 + (uint64_t)random() % (c->backoff_ms / 2 + 1);
    rt_actor_timer_start(self, &c->reconnect_timer, delay, TAG_RECONNECT);
}

static void drop_connection(rt_actor_t *self, conn_t *c, store_pg_status_t status,
                            const char *reason)
{
    /* `reason` often points into the connection's own error buffer, which PQfinish frees */
    char why[256];
    snprintf(why, sizeof(why), "%s", reason);
    if (c->state == CONN_READY)
        rt_log_warn("pg", "connection lost: %s", why);
    cancel_polls(self, c);
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = CONN_DOWN;
    atomic_store(&c->connected, 0);
    ++c->generation;
    fail_all(c, status, why);
    memset(c->prepared, 0, sizeof(c->prepared));
    rt_actor_timer_cancel(self, &c->watchdog_timer);
    schedule_reconnect(self, c);
}

static void continue_connect(rt_actor_t *self, conn_t *c);
static void pump(rt_actor_t *self, conn_t *c);

static void start_connect(rt_actor_t *self, conn_t *c)
{
    char options[96];
    snprintf(options, sizeof(options), "-c statement_timeout=%llu",
             (unsigned long long)c->pool->config.statement_timeout_ms);
    const char *keys[] = {"dbname",     "application_name", "options",
                          "keepalives", "keepalives_idle",  NULL};
    const char *values[] = {c->url, "intentd", options, "1", "30", NULL};
    c->pg = PQconnectStartParams(keys, values, 1);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        drop_connection(self, c, STORE_PG_UNAVAILABLE,
                        c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    c->state = CONN_CONNECTING;
    rt_actor_timer_start(self, &c->watchdog_timer, c->pool->config.connect_timeout_ms,
                         TAG_CONNECT_DEADLINE);
    continue_connect(self, c);
}

static void on_connected(rt_actor_t *self, conn_t *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        drop_connection(self, c, STORE_PG_UNAVAILABLE, PQerrorMessage(c->pg));
        return;
    }
    if (c->backoff_ms != 0)
        rt_log_info("pg", "connected again");
    c->state = CONN_READY;
    c->backoff_ms = 0;
    atomic_store(&c->connected, 1);
    rt_actor_timer_start(self, &c->watchdog_timer, WATCHDOG_PERIOD_MS, TAG_WATCHDOG);
    want_read(self, c);
    pump(self, c); /* what arrived while connecting */
}

static void continue_connect(rt_actor_t *self, conn_t *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        want_read(self, c);
        break;
    case PGRES_POLLING_WRITING:
        want_write(self, c);
        break;
    case PGRES_POLLING_OK:
        rt_actor_timer_cancel(self, &c->watchdog_timer);
        on_connected(self, c);
        break;
    default:
        drop_connection(self, c, STORE_PG_UNAVAILABLE, PQerrorMessage(c->pg));
        break;
    }
}

/* ---- sending units ---- */

/* Prepares the unit's statements that this connection has not prepared yet, in a Sync segment of
 * their own: inside the unit's segment, a statement of the unit that failed before them would
 * abort the PREPAREs too, and the connection would then believe them prepared. */
static bool send_prepares(conn_t *c, unit_t *unit)
{
    bool any = false;
    for (uint32_t i = 0; i != unit->nstatements; ++i) {
        uint32_t id = unit->stmts[i].statement;
        uint64_t bit = UINT64_C(1) << (id % 64);
        uint64_t *word = &c->prepared[id / 64];
        if ((*word & bit) != 0)
            continue;
        if (!PQsendPrepare(c->pg, statements[id].name, statements[id].sql, 0, NULL))
            return false;
        *word |= bit; /* cleared again if the server refuses it (record_result) */
        unit->step_statement[unit->nsteps] = (uint16_t)id;
        unit->step_is_exec[unit->nsteps++] = 0;
        any = true;
    }
    if (any && !PQpipelineSync(c->pg))
        return false;
    unit->prepare_sync_pending = any;
    return true;
}

static bool send_statement(conn_t *c, unit_t *unit, const unit_stmt_t *us)
{
    statement_t *st = &statements[us->statement];
    const uint32_t *offsets = (const uint32_t *)(unit + 1);
    const char *arena = (const char *)(offsets + unit->total_params);
    const char *values[STORE_PG_MAX_PARAMS];
    for (uint32_t i = 0; i != us->nparams; ++i) {
        uint32_t off = offsets[us->first_param + i];
        values[i] = off == NULL_PARAM ? NULL : arena + off;
    }
    if (!PQsendQueryPrepared(c->pg, st->name, us->nparams, values, NULL, NULL, 0))
        return false;
    unit->step_statement[unit->nsteps] = (uint16_t)us->statement;
    unit->step_is_exec[unit->nsteps++] = 1;
    return true;
}

/* Puts one unit on the wire: its statements, then a Sync that ends its implicit transaction. */
static bool send_unit(rt_actor_t *self, conn_t *c, rt_msg_t *unit_msg)
{
    unit_t *unit = rt_msg_payload(unit_msg);
    if (!send_prepares(c, unit))
        return false;
    for (uint32_t i = 0; i != unit->nstatements; ++i)
        if (!send_statement(c, unit, &unit->stmts[i]))
            return false;
    if (!PQpipelineSync(c->pg))
        return false;
    unit->next_in_flight = NULL;
    if (c->in_flight_tail != NULL)
        ((unit_t *)rt_msg_payload(c->in_flight_tail))->next_in_flight = unit_msg;
    else
        c->in_flight_head = unit_msg;
    c->in_flight_tail = unit_msg;
    ++c->in_flight;
    return true;
}

static void flush(rt_actor_t *self, conn_t *c)
{
    int ret = PQflush(c->pg);
    if (ret == 1)
        want_write(self, c); /* the kernel buffer is full: finish when writable */
    else if (ret == -1)
        drop_connection(self, c, STORE_PG_CONNECTION_LOST, PQerrorMessage(c->pg));
}

/* Moves waiting units into the pipeline while it has room. */
static void pump(rt_actor_t *self, conn_t *c)
{
    bool sent = false;
    while (c->waiting_head != NULL && c->in_flight < c->pool->config.pipeline_max) {
        rt_msg_t *m = c->waiting_head;
        c->waiting_head = ((unit_t *)rt_msg_payload(m))->next_in_flight;
        if (c->waiting_head == NULL)
            c->waiting_tail = NULL;
        --c->waiting;
        if (!send_unit(self, c, m)) {
            finish_unit(m, STORE_PG_CONNECTION_LOST, PQerrorMessage(c->pg));
            drop_connection(self, c, STORE_PG_CONNECTION_LOST, PQerrorMessage(c->pg));
            return;
        }
        sent = true;
    }
    if (sent)
        flush(self, c);
}

static void on_unit(rt_actor_t *self, conn_t *c, rt_msg_t *msg)
{
    /* down (between attempts): refuse at once; connecting: wait, bounded by the connect
     * timeout, after which the unit is failed with the connection */
    if (c->state == CONN_DOWN) {
        rt_msg_keep(msg);
        finish_unit(msg, STORE_PG_UNAVAILABLE, "database unavailable: reconnecting");
        return;
    }
    rt_msg_keep(msg);
    if (c->waiting >= c->pool->config.queue_max) { /* bound the backlog behind the pipeline */
        finish_unit(msg, STORE_PG_BUSY, "database busy: too many queries waiting");
        return;
    }
    unit_t *unit = rt_msg_payload(msg);
    unit->deadline_ms = rt_now_ms() + c->pool->config.statement_timeout_ms + 1000;
    unit->next_in_flight = NULL;
    if (c->waiting_tail != NULL)
        ((unit_t *)rt_msg_payload(c->waiting_tail))->next_in_flight = msg;
    else
        c->waiting_head = msg;
    c->waiting_tail = msg;
    ++c->waiting;
    if (c->state == CONN_READY)
        pump(self, c);
}

/* ---- receiving results ---- */

static void record_result(conn_t *c, unit_t *unit, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    bool is_exec = unit->step_is_exec[unit->steps_done];
    if (!is_exec && st != PGRES_COMMAND_OK) { /* not prepared after all: prepare it next time */
        uint32_t id = unit->step_statement[unit->steps_done];
        c->prepared[id / 64] &= ~(UINT64_C(1) << (id % 64));
    }
    if ((st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) &&
        unit->reply.status == STORE_PG_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* class 08 (connection exception) and 57P (the server is shutting down or restarting)
         * are the connection failing, not the statement: say so, so callers can retry */
        bool lost =
            state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
        unit->reply.status = lost ? STORE_PG_CONNECTION_LOST : STORE_PG_ERROR;
        snprintf(unit->reply.sqlstate, sizeof(unit->reply.sqlstate), "%s",
                 state != NULL ? state : "");
        snprintf(unit->reply.message, sizeof(unit->reply.message), "%s", PQresultErrorMessage(res));
    }
    if (is_exec && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) &&
        unit->reply.nresults < STORE_PG_MAX_UNIT_STATEMENTS) {
        unit->reply.results[unit->reply.nresults++] = res;
        return;
    }
    PQclear(res);
}

/* Reads every complete result libpq has buffered and hands finished units back. */
static void drain_results(rt_actor_t *self, conn_t *c)
{
    while (c->in_flight_head != NULL && !PQisBusy(c->pg)) {
        unit_t *unit = rt_msg_payload(c->in_flight_head);
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) { /* the end of one step's results */
            if (unit->steps_done < unit->nsteps)
                ++unit->steps_done;
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            if (unit->prepare_sync_pending) { /* the end of the prepares, not of the unit */
                unit->prepare_sync_pending = false;
                continue;
            }
            rt_msg_t *done = c->in_flight_head;
            c->in_flight_head = unit->next_in_flight;
            if (c->in_flight_head == NULL)
                c->in_flight_tail = NULL;
            --c->in_flight;
            finish_unit(done, STORE_PG_OK, "");
            continue;
        }
        if (unit->steps_done < unit->nsteps)
            record_result(c, unit, res);
        else
            PQclear(res);
    }
}

static void on_readable(rt_actor_t *self, conn_t *c)
{
    if (c->state == CONN_CONNECTING) {
        continue_connect(self, c);
        return;
    }
    if (!PQconsumeInput(c->pg)) {
        drop_connection(self, c, STORE_PG_CONNECTION_LOST, PQerrorMessage(c->pg));
        return;
    }
    drain_results(self, c);
    if (c->state == CONN_READY) {
        want_read(self, c);
        pump(self, c);
    }
}

static void on_io(rt_actor_t *self, conn_t *c, rt_io_result_t *io)
{
    int what = (int)(io->tag & 0xff);
    if ((io->tag >> 8) != c->generation)
        return; /* a completion of a connection already torn down (often -ECANCELED) */
    if (what == TAG_POLL_IN)
        c->poll_in = 0;
    else
        c->poll_out = 0;
    if (io->res < 0) {
        drop_connection(self, c, STORE_PG_CONNECTION_LOST, strerror(-io->res));
        return;
    }
    if (what == TAG_POLL_IN)
        on_readable(self, c);
    else if (c->state == CONN_CONNECTING)
        continue_connect(self, c);
    else
        flush(self, c);
}

static void on_timer(rt_actor_t *self, conn_t *c, uint64_t which)
{
    if (which == TAG_RECONNECT) {
        start_connect(self, c);
    } else if (which == TAG_CONNECT_DEADLINE && c->state == CONN_CONNECTING) {
        drop_connection(self, c, STORE_PG_UNAVAILABLE, "connect timed out");
    } else if (which == TAG_WATCHDOG && c->state == CONN_READY) {
        /* the server enforces statement_timeout; this catches a server or network that went
         * silent without closing the connection */
        unit_t *head = c->in_flight_head != NULL ? rt_msg_payload(c->in_flight_head) : NULL;
        if (head != NULL && rt_now_ms() > head->deadline_ms) {
            drop_connection(self, c, STORE_PG_TIMEOUT, "no answer from the database in time");
            return;
        }
        rt_actor_timer_start(self, &c->watchdog_timer, WATCHDOG_PERIOD_MS, TAG_WATCHDOG);
    }
}

static void conn_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    conn_t *c = rt_actor_state(self);
    switch (msg->type) {
    case PG_MSG_START:
        start_connect(self, c);
        break;
    case PG_MSG_UNIT:
        on_unit(self, c, msg);
        break;
    case RT_MSG_IO:
        on_io(self, c, rt_msg_payload(msg));
        break;
    case RT_MSG_TIMER:
        on_timer(self, c, msg->corr);
        break;
    case RT_MSG_STOP:
        cancel_polls(self, c);
        rt_actor_timer_cancel(self, &c->reconnect_timer);
        rt_actor_timer_cancel(self, &c->watchdog_timer);
        fail_all(c, STORE_PG_UNAVAILABLE, "shutting down");
        if (c->pg != NULL)
            PQfinish(c->pg);
        c->pg = NULL;
        atomic_store(&c->connected, 0);
        free(c->url);
        atomic_fetch_add(&c->pool->stopped, 1);
        break;
    }
}

/* ---- the pool ---- */

store_pg_t *store_pg_create(rt_runtime_t *rt, const store_pg_config_t *config)
{
    store_pg_t *pg = calloc(1, sizeof(*pg));
    assert(pg != NULL && config->url != NULL);
    pg->rt = rt;
    pg->config = *config;
    if (pg->config.connections_per_worker <= 0)
        pg->config.connections_per_worker = 2;
    if (pg->config.queue_max == 0)
        pg->config.queue_max = 1024;
    if (pg->config.pipeline_max == 0)
        pg->config.pipeline_max = 256;
    if (pg->config.connect_timeout_ms == 0)
        pg->config.connect_timeout_ms = 5000;
    if (pg->config.statement_timeout_ms == 0)
        pg->config.statement_timeout_ms = 10000;
    pg->per_worker = pg->config.connections_per_worker;
    size_t n = (size_t)rt->num_workers * (size_t)pg->per_worker;
    pg->conns = calloc(n, sizeof(rt_actor_t *));
    pg->cursor = calloc((size_t)rt->num_workers, sizeof(*pg->cursor));
    for (size_t i = 0; i != n; ++i) {
        pg->conns[i] =
            rt_actor_spawn(rt, (int)(i / (size_t)pg->per_worker), conn_behaviour, sizeof(conn_t));
        conn_t *c = rt_actor_state(pg->conns[i]);
        c->pool = pg;
        c->url = strdup(config->url);
        rt_actor_send(pg->conns[i], rt_msg_new(PG_MSG_START, 0));
    }
    return pg;
}

void store_pg_free(store_pg_t *pg)
{
    size_t n = (size_t)pg->rt->num_workers * (size_t)pg->per_worker;
    for (size_t i = 0; i != n; ++i)
        rt_actor_send_stop(pg->conns[i]);
    /* wait (bounded) until every connection has answered its units and closed */
    for (int waited_ms = 0; atomic_load(&pg->stopped) != (int)n && waited_ms < 10000; ++waited_ms)
        usleep(1000);
    for (size_t i = 0; i != n; ++i)
        rt_actor_release(pg->conns[i]);
    free(pg->conns);
    free(pg->cursor);
    free(pg);
}

bool store_pg_is_connected(store_pg_t *pg)
{
    size_t n = (size_t)pg->rt->num_workers * (size_t)pg->per_worker;
    for (size_t i = 0; i != n; ++i)
        if (atomic_load(&((conn_t *)rt_actor_state(pg->conns[i]))->connected))
            return true;
    return false;
}

static bool is_up(rt_actor_t *conn)
{
    return atomic_load_explicit(&((conn_t *)rt_actor_state(conn))->connected,
                                memory_order_relaxed) != 0;
}

/* Picks a connection on the caller's worker, round robin. */
static rt_actor_t *pick(store_pg_t *pg)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL); /* queries are made by actors */
    unsigned start = atomic_fetch_add_explicit(&pg->cursor[w->id], 1, memory_order_relaxed);
    rt_actor_t **mine = pg->conns + (size_t)w->id * (size_t)pg->per_worker;
    /* prefer a connected one, so that one connection reconnecting does not fail queries its
     * siblings could run */
    for (int k = 0; k != pg->per_worker; ++k) {
        rt_actor_t *conn = mine[(start + (unsigned)k) % (unsigned)pg->per_worker];
        if (is_up(conn))
            return conn;
    }
    /* none here (reconnecting after an outage, each on its own backoff): borrow another
     * worker's; the reply finds its way back, at the price of a cross-worker hop */
    size_t n = (size_t)pg->rt->num_workers * (size_t)pg->per_worker;
    for (size_t k = 0; k != n; ++k)
        if (is_up(pg->conns[(start + k) % n]))
            return pg->conns[(start + k) % n];
    return mine[start % (unsigned)pg->per_worker]; /* it answers UNAVAILABLE at once */
}

bool store_pg_transaction(store_pg_t *pg, rt_actor_t *self, uint64_t corr, int nstatements,
                          const int *stmt_ids, const int *nparams, const char *const *const *params)
{
    assert(nstatements > 0 && nstatements <= STORE_PG_MAX_UNIT_STATEMENTS);
    uint32_t total_params = 0, arena = 0;
    for (int s = 0; s != nstatements; ++s) {
        assert(stmt_ids[s] >= 0 && stmt_ids[s] < num_statements);
        assert(nparams[s] >= 0 && nparams[s] <= STORE_PG_MAX_PARAMS);
        total_params += (uint32_t)nparams[s];
        for (int p = 0; p != nparams[s]; ++p)
            if (params[s][p] != NULL)
                arena += (uint32_t)strlen(params[s][p]) + 1;
    }
    rt_msg_t *msg =
        rt_msg_new(PG_MSG_UNIT, sizeof(unit_t) + total_params * sizeof(uint32_t) + arena);
    unit_t *unit = rt_msg_payload(msg);
    uint32_t *offsets = (uint32_t *)(unit + 1);
    char *text = (char *)(offsets + total_params);
    uint32_t param = 0, pos = 0;
    unit->nstatements = (uint32_t)nstatements;
    unit->total_params = total_params;
    unit->arena_size = arena;
    for (int s = 0; s != nstatements; ++s) {
        unit->stmts[s] = (unit_stmt_t){(uint16_t)stmt_ids[s], (uint16_t)nparams[s], param};
        for (int p = 0; p != nparams[s]; ++p, ++param) {
            if (params[s][p] == NULL) {
                offsets[param] = NULL_PARAM;
                continue;
            }
            size_t len = strlen(params[s][p]) + 1;
            memcpy(text + pos, params[s][p], len);
            offsets[param] = pos;
            pos += (uint32_t)len;
        }
    }
    rt_actor_t *conn = pick(pg);
    rt_actor_retain(self);
    msg->reply_to = self;
    msg->corr = corr;
    if (!rt_actor_try_send(conn, msg, pg->config.queue_max)) {
        rt_msg_free(msg); /* drops the reply-to reference too */
        return false;
    }
    return true;
}

bool store_pg_query(store_pg_t *pg, rt_actor_t *self, uint64_t corr, int statement, int nparams,
                    const char *const *params)
{
    const char *const *param_sets[1] = {params};
    return store_pg_transaction(pg, self, corr, 1, &statement, &nparams, param_sets);
}
