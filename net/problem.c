#include "net/problem.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "net/http_util.h"

/* One row per status with a type of its own: the URI is the base and a slug. */
static const struct {
    int status;
    const char *uri;
    const char *title;
} types[] = {
    {400, NET_PROBLEM_TYPE_BASE "invalid-request", "Invalid request"},
    {401, NET_PROBLEM_TYPE_BASE "unauthorized", "Authentication required"},
    {403, NET_PROBLEM_TYPE_BASE "forbidden", "Forbidden"},
    {404, NET_PROBLEM_TYPE_BASE "not-found", "Not found"},
    {405, NET_PROBLEM_TYPE_BASE "method-not-allowed", "Method not allowed"},
    {409, NET_PROBLEM_TYPE_BASE "conflict", "Conflict with the current state"},
    {413, NET_PROBLEM_TYPE_BASE "body-too-large", "Request body too large"},
    {415, NET_PROBLEM_TYPE_BASE "unsupported-media-type", "Unsupported media type"},
    {422, NET_PROBLEM_TYPE_BASE "rule-violation", "Request breaks a rule"},
    {429, NET_PROBLEM_TYPE_BASE "rate-limited", "Too many requests"},
    {500, NET_PROBLEM_TYPE_BASE "internal-error", "Internal error"},
    {503, NET_PROBLEM_TYPE_BASE "unavailable", "Service unavailable"},
};
#define NUM_TYPES (sizeof(types) / sizeof(types[0]))

static int type_index(int status)
{
    for (size_t i = 0; i != NUM_TYPES; ++i)
        if (types[i].status == status)
            return (int)i;
    return -1;
}

const char *net_problem_type(int status)
{
    int i = type_index(status);
    return i >= 0 ? types[i].uri : "about:blank";
}

const char *net_problem_title(int status)
{
    int i = type_index(status);
    return i >= 0 ? types[i].title : net_http_reason(status);
}

