/*
 * The intent engine end to end: the intentd binary with its engine and executor on a private
 * anvil (registry and test USDC deployed), intents created and signed through the API, and the
 * engine's clock moved together with anvil's (POST /internal/test/clock + evm_increaseTime), so
 * that days and months pass in seconds and nothing sleeps for a period. What is checked is what
 * the chain and the database hold: the registry's executedCount, the recipient's balance, the
 * intent object, notification rows.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "chain/rfc3339.h"
#include "support/engine_env.h"
#include "support/ws_client.h"

#define OUTCOME_MS 30000 /* an execution confirmed on anvil (1 s blocks), with margin for ASan */
#define USDC(n) ((uint64_t)(n)*1000000u)

static const char *const anvil_args[] = {"--block-time", "1", NULL};
static char token[4096], owner[CHAIN_ADDR_STR_SIZE], body[8192];

static void setup(void)
{
    engine_chain_start(anvil_args);
    engine_server_start(NULL);
    session(KEY_A, token, sizeof(token));
    address_of(KEY_A, owner);
}

static const char *str(json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s != NULL ? s : "(null)";
}

/* An intent body paying `amount` USDC to the recipient. */
static const char *intent_body(const char *amount, const char *frequency, int64_t start_at,
                               const char *extra)
{
    char start[CHAIN_RFC3339_SIZE];
    chain_rfc3339_format(start_at, start);
    snprintf(body, sizeof(body),
             "{\"name\":\"rent\",\"recipient\":\"%s\",\"token\":\"USDC\",\"amount\":\"%s\","
             "\"frequency\":\"%s\",\"startAt\":\"%s\"%s%s}",
             ENGINE_RECIPIENT, amount, frequency, start, extra != NULL ? "," : "",
             extra != NULL ? extra : "");
    return body;
}

static int64_t field_time(json_t *intent, const char *name)
{
    int64_t t = 0;
    uint32_t frac_ns;
    const char *s = json_string_value(json_object_get(intent, name));
    cr_assert_not_null(s, "%s is null", name);
    cr_assert_eq(chain_rfc3339_parse(s, strlen(s), &t, &frac_ns), CHAIN_OK, "%s", s);
    return t;
}

static int notifications(const char *id, const char *type)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM notifications WHERE intent_id = '%s' AND type = '%s'", id, type);
    return atoi(db_value(sql));
}

Test(engine, daily_intent_pays_each_period_once, .init = setup, .fini = engine_teardown,
     .timeout = 180)
{
    engine_mint(owner, USDC(1000));
    engine_approve(owner, USDC(1000));
    uint64_t before = engine_usdc_balance(ENGINE_RECIPIENT);
    int64_t start = engine_now() + 3600;
    char id[37];
    json_t *in = engine_create_intent(token, KEY_A, intent_body("10", "daily", start, NULL), id);
    cr_assert_eq(field_time(in, "nextExecution"), start);
    char on_chain_id[67];
    snprintf(on_chain_id, sizeof(on_chain_id), "%s", str(in, "onChainId"));
    json_decref(in);

    /* not due yet: nothing happens */
    engine_advance(1800);
    usleep(500000);
    in = engine_get_intent(token, id);
    cr_assert_eq(json_integer_value(json_object_get(in, "executionCount")), 0);
    json_decref(in);
    cr_assert_eq(engine_executed_count(on_chain_id), 0);

    /* due: paid once, and the next period is the next day */
    engine_advance_to(start);
    engine_wait_count(token, id, 1, OUTCOME_MS);
    cr_assert_eq(engine_executed_count(on_chain_id), 1);
    cr_assert_eq(engine_usdc_balance(ENGINE_RECIPIENT), before + USDC(10));
    cr_assert(
        engine_wait_field(token, id, "nextExecution", engine_time_text(start + 86400), OUTCOME_MS));
    in = engine_get_intent(token, id);
    cr_assert_str_eq(str(in, "status"), "active");
    json_decref(in);

    /* a day later: the second period, once */
    engine_advance_to(start + 86400);
    engine_wait_count(token, id, 2, OUTCOME_MS);
    usleep(1500000); /* a second execution of the same period would show within a block */
    cr_assert_eq(engine_executed_count(on_chain_id), 2);
    cr_assert_eq(engine_usdc_balance(ENGINE_RECIPIENT), before + USDC(20));
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(period::text, ',' ORDER BY period) FROM executions"
             " WHERE intent_id = '%s' AND status = 'confirmed'",
             id);
    cr_assert_str_eq(db_value(sql), "0,1");
    stop_server();
}

