/*
 * actors/intent_model: request bodies, signed terms against ethers' vectors, the intent object's
 * exact shape, and the status machine.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include "actors/intent_model.h"
#include "chain/rfc3339.h"
#include "test_chain_fixtures.h"

#define OWNER "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
#define BOB "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
#define CAROL "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
#define DAI "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define NOW "2026-11-01T00:00:00Z"

static int64_t T(const char *s)
{
    int64_t t;
    cr_assert_eq(chain_rfc3339_parse(s, strlen(s), &t, NULL), CHAIN_OK, "%s", s);
    return t;
}

static intent_token_t usdc, dai;
static intent_ctx_t ctx;

static void setup(void)
{
    memset(&usdc, 0, sizeof(usdc));
    usdc.address = fx_addr_str(USDC);
    usdc.decimals = 6;
    strcpy(usdc.symbol, "USDC");
    memset(&dai, 0, sizeof(dai));
    dai.address = fx_addr_str(DAI);
    dai.decimals = 18;
    strcpy(dai.symbol, "DAI");
    memset(&ctx, 0, sizeof(ctx));
    ctx.chain_id = 31337;
    ctx.registry = fx_addr_str(REGISTRY);
    ctx.owner = fx_addr_str(OWNER);
    ctx.token = &usdc;
    ctx.now = T(NOW);
}

TestSuite(intent, .init = setup);

/* a valid POST body; tests change one thing in it */
static json_t *body(void)
{
    json_error_t e;
    json_t *b = json_loads("{\"name\":\"Rent\",\"recipient\":\"" BOB "\",\"token\":\"USDC\","
                           "\"amount\":\"100.5\",\"frequency\":\"daily\","
                           "\"startAt\":\"2026-11-21T09:00:00Z\"}",
                           0, &e);
    cr_assert_not_null(b, "%s", e.text);
    return b;
}

static json_t *with(json_t *b, const char *key, json_t *v)
{
    cr_assert_eq(json_object_set_new(b, key, v), 0);
    return b;
}

static json_t *jparse(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    cr_assert_not_null(v, "%s: %s", s, e.text);
    return v;
}

/* index of the error on `field`, or -1 */
static int error_on(const net_json_errors_t *errs, const char *field)
{
    for (size_t i = 0; i != errs->count; ++i)
        if (strcmp(errs->items[i].field, field) == 0)
            return (int)i;
    return -1;
}

/* creates from `b` (consumed) and expects exactly one error, on `field` */
static void expect_error(json_t *b, const char *field)
{
    intent_t in;
    intent_extras_t ex;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    bool ok = intent_from_create(b, &ctx, &in, &ex, &errs);
    char *dump = json_dumps(b, JSON_COMPACT);
    cr_assert(!ok, "accepted: %s", dump);
    cr_assert_eq(errs.count, 1, "%s: %zu errors, first %s: %s", dump, errs.count,
                 errs.items[0].field, errs.items[0].message);
    cr_assert_str_eq(errs.items[0].field, field, "%s: %s", dump, errs.items[0].message);
    cr_assert_gt(strlen(errs.items[0].message), 5);
    free(dump);
    json_decref(b);
}

static void create_ok(json_t *b, intent_t *in, intent_extras_t *ex)
{
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    bool ok = intent_from_create(b, &ctx, in, ex, &errs);
    char *dump = json_dumps(b, JSON_COMPACT);
    cr_assert(ok, "%s: %s: %s", dump, errs.count ? errs.items[0].field : "-",
              errs.count ? errs.items[0].message : "-");
    free(dump);
    json_decref(b);
}

/* ---- creation ---- */

Test(intent, create_minimal)
{
    intent_t in;
    intent_extras_t ex;
    create_ok(body(), &in, &ex);
    cr_assert_str_eq(in.name, "Rent");
    cr_assert(chain_addr_eq(&in.owner, &ctx.owner));
    cr_assert(chain_addr_eq(&in.recipient, &(chain_addr_t){0}) == false);
    cr_assert(chain_addr_eq(&in.token.address, &usdc.address));
    cr_assert_eq(in.amount.limb[0], 100500000);
    cr_assert_eq(in.sched.freq, CHAIN_INTENT_DAILY);
    cr_assert_eq(in.sched.start_at, T("2026-11-21T09:00:00Z"));
    cr_assert_eq(in.sched.end_at, SCHED_NONE);
    cr_assert_eq(in.sched.max_executions, 0);
    cr_assert_eq(in.sched.min_interval_s, 86100);
    cr_assert(chain_u256_is_zero(&in.safety_buffer));
    cr_assert(!in.constraints.has_max_gas && !in.constraints.has_window);
    cr_assert_eq(in.status, INTENT_PENDING_SIGNATURE);
    cr_assert_eq(in.execution_count, 0);
    cr_assert(ex.need_salt && !ex.has_signature);
}

