/* See engine_env.h. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "chain/abi.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/rfc3339.h"
#include "chain/rpc_codec.h"
#include "engine_env.h"

anvil_t engine_anvil;
char engine_registry[43], engine_usdc[43];
uint64_t engine_registry_block;
/* putenv keeps the pointers */
static char env_rpc[128], env_registry[80], env_usdc[80], env_start[64];
static const char *const *server_env;

void engine_chain_start(const char *const *anvil_args)
{
    cr_assert(anvil_start(&engine_anvil, anvil_args), "anvil did not start");
    snprintf(env_rpc, sizeof(env_rpc), "RPC_URL=%s", engine_anvil.url);
    char cmd[512], out[1024] = "";
    snprintf(cmd, sizeof(cmd), "PRIVATE_KEY=0x%s %s deploy --rpc-url %s --chain-id 31337 2>&1",
             ENGINE_DEV0_KEY, INTENTD_BIN, engine_anvil.url);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "intentd deploy failed: %s", out);
    const char *r = strstr(out, "export INTENT_CONTRACT_ADDRESS="),
               *u = strstr(out, "export USDC_ADDRESS="),
               *b = strstr(out, "export REGISTRY_START_BLOCK=");
    cr_assert(r != NULL && u != NULL && b != NULL, "%s", out);
    engine_registry_block = strtoull(b + strlen("export REGISTRY_START_BLOCK="), NULL, 10);
    snprintf(env_start, sizeof(env_start), "REGISTRY_START_BLOCK=%llu",
             (unsigned long long)engine_registry_block);
    memcpy(engine_registry, r + strlen("export INTENT_CONTRACT_ADDRESS="), 42);
    memcpy(engine_usdc, u + strlen("export USDC_ADDRESS="), 42);
    snprintf(env_registry, sizeof(env_registry), "INTENT_CONTRACT_ADDRESS=%s", engine_registry);
    snprintf(env_usdc, sizeof(env_usdc), "USDC_ADDRESS=%s", engine_usdc);
}

void engine_teardown(void)
{
    kill_leftover_server();
    anvil_stop(&engine_anvil);
}

static const char *base_env[] = {env_rpc,
                                 env_registry,
                                 env_usdc,
                                 env_start,
                                 "PRIVATE_KEY=0x" ENGINE_DEV0_KEY,
                                 "ENGINE_TEST_CLOCK=1",
                                 "GAS_REFRESH_MS=500",
                                 "API_RATE_LIMIT=100000000",
                                 "USER_RATE_LIMIT=100000000",
                                 NULL};

/* the base environment and the test's, for start_server_env */
static const char *all_env[32];

void engine_server_start(const char *const *extra_env)
{
    size_t n = 0;
    for (size_t i = 0; base_env[i] != NULL; ++i)
        all_env[n++] = base_env[i];
    for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL && n + 1 < 32; ++i)
        all_env[n++] = extra_env[i];
    all_env[n] = NULL;
    server_env = all_env;
    start_server_env(all_env);
}

void engine_server_restart(void)
{
    cr_assert_eq(server_pid, 0, "a server still runs");
    restart_server_env(server_env);
}

void engine_server_kill(void)
{
    cr_assert_gt(server_pid, 0);
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
}

/* ---- the chain ---- */

json_t *engine_rpc(const char *method, const char *params)
{
    static char request[8192], answer[8 << 20];
    snprintf(request, sizeof(request),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}", method, params);
    cr_assert_gt(http_post_blocking(engine_anvil.port, request, answer, sizeof(answer)), 0, "%s",
                 method);
    json_t *reply = json_loads(answer, 0, NULL);
    json_t *result = json_incref(json_object_get(reply, "result"));
    cr_assert_not_null(result, "%s: %s", method, answer);
    json_decref(reply);
    return result;
}

void engine_transact(const char *from, const char *to, const uint8_t *data, size_t len)
{
    char hex[1024], params[2048];
    chain_hex_encode(hex, sizeof(hex), data, len, CHAIN_HEX_0X);
    snprintf(params, sizeof(params), "[{\"from\":\"%s\",\"to\":\"%s\",\"data\":\"%s\"}]", from, to,
             hex);
    json_t *hash = engine_rpc("eth_sendTransaction", params);
    snprintf(params, sizeof(params), "[\"%s\"]", json_string_value(hash));
    json_t *receipt = engine_rpc("eth_getTransactionReceipt", params);
    for (int i = 0; i != 200 && !json_is_object(receipt); ++i) { /* interval mining: wait */
        json_decref(receipt);
        usleep(50000);
        receipt = engine_rpc("eth_getTransactionReceipt", params);
    }
    cr_assert_str_eq(json_string_value(json_object_get(receipt, "status")), "0x1",
                     "transaction to %s reverted", to);
    json_decref(receipt);
    json_decref(hash);
}

