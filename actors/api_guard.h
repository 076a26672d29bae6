/*
 * The API's guards (internal to actors/api*.c): every route's handler runs behind them.
 *
 *   1. the client IP's rate limit (API_RATE_LIMIT per minute);
 *   2. the signed-in user's rate limit (USER_RATE_LIMIT per hour), when the request carries a
 *      valid session token (verified once here; api__authenticate then reuses the result);
 *   3. Idempotency-Key, on the intent-changing calls (POST, PATCH and DELETE under /api/intents):
 *      the key is claimed in the database before the handler runs, and the handler's answer is
 *      stored before it leaves (net_http_hook_response), so that a repeat gets the same answer.
 *
 * Each step decides at once when it can and otherwise waits for Redis or PostgreSQL in an async
 * call (net/http_async.h), so nothing blocks a worker. Files: api_guard.c (the steps),
 * api_ratelimit.c (the counters), api_idempotency.c (the keys), api_openapi.c (the document).
 */
#ifndef ACTORS_API_GUARD_H
#define ACTORS_API_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include "actors/api_internal.h"
#include "store/redis.h"

/* ---- the guard (api_guard.c) ---- */

/** The guards' state, api->guard: the wrapped routes and the rate counters. */
typedef struct st_api_guard_t api_guard_t;

/** Creates api->guard from api->config (before any route is added). */
void api__guard_init(api_t *api);
/** Frees api->guard (after the server has stopped). */
void api__guard_dispose(api_t *api);
/** Registers the guard's statements (before any pool is created). */
void api__guard_register_statements(void);
/** Adds `fn` for `method` and `pattern` behind the guards. NULL, or why the router refused. */
const char *api__guard_add_route(api_t *api, net_router_t *router, const char *method,
                                 const char *pattern, net_router_handler_fn fn);
/** While the guard runs `req`'s handler: the user it verified from the token. False otherwise. */
bool api__guard_user(h2o_req_t *req, api_user_t *user);

/* ---- rate limits (api_ratelimit.c) ---- */

/** The two limits the API keeps. */
typedef enum en_api_rl_kind_t { API_RL_IP = 0, API_RL_USER = 1 } api_rl_kind_t;

/** What api__rl_check decided. */
typedef enum en_api_rl_verdict_t {
    API_RL_ADMIT,
    API_RL_REFUSE,
    API_RL_ASK, /* close to the limit, or no shared count yet: ask Redis (api__rl_ask_*) */
} api_rl_verdict_t;

#define API_RL_KEY_MAX 48 /* an IPv6 address (45) or a UUID (36), NUL-terminated */

/** One question to Redis about one key: the request's increment. */
typedef struct st_api_rl_ask_t {
    api_rl_kind_t kind;
    uint32_t slot, generation; /* the table entry, to update it with the answer */
    uint64_t window;           /* the window index asked about */
    uint32_t retry_after_s;    /* until the window ends */
    char key[API_RL_KEY_MAX];
} api_rl_ask_t;

typedef struct st_api_rl_t api_rl_t;

/** The counters for `limits` per `windows_s` (index: api_rl_kind_t; a limit of 0 is none), shared
 * through the Redis in `*redis` when there is one. */
api_rl_t *api__rl_create(const uint32_t limits[2], const uint32_t windows_s[2],
                         _Atomic(store_redis_t *) *redis);
/** Frees the counters (after the workers have stopped). */
void api__rl_free(api_rl_t *rl);
/** True when `kind` has a limit. */
bool api__rl_enabled(const api_rl_t *rl, api_rl_kind_t kind);
/** Decides for one request of `key` on the calling worker. With Redis (`redis` non-NULL) and far
 * from the limit, admits at once and pushes the count to Redis in the background (an async call
 * on `req`); close to it, answers API_RL_ASK with `ask` filled. Without Redis, each worker
 * admits its share of the limit. `retry_after_s` is set for a refusal. O(1). */
api_rl_verdict_t api__rl_check(api_rl_t *rl, store_redis_t *redis, h2o_req_t *req,
                               api_rl_kind_t kind, const char *key, api_rl_ask_t *ask,
                               uint32_t *retry_after_s);
/** Sends `ask`'s increment to Redis; the reply comes to `self`. */
void api__rl_ask_send(api_rl_t *rl, store_redis_t *redis, rt_actor_t *self,
                      const api_rl_ask_t *ask);
/** Decides from Redis's reply to `ask` (falls back to the worker's share when Redis failed). */
api_rl_verdict_t api__rl_ask_answer(api_rl_t *rl, const api_rl_ask_t *ask,
                                    const store_redis_reply_t *reply);

/* ---- Idempotency-Key (api_idempotency.c) ---- */

#define API_IDEM_KEY_MAX 255

/** A request's key and the SHA-256 of its method, path and body. */
typedef struct st_api_idem_t {
    char key[API_IDEM_KEY_MAX + 1];
    char hash_hex[65];
} api_idem_t;

/** Registers the statements (claim, store, release). */
void api__idem_register_statements(void);
/** Reads the Idempotency-Key header into `idem`: 0 when absent, 1 when present and valid, -1
 * when invalid (answered 400: repeated, empty, longer than 255 or not visible ASCII). */
int api__idem_read(h2o_req_t *req, api_idem_t *idem);
/** Claims `idem` for `user` (one transaction); the reply comes to `self`. False: queue full. */
bool api__idem_claim(store_pg_t *pg, rt_actor_t *self, const api_user_t *user,
                     const api_idem_t *idem);
/** Reads the claim's reply. True: the request is the key's first and may run (its answer will be
 * stored). False: answered here (the stored answer, 409, 422 or 503). */
bool api__idem_claimed(api_t *api, h2o_req_t *req, const api_user_t *user, const api_idem_t *idem,
                       const store_pg_result_t *r);

/* ---- GET /api/openapi.json (api_openapi.c) ---- */

/** Adds GET /api/openapi.json: the document compiled into the binary from actors/openapi.json. */
void api__openapi_routes(api_t *api, net_router_t *router);
/** The document's bytes (NUL-terminated) and length. */
const char *api__openapi_document(size_t *len);

#endif
