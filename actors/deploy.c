#include "actors/deploy.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chain/hex.h"
#include "chain/key.h"
#include "chain/rpc.h"
#include "chain/tx.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "runtime/config.h"
#include "runtime/log.h"

enum { NUM_CONTRACTS = 2 };
enum { STEP_INFO = 1, STEP_ESTIMATE, STEP_SEND, STEP_RECEIPTS };
enum { MSG_START = RT_MSG_USER + 1 };
#define POLL_INTERVAL_MS 200
#define MAX_POLLS 600 /* two minutes */

static const char *const contract_names[NUM_CONTRACTS] = {"IntentRegistry", "TestUSDC"};
static const char *const contract_env[NUM_CONTRACTS] = {"INTENT_CONTRACT_ADDRESS", "USDC_ADDRESS"};

typedef struct st_deployer_t {
    chain_rpc_t *rpc;
    const chain_key_t *key;
    chain_addr_t from;
    uint64_t expected_chain_id, chain_id, nonce;
    chain_u256_t gas_price, tip;
    uint8_t *code[NUM_CONTRACTS];
    size_t code_len[NUM_CONTRACTS];
    uint64_t gas[NUM_CONTRACTS];
    uint8_t tx_hash[NUM_CONTRACTS][32];
    chain_addr_t address[NUM_CONTRACTS];
    uint64_t block[NUM_CONTRACTS]; /* where each was created */
    rt_actor_timer_t poll_timer;
    int polls;
} deployer_t;

/* The outcome, read by the main thread: 0 running, 1 done, 2 failed. */
static _Atomic int outcome;
static char failure[512];

static void fail(const char *fmt, const char *detail)
{
    snprintf(failure, sizeof(failure), fmt, detail);
    atomic_store(&outcome, 2);
}

static void send_calls(rt_actor_t *self, deployer_t *d, chain_rpc_call_t *calls, size_t n,
                       uint64_t step)
{
    int ret = chain_rpc_send(self, d->rpc, calls, n, 0, step);
    if (ret != CHAIN_RPC_OK)
        fail("cannot send to the node: %s", chain_rpc_strerror(ret));
}

/* Every item answered, or the first failure reported. */
static bool all_ok(const chain_rpc_reply_t *r)
{
    for (uint32_t i = 0; i != r->count; ++i) {
        if (r->items[i].error != CHAIN_RPC_OK) {
            char detail[300];
            snprintf(detail, sizeof(detail), "%s (%s)", chain_rpc_strerror(r->items[i].error),
                     chain_rpc_reply_message(r, i));
            fail("the node refused: %s", detail);
            return false;
        }
    }
    return true;
}

static bool read_u64(const chain_rpc_reply_t *r, size_t i, uint64_t *out)
{
    size_t len;
    const char *json = chain_rpc_reply_result(r, i, &len);
    return json != NULL && chain_rpc_result_u64(json, len, out) == CHAIN_OK;
}

static bool read_u256(const chain_rpc_reply_t *r, size_t i, chain_u256_t *out)
{
    size_t len;
    const char *json = chain_rpc_reply_result(r, i, &len);
    return json != NULL && chain_rpc_result_u256(json, len, out) == CHAIN_OK;
}

static void on_info(rt_actor_t *self, deployer_t *d, const chain_rpc_reply_t *r)
{
    if (!all_ok(r))
        return;
    if (!read_u64(r, 0, &d->chain_id) || !read_u64(r, 1, &d->nonce) ||
        !read_u256(r, 2, &d->gas_price) || !read_u256(r, 3, &d->tip)) {
        fail("%s", "unreadable answer to chainId/getTransactionCount/gasPrice");
        return;
    }
    if (d->expected_chain_id != 0 && d->expected_chain_id != d->chain_id) {
        char detail[64];
        snprintf(detail, sizeof(detail), "%llu", (unsigned long long)d->chain_id);
        fail("CHAIN_ID does not match the node's chain id %s", detail);
        return;
    }
    chain_rpc_call_t calls[NUM_CONTRACTS];
    for (int i = 0; i != NUM_CONTRACTS; ++i) {
        chain_rpc_tx_t tx = {.from = &d->from, .data = d->code[i], .data_len = d->code_len[i]};
        calls[i] = chain_rpc_eth_estimate_gas(&tx);
    }
    send_calls(self, d, calls, NUM_CONTRACTS, STEP_ESTIMATE);
}

