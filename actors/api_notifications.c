/*
 * The live updates and notifications of api.md: GET /api/ws (the WebSocket upgrade, handed to
 * actors/session.c), GET /api/notifications, POST /api/notifications/:id/read and
 * POST /api/notifications/read-all; and, when enabled for tests and benchmarks only,
 * POST /api/test/events, which publishes an arbitrary event to the caller's own sockets.
 *
 * Decisions (api.md leaves them to us):
 * - The socket's token is checked before the upgrade (401 as a problem, no socket); a token that
 *   expires while the socket is open closes it with 4001 "token expired".
 * - With `Sec-WebSocket-Protocol: bearer, <token>` the answer names "bearer", as browsers
 *   require an offered subprotocol to be chosen.
 * - Marking a notification read answers the notification (read: true), and repeating it
 *   changes nothing; another user's notification, or an id that is not a UUID, answers 404.
 *   read-all answers {"updated": n}, the number of notifications it marked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "actors/api_internal.h"
#include "actors/notification_model.h"
#include "actors/session.h"
#include "net/http_async.h"
#include "net/http_util.h"
#include "net/json.h"
#include "net/problem.h"
#include "net/websocket.h"

static int st_list, st_read, st_read_all;

void api__notifications_register_statements(void)
{
    st_list = store_pg_statement(
        "notification_list",
        "SELECT " NOTIFICATION_COLUMNS ", (extract(epoch FROM created_at) * 1000000)::bigint"
        " FROM notifications WHERE user_id = $1::uuid AND (NOT $2::bool OR read_at IS NULL)"
        " AND ($3::bigint IS NULL OR (created_at, id) <"
        "   (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $5::int");
    st_read = store_pg_statement("notification_read",
                                 "UPDATE notifications SET read_at = coalesce(read_at, now())"
                                 " WHERE id = $1::uuid AND user_id = $2::uuid"
                                 " RETURNING " NOTIFICATION_COLUMNS);
    st_read_all = store_pg_statement("notification_read_all",
                                     "WITH u AS (UPDATE notifications SET read_at = now()"
                                     "   WHERE user_id = $1::uuid AND read_at IS NULL RETURNING 1)"
                                     " SELECT count(*) FROM u");
}

/* ---- GET /api/ws ---- */

/* The token offered as `Sec-WebSocket-Protocol: bearer, <token>`: *offered is set when the
 * first protocol is "bearer" (then it is the one chosen, whichever way the token came), and the
 * token is copied to `out` when it is there and fits. */
static bool protocol_token(h2o_req_t *req, char *out, size_t cap, bool *offered)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("sec-websocket-protocol"), -1);
    *offered = false;
    if (at < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[at].value;
    const char *comma = memchr(v.base, ',', v.len), *end = v.base + v.len;
    size_t first = (size_t)((comma != NULL ? comma : end) - v.base);
    while (first != 0 && v.base[first - 1] == ' ')
        --first;
    if (!h2o_lcstris(v.base, first, H2O_STRLIT("bearer")))
        return false;
    *offered = true;
    if (comma == NULL)
        return false;
    const char *p = comma + 1;
    while (p != end && *p == ' ')
        ++p;
    const char *stop = memchr(p, ',', (size_t)(end - p));
    size_t len = (size_t)((stop != NULL ? stop : end) - p);
    while (len != 0 && p[len - 1] == ' ')
        --len;
    if (len == 0 || len >= cap)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* The token of a socket request: the Authorization header, else the subprotocol's, else
 * ?token=. `*bearer_offered`: answer the "bearer" subprotocol. */
static bool socket_token(h2o_req_t *req, char *out, size_t cap, bool *bearer_offered)
{
    h2o_iovec_t token;
    bool from_protocol = protocol_token(req, out, cap, bearer_offered);
    if (net_http_bearer_token(req, &token)) {
        if (token.len >= cap)
            return false;
        memcpy(out, token.base, token.len);
        out[token.len] = '\0';
        return true;
    }
    if (from_protocol)
        return true;
    h2o_iovec_t query = net_http_query_of(req), value;
    return net_http_query_get(query.base, query.len, "token", out, cap, &value) ==
               NET_HTTP_QUERY_FOUND &&
           out[0] != '\0';
}

static int on_ws(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    const char *client_key = NULL;
    if (net_ws_is_handshake(req, &client_key) != 1 || req->version >= 0x200) {
        net_json_errors_t errs;
        net_json_errors_init(&errs);
        net_json_errors_add(&errs, "Upgrade", "a WebSocket handshake (HTTP/1.1) is required");
        return net_problem_bad_request(req, "not a WebSocket handshake", &errs);
    }
    static __thread char token[NET_JWT_MAX_LEN + 1];
    bool bearer_offered;
    if (!socket_token(req, token, sizeof(token), &bearer_offered))
        return net_problem_unauthorized(req, "a bearer token is required");
    net_jwt_claims_t claims;
    net_jwt_result_t result =
        net_jwt_verify(api->config.jwt_keys, token, strlen(token), (int64_t)time(NULL), &claims);
    if (result != NET_JWT_OK) {
        api__audit_refusal(api, req, NULL, "auth.refused", net_jwt_result_str(result));
        return net_problem_unauthorized(req, "the token is invalid or expired");
    }
    bool session_token = net_jwt_claim(&claims, "wal") != NULL;
    char user_id[NET_JWT_MAX_SUB + 1];
    snprintf(user_id, sizeof(user_id), "%s", claims.sub);
    int64_t exp_s = claims.exp;
    net_jwt_claims_dispose(&claims);
    if (!session_token)
        return net_problem_unauthorized(req, "the token is not a session token");
    if (api->config.events == NULL)
        return net_problem_unavailable(req, 60);
    session_accept(api->config.events, req, client_key, bearer_offered ? "bearer" : NULL, user_id,
                   exp_s);
    return 0;
}

/* ---- GET /api/notifications ---- */

typedef struct st_notif_call_t {
    int limit;
    int kind; /* 0 list, 1 one notification, 2 read-all count */
} notif_call_t;

static void answer_list(h2o_req_t *req, const notif_call_t *st, const PGresult *res)
{
    json_t *items = json_array();
    int n = PQntuples(res), shown = n > st->limit ? st->limit : n;
    for (int i = 0; i != shown; ++i) {
        json_t *item = notification_to_json(res, i, 0);
        if (item != NULL)
            json_array_append_new(items, item);
    }
    json_t *next = json_null();
    if (n > st->limit) { /* one more row than asked: there is a page after the last shown */
        char cursor[128];
        snprintf(cursor, sizeof(cursor), "%s.%s",
                 PQgetvalue(res, shown - 1, NOTIFICATION_NUM_COLUMNS),
                 PQgetvalue(res, shown - 1, 0));
        next = json_string(cursor);
    }
    net_json_send(req, 200, json_pack("{s:o, s:o}", "items", items, "nextCursor", next));
}

static void notif_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    notif_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req == NULL) {
        /* the client left */
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (st->kind == 0) {
        answer_list(req, st, r->results[0]);
    } else if (st->kind == 1 && PQntuples(r->results[0]) != 1) {
        net_problem_not_found(req, "no such notification");
    } else if (st->kind == 1) {
        net_json_send(req, 200, notification_to_json(r->results[0], 0, 0));
    } else {
        net_json_send(
            req, 200,
            json_pack("{s:I}", "updated", (json_int_t)atoll(PQgetvalue(r->results[0], 0, 0))));
    }
    net_http_async_end(call);
}

