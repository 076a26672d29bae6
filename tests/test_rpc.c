/* The JSON-RPC client against a real anvil (its own, or RPC_URL for reads) and against the
 * stand-in server for what anvil will not do on demand (rate limits, 500s, garbage), hand-made
 * answers from a canned server (what the answer scanner must read exactly or refuse), plus the
 * pure codec: quantities, builders, result readers and error classification. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "chain/abi.h"
#include "chain/hex.h"
#include "chain/key.h"
#include "chain/rpc.h"
#include "chain/tx.h"
#include "support/anvil.h"
#include "support/harness.h"
#include "support/standin.h"

#define MSG_SENT 0x7e20
#define DEV0 "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
#define DEV1 "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
/* anvil's well-known (public) key of dev account 0 */
#define DEV0_KEY "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
/* eth_call code that returns the word 42; code that reverts with Error("boom") */
#define RETURN_42 "602a60005260206000f3"
#define REVERT_BOOM                                                                                \
    "7f08c379a000000000000000000000000000000000000000000000000000000000600052602060045260046024"   \
    "527f626f6f6d000000000000000000000000000000000000000000000000000000006044526064"               \
    "6000fd"
/* constructor that emits LOG1(topic 0x11..11) with the word 42 as data, and deploys nothing */
#define TOPIC "1111111111111111111111111111111111111111111111111111111111111111"
#define EMIT_LOG "602a6000527f" TOPIC "60206000a100"

typedef struct st_send_step_t {
    chain_rpc_t *rpc;
    chain_rpc_call_t calls[CHAIN_RPC_MAX_BATCH];
    size_t n;
    uint32_t timeout_ms;
} send_step_t;

static void send_step(rt_actor_t *self, void *arg)
{
    send_step_t *s = arg;
    rt_msg_t *sent = rt_msg_new(MSG_SENT, sizeof(int));
    *(int *)rt_msg_payload(sent) = chain_rpc_send(self, s->rpc, s->calls, s->n, s->timeout_ms, 7);
    rt_actor_send(self, sent);
}

typedef struct st_fixture_t {
    net_http_client_t *http;
    harness_t h;
    anvil_t anvil; /* pid 0 when not started */
    standin_t *standin;
    int refusing_fd;
    uint16_t refusing_port;
} fixture_t;

static char *url_of(char *buf, size_t size, const char *fmt, unsigned port)
{
    snprintf(buf, size, fmt, port);
    return buf;
}

/* Which anvil a test uses: none, one for reads (RPC_URL when set, else its own), or its own
 * (a test that sends transactions must never do so on a shared node). */
enum { NO_ANVIL, ANVIL_FOR_READS, OWN_ANVIL };

/* Starts what a test needs before the runtime: anvil, the stand-in, a refusing port. */
static void begin(fixture_t *f, int anvil, bool standin)
{
    memset(f, 0, sizeof(*f));
    if (anvil == OWN_ANVIL || (anvil == ANVIL_FOR_READS && getenv("RPC_URL") == NULL))
        cr_assert(anvil_start(&f->anvil, NULL), "anvil did not start");
    if (standin)
        f->standin = standin_start();
    f->refusing_port = refusing_port_open(&f->refusing_fd);
    f->http = net_http_client_create(NULL);
}

/* The anvil URL for reads: RPC_URL when set (and no own anvil), else our own. */
static const char *anvil_url(fixture_t *f)
{
    return f->anvil.pid != 0 ? f->anvil.url : getenv("RPC_URL");
}

static chain_rpc_t *rpc_new(fixture_t *f, const char *const *urls, size_t n,
                            const chain_rpc_config_t *base)
{
    chain_rpc_config_t config = base != NULL ? *base : (chain_rpc_config_t){0};
    config.urls = urls;
    config.num_urls = n;
    if (config.backoff_base_ms == 0)
        config.backoff_base_ms = 20;
    char err[256];
    chain_rpc_t *rpc = chain_rpc_create(&config, f->http, err, sizeof(err));
    cr_assert_not_null(rpc, "%s", err);
    return rpc;
}

static void run(fixture_t *f, chain_rpc_t **rpcs, size_t n)
{
    harness_start(&f->h, f->http, 2, 3000);
    for (size_t i = 0; i != n; ++i)
        chain_rpc_start(rpcs[i], f->h.rt);
}

static void end(fixture_t *f, chain_rpc_t **rpcs, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        chain_rpc_stop(rpcs[i]);
    harness_stop(&f->h);
    for (size_t i = 0; i != n; ++i)
        chain_rpc_free(rpcs[i]);
    net_http_client_free(f->http);
    if (f->standin != NULL)
        standin_stop(f->standin);
    anvil_stop(&f->anvil);
    close(f->refusing_fd);
}

/* Sends `calls` from the driver and returns the reply (free it). */
static harness_msg_t *send_calls(fixture_t *f, chain_rpc_t *rpc, const chain_rpc_call_t *calls,
                                 size_t n)
{
    static send_step_t step;
    step.rpc = rpc;
    step.n = n;
    step.timeout_ms = 0;
    memcpy(step.calls, calls, n * sizeof(*calls));
    harness_run(&f->h, send_step, &step);
    harness_msg_t *m = harness_wait(&f->h, 5000);
    cr_assert_not_null(m);
    cr_assert_eq(m->type, MSG_SENT);
    int sent = *(int *)m->payload;
    free(m);
    cr_assert_eq(sent, CHAIN_RPC_OK, "refused: %s", chain_rpc_strerror(sent));
    m = harness_wait(&f->h, 30000);
    cr_assert_not_null(m, "no reply");
    cr_assert_eq(m->type, CHAIN_RPC_MSG_REPLY);
    cr_assert_eq(m->corr, 7);
    return m;
}

static harness_msg_t *send_one(fixture_t *f, chain_rpc_t *rpc, chain_rpc_call_t call)
{
    return send_calls(f, rpc, &call, 1);
}

static chain_rpc_reply_t *reply_of(harness_msg_t *m)
{
    return (chain_rpc_reply_t *)m->payload;
}

/* Item `i`'s result text, asserting that it succeeded. */
static const char *result_of(harness_msg_t *m, size_t i, size_t *len)
{
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->items[i].error, CHAIN_RPC_OK, "item %zu: %s: %s", i,
                 chain_rpc_strerror(r->items[i].error), chain_rpc_reply_message(r, i));
    const char *text = chain_rpc_reply_result(r, i, len);
    cr_assert_not_null(text);
    return text;
}

static uint64_t result_u64(harness_msg_t *m, size_t i)
{
    size_t len;
    const char *text = result_of(m, i, &len);
    uint64_t v;
    cr_assert_eq(chain_rpc_result_u64(text, len, &v), CHAIN_OK, "%s", text);
    return v;
}

static chain_addr_t addr(const char *hex)
{
    chain_addr_t a;
    cr_assert_eq(chain_addr_parse(&a, hex, strlen(hex)), CHAIN_OK);
    return a;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t len;
    cr_assert_eq(chain_hex_decode(out, cap, &len, hex, strlen(hex), CHAIN_HEX_0X_OPTIONAL),
                 CHAIN_OK);
    return len;
}

/* eth_sendTransaction with anvil's unlocked dev accounts; `extra` is more JSON members. */
static chain_rpc_call_t send_tx(const char *to_and_more)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "[{\"from\":\"" DEV0 "\"%s}]", to_and_more);
    json_t *params = json_loads(buf, 0, NULL);
    cr_assert_not_null(params, "%s", buf);
    return chain_rpc_call("eth_sendTransaction", params);
}

/* Whether two readers read the same log, field by field. */
static bool logs_equal(const chain_rpc_log_t *x, const chain_rpc_log_t *y)
{
    return chain_addr_eq(&x->address, &y->address) && x->num_topics == y->num_topics &&
           memcmp(x->topics, y->topics, 32 * x->num_topics) == 0 && x->data_len == y->data_len &&
           (x->data_len == 0 || memcmp(x->data, y->data, x->data_len) == 0) &&
           x->block_number == y->block_number && memcmp(x->block_hash, y->block_hash, 32) == 0 &&
           memcmp(x->tx_hash, y->tx_hash, 32) == 0 && x->tx_index == y->tx_index &&
           x->log_index == y->log_index && x->removed == y->removed;
}

/* The two receipt readers' outcomes for `text` are the same: the verdict, and when they read
 * one, every field and log. */
static void receipts_agree(const char *text, size_t len)
{
    chain_rpc_receipt_t a, b;
    bool found_a = false, found_b = false;
    int ret_a = chain_rpc_result_receipt(text, len, &a, &found_a);
    int ret_b = chain_rpc_result_receipt_scan(text, len, &b, &found_b);
    cr_assert_eq(ret_b, ret_a, "%s: scan %s, jansson %s", text, chain_err_str(ret_b),
                 chain_err_str(ret_a));
    cr_assert_eq(found_b, found_a, "%s", text);
    if (ret_a != CHAIN_OK || !found_a)
        return;
    cr_assert(memcmp(a.tx_hash, b.tx_hash, 32) == 0 && a.success == b.success &&
                  a.block_number == b.block_number && memcmp(a.block_hash, b.block_hash, 32) == 0 &&
                  a.gas_used == b.gas_used &&
                  a.has_effective_gas_price == b.has_effective_gas_price &&
                  chain_u256_cmp(&a.effective_gas_price, &b.effective_gas_price) == 0 &&
                  a.has_contract_address == b.has_contract_address &&
                  chain_addr_eq(&a.contract_address, &b.contract_address),
              "%s", text);
    cr_assert_eq(b.logs.count, a.logs.count, "%s", text);
    for (size_t i = 0; i != a.logs.count; ++i) {
        cr_assert(logs_equal(&a.logs.items[i], &b.logs.items[i]), "%s: log %zu", text, i);
    }
    chain_rpc_receipt_free(&a);
    chain_rpc_receipt_free(&b);
}

/* Fetches the receipt of `tx_hash`, waiting (bounded) for it to be mined. Free it. */
static void wait_receipt(fixture_t *f, chain_rpc_t *rpc, const uint8_t tx_hash[32],
                         chain_rpc_receipt_t *receipt)
{
    for (int tries = 0; tries != 100; ++tries) {
        harness_msg_t *m = send_one(f, rpc, chain_rpc_eth_get_transaction_receipt(tx_hash));
        size_t len;
        const char *text = result_of(m, 0, &len);
        bool found;
        cr_assert_eq(chain_rpc_result_receipt(text, len, receipt, &found), CHAIN_OK, "%s", text);
        receipts_agree(text, len); /* a node's receipt, read by the scan too */
        free(m);
        if (found)
            return;
        usleep(20 * 1000);
    }
    cr_assert_fail("the transaction was not mined");
}

/* ---- against anvil ---- */

