/* The executor lanes and the chain follower against a real anvil and PostgreSQL: jobs become
 * confirmed rows that match the chain, batching, ExecutionFailed, a stuck transaction replaced,
 * nonce-too-low recovery (and a mined transaction whose receipt comes later than its nonce's
 * count not moved), an RPC outage, a reorg, a decided transaction whose nonce a deeper reorg gave
 * to another paid again once, another executor's executions adopted (one or a batch, or one in
 * the same block as ours), an Executed log of ours whose rows were marked replaced adopted, a
 * revoke, start-up reconciliation of a row left signed and of a transaction the previous run
 * left broadcast, a reorg after a restart, the raw transaction stored once per
 * transaction, events for rows marked replaced, a batch short of gas (nothing paid twice,
 * the lane declares more), and the block time each decided row keeps (a reorg that takes the
 * newest payment back gives the intent the previous one's as its last execution). The pool runs in
 * the test process on a runtime of its own (tests/support/harness.c). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "actors/chain_follower.h"
#include "actors/executor.h"
#include "actors/executor_internal.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "chain/tx.h"
#include "support/engine_chain.h"
#include "support/harness.h"

#define OUTCOMES_MAX 512

typedef struct st_proxy_t proxy_t;

typedef struct st_fixture_t {
    echain_t chain;
    net_http_client_t *http;
    harness_t h;
    chain_rpc_t *rpc;
    store_pg_t *pg;
    executor_pool_t *pool;
    chain_key_t *key, *key2;
    int lanes;                     /* 1, or 2 with dev account 6 as the second executor */
    proxy_t *proxy;                /* NULL, or the JSON-RPC proxy the pool talks to */
    const char *rpc_url;           /* NULL: anvil's own */
    uint64_t gas_per_execution;    /* 0: the executor's own figure */
    executor_trace_event_t *trace; /* NULL, or where the pool records what its lanes do */
    uint32_t trace_cap;
    events_t *events;
    intent_token_t token;
    pthread_mutex_t mutex;
    executor_outcome_t outcomes[OUTCOMES_MAX];
    size_t num_outcomes;
} fixture_t;

static fixture_t fx;

static void on_outcome(void *ctx, const executor_outcome_t *o)
{
    fixture_t *f = ctx;
    pthread_mutex_lock(&f->mutex);
    if (f->num_outcomes < OUTCOMES_MAX)
        f->outcomes[f->num_outcomes++] = *o;
    pthread_mutex_unlock(&f->mutex);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The chain and the database; automine stays as anvil starts (on) unless `args` say more. */
static void begin_chain(const char *const *args)
{
    memset(&fx, 0, sizeof(fx));
    pthread_mutex_init(&fx.mutex, NULL);
    cr_assert(echain_start(&fx.chain, args), "anvil, the contracts or the database did not start");
    executor_register_statements();
}

/* The runtime, the clients and the pool; `confirmations`, `replace_ms`. */
static void begin_pool(uint32_t confirmations, uint32_t replace_ms, uint32_t attempt_timeout_ms)
{
    fx.http = net_http_client_create(NULL);
    const char *urls[] = {fx.rpc_url != NULL ? fx.rpc_url : fx.chain.anvil.url};
    char err[256];
    fx.rpc = chain_rpc_create(&(chain_rpc_config_t){.urls = urls,
                                                    .num_urls = 1,
                                                    .attempt_timeout_ms = attempt_timeout_ms,
                                                    .call_timeout_ms = attempt_timeout_ms * 2,
                                                    .breaker_cooldown_ms = 300},
                              fx.http, err, sizeof(err));
    cr_assert_not_null(fx.rpc, "%s", err);
    harness_start(&fx.h, fx.http, 2, 2000);
    chain_rpc_start(fx.rpc, fx.h.rt);
    fx.pg = store_pg_create(fx.h.rt, &(store_pg_config_t){.url = fx.chain.db_url});
    fx.events = events_create(NULL); /* no sockets: the counters tell what was published */
    events_start(fx.events, fx.h.rt);
    fx.token = (intent_token_t){.address = fx.chain.usdc, .decimals = 6, .symbol = "USDC"};
    cr_assert_eq(chain_key_from_hex(&fx.key, echain_dev_keys[0], 64), CHAIN_OK);
    static const chain_key_t *keys[2];
    keys[0] = fx.key;
    if (fx.lanes == 2)
        cr_assert_eq(chain_key_from_hex(&fx.key2, echain_dev_keys[6], 64), CHAIN_OK);
    keys[1] = fx.key2;
    executor_config_t c = {.rpc = fx.rpc,
                           .pg = fx.pg,
                           .keys = keys,
                           .num_keys = fx.lanes == 2 ? 2 : 1,
                           .chain_id = 31337,
                           .registry = fx.chain.registry,
                           .confirmations = confirmations,
                           .batch_gas_budget = 8000000,
                           .replace_after_ms = replace_ms,
                           .poll_ms = 100,
                           .gas_per_execution = fx.gas_per_execution,
                           .on_outcome = on_outcome,
                           .on_outcome_ctx = &fx,
                           .events = fx.events,
                           .tokens = &fx.token,
                           .num_tokens = 1};
    fx.pool = executor_pool_create(&c);
    cr_assert_not_null(fx.pool);
    if (fx.trace != NULL)
        executor__pool_trace(fx.pool, fx.trace, fx.trace_cap);
    executor_pool_start(fx.pool, fx.h.rt);
}

static void end_pool(void)
{
    if (fx.pool == NULL)
        return;
    executor_pool_stop(fx.pool);
    chain_rpc_stop(fx.rpc);
    events_stop(fx.events);
    store_pg_free(fx.pg);
    harness_stop(&fx.h);
    executor_pool_free(fx.pool);
    events_free(fx.events);
    chain_rpc_free(fx.rpc);
    net_http_client_free(fx.http);
    chain_key_free(fx.key);
    chain_key_free(fx.key2);
    fx.pool = NULL;
}

static void proxy_stop(proxy_t *p);

static void end_all(void)
{
    end_pool();
    free(fx.trace);
    fx.trace = NULL;
    if (fx.proxy != NULL)
        proxy_stop(fx.proxy);
    fx.proxy = NULL;
    echain_stop(&fx.chain);
}

/* Polls `sql` (one integer) until it reaches `want`, for up to `timeout_ms`; the last value. */
static long wait_count(const char *sql, long want, int timeout_ms)
{
    char v[64] = "";
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        echain_db_value(&fx.chain, sql, v, sizeof(v));
        if (atol(v) >= want)
            break;
        sleep_ms(50);
    }
    return atol(v);
}

static void wait_head(uint64_t want)
{
    for (int i = 0; i != 200 && executor_pool_head(fx.pool) < want; ++i)
        sleep_ms(50);
    cr_assert_geq(executor_pool_head(fx.pool), want, "the follower did not see the head");
}

static uint64_t chain_head(void)
{
    uint64_t n = 0;
    cr_assert(echain_rpc_u64(&fx.chain, "eth_blockNumber", "[]", &n));
    return n;
}

static size_t outcomes_with(executor_status_t status, bool by_us)
{
    pthread_mutex_lock(&fx.mutex);
    size_t n = 0;
    for (size_t i = 0; i != fx.num_outcomes; ++i)
        n += fx.outcomes[i].status == status && fx.outcomes[i].by_us == by_us;
    pthread_mutex_unlock(&fx.mutex);
    return n;
}

static void funded_job(int owner, int recipient, uint64_t amount, uint32_t salt,
                       executor_job_t *job)
{
    cr_assert(echain_job(&fx.chain, owner, recipient, amount, 0, 0, salt, job));
}

static void fund(int owner, uint64_t amount)
{
    cr_assert(echain_mint(&fx.chain, owner, amount));
    cr_assert(echain_approve(&fx.chain, owner, amount));
}

static void submit(const executor_job_t *job)
{
    cr_assert(executor_submit(fx.pool, job), "the executor refused a job");
}

/* ---- a node that counts a nonce before it serves the receipt ----
 *
 * A JSON-RPC proxy in front of anvil, on threads of the test process: it passes every request
 * on and the answer back, except that eth_getTransactionReceipt of one hash answers null for
 * hide_ms after it was first asked for, while anvil already counts that transaction's nonce.
 * Nodes do that for a moment while they store a block (the kill test met it on anvil). */

#define PROXY_CONNS_MAX 16
#define PROXY_BUF (1 << 20)

