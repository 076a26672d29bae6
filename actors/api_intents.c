/*
 * POST /api/intents, GET /api/intents/:id and GET /api/intents: creating an intent (pending its
 * owner's signature, or active at once with a valid inline signature), reading one, and listing
 * a user's intents newest first with cursor pagination. The rules live in intent_model.c (pure);
 * this file moves intents between HTTP, the model and the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "actors/api_internal.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "net/http_async.h"
#include "net/http_util.h"
#include "net/json.h"
#include "net/problem.h"
#include "runtime/log.h"

/* The intent row's columns, in the order row_to_intent reads them. */
#define INTENT_COLUMNS                                                                             \
    "id::text, name, encode(recipient, 'hex'), encode(token, 'hex'), amount::text, frequency,"     \
    " coalesce(interval_seconds, 0), extract(epoch FROM start_at)::bigint,"                        \
    " extract(epoch FROM end_at)::bigint, coalesce(max_executions, 0), safety_buffer::text,"       \
    " constraints::text, status, delay_reason, extract(epoch FROM next_execution)::bigint,"        \
    " extract(epoch FROM last_execution)::bigint, execution_count, encode(salt, 'hex'), chain_id," \
    " extract(epoch FROM created_at)::bigint, extract(epoch FROM updated_at)::bigint,"             \
    " (extract(epoch FROM created_at) * 1000000)::bigint"

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200

static int st_insert, st_get, st_list, st_set_status;

void api__intents_register_statements(void)
{
    st_insert = store_pg_statement(
        "intent_insert",
        "WITH i AS (INSERT INTO intents (owner_id, name, chain_id, recipient, token, amount,"
        "   frequency, interval_seconds, start_at, end_at, max_executions, safety_buffer,"
        "   constraints, status, next_execution, min_interval, salt, on_chain_id, signature)"
        " VALUES ($1, $2, $3, decode($4, 'hex'), decode($5, 'hex'), $6::numeric, $7, $8::bigint,"
        "   to_timestamp($9), to_timestamp($10), $11::int, $12::numeric, $13::jsonb, $14,"
        "   to_timestamp($15), $16::bigint, decode($17, 'hex'), decode($18, 'hex'),"
        "   decode($19, 'hex')) RETURNING *),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)"
        "   SELECT owner_id, 'user', 'intent.create', id, $20::inet FROM i)"
        " SELECT " INTENT_COLUMNS " FROM i");
    /* another user's intent is simply not found: 404, never 403, so ids reveal nothing */
    st_get = store_pg_statement("intent_get", "SELECT " INTENT_COLUMNS " FROM intents"
                                              " WHERE id = $1::uuid AND owner_id = $2::uuid");
    /* the conditional update of a state change: it applies only if nobody changed the status
     * since it was read (no row back: 409), and audits itself in the same statement */
    st_set_status = store_pg_statement(
        "intent_set_status",
        "WITH i AS (UPDATE intents SET status = $3,"
        "   signature = coalesce(decode($5, 'hex'), signature),"
        "   delay_reason = CASE WHEN $3 = 'delayed' THEN delay_reason END, updated_at = now()"
        "   WHERE id = $1::uuid AND owner_id = $2::uuid AND status = $4 RETURNING *),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)"
        "   SELECT owner_id, 'user', $6, id, $7::inet FROM i)"
        " SELECT " INTENT_COLUMNS " FROM i");
    st_list = store_pg_statement("intent_list",
                                 "SELECT " INTENT_COLUMNS " FROM intents WHERE owner_id = $1::uuid"
                                 " AND ($2::text IS NULL OR status = $2)"
                                 " AND ($3::bigint IS NULL OR (created_at, id) <"
                                 "   (to_timestamp($3::bigint / 1000000.0), $4::uuid))"
                                 " ORDER BY created_at DESC, id DESC LIMIT $5::int");
}

/* ---- rows ---- */