Test(rpc, reads_against_anvil, .timeout = 60)
{
    fixture_t f;
    begin(&f, ANVIL_FOR_READS, false);
    const char *urls[] = {anvil_url(&f)};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);

    harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_chain_id());
    cr_assert_eq(reply_of(m)->error, CHAIN_RPC_OK);
    cr_assert_eq(reply_of(m)->attempts, 1);
    cr_assert_eq(result_u64(m, 0), 31337);
    free(m);

    m = send_one(&f, rpc, chain_rpc_eth_block_number());
    uint64_t head = result_u64(m, 0);
    free(m);

    size_t len;
    bool found;
    chain_rpc_block_header_t hdr;
    m = send_one(&f, rpc, chain_rpc_eth_get_block_by_number(chain_rpc_block_tag("latest")));
    const char *text = result_of(m, 0, &len);
    cr_assert_eq(chain_rpc_result_block_header(text, len, &hdr, &found), CHAIN_OK, "%s", text);
    cr_assert(found);
    cr_assert_geq(hdr.number, head);
    cr_assert(hdr.has_base_fee);
    cr_assert_gt(hdr.timestamp, 1600000000);
    free(m);
    m = send_one(&f, rpc, chain_rpc_eth_get_block_by_number(chain_rpc_block_number(0)));
    text = result_of(m, 0, &len);
    cr_assert_eq(chain_rpc_result_block_header(text, len, &hdr, &found), CHAIN_OK);
    static const uint8_t zero[32];
    cr_assert(found && hdr.number == 0 && memcmp(hdr.parent_hash, zero, 32) == 0);
    free(m);
    m = send_one(&f, rpc, chain_rpc_eth_get_block_by_number(chain_rpc_block_number(1u << 30)));
    text = result_of(m, 0, &len);
    cr_assert_eq(chain_rpc_result_block_header(text, len, &hdr, &found), CHAIN_OK);
    cr_assert_not(found, "a block far in the future does not exist");
    free(m);

    double percentiles[] = {25, 75};
    m = send_one(&f, rpc,
                 chain_rpc_eth_fee_history(4, chain_rpc_block_tag("latest"), percentiles, 2));
    text = result_of(m, 0, &len);
    chain_rpc_fee_history_t fh;
    cr_assert_eq(chain_rpc_result_fee_history(text, len, &fh), CHAIN_OK, "%s", text);
    cr_assert_geq(fh.num_blocks, 1);
    cr_assert_leq(fh.num_blocks, 4);
    cr_assert_eq(fh.num_percentiles, 2);
    cr_assert_not(chain_u256_is_zero(&fh.base_fee_per_gas[fh.num_blocks]));
    chain_rpc_fee_history_free(&fh);
    free(m);

    chain_addr_t dev0 = addr(DEV0);
    m = send_one(&f, rpc,
                 chain_rpc_eth_get_transaction_count(&dev0, chain_rpc_block_tag("latest")));
    uint64_t nonce = result_u64(m, 0);
    if (f.anvil.pid != 0)
        cr_assert_eq(nonce, 0, "a fresh anvil's dev account 0 has sent nothing");
    free(m);

    end(&f, &rpc, 1);
}

Test(rpc, batch_against_anvil, .timeout = 60)
{
    fixture_t f;
    begin(&f, ANVIL_FOR_READS, false);
    const char *urls[] = {anvil_url(&f)};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    chain_addr_t dev0 = addr(DEV0), dev1 = addr(DEV1);
    chain_u256_t one = chain_u256_from_u64(1);
    chain_rpc_tx_t transfer = {.from = &dev0, .to = &dev1, .value = &one};
    static const uint8_t no_such_tx[32];
    chain_rpc_log_filter_t filter = {.from_block = chain_rpc_block_number(0),
                                     .to_block = chain_rpc_block_tag("latest")};
    chain_rpc_call_t calls[] = {
        chain_rpc_eth_chain_id(),
        chain_rpc_eth_block_number(),
        chain_rpc_eth_gas_price(),
        chain_rpc_eth_max_priority_fee_per_gas(),
        chain_rpc_eth_estimate_gas(&transfer),
        chain_rpc_eth_get_transaction_receipt(no_such_tx),
        chain_rpc_eth_get_logs(&filter),
    };
    harness_msg_t *m = send_calls(&f, rpc, calls, 7);
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->error, CHAIN_RPC_OK);
    cr_assert_eq(r->count, 7);
    cr_assert_eq(result_u64(m, 0), 31337);
    size_t len;
    const char *text = result_of(m, 2, &len);
    chain_u256_t price;
    cr_assert_eq(chain_rpc_result_u256(text, len, &price), CHAIN_OK);
    cr_assert_not(chain_u256_is_zero(&price));
    cr_assert_eq(result_u64(m, 4), 21000);
    text = result_of(m, 5, &len);
    chain_rpc_receipt_t receipt;
    bool found = true;
    cr_assert_eq(chain_rpc_result_receipt(text, len, &receipt, &found), CHAIN_OK);
    cr_assert_not(found);
    text = result_of(m, 6, &len);
    chain_rpc_logs_t logs;
    cr_assert_eq(chain_rpc_result_logs(text, len, &logs), CHAIN_OK, "%s", text);
    chain_rpc_logs_free(&logs);
    free(m);
    end(&f, &rpc, 1);
}

Test(rpc, eth_call_result_and_revert_data, .timeout = 60)
{
    fixture_t f;
    begin(&f, ANVIL_FOR_READS, false);
    const char *urls[] = {anvil_url(&f)};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    uint8_t code[256], out[256];
    chain_rpc_tx_t tx = {.data = code, .data_len = unhex(RETURN_42, code, sizeof(code))};
    harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest")));
    size_t len, out_len;
    const char *text = result_of(m, 0, &len);
    cr_assert_eq(chain_rpc_result_bytes(text, len, out, sizeof(out), &out_len), CHAIN_OK);
    cr_assert_eq(out_len, 32);
    cr_assert_eq(out[31], 42);
    free(m);

    tx.data_len = unhex(REVERT_BOOM, code, sizeof(code));
    m = send_one(&f, rpc, chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest")));
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->error, CHAIN_RPC_OK, "the node answered");
    cr_assert_eq(r->items[0].error, CHAIN_RPC_ERR_REVERTED, "%s", chain_rpc_reply_message(r, 0));
    cr_assert_eq(r->items[0].code, 3);
    cr_assert_not_null(strstr(chain_rpc_reply_message(r, 0), "boom"));
    cr_assert_eq(chain_rpc_reply_revert_data(r, 0, out, sizeof(out), &out_len), CHAIN_OK);
    cr_assert_eq(out_len, 100);
    chain_abi_revert_t revert;
    cr_assert_eq(chain_abi_decode_revert(out, out_len, &revert), CHAIN_OK);
    cr_assert_eq(revert.kind, CHAIN_ABI_REVERT_ERROR);
    cr_assert_eq(revert.message_len, 4);
    cr_assert(memcmp(revert.message, "boom", 4) == 0);
    cr_assert_eq(r->attempts, 1, "an answer is not retried");
    free(m);
    end(&f, &rpc, 1);
}

Test(rpc, write_errors_as_anvil_words_them, .timeout = 60)
{
    fixture_t f;
    begin(&f, OWN_ANVIL, false);
    const char *urls[] = {f.anvil.url};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    harness_msg_t *m = send_one(&f, rpc, send_tx(",\"to\":\"" DEV1 "\",\"value\":\"0x1\""));
    size_t len;
    const char *text = result_of(m, 0, &len);
    uint8_t tx_hash[32];
    cr_assert_eq(chain_rpc_result_hash(text, len, tx_hash), CHAIN_OK);
    free(m);

    chain_rpc_receipt_t receipt;
    wait_receipt(&f, rpc, tx_hash, &receipt);
    cr_assert(receipt.success);
    cr_assert_eq(receipt.gas_used, 21000);
    cr_assert_eq(receipt.block_number, 1);
    cr_assert(receipt.has_effective_gas_price);
    cr_assert_not(receipt.has_contract_address);
    cr_assert(memcmp(receipt.tx_hash, tx_hash, 32) == 0);
    cr_assert_eq(receipt.logs.count, 0);
    chain_rpc_receipt_free(&receipt);

    static const struct {
        const char *tx;
        int error;
    } cases[] = {
        {",\"to\":\"" DEV1 "\",\"value\":\"0x1\",\"nonce\":\"0x0\"", CHAIN_RPC_ERR_NONCE_TOO_LOW},
        {",\"to\":\"" DEV1 "\",\"value\":\"0xffffffffffffffffffffffffffffff\"",
         CHAIN_RPC_ERR_INSUFFICIENT_FUNDS},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        m = send_one(&f, rpc, send_tx(cases[i].tx));
        chain_rpc_reply_t *r = reply_of(m);
        cr_assert_eq(r->items[0].error, cases[i].error, "%s: %s",
                     chain_rpc_strerror(r->items[i].error), chain_rpc_reply_message(r, 0));
        cr_assert_eq(r->attempts, 1);
        free(m);
    }

    /* with automine off, a second transaction with the same nonce must pay more */
    free(send_one(&f, rpc, chain_rpc_call("evm_setAutomine", json_pack("[b]", 0))));
    const char *pending = ",\"to\":\"" DEV1 "\",\"nonce\":\"0x1\",\"maxFeePerGas\":\"0x77359400\","
                          "\"maxPriorityFeePerGas\":\"0x1\",\"value\":\"0x";
    char tx[512];
    snprintf(tx, sizeof(tx), "%s1\"", pending);
    free(send_one(&f, rpc, send_tx(tx)));
    snprintf(tx, sizeof(tx), "%s2\"", pending);
    m = send_one(&f, rpc, send_tx(tx));
    cr_assert_eq(reply_of(m)->items[0].error, CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED, "%s",
                 chain_rpc_reply_message(reply_of(m), 0));
    free(m);
    snprintf(tx, sizeof(tx), "%s1\"", pending);
    m = send_one(&f, rpc, send_tx(tx));
    cr_assert_eq(reply_of(m)->items[0].error, CHAIN_RPC_ERR_ALREADY_KNOWN, "%s",
                 chain_rpc_reply_message(reply_of(m), 0));
    free(m);

    static const uint8_t garbage[] = {0x12, 0x34};
    m = send_one(&f, rpc, chain_rpc_eth_send_raw_transaction(garbage, 2));
    cr_assert_eq(reply_of(m)->items[0].error, CHAIN_RPC_ERR_NODE);
    cr_assert_eq(reply_of(m)->items[0].code, -32602);
    free(m);
    end(&f, &rpc, 1);
}

/* Signs a transfer of `value` wei from dev account 0 to dev account 1 at `nonce`. */
static size_t sign_transfer(const chain_key_t *key, uint64_t nonce, chain_u256_t value,
                            uint8_t *raw, size_t cap, uint8_t hash[32])
{
    chain_tx_t tx = {.type = CHAIN_TX_EIP1559,
                     .chain_id = 31337,
                     .nonce = nonce,
                     .max_priority_fee_per_gas = chain_u256_from_u64(1),
                     .max_fee_per_gas = chain_u256_from_u64(2000000000),
                     .gas = 21000,
                     .has_to = true,
                     .to = addr(DEV1),
                     .value = value};
    size_t len;
    cr_assert_eq(chain_tx_sign(&tx, key, raw, cap, &len, hash), CHAIN_OK);
    return len;
}

/* What eth_sendRawTransaction of `raw` came back with; the reply is freed. */
static int send_raw(fixture_t *f, chain_rpc_t *rpc, const uint8_t *raw, size_t len,
                    uint8_t hash_out[32])
{
    harness_msg_t *m = send_one(f, rpc, chain_rpc_eth_send_raw_transaction(raw, len));
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->error, CHAIN_RPC_OK, "%s", chain_rpc_reply_message(r, 0));
    cr_assert_eq(r->attempts, 1);
    int error = r->items[0].error;
    size_t text_len;
    const char *text = chain_rpc_reply_result(r, 0, &text_len);
    if (error == CHAIN_RPC_OK && hash_out != NULL)
        cr_assert_eq(chain_rpc_result_hash(text, text_len, hash_out), CHAIN_OK);
    free(m);
    return error;
}