struct st_proxy_t {
    int listen_fd;
    uint16_t upstream;
    char url[64];
    pthread_t acceptor, conns[PROXY_CONNS_MAX];
    int conn_fds[PROXY_CONNS_MAX];
    size_t num_conns;
    pthread_mutex_t mutex;
    char hidden[67]; /* "0x" + 64 lowercase hex */
    uint64_t hide_ms, first_asked_ms;
    unsigned hidden_answers;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether the receipt of `hash` is hidden now (the first ask starts the window). */
/* How many times the registry says `job`'s intent was executed (the chain's own count). */
static uint32_t executed_count(const executor_job_t *job)
{
    uint8_t id[32];
    uint32_t count = 99;
    chain_intent_hash(&job->terms, id);
    cr_assert(echain_executed_count(&fx.chain, id, &count));
    return count;
}

static bool proxy_hides(proxy_t *p, const char *hash)
{
    if (hash == NULL || strcasecmp(hash, p->hidden) != 0)
        return false;
    pthread_mutex_lock(&p->mutex);
    uint64_t now = mono_ms();
    if (p->first_asked_ms == 0)
        p->first_asked_ms = now;
    bool hide = now - p->first_asked_ms < p->hide_ms;
    p->hidden_answers += hide;
    pthread_mutex_unlock(&p->mutex);
    return hide;
}

/* Nulls the result of each hidden receipt call of `req` in `resp` (matched by id). */
static void proxy_rewrite(proxy_t *p, json_t *req, json_t *resp)
{
    bool batch = json_is_array(req);
    size_t n = batch ? json_array_size(req) : 1;
    for (size_t i = 0; i != n; ++i) {
        json_t *call = batch ? json_array_get(req, i) : req;
        const char *method = json_string_value(json_object_get(call, "method"));
        if (method == NULL || strcmp(method, "eth_getTransactionReceipt") != 0 ||
            !proxy_hides(p, json_string_value(json_array_get(json_object_get(call, "params"), 0))))
            continue;
        size_t m = json_is_array(resp) ? json_array_size(resp) : 1;
        for (size_t j = 0; j != m; ++j) {
            json_t *answer = json_is_array(resp) ? json_array_get(resp, j) : resp;
            if (json_equal(json_object_get(answer, "id"), json_object_get(call, "id")))
                json_object_set_new(answer, "result", json_null());
        }
    }
}

/* Reads one request (headers and a Content-Length body) into buf; its body, or NULL. */
static char *proxy_read(int fd, char *buf, size_t cap)
{
    size_t len = 0, want = 0; /* want: the headers and the body, once the headers are in */
    char *body = NULL;
    while (body == NULL || len < want) { /* each turn reads at least a byte, up to cap */
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = body == NULL ? strstr(buf, "\r\n\r\n") : NULL;
        if (body == NULL && end == NULL && len == cap - 1)
            return NULL;
        if (end != NULL) {
            const char *cl = strcasestr(buf, "content-length:");
            body = end + 4;
            want = (size_t)(body - buf) + (cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
            if (want >= cap)
                return NULL;
        }
    }
    buf[want] = '\0';
    return body;
}

static void *proxy_conn(void *arg)
{
    proxy_t *p = fx.proxy;
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(PROXY_BUF), *out = malloc(PROXY_BUF);
    char *body;
    while ((body = proxy_read(fd, buf, PROXY_BUF)) != NULL) {
        int n = http_post_blocking(p->upstream, body, out, PROXY_BUF);
        json_t *req = json_loads(body, 0, NULL), *resp = n > 0 ? json_loads(out, 0, NULL) : NULL;
        if (resp == NULL) {
            json_decref(req);
            break;
        }
        proxy_rewrite(p, req, resp);
        char *text = json_dumps(resp, JSON_COMPACT);
        char head[160];
        int hn = snprintf(head, sizeof(head),
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          strlen(text));
        bool ok = write(fd, head, (size_t)hn) == hn &&
                  write(fd, text, strlen(text)) == (ssize_t)strlen(text);
        free(text);
        json_decref(req);
        json_decref(resp);
        if (!ok)
            break;
    }
    free(buf);
    free(out);
    return NULL;
}

static void *proxy_accept(void *arg)
{
    proxy_t *p = arg;
    int fd;
    while ((fd = accept(p->listen_fd, NULL, NULL)) >= 0) {
        pthread_mutex_lock(&p->mutex);
        if (p->num_conns == PROXY_CONNS_MAX ||
            pthread_create(&p->conns[p->num_conns], NULL, proxy_conn, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            p->conn_fds[p->num_conns++] = fd;
        pthread_mutex_unlock(&p->mutex);
    }
    return NULL;
}

/* Starts the proxy in front of the test's anvil, hiding `hash_hex`'s receipt (64 hex) for
 * `hide_ms`; the pool then talks to fx.rpc_url. */
static void proxy_start(const char *hash_hex, uint64_t hide_ms)
{
    proxy_t *p = calloc(1, sizeof(*p));
    pthread_mutex_init(&p->mutex, NULL);
    p->upstream = fx.chain.anvil.port;
    snprintf(p->hidden, sizeof(p->hidden), "0x%s", hash_hex);
    p->hide_ms = hide_ms;
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(p->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(p->listen_fd, 16), 0);
    getsockname(p->listen_fd, (struct sockaddr *)&addr, &len);
    snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", ntohs(addr.sin_port));
    fx.proxy = p;
    fx.rpc_url = p->url;
    cr_assert_eq(pthread_create(&p->acceptor, NULL, proxy_accept, p), 0);
}

/* After the pool: its connections are closed, so every thread ends. */
static void proxy_stop(proxy_t *p)
{
    shutdown(p->listen_fd, SHUT_RDWR);
    pthread_join(p->acceptor, NULL);
    close(p->listen_fd);
    for (size_t i = 0; i != p->num_conns; ++i) {
        shutdown(p->conn_fds[i], SHUT_RDWR);
        pthread_join(p->conns[i], NULL);
        close(p->conn_fds[i]);
    }
    pthread_mutex_destroy(&p->mutex);
    free(p);
}

static unsigned proxy_hidden_answers(proxy_t *p)
{
    pthread_mutex_lock(&p->mutex);
    unsigned n = p->hidden_answers;
    pthread_mutex_unlock(&p->mutex);
    return n;
}

/* ---- the tests ---- */

Test(executor, jobs_become_confirmed_rows_that_match_the_chain_in_few_batches, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    enum { OWNERS = 4, PER_OWNER = 10, N = OWNERS * PER_OWNER };
    static executor_job_t jobs[N];
    for (int o = 0; o != OWNERS; ++o)
        fund(1 + o, 1000000);
    for (int i = 0; i != N; ++i)
        funded_job(1 + i % OWNERS, 8, 1000 + (uint64_t)i, (uint32_t)i, &jobs[i]);
    chain_addr_t recipient = echain_dev_address(8);
    uint64_t before = 0, after = 0;
    cr_assert(echain_balance(&fx.chain, &recipient, &before));
    begin_pool(1, 30000, 5000);
    for (int i = 0; i != N; ++i)
        submit(&jobs[i]);
    long confirmed =
        wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", N, 60000);
    cr_assert_eq(confirmed, N, "confirmed %ld of %d", confirmed, N);
    /* the chain agrees: each intent counted once, the recipient paid the sum */
    uint64_t sum = 0;
    for (int i = 0; i != N; ++i) {
        uint32_t count = executed_count(&jobs[i]);
        cr_assert_eq(count, 1, "intent %d executed %u times on chain", i, count);
        sum += 1000 + (uint64_t)i;
    }
    cr_assert(echain_balance(&fx.chain, &recipient, &after));
    cr_assert_eq(after - before, sum);
    char v[64];
    echain_db_value(&fx.chain, "SELECT count(DISTINCT tx_hash) FROM executions", v, sizeof(v));
    cr_assert_leq(atol(v), 5, "%s transactions for %d jobs: not batched", v, N);
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM executions WHERE gas_used > 0 AND block_hash IS NOT NULL"
                    " AND gas_price_wei > 0 AND confirmed_at IS NOT NULL AND broadcast_at IS NOT"
                    " NULL",
                    v, sizeof(v));
    cr_assert_eq(atol(v), N, "rows without their receipt's figures: %s", v);
    /* the raw transaction is stored once per transaction (not per row) and is the one mined */
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM (SELECT tx_hash FROM executions GROUP BY tx_hash HAVING"
                    " count(*) FILTER (WHERE length(raw_tx) > 0) <> 1) t",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 0, "%s transactions whose raw bytes are not stored exactly once", v);
    static char hex[1 << 17];
    static uint8_t raw[1 << 16];
    size_t raw_len;
    uint8_t hash[32], stored[32];
    echain_db_value(&fx.chain,
                    "SELECT encode(tx_hash, 'hex') || encode(raw_tx, 'hex') FROM executions WHERE"
                    " length(raw_tx) > 0 ORDER BY created_at LIMIT 1",
                    hex, sizeof(hex));
    cr_assert_gt(strlen(hex), 64);
    cr_assert_eq(chain_hex_decode_exact(stored, 32, hex, 64, 0), CHAIN_OK);
    cr_assert_eq(chain_hex_decode(raw, sizeof(raw), &raw_len, hex + 64, strlen(hex + 64), 0),
                 CHAIN_OK);
    chain_tx_hash(raw, raw_len, hash);
    cr_assert(memcmp(hash, stored, 32) == 0, "the stored raw transaction is not the row's");
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM intents WHERE execution_count = 1 AND"
                    " last_execution IS NOT NULL",
                    v, sizeof(v));
    cr_assert_eq(atol(v), N);
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM notifications WHERE type ="
                    " 'execution_succeeded'",
                    v, sizeof(v));
    cr_assert_eq(atol(v), N);
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM audit_log WHERE actor = 'engine' AND action ="
                    " 'execution.confirmed'",
                    v, sizeof(v));
    cr_assert_eq(atol(v), N);
    /* those rows have no foreign keys (migration 007): each names its intent and the intent's
     * owner, and what they name cannot be deleted */
    echain_db_value(&fx.chain,
                    "SELECT (SELECT count(*) FROM notifications n JOIN intents i ON i.id ="
                    " n.intent_id AND i.owner_id = n.user_id) + (SELECT count(*) FROM audit_log a"
                    " JOIN intents i ON i.id = a.subject_id AND i.owner_id = a.user_id WHERE"
                    " a.actor = 'engine')",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 2 * N, "%s of %d rows name their intent and its owner", v, 2 * N);
    cr_assert_not(echain_db_exec(&fx.chain, "DELETE FROM intents WHERE false"));
    cr_assert_not(echain_db_exec(&fx.chain, "DELETE FROM users WHERE false"));
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), N);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, false), 0, "our own executions adopted");
    /* live events: execution.signed, .broadcast, .confirmed and notification.created each */
    events_stats_t st = {0};
    for (int i = 0; i != 100; ++i) {
        events_get_stats(fx.events, &st);
        if (st.published + st.dropped >= 4 * N)
            break;
        sleep_ms(50);
    }
    cr_assert_eq(st.published + st.dropped, 4 * N, "%llu events for %d executions",
                 (unsigned long long)(st.published + st.dropped), N);
    /* the same period again is not signed again: the live row is the lock */
    submit(&jobs[0]);
    sleep_ms(500); /* a negative check: nothing may happen; bounded, not a period */
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), N, "a period with a confirmed execution was signed again");
}

