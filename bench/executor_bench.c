/*
 * Executions per second end to end through the executor (N jobs due at once -> every row
 * confirmed) against the rate at which the same anvil takes pre-signed token transfers from a
 * plain sender (intake), and mines them, in one run, on an anvil that mines a block every second
 * (issue #6, "Benchmarks").
 *
 *   executor_bench [N [LANES [BATCH_GAS_BUDGET [ANVIL_GAS_LIMIT [LARGE_BATCH_GAS_BUDGET
 *                  [PHASES]]]]]]
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
    executor_pool_t *pool;
    chain_key_t *keys[LANES_MAX];
    int lanes;
    executor_trace_event_t *trace; /* what the lanes did, timed (report_trace) */
} engine_run_t;

enum { TRACE_MAX = 1 << 16 };

static void engine_start(echain_t *c, engine_run_t *e, int lanes, uint64_t batch_gas_budget)
{
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
    executor_config_t cfg = {.rpc = e->rpc,
                             .pg = e->pg,
                             .keys = (const chain_key_t **)e->keys,
                             .num_keys = (size_t)lanes,
                             .chain_id = 31337,
                             .registry = c->registry,
                             .confirmations = 1,
                             .batch_gas_budget = batch_gas_budget,
                             .replace_after_ms = 30000,
                             .poll_ms = 200};
    e->pool = executor_pool_create(&cfg);
    if (e->pool == NULL)
        die("executor_pool_create");
    e->trace = calloc(TRACE_MAX, sizeof(*e->trace));
    executor__pool_trace(e->pool, e->trace, TRACE_MAX);
    executor_pool_start(e->pool, e->h.rt);
}

