/* The gas oracle against a scripted JSON-RPC node (a small server in this file, because anvil
 * cannot be made to lack eth_feeHistory or to hold blocks with chosen tips): the next block's base
 * fee and the median tip of the blocks that carried transactions; the node's suggestion when the
 * history is empty; eth_gasPrice on a node without EIP-1559; a refresh on every head; and a
 * snapshot that goes stale while the node is down and comes back with it. Reads happen on the
 * test thread, as they would on any thread. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "actors/gas_oracle.h"
#include "support/harness.h"

#define GWEI 1000000000ull

/* ---- the scripted node ---- */

typedef enum en_node_kind_t {
    NODE_LONDON_TIPS,  /* base fee, a fee history whose busy blocks have tips, a suggestion */
    NODE_LONDON_EMPTY, /* the same, but every block of the history is empty */
    NODE_LEGACY,       /* no base fee, no eth_feeHistory, no eth_maxPriorityFeePerGas */
    NODE_DOWN,         /* reads the request and closes without answering */
} node_kind_t;

static struct {
    int listen_fd;
    pthread_t thread;
    _Atomic int kind;
    _Atomic uint64_t block;
    _Atomic bool stop;
    uint16_t port;
} node;

static json_t *rpc_error(int code, const char *message)
{
    return json_pack("{s:i, s:s}", "code", code, "message", message);
}

/* The fee history of the 5 blocks up to the head: blocks 1 and 2 are empty (tip 0); the others'
 * tips are 1, 5 and 4 gwei, so the median of the busy ones is 4 gwei (with the empty ones it
 * would be 1). The next block's base fee is 7 gwei, the head's 8. */
static json_t *fee_history(uint64_t head, bool busy)
{
    char oldest[24];
    snprintf(oldest, sizeof(oldest), "0x%llx", (unsigned long long)(head - 4));
    return json_pack("{s:s, s:[s,s,s,s,s,s], s:[f,f,f,f,f], s:[[s],[s],[s],[s],[s]]}",
                     "oldestBlock", oldest, "baseFeePerGas", "0x1dcd65000", "0x1dcd65000",
                     "0x1dcd65000", "0x1dcd65000", "0x1dcd65000", "0x1a13b8600", "gasUsedRatio",
                     busy ? 0.5 : 0.0, 0.0, 0.0, busy ? 0.7 : 0.0, busy ? 0.2 : 0.0, "reward",
                     busy ? "0x3b9aca00" : "0x0", "0x0", "0x0", busy ? "0x12a05f200" : "0x0",
                     busy ? "0xee6b2800" : "0x0");
}

/* The answer to one call: {"jsonrpc","id","result"|"error"}. */
static json_t *answer_call(json_t *call)
{
    const char *method = json_string_value(json_object_get(call, "method"));
    int kind = atomic_load(&node.kind);
    uint64_t head = atomic_load(&node.block);
    char number[24];
    snprintf(number, sizeof(number), "0x%llx", (unsigned long long)head);
    json_t *result = NULL, *error = NULL;
    if (method != NULL && strcmp(method, "eth_getBlockByNumber") == 0) {
        result = json_pack("{s:s, s:s, s:s, s:s}", "number", number, "hash",
                           "0x1111111111111111111111111111111111111111111111111111111111111111",
                           "parentHash",
                           "0x2222222222222222222222222222222222222222222222222222222222222222",
                           "timestamp", "0x6553f100");
        if (kind != NODE_LEGACY)
            json_object_set_new(result, "baseFeePerGas", json_string("0x1dcd65000"));
    } else if (method != NULL && strcmp(method, "eth_feeHistory") == 0 && kind != NODE_LEGACY) {
        result = fee_history(head, kind == NODE_LONDON_TIPS);
    } else if (method != NULL && strcmp(method, "eth_maxPriorityFeePerGas") == 0 &&
               kind != NODE_LEGACY) {
        result = json_string("0x59682f00"); /* 1.5 gwei */
    } else if (method != NULL && strcmp(method, "eth_gasPrice") == 0) {
        result = json_string("0x4a817c800"); /* 20 gwei */
    } else {
        error = rpc_error(-32601, "the method does not exist/is not available");
    }
    json_t *answer = json_pack("{s:s, s:O}", "jsonrpc", "2.0", "id", json_object_get(call, "id"));
    json_object_set_new(answer, error != NULL ? "error" : "result", error != NULL ? error : result);
    return answer;
}