static json_t *errors_json(const net_json_errors_t *errs)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && errs != NULL && i != errs->count; ++i) {
        json_t *e = json_pack("{s:s,s:s}", "field", errs->items[i].field, "message",
                              errs->items[i].message);
        if (e == NULL || json_array_append_new(list, e) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* The detail of a 5xx: never the caller's text, always the id to quote. */
static void server_error_detail(const net_problem_t *p, char *buf, size_t cap)
{
    const char *what = p->status == 503 ? "The service is temporarily unavailable; try again later."
                                        : "An unexpected error occurred.";
    if (p->request_id != NULL)
        snprintf(buf, cap, "%s Quote request id %s when reporting it.", what, p->request_id);
    else
        snprintf(buf, cap, "%s", what);
}

json_t *net_problem_json(const net_problem_t *p)
{
    assert(p->status >= 400 && p->status <= 599);
    bool server_error = p->status >= 500;
    char generic[160];
    /* for a 5xx, nothing the caller wrote is used: not even a title or a type */
    const char *title = p->title != NULL && !server_error ? p->title : net_problem_title(p->status);
    const char *type = p->type != NULL && !server_error ? p->type : net_problem_type(p->status);
    const char *detail = p->detail;
    if (server_error) {
        server_error_detail(p, generic, sizeof(generic));
        detail = generic;
    } else if (detail == NULL) {
        detail = p->errors != NULL && p->errors->detail[0] != '\0' ? p->errors->detail : title;
    }
    json_t *obj =
        json_pack("{s:s,s:s,s:i,s:s,s:o?}", "type", type, "title", title, "status", p->status,
                  "detail", detail, "errors", errors_json(server_error ? NULL : p->errors));
    if (obj != NULL && p->request_id != NULL &&
        json_object_set_new(obj, "requestId", json_string(p->request_id)) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int net_problem_send(h2o_req_t *req, const net_problem_t *problem)
{
    net_problem_t p = *problem;
    if (p.request_id == NULL)
        p.request_id = net_http_request_id(req);
    return net_json_send_as(req, p.status, NET_PROBLEM_CONTENT_TYPE, net_problem_json(&p));
}

h2o_iovec_t net_problem_render(h2o_req_t *req, const net_problem_t *problem)
{
    net_problem_t p = *problem;
    if (p.request_id == NULL)
        p.request_id = net_http_request_id(req);
    json_t *obj = net_problem_json(&p);
    /* a rare answer (h2o's own errors), so no scratch buffer: measure, then render in place */
    size_t size = obj != NULL ? json_dumpb(obj, NULL, 0, JSON_COMPACT) : 0;
    char *buf = size != 0 ? h2o_mem_alloc_pool(&req->pool, size) : NULL;
    size_t written = buf != NULL ? json_dumpb(obj, buf, size, JSON_COMPACT) : 0;
    json_decref(obj);
    return written == size && buf != NULL ? h2o_iovec_init(buf, size) : h2o_iovec_init(NULL, 0);
}

int net_problem_send_errors(h2o_req_t *req, int status, const net_json_errors_t *errs)
{
    return net_problem_send(req, &(net_problem_t){.status = status, .errors = errs});
}

int net_problem_bad_request(h2o_req_t *req, const char *detail, const net_json_errors_t *errs)
{
    return net_problem_send(req, &(net_problem_t){.status = 400, .detail = detail, .errors = errs});
}

int net_problem_unauthorized(h2o_req_t *req, const char *detail)
{
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, H2O_STRLIT("Bearer"),
                   1);
    return net_problem_send(req, &(net_problem_t){.status = 401, .detail = detail});
}

int net_problem_forbidden(h2o_req_t *req, const char *detail)
{
    return net_problem_send(req, &(net_problem_t){.status = 403, .detail = detail});
}

int net_problem_not_found(h2o_req_t *req, const char *detail)
{
    return net_problem_send(req, &(net_problem_t){.status = 404, .detail = detail});
}

int net_problem_method_not_allowed(h2o_req_t *req, unsigned allowed)
{
    char buf[64], detail[96];
    size_t len = net_http_methods_format(allowed, buf, sizeof(buf));
    h2o_iovec_t allow = h2o_strdup(&req->pool, buf, len);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, allow.base, allow.len, 1);
    snprintf(detail, sizeof(detail), "this resource answers %s", buf);
    return net_problem_send(req, &(net_problem_t){.status = 405, .detail = detail});
}

int net_problem_conflict(h2o_req_t *req, const char *detail)
{
    return net_problem_send(req, &(net_problem_t){.status = 409, .detail = detail});
}

int net_problem_too_large(h2o_req_t *req, size_t limit_bytes)
{
    char detail[96];
    net_json_too_large_detail(detail, sizeof(detail), limit_bytes);
    return net_problem_send(req, &(net_problem_t){.status = 413, .detail = detail});
}

int net_problem_unsupported_media_type(h2o_req_t *req)
{
    return net_problem_send(
        req, &(net_problem_t){.status = 415,
                              .detail = "the body must be JSON, sent as Content-Type: "
                                        "application/json"});
}

int net_problem_unprocessable(h2o_req_t *req, const char *detail, const net_json_errors_t *errs)
{
    return net_problem_send(req, &(net_problem_t){.status = 422, .detail = detail, .errors = errs});
}

static void set_retry_after(h2o_req_t *req, uint32_t seconds)
{
    char buf[16];
    int n = snprintf(buf, sizeof(buf), "%u", seconds);
    h2o_iovec_t v = h2o_strdup(&req->pool, buf, (size_t)n);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, v.base, v.len, 1);
}

int net_problem_rate_limited(h2o_req_t *req, uint32_t retry_after_s)
{
    set_retry_after(req, retry_after_s > 0 ? retry_after_s : 1);
    return net_problem_send(
        req, &(net_problem_t){.status = 429, .detail = "too many requests; retry later"});
}

int net_problem_unavailable(h2o_req_t *req, uint32_t retry_after_s)
{
    if (retry_after_s > 0)
        set_retry_after(req, retry_after_s);
    return net_problem_send(req, &(net_problem_t){.status = 503});
}

int net_problem_internal(h2o_req_t *req)
{
    return net_problem_send(req, &(net_problem_t){.status = 500});
}
