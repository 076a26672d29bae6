/* POST /api/intents, GET /api/intents/:id and GET /api/intents through real HTTP against the
 * intentd binary and a real PostgreSQL: pending and inline-signed creation, the signed terms as
 * api.md derives them, ownership (another user's intent is 404), rule violations that change
 * nothing, pagination that returns every item once, and creates stored by one group statement
 * exactly as a lone create stores them. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "chain/abi.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/key.h"
#include "chain/rfc3339.h"
#include "support/api_server.h"

#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
#define RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
#define SALT "0x1111111111111111111111111111111111111111111111111111111111111111"

static const char *const env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY, "USDC_ADDRESS=" USDC, NULL};

static char body[65536];

static int post_intent(const char *token, const char *json)
{
    return http("POST", "/api/intents", token, NULL, json, body, sizeof(body));
}

static const char *str(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

Test(api_intents, create_pending_then_read_it_back_owned, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token_a[4096], token_b[4096];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    int status = post_intent(token_a, "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\","
                                      "\"token\":\"USDC\",\"amount\":\"100.5\","
                                      "\"frequency\":\"daily\","
                                      "\"startAt\":\"2030-01-01T09:00:00Z\"}");
    cr_assert_eq(status, 201, "%s", body);
    json_t *intent = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(intent, "status"), "pending_signature");
    cr_assert_str_eq(str(intent, "amount"), "100.5");
    cr_assert_str_eq(str(intent, "tokenSymbol"), "USDC");
    cr_assert_str_eq(str(intent, "token"), USDC);
    cr_assert_str_eq(str(intent, "recipient"), RECIPIENT);
    cr_assert_str_eq(str(intent, "nextExecution"), "2030-01-01T09:00:00Z");
    cr_assert(json_is_null(json_object_get(intent, "maxExecutions")));
    json_t *typed = json_object_get(intent, "typedData");
    cr_assert_str_eq(str(json_object_get(typed, "domain"), "chainId"), "31337");
    cr_assert_str_eq(str(json_object_get(typed, "domain"), "verifyingContract"), REGISTRY);
    cr_assert_str_eq(str(json_object_get(typed, "message"), "amount"), "100500000");
    cr_assert_str_eq(str(json_object_get(typed, "message"), "minInterval"), "86100");
    char path[128];
    snprintf(path, sizeof(path), "/api/intents/%s", str(intent, "id"));
    cr_assert_eq(http("GET", path, token_a, NULL, NULL, body, sizeof(body)), 200, "%s", body);
    json_t *read = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(read, "onChainId"), str(intent, "onChainId"));
    cr_assert(json_is_array(json_object_get(read, "executions")));
    /* another user's intent does not exist for them */
    cr_assert_eq(http("GET", path, token_b, NULL, NULL, body, sizeof(body)), 404);
    cr_assert_eq(http("GET", "/api/intents/not-a-uuid", token_a, NULL, NULL, body, sizeof(body)),
                 404);
    cr_assert_eq(http("GET", "/api/intents", token_b, NULL, NULL, body, sizeof(body)), 200);
    cr_assert_not_null(strstr(body, "\"items\":[]"), "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM audit_log WHERE action = 'intent.create'"),
                     "1");
    json_decref(read);
    json_decref(intent);
    stop_server();
}

/* The owner's EIP-712 signature over the terms api.md derives for a daily intent of `amount`
 * base units from 2030-01-01T09:00:00Z with a salt of 32 `salt_byte`s. */
static void sign_terms_of(const char *key_hex, uint64_t amount, uint8_t salt_byte, char out[133])
{
    chain_intent_t terms = {.min_interval = 86400 - 300,
                            .valid_after = 1893488400, /* 2030-01-01T09:00:00Z */
                            .valid_until = CHAIN_INTENT_NO_END,
                            .max_executions = 0};
    chain_key_t *owner = key(KEY_A);
    terms.owner = *chain_key_address(owner);
    chain_key_free(owner);
    chain_addr_parse(&terms.token, USDC, strlen(USDC));
    chain_addr_parse(&terms.recipient, RECIPIENT, strlen(RECIPIENT));
    terms.amount = chain_u256_from_u64(amount);
    memset(terms.salt, salt_byte, sizeof(terms.salt));
    sign_intent_terms(key_hex, &terms, REGISTRY, out);
}

/* The signature over the terms of the body the tests below create (100.5 USDC, SALT). */
static void sign_terms(const char *key_hex, char out[133])
{
    sign_terms_of(key_hex, 100500000, 0x11, out);
}

