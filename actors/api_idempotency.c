/*
 * Idempotency-Key on the intent-changing calls (api.md "Conventions"), kept in the table
 * idempotency_keys (store/migrations/001_initial.sql, 005_idempotency_answers.sql).
 *
 * A request with a key first claims it, in one transaction: a row in state 'running' holding the
 * SHA-256 of its method, path and body, with a short lease (API_IDEM_LEASE_S). The claim takes
 * over a row whose time is up (an answer older than 24 h, or a lease that ran out) and purges a
 * few of the user's other expired rows on the way. Then:
 *   - the claim is ours: the handler runs, and its answer is held back (net_http_hook_response)
 *     until the row is 'done' with the answer's status, content type and body (2xx and 4xx, for
 *     24 h) or deleted (5xx, so that a retry runs again); so a repeat that comes after the answer
 *     always finds it stored;
 *   - the row is someone else's: another body (hash) is 422, a claim still running is 409, and a
 *     'done' row is replayed as it was, with Idempotent-Replayed: true.
 * The lease covers a request whose answer never got stored (the client left before it, the
 * database failed at that moment, the process died): its key answers 409 until the lease runs
 * out, after which a repeat runs again.
 */
#include <wolfssl/options.h> /* first: it sets the macros the other wolfSSL headers depend on */
#include <wolfssl/wolfcrypt/sha256.h>
#include "actors/api_guard.h"
#include <stdio.h>
#include <string.h>
#include "chain/hex.h"
#include "net/http_async.h"
#include "net/http_util.h"
#include "net/problem.h"
#include "runtime/log.h"

#define API_IDEM_LEASE_S 60       /* a claim's life until its answer is stored */
#define API_IDEM_KEEP_S 86400     /* a stored answer's life */
#define API_IDEM_PURGE_ROWS "100" /* expired rows of the user deleted per claim, at most */

static int st_claim, st_read, st_store, st_release;

void api__idem_register_statements(void)
{
    st_claim = store_pg_statement(
        "idem_claim",
        "WITH purge AS (DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid"
        "   FROM idempotency_keys WHERE user_id = $1::uuid AND key <> $2 AND expires_at <= now()"
        "   LIMIT " API_IDEM_PURGE_ROWS "))"
        " INSERT INTO idempotency_keys (user_id, key, request_hash, state, expires_at)"
        " VALUES ($1::uuid, $2, decode($3, 'hex'), 'running',"
        "   now() + make_interval(secs => $4::int))"
        " ON CONFLICT (user_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
        "   state = 'running', response_status = NULL, response_type = NULL,"
        "   response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at"
        "   WHERE idempotency_keys.expires_at <= now()"
        " RETURNING created_at::text");
    /* the second statement of the claim's transaction: sees the row that won */
    st_read = store_pg_statement(
        "idem_read", "SELECT state, encode(request_hash, 'hex'), response_status, response_type,"
                     " convert_from(response_body, 'UTF8') FROM idempotency_keys"
                     " WHERE user_id = $1::uuid AND key = $2");
    /* created_at names the claim: after a lease ran out and another request took the key over,
     * the first one's late answer changes nothing */
    st_store = store_pg_statement(
        "idem_store", "UPDATE idempotency_keys SET state = 'done', response_status = $4::int,"
                      " response_type = $5, response_body = convert_to($6, 'UTF8'),"
                      " expires_at = now() + make_interval(secs => $7::int)"
                      " WHERE user_id = $1::uuid AND key = $2 AND created_at = $3::timestamptz"
                      " AND state = 'running'");
    st_release = store_pg_statement(
        "idem_release", "DELETE FROM idempotency_keys WHERE user_id = $1::uuid AND key = $2"
                        " AND created_at = $3::timestamptz AND state = 'running'");
}

/* ---- reading the key ---- */

static int bad_key(h2o_req_t *req, const char *message)
{
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    net_json_errors_add(&errs, "Idempotency-Key", "%s", message);
    net_problem_bad_request(req, "the Idempotency-Key header is invalid", &errs);
    return -1;
}

/* SHA-256 of method, path (with the query) and body, separated so that no two requests meet. */
static void request_hash(h2o_req_t *req, char out[65])
{
    wc_Sha256 sha;
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    wc_InitSha256(&sha);
    wc_Sha256Update(&sha, (const uint8_t *)req->method.base, (word32)req->method.len);
    wc_Sha256Update(&sha, (const uint8_t *)"\n", 1);
    wc_Sha256Update(&sha, (const uint8_t *)req->path.base, (word32)req->path.len);
    wc_Sha256Update(&sha, (const uint8_t *)"\n", 1);
    if (req->entity.base != NULL) /* bodies are at most 1 MiB (net_http_create) */
        wc_Sha256Update(&sha, (const uint8_t *)req->entity.base, (word32)req->entity.len);
    wc_Sha256Final(&sha, digest);
    wc_Sha256Free(&sha);
    chain_hex_encode(out, 65, digest, sizeof(digest), 0);
}

int api__idem_read(h2o_req_t *req, api_idem_t *idem)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
    if (at < 0)
        return 0;
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), at) >= 0)
        return bad_key(req, "sent more than once");
    h2o_iovec_t v = req->headers.entries[at].value;
    if (v.len == 0 || v.len > API_IDEM_KEY_MAX)
        return bad_key(req, "must be 1 to 255 characters");
    for (size_t i = 0; i != v.len; ++i)
        if (v.base[i] < 0x20 || v.base[i] > 0x7e)
            return bad_key(req, "must be printable ASCII");
    memcpy(idem->key, v.base, v.len);
    idem->key[v.len] = '\0';
    request_hash(req, idem->hash_hex);
    return 1;
}

