/* store/pg and store/migrate against a real PostgreSQL (DATABASE_URL, started by
 * scripts/test.sh). Each test works in a database of its own, created and dropped here. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/migrate.h"
#include "store/pg.h"

#ifndef REPO_ROOT
#error "REPO_ROOT must name the repository"
#endif

static char db_name[64], db_url[512];
static rt_runtime_t *rt;
static store_pg_t *pool;

/* ---- a private database per test ---- */

static PGconn *admin(void)
{
    const char *url = getenv("DATABASE_URL");
    cr_assert_not_null(url, "DATABASE_URL is not set: run the tests through scripts/test.sh");
    PGconn *pg = PQconnectdb(url);
    /* bounded retry: a previous test may have just restarted the server */
    for (int tries = 0; PQstatus(pg) != CONNECTION_OK && tries != 100; ++tries) {
        PQfinish(pg);
        usleep(100000);
        pg = PQconnectdb(url);
    }
    cr_assert_eq(PQstatus(pg), CONNECTION_OK, "%s", PQerrorMessage(pg));
    return pg;
}

static void admin_exec(const char *sql)
{
    PGconn *pg = admin();
    PGresult *res = PQexec(pg, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(pg);
}

/* Builds a key=value connection string for `db` with DATABASE_URL's host, port and user. */
static void url_for(const char *db, char *out, size_t size)
{
    PQconninfoOption *opts = PQconninfoParse(getenv("DATABASE_URL"), NULL);
    cr_assert_not_null(opts);
    size_t len = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; ++o)
        if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
            len += (size_t)snprintf(out + len, size - len, "%s='%s' ", o->keyword, o->val);
    snprintf(out + len, size - len, "dbname='%s'", db);
    PQconninfoFree(opts);
}

static void fresh_database(void)
{
    static int counter;
    snprintf(db_name, sizeof(db_name), "t_pg_%d_%d", (int)getpid(), ++counter);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db_name);
    admin_exec(sql);
    url_for(db_name, db_url, sizeof(db_url));
}

static void drop_database(void)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
    admin_exec(sql);
}

static PGresult *query_direct(const char *sql)
{
    PGconn *pg = PQconnectdb(db_url);
    cr_assert_eq(PQstatus(pg), CONNECTION_OK);
    PGresult *res = PQexec(pg, sql);
    PQfinish(pg);
    return res;
}

/* ---- migrations ---- */

Test(store_migrate, applies_everything_once_from_empty_then_nothing, .fini = drop_database)
{
    fresh_database();
    int applied;
    char err[512];
    cr_assert(store_migrate(db_url, &applied, err, sizeof(err)), "%s", err);
    cr_assert_eq(applied, (int)store_migrations_count);
    cr_assert_gt(applied, 0);
    cr_assert(store_migrate(db_url, &applied, err, sizeof(err)), "%s", err);
    cr_assert_eq(applied, 0, "a re-run applied something again");
    PGresult *res = query_direct("SELECT count(*) FROM information_schema.tables WHERE table_name "
                                 "IN ('users','intents','executions','notifications','audit_log',"
                                 "'idempotency_keys','auth_nonces')");
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "7");
    PQclear(res);
}

static void *migrate_thread(void *arg)
{
    char err[512];
    int applied = 0;
    if (!store_migrate(db_url, &applied, err, sizeof(err)))
        return (void *)(intptr_t)-1;
    return (void *)(intptr_t)applied;
}

Test(store_migrate, concurrent_starts_apply_each_migration_once, .fini = drop_database)
{
    fresh_database();
    pthread_t threads[4];
    for (int i = 0; i != 4; ++i)
        pthread_create(&threads[i], NULL, migrate_thread, NULL);
    int total = 0;
    for (int i = 0; i != 4; ++i) {
        void *ret;
        pthread_join(threads[i], &ret);
        cr_assert_neq((intptr_t)ret, -1, "a concurrent migration failed");
        total += (int)(intptr_t)ret;
    }
    cr_assert_eq(total, (int)store_migrations_count);
}

Test(store_migrate, refuses_a_database_newer_than_the_binary, .fini = drop_database)
{
    fresh_database();
    int applied;
    char err[512];
    cr_assert(store_migrate(db_url, &applied, err, sizeof(err)), "%s", err);
    PQclear(query_direct("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')"));
    cr_assert_not(store_migrate(db_url, &applied, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "newer"), "%s", err);
}