/* Reads one request (headers, then Content-Length bytes); returns its body, or NULL. */
static char *read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char *end = NULL;
    while (end == NULL && len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    const char *cl = strcasestr(buf, "content-length:");
    size_t want = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
    while (end != NULL && (size_t)(buf + len - (end + 4)) < want && len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
    }
    return end != NULL ? end + 4 : NULL;
}

static void serve(int fd)
{
    static char buf[65536];
    char *body = read_request(fd, buf, sizeof(buf));
    if (body == NULL || atomic_load(&node.kind) == NODE_DOWN)
        return;
    json_t *req = json_loads(body, 0, NULL), *answer;
    if (json_is_array(req)) {
        answer = json_array();
        size_t i;
        json_t *call;
        json_array_foreach(req, i, call) json_array_append_new(answer, answer_call(call));
    } else {
        answer = answer_call(req);
    }
    char *text = json_dumps(answer, JSON_COMPACT), head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     strlen(text));
    if (write(fd, head, (size_t)n) == n && write(fd, text, strlen(text)) < 0)
        perror("node: write");
    free(text);
    json_decref(answer);
    json_decref(req);
}

/* One connection at a time, each closed after its answer: the client reconnects. */
static void *node_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&node.stop)) {
        struct pollfd p = {.fd = node.listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) != 1)
            continue;
        int fd = accept(node.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(fd);
        close(fd);
    }
    return NULL;
}

static void node_start(node_kind_t kind, uint64_t block)
{
    atomic_store(&node.kind, kind);
    atomic_store(&node.block, block);
    atomic_store(&node.stop, false);
    node.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(node.listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(node.listen_fd, 64), 0);
    getsockname(node.listen_fd, (struct sockaddr *)&addr, &len);
    node.port = ntohs(addr.sin_port);
    cr_assert_eq(pthread_create(&node.thread, NULL, node_main, NULL), 0);
}

static void node_stop(void)
{
    atomic_store(&node.stop, true);
    pthread_join(node.thread, NULL);
    close(node.listen_fd);
}

/* ---- the oracle on a running runtime ---- */

typedef struct st_fixture_t {
    net_http_client_t *http;
    chain_rpc_t *rpc;
    harness_t h;
    gas_oracle_t *oracle;
    char url[64];
} fixture_t;

static void begin(fixture_t *f, node_kind_t kind, uint32_t refresh_ms)
{
    node_start(kind, 100);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", node.port);
    const char *urls[] = {f->url};
    f->http = net_http_client_create(NULL);
    /* fast retries and a short breaker, so that an outage ends quickly in the test */
    chain_rpc_config_t config = {.urls = urls,
                                 .num_urls = 1,
                                 .backoff_base_ms = 20,
                                 .backoff_max_ms = 100,
                                 .breaker_cooldown_ms = 200,
                                 .attempt_timeout_ms = 1000};
    char err[256];
    f->rpc = chain_rpc_create(&config, f->http, err, sizeof(err));
    cr_assert_not_null(f->rpc, "%s", err);
    harness_start(&f->h, f->http, 2, 3000);
    chain_rpc_start(f->rpc, f->h.rt);
    f->oracle = gas_oracle_create(
        &(gas_oracle_config_t){.rpc = f->rpc, .chain_id = 31337, .refresh_ms = refresh_ms});
    cr_assert_not_null(f->oracle);
    gas_snapshot_t s;
    cr_assert(!gas_oracle_read(f->oracle, &s), "a snapshot before the first refresh");
    gas_oracle_start(f->oracle, f->h.rt);
}

