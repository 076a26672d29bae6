/*
 * The guards in front of every API route (see api_guard.h): each request walks the steps IP
 * limit, user limit, Idempotency-Key, handler. A step that can decide at once does; one that
 * needs Redis or PostgreSQL begins an async call and the walk resumes from its continuation, on
 * the same worker, so the handler may run later than the h2o callback (as any async handler's
 * answer does). The walk's state lives in the request's pool.
 */
#include "actors/api_guard.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "net/http_async.h"
#include "net/http_server.h"
#include "net/problem.h"
#include "runtime/log.h"

#define API_GUARD_MAX_ROUTES 96

/* One route behind the guard: what the router calls it with. */
typedef struct st_guard_route_t {
    api_t *api;
    net_router_handler_fn fn;
    bool idempotent; /* an intent-changing call: Idempotency-Key applies */
} guard_route_t;

struct st_api_guard_t {
    api_rl_t *rl;
    size_t route_count;
    guard_route_t routes[API_GUARD_MAX_ROUTES]; /* fixed: the router keeps pointers into it */
};

typedef enum en_guard_step_t { STEP_IP, STEP_USER, STEP_IDEMPOTENCY, STEP_RUN } guard_step_t;

/* A request's walk through the steps, in its pool. */
typedef struct st_guard_req_t {
    const guard_route_t *route;
    const net_router_match_t *match;
    h2o_req_t *req;
    guard_step_t step;
    bool has_user; /* the request carries a valid session token, of `user` */
    api_user_t user;
    api_idem_t idem;
} guard_req_t;

/* An async call's state: what the walk waits for. `ask` is copied here because the answer must
 * update the worker's counters even when the client has gone (and the pool with it). */
typedef struct st_guard_wait_t {
    guard_req_t *g; /* valid only while the call's request is */
    api_rl_t *rl;
    api_rl_ask_t ask;
} guard_wait_t;

/* The walk whose handler runs now on this thread (api__guard_user). */
static __thread const guard_req_t *running;

static void advance(guard_req_t *g);

void api__guard_register_statements(void)
{
    api__idem_register_statements();
}

void api__guard_init(api_t *api)
{
    const api_config_t *c = &api->config;
    uint32_t limits[2] = {c->rate_limit_ip, c->rate_limit_user};
    uint32_t windows_s[2] = {c->rate_window_s != 0 ? c->rate_window_s : 60,
                             c->rate_window_s != 0 ? c->rate_window_s : 3600};
    api->guard = calloc(1, sizeof(*api->guard));
    if (api->guard == NULL ||
        (api->guard->rl = api__rl_create(limits, windows_s, &api->redis)) == NULL)
        rt_log_fatal("api", "out of memory creating the API's guards");
}

void api__guard_dispose(api_t *api)
{
    if (api->guard == NULL)
        return;
    api__rl_free(api->guard->rl);
    free(api->guard);
    api->guard = NULL;
}

bool api__guard_user(h2o_req_t *req, api_user_t *user)
{
    if (running == NULL || running->req != req || !running->has_user)
        return false;
    *user = running->user;
    return true;
}

/* The session token's user, without answering anything: the handler answers a bad token. */
static bool verify_token(api_t *api, h2o_req_t *req, api_user_t *user)
{
    h2o_iovec_t token;
    bool session;
    return net_http_bearer_token(req, &token) &&
           api__verify_session(api, token.base, token.len, user, &session) == NET_JWT_OK && session;
}

/* Runs the route's handler, letting api__authenticate reuse the verified token. */
static void run(guard_req_t *g)
{
    running = g;
    int ret = g->route->fn(g->req, g->match, g->route->api);
    running = NULL;
    if (ret != 0)
        net_problem_not_found(g->req, "no resource at this path");
}

static void on_reply(net_http_async_t *call, rt_msg_t *msg)
{
    guard_wait_t *w = net_http_async_state(call);
    h2o_req_t *req = net_http_async_req(call);
    if (msg->type == STORE_REDIS_MSG_REPLY) {
        /* the verdict also counts the request in the worker's table: decide even if it left */
        api_rl_verdict_t verdict = api__rl_ask_answer(w->rl, &w->ask, rt_msg_payload(msg));
        net_http_async_end(call);
        if (req != NULL && verdict == API_RL_REFUSE)
            net_problem_rate_limited(req, w->ask.retry_after_s);
        else if (req != NULL)
            advance(w->g);
    } else if (msg->type == STORE_PG_MSG_RESULT) {
        guard_req_t *g = w->g;
        net_http_async_end(call);
        if (req != NULL &&
            api__idem_claimed(g->route->api, req, &g->user, &g->idem, rt_msg_payload(msg)))
            run(g);
    }
}

