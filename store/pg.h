/*
 * PostgreSQL through non-blocking libpq in pipeline mode, on the runtime's rings.
 *
 * Each worker has its own few connections, each owned by a connection actor. Callers (actors)
 * submit a unit: one statement, or several that must commit together. A unit travels down the
 * connection's pipeline as its statements followed by one Sync, which makes them one implicit
 * transaction: all commit, or none does, with no BEGIN/COMMIT round trips. Many units are in
 * flight at once per connection, so a busy worker pays about one network round trip per batch,
 * not per query. The connection's socket is polled through the worker's io_uring.
 *
 * Statements are registered once, before the runtime starts, and prepared lazily on each
 * connection the first time they are used there (and again after a reconnect).
 *
 * Every unit gets exactly one reply (STORE_PG_MSG_RESULT) to the submitting actor: the results,
 * or an error saying what happened. Nothing waits without bound: a full queue refuses at once
 * (store_pg_submit returns false: the API's 503), a database that is down is answered with
 * STORE_PG_UNAVAILABLE while the connection reconnects with backoff and jitter, and a connection
 * lost mid-flight fails its units with STORE_PG_CONNECTION_LOST (they may or may not have
 * committed; callers that need to know re-read).
 */
#ifndef STORE_PG_H
#define STORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include "runtime/actor.h"
#include "runtime/worker.h"

#define STORE_PG_MAX_STATEMENTS 256    /* registered statements, process-wide */
#define STORE_PG_MAX_UNIT_STATEMENTS 8 /* statements in one unit (one transaction) */
#define STORE_PG_MAX_PARAMS 32         /* parameters of one statement */

/** Message type of a reply. Payload: store_pg_result_t. */
#define STORE_PG_MSG_RESULT (RT_MSG_USER - 16)

typedef enum en_store_pg_status_t {
    STORE_PG_OK = 0,
    STORE_PG_ERROR,           /* the server refused a statement: see sqlstate and message */
    STORE_PG_UNAVAILABLE,     /* not connected (the database is down or restarting) */
    STORE_PG_CONNECTION_LOST, /* the connection broke while the unit was in flight */
    STORE_PG_TIMEOUT,         /* no answer within the deadline; the connection was reset */
    STORE_PG_BUSY,            /* accepted, but the connection's backlog was full: not run */
} store_pg_status_t;

/** The reply payload. Results are owned by the message and cleared when it is freed. */
typedef struct st_store_pg_result_t {
    store_pg_status_t status;
    int nresults;                                    /* one per statement when status is OK */
    PGresult *results[STORE_PG_MAX_UNIT_STATEMENTS]; /* PGRES_TUPLES_OK / PGRES_COMMAND_OK */
    char sqlstate[6];                                /* e.g. "23505" unique violation */
    char message[256];
} store_pg_result_t;

typedef struct st_store_pg_config_t {
    const char *url;               /* DATABASE_URL (libpq URI or key=value string) */
    int connections_per_worker;    /* default 2 */
    uint32_t queue_max;            /* units waiting per connection before "busy"; default 1024 */
    uint32_t pipeline_max;         /* units in flight per connection; default 256 */
    uint64_t connect_timeout_ms;   /* default 5000 */
    uint64_t statement_timeout_ms; /* server side, and the client's watchdog; default 10000 */
} store_pg_config_t;

typedef struct st_store_pg_t store_pg_t;

/** Registers a statement (SQL with $1..$n) under a name; returns its id. Before any pool is
 * created; aborts on overflow (a programming error). */
int store_pg_statement(const char *name, const char *sql);
/** Spawns the connection actors on every worker of `rt` (running) and starts connecting. */
store_pg_t *store_pg_create(rt_runtime_t *rt, const store_pg_config_t *config);
/** Stops the connection actors (in-flight units are failed), waits until they have closed
 * (bounded), and frees the pool. Call while the runtime still runs. */
void store_pg_free(store_pg_t *pg);

/** Submits one statement with text parameters (NULL for SQL NULL). The reply comes to `self`
 * with `corr`. Returns false, sending nothing, when the connection's queue is full. */
bool store_pg_query(store_pg_t *pg, rt_actor_t *self, uint64_t corr, int statement, int nparams,
                    const char *const *params);
/** Submits up to STORE_PG_MAX_UNIT_STATEMENTS statements as one transaction. */
bool store_pg_transaction(store_pg_t *pg, rt_actor_t *self, uint64_t corr, int nstatements,
                          const int *statements, const int *nparams,
                          const char *const *const *params);
/** True when at least one connection on the calling worker is connected (for /readyz). */
bool store_pg_is_connected(store_pg_t *pg);

/** A short name for a status. */
const char *store_pg_status_name(store_pg_status_t status);

#endif