/* Monthly keeps the day of month of startAt, clamped: Jan 31 -> Feb 29 (2028 is a leap year)
 * -> Mar 31; and maxExecutions 3 completes it. */
Test(engine, monthly_across_month_ends_and_a_leap_year, .init = setup, .fini = engine_teardown,
     .timeout = 180)
{
    engine_mint(owner, USDC(1000));
    engine_approve(owner, USDC(1000));
    int64_t jan31 = 1832932800; /* 2028-01-31T12:00:00Z */
    cr_assert_str_eq(engine_time_text(jan31), "2028-01-31T12:00:00Z");
    char id[37];
    json_decref(engine_create_intent(
        token, KEY_A, intent_body("1.5", "monthly", jan31, "\"maxExecutions\":3"), id));
    engine_advance_to(jan31);
    engine_wait_count(token, id, 1, OUTCOME_MS);
    cr_assert(engine_wait_field(token, id, "nextExecution", "2028-02-29T12:00:00Z", OUTCOME_MS));
    engine_advance_to(jan31 + 29 * 86400);
    engine_wait_count(token, id, 2, OUTCOME_MS);
    cr_assert(engine_wait_field(token, id, "nextExecution", "2028-03-31T12:00:00Z", OUTCOME_MS));
    engine_advance_to(jan31 + 60 * 86400);
    engine_wait_count(token, id, 3, OUTCOME_MS);
    cr_assert(engine_wait_field(token, id, "status", "completed", OUTCOME_MS));
    cr_assert(engine_wait_field(token, id, "nextExecution", "null", OUTCOME_MS));
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE subject_id = '%s' AND action ="
             " 'intent.complete'",
             id);
    cr_assert_str_eq(db_value(sql), "1", "the completion is audited once");
    stop_server();
}

/* Advances past the intent's retry time and waits until the engine has looked again (the
 * retry time moved or the status changed). */
static json_t *retry(const char *id)
{
    json_t *in = engine_get_intent(token, id);
    int64_t next = field_time(in, "nextExecution");
    json_decref(in);
    engine_advance_to(next + 1);
    for (int i = 0; i != 600; ++i) {
        in = engine_get_intent(token, id);
        const char *n = json_string_value(json_object_get(in, "nextExecution"));
        if (n == NULL || strcmp(n, engine_time_text(next)) != 0 ||
            strcmp(str(in, "status"), "delayed") != 0)
            return in;
        json_decref(in);
        usleep(50000);
    }
    cr_assert_fail("the engine did not retry");
    return NULL;
}

static void assert_delayed(json_t *in, const char *reason)
{
    cr_assert_str_eq(str(in, "status"), "delayed");
    cr_assert_str_eq(str(in, "delayReason"), reason);
    cr_assert_gt(field_time(in, "nextExecution"), engine_now() - 1);
    json_decref(in);
}

/* Each balance/allowance constraint failing in api.md's order, one notification per change of
 * reason (not per retry), then paid once they all hold, and back to active. */
Test(engine, balance_buffer_and_allowance_delay_then_clear, .init = setup, .fini = engine_teardown,
     .timeout = 240)
{
    int64_t start = engine_now() + 600;
    char id[37];
    json_decref(engine_create_intent(
        token, KEY_A, intent_body("10", "daily", start, "\"safetyBuffer\":\"5\""), id));
    engine_advance_to(start);
    cr_assert(engine_wait_field(token, id, "delayReason", "insufficient_balance", OUTCOME_MS));
    cr_assert_eq(notifications(id, "execution_delayed"), 1);
    /* the same reason on the retry: no second notification */
    assert_delayed(retry(id), "insufficient_balance");
    cr_assert_eq(notifications(id, "execution_delayed"), 1);

    engine_mint(owner, USDC(12)); /* >= amount, < amount + buffer */
    assert_delayed(retry(id), "below_safety_buffer");
    engine_mint(owner, USDC(10)); /* 22: enough, but nothing approved */
    assert_delayed(retry(id), "allowance_too_low");
    cr_assert_eq(notifications(id, "execution_delayed"), 3);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE subject_id = '%s' AND action = 'intent.delayed'",
             id);
    cr_assert_str_eq(db_value(sql), "3");

    engine_approve(owner, USDC(100));
    json_decref(retry(id));
    engine_wait_count(token, id, 1, OUTCOME_MS);
    cr_assert(engine_wait_field(token, id, "status", "active", OUTCOME_MS));
    cr_assert(engine_wait_field(token, id, "delayReason", "null", OUTCOME_MS));
    cr_assert_eq(engine_usdc_balance(owner), USDC(12));
    /* 12 left: the next payment would take it under the buffer: warned once for the period */
    cr_assert_eq(notifications(id, "low_buffer"), 1, "notifications %s",
                 db_value("SELECT string_agg(type || coalesce(i.low_buffer_period, -1), ',')"
                          " FROM notifications n JOIN intents i ON i.id = n.intent_id"));
    stop_server();
}

