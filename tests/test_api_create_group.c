/* POST /api/intents under concurrency, against the intentd binary (one worker, so that creates
 * queue behind the units in flight and commit in groups) and a real PostgreSQL: every create
 * gets the answer it would have had alone (201 once per onChainId, 409 for each repeat of the same
 * terms and salt, also when a repeat shares a group with others), each row and its audit row are
 * stored once, and groups really form (rows committed by one transaction share its xmin). The
 * audit table is locked at the start of each round so that the queue forms whatever the speed. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "support/api_server.h"

#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
#define RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"

#define ROUNDS 4
#define CLIENTS 32
#define UNITS_IN_FLIGHT 2 /* create units per worker (actors/api_intents.c) */
#define REPEATS 4 /* in a round with repeats, CLIENTS / REPEATS clients post the same intent */
#define DISTINCT_ROUNDS 2 /* the first rounds have no repeats: their groups all commit */

/* the rate limits out of reach: every create comes from one user and one address */
static const char *const env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                                  "USDC_ADDRESS=" USDC,
                                  "WORKERS=1",
                                  "API_RATE_LIMIT=1000000",
                                  "USER_RATE_LIMIT=1000000",
                                  NULL};

typedef struct st_client_t {
    const char *token;
    pthread_barrier_t *start;
    char json[1024];
    int status;
    char id[37];
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    static __thread char body[16384];
    pthread_barrier_wait(c->start);
    c->status = http("POST", "/api/intents", c->token, NULL, c->json, body, sizeof(body));
    json_t *o = c->status == 201 ? json_loads(body, 0, NULL) : NULL;
    snprintf(c->id, sizeof(c->id), "%s", json_string_value(json_object_get(o, "id")) ?: "");
    json_decref(o);
    return NULL;
}

/* Waits (bounded) until the server's create units wait on the lock `lock` holds, gives the server
 * time to read the other requests into its queue, and releases the lock. */
static void release_when_units_wait(PGconn *lock)
{
    int waiting = 0;
    for (int i = 0; i != 400 && waiting < UNITS_IN_FLIGHT; ++i) {
        waiting = atoi(db_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                                " 'Lock' AND query LIKE '%INSERT INTO intents%'"));
        usleep(50000);
    }
    cr_assert_eq(waiting, UNITS_IN_FLIGHT, "the first creates never reached the lock");
    usleep(300000); /* the rest of the round's requests: read and queued in microseconds */
    PGresult *res = PQexec(lock, "COMMIT");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(lock));
    PQclear(res);
    PQfinish(lock);
}

/* One round: CLIENTS creates at once; with `repeats`, clients i with i % REPEATS == 0 share one
 * salt (their groups fail and are sent again one by one). */
static void round_of(const char *token, int round, bool repeats, int *created, int *conflicts)
{
    static client_t clients[CLIENTS];
    pthread_t threads[CLIENTS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CLIENTS);
    /* The audit table is locked for the start of the round: the first creates' units (one per
     * connection) wait on it in the database, so the others must queue behind them and go out in
     * groups once it is released, however fast the server is. */
    PGconn *lock = connect_db(db_url);
    PGresult *res = PQexec(lock, "BEGIN; LOCK TABLE audit_log IN SHARE MODE");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(lock));
    PQclear(res);
    for (int i = 0; i != CLIENTS; ++i) {
        client_t *c = &clients[i];
        *c = (client_t){.token = token, .start = &start};
        int salt = repeats && i % REPEATS == 0 ? 100000 + round : round * CLIENTS + i + 1;
        snprintf(c->json, sizeof(c->json),
                 "{\"name\":\"group %d.%d\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
                 "\"amount\":\"%d\",\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\","
                 "\"salt\":\"0x%064x\"}",
                 round, i, round + 1, salt);
        cr_assert_eq(pthread_create(&threads[i], NULL, client_main, c), 0);
    }
    release_when_units_wait(lock);
    for (int i = 0; i != CLIENTS; ++i)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    int repeat_created = 0;
    for (int i = 0; i != CLIENTS; ++i) {
        client_t *c = &clients[i];
        if (repeats && i % REPEATS == 0) {
            cr_assert(c->status == 201 || c->status == 409, "repeat %d: %d", i, c->status);
            repeat_created += c->status == 201;
        } else {
            cr_assert_eq(c->status, 201, "client %d of round %d: %d", i, round, c->status);
        }
        if (c->status == 201) {
            cr_assert_eq(strlen(c->id), 36);
            ++*created;
        } else {
            ++*conflicts;
        }
    }
    if (repeats)
        cr_assert_eq(repeat_created, 1, "the repeated intent was created %d times", repeat_created);
}

Test(api_create_group, concurrent_creates_answer_as_if_alone, .timeout = 120,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096];
    session(KEY_A, token, sizeof(token));
    int created = 0, conflicts = 0;
    for (int r = 0; r != ROUNDS; ++r)
        round_of(token, r, r >= DISTINCT_ROUNDS, &created, &conflicts);
    int repeat_rounds = ROUNDS - DISTINCT_ROUNDS;
    cr_assert_eq(created,
                 DISTINCT_ROUNDS * CLIENTS + repeat_rounds * (CLIENTS - CLIENTS / REPEATS + 1));
    cr_assert_eq(conflicts, repeat_rounds * (CLIENTS / REPEATS - 1));
    char want[16];
    snprintf(want, sizeof(want), "%d", created);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), want);
    cr_assert_str_eq(db_value("SELECT count(DISTINCT subject_id) FROM audit_log"
                              " WHERE action = 'intent.create'"),
                     want);
    cr_assert_str_eq(db_value("SELECT count(*) FROM audit_log WHERE action = 'intent.create'"),
                     want);
    /* the rounds without repeats: the creates queued behind the lock went out in groups (2 alone,
     * then groups of up to 8: 6 transactions for 32 rows) */
    int transactions = atoi(db_value("SELECT count(DISTINCT xmin::text) FROM intents"
                                     " WHERE name LIKE 'group 0.%' OR name LIKE 'group 1.%'"));
    cr_assert_leq(transactions, DISTINCT_ROUNDS * CLIENTS / 4,
                  "creates were not grouped (%d transactions)", transactions);
    stop_server();
}