static const intent_token_t *token_by_address(api_t *api, const chain_addr_t *addr)
{
    for (size_t i = 0; i != api->config.num_tokens; ++i)
        if (chain_addr_eq(&api->config.tokens[i].address, addr))
            return &api->config.tokens[i];
    return NULL;
}

static const intent_token_t *token_by_name(api_t *api, const char *name)
{
    chain_addr_t addr;
    if (chain_addr_parse(&addr, name, strlen(name)) == CHAIN_OK)
        return token_by_address(api, &addr);
    for (size_t i = 0; i != api->config.num_tokens; ++i)
        if (strcasecmp(api->config.tokens[i].symbol, name) == 0)
            return &api->config.tokens[i];
    return NULL;
}

static bool hex_addr(const char *hex, chain_addr_t *out)
{
    return chain_hex_decode_exact(out->bytes, sizeof(out->bytes), hex, strlen(hex), 0) == CHAIN_OK;
}

static int64_t col_time(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? SCHED_NONE : atoll(PQgetvalue(res, row, col));
}

/* Fills `in` from a row of INTENT_COLUMNS. False when the row names a token the registry no
 * longer knows (its amounts could not be shown in token units). */
static bool row_to_intent(api_t *api, const api_user_t *user, const PGresult *res, int row,
                          intent_t *in)
{
    memset(in, 0, sizeof(*in));
    snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, row, 0));
    snprintf(in->name, sizeof(in->name), "%s", PQgetvalue(res, row, 1));
    in->owner = user->wallet;
    chain_addr_t token;
    const intent_token_t *t = NULL;
    if (!hex_addr(PQgetvalue(res, row, 2), &in->recipient) ||
        !hex_addr(PQgetvalue(res, row, 3), &token) || (t = token_by_address(api, &token)) == NULL)
        return false;
    in->token = *t;
    const char *amount = PQgetvalue(res, row, 4), *buffer = PQgetvalue(res, row, 10);
    chain_intent_freq_t freq;
    if (chain_u256_from_dec(&in->amount, amount, strlen(amount)) != CHAIN_OK ||
        chain_u256_from_dec(&in->safety_buffer, buffer, strlen(buffer)) != CHAIN_OK ||
        !intent_freq_parse(PQgetvalue(res, row, 5), &freq))
        return false;
    sched_init(&in->sched, freq, (uint64_t)atoll(PQgetvalue(res, row, 6)),
               atoll(PQgetvalue(res, row, 7)), col_time(res, row, 8),
               (uint32_t)atol(PQgetvalue(res, row, 9)));
    json_t *constraints = json_loads(PQgetvalue(res, row, 11), 0, NULL);
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    bool ok = intent_constraints_parse(constraints, &in->constraints, &errs);
    json_decref(constraints);
    ok = ok && intent_status_parse(PQgetvalue(res, row, 12), &in->status);
    in->delay_reason = SCHED_DELAY_NONE;
    if (!PQgetisnull(res, row, 13))
        ok = ok && sched_delay_parse(PQgetvalue(res, row, 13), &in->delay_reason);
    in->next_execution = col_time(res, row, 14);
    in->last_execution = col_time(res, row, 15);
    in->execution_count = (uint32_t)atol(PQgetvalue(res, row, 16));
    const char *salt = PQgetvalue(res, row, 17);
    ok =
        ok && chain_hex_decode_exact(in->salt, sizeof(in->salt), salt, strlen(salt), 0) == CHAIN_OK;
    in->chain_id = (uint64_t)atoll(PQgetvalue(res, row, 18));
    in->registry = api->config.registry;
    in->created_at = atoll(PQgetvalue(res, row, 19));
    in->updated_at = atoll(PQgetvalue(res, row, 20));
    return ok;
}

/* The intent object of row `row`, or NULL (logged) when the row cannot be shown. */
static json_t *row_json(api_t *api, const api_user_t *user, const PGresult *res, int row)
{
    intent_t in;
    if (!row_to_intent(api, user, res, row, &in)) {
        rt_log_error("api", "intent %s cannot be shown (unknown token or bad row)",
                     PQgetvalue(res, row, 0));
        return NULL;
    }
    return intent_to_json(&in);
}

