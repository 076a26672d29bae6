/*
 * Executions per second end to end through the executor (N jobs due at once -> every row
 * confirmed) against the rate at which the same anvil takes pre-signed token transfers from a
 * plain sender (intake), and mines them, in one run, on an anvil that mines a block every second
 * (issue #6, "Benchmarks").
 *
 *   executor_bench [N [LANES [BATCH_GAS_BUDGET [ANVIL_GAS_LIMIT [LARGE_BATCH_GAS_BUDGET
 *                  [PHASES [MODE]]]]]]]
 *     N                 payments each way (default 10000); DATABASE_URL must be set
 *     LANES             executor keys, one nonce lane each (1..4, default 1; dev keys 0, 6, 7, 9)
 *     BATCH_GAS_BUDGET  the executor's gas budget per batch transaction (default 4000000)
 *     ANVIL_GAS_LIMIT   anvil --gas-limit (default: anvil's own, 30M); a chain setting, so a
 *                       figure with a larger limit is the engine's own ceiling, not the default's.
 *                       "both": two passes, each on a fresh anvil and database, plain sender and
 *                       executor alike: anvil's default 30M, then LARGE_GAS_LIMIT (1G, which
 *                       takes every execution of a 10,000 burst in one block, so that block gas
 *                       is not what is measured). The harness's standard run uses "both".
 *     LARGE_BATCH_GAS_BUDGET  the batch budget of the "both" large pass (default 16000000: on
 *                       30M blocks a batch's declared gas must stay small for blocks to fill, on
 *                       1G blocks fewer, bigger transactions cost the engine less)
 *     PHASES            passes of the judged figure (the large pass with "both"), 1..8, default
 *                       1: the burst comes due k/PHASES s after a block became visible, k = 0..
 *                       PHASES-1, each pass on a fresh anvil and database with its own plain
 *                       sender; the figures are the means over the passes, with the worst
 *                       pass's ratio beside them. The harness's standard run uses 4.
 *     MODE              "executor" (default): the bench hands the N jobs to an executor pool
 *                       of its own at due (executor_submit), so the clock starts at the
 *                       executor. "engine": end to end through the intent engine (below); the
 *                       figures' names then start with executor_engine_ instead of executor_
 *                       (executor_engine_exec_per_s_large_gas, ..._ratio_to_plain_intake_...,
 *                       ..._ratio_worst_phase_..., and ..._due_to_last_handover_s_...).
 *
 * Engine mode: the N payments are intents (frequency once) that all come due at one whole
 * second T, stored as rows from which the engine derives exactly the signed terms
 * (echain_due_intents: validAfter = startAt = T, minInterval of `once`, maxExecutions 1), and
 * created an hour before, as after a restart. The engine runs in process (engine_create: the
 * chain client, constraint reads on, no gas oracle since no row has a gas cap, and its own
 * executor with the executor mode's settings), loads the rows before T, and at T every intent's
 * actor wakes on its worker's timer wheel, has the constraint readers read the owner's balance
 * and allowance and, at an intent's first due time, the registry's executedCount (batched
 * eth_calls), and hands its job to the executor. The clock starts at T and stops, as in the
 * executor mode, when every row is confirmed. Schedules are whole seconds, so the phase is set
 * with the engine clock's offset (engine__clock_set_offset_ms, in (-1 s, 0]): the engine's clock
 * reads T at the chosen point of the block interval, never before the wall clock (and anvil's
 * block times) reach T, as the registry takes no execution before validAfter. The engine's own
 * part is reported: when the first and the last job reached the executor after T, and its
 * lateness histogram (due -> hand-over); an intent delayed instead of executed stops the wait,
 * and one whose signature did not match shows as a failed row ("wrong signer").
 *
 * Why phases: executions are confirmed only in a block, and anvil mines one per second, so
 * when in the block interval a burst comes due decides how long it waits for the block. A burst
 * due right after a block (PHASES 1, and every run before phases existed) waits longest: it is
 * stored and broadcast in ~0.6 s and then waits ~0.4 s for the next block. Bursts due at other
 * points wait less, or have their first batches mined a block earlier. Payments come due at any
 * point of the interval, so the mean over evenly spaced points is the expected figure; the worst
 * is printed next to it. The plain sender's intake rate does not depend on blocks at all.
 *
 * On 30M blocks the chain is the ceiling: at ~46.7k gas per execution no engine can confirm
 * more than ~640 per second, nor the plain sender mine more than ~850 transfers per second, so
 * the target (>= 0.90 of the plain sender's intake rate) is judged on the large-limit pass.
 *
 * The baseline signs N USDC transfers from one account beforehand (consecutive nonces) and
 * sends them in JSON-RPC batches of 100 over one connection; its figures are the intake rate
 * (all accepted by anvil) and the mined rate (the last one mined). The executor then gets N
 * signed intents at once (one job each), CONFIRMATIONS 1, and is timed until every row is
 * confirmed in the database. Both use the same token, so the per-payment work on chain is a
 * transferFrom (executor) against a transfer (baseline). Block gas bounds both: the report
 * gives the gas per execution and how full the engine's blocks were.
 *
 * Batch size: a block takes a transaction only while the gas already used plus the
 * transaction's gas LIMIT fits the block, so a block ends at least (limit - one batch's
 * declared gas) full: smaller batches fill blocks better but need more transactions in flight
 * (EXECUTOR_LANE_TXS_MAX per lane). The executor declares 80k gas per execution (executor.c,
 * GAS_PER_EXECUTION) against ~46.7k used.
 *
 * Where the time goes: per phase, seconds after the jobs were due (p50 and max over the rows):
 * rows stored (created_at), broadcast (broadcast_at), mined (the block's timestamp, whole
 * seconds) and confirmed (confirmed_at); and the tail: from the poll that first saw the head
 * making the last execution's block deep enough to the last outcome recorded (receipts read,
 * outcomes, counts, notifications and audit rows written), and from the moment the engine's own
 * follower saw that block (no outcome is recorded before: ready_to_record) to the same end, which
 * leaves out when the bench happened to look. "due at CLOCK_MONOTONIC" lines the
 * run up with a profile taken with `perf record -k CLOCK_MONOTONIC` (perf report --time).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "actors/engine.h"
#include "actors/engine_clock.h"
#include "actors/executor.h"
#include "actors/executor_internal.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "chain/tx.h"
#include "support/engine_chain.h"
#include "support/harness.h"

#define SEND_BATCH 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The mode (the last argument): false, the bench hands the jobs to an executor pool; true, the
 * intent engine's actors come due and hand them over themselves. */
