/*
 * What the chain follower writes reaches the users: the intentd binary with its engine on a
 * private anvil (automine), the owner's WebSocket and the API's read cache (its TTL set far
 * beyond the test, so that only an event can make a GET answer fresh).
 *
 * - A reorg deeper than CONFIRMATIONS takes a confirmed payment off the chain: its execution
 *   goes back to broadcast (an execution.broadcast event), the stored transaction is sent again
 *   and, mined in another block, the execution is confirmed there (execution.confirmed with the
 *   new blockNumber); GET /api/user/history answers the new block at once.
 * - A completed intent whose only payment a reorg undid is active again, announced and audited,
 *   and pays again, once; or, when that payment is mined again, completes again without paying
 *   twice.
 * - Another executor's execution of our intent is adopted: execution.confirmed on the socket.
 * - The owner revokes the intent on chain: the intent is cancelled (the API and an
 *   intent.updated event say so) and its next period is not paid, while a twin intent of the
 *   same owner and schedule is.
 * - The registry counts an execution the database lacks (paid while intentd was down, the log
 *   cursor past it): at the due time nothing is signed, the execution is adopted, and the next
 *   period is the engine's. Also through a node that caps the block range of eth_getLogs: the
 *   logs are read from the registry's deployment block in windows the node accepts.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "chain/abi.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/rfc3339.h"
#include "support/engine_env.h"
#include "support/rpc_proxy.h"
#include "support/ws_client.h"

#define OUTCOME_MS 30000 /* an execution confirmed, with margin for ASan */
#define USDC(n) ((uint64_t)(n)*1000000u)
/* anvil's dev key 5: another executor (the registry is open to anyone) */
#define KEY_OTHER "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"

/* the answer cache keeps answers for the whole test: only invalidation refreshes them */
static const char *const server_env[] = {"API_CACHE_TTL_MS=600000", NULL};
static char token[4096], owner[CHAIN_ADDR_STR_SIZE];
static char answer[65536];

/* An intent signed by the owner: its id, onChainId, signed terms and signature. */
typedef struct st_signed_intent_t {
    char id[37];
    char on_chain_id[67];
    chain_intent_t terms;
    uint8_t sig[CHAIN_SIG_LEN];
} signed_intent_t;

static void setup(void)
{
    engine_chain_start(NULL);
    engine_server_start(server_env);
    session(KEY_A, token, sizeof(token));
    address_of(KEY_A, owner);
    engine_mint(owner, USDC(1000));
    engine_approve(owner, USDC(1000));
}