Test(intent, create_full)
{
    json_t *b = body();
    with(b, "frequency", json_string("custom"));
    with(b, "intervalSeconds", json_integer(3600));
    with(b, "endAt", json_string("2027-11-21T10:00:00+01:00"));
    with(b, "maxExecutions", json_integer(12));
    with(b, "safetyBuffer", json_string("5.25"));
    with(b, "salt",
         json_string("0x"
                     "00000000000000000000000000000000"
                     "000000000000000000000000000000ff"));
    with(b, "constraints",
         jparse("{\"maxGasPriceGwei\":\"1.50\",\"timeWindow\":{\"start\":"
                "\"22:00\",\"end\":\"02:00\",\"utcOffset\":\"-09:30\","
                "\"days\":[\"fri\",\"mon\"]}}"));
    intent_t in;
    intent_extras_t ex;
    create_ok(b, &in, &ex);
    cr_assert_eq(in.sched.freq, CHAIN_INTENT_CUSTOM);
    cr_assert_eq(in.sched.interval_s, 3600);
    cr_assert_eq(in.sched.min_interval_s, 3300);
    cr_assert_eq(in.sched.end_at, T("2027-11-21T09:00:00Z"), "offset applied");
    cr_assert_eq(in.sched.max_executions, 12);
    cr_assert_eq(in.safety_buffer.limb[0], 5250000);
    cr_assert_eq(in.salt[31], 0xff);
    cr_assert(!ex.need_salt);
    cr_assert(in.constraints.has_max_gas);
    cr_assert_eq(in.constraints.max_gas_price_wei.limb[0], 1500000000);
    cr_assert(in.constraints.has_window);
    cr_assert_eq(in.constraints.window.start_min, 22 * 60);
    cr_assert_eq(in.constraints.window.end_min, 2 * 60);
    cr_assert_eq(in.constraints.window.offset_min, -570);
    cr_assert_eq(in.constraints.window.days, SCHED_DAY_BIT(0) | SCHED_DAY_BIT(4));
}

Test(intent, create_once_max_executions)
{
    static const char *const ok[] = {NULL, "null", "0", "1"};
    for (size_t i = 0; i != 4; ++i) {
        json_t *b = with(body(), "frequency", json_string("once"));
        if (ok[i] != NULL)
            with(b, "maxExecutions", jparse(ok[i]));
        intent_t in;
        intent_extras_t ex;
        create_ok(b, &in, &ex);
        cr_assert_eq(in.sched.max_executions, 1, "once means 1");
        cr_assert_eq(in.sched.min_interval_s, 0);
    }
    expect_error(
        with(with(body(), "frequency", json_string("once")), "maxExecutions", json_integer(2)),
        "maxExecutions");
}

Test(intent, create_field_errors)
{
    expect_error(with(body(), "amount", json_string("0")), "amount");
    expect_error(with(body(), "amount", json_string("0.000")), "amount");
    expect_error(with(body(), "amount", json_string("1.1234567")), "amount"); /* 7 > 6 decimals */
    expect_error(with(body(), "amount", json_string("-1")), "amount");
    expect_error(with(body(), "amount", json_string("1e3")), "amount");
    expect_error(with(body(), "amount", json_string(".5")), "amount");
    expect_error(with(body(), "amount", json_string("007")), "amount");
    expect_error(with(body(), "amount", json_integer(5)), "amount");
    expect_error(
        with(body(), "recipient", json_string("0x70997970C51812dc3A010C7d01b50e0d17dc79c8")),
        "recipient"); /* one letter's case off: wrong checksum */
    expect_error(with(body(), "recipient", json_string("0x1234")), "recipient");
    expect_error(
        with(body(), "recipient", json_string("0x0000000000000000000000000000000000000000")),
        "recipient");
    expect_error(with(body(), "recipient", json_string(OWNER)), "recipient");
    expect_error(with(body(), "recipient", json_string(USDC)), "recipient");
    expect_error(with(body(), "recipient", json_string(REGISTRY)), "recipient");
    expect_error(with(body(), "frequency", json_string("hourly")), "frequency");
    expect_error(with(body(), "frequency", json_string("custom")), "intervalSeconds");
    expect_error(
        with(with(body(), "frequency", json_string("custom")), "intervalSeconds", json_integer(59)),
        "intervalSeconds");
    expect_error(with(body(), "intervalSeconds", json_integer(3600)), "intervalSeconds");
    expect_error(with(body(), "startAt", json_string("2026-11-21 09:00:00")), "startAt");
    expect_error(with(body(), "startAt", json_string("2026-02-30T09:00:00Z")), "startAt");
    expect_error(with(body(), "startAt", json_string("1969-12-31T23:59:59Z")), "startAt");
    expect_error(with(body(), "endAt", json_string("2026-11-21T09:00:00Z")), "endAt");
    expect_error(with(with(body(), "startAt", json_string("2020-01-01T00:00:00Z")), "endAt",
                      json_string("2026-10-31T23:59:59Z")),
                 "endAt"); /* in the past */
    expect_error(with(body(), "maxExecutions", json_integer(-1)), "maxExecutions");
    expect_error(with(body(), "maxExecutions", json_integer(INT64_C(4294967296))), "maxExecutions");
    expect_error(with(body(), "safetyBuffer", json_string("-1")), "safetyBuffer");
    expect_error(with(body(), "safetyBuffer", json_string("0.0000001")), "safetyBuffer");
    expect_error(with(body(), "salt", json_string("0x1234")), "salt");
    expect_error(with(body(), "salt",
                      json_string("00000000000000000000000000000000000000000000"
                                  "00000000000000000001")),
                 "salt"); /* no 0x */
    expect_error(with(body(), "signature", json_string("0x12")), "signature");
    expect_error(with(body(), "name", json_string("")), "name");
    expect_error(with(body(), "name", json_string("a\nb")), "name");
    expect_error(with(body(), "name",
                      json_string("a\xc2\x85"
                                  "b")),
                 "name"); /* NEL, C1 */
}