static bool engine_mode;
/* The figures' names start with this ("executor", "executor_engine"). */
static const char *figure_prefix = "executor";

static void die(const char *what)
{
    fprintf(stderr, "executor_bench: %s\n", what);
    exit(1);
}

static uint64_t nonce_of(echain_t *c, int account, const char *tag)
{
    char params[128], addr[CHAIN_ADDR_STR_SIZE];
    chain_addr_t a = echain_dev_address(account);
    chain_addr_format(&a, addr);
    snprintf(params, sizeof(params), "[\"%s\",\"%s\"]", addr, tag);
    uint64_t n = 0;
    if (!echain_rpc_u64(c, "eth_getTransactionCount", params, &n))
        die("eth_getTransactionCount");
    return n;
}

/* The gas limit and gas used of block `number`; false when anvil does not answer. */
static bool block_gas(echain_t *c, uint64_t number, uint64_t *limit, uint64_t *used)
{
    char params[64], *out = malloc(1 << 16);
    snprintf(params, sizeof(params), "[\"0x%llx\",false]", (unsigned long long)number);
    bool ok = echain_rpc(c, "eth_getBlockByNumber", params, out, 1 << 16);
    json_t *root = ok ? json_loads(out, 0, NULL) : NULL;
    const char *l = json_string_value(json_object_get(json_object_get(root, "result"), "gasLimit"));
    const char *u = json_string_value(json_object_get(json_object_get(root, "result"), "gasUsed"));
    ok = l != NULL && u != NULL;
    if (ok)
        *limit = strtoull(l, NULL, 16), *used = strtoull(u, NULL, 16);
    json_decref(root);
    free(out);
    return ok;
}

static void wait_blocks(echain_t *c, uint64_t n)
{
    uint64_t start = 0, head = 0;
    echain_rpc_u64(c, "eth_blockNumber", "[]", &start);
    for (int i = 0; i != 600 && head < start + n; ++i) {
        usleep(100000);
        echain_rpc_u64(c, "eth_blockNumber", "[]", &head);
    }
}

/* The baseline: n pre-signed transfers from dev account 3; the acceptance and mined times. */
static void plain_sender(echain_t *c, int n, double *accept_s, double *mined_s)
{
    chain_key_t *key = NULL;
    chain_key_from_hex(&key, echain_dev_keys[3], 64);
    uint64_t nonce0 = nonce_of(c, 3, "pending");
    char **raw_hex = calloc((size_t)n, sizeof(char *));
    chain_addr_t to = echain_dev_address(8);
    for (int i = 0; i != n; ++i) {
        uint8_t data[CHAIN_ABI_SMALL_CALL_MAX], raw[512];
        size_t len, raw_len;
        chain_u256_t one = chain_u256_from_u64(1);
        chain_abi_transfer(data, sizeof(data), &len, &to, &one);
        chain_tx_t t = {.type = CHAIN_TX_EIP1559,
                        .chain_id = 31337,
                        .nonce = nonce0 + (uint64_t)i,
                        .max_priority_fee_per_gas = chain_u256_from_u64(1000000000),
                        .max_fee_per_gas = chain_u256_from_u64(100000000000),
                        .gas = 100000,
                        .has_to = true,
                        .to = c->usdc,
                        .data = data,
                        .data_len = len};
        chain_tx_sign(&t, key, raw, sizeof(raw), &raw_len, NULL);
        raw_hex[i] = malloc(2 * raw_len + 3);
        chain_hex_encode(raw_hex[i], 2 * raw_len + 3, raw, raw_len, CHAIN_HEX_0X);
    }
    chain_key_free(key);
    size_t cap = SEND_BATCH * 1024;
    char *body = malloc(cap), *out = malloc(1 << 20);
    double t0 = now_s();
    for (int first = 0; first < n; first += SEND_BATCH) {
        size_t pos = 0;
        body[pos++] = '[';
        for (int i = first; i < n && i < first + SEND_BATCH; ++i)
            pos += (size_t)snprintf(body + pos, cap - pos,
                                    "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
                                    "\"eth_sendRawTransaction\",\"params\":[\"%s\"]}",
                                    i == first ? "" : ",", i, raw_hex[i]);
        snprintf(body + pos, cap - pos, "]");
        if (http_post_blocking(c->anvil.port, body, out, 1 << 20) <= 0 ||
            strstr(out, "\"error\"") != NULL)
            die("a pre-signed transaction was refused");
    }
    *accept_s = now_s() - t0;
    while (nonce_of(c, 3, "latest") < nonce0 + (uint64_t)n)
        if (now_s() - t0 > 600)
            die("the plain sender's transfers were not all mined within 600 s");
        else
            usleep(20000);
    *mined_s = now_s() - t0;
    for (int i = 0; i != n; ++i)
        free(raw_hex[i]);
    free(raw_hex), free(body), free(out);
}

enum { LANES_MAX = 4, PHASES_MAX = 8 };
/* Dev keys of the lanes: 0 is intentd's executor; 1..5 are owners, 3 the plain sender, 8 the
 * recipient; 6, 7 and 9 (the deployer, idle once the contracts are up) are free. */
static const int lane_keys[LANES_MAX] = {0, 6, 7, 9};

typedef struct st_engine_run_t {
    net_http_client_t *http;
    harness_t h;
    chain_rpc_t *rpc;
    store_pg_t *pg;
    engine_t *engine; /* engine mode: the intent engine, which owns `pool` */
    executor_pool_t *pool;
    chain_key_t *keys[LANES_MAX];
    int lanes;
    executor_trace_event_t *trace; /* what the lanes did, timed (report_trace) */
} engine_run_t;

enum { TRACE_MAX = 1 << 16 };

