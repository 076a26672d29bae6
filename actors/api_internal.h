/*
 * What the API's endpoint files share (not for use outside actors/api*.c).
 */
#ifndef ACTORS_API_INTERNAL_H
#define ACTORS_API_INTERNAL_H

#include <arpa/inet.h>
#include <jansson.h>
#include <stdatomic.h>
#include "actors/api.h"
#include "chain/address.h"

struct st_api_t {
    api_config_t config;
    _Atomic(store_pg_t *) pg; /* attached once the pools run */
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
/** Verifies the bearer token into `user`; otherwise answers 401, audits, and returns false. */
bool api__authenticate(api_t *api, h2o_req_t *req, api_user_t *user);
/** One route of a table for api__add_routes. */
typedef struct st_api_route_t {
    const char *method, *path;
    net_router_handler_fn fn;
} api_route_t;

/** Adds `n` routes with `api` as their data; a bad table is a programming error (fatal). */
void api__add_routes(api_t *api, net_router_t *router, const api_route_t *routes, size_t n);
/** Registers the intents' statements. */
void api__intents_register_statements(void);
/** Adds the intents' routes. */
void api__intents_routes(api_t *api, net_router_t *router);

#endif
