/*
 * intent_render_json and chain_intent_typed_data_render: the create path's answer written
 * without jansson must be byte for byte what jansson makes of intent_to_json and
 * chain_intent_typed_data (JSON_COMPACT), for every shape of intent: names that need escapes or
 * hold UTF-8, every status, frequency, null and non-null member, constraints of every kind, and
 * numbers at their limits. And both refuse (0) what they cannot write, so that the caller falls
 * back to jansson.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "actors/intent_model.h"

/* names that exercise every escape jansson writes, and UTF-8 it writes as it is */
static const char *const names[] = {
    "Rent",
    "say \"hi\"",
    "back\\slash",
    "tab\there, new\nline, cr\r, bs\b, ff\f",
    "ctl \x01\x02\x1f end",
    "del \x7f and slash /",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb8",
    "",
    "\"\\\"\\",
};

/* a small deterministic generator (xorshift64), so that a failure can be replayed */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void rnd_bytes(uint8_t *out, size_t len)
{
    for (size_t i = 0; i != len; ++i)
        out[i] = (uint8_t)rnd();
}

static chain_u256_t rnd_u256(void)
{
    chain_u256_t v = {{0}};
    unsigned limbs = (unsigned)(rnd() % 5); /* 0 (zero) to all four limbs */
    for (unsigned i = 0; i != limbs; ++i)
        v.limb[i] = rnd();
    if (limbs == 0)
        v.limb[0] = 1 + rnd() % 1000;
    return v;
}

static int64_t rnd_time(bool nullable)
{
    if (nullable && rnd() % 3 == 0)
        return SCHED_NONE;
    return (int64_t)(rnd() % (uint64_t)(SCHED_TIME_MAX + 1));
}

static void rnd_constraints(intent_constraints_t *c)
{
    memset(c, 0, sizeof(*c));
    c->has_max_gas = rnd() % 2 == 0;
    if (c->has_max_gas)
        c->max_gas_price_wei = chain_u256_from_u64(1 + rnd() % 1000000000000u);
    c->has_window = rnd() % 2 == 0;
    if (c->has_window) {
        c->window.start_min = (uint16_t)(rnd() % 1440);
        c->window.end_min = (uint16_t)((c->window.start_min + 1 + rnd() % 1439) % 1440);
        c->window.offset_min = (int16_t)(SCHED_OFFSET_MIN_MIN + (int)(rnd() % (26 * 60 + 1)));
        c->window.days_given = rnd() % 2 == 0;
        c->window.days =
            c->window.days_given ? (uint8_t)(1 + rnd() % SCHED_ALL_DAYS) : (uint8_t)SCHED_ALL_DAYS;
    }
}

static void rnd_intent(intent_t *in, size_t i)
{
    memset(in, 0, sizeof(*in));
    snprintf(in->id, sizeof(in->id), "%08x-0000-4000-8000-%012llx", (unsigned)rnd(),
             (unsigned long long)(rnd() & 0xffffffffffffu));
    snprintf(in->name, sizeof(in->name), "%s", names[i % (sizeof(names) / sizeof(names[0]))]);
    rnd_bytes(in->owner.bytes, CHAIN_ADDR_LEN);
    rnd_bytes(in->token.address.bytes, CHAIN_ADDR_LEN);
    rnd_bytes(in->recipient.bytes, CHAIN_ADDR_LEN);
    in->token.decimals = (uint8_t)(rnd() % 19);
    snprintf(in->token.symbol, sizeof(in->token.symbol), "%s", i % 7 == 0 ? "U\"SD" : "USDC");
    in->amount = rnd_u256();
    in->sched.freq = (chain_intent_freq_t)(rnd() % 5);
    in->sched.interval_s = in->sched.freq == CHAIN_INTENT_CUSTOM ? 60 + rnd() % 100000000 : 0;
    in->sched.start_at = rnd_time(false);
    in->sched.end_at = rnd_time(true);
    in->sched.max_executions = rnd() % 3 == 0 ? 0 : (uint32_t)rnd();
    in->sched.min_interval_s = rnd() % 2 == 0 ? 0 : rnd() % 100000000;
    in->safety_buffer = rnd() % 3 == 0 ? chain_u256_from_u64(0) : rnd_u256();
    rnd_constraints(&in->constraints);
    rnd_bytes(in->salt, sizeof(in->salt));
    in->chain_id = 1 + rnd() % UINT64_MAX;
    rnd_bytes(in->registry.bytes, CHAIN_ADDR_LEN);
    in->status = (intent_status_t)(rnd() % INTENT_STATUS_COUNT);
    in->delay_reason = in->status == INTENT_DELAYED
                           ? (sched_delay_t)(1 + rnd() % SCHED_DELAY_GAS_PRICE_ABOVE_CAP)
                           : SCHED_DELAY_NONE;
    in->next_execution = rnd_time(true);
    in->last_execution = rnd_time(true);
    in->execution_count = (uint32_t)rnd();
    in->created_at = rnd_time(false);
    in->updated_at = rnd_time(false);
}