Test(store_migrate, audit_log_is_append_only, .fini = drop_database)
{
    fresh_database();
    int applied;
    char err[512];
    cr_assert(store_migrate(db_url, &applied, err, sizeof(err)), "%s", err);
    PGresult *res = query_direct("INSERT INTO audit_log (actor, action) VALUES ('system', 'x')");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
    PQclear(res);
    res = query_direct("UPDATE audit_log SET action = 'y'");
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    res = query_direct("DELETE FROM audit_log");
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
}

/* ---- the pool, from actors ---- */

static int st_add, st_insert_user, st_insert_intent, st_insert_execution, st_sleep, st_count,
    st_double;

static void register_statements(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    st_add = store_pg_statement("add", "SELECT $1::int + 1");
    st_insert_user = store_pg_statement(
        "insert_user",
        "INSERT INTO users (wallet_address) VALUES (decode($1, 'hex')) RETURNING id");
    st_insert_intent = store_pg_statement(
        "insert_intent",
        "INSERT INTO intents (owner_id, name, chain_id, recipient, token, amount, frequency,"
        " start_at, status, min_interval, salt, on_chain_id, signature)"
        " VALUES ($1, 'rent', 31337, decode(repeat('11', 20), 'hex'),"
        " decode(repeat('22', 20), 'hex'), 100, 'daily', now(), 'active', 86100,"
        " decode(repeat('33', 32), 'hex'), decode($2, 'hex'), decode(repeat('44', 65), 'hex'))"
        " RETURNING id");
    st_insert_execution = store_pg_statement(
        "insert_execution",
        "INSERT INTO executions (intent_id, period, status, amount, executor, nonce, raw_tx,"
        " tx_hash) VALUES ($1, $2::int, $3, 100, decode(repeat('55', 20), 'hex'), $2::bigint,"
        " '\\x02', decode(repeat('66', 32), 'hex'))");
    st_sleep = store_pg_statement("sleep", "SELECT pg_sleep($1::float8)");
    st_count = store_pg_statement("count_users", "SELECT count(*) FROM users");
    st_double = store_pg_statement("double", "SELECT $1::int * 2"); /* first used late */
}

static void start_pool(store_pg_config_t config)
{
    register_statements();
    int applied;
    char err[512];
    cr_assert(store_migrate(db_url, &applied, err, sizeof(err)), "%s", err);
    rt_config_t rc = {.workers = 2};
    rt = rt_runtime_create(&rc);
    cr_assert(rt_runtime_start(rt));
    config.url = db_url;
    pool = store_pg_create(rt, &config);
}

static void stop_pool(void)
{
    store_pg_free(pool);
    usleep(100000); /* let the connection actors handle their stop */
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
}

static bool wait_connected(int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (store_pg_is_connected(pool))
            return true;
        usleep(10000);
    }
    return false;
}

/* A client actor: sends `remaining` queries one after another and checks each answer. */
enum { MSG_GO = RT_MSG_USER + 1 };
typedef struct {
    int remaining, value;
    int outstanding;
} client_t;

static _Atomic long answers_ok, answers_wrong, answers_failed, answers_busy_refused;
static _Atomic long statuses[8];

static void send_next(rt_actor_t *self, client_t *c)
{
    char value[16];
    snprintf(value, sizeof(value), "%d", c->value);
    const char *params[] = {value};
    if (!store_pg_query(pool, self, (uint64_t)c->value, st_add, 1, params)) {
        atomic_fetch_add(&answers_busy_refused, 1);
        c->remaining = 0;
    }
}

static void client_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    client_t *c = rt_actor_state(self);
    if (msg->type == MSG_GO) {
        send_next(self, c);
        return;
    }
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    atomic_fetch_add(&statuses[r->status], 1);
    if (r->status == STORE_PG_OK) {
        bool right = msg->corr == (uint64_t)c->value && r->nresults == 1 &&
                     atoi(PQgetvalue(r->results[0], 0, 0)) == c->value + 1;
        atomic_fetch_add(right ? &answers_ok : &answers_wrong, 1);
    } else {
        atomic_fetch_add(&answers_failed, 1);
    }
    c->value += 1000;
    if (--c->remaining > 0)
        send_next(self, c);
}