Test(api_intents, inline_signature_activates_and_a_wrong_one_creates_nothing, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096], sig[133], json[2048];
    session(KEY_A, token, sizeof(token));
    const char *fmt = "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\",\"token\":\"" USDC "\","
                      "\"amount\":\"100.5\",\"frequency\":\"daily\","
                      "\"startAt\":\"2030-01-01T09:00:00Z\",\"salt\":\"" SALT "\","
                      "\"signature\":\"%s\"}";
    sign_terms(KEY_B, sig); /* not the owner */
    snprintf(json, sizeof(json), fmt, sig);
    cr_assert_eq(post_intent(token, json), 401, "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "0");
    sign_terms(KEY_A, sig);
    snprintf(json, sizeof(json), fmt, sig);
    cr_assert_eq(post_intent(token, json), 201, "%s", body);
    cr_assert_not_null(strstr(body, "\"status\":\"active\""), "%s", body);
    /* the same terms and salt again: the same onChainId */
    cr_assert_eq(post_intent(token, json), 409, "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "1");
    stop_server();
}

Test(api_intents, rule_violations_are_clear_and_change_nothing, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096];
    session(KEY_A, token, sizeof(token));
    struct {
        const char *json;
        int status;
        const char *field;
    } cases[] = {
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT
         "\",\"token\":\"USDC\",\"amount\":\"1.1234567\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         422, "amount"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"DOGE\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         422, "token"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"custom\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         422, "intervalSeconds"},
        /* malformed values are 400 (api.md: a wrong EIP-55 checksum is 400), broken rules 422 */
        {"{\"name\":\"x\",\"recipient\":\"0x90f79bf6eb2c4f870365e785982e1f101e93B906\","
         "\"token\":\"USDC\",\"amount\":\"1\",\"frequency\":\"daily\","
         "\"startAt\":\"2030-01-01T09:00:00Z\"}",
         400, "recipient"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":"
         "\"0x00000000000000000000000000000000000000aa\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         422, "token"}, /* well formed, but not a configured token */
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":"
         "\"0xE7f1725E7734CE288F8367e1Bb143E90bb3F0512\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         400, "token"},
        {"{\"name\":\"x\",\"recipient\":\"0x90f79bf6\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         400, "recipient"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01 09:00\"}",
         400, "startAt"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\","
         "\"constraints\":{\"maxGasPrice\":\"1\"}}",
         400, "constraints.maxGasPrice"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\",\"salt\":\"0x12\"}",
         400, "salt"},
        /* the registry's uint32 goes further, but more than 2^31-1 executions is refused: before,
         * it failed the insert (500) */
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\","
         "\"maxExecutions\":4294967295}",
         400, "maxExecutions"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":1,"
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
         400, "amount"},
        {"{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"1\","
         "\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\",\"extra\":true}",
         400, "extra"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        cr_assert_eq(post_intent(token, cases[i].json), cases[i].status, "case %zu: %s", i, body);
        char needle[64];
        snprintf(needle, sizeof(needle), "\"field\":\"%s\"", cases[i].field);
        cr_assert_not_null(strstr(body, needle), "case %zu names no %s: %s", i, cases[i].field,
                           body);
    }
    cr_assert_eq(post_intent(NULL, cases[0].json), 401);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "0");
    /* the largest maxExecutions taken is stored and answered as sent */
    cr_assert_eq(post_intent(token, "{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\","
                                    "\"token\":\"USDC\",\"amount\":\"1\",\"frequency\":\"daily\","
                                    "\"startAt\":\"2030-01-01T09:00:00Z\","
                                    "\"maxExecutions\":2147483647}"),
                 201, "%s", body);
    cr_assert_not_null(strstr(body, "\"maxExecutions\":2147483647"), "%s", body);
    cr_assert_not_null(strstr(body, "\"maxExecutions\":\"2147483647\""), "typedData: %s", body);
    stop_server();
}

Test(api_intents, pagination_returns_every_item_once_and_filters_by_status, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096], json[1024];
    session(KEY_A, token, sizeof(token));
    enum { N = 7 };
    for (int i = 0; i != N; ++i) {
        snprintf(json, sizeof(json),
                 "{\"name\":\"n%d\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
                 "\"amount\":\"%d\",\"frequency\":\"weekly\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
                 i, i + 1);
        cr_assert_eq(post_intent(token, json), 201, "%s", body);
    }
    char path[256] = "/api/intents?limit=3", seen[N + 1] = {0};
    int pages = 0, total = 0;
    for (;;) {
        cr_assert_eq(http("GET", path, token, NULL, NULL, body, sizeof(body)), 200, "%s", body);
        json_t *page = json_loads(body, 0, NULL);
        json_t *items = json_object_get(page, "items"), *item;
        size_t k;
        json_array_foreach(items, k, item)
        {
            int n = atoi(str(item, "name") + 1);
            cr_assert(n >= 0 && n < N && !seen[n], "item n%d seen twice", n);
            seen[n] = 1;
            ++total;
        }
        ++pages;
        const char *next = str(page, "nextCursor");
        if (next == NULL) {
            json_decref(page);
            break;
        }
        snprintf(path, sizeof(path), "/api/intents?limit=3&cursor=%s", next);
        json_decref(page);
        cr_assert_lt(pages, 10, "pagination does not end");
    }
    cr_assert_eq(total, N);
    cr_assert_eq(pages, 3);
    cr_assert_eq(http("GET", "/api/intents?status=active", token, NULL, NULL, body, sizeof(body)),
                 200);
    cr_assert_not_null(strstr(body, "\"items\":[]"), "%s", body);
    cr_assert_eq(http("GET", "/api/intents?status=pending_signature&limit=200", token, NULL, NULL,
                      body, sizeof(body)),
                 200);
    /* delayed intents (the engine delays them; here: one set so by hand) and only those */
    db_exec(db_url, "UPDATE intents SET status = 'delayed', delay_reason = 'gas_price_above_cap',"
                    " signature = decode(repeat('44', 65), 'hex')"
                    " WHERE name = 'n3'");
    cr_assert_eq(http("GET", "/api/intents/delayed", token, NULL, NULL, body, sizeof(body)), 200,
                 "%s", body);
    json_t *delayed = json_loads(body, 0, NULL);
    json_t *items = json_object_get(delayed, "items");
    cr_assert_eq(json_array_size(items), 1, "%s", body);
    cr_assert_str_eq(str(json_array_get(items, 0), "delayReason"), "gas_price_above_cap");
    json_decref(delayed);
    cr_assert_eq(
        http("GET", "/api/intents/delayed?status=active", token, NULL, NULL, body, sizeof(body)),
        400);
    cr_assert_eq(http("GET", "/api/intents?limit=0", token, NULL, NULL, body, sizeof(body)), 400);
    cr_assert_eq(http("GET", "/api/intents?status=nope", token, NULL, NULL, body, sizeof(body)),
                 400);
    cr_assert_eq(http("GET", "/api/intents?cursor=garbage", token, NULL, NULL, body, sizeof(body)),
                 400);
    stop_server();
}

static char path_buf[256];

static const char *intent_path(const char *id, const char *suffix)
{
    snprintf(path_buf, sizeof(path_buf), "/api/intents/%s%s", id, suffix);
    return path_buf;
}

