#include "actors/ops_routes.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "runtime/metrics.h"

static int is_get(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

static int exact_path(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

static int not_allowed(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
    static const char body[] = "{\"type\":\"about:blank\",\"title\":\"Method Not Allowed\","
                               "\"status\":405}";
    net_http_respond(req, 405, "Method Not Allowed", "application/problem+json", body,
                     sizeof(body) - 1);
    return 0;
}

static int on_healthz(h2o_req_t *req, void *data)
{
    if (!exact_path(req, "/healthz"))
        return -1;
    if (!is_get(req))
        return not_allowed(req);
    static const char body[] = "{\"status\":\"ok\"}";
    net_http_respond(req, 200, "OK", "application/json", body, sizeof(body) - 1);
    return 0;
}

/* Readiness: the database is required (503 without it); Redis and the chain are not (the service
 * degrades: per-process rate limits; intents wait as chain_unavailable), so their states are
 * reported but do not fail the check. */
/* The chain is up while at least one endpoint's circuit breaker lets calls through; the breakers
 * see every call's outcome, so this costs no request of its own. */
static const char *chain_state(const ops_deps_t *deps)
{
    if (deps->rpc == NULL)
        return "not_configured";
    for (size_t i = 0; i != deps->rpc_endpoints; ++i)
        if (chain_rpc_breaker_state(deps->rpc, i) != CHAIN_RPC_BREAKER_OPEN)
            return "up";
    return "down";
}

static int on_readyz(h2o_req_t *req, void *data)
{
    ops_deps_t *deps = data;
    if (!exact_path(req, "/readyz"))
        return -1;
    if (!is_get(req))
        return not_allowed(req);
    if (atomic_load(&deps->closing)) {
        static const char body[] = "{\"status\":\"shutting_down\"}";
        net_http_respond(req, 503, "Service Unavailable", "application/json", body,
                         sizeof(body) - 1);
        return 0;
    }
    const char *db = deps->pg == NULL                  ? "not_configured"
                     : store_pg_is_connected(deps->pg) ? "up"
                                                       : "down";
    const char *cache = deps->redis == NULL                     ? "not_configured"
                        : store_redis_is_connected(deps->redis) ? "up"
                                                                : "down";
    /* the pool connects before the engine starts, and the API gets its stores only after it:
     * a client let in between got 503s from the API itself */
    bool serving = atomic_load(&deps->serving) != 0, ready = serving && strcmp(db, "up") == 0;
    char body[256];
    int len = snprintf(body, sizeof(body),
                       "{\"status\":\"%s\",\"database\":\"%s\",\"cache\":\"%s\",\"chain\":\"%s\"}",
                       !serving ? "starting"
                       : ready  ? "ready"
                                : "unavailable",
                       db, cache, chain_state(deps));
    net_http_respond(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable",
                     "application/json", h2o_strdup(&req->pool, body, (size_t)len).base,
                     (size_t)len);
    return 0;
}

/* One counter or gauge of the domain's own, rendered after the runtime's. */
typedef struct st_metric_row_t {
    const char *name, *type, *help;
    uint64_t value;
} metric_row_t;

/* Appends `n` rows to the `len` bytes of `*buf` (copied into a larger pool buffer); returns the
 * bytes added. */
static size_t render_rows(const metric_row_t *rows, size_t n, h2o_mem_pool_t *pool, char **buf,
                          size_t len)
{
    size_t cap = len + 256 * n, added = 0;
    char *out = h2o_mem_alloc_pool(pool, cap);
    memcpy(out, *buf, len);
    for (size_t i = 0; i != n; ++i) {
        int w =
            snprintf(out + len + added, cap - len - added, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
                     rows[i].name, rows[i].help, rows[i].name, rows[i].type, rows[i].name,
                     (unsigned long long)rows[i].value);
        if (w < 0 || (size_t)w >= cap - len - added)
            break;
        added += (size_t)w;
    }
    *buf = out;
    return added;
}

static size_t render_events(events_t *events, h2o_mem_pool_t *pool, char **buf, size_t len)
{
    if (events == NULL)
        return 0;
    events_stats_t st;
    events_get_stats(events, &st);
    const metric_row_t rows[] = {
        {"intentd_events_published_total", "counter", "events accepted for delivery", st.published},
        {"intentd_events_dropped_total", "counter", "events refused (queue full)", st.dropped},
        {"intentd_events_delivered_total", "counter", "frames queued on sockets", st.delivered},
        {"intentd_events_from_redis_total", "counter", "events from other processes",
         st.from_redis},
        {"intentd_ws_sockets_open", "gauge", "WebSocket connections open", st.sockets_open},
        {"intentd_ws_slow_closed_total", "counter", "sockets closed for not reading",
         st.slow_closed},
        {"intentd_ws_sessions", "gauge", "user session actors alive", st.sessions_alive},
        {"intentd_events_subscribed", "gauge", "1 while other processes' events surely arrive",
         st.subscribed},
        {"intentd_events_resubscribed_total", "counter", "times that subscription came up",
         st.resubscribed},
    };
    return render_rows(rows, sizeof(rows) / sizeof(rows[0]), pool, buf, len);
}

static size_t render_api_cache(api_t *api, h2o_mem_pool_t *pool, char **buf, size_t len)
{
    api_cache_stats_t st;
    if (api == NULL || !api_get_cache_stats(api, &st))
        return 0;
    const metric_row_t rows[] = {
        {"intentd_api_cache_hits_total", "counter", "answers served from the read cache", st.hits},
        {"intentd_api_cache_misses_total", "counter", "reads that went to the database", st.misses},
        {"intentd_api_cache_stale_total", "counter", "entries refused: expired or changed",
         st.stale},
        {"intentd_api_cache_bumps_total", "counter", "invalidations by changes and events",
         st.bumps},
        {"intentd_api_cache_evicted_total", "counter", "entries overwritten while fresh",
         st.evicted},
        {"intentd_api_cache_refreshes_total", "counter",
         "misses that refreshed a current entry ahead of its expiry", st.refreshes},
        {"intentd_api_cache_shared_total", "counter",
         "answers stored from another worker's database read", st.shared},
    };
    return render_rows(rows, sizeof(rows) / sizeof(rows[0]), pool, buf, len);
}

static size_t render_engine(engine_t *_Atomic *slot, h2o_mem_pool_t *pool, char **buf, size_t len)
{
    /* the slot empties only after the requests drained at shutdown (main.c), so the engine
     * read here outlives this request */
    engine_t *engine = slot != NULL ? atomic_load(slot) : NULL;
    if (engine == NULL)
        return 0;
    const metric_row_t rows[] = {
        {"intentd_engine_intents", "gauge", "intent actors alive (live intents scheduled)",
         engine_actor_count(engine)},
        {"intentd_engine_refused_total", "counter",
         "live intents the full engine did not schedule (ENGINE_MAX_INTENTS)",
         engine_refused_count(engine)},
    };
    return render_rows(rows, sizeof(rows) / sizeof(rows[0]), pool, buf, len);
}

static int on_metrics(h2o_req_t *req, void *data)
{
    rt_runtime_t *rt = ((ops_deps_t *)data)->rt;
    if (!exact_path(req, "/metrics"))
        return -1;
    if (!is_get(req))
        return not_allowed(req);
    size_t cap = 16384;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    size_t len = rt_metrics_render(rt, buf, cap);
    if (len >= cap) { /* more workers than the first guess covered: render once more */
        cap = len + 1;
        buf = h2o_mem_alloc_pool(&req->pool, cap);
        len = rt_metrics_render(rt, buf, cap);
    }
    len += render_events(((ops_deps_t *)data)->events, &req->pool, &buf, len);
    len += render_api_cache(((ops_deps_t *)data)->api, &req->pool, &buf, len);
    len += render_engine(((ops_deps_t *)data)->engine, &req->pool, &buf, len);
    net_http_respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", buf, len);
    return 0;
}

void ops_routes_register(net_http_server_t *http, ops_deps_t *deps)
{
    net_http_route(http, "/healthz", on_healthz, deps);
    net_http_route(http, "/readyz", on_readyz, deps);
    net_http_route(http, "/metrics", on_metrics, deps);
}