/* Signs the creation transactions (consecutive nonces) and sends both in one batch. */
static void on_estimates(rt_actor_t *self, deployer_t *d, const chain_rpc_reply_t *r)
{
    if (!all_ok(r))
        return;
    static uint8_t raw[NUM_CONTRACTS][16384];
    size_t raw_len[NUM_CONTRACTS];
    chain_rpc_call_t calls[NUM_CONTRACTS];
    for (int i = 0; i != NUM_CONTRACTS; ++i) {
        uint64_t estimate;
        if (!read_u64(r, (size_t)i, &estimate)) {
            fail("%s", "unreadable gas estimate");
            return;
        }
        chain_tx_t tx = {.type = CHAIN_TX_EIP1559,
                         .chain_id = d->chain_id,
                         .nonce = d->nonce + (uint64_t)i,
                         .max_priority_fee_per_gas = d->tip,
                         .gas = estimate + estimate / 5, /* 20% headroom over the estimate */
                         .has_to = false,
                         .data = d->code[i],
                         .data_len = d->code_len[i]};
        /* twice the current price plus the tip: room for the base fee to rise meanwhile */
        chain_u256_mul_small(&tx.max_fee_per_gas, &d->gas_price, 2);
        chain_u256_add(&tx.max_fee_per_gas, &tx.max_fee_per_gas, &d->tip);
        if (chain_tx_sign(&tx, d->key, raw[i], sizeof(raw[i]), &raw_len[i], d->tx_hash[i]) !=
            CHAIN_OK) {
            fail("%s", "cannot sign the creation transaction");
            return;
        }
        calls[i] = chain_rpc_eth_send_raw_transaction(raw[i], raw_len[i]);
    }
    send_calls(self, d, calls, NUM_CONTRACTS, STEP_SEND);
}

static void poll_receipts(rt_actor_t *self, deployer_t *d)
{
    chain_rpc_call_t calls[NUM_CONTRACTS];
    for (int i = 0; i != NUM_CONTRACTS; ++i)
        calls[i] = chain_rpc_eth_get_transaction_receipt(d->tx_hash[i]);
    send_calls(self, d, calls, NUM_CONTRACTS, STEP_RECEIPTS);
}

static void on_receipts(rt_actor_t *self, deployer_t *d, const chain_rpc_reply_t *r)
{
    if (!all_ok(r))
        return;
    int mined = 0;
    for (int i = 0; i != NUM_CONTRACTS; ++i) {
        size_t len;
        const char *json = chain_rpc_reply_result(r, (size_t)i, &len);
        chain_rpc_receipt_t receipt;
        bool found = false;
        if (chain_rpc_result_receipt(json, len, &receipt, &found) != CHAIN_OK) {
            fail("%s", "unreadable receipt");
            return;
        }
        if (!found)
            continue;
        bool ok = receipt.success && receipt.has_contract_address;
        d->address[i] = receipt.contract_address;
        d->block[i] = receipt.block_number;
        chain_rpc_receipt_free(&receipt);
        if (!ok) {
            fail("the creation of %s failed on chain", contract_names[i]);
            return;
        }
        ++mined;
    }
    if (mined == NUM_CONTRACTS) {
        atomic_store(&outcome, 1);
        return;
    }
    if (++d->polls == MAX_POLLS) {
        fail("%s", "the creation transactions were not mined within two minutes");
        return;
    }
    rt_actor_timer_start(self, &d->poll_timer, POLL_INTERVAL_MS, 0);
}

static void deployer_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    deployer_t *d = rt_actor_state(self);
    if (msg->type == MSG_START) {
        chain_rpc_call_t calls[] = {
            chain_rpc_eth_chain_id(),
            chain_rpc_eth_get_transaction_count(&d->from, chain_rpc_block_tag("pending")),
            chain_rpc_eth_gas_price(), chain_rpc_eth_max_priority_fee_per_gas()};
        send_calls(self, d, calls, 4, STEP_INFO);
    } else if (msg->type == RT_MSG_TIMER) {
        poll_receipts(self, d);
    } else if (msg->type == CHAIN_RPC_MSG_REPLY) {
        const chain_rpc_reply_t *r = chain_rpc_reply(msg);
        if (r->error != CHAIN_RPC_OK) {
            fail("no answer from the node: %s", chain_rpc_strerror(r->error));
            return;
        }
        if (msg->corr == STEP_INFO)
            on_info(self, d, r);
        else if (msg->corr == STEP_ESTIMATE)
            on_estimates(self, d, r);
        else if (msg->corr == STEP_SEND && all_ok(r))
            rt_actor_timer_start(self, &d->poll_timer, POLL_INTERVAL_MS, 0);
        else if (msg->corr == STEP_RECEIPTS)
            on_receipts(self, d, r);
    } else if (msg->type == RT_MSG_STOP) {
        rt_actor_timer_cancel(self, &d->poll_timer);
    }
}