/* The executor's settings of both modes: CONFIRMATIONS 1, one lane per key. */
static executor_config_t executor_settings(echain_t *c, engine_run_t *e, uint64_t batch_gas_budget)
{
    return (executor_config_t){.rpc = e->rpc,
                               .pg = e->pg,
                               .keys = (const chain_key_t **)e->keys,
                               .num_keys = (size_t)e->lanes,
                               .chain_id = 31337,
                               .registry = c->registry,
                               .confirmations = 1,
                               .batch_gas_budget = batch_gas_budget,
                               .replace_after_ms = 30000,
                               .poll_ms = 200};
}

/* The runtime, the chain client, the database pool and the lanes' executor: a pool of the
 * bench's own, or (engine mode) the intent engine with its executor, constraint reads on (no gas
 * oracle: the intents have no gas cap). The engine is started, its rows loading. */
static void run_start(echain_t *c, engine_run_t *e, int lanes, uint64_t batch_gas_budget)
{
    memset(e, 0, sizeof(*e));
    if (engine_mode)
        engine_register_statements(); /* the executor's too */
    else
        executor_register_statements();
    e->http = net_http_client_create(NULL);
    const char *urls[] = {c->anvil.url};
    char err[256];
    e->rpc = chain_rpc_create(&(chain_rpc_config_t){.urls = urls, .num_urls = 1}, e->http, err,
                              sizeof(err));
    harness_start(&e->h, e->http, 2, 2000);
    chain_rpc_start(e->rpc, e->h.rt);
    e->pg = store_pg_create(e->h.rt, &(store_pg_config_t){.url = c->db_url});
    e->lanes = lanes;
    for (int i = 0; i != lanes; ++i)
        chain_key_from_hex(&e->keys[i], echain_dev_keys[lane_keys[i]], 64);
    executor_config_t cfg = executor_settings(c, e, batch_gas_budget);
    if (engine_mode) {
        e->engine = engine_create(&(engine_config_t){.rt = e->h.rt,
                                                     .pg = e->pg,
                                                     .rpc = e->rpc,
                                                     .chain_id = 31337,
                                                     .registry = c->registry,
                                                     .executor = cfg});
        e->pool = e->engine != NULL ? engine_executor(e->engine) : NULL;
    } else {
        e->pool = executor_pool_create(&cfg);
    }
    if (e->pool == NULL)
        die(engine_mode ? "engine_create" : "executor_pool_create");
    e->trace = calloc(TRACE_MAX, sizeof(*e->trace));
    executor__pool_trace(e->pool, e->trace, TRACE_MAX);
    if (engine_mode)
        engine_start(e->engine); /* its executor, its chain readers and its loader */
    else
        executor_pool_start(e->pool, e->h.rt);
}

static void run_stop(engine_run_t *e)
{
    if (e->engine != NULL)
        engine_stop(e->engine); /* its executor too */
    else
        executor_pool_stop(e->pool);
    chain_rpc_stop(e->rpc);
    store_pg_free(e->pg);
    harness_stop(&e->h);
    if (e->engine != NULL)
        engine_free(e->engine);
    else
        executor_pool_free(e->pool);
    chain_rpc_free(e->rpc);
    net_http_client_free(e->http);
    for (int i = 0; i != e->lanes; ++i)
        chain_key_free(e->keys[i]);
    free(e->trace);
}

/* One kind of step of the lanes: its requests paired with their answers (by lane and slot). */
typedef struct st_trace_span_t {
    const char *name;
    int sent, done;         /* trace kinds */
    long count;             /* answers */
    double sum_s, max_s;    /* time from request to answer */
    double first_s, last_s; /* the first request and the last answer, s after due */
    int inflight, most;     /* requests in flight (at most) */
    double open_s[LANES_MAX][256];
} trace_span_t;

static void trace_span(trace_span_t *sp, const executor_trace_event_t *ev, double at_s)
{
    if (ev->kind == sp->sent) {
        if (sp->count == 0 && sp->inflight == 0)
            sp->first_s = at_s;
        sp->open_s[ev->lane][ev->slot] = at_s;
        sp->most = ++sp->inflight > sp->most ? sp->inflight : sp->most;
    } else if (ev->kind == sp->done && sp->open_s[ev->lane][ev->slot] != 0) {
        double d = at_s - sp->open_s[ev->lane][ev->slot];
        sp->open_s[ev->lane][ev->slot] = 0;
        --sp->inflight, ++sp->count, sp->sum_s += d, sp->last_s = at_s;
        sp->max_s = d > sp->max_s ? d : sp->max_s;
    }
}

/* Where the lanes' time went: per step, how many, how long each took (mean, max), how many
 * were in flight at once, and when the first started and the last ended after due (t0); the
 * wait of a stored batch for its broadcast to be sent; and the tail as the lanes saw it: from
 * the follower's announcement of `last` (the last execution's block) to the last outcome
 * committed (the bench's own look at the follower's head waits behind its other calls). */