static const char *str(json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s != NULL ? s : "(null)";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t u64_of(json_t *msg, const char *name)
{
    return strtoull(str(msg, name), NULL, 10);
}

static void addr_of(json_t *msg, const char *name, chain_addr_t *out)
{
    const char *s = str(msg, name);
    cr_assert_eq(chain_addr_parse(out, s, strlen(s)), CHAIN_OK, "%s", name);
}

/* The terms of a typedData's message. */
static void terms_of(json_t *typed, chain_intent_t *t)
{
    json_t *msg = json_object_get(typed, "message");
    memset(t, 0, sizeof(*t));
    addr_of(msg, "owner", &t->owner);
    addr_of(msg, "token", &t->token);
    addr_of(msg, "recipient", &t->recipient);
    const char *amount = str(msg, "amount");
    cr_assert_eq(chain_u256_from_dec(&t->amount, amount, strlen(amount)), CHAIN_OK);
    t->min_interval = u64_of(msg, "minInterval");
    t->valid_after = u64_of(msg, "validAfter");
    t->valid_until = u64_of(msg, "validUntil");
    t->max_executions = (uint32_t)u64_of(msg, "maxExecutions");
    const char *salt = str(msg, "salt");
    cr_assert_eq(chain_hex_decode_exact(t->salt, 32, salt, strlen(salt), CHAIN_HEX_0X_OPTIONAL),
                 CHAIN_OK);
}

/* Creates a daily intent of 10 USDC from `start_at` (`extra`: more members, or ""), signs it as
 * the owner and activates it. */
static void create_signed_with(int64_t start_at, const char *extra, signed_intent_t *out)
{
    char start[CHAIN_RFC3339_SIZE], body[1024], path[128], payload[256], hex[133];
    chain_rfc3339_format(start_at, start);
    snprintf(body, sizeof(body),
             "{\"name\":\"rent\",\"recipient\":\"%s\",\"token\":\"USDC\",\"amount\":\"10\","
             "\"frequency\":\"daily\",\"startAt\":\"%s\"%s}",
             ENGINE_RECIPIENT, start, extra);
    cr_assert_eq(http("POST", "/api/intents", token, NULL, body, answer, sizeof(answer)), 201, "%s",
                 answer);
    json_t *intent = json_loads(answer, 0, NULL);
    snprintf(out->id, sizeof(out->id), "%s", str(intent, "id"));
    terms_of(json_object_get(intent, "typedData"), &out->terms);
    json_decref(intent);
    chain_addr_t registry;
    chain_addr_parse(&registry, engine_registry, strlen(engine_registry));
    chain_eip712_domain_t d;
    uint8_t digest[32];
    chain_intent_domain(&d, 31337, &registry);
    chain_intent_digest(&d, &out->terms, digest);
    chain_key_t *k = key(KEY_A);
    chain_sig_t sig;
    chain_key_sign(k, digest, &sig);
    chain_key_free(k);
    chain_sig_serialize(&sig, out->sig);
    chain_hex_encode(hex, sizeof(hex), out->sig, sizeof(out->sig), CHAIN_HEX_0X);
    snprintf(path, sizeof(path), "/api/intents/%s/signature", out->id);
    snprintf(payload, sizeof(payload), "{\"signature\":\"%s\"}", hex);
    cr_assert_eq(http("POST", path, token, NULL, payload, answer, sizeof(answer)), 200, "%s",
                 answer);
    intent = json_loads(answer, 0, NULL);
    cr_assert_str_eq(str(intent, "status"), "active", "%s", answer);
    snprintf(out->on_chain_id, sizeof(out->on_chain_id), "%s", str(intent, "onChainId"));
    json_decref(intent);
}

static void create_signed(int64_t start_at, signed_intent_t *out)
{
    create_signed_with(start_at, "", out);
}

static ws_client_t *open_socket(void)
{
    char auth[4200], body[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *const headers[] = {auth, NULL};
    int status;
    ws_client_t *ws = ws_connect(port, "/api/ws", headers, 0, &status, body, sizeof(body));
    cr_assert_not_null(ws, "no WebSocket: %d %s", status, body);
    return ws;
}

/* Reads events until one of `type` whose data has `field` = `value` (and `field2` = `value2`
 * when not NULL); returns its data (decref it), or NULL when none came within `timeout_ms`.
 * The events before it are passed over. */
static json_t *wait_event(ws_client_t *ws, const char *type, const char *field, const char *value,
                          const char *field2, const char *value2, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (int n = 0; n != 1000 && now_ms() < deadline; ++n) {
        ws_frame_t f;
        if (ws_next_text(ws, &f, (int)(deadline - now_ms()) + 1, NULL) != 1)
            return NULL;
        json_t *e = json_loads(f.data, 0, NULL);
        ws_frame_dispose(&f);
        json_t *data = json_incref(json_object_get(e, "data"));
        bool match = strcmp(str(e, "type"), type) == 0 && strcmp(str(data, field), value) == 0 &&
                     (field2 == NULL || strcmp(str(data, field2), value2) == 0);
        json_decref(e);
        if (match)
            return data;
        json_decref(data);
    }
    return NULL;
}

/* The blockNumber GET /api/user/history answers for execution `exec_id` (-1: null, -2: absent). */
static long long history_block(const char *exec_id)
{
    cr_assert_eq(http("GET", "/api/user/history", token, NULL, NULL, answer, sizeof(answer)), 200,
                 "%s", answer);
    json_t *doc = json_loads(answer, 0, NULL), *items = json_object_get(doc, "items"), *item;
    size_t i;
    long long block = -2;
    json_array_foreach(items, i, item)
    {
        if (strcmp(str(item, "id"), exec_id) == 0) {
            json_t *b = json_object_get(item, "blockNumber");
            block = json_is_integer(b) ? (long long)json_integer_value(b) : -1;
        }
    }
    json_decref(doc);
    return block;
}

/* Takes an anvil snapshot; `revert` gets the params of the evm_revert that goes back to it. */
static void snapshot(char revert[128])
{
    json_t *snap = engine_rpc("evm_snapshot", "[]");
    snprintf(revert, 128, "[\"%s\"]", json_string_value(snap));
    json_decref(snap);
}

static void revert_to(const char *revert)
{
    json_t *ok = engine_rpc("evm_revert", revert);
    cr_assert(json_is_true(ok), "evm_revert failed");
    json_decref(ok);
}

/* Creates a signed intent due at `start` with the `extra` fields (one payment only), lets it be
 * paid and completed, and opens a live socket for what follows. */
static ws_client_t *complete_and_listen(int64_t start, const char *extra, signed_intent_t *s)
{
    create_signed_with(start, extra, s);
    engine_advance_to(start);
    engine_wait_count(token, s->id, 1, OUTCOME_MS);
    cr_assert(engine_wait_field(token, s->id, "status", "completed", OUTCOME_MS), "not completed");
    return open_socket();
}

Test(follower_events, a_deep_reorg_is_pushed_as_broadcast_then_confirmed_in_the_new_block,
     .init = setup, .fini = engine_teardown, .timeout = 180)
{
    char revert[128];
    snapshot(revert);
    uint64_t paid_before = engine_usdc_balance(ENGINE_RECIPIENT);
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    create_signed(start, &s);
    ws_client_t *ws = open_socket();
    engine_advance_to(start);
    engine_wait_count(token, s.id, 1, OUTCOME_MS);
    char sql[256], exec_id[37], old_block[32];
    snprintf(sql, sizeof(sql),
             "SELECT id::text || ' ' || block_number FROM executions WHERE intent_id = '%s'"
             " AND status = 'confirmed'",
             s.id);
    cr_assert_eq(sscanf(db_value(sql), "%36s %31s", exec_id, old_block), 2, "%s", db_value(sql));
    json_t *e = wait_event(ws, "execution.confirmed", "id", exec_id, NULL, NULL, OUTCOME_MS);
    cr_assert_not_null(e, "the first confirmation was not pushed");
    json_decref(e);
    cr_assert_eq(history_block(exec_id), atoll(old_block)); /* now in the read cache */

    /* the chain without the payment, longer than the one that had it, later than its start;
     * blocks come only when the test mines them, so the transaction sent again waits */
    revert_to(revert);
    json_decref(engine_rpc("evm_setAutomine", "[false]"));
    char params[64];
    snprintf(params, sizeof(params), "[%lld]", (long long)engine_now() + 5);
    json_decref(engine_rpc("evm_setNextBlockTimestamp", params));
    for (int i = 0; i != 4; ++i)
        json_decref(engine_rpc("evm_mine", "[]"));

    e = wait_event(ws, "execution.broadcast", "id", exec_id, NULL, NULL, OUTCOME_MS);
    cr_assert_not_null(e, "the execution that left the chain was not pushed back to broadcast");
    cr_assert_str_eq(str(e, "status"), "broadcast");
    cr_assert(json_is_null(json_object_get(e, "blockNumber")), "an unmined row names a block");
    json_decref(e);
    cr_assert_eq(history_block(exec_id), -1, "the cached history still names the old block");
    json_t *pending = engine_rpc("eth_getBlockByNumber", "[\"pending\", false]");
    cr_assert_gt(json_array_size(json_object_get(pending, "transactions")), 0,
                 "the transaction was not sent again");
    json_decref(pending);
    json_decref(engine_rpc("evm_mine", "[]"));
    e = wait_event(ws, "execution.confirmed", "id", exec_id, NULL, NULL, OUTCOME_MS);
    cr_assert_not_null(e, "the execution mined again was not pushed as confirmed");
    long long new_block = (long long)json_integer_value(json_object_get(e, "blockNumber"));
    json_decref(e);
    ws_client_free(ws);
    cr_assert_neq(new_block, atoll(old_block), "the payment was mined again in another block");
    /* the cached history was invalidated by the events: the new block at once, no waiting */
    cr_assert_eq(history_block(exec_id), new_block);
    snprintf(sql, sizeof(sql),
             "SELECT block_number || ' 0x' || encode(block_hash, 'hex') FROM executions WHERE"
             " id = '%s' AND status = 'confirmed'",
             exec_id);
    char row[128], hash[80];
    unsigned long long number;
    cr_assert_eq(sscanf(db_value(sql), "%llu %79s", &number, hash), 2);
    cr_assert_eq((long long)number, new_block);
    snprintf(params, sizeof(params), "[\"0x%llx\", false]", number);
    json_t *block = engine_rpc("eth_getBlockByNumber", params);
    cr_assert_str_eq(str(block, "hash"), hash, "the row's block must be canonical");
    json_decref(block);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE intent_id = '%s'", s.id);
    snprintf(row, sizeof(row), "%s", db_value(sql));
    cr_assert_str_eq(row, "1");
    cr_assert_eq(engine_executed_count(s.on_chain_id), 1);
    cr_assert_eq(engine_usdc_balance(ENGINE_RECIPIENT), paid_before + USDC(10));
    stop_server();
}

/* The query of how many intent.reopened audit rows intent `id` has (a static buffer). */
static const char *reopened_sql(const char *id)
{
    static char sql[160];
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM audit_log WHERE subject_id = '%s' AND action = 'intent.reopened'",
        id);
    return sql;
}

/* The intent `id`, completed before a reorg undid its payment, is announced active again with
 * its count given back and a next execution, and its reopening is audited. */
static void expect_reopened(ws_client_t *ws, const char *id)
{
    json_t *e = wait_event(ws, "intent.updated", "id", id, "status", "active", OUTCOME_MS);
    cr_assert_not_null(e, "the intent whose payment the reorg undid was not announced active");
    cr_assert_eq(json_integer_value(json_object_get(e, "executionCount")), 0);
    cr_assert(json_is_string(json_object_get(e, "nextExecution")), "active without nextExecution");
    json_decref(e);
    cr_assert(engine_wait_db(reopened_sql(id), "1", OUTCOME_MS), "the reopening was not audited");
}

/* The only payment of an intent (maxExecutions 1, or an endAt before its second period) is
 * taken off the chain by a reorg after the intent completed, and fails where it is mined again
 * (the new chain's time is before the intent's validAfter). The period is given back and the
 * intent is active again: announced (intent.updated), audited (intent.reopened), with an actor
 * that makes the payment again, once, after which the intent is completed again. `end`: the
 * intent's endAt (NULL: maxExecutions 1 instead). */
static void undo_completing_payment_and_pay_again(const char *end)
{
    char revert[128], sql[512], params[64], extra[128];
    snapshot(revert);
    uint64_t paid_before = engine_usdc_balance(ENGINE_RECIPIENT);
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    if (end == NULL)
        snprintf(extra, sizeof(extra), ",\"maxExecutions\":1");
    else
        snprintf(extra, sizeof(extra), ",\"endAt\":\"%s\"", end);
    ws_client_t *ws = complete_and_listen(start, extra, &s);

    /* the chain without the payment, back at its time before startAt */
    revert_to(revert);
    for (int i = 0; i != 3; ++i)
        json_decref(engine_rpc("evm_mine", "[]"));
    expect_reopened(ws, s.id);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) > 0 FROM executions WHERE intent_id = '%s' AND status = 'failed'"
             " AND error LIKE '%%not yet valid%%'",
             s.id);
    cr_assert(engine_wait_db(sql, "t", OUTCOME_MS), "the payment sent again did not fail there");

    /* the chain's time catches up with the engine's: the period is paid again (the engine's
     * retries of the failed period back off, so the clocks move on until it is) */
    snprintf(params, sizeof(params), "[%lld]", (long long)engine_now() + 1);
    json_decref(engine_rpc("evm_setNextBlockTimestamp", params));
    json_decref(engine_rpc("evm_mine", "[]"));
    bool paid = false;
    for (int i = 0; i != 12 && !paid; ++i) {
        engine_advance(120);
        paid = engine_wait_field(token, s.id, "executionCount", "1", 5000);
    }
    cr_assert(paid, "the period given back was not paid again");
    cr_assert(engine_wait_field(token, s.id, "status", "completed", OUTCOME_MS),
              "not completed again");
    json_t *e = wait_event(ws, "intent.updated", "id", s.id, "status", "completed", OUTCOME_MS);
    cr_assert_not_null(e, "the second completion was not announced");
    json_decref(e);
    ws_client_free(ws);
    cr_assert_eq(engine_executed_count(s.on_chain_id), 1);
    cr_assert_eq(engine_usdc_balance(ENGINE_RECIPIENT), paid_before + USDC(10));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE intent_id = '%s' AND status IN ('signed',"
             " 'broadcast', 'confirmed')",
             s.id);
    cr_assert_str_eq(db_value(sql), "1", "one live execution for the one period");
    cr_assert_str_eq(db_value(reopened_sql(s.id)), "1");
    stop_server();
}