Test(api_intents, sign_pause_resume_cancel_follow_the_rules, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token_a[4096], token_b[4096], sig[133], json[512];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    cr_assert_eq(post_intent(token_a, "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\","
                                      "\"token\":\"USDC\",\"amount\":\"100.5\","
                                      "\"frequency\":\"daily\",\"salt\":\"" SALT "\","
                                      "\"startAt\":\"2030-01-01T09:00:00Z\"}"),
                 201, "%s", body);
    json_t *created = json_loads(body, 0, NULL);
    char id[37];
    snprintf(id, sizeof(id), "%s", str(created, "id"));
    json_decref(created);
    /* pausing what is not signed makes no sense */
    cr_assert_eq(http("POST", intent_path(id, "/pause"), token_a, NULL, NULL, body, sizeof(body)),
                 409, "%s", body);
    /* a signature by someone else is refused; the owner's activates */
    sign_terms(KEY_B, sig);
    snprintf(json, sizeof(json), "{\"signature\":\"%s\"}", sig);
    cr_assert_eq(
        http("POST", intent_path(id, "/signature"), token_a, NULL, json, body, sizeof(body)), 401,
        "%s", body);
    sign_terms(KEY_A, sig);
    snprintf(json, sizeof(json), "{\"signature\":\"%s\"}", sig);
    cr_assert_eq(
        http("POST", intent_path(id, "/signature"), token_b, NULL, json, body, sizeof(body)), 404,
        "another user signed it");
    cr_assert_eq(
        http("POST", intent_path(id, "/signature"), token_a, NULL, json, body, sizeof(body)), 200,
        "%s", body);
    cr_assert_not_null(strstr(body, "\"status\":\"active\""), "%s", body);
    /* pause twice (the same answer), resume, then another user cannot touch it */
    cr_assert_eq(http("POST", intent_path(id, "/pause"), token_a, NULL, NULL, body, sizeof(body)),
                 200);
    cr_assert_not_null(strstr(body, "\"status\":\"paused\""), "%s", body);
    cr_assert_eq(http("POST", intent_path(id, "/pause"), token_a, NULL, NULL, body, sizeof(body)),
                 200);
    cr_assert_eq(http("POST", intent_path(id, "/resume"), token_a, NULL, NULL, body, sizeof(body)),
                 200);
    cr_assert_not_null(strstr(body, "\"status\":\"active\""), "%s", body);
    cr_assert_eq(http("POST", intent_path(id, "/pause"), token_b, NULL, NULL, body, sizeof(body)),
                 404);
    /* cancel: the answer carries the revoke transaction; a repeat answers the same */
    cr_assert_eq(http("DELETE", intent_path(id, ""), token_a, NULL, NULL, body, sizeof(body)), 200,
                 "%s", body);
    json_t *cancelled = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(cancelled, "status"), "cancelled");
    json_t *revoke = json_object_get(cancelled, "revoke");
    cr_assert_str_eq(str(revoke, "to"), REGISTRY);
    cr_assert_eq(json_integer_value(json_object_get(revoke, "chainId")), 31337);
    uint8_t selector[4];
    char selector_hex[11];
    chain_abi_selector(CHAIN_ABI_SIG_REVOKE, selector);
    chain_hex_encode(selector_hex, sizeof(selector_hex), selector, 4, CHAIN_HEX_0X);
    cr_assert(strncmp(str(revoke, "data"), selector_hex, 10) == 0, "not a revoke call: %s",
              str(revoke, "data"));
    json_decref(cancelled);
    cr_assert_eq(http("DELETE", intent_path(id, ""), token_a, NULL, NULL, body, sizeof(body)), 200);
    cr_assert_not_null(strstr(body, "\"revoke\""));
    cr_assert_eq(http("POST", intent_path(id, "/resume"), token_a, NULL, NULL, body, sizeof(body)),
                 409);
    cr_assert_str_eq(db_value("SELECT status FROM intents"), "cancelled");
    cr_assert_str_eq(
        db_value("SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE action LIKE "
                 "'intent.%' AND action <> 'intent.refused'"),
        "intent.create,intent.sign,intent.pause,intent.resume,intent.cancel");
    stop_server();
}

/* An intent cancelled before it was ever signed: cancelled, with nothing to sign any more. */
Test(api_intents, cancel_an_unsigned_intent, .timeout = 60, .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096];
    session(KEY_A, token, sizeof(token));
    cr_assert_eq(post_intent(token, "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\","
                                    "\"token\":\"USDC\",\"amount\":\"100.5\","
                                    "\"frequency\":\"daily\",\"salt\":\"" SALT "\","
                                    "\"startAt\":\"2030-01-01T09:00:00Z\"}"),
                 201, "%s", body);
    json_t *created = json_loads(body, 0, NULL);
    char id[37];
    snprintf(id, sizeof(id), "%s", str(created, "id"));
    json_decref(created);
    cr_assert_eq(http("DELETE", intent_path(id, ""), token, NULL, NULL, body, sizeof(body)), 200,
                 "%s", body);
    cr_assert_not_null(strstr(body, "\"status\":\"cancelled\""), "%s", body);
    cr_assert_str_eq(db_value("SELECT status || ',' || (signature IS NULL) FROM intents"),
                     "cancelled,true");
    char sig[133], json[256];
    sign_terms(KEY_A, sig);
    snprintf(json, sizeof(json), "{\"signature\":\"%s\"}", sig);
    cr_assert_eq(http("POST", intent_path(id, "/signature"), token, NULL, json, body, sizeof(body)),
                 409, "a cancelled intent cannot be signed back to life: %s", body);
    stop_server();
}

/* ---- the intent's executions ---- */

/* Inserts execution `period` of intent `id`, created `age_s` seconds ago; odd periods are
 * confirmed with their gas figures, even ones still broadcast. */