static void report_trace(const engine_run_t *e, double t0, uint64_t last)
{
    static trace_span_t sp[5];
    const char *names[] = {"store", "send", "poll", "block", "finalize"};
    for (int k = 0; k != 5; ++k)
        memset(&sp[k], 0, sizeof(sp[k])), sp[k].name = names[k], sp[k].sent = 2 * k,
                                          sp[k].done = 2 * k + 1;
    uint32_t n = atomic_load(&e->pool->trace.n);
    n = n < TRACE_MAX ? n : TRACE_MAX;
    double stored_at[LANES_MAX][256] = {{0}}, wait_sum = 0, wait_max = 0;
    double polled_at[LANES_MAX][256] = {{0}}, parse_s = 0, last_head_s = 0;
    long waits = 0;
    char head_text[256] = "";
    size_t pos = 0;
    for (uint32_t i = 0; i != n; ++i) {
        const executor_trace_event_t *ev = &e->trace[i];
        double at_s = (double)ev->at_us / 1e6 - t0;
        if (ev->kind == EXECUTOR_TRACE_HEAD && pos < sizeof(head_text) - 32 && ev->lane == 0)
            pos += (size_t)snprintf(head_text + pos, sizeof(head_text) - pos, " %u@%+.2f", ev->n,
                                    at_s);
        if (ev->kind == EXECUTOR_TRACE_HEAD && ev->n == last && ev->lane == 0)
            last_head_s = at_s;
        if (ev->kind == EXECUTOR_TRACE_POLLED)
            polled_at[ev->lane][ev->slot] = at_s;
        if (ev->kind == EXECUTOR_TRACE_POLL_PARSED && polled_at[ev->lane][ev->slot] != 0)
            parse_s += at_s - polled_at[ev->lane][ev->slot];
        if (ev->kind == EXECUTOR_TRACE_STORED && ev->n == 0)
            stored_at[ev->lane][ev->slot] = at_s;
        if (ev->kind == EXECUTOR_TRACE_SEND_SENT && stored_at[ev->lane][ev->slot] != 0) {
            double w = at_s - stored_at[ev->lane][ev->slot];
            stored_at[ev->lane][ev->slot] = 0;
            wait_sum += w, ++waits, wait_max = w > wait_max ? w : wait_max;
        }
        for (int k = 0; k != 5; ++k)
            trace_span(&sp[k], ev, at_s);
    }
    printf("trace: %u events%s; heads announced to lane 0 (block@s after due):%s\n", n,
           n == TRACE_MAX ? " (full)" : "", head_text);
    printf("trace: stored -> send requested %.1f ms on average (max %.1f)\n",
           waits ? 1000 * wait_sum / (double)waits : 0, 1000 * wait_max);
    printf("trace: the lanes' own time reading the polls' answers: %.0f ms in all\n",
           1000 * parse_s);
    if (last_head_s != 0)
        printf("trace: tail: block %llu announced to the lanes at %+.3f s, last outcome committed"
               " %+.3f s (%.3f s later)\n",
               (unsigned long long)last, last_head_s, sp[4].last_s, sp[4].last_s - last_head_s);
    for (int k = 0; k != 5; ++k)
        printf("trace: %-8s %4ld, %6.1f ms each on average (max %6.1f), up to %d at once,"
               " first sent %+.3f s, last answered %+.3f s\n",
               sp[k].name, sp[k].count, sp[k].count ? 1000 * sp[k].sum_s / (double)sp[k].count : 0,
               1000 * sp[k].max_s, sp[k].most, sp[k].first_s, sp[k].last_s);
}

static long rows_with(echain_t *c, const char *status)
{
    char v[32], sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE status = '%s'", status);
    echain_db_value(c, sql, v, sizeof(v));
    return atol(v);
}

static long db_long(echain_t *c, const char *sql)
{
    char v[32];
    echain_db_value(c, sql, v, sizeof(v));
    return atol(v);
}

/* How full the blocks that hold the engine's executions were: the chain's figures for every
 * block from the first to the last of them (empty ones included: a stall shows). */
static void report_blocks(echain_t *c)
{
    uint64_t first = (uint64_t)db_long(c, "SELECT min(block_number) FROM executions WHERE"
                                          " status = 'confirmed'");
    uint64_t last = (uint64_t)db_long(c, "SELECT max(block_number) FROM executions WHERE"
                                         " status = 'confirmed'");
    uint64_t limit = 0, used = 0, sum = 0;
    for (uint64_t b = first; b <= last && b - first < 10000; ++b) {
        if (!block_gas(c, b, &limit, &used))
            die("eth_getBlockByNumber");
        sum += used;
    }
    uint64_t blocks = last - first + 1;
    long txs = db_long(c, "SELECT count(DISTINCT tx_hash) FROM executions WHERE status ="
                          " 'confirmed'");
    long max_txs = db_long(c, "SELECT max(n) FROM (SELECT count(DISTINCT tx_hash) AS n FROM"
                              " executions WHERE status = 'confirmed' GROUP BY block_number) t");
    long gas = db_long(c, "SELECT round(avg(gas_used / n)) FROM (SELECT tx_hash, max(gas_used)"
                          " AS gas_used, count(*) AS n FROM executions WHERE status ="
                          " 'confirmed' GROUP BY tx_hash) AS t");
    printf("executor: %ld batch transactions in blocks %llu..%llu (%llu blocks, up to %ld"
           " transactions per block); ~%ld gas per execution; block gas limit %llu, blocks"
           " %.0f%% full on average\n",
           txs, (unsigned long long)first, (unsigned long long)last, (unsigned long long)blocks,
           max_txs, gas, (unsigned long long)limit, 100.0 * (double)sum / (double)(blocks * limit));
}

/* The executor's own pace, and what went wrong if anything did. */
static void report_pace(echain_t *c)
{
    printf("executor: %ld rows replaced\n", rows_with(c, "replaced"));
    /* Where the time went: the executor's own pace (rows stored, transactions broadcast) next
     * to the chain's (executions per block). */
    char pace[256], spread[1024];
    echain_db_value(c,
                    "SELECT 'first row stored +' || round(extract(epoch FROM min(created_at) -"
                    " (SELECT min(created_at) FROM executions))::numeric, 2) || ' s, last +' ||"
                    " round(extract(epoch FROM max(created_at) - min(created_at))::numeric, 2) ||"
                    " ' s, last broadcast +' || round(extract(epoch FROM max(broadcast_at) -"
                    " min(created_at))::numeric, 2) || ' s' FROM executions",
                    pace, sizeof(pace));
    echain_db_value(c,
                    "SELECT string_agg(block_number || ':' || n, ' ' ORDER BY block_number) FROM"
                    " (SELECT block_number, count(*) AS n FROM executions WHERE status ="
                    " 'confirmed' GROUP BY block_number) t",
                    spread, sizeof(spread));
    printf("executor: %s; executions per block %s\n", pace, spread);
    /* Per lane: a lane stores one batch at a time, so the gap between its batches' rows is its
     * store pace; store -> broadcast is the wait before the node gets the transaction. */
    char lanes[512];
    echain_db_value(c,
                    "SELECT string_agg(round(1000 * extract(epoch FROM (last - first) /"
                    " greatest(batches - 1, 1)))::text || ' ms', ', ') || ' between batches;"
                    " store -> broadcast ' || round(1000 * extract(epoch FROM avg(wait)))::text"
                    " || ' ms on average' FROM (SELECT executor, count(DISTINCT tx_hash) AS"
                    " batches, min(created_at) AS first, max(created_at) AS last,"
                    " avg(broadcast_at - created_at) AS wait FROM executions GROUP BY executor) t",
                    lanes, sizeof(lanes));
    printf("executor: lanes: %s\n", lanes);
    char why[256];
    echain_db_value(c,
                    "SELECT count(*) || ' x ' || error FROM executions WHERE status = 'failed'"
                    " GROUP BY error ORDER BY count(*) DESC LIMIT 1",
                    why, sizeof(why));
    if (why[0] != '\0')
        printf("executor: most common failure: %s\n", why);
}

