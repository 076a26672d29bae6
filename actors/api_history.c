/*
 * GET /api/user/history: the user's executions, newest first, in the list form of api.md
 * (?limit=, ?cursor=). Only executions of the user's own intents are ever selected: the owner
 * is part of the query, not a check after it.
 *
 * The cursor is the last item's (created_at in microseconds, id), the same form as the intents
 * list, so that rows created while a client pages neither repeat nor shift the pages it has not
 * read yet.
 */
#include <stdio.h>
#include <string.h>
#include "actors/api_internal.h"
#include "actors/execution_model.h"
#include "net/http_async.h"
#include "net/problem.h"
#include "runtime/log.h"

static int st_history;

void api__history_register_statements(void)
{
    /* the time bound is built from integer microseconds (exact), not a float of seconds */
    st_history = store_pg_statement(
        "execution_history",
        "SELECT " EXECUTION_COLUMNS " FROM " EXECUTION_FROM " WHERE i.owner_id = $1::uuid"
        " AND ($2::bigint IS NULL OR (e.created_at, e.id) <"
        "   ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
        " ORDER BY e.created_at DESC, e.id DESC LIMIT $4::int");
}

typedef struct st_history_call_t {
    api_t *api;
    int limit;
} history_call_t;

static void answer_history(h2o_req_t *req, const history_call_t *st, const PGresult *res)
{
    json_t *items = json_array();
    int n = PQntuples(res), shown = n > st->limit ? st->limit : n;
    for (int i = 0; i != shown; ++i) {
        json_t *item =
            execution_to_json(res, i, 0, st->api->config.tokens, st->api->config.num_tokens);
        if (item == NULL) { /* a token no longer configured: skipped, as the intents list does */
            rt_log_error("api", "execution %s cannot be shown", PQgetvalue(res, i, 0));
            continue;
        }
        json_array_append_new(items, item);
    }
    json_t *next = json_null();
    if (n > st->limit) { /* one more row than asked: a next page starts after the last shown */
        char cursor[128];
        snprintf(cursor, sizeof(cursor), "%s.%s", PQgetvalue(res, shown - 1, EXECUTION_COL_CURSOR),
                 PQgetvalue(res, shown - 1, EXECUTION_COL_ID));
        next = json_string(cursor);
    }
    net_json_send(req, 200, json_pack("{s:o, s:o}", "items", items, "nextCursor", next));
}

static void history_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    history_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req == NULL) {
        /* the client left */
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else {
        answer_history(req, st, r->results[0]);
    }
    net_http_async_end(call);
}

static int on_history(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    history_call_t st = {.api = api};
    char cursor_time[24], cursor_id[37], limit[16];
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    if (!api__page_params(req, &errs, cursor_time, cursor_id, &st.limit))
        return net_problem_bad_request(req, "invalid query parameters", &errs);
    snprintf(limit, sizeof(limit), "%d", st.limit + 1); /* one more: is there a next page? */
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, history_answered, sizeof(history_call_t));
    *(history_call_t *)net_http_async_state(call) = st;
    const char *params[] = {user.id, cursor_time[0] != '\0' ? cursor_time : NULL,
                            cursor_id[0] != '\0' ? cursor_id : NULL, limit};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_history, 4, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

void api__history_routes(api_t *api, net_router_t *router)
{
    static const api_route_t routes[] = {
        {"GET", "/api/user/history", on_history},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
}