Test(rpc, raw_transactions_and_their_errors_on_anvil, .timeout = 60)
{
    fixture_t f;
    begin(&f, OWN_ANVIL, false);
    const char *urls[] = {f.anvil.url};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    chain_key_t *key;
    cr_assert_eq(chain_key_from_hex(&key, DEV0_KEY, strlen(DEV0_KEY)), CHAIN_OK);
    uint8_t raw[256], hash[32], node_hash[32];
    size_t len = sign_transfer(key, 0, chain_u256_from_u64(1), raw, sizeof(raw), hash);
    cr_assert_eq(send_raw(&f, rpc, raw, len, node_hash), CHAIN_RPC_OK);
    cr_assert(memcmp(hash, node_hash, 32) == 0, "the node hashes the bytes we signed");
    chain_rpc_receipt_t receipt;
    wait_receipt(&f, rpc, hash, &receipt);
    cr_assert(receipt.success);
    chain_rpc_receipt_free(&receipt);
    /* the node recovered our key's address as the sender, and so does our own decoder */
    char hash_hex[67];
    chain_hex_encode(hash_hex, sizeof(hash_hex), hash, 32, CHAIN_HEX_0X);
    harness_msg_t *m =
        send_one(&f, rpc, chain_rpc_call("eth_getTransactionByHash", json_pack("[s]", hash_hex)));
    size_t tx_len;
    const char *tx_json = chain_rpc_reply_result(reply_of(m), 0, &tx_len);
    cr_assert_not_null(tx_json);
    cr_assert_not_null(strstr(tx_json, "\"from\":\"" DEV0 "\""), "node's view: %s", tx_json);
    free(m);
    chain_tx_t decoded;
    chain_sig_t sig;
    chain_addr_t sender;
    cr_assert_eq(chain_tx_decode(&decoded, &sig, raw, len), CHAIN_OK);
    cr_assert_eq(chain_tx_recover_sender(&sender, &decoded, &sig), CHAIN_OK);
    cr_assert(chain_addr_eq(&sender, chain_key_address(key)));

    /* nonce 0 is mined: the same bytes again, or other bytes with that nonce */
    int again = send_raw(&f, rpc, raw, len, NULL);
    cr_assert(again == CHAIN_RPC_ERR_NONCE_TOO_LOW || again == CHAIN_RPC_ERR_ALREADY_KNOWN, "%s",
              chain_rpc_strerror(again));
    len = sign_transfer(key, 0, chain_u256_from_u64(2), raw, sizeof(raw), hash);
    cr_assert_eq(send_raw(&f, rpc, raw, len, NULL), CHAIN_RPC_ERR_NONCE_TOO_LOW);
    len = sign_transfer(key, 1, (chain_u256_t){{0, 0, 0, 1}}, raw, sizeof(raw), hash);
    cr_assert_eq(send_raw(&f, rpc, raw, len, NULL), CHAIN_RPC_ERR_INSUFFICIENT_FUNDS);

    /* pending (automine off): the same nonce again must pay more; the same bytes are known */
    free(send_one(&f, rpc, chain_rpc_call("evm_setAutomine", json_pack("[b]", 0))));
    len = sign_transfer(key, 1, chain_u256_from_u64(1), raw, sizeof(raw), hash);
    cr_assert_eq(send_raw(&f, rpc, raw, len, NULL), CHAIN_RPC_OK);
    cr_assert_eq(send_raw(&f, rpc, raw, len, NULL), CHAIN_RPC_ERR_ALREADY_KNOWN);
    uint8_t raw2[256];
    size_t len2 = sign_transfer(key, 1, chain_u256_from_u64(2), raw2, sizeof(raw2), hash);
    cr_assert_eq(send_raw(&f, rpc, raw2, len2, NULL), CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED);
    chain_key_free(key);
    end(&f, &rpc, 1);
}

Test(rpc, receipt_logs_and_get_logs, .timeout = 60)
{
    fixture_t f;
    begin(&f, OWN_ANVIL, false);
    const char *urls[] = {f.anvil.url};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    harness_msg_t *m = send_one(&f, rpc, send_tx(",\"data\":\"0x" EMIT_LOG "\""));
    size_t len;
    const char *text = result_of(m, 0, &len);
    uint8_t tx_hash[32], topic[32];
    cr_assert_eq(chain_rpc_result_hash(text, len, tx_hash), CHAIN_OK);
    unhex(TOPIC, topic, sizeof(topic));
    free(m);

    chain_rpc_receipt_t receipt;
    wait_receipt(&f, rpc, tx_hash, &receipt);
    cr_assert(receipt.success && receipt.has_contract_address);
    cr_assert_eq(receipt.logs.count, 1);
    chain_rpc_log_t *log = &receipt.logs.items[0];
    cr_assert(chain_addr_eq(&log->address, &receipt.contract_address));
    cr_assert_eq(log->num_topics, 1);
    cr_assert(memcmp(log->topics[0], topic, 32) == 0);
    cr_assert_eq(log->data_len, 32);
    cr_assert_eq(log->data[31], 42);

    const uint8_t(*topics)[32] = (const uint8_t(*)[32])topic;
    chain_rpc_log_filter_t filter = {.from_block = chain_rpc_block_number(0),
                                     .to_block = chain_rpc_block_tag("latest"),
                                     .addresses = &receipt.contract_address,
                                     .num_addresses = 1,
                                     .topics = {{topics, 1}},
                                     .num_topics = 1};
    m = send_one(&f, rpc, chain_rpc_eth_get_logs(&filter));
    text = result_of(m, 0, &len);
    chain_rpc_logs_t logs;
    cr_assert_eq(chain_rpc_result_logs(text, len, &logs), CHAIN_OK, "%s", text);
    cr_assert_eq(logs.count, 1);
    cr_assert_eq(logs.items[0].block_number, receipt.block_number);
    cr_assert(memcmp(logs.items[0].tx_hash, tx_hash, 32) == 0);
    chain_rpc_logs_free(&logs);
    chain_rpc_receipt_free(&receipt);
    free(m);
    end(&f, &rpc, 1);
}

/* A receipt's text for receipt_scan_reads_what_jansson_reads: %s is replaced by each case's
 * logs member, the rest being what anvil sends (fields the engine does not read included). */
#define H32(c) "\"0x" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c "\""
#define RECEIPT_WITH(logs)                                                                         \
    "{\"type\":\"0x2\",\"status\":\"0x1\",\"cumulativeGasUsed\":\"0x5208\",\"logsBloom\":"         \
    "\"0x00\","                                                                                    \
    "\"transactionHash\":" H32("ab") ",\"transactionIndex\":\"0x0\",\"blockHash\":" H32(           \
        "cd") ",\"blockNumber\":\"0x11\",\"gasUsed\":\"0x8ca0\",\"effectiveGasPrice\":"            \
              "\"0x3b9aca07\","                                                                    \
              "\"from\":\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\",\"to\":null,"               \
              "\"contractAddress\":null,\"nested\":{\"a\":[1,2.5e3,-0,true,false,null,{\"b\":"     \
              "\"\\u00e9\"}]}," logs "}"
#define LOG_WITH(topics, data, more)                                                               \
    "{\"address\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\",\"topics\":[" topics "],"         \
    "\"data\":\"" data "\",\"blockHash\":" H32(                                                    \
        "cd") ",\"blockNumber\":\"0x11\","                                                         \
              "\"transactionHash\":" H32(                                                          \
                  "ab") ",\"transactionIndex\":\"0x0\",\"logIndex\":\"0x1\"" more "}"
#define LOG_OK LOG_WITH(H32("01") "," H32("02"), "0x2a00ff", ",\"removed\":false")