Test(follower_events, a_completed_intent_whose_payment_a_reorg_undid_is_active_and_pays_once,
     .init = setup, .fini = engine_teardown, .timeout = 240)
{
    undo_completing_payment_and_pay_again(NULL); /* completed by maxExecutions 1 */
}

Test(follower_events, an_intent_completed_by_its_end_whose_payment_a_reorg_undid_pays_once,
     .init = setup, .fini = engine_teardown, .timeout = 240)
{
    char end[CHAIN_RFC3339_SIZE]; /* one period before endAt: completed after the first */
    chain_rfc3339_format(engine_now() + 600 + 3600, end);
    undo_completing_payment_and_pay_again(end);
}

/* The same, but the payment taken off the chain is mined again as it was (the node keeps it
 * until the test mines a block): while it is out the intent is active with the period in flight
 * (announced, audited, nothing signed), and once it is mined the intent is completed again, paid
 * once. */
Test(follower_events, a_completed_intent_whose_payment_left_the_chain_completes_when_it_is_back,
     .init = setup, .fini = engine_teardown, .timeout = 240)
{
    char revert[128], sql[512], params[64];
    snapshot(revert);
    uint64_t paid_before = engine_usdc_balance(ENGINE_RECIPIENT);
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    ws_client_t *ws = complete_and_listen(start, ",\"maxExecutions\":1", &s);

    revert_to(revert);
    json_decref(engine_rpc("evm_setAutomine", "[false]"));
    snprintf(params, sizeof(params), "[%lld]", (long long)engine_now() + 5);
    json_decref(engine_rpc("evm_setNextBlockTimestamp", params));
    for (int i = 0; i != 4; ++i)
        json_decref(engine_rpc("evm_mine", "[]"));
    expect_reopened(ws, s.id);
    /* the live rows only: the first hand-over may have failed on chain and been retried before
     * the payment, and that row stays failed */
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(status, ',') FROM executions WHERE intent_id = '%s' AND status IN"
             " ('signed', 'broadcast', 'confirmed')",
             s.id);
    cr_assert_str_eq(db_value(sql), "broadcast", "the period is in flight again, nothing signed");

    json_decref(engine_rpc("evm_mine", "[]")); /* the transaction sent again is mined */
    cr_assert(engine_wait_field(token, s.id, "status", "completed", OUTCOME_MS),
              "not completed again");
    json_t *e = wait_event(ws, "intent.updated", "id", s.id, "status", "completed", OUTCOME_MS);
    cr_assert_not_null(e, "the second completion was not announced");
    cr_assert_eq(json_integer_value(json_object_get(e, "executionCount")), 1);
    json_decref(e);
    ws_client_free(ws);
    cr_assert_str_eq(db_value(sql), "confirmed", "one live execution, confirmed");
    cr_assert_eq(engine_executed_count(s.on_chain_id), 1);
    cr_assert_eq(engine_usdc_balance(ENGINE_RECIPIENT), paid_before + USDC(10));
    stop_server();
}