Test(executor, execution_failed_marks_only_that_execution_with_the_reason, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t good, bad;
    fund(1, 1000000);
    cr_assert(echain_mint(&fx.chain, 2, 1000000)); /* no allowance for owner 2 */
    funded_job(1, 8, 500, 1, &good);
    funded_job(2, 8, 500, 2, &bad);
    begin_pool(1, 30000, 5000);
    submit(&good);
    submit(&bad);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status IN ('confirmed',"
                            " 'failed')",
                            2, 60000),
                 2);
    char v[256], sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT status || ':' || coalesce(error, '') FROM executions WHERE intent_id = '%s'",
             bad.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert(strstr(v, "failed:IntentRegistry: transfer failed") == v, "%s", v);
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions WHERE status = 'confirmed'", v,
                    sizeof(v));
    cr_assert_eq(atol(v), 1);
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM notifications WHERE type = 'execution_failed'"
                    " AND message LIKE '%transfer failed%'",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 1);
    snprintf(sql, sizeof(sql), "SELECT execution_count FROM intents WHERE id = '%s'",
             bad.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 0, "a failed execution counted");
    cr_assert_eq(outcomes_with(EXECUTOR_FAILED, true), 1);
    /* a failed period may be tried again (002's index) and succeeds once approved */
    cr_assert(echain_approve(&fx.chain, 2, 1000000));
    submit(&bad);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 60000),
                 2);
}

/* The newest signed row's fees, decoded from its stored raw transaction. */
static void row_fees(const char *where, chain_u256_t *tip, chain_u256_t *max_fee, uint64_t *nonce)
{
    char sql[256], hex[16384];
    snprintf(sql, sizeof(sql),
             "SELECT encode(raw_tx, 'hex') FROM executions WHERE %s AND length(raw_tx) > 0 ORDER BY"
             " created_at LIMIT 1",
             where);
    cr_assert(echain_db_value(&fx.chain, sql, hex, sizeof(hex)));
    static uint8_t raw[8192];
    size_t len;
    cr_assert_eq(chain_hex_decode(raw, sizeof(raw), &len, hex, strlen(hex), 0), CHAIN_OK);
    chain_tx_t t;
    chain_sig_t sig;
    cr_assert_eq(chain_tx_decode(&t, &sig, raw, len), CHAIN_OK);
    *tip = t.max_priority_fee_per_gas, *max_fee = t.max_fee_per_gas, *nonce = t.nonce;
}

/* a >= b * 1.125 */
static bool raised_enough(const chain_u256_t *a, const chain_u256_t *b)
{
    chain_u256_t x8, b9;
    chain_u256_mul_small(&x8, a, 8);
    chain_u256_mul_small(&b9, b, 9);
    return chain_u256_cmp(&x8, &b9) >= 0;
}

Test(executor, a_stuck_transaction_is_replaced_on_the_same_nonce_with_higher_fees, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 700, 1, &job);
    begin_pool(1, 800, 5000);
    wait_head(1);
    cr_assert(echain_automine(&fx.chain, false));
    submit(&job);
    cr_assert_geq(wait_count("SELECT count(*) FROM executions WHERE status = 'replaced'", 1, 30000),
                  1, "the stuck transaction was not replaced");
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status IN ('signed',"
                            " 'broadcast')",
                            1, 5000),
                 1);
    chain_u256_t tip0, max0, tip1, max1;
    uint64_t nonce0, nonce1;
    row_fees("status = 'replaced'", &tip0, &max0, &nonce0);
    row_fees("status IN ('signed', 'broadcast')", &tip1, &max1, &nonce1);
    cr_assert_eq(nonce0, nonce1, "a replacement must keep the nonce");
    cr_assert(raised_enough(&tip1, &tip0) && raised_enough(&max1, &max0),
              "both fees must rise by 12.5%% or more");
    cr_assert(echain_automine(&fx.chain, true));
    cr_assert(echain_mine(&fx.chain, 1));
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    char v[64];
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM executions WHERE status IN ('signed',"
                    " 'broadcast')",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 0);
    cr_assert_eq(executed_count(&job), 1);
    /* the row that was mined is the confirmed one: its hash has a receipt */
    char hash[80], params[100], resp[4096];
    echain_db_value(&fx.chain,
                    "SELECT '0x' || encode(tx_hash, 'hex') FROM executions WHERE status"
                    " = 'confirmed'",
                    hash, sizeof(hash));
    snprintf(params, sizeof(params), "[\"%s\"]", hash);
    cr_assert(echain_rpc(&fx.chain, "eth_getTransactionReceipt", params, resp, sizeof(resp)));
    cr_assert(strstr(resp, "\"status\":\"0x1\"") != NULL, "%s", resp);
    /* every transition went out as an event, the rows marked replaced too: each row was
     * signed and broadcast, then replaced (as execution.failed) or confirmed; one notification */
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    unsigned long long want = 3 * (unsigned long long)atol(v) + 1;
    events_stats_t st = {0};
    for (int i = 0; i != 100; ++i) {
        events_get_stats(fx.events, &st);
        if (st.published + st.dropped >= want)
            break;
        sleep_ms(50);
    }
    cr_assert_eq(st.published + st.dropped, want, "%llu events for %s rows",
                 (unsigned long long)(st.published + st.dropped), v);
}

Test(executor, nonce_too_low_from_a_transaction_behind_its_back_moves_to_a_new_nonce,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 900, 1, &job);
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    sleep_ms(300); /* the lane has synced its nonce (0) by now; bounded */
    char hash[67];
    chain_addr_t to = echain_dev_address(7);
    cr_assert(echain_send(&fx.chain, 0, &to, "", hash), "a transfer behind the executor's back");
    submit(&job);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    char v[64];
    echain_db_value(&fx.chain, "SELECT nonce FROM executions WHERE status = 'confirmed'", v,
                    sizeof(v));
    cr_assert_eq(atol(v), 1, "the execution must move past the used nonce 0");
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM executions WHERE status = 'replaced' AND"
                    " nonce = 0",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the row signed for nonce 0 must be marked replaced");
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), 1);
    /* the lane is not jammed: one more job goes through on the next nonce */
    executor_job_t next;
    funded_job(1, 8, 901, 2, &next);
    submit(&next);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 30000),
                 2);
}

/* Signs executeBatch([job]) with the executor's key at `nonce` and stores its row `signed` (and
 * its transaction in flight, as executor_insert does), as a run that crashed between the insert
 * and the broadcast leaves them; the hash in `hash_hex`. */
static char raw_hex[16384 + 3]; /* the last row's raw transaction, hex */

static void leave_signed_row(const executor_job_t *job, uint64_t nonce, char hash_hex[65])
{
    chain_abi_execution_t e = {&job->terms, job->signature, 65, job->period};
    static uint8_t data[4096], raw[8192];
    size_t data_len, raw_len;
    cr_assert_eq(chain_abi_execute_batch(data, sizeof(data), &data_len, &e, 1), CHAIN_OK);
    chain_key_t *k = NULL;
    cr_assert_eq(chain_key_from_hex(&k, echain_dev_keys[0], 64), CHAIN_OK);
    chain_tx_t t = {.type = CHAIN_TX_EIP1559,
                    .chain_id = 31337,
                    .nonce = nonce,
                    .max_priority_fee_per_gas = chain_u256_from_u64(1000000000),
                    .max_fee_per_gas = chain_u256_from_u64(5000000000),
                    .gas = 300000,
                    .has_to = true,
                    .to = fx.chain.registry,
                    .data = data,
                    .data_len = data_len};
    uint8_t hash[32];
    cr_assert_eq(chain_tx_sign(&t, k, raw, sizeof(raw), &raw_len, hash), CHAIN_OK);
    chain_key_free(k);
    static char sql[20000];
    char executor_hex[41];
    chain_hex_encode(raw_hex, sizeof(raw_hex), raw, raw_len, 0);
    chain_hex_encode(hash_hex, 65, hash, 32, 0);
    chain_addr_t a = echain_dev_address(0);
    chain_hex_encode(executor_hex, sizeof(executor_hex), a.bytes, 20, 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO executions (intent_id, period, status, amount, executor, nonce, raw_tx,"
             " tx_hash) SELECT id, 0, 'signed', amount, decode('%s', 'hex'), %llu, decode('%s',"
             " 'hex'), decode('%s', 'hex') FROM intents WHERE id = '%s'",
             executor_hex, (unsigned long long)nonce, raw_hex, hash_hex, job->intent_id);
    cr_assert(echain_db_exec(&fx.chain, sql));
    snprintf(sql, sizeof(sql),
             "INSERT INTO executor_txs (tx_hash, executor, nonce, in_flight) VALUES (decode('%s',"
             " 'hex'), decode('%s', 'hex'), %llu, true)",
             hash_hex, executor_hex, (unsigned long long)nonce);
    cr_assert(echain_db_exec(&fx.chain, sql));
}

Test(executor, a_row_left_signed_by_a_crash_is_sent_again_byte_for_byte_and_confirmed,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 321, 1, &job);
    char hash[65];
    leave_signed_row(&job, 0, hash);
    begin_pool(1, 30000, 5000);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    char v[80];
    echain_db_value(&fx.chain,
                    "SELECT encode(tx_hash, 'hex') FROM executions WHERE status ="
                    " 'confirmed'",
                    v, sizeof(v));
    cr_assert_str_eq(v, hash, "the stored transaction itself must be the one mined");
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 1, "nothing else may be signed for that period");
    /* the same period handed in again is refused by the live row */
    submit(&job);
    executor_job_t next;
    funded_job(1, 8, 322, 2, &next);
    submit(&next);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 30000),
                 2);
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 2);
    echain_db_value(&fx.chain, "SELECT nonce FROM executions ORDER BY nonce DESC LIMIT 1", v,
                    sizeof(v));
    cr_assert_eq(atol(v), 1, "the lane's nonce follows the reconciled one");
}

