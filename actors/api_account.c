/*
 * The chain-backed and statistics endpoints: GET /api/user/balance (the wallet's native and
 * token balances and its allowances to the intent registry, read from the chain in one JSON-RPC
 * batch), GET /api/stats/gas-prices (the gas oracle's snapshot, no I/O) and GET
 * /api/stats/overview (the user's counts and 7-day volume, one SQL statement).
 *
 * The chain is a dependency that may be down: then balances and gas prices answer 503 with
 * Retry-After, never a guess.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actors/api_internal.h"
#include "actors/gas_oracle.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "net/http_async.h"
#include "net/json.h"
#include "net/problem.h"
#include "runtime/log.h"

/* the native coin's decimals on every EVM chain */
#define NATIVE_DECIMALS 18
/* one eth_getBalance, then balanceOf and allowance per token, in one batch */
#define BALANCE_MAX_TOKENS ((CHAIN_RPC_MAX_BATCH - 1) / 2)
/* the deadline of the balance batch, retries included: a user waits for this at most */
#define BALANCE_TIMEOUT_MS 5000
/* Retry-After when the chain cannot answer */
#define CHAIN_RETRY_AFTER_S 5

static int st_overview;

void api__account_register_statements(void)
{
    /* One statement over the user's intents: the live ones by status, and the executions that
     * settled in the last 7 days (confirmed: when confirmed; failed: when it was known, which is
     * confirmed_at for a mined revert, else when it was created), with the confirmed volume
     * summed per token in base units. An active intent that is delayed is still active (api.md:
     * "delayed is an active intent whose due execution is held back"), so it counts in both. */
    st_overview = store_pg_statement(
        "stats_overview",
        "WITH mine AS (SELECT id, token, status FROM intents WHERE owner_id = $1::uuid),"
        " settled AS (SELECT e.status, e.amount, m.token FROM executions e"
        "   JOIN mine m ON m.id = e.intent_id WHERE e.status IN ('confirmed', 'failed')"
        "   AND coalesce(e.confirmed_at, e.created_at) >= now() - interval '7 days')"
        " SELECT (SELECT count(*) FROM mine WHERE status IN ('active', 'delayed')),"
        "   (SELECT count(*) FROM mine WHERE status = 'delayed'),"
        "   (SELECT count(*) FROM settled WHERE status = 'confirmed'),"
        "   (SELECT count(*) FROM settled WHERE status = 'failed'),"
        "   (SELECT coalesce(json_agg(json_build_array(encode(token, 'hex'), total::text)"
        "      ORDER BY token), '[]') FROM (SELECT token, sum(amount) AS total FROM settled"
        "      WHERE status = 'confirmed' GROUP BY token) v)");
}

static const intent_token_t *token_of(api_t *api, const chain_addr_t *addr)
{
    for (size_t i = 0; i != api->config.num_tokens; ++i)
        if (chain_addr_eq(&api->config.tokens[i].address, addr))
            return &api->config.tokens[i];
    return NULL;
}

/* ---- GET /api/user/balance ---- */

typedef struct st_balance_call_t {
    api_t *api;
    chain_addr_t wallet;
} balance_call_t;

/* True when item `i` failed because the node could not serve it now (rather than the contract
 * saying no): the whole answer is then a 503. */
static bool item_unavailable(const chain_rpc_reply_t *r, size_t i)
{
    int e = r->items[i].error;
    return e == CHAIN_RPC_ERR_RATE_LIMITED || e == CHAIN_RPC_ERR_UNAVAILABLE ||
           e == CHAIN_RPC_ERR_TIMEOUT || e == CHAIN_RPC_ERR_BUSY || e == CHAIN_RPC_ERR_SHUTDOWN ||
           e == CHAIN_RPC_ERR_BAD_RESPONSE;
}

/* Item `i` of the reply, a uint256 returned by an eth_call, as a token amount in `text`; false
 * (logged) when the contract did not answer one (no code there, a revert, short data). */
static bool token_amount(const chain_rpc_reply_t *r, size_t i, const intent_token_t *t,
                         char text[CHAIN_U256_UNITS_SIZE])
{
    size_t len, data_len;
    const char *json = chain_rpc_reply_result(r, i, &len);
    uint8_t data[64];
    chain_u256_t v;
    if (json == NULL ||
        chain_rpc_result_bytes(json, len, data, sizeof(data), &data_len) != CHAIN_OK ||
        chain_abi_decode_u256(data, data_len, &v) != CHAIN_OK) {
        rt_log_warn("api", "token %s answered no amount: %s", t->symbol,
                    json == NULL ? chain_rpc_reply_message(r, i) : "not a uint256");
        return false;
    }
    chain_u256_format_units(&v, t->decimals, text);
    return true;
}

