#include "actors/intent_model.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "chain/common.h"
#include "chain/hex.h"
#include "chain/rfc3339.h"
#include "net/json.h"

/* CHAIN_ASSERT stays on with NDEBUG: an intent rendered or signed from a broken invariant is a
 * wrong payment or a wrong answer about money. */
#define INTENT_ASSERT(cond) CHAIN_ASSERT(cond)
#define INTENT__COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* room for "constraints.timeWindow.days[6]" and the like */
#define INTENT__FIELD_SIZE 64
/* The most maxExecutions taken: the registry's uint32 would allow 4294967295, but the column
 * intents.max_executions is an integer, and a larger value failed its insert (500). */
#define INTENT__MAX_EXECUTIONS_MAX INT32_MAX

/* ---- field tables ---- */

/* one table for both bodies: the same fields, required only when creating */
/* clang-format off */
#define INTENT__FIELDS(req)                                                                        \
    {.name = "name", .kind = NET_JSON_STRING, .flags = (req), .max_len = INTENT_NAME_MAX_CHARS},   \
    {.name = "recipient", .kind = NET_JSON_STRING, .flags = (req)},                                \
    {.name = "token", .kind = NET_JSON_STRING, .flags = (req)},                                    \
    {.name = "amount", .kind = NET_JSON_DECIMAL, .flags = (req)},                                  \
    {.name = "frequency", .kind = NET_JSON_STRING, .flags = (req)},                                \
    {.name = "intervalSeconds", .kind = NET_JSON_INTEGER, .flags = NET_JSON_NULLABLE,              \
     .min = SCHED_CUSTOM_MIN_S, .max = SCHED_CUSTOM_MAX_S},                                        \
    {.name = "startAt", .kind = NET_JSON_STRING, .flags = (req)},                                  \
    {.name = "endAt", .kind = NET_JSON_STRING, .flags = NET_JSON_NULLABLE},                        \
    {.name = "maxExecutions", .kind = NET_JSON_INTEGER, .flags = NET_JSON_NULLABLE,                \
     .min = 0, .max = INTENT__MAX_EXECUTIONS_MAX},                                                 \
    {.name = "safetyBuffer", .kind = NET_JSON_DECIMAL},                                            \
    {.name = "constraints", .kind = NET_JSON_OBJECT, .flags = NET_JSON_NULLABLE},                  \
    {.name = "salt", .kind = NET_JSON_STRING},                                                     \
    {.name = "signature", .kind = NET_JSON_STRING}
/* clang-format on */

const net_json_field_t intent_create_fields[] = {INTENT__FIELDS(NET_JSON_REQUIRED)};
const size_t intent_create_fields_count = INTENT__COUNT(intent_create_fields);
const net_json_field_t intent_patch_fields[] = {INTENT__FIELDS(0)};
const size_t intent_patch_fields_count = INTENT__COUNT(intent_patch_fields);

/* ---- names ---- */

static const char *const intent__status_names[INTENT_STATUS_COUNT] = {
    [INTENT_PENDING_SIGNATURE] = "pending_signature",
    [INTENT_ACTIVE] = "active",
    [INTENT_PAUSED] = "paused",
    [INTENT_DELAYED] = "delayed",
    [INTENT_COMPLETED] = "completed",
    [INTENT_CANCELLED] = "cancelled",
    [INTENT_FAILED] = "failed",
};

static const char *const intent__freq_names[] = {
    [CHAIN_INTENT_ONCE] = "once",     [CHAIN_INTENT_DAILY] = "daily",
    [CHAIN_INTENT_WEEKLY] = "weekly", [CHAIN_INTENT_MONTHLY] = "monthly",
    [CHAIN_INTENT_CUSTOM] = "custom",
};

const char *intent_status_name(intent_status_t status)
{
    INTENT_ASSERT(status >= 0 && status < INTENT_STATUS_COUNT);
    return intent__status_names[status];
}

bool intent_status_parse(const char *name, intent_status_t *status)
{
    for (int i = 0; name != NULL && i != INTENT_STATUS_COUNT; ++i) {
        if (strcmp(name, intent__status_names[i]) == 0) {
            *status = (intent_status_t)i;
            return true;
        }
    }
    return false;
}

const char *intent_freq_name(chain_intent_freq_t freq)
{
    INTENT_ASSERT(freq >= CHAIN_INTENT_ONCE && freq <= CHAIN_INTENT_CUSTOM);
    return intent__freq_names[freq];
}

bool intent_freq_parse(const char *name, chain_intent_freq_t *freq)
{
    for (int i = CHAIN_INTENT_ONCE; name != NULL && i <= CHAIN_INTENT_CUSTOM; ++i) {
        if (strcmp(name, intent__freq_names[i]) == 0) {
            *freq = (chain_intent_freq_t)i;
            return true;
        }
    }
    return false;
}

intent_field_kind_t intent_patch_field_kind(const char *name)
{
    static const char *const terms[] = {"recipient",       "token",   "amount", "frequency",
                                        "intervalSeconds", "startAt", "endAt",  "maxExecutions"};
    static const char *const meta[] = {"name", "safetyBuffer", "constraints"};
    static const char *const signing[] = {"salt", "signature"};
    for (size_t i = 0; name != NULL && i != INTENT__COUNT(terms); ++i)
        if (strcmp(name, terms[i]) == 0)
            return INTENT_FIELD_TERMS;
    for (size_t i = 0; name != NULL && i != INTENT__COUNT(meta); ++i)
        if (strcmp(name, meta[i]) == 0)
            return INTENT_FIELD_META;
    for (size_t i = 0; name != NULL && i != INTENT__COUNT(signing); ++i)
        if (strcmp(name, signing[i]) == 0)
            return INTENT_FIELD_SIGNING;
    return INTENT_FIELD_UNKNOWN;
}

/* ---- single fields: each adds its own error and returns false when the value is bad ---- */

