/* GET /api/user/balance, GET /api/stats/gas-prices and GET /api/stats/overview through real
 * HTTP against the intentd binary, a real PostgreSQL and a private anvil with the registry and
 * the test USDC deployed by `intentd deploy`: balances and allowances as the chain holds them
 * after mint and approve, gas prices that follow anvil's base fee, 503 when the chain cannot be
 * reached, and statistics that count only the user's own executions of the last 7 days. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "chain/abi.h"
#include "chain/hex.h"
#include "chain/rpc_codec.h"
#include "chain/u256.h"
#include "support/anvil.h"
#include "support/api_server.h"

/* anvil's dev account 0 (deploys) and 3 (mints; a third user) */
#define DEV0_KEY "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define KEY_C "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
#define RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"

static anvil_t anvil;
static char body[65536];
static char registry[43], usdc[43];
/* putenv keeps pointers: these live as long as the test */
static char env_rpc[128], env_registry[80], env_usdc[80];

static void teardown(void)
{
    kill_leftover_server();
    anvil_stop(&anvil);
}

static const char *str(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

/* ---- the chain, driven directly ---- */

/* One JSON-RPC call to the test's anvil; returns its "result" (decref it), asserting there is
 * one. `params` is a JSON array text. */
static json_t *anvil_rpc(const char *method, const char *params)
{
    char request[4096], answer[65536];
    snprintf(request, sizeof(request),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}", method, params);
    cr_assert_gt(http_post_blocking(anvil.port, request, answer, sizeof(answer)), 0, "%s", method);
    json_t *reply = json_loads(answer, 0, NULL);
    json_t *result = json_incref(json_object_get(reply, "result"));
    cr_assert_not_null(result, "%s: %s", method, answer);
    json_decref(reply);
    return result;
}

/* A quantity result as 256 bits. */
static chain_u256_t anvil_quantity(const char *method, const char *params)
{
    json_t *r = anvil_rpc(method, params);
    chain_u256_t v;
    const char *s = json_string_value(r);
    cr_assert_not_null(s);
    cr_assert_eq(chain_rpc_parse_quantity_u256(s, strlen(s), &v), CHAIN_OK, "%s", s);
    json_decref(r);
    return v;
}

/* Sends a transaction from an unlocked dev account (anvil mines it at once) and asserts that it
 * succeeded. */
static void anvil_transact(const char *from, const char *to, const uint8_t *data, size_t len)
{
    char hex[1024], params[2048];
    chain_hex_encode(hex, sizeof(hex), data, len, CHAIN_HEX_0X);
    snprintf(params, sizeof(params), "[{\"from\":\"%s\",\"to\":\"%s\",\"data\":\"%s\"}]", from, to,
             hex);
    json_t *hash = anvil_rpc("eth_sendTransaction", params);
    snprintf(params, sizeof(params), "[\"%s\"]", json_string_value(hash));
    /* anvil mines at once, but may answer the hash before the receipt is stored: poll */
    json_t *receipt = anvil_rpc("eth_getTransactionReceipt", params);
    for (int tries = 0; json_is_null(receipt) && tries != 200; ++tries, usleep(10000)) {
        json_decref(receipt);
        receipt = anvil_rpc("eth_getTransactionReceipt", params);
    }
    const char *status = str(receipt, "status");
    char *text = json_dumps(receipt, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert(status != NULL && strcmp(status, "0x1") == 0, "transaction to %s failed: %s", to,
              text);
    free(text);
    json_decref(receipt);
    json_decref(hash);
}

/* Starts a private anvil; with `deploy`, puts the registry and USDC on it with `intentd
 * deploy` and fills `registry` and `usdc`. */
static void start_chain(bool deploy)
{
    cr_assert(anvil_start(&anvil, NULL), "anvil did not start");
    snprintf(env_rpc, sizeof(env_rpc), "RPC_URL=%s", anvil.url);
    if (!deploy)
        return;
    char cmd[512], out[1024] = "";
    snprintf(cmd, sizeof(cmd), "PRIVATE_KEY=0x%s %s deploy --rpc-url %s --chain-id 31337 2>&1",
             DEV0_KEY, INTENTD_BIN, anvil.url);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "intentd deploy failed: %s", out);
    const char *r = strstr(out, "export INTENT_CONTRACT_ADDRESS="),
               *u = strstr(out, "export USDC_ADDRESS=");
    cr_assert(r != NULL && u != NULL, "%s", out);
    memcpy(registry, r + strlen("export INTENT_CONTRACT_ADDRESS="), 42);
    memcpy(usdc, u + strlen("export USDC_ADDRESS="), 42);
    snprintf(env_registry, sizeof(env_registry), "INTENT_CONTRACT_ADDRESS=%s", registry);
    snprintf(env_usdc, sizeof(env_usdc), "USDC_ADDRESS=%s", usdc);
}

/* `wei` (or base units) as the API writes them. */
static const char *units(const chain_u256_t *v, unsigned decimals)
{
    static char text[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_units(v, decimals, text);
    return text;
}

/* ---- GET /api/user/balance ---- */

static json_t *get_balance(const char *token)
{
    int status = http("GET", "/api/user/balance", token, NULL, NULL, body, sizeof(body));
    cr_assert_eq(status, 200, "%s", body);
    json_t *b = json_loads(body, 0, NULL);
    cr_assert_not_null(b, "%s", body);
    return b;
}

/* The only token of the answer, asserting it is the test USDC (the token without a contract is
 * not shown). */
static json_t *usdc_entry(json_t *balance)
{
    json_t *tokens = json_object_get(balance, "tokens");
    cr_assert_eq(json_array_size(tokens), 1, "%s", body);
    json_t *t = json_array_get(tokens, 0);
    cr_assert_str_eq(str(t, "address"), usdc);
    cr_assert_str_eq(str(t, "symbol"), "USDC");
    cr_assert_eq(json_integer_value(json_object_get(t, "decimals")), 6);
    return t;
}

static void mint_and_approve(const char *owner, const char *minter)
{
    chain_addr_t to, spender;
    chain_addr_parse(&to, owner, strlen(owner));
    chain_addr_parse(&spender, registry, strlen(registry));
    uint8_t data[4 + 64];
    size_t len;
    /* mint(address,uint256): open on the test token; 1234.5 USDC */
    chain_abi_selector("mint(address,uint256)", data);
    memset(data + 4, 0, 64);
    memcpy(data + 4 + 12, to.bytes, 20);
    chain_u256_t amount = chain_u256_from_u64(1234500000);
    chain_u256_to_be(&amount, data + 36);
    anvil_transact(minter, usdc, data, sizeof(data));
    /* the owner approves 250.25 USDC to the registry */
    amount = chain_u256_from_u64(250250000);
    cr_assert_eq(chain_abi_approve(data, sizeof(data), &len, &spender, &amount), CHAIN_OK);
    anvil_transact(owner, usdc, data, len);
}

Test(api_account, balance_reads_native_tokens_and_allowance_from_the_chain, .timeout = 120,
     .fini = teardown)
{
    start_chain(true);
    /* NOPE has no contract: it answers no amount, so it is left out (usdc_entry checks) */
    const char *const env[] = {env_rpc,
                               env_registry,
                               env_usdc,
                               "NATIVE_SYMBOL=TST",
                               "TOKENS=NOPE:0x000000000000000000000000000000000000dEaD:18",
                               NULL};
    start_server_env(env);
    char token_a[4096], token_b[4096], addr_a[CHAIN_ADDR_STR_SIZE], addr_b[CHAIN_ADDR_STR_SIZE],
        addr_c[CHAIN_ADDR_STR_SIZE], params[128];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    address_of(KEY_A, addr_a);
    address_of(KEY_B, addr_b);
    address_of(KEY_C, addr_c);

    json_t *b = get_balance(token_a);
    cr_assert_str_eq(str(b, "address"), addr_a);
    cr_assert_eq(json_integer_value(json_object_get(b, "chainId")), 31337);
    cr_assert_str_eq(str(json_object_get(b, "native"), "symbol"), "TST");
    cr_assert_str_eq(str(json_object_get(b, "native"), "balance"), "10000"); /* anvil's grant */
    cr_assert_str_eq(str(usdc_entry(b), "balance"), "0");
    cr_assert_str_eq(str(usdc_entry(b), "allowance"), "0");
    json_decref(b);

    mint_and_approve(addr_a, addr_c);
    b = get_balance(token_a);
    cr_assert_str_eq(str(usdc_entry(b), "balance"), "1234.5");
    cr_assert_str_eq(str(usdc_entry(b), "allowance"), "250.25");
    /* the approval cost A gas: the native balance is the chain's, to the wei */
    snprintf(params, sizeof(params), "[\"%s\",\"latest\"]", addr_a);
    chain_u256_t wei = anvil_quantity("eth_getBalance", params);
    cr_assert_str_eq(str(json_object_get(b, "native"), "balance"), units(&wei, 18));
    cr_assert_str_neq(units(&wei, 18), "10000");
    json_decref(b);

    /* B sees B's wallet only */
    b = get_balance(token_b);
    cr_assert_str_eq(str(b, "address"), addr_b);
    cr_assert_str_eq(str(usdc_entry(b), "balance"), "0");
    cr_assert_str_eq(str(usdc_entry(b), "allowance"), "0");
    json_decref(b);

    cr_assert_eq(http("GET", "/api/user/balance", NULL, NULL, NULL, body, sizeof(body)), 401);
    cr_assert_eq(http("GET", "/api/user/balance", "not.a.token", NULL, NULL, body, sizeof(body)),
                 401);
    stop_server();
}

/* ---- GET /api/stats/gas-prices ---- */

/* Polls the gas prices (bounded) until their block is `block`; returns them. */
static json_t *gas_prices_at(uint64_t block)
{
    for (int tries = 0; tries != 300; ++tries, usleep(50000)) {
        int status = http("GET", "/api/stats/gas-prices", NULL, NULL, NULL, body, sizeof(body));
        cr_assert(status == 200 || status == 503, "%d %s", status, body);
        json_t *g = status == 200 ? json_loads(body, 0, NULL) : NULL;
        if (g != NULL && (uint64_t)json_integer_value(json_object_get(g, "blockNumber")) == block)
            return g;
        json_decref(g);
    }
    cr_assert_fail("gas prices never reached block %llu: %s", (unsigned long long)block, body);
    return NULL;
}

/* Asserts that `g` says what anvil says now: the next block's base fee, the node's suggested
 * tip (its recent blocks are empty, so no tip can be learnt from them) and their sum. */
static void assert_consistent_with_anvil(json_t *g)
{
    json_t *fh = anvil_rpc("eth_feeHistory", "[\"0x1\",\"latest\",[50]]");
    const char *next = json_string_value(json_array_get(json_object_get(fh, "baseFeePerGas"), 1));
    chain_u256_t base, tip = anvil_quantity("eth_maxPriorityFeePerGas", "[]"), sum;
    cr_assert_eq(chain_rpc_parse_quantity_u256(next, strlen(next), &base), CHAIN_OK);
    json_decref(fh);
    cr_assert_str_eq(str(g, "baseFeeGwei"), units(&base, 9));
    cr_assert_str_eq(str(g, "priorityFeeGwei"), units(&tip, 9));
    chain_u256_add(&sum, &base, &tip);
    cr_assert_str_eq(str(g, "gasPriceGwei"), units(&sum, 9));
    cr_assert_eq(json_integer_value(json_object_get(g, "chainId")), 31337);
    const char *updated = str(g, "updatedAt");
    cr_assert(updated != NULL && strlen(updated) == 20 && updated[19] == 'Z', "%s", updated);
}

Test(api_account, gas_prices_follow_the_chain_base_fee, .timeout = 120, .fini = teardown)
{
    start_chain(false);
    /* polling below must not meet the per-IP rate limit */
    const char *const env[] = {env_rpc, "GAS_REFRESH_MS=200", "API_RATE_LIMIT=0", NULL};
    start_server_env(env);
    json_t *g = gas_prices_at(0);
    assert_consistent_with_anvil(g);
    json_decref(g);

    /* the base fee jumps to 50 gwei for the next block; once mined, the oracle follows */
    json_decref(anvil_rpc("anvil_setNextBlockBaseFeePerGas", "[\"0xba43b7400\"]"));
    json_decref(anvil_rpc("evm_mine", "[]"));
    g = gas_prices_at(1);
    assert_consistent_with_anvil(g);
    chain_u256_t base, floor_wei = chain_u256_from_u64(40000000000ull);
    const char *text = str(g, "baseFeeGwei");
    cr_assert_eq(chain_u256_parse_gwei(&base, text, strlen(text)), CHAIN_OK);
    cr_assert_gt(chain_u256_cmp(&base, &floor_wei), 0, "base fee %s gwei", text);
    json_decref(g);
    stop_server();
}

Test(api_account, an_unreachable_chain_answers_503, .timeout = 120, .fini = kill_leftover_server)
{
    static char dead_rpc[64];
    snprintf(dead_rpc, sizeof(dead_rpc), "RPC_URL=http://127.0.0.1:%d", free_port());
    const char *const env[] = {dead_rpc, "GAS_REFRESH_MS=200", NULL};
    start_server_env(env);
    char token[4096];
    session(KEY_A, token, sizeof(token));
    cr_assert_eq(http("GET", "/api/user/balance", token, NULL, NULL, body, sizeof(body)), 503, "%s",
                 body);
    cr_assert_not_null(strstr(body, "\"status\":503"), "%s", body);
    cr_assert_eq(http("GET", "/api/stats/gas-prices", NULL, NULL, NULL, body, sizeof(body)), 503,
                 "%s", body);
    cr_assert_not_null(strstr(body, "\"status\":503"), "%s", body);
    /* the rest of the API does not care */
    cr_assert_eq(http("GET", "/api/stats/overview", token, NULL, NULL, body, sizeof(body)), 200,
                 "%s", body);
    stop_server();
}

/* ---- GET /api/stats/overview ---- */

/* Creates an intent of `amount` USDC for the session's user; returns its id. */
static void create_intent(const char *token, const char *amount, char id[37])
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
             "\"amount\":\"%s\",\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
             amount);
    cr_assert_eq(http("POST", "/api/intents", token, NULL, json, body, sizeof(body)), 201, "%s",
                 body);
    json_t *intent = json_loads(body, 0, NULL);
    snprintf(id, 37, "%s", str(intent, "id"));
    json_decref(intent);
}