/* Dev account `dev` calls the registry's execute for `job` itself (another executor); `hash`
 * gets its transaction's hash. */
static void execute_as(int dev, const executor_job_t *job, char hash[67])
{
    static uint8_t data[4096];
    static char hex[8200];
    size_t len;
    cr_assert_eq(chain_abi_execute(data, sizeof(data), &len, &job->terms, job->signature, 65, 0),
                 CHAIN_OK);
    chain_hex_encode(hex, sizeof(hex), data, len, 0);
    cr_assert(echain_send(&fx.chain, dev, &fx.chain.registry, hex, hash));
}

/* A row's block as the chain has it now: its hash (hex, no 0x) and timestamp. */
static void chain_block(unsigned long long number, char hash[65], long long *time_s)
{
    char params[64];
    static char out[1 << 16];
    snprintf(params, sizeof(params), "[\"0x%llx\", false]", number);
    cr_assert(echain_rpc(&fx.chain, "eth_getBlockByNumber", params, out, sizeof(out)));
    json_t *root = json_loads(out, 0, NULL), *res = json_object_get(root, "result");
    const char *h = json_string_value(json_object_get(res, "hash"));
    const char *t = json_string_value(json_object_get(res, "timestamp"));
    cr_assert(h != NULL && t != NULL && strlen(h) == 66, "block %llu: %s", number, out);
    snprintf(hash, 65, "%s", h + 2);
    *time_s = strtoll(t, NULL, 16);
    json_decref(root);
}

/* The block time the database holds for the confirmed row of `job`'s intent and `period` (its
 * block_time; 0 when NULL), checked against the chain: its block's timestamp, which it returns. */
static long long row_block_time(const executor_job_t *job, uint32_t period)
{
    char sql[320], v[128], row_hash[80], hash[65];
    snprintf(sql, sizeof(sql),
             "SELECT block_number || ' ' || encode(block_hash, 'hex') || ' ' || COALESCE(extract("
             "epoch FROM block_time)::bigint, 0) FROM executions WHERE intent_id = '%s' AND period"
             " = %u AND status = 'confirmed'",
             job->intent_id, period);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    unsigned long long number;
    long long time_s, chain_time_s;
    cr_assert_eq(sscanf(v, "%llu %79s %lld", &number, row_hash, &time_s), 3, "period %u: %s",
                 period, v);
    chain_block(number, hash, &chain_time_s);
    cr_assert_str_eq(row_hash, hash, "period %u: the row's block is not canonical", period);
    cr_assert_eq(time_s, chain_time_s, "period %u: block_time %lld, its block's time %lld", period,
                 time_s, chain_time_s);
    return chain_time_s;
}

Test(executor, another_executors_execution_is_adopted_and_a_revoke_cancels, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job, revoked;
    fund(1, 1000000);
    funded_job(1, 8, 444, 1, &job);
    funded_job(1, 8, 445, 2, &revoked);
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    /* dev account 5 calls the registry's execute itself */
    char hash[67];
    execute_as(5, &job, hash);
    static uint8_t data[4096];
    static char hex[8200];
    size_t len;
    cr_assert_eq(chain_abi_revoke(data, sizeof(data), &len, &revoked.terms), CHAIN_OK);
    chain_hex_encode(hex, sizeof(hex), data, len, 0);
    cr_assert(echain_send(&fx.chain, 1, &fx.chain.registry, hex, hash));
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    char v[128], sql[256];
    chain_addr_t five = echain_dev_address(5);
    char five_hex[41];
    chain_hex_encode(five_hex, sizeof(five_hex), five.bytes, 20, 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE executor = decode('%s', 'hex') AND"
             " length(raw_tx) = 0 AND block_number IS NOT NULL AND intent_id = '%s'",
             five_hex, job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the foreign execution must be adopted with its sender");
    row_block_time(&job, 0); /* its block, and that block's time */
    snprintf(sql, sizeof(sql), "SELECT execution_count FROM intents WHERE id = '%s'",
             job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM intents WHERE id = '%s' AND status ="
             " 'cancelled'",
             revoked.intent_id);
    cr_assert_eq(wait_count(sql, 1, 10000), 1, "Revoked must cancel the intent");
    for (int i = 0; i != 100 && outcomes_with(EXECUTOR_REVOKED, false) == 0; ++i)
        sleep_ms(50);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, false), 1);
    cr_assert_eq(outcomes_with(EXECUTOR_REVOKED, false), 1);
    /* our job for the period already paid is not signed: the adopted row holds it */
    submit(&job);
    sleep_ms(500); /* a negative check; bounded */
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 1);
}

/* The follower takes the lanes' word for the transactions they follow (no query for their logs);
 * a foreign execution mined in the same block as one of ours is still adopted, and ours is
 * recorded by its lane, once each. */
Test(executor, a_foreign_execution_in_the_same_block_as_ours_is_adopted, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t ours, foreign;
    fund(1, 1000000);
    funded_job(1, 8, 551, 1, &ours);
    funded_job(1, 8, 552, 2, &foreign);
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    cr_assert(echain_automine(&fx.chain, false));
    submit(&ours);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'broadcast'", 1, 30000),
                 1, "our transaction did not reach the node");
    char v[128], sql[320];
    uint8_t hash[32];
    size_t hash_len;
    echain_db_value(&fx.chain, "SELECT encode(tx_hash, 'hex') FROM executions", v, sizeof(v));
    cr_assert_eq(chain_hex_decode(hash, sizeof(hash), &hash_len, v, strlen(v), 0), CHAIN_OK);
    cr_assert_eq(hash_len, 32);
    cr_assert(executor__pool_follows(fx.pool, hash), "the lane does not follow its transaction");
    char foreign_hash[67];
    execute_as(5, &foreign, foreign_hash);
    cr_assert(echain_mine(&fx.chain, 1));
    cr_assert(echain_automine(&fx.chain, true));
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 30000),
                 2, "both executions must be recorded");
    echain_db_value(&fx.chain, "SELECT count(DISTINCT block_number) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the two executions were not mined in one block");
    chain_addr_t five = echain_dev_address(5);
    char five_hex[41];
    chain_hex_encode(five_hex, sizeof(five_hex), five.bytes, 20, 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE executor = decode('%s', 'hex') AND"
             " intent_id = '%s' AND tx_hash = decode('%s', 'hex')",
             five_hex, foreign.intent_id, foreign_hash + 2);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the foreign execution must be adopted with its sender");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE intent_id = '%s'",
             ours.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1, "our execution must have its one row");
    for (int i = 0; i != 100 && outcomes_with(EXECUTOR_CONFIRMED, false) == 0; ++i)
        sleep_ms(50);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, false), 1);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), 1);
    /* decided: the lane's slot is free, and it follows the hash no more */
    for (int i = 0; i != 100 && executor__pool_follows(fx.pool, hash); ++i)
        sleep_ms(50);
    cr_assert(!executor__pool_follows(fx.pool, hash), "a decided transaction is still followed");
}

Test(executor, an_rpc_outage_is_survived, .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t warm_up, job;
    fund(1, 1000000);
    funded_job(1, 8, 111, 2, &warm_up);
    funded_job(1, 8, 555, 1, &job);
    begin_pool(1, 30000, 400);
    wait_head(chain_head());
    /* one execution through first, so the lane has its nonce before the node goes away (the
     * outage under test is one in the middle of the work, not one at start-up) */
    submit(&warm_up);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    cr_assert_eq(kill(fx.chain.anvil.pid, SIGSTOP), 0); /* the node stops answering */
    submit(&job);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions", 2, 10000), 2,
                 "the row is stored while the node is away");
    sleep_ms(2000); /* the outage lasts a few timeouts (not a period of the engine) */
    char v[64];
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions WHERE status = 'confirmed'", v,
                    sizeof(v));
    cr_assert_eq(atol(v), 1, "only the warm-up may be confirmed during the outage");
    cr_assert_eq(kill(fx.chain.anvil.pid, SIGCONT), 0);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 30000),
                 2, "the execution must go through once the node is back");
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 2);
}

/* Moves anvil's clock by `seconds` and mines one block on top (the new chain's, after a
 * revert). */
static void mine_new_block(int seconds)
{
    char params[32], resp[4096];
    snprintf(params, sizeof(params), "[%d]", seconds);
    cr_assert(echain_rpc(&fx.chain, "evm_increaseTime", params, resp, sizeof(resp)));
    cr_assert(echain_mine(&fx.chain, 1));
}

/* Waits (bounded) until the pool has noticed a reorg. */
static void wait_reorg_noticed(void)
{
    for (int i = 0; i != 200 && executor_pool_reorgs(fx.pool) == 0; ++i)
        sleep_ms(50);
    cr_assert_geq(executor_pool_reorgs(fx.pool), 1, "the reorg went unnoticed");
}

/* Snapshots the chain: `revert` gets the evm_revert parameters that go back to it. */
static void snapshot(char revert[128])
{
    char snap[4096];
    cr_assert(echain_rpc(&fx.chain, "evm_snapshot", "[]", snap, sizeof(snap)));
    json_t *doc = json_loads(snap, 0, NULL);
    snprintf(revert, 128, "[\"%s\"]", json_string_value(json_object_get(doc, "result")));
    json_decref(doc);
}

