/* POST /api/intents, GET /api/intents/:id and GET /api/intents through real HTTP against the
 * intentd binary and a real PostgreSQL: pending and inline-signed creation, the signed terms as
 * api.md derives them, ownership (another user's intent is 404), rule violations that change
 * nothing, and pagination that returns every item once. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "chain/abi.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/key.h"
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

/* The owner's EIP-712 signature over the terms api.md derives for the body used below. */
static void sign_terms(const char *key_hex, char out[133])
{
    chain_intent_t terms = {.min_interval = 86400 - 300,
                            .valid_after = 1893488400, /* 2030-01-01T09:00:00Z */
                            .valid_until = CHAIN_INTENT_NO_END,
                            .max_executions = 0};
    chain_key_t *owner = key(KEY_A), *signer = key(key_hex);
    terms.owner = *chain_key_address(owner);
    chain_addr_parse(&terms.token, USDC, strlen(USDC));
    chain_addr_parse(&terms.recipient, RECIPIENT, strlen(RECIPIENT));
    terms.amount = chain_u256_from_u64(100500000);
    memset(terms.salt, 0x11, sizeof(terms.salt));
    chain_addr_t registry;
    chain_addr_parse(&registry, REGISTRY, strlen(REGISTRY));
    chain_eip712_domain_t domain;
    chain_intent_domain(&domain, 31337, &registry);
    uint8_t digest[32], bytes[CHAIN_SIG_LEN];
    chain_intent_digest(&domain, &terms, digest);
    chain_sig_t sig;
    chain_key_sign(signer, digest, &sig);
    chain_sig_serialize(&sig, bytes);
    chain_hex_encode(out, 133, bytes, sizeof(bytes), CHAIN_HEX_0X);
    chain_key_free(owner);
    chain_key_free(signer);
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
        {"{\"name\":\"x\",\"recipient\":\"0x90f79bf6eb2c4f870365e785982e1f101e93B906\","
         "\"token\":\"USDC\",\"amount\":\"1\",\"frequency\":\"daily\","
         "\"startAt\":\"2030-01-01T09:00:00Z\"}",
         422, "recipient"},
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