/* ---- one call shape for all three endpoints: a query whose rows become the answer ---- */

typedef enum en_answer_kind_t { ANSWER_CREATED, ANSWER_ONE, ANSWER_LIST } answer_kind_t;

typedef struct st_intent_call_t {
    api_t *api;
    api_user_t user;
    answer_kind_t kind;
    int limit;
} intent_call_t;

static void answer_list(h2o_req_t *req, intent_call_t *st, const PGresult *res)
{
    json_t *items = json_array();
    int n = PQntuples(res), shown = n > st->limit ? st->limit : n;
    for (int i = 0; i != shown; ++i) {
        json_t *item = row_json(st->api, &st->user, res, i);
        if (item != NULL)
            json_array_append_new(items, item);
    }
    json_t *next = json_null();
    if (n > st->limit) { /* one more row than asked: there is a next page after the last shown */
        char cursor[128];
        snprintf(cursor, sizeof(cursor), "%s.%s", PQgetvalue(res, shown - 1, 21),
                 PQgetvalue(res, shown - 1, 0));
        next = json_string(cursor);
    }
    net_json_send(req, 200, json_pack("{s:o, s:o}", "items", items, "nextCursor", next));
}

static void intent_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    intent_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req == NULL) {
        /* the client left */
    } else if (r->status == STORE_PG_ERROR && strcmp(r->sqlstate, "23505") == 0) {
        net_problem_conflict(req, "an intent with these terms and salt already exists");
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (st->kind == ANSWER_LIST) {
        answer_list(req, st, r->results[0]);
    } else if (PQntuples(r->results[0]) != 1) {
        net_problem_not_found(req, "no such intent");
    } else {
        json_t *intent = row_json(st->api, &st->user, r->results[0], 0);
        if (intent == NULL) {
            net_problem_internal(req);
        } else {
            if (st->kind == ANSWER_ONE) /* executions come with the engine; none exist yet */
                json_object_set_new(intent, "executions", json_array());
            net_json_send(req, st->kind == ANSWER_CREATED ? 201 : 200, intent);
        }
    }
    net_http_async_end(call);
}