Test(rpc_codec, receipt_scan_reads_what_jansson_reads)
{
    static const char *const cases[] = {
        RECEIPT_WITH("\"logs\":[]"),
        RECEIPT_WITH("\"logs\":[" LOG_OK "," LOG_WITH("", "0x", "") "," LOG_WITH(
            H32("03") "," H32("04") "," H32("05") "," H32("06"), "0x00", ",\"removed\":true") "]"),
        " \n\t" RECEIPT_WITH("\"logs\" : [ " LOG_OK " ] ") " \r\n",
        "null",
        " null ",
        "[]",
        "\"0x1\"",
        "{}",
        /* fields the engine reads: missing, null, malformed, doubled, escaped */
        "{\"status\":\"0x1\",\"logs\":[]}",
        RECEIPT_WITH("\"logs\":null"),
        RECEIPT_WITH("\"logs\":{}"),
        RECEIPT_WITH("\"logs\":[1]"),
        RECEIPT_WITH("\"logs\":[" LOG_OK "],\"status\":\"0x0\""),
        RECEIPT_WITH("\"logs\":[],\"gasUsed\":\"0x1\""),
        RECEIPT_WITH("\"logs\":[],\"effectiveGasPrice\":null"),
        RECEIPT_WITH("\"logs\":[],\"effectiveGasPrice\":7"),
        RECEIPT_WITH(
            "\"logs\":[],\"contractAddress\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\""),
        RECEIPT_WITH("\"logs\":[],\"contractAddress\":\"0x5fbd\""),
        RECEIPT_WITH("\"logs\":[],\"blockHash\":\"0xzz\""),
        RECEIPT_WITH("\"logs\":[],\"blockNumber\":\"17\""),
        RECEIPT_WITH("\"logs\":[],\"transactionHash\":\"\\u0030x"
                     "abababababababababababababababab"
                     "abababababababababababababababab\""),
        RECEIPT_WITH("\"logs\":[],\"\\u0073tatus\":\"0x0\""),
        RECEIPT_WITH("\"logs\":[" LOG_WITH(
            H32("01") "," H32("02") "," H32("03") "," H32("04") "," H32("05"), "0x", "") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH(H32("01"), "0x2a0", "") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH(H32("01"), "2a00", "") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH(H32("01"), "0x2a", ",\"removed\":\"true\"") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH(H32("01"), "0x2a", ",\"removed\":null") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH(H32("01"), "0x2a", ",\"logIndex\":\"0x2\"") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH("\"0x01\"", "0x2a", "") "]"),
        RECEIPT_WITH("\"logs\":[" LOG_WITH("7", "0x2a", "") "]"),
        RECEIPT_WITH("\"logs\":[{\"address\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\","
                     "\"topics\":[],\"data\":\"0x\"}]"),
        /* not JSON, or not all of it */
        RECEIPT_WITH("\"logs\":[]") "x",
        RECEIPT_WITH("\"logs\":[],"),
        "{\"status\":\"0x1\"",
        RECEIPT_WITH("\"logs\":[],\"x\":\"\xff\""),
        RECEIPT_WITH("\"logs\":[],\"x\":\"\\ud800\""),
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        receipts_agree(cases[i], strlen(cases[i]));
    /* the scan read them itself: a number out of jansson's range, in a field that is not read,
     * is refused by jansson only (rpc.h: numbers are not range-checked) */
    const char *huge = RECEIPT_WITH("\"logs\":[" LOG_OK "],\"x\":1e999");
    chain_rpc_receipt_t r;
    bool found = false;
    cr_assert_neq(chain_rpc_result_receipt(huge, strlen(huge), &r, &found), CHAIN_OK);
    cr_assert_eq(chain_rpc_result_receipt_scan(huge, strlen(huge), &r, &found), CHAIN_OK);
    cr_assert(found && r.logs.count == 1 && r.logs.items[0].data_len == 3 &&
              r.logs.items[0].data[0] == 0x2a && r.gas_used == 0x8ca0);
    chain_rpc_receipt_free(&r);
    /* a receipt jansson cannot read as a whole is refused by both, whatever its prefix */
    const char *whole = cases[1];
    for (size_t len = 0; len < strlen(whole); len += 7)
        receipts_agree(whole, len);
}

/* The two readers of an eth_getLogs result agree on `text`: the verdict, and when they read it,
 * every log (its data included). */
static void logs_agree(const char *text, size_t len)
{
    chain_rpc_logs_t a, b;
    int ret_a = chain_rpc_result_logs(text, len, &a);
    int ret_b = chain_rpc_result_logs_scan(text, len, &b);
    cr_assert_eq(ret_b, ret_a, "%.*s: scan %s, jansson %s", (int)len, text, chain_err_str(ret_b),
                 chain_err_str(ret_a));
    if (ret_a != CHAIN_OK) {
        cr_assert(b.items == NULL && b.count == 0, "%.*s", (int)len, text);
        return;
    }
    cr_assert_eq(b.count, a.count, "%.*s", (int)len, text);
    for (size_t i = 0; i != a.count; ++i) {
        cr_assert(logs_equal(&a.items[i], &b.items[i]), "%.*s: log %zu", (int)len, text, i);
    }
    chain_rpc_logs_free(&a);
    chain_rpc_logs_free(&b);
}

/* A log as anvil sends it, with blockTimestamp (a field the engine does not read), and `more`. */
#define LOG_ANVIL(data, more)                                                                      \
    LOG_WITH(H32("01") "," H32("02") "," H32("03"), data,                                          \
             ",\"blockTimestamp\":\"0x6553f100\",\"removed\":false" more)

Test(rpc_codec, logs_scan_reads_what_jansson_reads)
{
    static const char *const cases[] = {
        "[]",
        " \r\n[ \t] \n",
        "[" LOG_OK "]",
        "[" LOG_ANVIL("0x0000000000000000000000000000000000000000000000000000000000000064",
                      "") "," LOG_OK
                          "," LOG_WITH("", "0x", "") "," LOG_WITH(
                              H32("03") "," H32("04") "," H32("05") "," H32("06"), "0x00",
                              ",\"removed\":true") "]",
        "[ " LOG_OK " , " LOG_OK " ]",
        /* not an array of logs */
        "null",
        "{}",
        "\"0x1\"",
        "[null]",
        "[[]]",
        "[1]",
        "[{}]",
        /* the fields read: missing, malformed, doubled, escaped */
        "[{\"address\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\",\"topics\":[],\"data\":"
        "\"0x\"}]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"removed\":\"true\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"removed\":null") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"removed\":true,\"removed\":false") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"logIndex\":\"0x2\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"\\u006cogIndex\":\"0x2\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a",
                     ",\"address\":\"\\u0030x5fbdb2315678afecb367f032d93f642f64180aa3\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"address\":\"0x5fbd\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"blockNumber\":\"17\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"blockNumber\":null") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"transactionIndex\":\"0x10000000000000000\"") "]",
        "[" LOG_WITH(H32("01"), "0x2a", ",\"blockHash\":\"0xzz\"") "]",
        "[" LOG_WITH(H32("01") "," H32("02") "," H32("03") "," H32("04") "," H32("05"), "0x",
                     "") "]",
        "[" LOG_WITH("\"0x01\"", "0x2a", "") "]",
        "[" LOG_WITH("\"\\u0030x"
                     "0101010101010101010101010101010101010101010101010101010101010101\"",
                     "0x2a", "") "]",
        "[" LOG_WITH("7", "0x2a", "") "]",
        "[" LOG_WITH(H32("01"), "0x2a0", "") "]",
        "[" LOG_WITH(H32("01"), "2a00", "") "]",
        "[" LOG_WITH(H32("01"), "0x2a\\u0030", "") "]",
        "[" LOG_WITH(H32("01"), "0xzz", "") "]",
        /* fields not read: strings with escapes, nesting, numbers (left to jansson, which refuses
         * those out of its range) */
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\\u00e9\\/\\n\\\"\\ud83d\\ude00\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":{\"a\":[true,false,null,{},[]]}") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":1") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":-0.5e-3") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":1e999") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":123456789012345678901234567890") "]",
        "[" LOG_ANVIL("0x2a",
                      ",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                      "[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                      "]]]]]]") "]",
        /* not JSON, or not all of it */
        "[" LOG_OK "]x",
        "[" LOG_OK "][]",
        "[" LOG_OK ",]",
        "[," LOG_OK "]",
        "[" LOG_OK " " LOG_OK "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\xff\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\xc0\xaf\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\\ud800\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\\u0000\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\\q\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":\"\t\"") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":tru") "]",
        "[" LOG_ANVIL("0x2a", ",\"x\":01") "]",
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        logs_agree(cases[i], strlen(cases[i]));
    /* every prefix of a valid answer, and the answer with a NUL inside */
    const char *whole = cases[3];
    for (size_t len = 0; len <= strlen(whole); ++len)
        logs_agree(whole, len);
    char nul[] = "[" LOG_OK "]";
    nul[10] = '\0';
    logs_agree(nul, sizeof(nul) - 1);
    /* a large answer, as the follower reads a block of 10,000 executions: the scan reads it all,
     * each log's data in its place */
    enum { MANY = 2000 };
#define ITEM LOG_ANVIL("0x00000000000000000000000000000000000000000000000000000000000000%02x", "")
    size_t cap = MANY * (sizeof(ITEM) + 2) + 3, n = 0;
    char *big = malloc(cap);
    cr_assert_not_null(big);
    big[n++] = '[';
    for (int i = 0; i != MANY; ++i)
        n += (size_t)snprintf(big + n, cap - n, "%s" ITEM, i != 0 ? "," : "", i & 0xff);
    big[n++] = ']';
    big[n] = '\0';
#undef ITEM
    logs_agree(big, n);
    chain_rpc_logs_t logs;
    cr_assert_eq(chain_rpc_result_logs_scan(big, n, &logs), CHAIN_OK);
    cr_assert_eq(logs.count, MANY);
    for (size_t i = 0; i != MANY; ++i)
        cr_assert(logs.items[i].data_len == 32 && logs.items[i].data[31] == (i & 0xff) &&
                      logs.items[i].num_topics == 3 && logs.items[i].log_index == 1,
                  "log %zu", i);
    chain_rpc_logs_free(&logs);
    free(big);
}

/* chain_rpc_result_block_txs_all's predicate in the test: the hashes whose first byte is in
 * `known` (a NUL-terminated list of bytes) are "followed"; every call is counted. */
typedef struct st_txs_pred_t {
    const char *known;
    size_t calls;
} txs_pred_t;

static bool txs_pred(void *ctx, const uint8_t hash[32])
{
    txs_pred_t *t = ctx;
    ++t->calls;
    return hash[0] != 0 && strchr(t->known, hash[0]) != NULL;
}

/* A block as anvil sends it (full = false), with `txs` as its transactions member. */
#define BLOCK_WITH(txs)                                                                            \
    "{\"hash\":" H32("cd") ",\"parentHash\":" H32(                                                 \
        "ce") ",\"number\":\"0x12\",\"timestamp\":"                                                \
              "\"0x6553f100\",\"baseFeePerGas\":\"0x7\",\"uncles\":[],"                            \
              "\"withdrawals\":[{\"index\":\"0x0\"}],\"size\":\"0x2a1\"" txs "}"

Test(rpc_codec, block_txs_all_reads_the_transaction_hashes)
{
    static const struct {
        const char *text;
        bool all;
        size_t calls; /* the predicate's */
    } cases[] = {
        {BLOCK_WITH(",\"transactions\":[]"), true, 0},
        {BLOCK_WITH(",\"transactions\":[" H32("01") "," H32("02") "]"), true, 2},
        {BLOCK_WITH(",\"transactions\" : [ " H32("01") " , " H32("02") " ] "), true, 2},
        {" \n" BLOCK_WITH(",\"transactions\":[" H32("02") "]") " \r\n", true, 1},
        /* one that is not followed: the rest is not looked at */
        {BLOCK_WITH(",\"transactions\":[" H32("01") "," H32("03") "," H32("02") "]"), false, 2},
        {BLOCK_WITH(",\"transactions\":[" H32("03") "]"), false, 1},
        /* nothing known: no member, null, objects (full = true), malformed, doubled, escaped */
        {BLOCK_WITH(""), false, 0},
        {"null", false, 0},
        {"[]", false, 0},
        {BLOCK_WITH(",\"transactions\":null"), false, 0},
        {BLOCK_WITH(",\"transactions\":[{\"hash\":" H32("01") "}]"), false, 0},
        {BLOCK_WITH(",\"transactions\":[\"0x01\"]"), false, 0},
        {BLOCK_WITH(",\"transactions\":[" H32("01") "],\"transactions\":[]"), false, 1},
        {BLOCK_WITH(",\"\\u0074ransactions\":[]"), false, 0},
        {BLOCK_WITH(",\"transactions\":[\"\\u0030x"
                    "0101010101010101010101010101010101010101010101010101010101010101\"]"),
         false, 0},
        {BLOCK_WITH(",\"transactions\":[" H32("01") ",]"), false, 1},
        {BLOCK_WITH(",\"transactions\":[" H32("01") "]") "x", false, 1},
        {BLOCK_WITH(",\"transactions\":[" H32("01") "],\"x\":\"\xff\""), false, 1},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        txs_pred_t t = {.known = "\x01\x02"};
        const char *text = cases[i].text;
        cr_assert_eq(chain_rpc_result_block_txs_all(text, strlen(text), txs_pred, &t), cases[i].all,
                     "%s", text);
        cr_assert_eq(t.calls, cases[i].calls, "%s", text);
    }
    /* no proper prefix of a block is one */
    const char *whole = cases[1].text;
    for (size_t len = 0; len != strlen(whole); ++len) {
        txs_pred_t t = {.known = "\x01\x02"};
        cr_assert_not(chain_rpc_result_block_txs_all(whole, len, txs_pred, &t), "%.*s", (int)len,
                      whole);
    }
}

/* ---- failover, breakers, retries ---- */

Test(rpc, failover_from_a_dead_endpoint, .timeout = 60)
{
    fixture_t f;
    begin(&f, ANVIL_FOR_READS, false);
    char dead[64];
    const char *urls[] = {url_of(dead, sizeof(dead), "http://127.0.0.1:%u", f.refusing_port),
                          anvil_url(&f)};
    chain_rpc_t *rpc = rpc_new(&f, urls, 2, NULL);
    run(&f, &rpc, 1);
    harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_chain_id());
    cr_assert_eq(reply_of(m)->error, CHAIN_RPC_OK, "%s", chain_rpc_reply_message(reply_of(m), 0));
    cr_assert_eq(reply_of(m)->attempts, 2);
    cr_assert_eq(reply_of(m)->endpoint, 1);
    cr_assert_eq(result_u64(m, 0), 31337);
    free(m);
    /* a write whose first attempt was refused never left: it is sent to the next endpoint */
    static const uint8_t garbage[] = {0x12, 0x34};
    m = send_one(&f, rpc, chain_rpc_eth_send_raw_transaction(garbage, 2));
    cr_assert_eq(reply_of(m)->attempts, 2);
    cr_assert_eq(reply_of(m)->items[0].error, CHAIN_RPC_ERR_NODE, "anvil answered");
    free(m);
    end(&f, &rpc, 1);
}

