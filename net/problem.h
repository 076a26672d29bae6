/*
 * RFC 9457 problem details: every error the API answers, as application/problem+json
 *
 *   {"type","title","status","detail","errors":[{"field","message"}],"requestId"}
 *
 * Types. Each status the API uses has one stable type URI, NET_PROBLEM_TYPE_BASE + a slug
 * (https://flowpay.dev/problems/not-found); the slugs are lowercase-hyphenated, never change
 * once published, and are listed with their meaning in the OpenAPI document. The domain may send
 * a more specific type under the same base for a rule of its own (".../idempotency-key-reused"),
 * through net_problem_send. Other statuses use "about:blank" with the reason phrase as title,
 * as RFC 9457 section 4.2.1 says.
 *
 * "errors" is always present (empty when no field is at fault) so that clients need not test for
 * it. "requestId" is the X-Request-Id of the answer, so a user's report finds our log line.
 *
 * 5xx: whatever type, title, detail or errors a caller passes are dropped; the detail is a
 * generic sentence naming the request id, so an internal error text, a stack or a secret can never
 * reach a client through this module; the caller logs the real cause with the same request id.
 */
#ifndef NET_PROBLEM_H
#define NET_PROBLEM_H

#include <h2o.h>
#include <jansson.h>
#include <stdint.h>
#include "net/json.h"

#define NET_PROBLEM_TYPE_BASE "https://flowpay.dev/problems/"
#define NET_PROBLEM_CONTENT_TYPE "application/problem+json"

/** A problem to answer. Only `status` is required. */
typedef struct st_net_problem_t {
    int status;
    const char *type;                /* NULL: net_problem_type(status); ignored for 5xx */
    const char *title;               /* NULL: net_problem_title(status); ignored for 5xx */
    const char *detail;              /* NULL: the title; ignored for 5xx */
    const net_json_errors_t *errors; /* NULL: none; its detail is used when `detail` is NULL */
    const char *request_id;          /* NULL: no "requestId" member */
} net_problem_t;

/** The stable type URI of `status`, or "about:blank" for a status without one. */
const char *net_problem_type(int status);
/** The title of `status`'s type (the reason phrase for "about:blank"). */
const char *net_problem_title(int status);
/** Builds the problem object (a new reference; NULL only when out of memory). Pure. */
json_t *net_problem_json(const net_problem_t *problem);

/** Answers `problem`, with its request id filled from the request. Returns 0. */
int net_problem_send(h2o_req_t *req, const net_problem_t *problem);
/** The body net_problem_send would answer, rendered into the request's pool, for code that must
 * replace an answer already under way (an h2o filter) instead of sending one: the request id is
 * filled from the request as net_problem_send does (adding X-Request-Id when absent); nothing
 * else of the response is touched. {NULL, 0} when out of memory. */
h2o_iovec_t net_problem_render(h2o_req_t *req, const net_problem_t *problem);
/** Answers `status` with the detail and field errors of `errs` (what net/json found). */
int net_problem_send_errors(h2o_req_t *req, int status, const net_json_errors_t *errs);

/** 400: the request is malformed or a field is invalid; `errs` may be NULL. */
int net_problem_bad_request(h2o_req_t *req, const char *detail, const net_json_errors_t *errs);
/** 401 with WWW-Authenticate: Bearer: no token, or a bad one. */
int net_problem_unauthorized(h2o_req_t *req, const char *detail);
/** 403: authenticated, but not allowed. (Another user's intent is a 404, not this.) */
int net_problem_forbidden(h2o_req_t *req, const char *detail);
/** 404: nothing there (for this user). */
int net_problem_not_found(h2o_req_t *req, const char *detail);
/** 405 with Allow listing `allowed` (NET_HTTP_* bits). */
int net_problem_method_not_allowed(h2o_req_t *req, unsigned allowed);
/** 409: conflicts with the current state (pausing an intent that is not active). */
int net_problem_conflict(h2o_req_t *req, const char *detail);
/** 413: the body is larger than `limit_bytes`. */
int net_problem_too_large(h2o_req_t *req, size_t limit_bytes);
/** 415: the body is not application/json. */
int net_problem_unsupported_media_type(h2o_req_t *req);
/** 422: valid JSON that breaks a rule; `errs` may be NULL. */
int net_problem_unprocessable(h2o_req_t *req, const char *detail, const net_json_errors_t *errs);
/** 429 with Retry-After: `retry_after_s` seconds (at least 1). */
int net_problem_rate_limited(h2o_req_t *req, uint32_t retry_after_s);
/** 503: a dependency is down or the server is overloaded; Retry-After when `retry_after_s` > 0. */
int net_problem_unavailable(h2o_req_t *req, uint32_t retry_after_s);
/** 500: generic detail and the request id only; log the cause with net_http_request_id(req). */
int net_problem_internal(h2o_req_t *req);

#endif