/* Moves an intent to `status` (with a signature, as the schema wants of a signed intent). */
static void set_status(const char *id, const char *status, const char *reason)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "UPDATE intents SET status = '%s', delay_reason = %s%s%s,"
             " signature = decode(repeat('11', 65), 'hex') WHERE id = '%s'",
             status, reason != NULL ? "'" : "", reason != NULL ? reason : "NULL",
             reason != NULL ? "'" : "", id);
    db_exec(db_url, sql);
}

/* Inserts an execution of `intent`, created (and confirmed, when it is) `days_ago` days ago. */
static void add_execution(const char *intent, int period, const char *status, const char *amount,
                          int days_ago)
{
    bool confirmed = strcmp(status, "confirmed") == 0;
    char at[64], sql[1024];
    snprintf(at, sizeof(at), "now() - interval '%d days'", days_ago);
    snprintf(sql, sizeof(sql),
             "INSERT INTO executions (intent_id, period, status, amount, executor, nonce, raw_tx,"
             " tx_hash, block_number, error, created_at, confirmed_at) VALUES ('%s', %d, '%s', %s,"
             " decode(repeat('22', 20), 'hex'), %d, '\\x01',"
             " decode(md5('%s%d') || md5('%d'), 'hex'), %s, %s, %s, %s)",
             intent, period, status, amount, period, intent, period, period,
             confirmed ? "7" : "NULL", strcmp(status, "failed") == 0 ? "'reverted'" : "NULL", at,
             confirmed ? at : "NULL");
    db_exec(db_url, sql);
}