Test(rpc, breaker_opens_then_half_opens, .timeout = 60)
{
    fixture_t f;
    begin(&f, ANVIL_FOR_READS, false);
    char dead[64];
    const char *urls[] = {url_of(dead, sizeof(dead), "http://127.0.0.1:%u", f.refusing_port),
                          anvil_url(&f)};
    chain_rpc_config_t config = {.breaker_failures = 2, .breaker_cooldown_ms = 300};
    chain_rpc_t *rpc = rpc_new(&f, urls, 2, &config);
    run(&f, &rpc, 1);
    for (int i = 0; i != 2; ++i) {
        harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_block_number());
        cr_assert_eq(reply_of(m)->attempts, 2);
        free(m);
    }
    cr_assert_eq(chain_rpc_breaker_state(rpc, 0), CHAIN_RPC_BREAKER_OPEN);
    cr_assert_eq(chain_rpc_breaker_state(rpc, 1), CHAIN_RPC_BREAKER_CLOSED);
    harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_block_number());
    cr_assert_eq(reply_of(m)->attempts, 1, "the open endpoint is skipped");
    cr_assert_eq(reply_of(m)->endpoint, 1);
    free(m);
    usleep(400 * 1000);
    cr_assert_eq(chain_rpc_breaker_state(rpc, 0), CHAIN_RPC_BREAKER_HALF_OPEN);
    m = send_one(&f, rpc, chain_rpc_eth_block_number());
    cr_assert_eq(reply_of(m)->attempts, 2, "one probe goes to the dead endpoint");
    cr_assert_eq(reply_of(m)->error, CHAIN_RPC_OK);
    free(m);
    cr_assert_eq(chain_rpc_breaker_state(rpc, 0), CHAIN_RPC_BREAKER_OPEN, "the probe failed");
    end(&f, &rpc, 1);
}

Test(rpc, all_endpoints_dead_is_unavailable_and_bounded, .timeout = 60)
{
    fixture_t f;
    begin(&f, NO_ANVIL, false);
    int fd2;
    char dead1[64], dead2[64];
    const char *urls[] = {
        url_of(dead1, sizeof(dead1), "http://127.0.0.1:%u", f.refusing_port),
        url_of(dead2, sizeof(dead2), "http://127.0.0.1:%u", refusing_port_open(&fd2))};
    chain_rpc_config_t config = {.max_attempts = 5, .breaker_failures = 100};
    chain_rpc_t *rpc = rpc_new(&f, urls, 2, &config);
    run(&f, &rpc, 1);
    harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_chain_id());
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->error, CHAIN_RPC_ERR_UNAVAILABLE);
    cr_assert_eq(r->items[0].error, CHAIN_RPC_ERR_UNAVAILABLE);
    cr_assert_eq(r->attempts, 5);
    cr_assert_not(r->maybe_sent);
    cr_assert_not_null(strstr(chain_rpc_reply_message(r, 0), "connect"), "%s",
                       chain_rpc_reply_message(r, 0));
    free(m);
    end(&f, &rpc, 1);
    close(fd2);
}

Test(rpc, a_write_that_may_have_arrived_is_not_resent, .timeout = 60)
{
    fixture_t f;
    begin(&f, ANVIL_FOR_READS, true);
    char broken[64];
    const char *urls[] = {
        url_of(broken, sizeof(broken), "http://127.0.0.1:%u/rpc/http500", standin_port(f.standin)),
        anvil_url(&f)};
    chain_rpc_t *rpc = rpc_new(&f, urls, 2, NULL);
    run(&f, &rpc, 1);
    static const uint8_t raw[] = {0x02, 0xf8, 0x01};
    harness_msg_t *m = send_one(&f, rpc, chain_rpc_eth_send_raw_transaction(raw, 3));
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->error, CHAIN_RPC_ERR_UNAVAILABLE);
    cr_assert_eq(r->attempts, 1);
    cr_assert(r->maybe_sent);
    cr_assert_eq(standin_requests(f.standin, "/rpc/http500"), 1);
    free(m);
    /* a read on the same endpoints fails over */
    m = send_one(&f, rpc, chain_rpc_eth_chain_id());
    cr_assert_eq(reply_of(m)->error, CHAIN_RPC_OK);
    cr_assert_eq(reply_of(m)->attempts, 2);
    free(m);
    end(&f, &rpc, 1);
}

/* ---- classification, from the stand-in with anvil's texts ---- */

Test(rpc, node_errors_are_classified, .timeout = 60)
{
    fixture_t f;
    begin(&f, NO_ANVIL, true);
    static const struct {
        const char *scenario;
        bool write;
        int error;
        int64_t code;
    } cases[] = {
        {"nonce_too_low", true, CHAIN_RPC_ERR_NONCE_TOO_LOW, -32003},
        {"replacement_underpriced", true, CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED, -32003},
        {"insufficient_funds", true, CHAIN_RPC_ERR_INSUFFICIENT_FUNDS, -32003},
        {"already_known", true, CHAIN_RPC_ERR_ALREADY_KNOWN, -32003},
        {"reverted", false, CHAIN_RPC_ERR_REVERTED, 3},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    chain_rpc_t *rpcs[N];
    char urls[N][96];
    for (size_t i = 0; i != N; ++i) {
        snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%u/rpc/%s", standin_port(f.standin),
                 cases[i].scenario);
        const char *url = urls[i];
        rpcs[i] = rpc_new(&f, &url, 1, NULL);
    }
    run(&f, rpcs, N);
    static const uint8_t raw[] = {0x02, 0xf8, 0x01};
    for (size_t i = 0; i != N; ++i) {
        chain_rpc_tx_t tx = {0};
        chain_rpc_call_t call = cases[i].write
                                    ? chain_rpc_eth_send_raw_transaction(raw, 3)
                                    : chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest"));
        harness_msg_t *m = send_one(&f, rpcs[i], call);
        chain_rpc_reply_t *r = reply_of(m);
        cr_assert_eq(r->error, CHAIN_RPC_OK);
        cr_assert_eq(r->items[0].error, cases[i].error, "%s: got %s", cases[i].scenario,
                     chain_rpc_strerror(r->items[0].error));
        cr_assert_eq(r->items[0].code, cases[i].code);
        cr_assert_eq(r->attempts, 1);
        if (cases[i].error == CHAIN_RPC_ERR_REVERTED) {
            uint8_t data[128];
            size_t len;
            cr_assert_eq(chain_rpc_reply_revert_data(r, 0, data, sizeof(data), &len), CHAIN_OK);
            cr_assert_eq(len, 100);
        }
        free(m);
    }
    end(&f, rpcs, N);
}

Test(rpc, rate_limits_and_bad_answers_are_retried_for_reads, .timeout = 60)
{
    fixture_t f;
    begin(&f, NO_ANVIL, true);
    static const struct {
        const char *scenario;
        int error;
    } cases[] = {
        {"rate_limited", CHAIN_RPC_ERR_RATE_LIMITED}, /* -32005 */
        {"http429", CHAIN_RPC_ERR_RATE_LIMITED},      /* Retry-After: 1 */
        {"garbage", CHAIN_RPC_ERR_BAD_RESPONSE},
        {"http500", CHAIN_RPC_ERR_UNAVAILABLE},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    chain_rpc_t *rpcs[N];
    char urls[N][96];
    chain_rpc_config_t config = {.max_attempts = 2, .breaker_failures = 100};
    for (size_t i = 0; i != N; ++i) {
        snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%u/rpc/%s", standin_port(f.standin),
                 cases[i].scenario);
        const char *url = urls[i];
        rpcs[i] = rpc_new(&f, &url, 1, &config);
    }
    run(&f, rpcs, N);
    for (size_t i = 0; i != N; ++i) {
        harness_msg_t *m = send_one(&f, rpcs[i], chain_rpc_eth_block_number());
        chain_rpc_reply_t *r = reply_of(m);
        cr_assert_eq(r->error, cases[i].error, "%s: got %s (%s)", cases[i].scenario,
                     chain_rpc_strerror(r->error), chain_rpc_reply_message(r, 0));
        cr_assert_eq(r->attempts, 2, "%s: a read is retried", cases[i].scenario);
        free(m);
        char path[64];
        snprintf(path, sizeof(path), "/rpc/%s", cases[i].scenario);
        cr_assert_eq(standin_requests(f.standin, path), 2);
    }
    end(&f, rpcs, N);
}

Test(rpc, batch_answers_are_matched_by_id, .timeout = 60)
{
    fixture_t f;
    begin(&f, NO_ANVIL, true);
    char url[96];
    const char *urls[] = {
        url_of(url, sizeof(url), "http://127.0.0.1:%u/rpc/ok", standin_port(f.standin))};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    chain_rpc_call_t calls[CHAIN_RPC_MAX_BATCH];
    for (size_t i = 0; i != CHAIN_RPC_MAX_BATCH; ++i)
        calls[i] = chain_rpc_eth_chain_id();
    harness_msg_t *m = send_calls(&f, rpc, calls, CHAIN_RPC_MAX_BATCH);
    cr_assert_eq(reply_of(m)->count, CHAIN_RPC_MAX_BATCH);
    for (size_t i = 0; i != CHAIN_RPC_MAX_BATCH; ++i)
        cr_assert_eq(result_u64(m, i), 31337);
    free(m);
    end(&f, &rpc, 1);
}

Test(rpc, busy_and_shutdown_are_immediate_answers, .timeout = 60)
{
    int fds[4];
    uint16_t port = blackhole_open(fds);
    fixture_t f;
    begin(&f, NO_ANVIL, false);
    char url[64];
    const char *urls[] = {url_of(url, sizeof(url), "http://127.0.0.1:%u", port)};
    chain_rpc_config_t config = {.max_calls = 2, .connect_timeout_ms = 10000};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, &config);
    run(&f, &rpc, 1);
    static send_step_t step;
    int sent[3];
    for (int i = 0; i != 3; ++i) {
        step.rpc = rpc;
        step.n = 1;
        step.calls[0] = chain_rpc_eth_chain_id();
        harness_run(&f.h, send_step, &step);
        harness_msg_t *m = harness_wait(&f.h, 5000);
        cr_assert_eq(m->type, MSG_SENT);
        sent[i] = *(int *)m->payload;
        free(m);
    }
    cr_assert_eq(sent[0], CHAIN_RPC_OK);
    cr_assert_eq(sent[1], CHAIN_RPC_OK);
    cr_assert_eq(sent[2], CHAIN_RPC_ERR_BUSY);
    /* stopping answers the two pending calls */
    chain_rpc_stop(rpc);
    for (int i = 0; i != 2; ++i) {
        harness_msg_t *m = harness_wait(&f.h, 5000);
        cr_assert_not_null(m);
        cr_assert_eq(m->type, CHAIN_RPC_MSG_REPLY);
        cr_assert_eq(reply_of(m)->error, CHAIN_RPC_ERR_SHUTDOWN);
        free(m);
    }
    harness_stop(&f.h);
    chain_rpc_free(rpc);
    net_http_client_free(f.http);
    anvil_stop(&f.anvil);
    close(f.refusing_fd);
    blackhole_close(fds);
}