Test(intent, name_length_in_characters)
{
    char name[4 * 201 + 1] = "";
    for (int i = 0; i != 200; ++i)
        strcat(name, "\xe2\x82\xac"); /* the euro sign: 3 bytes, 1 character */
    intent_t in;
    intent_extras_t ex;
    create_ok(with(body(), "name", json_string(name)), &in, &ex);
    cr_assert_str_eq(in.name, name);
    strcat(name, "x");
    expect_error(with(body(), "name", json_string(name)), "name");
}

Test(intent, create_constraint_errors)
{
    static const struct {
        const char *constraints, *field;
    } cases[] = {
        {"{\"maxGasPriceGwei\":\"0\"}", "constraints.maxGasPriceGwei"},
        {"{\"maxGasPriceGwei\":\"1.0000000001\"}", "constraints.maxGasPriceGwei"},
        {"{\"maxGasPriceGwei\":1}", "constraints.maxGasPriceGwei"},
        {"{\"gas\":\"1\"}", "constraints.gas"},
        {"{\"timeWindow\":{\"start\":\"25:00\",\"end\":\"02:00\"}}",
         "constraints.timeWindow.start"},
        {"{\"timeWindow\":{\"start\":\"09:00\"}}", "constraints.timeWindow.end"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"09:00\"}}", "constraints.timeWindow.end"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"10:00\",\"utcOffset\":\"+14:15\"}}",
         "constraints.timeWindow.utcOffset"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"10:00\",\"utcOffset\":\"+05:20\"}}",
         "constraints.timeWindow.utcOffset"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"10:00\",\"days\":[\"mon\",\"mon\"]}}",
         "constraints.timeWindow.days[1]"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"10:00\",\"days\":[\"xyz\"]}}",
         "constraints.timeWindow.days[0]"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"10:00\",\"days\":[]}}",
         "constraints.timeWindow.days"},
        {"{\"timeWindow\":{\"start\":\"09:00\",\"end\":\"10:00\",\"tz\":\"UTC\"}}",
         "constraints.timeWindow.tz"},
        {"{\"timeWindow\":\"09:00-10:00\"}", "constraints.timeWindow"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        expect_error(with(body(), "constraints", jparse(cases[i].constraints)), cases[i].field);
}

Test(intent, several_errors_at_once)
{
    json_t *b = body();
    with(b, "amount", json_string("0"));
    with(b, "recipient", json_string("0x0000000000000000000000000000000000000000"));
    with(b, "startAt", json_string("tomorrow"));
    with(b, "constraints", jparse("{\"timeWindow\":{\"start\":\"9\",\"end\":\"x\"}}"));
    json_object_del(b, "name");
    intent_t in;
    intent_extras_t ex;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    cr_assert(!intent_from_create(b, &ctx, &in, &ex, &errs));
    static const char *const fields[] = {"name",
                                         "amount",
                                         "recipient",
                                         "startAt",
                                         "constraints.timeWindow.start",
                                         "constraints.timeWindow.end"};
    for (size_t i = 0; i != sizeof(fields) / sizeof(fields[0]); ++i)
        cr_assert_geq(error_on(&errs, fields[i]), 0, "no error on %s", fields[i]);
    cr_assert_eq(errs.count, 6);
    json_decref(b);
}

/* the caller could not resolve "token" and reported it: no second error on token, and the
 * amount is checked for its syntax only */
Test(intent, unresolved_token)
{
    ctx.token = NULL;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    intent_t in;
    intent_extras_t ex;
    json_t *b = body();
    cr_assert(!intent_from_create(b, &ctx, &in, &ex, &errs));
    cr_assert_eq(errs.count, 0);
    with(b, "amount", json_string("x"));
    cr_assert(!intent_from_create(b, &ctx, &in, &ex, &errs));
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.items[0].field, "amount");
    json_object_del(b, "token");
    net_json_errors_init(&errs);
    cr_assert(!intent_from_create(b, &ctx, &in, &ex, &errs));
    cr_assert_geq(error_on(&errs, "token"), 0);
    json_decref(b);
}

Test(intent, inline_signature_needs_salt)
{
    char sig[2 + 130 + 1] = "0x";
    memset(sig + 2, 'a', 130);
    sig[132] = '\0';
    expect_error(with(body(), "signature", json_string(sig)), "signature");
    intent_t in;
    intent_extras_t ex;
    json_t *b = with(body(), "signature", json_string(sig));
    with(b, "salt",
         json_string("0x0000000000000000000000000000000000000000000000000000000000000001"));
    create_ok(b, &in, &ex);
    cr_assert(ex.has_signature && !ex.need_salt);
    cr_assert_eq(ex.signature[64], 0xaa);
}

/* ---- signed terms against ethers ---- */

/* builds the fixture's intent `idx` through a POST body, and checks the onChainId, the typed
 * data's message and domain, and the fixture's signature */
static void check_vector(size_t idx, const char *owner, const intent_token_t *tok, json_t *b)
{
    json_t *root = fx_load();
    json_t *e712 = fx_get(root, "eip712");
    json_t *v = json_array_get(fx_get(e712, "intents"), idx);
    cr_assert_not_null(v);
    json_t *fi = fx_get(v, "intent");
    cr_assert_str_eq(fx_str(fi, "owner"), owner);
    ctx.owner = fx_addr_str(owner);
    ctx.token = tok;
    ctx.chain_id = fx_u64(e712, "chainId");
    ctx.registry = fx_addr(e712, "verifyingContract");
    intent_t in;
    intent_extras_t ex;
    create_ok(b, &in, &ex);
    uint8_t id[32];
    char hex[67];
    intent_on_chain_id(&in, id);
    cr_assert_str_eq(fx_to_hex(hex, id, 32), fx_str(v, "structHash"));
    json_t *td = intent_typed_data(&in);
    cr_assert(json_equal(json_object_get(td, "message"), fi), "%s",
              json_dumps(json_object_get(td, "message"), 0));
    json_t *dom = json_object_get(td, "domain");
    cr_assert_str_eq(json_string_value(json_object_get(dom, "chainId")), "31337");
    cr_assert_str_eq(json_string_value(json_object_get(dom, "verifyingContract")), REGISTRY);
    cr_assert_str_eq(json_string_value(json_object_get(td, "primaryType")), "PaymentIntent");
    uint8_t sig[65], norm[65];
    fx_hex_exact(fx_str(v, "signature"), sig, 65);
    cr_assert_eq(intent_verify_signature(&in, sig, norm), CHAIN_OK);
    in.amount.limb[0] ^= 2; /* other terms: the same signature is not the owner's any more */
    cr_assert_neq(intent_verify_signature(&in, sig, norm), CHAIN_OK);
    json_decref(td);
    json_decref(root);
}

/* vector 0: daily, 100.5 USDC, unlimited, no end, salt 1 */
Test(intent, ethers_vector_daily)
{
    json_t *b = body();
    with(b, "salt",
         json_string("0x0000000000000000000000000000000000000000000000000000000000000001"));
    check_vector(0, OWNER, &usdc, b);
}

/* vector 1: once from the epoch until 2026-11-21T09:00:00Z, 1 base unit */
Test(intent, ethers_vector_once)
{
    ctx.now = 0;
    json_t *b = body();
    with(b, "recipient", json_string(CAROL));
    with(b, "amount", json_string("0.000001"));
    with(b, "frequency", json_string("once"));
    with(b, "startAt", json_string("1970-01-01T00:00:00Z"));
    with(b, "endAt", json_string("2026-11-21T09:00:00Z"));
    with(b, "salt",
         json_string("0x65bbae012f4ee2fcc2683c9a66a997851f8bab0d8c29ca2426780253d5c80b1c"));
    check_vector(1, BOB, &usdc, b);
}

/* vector 3: weekly, 52 times, 10^6 of an 18-decimal token, salt 0 (vector 2 has validAfter
 * 2^64-2, beyond any time the API takes) */
Test(intent, ethers_vector_weekly)
{
    intent_token_t tok = dai;
    tok.address = fx_addr_str(USDC);
    ctx.now = T("2023-11-14T22:13:20Z");
    json_t *b = body();
    with(b, "recipient", json_string(OWNER));
    with(b, "amount", json_string("1000000"));
    with(b, "frequency", json_string("weekly"));
    with(b, "startAt", json_string("2023-11-14T22:13:20Z"));
    with(b, "endAt", json_string("2027-01-15T08:00:00Z"));
    with(b, "maxExecutions", json_integer(52));
    with(b, "salt",
         json_string("0x0000000000000000000000000000000000000000000000000000000000000000"));
    check_vector(3, DAI, &tok, b);
}

/* ---- the intent object ---- */

static intent_t sample(void)
{
    intent_t in;
    intent_extras_t ex;
    json_t *b = body();
    with(b, "recipient", json_string("0x70997970c51812dc3a010c7d01b50e0d17dc79c8")); /* lower */
    with(b, "safetyBuffer", json_string("10.000"));
    with(b, "salt",
         json_string("0x0000000000000000000000000000000000000000000000000000000000000001"));
    create_ok(b, &in, &ex);
    strcpy(in.id, "6f1c1b9e-3b0a-4c1e-9a43-0d6b1f3e2a77");
    return in;
}

Test(intent, render_field_names_in_order)
{
    static const char *const keys[] = {"id",
                                       "name",
                                       "recipient",
                                       "token",
                                       "tokenSymbol",
                                       "amount",
                                       "frequency",
                                       "intervalSeconds",
                                       "startAt",
                                       "endAt",
                                       "maxExecutions",
                                       "safetyBuffer",
                                       "constraints",
                                       "status",
                                       "delayReason",
                                       "nextExecution",
                                       "lastExecution",
                                       "executionCount",
                                       "onChainId",
                                       "typedData",
                                       "createdAt",
                                       "updatedAt"};
    intent_t in = sample();
    json_t *o = intent_to_json(&in);
    cr_assert_not_null(o);
    cr_assert_eq(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(o, key, value)
    {
        cr_assert_str_eq(key, keys[i], "member %zu", i);
        ++i;
    }
    json_decref(o);
}

Test(intent, render_values)
{
    intent_t in = sample();
    in.created_at = T("2026-11-01T00:00:00Z");
    in.updated_at = T("2026-11-02T03:04:05Z");
    json_t *o = intent_to_json(&in);
    char *s = json_dumps(o, JSON_COMPACT);
    json_t *want = jparse(
        "{\"id\":\"6f1c1b9e-3b0a-4c1e-9a43-0d6b1f3e2a77\",\"name\":\"Rent\","
        "\"recipient\":\"" BOB "\",\"token\":\"" USDC "\",\"tokenSymbol\":\"USDC\","
        "\"amount\":\"100.5\",\"frequency\":\"daily\",\"intervalSeconds\":null,"
        "\"startAt\":\"2026-11-21T09:00:00Z\",\"endAt\":null,\"maxExecutions\":null,"
        "\"safetyBuffer\":\"10\",\"constraints\":{},\"status\":\"pending_signature\","
        "\"delayReason\":null,\"nextExecution\":null,\"lastExecution\":null,"
        "\"executionCount\":0,"
        "\"onChainId\":\"0x2f6fe874b988eb594398525170b590d0b23880c3232a15bd14f680bc17339aad\","
        "\"createdAt\":\"2026-11-01T00:00:00Z\",\"updatedAt\":\"2026-11-02T03:04:05Z\"}");
    json_t *td = json_object_get(o, "typedData");
    cr_assert(json_is_object(td) && json_is_object(json_object_get(td, "types")));
    cr_assert_not_null(json_object_get(json_object_get(td, "types"), "EIP712Domain"));
    json_object_del(o, "typedData");
    cr_assert(json_equal(o, want), "%s", s);
    free(s);
    json_decref(want);
    json_decref(o);
}

Test(intent, render_state_and_options)
{
    intent_t in = sample();
    in.status = INTENT_DELAYED;
    in.delay_reason = SCHED_DELAY_GAS_PRICE_ABOVE_CAP;
    in.next_execution = T("2026-11-22T09:00:00Z");
    in.last_execution = T("2026-11-21T09:00:07Z");
    in.execution_count = 1;
    sched_init(&in.sched, CHAIN_INTENT_CUSTOM, 90, in.sched.start_at, T("2027-01-01T00:00:00Z"), 7);
    cr_assert_eq(chain_u256_parse_gwei(&in.constraints.max_gas_price_wei, "2.5", 3), CHAIN_OK);
    in.constraints.has_max_gas = true;
    json_t *o = intent_to_json(&in);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "delayed");
    cr_assert_str_eq(json_string_value(json_object_get(o, "delayReason")), "gas_price_above_cap");
    cr_assert_str_eq(json_string_value(json_object_get(o, "nextExecution")),
                     "2026-11-22T09:00:00Z");
    cr_assert_str_eq(json_string_value(json_object_get(o, "lastExecution")),
                     "2026-11-21T09:00:07Z");
    cr_assert_eq(json_integer_value(json_object_get(o, "executionCount")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(o, "frequency")), "custom");
    cr_assert_eq(json_integer_value(json_object_get(o, "intervalSeconds")), 90);
    cr_assert_eq(json_integer_value(json_object_get(o, "maxExecutions")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(o, "endAt")), "2027-01-01T00:00:00Z");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(o, "constraints"), "maxGasPriceGwei")),
        "2.5");
    json_decref(o);
    /* once is answered as 1, not null */
    sched_init(&in.sched, CHAIN_INTENT_ONCE, 0, in.sched.start_at, SCHED_NONE, 0);
    in.status = INTENT_ACTIVE;
    in.delay_reason = SCHED_DELAY_NONE;
    o = intent_to_json(&in);
    cr_assert_eq(json_integer_value(json_object_get(o, "maxExecutions")), 1);
    cr_assert(json_is_null(json_object_get(o, "delayReason")));
    cr_assert(json_is_null(json_object_get(o, "intervalSeconds")));
    json_decref(o);
}