static long total_answers(void)
{
    return atomic_load(&answers_ok) + atomic_load(&answers_wrong) + atomic_load(&answers_failed) +
           atomic_load(&answers_busy_refused);
}

static rt_actor_t *spawn_clients(int n, int queries_each, rt_actor_t **out)
{
    for (int i = 0; i != n; ++i) {
        out[i] = rt_actor_spawn(rt, i % 2, client_behaviour, sizeof(client_t));
        client_t *c = rt_actor_state(out[i]);
        c->remaining = queries_each;
        c->value = i;
        rt_actor_send(out[i], rt_msg_new(MSG_GO, 0));
    }
    return out[0];
}

static void stop_clients(rt_actor_t **clients, int n)
{
    for (int i = 0; i != n; ++i) {
        rt_actor_send_stop(clients[i]);
        rt_actor_release(clients[i]);
    }
}

static void wait_answers(long target, int timeout_ms)
{
    for (int waited = 0; total_answers() < target && waited < timeout_ms; waited += 10)
        usleep(10000);
}

Test(store_pg, many_actors_each_get_their_own_answers, .fini = drop_database, .timeout = 120)
{
    fresh_database();
    start_pool((store_pg_config_t){0});
    cr_assert(wait_connected(10000));
    enum { CLIENTS = 200, EACH = 50 };
    static rt_actor_t *clients[CLIENTS];
    spawn_clients(CLIENTS, EACH, clients);
    wait_answers((long)CLIENTS * EACH, 60000);
    cr_assert_eq(atomic_load(&answers_wrong), 0, "an answer reached the wrong actor");
    cr_assert_eq(atomic_load(&answers_ok), (long)CLIENTS * EACH, "ok %ld failed %ld",
                 atomic_load(&answers_ok), atomic_load(&answers_failed));
    stop_clients(clients, CLIENTS);
    stop_pool();
}

/* ---- one-shot requests from a probe actor, for the rule tests ---- */

typedef struct {
    int kind;
} probe_t;

static _Atomic int probe_done;
static store_pg_result_t probe_result;
static char probe_value[3][64];

static void probe_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    probe_result.status = r->status;
    probe_result.nresults = r->nresults;
    memcpy(probe_result.sqlstate, r->sqlstate, sizeof(r->sqlstate));
    memcpy(probe_result.message, r->message, sizeof(r->message));
    for (int i = 0; i != r->nresults && i != 3; ++i)
        snprintf(probe_value[i], sizeof(probe_value[i]), "%s",
                 PQntuples(r->results[i]) > 0 ? PQgetvalue(r->results[i], 0, 0) : "");
    atomic_store(&probe_done, 1);
}

/* Messages to the probe actor that make it submit (it must be on a worker to submit). */
enum { MSG_SUBMIT = RT_MSG_USER + 2 };
typedef struct {
    int n;
    int ids[3];
    int nparams[3];
    const char *params[3][3];
} submission_t;

static void submitter_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type == MSG_SUBMIT) {
        submission_t *s = rt_msg_payload(msg);
        const char *const *sets[3] = {s->params[0], s->params[1], s->params[2]};
        if (!store_pg_transaction(pool, self, 1, s->n, s->ids, s->nparams, sets))
            atomic_store(&probe_done, -1);
        return;
    }
    probe_behaviour(self, msg);
}

static store_pg_result_t *run_unit(rt_actor_t *probe, submission_t s)
{
    atomic_store(&probe_done, 0);
    rt_msg_t *msg = rt_msg_new(MSG_SUBMIT, sizeof(s));
    memcpy(rt_msg_payload(msg), &s, sizeof(s));
    rt_actor_send(probe, msg);
    for (int waited = 0; atomic_load(&probe_done) == 0 && waited < 20000; waited += 5)
        usleep(5000);
    cr_assert_eq(atomic_load(&probe_done), 1, "no answer");
    return &probe_result;
}