/* Marks `errs` as holding a malformed value (an address, a time, a hex string that does not
 * parse, an unknown member) rather than a broken rule: its detail, which intent_model.h's callers
 * answer with 400 instead of 422 (api.md: "400 bad input"; a wrong EIP-55 checksum is 400). */
static void intent__malformed(net_json_errors_t *errs)
{
    snprintf(errs->detail, sizeof(errs->detail), "%s", INTENT_MALFORMED_DETAIL);
}

/* the string of `v`, or NULL after reporting that it is not one */
static const char *intent__string(const json_t *v, const char *field, net_json_errors_t *errs)
{
    if (!json_is_string(v)) {
        net_json_errors_add(errs, field, "must be a string");
        return NULL;
    }
    return json_string_value(v);
}

/* 1..200 code points and no C0/C1 control character or DEL; jansson has checked the UTF-8 */
static bool intent__name(const json_t *v, char out[INTENT_NAME_SIZE], net_json_errors_t *errs)
{
    const char *s = intent__string(v, "name", errs);
    if (s == NULL)
        return false;
    size_t len = json_string_length(v), chars = 0;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        bool c1 = c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0;
        if (c < 0x20 || c == 0x7f || c1) {
            net_json_errors_add(errs, "name", "must not contain control characters");
            return false;
        }
        chars += (c & 0xc0) != 0x80;
    }
    if (chars == 0 || chars > INTENT_NAME_MAX_CHARS) {
        net_json_errors_add(errs, "name", "must be 1 to %d characters", INTENT_NAME_MAX_CHARS);
        return false;
    }
    INTENT_ASSERT(len < INTENT_NAME_SIZE);
    memcpy(out, s, len + 1);
    return true;
}

static bool intent__address(const json_t *v, const char *field, chain_addr_t *out,
                            net_json_errors_t *errs)
{
    const char *s = intent__string(v, field, errs);
    if (s == NULL)
        return false;
    int ret = chain_addr_parse(out, s, json_string_length(v));
    if (ret == CHAIN_ERR_CHECKSUM)
        net_json_errors_add(errs, field,
                            "has a wrong EIP-55 checksum (mixed case must be checksummed)");
    else if (ret != CHAIN_OK)
        net_json_errors_add(errs, field, "must be an address: \"0x\" and 40 hex digits");
    if (ret != CHAIN_OK)
        intent__malformed(errs);
    return ret == CHAIN_OK;
}

/* a decimal string in units of `tok` into base units; without a token (unresolved, reported by
 * the caller) only the syntax is checked */
static bool intent__units(const json_t *v, const char *field, const intent_token_t *tok,
                          bool positive, chain_u256_t *out, net_json_errors_t *errs)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (s == NULL || !net_json_is_decimal(s, len)) {
        net_json_errors_add(errs, field, "must be a decimal string such as \"100.5\"");
        return false;
    }
    if (tok == NULL)
        return false;
    int ret = chain_u256_parse_units(out, s, len, tok->decimals);
    if (ret == CHAIN_ERR_PRECISION) {
        net_json_errors_add(errs, field, "has more than %u decimals (%s)", tok->decimals,
                            tok->symbol);
    } else if (ret != CHAIN_OK) {
        net_json_errors_add(errs, field, "is too large");
    } else if (positive && chain_u256_is_zero(out)) {
        net_json_errors_add(errs, field, "must be greater than 0");
        return false;
    }
    return ret == CHAIN_OK;
}

/* an RFC 3339 time into whole unix seconds (the fraction dropped), 1970 .. 9999 */
static bool intent__time(const json_t *v, const char *field, int64_t *out, net_json_errors_t *errs)
{
    const char *s = intent__string(v, field, errs);
    if (s == NULL)
        return false;
    int64_t t;
    if (chain_rfc3339_parse(s, json_string_length(v), &t, NULL) != CHAIN_OK) {
        net_json_errors_add(errs, field,
                            "must be an RFC 3339 time such as \"2026-11-21T09:00:00Z\"");
        intent__malformed(errs);
        return false;
    }
    if (t < 0 || t > SCHED_TIME_MAX) {
        net_json_errors_add(errs, field, "must be between 1970 and 9999");
        return false;
    }
    *out = t;
    return true;
}

static bool intent__integer(const json_t *v, const char *field, int64_t min, int64_t max,
                            int64_t *out, net_json_errors_t *errs)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        net_json_errors_add(errs, field, "must be an integer from %" PRId64 " to %" PRId64, min,
                            max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool intent__hex(const json_t *v, const char *field, uint8_t *out, size_t len,
                        net_json_errors_t *errs)
{
    const char *s = json_string_value(v);
    if (s == NULL || chain_hex_decode_exact(out, len, s, json_string_length(v),
                                            CHAIN_HEX_0X_REQUIRED) != CHAIN_OK) {
        net_json_errors_add(errs, field, "must be \"0x\" and %zu hex digits", 2 * len);
        intent__malformed(errs);
        return false;
    }
    return true;
}

/* ---- constraints ---- */

#define INTENT__TW "constraints.timeWindow"

/* reports members of `obj` not in `known` under `prefix`; bounded by the object's size, and
 * stops once the error list is full */
static bool intent__known_members(const json_t *obj, const char *const *known, size_t n,
                                  const char *prefix, net_json_errors_t *errs)
{
    bool ok = true;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        size_t i = 0;
        while (i != n && strcmp(key, known[i]) != 0)
            ++i;
        if (i != n)
            continue;
        char field[INTENT__FIELD_SIZE];
        snprintf(field, sizeof(field), "%s.%s", prefix, key);
        net_json_errors_add(errs, field, "is not a known field");
        intent__malformed(errs);
        ok = false;
        if (errs->truncated)
            break;
    }
    return ok;
}

static bool intent__hhmm(const json_t *tw, const char *member, uint16_t *out,
                         net_json_errors_t *errs)
{
    const json_t *v = json_object_get(tw, member);
    const char *field = strcmp(member, "start") == 0 ? INTENT__TW ".start" : INTENT__TW ".end";
    if (v == NULL) {
        net_json_errors_add(errs, field, "is required");
        return false;
    }
    if (!sched_parse_hhmm(json_string_value(v), json_string_length(v), out)) {
        net_json_errors_add(errs, field, "must be a time of day \"HH:MM\" from 00:00 to 23:59");
        return false;
    }
    return true;
}