static json_t *get_overview(const char *token)
{
    cr_assert_eq(http("GET", "/api/stats/overview", token, NULL, NULL, body, sizeof(body)), 200,
                 "%s", body);
    json_t *o = json_loads(body, 0, NULL);
    cr_assert_not_null(o, "%s", body);
    return o;
}

static json_int_t num(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    cr_assert(json_is_integer(v), "%s is not a number: %s", name, body);
    return json_integer_value(v);
}

Test(api_account, overview_counts_only_the_users_own_last_7_days, .timeout = 60,
     .fini = kill_leftover_server)
{
    static const char usdc_fixed[] = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
    const char *const env[] = {"INTENT_CONTRACT_ADDRESS=0x5FbDB2315678afecb367f032d93F642f64180aa3",
                               "USDC_ADDRESS=0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", NULL};
    start_server_env(env);
    char token_a[4096], token_b[4096], token_c[4096], a1[37], a2[37], a3[37], b1[37];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    session(KEY_C, token_c, sizeof(token_c));
    create_intent(token_a, "100.5", a1);
    create_intent(token_a, "3", a2);
    create_intent(token_a, "4", a3); /* stays pending_signature: not active */
    create_intent(token_b, "0.000999", b1);
    set_status(a1, "active", NULL);
    set_status(a2, "delayed", "insufficient_balance");
    set_status(b1, "active", NULL);
    add_execution(a1, 0, "confirmed", "100500000", 1);
    add_execution(a1, 1, "confirmed", "100500000", 2);
    add_execution(a1, 2, "confirmed", "1", 8);         /* too old */
    add_execution(a1, 3, "failed", "100500000", 0);    /* failed today */
    add_execution(a1, 4, "broadcast", "100500000", 0); /* not settled */
    add_execution(a2, 0, "failed", "3000000", 10);     /* too old */
    add_execution(b1, 0, "confirmed", "999", 0);       /* B's */

    json_t *o = get_overview(token_a);
    cr_assert_eq(num(o, "activeIntents"), 2, "%s", body); /* a delayed intent is active */
    cr_assert_eq(num(o, "delayedIntents"), 1, "%s", body);
    cr_assert_eq(num(o, "executedLast7d"), 2, "%s", body);
    cr_assert_eq(num(o, "failedLast7d"), 1, "%s", body);
    json_t *volume = json_object_get(o, "volumeLast7d");
    cr_assert_eq(json_array_size(volume), 1, "%s", body);
    cr_assert_str_eq(str(json_array_get(volume, 0), "token"), usdc_fixed);
    cr_assert_str_eq(str(json_array_get(volume, 0), "symbol"), "USDC");
    cr_assert_str_eq(str(json_array_get(volume, 0), "amount"), "201");
    json_decref(o);

    o = get_overview(token_b);
    cr_assert_eq(num(o, "activeIntents"), 1);
    cr_assert_eq(num(o, "delayedIntents"), 0);
    cr_assert_eq(num(o, "executedLast7d"), 1);
    cr_assert_eq(num(o, "failedLast7d"), 0);
    cr_assert_str_eq(str(json_array_get(json_object_get(o, "volumeLast7d"), 0), "amount"),
                     "0.000999", "%s", body);
    json_decref(o);

    o = get_overview(token_c); /* nothing of C's */
    cr_assert_eq(num(o, "activeIntents") + num(o, "delayedIntents") + num(o, "executedLast7d") +
                     num(o, "failedLast7d"),
                 0, "%s", body);
    cr_assert_eq(json_array_size(json_object_get(o, "volumeLast7d")), 0, "%s", body);
    json_decref(o);

    cr_assert_eq(http("GET", "/api/stats/overview", NULL, NULL, NULL, body, sizeof(body)), 401);
    stop_server();
}