Test(follower_events, another_executors_execution_is_adopted_and_pushed, .init = setup,
     .fini = engine_teardown, .timeout = 180)
{
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    create_signed(start, &s);
    ws_client_t *ws = open_socket();
    /* only the chain's clock moves: the engine's period is not due, the other executor pays */
    json_decref(engine_rpc("evm_increaseTime", "[700]"));
    json_decref(engine_rpc("evm_mine", "[]"));
    uint8_t data[4096];
    size_t len;
    cr_assert_eq(chain_abi_execute(data, sizeof(data), &len, &s.terms, s.sig, sizeof(s.sig), 0),
                 CHAIN_OK);
    char other[CHAIN_ADDR_STR_SIZE];
    address_of(KEY_OTHER, other);
    engine_transact(other, engine_registry, data, len);
    json_t *e = wait_event(ws, "execution.confirmed", "intentId", s.id, NULL, NULL, OUTCOME_MS);
    cr_assert_not_null(e, "no execution.confirmed for the intent");
    cr_assert_eq(json_integer_value(json_object_get(e, "period")), 0);
    json_decref(e);
    ws_client_free(ws);
    engine_wait_count(token, s.id, 1, OUTCOME_MS);
    cr_assert_eq(engine_executed_count(s.on_chain_id), 1);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE intent_id = '%s' AND status = 'confirmed'",
             s.id);
    cr_assert_str_eq(db_value(sql), "1");
    stop_server();
}