/* ---- answers the client must read exactly: a canned server ---- */

/*
 * The stand-in answers well-formed JSON-RPC only; the scanner that reads answers (chain/rpc.c)
 * is checked here against hand-made ones: malformed, truncated, batches with duplicate and
 * missing ids, invalid UTF-8, deep nesting, odd numbers and escapes. The canned server answers
 * with the current case's text, where "$0", "$1"... stand for the request's ids in order.
 */
typedef struct st_canned_case_t {
    const char *label;
    size_t calls;       /* eth_blockNumber calls sent (1: single, more: a batch) */
    const char *answer; /* the body, ids as $0, $1... */
    int error;          /* reply's error: OK, or BAD_RESPONSE when the answer is refused */
    /* per call when OK: the result text expected, NULL when the call must fail with
     * item_error[i] */
    const char *results[3];
    int item_error[3];
} canned_case_t;

#define BAD CHAIN_RPC_ERR_BAD_RESPONSE
#define DEEP10 "[[[[[[[[[["
#define SHUT10 "]]]]]]]]]]"

/* a case names the results and item errors it expects; the rest are zero */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const canned_case_t canned_cases[] = {
    /* singles */
    {"plain", 1, "{\"jsonrpc\":\"2.0\",\"id\":$0,\"result\":\"0x1\"}", CHAIN_RPC_OK, {"\"0x1\""}},
    {"whitespace everywhere",
     1,
     " \r\n\t{ \"jsonrpc\" :\t\"2.0\" ,\n\"id\"\r: $0 , \"result\" : { \"a\" : [ 1 , 2.5e3 , -0 , "
     "1e5 , -1.5E-2 , 0.0 , 1E+2 , true , false , null ] , \"b\" : { } , \"c\" : [ ] } } \n",
     CHAIN_RPC_OK,
     {"{ \"a\" : [ 1 , 2.5e3 , -0 , 1e5 , -1.5E-2 , 0.0 , 1E+2 , true , false , null ] , \"b\" : "
      "{ } , \"c\" : [ ] }"}},
    {"null result", 1, "{\"id\":$0,\"result\":null}", CHAIN_RPC_OK, {"null"}},
    {"number result -0", 1, "{\"id\":$0,\"result\":-0}", CHAIN_RPC_OK, {"-0"}},
    {"number result 1e5", 1, "{\"id\":$0,\"result\":1e5}", CHAIN_RPC_OK, {"1e5"}},
    {"string with brackets and quotes",
     1,
     "{\"id\":$0,\"result\":\"]}{[\\\",:\\\\\\\"}\",\"jsonrpc\":\"2.0\"}",
     CHAIN_RPC_OK,
     {"\"]}{[\\\",:\\\\\\\"}\""}},
    {"escapes",
     1,
     "{\"id\":$0,\"result\":\"\\u00e9\\u00E9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\\\"}",
     CHAIN_RPC_OK,
     {"\"\\u00e9\\u00E9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\\\""}},
    {"raw UTF-8",
     1,
     "{\"id\":$0,\"result\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
     CHAIN_RPC_OK,
     {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""}},
    {"error as a string, result kept",
     1,
     "{\"id\":$0,\"error\":\"x\",\"result\":5}",
     CHAIN_RPC_OK,
     {"5"}},
    {"nesting at the bound",
     1,
     "{\"id\":$0,\"result\":" DEEP10 DEEP10 DEEP10 DEEP10 DEEP10 DEEP10
     "[[[" SHUT10 SHUT10 SHUT10 SHUT10 SHUT10 SHUT10 "]]]}",
     CHAIN_RPC_OK,
     {DEEP10 DEEP10 DEEP10 DEEP10 DEEP10 DEEP10 "[[[" SHUT10 SHUT10 SHUT10 SHUT10 SHUT10 SHUT10
                                                "]]]"}},
    {"node error with data",
     1,
     "{\"id\":$0,\"error\":{\"code\":3,\"message\":\"execution "
     "reverted\",\"data\":\"0x08c379a0\"}}",
     CHAIN_RPC_OK,
     {NULL},
     {CHAIN_RPC_ERR_REVERTED}},
    {"error with id null",
     1,
     "{\"id\":null,\"error\":{\"code\":-32600,\"message\":\"bad\"}}",
     CHAIN_RPC_OK,
     {NULL},
     {CHAIN_RPC_ERR_NODE}},
    /* singles refused */
    {"wrong id", 1, "{\"id\":999999999,\"result\":\"0x1\"}", BAD},
    {"no id", 1, "{\"result\":\"0x1\"}", BAD},
    {"id 7.0", 1, "{\"id\":$0.0,\"result\":\"0x1\"}", BAD},
    {"id as a string", 1, "{\"id\":\"$0\",\"result\":\"0x1\"}", BAD},
    {"neither result nor error", 1, "{\"id\":$0}", BAD},
    {"not JSON", 1, "<html>nope</html>", BAD},
    {"trailing garbage", 1, "{\"id\":$0,\"result\":1}x", BAD},
    {"two objects", 1, "{\"id\":$0,\"result\":1}{\"id\":$0,\"result\":1}", BAD},
    {"truncated", 1, "{\"id\":$0,\"result\":{\"a\":1}", BAD},
    {"truncated in a string", 1, "{\"id\":$0,\"result\":\"0x", BAD},
    {"truncated after a key", 1, "{\"id\":$0,\"result\"", BAD},
    {"only whitespace", 1, " \n ", BAD},
    {"a scalar", 1, "\"0x1\"", BAD},
    {"a batch for a single call", 1, "[{\"id\":$0,\"result\":1}]", BAD},
    {"bad escape", 1, "{\"id\":$0,\"result\":\"\\q\"}", BAD},
    {"lone backslash", 1, "{\"id\":$0,\"result\":\"a\\\"}", BAD},
    {"short \\u", 1, "{\"id\":$0,\"result\":\"\\u00e\"}", BAD},
    {"\\u0000", 1, "{\"id\":$0,\"result\":\"a\\u0000\"}", BAD},
    {"lone high surrogate", 1, "{\"id\":$0,\"result\":\"\\ud83d\"}", BAD},
    {"lone low surrogate", 1, "{\"id\":$0,\"result\":\"\\ude00x\"}", BAD},
    {"control character in a string", 1, "{\"id\":$0,\"result\":\"a\nb\"}", BAD},
    {"invalid UTF-8 byte", 1, "{\"id\":$0,\"result\":\"\xff\"}", BAD},
    {"UTF-8 continuation alone", 1, "{\"id\":$0,\"result\":\"\x80\"}", BAD},
    {"overlong UTF-8", 1, "{\"id\":$0,\"result\":\"\xc0\xaf\"}", BAD},
    {"UTF-8 surrogate", 1, "{\"id\":$0,\"result\":\"\xed\xa0\x80\"}", BAD},
    {"UTF-8 above U+10FFFF", 1, "{\"id\":$0,\"result\":\"\xf4\x90\x80\x80\"}", BAD},
    {"truncated UTF-8", 1, "{\"id\":$0,\"result\":\"\xe2\x82\"}", BAD},
    {"invalid UTF-8 in a key", 1, "{\"id\":$0,\"\xfe\":1,\"result\":1}", BAD},
    {"leading zero", 1, "{\"id\":$0,\"result\":01}", BAD},
    {"bare minus", 1, "{\"id\":$0,\"result\":-}", BAD},
    {"plus sign", 1, "{\"id\":$0,\"result\":+1}", BAD},
    {"no digit after the point", 1, "{\"id\":$0,\"result\":1.}", BAD},
    {"no digit before the point", 1, "{\"id\":$0,\"result\":.5}", BAD},
    {"no exponent digits", 1, "{\"id\":$0,\"result\":1e}", BAD},
    {"bad literal", 1, "{\"id\":$0,\"result\":tru}", BAD},
    {"literal in capitals", 1, "{\"id\":$0,\"result\":True}", BAD},
    {"trailing comma", 1, "{\"id\":$0,\"result\":[1,]}", BAD},
    {"missing colon", 1, "{\"id\":$0,\"result\" 1}", BAD},
    {"unquoted key", 1, "{id:$0,\"result\":1}", BAD},
    {"nesting past the bound", 1,
     "{\"id\":$0,\"result\":" DEEP10 DEEP10 DEEP10 DEEP10 DEEP10 DEEP10 DEEP10 SHUT10 SHUT10 SHUT10
         SHUT10 SHUT10 SHUT10 SHUT10 "}",
     BAD},
    /* batches: each result to its own call, whatever the order */
    {"batch out of order",
     2,
     "[{\"id\":$1,\"result\":\"0x2\"},{\"id\":$0,\"result\":[\"a\",{\"b\":\"]}\"}]}]",
     CHAIN_RPC_OK,
     {"[\"a\",{\"b\":\"]}\"}]", "\"0x2\""}},
    {"batch of three scrambled, whitespace everywhere",
     3,
     "\n[ { \"result\" : \"c\" , \"id\" : $2 } ,\r\n{ \"id\" : $0 , \"result\" : { \"x\" : \"[\" } "
     "} ,\t{ \"jsonrpc\" : \"2.0\" , \"id\" : $1 , \"result\" : null } ]\n",
     CHAIN_RPC_OK,
     {"{ \"x\" : \"[\" }", "null", "\"c\""}},
    {"batch missing one",
     2,
     "[{\"id\":$1,\"result\":\"0x2\"}]",
     CHAIN_RPC_OK,
     {NULL, "\"0x2\""},
     {BAD}},
    {"batch duplicate id: the first counts",
     2,
     "[{\"id\":$0,\"result\":1},{\"id\":$0,\"result\":2}]",
     CHAIN_RPC_OK,
     {"1", NULL},
     {0, BAD}},
    {"batch element not an object",
     2,
     "[1,\"x\",{\"id\":$0,\"result\":1},[]]",
     CHAIN_RPC_OK,
     {"1", NULL},
     {0, BAD}},
    {"batch ids foreign",
     2,
     "[{\"id\":\"$0\",\"result\":1},{\"id\":-1,\"result\":2},{\"id\":$1.0,\"result\":3},{\"id\":$1,"
     "\"result\":4}]",
     CHAIN_RPC_OK,
     {NULL, "4"},
     {BAD}},
    {"batch mixed result and error",
     2,
     "[{\"id\":$0,\"error\":{\"code\":-32003,\"message\":\"nonce too low\"}},{\"id\":$1,\"result\":"
     "\"0x2\"}]",
     CHAIN_RPC_OK,
     {NULL, "\"0x2\""},
     {CHAIN_RPC_ERR_NONCE_TOO_LOW}},
    {"batch refused as a whole",
     2,
     "{\"id\":null,\"error\":{\"code\":-32000,\"message\":\"batch too large\"}}",
     CHAIN_RPC_OK,
     {NULL, NULL},
     {CHAIN_RPC_ERR_NODE, CHAIN_RPC_ERR_NODE}},
    /* batches refused */
    {"batch answered by one result", 2, "{\"id\":$0,\"result\":1}", BAD},
    {"batch empty", 2, "[]", BAD},
    {"batch of nothing ours", 2, "[{\"id\":999999999,\"result\":1}]", BAD},
    {"batch truncated", 2, "[{\"id\":$0,\"result\":{\"a\":1}", BAD},
    {"batch truncated between elements", 2, "[{\"id\":$0,\"result\":1},", BAD},
    {"batch with a bad element after good ones", 2,
     "[{\"id\":$0,\"result\":1},{\"id\":$1,\"result\":tru}]", BAD},
    {"batch with invalid UTF-8 after good ones", 2,
     "[{\"id\":$0,\"result\":1},{\"id\":$1,\"result\":\"\xc3\"}]", BAD},
    {"batch missing a comma", 2, "[{\"id\":$0,\"result\":1}{\"id\":$1,\"result\":2}]", BAD},
    {"batch trailing garbage", 2, "[{\"id\":$0,\"result\":1},{\"id\":$1,\"result\":2}]]", BAD},
};