static void end(fixture_t *f)
{
    gas_oracle_stop(f->oracle);
    chain_rpc_stop(f->rpc);
    harness_stop(&f->h);
    gas_oracle_free(f->oracle);
    chain_rpc_free(f->rpc);
    net_http_client_free(f->http);
    node_stop();
}

/* Polls (bounded) until a snapshot of block `block` can be read; `want` false: until none can. */
static gas_snapshot_t wait_for(fixture_t *f, bool want, uint64_t block)
{
    gas_snapshot_t s = {0};
    for (int tries = 0; tries != 400; ++tries, usleep(25000)) {
        bool ok = gas_oracle_read(f->oracle, &s);
        if (ok == want && (!want || s.block_number == block))
            return s;
    }
    cr_assert_fail("no %s snapshot (block %llu)", want ? "fresh" : "stale",
                   (unsigned long long)s.block_number);
    return s;
}

static void assert_gwei(const chain_u256_t *wei, uint64_t expected_wei, const char *what)
{
    chain_u256_t e = chain_u256_from_u64(expected_wei);
    char got[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_gwei(wei, got);
    cr_assert_eq(chain_u256_cmp(wei, &e), 0, "%s: %s gwei", what, got);
}

Test(gas_oracle, next_base_fee_and_median_tip_of_busy_blocks, .timeout = 60)
{
    fixture_t f;
    begin(&f, NODE_LONDON_TIPS, 60000);
    gas_snapshot_t s = wait_for(&f, true, 100);
    assert_gwei(&s.base_fee_wei, 7 * GWEI, "base fee: the next block's, not the head's 8");
    assert_gwei(&s.priority_fee_wei, 4 * GWEI, "tip: median of 1, 5, 4 (empty blocks ignored)");
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    cr_assert(s.updated_at_ms > now_ms - 60000 && s.updated_at_ms <= now_ms + 1000);
    end(&f);
}

Test(gas_oracle, an_empty_history_takes_the_nodes_suggestion, .timeout = 60)
{
    fixture_t f;
    begin(&f, NODE_LONDON_EMPTY, 60000);
    gas_snapshot_t s = wait_for(&f, true, 100);
    assert_gwei(&s.base_fee_wei, 7 * GWEI, "base fee");
    assert_gwei(&s.priority_fee_wei, 1500000000ull, "tip: eth_maxPriorityFeePerGas");
    end(&f);
}

Test(gas_oracle, a_node_without_eip1559_falls_back_to_gas_price, .timeout = 60)
{
    fixture_t f;
    begin(&f, NODE_LEGACY, 60000);
    gas_snapshot_t s = wait_for(&f, true, 100);
    assert_gwei(&s.base_fee_wei, 0, "no base fee before London");
    assert_gwei(&s.priority_fee_wei, 20 * GWEI, "tip: the whole eth_gasPrice");
    end(&f);
}

Test(gas_oracle, a_new_head_refreshes_at_once, .timeout = 60)
{
    fixture_t f;
    begin(&f, NODE_LONDON_TIPS, 60000); /* the timer alone would not refresh within the test */
    wait_for(&f, true, 100);
    atomic_store(&node.block, 101);
    for (int i = 0; i != 100; ++i) /* a burst of heads coalesces into few refreshes */
        gas_oracle_on_head(f.oracle, 101);
    wait_for(&f, true, 101);
    end(&f);
}

Test(gas_oracle, an_outage_goes_stale_and_recovers, .timeout = 60)
{
    fixture_t f;
    begin(&f, NODE_LONDON_TIPS, 200);
    wait_for(&f, true, 100);
    atomic_store(&node.kind, NODE_DOWN);
    wait_for(&f, false, 0); /* three refresh periods without an answer: no snapshot */
    atomic_store(&node.block, 102);
    atomic_store(&node.kind, NODE_LONDON_TIPS);
    wait_for(&f, true, 102);
    end(&f);
}