static void engine_stop(engine_run_t *e)
{
    executor_pool_stop(e->pool);
    chain_rpc_stop(e->rpc);
    store_pg_free(e->pg);
    harness_stop(&e->h);
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

/* Mints and approves for the owners and signs the n jobs (salts from 1000). */
static executor_job_t *make_jobs(echain_t *c, int n)
{
    enum { OWNERS = 5 };
    for (int o = 1; o <= OWNERS; ++o)
        if (!echain_mint(c, o, 1000000000) || !echain_approve(c, o, 1000000000))
            die("mint/approve");
    if (!echain_mint(c, 3, 1000000000))
        die("mint");
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
} pass_figures_t;

/* The figures of one pass: the command, both rates and their ratios, blocks, pace, phases. */
static pass_figures_t report_pass(echain_t *c, int n, int lanes, uint64_t budget,
                                  const char *gas_limit, double accept_s, double mined_s,
                                  double engine_s, double due_epoch_s)
{
    const char *chain = gas_limit ? "large_gas" : "default_gas";
    printf("command: executor_bench %d %d %llu%s%s (anvil --block-time 1%s%s: %s)\n", n, lanes,
           (unsigned long long)budget, gas_limit ? " " : "", gas_limit ? gas_limit : "",
           gas_limit ? " --gas-limit " : "", gas_limit ? gas_limit : "",
           gas_limit ? "block gas is not the limit"
                     : "anvil's default 30M gas per block, the chain's ceiling");
    printf("plain sender: %d pre-signed transfers taken by anvil in %.2f s (intake %.0f tx/s),"
           " all mined in %.2f s (%.0f tx/s)\n",
           n, accept_s, n / accept_s, mined_s, n / mined_s);
    long confirmed = rows_with(c, "confirmed");
    printf("executor: %ld of %d executions confirmed (%ld failed), due -> confirmed in %.2f s"
           " (%.0f exec/s), %d lanes, batch gas budget %llu\n",
           confirmed, n, rows_with(c, "failed"), engine_s, confirmed / engine_s, lanes,
           (unsigned long long)budget);
    report_blocks(c);
    report_pace(c);
    report_phases(c, due_epoch_s);
    report_mined(c, due_epoch_s);
    pass_figures_t f = {confirmed / engine_s, n / accept_s, n / mined_s, 0};
    f.ratio = f.exec_per_s / f.intake_per_s;
    printf("ratio executor / plain intake rate (%s): %.2f (target >= 0.90%s)\n", chain, f.ratio,
           gas_limit ? "" : "; not judged here: block gas bounds both");
    printf("ratio executor / plain mined rate (%s): %.2f\n", chain, f.exec_per_s / f.mined_per_s);
    return f;
}

/* The "json:" figures of a pass (or of the mean over the phases) for the harness. */
static void report_figures(const char *gas_limit, const pass_figures_t *f)
{
    const char *chain = gas_limit ? "large_gas" : "default_gas";
    char name[96];
    snprintf(name, sizeof(name), "executor_exec_per_s_%s", chain);
    json_figure(name, f->exec_per_s, "exec/s");
    snprintf(name, sizeof(name), "executor_plain_intake_tx_per_s_%s", chain);
    json_figure(name, f->intake_per_s, "tx/s");
    snprintf(name, sizeof(name), "executor_plain_mined_tx_per_s_%s", chain);
    json_figure(name, f->mined_per_s, "tx/s");
    snprintf(name, sizeof(name), "executor_ratio_to_plain_intake_%s", chain);
    json_figure(name, f->ratio, "x");
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

/* One pass on a fresh anvil (`gas_limit` NULL: anvil's default) and database, the burst due
 * `phase_s` after a block became visible. */
static pass_figures_t run_pass(int n, int lanes, uint64_t budget, const char *gas_limit,
                               double phase_s)
{
    const char *args[] = {"--block-time", "1", gas_limit ? "--gas-limit" : NULL, gas_limit, NULL};
    echain_t c;
    if (!echain_start(&c, args))
        die("anvil, the contracts or the database did not start");
    executor_job_t *jobs = make_jobs(&c, n);
    wait_blocks(&c, 2);
    double accept_s, mined_s;
    plain_sender(&c, n, &accept_s, &mined_s);
    engine_run_t e;
    engine_start(&c, &e, lanes, budget);
    wait_blocks(&c, 1);
    wait_phase(&c, phase_s);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    double due_epoch_s = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
    double t0 = now_s();
    atomic_store(&e.pool->trace.n, 0);
    for (int i = 0; i != n; ++i)
        while (!executor_submit(e.pool, &jobs[i]))
            if (now_s() - t0 > 600)
                die("the executor's queues stayed full for 600 s");
            else
                usleep(1000);
    /* when each new head became visible (the mined phase, to the poll's 20 ms) */
    enum { HEADS_SEEN_MAX = 12 };
    char heads[HEADS_SEEN_MAX * 24] = "";
    uint64_t head0 = 0, head = 0, seen_head[HEADS_SEEN_MAX];
    double seen_s[HEADS_SEEN_MAX];
    echain_rpc_u64(&c, "eth_blockNumber", "[]", &head0);
    size_t pos = 0;
    /* The end: the database counts every execution decided. It is asked only once the pool has
     * nothing in flight (executor_pool_pending, read every 2 ms, drops after the last outcome's
     * commit), or every 500 ms: a count of the table every 20 ms took ~7% of a core from the run
     * it timed (pg_stat_statements: 1.4 ms each), the two cores being shared. */
    int seen = 0, asked = 0;
    double engine_s = 0;
    /* when the engine's follower saw each head (an atomic read, every tick): outcomes are
     * recorded only from then on (ready_to_record), so the tail after it is the engine's own */
    enum { FOLLOWED_MAX = 64 };
    double followed_s[FOLLOWED_MAX] = {0};
    uint64_t follower0 = executor_pool_head(e.pool);
    for (int tick = 0; engine_s == 0 && now_s() - t0 < 600; ++tick, usleep(2000)) {
        uint64_t fh = executor_pool_head(e.pool);
        for (uint64_t b = follower0 + 1; b <= fh && b - follower0 < FOLLOWED_MAX; ++b)
            if (followed_s[b - follower0] == 0)
                followed_s[b - follower0] = now_s() - t0;
        if (tick % 10 == 0 && seen < HEADS_SEEN_MAX &&
            echain_rpc_u64(&c, "eth_blockNumber", "[]", &head) && head > head0) {
            seen_head[seen] = head, seen_s[seen] = now_s() - t0;
            pos += (size_t)snprintf(heads + pos, sizeof(heads) - pos, " %llu@+%.2f",
                                    (unsigned long long)head, seen_s[seen]);
            head0 = head, ++seen;
        }
        double at_s = now_s() - t0;
        bool idle = executor_pool_pending(e.pool) == 0;
        if ((idle && tick - asked >= 10) || tick - asked >= 250) {
            asked = tick;
            if (db_long(&c, "SELECT count(*) FROM executions WHERE status IN"
                            " ('confirmed', 'failed')") >= n)
                engine_s = at_s;
        }
    }
    if (engine_s == 0)
        engine_s = now_s() - t0;
    pass_figures_t f =
        report_pass(&c, n, lanes, budget, gas_limit, accept_s, mined_s, engine_s, due_epoch_s);
    printf("executor: new heads seen (block@s after due):%s\n", heads);
    /* the tail: from the first head that made the last execution's block deep enough (the
     * bench runs CONFIRMATIONS 1) to the last outcome recorded */
    uint64_t last = (uint64_t)db_long(&c, "SELECT max(block_number) FROM executions");
    for (int k = 0; k != seen; ++k)
        if (seen_head[k] >= last && last != 0) {
            printf("executor: tail: every outcome recorded %.2f s after block %llu was seen\n",
                   engine_s - seen_s[k], (unsigned long long)last);
            break;
        }
    if (last > follower0 && last - follower0 < FOLLOWED_MAX && followed_s[last - follower0] != 0)
        printf("executor: the engine's follower saw block %llu at +%.2f s, every outcome recorded"
               " %.2f s later (to the 2 ms poll)\n",
               (unsigned long long)last, followed_s[last - follower0],
               engine_s - followed_s[last - follower0]);
    report_trace(&e, t0, last);
    /* to line up a profile (perf record -k CLOCK_MONOTONIC) with the phases */
    printf("executor: due at CLOCK_MONOTONIC %.3f s\n", t0);
    engine_stop(&e);
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
    pass_figures_t sum = {0, 0, 0, 0}, each[PHASES_MAX];
    double worst = 1e9;
    for (int k = 0; k != phases; ++k) {
        double phase_s = (double)k / phases;
        printf("phase %d of %d: due %.2f s after a block became visible\n", k + 1, phases, phase_s);
        each[k] = run_pass(n, lanes, budget, gas_limit, phase_s);
        sum.exec_per_s += each[k].exec_per_s / phases;
        sum.intake_per_s += each[k].intake_per_s / phases;
        sum.mined_per_s += each[k].mined_per_s / phases;
        sum.ratio += each[k].ratio / phases;
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
    json_figure(gas_limit ? "executor_ratio_worst_phase_large_gas"
                          : "executor_ratio_worst_phase_default_gas",
                worst, "x");
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
    if (n <= 0 || n > 100000 || lanes < 1 || lanes > LANES_MAX || budget == 0 ||
        large_budget == 0 || phases < 1 || phases > PHASES_MAX)
        die("usage: executor_bench [N (1..100000) [LANES (1..4) [BATCH_GAS_BUDGET"
            " [ANVIL_GAS_LIMIT | both [LARGE_BATCH_GAS_BUDGET [PHASES (1..8)]]]]]]");
    if (gas_limit != NULL && strcmp(gas_limit, "both") == 0) {
        pass_figures_t f = run_pass(n, lanes, budget, NULL, 0);
        report_figures(NULL, &f);
        run_phases(n, lanes, large_budget, LARGE_GAS_LIMIT, phases);
    } else {
        run_phases(n, lanes, budget, gas_limit, phases);
    }
    return 0;
}