Test(follower_events, a_revoke_on_chain_cancels_pushes_and_pays_no_more, .init = setup,
     .fini = engine_teardown, .timeout = 180)
{
    int64_t start = engine_now() + 600;
    signed_intent_t s, twin;
    create_signed(start, &s);
    create_signed(start, &twin);
    ws_client_t *ws = open_socket();
    engine_advance_to(start);
    engine_wait_count(token, s.id, 1, OUTCOME_MS);
    engine_wait_count(token, twin.id, 1, OUTCOME_MS);

    uint8_t data[4096];
    size_t len;
    cr_assert_eq(chain_abi_revoke(data, sizeof(data), &len, &s.terms), CHAIN_OK);
    engine_transact(owner, engine_registry, data, len);
    json_t *e = wait_event(ws, "intent.updated", "id", s.id, "status", "cancelled", OUTCOME_MS);
    cr_assert_not_null(e, "no intent.updated with status cancelled");
    json_decref(e);
    ws_client_free(ws);
    json_t *in = engine_get_intent(token, s.id);
    cr_assert_str_eq(str(in, "status"), "cancelled");
    cr_assert(json_is_null(json_object_get(in, "nextExecution")), "a cancelled intent is due");
    json_decref(in);

    /* the next period: the twin is paid (so the engine had its turn), the revoked one is not */
    engine_advance_to(start + 86400);
    engine_wait_count(token, twin.id, 2, OUTCOME_MS);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE intent_id = '%s'", s.id);
    cr_assert_str_eq(db_value(sql), "1", "an execution was signed for a revoked intent");
    cr_assert_eq(engine_executed_count(s.on_chain_id), 1);
    stop_server();
}