void engine_mint(const char *owner, uint64_t amount)
{
    chain_addr_t to;
    chain_addr_parse(&to, owner, strlen(owner));
    uint8_t data[4 + 64] = {0};
    chain_abi_selector("mint(address,uint256)", data);
    memcpy(data + 4 + 12, to.bytes, 20);
    chain_u256_t v = chain_u256_from_u64(amount);
    chain_u256_to_be(&v, data + 36);
    engine_transact(ENGINE_RECIPIENT, engine_usdc, data, sizeof(data));
}

void engine_approve(const char *owner, uint64_t amount)
{
    chain_addr_t spender;
    chain_addr_parse(&spender, engine_registry, strlen(engine_registry));
    uint8_t data[4 + 64];
    size_t len;
    chain_u256_t v = chain_u256_from_u64(amount);
    cr_assert_eq(chain_abi_approve(data, sizeof(data), &len, &spender, &v), CHAIN_OK);
    engine_transact(owner, engine_usdc, data, len);
}

static uint64_t call_u64(const char *to, const uint8_t *data, size_t len)
{
    char hex[256], params[512];
    chain_hex_encode(hex, sizeof(hex), data, len, CHAIN_HEX_0X);
    snprintf(params, sizeof(params), "[{\"to\":\"%s\",\"data\":\"%s\"},\"latest\"]", to, hex);
    json_t *r = engine_rpc("eth_call", params);
    uint8_t out[32];
    size_t out_len;
    const char *s = json_string_value(r);
    cr_assert_eq(chain_hex_decode(out, sizeof(out), &out_len, s, strlen(s), CHAIN_HEX_0X_OPTIONAL),
                 CHAIN_OK);
    uint64_t v;
    cr_assert_eq(chain_abi_decode_uint(out, out_len, UINT64_MAX, &v), CHAIN_OK);
    json_decref(r);
    return v;
}

uint64_t engine_usdc_balance(const char *addr)
{
    chain_addr_t a;
    chain_addr_parse(&a, addr, strlen(addr));
    uint8_t data[64];
    size_t len;
    chain_abi_balance_of(data, sizeof(data), &len, &a);
    return call_u64(engine_usdc, data, len);
}

uint64_t engine_executed_count(const char *on_chain_id)
{
    uint8_t id[32], data[64];
    size_t len;
    cr_assert_eq(
        chain_hex_decode_exact(id, 32, on_chain_id, strlen(on_chain_id), CHAIN_HEX_0X_OPTIONAL),
        CHAIN_OK);
    chain_abi_executed_count(data, sizeof(data), &len, id);
    return call_u64(engine_registry, data, len);
}

/* ---- the clock ---- */

int64_t engine_now(void)
{
    char body[256];
    cr_assert_eq(http("GET", "/internal/test/clock", NULL, NULL, NULL, body, sizeof(body)), 200,
                 "%s", body);
    json_t *j = json_loads(body, 0, NULL);
    int64_t now = (int64_t)json_integer_value(json_object_get(j, "now"));
    json_decref(j);
    return now;
}

void engine_advance(int64_t seconds)
{
    char params[64], body[256], payload[64];
    snprintf(params, sizeof(params), "[%lld]", (long long)seconds);
    json_decref(engine_rpc("evm_increaseTime", params));
    json_decref(engine_rpc("evm_mine", "[]"));
    snprintf(payload, sizeof(payload), "{\"advanceSeconds\":%lld}", (long long)seconds);
    cr_assert_eq(http("POST", "/internal/test/clock", NULL, NULL, payload, body, sizeof(body)), 200,
                 "%s", body);
}

void engine_advance_to(int64_t at)
{
    int64_t now = engine_now();
    if (at > now)
        engine_advance(at - now);
}

void engine_set_offset(int64_t total_s)
{
    char body[256], payload[64];
    cr_assert_eq(http("GET", "/internal/test/clock", NULL, NULL, NULL, body, sizeof(body)), 200);
    json_t *j = json_loads(body, 0, NULL);
    int64_t have = (int64_t)json_integer_value(json_object_get(j, "offsetSeconds"));
    json_decref(j);
    if (total_s <= have)
        return;
    snprintf(payload, sizeof(payload), "{\"advanceSeconds\":%lld}", (long long)(total_s - have));
    cr_assert_eq(http("POST", "/internal/test/clock", NULL, NULL, payload, body, sizeof(body)), 200,
                 "%s", body);
}

const char *engine_time_text(int64_t unix_s)
{
    static char text[CHAIN_RFC3339_SIZE];
    chain_rfc3339_format(unix_s, text);
    return text;
}

/* ---- intents ---- */