Test(intent, constraints_canonical_round_trip)
{
    json_t *in = jparse("{\"timeWindow\":{\"days\":[\"sun\",\"mon\",\"wed\"],\"end\":\"17:30\","
                        "\"start\":\"08:15\",\"utcOffset\":\"+05:45\"},"
                        "\"maxGasPriceGwei\":\"0012.500\"}");
    intent_constraints_t c, back;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    /* leading zeros are refused: one string, one meaning */
    cr_assert(!intent_constraints_parse(in, &c, &errs));
    json_object_set_new(in, "maxGasPriceGwei", json_string("12.500"));
    net_json_errors_init(&errs);
    cr_assert(intent_constraints_parse(in, &c, &errs));
    json_t *out = intent_constraints_to_json(&c);
    json_t *want = jparse("{\"maxGasPriceGwei\":\"12.5\",\"timeWindow\":{\"start\":\"08:15\","
                          "\"end\":\"17:30\",\"utcOffset\":\"+05:45\","
                          "\"days\":[\"mon\",\"wed\",\"sun\"]}}");
    cr_assert(json_equal(out, want), "%s", json_dumps(out, 0));
    cr_assert(intent_constraints_parse(out, &back, &errs));
    cr_assert_eq(memcmp(&back.window, &c.window, sizeof(c.window)), 0);
    json_decref(in);
    json_decref(out);
    json_decref(want);
    /* no days: every day, and stays absent; no offset: +00:00 */
    in = jparse("{\"timeWindow\":{\"start\":\"08:15\",\"end\":\"17:30\"}}");
    cr_assert(intent_constraints_parse(in, &c, &errs));
    cr_assert_eq(c.window.days, SCHED_ALL_DAYS);
    out = intent_constraints_to_json(&c);
    want =
        jparse("{\"timeWindow\":{\"start\":\"08:15\",\"end\":\"17:30\",\"utcOffset\":\"+00:00\"}}");
    cr_assert(json_equal(out, want), "%s", json_dumps(out, 0));
    json_decref(in);
    json_decref(out);
    json_decref(want);
    cr_assert(intent_constraints_parse(NULL, &c, &errs) && !c.has_window && !c.has_max_gas);
}

