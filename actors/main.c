/*
 * intentd: the FlowPay backend, as one process.
 *
 * Composition root: reads the configuration, checks io_uring, starts the worker pool with the
 * HTTP server on every worker, registers the routes, and waits for SIGTERM/SIGINT to drain and
 * exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actors/ops_routes.h"
#include "net/http_server.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/worker.h"

/* Options marked "(not used yet)" are read by components still being built; they are listed so
 * that ops can prepare one configuration for the whole product. */
static rt_option_t options[] = {
    {"PORT", "8080", "HTTP port to listen on", false, NULL},
    {"BIND_ADDRESS", "127.0.0.1", "IPv4 address to listen on", false, NULL},
    {"WORKERS", "0", "worker threads, each with its own io_uring and h2o loop (0: one per CPU)",
     false, NULL},
    {"LOG_LEVEL", "info", "debug, info, warn or error", false, NULL},
    {"SHUTDOWN_TIMEOUT_MS", "10000", "how long a graceful shutdown may drain in-flight work", false,
     NULL},
    {"RING_ENTRIES", "1024", "io_uring submission queue entries per worker", false, NULL},
    {"DATABASE_URL", NULL, "PostgreSQL connection URL (not used yet)", false, NULL},
    {"REDIS_URL", NULL, "Redis URL (not used yet)", false, NULL},
    {"RPC_URL", NULL, "JSON-RPC URL of the EVM chain (not used yet)", false, NULL},
    {"CHAIN_ID", NULL, "EVM chain id (not used yet)", false, NULL},
    {"CRONOS_TESTNET_RPC", NULL, "Cronos testnet JSON-RPC URL (not used yet)", false, NULL},
    {"CRONOS_MAINNET_RPC", NULL, "Cronos mainnet JSON-RPC URL (not used yet)", false, NULL},
    {"INTENT_CONTRACT_ADDRESS", NULL, "address of the intent registry (not used yet)", false, NULL},
    {"USDC_ADDRESS", NULL, "address of the USDC token (not used yet)", false, NULL},
    {"PRIVATE_KEY", NULL, "executor private key, 0x + 64 hex digits (not used yet)", true, NULL},
    {"JWT_SECRET", NULL, "secret for signing session tokens (not used yet)", true, NULL},
    {"API_RATE_LIMIT", "100", "requests per minute per IP address (not used yet)", false, NULL},
    {"TELEGRAM_BOT_TOKEN", NULL, "Telegram bot token for notifications (not used yet)", true, NULL},
};
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char summary[] =
    "intentd - the FlowPay backend: REST and WebSocket API, and the engine that executes\n"
    "payment intents on chain. See README.md and docs/architecture.md.";

static bool read_int(const char *name, int64_t min, int64_t max, int64_t *out)
{
    char err[256];
    if (rt_config_int(rt_config_find(options, NUM_OPTIONS, name), min, max, out, err, sizeof(err)))
        return true;
    fprintf(stderr, "intentd: %s\n", err);
    return false;
}

/* Blocks until SIGINT or SIGTERM. The signals are blocked in every thread (workers inherit the
 * mask), so sigwait here is the only place they are taken. */
static int wait_for_shutdown_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

int main(int argc, char **argv)
{
    char err[256];
    switch (rt_config_load(options, NUM_OPTIONS, argc, argv, err, sizeof(err))) {
    case RT_CONFIG_HELP:
        rt_config_print_help(stdout, argv[0], summary, options, NUM_OPTIONS);
        return 0;
    case RT_CONFIG_ERROR:
        fprintf(stderr, "intentd: %s\n", err);
        return 2;
    case RT_CONFIG_OK:
        break;
    }
    int64_t port, workers, drain_ms, ring_entries;
    if (!read_int("PORT", 1, 65535, &port) || !read_int("WORKERS", 0, RT_MAX_WORKERS, &workers) ||
        !read_int("SHUTDOWN_TIMEOUT_MS", 1, 3600000, &drain_ms) ||
        !read_int("RING_ENTRIES", 8, 32768, &ring_entries))
        return 2;
    int level = rt_log_parse_level(rt_config_find(options, NUM_OPTIONS, "LOG_LEVEL")->value);
    if (level < 0) {
        fprintf(stderr, "intentd: LOG_LEVEL must be debug, info, warn or error\n");
        return 2;
    }
    rt_log_set_level((rt_log_level_t)level);

    char why[512];
    if (!rt_probe_io_uring(why, sizeof(why))) {
        rt_log_error("main", "cannot start: %s", why);
        return 1;
    }

    sigset_t shutdown_signals;
    sigemptyset(&shutdown_signals);
    sigaddset(&shutdown_signals, SIGINT);
    sigaddset(&shutdown_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &shutdown_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *bind_address = rt_config_find(options, NUM_OPTIONS, "BIND_ADDRESS")->value;
    net_http_server_t *http = net_http_create(bind_address, (uint16_t)port);
    if (http == NULL)
        return 2;
    rt_config_t rt_config = {.workers = (int)workers,
                             .ring_entries = (unsigned)ring_entries,
                             .drain_timeout_ms = (uint64_t)drain_ms,
                             .waiter = net_http_waiter(http)};
    rt_runtime_t *rt = rt_runtime_create(&rt_config);
    if (rt == NULL)
        rt_log_fatal("main", "out of memory creating the runtime");
    ops_routes_register(http, rt);
    rt_config_log(options, NUM_OPTIONS);

    if (!rt_runtime_start(rt)) {
        rt_log_error("main", "cannot start the workers (see above)");
        rt_runtime_join_and_free(rt);
        net_http_free(http);
        return 1;
    }
    rt_log_info("main", "listening on http://%s:%d with %d workers", bind_address, (int)port,
                rt->num_workers);

    int sig = wait_for_shutdown_signal(&shutdown_signals);
    rt_log_info("main", "received %s: draining (deadline %lld ms)", strsignal(sig),
                (long long)drain_ms);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    net_http_free(http);
    rt_log_info("main", "stopped");
    return 0;
}