Test(store_pg, transaction_commits_all_or_nothing_and_period_is_unique, .fini = drop_database,
     .timeout = 60)
{
    fresh_database();
    start_pool((store_pg_config_t){0});
    cr_assert(wait_connected(10000));
    rt_actor_t *probe = rt_actor_spawn(rt, 0, submitter_behaviour, 0);

    store_pg_result_t *r =
        run_unit(probe, (submission_t){.n = 1,
                                       .ids = {st_insert_user},
                                       .nparams = {1},
                                       .params = {{"aa"
                                                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}});
    cr_assert_eq(r->status, STORE_PG_OK, "%s", r->message);
    char user_id[64];
    snprintf(user_id, sizeof(user_id), "%s", probe_value[0]);

    /* a second user and a duplicate of the first in one unit: neither may stay */
    r = run_unit(probe, (submission_t){.n = 2,
                                       .ids = {st_insert_user, st_insert_user},
                                       .nparams = {1, 1},
                                       .params = {{"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
                                                  {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}});
    cr_assert_eq(r->status, STORE_PG_ERROR);
    cr_assert_str_eq(r->sqlstate, "23505");
    PGresult *res = query_direct("SELECT count(*) FROM users");
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "1", "the failed unit left a row behind");
    PQclear(res);

    /* two statements, both fine: both results come back, in order */
    r = run_unit(probe, (submission_t){.n = 2,
                                       .ids = {st_insert_user, st_count},
                                       .nparams = {1, 0},
                                       .params = {{"cccccccccccccccccccccccccccccccccccccccc"}}});
    cr_assert_eq(r->status, STORE_PG_OK, "%s", r->message);
    cr_assert_eq(r->nresults, 2);
    cr_assert_str_eq(probe_value[1], "2");

    /* one execution per intent period */
    r = run_unit(probe, (submission_t){.n = 1,
                                       .ids = {st_insert_intent},
                                       .nparams = {2},
                                       .params = {{user_id, "77777777777777777777777777777777"
                                                            "77777777777777777777777777777777"}}});
    cr_assert_eq(r->status, STORE_PG_OK, "%s", r->message);
    char intent_id[64];
    snprintf(intent_id, sizeof(intent_id), "%s", probe_value[0]);
    r = run_unit(probe, (submission_t){.n = 1,
                                       .ids = {st_insert_execution},
                                       .nparams = {3},
                                       .params = {{intent_id, "0", "broadcast"}}});
    cr_assert_eq(r->status, STORE_PG_OK, "%s", r->message);
    r = run_unit(probe, (submission_t){.n = 1,
                                       .ids = {st_insert_execution},
                                       .nparams = {3},
                                       .params = {{intent_id, "0", "signed"}}});
    cr_assert_eq(r->status, STORE_PG_ERROR, "a second execution for period 0 was stored");
    cr_assert_str_eq(r->sqlstate, "23505");
    r = run_unit(probe, (submission_t){.n = 1,
                                       .ids = {st_insert_execution},
                                       .nparams = {3},
                                       .params = {{intent_id, "1", "bogus"}}});
    cr_assert_eq(r->status, STORE_PG_ERROR, "a bad status was stored");
    cr_assert_str_eq(r->sqlstate, "23514");

    rt_actor_send_stop(probe);
    rt_actor_release(probe);
    stop_pool();
}

/* A statement first used in a unit whose earlier statement fails: the failure must not cost the
 * connection that statement (its PREPARE used to be aborted with the unit while the connection
 * believed it prepared, so every later use failed until a reconnect). */
Test(store_pg, a_failed_unit_leaves_its_statements_usable, .fini = drop_database, .timeout = 60)
{
    fresh_database();
    start_pool((store_pg_config_t){.connections_per_worker = 1});
    cr_assert(wait_connected(10000));
    rt_actor_t *probe = rt_actor_spawn(rt, 0, submitter_behaviour, 0);
    store_pg_result_t *r = run_unit(probe, (submission_t){.n = 2,
                                                          .ids = {st_add, st_double},
                                                          .nparams = {1, 1},
                                                          .params = {{"not a number"}, {"1"}}});
    cr_assert_eq(r->status, STORE_PG_ERROR);
    cr_assert_str_eq(r->sqlstate, "22P02");
    for (int i = 0; i != 3; ++i) { /* whichever connection answers, each must know it */
        r = run_unit(
            probe, (submission_t){.n = 1, .ids = {st_double}, .nparams = {1}, .params = {{"21"}}});
        cr_assert_eq(r->status, STORE_PG_OK, "%s", r->message);
        cr_assert_str_eq(probe_value[0], "42");
    }
    rt_actor_send_stop(probe);
    rt_actor_release(probe);
    stop_pool();
}

Test(store_pg, a_full_queue_refuses_at_once_and_nothing_hangs, .fini = drop_database, .timeout = 60)
{
    fresh_database();
    start_pool((store_pg_config_t){.connections_per_worker = 1, .queue_max = 8, .pipeline_max = 2});
    cr_assert(wait_connected(10000));
    rt_actor_t *probe = rt_actor_spawn(rt, 0, submitter_behaviour, 0);
    /* a slow query holds the pipeline while a burst arrives from many actors */
    enum { CLIENTS = 300 };
    static rt_actor_t *clients[CLIENTS];
    atomic_store(&probe_done, 0);
    rt_msg_t *msg = rt_msg_new(MSG_SUBMIT, sizeof(submission_t));
    *(submission_t *)rt_msg_payload(msg) =
        (submission_t){.n = 1, .ids = {st_sleep}, .nparams = {1}, .params = {{"0.5"}}};
    rt_actor_send(probe, msg);
    usleep(50000);
    spawn_clients(CLIENTS, 1, clients);
    wait_answers(CLIENTS, 30000);
    cr_assert_eq(total_answers(), CLIENTS, "some request never got an answer");
    long refused = atomic_load(&answers_busy_refused) + atomic_load(&statuses[STORE_PG_BUSY]);
    cr_assert_gt(refused, 0, "the bound never refused");
    cr_assert_gt(atomic_load(&answers_ok), 0);
    cr_assert_eq(atomic_load(&answers_wrong), 0);
    stop_clients(clients, CLIENTS);
    rt_actor_send_stop(probe);
    rt_actor_release(probe);
    stop_pool();
}

Test(store_pg, a_database_that_is_down_answers_unavailable_quickly, .timeout = 60)
{
    register_statements();
    /* nothing listens on port 1 */
    snprintf(db_url, sizeof(db_url), "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2");
    rt_config_t rc = {.workers = 2};
    rt = rt_runtime_create(&rc);
    cr_assert(rt_runtime_start(rt));
    pool = store_pg_create(rt, &(store_pg_config_t){.url = db_url});
    enum { CLIENTS = 20 };
    static rt_actor_t *clients[CLIENTS];
    spawn_clients(CLIENTS, 3, clients);
    wait_answers(CLIENTS * 3, 10000);
    cr_assert_eq(total_answers(), CLIENTS * 3, "a query hung while the database was down");
    cr_assert_eq(atomic_load(&statuses[STORE_PG_UNAVAILABLE]), CLIENTS * 3);
    stop_clients(clients, CLIENTS);
    stop_pool();
}

static void restart_postgres(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/scripts/services.sh restart pg >/dev/null", REPO_ROOT);
    cr_assert_eq(system(cmd), 0, "restarting PostgreSQL failed");
}

Test(store_pg, restart_in_the_middle_of_a_load_then_healthy, .fini = drop_database, .timeout = 180)
{
    fresh_database();
    start_pool((store_pg_config_t){0});
    cr_assert(wait_connected(10000));
    enum { CLIENTS = 40, EACH = 2000 };
    static rt_actor_t *clients[CLIENTS];
    spawn_clients(CLIENTS, EACH, clients);
    usleep(200000);
    restart_postgres();
    wait_answers((long)CLIENTS * EACH, 120000);
    /* every query was answered: with its right result, or with a clear failure */
    cr_assert_eq(total_answers(), (long)CLIENTS * EACH, "answered %ld of %ld", total_answers(),
                 (long)CLIENTS * EACH);
    cr_assert_eq(atomic_load(&answers_wrong), 0);
    cr_assert_gt(atomic_load(&answers_failed), 0, "the restart went unnoticed");
    cr_assert_eq(atomic_load(&statuses[STORE_PG_ERROR]), 0);
    stop_clients(clients, CLIENTS);
    /* and the pool is healthy again: a fresh round succeeds in full */
    cr_assert(wait_connected(20000));
    usleep(500000); /* every connection has had time to come back */
    atomic_store(&answers_ok, 0);
    atomic_store(&answers_failed, 0);
    atomic_store(&answers_busy_refused, 0);
    atomic_store(&answers_wrong, 0);
    spawn_clients(CLIENTS, 20, clients);
    wait_answers(CLIENTS * 20, 30000);
    cr_assert_eq(atomic_load(&answers_ok), CLIENTS * 20, "after the restart: ok %ld failed %ld",
                 atomic_load(&answers_ok), atomic_load(&answers_failed));
    stop_clients(clients, CLIENTS);
    stop_pool();
}
