/*
 * Operational endpoints: GET /healthz (the process is alive and its workers turn),
 * GET /readyz (200 when its dependencies are reachable, 503 otherwise, with the state of each)
 * and GET /metrics (Prometheus text).
 */
#ifndef ACTORS_OPS_ROUTES_H
#define ACTORS_OPS_ROUTES_H

#include "net/http_server.h"
#include "actors/api.h"
#include "actors/engine.h"
#include "actors/events.h"
#include "chain/rpc.h"
#include "runtime/worker.h"
#include "store/pg.h"
#include "store/redis.h"

/** What /readyz and /metrics look at. NULL members are not configured. */
typedef struct st_ops_deps_t {
    rt_runtime_t *rt;
    store_pg_t *pg;
    store_redis_t *redis;
    chain_rpc_t *rpc;          /* the chain's JSON-RPC client */
    size_t rpc_endpoints;      /* how many endpoints it has */
    events_t *events;          /* live updates (their counters) */
    api_t *api;                /* the API (its read cache's counters) */
    engine_t *_Atomic *engine; /* where main.c keeps the engine (NULL: never one) */
    _Atomic int serving;       /* set once the API has its stores: /readyz answers 503 before */
    _Atomic int closing;       /* set before the stores are closed: /readyz then answers 503 */
} ops_deps_t;

/** Registers /healthz, /readyz and /metrics on `http`; `deps` must outlive the server. */
void ops_routes_register(net_http_server_t *http, ops_deps_t *deps);

#endif