#pragma GCC diagnostic pop

#undef BAD
#undef DEEP10
#undef SHUT10

enum { CANNED_N = sizeof(canned_cases) / sizeof(canned_cases[0]) };

/* the case the canned server answers with: the test sends one call at a time */
static _Atomic size_t canned_current;

typedef struct st_canned_server_t {
    int fd;
    uint16_t port;
    pthread_t thread;
} canned_server_t;

/* The ids of the request `body` (an object or an array of them), in order. */
static size_t request_ids(const char *body, size_t len, json_int_t *ids, size_t cap)
{
    json_t *req = json_loadb(body, len, 0, NULL);
    size_t n = 0;
    if (json_is_object(req)) {
        ids[n++] = json_integer_value(json_object_get(req, "id"));
    } else {
        size_t i;
        json_t *call;
        json_array_foreach(req, i, call)
        {
            if (n != cap)
                ids[n++] = json_integer_value(json_object_get(call, "id"));
        }
    }
    json_decref(req);
    return n;
}

/* Case `k`'s answer with the request's ids in place of $0, $1... */
static size_t canned_answer(size_t k, const json_int_t *ids, size_t num_ids, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = canned_cases[k].answer; *p != '\0' && n + 24 < cap; ++p) {
        if (p[0] == '$' && p[1] >= '0' && (size_t)(p[1] - '0') < num_ids)
            n += (size_t)snprintf(out + n, cap - n, "%lld", (long long)ids[p[1] - '0']), ++p;
        else
            out[n++] = *p;
    }
    return n;
}

/* Reads one HTTP request on `fd` and answers it with its case; the connection then closes. */
static void canned_serve(int fd)
{
    char req[16384], body[8192];
    size_t len = 0;
    char *head_end = NULL;
    while (head_end == NULL && len < sizeof(req) - 1) {
        ssize_t got = read(fd, req + len, sizeof(req) - 1 - len);
        if (got <= 0)
            return;
        len += (size_t)got;
        req[len] = '\0';
        head_end = strstr(req, "\r\n\r\n");
    }
    if (head_end == NULL)
        return;
    const char *cl = strcasestr(req, "content-length:");
    size_t body_len = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
    size_t head = (size_t)(head_end + 4 - req);
    while (len - head < body_len && len < sizeof(req) - 1) {
        ssize_t got = read(fd, req + len, sizeof(req) - 1 - len);
        if (got <= 0)
            return;
        len += (size_t)got;
    }
    size_t k = atomic_load(&canned_current);
    json_int_t ids[8];
    size_t num_ids = request_ids(req + head, body_len, ids, 8);
    size_t n = k < CANNED_N ? canned_answer(k, ids, num_ids, body, sizeof(body)) : 0;
    char out[sizeof(body) + 256];
    int h = snprintf(out, sizeof(out),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     n);
    memcpy(out + h, body, n);
    for (size_t off = 0; off < (size_t)h + n;) {
        ssize_t put = write(fd, out + off, (size_t)h + n - off);
        if (put <= 0)
            return;
        off += (size_t)put;
    }
}

static void *canned_main(void *arg)
{
    canned_server_t *s = arg;
    for (;;) { /* ends when the listener is shut down */
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        canned_serve(fd);
        close(fd);
    }
}

static void canned_start(canned_server_t *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    cr_assert(s->fd >= 0 && bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
              listen(s->fd, 64) == 0 && getsockname(s->fd, (struct sockaddr *)&sa, &sl) == 0);
    s->port = ntohs(sa.sin_port);
    cr_assert_eq(pthread_create(&s->thread, NULL, canned_main, s), 0);
}

static void canned_stop(canned_server_t *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* Checks the reply to case `k` (see canned_case_t). */
static void canned_check(size_t k, harness_msg_t *m)
{
    const canned_case_t *c = &canned_cases[k];
    chain_rpc_reply_t *r = reply_of(m);
    cr_assert_eq(r->error, c->error, "%s: reply %s (%s)", c->label, chain_rpc_strerror(r->error),
                 chain_rpc_reply_message(r, 0));
    cr_assert_eq(r->count, c->calls);
    cr_assert_eq(r->attempts, 1, "%s", c->label);
    for (size_t i = 0; i != c->calls; ++i) {
        size_t len;
        const char *text = chain_rpc_reply_result(r, i, &len);
        int want = c->error != CHAIN_RPC_OK ? c->error
                   : c->results[i] != NULL  ? CHAIN_RPC_OK
                                            : c->item_error[i];
        cr_assert_eq(r->items[i].error, want, "%s: call %zu: %s (%s)", c->label, i,
                     chain_rpc_strerror(r->items[i].error), chain_rpc_reply_message(r, i));
        if (want != CHAIN_RPC_OK) {
            cr_assert_null(text, "%s: call %zu", c->label, i);
            cr_assert_neq(chain_rpc_reply_message(r, i)[0], '\0', "%s: call %zu", c->label, i);
            continue;
        }
        cr_assert_not_null(text, "%s: call %zu", c->label, i);
        cr_assert_eq(len, strlen(c->results[i]), "%s: call %zu: %s", c->label, i, text);
        cr_assert_str_eq(text, c->results[i], "%s: call %zu", c->label, i);
    }
}

Test(rpc, hand_made_answers_are_read_exactly_or_refused, .timeout = 120)
{
    fixture_t f;
    begin(&f, NO_ANVIL, false);
    canned_server_t server;
    canned_start(&server);
    char url[64];
    const char *urls[] = {url_of(url, sizeof(url), "http://127.0.0.1:%u/", server.port)};
    /* one attempt: a refused answer is the reply's error at once; no breaker opens */
    chain_rpc_config_t config = {.max_attempts = 1, .breaker_failures = 1000};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, &config);
    run(&f, &rpc, 1);
    for (size_t k = 0; k != CANNED_N; ++k) {
        chain_rpc_call_t calls[3];
        for (size_t i = 0; i != canned_cases[k].calls; ++i)
            calls[i] = chain_rpc_eth_block_number();
        atomic_store(&canned_current, k);
        harness_msg_t *m = send_calls(&f, rpc, calls, canned_cases[k].calls);
        canned_check(k, m);
        free(m);
    }
    /* the revert data of a node's error still decodes, and the node's code is kept */
    chain_rpc_call_t call = chain_rpc_eth_block_number();
    size_t with_data = 0;
    while (strcmp(canned_cases[with_data].label, "node error with data") != 0)
        ++with_data;
    atomic_store(&canned_current, with_data);
    harness_msg_t *m = send_calls(&f, rpc, &call, 1);
    uint8_t data[8];
    size_t len;
    cr_assert_eq(reply_of(m)->items[0].code, 3);
    cr_assert_eq(chain_rpc_reply_revert_data(reply_of(m), 0, data, sizeof(data), &len), CHAIN_OK);
    cr_assert_eq(len, 4);
    cr_assert_eq(data[0], 0x08);
    free(m);
    end(&f, &rpc, 1);
    canned_stop(&server);
}

/* ---- the pure codec ---- */

Test(rpc_codec, quantities)
{
    static const struct {
        const char *s;
        int ret;
        uint64_t value;
    } cases[] = {
        {"0x0", CHAIN_OK, 0},
        {"0x1a", CHAIN_OK, 26},
        {"0x7A69", CHAIN_OK, 31337},
        {"0x000001", CHAIN_OK, 1},
        {"0xffffffffffffffff", CHAIN_OK, UINT64_MAX},
        {"0x10000000000000000", CHAIN_ERR_OVERFLOW, 0},
        {"0x", CHAIN_ERR_SYNTAX, 0},
        {"1a", CHAIN_ERR_SYNTAX, 0},
        {"0X1", CHAIN_ERR_SYNTAX, 0},
        {"0x1g", CHAIN_ERR_SYNTAX, 0},
        {"", CHAIN_ERR_LENGTH, 0},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        uint64_t v = 0;
        int ret = chain_rpc_parse_quantity_u64(cases[i].s, strlen(cases[i].s), &v);
        cr_assert_eq(ret, cases[i].ret, "%s: %d", cases[i].s, ret);
        if (ret == CHAIN_OK)
            cr_assert_eq(v, cases[i].value, "%s", cases[i].s);
    }
    char max[67] = "0x";
    memset(max + 2, 'f', 64);
    max[66] = '\0';
    chain_u256_t u;
    cr_assert_eq(chain_rpc_parse_quantity_u256(max, 66, &u), CHAIN_OK);
    cr_assert_eq(u.limb[3], UINT64_MAX);
    cr_assert_eq(chain_rpc_parse_quantity_u256("0x1234567890abcdef1", 19, &u), CHAIN_OK);
    cr_assert_eq(u.limb[0], 0x234567890abcdef1ULL);
    cr_assert_eq(u.limb[1], 1);
    char too_big[68] = "0x1";
    memset(too_big + 3, '0', 64);
    too_big[67] = '\0';
    cr_assert_eq(chain_rpc_parse_quantity_u256(too_big, 67, &u), CHAIN_ERR_OVERFLOW);
    uint64_t v;
    cr_assert_eq(chain_rpc_result_u64("\"0x7a69\"", 8, &v), CHAIN_OK);
    cr_assert_eq(chain_rpc_result_u64("31337", 5, &v), CHAIN_ERR_TYPE,
                 "a number is not a quantity");
    cr_assert_eq(chain_rpc_result_u64("{", 1, &v), CHAIN_ERR_SYNTAX);
}