static void add_execution(const char *id, int period, int age_s)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO executions (intent_id, period, status, amount, executor, nonce, raw_tx,"
             " tx_hash, gas_used, gas_price_wei, block_number, confirmed_at, created_at)"
             " SELECT '%s', %d, CASE WHEN %d %% 2 = 1 THEN 'confirmed' ELSE 'broadcast' END,"
             " 100500000, decode(repeat('ab', 20), 'hex'), %d, '\\x00',"
             " decode(lpad(to_hex(%d), 64, '0'), 'hex'), c.gas, c.price, c.block, c.at,"
             " now() - make_interval(secs => %d)"
             " FROM (SELECT CASE WHEN %d %% 2 = 1 THEN 21000 END AS gas,"
             "   CASE WHEN %d %% 2 = 1 THEN 2500000000 END AS price,"
             "   CASE WHEN %d %% 2 = 1 THEN 100 + %d END AS block,"
             "   CASE WHEN %d %% 2 = 1 THEN now() END AS at) c",
             id, period, period, period, period + 1, age_s, period, period, period, period, period);
    db_exec(db_url, sql);
}

static void create_pending(const char *token, const char *salt, char id[37])
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
             "\"amount\":\"100.5\",\"frequency\":\"daily\",\"salt\":\"%s\","
             "\"startAt\":\"2030-01-01T09:00:00Z\"}",
             salt);
    cr_assert_eq(post_intent(token, json), 201, "%s", body);
    json_t *created = json_loads(body, 0, NULL);
    snprintf(id, 37, "%s", str(created, "id"));
    json_decref(created);
}

Test(api_intents, get_shows_its_newest_ten_executions, .timeout = 60, .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096], id[37], other[37];
    session(KEY_A, token, sizeof(token));
    create_pending(token, SALT, id);
    create_pending(token, "0x2222222222222222222222222222222222222222222222222222222222222222",
                   other);
    enum { N = 12 };
    for (int p = 0; p != N; ++p) /* period p is (N - p) * 10 s old: the last is the newest */
        add_execution(id, p, (N - p) * 10);
    add_execution(other, 0, 1); /* the newest of all, but another intent's */
    cr_assert_eq(http("GET", intent_path(id, ""), token, NULL, NULL, body, sizeof(body)), 200, "%s",
                 body);
    json_t *intent = json_loads(body, 0, NULL);
    json_t *list = json_object_get(intent, "executions");
    cr_assert_eq(json_array_size(list), 10, "%s", body);
    for (size_t i = 0; i != 10; ++i) {
        json_t *e = json_array_get(list, i);
        cr_assert_eq(json_integer_value(json_object_get(e, "period")), N - 1 - (int)i,
                     "not newest first: %s", body);
        cr_assert_str_eq(str(e, "intentId"), id);
        cr_assert_str_eq(str(e, "amount"), "100.5");
    }
    json_t *confirmed = json_array_get(list, 0), *broadcast = json_array_get(list, 1);
    cr_assert_str_eq(str(confirmed, "status"), "confirmed");
    cr_assert_str_eq(str(confirmed, "gasPriceGwei"), "2.5");
    cr_assert_eq(json_integer_value(json_object_get(confirmed, "gasUsed")), 21000);
    cr_assert_eq(json_integer_value(json_object_get(confirmed, "blockNumber")), 111);
    cr_assert_str_eq(str(confirmed, "txHash"),
                     "0x000000000000000000000000000000000000000000000000000000000000000c");
    cr_assert_not_null(str(confirmed, "confirmedAt"));
    cr_assert_str_eq(str(broadcast, "status"), "broadcast");
    cr_assert(json_is_null(json_object_get(broadcast, "gasUsed")));
    cr_assert(json_is_null(json_object_get(broadcast, "confirmedAt")));
    cr_assert(json_is_null(json_object_get(broadcast, "error")));
    static const char *const keys[] = {"id",          "intentId", "period",    "status",
                                       "txHash",      "amount",   "gasUsed",   "gasPriceGwei",
                                       "blockNumber", "error",    "createdAt", "confirmedAt"};
    cr_assert_eq(json_object_size(confirmed), sizeof(keys) / sizeof(keys[0]));
    for (size_t k = 0; k != sizeof(keys) / sizeof(keys[0]); ++k)
        cr_assert_not_null(json_object_get(confirmed, keys[k]), "no %s", keys[k]);
    json_decref(intent);
    stop_server();
}

/* ---- PATCH ---- */

#define SALT2 "0x2222222222222222222222222222222222222222222222222222222222222222"
#define SALT3 "0x3333333333333333333333333333333333333333333333333333333333333333"

static int patch(const char *token, const char *id, const char *json)
{
    return http("PATCH", intent_path(id, ""), token, NULL, json, body, sizeof(body));
}

/* The stored intent row as text: "nothing changed" compares two of these. */
static void row_text(const char *id, char *out, size_t cap)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT i::text FROM intents i WHERE id = '%s'", id);
    snprintf(out, cap, "%s", db_value(sql));
}

