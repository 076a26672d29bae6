/*
 * Small HTTP helpers shared by the router, the JSON and problem+json helpers and the API:
 * methods as bits, reason phrases, strict percent-decoding, query strings, bearer tokens,
 * request ids, security headers, CORS, and hooks that observe (or hold back) a request's answer.
 *
 * Everything that can be is a pure function over bytes (testable without h2o); the few functions
 * taking an h2o_req_t are thin adapters and must run on the request's own thread.
 */
#ifndef NET_HTTP_UTIL_H
#define NET_HTTP_UTIL_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Methods the router knows, as bits of a mask. Any other method is 0 (answered 405 or 404). */
#define NET_HTTP_GET 0x01u
#define NET_HTTP_HEAD 0x02u
#define NET_HTTP_POST 0x04u
#define NET_HTTP_PUT 0x08u
#define NET_HTTP_PATCH 0x10u
#define NET_HTTP_DELETE 0x20u
#define NET_HTTP_OPTIONS 0x40u
#define NET_HTTP_METHOD_COUNT 7

/** The bit of the method named by `name` (case-sensitive, as RFC 9110 says), or 0. */
unsigned net_http_method_bit(const char *name, size_t len);
/** Formats `mask` as an Allow / Access-Control-Allow-Methods value ("GET, HEAD, OPTIONS"), in a
 * fixed order. `cap` of 64 always suffices. Returns the length written (without the NUL). */
size_t net_http_methods_format(unsigned mask, char *buf, size_t cap);
/** The reason phrase of `status` ("Not Found"); "Unknown" for codes the API does not use. */
const char *net_http_reason(int status);

/** True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
bool net_http_utf8_valid(const char *s, size_t len);

/* Flags for net_http_pct_decode. */
#define NET_HTTP_PCT_PLUS_IS_SPACE 0x1u /* query strings: '+' stands for a space */

/** Strictly decodes percent-encoding from `src` into `dst` (room for `len` + 1 bytes; the
 * result is NUL-terminated and never longer than the input). Refuses, returning false: a '%' not
 * followed by two hex digits, a raw byte outside 0x21..0x7e, a decoded control character (NUL
 * included) and a result that is not UTF-8. O(len). */
bool net_http_pct_decode(const char *src, size_t len, char *dst, size_t *dst_len, unsigned flags);

/** What net_http_query_get found. */
typedef enum en_net_http_query_result_t {
    NET_HTTP_QUERY_ABSENT,  /* the name is not in the query */
    NET_HTTP_QUERY_FOUND,   /* `value` holds the decoded value (possibly empty) */
    NET_HTTP_QUERY_INVALID, /* bad encoding, value longer than `cap - 1`, or the name repeated */
} net_http_query_result_t;

/** Looks `name` up in `query` (the part after '?', without it), decoding the value into `buf`
 * (form encoding: '+' is a space). A repeated name is INVALID rather than "first wins", so that
 * two layers can never read two different values. O(len of query). */
net_http_query_result_t net_http_query_get(const char *query, size_t query_len, const char *name,
                                           char *buf, size_t cap, h2o_iovec_t *value);
/** The query string of `req` (after '?', without it); empty when there is none. */
h2o_iovec_t net_http_query_of(h2o_req_t *req);

/** Extracts the token of an `Authorization: Bearer <token>` value (scheme case-insensitive,
 * RFC 6750 token68 characters only). False when the value is anything else. */
bool net_http_parse_bearer(const char *value, size_t len, h2o_iovec_t *token);
/** The bearer token of `req`'s Authorization header; false when absent, repeated or malformed. */
bool net_http_bearer_token(h2o_req_t *req, h2o_iovec_t *token);

/** The request's id: the X-Request-Id response header, added on first call (24 hex digits: a
 * random per-thread prefix and a per-thread counter, so no system call per request). Clients'
 * own X-Request-Id headers are ignored, so that ids in our logs are always ours. */
const char *net_http_request_id(h2o_req_t *req);

/** Whether an answer may go out gzip-coded, from the request's Accept-Encoding field values
 * (`count` field lines, read as one list; RFC 9110 12.5.3): true when "gzip" (or "x-gzip") is
 * listed with a weight above 0, or, when it is not listed at all, "*" is. A listed "gzip;q=0"
 * refuses it, whatever "*" says. No field at all means no coding: clients that decode gzip ask
 * for it. Elements that do not parse are skipped. O(total length). */
bool net_http_gzip_acceptable(const h2o_iovec_t *values, size_t count);
/** net_http_gzip_acceptable over `req`'s Accept-Encoding headers. */
bool net_http_accepts_gzip(h2o_req_t *req);
/** Adds `name` (ASCII; compared case-insensitively) to the answer's Vary header unless it is
 * there already, so that caches keep the variants apart. */
