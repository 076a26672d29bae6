/*
 * The HTTP API of shared/api.md, mounted on the router at "/api/".
 *
 * Handlers run on the worker that received the request. Those that need the database begin an
 * async call (net/http_async.h): a short-lived actor that owns the request until the database
 * answers. Nothing here blocks a worker.
 *
 * This file holds the shared context, authentication and the sign-in endpoints; the rest of the
 * API joins it as it is built.
 */
#ifndef ACTORS_API_H
#define ACTORS_API_H

#include <stdbool.h>
#include <stdint.h>
#include "actors/events.h"
#include "actors/gas_oracle.h"
#include "actors/api_cache.h"
#include "actors/intent_model.h"
#include "chain/rpc.h"
#include "net/http_server.h"
#include "net/jwt.h"
#include "net/router.h"
#include "store/crypto.h"
#include "store/pg.h"
#include "store/redis.h"

typedef struct st_api_config_t {
    const char *siwe_domain;            /* the EIP-4361 domain messages must name */
    const char *siwe_uri;               /* the URI composed into issued messages */
    uint64_t chain_id;                  /* the chain messages must name */
    int64_t nonce_ttl_s;                /* lifetime of a sign-in nonce */
    int64_t session_ttl_s;              /* lifetime of a session token */
    const net_jwt_keys_t *jwt_keys;     /* current (and previous) JWT secret */
    const store_crypto_key_t *data_key; /* NULL: sensitive columns cannot be written (503) */
    bool has_registry;                  /* INTENT_CONTRACT_ADDRESS given: intents can be made */
    chain_addr_t registry;              /* the intent registry (EIP-712 verifyingContract) */
    const intent_token_t *tokens;       /* the token registry: symbol, address, decimals */
    size_t num_tokens;
    chain_rpc_t *rpc; /* the chain (NULL: none; balances and gas prices answer 503) */
    /* the chain's fees (NULL: none; gas prices answer 503) */
    gas_oracle_t *gas;
    /* the symbol of the chain's coin in balances ("ETH", "CRO"; NULL: "ETH") */
    const char *native_symbol;
    /* Called (on the worker that answered) after a change to an intent is committed: creation,
     * signature, patch, pause, resume, cancel. The engine takes it from there. May be NULL. */
    void (*intent_changed)(void *ctx, const char *intent_id);
    /* For a creation, called instead of intent_changed (same ctx) with the intent as committed
     * (`signature`: the owner's, NULL while unsigned) and as its answer renders it (`json`,
     * `json_len` bytes; NULL when not rendered), so the engine need not read it back;
     * `reserved`: engine_reserve's room for it, which its actor takes. May be NULL. */
    void (*intent_created)(void *ctx, const intent_t *in, const char *user_id,
                           const uint8_t *signature, const char *json, size_t json_len,
                           bool reserved);
    /* For a committed change that holds engine_reserve's room (a signature or resume), called
     * instead of intent_changed (same ctx): the intent's new actor takes the room. */
    void (*intent_changed_reserved)(void *ctx, const char *intent_id);
    void *intent_changed_ctx;
    /* Asked (same ctx) before a creation (`intent_id` NULL) or a change that makes an intent
     * run (signature, resume) is stored: reserves room for the intent's actor (`*reserved`
     * set), handed over with the committed change (intent_created, intent_changed_reserved) or
     * given back with engine_release when nothing is stored. False when the engine has no room
     * and the intent no actor: the request is refused (503, reason "engine_full"). Two requests
     * racing for the last room cannot both pass. Cheap (one atomic read-modify-write, no lock).
     * May be NULL; when set, so are engine_release and intent_changed_reserved. */
    bool (*engine_reserve)(void *ctx, const char *intent_id, bool *reserved);
    void (*engine_release)(void *ctx);
    /* the users' live event stream (NULL: none; GET /api/ws answers 503) */
    events_t *events;
    /* POST /api/test/events publishes any event to the caller (tests and benchmarks only) */
    bool events_test_endpoint;
    /* Rate limits (actors/api_guard.h): requests per window per client IP and per signed-in
     * user, 0 for none; windows of 60 s and 3600 s unless rate_window_s overrides both. */
    uint32_t rate_limit_ip, rate_limit_user, rate_window_s;
    /* The read cache of GET /api/intents/:id and the intent lists (actors/api_cache.h): answers
     * live at most cache_ttl_ms (0: no cache), or cache_ttl_subscribed_ms while the other
     * processes' events surely reach this one (events.h); each worker keeps at most
     * cache_max_bytes. */
    uint64_t cache_ttl_ms, cache_ttl_subscribed_ms, cache_max_bytes;
} api_config_t;

typedef struct st_api_t api_t;

/** Registers the API's statements; before any database pool is created. */
void api_register_statements(void);
/** Creates the API and adds its routes to `router` (before the runtime starts). `pg` may be
 * NULL until api_attach_store (meanwhile database calls answer 503). */
api_t *api_create(const api_config_t *config, store_pg_t *pg, net_router_t *router);
/** Gives the API its database pool once it runs (NULL: none, every call answers 503). */
void api_attach_store(api_t *api, store_pg_t *pg);
/** Gives the API Redis once it runs, to share rate limits across processes (NULL: none; each
 * process then counts alone). */
void api_attach_redis(api_t *api, store_redis_t *redis);
/** The read cache's counters summed over the workers; false when there is no cache. */
bool api_get_cache_stats(api_t *api, api_cache_stats_t *out);
/** Frees the API (after the server has stopped). */
void api_free(api_t *api);

#endif