/* The gas cap: a base fee above it delays the execution; once the fee falls, it goes through. */
Test(engine, gas_price_above_cap_delays_then_lets_through, .init = setup, .fini = engine_teardown,
     .timeout = 240)
{
    engine_mint(owner, USDC(100));
    engine_approve(owner, USDC(100));
    json_decref(engine_rpc("anvil_setNextBlockBaseFeePerGas", "[\"0xba43b7400\"]")); /* 50 gwei */
    json_decref(engine_rpc("evm_mine", "[]"));
    int64_t start = engine_now() + 600;
    char id[37];
    json_decref(engine_create_intent(
        token, KEY_A,
        intent_body("10", "daily", start, "\"constraints\":{\"maxGasPriceGwei\":\"5\"}"), id));
    usleep(1500000); /* the gas oracle refreshes every 500 ms in these tests */
    engine_advance_to(start);
    cr_assert(engine_wait_field(token, id, "delayReason", "gas_price_above_cap", OUTCOME_MS));
    json_decref(engine_rpc("anvil_setNextBlockBaseFeePerGas", "[\"0x5f5e100\"]")); /* 0.1 gwei */
    json_decref(engine_rpc("evm_mine", "[]"));
    usleep(1500000);
    json_decref(retry(id));
    engine_wait_count(token, id, 1, OUTCOME_MS);
    cr_assert(engine_wait_field(token, id, "status", "active", OUTCOME_MS));
    stop_server();
}

/* A time window that is closed at the due time: delayed until it opens, then paid. */
Test(engine, outside_time_window_waits_for_the_opening, .init = setup, .fini = engine_teardown,
     .timeout = 180)
{
    engine_mint(owner, USDC(100));
    engine_approve(owner, USDC(100));
    int64_t start = engine_now() + 600;
    start -= start % 60;
    int64_t open = start + 3 * 3600; /* opens three hours after the due time, for one hour */
    char extra[256];
    snprintf(extra, sizeof(extra),
             "\"constraints\":{\"timeWindow\":{\"start\":\"%02d:%02d\",\"end\":\"%02d:%02d\","
             "\"utcOffset\":\"+00:00\"}}",
             (int)(open % 86400 / 3600), (int)(open % 3600 / 60),
             (int)((open + 3600) % 86400 / 3600), (int)((open + 3600) % 3600 / 60));
    char id[37];
    json_decref(engine_create_intent(token, KEY_A, intent_body("10", "daily", start, extra), id));
    engine_advance_to(start);
    cr_assert(engine_wait_field(token, id, "delayReason", "outside_time_window", OUTCOME_MS));
    cr_assert(engine_wait_field(token, id, "nextExecution", engine_time_text(open), OUTCOME_MS));
    engine_advance_to(open);
    engine_wait_count(token, id, 1, OUTCOME_MS);
    cr_assert(engine_wait_field(token, id, "status", "active", OUTCOME_MS));
    stop_server();
}