Test(api_intents, patch_metadata_freely_and_terms_back_to_pending, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token[4096], sig[133], json[1024], id[37], sql[256];
    session(KEY_A, token, sizeof(token));
    sign_terms(KEY_A, sig);
    snprintf(json, sizeof(json),
             "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
             "\"amount\":\"100.5\",\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\","
             "\"salt\":\"" SALT "\",\"signature\":\"%s\"}",
             sig);
    cr_assert_eq(post_intent(token, json), 201, "%s", body);
    json_t *created = json_loads(body, 0, NULL);
    snprintf(id, sizeof(id), "%s", str(created, "id"));
    char on_chain_id[80];
    snprintf(on_chain_id, sizeof(on_chain_id), "%s", str(created, "onChainId"));
    json_decref(created);
    /* as if it had run twice */
    snprintf(sql, sizeof(sql),
             "UPDATE intents SET execution_count = 2, last_execution = now() WHERE id = '%s'", id);
    db_exec(db_url, sql);
    /* metadata: the signed terms and the state stay */
    cr_assert_eq(patch(token, id,
                       "{\"name\":\"rent 2\",\"safetyBuffer\":\"5\","
                       "\"constraints\":{\"maxGasPriceGwei\":\"50\"}}"),
                 200, "%s", body);
    json_t *meta = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(meta, "status"), "active");
    cr_assert_str_eq(str(meta, "name"), "rent 2");
    cr_assert_str_eq(str(meta, "safetyBuffer"), "5");
    cr_assert_str_eq(str(json_object_get(meta, "constraints"), "maxGasPriceGwei"), "50");
    cr_assert_str_eq(str(meta, "onChainId"), on_chain_id);
    cr_assert_eq(json_integer_value(json_object_get(meta, "executionCount")), 2);
    cr_assert_null(json_object_get(meta, "revoke"));
    json_decref(meta);
    /* the same again changes nothing and writes nothing */
    cr_assert_eq(patch(token, id, "{\"name\":\"rent 2\"}"), 200, "%s", body);
    /* terms do not change under an execution in flight: its outcome counts for the old ones */
    add_execution(id, 2, 1);
    char before[2048], after[2048];
    row_text(id, before, sizeof(before));
    cr_assert_eq(patch(token, id, "{\"amount\":\"200\"}"), 409, "%s", body);
    row_text(id, after, sizeof(after));
    cr_assert_str_eq(after, before);
    snprintf(sql, sizeof(sql),
             "UPDATE executions SET status = 'failed', error = 'reverted' WHERE intent_id = '%s'",
             id);
    db_exec(db_url, sql);
    /* a term: back to pending_signature with new typedData, a new salt, counting from 0 */
    cr_assert_eq(patch(token, id, "{\"amount\":\"200\"}"), 200, "%s", body);
    json_t *terms = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(terms, "status"), "pending_signature");
    cr_assert_str_neq(str(terms, "onChainId"), on_chain_id);
    json_t *message = json_object_get(json_object_get(terms, "typedData"), "message");
    cr_assert_str_eq(str(message, "amount"), "200000000");
    cr_assert_str_neq(str(message, "salt"), SALT);
    cr_assert_eq(json_integer_value(json_object_get(terms, "executionCount")), 0);
    cr_assert(json_is_null(json_object_get(terms, "lastExecution")));
    cr_assert_str_eq(str(terms, "nextExecution"), "2030-01-01T09:00:00Z");
    cr_assert_str_eq(str(terms, "name"), "rent 2");
    /* the replaced terms were signed: the answer says how to revoke them */
    json_t *revoke = json_object_get(terms, "revoke");
    cr_assert_str_eq(str(revoke, "to"), REGISTRY);
    json_decref(terms);
    snprintf(sql, sizeof(sql),
             "SELECT signature IS NULL AND amount = 200000000 FROM intents WHERE id = '%s'", id);
    cr_assert_str_eq(db_value(sql), "t");
    cr_assert_str_eq(
        db_value("SELECT string_agg(details->>'termsChanged', ',' ORDER BY id) FROM audit_log"
                 " WHERE action = 'intent.patch'"),
        "false,true");
    stop_server();
}

Test(api_intents, patch_signs_inline_and_refuses_without_change, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token_a[4096], token_b[4096], sig[133], json[1024], id[37], second[37];
    char before[2048], after[2048];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    create_pending(token_a, SALT, id);
    row_text(id, before, sizeof(before));
    /* refusals: each names its field (or is 401/404) and changes nothing */
    sign_terms_of(KEY_B, 150000000, 0x22, sig);
    snprintf(json, sizeof(json), "{\"amount\":\"150\",\"salt\":\"" SALT2 "\",\"signature\":\"%s\"}",
             sig);
    cr_assert_eq(patch(token_a, id, json), 401, "%s", body);
    sign_terms_of(KEY_A, 150000000, 0x22, sig);
    snprintf(json, sizeof(json), "{\"amount\":\"150\",\"signature\":\"%s\"}", sig);
    cr_assert_eq(patch(token_a, id, json), 422, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"signature\""), "%s", body);
    cr_assert_eq(patch(token_a, id, "{\"amount\":\"1.1234567\"}"), 422, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"amount\""), "%s", body);
    cr_assert_eq(patch(token_a, id, "{\"extra\":1}"), 400, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"extra\""), "%s", body);
    cr_assert_eq(patch(token_a, id,
                       "{\"constraints\":{\"timeWindow\":{\"start\":\"09:00\","
                       "\"end\":\"10:00\",\"tz\":\"+02:00\"}}}"),
                 400, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"constraints.timeWindow.tz\""), "%s", body);
    cr_assert_eq(
        patch(token_a, id, "{\"recipient\":\"0x90f79bf6eb2c4f870365e785982e1f101e93B906\"}"), 400,
        "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"recipient\""), "%s", body);
    cr_assert_eq(patch(token_a, id, "{\"name\":7}"), 400, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"name\""), "%s", body);
    cr_assert_eq(patch(token_b, id, "{\"name\":\"mine\"}"), 404, "%s", body);
    cr_assert_eq(patch(NULL, id, "{\"name\":\"mine\"}"), 401, "%s", body);
    cr_assert_eq(patch(token_a, "00000000-0000-4000-8000-000000000000", "{\"name\":\"x\"}"), 404);
    row_text(id, after, sizeof(after));
    cr_assert_str_eq(after, before);
    /* new terms with the salt they were signed with and the owner's signature: active at once */
    snprintf(json, sizeof(json), "{\"amount\":\"150\",\"salt\":\"" SALT2 "\",\"signature\":\"%s\"}",
             sig);
    cr_assert_eq(patch(token_a, id, json), 200, "%s", body);
    cr_assert_not_null(strstr(body, "\"status\":\"active\""), "%s", body);
    cr_assert_null(strstr(body, "\"revoke\""), "pending terms were never signed: %s", body);
    /* another intent patched into the same terms and salt: the same onChainId, 409 */
    create_pending(token_a, SALT3, second);
    row_text(second, before, sizeof(before));
    cr_assert_eq(patch(token_a, second, "{\"amount\":\"150\",\"salt\":\"" SALT2 "\"}"), 409, "%s",
                 body);
    row_text(second, after, sizeof(after));
    cr_assert_str_eq(after, before);
    /* signing what is signed already is a conflict */
    cr_assert_eq(patch(token_a, id, json), 409, "%s", body);
    /* a cancelled intent takes no change */
    cr_assert_eq(http("DELETE", intent_path(id, ""), token_a, NULL, NULL, body, sizeof(body)), 200);
    row_text(id, before, sizeof(before));
    cr_assert_eq(patch(token_a, id, "{\"name\":\"again\"}"), 409, "%s", body);
    row_text(id, after, sizeof(after));
    cr_assert_str_eq(after, before);
    cr_assert_str_eq(db_value("SELECT count(*) FROM audit_log WHERE action = 'intent.patch'"), "1");
    stop_server();
}