/* ---- PATCH ---- */

static bool patch(const intent_t *cur, const char *json, intent_t *out, intent_extras_t *ex,
                  net_json_errors_t *errs)
{
    json_t *b = jparse(json);
    net_json_errors_init(errs);
    bool ok = intent_apply_patch(b, cur, &ctx, out, ex, errs);
    json_decref(b);
    return ok;
}

Test(intent, patch_meta_and_terms)
{
    intent_t cur = sample(), out;
    cur.status = INTENT_ACTIVE;
    intent_extras_t ex;
    net_json_errors_t errs;
    cr_assert(patch(&cur, "{}", &out, &ex, &errs));
    cr_assert(!ex.terms_changed && !ex.meta_changed);
    cr_assert(patch(&cur, "{\"name\":\"Rent 2\",\"safetyBuffer\":\"1\"}", &out, &ex, &errs));
    cr_assert(!ex.terms_changed && ex.meta_changed);
    cr_assert_str_eq(out.name, "Rent 2");
    cr_assert_eq(out.status, INTENT_ACTIVE, "the caller applies the transition");
    cr_assert(patch(&cur, "{\"constraints\":{\"maxGasPriceGwei\":\"3\"}}", &out, &ex, &errs));
    cr_assert(!ex.terms_changed && ex.meta_changed && out.constraints.has_max_gas);
    /* the same value is no change */
    cr_assert(patch(&cur, "{\"amount\":\"100.50\",\"frequency\":\"daily\",\"name\":\"Rent\"}", &out,
                    &ex, &errs));
    cr_assert(!ex.terms_changed && !ex.meta_changed);
    static const char *const terms[] = {
        "{\"amount\":\"100.6\"}",
        "{\"recipient\":\"" CAROL "\"}",
        "{\"frequency\":\"weekly\"}",
        "{\"frequency\":\"custom\",\"intervalSeconds\":86400}",
        "{\"startAt\":\"2026-11-22T09:00:00Z\"}",
        "{\"endAt\":\"2027-11-22T09:00:00Z\"}",
        "{\"maxExecutions\":5}",
        "{\"salt\":\"0x0000000000000000000000000000000000000000000000000000000000000002\"}",
    };
    for (size_t i = 0; i != sizeof(terms) / sizeof(terms[0]); ++i) {
        cr_assert(patch(&cur, terms[i], &out, &ex, &errs), "%s: %s", terms[i],
                  errs.count ? errs.items[0].message : "");
        cr_assert(ex.terms_changed && !ex.meta_changed, "%s", terms[i]);
        uint8_t a[32], b[32];
        intent_on_chain_id(&cur, a);
        intent_on_chain_id(&out, b);
        /* daily and custom 86400 sign the same terms, but the schedule is still a change */
        if (i != 3)
            cr_assert_neq(memcmp(a, b, 32), 0, "%s: new onChainId", terms[i]);
    }
    cr_assert(patch(&cur, "{\"constraints\":null}", &out, &ex, &errs));
    cr_assert(!ex.meta_changed, "there were none");
}