static void answer_balance(h2o_req_t *req, const balance_call_t *st, const chain_rpc_reply_t *r)
{
    api_t *api = st->api;
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    chain_u256_t native;
    bool unavailable = json == NULL || chain_rpc_result_u256(json, len, &native) != CHAIN_OK;
    for (size_t i = 1; !unavailable && i != r->count; ++i)
        unavailable = item_unavailable(r, i);
    if (unavailable) {
        rt_log_debug("api", "balance: chain unavailable (%s)",
                     chain_rpc_strerror(r->error != CHAIN_RPC_OK ? r->error : r->items[0].error));
        net_problem_unavailable(req, CHAIN_RETRY_AFTER_S);
        return;
    }
    json_t *tokens = json_array();
    for (size_t i = 0; i != api->config.num_tokens; ++i) {
        const intent_token_t *t = &api->config.tokens[i];
        char address[CHAIN_ADDR_STR_SIZE], balance[CHAIN_U256_UNITS_SIZE] = "0",
                                           allowance[CHAIN_U256_UNITS_SIZE] = "0";
        /* a token whose contract answers no amount is a configuration fault (logged): it is
         * left out rather than shown with a made-up figure; without a registry nothing can
         * have been approved to it */
        if (!token_amount(r, 1 + 2 * i, t, balance) ||
            (api->config.has_registry && !token_amount(r, 2 + 2 * i, t, allowance)))
            continue;
        chain_addr_format(&t->address, address);
        json_array_append_new(tokens, json_pack("{s:s, s:s, s:i, s:s, s:s}", "address", address,
                                                "symbol", t->symbol, "decimals", (int)t->decimals,
                                                "balance", balance, "allowance", allowance));
    }
    char wallet[CHAIN_ADDR_STR_SIZE], amount[CHAIN_U256_UNITS_SIZE];
    chain_addr_format(&st->wallet, wallet);
    chain_u256_format_units(&native, NATIVE_DECIMALS, amount);
    const char *symbol = api->config.native_symbol != NULL ? api->config.native_symbol : "ETH";
    net_json_send(req, 200,
                  json_pack("{s:s, s:I, s:{s:s, s:s}, s:o}", "address", wallet, "chainId",
                            (json_int_t)api->config.chain_id, "native", "symbol", symbol, "balance",
                            amount, "tokens", tokens));
}

static void balance_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    if (msg->type != CHAIN_RPC_MSG_REPLY)
        return;
    if (req != NULL) /* else the client left: nothing to answer */
        answer_balance(req, net_http_async_state(call), chain_rpc_reply(msg));
    net_http_async_end(call);
}

/* eth_call of ERC-20 `data` on `token`, at the latest block. */
static chain_rpc_call_t erc20_call(const chain_addr_t *token, const uint8_t *data, size_t len)
{
    chain_rpc_tx_t tx = {.to = token, .data = data, .data_len = len};
    return chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest"));
}

/* The batch: eth_getBalance, then balanceOf and allowance(wallet, registry) per token (the
 * allowance slot is a second balanceOf when there is no registry, so that indices stay fixed). */
static size_t balance_calls(api_t *api, const chain_addr_t *wallet, chain_rpc_call_t *calls)
{
    char hex[2 + 2 * CHAIN_ADDR_LEN + 1];
    chain_hex_encode(hex, sizeof(hex), wallet->bytes, CHAIN_ADDR_LEN, CHAIN_HEX_0X);
    size_t n = 0;
    calls[n++] = chain_rpc_call("eth_getBalance", json_pack("[ss]", hex, "latest"));
    for (size_t i = 0; i != api->config.num_tokens; ++i) {
        const chain_addr_t *token = &api->config.tokens[i].address;
        uint8_t data[4 + 2 * 32];
        size_t len;
        chain_abi_balance_of(data, sizeof(data), &len, wallet);
        calls[n++] = erc20_call(token, data, len);
        if (api->config.has_registry)
            chain_abi_allowance(data, sizeof(data), &len, wallet, &api->config.registry);
        calls[n++] = erc20_call(token, data, len);
    }
    return n;
}