/* ---- GET /api/intents/upcoming ---- */

static void create_at(const char *token, const char *name, const char *freq, int64_t start,
                      char id[37])
{
    char json[512], at[CHAIN_RFC3339_SIZE];
    cr_assert_eq(chain_rfc3339_format(start, at), CHAIN_OK);
    snprintf(json, sizeof(json),
             "{\"name\":\"%s\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
             "\"amount\":\"3\",\"frequency\":\"%s\",\"startAt\":\"%s\"}",
             name, freq, at);
    cr_assert_eq(post_intent(token, json), 201, "%s", body);
    json_t *created = json_loads(body, 0, NULL);
    snprintf(id, 37, "%s", str(created, "id"));
    json_decref(created);
}

/* Signed as far as the database is concerned (the engine is not what is tested here). */
static void activate(const char *id)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE intents SET status = 'active', signature = decode(repeat('44', 65), 'hex')"
             " WHERE id = '%s'",
             id);
    db_exec(db_url, sql);
}

static void expect_item(json_t *items, size_t i, const char *id, int period, int64_t due)
{
    json_t *item = json_array_get(items, i);
    char at[CHAIN_RFC3339_SIZE];
    chain_rfc3339_format(due, at);
    cr_assert_not_null(item, "no item %zu", i);
    cr_assert_str_eq(str(item, "intentId"), id, "item %zu", i);
    cr_assert_eq(json_integer_value(json_object_get(item, "period")), period, "item %zu", i);
    cr_assert_str_eq(str(item, "dueAt"), at, "item %zu", i);
    cr_assert_str_eq(str(item, "amount"), "3");
    cr_assert_str_eq(str(item, "tokenSymbol"), "USDC");
    cr_assert_str_eq(str(item, "recipient"), RECIPIENT);
}

Test(api_intents, upcoming_lists_live_executions_soonest_first, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token_a[4096], token_b[4096], daily[37], weekly[37], pending[37];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    int64_t now = (int64_t)time(NULL), d0 = now + 3600, w0 = now + 7200;
    create_at(token_a, "daily", "daily", d0, daily);
    create_at(token_a, "weekly", "weekly", w0, weekly);
    create_at(token_a, "pending", "daily", now + 60, pending); /* not signed: never upcoming */
    activate(daily);
    activate(weekly);
    /* two days: daily periods 0 and 1, weekly period 0, in time order */
    const char *path = "/api/intents/upcoming?within=172800";
    cr_assert_eq(http("GET", path, token_a, NULL, NULL, body, sizeof(body)), 200, "%s", body);
    json_t *page = json_loads(body, 0, NULL), *items = json_object_get(page, "items");
    cr_assert_eq(json_array_size(items), 3, "%s", body);
    expect_item(items, 0, daily, 0, d0);
    expect_item(items, 1, weekly, 0, w0);
    expect_item(items, 2, daily, 1, d0 + 86400);
    cr_assert(json_is_null(json_object_get(page, "nextCursor")));
    json_decref(page);
    /* the default window is 7 days: daily 0..6 (d0 + 6 days is inside), weekly 0 */
    cr_assert_eq(http("GET", "/api/intents/upcoming", token_a, NULL, NULL, body, sizeof(body)),
                 200);
    page = json_loads(body, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(page, "items")), 8, "%s", body);
    json_decref(page);
    /* limit keeps the soonest */
    cr_assert_eq(http("GET", "/api/intents/upcoming?within=172800&limit=2", token_a, NULL, NULL,
                      body, sizeof(body)),
                 200);
    page = json_loads(body, 0, NULL);
    items = json_object_get(page, "items");
    cr_assert_eq(json_array_size(items), 2, "%s", body);
    expect_item(items, 0, daily, 0, d0);
    expect_item(items, 1, weekly, 0, w0);
    json_decref(page);
    /* paused: gone; another user: nothing */
    cr_assert_eq(
        http("POST", intent_path(daily, "/pause"), token_a, NULL, NULL, body, sizeof(body)), 200);
    cr_assert_eq(http("GET", path, token_a, NULL, NULL, body, sizeof(body)), 200);
    page = json_loads(body, 0, NULL);
    items = json_object_get(page, "items");
    cr_assert_eq(json_array_size(items), 1, "%s", body);
    expect_item(items, 0, weekly, 0, w0);
    json_decref(page);
    cr_assert_eq(http("GET", path, token_b, NULL, NULL, body, sizeof(body)), 200);
    cr_assert_not_null(strstr(body, "\"items\":[]"), "%s", body);
    /* bad windows name the field */
    static const char *const bad[] = {"within=0", "within=31536001", "within=abc",
                                      "within=", "limit=0"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        char p[128], field[32];
        snprintf(p, sizeof(p), "/api/intents/upcoming?%s", bad[i]);
        snprintf(field, sizeof(field), "\"field\":\"%.*s\"", (int)strcspn(bad[i], "="), bad[i]);
        cr_assert_eq(http("GET", p, token_a, NULL, NULL, body, sizeof(body)), 400, "%s", bad[i]);
        cr_assert_not_null(strstr(body, field), "%s: %s", bad[i], body);
    }
    cr_assert_eq(http("GET", "/api/intents/upcoming", NULL, NULL, NULL, body, sizeof(body)), 401);
    stop_server();
}

/* ---- creates that commit as one group statement ---- */