/* Begins the call and submits `statement`; answers 503 itself when that is impossible. */
static int query(api_t *api, h2o_req_t *req, const intent_call_t *st, int statement, int nparams,
                 const char *const *params)
{
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, intent_answered, sizeof(intent_call_t));
    *(intent_call_t *)net_http_async_state(call) = *st;
    if (!store_pg_query(pg, net_http_async_actor(call), 0, statement, nparams, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

void api__intents_change_routes(api_t *api, net_router_t *router);

/* ---- POST /api/intents ---- */

/* Text forms of an intent's columns for the insert, kept alive until the unit is queued. */
typedef struct st_insert_text_t {
    char chain_id[24], recipient[41], token[41], amount[CHAIN_U256_DEC_SIZE], interval[24];
    char start[24], end[24], max[16], buffer[CHAIN_U256_DEC_SIZE], next[24], min_interval[24];
    char salt[65], on_chain_id[65], signature[131], ip[INET6_ADDRSTRLEN];
    char *constraints; /* json_dumps: free it */
} insert_text_t;

static void insert_text(const intent_t *in, const intent_extras_t *ex, const uint8_t *sig,
                        h2o_req_t *req, insert_text_t *t)
{
    uint8_t id[CHAIN_EIP712_HASH_LEN];
    intent_on_chain_id(in, id);
    snprintf(t->chain_id, sizeof(t->chain_id), "%llu", (unsigned long long)in->chain_id);
    chain_hex_encode(t->recipient, sizeof(t->recipient), in->recipient.bytes, 20, 0);
    chain_hex_encode(t->token, sizeof(t->token), in->token.address.bytes, 20, 0);
    chain_u256_to_dec(&in->amount, t->amount);
    chain_u256_to_dec(&in->safety_buffer, t->buffer);
    snprintf(t->interval, sizeof(t->interval), "%llu", (unsigned long long)in->sched.interval_s);
    snprintf(t->start, sizeof(t->start), "%lld", (long long)in->sched.start_at);
    snprintf(t->end, sizeof(t->end), "%lld", (long long)in->sched.end_at);
    snprintf(t->max, sizeof(t->max), "%u", in->sched.max_executions);
    int64_t next = sched_next_due(&in->sched, 0, SCHED_NONE);
    snprintf(t->next, sizeof(t->next), "%lld", (long long)next);
    snprintf(t->min_interval, sizeof(t->min_interval), "%llu",
             (unsigned long long)in->sched.min_interval_s);
    chain_hex_encode(t->salt, sizeof(t->salt), in->salt, sizeof(in->salt), 0);
    chain_hex_encode(t->on_chain_id, sizeof(t->on_chain_id), id, sizeof(id), 0);
    if (ex->has_signature)
        chain_hex_encode(t->signature, sizeof(t->signature), sig, CHAIN_SIG_LEN, 0);
    json_t *c = intent_constraints_to_json(&in->constraints);
    t->constraints = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    api__peer_ip(req, t->ip);
}

/* Checks the owner's signature over the intent's terms and keeps it in the form the registry
 * takes (v 27/28, low s). */
static bool verify_and_normalize(const intent_t *in, uint8_t sig[CHAIN_SIG_LEN])
{
    uint8_t normalized[CHAIN_SIG_LEN];
    if (intent_verify_signature(in, sig, normalized) != CHAIN_OK)
        return false;
    memcpy(sig, normalized, CHAIN_SIG_LEN);
    return true;
}

/* Checks the body into `in`; answers (400/401/422) and returns false when it is refused. */
static bool read_new_intent(api_t *api, h2o_req_t *req, const api_user_t *user, intent_t *in,
                            intent_extras_t *ex, uint8_t sig[CHAIN_SIG_LEN])
{
    json_t *body = net_json_read(req, intent_create_fields, intent_create_fields_count);
    if (body == NULL)
        return false;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    const char *token_name = net_json_get_string(body, "token");
    const intent_token_t *token = token_name != NULL ? token_by_name(api, token_name) : NULL;
    if (token_name != NULL && token == NULL)
        net_json_errors_add(&errs, "token", "unknown token: name a configured symbol or address");
    intent_ctx_t ctx = {.chain_id = api->config.chain_id,
                        .registry = api->config.registry,
                        .owner = user->wallet,
                        .token = token,
                        .now = (int64_t)time(NULL)};
    bool ok = intent_from_create(body, &ctx, in, ex, &errs) && !net_json_errors_any(&errs);
    json_decref(body);
    if (!ok) {
        net_problem_unprocessable(req, "the intent breaks a rule", &errs);
        return false;
    }
    if (ex->need_salt && getrandom(in->salt, sizeof(in->salt), 0) != sizeof(in->salt)) {
        net_problem_internal(req);
        return false;
    }
    if (ex->has_signature) {
        memcpy(sig, ex->signature, CHAIN_SIG_LEN);
        if (!verify_and_normalize(in, sig)) {
            api__audit_refusal(api, req, user->id, "intent.refused", "inline signature");
            net_problem_unauthorized(req, "the signature is not the owner's over these terms");
            return false;
        }
        in->status = intent_transition(in->status, INTENT_SIGN);
    }
    return true;
}

static int on_create(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    intent_call_t st = {.api = api, .kind = ANSWER_CREATED};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    if (!api->config.has_registry)
        return net_problem_unavailable(req, 60); /* INTENT_CONTRACT_ADDRESS is not configured */
    intent_t in;
    intent_extras_t ex;
    uint8_t sig[CHAIN_SIG_LEN];
    if (!read_new_intent(api, req, &st.user, &in, &ex, sig))
        return 0;
    insert_text_t t;
    insert_text(&in, &ex, sig, req, &t);
    bool custom = in.sched.freq == CHAIN_INTENT_CUSTOM;
    const char *params[] = {st.user.id,
                            in.name,
                            t.chain_id,
                            t.recipient,
                            t.token,
                            t.amount,
                            intent_freq_name(in.sched.freq),
                            custom ? t.interval : NULL,
                            t.start,
                            in.sched.end_at == SCHED_NONE ? NULL : t.end,
                            in.sched.max_executions == 0 ? NULL : t.max,
                            t.buffer,
                            t.constraints,
                            intent_status_name(in.status),
                            t.next,
                            t.min_interval,
                            t.salt,
                            t.on_chain_id,
                            ex.has_signature ? t.signature : NULL,
                            t.ip};
    int ret = query(api, req, &st, st_insert, 20, params);
    free(t.constraints);
    return ret;
}

/* ---- GET /api/intents/:id and GET /api/intents ---- */

/* A UUID in its canonical text form; anything else cannot name an intent (404, not a 500
 * from the database's cast). */
static bool is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i != 36; ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : chain_hex_digit(s[i]) < 0)
            return false;
    }
    return true;
}