static int on_balance(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    if (api->config.rpc == NULL)
        return net_problem_unavailable(req, 60); /* RPC_URL is not configured */
    net_http_async_t *call = net_http_async_begin(req, balance_answered, sizeof(balance_call_t));
    balance_call_t *st = net_http_async_state(call);
    st->api = api;
    st->wallet = user.wallet;
    chain_rpc_call_t calls[1 + 2 * BALANCE_MAX_TOKENS];
    size_t n = balance_calls(api, &user.wallet, calls);
    int ret = chain_rpc_send(net_http_async_actor(call), api->config.rpc, calls, n,
                             BALANCE_TIMEOUT_MS, 0);
    if (ret != CHAIN_RPC_OK) { /* busy or stopping: no reply will come */
        net_http_async_end(call);
        if (ret == CHAIN_RPC_ERR_INVALID)
            return net_problem_internal(req);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

/* ---- GET /api/stats/gas-prices ---- */

static int on_gas_prices(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    gas_snapshot_t s;
    if (api->config.gas == NULL || !gas_oracle_read(api->config.gas, &s))
        return net_problem_unavailable(req, CHAIN_RETRY_AFTER_S); /* no chain, or unreachable */
    chain_u256_t price;
    if (chain_u256_add(&price, &s.base_fee_wei, &s.priority_fee_wei))
        return net_problem_internal(req); /* 2^256 wei: a node answering nonsense */
    char base[CHAIN_U256_UNITS_SIZE], tip[CHAIN_U256_UNITS_SIZE], total[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_gwei(&s.base_fee_wei, base);
    chain_u256_format_gwei(&s.priority_fee_wei, tip);
    chain_u256_format_gwei(&price, total);
    return net_json_send(
        req, 200,
        json_pack("{s:I, s:s, s:s, s:s, s:I, s:o}", "chainId", (json_int_t)api->config.chain_id,
                  "baseFeeGwei", base, "priorityFeeGwei", tip, "gasPriceGwei", total, "blockNumber",
                  (json_int_t)s.block_number, "updatedAt", api__time_json(s.updated_at_ms / 1000)));
}

/* ---- GET /api/stats/overview ---- */

/* The volume list from the statement's JSON ([["<token hex>", "<base units>"], ...]); tokens
 * the registry no longer knows are left out (their decimals are unknown) and logged. */
static json_t *volume_json(api_t *api, const char *text)
{
    json_t *rows = json_loads(text, 0, NULL), *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *hex = json_string_value(json_array_get(row, 0));
        const char *sum = json_string_value(json_array_get(row, 1));
        chain_addr_t addr;
        chain_u256_t amount;
        const intent_token_t *t = NULL;
        if (hex == NULL || sum == NULL ||
            chain_hex_decode_exact(addr.bytes, sizeof(addr.bytes), hex, strlen(hex), 0) !=
                CHAIN_OK ||
            (t = token_of(api, &addr)) == NULL ||
            chain_u256_from_dec(&amount, sum, strlen(sum)) != CHAIN_OK) {
            rt_log_warn("api", "overview: volume of token %s not shown", hex != NULL ? hex : "?");
            continue;
        }
        char address[CHAIN_ADDR_STR_SIZE], units[CHAIN_U256_UNITS_SIZE];
        chain_addr_format(&t->address, address);
        chain_u256_format_units(&amount, t->decimals, units);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "token", address, "symbol",
                                             t->symbol, "amount", units));
    }
    json_decref(rows);
    return out;
}

static void overview_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    api_t *api = *(api_t **)net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req != NULL && r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (req != NULL) {
        const PGresult *res = r->results[0];
        net_json_send(req, 200,
                      json_pack("{s:I, s:I, s:I, s:I, s:o}", "activeIntents",
                                (json_int_t)atoll(PQgetvalue(res, 0, 0)), "delayedIntents",
                                (json_int_t)atoll(PQgetvalue(res, 0, 1)), "executedLast7d",
                                (json_int_t)atoll(PQgetvalue(res, 0, 2)), "failedLast7d",
                                (json_int_t)atoll(PQgetvalue(res, 0, 3)), "volumeLast7d",
                                volume_json(api, PQgetvalue(res, 0, 4))));
    }
    net_http_async_end(call);
}

static int on_overview(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, overview_answered, sizeof(api_t *));
    *(api_t **)net_http_async_state(call) = api;
    const char *params[] = {user.id};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_overview, 1, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

void api__account_routes(api_t *api, net_router_t *router)
{
    if (api->config.num_tokens > BALANCE_MAX_TOKENS)
        rt_log_fatal("api", "%zu tokens: one balance batch holds at most %d",
                     api->config.num_tokens, BALANCE_MAX_TOKENS);
    static const api_route_t routes[] = {
        {"GET", "/api/user/balance", on_balance},
        {"GET", "/api/stats/gas-prices", on_gas_prices},
        {"GET", "/api/stats/overview", on_overview},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
}