/* ---- the claim ---- */

bool api__idem_claim(store_pg_t *pg, rt_actor_t *self, const api_user_t *user,
                     const api_idem_t *idem)
{
    char lease[16];
    snprintf(lease, sizeof(lease), "%d", API_IDEM_LEASE_S);
    const char *claim_params[] = {user->id, idem->key, idem->hash_hex, lease};
    const char *read_params[] = {user->id, idem->key};
    const int statements[] = {st_claim, st_read}, nparams[] = {4, 2};
    const char *const *params[] = {claim_params, read_params};
    return store_pg_transaction(pg, self, 0, 2, statements, nparams, params);
}

/* What the answer hook needs to store the answer under the claim. */
typedef struct st_idem_claim_t {
    api_t *api;
    char user_id[NET_JWT_MAX_SUB + 1];
    char key[API_IDEM_KEY_MAX + 1];
    char created_at[64];
} idem_claim_t;

typedef struct st_idem_store_t {
    net_http_answer_t *answer;
} idem_store_t;

static void answer_stored(net_http_async_t *call, rt_msg_t *msg)
{
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    h2o_req_t *req = net_http_async_req(call);
    idem_store_t *st = net_http_async_state(call);
    const store_pg_result_t *r = rt_msg_payload(msg);
    if (r->status != STORE_PG_OK) /* the lease ends it; the answer goes out all the same */
        rt_log_warn("idempotency", "answer not stored (%s): the key frees when its lease ends",
                    store_pg_status_name(r->status));
    if (req != NULL)
        net_http_response_release(req, st->answer);
    net_http_async_end(call);
}

/* The handler's answer: stored (2xx, 4xx) or the claim released (5xx), then sent. */
static bool on_answer(h2o_req_t *req, net_http_answer_t *answer, void *ctx)
{
    idem_claim_t *c = ctx;
    store_pg_t *pg = api__pool(c->api);
    if (pg == NULL)
        return true;
    bool keep = answer->status >= 200 && answer->status <= 499 && !answer->truncated;
    char status[16], keep_s[16];
    snprintf(status, sizeof(status), "%d", answer->status);
    snprintf(keep_s, sizeof(keep_s), "%d", API_IDEM_KEEP_S);
    const char *type =
        answer->content_type.base != NULL
            ? h2o_strdup(&req->pool, answer->content_type.base, answer->content_type.len).base
            : NULL;
    const char *body = keep ? h2o_strdup(&req->pool, answer->body.base, answer->body.len).base : "";
    const char *params[] = {c->user_id, c->key, c->created_at, status, type, body, keep_s};
    net_http_async_t *call = net_http_async_begin(req, answer_stored, sizeof(idem_store_t));
    ((idem_store_t *)net_http_async_state(call))->answer = answer;
    if (!store_pg_query(pg, net_http_async_actor(call), 0, keep ? st_store : st_release,
                        keep ? 7 : 3, params)) {
        rt_log_warn("idempotency", "answer not stored (database busy): the key frees when its "
                                   "lease ends");
        net_http_async_end(call);
        return true;
    }
    return false;
}

static void replay(h2o_req_t *req, const PGresult *row)
{
    int status = atoi(PQgetvalue(row, 0, 2));
    const char *type = PQgetisnull(row, 0, 3) ? NULL : PQgetvalue(row, 0, 3);
    const char *body = PQgetisnull(row, 0, 4) ? "" : PQgetvalue(row, 0, 4);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("idempotent-replayed"), 0, NULL,
                          H2O_STRLIT("true"));
    net_http_send(req, status, type, body, strlen(body));
}

bool api__idem_claimed(api_t *api, h2o_req_t *req, const api_user_t *user, const api_idem_t *idem,
                       const store_pg_result_t *r)
{
    if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
        return false;
    }
    const PGresult *claim = r->results[0], *row = r->results[1];
    if (PQntuples(claim) == 1) {
        idem_claim_t *c = h2o_mem_alloc_pool(&req->pool, sizeof(*c));
        c->api = api;
        snprintf(c->user_id, sizeof(c->user_id), "%s", user->id);
        snprintf(c->key, sizeof(c->key), "%s", idem->key);
        snprintf(c->created_at, sizeof(c->created_at), "%s", PQgetvalue(claim, 0, 0));
        net_http_hook_response(req, on_answer, c);
        return true;
    }
    if (PQntuples(row) == 1 && strcmp(PQgetvalue(row, 0, 1), idem->hash_hex) != 0) {
        net_json_errors_t errs;
        net_json_errors_init(&errs);
        net_json_errors_add(&errs, "Idempotency-Key", "already used for another request");
        net_problem_unprocessable(req, "the Idempotency-Key was used with another request", &errs);
    } else if (PQntuples(row) == 1 && strcmp(PQgetvalue(row, 0, 0), "done") == 0) {
        replay(req, row);
    } else { /* running, or a concurrent claim this statement's snapshot does not see yet */
        net_problem_conflict(req, "a request with this Idempotency-Key is still being processed");
    }
    return false;
}