#define GROUP_CLIENTS 12

typedef struct st_group_client_t {
    const char *token;
    pthread_barrier_t *start;
    char json[2048];
    int status;
    char resp[16384];
} group_client_t;

/* One POST on a connection of its own (http() keeps its answer in static buffers). */
static void *group_client_main(void *arg)
{
    group_client_t *c = arg;
    pthread_barrier_wait(c->start);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /api/intents HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     c->token, strlen(c->json), c->json);
    size_t len = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && n > 0 &&
        n < (int)sizeof(req) && write(fd, req, (size_t)n) == n) {
        ssize_t got;
        while (len + 1 < sizeof(c->resp) &&
               (got = read(fd, c->resp + len, sizeof(c->resp) - 1 - len)) > 0)
            len += (size_t)got;
    }
    if (fd >= 0)
        close(fd);
    c->resp[len] = '\0';
    if (sscanf(c->resp, "HTTP/1.%*d %d", &c->status) != 1)
        c->status = 0;
    return NULL;
}

/* Client i's body: every optional field and form in turn, names that an array literal must
 * quote (quotes, backslashes, commas, braces, the word NULL, spaces, non-ASCII), two owners,
 * and one inline signature. */
static void group_body(group_client_t *c, int i)
{
    static const char *const names[] = {
        "quote \\\" inside",  "back\\\\slash", "comma, {braces}", "NULL", "  spaces  ",
        "caf\\u00e9 \\u20ac", "{\\\"a\\\":1}", "\\\\\\\"",        "plain"};
    const char *name = names[i % (int)(sizeof(names) / sizeof(names[0]))];
    const char *common = "\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\"";
    char salt[67], sig[133];
    snprintf(salt, sizeof(salt), "0x%064x", 0x5000 + i);
    if (i == 2) { /* the terms sign_terms_of signs, salt 0x22...22 */
        sign_terms_of(KEY_A, 100500000, 0x22, sig);
        snprintf(c->json, sizeof(c->json),
                 "{\"name\":\"%s\",%s,\"amount\":\"100.5\",\"frequency\":\"daily\","
                 "\"startAt\":\"2030-01-01T09:00:00Z\",\"salt\":\"0x%s\",\"signature\":\"%s\"}",
                 name, common, "2222222222222222222222222222222222222222222222222222222222222222",
                 sig);
    } else if (i % 4 == 0) {
        snprintf(c->json, sizeof(c->json),
                 "{\"name\":\"%s\",%s,\"amount\":\"0.000001\",\"frequency\":\"custom\","
                 "\"intervalSeconds\":3600,\"startAt\":\"2030-01-01T09:00:00Z\","
                 "\"endAt\":\"2031-01-01T00:00:00Z\",\"maxExecutions\":5,\"salt\":\"%s\"}",
                 name, common, salt);
    } else if (i % 4 == 1) {
        snprintf(c->json, sizeof(c->json),
                 "{\"name\":\"%s\",%s,\"amount\":\"12\",\"frequency\":\"daily\","
                 "\"startAt\":\"2030-01-01T09:00:00Z\",\"salt\":\"%s\",\"constraints\":"
                 "{\"maxGasPriceGwei\":\"12.5\",\"timeWindow\":{\"start\":\"08:00\","
                 "\"end\":\"18:00\",\"utcOffset\":\"+02:00\",\"days\":[\"mon\",\"fri\"]}}}",
                 name, common, salt);
    } else if (i % 4 == 2) {
        snprintf(c->json, sizeof(c->json),
                 "{\"name\":\"%s\",%s,\"amount\":\"3\",\"frequency\":\"once\","
                 "\"startAt\":\"2030-02-01T00:00:00Z\",\"salt\":\"%s\"}",
                 name, common, salt);
    } else {
        snprintf(c->json, sizeof(c->json),
                 "{\"name\":\"%s\",%s,\"amount\":\"7.25\",\"frequency\":\"weekly\","
                 "\"safetyBuffer\":\"2.5\",\"startAt\":\"2030-03-01T12:30:00Z\",\"salt\":\"%s\"}",
                 name, common, salt);
    }
}

/* Client i's answer is the intent as a lone create would have stored it: 201, the same object
 * that GET reads back from the row, the name byte for byte, one audit row of its owner. */
static void group_check(const group_client_t *c, int i, const char *token)
{
    cr_assert_eq(c->status, 201, "client %d: %s", i, c->resp);
    const char *at = strstr(c->resp, "\r\n\r\n");
    json_t *created = json_loads(at + 4, 0, NULL), *sent = json_loads(c->json, 0, NULL);
    cr_assert_not_null(created, "client %d: %s", i, c->resp);
    const char *id = str(created, "id");
    cr_assert_eq(http("GET", intent_path(id, ""), token, NULL, NULL, body, sizeof(body)), 200, "%s",
                 body);
    json_t *read = json_loads(body, 0, NULL);
    json_object_del(read, "executions");
    char *a = json_dumps(created, JSON_SORT_KEYS), *b = json_dumps(read, JSON_SORT_KEYS);
    cr_assert(json_equal(created, read), "client %d answered\n%s\nbut stored\n%s", i, a, b);
    free(a);
    free(b);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT name FROM intents WHERE id = '%s'", id);
    cr_assert_str_eq(db_value(sql), str(sent, "name"), "client %d", i);
    cr_assert_str_eq(str(created, "name"), str(sent, "name"), "client %d", i);
    cr_assert_str_eq(str(created, "status"), i == 2 ? "active" : "pending_signature");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log a JOIN intents i ON i.id = a.subject_id"
             " WHERE a.action = 'intent.create' AND a.user_id = i.owner_id AND i.id = '%s'",
             id);
    cr_assert_str_eq(db_value(sql), "1", "client %d", i);
    json_decref(read);
    json_decref(sent);
    json_decref(created);
}