static uint64_t quantity(json_t *v)
{
    return strtoull(json_string_value(v), NULL, 16);
}

/* The executions of intent `id` as "period:status:executor" (ordered), e.g. "0:confirmed:0xab..".
 */
static const char *rows_of(const char *id)
{
    char sql[320];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(period || ':' || status || ':0x' || encode(executor, 'hex'), ','"
             " ORDER BY period, created_at) FROM executions WHERE intent_id = '%s'",
             id);
    return db_value(sql);
}

/* Creates a signed intent due at `start` (out) and kills intentd; while it is down the chain's
 * time moves to period 0, another executor pays period 0 and the log cursor passes over it, as
 * if it had started later; after a restart the intent's actor must adopt that payment (the
 * intent's only row, the other executor's) and sign nothing for the period. */
static void pay_elsewhere_then_restart(int64_t start, int64_t resume_at, signed_intent_t *out)
{
    create_signed(start, out);
    engine_server_kill();
    json_decref(engine_rpc("evm_increaseTime", "[700]"));
    json_decref(engine_rpc("evm_mine", "[]"));
    signed_intent_t s = *out;
    uint8_t data[4096];
    size_t len;
    cr_assert_eq(chain_abi_execute(data, sizeof(data), &len, &s.terms, s.sig, sizeof(s.sig), 0),
                 CHAIN_OK);
    char other[CHAIN_ADDR_STR_SIZE], executor[CHAIN_ADDR_STR_SIZE], q[128], sql[512];
    address_of(KEY_OTHER, other);
    address_of(ENGINE_DEV0_KEY, executor);
    engine_transact(other, engine_registry, data, len);
    cr_assert_eq(engine_executed_count(s.on_chain_id), 1);
    /* and the log cursor passes over it, as if it had started later */
    json_t *head = engine_rpc("eth_blockNumber", "[]");
    snprintf(sql, sizeof(sql),
             "INSERT INTO chain_cursors (chain_id, registry, next_block) VALUES (31337,"
             " decode('%s', 'hex'), %llu) ON CONFLICT (chain_id, registry) DO UPDATE SET"
             " next_block = excluded.next_block RETURNING next_block",
             engine_registry + 2, (unsigned long long)quantity(head) + 1);
    json_decref(head);
    cr_assert_neq(db_value(sql)[0], '\0');
    snprintf(q, sizeof(q), "[\"%s\", \"latest\"]", executor);
    json_t *nonce = engine_rpc("eth_getTransactionCount", q);
    uint64_t nonce_before = quantity(nonce);
    json_decref(nonce);

    engine_server_restart();
    engine_set_offset(resume_at - (int64_t)time(NULL));
    engine_wait_count(token, s.id, 1, OUTCOME_MS);
    char other_lower[CHAIN_ADDR_STR_SIZE], expect[128];
    for (size_t i = 0; other[i] != '\0'; ++i)
        other_lower[i] = (char)(other[i] >= 'A' && other[i] <= 'F' ? other[i] + 32 : other[i]);
    other_lower[strlen(other)] = '\0';
    snprintf(expect, sizeof(expect), "0:confirmed:%s", other_lower);
    cr_assert_str_eq(rows_of(s.id), expect, "period 0 must be the adopted execution only");
    nonce = engine_rpc("eth_getTransactionCount", q);
    cr_assert_eq(quantity(nonce), nonce_before, "a transaction was signed for a paid period");
    json_decref(nonce);
}

