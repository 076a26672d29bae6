/*
 * Single-row INSERT and primary-key SELECT throughput through store/pg, for comparison with
 * pgbench running the same statements over the same number of connections (bench/store_bench.sh
 * runs both). Many actors each keep one query outstanding; the pool pipelines them over its
 * connections, which is where it can beat pgbench's one-query-per-connection round trips.
 *
 * usage: store_bench insert|select SECONDS WORKERS CONNECTIONS_PER_WORKER ACTORS
 *        (DATABASE_URL from the environment; table bench_kv prepared by store_bench.sh)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "store/pg.h"

enum { MSG_GO = RT_MSG_USER + 1 };

static store_pg_t *pool;
static int statement;
static bool is_select;
static _Atomic long completed, failed;
static _Atomic int running = 1;

typedef struct {
    uint64_t seed;
} client_t;

static void issue(rt_actor_t *self, client_t *c)
{
    char key[24];
    c->seed = c->seed * 6364136223846793005ULL + 1442695040888963407ULL; /* LCG: cheap, fine */
    snprintf(key, sizeof(key), "%lu", (unsigned long)((c->seed >> 33) % 100000 + 1));
    const char *params[] = {key};
    if (!store_pg_query(pool, self, 0, statement, 1, params))
        atomic_fetch_add(&failed, 1);
}

static void client(rt_actor_t *self, rt_msg_t *msg)
{
    client_t *c = rt_actor_state(self);
    if (msg->type == STORE_PG_MSG_RESULT) {
        store_pg_result_t *r = rt_msg_payload(msg);
        atomic_fetch_add_explicit(r->status == STORE_PG_OK ? &completed : &failed, 1,
                                  memory_order_relaxed);
    } else if (msg->type != MSG_GO) {
        return;
    }
    if (atomic_load_explicit(&running, memory_order_relaxed))
        issue(self, c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6 || getenv("DATABASE_URL") == NULL) {
        fprintf(stderr,
                "usage: DATABASE_URL=... %s insert|select SECONDS WORKERS "
                "CONNECTIONS_PER_WORKER ACTORS\n",
                argv[0]);
        return 2;
    }
    is_select = strcmp(argv[1], "select") == 0;
    int seconds = atoi(argv[2]), workers = atoi(argv[3]), per_worker = atoi(argv[4]);
    int actors = atoi(argv[5]);
    statement = is_select ? store_pg_statement("select", "SELECT v FROM bench_kv WHERE id = $1")
                          : store_pg_statement("insert", "INSERT INTO bench_kv (v) VALUES ($1)");
    rt_config_t rc = {.workers = workers};
    rt_runtime_t *rt = rt_runtime_create(&rc);
    if (rt == NULL || !rt_runtime_start(rt))
        return 1;
    pool = store_pg_create(rt, &(store_pg_config_t){.url = getenv("DATABASE_URL"),
                                                    .connections_per_worker = per_worker});
    for (int waited = 0; !store_pg_is_connected(pool) && waited < 10000; waited += 10)
        usleep(10000);
    usleep(200000); /* every connection up */
    rt_actor_t **clients = calloc((size_t)actors, sizeof(*clients));
    for (int i = 0; i != actors; ++i) {
        clients[i] = rt_actor_spawn(rt, i % workers, client, sizeof(client_t));
        ((client_t *)rt_actor_state(clients[i]))->seed = (uint64_t)i * 7919 + 1;
    }
    sleep(1); /* warm-up is the first second; count from here */
    for (int i = 0; i != actors; ++i)
        rt_actor_send(clients[i], rt_msg_new(MSG_GO, 0));
    sleep(1);
    long start_count = atomic_load(&completed);
    double start = now_s();
    sleep((unsigned)seconds);
    long done = atomic_load(&completed) - start_count;
    double elapsed = now_s() - start;
    atomic_store(&running, 0);
    usleep(500000);
    printf("%.0f\n", (double)done / elapsed);
    fprintf(stderr, "store_bench %s: %ld queries in %.2f s, %ld failed\n", argv[1], done, elapsed,
            atomic_load(&failed));
    for (int i = 0; i != actors; ++i) {
        rt_actor_send_stop(clients[i]);
        rt_actor_release(clients[i]);
    }
    store_pg_free(pool);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    free(clients);
    return 0;
}