Test(executor, a_reorg_is_noticed_and_the_receipt_checked_again, .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 666, 1, &job);
    begin_pool(3, 30000, 5000);
    wait_head(chain_head());
    char params[128];
    snapshot(params);
    submit(&job);
    /* mined (automine) but one block deep: not yet confirmed */
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'broadcast'", 1, 30000),
                 1);
    uint64_t mined = chain_head();
    wait_head(mined);
    sleep_ms(300); /* the lane has read the receipt by now; bounded */
    char resp[4096];
    cr_assert(echain_rpc(&fx.chain, "evm_revert", params, resp, sizeof(resp)));
    cr_assert(strstr(resp, "true") != NULL, "%s", resp);
    /* a different chain of the same height and more */
    mine_new_block(7);
    wait_reorg_noticed();
    /* the lane sends the transaction again; blocks on top confirm it */
    for (int i = 0; i != 200; ++i) {
        char v[64];
        echain_db_value(&fx.chain, "SELECT count(*) FROM executions WHERE status = 'confirmed'", v,
                        sizeof(v));
        if (atol(v) == 1)
            break;
        echain_mine(&fx.chain, 1);
        sleep_ms(100);
    }
    char v[200], sql[200], hash[80];
    echain_db_value(&fx.chain,
                    "SELECT block_number || ' 0x' || encode(block_hash, 'hex') FROM"
                    " executions WHERE status = 'confirmed'",
                    v, sizeof(v));
    cr_assert(v[0] != '\0', "never confirmed after the reorg");
    unsigned long long number;
    cr_assert_eq(sscanf(v, "%llu %79s", &number, hash), 2);
    snprintf(sql, sizeof(sql), "[\"0x%llx\", false]", number);
    static char block[65536];
    cr_assert(echain_rpc(&fx.chain, "eth_getBlockByNumber", sql, block, sizeof(block)));
    cr_assert(strstr(block, hash) != NULL, "the confirmed block hash must be canonical");
    cr_assert_eq(executed_count(&job), 1);
}

/* A funded job (`salt`) confirmed on a chain snapshotted just before it was sent: `revert` gets
 * the evm_revert parameters that take the payment off the chain again, `before` the block hash
 * its row names. */
static void confirm_after_snapshot(uint32_t salt, executor_job_t *job, char revert[128],
                                   char before[80])
{
    begin_chain(NULL);
    fund(1, 1000000);
    funded_job(1, 8, salt, 1, job);
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    snapshot(revert);
    submit(job);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    echain_db_value(&fx.chain, "SELECT encode(block_hash, 'hex') FROM executions", before, 80);
}

/* A reorg deeper than the confirmations (back to `revert`, then one new block): the pool must
 * notice it and send the stored transaction again (automine includes it at once), and the row
 * must follow it to a new block, whose hash `after` gets. */
static void reorg_until_mined_again(const char *revert, const char *before, char after[80])
{
    char resp[4096];
    wait_head(chain_head());
    cr_assert(echain_rpc(&fx.chain, "evm_revert", revert, resp, sizeof(resp)));
    mine_new_block(9);
    wait_reorg_noticed();
    after[0] = '\0';
    for (int i = 0; i != 200; ++i) {
        echain_db_value(&fx.chain, "SELECT encode(block_hash, 'hex') FROM executions", after, 80);
        if (strcmp(after, before) != 0 && after[0] != '\0')
            break;
        sleep_ms(50);
    }
    cr_assert_str_neq(after, before, "the decided row still names the block that left the chain");
    cr_assert(after[0] != '\0', "the row was not mined again");
}

/* Waits (bounded) until no lane follows the transaction `hex` (its hash, hex without 0x) any
 * more: decided, it is the follower's to re-check after a reorg. */
static void wait_left_to_the_follower(const char *hex)
{
    uint8_t hash[32];
    size_t hash_len;
    cr_assert_eq(chain_hex_decode(hash, 32, &hash_len, hex, strlen(hex), 0), CHAIN_OK);
    for (int i = 0; i != 100 && executor__pool_follows(fx.pool, hash); ++i)
        sleep_ms(50);
    cr_assert(!executor__pool_follows(fx.pool, hash));
}

/* Once no lane follows the decided transaction `hex`, a reorg deeper than the confirmations: back
 * to the snapshot `revert` with automine off, then one empty block on the new chain where the
 * transaction's was; returns once the pool has noticed. Sent again, the transaction then waits
 * in the node's pool until the test mines. */
static void reorg_with_automine_off(const char *hex, const char *revert)
{
    char resp[4096];
    wait_left_to_the_follower(hex);
    wait_head(chain_head());
    cr_assert(echain_automine(&fx.chain, false));
    cr_assert(echain_rpc(&fx.chain, "evm_revert", revert, resp, sizeof(resp)));
    cr_assert(strstr(resp, "true") != NULL, "%s", resp);
    mine_new_block(9);
    wait_reorg_noticed();
}

Test(executor, a_reorg_deeper_than_the_confirmations_sends_a_decided_transaction_again,
     .timeout = 120, .fini = end_all)
{
    executor_job_t job;
    char revert[128], before[80], after[80];
    confirm_after_snapshot(777, &job, revert, before);
    reorg_until_mined_again(revert, before, after);
    char v[200], sql[100];
    echain_db_value(&fx.chain, "SELECT block_number FROM executions", v, sizeof(v));
    snprintf(sql, sizeof(sql), "[\"0x%llx\", false]", (unsigned long long)atoll(v));
    static char block[65536];
    cr_assert(echain_rpc(&fx.chain, "eth_getBlockByNumber", sql, block, sizeof(block)));
    cr_assert(strstr(block, after) != NULL, "the row's block must be canonical");
    cr_assert_eq(executed_count(&job), 1, "the payment is on the new chain too");
}

/* A decided payment that a reorg deeper than the confirmations takes off the chain, sent again
 * by the follower and mined in a block whose header the follower never reads: one call mines it
 * with CHAIN_FOLLOWER_BLOCKS + 36 blocks on top, so the follower's next head is past the window of
 * headers it reads below a head. The row still gets that block's time (from a header read with
 * the receipt poll, its hash checked against the receipt's), not NULL. */
Test(executor, a_payment_mined_again_in_a_block_the_follower_never_read_gets_its_time,
     .timeout = 120, .fini = end_all)
{
    executor_job_t job;
    char revert[128], before[80], hex[80], resp[4096];
    confirm_after_snapshot(4242, &job, revert, before);
    echain_db_value(&fx.chain, "SELECT encode(tx_hash, 'hex') FROM executions", hex, sizeof(hex));
    reorg_with_automine_off(hex, revert);
    char params[100];
    snprintf(params, sizeof(params), "[\"0x%s\"]", hex);
    for (int i = 0; i != 200; ++i) {
        cr_assert(echain_rpc(&fx.chain, "eth_getTransactionByHash", params, resp, sizeof(resp)));
        if (strstr(resp, "\"result\":null") == NULL)
            break;
        sleep_ms(50);
    }
    cr_assert_null(strstr(resp, "\"result\":null"), "never sent again: %s", resp);
    uint64_t head = chain_head();
    snprintf(params, sizeof(params), "[\"0x%x\"]", CHAIN_FOLLOWER_BLOCKS + 36);
    cr_assert(echain_rpc(&fx.chain, "anvil_mine", params, resp, sizeof(resp)));
    cr_assert_eq(chain_head(), head + CHAIN_FOLLOWER_BLOCKS + 36, "%s", resp);
    char after[80] = "";
    for (int i = 0; i != 200; ++i) {
        echain_db_value(&fx.chain,
                        "SELECT encode(block_hash, 'hex') FROM executions WHERE status ="
                        " 'confirmed'",
                        after, sizeof(after));
        if (after[0] != '\0' && strcmp(after, before) != 0)
            break;
        sleep_ms(50);
    }
    cr_assert(after[0] != '\0' && strcmp(after, before) != 0, "not confirmed on the new chain");
    char sql[200], v[64];
    snprintf(sql, sizeof(sql), "SELECT block_number FROM executions WHERE intent_id = '%s'",
             job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(strtoull(v, NULL, 10), head + 1, "mined in the first block of the burst");
    row_block_time(&job, 0);
    cr_assert_eq(executed_count(&job), 1, "the payment is on the new chain once");
}

/* A decided transaction of ours that a deep reorg took off the chain, while the new chain's
 * transaction at its nonce is another (here the same key, sent behind the lane's back): the
 * follower puts its rows back in flight, a lane takes them over, finds after the doubt period
 * that none of the nonce's stored transactions was mined, marks the rows replaced and pays the
 * period again under a new nonce: once on the new chain, with the events. */
Test(executor, a_decided_transaction_whose_nonce_a_reorg_gave_to_another_is_paid_again_once,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 779, 1, &job);
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    static char params[512], resp[4096];
    char revert[128];
    snapshot(revert);
    submit(&job);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    char first[80], nonce[24], v[128], sql[400];
    echain_db_value(&fx.chain, "SELECT encode(tx_hash, 'hex') FROM executions", first,
                    sizeof(first));
    echain_db_value(&fx.chain, "SELECT nonce FROM executions", nonce, sizeof(nonce));
    uint8_t first_hash[32];
    size_t hash_len;
    cr_assert_eq(chain_hex_decode(first_hash, 32, &hash_len, first, strlen(first), 0), CHAIN_OK);
    for (int i = 0; i != 100 && executor__pool_follows(fx.pool, first_hash); ++i)
        sleep_ms(50); /* decided: no slot holds it any more */
    cr_assert(!executor__pool_follows(fx.pool, first_hash));
    wait_head(chain_head());
    events_stats_t before = {0}, after = {0};
    events_get_stats(fx.events, &before);
    /* the new chain: the lane's key sends another transaction at that nonce (with fees that
     * outbid ours, should the follower send ours again first), mined in a block of its own */
    cr_assert(echain_automine(&fx.chain, false));
    cr_assert(echain_rpc(&fx.chain, "evm_revert", revert, resp, sizeof(resp)));
    char dev0[CHAIN_ADDR_STR_SIZE], dev9[CHAIN_ADDR_STR_SIZE];
    chain_addr_t a0 = echain_dev_address(0), a9 = echain_dev_address(9);
    chain_addr_format(&a0, dev0);
    chain_addr_format(&a9, dev9);
    snprintf(params, sizeof(params),
             "[{\"from\":\"%s\",\"to\":\"%s\",\"value\":\"0x1\",\"nonce\":\"0x%llx\","
             "\"gas\":\"0x5208\",\"maxFeePerGas\":\"0x174876e800\",\"maxPriorityFeePerGas\":"
             "\"0x174876e800\"}]",
             dev0, dev9, (unsigned long long)atoll(nonce));
    cr_assert(echain_rpc(&fx.chain, "eth_sendTransaction", params, resp, sizeof(resp)));
    mine_new_block(9);
    cr_assert(echain_automine(&fx.chain, true));
    snprintf(params, sizeof(params), "[\"0x%s\"]", first);
    cr_assert(echain_rpc(&fx.chain, "eth_getTransactionReceipt", params, resp, sizeof(resp)));
    cr_assert(strstr(resp, "\"result\":null") != NULL, "ours was mined on the new chain: %s", resp);
    wait_reorg_noticed();
    /* the rows of the transaction that can never be mined are replaced, and the period is paid
     * by a new one */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE tx_hash = decode('%s', 'hex') AND status ="
             " 'replaced'",
             first);
    cr_assert_eq(wait_count(sql, 1, 60000), 1, "the lost transaction's row stays in flight");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE intent_id = '%s' AND status = 'confirmed'"
             " AND tx_hash <> decode('%s', 'hex') AND nonce > %s",
             job.intent_id, first, nonce);
    cr_assert_eq(wait_count(sql, 1, 60000), 1, "the period was not paid again");
    cr_assert_eq(executed_count(&job), 1, "paid once on the new chain");
    snprintf(sql, sizeof(sql), "SELECT execution_count FROM intents WHERE id = '%s'",
             job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the database's count is the chain's");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE intent_id = '%s'",
             job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 2, "one row replaced, one confirmed");
    /* announced: the rows put back in flight, then replaced; the new row signed, broadcast and
     * confirmed, with its notification */
    for (int i = 0; i != 100; ++i) {
        events_get_stats(fx.events, &after);
        if (after.published + after.dropped >= before.published + before.dropped + 6)
            break;
        sleep_ms(50);
    }
    cr_assert_geq(
        after.published + after.dropped, before.published + before.dropped + 6, "%llu events",
        (unsigned long long)(after.published + after.dropped - before.published - before.dropped));
}