/* After pay_elsewhere_then_restart: the daily intent's next period (due at `start` + 1 day) is
 * the engine's, paid once. */
static void next_period_is_ours(int64_t start, const signed_intent_t *in)
{
    signed_intent_t s = *in;
    char executor[CHAIN_ADDR_STR_SIZE], sql[512];
    address_of(ENGINE_DEV0_KEY, executor);

    /* the next period is the engine's */
    engine_advance_to(start + 86400 + 10);
    engine_wait_count(token, s.id, 2, OUTCOME_MS);
    cr_assert_eq(engine_executed_count(s.on_chain_id), 2);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE intent_id = '%s' AND period = 1 AND status ="
             " 'confirmed' AND executor = decode('%s', 'hex')",
             s.id, executor + 2);
    cr_assert_str_eq(db_value(sql), "1");
    stop_server();
}

/* A database that lacks an execution the chain has (restored from an older backup, or a log
 * cursor that started late): at its due time the intent's actor reads the registry's count,
 * signs nothing for the paid period, and the follower adopts the execution; the next period is
 * ours, once. */
Test(follower_events, a_registry_count_ahead_of_the_database_is_adopted_not_signed, .init = setup,
     .fini = engine_teardown, .timeout = 180)
{
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    pay_elsewhere_then_restart(start, start + 10, &s);
    next_period_is_ours(start, &s);
}