/* Paused while due: nothing is paid; resumed: paid. Cancelled while due: never paid. */
Test(engine, pause_resume_and_cancel_while_due, .init = setup, .fini = engine_teardown,
     .timeout = 180)
{
    engine_mint(owner, USDC(100));
    engine_approve(owner, USDC(100));
    int64_t start = engine_now() + 600;
    char a[37], b[37], path[128];
    json_t *in = engine_create_intent(token, KEY_A, intent_body("10", "daily", start, NULL), a);
    char on_chain_a[67];
    snprintf(on_chain_a, sizeof(on_chain_a), "%s", str(in, "onChainId"));
    json_decref(in);
    in = engine_create_intent(token, KEY_A, intent_body("7", "daily", start, NULL), b);
    char on_chain_b[67];
    snprintf(on_chain_b, sizeof(on_chain_b), "%s", str(in, "onChainId"));
    json_decref(in);
    snprintf(path, sizeof(path), "/api/intents/%s/pause", a);
    cr_assert_eq(http("POST", path, token, NULL, "{}", body, sizeof(body)), 200, "%s", body);
    snprintf(path, sizeof(path), "/api/intents/%s", b);
    cr_assert_eq(http("DELETE", path, token, NULL, NULL, body, sizeof(body)), 200, "%s", body);

    engine_advance_to(start + 60);
    usleep(3000000); /* were anything handed over, anvil (1 s blocks) would have mined it */
    cr_assert_eq(engine_executed_count(on_chain_a), 0);
    cr_assert_eq(engine_executed_count(on_chain_b), 0);
    cr_assert_str_eq(db_value("SELECT count(*) FROM executions"), "0");

    snprintf(path, sizeof(path), "/api/intents/%s/resume", a);
    cr_assert_eq(http("POST", path, token, NULL, "{}", body, sizeof(body)), 200, "%s", body);
    engine_wait_count(token, a, 1, OUTCOME_MS);
    cr_assert_eq(engine_executed_count(on_chain_a), 1);
    cr_assert_eq(engine_executed_count(on_chain_b), 0);
    in = engine_get_intent(token, b);
    cr_assert_str_eq(str(in, "status"), "cancelled");
    json_decref(in);
    stop_server();
}

/* Intents loaded at start: an active intent that came due while the server was down is paid
 * once after the restart, and its next due time is computed again from the row. */
Test(engine, restart_loads_live_intents, .init = setup, .fini = engine_teardown, .timeout = 180)
{
    engine_mint(owner, USDC(100));
    engine_approve(owner, USDC(100));
    int64_t start = engine_now() + 600;
    char id[37];
    json_t *in = engine_create_intent(token, KEY_A, intent_body("10", "daily", start, NULL), id);
    char on_chain_id[67];
    snprintf(on_chain_id, sizeof(on_chain_id), "%s", str(in, "onChainId"));
    json_decref(in);
    engine_server_kill();
    engine_server_restart();
    engine_advance_to(start);
    engine_wait_count(token, id, 1, OUTCOME_MS);
    cr_assert_eq(engine_executed_count(on_chain_id), 1);
    cr_assert(
        engine_wait_field(token, id, "nextExecution", engine_time_text(start + 86400), OUTCOME_MS));
    stop_server();
}

/* An RPC outage (anvil stopped with SIGSTOP: calls time out) while an intent is due: delayed as
 * chain_unavailable; once the node answers again, paid once. */
/* How long the recovery from the outage may take at most: the breakers' cooldown, the backoff
 * of the delays and a payment, on a loaded machine under ASan. A bound, not an expectation. */
#define RECOVERY_MS 150000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Lets the delayed intent `id` retry until it is paid: whenever its retry time lies ahead, both
 * clocks move to it; otherwise a check or a payment is under way, and the intent is only polled.
 * Nothing assumes how long a check, a breaker's cooldown or a confirmation takes: the only bound
 * is `deadline_ms`. Returns whether it was paid. */
static bool retry_until_paid(const char *id, int deadline_ms)
{
    int64_t until = mono_ms() + deadline_ms;
    while (mono_ms() < until) {
        json_t *in = engine_get_intent(token, id);
        bool paid = json_integer_value(json_object_get(in, "executionCount")) == 1;
        bool delayed = strcmp(str(in, "status"), "delayed") == 0;
        int64_t next = delayed ? field_time(in, "nextExecution") : 0;
        json_decref(in);
        if (paid)
            return true;
        if (delayed && next >= engine_now())
            engine_advance_to(next + 1);
        else
            usleep(100000);
    }
    return false;
}