/* The lane's transactions as the previous run left them, stored by the lane itself: one confirmed,
 * then one broadcast while the node did not mine, when that run stopped; the node has since
 * forgotten the second (dropped from its pool). The next start's reconciliation finds its nonce
 * in flight (through executor_txs, store/migrations/009), sends the stored bytes again and
 * records the outcome; the confirmed one is left alone, and no transaction stays in flight. */
Test(executor, a_transaction_left_broadcast_by_the_previous_run_is_finished_by_the_next_start,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t first, second;
    fund(1, 1000000);
    funded_job(1, 8, 336, 1, &first);
    funded_job(1, 8, 337, 2, &second);
    begin_pool(1, 30000, 5000);
    submit(&first);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    cr_assert(echain_automine(&fx.chain, false));
    submit(&second);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'broadcast'", 1, 30000),
                 1, "the second transaction was not broadcast");
    end_pool();
    char hash[80], confirmed_before[80], resp[4096], q[128];
    echain_db_value(&fx.chain,
                    "SELECT encode(tx_hash, 'hex') FROM executions WHERE status ="
                    " 'broadcast'",
                    hash, sizeof(hash));
    echain_db_value(&fx.chain,
                    "SELECT encode(tx_hash, 'hex') FROM executions WHERE status ="
                    " 'confirmed'",
                    confirmed_before, sizeof(confirmed_before));
    cr_assert(echain_rpc(&fx.chain, "anvil_dropAllTransactions", "[]", resp, sizeof(resp)));
    snprintf(q, sizeof(q), "[\"0x%s\"]", hash);
    cr_assert(echain_rpc(&fx.chain, "eth_getTransactionByHash", q, resp, sizeof(resp)));
    cr_assert(strstr(resp, "\"result\":null") != NULL, "the node still knows it: %s", resp);
    cr_assert(echain_automine(&fx.chain, true));
    begin_pool(1, 30000, 5000);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 30000),
                 2, "the transaction left broadcast was not finished");
    char v[80], sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT encode(tx_hash, 'hex') FROM executions WHERE intent_id ="
             " '%s'",
             second.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_str_eq(v, hash, "the stored transaction itself must be the one mined");
    snprintf(sql, sizeof(sql),
             "SELECT encode(tx_hash, 'hex') FROM executions WHERE intent_id ="
             " '%s'",
             first.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_str_eq(v, confirmed_before);
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 2, "nothing else may be signed");
    uint64_t nonce = 0;
    char addr[CHAIN_ADDR_STR_SIZE];
    chain_addr_t a = echain_dev_address(0);
    chain_addr_format(&a, addr);
    snprintf(q, sizeof(q), "[\"%s\", \"latest\"]", addr);
    cr_assert(echain_rpc_u64(&fx.chain, "eth_getTransactionCount", q, &nonce));
    cr_assert_eq(nonce, 2, "one transaction per nonce, none sent twice");
    cr_assert_eq(executed_count(&second), 1);
    /* the transactions' rows agree: none in flight, each with its rows' block */
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM executor_txs t WHERE NOT t.in_flight AND"
                    " t.block_number = (SELECT max(block_number) FROM executions e WHERE"
                    " e.tx_hash = t.tx_hash)",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 2);
}

/* A deeper reorg than the confirmations after a restart: the follower of the next run finds the
 * transaction the previous run decided by its block (follower_recent, through executor_txs), and
 * sends it again; the row follows it to its new block. */
Test(executor, a_reorg_after_a_restart_sends_the_previous_runs_decided_transaction_again,
     .timeout = 120, .fini = end_all)
{
    executor_job_t job;
    char revert[128], before[80], after[80];
    confirm_after_snapshot(778, &job, revert, before);
    end_pool();
    begin_pool(1, 30000, 5000);
    reorg_until_mined_again(revert, before, after);
    cr_assert_eq(executed_count(&job), 1, "the payment is on the new chain too");
}

Test(executor, a_row_left_broadcast_whose_transaction_was_mined_is_adopted_not_sent_twice,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 333, 1, &job);
    char hash[65];
    leave_signed_row(&job, 0, hash);
    cr_assert(echain_db_exec(&fx.chain, "UPDATE executions SET status = 'broadcast'"));
    static char params[16500], resp[4096];
    snprintf(params, sizeof(params), "[\"0x%s\"]", raw_hex);
    cr_assert(echain_rpc(&fx.chain, "eth_sendRawTransaction", params, resp, sizeof(resp)),
              "the crashed run's broadcast");
    uint64_t nonce = 0;
    char addr[CHAIN_ADDR_STR_SIZE], q[128];
    chain_addr_t a = echain_dev_address(0);
    chain_addr_format(&a, addr);
    snprintf(q, sizeof(q), "[\"%s\", \"latest\"]", addr);
    for (int i = 0; i != 100 && nonce == 0; ++i) {
        cr_assert(echain_rpc_u64(&fx.chain, "eth_getTransactionCount", q, &nonce));
        sleep_ms(20);
    }
    cr_assert_eq(nonce, 1, "mined before the restart");
    begin_pool(1, 30000, 5000);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    char v[80];
    echain_db_value(&fx.chain, "SELECT encode(tx_hash, 'hex') FROM executions", v, sizeof(v));
    cr_assert_str_eq(v, hash);
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 1);
    cr_assert(echain_rpc_u64(&fx.chain, "eth_getTransactionCount", q, &nonce));
    cr_assert_eq(nonce, 1, "nothing else was sent");
}

Test(executor, two_keys_are_two_nonce_lanes, .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    enum { N = 20 };
    static executor_job_t jobs[N];
    fund(1, 1000000);
    fund(2, 1000000);
    for (int i = 0; i != N; ++i)
        funded_job(1 + i % 2, 8, 10 + (uint64_t)i, (uint32_t)i, &jobs[i]);
    fx.lanes = 2;
    begin_pool(1, 30000, 5000);
    for (int i = 0; i != N; ++i)
        submit(&jobs[i]);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", N, 30000),
                 N);
    char v[64];
    echain_db_value(&fx.chain, "SELECT count(DISTINCT executor) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 2, "both lanes must carry jobs");
    for (int i = 0; i != N; ++i) {
        cr_assert_eq(executed_count(&jobs[i]), 1);
    }
    cr_assert_eq(executor_pool_pending(fx.pool), 0);
}

/* Issue #6's kill test: a restarted lane sent its stored transaction again, heard "nonce too
 * low", and polled while the node already counted the nonce but did not serve the receipt yet;
 * it moved the executions to a new nonce, marking the mined transaction's rows replaced, and
 * the moved transaction failed "wrong count". Here the node serves that receipt late on purpose
 * (the proxy), and the lane must wait for it rather than move. */