/* "days": 1 to 7 distinct day names; absent means every day */
static bool intent__days(const json_t *v, sched_window_t *w, net_json_errors_t *errs)
{
    w->days = SCHED_ALL_DAYS;
    w->days_given = v != NULL;
    if (v == NULL)
        return true;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 7) {
        net_json_errors_add(errs, INTENT__TW ".days", "must be an array of 1 to 7 day names");
        return false;
    }
    bool ok = true;
    w->days = 0;
    for (size_t i = 0; i != json_array_size(v); ++i) { /* at most 7 */
        const json_t *d = json_array_get(v, i);
        char field[INTENT__FIELD_SIZE];
        snprintf(field, sizeof(field), INTENT__TW ".days[%zu]", i);
        unsigned day;
        if (!sched_parse_day(json_string_value(d), json_string_length(d), &day)) {
            net_json_errors_add(errs, field, "must be one of mon, tue, wed, thu, fri, sat, sun");
            ok = false;
        } else if ((w->days & SCHED_DAY_BIT(day)) != 0) {
            net_json_errors_add(errs, field, "repeats \"%s\"", sched_day_name(day));
            ok = false;
        } else {
            w->days |= (uint8_t)SCHED_DAY_BIT(day);
        }
    }
    return ok;
}

static bool intent__window(const json_t *tw, sched_window_t *w, net_json_errors_t *errs)
{
    static const char *const known[] = {"start", "end", "utcOffset", "days"};
    if (!json_is_object(tw)) {
        net_json_errors_add(errs, INTENT__TW, "must be an object");
        return false;
    }
    memset(w, 0, sizeof(*w));
    bool ok = intent__known_members(tw, known, INTENT__COUNT(known), INTENT__TW, errs);
    bool times_ok = intent__hhmm(tw, "start", &w->start_min, errs);
    times_ok = intent__hhmm(tw, "end", &w->end_min, errs) && times_ok;
    if (times_ok && w->start_min == w->end_min) {
        /* an empty window would hold every execution forever; a whole day is no window */
        net_json_errors_add(errs, INTENT__TW ".end", "must differ from start");
        times_ok = false;
    }
    const json_t *off = json_object_get(tw, "utcOffset");
    if (off != NULL &&
        !sched_parse_offset(json_string_value(off), json_string_length(off), &w->offset_min)) {
        net_json_errors_add(errs, INTENT__TW ".utcOffset",
                            "must be \"+HH:MM\" or \"-HH:MM\" from -12:00 to +14:00, in quarter "
                            "hours");
        ok = false;
    }
    ok = intent__days(json_object_get(tw, "days"), w, errs) && ok;
    return ok && times_ok;
}

static bool intent__max_gas(const json_t *v, chain_u256_t *wei, net_json_errors_t *errs)
{
    static const char field[] = "constraints.maxGasPriceGwei";
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    int ret = CHAIN_ERR_SYNTAX;
    if (s != NULL && net_json_is_decimal(s, len))
        ret = chain_u256_parse_gwei(wei, s, len);
    if (ret == CHAIN_ERR_PRECISION)
        net_json_errors_add(errs, field, "has more than 9 decimals (1 wei is 0.000000001 gwei)");
    else if (ret == CHAIN_ERR_OVERFLOW)
        net_json_errors_add(errs, field, "is too large");
    else if (ret != CHAIN_OK)
        net_json_errors_add(errs, field, "must be a decimal string such as \"1.5\"");
    else if (chain_u256_is_zero(wei))
        net_json_errors_add(errs, field, "must be greater than 0");
    return ret == CHAIN_OK && !chain_u256_is_zero(wei);
}

bool intent_constraints_parse(const json_t *obj, intent_constraints_t *out, net_json_errors_t *errs)
{
    static const char *const known[] = {"maxGasPriceGwei", "timeWindow"};
    INTENT_ASSERT(out != NULL && errs != NULL);
    memset(out, 0, sizeof(*out));
    if (obj == NULL || json_is_null(obj))
        return true;
    if (!json_is_object(obj)) {
        net_json_errors_add(errs, "constraints", "must be an object");
        return false;
    }
    bool ok = intent__known_members(obj, known, INTENT__COUNT(known), "constraints", errs);
    const json_t *gas = json_object_get(obj, "maxGasPriceGwei");
    if (gas != NULL) {
        out->has_max_gas = intent__max_gas(gas, &out->max_gas_price_wei, errs);
        ok = out->has_max_gas && ok;
    }
    const json_t *tw = json_object_get(obj, "timeWindow");
    if (tw != NULL && !json_is_null(tw)) {
        out->has_window = intent__window(tw, &out->window, errs);
        ok = out->has_window && ok;
    }
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}

