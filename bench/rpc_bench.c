/*
 * JSON-RPC round trips through chain/rpc (over net/'s HTTP client) to a node, for comparison
 * with wrk posting the same request over the same number of connections (bench/rpc_bench.sh
 * runs both). Many actors each keep one eth_blockNumber call outstanding.
 *
 * usage: rpc_bench URL SECONDS WORKERS ACTORS   (prints calls per second)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "chain/rpc.h"
#include "net/http_client.h"
#include "net/http_server.h"

enum { MSG_GO = RT_MSG_USER + 1 };

static chain_rpc_t *rpc;
static _Atomic long ok, failed;
static _Atomic int running = 1;

static void caller(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type == CHAIN_RPC_MSG_REPLY) {
        const chain_rpc_reply_t *r = chain_rpc_reply(msg);
        bool good = r->error == CHAIN_RPC_OK && r->items[0].error == CHAIN_RPC_OK;
        atomic_fetch_add_explicit(good ? &ok : &failed, 1, memory_order_relaxed);
    } else if (msg->type != MSG_GO) {
        return;
    }
    if (!atomic_load_explicit(&running, memory_order_relaxed))
        return;
    chain_rpc_call_t call = chain_rpc_eth_block_number();
    if (chain_rpc_send(self, rpc, &call, 1, 0, 0) != CHAIN_RPC_OK)
        atomic_fetch_add(&failed, 1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s URL SECONDS WORKERS ACTORS\n", argv[0]);
        return 2;
    }
    int seconds = atoi(argv[2]), workers = atoi(argv[3]), actors = atoi(argv[4]);
    net_http_client_t *http = net_http_client_create(NULL);
    char err[256];
    const char *urls[] = {argv[1]};
    rpc = chain_rpc_create(&(chain_rpc_config_t){.urls = urls, .num_urls = 1}, http, err,
                           sizeof(err));
    if (rpc == NULL) {
        fprintf(stderr, "rpc_bench: %s\n", err);
        return 2;
    }
    net_http_server_t *loop_only = net_http_create("127.0.0.1", 0);
    rt_config_t config = {.workers = workers,
                          .waiter = net_http_client_waiter(http, net_http_waiter(loop_only))};
    rt_runtime_t *rt = rt_runtime_create(&config);
    if (rt == NULL || !rt_runtime_start(rt))
        return 1;
    chain_rpc_start(rpc, rt);
    rt_actor_t **callers = calloc((size_t)actors, sizeof(*callers));
    for (int i = 0; i != actors; ++i) {
        callers[i] = rt_actor_spawn(rt, i % workers, caller, 0);
        rt_actor_send(callers[i], rt_msg_new(MSG_GO, 0));
    }
    sleep(1); /* warm-up: connections open */
    long start_count = atomic_load(&ok);
    double start = now_s();
    sleep((unsigned)seconds);
    long done = atomic_load(&ok) - start_count;
    double elapsed = now_s() - start;
    atomic_store(&running, 0);
    usleep(500000);
    printf("%.0f\n", (double)done / elapsed);
    fprintf(stderr, "rpc_bench: %ld calls in %.2f s, %ld failed\n", done, elapsed,
            atomic_load(&failed));
    for (int i = 0; i != actors; ++i) {
        rt_actor_send_stop(callers[i]);
        rt_actor_release(callers[i]);
    }
    chain_rpc_stop(rpc);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    chain_rpc_free(rpc);
    net_http_client_free(http);
    net_http_free(loop_only);
    free(callers);
    return 0;
}