Test(executor, a_mined_transaction_whose_receipt_comes_after_its_nonce_count_is_not_moved,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 334, 1, &job);
    char hash[65];
    leave_signed_row(&job, 0, hash);
    cr_assert(echain_db_exec(&fx.chain, "UPDATE executions SET status = 'broadcast'"));
    static char params[16500], resp[4096];
    snprintf(params, sizeof(params), "[\"0x%s\"]", raw_hex);
    cr_assert(echain_rpc(&fx.chain, "eth_sendRawTransaction", params, resp, sizeof(resp)),
              "the crashed run's broadcast");
    uint64_t nonce = 0;
    char addr[CHAIN_ADDR_STR_SIZE], q[128];
    chain_addr_t a = echain_dev_address(0);
    chain_addr_format(&a, addr);
    snprintf(q, sizeof(q), "[\"%s\", \"latest\"]", addr);
    for (int i = 0; i != 100 && nonce == 0; ++i) {
        cr_assert(echain_rpc_u64(&fx.chain, "eth_getTransactionCount", q, &nonce));
        sleep_ms(20);
    }
    cr_assert_eq(nonce, 1, "mined before the restart");
    proxy_start(hash, 1500); /* the receipt comes 1.5 s after the first ask */
    begin_pool(1, 30000, 5000);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1, "the mined transaction was not recorded");
    cr_assert_gt(proxy_hidden_answers(fx.proxy), 0, "the lane never met the late receipt");
    char v[80];
    echain_db_value(&fx.chain, "SELECT encode(tx_hash, 'hex') FROM executions", v, sizeof(v));
    cr_assert_str_eq(v, hash, "the transaction mined is the one confirmed");
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the executions were moved to another nonce");
    cr_assert(echain_rpc_u64(&fx.chain, "eth_getTransactionCount", q, &nonce));
    cr_assert_eq(nonce, 1, "a second transaction was sent");
    cr_assert_eq(executed_count(&job), 1);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT execution_count FROM intents WHERE id = '%s'",
             job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the database's count is the chain's");
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), 1);
    cr_assert_eq(outcomes_with(EXECUTOR_FAILED, true), 0);
}

/* What the bug above left behind: the mined transaction's row marked replaced, and the row of
 * the transaction it moved to failed "wrong count". The follower must take the chain's word:
 * the Executed log's row becomes confirmed, and the intent's count follows. */
Test(executor, an_executed_log_of_ours_whose_row_was_marked_replaced_is_adopted, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job;
    fund(1, 1000000);
    funded_job(1, 8, 335, 1, &job);
    char hash[65];
    leave_signed_row(&job, 0, hash);
    cr_assert(echain_db_exec(&fx.chain, "UPDATE executions SET status = 'replaced'"));
    static char params[16500], resp[4096], sql[1024];
    snprintf(params, sizeof(params), "[\"0x%s\"]", raw_hex);
    cr_assert(echain_rpc(&fx.chain, "eth_sendRawTransaction", params, resp, sizeof(resp)));
    snprintf(sql, sizeof(sql),
             "INSERT INTO executions (intent_id, period, status, amount, executor, nonce, raw_tx,"
             " tx_hash, error) SELECT intent_id, 0, 'failed', amount, executor, 1, '\\x00',"
             " decode(repeat('ab', 32), 'hex'), 'IntentRegistry: wrong count' FROM executions");
    cr_assert(echain_db_exec(&fx.chain, sql));
    /* the follower reads the registry's logs from the first block on */
    char registry[41];
    chain_hex_encode(registry, sizeof(registry), fx.chain.registry.bytes, 20, 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO chain_cursors (chain_id, registry, next_block) VALUES (31337,"
             " decode('%s', 'hex'), 1)",
             registry);
    cr_assert(echain_db_exec(&fx.chain, sql));
    begin_pool(1, 30000, 5000);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1, "the chain's Executed log was not adopted");
    char v[80];
    echain_db_value(&fx.chain,
                    "SELECT encode(tx_hash, 'hex') FROM executions WHERE status = 'confirmed'"
                    " AND block_number IS NOT NULL AND block_hash IS NOT NULL",
                    v, sizeof(v));
    cr_assert_str_eq(v, hash, "the row of the mined transaction is the confirmed one");
    echain_db_value(&fx.chain, "SELECT count(*) FROM executions", v, sizeof(v));
    cr_assert_eq(atol(v), 2, "no row added beside it");
    echain_db_value(&fx.chain, "SELECT status FROM executions WHERE nonce = 1", v, sizeof(v));
    cr_assert_str_eq(v, "failed");
    snprintf(sql, sizeof(sql), "SELECT execution_count FROM intents WHERE id = '%s'",
             job.intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 1, "the database's count is the chain's");
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM notifications WHERE type = 'execution_succeeded'", v,
                    sizeof(v));
    cr_assert_eq(atol(v), 1);
    for (int i = 0; i != 100 && outcomes_with(EXECUTOR_CONFIRMED, false) == 0; ++i)
        sleep_ms(50);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, false), 1);
}

/* Another executor's executeBatch: each of its Executed logs is a row of its own (they share
 * the transaction hash). */
Test(executor, another_executors_batch_is_adopted_execution_by_execution, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t jobs[3];
    fund(1, 1000000);
    fund(2, 1000000);
    for (int i = 0; i != 3; ++i)
        funded_job(1 + i % 2, 8, 450 + (uint64_t)i, 10 + (uint32_t)i, &jobs[i]);
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    chain_abi_execution_t batch[3];
    for (int i = 0; i != 3; ++i)
        batch[i] = (chain_abi_execution_t){&jobs[i].terms, jobs[i].signature, 65, 0};
    static uint8_t data[8192];
    static char hex[16400];
    size_t len;
    cr_assert_eq(chain_abi_execute_batch(data, sizeof(data), &len, batch, 3), CHAIN_OK);
    chain_hex_encode(hex, sizeof(hex), data, len, 0);
    char hash[67];
    cr_assert(echain_send(&fx.chain, 5, &fx.chain.registry, hex, hash));
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 3, 30000),
                 3, "every execution of the batch must be adopted");
    char v[80], five_hex[41], sql[256];
    chain_addr_t five = echain_dev_address(5);
    chain_hex_encode(five_hex, sizeof(five_hex), five.bytes, 20, 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE executor = decode('%s', 'hex') AND"
             " '0x' || encode(tx_hash, 'hex') = '%s'",
             five_hex, hash);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    cr_assert_eq(atol(v), 3);
    echain_db_value(&fx.chain, "SELECT count(*) FROM intents WHERE execution_count = 1", v,
                    sizeof(v));
    cr_assert_eq(atol(v), 3);
    for (int i = 0; i != 100 && outcomes_with(EXECUTOR_CONFIRMED, false) < 3; ++i)
        sleep_ms(50);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, false), 3);
}

/* How many rows of `job`'s intent have `status`. */
static long rows_of(const executor_job_t *job, const char *status)
{
    char sql[256], v[32];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE intent_id = '%.36s' AND status = '%.16s'",
             job->intent_id, status);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    return atol(v);
}

Test(executor, a_batch_short_of_gas_pays_nothing_twice_and_the_lane_declares_more, .timeout = 120,
     .fini = end_all)
{
    begin_chain(NULL);
    enum { N = 6, ROUNDS = 5 };
    static executor_job_t jobs[N];
    fund(1, 1000000);
    fund(2, 1000000);
    for (int i = 0; i != N; ++i)
        funded_job(1 + i % 2, 8, 100 + (uint64_t)i, 3000 + (uint32_t)i, &jobs[i]);
    chain_addr_t recipient = echain_dev_address(8);
    uint64_t before = 0, after = 0;
    cr_assert(echain_balance(&fx.chain, &recipient, &before));
    fx.gas_per_execution = 20000; /* far below the ~46k an execution costs */
    begin_pool(1, 30000, 5000);
    /* each round sends what is not paid yet; the lane raises its figure after running out */
    static const char decided_sql[] = "SELECT count(*) FROM executions WHERE status IN"
                                      " ('confirmed', 'failed')";
    char v[32];
    for (int round = 0; round != ROUNDS; ++round) {
        long pending = 0;
        for (int i = 0; i != N; ++i)
            if (rows_of(&jobs[i], "confirmed") == 0) {
                submit(&jobs[i]);
                ++pending;
            }
        if (pending == 0)
            break;
        echain_db_value(&fx.chain, decided_sql, v, sizeof(v));
        long want = atol(v) + pending;
        cr_assert_geq(wait_count(decided_sql, want, 30000), want,
                      "round %d: executions left undecided", round);
    }
    echain_db_value(&fx.chain,
                    "SELECT count(*) FROM executions WHERE error = 'the batch ran out of gas'", v,
                    sizeof(v));
    long out_of_gas = atol(v);
    cr_assert_geq(out_of_gas, 1, "a batch short of gas did not run out: the test proves nothing");
    /* nothing was paid and the period is tried again: no "payment failed" for the owner */
    echain_db_value(&fx.chain, "SELECT count(*) FROM notifications WHERE type = 'execution_failed'",
                    v, sizeof(v));
    cr_assert_eq(atol(v), 0, "an owner was told a retried payment failed");
    /* every payment made exactly once, on chain and in the database */
    uint64_t sum = 0;
    for (int i = 0; i != N; ++i) {
        uint32_t count = executed_count(&jobs[i]);
        cr_assert_eq(count, 1, "intent %d executed %u times on chain", i, count);
        cr_assert_eq(rows_of(&jobs[i], "confirmed"), 1);
        sum += 100 + (uint64_t)i;
    }
    cr_assert(echain_balance(&fx.chain, &recipient, &after));
    cr_assert_eq(after - before, sum, "paid %llu, owed %llu", (unsigned long long)(after - before),
                 (unsigned long long)sum);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), N);
}