/* HTTP requests the server has received, this one (GET /metrics) included. */
static long requests_received(void)
{
    cr_assert_eq(http("GET", "/metrics", NULL, NULL, NULL, body, sizeof(body)), 200, "%s", body);
    long total = 0;
    for (const char *at = body; (at = strstr(at, "intentd_http_requests_total{")) != NULL; ++at)
        total += atol(strchr(at, ' ') + 1); /* one line per worker */
    return total;
}

/* Waits (bounded) until the server has received all `n` creates sent after `before` requests
 * (on its one worker each is queued, or in a unit, as soon as it is received) and a unit waits on
 * the audit table's lock: the creates not in the waiting units wait in the queue, and go out as
 * groups once it is released. (How many units wait depends on how the creates arrived: those
 * that arrive in one turn of the worker's loop go out as one unit.) */
static void wait_for_queued_creates(long before, int n)
{
    long received = 0;
    int waiting = 0;
    for (long polls = 1; polls != 400 && (received < n || waiting < 1); ++polls) {
        received = requests_received() - before - polls;
        waiting = atoi(db_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                                " 'Lock' AND query LIKE '%INSERT INTO intents%'"));
        if (received < n || waiting < 1)
            usleep(50000);
    }
    cr_assert_eq(received, n, "the server received %ld of the %d creates", received, n);
    cr_assert_geq(waiting, 1, "no create unit waited on the lock");
}

/* One worker, so that every create queues on the same worker. */
static const char *const one_worker[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                                         "USDC_ADDRESS=" USDC,
                                         "WORKERS=1",
                                         "API_RATE_LIMIT=1000000",
                                         "USER_RATE_LIMIT=1000000",
                                         NULL};

/* Takes the audit table's lock, so that creates wait in the database (COMMIT releases it). */
static PGconn *lock_audit(void)
{
    PGconn *lock = connect_db(db_url);
    PGresult *res = PQexec(lock, "BEGIN; LOCK TABLE audit_log IN SHARE MODE");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(lock));
    PQclear(res);
    return lock;
}

static void unlock_audit(PGconn *lock)
{
    PGresult *res = PQexec(lock, "COMMIT");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(lock));
    PQclear(res);
    PQfinish(lock);
}

/* Sends the `n` creates of `clients` (tokens and bodies set) at once while the audit table is
 * locked: the first wait in the database, the others queue behind them and go out as groups
 * once it is released. Returns when every one is answered. */
static void send_while_audit_locked(group_client_t *clients, int n)
{
    PGconn *lock = lock_audit();
    long before = requests_received();
    pthread_t threads[GROUP_CLIENTS];
    pthread_barrier_t start;
    cr_assert_leq(n, GROUP_CLIENTS);
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i != n; ++i) {
        clients[i].start = &start;
        cr_assert_eq(pthread_create(&threads[i], NULL, group_client_main, &clients[i]), 0);
    }
    wait_for_queued_creates(before, n);
    unlock_audit(lock);
    for (int i = 0; i != n; ++i)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
}

Test(api_intents, a_group_stores_what_a_lone_create_stores, .timeout = 120,
     .fini = kill_leftover_server)
{
    start_server_env(one_worker);
    static char tokens[2][4096];
    session(KEY_A, tokens[0], sizeof(tokens[0]));
    session(KEY_B, tokens[1], sizeof(tokens[1]));
    static group_client_t clients[GROUP_CLIENTS];
    for (int i = 0; i != GROUP_CLIENTS; ++i) {
        clients[i] = (group_client_t){.token = tokens[i == 2 ? 0 : i % 2]};
        group_body(&clients[i], i);
    }
    send_while_audit_locked(clients, GROUP_CLIENTS);
    for (int i = 0; i != GROUP_CLIENTS; ++i)
        group_check(&clients[i], i, tokens[i == 2 ? 0 : i % 2]);
    char want[16];
    snprintf(want, sizeof(want), "%d", GROUP_CLIENTS);
    cr_assert_str_eq(db_value("SELECT count(*) FROM audit_log WHERE action = 'intent.create'"
                              " AND remote_ip = '127.0.0.1'"),
                     want);
    int transactions = atoi(db_value("SELECT count(DISTINCT xmin::text) FROM intents"));
    cr_assert_leq(transactions, GROUP_CLIENTS - 3, "no group formed (%d transactions)",
                  transactions);
    stop_server();
}

#define DUP_CLIENTS 6

/* A group that fails as a whole (two of its creates have the same terms and salt) commits
 * nothing, and its members are sent again one by one: each gets the answer it would have had
 * alone, one of the two 409 and every other create 201, stored as it was sent. */
Test(api_intents, a_failed_group_answers_each_create_as_alone, .timeout = 120,
     .fini = kill_leftover_server)
{
    start_server_env(one_worker);
    static char token[4096];
    session(KEY_A, token, sizeof(token));
    static group_client_t clients[DUP_CLIENTS];
    for (int i = 0; i != DUP_CLIENTS; ++i) {
        clients[i] = (group_client_t){.token = token};
        group_body(&clients[i], i == DUP_CLIENTS - 1 ? 0 : i); /* the last one repeats the first */
    }
    send_while_audit_locked(clients, DUP_CLIENTS);
    group_client_t *first = &clients[0], *again = &clients[DUP_CLIENTS - 1];
    cr_assert((first->status == 201 && again->status == 409) ||
                  (first->status == 409 && again->status == 201),
              "the same terms twice: %d and %d", first->status, again->status);
    const char *at = strstr(first->status == 409 ? first->resp : again->resp, "\r\n\r\n");
    cr_assert(at != NULL && strstr(at, "already exists") != NULL, "%s", at);
    for (int i = 0; i != DUP_CLIENTS; ++i)
        if (clients[i].status != 409)
            group_check(&clients[i], i == DUP_CLIENTS - 1 ? 0 : i, token);
    char want[16];
    snprintf(want, sizeof(want), "%d", DUP_CLIENTS - 1);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), want);
    cr_assert_str_eq(db_value("SELECT count(*) FROM audit_log WHERE action = 'intent.create'"),
                     want);
    stop_server();
}