static uint64_t u64_of(json_t *msg, const char *name)
{
    return strtoull(json_string_value(json_object_get(msg, name)), NULL, 10);
}

static void addr_of(json_t *msg, const char *name, chain_addr_t *out)
{
    const char *s = json_string_value(json_object_get(msg, name));
    cr_assert_eq(chain_addr_parse(out, s, strlen(s)), CHAIN_OK, "%s", name);
}

/* The owner's signature over the typedData's message, as 0x hex. */
static void sign_typed(const char *key_hex, json_t *typed, char out[133])
{
    json_t *msg = json_object_get(typed, "message");
    chain_intent_t t;
    memset(&t, 0, sizeof(t));
    addr_of(msg, "owner", &t.owner);
    addr_of(msg, "token", &t.token);
    addr_of(msg, "recipient", &t.recipient);
    const char *amount = json_string_value(json_object_get(msg, "amount"));
    cr_assert_eq(chain_u256_from_dec(&t.amount, amount, strlen(amount)), CHAIN_OK);
    t.min_interval = u64_of(msg, "minInterval");
    t.valid_after = u64_of(msg, "validAfter");
    t.valid_until = u64_of(msg, "validUntil");
    t.max_executions = (uint32_t)u64_of(msg, "maxExecutions");
    const char *salt = json_string_value(json_object_get(msg, "salt"));
    cr_assert_eq(chain_hex_decode_exact(t.salt, 32, salt, strlen(salt), CHAIN_HEX_0X_OPTIONAL),
                 CHAIN_OK);
    sign_intent_terms(key_hex, &t, engine_registry, out);
}

json_t *engine_create_intent(const char *token, const char *key_hex, const char *body, char id[37])
{
    static char answer[65536];
    cr_assert_eq(http("POST", "/api/intents", token, NULL, body, answer, sizeof(answer)), 201, "%s",
                 answer);
    json_t *intent = json_loads(answer, 0, NULL);
    snprintf(id, 37, "%s", json_string_value(json_object_get(intent, "id")));
    char sig[133], path[128], payload[256];
    sign_typed(key_hex, json_object_get(intent, "typedData"), sig);
    json_decref(intent);
    snprintf(path, sizeof(path), "/api/intents/%s/signature", id);
    snprintf(payload, sizeof(payload), "{\"signature\":\"%s\"}", sig);
    cr_assert_eq(http("POST", path, token, NULL, payload, answer, sizeof(answer)), 200, "%s",
                 answer);
    intent = json_loads(answer, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(intent, "status")), "active", "%s", answer);
    return intent;
}

json_t *engine_get_intent(const char *token, const char *id)
{
    static char answer[65536];
    char path[128];
    snprintf(path, sizeof(path), "/api/intents/%s", id);
    cr_assert_eq(http("GET", path, token, NULL, NULL, answer, sizeof(answer)), 200, "%s", answer);
    return json_loads(answer, 0, NULL);
}

static void field_text(json_t *v, char *out, size_t cap)
{
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (v == NULL || json_is_null(v))
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "?");
}

bool engine_wait_field(const char *token, const char *id, const char *field, const char *value,
                       int timeout_ms)
{
    char text[256];
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        json_t *in = engine_get_intent(token, id);
        field_text(json_object_get(in, field), text, sizeof(text));
        json_decref(in);
        if (strcmp(text, value) == 0)
            return true;
        usleep(50000);
    }
    return false;
}

bool engine_wait_db(const char *sql, const char *value, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (strcmp(db_value(sql), value) == 0)
            return true;
        usleep(50000);
    }
    return false;
}

void engine_wait_count(const char *token, const char *id, int count, int timeout_ms)
{
    char text[16];
    snprintf(text, sizeof(text), "%d", count);
    cr_assert(engine_wait_field(token, id, "executionCount", text, timeout_ms),
              "intent %s did not reach executionCount %d", id, count);
}

void engine_sign_daily(const char *key_hex, int64_t start_at, uint64_t amount, uint8_t salt_byte,
                       char out[133])
{
    chain_intent_t terms = {.min_interval = 86400 - 300,
                            .valid_after = (uint64_t)start_at,
                            .valid_until = CHAIN_INTENT_NO_END,
                            .amount = chain_u256_from_u64(amount)};
    chain_key_t *k = key(key_hex);
    terms.owner = *chain_key_address(k);
    chain_key_free(k);
    chain_addr_parse(&terms.token, engine_usdc, strlen(engine_usdc));
    chain_addr_parse(&terms.recipient, ENGINE_RECIPIENT, strlen(ENGINE_RECIPIENT));
    memset(terms.salt, salt_byte, sizeof(terms.salt));
    sign_intent_terms(key_hex, &terms, engine_registry, out);
}