Test(engine, rpc_outage_delays_as_chain_unavailable_then_recovers, .init = setup,
     .fini = engine_teardown, .timeout = 300)
{
    engine_mint(owner, USDC(100));
    engine_approve(owner, USDC(100));
    int64_t start = engine_now() + 600;
    char id[37];
    json_t *in = engine_create_intent(token, KEY_A, intent_body("10", "daily", start, NULL), id);
    char on_chain_id[67];
    snprintf(on_chain_id, sizeof(on_chain_id), "%s", str(in, "onChainId"));
    json_decref(in);

    cr_assert_eq(kill(engine_anvil.pid, SIGSTOP), 0);
    engine_set_offset(700); /* the engine's clock only: anvil cannot answer now */
    /* the reads time out (their deadline), then the delay is recorded: bounded, generously */
    bool delayed = engine_wait_field(token, id, "delayReason", "chain_unavailable", 120000);
    cr_assert_eq(kill(engine_anvil.pid, SIGCONT), 0);
    cr_assert(delayed, "not delayed as chain_unavailable");
    json_decref(engine_rpc("evm_increaseTime", "[700]")); /* anvil back in step */
    json_decref(engine_rpc("evm_mine", "[]"));

    /* the breakers may keep the node closed for a while and each failed retry backs off */
    cr_assert(retry_until_paid(id, RECOVERY_MS), "not paid after the outage");
    cr_assert(engine_wait_field(token, id, "status", "active", OUTCOME_MS));
    cr_assert_eq(engine_executed_count(on_chain_id), 1);
    stop_server();
}

/* Without ENGINE_TEST_CLOCK=1 the clock cannot be moved: the endpoint does not exist. With it,
 * a bad body is a 400 naming the field and moves nothing. */
Test(engine, test_clock_only_in_test_mode, .fini = engine_teardown, .timeout = 60)
{
    start_server();
    cr_assert_eq(http("POST", "/internal/test/clock", NULL, NULL, "{\"advanceSeconds\":60}", body,
                      sizeof(body)),
                 404, "%s", body);
    stop_server();
    engine_chain_start(anvil_args);
    engine_server_start(NULL);
    int64_t before = engine_now();
    cr_assert_eq(http("POST", "/internal/test/clock", NULL, NULL, "{\"advanceSeconds\":-5}", body,
                      sizeof(body)),
                 400, "%s", body);
    cr_assert(strstr(body, "advanceSeconds") != NULL, "%s", body);
    cr_assert_lt(engine_now() - before, 60);
    cr_assert_eq(http("POST", "/internal/test/clock", NULL, NULL, "{\"advanceSeconds\":86400}",
                      body, sizeof(body)),
                 200, "%s", body);
    cr_assert_geq(engine_now() - before, 86400);
    stop_server();
}

/* Every delay reaches the user live: the owner's WebSocket gets notification.created (an
 * execution_delayed notification) and intent.delayed (the intent with its reason). */
Test(engine, a_delay_is_pushed_to_the_owners_socket, .init = setup, .fini = engine_teardown,
     .timeout = 120)
{
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *const headers[] = {auth, NULL};
    int status;
    ws_client_t *ws = ws_connect(port, "/api/ws", headers, 0, &status, body, sizeof(body));
    cr_assert_not_null(ws, "no WebSocket: %d %s", status, body);
    int64_t start = engine_now() + 600;
    char id[37];
    json_decref(engine_create_intent(token, KEY_A, intent_body("10", "daily", start, NULL), id));
    engine_advance_to(start); /* no balance: insufficient_balance */
    bool notified = false, delayed = false;
    for (int i = 0; i != 50 && !(notified && delayed); ++i) {
        ws_frame_t f;
        if (ws_next_text(ws, &f, 15000, NULL) != 1)
            break;
        json_t *e = json_loads(f.data, 0, NULL);
        const char *type = str(e, "type");
        json_t *data = json_object_get(e, "data");
        if (strcmp(type, "notification.created") == 0 &&
            strcmp(str(data, "type"), "execution_delayed") == 0)
            notified = true;
        if (strcmp(type, "intent.delayed") == 0 && strcmp(str(data, "id"), id) == 0) {
            cr_assert_str_eq(str(data, "delayReason"), "insufficient_balance");
            cr_assert_str_eq(str(data, "status"), "delayed");
            delayed = true;
        }
        json_decref(e);
        ws_frame_dispose(&f);
    }
    ws_client_free(ws);
    cr_assert(notified, "no execution_delayed notification pushed");
    cr_assert(delayed, "no intent.delayed event pushed");
    stop_server();
}