static int notif_query(api_t *api, h2o_req_t *req, notif_call_t st, int statement, int nparams,
                       const char *const *params)
{
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, notif_answered, sizeof(notif_call_t));
    *(notif_call_t *)net_http_async_state(call) = st;
    if (!store_pg_query(pg, net_http_async_actor(call), 0, statement, nparams, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

static int on_list(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    notif_call_t st = {.kind = 0};
    char cursor_time[24], cursor_id[37], limit[16], unread[8];
    h2o_iovec_t query = net_http_query_of(req), v;
    net_http_query_result_t r =
        net_http_query_get(query.base, query.len, "unread", unread, sizeof(unread), &v);
    if (r == NET_HTTP_QUERY_INVALID ||
        (r == NET_HTTP_QUERY_FOUND && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0))
        net_json_errors_add(&errs, "unread", "true or false");
    bool only_unread = r == NET_HTTP_QUERY_FOUND && strcmp(unread, "true") == 0;
    if (!api__page_params(req, &errs, cursor_time, cursor_id, &st.limit))
        return net_problem_bad_request(req, "invalid query parameters", &errs);
    snprintf(limit, sizeof(limit), "%d", st.limit + 1); /* one more: is there a next page? */
    const char *params[] = {user.id, only_unread ? "true" : "false",
                            cursor_time[0] != '\0' ? cursor_time : NULL,
                            cursor_id[0] != '\0' ? cursor_id : NULL, limit};
    return notif_query(api, req, st, st_list, 5, params);
}

static int on_read(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    h2o_iovec_t id = net_router_param(match, "id");
    if (id.base == NULL || !api__is_uuid(id.base, id.len))
        return net_problem_not_found(req, "no such notification");
    char id_text[37];
    snprintf(id_text, sizeof(id_text), "%.*s", (int)id.len, id.base);
    const char *params[] = {id_text, user.id};
    return notif_query(api, req, (notif_call_t){.kind = 1}, st_read, 2, params);
}

static int on_read_all(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    const char *params[] = {user.id};
    return notif_query(api, req, (notif_call_t){.kind = 2}, st_read_all, 1, params);
}

/* ---- POST /api/test/events (EVENTS_TEST_ENDPOINT only) ---- */

static int on_test_event(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    static const net_json_field_t fields[] = {
        {"type", NET_JSON_STRING, NET_JSON_REQUIRED, 64, 0, 0},
        {"data", NET_JSON_OBJECT, NET_JSON_REQUIRED, 0, 0, 0},
        {"count", NET_JSON_INTEGER, 0, 0, 1, 10000}};
    json_t *body = net_json_read(req, fields, 3);
    if (body == NULL)
        return 0;
    json_t *count = json_object_get(body, "count");
    json_int_t n = count != NULL ? json_integer_value(count) : 1;
    const char *type = net_json_get_string(body, "type");
    for (json_int_t i = 0; i != n; ++i)
        events_publish(api->config.events, user.id, type,
                       json_deep_copy(json_object_get(body, "data")), 0);
    json_decref(body);
    return net_json_send(req, 202, json_pack("{s:I}", "published", (json_int_t)n));
}

void api__notifications_routes(api_t *api, net_router_t *router)
{
    static const api_route_t routes[] = {
        {"GET", "/api/ws", on_ws},
        {"GET", "/api/notifications", on_list},
        {"POST", "/api/notifications/read-all", on_read_all},
        {"POST", "/api/notifications/:id/read", on_read},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
    static const api_route_t test_routes[] = {{"POST", "/api/test/events", on_test_event}};
    if (api->config.events_test_endpoint)
        api__add_routes(api, router, test_routes, 1);
}