/* jansson's bytes for the intent, as the other answers make them (malloc'ed, NUL-terminated) */
static char *jansson_bytes(const intent_t *in)
{
    json_t *o = intent_to_json(in);
    cr_assert_not_null(o);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    cr_assert_not_null(s);
    return s;
}

Test(intent_render, same_bytes_as_jansson_for_every_shape)
{
    static char buf[INTENT_JSON_MAX_SIZE];
    for (size_t i = 0; i != 3000; ++i) {
        intent_t in;
        rnd_intent(&in, i);
        char *want = jansson_bytes(&in);
        size_t n = intent_render_json(&in, NULL, buf, sizeof(buf));
        cr_assert_eq(n, strlen(want), "#%zu: length %zu, want %zu\n%s", i, n, strlen(want), want);
        cr_assert(memcmp(buf, want, n) == 0, "#%zu:\n got %.*s\nwant %s", i, (int)n, buf, want);
        /* the caller's onChainId gives the same bytes */
        uint8_t id[CHAIN_EIP712_HASH_LEN];
        intent_on_chain_id(&in, id);
        cr_assert_eq(intent_render_json(&in, id, buf, sizeof(buf)), n);
        cr_assert(memcmp(buf, want, n) == 0);
        free(want);
    }
}

Test(intent_render, longest_name_fits_and_short_buffers_are_refused)
{
    static char buf[INTENT_JSON_MAX_SIZE];
    intent_t in;
    rnd_intent(&in, 0);
    /* 800 bytes that each take six once escaped, the most a name can cost */
    memset(in.name, 0x01, INTENT_NAME_SIZE - 1);
    in.name[INTENT_NAME_SIZE - 1] = '\0';
    char *want = jansson_bytes(&in);
    size_t n = intent_render_json(&in, NULL, buf, sizeof(buf));
    cr_assert_eq(n, strlen(want));
    cr_assert(memcmp(buf, want, n) == 0);
    /* every shorter buffer is refused whole, never cut */
    for (size_t cap = 0; cap < n; cap += 1 + cap / 8)
        cr_assert_eq(intent_render_json(&in, NULL, buf, cap), 0, "cap %zu", cap);
    cr_assert_eq(intent_render_json(&in, NULL, buf, n), n);
    free(want);
}

Test(intent_render, invalid_utf8_is_refused_like_jansson)
{
    static char buf[INTENT_JSON_MAX_SIZE];
    static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        intent_t in;
        rnd_intent(&in, 0);
        snprintf(in.name, sizeof(in.name), "%s", bad[i]);
        cr_assert_null(intent_to_json(&in), "#%zu", i);
        cr_assert_eq(intent_render_json(&in, NULL, buf, sizeof(buf)), 0, "#%zu", i);
    }
}

Test(intent_render, typed_data_same_bytes_and_refuses_what_needs_escapes)
{
    char buf[2048];
    for (size_t i = 0; i != 200; ++i) {
        intent_t in;
        rnd_intent(&in, i);
        chain_intent_t terms;
        chain_eip712_domain_t domain;
        intent_signed_terms(&in, &terms);
        intent_domain(&in, &domain);
        json_t *o = chain_intent_typed_data(&domain, &terms);
        char *want = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        size_t n = chain_intent_typed_data_render(&domain, &terms, buf, sizeof(buf));
        cr_assert_eq(n, strlen(want));
        cr_assert(memcmp(buf, want, n) == 0, "got %.*s\nwant %s", (int)n, buf, want);
        cr_assert_eq(chain_intent_typed_data_render(&domain, &terms, buf, n - 1), 0);
        free(want);
        domain.name = "Flow\"Pay";
        cr_assert_eq(chain_intent_typed_data_render(&domain, &terms, buf, sizeof(buf)), 0);
        domain.name = "Flow\xc3\xa9";
        cr_assert_eq(chain_intent_typed_data_render(&domain, &terms, buf, sizeof(buf)), 0);
    }
}

