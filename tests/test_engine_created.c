/*
 * An intent created already signed (inline signature) is run by the engine from what the API
 * hands it at creation (api_config_t.intent_created), without reading the row back: the intentd
 * binary with its engine and executor on a private anvil, the engine's clock moved with anvil's.
 * The registry accepts the execution only if the actor's terms and signature are exactly the
 * signed ones, so the chain's executedCount and the recipient's balance check the hand-over.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/rfc3339.h"
#include "support/engine_env.h"

#define OUTCOME_MS 30000 /* an execution confirmed on anvil (1 s blocks), with margin for ASan */
#define AMOUNT 10000000u /* 10 USDC in base units */
#define SALT_BYTE 0x22

static const char *const anvil_args[] = {"--block-time", "1", NULL};
static char token[4096], owner[CHAIN_ADDR_STR_SIZE];

static void setup(void)
{
    engine_chain_start(anvil_args);
    engine_server_start(NULL);
    session(KEY_A, token, sizeof(token));
    address_of(KEY_A, owner);
}

Test(engine_created, inline_signed_create_runs_without_a_read_back, .init = setup,
     .fini = engine_teardown, .timeout = 180)
{
    engine_mint(owner, 100 * 1000000u);
    engine_approve(owner, 100 * 1000000u);
    uint64_t before = engine_usdc_balance(ENGINE_RECIPIENT);
    int64_t start = engine_now() + 3600;
    char start_text[CHAIN_RFC3339_SIZE], sig[133], body[2048], answer[65536], salt[67];
    chain_rfc3339_format(start, start_text);
    engine_sign_daily(KEY_A, start, AMOUNT, SALT_BYTE, sig);
    memset(salt, '2', sizeof(salt) - 1);
    salt[0] = '0', salt[1] = 'x', salt[66] = '\0';
    snprintf(body, sizeof(body),
             "{\"name\":\"rent\",\"recipient\":\"%s\",\"token\":\"USDC\",\"amount\":\"10\","
             "\"frequency\":\"daily\",\"startAt\":\"%s\",\"salt\":\"%s\",\"signature\":\"%s\"}",
             ENGINE_RECIPIENT, start_text, salt, sig);
    cr_assert_eq(http("POST", "/api/intents", token, NULL, body, answer, sizeof(answer)), 201, "%s",
                 answer);
    json_t *in = json_loads(answer, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(in, "status")), "active", "%s", answer);
    char id[37], on_chain_id[67];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(in, "id")));
    snprintf(on_chain_id, sizeof(on_chain_id), "%s",
             json_string_value(json_object_get(in, "onChainId")));
    json_decref(in);

    /* due: paid once, by the actor the creation made */
    engine_advance(start - engine_now());
    cr_assert(engine_wait_field(token, id, "executionCount", "1", OUTCOME_MS),
              "intent %s was not executed", id);
    cr_assert_eq(engine_executed_count(on_chain_id), 1);
    cr_assert_eq(engine_usdc_balance(ENGINE_RECIPIENT), before + AMOUNT);
    cr_assert(
        engine_wait_field(token, id, "nextExecution", engine_time_text(start + 86400), OUTCOME_MS));
    stop_server();
}