static int on_get(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    intent_call_t st = {.api = api, .kind = ANSWER_ONE};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    h2o_iovec_t id = net_router_param(match, "id");
    if (id.base == NULL || !is_uuid(id.base, id.len))
        return net_problem_not_found(req, "no such intent");
    char id_text[37];
    snprintf(id_text, sizeof(id_text), "%.*s", (int)id.len, id.base);
    const char *params[] = {id_text, st.user.id};
    return query(api, req, &st, st_get, 2, params);
}

/* Reads ?status=, ?limit= and ?cursor= into the list parameters; answers 400 when invalid. */
static bool list_params(h2o_req_t *req, char *status, char *cursor_time, char *cursor_id,
                        int *limit)
{
    h2o_iovec_t query = net_http_query_of(req), v;
    char buf[128];
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    intent_status_t parsed;
    net_http_query_result_t r = net_http_query_get(query.base, query.len, "status", status, 32, &v);
    if (r == NET_HTTP_QUERY_INVALID ||
        (r == NET_HTTP_QUERY_FOUND && !intent_status_parse(status, &parsed)))
        net_json_errors_add(&errs, "status", "not an intent status");
    if (r != NET_HTTP_QUERY_FOUND)
        status[0] = '\0';
    *limit = LIST_LIMIT_DEFAULT;
    r = net_http_query_get(query.base, query.len, "limit", buf, sizeof(buf), &v);
    char *end = NULL;
    long n = r == NET_HTTP_QUERY_FOUND ? strtol(buf, &end, 10) : LIST_LIMIT_DEFAULT;
    if (r == NET_HTTP_QUERY_INVALID || (end != NULL && (*end != '\0' || end == buf)) || n < 1 ||
        n > LIST_LIMIT_MAX)
        net_json_errors_add(&errs, "limit", "a whole number from 1 to 200");
    else
        *limit = (int)n;
    cursor_time[0] = cursor_id[0] = '\0';
    r = net_http_query_get(query.base, query.len, "cursor", buf, sizeof(buf), &v);
    const char *dot = r == NET_HTTP_QUERY_FOUND ? strchr(buf, '.') : NULL;
    if (r == NET_HTTP_QUERY_INVALID ||
        (r == NET_HTTP_QUERY_FOUND &&
         (dot == NULL || dot == buf || dot - buf > 20 ||
          strspn(buf, "0123456789") != (size_t)(dot - buf) || !is_uuid(dot + 1, strlen(dot + 1)))))
        net_json_errors_add(&errs, "cursor", "not a cursor this API returned");
    else if (dot != NULL) {
        snprintf(cursor_time, 24, "%.*s", (int)(dot - buf), buf);
        snprintf(cursor_id, 37, "%s", dot + 1);
    }
    if (!net_json_errors_any(&errs))
        return true;
    net_problem_bad_request(req, "invalid query parameters", &errs);
    return false;
}