static net_http_async_t *begin_wait(guard_req_t *g)
{
    net_http_async_t *call = net_http_async_begin(g->req, on_reply, sizeof(guard_wait_t));
    guard_wait_t *w = net_http_async_state(call);
    w->g = g;
    w->rl = g->route->api->guard->rl;
    return call;
}

/* The rate limit of `kind` for `key`. True: admitted, go on; false: answered or waiting. A
 * replay (a cached answer renewed in the background, net_http_replay) is no client's request:
 * it is not counted. */
static bool rate_step(guard_req_t *g, api_rl_kind_t kind, const char *key)
{
    api_t *api = g->route->api;
    if (net_http_is_replay(g->req))
        return true;
    store_redis_t *redis = atomic_load_explicit(&api->redis, memory_order_acquire);
    api_rl_ask_t ask;
    uint32_t retry_after_s = 1;
    switch (api__rl_check(api->guard->rl, redis, g->req, kind, key, &ask, &retry_after_s)) {
    case API_RL_ADMIT:
        return true;
    case API_RL_REFUSE:
        net_problem_rate_limited(g->req, retry_after_s);
        return false;
    case API_RL_ASK:
        break;
    }
    net_http_async_t *call = begin_wait(g);
    guard_wait_t *w = net_http_async_state(call);
    w->ask = ask;
    api__rl_ask_send(api->guard->rl, redis, net_http_async_actor(call), &w->ask);
    return false;
}

/* The Idempotency-Key of an intent-changing call. True: none applies, go on; false: answered
 * (a bad key) or waiting for the claim. Without a valid session the handler answers 401, and
 * without a database 503, so neither needs a claim. */
static bool idempotency_step(guard_req_t *g)
{
    if (!g->route->idempotent || !g->has_user)
        return true;
    int found = api__idem_read(g->req, &g->idem);
    store_pg_t *pg = api__pool(g->route->api);
    if (found < 0)
        return false;
    if (found == 0 || pg == NULL)
        return true;
    net_http_async_t *call = begin_wait(g);
    if (!api__idem_claim(pg, net_http_async_actor(call), &g->user, &g->idem)) {
        net_http_async_end(call);
        net_problem_unavailable(g->req, 1);
    }
    return false;
}

/* Walks the steps from g->step; bounded: each turn moves one step on. */
static void advance(guard_req_t *g)
{
    api_t *api = g->route->api;
    for (int turn = 0; turn != STEP_RUN + 1; ++turn) {
        switch (g->step) {
        case STEP_IP: {
            char ip[INET6_ADDRSTRLEN];
            api__peer_ip(g->req, ip);
            g->step = STEP_USER;
            if (!rate_step(g, API_RL_IP, ip))
                return;
            break;
        }
        case STEP_USER:
            g->step = STEP_IDEMPOTENCY;
            /* verified once here when a step needs the user; the handler reuses it */
            g->has_user = (api__rl_enabled(api->guard->rl, API_RL_USER) || g->route->idempotent) &&
                          verify_token(api, g->req, &g->user);
            if (g->has_user && !rate_step(g, API_RL_USER, g->user.id))
                return;
            break;
        case STEP_IDEMPOTENCY:
            g->step = STEP_RUN;
            if (!idempotency_step(g))
                return;
            break;
        case STEP_RUN:
            run(g);
            return;
        }
    }
    assert(!"unreachable: every step moves on");
}

static int guard_handle(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    guard_req_t *g = h2o_mem_alloc_pool(&req->pool, sizeof(*g));
    g->route = data;
    g->match = match;
    g->req = req;
    g->step = STEP_IP;
    g->has_user = false;
    advance(g);
    return 0;
}

static bool is_intent_change(const char *method, const char *pattern)
{
    return strcmp(method, "GET") != 0 &&
           (strcmp(pattern, "/api/intents") == 0 || strncmp(pattern, "/api/intents/", 13) == 0);
}

const char *api__guard_add_route(api_t *api, net_router_t *router, const char *method,
                                 const char *pattern, net_router_handler_fn fn)
{
    api_guard_t *guard = api->guard;
    assert(guard != NULL && fn != NULL);
    if (guard->route_count == API_GUARD_MAX_ROUTES)
        return "more routes than API_GUARD_MAX_ROUTES";
    guard_route_t *r = &guard->routes[guard->route_count];
    *r = (guard_route_t){api, fn, is_intent_change(method, pattern)};
    const char *err = net_router_add(router, method, pattern, guard_handle, r);
    if (err == NULL)
        ++guard->route_count;
    return err;
}