/* Outcomes are recorded with the block read beside the receipts (the block the head makes
 * CONFIRMATIONS deep) or, for transactions mined in another block, one read on its own: either
 * way each row names its canonical block, and its intent's last execution is that block's time. */
Test(executor, outcomes_of_transactions_in_several_blocks_name_each_ones_block_and_time,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL); /* automine: each batch is mined in a block of its own */
    enum { WAVES = 3, PER_WAVE = 3, N = WAVES * PER_WAVE };
    static executor_job_t jobs[N];
    for (int o = 1; o <= PER_WAVE; ++o)
        fund(o, 1000000);
    for (int i = 0; i != N; ++i)
        funded_job(1 + i % PER_WAVE, 8, 100 + (uint64_t)i, 500 + (uint32_t)i, &jobs[i]);
    begin_pool(2, 30000, 5000);
    wait_head(chain_head());
    for (int w = 0; w != WAVES; ++w) { /* a wave is broadcast (mined) before the next */
        for (int i = 0; i != PER_WAVE; ++i)
            submit(&jobs[w * PER_WAVE + i]);
        long want = (long)(w + 1) * PER_WAVE;
        cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status IN ('broadcast',"
                                " 'confirmed')",
                                want, 30000),
                     want);
    }
    /* blocks on top make each CONFIRMATIONS (2) deep; bounded */
    for (int i = 0; i != 100 && wait_count("SELECT count(*) FROM executions WHERE status ="
                                           " 'confirmed'",
                                           N, 100) < N;
         ++i)
        cr_assert(echain_mine(&fx.chain, 1));
    char v[64];
    echain_db_value(&fx.chain, "SELECT count(DISTINCT block_number) FROM executions", v, sizeof(v));
    cr_assert_geq(atol(v), 2, "all in one block: the test shows nothing");
    static char rows[8192];
    echain_db_value(&fx.chain,
                    "SELECT string_agg(e.block_number || ' ' || encode(e.block_hash, 'hex') || ' '"
                    " || extract(epoch FROM i.last_execution)::bigint, ';') FROM executions e JOIN"
                    " intents i ON i.id = e.intent_id WHERE e.status = 'confirmed'",
                    rows, sizeof(rows));
    int seen = 0;
    for (char *row = strtok(rows, ";"); row != NULL; row = strtok(NULL, ";"), ++seen) {
        unsigned long long number;
        long long time_s, chain_time_s;
        char hash[80], chain_hash[65];
        cr_assert_eq(sscanf(row, "%llu %79s %lld", &number, hash, &time_s), 3, "%s", row);
        chain_block(number, chain_hash, &chain_time_s);
        cr_assert_str_eq(hash, chain_hash, "block %llu: the row's hash is not canonical", number);
        cr_assert_eq(time_s, chain_time_s, "block %llu: last execution is not its time", number);
    }
    cr_assert_eq(seen, N);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), N);
}

/* Transactions of one block that become deep enough together read that block once: the others
 * wait for that read instead of each sending its own. Three blocks mined at once put the head two
 * past the block of the batches, so the header read with the receipts (the block the head makes
 * CONFIRMATIONS deep) is not theirs and their block has to be read for them. */
Test(executor, the_transactions_of_one_block_share_one_read_of_it, .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    enum { OWNERS = 4, N = 12, TRACE_CAP = 4096 };
    static executor_job_t jobs[N];
    for (int o = 1; o <= OWNERS; ++o)
        fund(o, 1000000);
    for (int i = 0; i != N; ++i)
        funded_job(1 + i % OWNERS, 8, 100 + (uint64_t)i, 700 + (uint32_t)i, &jobs[i]);
    cr_assert(echain_automine(&fx.chain, false));
    fx.gas_per_execution = 2000000; /* at most three per batch of 8M: four or more transactions */
    fx.trace = calloc(TRACE_CAP, sizeof(*fx.trace));
    fx.trace_cap = TRACE_CAP;
    begin_pool(2, 30000, 5000);
    wait_head(chain_head());
    for (int i = 0; i != N; ++i)
        submit(&jobs[i]);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'broadcast'", N, 30000),
                 N);
    char out[256];
    cr_assert(echain_rpc(&fx.chain, "anvil_mine", "[\"0x3\"]", out, sizeof(out)), "%s", out);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", N, 30000),
                 N);
    char v[64];
    echain_db_value(&fx.chain,
                    "SELECT count(DISTINCT tx_hash) || ' ' || count(DISTINCT block_number) FROM"
                    " executions",
                    v, sizeof(v));
    int txs = 0, blocks = 0;
    cr_assert_eq(sscanf(v, "%d %d", &txs, &blocks), 2, "%s", v);
    cr_assert(txs >= 3 && blocks == 1, "%d transactions in %d blocks: the test shows nothing", txs,
              blocks);
    uint32_t events = atomic_load(&fx.pool->trace.n), reads = 0;
    cr_assert_lt(events, TRACE_CAP);
    for (uint32_t i = 0; i != events; ++i)
        reads += fx.trace[i].kind == EXECUTOR_TRACE_BLOCK_SENT;
    cr_assert_eq(reads, 1, "%u reads of one block for its %d transactions", reads, txs);
    /* each row names the canonical block and its time, as any other outcome */
    unsigned long long number = 0;
    char hash[65], row_hash[80];
    long long time_s, row_time_s;
    echain_db_value(&fx.chain,
                    "SELECT min(e.block_number) || ' ' || min(encode(e.block_hash, 'hex')) || ' '"
                    " || min(extract(epoch FROM i.last_execution)::bigint) FROM executions e JOIN"
                    " intents i ON i.id = e.intent_id",
                    out, sizeof(out));
    cr_assert_eq(sscanf(out, "%llu %79s %lld", &number, row_hash, &row_time_s), 3, "%s", out);
    chain_block(number, hash, &time_s);
    cr_assert_str_eq(row_hash, hash);
    cr_assert_eq(row_time_s, time_s);
    cr_assert_eq(outcomes_with(EXECUTOR_CONFIRMED, true), N);
}

/* The intent's last execution (epoch seconds; 0 when NULL). */
static long long last_execution_s(const executor_job_t *job)
{
    char sql[160], v[64];
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(extract(epoch FROM last_execution)::bigint, 0) FROM intents WHERE id"
             " = '%s'",
             job->intent_id);
    echain_db_value(&fx.chain, sql, v, sizeof(v));
    return atoll(v);
}

/* Two periods of one intent paid in blocks of different times, each row keeping its block's time;
 * then a reorg deeper than the confirmations takes period 1's block back while period 0's stays.
 * Automine is off on the new chain, so period 1's transaction, sent again, waits in the node's
 * pool: the follower puts its row back in flight and the intent's count back to 1, and its last
 * execution becomes period 0's block time (what the registry's lastExecutedAt says now), not
 * NULL. Mined again, period 1 gives it its new block's time. */
Test(executor, a_reorg_that_takes_the_newest_payment_back_gives_back_the_previous_block_time,
     .timeout = 120, .fini = end_all)
{
    begin_chain(NULL);
    executor_job_t job0, job1;
    fund(1, 1000000);
    funded_job(1, 8, 321, 780, &job0); /* minInterval 0: period 1 may follow at once */
    job1 = job0;
    job1.period = 1;
    begin_pool(1, 30000, 5000);
    wait_head(chain_head());
    submit(&job0);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 1, 30000),
                 1);
    static char resp[4096];
    cr_assert(echain_rpc(&fx.chain, "evm_increaseTime", "[5]", resp, sizeof(resp)));
    wait_head(chain_head());
    char revert[128];
    snapshot(revert);
    submit(&job1);
    cr_assert_eq(wait_count("SELECT count(*) FROM executions WHERE status = 'confirmed'", 2, 30000),
                 2);
    cr_assert_eq(executed_count(&job0), 2);
    /* the ordinary path: each confirmed row holds its block's time, the intent the newest */
    long long time0_s = row_block_time(&job0, 0), time1_s = row_block_time(&job1, 1);
    cr_assert_lt(time0_s, time1_s, "one block time for both periods: the test shows nothing");
    cr_assert_eq(last_execution_s(&job0), time1_s);
    char first[80], sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT encode(tx_hash, 'hex') FROM executions WHERE intent_id = '%s' AND period = 1",
             job1.intent_id);
    echain_db_value(&fx.chain, sql, first, sizeof(first));
    /* the new chain: period 0's block and a later empty one where period 1's was */
    reorg_with_automine_off(first, revert);
    cr_assert_eq(executed_count(&job0), 1, "period 1 is off the chain");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM intents i JOIN executions e ON e.intent_id = i.id WHERE i.id ="
             " '%s' AND i.execution_count = 1 AND e.period = 1 AND e.status = 'broadcast'",
             job1.intent_id);
    cr_assert_eq(wait_count(sql, 1, 30000), 1, "period 1 was not given back");
    cr_assert_eq(row_block_time(&job0, 0), time0_s, "period 0's row stays in its block");
    cr_assert_eq(last_execution_s(&job0), time0_s,
                 "last execution: %lld, period 0's block time %lld", last_execution_s(&job0),
                 time0_s);
    /* mined again, in a block of a later time */
    cr_assert(echain_automine(&fx.chain, true));
    cr_assert(echain_mine(&fx.chain, 1));
    for (int i = 0; i != 100 && wait_count("SELECT count(*) FROM executions WHERE status ="
                                           " 'confirmed'",
                                           2, 100) < 2;
         ++i)
        cr_assert(echain_mine(&fx.chain, 1));
    cr_assert_eq(executed_count(&job0), 2, "period 1 is on the new chain");
    long long again_s = row_block_time(&job1, 1);
    cr_assert_eq(last_execution_s(&job0), again_s);
}