enum { OWNERS = 5 };

/* Mints and approves for the owners (dev accounts 1..OWNERS) and for the plain sender (3). */
static void fund_owners(echain_t *c)
{
    for (int o = 1; o <= OWNERS; ++o)
        if (!echain_mint(c, o, 1000000000) || !echain_approve(c, o, 1000000000))
            die("mint/approve");
    if (!echain_mint(c, 3, 1000000000))
        die("mint");
}

/* Signs the n jobs (salts from 1000) and inserts their intents' rows. */
static executor_job_t *make_jobs(echain_t *c, int n)
{
    executor_job_t *jobs = calloc((size_t)n, sizeof(*jobs));
    for (int i = 0; i != n; ++i)
        if (!echain_job(c, 1 + i % OWNERS, 8, 1, 0, 0, (uint32_t)i + 1000, &jobs[i]))
            die("creating the intents");
    return jobs;
}

/* Seconds after `due_epoch_s` (unix time) at which the rows reached each phase: p50 and max. */
static void report_phases(echain_t *c, double due_epoch_s)
{
#define PHASE(col, where)                                                                          \
    "(SELECT round(min(x)::numeric, 2) || '/' || round((percentile_cont(0.5) WITHIN GROUP (ORDER"  \
    " BY x))::numeric, 2) || '/' || round(max(x)::numeric, 2) FROM (SELECT extract(epoch "         \
    "FROM " col ") - (SELECT t FROM d) AS x FROM executions" where ") t)"
    static const char stored[] = PHASE("created_at", "");
    static const char sent[] = PHASE("broadcast_at", "");
    static const char confirmed[] = PHASE("confirmed_at", " WHERE status = 'confirmed'");
#undef PHASE
    char sql[2048], out[512];
    snprintf(sql, sizeof(sql),
             "WITH d AS (SELECT %.3f::float8 AS t) SELECT 'stored ' || %s || ', broadcast ' || %s"
             " || ', confirmed ' || %s",
             due_epoch_s, stored, sent, confirmed);
    echain_db_value(c, sql, out, sizeof(out));
    printf("executor: phases, s after due (min/p50/max): %s\n", out);
}

/* The block timestamps of the engine's first and last blocks, after due (mined phase). */
static void report_mined(echain_t *c, double due_epoch_s)
{
    char out[64];
    echain_db_value(c,
                    "SELECT min(block_number) || ' ' || max(block_number) FROM executions"
                    " WHERE status = 'confirmed'",
                    out, sizeof(out));
    unsigned long long first = 0, last = 0;
    if (sscanf(out, "%llu %llu", &first, &last) != 2)
        return;
    double t[2] = {0, 0};
    for (int k = 0; k != 2; ++k) {
        char params[64], *res = malloc(1 << 16);
        snprintf(params, sizeof(params), "[\"0x%llx\",false]", k == 0 ? first : last);
        json_t *root = echain_rpc(c, "eth_getBlockByNumber", params, res, 1 << 16)
                           ? json_loads(res, 0, NULL)
                           : NULL;
        const char *ts =
            json_string_value(json_object_get(json_object_get(root, "result"), "timestamp"));
        t[k] = ts != NULL ? (double)strtoull(ts, NULL, 16) - due_epoch_s : 0;
        json_decref(root);
        free(res);
    }
    printf("executor: mined in blocks stamped %+.1f .. %+.1f s after due (whole seconds)\n", t[0],
           t[1]);
}

static void json_figure(const char *name, double value, const char *unit)
{
    printf("json: {\"name\":\"%s\",\"value\":%.2f,\"unit\":\"%s\"}\n", name, value, unit);
}

/* The figures of one pass (the rates of the plain sender and of the executor). */
typedef struct st_pass_figures_t {
    double exec_per_s, intake_per_s, mined_per_s;
    double ratio; /* exec_per_s / intake_per_s of the pass; over phases, the mean of the passes' */
    double handed_over_s; /* engine mode: due -> the last job handed to the executor */
} pass_figures_t;

/* The figures of one pass: the command, both rates and their ratios, blocks, pace, phases. */
static pass_figures_t report_pass(echain_t *c, int n, int lanes, uint64_t budget,
                                  const char *gas_limit, double accept_s, double mined_s,
                                  double engine_s, double due_epoch_s)
{
    const char *chain = gas_limit ? "large_gas" : "default_gas";
    printf("command: executor_bench %d %d %llu%s%s%s (anvil --block-time 1%s%s: %s)\n", n, lanes,
           (unsigned long long)budget, gas_limit ? " " : "", gas_limit ? gas_limit : "",
           engine_mode ? " (mode engine)" : "", gas_limit ? " --gas-limit " : "",
           gas_limit ? gas_limit : "",
           gas_limit ? "block gas is not the limit"
                     : "anvil's default 30M gas per block, the chain's ceiling");
    printf("plain sender: %d pre-signed transfers taken by anvil in %.2f s (intake %.0f tx/s),"
           " all mined in %.2f s (%.0f tx/s)\n",
           n, accept_s, n / accept_s, mined_s, n / mined_s);
    long confirmed = rows_with(c, "confirmed");
    printf("executor: %ld of %d executions confirmed (%ld failed), due -> confirmed in %.2f s"
           " (%.0f exec/s), %d lanes, batch gas budget %llu%s\n",
           confirmed, n, rows_with(c, "failed"), engine_s, confirmed / engine_s, lanes,
           (unsigned long long)budget,
           engine_mode ? "; end to end: the intents' actors came due and handed the jobs over"
                       : "; the bench handed the jobs to the executor at due");
    report_blocks(c);
    report_pace(c);
    report_phases(c, due_epoch_s);
    report_mined(c, due_epoch_s);
    pass_figures_t f = {confirmed / engine_s, n / accept_s, n / mined_s, 0, 0};
    f.ratio = f.exec_per_s / f.intake_per_s;
    printf("ratio %s / plain intake rate (%s): %.2f (target >= 0.90%s)\n", figure_prefix, chain,
           f.ratio, gas_limit ? "" : "; not judged here: block gas bounds both");
    printf("ratio %s / plain mined rate (%s): %.2f\n", figure_prefix, chain,
           f.exec_per_s / f.mined_per_s);
    return f;
}

