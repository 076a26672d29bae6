#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "chain/abi.h"
#include "test_chain_fixtures.h"

static const char *selector_hex(const char *signature, char out[11])
{
    uint8_t sel[CHAIN_ABI_SELECTOR_LEN];
    chain_abi_selector(signature, sel);
    return fx_to_hex(out, sel, sizeof(sel));
}

/* selectors everyone knows (ERC-20, Solidity's own errors), and the Transfer event topic */
Test(chain_abi, well_known_selectors)
{
    char hex[67];
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_BALANCE_OF, hex), "0x70a08231");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_ALLOWANCE, hex), "0xdd62ed3e");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_DECIMALS, hex), "0x313ce567");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_SYMBOL, hex), "0x95d89b41");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_APPROVE, hex), "0x095ea7b3");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_TRANSFER, hex), "0xa9059cbb");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_ERROR, hex), "0x08c379a0");
    cr_assert_str_eq(selector_hex(CHAIN_ABI_SIG_PANIC, hex), "0x4e487b71");
    uint8_t topic[32];
    chain_abi_topic("Transfer(address,address,uint256)", topic);
    cr_assert_str_eq(fx_to_hex(hex, topic, 32),
                     "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

/* the registry's, against ethers' Interface built from the full human-readable ABI */
Test(chain_abi, registry_selectors_and_topics)
{
    static const char *const functions[] = {
        CHAIN_ABI_SIG_BALANCE_OF,     CHAIN_ABI_SIG_ALLOWANCE,        CHAIN_ABI_SIG_DECIMALS,
        CHAIN_ABI_SIG_SYMBOL,         CHAIN_ABI_SIG_APPROVE,          CHAIN_ABI_SIG_TRANSFER,
        CHAIN_ABI_SIG_EXECUTE,        CHAIN_ABI_SIG_EXECUTE_BATCH,    CHAIN_ABI_SIG_REVOKE,
        CHAIN_ABI_SIG_EXECUTED_COUNT, CHAIN_ABI_SIG_LAST_EXECUTED_AT, CHAIN_ABI_SIG_REVOKED,
    };
    static const char *const events[] = {CHAIN_ABI_EVENT_EXECUTED, CHAIN_ABI_EVENT_EXECUTION_FAILED,
                                         CHAIN_ABI_EVENT_REVOKED};
    /* the exact text the registry's author was given */
    cr_assert_str_eq(CHAIN_ABI_SIG_EXECUTE, "execute((address,address,address,uint256,uint64,"
                                            "uint64,uint64,uint32,bytes32),bytes,uint32)");
    json_t *root = fx_load();
    json_t *sels = fx_get(fx_get(root, "abi"), "selectors");
    cr_assert_eq(json_object_size(sels), 15);
    char hex[67];
    for (size_t i = 0; i != sizeof(functions) / sizeof(functions[0]); ++i)
        cr_assert_str_eq(selector_hex(functions[i], hex), fx_str(sels, functions[i]));
    for (size_t i = 0; i != sizeof(events) / sizeof(events[0]); ++i) {
        uint8_t topic[32];
        chain_abi_topic(events[i], topic);
        cr_assert_str_eq(fx_to_hex(hex, topic, 32), fx_str(sels, events[i]));
    }
    json_decref(root);
}

/* encodes fixture call `c` with our encoder, into a buffer of exactly the measured size */
static void encode_call(json_t *root, json_t *c, uint8_t **out, size_t *len);

static chain_intent_t intent_n(json_t *root, size_t i)
{
    json_t *list = fx_get(fx_get(root, "eip712"), "intents");
    return fx_intent(fx_get(json_array_get(list, i), "intent"));
}

static size_t sig_n(json_t *root, size_t i, uint8_t sig[65])
{
    json_t *list = fx_get(fx_get(root, "eip712"), "intents");
    fx_hex_exact(fx_str(json_array_get(list, i), "signature"), sig, 65);
    return 65;
}

typedef int (*call_fn)(uint8_t *out, size_t cap, size_t *len, void *ctx);

typedef struct st_call_args_t {
    json_t *root, *args;
    const char *fn;
} call_args_t;

static const char *arg_str(call_args_t *a, size_t i)
{
    json_t *v = json_array_get(a->args, i);
    cr_assert(json_is_string(v));
    return json_string_value(v);
}

static size_t arg_int(call_args_t *a, size_t i)
{
    json_t *v = json_array_get(a->args, i);
    cr_assert(json_is_integer(v));
    return (size_t)json_integer_value(v);
}

static int call_any(uint8_t *out, size_t cap, size_t *len, void *ctx)
{
    call_args_t *a = ctx;
    chain_addr_t x, y;
    chain_u256_t amount;
    uint8_t id[32], sig[65];
    if (strcmp(a->fn, "balanceOf") == 0) {
        x = fx_addr_str(arg_str(a, 0));
        return chain_abi_balance_of(out, cap, len, &x);
    }
    if (strcmp(a->fn, "allowance") == 0) {
        x = fx_addr_str(arg_str(a, 0));
        y = fx_addr_str(arg_str(a, 1));
        return chain_abi_allowance(out, cap, len, &x, &y);
    }
    if (strcmp(a->fn, "decimals") == 0)
        return chain_abi_decimals(out, cap, len);
    if (strcmp(a->fn, "symbol") == 0)
        return chain_abi_symbol(out, cap, len);
    if (strcmp(a->fn, "approve") == 0 || strcmp(a->fn, "transfer") == 0) {
        x = fx_addr_str(arg_str(a, 0));
        const char *dec = arg_str(a, 1);
        cr_assert_eq(chain_u256_from_dec(&amount, dec, strlen(dec)), CHAIN_OK);
        return a->fn[0] == 'a' ? chain_abi_approve(out, cap, len, &x, &amount)
                               : chain_abi_transfer(out, cap, len, &x, &amount);
    }
    if (strcmp(a->fn, "execute") == 0) {
        chain_intent_t in = intent_n(a->root, arg_int(a, 0));
        size_t n = sig_n(a->root, arg_int(a, 0), sig);
        return chain_abi_execute(out, cap, len, &in, sig, n, (uint32_t)arg_int(a, 1));
    }
    if (strcmp(a->fn, "executeBatch") == 0) {
        size_t n = json_array_size(a->args);
        chain_intent_t in[4];
        uint8_t sigs[4][65];
        chain_abi_execution_t batch[4];
        cr_assert(n <= 4);
        for (size_t i = 0; i != n; ++i) {
            json_t *pair = json_array_get(a->args, i);
            size_t k = (size_t)json_integer_value(json_array_get(pair, 0));
            in[i] = intent_n(a->root, k);
            batch[i].intent = &in[i];
            batch[i].sig = sigs[i];
            batch[i].sig_len = sig_n(a->root, k, sigs[i]);
            batch[i].count = (uint32_t)json_integer_value(json_array_get(pair, 1));
        }
        return chain_abi_execute_batch(out, cap, len, batch, n);
    }
    if (strcmp(a->fn, "revoke") == 0) {
        chain_intent_t in = intent_n(a->root, arg_int(a, 0));
        return chain_abi_revoke(out, cap, len, &in);
    }
    fx_hex_exact(arg_str(a, 0), id, sizeof(id));
    if (strcmp(a->fn, "executedCount") == 0)
        return chain_abi_executed_count(out, cap, len, id);
    if (strcmp(a->fn, "lastExecutedAt") == 0)
        return chain_abi_last_executed_at(out, cap, len, id);
    cr_assert_str_eq(a->fn, "revoked");
    return chain_abi_revoked(out, cap, len, id);
}

static void encode_call(json_t *root, json_t *c, uint8_t **out, size_t *len)
{
    call_args_t a = {root, fx_get(c, "args"), fx_str(c, "fn")};
    size_t need, got;
    cr_assert_eq(call_any(NULL, 0, &need, &a), CHAIN_OK, "%s: measuring", a.fn);
    *out = malloc(need + 1);
    if (need != 0) /* one byte short is refused */
        cr_assert_eq(call_any(*out, need - 1, &got, &a), CHAIN_ERR_SHORT_BUFFER, "%s", a.fn);
    cr_assert_eq(call_any(*out, need, &got, &a), CHAIN_OK, "%s", a.fn);
    cr_assert_eq(got, need, "%s", a.fn);
    *len = got;
}

Test(chain_abi, call_data_matches_ethers)
{
    json_t *root = fx_load();
    json_t *c;
    size_t i;
    json_array_foreach(fx_get(fx_get(root, "abi"), "calls"), i, c)
    {
        uint8_t *data;
        size_t len;
        encode_call(root, c, &data, &len);
        char *hex = malloc(2 * len + 3);
        cr_assert_str_eq(fx_to_hex(hex, data, len), fx_str(c, "data"), "call %zu (%s)", i,
                         fx_str(c, "fn"));
        free(hex);
        free(data);
    }
    json_decref(root);
}

Test(chain_abi, call_limits)
{
    chain_intent_t in;
    memset(&in, 0, sizeof(in));
    uint8_t sig[CHAIN_ABI_SIG_MAX + 1] = {0};
    size_t len;
    cr_assert_eq(chain_abi_execute(NULL, 0, &len, &in, sig, CHAIN_ABI_SIG_MAX, 0), CHAIN_OK);
    cr_assert_eq(chain_abi_execute(NULL, 0, &len, &in, sig, CHAIN_ABI_SIG_MAX + 1, 0),
                 CHAIN_ERR_LENGTH);
    chain_abi_execution_t e = {&in, sig, 65, 0};
    cr_assert_eq(chain_abi_execute_batch(NULL, 0, &len, &e, 1), CHAIN_OK);
    cr_assert_eq(len, 4 + 32 + 32 + 32 + 11 * 32 + 32 + 96);
    e.sig_len = CHAIN_ABI_SIG_MAX + 1;
    cr_assert_eq(chain_abi_execute_batch(NULL, 0, &len, &e, 1), CHAIN_ERR_LENGTH);
    cr_assert_eq(chain_abi_execute_batch(NULL, 0, &len, &e, CHAIN_ABI_BATCH_MAX + 1),
                 CHAIN_ERR_LENGTH);
    uint8_t small[CHAIN_ABI_SMALL_CALL_MAX];
    cr_assert_eq(chain_abi_allowance(small, sizeof(small), &len, &in.owner, &in.token), CHAIN_OK);
    cr_assert_eq(len, CHAIN_ABI_SMALL_CALL_MAX);
}

Test(chain_abi, return_values)
{
    json_t *root = fx_load();
    json_t *r;
    size_t i;
    json_array_foreach(fx_get(fx_get(root, "abi"), "returns"), i, r)
    {
        uint8_t data[256];
        size_t len = fx_hex(fx_str(r, "data"), data, sizeof(data));
        const char *type = fx_str(r, "type"), *want = fx_str(r, "value");
        if (strcmp(type, "uint256") == 0) {
            chain_u256_t v;
            char dec[CHAIN_U256_DEC_SIZE];
            cr_assert_eq(chain_abi_decode_u256(data, len, &v), CHAIN_OK);
            chain_u256_to_dec(&v, dec);
            cr_assert_str_eq(dec, want);
        } else if (strcmp(type, "bool") == 0) {
            bool v;
            cr_assert_eq(chain_abi_decode_bool(data, len, &v), CHAIN_OK);
            cr_assert_eq(v, strcmp(want, "true") == 0);
        } else {
            const uint8_t *s;
            size_t n;
            cr_assert_eq(chain_abi_decode_string(data, len, &s, &n), CHAIN_OK);
            cr_assert_eq(n, strlen(want));
            cr_assert(memcmp(s, want, n) == 0);
            cr_assert_eq(chain_abi_decode_symbol(data, len, &s, &n), CHAIN_OK);
            cr_assert_eq(n, strlen(want));
        }
    }
    json_decref(root);
}

Test(chain_abi, return_value_errors)
{
    uint8_t w[64] = {0};
    uint64_t v;
    bool b;
    chain_u256_t u;
    cr_assert_eq(chain_abi_decode_u256(w, 0, &u), CHAIN_ERR_LENGTH, "no code at the address");
    cr_assert_eq(chain_abi_decode_u256(w, 31, &u), CHAIN_ERR_LENGTH);
    cr_assert_eq(chain_abi_decode_u256(w, 64, &u), CHAIN_ERR_LENGTH);
    w[31] = 18;
    cr_assert_eq(chain_abi_decode_uint(w, 32, 255, &v), CHAIN_OK);
    cr_assert_eq(v, 18);
    w[30] = 1; /* 274: not a uint8 */
    cr_assert_eq(chain_abi_decode_uint(w, 32, 255, &v), CHAIN_ERR_NONCANONICAL);
    w[30] = 0;
    w[0] = 1; /* dirty high bits */
    cr_assert_eq(chain_abi_decode_uint(w, 32, UINT64_MAX, &v), CHAIN_ERR_NONCANONICAL);
    w[0] = 0;
    w[31] = 2;
    cr_assert_eq(chain_abi_decode_bool(w, 32, &b), CHAIN_ERR_NONCANONICAL);

    /* strings whose offset or length point beyond the data */
    uint8_t s[96] = {0};
    const uint8_t *p;
    size_t n;
    s[31] = 0x20;
    s[63] = 4;
    memcpy(s + 64, "USDC", 4);
    cr_assert_eq(chain_abi_decode_string(s, 96, &p, &n), CHAIN_OK);
    cr_assert_eq(chain_abi_decode_string(s, 68, &p, &n), CHAIN_OK, "padding is not required");
    cr_assert_eq(chain_abi_decode_string(s, 67, &p, &n), CHAIN_ERR_TRUNCATED);
    cr_assert_eq(chain_abi_decode_string(s, 63, &p, &n), CHAIN_ERR_TRUNCATED);
    cr_assert_eq(chain_abi_decode_string(s, 31, &p, &n), CHAIN_ERR_TRUNCATED);
    s[31] = 0x60;
    cr_assert_eq(chain_abi_decode_string(s, 96, &p, &n), CHAIN_ERR_TRUNCATED, "offset");
    s[31] = 0x20;
    s[40] = 1; /* a length above 64 bits */
    cr_assert_eq(chain_abi_decode_string(s, 96, &p, &n), CHAIN_ERR_TRUNCATED, "length");
    s[40] = 0;
    memset(s, 0xff, 32); /* an offset of 2^256-1 */
    cr_assert_eq(chain_abi_decode_string(s, 96, &p, &n), CHAIN_ERR_TRUNCATED, "huge offset");

    /* bytes32 symbols (MKR and its like) */
    uint8_t mkr[32] = "MKR";
    cr_assert_eq(chain_abi_decode_symbol(mkr, 32, &p, &n), CHAIN_OK);
    cr_assert_eq(n, 3);
    cr_assert(memcmp(p, "MKR", 3) == 0);
    memset(mkr, 'A', 32);
    cr_assert_eq(chain_abi_decode_symbol(mkr, 32, &p, &n), CHAIN_OK);
    cr_assert_eq(n, 32);
}

Test(chain_abi, reverts)
{
    json_t *root = fx_load();
    json_t *r;
    size_t i;
    json_array_foreach(fx_get(fx_get(root, "abi"), "reverts"), i, r)
    {
        uint8_t data[256];
        size_t len = fx_hex(fx_str(r, "data"), data, sizeof(data));
        chain_abi_revert_t rv;
        cr_assert_eq(chain_abi_decode_revert(data, len, &rv), CHAIN_OK);
        const char *want = fx_str(r, "value");
        if (strcmp(fx_str(r, "kind"), "error") == 0) {
            cr_assert_eq(rv.kind, CHAIN_ABI_REVERT_ERROR);
            cr_assert_eq(rv.message_len, strlen(want));
            cr_assert(memcmp(rv.message, want, rv.message_len) == 0);
        } else {
            cr_assert_eq(rv.kind, CHAIN_ABI_REVERT_PANIC);
            cr_assert_eq(rv.panic_code.limb[0], strtoull(want, NULL, 10));
        }
        /* every cut of the data fails or is empty, and never reads past it */
        for (size_t n = 0; n != len; ++n) {
            uint8_t *cut = malloc(n + 1);
            memcpy(cut, data, n);
            int ret = chain_abi_decode_revert(n == 0 ? NULL : cut, n, &rv);
            cr_assert(n == 0 ? ret == CHAIN_OK && rv.kind == CHAIN_ABI_REVERT_EMPTY
                             : ret != CHAIN_OK || n >= 4 + 64,
                      "%zu bytes", n);
            free(cut);
        }
    }
    json_decref(root);
    chain_abi_revert_t rv;
    uint8_t custom[] = {0xde, 0xad, 0xbe, 0xef, 1, 2};
    cr_assert_eq(chain_abi_decode_revert(custom, sizeof(custom), &rv), CHAIN_OK);
    cr_assert_eq(rv.kind, CHAIN_ABI_REVERT_CUSTOM);
    cr_assert_arr_eq(rv.selector, custom, 4);
    cr_assert_eq(chain_abi_decode_revert(custom, 3, &rv), CHAIN_ERR_LENGTH);
}

/* a fixture log: its topics (at most 4) and data */
typedef struct st_log_t {
    uint8_t topics[4][32];
    size_t n_topics;
    uint8_t data[512];
    size_t len;
} log_t;

static void load_log(json_t *e, log_t *log)
{
    json_t *topics = fx_get(e, "topics");
    log->n_topics = json_array_size(topics);
    cr_assert(log->n_topics <= 4);
    for (size_t i = 0; i != log->n_topics; ++i)
        fx_hex_exact(json_string_value(json_array_get(topics, i)), log->topics[i], 32);
    log->len = fx_hex(fx_str(e, "data"), log->data, sizeof(log->data));
}

static void assert_word_hex(const uint8_t *w, size_t n, json_t *args, size_t i)
{
    char hex[2 * 512 + 3];
    cr_assert_str_eq(fx_to_hex(hex, w, n), json_string_value(json_array_get(args, i)));
}

static void assert_addr_arg(const chain_addr_t *a, json_t *args, size_t i)
{
    chain_addr_t want = fx_addr_str(json_string_value(json_array_get(args, i)));
    cr_assert(chain_addr_eq(a, &want), "arg %zu", i);
}

Test(chain_abi, events)
{
    json_t *root = fx_load();
    json_t *e;
    size_t i;
    json_array_foreach(fx_get(fx_get(root, "abi"), "events"), i, e)
    {
        log_t log;
        load_log(e, &log);
        chain_abi_event_t ev;
        cr_assert_eq(chain_abi_decode_event(&ev, log.topics, log.n_topics, log.data, log.len),
                     CHAIN_OK, "event %zu", i);
        json_t *args = fx_get(e, "args");
        const char *name = fx_str(e, "event");
        assert_word_hex(ev.intent_id, 32, args, 0);
        if (strcmp(name, "Executed") == 0) {
            cr_assert_eq(ev.kind, CHAIN_ABI_EVENT_KIND_EXECUTED);
            assert_addr_arg(&ev.owner, args, 1);
            assert_addr_arg(&ev.recipient, args, 2);
            assert_addr_arg(&ev.token, args, 3);
            char dec[CHAIN_U256_DEC_SIZE];
            chain_u256_to_dec(&ev.amount, dec);
            cr_assert_str_eq(dec, json_string_value(json_array_get(args, 4)));
            cr_assert_eq(ev.count, strtoul(json_string_value(json_array_get(args, 5)), NULL, 10));
        } else if (strcmp(name, "ExecutionFailed") == 0) {
            cr_assert_eq(ev.kind, CHAIN_ABI_EVENT_KIND_EXECUTION_FAILED);
            cr_assert_eq(ev.count, strtoul(json_string_value(json_array_get(args, 1)), NULL, 10));
            assert_word_hex(ev.reason, ev.reason_len, args, 2);
            chain_abi_revert_t rv;
            cr_assert_eq(chain_abi_decode_revert(ev.reason, ev.reason_len, &rv), CHAIN_OK);
        } else {
            cr_assert_str_eq(name, "Revoked");
            cr_assert_eq(ev.kind, CHAIN_ABI_EVENT_KIND_REVOKED);
        }
    }
    json_decref(root);
}

Test(chain_abi, event_errors)
{
    json_t *root = fx_load();
    json_t *events = fx_get(fx_get(root, "abi"), "events");
    log_t executed, failed;
    load_log(json_array_get(events, 0), &executed);
    load_log(json_array_get(events, 1), &failed);
    json_decref(root);
    chain_abi_event_t ev;

    log_t x = executed;
    x.topics[0][0] ^= 1;
    cr_assert_eq(chain_abi_decode_event(&ev, x.topics, x.n_topics, x.data, x.len),
                 CHAIN_ERR_UNSUPPORTED);
    cr_assert_eq(chain_abi_decode_event(&ev, NULL, 0, x.data, x.len), CHAIN_ERR_UNSUPPORTED);
    cr_assert_eq(chain_abi_decode_event(&ev, executed.topics, 3, executed.data, executed.len),
                 CHAIN_ERR_LENGTH);
    cr_assert_eq(chain_abi_decode_event(&ev, executed.topics, 4, executed.data, 64),
                 CHAIN_ERR_LENGTH);
    x = executed;
    x.topics[2][0] = 1; /* owner with dirty high bytes */
    cr_assert_eq(chain_abi_decode_event(&ev, x.topics, x.n_topics, x.data, x.len),
                 CHAIN_ERR_NONCANONICAL);
    x = executed;
    x.data[64 + 27] = 1; /* count above uint32 */
    cr_assert_eq(chain_abi_decode_event(&ev, x.topics, x.n_topics, x.data, x.len),
                 CHAIN_ERR_NONCANONICAL);

    /* cuts fail until the reason's last byte (its zero padding is not required) */
    cr_assert_eq(
        chain_abi_decode_event(&ev, failed.topics, failed.n_topics, failed.data, failed.len),
        CHAIN_OK);
    size_t complete = 3 * 32 + ev.reason_len;
    for (size_t n = 0; n != failed.len; ++n) {
        uint8_t *cut = malloc(n + 1);
        memcpy(cut, failed.data, n);
        int ret = chain_abi_decode_event(&ev, failed.topics, failed.n_topics, cut, n);
        cr_assert_eq(ret == CHAIN_OK, n >= complete, "ExecutionFailed cut to %zu bytes", n);
        free(cut);
    }
    x = failed;
    x.data[63] = 0xff; /* reason offset beyond the data */
    cr_assert_eq(chain_abi_decode_event(&ev, x.topics, x.n_topics, x.data, x.len),
                 CHAIN_ERR_TRUNCATED);
}
