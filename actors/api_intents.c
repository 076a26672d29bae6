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
#include "actors/execution_model.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "net/http_async.h"
#include "net/http_util.h"
#include "net/json.h"
#include "net/problem.h"
#include "runtime/log.h"
#include "runtime/worker.h"

/* The intent row's columns, in the order row_to_intent reads them. */
#define INTENT_COLUMNS                                                                             \
    "id::text, name, encode(recipient, 'hex'), encode(token, 'hex'), amount::text, frequency,"     \
    " coalesce(interval_seconds, 0), extract(epoch FROM start_at)::bigint,"                        \
    " extract(epoch FROM end_at)::bigint, coalesce(max_executions, 0), safety_buffer::text,"       \
    " constraints::text, status, delay_reason, extract(epoch FROM next_execution)::bigint,"        \
    " extract(epoch FROM last_execution)::bigint, execution_count, encode(salt, 'hex'), chain_id," \
    " extract(epoch FROM created_at)::bigint, extract(epoch FROM updated_at)::bigint,"             \
    " (extract(epoch FROM created_at) * 1000000)::bigint,"                                         \
    " (extract(epoch FROM updated_at) * 1000000)::bigint"

#define COL_CURSOR 21     /* created_at in microseconds: the list's cursor */
#define COL_UPDATED_US 22 /* updated_at in microseconds: a PATCH's "unchanged since read" */

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200
/* api.md: an intent is answered with its newest 10 executions */
#define INTENT_EXECUTIONS_SQL "10"

static int st_insert, st_insert_group, st_get, st_list, st_set_status, st_executions, st_patch,
    st_upcoming;

/* What an insert returns: all a 201 needs beyond the intent as checked (the row's id and times),
 * and the onChainId that pairs a group's rows with its members. */
#define INSERT_TARGETS                                                                             \
    "owner_id, name, chain_id, recipient, token, amount, frequency, interval_seconds, start_at,"   \
    " end_at, max_executions, safety_buffer, constraints, status, next_execution, min_interval,"   \
    " salt, on_chain_id, signature"
#define INSERT_RETURNING "id, owner_id, on_chain_id, next_execution, created_at, updated_at"
#define INSERT_COLUMNS                                                                             \
    "id::text, extract(epoch FROM next_execution)::bigint,"                                        \
    " extract(epoch FROM created_at)::bigint, extract(epoch FROM updated_at)::bigint"
enum { INS_COL_ID, INS_COL_NEXT, INS_COL_CREATED, INS_COL_UPDATED, INS_COL_ON_CHAIN_ID };

/* GET /api/intents/upcoming and PATCH's statements. */
static void register_more_statements(void)
{
    /* the soonest `limit` intents suffice: each intent's later executions come after its first,
     * so one outside them has `limit` earlier executions ahead of all of its own */
    st_upcoming = store_pg_statement(
        "intent_upcoming", "SELECT " INTENT_COLUMNS " FROM intents WHERE owner_id = $1::uuid"
                           " AND status IN ('active', 'delayed') AND next_execution IS NOT NULL"
                           " AND next_execution <= to_timestamp($2::bigint)"
                           " ORDER BY next_execution, id LIMIT $3::int");
    /* the conditional update of a PATCH: it applies only if the row is still the one read (its
     * status, updated_at and execution count), else no row comes back (409). New terms are a new
     * registry intent whose `count` starts at 0, so the execution count, the last execution and
     * the signature start again with them; metadata alone leaves them as they are. Terms do not
     * change under an execution in flight: its outcome belongs to the old terms' count. */
    st_patch = store_pg_statement(
        "intent_patch",
        "WITH i AS (UPDATE intents SET name = $3, recipient = decode($4, 'hex'),"
        "   token = decode($5, 'hex'), amount = $6::numeric, frequency = $7,"
        "   interval_seconds = $8::bigint, start_at = to_timestamp($9), end_at = to_timestamp($10),"
        "   max_executions = $11::int, safety_buffer = $12::numeric, constraints = $13::jsonb,"
        "   status = $14, delay_reason = CASE WHEN $14 = 'delayed' THEN delay_reason END,"
        "   next_execution = CASE WHEN $15::bool THEN to_timestamp($16) ELSE next_execution END,"
        "   last_execution = CASE WHEN $15::bool THEN NULL ELSE last_execution END,"
        "   execution_count = CASE WHEN $15::bool THEN 0 ELSE execution_count END,"
        "   min_interval = $17::bigint, salt = decode($18, 'hex'),"
        "   on_chain_id = decode($19, 'hex'),"
        "   signature = CASE WHEN $15::bool THEN decode($20, 'hex')"
        "     ELSE coalesce(decode($20, 'hex'), signature) END, updated_at = now()"
        "   WHERE id = $1::uuid AND owner_id = $2::uuid AND status = $21"
        "   AND (extract(epoch FROM updated_at) * 1000000)::bigint = $22::bigint"
        "   AND execution_count = $23::int AND NOT ($15::bool AND EXISTS (SELECT 1 FROM executions"
        "     WHERE intent_id = $1::uuid AND status IN ('signed', 'broadcast'))) RETURNING *),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip, details)"
        "   SELECT owner_id, 'user', 'intent.patch', id, $24::inet, $25::jsonb FROM i)"
        " SELECT " INTENT_COLUMNS " FROM i");
}