/* The "json:" figures of a pass (or of the mean over the phases) for the harness; their names
 * start with figure_prefix (the mode). */
static void report_figures(const char *gas_limit, const pass_figures_t *f)
{
    const char *chain = gas_limit ? "large_gas" : "default_gas";
    char name[96];
    snprintf(name, sizeof(name), "%s_exec_per_s_%s", figure_prefix, chain);
    json_figure(name, f->exec_per_s, "exec/s");
    snprintf(name, sizeof(name), "%s_plain_intake_tx_per_s_%s", figure_prefix, chain);
    json_figure(name, f->intake_per_s, "tx/s");
    snprintf(name, sizeof(name), "%s_plain_mined_tx_per_s_%s", figure_prefix, chain);
    json_figure(name, f->mined_per_s, "tx/s");
    snprintf(name, sizeof(name), "%s_ratio_to_plain_intake_%s", figure_prefix, chain);
    json_figure(name, f->ratio, "x");
    if (engine_mode) {
        snprintf(name, sizeof(name), "%s_due_to_last_handover_s_%s", figure_prefix, chain);
        json_figure(name, f->handed_over_s, "s");
    }
}

/* Waits until a new block is visible (asked every 5 ms), then `phase_s` more: the burst then
 * comes due `phase_s` into anvil's 1 s block interval. */
static void wait_phase(echain_t *c, double phase_s)
{
    uint64_t start = 0, head = 0;
    echain_rpc_u64(c, "eth_blockNumber", "[]", &start);
    for (int i = 0; i != 400 && head <= start; ++i) {
        usleep(5000);
        echain_rpc_u64(c, "eth_blockNumber", "[]", &head);
    }
    usleep((useconds_t)(phase_s * 1e6));
}

/* Executor mode: the executor pool starts, and the n jobs are handed to it at once when the
 * burst comes due, `phase_s` after a block became visible. */
static void due_executor(echain_t *c, engine_run_t *e, const executor_job_t *jobs, int n, int lanes,
                         uint64_t budget, double phase_s, double *t0, double *due_epoch_s)
{
    run_start(c, e, lanes, budget);
    wait_blocks(c, 1);
    wait_phase(c, phase_s);
    *due_epoch_s = wall_s();
    *t0 = now_s();
    atomic_store(&e->pool->trace.n, 0);
    for (int i = 0; i != n; ++i)
        while (!executor_submit(e->pool, &jobs[i]))
            if (now_s() - *t0 > 600)
                die("the executor's queues stayed full for 600 s");
            else
                usleep(1000);
}

/* Engine mode: time for signing and storing the intents and for the engine to load them before
 * they come due (a 10,000 burst takes ~1-2 s of it). */
#define ENGINE_LEAD_S 5

static bool all_loaded(engine_run_t *e, int n)
{
    return engine_actor_count(e->engine) >= (size_t)n;
}

/* Engine mode: n intents due once at the whole second T, stored and signed as the engine will
 * derive their terms, the engine started and every intent's actor waiting for T; returns when T
 * has come. T is placed `phase_s` (+ ENGINE_LEAD_S) after a block became visible with the engine
 * clock's offset: T - offset is that moment, the offset in (-1 s, 0], so the engine's clock is
 * behind the wall clock and anvil's (which stamps blocks with the wall clock) has reached T when
 * the engine's does: the registry takes an execution only at block.timestamp >= validAfter. */
static void due_engine(echain_t *c, engine_run_t *e, int n, int lanes, uint64_t budget,
                       double phase_s, double *t0, double *due_epoch_s)
{
    wait_phase(c, 0);
    double due = wall_s() + phase_s + ENGINE_LEAD_S;
    int64_t due_s = (int64_t)due; /* unix time: positive, so this rounds down */
    int64_t offset_ms = -(int64_t)((due - (double)due_s) * 1000 + 0.5);
    due = (double)due_s - (double)offset_ms / 1000;
    double ready = now_s();
    if (!echain_due_intents(c, n, OWNERS, 8, 1, due_s, 1000))
        die("creating the intents");
    engine_clock_set_test_mode(true);
    if (!engine__clock_set_offset_ms(offset_ms))
        die("engine__clock_set_offset_ms");
    run_start(c, e, lanes, budget);
    for (int i = 0; i != 6000 && !(engine_loaded(e->engine) && all_loaded(e, n)); ++i)
        usleep(1000);
    if (engine_actor_count(e->engine) != (size_t)n)
        die("the engine did not load every intent within 6 s");
    double lead_s = due - wall_s();
    printf("engine: %d intents due once at %lld (unix s); engine clock %+lld ms, so due at wall"
           " %.3f; stored, signed and loaded in %.2f s, %.2f s before due\n",
           n, (long long)due_s, (long long)offset_ms, due, now_s() - ready, lead_s);
    if (lead_s < 0.1)
        die("the intents were not loaded in time: raise ENGINE_LEAD_S");
    usleep((useconds_t)((lead_s - 0.05) * 1e6));
    atomic_store(&e->pool->trace.n, 0);
    *due_epoch_s = due;
    *t0 = now_s() + (due - wall_s());
    while (now_s() < *t0)
        usleep(200);
}

enum { HEADS_SEEN_MAX = 12, FOLLOWED_MAX = 64, HANDOVER_MARKS = 6 };
/* The shares of the jobs handed over whose moments the engine mode reports. */
static const int handover_percent[HANDOVER_MARKS] = {10, 25, 50, 75, 90, 99};

/* What the bench saw while it waited for every execution to be decided. */
typedef struct st_watch_t {
    double engine_s; /* due -> every execution confirmed or failed */
    int seen;        /* new heads the bench saw (every 20 ms) */
    uint64_t seen_head[HEADS_SEEN_MAX];
    double seen_s[HEADS_SEEN_MAX];
    char heads[HEADS_SEEN_MAX * 24];
    uint64_t follower0;                       /* the engine's follower's head at due */
    double followed_s[FOLLOWED_MAX];          /* when it saw each head after that */
    double first_handover_s, last_handover_s; /* engine mode: jobs handed to the executor */
    double handover_s[HANDOVER_MARKS];        /* when handover_percent[k]% of them were */
    long delayed;                             /* engine mode: intents delayed, not executed */
} watch_t;