Test(intent, patch_schedule_rules)
{
    intent_t cur = sample(), out;
    intent_extras_t ex;
    net_json_errors_t errs;
    /* to custom needs an interval; from custom clears it */
    cr_assert(!patch(&cur, "{\"frequency\":\"custom\"}", &out, &ex, &errs));
    cr_assert_str_eq(errs.items[0].field, "intervalSeconds");
    cr_assert(patch(&cur, "{\"frequency\":\"custom\",\"intervalSeconds\":120}", &out, &ex, &errs));
    intent_t custom = out;
    cr_assert(patch(&custom, "{\"frequency\":\"weekly\"}", &out, &ex, &errs));
    cr_assert_eq(out.sched.interval_s, 0);
    cr_assert(
        !patch(&custom, "{\"frequency\":\"weekly\",\"intervalSeconds\":120}", &out, &ex, &errs));
    cr_assert(
        patch(&custom, "{\"frequency\":\"weekly\",\"intervalSeconds\":null}", &out, &ex, &errs));
    /* to once: 1; from once without maxExecutions: unlimited */
    cr_assert(patch(&cur, "{\"maxExecutions\":12}", &out, &ex, &errs));
    intent_t twelve = out;
    cr_assert(patch(&twelve, "{\"frequency\":\"once\"}", &out, &ex, &errs));
    cr_assert_eq(out.sched.max_executions, 1);
    intent_t once = out;
    cr_assert(patch(&once, "{\"frequency\":\"monthly\"}", &out, &ex, &errs));
    cr_assert_eq(out.sched.max_executions, 0);
    cr_assert(patch(&once, "{\"frequency\":\"monthly\",\"maxExecutions\":3}", &out, &ex, &errs));
    cr_assert_eq(out.sched.max_executions, 3);
    /* endAt null removes the end; an endAt before the (current) startAt is refused */
    cr_assert(patch(&cur, "{\"endAt\":\"2027-01-01T00:00:00Z\"}", &out, &ex, &errs));
    intent_t ends = out;
    cr_assert(patch(&ends, "{\"endAt\":null}", &out, &ex, &errs));
    cr_assert_eq(out.sched.end_at, SCHED_NONE);
    cr_assert(!patch(&ends, "{\"startAt\":\"2027-01-01T00:00:00Z\"}", &out, &ex, &errs));
    cr_assert_str_eq(errs.items[0].field, "endAt");
    /* a stored endAt that has passed does not block a change of name; a new one must be ahead */
    ctx.now = T("2027-02-01T00:00:00Z");
    cr_assert(patch(&ends, "{\"name\":\"late\"}", &out, &ex, &errs));
    cr_assert(!patch(&ends, "{\"endAt\":\"2027-01-31T00:00:00Z\"}", &out, &ex, &errs));
    cr_assert_str_eq(errs.items[0].field, "endAt");
}

