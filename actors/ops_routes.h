/*
 * Operational endpoints: GET /healthz (the process is alive and its workers turn) and
 * GET /metrics (Prometheus text).
 */
#ifndef ACTORS_OPS_ROUTES_H
#define ACTORS_OPS_ROUTES_H

#include "net/http_server.h"
#include "runtime/worker.h"

/** Registers /healthz and /metrics on `http`, reading counters from `rt`. */
void ops_routes_register(net_http_server_t *http, rt_runtime_t *rt);

#endif