/* Lists the user's intents; `fixed_status` (the delayed list) refuses any other ?status=. */
static int list_intents(api_t *api, h2o_req_t *req, const char *fixed_status)
{
    intent_call_t st = {.api = api, .kind = ANSWER_LIST};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    char status[32], cursor_time[24], cursor_id[37], limit[16];
    if (!list_params(req, status, cursor_time, cursor_id, &st.limit))
        return 0;
    if (fixed_status != NULL) {
        if (status[0] != '\0' && strcmp(status, fixed_status) != 0) {
            net_json_errors_t errs;
            net_json_errors_init(&errs);
            net_json_errors_add(&errs, "status", "this list holds %s intents only", fixed_status);
            return net_problem_bad_request(req, "invalid query parameters", &errs);
        }
        snprintf(status, sizeof(status), "%s", fixed_status);
    }
    snprintf(limit, sizeof(limit), "%d", st.limit + 1); /* one more: is there a next page? */
    const char *params[] = {st.user.id, status[0] != '\0' ? status : NULL,
                            cursor_time[0] != '\0' ? cursor_time : NULL,
                            cursor_id[0] != '\0' ? cursor_id : NULL, limit};
    return query(api, req, &st, st_list, 5, params);
}

static int on_list(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    return list_intents(data, req, NULL);
}

/* The user's delayed intents, each with its delayReason. */
static int on_delayed(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    return list_intents(data, req, "delayed");
}