void api__intents_register_statements(void)
{
    /* bench/lib.sh's pgbench_insert runs this statement: keep them the same */
    st_insert = store_pg_statement(
        "intent_insert",
        "WITH i AS (INSERT INTO intents (" INSERT_TARGETS ")"
        " VALUES ($1, $2, $3, decode($4, 'hex'), decode($5, 'hex'), $6::numeric, $7, $8::bigint,"
        "   to_timestamp($9), to_timestamp($10), $11::int, $12::numeric, $13::jsonb, $14,"
        "   to_timestamp($15), $16::bigint, decode($17, 'hex'), decode($18, 'hex'),"
        "   decode($19, 'hex')) RETURNING " INSERT_RETURNING "),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)"
        "   SELECT owner_id, 'user', 'intent.create', id, $20::inet FROM i)"
        " SELECT " INSERT_COLUMNS " FROM i");
    /* A group's rows in one statement: the same values and casts as intent_insert, each
     * parameter an array with one element per member (what a statement costs PostgreSQL
     * beyond its rows, from the executor's start to the constraints it parses, is then paid
     * once per group). Each audit row takes its own member's address, paired by onChainId. */
    st_insert_group = store_pg_statement(
        "intent_insert_group",
        "WITH v AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[],"
        "   $5::text[], $6::numeric[], $7::text[], $8::bigint[], $9::float8[], $10::float8[],"
        "   $11::int[], $12::numeric[], $13::jsonb[], $14::text[], $15::float8[], $16::bigint[],"
        "   $17::text[], $18::text[], $19::text[], $20::inet[]) AS v(owner_id, name, chain_id,"
        "   recipient, token, amount, frequency, interval_seconds, start_s, end_s, max_executions,"
        "   safety_buffer, constraints, status, next_s, min_interval, salt, on_chain_id, signature,"
        "   ip)),"
        " i AS (INSERT INTO intents (" INSERT_TARGETS ")"
        "   SELECT owner_id, name, chain_id, decode(recipient, 'hex'), decode(token, 'hex'),"
        "   amount, frequency, interval_seconds, to_timestamp(start_s), to_timestamp(end_s),"
        "   max_executions, safety_buffer, constraints, status, to_timestamp(next_s), min_interval,"
        "   decode(salt, 'hex'), decode(on_chain_id, 'hex'), decode(signature, 'hex') FROM v"
        "   RETURNING " INSERT_RETURNING "),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)"
        "   SELECT i.owner_id, 'user', 'intent.create', i.id, v.ip FROM i"
        "   JOIN v ON decode(v.on_chain_id, 'hex') = i.on_chain_id)"
        " SELECT " INSERT_COLUMNS ", encode(on_chain_id, 'hex') FROM i");
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
    st_executions = store_pg_statement(
        "intent_executions", "SELECT " EXECUTION_COLUMNS " FROM " EXECUTION_FROM
                             " WHERE e.intent_id = $1::uuid AND i.owner_id = $2::uuid"
                             " ORDER BY e.created_at DESC, e.id DESC LIMIT " INTENT_EXECUTIONS_SQL);
    register_more_statements();
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

#define TOKEN_TEXT_MEMO_MAX 4 /* tokens looked up by their EIP-55 text from the memo */

static const intent_token_t *token_by_name(api_t *api, const char *name)
{
    /* A configured token's address in its EIP-55 form, as clients copy it, is found without
     * checking the checksum again (a Keccak-256 run): the memo holds that form already. Only a
     * few tokens, so that they stay in the memo (chain_eip712_addr_text). */
    for (size_t i = 0; api->config.num_tokens <= TOKEN_TEXT_MEMO_MAX && i != api->config.num_tokens;
         ++i) {
        char text[CHAIN_ADDR_STR_SIZE];
        chain_eip712_addr_text(&api->config.tokens[i].address, text);
        if (strcmp(text, name) == 0)
            return &api->config.tokens[i];
    }
    chain_addr_t addr;
    if (chain_addr_parse(&addr, name, strlen(name)) == CHAIN_OK)
        return token_by_address(api, &addr);
    for (size_t i = 0; i != api->config.num_tokens; ++i)
        if (strcasecmp(api->config.tokens[i].symbol, name) == 0)
            return &api->config.tokens[i];
    return NULL;
}

/* The token a body names (NULL when it names none); an unknown one is a broken rule (422), an
 * address with a wrong EIP-55 checksum malformed input (400, api.md). */
static const intent_token_t *body_token(api_t *api, const json_t *body, net_json_errors_t *errs)
{
    const char *name = net_json_get_string(body, "token");
    const intent_token_t *token = name != NULL ? token_by_name(api, name) : NULL;
    chain_addr_t addr;
    if (name == NULL || token != NULL) {
        return token;
    } else if (chain_addr_parse(&addr, name, strlen(name)) == CHAIN_ERR_CHECKSUM) {
        net_json_errors_add(errs, "token",
                            "has a wrong EIP-55 checksum (mixed case must be checksummed)");
        snprintf(errs->detail, sizeof(errs->detail), "%s", INTENT_MALFORMED_DETAIL);
    } else {
        net_json_errors_add(errs, "token", "unknown token: name a configured symbol or address");
    }
    return NULL;
}

/* Answers a body the model refused: 400 when a value is malformed, else 422. */
static void refuse_body(h2o_req_t *req, const char *rule_detail, const net_json_errors_t *errs)
{
    if (errs->detail[0] != '\0')
        net_problem_bad_request(req, errs->detail, errs);
    else
        net_problem_unprocessable(req, rule_detail, errs);
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

typedef enum en_answer_kind_t { ANSWER_ONE, ANSWER_LIST, ANSWER_UPCOMING } answer_kind_t;

typedef struct st_intent_call_t {
    api_t *api;
    api_user_t user;
    answer_kind_t kind;
    int limit;
    int64_t until; /* upcoming: the window's end, unix seconds */
} intent_call_t;

/* Tells the engine (api.h's hook) that a change to intent `in` of `user_id` is committed; the
 * intent's actor announces it on the owner's live stream, in order with its own events
 * (actors/engine.h). Without the engine (main.c sets no hook then) nothing else would, so the
 * API announces it here: `type` with the intent as committed. */
static void notify_changed(api_t *api, const char *user_id, const intent_t *in, const char *type)
{
    if (api->config.intent_changed != NULL)
        api->config.intent_changed(api->config.intent_changed_ctx, in->id);
    else if (api->config.events != NULL) {
        json_t *data = intent_to_json(in);
        if (data != NULL)
            events_publish(api->config.events, user_id, type, data, 0);
    }
}

/* The client left before its change's answer: a committed change still reaches the engine, the
 * live stream and the read cache. */
static void notify_unanswered(api_t *api, const api_user_t *user, bool updating,
                              const store_pg_result_t *r)
{
    intent_t in;
    if (updating && r->status == STORE_PG_OK && PQntuples(r->results[0]) == 1 &&
        row_to_intent(api, user, r->results[0], 0, &in)) {
        api_cache_bump(api->cache, user->id);
        notify_changed(api, user->id, &in, "intent.updated");
    }
}

/* The executions of rows of EXECUTION_COLUMNS; a row that cannot be shown is left out. */
static json_t *executions_json(api_t *api, const PGresult *res)
{
    json_t *list = json_array();
    for (int i = 0, n = PQntuples(res); i != n; ++i) {
        json_t *e = execution_to_json(res, i, 0, api->config.tokens, api->config.num_tokens);
        if (e == NULL)
            rt_log_error("api", "execution %s cannot be shown", PQgetvalue(res, i, 0));
        else
            json_array_append_new(list, e);
    }
    return list;
}

static void answer_upcoming(h2o_req_t *req, intent_call_t *st, const PGresult *res);

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
        snprintf(cursor, sizeof(cursor), "%s.%s", PQgetvalue(res, shown - 1, COL_CURSOR),
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
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (st->kind == ANSWER_LIST) {
        answer_list(req, st, r->results[0]);
    } else if (st->kind == ANSWER_UPCOMING) {
        answer_upcoming(req, st, r->results[0]);
    } else if (PQntuples(r->results[0]) != 1) {
        net_problem_not_found(req, "no such intent");
    } else {
        json_t *intent = row_json(st->api, &st->user, r->results[0], 0);
        if (intent == NULL) {
            net_problem_internal(req);
        } else {
            json_object_set_new(intent, "executions", executions_json(st->api, r->results[1]));
            net_json_send(req, 200, intent);
        }
    }
    net_http_async_end(call);
}

/* Begins the call and submits `statement`, and `statement2` (-1: none) with the same parameters
 * in the same transaction (one snapshot); answers 503 itself when that is impossible. */
static int query(api_t *api, h2o_req_t *req, const intent_call_t *st, int statement, int statement2,
                 int nparams, const char *const *params)
{
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, intent_answered, sizeof(intent_call_t));
    *(intent_call_t *)net_http_async_state(call) = *st;
    const int statements[] = {statement, statement2}, counts[] = {nparams, nparams};
    const char *const *const unit[] = {params, params};
    if (!store_pg_transaction(pg, net_http_async_actor(call), 0, statement2 < 0 ? 1 : 2, statements,
                              counts, unit)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

void api__intents_change_routes(api_t *api, net_router_t *router);

/* ---- POST /api/intents ---- */

/* Room for the constraints' JSON: a gas cap and a time window take well under 300 bytes. */
#define INSERT_CONSTRAINTS_SIZE 512

/* Text forms of an intent's columns for the insert or update. No heap memory: a create keeps
 * them in its call's state until it is answered (its group may be sent again, see below). */
typedef struct st_insert_text_t {
    char chain_id[INTENT_INT_SIZE], recipient[41], token[41], amount[CHAIN_U256_DEC_SIZE];
    char interval[INTENT_INT_SIZE], start[INTENT_INT_SIZE], end[INTENT_INT_SIZE];
    char max[INTENT_INT_SIZE], buffer[CHAIN_U256_DEC_SIZE], next[INTENT_INT_SIZE];
    char min_interval[INTENT_INT_SIZE];
    char salt[65], on_chain_id[65], signature[131], ip[INET6_ADDRSTRLEN];
    char constraints[INSERT_CONSTRAINTS_SIZE];
    uint8_t on_chain_id_raw[CHAIN_EIP712_HASH_LEN]; /* on_chain_id's bytes, for the answer */
} insert_text_t;

/* Fills `t`; false when the constraints' JSON cannot be made (or does not fit). */
static bool insert_text(const intent_t *in, const intent_extras_t *ex, const uint8_t *sig,
                        h2o_req_t *req, insert_text_t *t)
{
    uint8_t *id = t->on_chain_id_raw;
    intent_on_chain_id(in, id);
    intent_format_u64(in->chain_id, t->chain_id);
    chain_hex_encode(t->recipient, sizeof(t->recipient), in->recipient.bytes, 20, 0);
    chain_hex_encode(t->token, sizeof(t->token), in->token.address.bytes, 20, 0);
    chain_u256_to_dec(&in->amount, t->amount);
    chain_u256_to_dec(&in->safety_buffer, t->buffer);
    intent_format_u64(in->sched.interval_s, t->interval);
    intent_format_int(in->sched.start_at, t->start);
    intent_format_int(in->sched.end_at, t->end);
    intent_format_u64(in->sched.max_executions, t->max);
    intent_format_int(sched_next_due(&in->sched, 0, SCHED_NONE), t->next);
    intent_format_u64(in->sched.min_interval_s, t->min_interval);
    chain_hex_encode(t->salt, sizeof(t->salt), in->salt, sizeof(in->salt), 0);
    chain_hex_encode(t->on_chain_id, sizeof(t->on_chain_id), id, CHAIN_EIP712_HASH_LEN, 0);
    if (ex->has_signature)
        chain_hex_encode(t->signature, sizeof(t->signature), sig, CHAIN_SIG_LEN, 0);
    api__peer_ip(req, t->ip);
    size_t n = intent_constraints_render(&in->constraints, t->constraints,
                                         sizeof(t->constraints) - 1 /* the NUL */);
    if (n == 0)
        return false;
    t->constraints[n] = '\0';
    return true;
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
    const intent_token_t *token = body_token(api, body, &errs);
    intent_ctx_t ctx = {.chain_id = api->config.chain_id,
                        .registry = api->config.registry,
                        .owner = user->wallet,
                        .token = token,
                        .now = (int64_t)time(NULL)};
    bool ok = intent_from_create(body, &ctx, in, ex, &errs) && !net_json_errors_any(&errs);
    json_decref(body);
    if (!ok) {
        refuse_body(req, "the intent breaks a rule", &errs);
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

/*
 * Creates commit in groups. Each insert is a transaction of its own, and PostgreSQL makes every
 * commit wait for its WAL flush; a connection runs its pipeline one unit after the other, so a
 * worker's few connections let only as many commits share a flush as there are connections,
 * however many creates queue behind them (measured at 16 clients on 2 workers: 2.2 rows per WAL
 * flush, against 5.7 for pgbench's 16 connections). So a worker keeps at most
 * CREATE_UNITS_IN_FLIGHT create units in flight, and the creates that arrive meanwhile wait in
 * the worker's queue; the next unit takes up to CREATE_GROUP_MAX of them: one transaction, one
 * flush. Nothing waits for a group to fill: a create that finds a free slot is sent at once,
 * alone, with intent_insert. A group of two or more is one intent_insert_group statement (its
 * members' values as arrays): a statement costs PostgreSQL about as much again as the row it
 * inserts (starting the executor, parsing the table's constraints, preparing the expressions of
 * the RETURNING and the audit insert), which a group then pays once.
 *
 * A group commits all or nothing, so one member's error (its terms and salt already exist)
 * would fail the others: a group that fails with an error committed nothing, and its members
 * are sent again one unit each, so that every create gets the answer it would have had alone.
 * A failure of the connection (lost, timeout, busy) is every member's answer, as it would be.
 *
 * A unit's leader is its group's first member: the replies come to its call's actor, which
 * answers every member's request (h2o's objects belong to this worker's thread, which runs the
 * leader too), ends their calls and its own, and then sends the next groups the queue holds.
 *
 * A create that finds a slot free does not send at once: it asks for a dispatch at the end of
 * the worker's loop turn (a message to a short-lived actor, which runs after h2o has handled
 * every request of the same turn), so that creates that arrive together go out together. A
 * closed loop's clients get their answers together and send their next creates together; sent
 * at once, the first of them went alone and the others waited for it (a third of the units were
 * lone creates). Nothing waits longer than the turn that is already running.
 */
#define CREATE_GROUP_MAX 16
#define CREATE_UNITS_IN_FLIGHT 2 /* per worker: one per connection (PG_CONNECTIONS_PER_WORKER) */
/* A unit in flight beside another takes a group of at least this many. 1: every free slot is
 * used at once. 4 makes groups of about 3.3 instead of 2.4 at 16 clients on 2 workers, and cuts
 * PostgreSQL's CPU per create by about a fifth. (A worker then often answers all its clients in
 * one actor turn with nothing left in flight; that stalled for 0.2-0.9 s until
 * net/http_server.c's waiter stopped sleeping while h2o has write completions pending.) */
#define CREATE_SECOND_UNIT_MIN 4
#define CREATE_QUEUE_MAX 1024 /* per worker: more waiting creates are refused (503) */
#define CREATE_PARAMS 20

typedef struct st_create_call_t create_call_t;

/* Gives back the engine's room reserved for a creation or change (api.h's engine_reserve) that
 * stored nothing, once (`*reserved` cleared). */
static void release_engine_room(api_t *api, bool *reserved)
{
    if (!*reserved)
        return;
    *reserved = false;
    api->config.engine_release(api->config.intent_changed_ctx);
}

/* POST's call: the intent as checked, its insert's parameters, and, while it leads a unit, the
 * unit's members. The answer is built from the intent and the row's id, times and next
 * execution, rather than by parsing back every column just written (the same values). */
struct st_create_call_t {
    api_t *api;
    store_pg_t *pg;
    net_http_async_t *call;
    char user_id[NET_JWT_MAX_SUB + 1];
    intent_t in;
    insert_text_t text;
    const char *params[CREATE_PARAMS]; /* into text, in and user_id */
    uint8_t signature[CHAIN_SIG_LEN];  /* the owner's, normalized, when has_signature */
    bool has_signature;
    bool reserved;       /* the engine's room for its actor: the hook's once stored */
    create_call_t *next; /* in the worker's queue */
    create_call_t *members[CREATE_GROUP_MAX];
    size_t num_members, unanswered;
    bool one_by_one; /* the group failed: each member is sent alone (corr: its index + 1) */
};

/* The creates of this worker waiting for a unit; only the worker's own thread touches it. */
static __thread struct {
    create_call_t *head, *tail;
    uint32_t queued, units_in_flight;
    bool dispatch_asked; /* a create_dispatcher actor will run create_dispatch */
} create_queue;

/* Answers 201 with the created intent: the `n` bytes of `scratch` that intent_render_json wrote
 * (the same bytes as intent_to_json dumped, for a fraction of the CPU), copied into the request's
 * pool; takes intent_to_json when it could not (n 0). */
static void create_send_intent(h2o_req_t *req, const create_call_t *m, const char *scratch,
                               size_t n)
{
    if (n == 0) {
        json_t *intent = intent_to_json(&m->in);
        if (intent == NULL)
            net_problem_internal(req);
        else
            net_json_send(req, 201, intent);
        return;
    }
    char *buf = h2o_mem_alloc_pool(&req->pool, n);
    memcpy(buf, scratch, n);
    net_http_send_owned(req, 201, "application/json", h2o_iovec_init(buf, n));
}

/* Answers member `m` from its insert's outcome (`res` and `row`: its row of INSERT_COLUMNS when
 * r->status is OK, row -1: none came back), and ends its call unless it is the leader. The engine
 * and the read caches learn of a committed row even when the client has left. */
static void create_answer(create_call_t *leader, create_call_t *m, const store_pg_result_t *r,
                          const PGresult *res, int row)
{
    h2o_req_t *req = net_http_async_req(m->call);
    if (r->status == STORE_PG_OK && row >= 0) {
        intent_t *in = &m->in;
        snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, row, INS_COL_ID));
        in->next_execution = col_time(res, row, INS_COL_NEXT);
        in->created_at = atoll(PQgetvalue(res, row, INS_COL_CREATED));
        in->updated_at = atoll(PQgetvalue(res, row, INS_COL_UPDATED));
        api_cache_bump(m->api->cache, m->user_id); /* before the answer: GETs must miss */
        /* the answer's text, rendered once: also the event's data when the API announces */
        static __thread char scratch[INTENT_JSON_MAX_SIZE];
        size_t n = intent_render_json(in, m->text.on_chain_id_raw, scratch, sizeof(scratch));
        /* before the answer too: a change the client makes next reaches the actor after this */
        if (m->api->config.intent_created != NULL) {
            m->api->config.intent_created(m->api->config.intent_changed_ctx, in, m->user_id,
                                          m->has_signature ? m->signature : NULL,
                                          n != 0 ? scratch : NULL, n, m->reserved);
            m->reserved = false; /* its actor's now */
        } else if (n != 0 && m->api->config.events != NULL)
            events_publish_text(m->api->config.events, m->user_id, "intent.created", scratch, n, 0);
        else
            notify_changed(m->api, m->user_id, in, "intent.created");
        if (req != NULL)
            create_send_intent(req, m, scratch, n);
    } else if (req == NULL) {
        /* the client left */
    } else if (r->status == STORE_PG_ERROR && strcmp(r->sqlstate, "23505") == 0) {
        net_problem_conflict(req, "an intent with these terms and salt already exists");
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else {
        net_problem_internal(req); /* an insert that returned no row */
    }
    release_engine_room(m->api, &m->reserved); /* not stored */
    if (m != leader)
        net_http_async_end(m->call);
}

/* Answers member `m` 503: its unit could not be queued (the leader's call is its own to end). */
static void create_refuse(create_call_t *leader, create_call_t *m)
{
    h2o_req_t *req = net_http_async_req(m->call);
    if (req != NULL)
        net_problem_unavailable(req, 1);
    release_engine_room(m->api, &m->reserved);
    if (m != leader)
        net_http_async_end(m->call);
}

/* Takes the next group (up to CREATE_GROUP_MAX queued creates of one pool) into its first
 * member, which leads it; returns that leader. */
static create_call_t *create_take_group(void)
{
    create_call_t *leader = create_queue.head;
    store_pg_t *pg = leader->pg;
    size_t n = 0;
    while (n != CREATE_GROUP_MAX && create_queue.head != NULL && create_queue.head->pg == pg) {
        create_call_t *m = create_queue.head;
        create_queue.head = m->next;
        m->next = NULL;
        --create_queue.queued;
        leader->members[n++] = m;
    }
    if (create_queue.head == NULL)
        create_queue.tail = NULL;
    leader->num_members = leader->unanswered = n;
    leader->one_by_one = false;
    return leader;
}

/* Appends `v` to a PostgreSQL array literal at `out`: NULL, or the text double-quoted with its
 * quotes and backslashes escaped (so any text is one element, whatever it holds). */
static char *array_put(char *out, const char *v)
{
    if (v == NULL) {
        memcpy(out, "NULL", 4);
        return out + 4;
    }
    *out++ = '"';
    for (; *v != '\0'; ++v) {
        if (*v == '"' || *v == '\\')
            *out++ = '\\';
        *out++ = *v;
    }
    *out++ = '"';
    return out;
}

/* Sends the group of `leader` (two members or more) as one intent_insert_group statement: each
 * parameter the array of the members' values. False when it cannot be queued. */
static bool create_send_group(create_call_t *leader)
{
    size_t n = leader->num_members, size = 0;
    for (size_t i = 0; i != n; ++i)
        for (size_t p = 0; p != CREATE_PARAMS; ++p) /* escaped, quoted, and a delimiter */
            size += leader->members[i]->params[p] != NULL
                        ? 2 * strlen(leader->members[i]->params[p]) + 3
                        : 5;
    char *buf = malloc(size + 3 * CREATE_PARAMS); /* the braces and NULs */
    if (buf == NULL)
        return false;
    const char *arrays[CREATE_PARAMS];
    char *out = buf;
    for (size_t p = 0; p != CREATE_PARAMS; ++p) {
        arrays[p] = out;
        *out++ = '{';
        for (size_t i = 0; i != n; ++i) {
            if (i != 0)
                *out++ = ',';
            out = array_put(out, leader->members[i]->params[p]);
        }
        *out++ = '}';
        *out++ = '\0';
    }
    /* the statement's parameters are copied into the unit: the arrays need not outlive this */
    bool sent = store_pg_query(leader->members[0]->pg, net_http_async_actor(leader->call), 0,
                               st_insert_group, CREATE_PARAMS, arrays);
    free(buf);
    return sent;
}

/* Whether a unit may go out now, beside `others` units in flight: the first in the same loop
 * turn (nothing waits for a group to fill), a second only for a group of CREATE_SECOND_UNIT_MIN
 * or more (a lone create sent beside a unit in flight costs PostgreSQL a statement and a commit
 * of its own; waiting for that unit lets it join the next group). The queue never waits without
 * a unit in flight or a dispatch asked for: the last unit to finish always takes it. */
static bool create_may_send(uint32_t others)
{
    if (others == 0)
        return true;
    return others < CREATE_UNITS_IN_FLIGHT && create_queue.queued >= CREATE_SECOND_UNIT_MIN;
}

/* Sends groups from the queue while create_may_send lets a unit go out. A group whose unit
 * cannot be queued is answered 503 and the next is tried (at most the queue's length). */
static void create_dispatch(void)
{
    while (create_queue.head != NULL && create_may_send(create_queue.units_in_flight)) {
        create_call_t *leader = create_take_group();
        if (leader->num_members > 1 ? create_send_group(leader)
                                    : store_pg_query(leader->pg, net_http_async_actor(leader->call),
                                                     0, st_insert, CREATE_PARAMS, leader->params)) {
            ++create_queue.units_in_flight;
            continue;
        }
        for (size_t i = 0; i != leader->num_members; ++i)
            create_refuse(leader, leader->members[i]);
        leader->unanswered = 0;
        net_http_async_end(leader->call);
    }
}

/* The end of the loop turn in which creates asked for a dispatch. */
static void create_dispatcher(rt_actor_t *self, rt_msg_t *msg)
{
    (void)msg;
    create_queue.dispatch_asked = false;
    create_dispatch();
    rt_actor_stop(self);
}

/* Asks for create_dispatch at the end of this loop turn, unless that is asked already. */
static void create_ask_dispatch(void)
{
    if (create_queue.dispatch_asked)
        return;
    rt_worker_t *w = rt_worker_current();
    rt_actor_t *a = rt_actor_spawn(w->rt, w->id, create_dispatcher, 0);
    rt_actor_send(a, rt_msg_new(RT_MSG_USER, 0));
    rt_actor_release(a); /* the runtime holds it until it stops */
    create_queue.dispatch_asked = true;
}

/* The group failed as a whole: sends each member again as a unit of its own. */
static void create_one_by_one(create_call_t *leader)
{
    leader->one_by_one = true;
    for (size_t i = 0; i != leader->num_members; ++i) {
        create_call_t *m = leader->members[i];
        if (!store_pg_query(m->pg, net_http_async_actor(leader->call), i + 1, st_insert,
                            CREATE_PARAMS, m->params)) {
            create_refuse(leader, m);
            --leader->unanswered;
        }
    }
}

/* The row of a group's result that holds member `i` (its onChainId), or -1. Rows come back in
 * the members' order in practice; the pairing does not depend on it. */
static int create_row_of(const create_call_t *leader, size_t i, const PGresult *res)
{
    const char *want = leader->members[i]->text.on_chain_id;
    int rows = PQntuples(res);
    for (int k = 0; k != rows; ++k) {
        int row = (int)((i + (size_t)k) % (size_t)rows);
        if (strcmp(PQgetvalue(res, row, INS_COL_ON_CHAIN_ID), want) == 0)
            return row;
    }
    return -1;
}

/* Answers every member of the leader's group from the group's reply. */
static void create_answer_group(create_call_t *leader, const store_pg_result_t *r)
{
    const PGresult *res = r->status == STORE_PG_OK && r->nresults == 1 ? r->results[0] : NULL;
    for (size_t i = 0; i != leader->num_members; ++i) {
        int row = -1;
        if (res != NULL && leader->num_members == 1)
            row = PQntuples(res) == 1 ? 0 : -1;
        else if (res != NULL)
            row = create_row_of(leader, i, res);
        create_answer(leader, leader->members[i], r, res, row);
    }
    leader->unanswered = 0;
}

/* The leader's replies: a group's unit (corr 0) or one member's (corr: its index + 1). */
static void create_answered(net_http_async_t *call, rt_msg_t *msg)
{
    create_call_t *leader = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT || leader->unanswered == 0)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (!leader->one_by_one && msg->corr == 0) {
        if (r->status == STORE_PG_ERROR && leader->num_members > 1)
            create_one_by_one(leader);
        else
            create_answer_group(leader, r);
    } else if (leader->one_by_one && msg->corr >= 1 && msg->corr <= leader->num_members) {
        const PGresult *res = r->status == STORE_PG_OK ? r->results[0] : NULL;
        create_answer(leader, leader->members[msg->corr - 1], r, res,
                      res != NULL && PQntuples(res) == 1 ? 0 : -1);
        --leader->unanswered;
    }
    if (leader->unanswered != 0)
        return;
    --create_queue.units_in_flight;
    net_http_async_end(call);
    create_dispatch();
}

/* Fills the insert's parameters of `st` (pointing into its own state). */
static void create_params(create_call_t *st, const intent_extras_t *ex)
{
    const intent_t *in = &st->in;
    const insert_text_t *t = &st->text;
    bool custom = in->sched.freq == CHAIN_INTENT_CUSTOM;
    const char *params[CREATE_PARAMS] = {st->user_id,
                                         in->name,
                                         t->chain_id,
                                         t->recipient,
                                         t->token,
                                         t->amount,
                                         intent_freq_name(in->sched.freq),
                                         custom ? t->interval : NULL,
                                         t->start,
                                         in->sched.end_at == SCHED_NONE ? NULL : t->end,
                                         in->sched.max_executions == 0 ? NULL : t->max,
                                         t->buffer,
                                         t->constraints,
                                         intent_status_name(in->status),
                                         t->next,
                                         t->min_interval,
                                         t->salt,
                                         t->on_chain_id,
                                         ex->has_signature ? t->signature : NULL,
                                         t->ip};
    memcpy(st->params, params, sizeof(params));
}

/* Queues the insert of `in` and, when a unit may go out, asks for a dispatch at the end of the
 * loop turn; answers 503 itself when it cannot be queued. `reserved`: the engine's room for its
 * actor, handed to the creation hook, or given back when nothing is stored. */
static int create_insert(api_t *api, h2o_req_t *req, const char *user_id, const intent_t *in,
                         const intent_extras_t *ex, const uint8_t *sig, bool reserved)
{
    store_pg_t *pg = api__pool(api);
    if (pg == NULL || create_queue.queued >= CREATE_QUEUE_MAX) {
        release_engine_room(api, &reserved);
        return net_problem_unavailable(req, pg == NULL ? 5 : 1);
    }
    net_http_async_t *call = net_http_async_begin(req, create_answered, sizeof(create_call_t));
    create_call_t *st = net_http_async_state(call);
    st->api = api; /* the rest of the state is zeroed */
    st->reserved = reserved;
    st->pg = pg;
    st->call = call;
    st->in = *in;
    snprintf(st->user_id, sizeof(st->user_id), "%s", user_id);
    st->has_signature = ex->has_signature;
    if (ex->has_signature)
        memcpy(st->signature, sig, CHAIN_SIG_LEN);
    if (!insert_text(&st->in, ex, sig, req, &st->text)) {
        release_engine_room(api, &st->reserved);
        net_http_async_end(call);
        return net_problem_internal(req);
    }
    create_params(st, ex);
    if (create_queue.tail != NULL)
        create_queue.tail->next = st;
    else
        create_queue.head = st;
    create_queue.tail = st;
    ++create_queue.queued;
    if (create_may_send(create_queue.units_in_flight))
        create_ask_dispatch();
    return 0;
}

/* Reserves the engine's room for the actor of a new intent (`intent_id` NULL) or of `intent_id`
 * made live (`*reserved`: a reservation to hand to the engine with the committed change, or to
 * give back). True when there is none: the request is answered 503 with the reason, and nothing
 * is stored (an intent stored then would never run until a restart). */
static bool refuse_engine_full(api_t *api, h2o_req_t *req, const char *intent_id, bool *reserved)
{
    *reserved = false;
    if (api->config.engine_reserve == NULL ||
        api->config.engine_reserve(api->config.intent_changed_ctx, intent_id, reserved))
        return false;
    net_problem_t p = {.status = 503, .request_id = net_http_request_id(req)};
    json_t *problem = net_problem_json(&p);
    if (problem != NULL) /* a 5xx's detail is generic: the reason is a member of its own */
        json_object_set_new(problem, "reason", json_string("engine_full"));
    net_json_send_as(req, 503, NET_PROBLEM_CONTENT_TYPE, problem);
    return true;
}

static int on_create(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    if (!api->config.has_registry)
        return net_problem_unavailable(req, 60); /* INTENT_CONTRACT_ADDRESS is not configured */
    intent_t in;
    intent_extras_t ex;
    uint8_t sig[CHAIN_SIG_LEN];
    bool reserved;
    if (!read_new_intent(api, req, &user, &in, &ex, sig) ||
        refuse_engine_full(api, req, NULL, &reserved))
        return 0;
    return create_insert(api, req, user.id, &in, &ex, sig, reserved);
}

/* ---- GET /api/intents/:id and GET /api/intents ---- */

bool api__is_uuid(const char *s, size_t len)
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
    if (id.base == NULL || !api__is_uuid(id.base, id.len))
        return net_problem_not_found(req, "no such intent");
    if (api_cache_serve(api->cache, req, st.user.id))
        return 0;
    char id_text[37];
    snprintf(id_text, sizeof(id_text), "%.*s", (int)id.len, id.base);
    const char *params[] = {id_text, st.user.id};
    return query(api, req, &st, st_get, st_executions, 2, params);
}

bool api__page_params(h2o_req_t *req, net_json_errors_t *errs, char cursor_time[24],
                      char cursor_id[37], int *limit)
{
    h2o_iovec_t query = net_http_query_of(req), v;
    char buf[128];
    *limit = LIST_LIMIT_DEFAULT;
    net_http_query_result_t r =
        net_http_query_get(query.base, query.len, "limit", buf, sizeof(buf), &v);
    char *end = NULL;
    long n = r == NET_HTTP_QUERY_FOUND ? strtol(buf, &end, 10) : LIST_LIMIT_DEFAULT;
    if (r == NET_HTTP_QUERY_INVALID || (end != NULL && (*end != '\0' || end == buf)) || n < 1 ||
        n > LIST_LIMIT_MAX)
        net_json_errors_add(errs, "limit", "a whole number from 1 to 200");
    else
        *limit = (int)n;
    cursor_time[0] = cursor_id[0] = '\0';
    r = net_http_query_get(query.base, query.len, "cursor", buf, sizeof(buf), &v);
    const char *dot = r == NET_HTTP_QUERY_FOUND ? strchr(buf, '.') : NULL;
    if (r == NET_HTTP_QUERY_INVALID ||
        (r == NET_HTTP_QUERY_FOUND && (dot == NULL || dot == buf || dot - buf > 20 ||
                                       strspn(buf, "0123456789") != (size_t)(dot - buf) ||
                                       !api__is_uuid(dot + 1, strlen(dot + 1)))))
        net_json_errors_add(errs, "cursor", "not a cursor this API returned");
    else if (dot != NULL) {
        snprintf(cursor_time, 24, "%.*s", (int)(dot - buf), buf);
        snprintf(cursor_id, 37, "%s", dot + 1);
    }
    return !net_json_errors_any(errs);
}

/* Reads ?status=, ?limit= and ?cursor= into the list parameters; answers 400 when invalid. */
static bool list_params(h2o_req_t *req, char *status, char *cursor_time, char *cursor_id,
                        int *limit)
{
    h2o_iovec_t query = net_http_query_of(req), v;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    intent_status_t parsed;
    net_http_query_result_t r = net_http_query_get(query.base, query.len, "status", status, 32, &v);
    if (r == NET_HTTP_QUERY_INVALID ||
        (r == NET_HTTP_QUERY_FOUND && !intent_status_parse(status, &parsed)))
        net_json_errors_add(&errs, "status", "not an intent status");
    if (r != NET_HTTP_QUERY_FOUND)
        status[0] = '\0';
    if (api__page_params(req, &errs, cursor_time, cursor_id, limit))
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
    if (api_cache_serve(api->cache, req, st.user.id))
        return 0;
    snprintf(limit, sizeof(limit), "%d", st.limit + 1); /* one more: is there a next page? */
    const char *params[] = {st.user.id, status[0] != '\0' ? status : NULL,
                            cursor_time[0] != '\0' ? cursor_time : NULL,
                            cursor_id[0] != '\0' ? cursor_id : NULL, limit};
    return query(api, req, &st, st_list, -1, 5, params);
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

/* ---- GET /api/intents/upcoming ---- */

/* ?within= bounds: one second to a year (a longer view is a calendar, not "upcoming"). */
#define UPCOMING_WITHIN_DEFAULT_S 604800
#define UPCOMING_WITHIN_MAX_S 31536000

/* One upcoming execution: row `row`'s intent, its period, when it is due. */
typedef struct st_upcoming_t {
    int64_t due_at;
    uint32_t period;
    int row;
} upcoming_t;

static int upcoming_cmp(const void *a, const void *b)
{
    const upcoming_t *x = a, *y = b;
    if (x->due_at != y->due_at)
        return x->due_at < y->due_at ? -1 : 1;
    if (x->row != y->row) /* rows come ordered by (next_execution, id): a stable tie-break */
        return x->row < y->row ? -1 : 1;
    return x->period < y->period ? -1 : x->period > y->period;
}

/* What an item says of its intent: the same fields and forms as the intent object. */
static json_t *upcoming_base(const intent_t *in)
{
    json_t *full = intent_to_json(in);
    if (full == NULL)
        return NULL;
    json_t *base = json_object();
    static const char *const keep[] = {"id", "name", "amount", "token", "tokenSymbol", "recipient"};
    for (size_t i = 0; i != sizeof(keep) / sizeof(keep[0]); ++i)
        json_object_set(base, i == 0 ? "intentId" : keep[i], json_object_get(full, keep[i]));
    json_decref(full);
    return base;
}

/* Collects the executions of row `row` (at most `cap`) into `out`; returns how many. Its first
 * is the stored nextExecution, which the engine keeps (a delayed intent's retry time); the later
 * ones follow from it as the schedule would run them. */
static size_t upcoming_of(const intent_t *in, int row, int64_t until, upcoming_t *out, size_t cap)
{
    int64_t times[LIST_LIMIT_MAX];
    if (cap == 0 || in->next_execution == SCHED_NONE)
        return 0;
    out[0] = (upcoming_t){in->next_execution, in->execution_count, row};
    size_t n = sched_upcoming(&in->sched, in->execution_count + 1, in->next_execution, until, times,
                              cap - 1 < LIST_LIMIT_MAX ? cap - 1 : LIST_LIMIT_MAX);
    for (size_t k = 0; k != n; ++k)
        out[1 + k] = (upcoming_t){times[k], in->execution_count + 1 + (uint32_t)k, row};
    return 1 + n;
}

static void answer_upcoming(h2o_req_t *req, intent_call_t *st, const PGresult *res)
{
    int rows = PQntuples(res);
    /* row j can place at most limit - j items among the soonest `limit` (j rows come first) */
    size_t cap = (size_t)st->limit * (size_t)(st->limit + 1) / 2, n = 0;
    upcoming_t *all = malloc(cap * sizeof(*all));
    json_t **base = calloc((size_t)rows + 1, sizeof(*base));
    if (all == NULL || base == NULL) {
        free(all);
        free(base);
        net_problem_unavailable(req, 1);
        return;
    }
    for (int j = 0; j != rows && j < st->limit; ++j) {
        intent_t in;
        if (!row_to_intent(st->api, &st->user, res, j, &in) ||
            (base[j] = upcoming_base(&in)) == NULL) {
            rt_log_error("api", "intent %s cannot be shown", PQgetvalue(res, j, 0));
            continue; /* as in the lists: a row that cannot be shown is left out */
        }
        n += upcoming_of(&in, j, st->until, all + n, (size_t)(st->limit - j));
    }
    qsort(all, n, sizeof(*all), upcoming_cmp);
    json_t *items = json_array();
    for (size_t i = 0; i != n && i != (size_t)st->limit; ++i) {
        json_t *item = json_copy(base[all[i].row]);
        json_object_set_new(item, "period", json_integer(all[i].period));
        json_object_set_new(item, "dueAt", api__time_json(all[i].due_at));
        json_array_append_new(items, item);
    }
    for (int j = 0; j != rows; ++j)
        json_decref(base[j]);
    free(base);
    free(all);
    /* the window is the pager: the soonest `limit` executions in it, and no next page */
    net_json_send(req, 200, json_pack("{s:o, s:n}", "items", items, "nextCursor"));
}

static int on_upcoming(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    intent_call_t st = {.api = api, .kind = ANSWER_UPCOMING};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    char cursor_time[24], cursor_id[37], buf[32], until[24], limit[16];
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    api__page_params(req, &errs, cursor_time, cursor_id, &st.limit);
    if (cursor_time[0] != '\0')
        net_json_errors_add(&errs, "cursor", "this list has one page: narrow it with ?within=");
    h2o_iovec_t q = net_http_query_of(req), v;
    net_http_query_result_t r = net_http_query_get(q.base, q.len, "within", buf, sizeof(buf), &v);
    char *end = NULL;
    long long within =
        r == NET_HTTP_QUERY_FOUND ? strtoll(buf, &end, 10) : UPCOMING_WITHIN_DEFAULT_S;
    if (r == NET_HTTP_QUERY_INVALID || (end != NULL && (*end != '\0' || end == buf)) ||
        within < 1 || within > UPCOMING_WITHIN_MAX_S)
        net_json_errors_add(&errs, "within", "a whole number of seconds from 1 to 31536000");
    if (net_json_errors_any(&errs))
        return net_problem_bad_request(req, "invalid query parameters", &errs);
    st.until = (int64_t)time(NULL) + within;
    snprintf(until, sizeof(until), "%lld", (long long)st.until);
    snprintf(limit, sizeof(limit), "%d", st.limit);
    const char *params[] = {st.user.id, until, limit};
    return query(api, req, &st, st_upcoming, -1, 3, params);
}

void api__intents_routes(api_t *api, net_router_t *router)
{
    /* clang-format off */
    static const api_route_t routes[] = {
        {"POST", "/api/intents", on_create},
        {"GET", "/api/intents/delayed", on_delayed},
        {"GET", "/api/intents/upcoming", on_upcoming},
        {"GET", "/api/intents", on_list},
        {"GET", "/api/intents/:id", on_get},
    };
    /* clang-format on */
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
    bool reserved; /* the engine's room for the intent's new actor (a signature, a resume) */
    bool has_signature;
    uint8_t signature[CHAIN_SIG_LEN];
    char id[37], ip[INET6_ADDRSTRLEN];
} change_call_t;

/* Adds to `intent` the transaction that revokes the signed terms of `in` on chain: `"revoke":
 * {"to","data","chainId"}`. Returns `intent`, or NULL (freed) when that fails. */
static json_t *add_revoke(json_t *intent, const intent_t *in)
{
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

/* The answer of a state change: the intent, and for a cancel the revoke transaction. */
static json_t *change_answer(change_call_t *st, const intent_t *in)
{
    json_t *intent = intent_to_json(in);
    if (intent == NULL || st->action != INTENT_CANCEL)
        return intent;
    return add_revoke(intent, in);
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
        } else if ((next == INTENT_ACTIVE || next == INTENT_DELAYED) &&
                   refuse_engine_full(st->api, req, st->id, &st->reserved)) {
            /* answered: to run (signed, resumed), it needs an actor the engine has no room for */
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
            release_engine_room(st->api, &st->reserved);
            net_problem_unavailable(req, 1);
        }
    }
    net_http_async_end(call);
}

/* A change that reserved the engine's room (a signature or resume): committed, the hook that
 * hands it to the intent's new actor (instead of intent_changed); else the room is given back.
 * True when committed. */
static bool change_settle_room(change_call_t *st, const store_pg_result_t *r)
{
    if (!st->reserved)
        return false;
    if (!st->updating || r->status != STORE_PG_OK || PQntuples(r->results[0]) != 1) {
        release_engine_room(st->api, &st->reserved);
        return false;
    }
    st->reserved = false;
    api_cache_bump(st->api->cache, st->user.id); /* before the answer: the next GET misses */
    st->api->config.intent_changed_reserved(st->api->config.intent_changed_ctx, st->id);
    return true;
}

static void change_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    change_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    intent_t in;
    bool handed = st->updating && change_settle_room(st, r); /* the engine has it (reserved) */
    if (req == NULL) {
        if (!handed) /* the client left */
            notify_unanswered(st->api, &st->user, st->updating, r);
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
        /* before the answer, as a create: the next GET misses (else change_settle_room bumped
         * the cache and told the engine) */
        if (!handed) {
            api_cache_bump(st->api->cache, st->user.id);
            notify_changed(st->api, st->user.id, &in, "intent.updated");
        }
        net_json_send(req, 200, change_answer(st, &in));
    }
    net_http_async_end(call);
}

static int begin_change(api_t *api, h2o_req_t *req, const net_router_match_t *match,
                        change_call_t *st)
{
    h2o_iovec_t id = net_router_param(match, "id");
    if (id.base == NULL || !api__is_uuid(id.base, id.len))
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

/* ---- PATCH /api/intents/:id ---- */

/* Read the intent, apply the patch with the pure model, then update it only if the row is still
 * the one read (as the state changes do): a concurrent change answers 409, never a lost update. */
typedef struct st_patch_call_t {
    api_t *api;
    api_user_t user;
    json_t *body; /* the request's (types checked); the call's to free */
    bool updating;
    bool revoke_old; /* signed terms were replaced: the answer carries their revoke */
    intent_t old;    /* as read */
    char id[37], ip[INET6_ADDRSTRLEN];
} patch_call_t;

static void patch_end(net_http_async_t *call)
{
    patch_call_t *st = net_http_async_state(call);
    json_decref(st->body);
    st->body = NULL;
    net_http_async_end(call);
}

/* Applies the body to st->old into `out`; answers (409/422/401/500) and returns false when it is
 * refused (400 for a malformed value). `sig` receives the normalised inline signature when
 * ex->has_signature. */
static bool patch_apply(patch_call_t *st, h2o_req_t *req, intent_t *out, intent_extras_t *ex,
                        uint8_t sig[CHAIN_SIG_LEN])
{
    const intent_t *cur = &st->old;
    /* completed, cancelled and failed intents take no change, however valid the body */
    if (intent_transition(cur->status, INTENT_PATCH_META) == INTENT_CONFLICT) {
        net_problem_conflict(req, "a completed, cancelled or failed intent cannot be changed");
        return false;
    }
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    const intent_token_t *token = body_token(st->api, st->body, &errs);
    intent_ctx_t ctx = {.chain_id = cur->chain_id,
                        .registry = cur->registry,
                        .owner = st->user.wallet,
                        .token = token,
                        .now = (int64_t)time(NULL)};
    bool salt_sent = json_object_get(st->body, "salt") != NULL;
    bool ok = intent_apply_patch(st->body, cur, &ctx, out, ex, &errs);
    if (ok && ex->terms_changed && !salt_sent && ex->has_signature) {
        /* the server draws the salt of new terms: nobody can have signed them yet */
        net_json_errors_add(&errs, "signature",
                            "new terms need the \"salt\" they were signed with");
        ok = false;
    }
    if (!ok || net_json_errors_any(&errs)) {
        refuse_body(req, "the change breaks a rule", &errs);
        return false;
    }
    if (ex->terms_changed && !salt_sent &&
        getrandom(out->salt, sizeof(out->salt), 0) != sizeof(out->salt)) {
        net_problem_internal(req);
        return false;
    }
    out->status =
        intent_transition(cur->status, ex->terms_changed ? INTENT_PATCH_TERMS : INTENT_PATCH_META);
    if (ex->has_signature) {
        memcpy(sig, ex->signature, CHAIN_SIG_LEN);
        if (!verify_and_normalize(out, sig)) {
            api__audit_refusal(st->api, req, st->user.id, "intent.refused", "inline signature");
            net_problem_unauthorized(req, "the signature is not the owner's over these terms");
            return false;
        }
        if ((out->status = intent_transition(out->status, INTENT_SIGN)) == INTENT_CONFLICT) {
            net_problem_conflict(req, "the intent is signed already");
            return false;
        }
    }
    if (ex->terms_changed) { /* see st_patch: the new terms start at count 0 */
        out->execution_count = 0;
        out->last_execution = SCHED_NONE;
        out->delay_reason = SCHED_DELAY_NONE;
        out->next_execution = sched_next_due(&out->sched, 0, SCHED_NONE);
    }
    return true;
}

/* The audit row's details: which fields were sent, and whether the signed terms changed. */
static char *patch_details(const patch_call_t *st, const intent_extras_t *ex)
{
    json_t *fields = json_array(), *v;
    const char *name;
    json_object_foreach(st->body, name, v)
    {
        if (strcmp(name, "signature") != 0)
            json_array_append_new(fields, json_string(name));
    }
    json_t *details = json_pack("{s:o, s:b, s:b}", "fields", fields, "termsChanged",
                                ex->terms_changed, "signed", ex->has_signature);
    char *text = details != NULL ? json_dumps(details, JSON_COMPACT) : NULL;
    json_decref(details);
    return text;
}

/* Sends the conditional update of `in`; false when it could not be queued. */
static bool patch_send(net_http_async_t *call, const intent_t *in, const intent_extras_t *ex,
                       const uint8_t sig[CHAIN_SIG_LEN], const PGresult *read)
{
    patch_call_t *st = net_http_async_state(call);
    static __thread insert_text_t t; /* 1.7 KiB: not on the worker's stack */
    bool text_ok = insert_text(in, ex, sig, net_http_async_req(call), &t);
    char count[16], *details = patch_details(st, ex);
    snprintf(count, sizeof(count), "%u", st->old.execution_count);
    bool custom = in->sched.freq == CHAIN_INTENT_CUSTOM;
    const char *params[] = {st->id,
                            st->user.id,
                            in->name,
                            t.recipient,
                            t.token,
                            t.amount,
                            intent_freq_name(in->sched.freq),
                            custom ? t.interval : NULL,
                            t.start,
                            in->sched.end_at == SCHED_NONE ? NULL : t.end,
                            in->sched.max_executions == 0 ? NULL : t.max,
                            t.buffer,
                            t.constraints,
                            intent_status_name(in->status),
                            ex->terms_changed ? "true" : "false",
                            t.next,
                            t.min_interval,
                            t.salt,
                            t.on_chain_id,
                            ex->has_signature ? t.signature : NULL,
                            intent_status_name(st->old.status),
                            PQgetvalue(read, 0, COL_UPDATED_US),
                            count,
                            st->ip,
                            details != NULL ? details : "{}"};
    store_pg_t *pg = api__pool(st->api);
    st->updating = true;
    bool ok = pg != NULL && text_ok &&
              store_pg_query(pg, net_http_async_actor(call), 1, st_patch, 25, params);
    free(details);
    return ok;
}

/* First step done: apply the patch, then answer or send the update. */
static void decide_patch(net_http_async_t *call, h2o_req_t *req, const PGresult *res)
{
    patch_call_t *st = net_http_async_state(call);
    intent_t next;
    intent_extras_t ex;
    uint8_t sig[CHAIN_SIG_LEN];
    if (PQntuples(res) != 1) {
        net_problem_not_found(req, "no such intent");
    } else if (!row_to_intent(st->api, &st->user, res, 0, &st->old)) {
        net_problem_internal(req);
    } else if (patch_apply(st, req, &next, &ex, sig)) {
        if (!ex.terms_changed && !ex.meta_changed && !ex.has_signature) {
            net_json_send(req, 200, intent_to_json(&st->old)); /* nothing to change */
        } else {
            st->revoke_old = ex.terms_changed && st->old.status != INTENT_PENDING_SIGNATURE;
            if (patch_send(call, &next, &ex, sig, res))
                return; /* the call goes on */
            net_problem_unavailable(req, 1);
        }
    }
    patch_end(call);
}

static void patch_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    patch_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    intent_t in;
    if (req == NULL) {
        notify_unanswered(st->api, &st->user, st->updating, r); /* the client left */
    } else if (r->status == STORE_PG_ERROR && strcmp(r->sqlstate, "23505") == 0) {
        net_problem_conflict(req, "an intent with these terms and salt already exists");
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (!st->updating) {
        decide_patch(call, req, r->results[0]);
        return;
    } else if (PQntuples(r->results[0]) != 1) {
        net_problem_conflict(req, "the intent changed meanwhile, or an execution of its terms is "
                                  "in flight: read it and retry");
    } else if (!row_to_intent(st->api, &st->user, r->results[0], 0, &in)) {
        net_problem_internal(req);
    } else {
        /* the replaced terms stay executable on chain until revoked: the answer says how */
        json_t *answer = intent_to_json(&in);
        if (answer != NULL && st->revoke_old) {
            json_t *old = add_revoke(json_object(), &st->old);
            if (old != NULL)
                json_object_set(answer, "revoke", json_object_get(old, "revoke"));
            json_decref(old);
        }
        api_cache_bump(st->api->cache, st->user.id); /* before the answer: the next GET misses */
        notify_changed(st->api, st->user.id, &in, "intent.updated"); /* before, as a create */
        net_json_send(req, 200, answer);
    }
    patch_end(call);
}

static int on_patch(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    patch_call_t st = {.api = api};
    if (!api__authenticate(api, req, &st.user))
        return 0;
    h2o_iovec_t id = net_router_param(match, "id");
    if (id.base == NULL || !api__is_uuid(id.base, id.len))
        return net_problem_not_found(req, "no such intent");
    snprintf(st.id, sizeof(st.id), "%.*s", (int)id.len, id.base);
    api__peer_ip(req, st.ip);
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    if ((st.body = net_json_read(req, intent_patch_fields, intent_patch_fields_count)) == NULL)
        return 0;
    net_http_async_t *call = net_http_async_begin(req, patch_answered, sizeof(patch_call_t));
    *(patch_call_t *)net_http_async_state(call) = st;
    const char *params[] = {st.id, st.user.id};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_get, 2, params)) {
        patch_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

void api__intents_change_routes(api_t *api, net_router_t *router)
{
    static const api_route_t routes[] = {
        {"POST", "/api/intents/:id/signature", on_signature},
        {"POST", "/api/intents/:id/pause", on_pause},
        {"POST", "/api/intents/:id/resume", on_resume},
        {"DELETE", "/api/intents/:id", on_cancel},
        {"PATCH", "/api/intents/:id", on_patch},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
}