/* Engine mode: when the first and the last job reached the executor (to the 2 ms poll). */
static void watch_handover(engine_run_t *e, int n, double t0, watch_t *w)
{
    engine_lateness_t l;
    engine_lateness(e->engine, &l);
    if (l.count > 0 && w->first_handover_s == 0)
        w->first_handover_s = now_s() - t0;
    if (l.count >= (uint64_t)n && w->last_handover_s == 0)
        w->last_handover_s = now_s() - t0;
    for (int k = 0; k != HANDOVER_MARKS; ++k)
        if (w->handover_s[k] == 0 && l.count * 100 >= (uint64_t)n * (uint64_t)handover_percent[k])
            w->handover_s[k] = now_s() - t0;
}

/* Waits (from due, t0) until the database counts every execution decided, or 600 s. */
static void watch(echain_t *c, engine_run_t *e, int n, double t0, watch_t *w)
{
    memset(w, 0, sizeof(*w));
    uint64_t head0 = 0, head = 0;
    echain_rpc_u64(c, "eth_blockNumber", "[]", &head0);
    size_t pos = 0;
    /* The end: the database counts every execution decided. It is asked only once the pool has
     * nothing in flight (executor_pool_pending, read every 2 ms, drops after the last outcome's
     * commit), or every 500 ms: a count of the table every 20 ms took ~7% of a core from the run
     * it timed (pg_stat_statements: 1.4 ms each), the two cores being shared. */
    int asked = 0;
    /* when the engine's follower saw each head (an atomic read, every tick): outcomes are
     * recorded only from then on (ready_to_record), so the tail after it is the engine's own */
    w->follower0 = executor_pool_head(e->pool);
    for (int tick = 0; w->engine_s == 0 && now_s() - t0 < 600; ++tick, usleep(2000)) {
        uint64_t fh = executor_pool_head(e->pool);
        for (uint64_t b = w->follower0 + 1; b <= fh && b - w->follower0 < FOLLOWED_MAX; ++b)
            if (w->followed_s[b - w->follower0] == 0)
                w->followed_s[b - w->follower0] = now_s() - t0;
        if (e->engine != NULL)
            watch_handover(e, n, t0, w);
        if (tick % 10 == 0 && w->seen < HEADS_SEEN_MAX &&
            echain_rpc_u64(c, "eth_blockNumber", "[]", &head) && head > head0) {
            w->seen_head[w->seen] = head, w->seen_s[w->seen] = now_s() - t0;
            pos += (size_t)snprintf(w->heads + pos, sizeof(w->heads) - pos, " %llu@+%.2f",
                                    (unsigned long long)head, w->seen_s[w->seen]);
            head0 = head, ++w->seen;
        }
        double at_s = now_s() - t0;
        /* (engine mode: the pool is idle before the jobs arrive, too) */
        bool idle =
            executor_pool_pending(e->pool) == 0 && (e->engine == NULL || w->last_handover_s != 0);
        if ((idle && tick - asked >= 10) || tick - asked >= 250) {
            asked = tick;
            if (db_long(c, "SELECT count(*) FROM executions WHERE status IN"
                           " ('confirmed', 'failed')") >= n)
                w->engine_s = at_s;
        }
        /* an intent held back (delayed) has no execution to wait for: stop and say why */
        if (e->engine != NULL && tick % 250 == 249 &&
            (w->delayed = db_long(c, "SELECT count(*) FROM intents WHERE status = 'delayed'")) > 0)
            w->engine_s = at_s;
    }
    if (w->engine_s == 0)
        w->engine_s = now_s() - t0;
}

/* Engine mode: where the engine's own part of the time went (due -> hand-over), and whether
 * every intent ran (a signature over other terms than the engine derives fails: wrong signer). */
static void report_engine(echain_t *c, engine_run_t *e, int n, const watch_t *w)
{
    engine_lateness_t l;
    engine_lateness(e->engine, &l);
    printf("engine: %llu of %d jobs handed to the executor, the first +%.3f s after due, the last"
           " +%.3f s (to the 2 ms poll); lateness due -> hand-over p50 %.1f ms, p99 %.1f ms (the"
           " histogram ends at %.1f ms), max %.1f ms\n",
           (unsigned long long)l.count, n, w->first_handover_s, w->last_handover_s,
           l.p50_us / 1000.0, l.p99_us / 1000.0,
           ENGINE_LATENESS_BUCKETS * ENGINE_LATENESS_BUCKET_US / 1000.0, l.max_us / 1000.0);
    char marks[256] = "";
    size_t pos = 0;
    for (int k = 0; k != HANDOVER_MARKS; ++k)
        pos += (size_t)snprintf(marks + pos, sizeof(marks) - pos, " %d%%@+%.3f",
                                handover_percent[k], w->handover_s[k]);
    printf("engine: share of the jobs handed over by s after due (to the 2 ms poll):%s\n", marks);
    char statuses[256];
    echain_db_value(c,
                    "SELECT string_agg(n || ' ' || s, ', ' ORDER BY s) FROM (SELECT status ||"
                    " coalesce(' (' || delay_reason || ')', '') AS s, count(*) AS n FROM intents"
                    " GROUP BY 1) t",
                    statuses, sizeof(statuses));
    printf("engine: intents now: %s%s\n", statuses,
           w->delayed > 0 ? " (the wait stopped at the first delayed intent)" : "");
    long confirmed = rows_with(c, "confirmed");
    printf("engine: %s\n", confirmed == n ? "every intent's execution confirmed: the signed terms"
                                            " are the ones the engine derives from the rows"
                                          : "NOT every intent's execution confirmed");
}