Test(rpc_codec, node_errors_as_nodes_word_them)
{
    static const struct {
        int64_t code;
        const char *message;
        int error;
    } cases[] = {
        {-32003, "nonce too low", CHAIN_RPC_ERR_NONCE_TOO_LOW}, /* anvil */
        {-32000, "nonce too low: address 0xf39F, tx: 0 state: 3", CHAIN_RPC_ERR_NONCE_TOO_LOW},
        {-32000, "invalid nonce; got 5, expected 7: invalid sequence", CHAIN_RPC_ERR_NONCE_TOO_LOW},
        {-32000, "invalid nonce; got 9, expected 7: invalid sequence",
         CHAIN_RPC_ERR_NONCE_TOO_HIGH},
        {-32000, "nonce too high", CHAIN_RPC_ERR_NONCE_TOO_HIGH},
        {-32003, "replacement transaction underpriced", CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED},
        {-32000, "transaction underpriced: tip needed 1, tip permitted 0",
         CHAIN_RPC_ERR_UNDERPRICED},
        {-32000, "max fee per gas less than block base fee: address 0x1",
         CHAIN_RPC_ERR_UNDERPRICED},
        {-32003, "Insufficient funds for gas * price + value", CHAIN_RPC_ERR_INSUFFICIENT_FUNDS},
        {-32000, "insufficient funds for gas * price + value: balance 0",
         CHAIN_RPC_ERR_INSUFFICIENT_FUNDS},
        {-32003, "transaction already imported", CHAIN_RPC_ERR_ALREADY_KNOWN}, /* anvil */
        {-32000, "already known", CHAIN_RPC_ERR_ALREADY_KNOWN},                /* geth */
        {3, "execution reverted: boom", CHAIN_RPC_ERR_REVERTED},
        {-32000, "execution reverted", CHAIN_RPC_ERR_REVERTED},
        {3, NULL, CHAIN_RPC_ERR_REVERTED},
        {-32005, "limit exceeded", CHAIN_RPC_ERR_RATE_LIMITED},
        {-32005, "project ID request rate exceeded", CHAIN_RPC_ERR_RATE_LIMITED},
        {-32000, "Too Many Requests", CHAIN_RPC_ERR_RATE_LIMITED},
        {-32601, "Method not found", CHAIN_RPC_ERR_NODE},
        {-32602, "Failed to decode transaction", CHAIN_RPC_ERR_NODE},
        {-32000, "header not found", CHAIN_RPC_ERR_NODE},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        cr_assert_eq(chain_rpc_classify(cases[i].code, cases[i].message), cases[i].error,
                     "%s: got %s", cases[i].message,
                     chain_rpc_strerror(chain_rpc_classify(cases[i].code, cases[i].message)));
}

static void assert_params(chain_rpc_call_t call, const char *method, const char *expected)
{
    cr_assert_not_null(call.params);
    cr_assert_str_eq(call.method, method);
    char *text = json_dumps(call.params, JSON_COMPACT);
    cr_assert_str_eq(text, expected);
    free(text);
    json_decref(call.params);
}

Test(rpc_codec, builders)
{
    chain_addr_t dev0 = addr(DEV0), dev1 = addr(DEV1);
    assert_params(chain_rpc_eth_block_number(), "eth_blockNumber", "[]");
    assert_params(chain_rpc_eth_get_block_by_number(chain_rpc_block_number(255)),
                  "eth_getBlockByNumber", "[\"0xff\",false]");
    double percentiles[] = {25, 75};
    assert_params(chain_rpc_eth_fee_history(4, chain_rpc_block_tag("latest"), percentiles, 2),
                  "eth_feeHistory", "[\"0x4\",\"latest\",[25.0,75.0]]");
    assert_params(chain_rpc_eth_get_transaction_count(&dev0, chain_rpc_block_tag("pending")),
                  "eth_getTransactionCount", "[\"" DEV0 "\",\"pending\"]");
    chain_u256_t value = chain_u256_from_u64(0x100);
    uint8_t data[] = {0xab, 0xcd};
    chain_rpc_tx_t tx = {
        .from = &dev0, .to = &dev1, .data = data, .data_len = 2, .value = &value, .gas = 21000};
    assert_params(chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest")), "eth_call",
                  "[{\"from\":\"" DEV0 "\",\"to\":\"" DEV1
                  "\",\"data\":\"0xabcd\",\"value\":\"0x100\",\"gas\":\"0x5208\"},\"latest\"]");
    chain_u256_t zero = chain_u256_from_u64(0);
    chain_rpc_tx_t create = {.value = &zero};
    assert_params(chain_rpc_eth_estimate_gas(&create), "eth_estimateGas", "[{\"value\":\"0x0\"}]");
    assert_params(chain_rpc_eth_send_raw_transaction(data, 2), "eth_sendRawTransaction",
                  "[\"0xabcd\"]");
    uint8_t t[2][32];
    memset(t[0], 0x11, 32);
    memset(t[1], 0x22, 32);
    chain_rpc_log_filter_t filter = {.from_block = chain_rpc_block_number(1),
                                     .to_block = chain_rpc_block_number(2),
                                     .addresses = &dev1,
                                     .num_addresses = 1,
                                     .topics = {{NULL, 0}, {(const uint8_t(*)[32])t, 2}},
                                     .num_topics = 2};
    chain_rpc_call_t logs = chain_rpc_eth_get_logs(&filter);
    char *text = json_dumps(logs.params, JSON_COMPACT);
    cr_assert_not_null(strstr(text, "\"fromBlock\":\"0x1\",\"toBlock\":\"0x2\",\"address\":[\"" DEV1
                                    "\"],\"topics\":[null,[\"0x1111"),
                       "%s", text);
    free(text);
    json_decref(logs.params);
    cr_assert(chain_rpc_method_is_read("eth_call"));
    cr_assert_not(chain_rpc_method_is_read("eth_sendRawTransaction"));
    cr_assert_not(chain_rpc_method_is_read("eth_sendTransaction"));
}

Test(rpc_codec, readers)
{
    const char *header = "{\"number\":\"0x10\",\"hash\":\"0x" TOPIC "\",\"parentHash\":\"0x" TOPIC
                         "\",\"timestamp\":\"0x5\"}";
    chain_rpc_block_header_t hdr;
    bool found;
    cr_assert_eq(chain_rpc_result_block_header(header, strlen(header), &hdr, &found), CHAIN_OK);
    cr_assert(found && hdr.number == 16 && hdr.timestamp == 5 && !hdr.has_base_fee);
    const char *no_hash = "{\"number\":\"0x10\",\"parentHash\":\"0x00\",\"timestamp\":\"0x5\"}";
    cr_assert_eq(chain_rpc_result_block_header(no_hash, strlen(no_hash), &hdr, &found),
                 CHAIN_ERR_TYPE);
    cr_assert_not(found);
    const char *short_hash = "{\"number\":\"0x1\",\"hash\":\"0x11\",\"parentHash\":\"0x11\","
                             "\"timestamp\":\"0x5\"}";
    cr_assert_eq(chain_rpc_result_block_header(short_hash, strlen(short_hash), &hdr, &found),
                 CHAIN_ERR_LENGTH);

    const char *fh_text = "{\"oldestBlock\":\"0x1\",\"baseFeePerGas\":[\"0x1\",\"0x2\",\"0x3\"],"
                          "\"gasUsedRatio\":[0.5,0],\"reward\":[[\"0xa\"],[\"0xb\"]]}";
    chain_rpc_fee_history_t fh;
    cr_assert_eq(chain_rpc_result_fee_history(fh_text, strlen(fh_text), &fh), CHAIN_OK);
    cr_assert(fh.num_blocks == 2 && fh.num_percentiles == 1 && fh.oldest_block == 1);
    cr_assert(fh.base_fee_per_gas[2].limb[0] == 3 && fh.reward[1].limb[0] == 0xb);
    cr_assert(fh.gas_used_ratio[0] == 0.5);
    chain_rpc_fee_history_free(&fh);
    const char *fh_bad =
        "{\"oldestBlock\":\"0x1\",\"baseFeePerGas\":[\"0x1\"],\"gasUsedRatio\":[0.5]}";
    cr_assert_eq(chain_rpc_result_fee_history(fh_bad, strlen(fh_bad), &fh), CHAIN_ERR_LENGTH);

    uint8_t out[8];
    size_t len;
    const char *nested = "{\"message\":\"x\",\"data\":\"0x08c379a0\"}";
    cr_assert_eq(chain_rpc_revert_data(nested, strlen(nested), out, sizeof(out), &len), CHAIN_OK);
    cr_assert_eq(len, 4);
    cr_assert_eq(chain_rpc_revert_data("\"0x\"", 4, out, sizeof(out), &len), CHAIN_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(chain_rpc_revert_data(NULL, 0, out, sizeof(out), &len), CHAIN_ERR_TYPE);
    cr_assert_eq(chain_rpc_result_bytes("\"0x00112233445566778899\"", 24, out, sizeof(out), &len),
                 CHAIN_ERR_SHORT_BUFFER);
    chain_rpc_logs_t logs;
    cr_assert_eq(chain_rpc_result_logs("[]", 2, &logs), CHAIN_OK);
    cr_assert_eq(logs.count, 0);
    chain_rpc_logs_free(&logs);
    cr_assert_eq(chain_rpc_result_logs("[{\"data\":\"0x1\"}]", 16, &logs), CHAIN_ERR_LENGTH);
}

/* ---- `intentd deploy` against a fresh anvil ---- */

#ifdef INTENTD_BIN
Test(deploy, deploys_the_registry_and_a_six_decimal_usdc, .timeout = 120)
{
    fixture_t f;
    begin(&f, OWN_ANVIL, false);
    char cmd[512], out[512] = "";
    snprintf(cmd, sizeof(cmd), "PRIVATE_KEY=0x%s %s deploy --rpc-url %s --chain-id 31337 2>&1",
             DEV0_KEY, INTENTD_BIN, f.anvil.url);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "intentd deploy failed: %s", out);
    char registry[43] = "", usdc[43] = "";
    const char *r = strstr(out, "export INTENT_CONTRACT_ADDRESS="),
               *u = strstr(out, "export USDC_ADDRESS=");
    cr_assert(r != NULL && u != NULL, "%s", out);
    memcpy(registry, r + strlen("export INTENT_CONTRACT_ADDRESS="), 42);
    memcpy(usdc, u + strlen("export USDC_ADDRESS="), 42);
    /* a wrong chain id is refused before anything is sent */
    snprintf(cmd, sizeof(cmd),
             "PRIVATE_KEY=0x%s %s deploy --rpc-url %s --chain-id 25 >/dev/null 2>&1", DEV0_KEY,
             INTENTD_BIN, f.anvil.url);
    cr_assert_neq(system(cmd), 0, "deployed to a chain with another id");

    const char *urls[] = {f.anvil.url};
    chain_rpc_t *rpc = rpc_new(&f, urls, 1, NULL);
    run(&f, &rpc, 1);
    /* both have code, and the token answers decimals() = 6 */
    harness_msg_t *m =
        send_one(&f, rpc, chain_rpc_call("eth_getCode", json_pack("[ss]", registry, "latest")));
    size_t code_len;
    const char *code = chain_rpc_reply_result(reply_of(m), 0, &code_len);
    cr_assert(code != NULL && code_len > 100, "no code at the registry address %s", registry);
    free(m);
    uint8_t call_data[4];
    chain_abi_selector("decimals()", call_data);
    chain_addr_t token;
    cr_assert_eq(chain_addr_parse(&token, usdc, strlen(usdc)), CHAIN_OK);
    chain_rpc_tx_t call = {.to = &token, .data = call_data, .data_len = 4};
    m = send_one(&f, rpc, chain_rpc_eth_call(&call, chain_rpc_block_tag("latest")));
    uint64_t decimals = 0;
    size_t len;
    const char *result = chain_rpc_reply_result(reply_of(m), 0, &len);
    uint8_t word[32];
    size_t word_len;
    cr_assert_eq(chain_rpc_result_bytes(result, len, word, sizeof(word), &word_len), CHAIN_OK);
    for (size_t i = 24; i != 32; ++i)
        decimals = decimals << 8 | word[i];
    cr_assert_eq(decimals, 6);
    free(m);
    end(&f, &rpc, 1);
}
#endif