/* The same, with the restart a little before the due time: the actor reads the registry's count
 * ahead of it, and the adoption is done before the intent is due (the due time's read would come
 * only after this test's wait for it has ended). */
Test(follower_events, a_count_read_ahead_of_the_due_time_adopts_before_it, .init = setup,
     .fini = engine_teardown, .timeout = 180)
{
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    pay_elsewhere_then_restart(start, start - 50, &s);
    cr_assert_lt(engine_now(), start, "adopted only at the due time");
    next_period_is_ours(start, &s);
}

#define CAP_BLOCKS 100 /* the capped node's most blocks per eth_getLogs */
static rpc_proxy_t *capped;

/* The server behind a node that refuses eth_getLogs over more than CAP_BLOCKS blocks, with a
 * history since the registry's creation several times longer than that. */
static void setup_capped(void)
{
    static char rpc_env[64];
    engine_chain_start(NULL);
    for (int i = 0; i != 3; ++i) /* 600 blocks, 200 a call (anvil takes ~4 ms a block) */
        json_decref(engine_rpc("anvil_mine", "[\"0xc8\"]"));
    capped = rpc_proxy_start(engine_anvil.port, CAP_BLOCKS);
    snprintf(rpc_env, sizeof(rpc_env), "RPC_URL=http://127.0.0.1:%u", rpc_proxy_port(capped));
    static const char *const env[] = {rpc_env, "API_CACHE_TTL_MS=600000", NULL};
    engine_server_start(env);
    session(KEY_A, token, sizeof(token));
    address_of(KEY_A, owner);
    engine_mint(owner, USDC(1000));
    engine_approve(owner, USDC(1000));
}

static void teardown_capped(void)
{
    engine_teardown();
    rpc_proxy_stop(capped);
}

/* The registry's code at block `n` ("0x" before it was created). */
static bool registry_exists_at(uint64_t n)
{
    char params[128];
    snprintf(params, sizeof(params), "[\"%s\", \"0x%llx\"]", engine_registry,
             (unsigned long long)n);
    json_t *code = engine_rpc("eth_getCode", params);
    bool exists = strcmp(json_string_value(code), "0x") != 0;
    json_decref(code);
    return exists;
}

Test(follower_events, a_backfill_reads_from_the_deployment_block_in_windows_a_capped_node_takes,
     .init = setup_capped, .fini = teardown_capped, .timeout = 240)
{
    cr_assert(engine_registry_block > 0 && registry_exists_at(engine_registry_block) &&
                  !registry_exists_at(engine_registry_block - 1),
              "REGISTRY_START_BLOCK %llu is not the registry's creation block",
              (unsigned long long)engine_registry_block);
    int64_t start = engine_now() + 600;
    signed_intent_t s;
    pay_elsewhere_then_restart(start, start + 10, &s);
    /* the intent's logs were read from the deployment block on, in windows the node took */
    rpc_proxy_stats_t st;
    rpc_proxy_stats(capped, &st);
    cr_assert_gt(st.refused, 0, "the node never refused a range: the test proves nothing");
    cr_assert_leq(st.widest, CAP_BLOCKS);
    cr_assert_geq(st.filtered, 2, "one window cannot cover the history");
    cr_assert_eq(st.filtered_lowest, engine_registry_block, "the backfill began at %llu",
                 (unsigned long long)st.filtered_lowest);

    engine_advance(86400); /* the next period is the engine's */
    engine_wait_count(token, s.id, 2, OUTCOME_MS);
    cr_assert_eq(engine_executed_count(s.on_chain_id), 2);
    stop_server();
}