void api__intents_routes(api_t *api, net_router_t *router)
{
    static const api_route_t routes[] = {
        {"POST", "/api/intents", on_create},
        {"GET", "/api/intents/delayed", on_delayed},
        {"GET", "/api/intents", on_list},
        {"GET", "/api/intents/:id", on_get},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
    api__intents_change_routes(api, router);
}

/* ---- state changes: POST .../signature, .../pause, .../resume, DELETE ---- */

/* Read the intent, decide with the pure transition table, then update it only if its status is
 * still the one read: two round trips, and no lock held across them. */
typedef struct st_change_call_t {
    api_t *api;
    api_user_t user;
    intent_action_t action;
    const char *audit_action;
    bool updating; /* second step */
    bool has_signature;
    uint8_t signature[CHAIN_SIG_LEN];
    char id[37], ip[INET6_ADDRSTRLEN];
} change_call_t;

/* The answer of a state change: the intent, and for a cancel the revoke transaction. */
static json_t *change_answer(change_call_t *st, const intent_t *in)
{
    json_t *intent = intent_to_json(in);
    if (intent == NULL || st->action != INTENT_CANCEL)
        return intent;
    chain_intent_t terms;
    intent_signed_terms(in, &terms);
    uint8_t data[1024];
    char data_hex[2 * sizeof(data) + 3], to[CHAIN_ADDR_STR_SIZE];
    size_t len;
    if (chain_abi_revoke(data, sizeof(data), &len, &terms) != CHAIN_OK) {
        json_decref(intent);
        return NULL;
    }
    chain_hex_encode(data_hex, sizeof(data_hex), data, len, CHAIN_HEX_0X);
    chain_addr_format(&in->registry, to);
    json_object_set_new(intent, "revoke",
                        json_pack("{s:s, s:s, s:I}", "to", to, "data", data_hex, "chainId",
                                  (json_int_t)in->chain_id));
    return intent;
}

/* First step done: decide, then answer or send the conditional update. */
static void decide_change(net_http_async_t *call, h2o_req_t *req, const PGresult *res)
{
    change_call_t *st = net_http_async_state(call);
    intent_t in;
    if (PQntuples(res) != 1) {
        net_problem_not_found(req, "no such intent");
    } else if (!row_to_intent(st->api, &st->user, res, 0, &in)) {
        net_problem_internal(req);
    } else if (st->action == INTENT_SIGN && st->has_signature &&
               !verify_and_normalize(&in, st->signature)) {
        api__audit_refusal(st->api, req, st->user.id, "intent.refused", "signature");
        net_problem_unauthorized(req, "the signature is not the owner's over these terms");
    } else {
        intent_status_t next = intent_transition(in.status, st->action);
        if (next == INTENT_CONFLICT) {
            net_problem_conflict(req, "the intent's status does not allow this");
        } else if (next == in.status) { /* a repeat: answer the same */
            net_json_send(req, 200, change_answer(st, &in));
        } else {
            char sig_hex[2 * CHAIN_SIG_LEN + 1];
            chain_hex_encode(sig_hex, sizeof(sig_hex), st->signature, CHAIN_SIG_LEN, 0);
            const char *params[] = {st->id,
                                    st->user.id,
                                    intent_status_name(next),
                                    intent_status_name(in.status),
                                    st->has_signature ? sig_hex : NULL,
                                    st->audit_action,
                                    st->ip};
            store_pg_t *pg = api__pool(st->api);
            st->updating = true;
            if (pg != NULL &&
                store_pg_query(pg, net_http_async_actor(call), 1, st_set_status, 7, params))
                return; /* the call goes on */
            net_problem_unavailable(req, 1);
        }
    }
    net_http_async_end(call);
}

static void change_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    change_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    intent_t in;
    if (req == NULL) {
        /* the client left */
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (!st->updating) {
        decide_change(call, req, r->results[0]);
        return;
    } else if (PQntuples(r->results[0]) != 1) {
        net_problem_conflict(req, "the intent changed meanwhile: read it and retry");
    } else if (!row_to_intent(st->api, &st->user, r->results[0], 0, &in)) {
        net_problem_internal(req);
    } else {
        net_json_send(req, 200, change_answer(st, &in));
    }
    net_http_async_end(call);
}

static int begin_change(api_t *api, h2o_req_t *req, const net_router_match_t *match,
                        change_call_t *st)
{
    h2o_iovec_t id = net_router_param(match, "id");
    if (id.base == NULL || !is_uuid(id.base, id.len))
        return net_problem_not_found(req, "no such intent");
    snprintf(st->id, sizeof(st->id), "%.*s", (int)id.len, id.base);
    api__peer_ip(req, st->ip);
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, change_answered, sizeof(change_call_t));
    *(change_call_t *)net_http_async_state(call) = *st;
    const char *params[] = {st->id, st->user.id};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_get, 2, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

static int on_change(h2o_req_t *req, const net_router_match_t *match, api_t *api,
                     intent_action_t action, const char *audit_action)
{
    change_call_t st = {.api = api, .action = action, .audit_action = audit_action};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    return begin_change(api, req, match, &st);
}

static int on_pause(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    return on_change(req, match, data, INTENT_PAUSE, "intent.pause");
}

static int on_resume(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    return on_change(req, match, data, INTENT_RESUME, "intent.resume");
}

static int on_cancel(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    return on_change(req, match, data, INTENT_CANCEL, "intent.cancel");
}

static int on_signature(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    change_call_t st = {.api = api, .action = INTENT_SIGN, .audit_action = "intent.sign"};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    static const net_json_field_t fields[] = {
        {"signature", NET_JSON_STRING, NET_JSON_REQUIRED, 140, 0, 0}};
    json_t *body = net_json_read(req, fields, 1);
    if (body == NULL)
        return 0;
    const char *sig = net_json_get_string(body, "signature");
    bool ok = chain_hex_decode_exact(st.signature, CHAIN_SIG_LEN, sig, strlen(sig),
                                     CHAIN_HEX_0X_OPTIONAL) == CHAIN_OK;
    json_decref(body);
    if (!ok) {
        net_json_errors_t errs;
        net_json_errors_init(&errs);
        net_json_errors_add(&errs, "signature", "65 bytes as 0x-prefixed hex");
        return net_problem_bad_request(req, "the signature is malformed", &errs);
    }
    st.has_signature = true;
    return begin_change(api, req, match, &st);
}

void api__intents_change_routes(api_t *api, net_router_t *router)
{
    static const api_route_t routes[] = {
        {"POST", "/api/intents/:id/signature", on_signature},
        {"POST", "/api/intents/:id/pause", on_pause},
        {"POST", "/api/intents/:id/resume", on_resume},
        {"DELETE", "/api/intents/:id", on_cancel},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
}