Test(intent_render, address_memo_always_answers_chain_addr_format)
{
    /* a few hot addresses among many cold ones, more than the memo holds */
    chain_addr_t hot[3], cold;
    for (size_t i = 0; i != 3; ++i)
        rnd_bytes(hot[i].bytes, CHAIN_ADDR_LEN);
    for (size_t i = 0; i != 5000; ++i) {
        chain_addr_t a = hot[i % 3];
        if (i % 2 == 0) {
            rnd_bytes(cold.bytes, CHAIN_ADDR_LEN);
            cold.bytes[0] = (uint8_t)(i % 4); /* some cold ones repeat */
            cold.bytes[1] = 0;
            a = i % 8 == 0 ? cold : a;
            if (i % 16 == 0)
                memset(a.bytes + 2, 0, CHAIN_ADDR_LEN - 2);
        }
        char want[CHAIN_ADDR_STR_SIZE], got[CHAIN_ADDR_STR_SIZE];
        chain_addr_format(&a, want);
        chain_eip712_addr_text(&a, got);
        cr_assert_str_eq(got, want, "#%zu", i);
    }
}

/* hashStruct of PaymentIntent through the public struct API: the reference for the memo */
static void reference_hash(const chain_intent_t *t, uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    chain_eip712_struct_t s;
    chain_eip712_struct_begin(&s, CHAIN_INTENT_TYPE);
    chain_eip712_put_address(&s, &t->owner);
    chain_eip712_put_address(&s, &t->token);
    chain_eip712_put_address(&s, &t->recipient);
    chain_eip712_put_u256(&s, &t->amount);
    chain_eip712_put_u64(&s, t->min_interval);
    chain_eip712_put_u64(&s, t->valid_after);
    chain_eip712_put_u64(&s, t->valid_until);
    chain_eip712_put_u64(&s, t->max_executions);
    chain_eip712_put_word(&s, t->salt);
    chain_eip712_struct_end(&s, out);
}

Test(intent_render, intent_hash_memo_never_answers_other_terms)
{
    chain_intent_t prev;
    memset(&prev, 0, sizeof(prev));
    for (size_t i = 0; i != 500; ++i) {
        intent_t in;
        rnd_intent(&in, i);
        chain_intent_t t;
        intent_signed_terms(&in, &t);
        if (i % 3 == 1) { /* the previous terms but one byte of one member */
            uint8_t *fields[] = {prev.owner.bytes,
                                 prev.token.bytes,
                                 prev.recipient.bytes,
                                 (uint8_t *)&prev.amount,
                                 (uint8_t *)&prev.min_interval,
                                 (uint8_t *)&prev.valid_after,
                                 (uint8_t *)&prev.valid_until,
                                 (uint8_t *)&prev.max_executions,
                                 prev.salt};
            t = prev;
            size_t k = (size_t)(rnd() % (sizeof(fields) / sizeof(fields[0])));
            size_t off = (size_t)(fields[k] - (uint8_t *)&prev);
            ((uint8_t *)&t)[off] ^= 1;
        } else if (i % 3 == 2) {
            t = prev; /* the same terms again: the memo's answer */
        }
        uint8_t got[CHAIN_EIP712_HASH_LEN], want[CHAIN_EIP712_HASH_LEN];
        chain_intent_hash(&t, got);
        reference_hash(&t, want);
        cr_assert(memcmp(got, want, sizeof(got)) == 0, "#%zu", i);
        prev = t;
    }
}

Test(intent_render, constraints_same_bytes_as_jansson)
{
    char buf[512];
    for (size_t i = 0; i != 2000; ++i) {
        intent_constraints_t c;
        rnd_constraints(&c);
        json_t *o = intent_constraints_to_json(&c);
        char *want = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        size_t n = intent_constraints_render(&c, buf, sizeof(buf));
        cr_assert_eq(n, strlen(want), "#%zu: %s", i, want);
        cr_assert(memcmp(buf, want, n) == 0, "#%zu: got %.*s want %s", i, (int)n, buf, want);
        cr_assert_eq(intent_constraints_render(&c, buf, n - 1), 0);
        free(want);
    }
}
