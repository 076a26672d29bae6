/*
 * A method + path router for the API, mounted on h2o as one handler.
 *
 * Routes are patterns of segments, literal or parameter: "/api/intents/:id/pause". They are
 * registered before the server starts and never change afterwards, so one router serves every
 * worker without locks.
 *
 * Matching walks a trie, one node per segment: O(segments x log(children)), no regex, no
 * allocation. A literal segment wins over a parameter at the same position
 * ("/api/intents/upcoming" over "/api/intents/:id"), and claims that position for good: there is
 * no backtracking, so "/api/intents/upcoming/pause" is a 404 even though "/api/intents/:id/pause"
 * exists. That keeps matching linear and its result easy to predict.
 *
 * The path is the raw request path (before '?'), split on '/' and then percent-decoded per
 * segment, strictly (net_http_pct_decode): bad escapes, NUL and control characters, bytes that
 * should have been encoded, invalid UTF-8 and "." / ".." segments answer 400. Matching on the
 * raw path is deliberate: h2o's path_normalized has already decoded "%2F" into '/', which would
 * move segment boundaries; a decoded '/' inside a parameter stays in that parameter.
 * Empty segments ("//", a trailing '/') match nothing: 404.
 *
 * Answers the router gives itself, as problem+json: 404 when no route has the path, 405 with
 * Allow when the path exists but not for the method, 400 for a bad path, and OPTIONS on an
 * existing path through the options hook (CORS preflight). GET routes answer HEAD too (h2o sends
 * no body). Every answer, the handlers' included, carries the security headers, an X-Request-Id
 * and, when configured, CORS headers: the entry point adds them before dispatching.
 */
#ifndef NET_ROUTER_H
#define NET_ROUTER_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include "net/http_util.h"

#define NET_ROUTER_MAX_SEGMENTS 16 /* segments in a pattern, and the deepest path matched */
#define NET_ROUTER_MAX_PARAMS 8    /* parameters in a pattern */
#define NET_ROUTER_MAX_PARAM_NAME 31

/** The routes: a trie of segments, built before start, read-only afterwards. */
typedef struct st_net_router_t net_router_t;
/** What matching found for one request (see below). */
typedef struct st_net_router_match_t net_router_match_t;

/** A route's handler: answer `req` (now or later) and return 0. Returning -1 answers 404. The
 * match, like its parameter values, lives in the request's pool: it stays valid until the
 * request is over, so an asynchronous handler may keep it. */
typedef int (*net_router_handler_fn)(h2o_req_t *req, const net_router_match_t *match, void *data);

/** Answers OPTIONS on a path that exists; `allowed` holds the NET_HTTP_* bits of its methods,
 * OPTIONS and HEAD included. net_http_cors_preflight fits. */
typedef int (*net_router_options_fn)(h2o_req_t *req, unsigned allowed, void *data);

/** One decoded path parameter. */
typedef struct st_net_router_param_t {
    const char *name;  /* as in the pattern, without ':' */
    h2o_iovec_t value; /* decoded, NUL-terminated, never empty */
} net_router_param_t;

/** What matching found. */
typedef enum en_net_router_result_t {
    NET_ROUTER_FOUND,
    NET_ROUTER_NOT_FOUND,
    NET_ROUTER_METHOD_NOT_ALLOWED, /* `allowed` says which methods the path answers */
    NET_ROUTER_BAD_PATH,           /* `error` says why */
} net_router_result_t;

/** The route found, or why none was; its parameters point into the caller's scratch. */
struct st_net_router_match_t {
    const char *pattern; /* the route as registered, for logs and metrics (FOUND) */
    net_router_handler_fn handler;
    void *data;
    unsigned allowed;  /* NET_HTTP_* bits the path answers (FOUND, METHOD_NOT_ALLOWED) */
    const char *error; /* BAD_PATH: why, in words for the client */
    size_t param_count;
    net_router_param_t params[NET_ROUTER_MAX_PARAMS];
};

/** An empty router. Aborts when out of memory (it is built once, at start). */
net_router_t *net_router_create(void);
/** Frees the router and its routes, after the server has stopped. */
void net_router_free(net_router_t *router);

/** Registers `handler` for `method` ("GET", "POST", ...) on `pattern` ("/api/intents/:id").
 * Before start only. Returns NULL, or why the pattern is refused: not starting with '/', an
 * empty segment, a literal with a character outside [A-Za-z0-9._~-], a bad parameter name
 * ([A-Za-z_][A-Za-z0-9_]*), two names for the parameter at one position, a repeated parameter
 * name, too many segments or parameters, an unknown method, or the same method and pattern
 * twice. */
const char *net_router_add(net_router_t *router, const char *method, const char *pattern,
                           net_router_handler_fn handler, void *data);
/** Sets who answers OPTIONS on an existing path without an OPTIONS route (default: 204 with
 * Allow). Before start only. */
void net_router_set_options(net_router_t *router, net_router_options_fn fn, void *data);
/** Adds CORS headers to every answer and answers preflights, for the origins of `cors`
 * (borrowed, read-only, must outlive the router). Before start only. */
void net_router_set_cors(net_router_t *router, const net_http_cors_t *cors);

/** Called for each route by net_router_each: its method ("GET") and pattern as registered. */
typedef void (*net_router_each_fn)(const char *method, const char *pattern, void *ctx);
/** Calls `fn` for every registered route (literal children in their sorted order, then the
 * parameter child), e.g. to check a route list against a document. O(routes). */
void net_router_each(const net_router_t *router, net_router_each_fn fn, void *ctx);

/** Matches `method` and `path` (raw, without the query). Decoded segments are written into
 * `scratch`, which must hold `path_len` + NET_ROUTER_MAX_SEGMENTS + 1 bytes and outlive the
 * use of `match`'s parameters. Pure: no h2o request needed. */
net_router_result_t net_router_match(const net_router_t *router, const char *method,
                                     size_t method_len, const char *path, size_t path_len,
                                     char *scratch, net_router_match_t *match);

/** The decoded value of parameter `name`, or {NULL, 0} when the route has none by that name. */
h2o_iovec_t net_router_param(const net_router_match_t *match, const char *name);

/** The h2o entry point (a net_http_handler_fn): mount with net_http_route(server, "/",
 * net_router_handle, router), registered after more specific prefixes such as "/healthz" (h2o
 * takes the first registered prefix that matches). Always answers; returns 0. */
int net_router_handle(h2o_req_t *req, void *data);

#endif