void net_http_add_vary(h2o_req_t *req, const char *name, size_t len);

/** Adds the headers every API response carries: X-Content-Type-Options: nosniff,
 * Referrer-Policy: no-referrer, X-Frame-Options: DENY, Cache-Control: no-store and
 * Content-Security-Policy: default-src 'none'; frame-ancestors 'none'. */
void net_http_add_security_headers(h2o_req_t *req);

/** Answers `status` with a body (copied into the request's pool) and its reason phrase; a HEAD
 * request gets the headers only. `content_type` NULL: none (204). */
void net_http_send(h2o_req_t *req, int status, const char *content_type, const char *body,
                   size_t body_len);
/** net_http_send without the copy: `body` must outlive the request (static, or in its pool). */
void net_http_send_owned(h2o_req_t *req, int status, const char *content_type, h2o_iovec_t body);

/* ---- observing a request's answer ----
 *
 * A hook on one request sees its final answer (status, content type, whole body) once, after the
 * handler has produced it and before it leaves, whichever code sends it and however late (an
 * async call's actor). It may hold the answer back until it calls net_http_response_release,
 * e.g. to make something durable first. Built on h2o's per-request prefilter, so a request without
 * a hook pays nothing. Streamed bodies (several h2o_send calls) are passed on as they come and
 * only their last part can be held; the hook sees the body only if it totals at most
 * NET_HTTP_HOOK_MAX_BODY bytes (otherwise `body` is {NULL, 0} and `truncated` is set). */

#define NET_HTTP_HOOK_MAX_BODY (1024 * 1024)

/** The answer a hook observes; also the handle to release a held answer. Lives in the request's
 * pool. */
typedef struct st_net_http_answer_t {
    int status;
    h2o_iovec_t content_type; /* {NULL, 0} when the answer has none */
    h2o_iovec_t body;
    bool truncated;
} net_http_answer_t;

/** Called once, on the request's thread, when the answer is complete. Returns true to let it go
 * out now, false to hold it until net_http_response_release(res) (which must then follow, unless
 * the client goes away first: the request's pool dispose hooks say so). */
typedef bool (*net_http_response_hook_fn)(h2o_req_t *req, net_http_answer_t *res, void *ctx);

/** Hooks `fn` on `req`'s answer. Call before the answer starts, at most once per request. */
void net_http_hook_response(h2o_req_t *req, net_http_response_hook_fn fn, void *ctx);
/** Sends an answer its hook held back. */
void net_http_response_release(h2o_req_t *req, net_http_answer_t *res);

#define NET_HTTP_CORS_MAX_ORIGINS 16
#define NET_HTTP_CORS_MAX_ORIGIN_LEN 255
#define NET_HTTP_CORS_MAX_AGE_S 600 /* how long browsers may cache a preflight answer */

/** Origins allowed to call the API from a browser (CORS_ORIGINS). Read-only after init, so one
 * instance serves every worker. */
typedef struct st_net_http_cors_t {
    size_t count;
    h2o_iovec_t origins[NET_HTTP_CORS_MAX_ORIGINS];
    char storage[NET_HTTP_CORS_MAX_ORIGINS][NET_HTTP_CORS_MAX_ORIGIN_LEN + 1];
} net_http_cors_t;

/** Parses a comma-separated list of origins ("https://app.flowpay.dev, http://localhost:5173").
 * Each must be scheme://host[:port] with scheme http or https, no path, no trailing slash; "*" and
 * "null" are refused (list origins explicitly). NULL or empty: no origin is allowed. False with
 * `err` saying which entry is wrong. */
bool net_http_cors_init(net_http_cors_t *cors, const char *list, char *err, size_t err_size);
/** True when `origin` is one of the configured origins (ASCII case-insensitive). O(origins). */
bool net_http_cors_allows(const net_http_cors_t *cors, const char *origin, size_t len);
/** For a normal (non-preflight) request: Vary: Origin, and when its Origin is allowed,
 * Access-Control-Allow-Origin echoing it and Access-Control-Expose-Headers. No credentials
 * header: the API authenticates with a bearer token, never cookies. */
void net_http_cors_add_headers(const net_http_cors_t *cors, h2o_req_t *req);
/** Answers OPTIONS on a path that exists with 204: Allow: `allowed` always; for an allowed
 * Origin that sent Access-Control-Request-Method also Access-Control-Allow-Methods (`allowed`),
 * -Allow-Headers (Authorization, Content-Type, Idempotency-Key) and -Max-Age. A disallowed origin
 * gets no CORS headers, which the browser reads as a refusal. Fits net_router_options_fn, with
 * `data` the net_http_cors_t (NULL: no origin is allowed). Returns 0. */
int net_http_cors_preflight(h2o_req_t *req, unsigned allowed, void *data);

#endif
