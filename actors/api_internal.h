/*
 * What the API's endpoint files share (not for use outside actors/api*.c).
 */
#ifndef ACTORS_API_INTERNAL_H
#define ACTORS_API_INTERNAL_H

#include <arpa/inet.h>
#include <jansson.h>
#include <stdatomic.h>
#include "actors/api.h"
#include "actors/api_cache.h"
#include "chain/address.h"
#include "net/json.h"

struct st_api_t {
    api_config_t config;
    _Atomic(store_pg_t *) pg;       /* attached once the pools run */
    _Atomic(store_redis_t *) redis; /* likewise; NULL: rate limits per process */
    struct st_api_guard_t *guard;   /* rate limits and idempotency (actors/api_guard.h) */
    api_cache_t *cache;             /* the read cache; NULL: none (actors/api_cache.h) */
};

/** The authenticated user: the token's subject and the wallet it signed in with. */
typedef struct st_api_user_t {
    char id[NET_JWT_MAX_SUB + 1];
    chain_addr_t wallet;
} api_user_t;

/** The database pool, or NULL when there is none (yet). */
store_pg_t *api__pool(api_t *api);
/** The peer's IP address as text. */
void api__peer_ip(h2o_req_t *req, char out[INET6_ADDRSTRLEN]);
/** An RFC 3339 UTC string, or JSON null when out of range. */
json_t *api__time_json(int64_t unix_s);
/** Answers a failed database call: 503 when busy or down, 500 (logged, no details) otherwise. */
void api__answer_store_failure(h2o_req_t *req, const store_pg_result_t *r);
/** Records a refused authorisation in the audit log without waiting for it. */
void api__audit_refusal(api_t *api, h2o_req_t *req, const char *user_id, const char *action,
                        const char *reason);
/** Verifies a session token into `user`: NET_JWT_OK, or why net_jwt_verify refused it. On OK,
 * `*session` says whether it is a session token (it carries the wallet claim; `user` is filled
 * only then). Accepted session tokens are kept per worker (api_cache_token_*), so a client's
 * repeated token is verified once per worker and then compared. */
net_jwt_result_t api__verify_session(api_t *api, const char *token, size_t len, api_user_t *user,
                                     bool *session);
/** Verifies the bearer token into `user`; otherwise answers 401, audits, and returns false. */
bool api__authenticate(api_t *api, h2o_req_t *req, api_user_t *user);
/** One route of a table for api__add_routes. */
typedef struct st_api_route_t {
    const char *method, *path;
    net_router_handler_fn fn;
} api_route_t;

/** Adds `n` routes with `api` as their data, behind the guards (rate limits, Idempotency-Key:
 * actors/api_guard.h); a bad table is a programming error (fatal). */
void api__add_routes(api_t *api, net_router_t *router, const api_route_t *routes, size_t n);
/** Registers the intents' statements. */
void api__intents_register_statements(void);
/** Adds the intents' routes. */
void api__intents_routes(api_t *api, net_router_t *router);
/** True for a UUID in its canonical text form; anything else names nothing (404, not a 500 from
 * the database's cast). */
bool api__is_uuid(const char *s, size_t len);
/** Reads ?limit= (1..200, default 50) and ?cursor= ("<created_at in us>.<uuid>", both empty when
 * absent) of a list; adds the faults to `errs` and returns false when one is invalid. */
bool api__page_params(h2o_req_t *req, net_json_errors_t *errs, char cursor_time[24],
                      char cursor_id[37], int *limit);
/** Registers the notifications' statements. */
void api__notifications_register_statements(void);
/** Adds GET /api/ws and the notifications' routes (and the test route when enabled). */
void api__notifications_routes(api_t *api, net_router_t *router);
/** Registers the history's statements. */
void api__history_register_statements(void);
/** Adds GET /api/user/history. */
void api__history_routes(api_t *api, net_router_t *router);
/** Registers the statement of GET /api/stats/overview. */
void api__account_register_statements(void);
/** Adds GET /api/user/balance, /api/stats/gas-prices and /api/stats/overview. */
void api__account_routes(api_t *api, net_router_t *router);

#endif