static json_t *intent__window_json(const sched_window_t *w)
{
    char start[6], end[6], offset[7];
    sched_format_hhmm(w->start_min, start);
    sched_format_hhmm(w->end_min, end);
    sched_format_offset(w->offset_min, offset);
    json_t *o = json_pack("{s:s, s:s, s:s}", "start", start, "end", end, "utcOffset", offset);
    if (o == NULL || !w->days_given)
        return o;
    json_t *days = json_array();
    for (unsigned i = 0; days != NULL && i != 7; ++i) {
        if ((w->days & SCHED_DAY_BIT(i)) != 0 &&
            json_array_append_new(days, json_string(sched_day_name(i))) != 0) {
            json_decref(days);
            days = NULL;
        }
    }
    if (json_object_set_new(o, "days", days) != 0) { /* releases `days`, also NULL */
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *intent_constraints_to_json(const intent_constraints_t *c)
{
    INTENT_ASSERT(c != NULL);
    json_t *o = json_object();
    bool ok = o != NULL;
    if (ok && c->has_max_gas) {
        char gwei[CHAIN_U256_UNITS_SIZE];
        chain_u256_format_gwei(&c->max_gas_price_wei, gwei);
        ok = json_object_set_new(o, "maxGasPriceGwei", json_string(gwei)) == 0;
    }
    if (ok && c->has_window)
        ok = json_object_set_new(o, "timeWindow", intent__window_json(&c->window)) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bool intent__constraints_eq(const intent_constraints_t *a, const intent_constraints_t *b)
{
    if (a->has_max_gas != b->has_max_gas || a->has_window != b->has_window)
        return false;
    if (a->has_max_gas && chain_u256_cmp(&a->max_gas_price_wei, &b->max_gas_price_wei) != 0)
        return false;
    const sched_window_t *x = &a->window, *y = &b->window;
    return !a->has_window ||
           (x->start_min == y->start_min && x->end_min == y->end_min &&
            x->offset_min == y->offset_min && x->days == y->days && x->days_given == y->days_given);
}

/* ---- bodies ---- */

static bool intent__required(const char *field, net_json_errors_t *errs)
{
    net_json_errors_add(errs, field, "is required");
    return false;
}

/* name and constraints; `cur` is NULL when creating */
static bool intent__read_meta(const json_t *body, const intent_t *cur, intent_t *out,
                              net_json_errors_t *errs)
{
    bool ok = true;
    const json_t *v = json_object_get(body, "name");
    if (v != NULL)
        ok = intent__name(v, out->name, errs);
    else if (cur == NULL)
        ok = intent__required("name", errs);
    v = json_object_get(body, "constraints");
    if (v != NULL)
        ok = intent_constraints_parse(v, &out->constraints, errs) && ok;
    return ok;
}

/*
 * An amount-like field in the units of `tok`: parsed when sent; when creating and absent, required
 * (`positive`) or zero; when patching and absent, the current value, carried over in token
 * units when the token changes decimals.
 */
static bool intent__amount(const json_t *body, const char *field, const intent_t *cur,
                           const chain_u256_t *cur_value, const intent_token_t *tok, bool positive,
                           chain_u256_t *out, net_json_errors_t *errs)
{
    const json_t *v = json_object_get(body, field);
    if (v != NULL)
        return intent__units(v, field, tok, positive, out, errs);
    if (cur == NULL) {
        *out = chain_u256_from_u64(0);
        return positive ? intent__required(field, errs) : true;
    }
    if (tok == NULL)
        return false;
    *out = *cur_value;
    if (tok->decimals == cur->token.decimals)
        return true;
    char units[CHAIN_U256_UNITS_SIZE];
    size_t len = chain_u256_format_units(cur_value, cur->token.decimals, units);
    int ret = chain_u256_parse_units(out, units, len, tok->decimals);
    if (ret != CHAIN_OK)
        net_json_errors_add(errs, field, "%s does not fit %s's %u decimals; send it again", units,
                            tok->symbol, tok->decimals);
    return ret == CHAIN_OK;
}

/* the recipient rules of intent_model.h, for a recipient and token already read */
static bool intent__recipient_rules(const intent_t *in, bool token_known, net_json_errors_t *errs)
{
    const char *why = NULL;
    if (chain_addr_is_zero(&in->recipient))
        why = "must not be the zero address";
    else if (chain_addr_eq(&in->recipient, &in->owner))
        why = "must not be your own address";
    else if (token_known && chain_addr_eq(&in->recipient, &in->token.address))
        why = "must not be the token contract (tokens sent there are lost)";
    else if (chain_addr_eq(&in->recipient, &in->registry))
        why = "must not be the intent registry (tokens sent there are lost)";
    if (why != NULL)
        net_json_errors_add(errs, "recipient", "%s", why);
    return why == NULL;
}

/* recipient, token, amount and safetyBuffer */
static bool intent__read_money(const json_t *body, const intent_t *cur, const intent_ctx_t *ctx,
                               intent_t *out, net_json_errors_t *errs)
{
    bool ok = true, recipient_ok = true;
    const json_t *v = json_object_get(body, "recipient");
    if (v != NULL)
        ok = recipient_ok = intent__address(v, "recipient", &out->recipient, errs);
    else if (cur == NULL)
        ok = recipient_ok = intent__required("recipient", errs);
    const intent_token_t *tok = cur != NULL ? &cur->token : NULL;
    if (json_object_get(body, "token") != NULL)
        tok = ctx->token; /* NULL: the caller could not resolve it and said so */
    else if (cur == NULL)
        ok = intent__required("token", errs);
    if (tok != NULL)
        out->token = *tok;
    else
        ok = false;
    ok = intent__amount(body, "amount", cur, cur != NULL ? &cur->amount : NULL, tok, true,
                        &out->amount, errs) &&
         ok;
    ok = intent__amount(body, "safetyBuffer", cur, cur != NULL ? &cur->safety_buffer : NULL, tok,
                        false, &out->safety_buffer, errs) &&
         ok;
    if (recipient_ok)
        ok = intent__recipient_rules(out, tok != NULL, errs) && ok;
    return ok;
}

/* the schedule's fields while a body is read: each `*_ok` false once that field is bad */
typedef struct st_intent__draft_t {
    chain_intent_freq_t freq;
    int64_t interval_s; /* 0: none */
    int64_t start_at;
    int64_t end_at;     /* SCHED_NONE: none */
    int64_t max;        /* 0: unlimited */
    bool interval_sent; /* a non-null intervalSeconds was in the body */
    bool max_sent;      /* a non-null maxExecutions was in the body */
    bool end_sent;      /* a non-null endAt was in the body */
    bool freq_ok, interval_ok, start_ok, end_ok, max_ok;
} intent__draft_t;

static void intent__draft_init(intent__draft_t *d, const intent_t *cur)
{
    memset(d, 0, sizeof(*d));
    d->end_at = SCHED_NONE;
    d->interval_ok = d->end_ok = d->max_ok = true;
    if (cur == NULL)
        return; /* frequency and startAt are required */
    d->freq = cur->sched.freq;
    d->interval_s = (int64_t)cur->sched.interval_s;
    d->start_at = cur->sched.start_at;
    d->end_at = cur->sched.end_at;
    d->max = cur->sched.max_executions;
    d->freq_ok = d->start_ok = true;
}

static void intent__draft_read(intent__draft_t *d, const json_t *body, bool create,
                               net_json_errors_t *errs)
{
    const json_t *v = json_object_get(body, "frequency");
    if (v != NULL) {
        const char *s = intent__string(v, "frequency", errs);
        d->freq_ok = s != NULL && intent_freq_parse(s, &d->freq);
        if (s != NULL && !d->freq_ok)
            net_json_errors_add(errs, "frequency",
                                "must be one of once, daily, weekly, monthly, custom");
    } else if (create) {
        intent__required("frequency", errs);
    }
    if ((v = json_object_get(body, "intervalSeconds")) != NULL) {
        d->interval_sent = !json_is_null(v);
        d->interval_s = 0;
        d->interval_ok =
            !d->interval_sent || intent__integer(v, "intervalSeconds", SCHED_CUSTOM_MIN_S,
                                                 SCHED_CUSTOM_MAX_S, &d->interval_s, errs);
    }
    if ((v = json_object_get(body, "startAt")) != NULL)
        d->start_ok = intent__time(v, "startAt", &d->start_at, errs);
    else if (create)
        intent__required("startAt", errs);
    if ((v = json_object_get(body, "endAt")) != NULL) {
        d->end_at = SCHED_NONE;
        d->end_sent = !json_is_null(v);
        d->end_ok = !d->end_sent || intent__time(v, "endAt", &d->end_at, errs);
    }
    if ((v = json_object_get(body, "maxExecutions")) != NULL) {
        d->max_sent = !json_is_null(v);
        d->max = 0;
        d->max_ok = !d->max_sent || intent__integer(v, "maxExecutions", 0,
                                                    INTENT__MAX_EXECUTIONS_MAX, &d->max, errs);
    }
}

/* the rules between schedule fields; normalises intervalSeconds and maxExecutions */
static bool intent__draft_check(intent__draft_t *d, const intent_t *cur, int64_t now,
                                net_json_errors_t *errs)
{
    bool ok = d->freq_ok && d->interval_ok && d->start_ok && d->end_ok && d->max_ok;
    if (d->freq_ok && d->interval_ok) {
        if (d->freq == CHAIN_INTENT_CUSTOM && d->interval_s == 0) {
            net_json_errors_add(errs, "intervalSeconds", "is required with frequency \"custom\"");
            ok = false;
        }
        if (d->freq != CHAIN_INTENT_CUSTOM && d->interval_sent) {
            net_json_errors_add(errs, "intervalSeconds", "applies only to frequency \"custom\"");
            ok = false;
        }
        if (d->freq != CHAIN_INTENT_CUSTOM)
            d->interval_s = 0;
    }
    if (d->freq_ok && d->max_ok) {
        if (d->freq == CHAIN_INTENT_ONCE && d->max_sent && d->max > 1) {
            net_json_errors_add(errs, "maxExecutions",
                                "must be 1 or absent for frequency \"once\"");
            ok = false;
        }
        if (d->freq == CHAIN_INTENT_ONCE)
            d->max = 1;
        else if (cur != NULL && cur->sched.freq == CHAIN_INTENT_ONCE && !d->max_sent)
            d->max = 0; /* once's 1 was implied by once, not chosen */
    }
    if (d->start_ok && d->end_ok && d->end_at != SCHED_NONE) {
        /* "in the future" only for an endAt sent now: a stored one that has just passed is the
         * engine's to complete, and must not block a PATCH of the name */
        const char *why = d->end_at <= d->start_at          ? "must be after startAt"
                          : d->end_sent && d->end_at <= now ? "must be in the future"
                                                            : NULL;
        if (why != NULL) {
            net_json_errors_add(errs, "endAt", "%s", why);
            ok = false;
        }
    }
    return ok;
}

static bool intent__read_schedule(const json_t *body, const intent_t *cur, int64_t now,
                                  intent_t *out, net_json_errors_t *errs)
{
    intent__draft_t d;
    intent__draft_init(&d, cur);
    intent__draft_read(&d, body, cur == NULL, errs);
    if (!intent__draft_check(&d, cur, now, errs))
        return false;
    sched_init(&out->sched, d.freq, (uint64_t)d.interval_s, d.start_at, d.end_at, (uint32_t)d.max);
    return true;
}

/* salt and signature */
static bool intent__read_signing(const json_t *body, bool create, intent_t *out,
                                 intent_extras_t *ex, net_json_errors_t *errs)
{
    bool ok = true;
    const json_t *v = json_object_get(body, "salt");
    if (v != NULL)
        ok = intent__hex(v, "salt", out->salt, INTENT_SALT_LEN, errs);
    else
        ex->need_salt = create;
    if ((v = json_object_get(body, "signature")) != NULL)
        ok =
            (ex->has_signature = intent__hex(v, "signature", ex->signature, CHAIN_SIG_LEN, errs)) &&
            ok;
    if (ex->has_signature && ex->need_salt) {
        /* the client signed a payload whose salt only it knows */
        net_json_errors_add(errs, "signature", "needs the \"salt\" it was signed with");
        ok = false;
    }
    return ok;
}

bool intent_from_create(const json_t *body, const intent_ctx_t *ctx, intent_t *out,
                        intent_extras_t *ex, net_json_errors_t *errs)
{
    INTENT_ASSERT(json_is_object(body) && ctx != NULL && out != NULL && ex != NULL);
    INTENT_ASSERT(errs != NULL && ctx->chain_id != 0);
    memset(out, 0, sizeof(*out));
    memset(ex, 0, sizeof(*ex));
    out->owner = ctx->owner;
    out->chain_id = ctx->chain_id;
    out->registry = ctx->registry;
    out->status = INTENT_PENDING_SIGNATURE;
    out->delay_reason = SCHED_DELAY_NONE;
    out->next_execution = out->last_execution = SCHED_NONE;
    out->created_at = out->updated_at = ctx->now;
    bool ok = intent__read_meta(body, NULL, out, errs);
    ok = intent__read_money(body, NULL, ctx, out, errs) && ok;
    ok = intent__read_schedule(body, NULL, ctx->now, out, errs) && ok;
    ok = intent__read_signing(body, true, out, ex, errs) && ok;
    return ok && !errs->truncated;
}

static bool intent__sched_eq(const sched_t *a, const sched_t *b)
{
    return a->freq == b->freq && a->interval_s == b->interval_s && a->start_at == b->start_at &&
           a->end_at == b->end_at && a->max_executions == b->max_executions;
}

bool intent_apply_patch(const json_t *body, const intent_t *cur, const intent_ctx_t *ctx,
                        intent_t *out, intent_extras_t *ex, net_json_errors_t *errs)
{
    INTENT_ASSERT(json_is_object(body) && cur != NULL && ctx != NULL && out != NULL);
    INTENT_ASSERT(ex != NULL && errs != NULL && out != cur);
    *out = *cur;
    memset(ex, 0, sizeof(*ex));
    bool ok = intent__read_meta(body, cur, out, errs);
    ok = intent__read_money(body, cur, ctx, out, errs) && ok;
    ok = intent__read_schedule(body, cur, ctx->now, out, errs) && ok;
    ok = intent__read_signing(body, false, out, ex, errs) && ok;
    if (!ok || errs->truncated)
        return false;
    ex->terms_changed = !chain_addr_eq(&cur->token.address, &out->token.address) ||
                        !chain_addr_eq(&cur->recipient, &out->recipient) ||
                        chain_u256_cmp(&cur->amount, &out->amount) != 0 ||
                        !intent__sched_eq(&cur->sched, &out->sched) ||
                        memcmp(cur->salt, out->salt, INTENT_SALT_LEN) != 0;
    ex->meta_changed = strcmp(cur->name, out->name) != 0 ||
                       chain_u256_cmp(&cur->safety_buffer, &out->safety_buffer) != 0 ||
                       !intent__constraints_eq(&cur->constraints, &out->constraints);
    if (ex->terms_changed && cur->execution_count > 0 && out->sched.start_at <= ctx->now) {
        net_json_errors_add(errs, "startAt",
                            "must be in the future when the terms of an intent that has run "
                            "change (the new terms count from 0)");
        return false;
    }
    return true;
}

/* ---- signed terms ---- */

void intent_signed_terms(const intent_t *in, chain_intent_t *out)
{
    INTENT_ASSERT(in != NULL && out != NULL);
    INTENT_ASSERT(in->sched.start_at >= 0 && !chain_u256_is_zero(&in->amount));
    memset(out, 0, sizeof(*out));
    out->owner = in->owner;
    out->token = in->token.address;
    out->recipient = in->recipient;
    out->amount = in->amount;
    out->min_interval = in->sched.min_interval_s;
    out->valid_after = (uint64_t)in->sched.start_at;
    out->valid_until =
        in->sched.end_at == SCHED_NONE ? CHAIN_INTENT_NO_END : (uint64_t)in->sched.end_at;
    out->max_executions = in->sched.max_executions;
    memcpy(out->salt, in->salt, sizeof(out->salt));
}

void intent_domain(const intent_t *in, chain_eip712_domain_t *out)
{
    INTENT_ASSERT(in != NULL && in->chain_id != 0);
    chain_intent_domain(out, in->chain_id, &in->registry);
}

void intent_on_chain_id(const intent_t *in, uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    chain_intent_t terms;
    intent_signed_terms(in, &terms);
    chain_intent_hash(&terms, out);
}

json_t *intent_typed_data(const intent_t *in)
{
    chain_intent_t terms;
    chain_eip712_domain_t domain;
    intent_signed_terms(in, &terms);
    intent_domain(in, &domain);
    return chain_intent_typed_data(&domain, &terms);
}

int intent_verify_signature(const intent_t *in, const uint8_t sig[CHAIN_SIG_LEN],
                            uint8_t normalized[CHAIN_SIG_LEN])
{
    chain_intent_t terms;
    chain_eip712_domain_t domain;
    intent_signed_terms(in, &terms);
    intent_domain(in, &domain);
    return chain_intent_verify(&domain, &terms, sig, normalized);
}

/* ---- numbers as text ---- */

size_t intent_format_u64(uint64_t v, char *out)
{
    INTENT_ASSERT(out != NULL);
    char digits[INTENT_INT_SIZE];
    size_t n = 0;
    do { /* at most 20 turns: 2^64 - 1 has 20 digits */
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i != n; ++i)
        out[i] = digits[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t intent_format_int(int64_t v, char *out)
{
    if (v >= 0)
        return intent_format_u64((uint64_t)v, out);
    out[0] = '-';
    /* the magnitude in unsigned arithmetic, where that of INT64_MIN fits */
    return 1 + intent_format_u64((uint64_t)0 - (uint64_t)v, out + 1);
}

/* ---- the intent object ---- */

/* each setter takes (and on failure releases) its value, and reports success */
static bool intent__set(json_t *o, const char *key, json_t *value)
{
    return json_object_set_new(o, key, value) == 0;
}

static bool intent__set_time(json_t *o, const char *key, int64_t t)
{
    char buf[CHAIN_RFC3339_SIZE];
    if (t == SCHED_NONE)
        return intent__set(o, key, json_null());
    int ret = chain_rfc3339_format(t, buf);
    INTENT_ASSERT(ret == CHAIN_OK);
    return intent__set(o, key, json_string(buf));
}

static bool intent__set_addr(json_t *o, const char *key, const chain_addr_t *a)
{
    char buf[CHAIN_ADDR_STR_SIZE];
    chain_addr_format(a, buf);
    return intent__set(o, key, json_string(buf));
}

static bool intent__set_units(json_t *o, const char *key, const chain_u256_t *v, unsigned decimals)
{
    char buf[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_units(v, decimals, buf);
    return intent__set(o, key, json_string(buf));
}

/* "id" .. "constraints" */
static bool intent__json_terms(json_t *o, const intent_t *in)
{
    const sched_t *s = &in->sched;
    return intent__set(o, "id", json_string(in->id)) &&
           intent__set(o, "name", json_string(in->name)) &&
           intent__set_addr(o, "recipient", &in->recipient) &&
           intent__set_addr(o, "token", &in->token.address) &&
           intent__set(o, "tokenSymbol", json_string(in->token.symbol)) &&
           intent__set_units(o, "amount", &in->amount, in->token.decimals) &&
           intent__set(o, "frequency", json_string(intent_freq_name(s->freq))) &&
           intent__set(o, "intervalSeconds",
                       s->freq == CHAIN_INTENT_CUSTOM ? json_integer((json_int_t)s->interval_s)
                                                      : json_null()) &&
           intent__set_time(o, "startAt", s->start_at) && intent__set_time(o, "endAt", s->end_at) &&
           intent__set(o, "maxExecutions",
                       s->max_executions != 0 ? json_integer(s->max_executions) : json_null()) &&
           intent__set_units(o, "safetyBuffer", &in->safety_buffer, in->token.decimals) &&
           intent__set(o, "constraints", intent_constraints_to_json(&in->constraints));
}

/* "status" .. "updatedAt" */
static bool intent__json_state(json_t *o, const intent_t *in)
{
    uint8_t id[CHAIN_EIP712_HASH_LEN];
    char hex[2 + 2 * CHAIN_EIP712_HASH_LEN + 1];
    intent_on_chain_id(in, id);
    int ret = chain_hex_encode(hex, sizeof(hex), id, sizeof(id), CHAIN_HEX_0X);
    INTENT_ASSERT(ret == CHAIN_OK);
    bool delayed = in->status == INTENT_DELAYED;
    return intent__set(o, "status", json_string(intent_status_name(in->status))) &&
           intent__set(o, "delayReason",
                       delayed ? json_string(sched_delay_name(in->delay_reason)) : json_null()) &&
           intent__set_time(o, "nextExecution", in->next_execution) &&
           intent__set_time(o, "lastExecution", in->last_execution) &&
           intent__set(o, "executionCount", json_integer(in->execution_count)) &&
           intent__set(o, "onChainId", json_string(hex)) &&
           intent__set(o, "typedData", intent_typed_data(in)) &&
           intent__set_time(o, "createdAt", in->created_at) &&
           intent__set_time(o, "updatedAt", in->updated_at);
}

json_t *intent_to_json(const intent_t *in)
{
    INTENT_ASSERT(in != NULL && in->status >= 0 && in->status < INTENT_STATUS_COUNT);
    /* the database's CHECK: a delayed intent has a reason, and only a delayed one */
    INTENT_ASSERT((in->status == INTENT_DELAYED) == (in->delay_reason != SCHED_DELAY_NONE));
    json_t *o = json_object();
    if (o == NULL || !intent__json_terms(o, in) || !intent__json_state(o, in)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- the intent object, rendered without jansson ----
 *
 * A create answers its intent at once; building the object (typedData included) and dumping it
 * cost about a fifth of intentd's CPU per create, so that answer is written straight into a
 * buffer: the same members in the same order as intent_to_json, with jansson's compact
 * separators and string escapes, so that the bytes are the same. */

/* `key` is the literal separator and name, e.g. ",\"name\":" */
static void intent__put_int(net_json_out_t *o, const char *key, long long v)
{
    char buf[INTENT_INT_SIZE];
    size_t n = intent_format_int(v, buf);
    net_json_out_puts(o, key);
    net_json_out_put(o, buf, n);
}

static void intent__put_time(net_json_out_t *o, const char *key, int64_t t)
{
    net_json_out_puts(o, key);
    if (t == SCHED_NONE) {
        net_json_out_puts(o, "null");
        return;
    }
    char buf[CHAIN_RFC3339_SIZE];
    int ret = chain_rfc3339_format(t, buf);
    INTENT_ASSERT(ret == CHAIN_OK);
    net_json_out_put_str(o, buf);
}

static void intent__put_addr(net_json_out_t *o, const char *key, const chain_addr_t *a)
{
    char buf[CHAIN_ADDR_STR_SIZE];
    chain_eip712_addr_text(a, buf);
    net_json_out_puts(o, key);
    net_json_out_put_str(o, buf);
}

static void intent__put_units(net_json_out_t *o, const char *key, const chain_u256_t *v,
                              unsigned decimals)
{
    char buf[CHAIN_U256_UNITS_SIZE];
    chain_u256_format_units(v, decimals, buf);
    net_json_out_puts(o, key);
    net_json_out_put_str(o, buf);
}

/* intent_constraints_to_json's object */
static void intent__put_constraints(net_json_out_t *o, const intent_constraints_t *c)
{
    net_json_out_put(o, "{", 1);
    if (c->has_max_gas) {
        char gwei[CHAIN_U256_UNITS_SIZE];
        chain_u256_format_gwei(&c->max_gas_price_wei, gwei);
        net_json_out_puts(o, "\"maxGasPriceGwei\":");
        net_json_out_put_str(o, gwei);
    }
    if (c->has_window) {
        const sched_window_t *w = &c->window;
        char start[6], end[6], offset[7];
        sched_format_hhmm(w->start_min, start);
        sched_format_hhmm(w->end_min, end);
        sched_format_offset(w->offset_min, offset);
        net_json_out_puts(o, c->has_max_gas ? ",\"timeWindow\":{\"start\":"
                                            : "\"timeWindow\":{\"start\":");
        net_json_out_put_str(o, start);
        net_json_out_puts(o, ",\"end\":");
        net_json_out_put_str(o, end);
        net_json_out_puts(o, ",\"utcOffset\":");
        net_json_out_put_str(o, offset);
        if (w->days_given) {
            net_json_out_puts(o, ",\"days\":[");
            bool first = true;
            for (unsigned i = 0; i != 7; ++i) {
                if ((w->days & SCHED_DAY_BIT(i)) == 0)
                    continue;
                if (!first)
                    net_json_out_put(o, ",", 1);
                net_json_out_put_str(o, sched_day_name(i));
                first = false;
            }
            net_json_out_put(o, "]", 1);
        }
        net_json_out_put(o, "}", 1);
    }
    net_json_out_put(o, "}", 1);
}

size_t intent_constraints_render(const intent_constraints_t *c, char *buf, size_t cap)
{
    INTENT_ASSERT(c != NULL && buf != NULL);
    net_json_out_t o = {.buf = buf, .cap = cap};
    intent__put_constraints(&o, c);
    return o.full ? 0 : o.len;
}

/* "id" .. "constraints", as intent__json_terms */
static void intent__put_terms(net_json_out_t *o, const intent_t *in)
{
    const sched_t *s = &in->sched;
    net_json_out_puts(o, "{\"id\":");
    net_json_out_put_str(o, in->id);
    net_json_out_puts(o, ",\"name\":");
    net_json_out_put_str(o, in->name);
    intent__put_addr(o, ",\"recipient\":", &in->recipient);
    intent__put_addr(o, ",\"token\":", &in->token.address);
    net_json_out_puts(o, ",\"tokenSymbol\":");
    net_json_out_put_str(o, in->token.symbol);
    intent__put_units(o, ",\"amount\":", &in->amount, in->token.decimals);
    net_json_out_puts(o, ",\"frequency\":");
    net_json_out_put_str(o, intent_freq_name(s->freq));
    if (s->freq == CHAIN_INTENT_CUSTOM)
        intent__put_int(o, ",\"intervalSeconds\":", (long long)(json_int_t)s->interval_s);
    else
        net_json_out_puts(o, ",\"intervalSeconds\":null");
    intent__put_time(o, ",\"startAt\":", s->start_at);
    intent__put_time(o, ",\"endAt\":", s->end_at);
    if (s->max_executions != 0)
        intent__put_int(o, ",\"maxExecutions\":", s->max_executions);
    else
        net_json_out_puts(o, ",\"maxExecutions\":null");
    intent__put_units(o, ",\"safetyBuffer\":", &in->safety_buffer, in->token.decimals);
    net_json_out_puts(o, ",\"constraints\":");
    intent__put_constraints(o, &in->constraints);
}

/* "status" .. "updatedAt", as intent__json_state, and the closing brace */
static void intent__put_state(net_json_out_t *o, const intent_t *in, const uint8_t *on_chain_id)
{
    uint8_t id[CHAIN_EIP712_HASH_LEN];
    if (on_chain_id == NULL) {
        intent_on_chain_id(in, id);
        on_chain_id = id;
    }
    char hex[2 + 2 * CHAIN_EIP712_HASH_LEN + 1];
    int ret = chain_hex_encode(hex, sizeof(hex), on_chain_id, CHAIN_EIP712_HASH_LEN, CHAIN_HEX_0X);
    INTENT_ASSERT(ret == CHAIN_OK);
    net_json_out_puts(o, ",\"status\":");
    net_json_out_put_str(o, intent_status_name(in->status));
    net_json_out_puts(o, ",\"delayReason\":");
    if (in->status == INTENT_DELAYED)
        net_json_out_put_str(o, sched_delay_name(in->delay_reason));
    else
        net_json_out_puts(o, "null");
    intent__put_time(o, ",\"nextExecution\":", in->next_execution);
    intent__put_time(o, ",\"lastExecution\":", in->last_execution);
    intent__put_int(o, ",\"executionCount\":", in->execution_count);
    net_json_out_puts(o, ",\"onChainId\":");
    net_json_out_put_str(o, hex);
    net_json_out_puts(o, ",\"typedData\":");
    chain_intent_t terms;
    chain_eip712_domain_t domain;
    intent_signed_terms(in, &terms);
    intent_domain(in, &domain);
    size_t n =
        o->full ? 0
                : chain_intent_typed_data_render(&domain, &terms, o->buf + o->len, o->cap - o->len);
    o->len += n;
    o->full |= n == 0;
    intent__put_time(o, ",\"createdAt\":", in->created_at);
    intent__put_time(o, ",\"updatedAt\":", in->updated_at);
    net_json_out_put(o, "}", 1);
}

size_t intent_render_json(const intent_t *in, const uint8_t *on_chain_id, char *buf, size_t cap)
{
    INTENT_ASSERT(in != NULL && in->status >= 0 && in->status < INTENT_STATUS_COUNT);
    INTENT_ASSERT((in->status == INTENT_DELAYED) == (in->delay_reason != SCHED_DELAY_NONE));
    net_json_out_t o = {.buf = buf, .cap = cap};
    intent__put_terms(&o, in);
    intent__put_state(&o, in, on_chain_id);
    return o.full ? 0 : o.len;
}

/* ---- states ---- */

intent_status_t intent_transition(intent_status_t cur, intent_action_t action)
{
#define P INTENT_PENDING_SIGNATURE
#define A INTENT_ACTIVE
#define S INTENT_PAUSED
#define D INTENT_DELAYED
#define O INTENT_COMPLETED
#define X INTENT_CANCELLED
#define F INTENT_FAILED
#define C INTENT_CONFLICT
    /* one row per action, one column per current status; C is a conflict (409) */
    /* clang-format off */
    static const intent_status_t table[INTENT_ACTION_COUNT][INTENT_STATUS_COUNT] = {
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
#undef P
#undef A
#undef S
#undef D
#undef O
#undef X
#undef F
#undef C
    INTENT_ASSERT(cur >= 0 && cur < INTENT_STATUS_COUNT);
    INTENT_ASSERT(action >= 0 && action < INTENT_ACTION_COUNT);
    return table[action][cur];
}