Test(intent, patch_token_carries_amounts_in_token_units)
{
    intent_t cur = sample(), out;
    intent_extras_t ex;
    net_json_errors_t errs;
    ctx.token = &dai;
    cr_assert(patch(&cur, "{\"token\":\"DAI\"}", &out, &ex, &errs));
    cr_assert(ex.terms_changed);
    char units[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_units(&out.amount, 18, units);
    cr_assert_str_eq(units, "100.5");
    chain_u256_format_units(&out.safety_buffer, 18, units);
    cr_assert_str_eq(units, "10");
    cr_assert_str_eq(out.token.symbol, "DAI");
    /* back to 6 decimals: 0.0000001 does not fit */
    intent_t d = out;
    ctx.token = &dai;
    cr_assert(patch(&d, "{\"amount\":\"0.0000001\"}", &out, &ex, &errs));
    intent_t tiny = out;
    ctx.token = &usdc;
    cr_assert(!patch(&tiny, "{\"token\":\"USDC\"}", &out, &ex, &errs));
    cr_assert_str_eq(errs.items[0].field, "amount");
    cr_assert(patch(&tiny, "{\"token\":\"USDC\",\"amount\":\"1\"}", &out, &ex, &errs));
}

/* new terms are a new registry intent counting from 0: after executions, they need a startAt
 * in the future, or period 0 would be due at once and a period paid twice */
Test(intent, patch_terms_after_executions_need_future_start)
{
    intent_t cur = sample(), out;
    cur.status = INTENT_ACTIVE;
    cur.execution_count = 3;
    ctx.now = T("2026-11-24T10:00:00Z");
    intent_extras_t ex;
    net_json_errors_t errs;
    cr_assert(!patch(&cur, "{\"amount\":\"7\"}", &out, &ex, &errs));
    cr_assert_str_eq(errs.items[0].field, "startAt");
    cr_assert(
        patch(&cur, "{\"amount\":\"7\",\"startAt\":\"2026-11-25T09:00:00Z\"}", &out, &ex, &errs));
    cr_assert(patch(&cur, "{\"name\":\"x\"}", &out, &ex, &errs), "metadata: no such rule");
}

Test(intent, patch_field_kinds)
{
    static const char *const terms[] = {"recipient",       "token",   "amount", "frequency",
                                        "intervalSeconds", "startAt", "endAt",  "maxExecutions"};
    for (size_t i = 0; i != 8; ++i)
        cr_assert_eq(intent_patch_field_kind(terms[i]), INTENT_FIELD_TERMS, "%s", terms[i]);
    cr_assert_eq(intent_patch_field_kind("name"), INTENT_FIELD_META);
    cr_assert_eq(intent_patch_field_kind("safetyBuffer"), INTENT_FIELD_META);
    cr_assert_eq(intent_patch_field_kind("constraints"), INTENT_FIELD_META);
    cr_assert_eq(intent_patch_field_kind("salt"), INTENT_FIELD_SIGNING);
    cr_assert_eq(intent_patch_field_kind("signature"), INTENT_FIELD_SIGNING);
    cr_assert_eq(intent_patch_field_kind("status"), INTENT_FIELD_UNKNOWN);
    /* every field of the PATCH table has a kind */
    for (size_t i = 0; i != intent_patch_fields_count; ++i)
        cr_assert_neq(intent_patch_field_kind(intent_patch_fields[i].name), INTENT_FIELD_UNKNOWN);
}

/* the tables the caller validates with accept a good body and name a missing field */
Test(intent, field_tables)
{
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    json_t *b = body();
    cr_assert(net_json_validate(b, intent_create_fields, intent_create_fields_count, NULL, &errs));
    json_object_del(b, "amount");
    with(b, "status", json_string("active"));
    cr_assert(!net_json_validate(b, intent_create_fields, intent_create_fields_count, NULL, &errs));
    cr_assert_geq(error_on(&errs, "amount"), 0);
    cr_assert_geq(error_on(&errs, "status"), 0);
    net_json_errors_init(&errs);
    json_t *empty = jparse("{}");
    cr_assert(
        net_json_validate(empty, intent_patch_fields, intent_patch_fields_count, NULL, &errs));
    json_decref(empty);
    json_decref(b);
}

/* ---- states ---- */

Test(intent, names)
{
    static const char *const st[] = {"pending_signature", "active",    "paused", "delayed",
                                     "completed",         "cancelled", "failed"};
    for (int i = 0; i != INTENT_STATUS_COUNT; ++i) {
        cr_assert_str_eq(intent_status_name((intent_status_t)i), st[i]);
        intent_status_t s;
        cr_assert(intent_status_parse(st[i], &s) && s == (intent_status_t)i);
    }
    intent_status_t s;
    cr_assert(!intent_status_parse("Active", &s));
    static const char *const fr[] = {"once", "daily", "weekly", "monthly", "custom"};
    for (int i = 0; i != 5; ++i) {
        cr_assert_str_eq(intent_freq_name((chain_intent_freq_t)i), fr[i]);
        chain_intent_freq_t f;
        cr_assert(intent_freq_parse(fr[i], &f) && f == (chain_intent_freq_t)i);
    }
}

Test(intent, transitions_named_in_api_md)
{
    cr_assert_eq(intent_transition(INTENT_PENDING_SIGNATURE, INTENT_PAUSE), INTENT_CONFLICT);
    cr_assert_eq(intent_transition(INTENT_PENDING_SIGNATURE, INTENT_SIGN), INTENT_ACTIVE);
    cr_assert_eq(intent_transition(INTENT_CANCELLED, INTENT_CANCEL), INTENT_CANCELLED);
    cr_assert_eq(intent_transition(INTENT_PAUSED, INTENT_RESUME), INTENT_ACTIVE);
    cr_assert_eq(intent_transition(INTENT_ACTIVE, INTENT_PATCH_TERMS), INTENT_PENDING_SIGNATURE);
    cr_assert_eq(intent_transition(INTENT_DELAYED, INTENT_PATCH_META), INTENT_DELAYED);
}

/* the whole table, written out again here so that a change to either is seen */
Test(intent, transition_table)
{
    const intent_status_t P = INTENT_PENDING_SIGNATURE, A = INTENT_ACTIVE, S = INTENT_PAUSED,
                          D = INTENT_DELAYED, O = INTENT_COMPLETED, X = INTENT_CANCELLED,
                          F = INTENT_FAILED, C = INTENT_CONFLICT;
    /* clang-format off */
    const intent_status_t want[INTENT_ACTION_COUNT][INTENT_STATUS_COUNT] = {
        /*                      P  A  S  D  O  X  F */
        [INTENT_SIGN]        = {A, C, C, C, C, C, C},
        [INTENT_PAUSE]       = {C, S, S, S, C, C, C},
        [INTENT_RESUME]      = {C, A, A, D, C, C, C},
        [INTENT_CANCEL]      = {X, X, X, X, C, X, X},
        [INTENT_PATCH_TERMS] = {P, P, P, P, C, C, C},
        [INTENT_PATCH_META]  = {P, A, S, D, C, C, C},
        [INTENT_COMPLETE]    = {C, O, O, O, O, C, C},
        [INTENT_DELAY]       = {C, D, C, D, C, C, C},
        [INTENT_UNDELAY]     = {C, A, C, A, C, C, C},
        [INTENT_FAIL]        = {C, F, F, F, C, C, F},
    };
    /* clang-format on */
    for (int a = 0; a != INTENT_ACTION_COUNT; ++a)
        for (int s = 0; s != INTENT_STATUS_COUNT; ++s)
            cr_assert_eq(intent_transition((intent_status_t)s, (intent_action_t)a), want[a][s],
                         "action %d from %s", a, intent_status_name((intent_status_t)s));
    /* nothing leaves cancelled or completed but their own idempotent repeat */
    for (int a = 0; a != INTENT_ACTION_COUNT; ++a) {
        intent_status_t x = intent_transition(INTENT_CANCELLED, (intent_action_t)a);
        cr_assert(x == C || x == X);
        intent_status_t o = intent_transition(INTENT_COMPLETED, (intent_action_t)a);
        cr_assert(o == C || o == O);
    }
}