static rt_option_t options[] = {
    {"RPC_URL", NULL, "JSON-RPC URL of the chain to deploy to (http://)", false, NULL},
    {"PRIVATE_KEY", NULL, "deployer's private key, 0x + 64 hex digits (pays the gas)", true, NULL},
    {"CHAIN_ID", NULL, "expected chain id; refuse to deploy to another chain", false, NULL},
};
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Decodes the embedded hex bytecode into `d`. */
static bool load_bytecode(deployer_t *d)
{
    const char *hex[NUM_CONTRACTS] = {deploy_bytecode_IntentRegistry, deploy_bytecode_TestUSDC};
    for (int i = 0; i != NUM_CONTRACTS; ++i) {
        size_t len = strlen(hex[i]) / 2;
        d->code[i] = malloc(len);
        if (d->code[i] == NULL || chain_hex_decode(d->code[i], len, &d->code_len[i], hex[i],
                                                   strlen(hex[i]), 0) != CHAIN_OK)
            return false;
    }
    return true;
}

/* Runs the deployer actor on a runtime whose workers carry the HTTP client. */
static int run_deployer(const char *url, chain_key_t *key, uint64_t expected_chain_id)
{
    net_http_client_t *http = net_http_client_create(NULL);
    char err[256];
    const char *urls[] = {url};
    chain_rpc_t *rpc = chain_rpc_create(&(chain_rpc_config_t){.urls = urls, .num_urls = 1}, http,
                                        err, sizeof(err));
    if (rpc == NULL) {
        fprintf(stderr, "intentd deploy: RPC_URL: %s\n", err);
        net_http_client_free(http);
        return 2;
    }
    net_http_server_t *loop_only = net_http_create("127.0.0.1", 0); /* an h2o loop, no listener */
    rt_config_t config = {.workers = 1,
                          .waiter = net_http_client_waiter(http, net_http_waiter(loop_only))};
    rt_runtime_t *rt = rt_runtime_create(&config);
    if (rt == NULL || !rt_runtime_start(rt))
        rt_log_fatal("deploy", "the runtime did not start");
    chain_rpc_start(rpc, rt);
    rt_actor_t *deployer = rt_actor_spawn(rt, 0, deployer_behaviour, sizeof(deployer_t));
    deployer_t *d = rt_actor_state(deployer);
    d->rpc = rpc;
    d->key = key;
    d->from = *chain_key_address(key);
    d->expected_chain_id = expected_chain_id;
    int status = 1;
    if (!load_bytecode(d)) {
        fprintf(stderr, "intentd deploy: the embedded bytecode is not hex\n");
    } else {
        rt_actor_send(deployer, rt_msg_new(MSG_START, 0));
        while (atomic_load(&outcome) == 0) /* bounded: every step has a deadline */
            usleep(10000);
        status = atomic_load(&outcome) == 1 ? 0 : 1;
    }
    if (status == 0) {
        for (int i = 0; i != NUM_CONTRACTS; ++i) {
            char addr[CHAIN_ADDR_STR_SIZE];
            chain_addr_format(&d->address[i], addr);
            printf("export %s=%s\n", contract_env[i], addr);
        }
        /* the registry has no logs before its creation: the engine's backfills start there */
        printf("export REGISTRY_START_BLOCK=%llu\n", (unsigned long long)d->block[0]);
    } else if (failure[0] != '\0')
        fprintf(stderr, "intentd deploy: %s\n", failure);
    for (int i = 0; i != NUM_CONTRACTS; ++i)
        free(d->code[i]);
    rt_actor_send_stop(deployer);
    rt_actor_release(deployer);
    chain_rpc_stop(rpc);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    chain_rpc_free(rpc);
    net_http_client_free(http);
    net_http_free(loop_only);
    return status;
}

int deploy_main(int argc, char **argv)
{
    char err[256];
    switch (rt_config_load(options, NUM_OPTIONS, argc, argv, err, sizeof(err))) {
    case RT_CONFIG_HELP:
        rt_config_print_help(stdout, "intentd deploy",
                             "Deploys the intent registry and the test USDC (6 decimals, open "
                             "mint) and prints\ntheir addresses, and the registry's block"
                             " (REGISTRY_START_BLOCK), as export lines.",
                             options, NUM_OPTIONS);
        return 0;
    case RT_CONFIG_ERROR:
        fprintf(stderr, "intentd deploy: %s\n", err);
        return 2;
    case RT_CONFIG_OK:
        break;
    }
    const char *url = options[0].value, *key_hex = options[1].value;
    int64_t chain_id = 0;
    if (url == NULL || key_hex == NULL) {
        fprintf(stderr, "intentd deploy: RPC_URL and PRIVATE_KEY are required\n");
        return 2;
    }
    if (!rt_config_int(&options[2], 1, INT64_MAX, &chain_id, err, sizeof(err))) {
        fprintf(stderr, "intentd deploy: %s\n", err);
        return 2;
    }
    chain_key_t *key;
    if (chain_key_from_hex(&key, key_hex, strlen(key_hex)) != CHAIN_OK) {
        fprintf(stderr, "intentd deploy: PRIVATE_KEY is not a valid secp256k1 key\n");
        return 2;
    }
    int status = run_deployer(url, key, (uint64_t)chain_id);
    chain_key_free(key);
    return status;
}