/* After the wait: the heads, the tail, the lanes' trace and (engine mode) the hand-over. */
static void report_watch(echain_t *c, engine_run_t *e, int n, double t0, const watch_t *w)
{
    printf("executor: new heads seen (block@s after due):%s\n", w->heads);
    /* the tail: from the first head that made the last execution's block deep enough (the
     * bench runs CONFIRMATIONS 1) to the last outcome recorded */
    uint64_t last = (uint64_t)db_long(c, "SELECT max(block_number) FROM executions");
    for (int k = 0; k != w->seen; ++k)
        if (w->seen_head[k] >= last && last != 0) {
            printf("executor: tail: every outcome recorded %.2f s after block %llu was seen\n",
                   w->engine_s - w->seen_s[k], (unsigned long long)last);
            break;
        }
    uint64_t f0 = w->follower0;
    if (last > f0 && last - f0 < FOLLOWED_MAX && w->followed_s[last - f0] != 0)
        printf("executor: the engine's follower saw block %llu at +%.2f s, every outcome recorded"
               " %.2f s later (to the 2 ms poll)\n",
               (unsigned long long)last, w->followed_s[last - f0],
               w->engine_s - w->followed_s[last - f0]);
    report_trace(e, t0, last);
    if (e->engine != NULL)
        report_engine(c, e, n, w);
    /* to line up a profile (perf record -k CLOCK_MONOTONIC) with the phases */
    printf("executor: due at CLOCK_MONOTONIC %.3f s\n", t0);
}

/* One pass on a fresh anvil (`gas_limit` NULL: anvil's default) and database, the burst due
 * `phase_s` after a block became visible. */
static pass_figures_t run_pass(int n, int lanes, uint64_t budget, const char *gas_limit,
                               double phase_s)
{
    const char *args[] = {"--block-time", "1", gas_limit ? "--gas-limit" : NULL, gas_limit, NULL};
    echain_t c;
    if (!echain_start(&c, args))
        die("anvil, the contracts or the database did not start");
    fund_owners(&c);
    executor_job_t *jobs = engine_mode ? NULL : make_jobs(&c, n);
    wait_blocks(&c, 2);
    double accept_s, mined_s, t0, due_epoch_s;
    plain_sender(&c, n, &accept_s, &mined_s);
    engine_run_t e;
    if (engine_mode)
        due_engine(&c, &e, n, lanes, budget, phase_s, &t0, &due_epoch_s);
    else
        due_executor(&c, &e, jobs, n, lanes, budget, phase_s, &t0, &due_epoch_s);
    static watch_t w;
    watch(&c, &e, n, t0, &w);
    pass_figures_t f =
        report_pass(&c, n, lanes, budget, gas_limit, accept_s, mined_s, w.engine_s, due_epoch_s);
    f.handed_over_s = w.last_handover_s;
    report_watch(&c, &e, n, t0, &w);
    run_stop(&e);
    echain_stop(&c);
    free(jobs);
    return f;
}

/* The passes of the judged figure: one due right after a block (phases 1), or `phases` due at
 * evenly spaced points of the 1 s block interval, reported each and as their mean. */
static void run_phases(int n, int lanes, uint64_t budget, const char *gas_limit, int phases)
{
    if (phases == 1) {
        pass_figures_t f = run_pass(n, lanes, budget, gas_limit, 0);
        report_figures(gas_limit, &f);
        return;
    }
    pass_figures_t sum = {0, 0, 0, 0, 0}, each[PHASES_MAX];
    double worst = 1e9;
    for (int k = 0; k != phases; ++k) {
        double phase_s = (double)k / phases;
        printf("phase %d of %d: due %.2f s after a block became visible\n", k + 1, phases, phase_s);
        each[k] = run_pass(n, lanes, budget, gas_limit, phase_s);
        sum.exec_per_s += each[k].exec_per_s / phases;
        sum.intake_per_s += each[k].intake_per_s / phases;
        sum.mined_per_s += each[k].mined_per_s / phases;
        sum.ratio += each[k].ratio / phases;
        sum.handed_over_s += each[k].handed_over_s / phases;
        worst = each[k].ratio < worst ? each[k].ratio : worst;
    }
    printf("phases (due s after a block: executions/s vs the same pass's plain intake):");
    for (int k = 0; k != phases; ++k)
        printf(" %.2f: %.0f/%.0f = %.2f;", (double)k / phases, each[k].exec_per_s,
               each[k].intake_per_s, each[k].ratio);
    printf("\nmean over %d phases: %.0f exec/s, plain intake %.0f tx/s; mean ratio %.2f, worst"
           " phase %.2f\n",
           phases, sum.exec_per_s, sum.intake_per_s, sum.ratio, worst);
    report_figures(gas_limit, &sum);
    char name[96];
    snprintf(name, sizeof(name), "%s_ratio_worst_phase_%s", figure_prefix,
             gas_limit ? "large_gas" : "default_gas");
    json_figure(name, worst, "x");
}

#define LARGE_GAS_LIMIT "1000000000"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int lanes = argc > 2 ? atoi(argv[2]) : 1;
    uint64_t budget = argc > 3 ? strtoull(argv[3], NULL, 10) : 4000000;
    const char *gas_limit = argc > 4 ? argv[4] : NULL;
    uint64_t large_budget = argc > 5 ? strtoull(argv[5], NULL, 10) : 16000000;
    int phases = argc > 6 ? atoi(argv[6]) : 1;
    const char *mode = argc > 7 ? argv[7] : "executor";
    engine_mode = strcmp(mode, "engine") == 0;
    figure_prefix = engine_mode ? "executor_engine" : "executor";
    if (n <= 0 || n > 100000 || lanes < 1 || lanes > LANES_MAX || budget == 0 ||
        large_budget == 0 || phases < 1 || phases > PHASES_MAX ||
        (!engine_mode && strcmp(mode, "executor") != 0))
        die("usage: executor_bench [N (1..100000) [LANES (1..4) [BATCH_GAS_BUDGET"
            " [ANVIL_GAS_LIMIT | both [LARGE_BATCH_GAS_BUDGET [PHASES (1..8)"
            " [executor | engine]]]]]]]");
    if (gas_limit != NULL && strcmp(gas_limit, "both") == 0) {
        pass_figures_t f = run_pass(n, lanes, budget, NULL, 0);
        report_figures(NULL, &f);
        run_phases(n, lanes, large_budget, LARGE_GAS_LIMIT, phases);
    } else {
        run_phases(n, lanes, budget, gas_limit, phases);
    }
    return 0;
}
