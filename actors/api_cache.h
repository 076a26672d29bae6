/*
 * The API's read cache: complete 200 answers of authenticated GETs (GET /api/intents/:id and the
 * intent lists), kept per worker and served without a database round trip while they are known
 * to be current. See api_cache.c for the design and why it is never wrong for long.
 *
 * Use from a handler, after authentication and the request's own checks:
 *
 *     if (api_cache_serve(api->cache, req, user.id))
 *         return 0;          // answered from the cache
 *     ...query the database and answer as usual: a 200 JSON answer is captured on the way out
 *
 * and, after any committed change to a user's data that such an answer shows (before the
 * change's own answer leaves), api_cache_bump(cache, user_id). The events of actors/events.h
 * bump through api_cache_on_event, and the state of the process's subscription to the other
 * processes' events sets the TTL in force through api_cache_on_subscription.
 */
#ifndef ACTORS_API_CACHE_H
#define ACTORS_API_CACHE_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_CACHE_MIN_BYTES (64u * 1024)      /* the smallest per-worker budget accepted */
#define API_CACHE_MAX_BYTES (1024ull << 20)   /* the largest per-worker budget accepted */
#define API_CACHE_DEFAULT_BYTES (16ull << 20) /* API_CACHE_MAX_BYTES' default */
#define API_CACHE_KEY_MAX 512                 /* longer keys (user id + path) are not cached */
#define API_CACHE_GENERATIONS (1u << 16)      /* per-user generation counters (shared) */

typedef struct st_api_cache_t api_cache_t;

/** Counters, summed over the workers (relaxed reads; for /metrics and benchmarks). */
typedef struct st_api_cache_stats_t {
    uint64_t hits;      /* answers served from the cache */
    uint64_t misses;    /* lookups that went to the database */
    uint64_t fills;     /* answers stored */
    uint64_t stale;     /* entries found but refused: expired or their user changed since */
    uint64_t bumps;     /* invalidations (API changes and events) */
    uint64_t evicted;   /* entries overwritten by newer ones before they went stale */
    uint64_t refreshes; /* misses (counted there too) that refreshed a current entry ahead */
    uint64_t shared;    /* answers stored from another worker's read */
} api_cache_stats_t;

/** Creates the cache: answers live at most `ttl_ms`, or at most `ttl_subscribed_ms` (taken as
 * `ttl_ms` when shorter) while the subscription is up (api_cache_on_subscription); each is
 * refreshed ahead from a random point in [2/3, 7/8) of the TTL in force, in the background,
 * while every request is still answered. Each worker keeps at most `max_bytes`
 * (API_CACHE_MIN_BYTES..API_CACHE_MAX_BYTES; 0: API_CACHE_DEFAULT_BYTES) of entries and their
 * index, allocated on the worker's first use. `ttl_ms` 0 disables the answers (serve answers
 * false, nothing is stored); the tokens are kept all the same. NULL when out of memory; every
 * function below accepts NULL and then does nothing. */
api_cache_t *api_cache_create(uint64_t ttl_ms, uint64_t ttl_subscribed_ms, size_t max_bytes);
/** Frees the cache, after the workers have stopped. */
void api_cache_free(api_cache_t *cache);

/** On a worker, for an authenticated GET or HEAD of `user_id`: answers `req` (200, application/
 * json, the stored body) and returns true when a current entry for (user_id, req->path with its
 * query) exists; a GET past the entry's refresh point also starts its renewal, a copy of `req`
 * run in the background (net_http_replay), unless another worker is renewing it. Otherwise (and
 * always for that copy) returns false and, for a GET, snapshots the user's generation now
 * (before the database is read) and hooks the request's answer (net_http_hook_response), so that
 * a 200 application/json answer is stored with that snapshot. Call at most once per request,
 * before anything else hooks its answer. O(key length + body length). */
bool api_cache_serve(api_cache_t *cache, h2o_req_t *req, const char *user_id);
/** Makes every entry of `user_id` stale at once, on every worker. Callable from any thread;
 * one atomic increment. */
void api_cache_bump(api_cache_t *cache, const char *user_id);
/** api_cache_bump in the shape of events_user_hook_fn (`ctx` is the cache). */
void api_cache_on_event(void *ctx, const char *user_id);
/** In the shape of events_subscription_hook_fn (`ctx` is the cache): `up`, every entry stored
 * so far goes stale at once (the events of the gap were lost) and the long TTL is in force from
 * now on; down, the short TTL is, counted from each entry's fill, whichever TTL it was filled
 * under. Callable from any thread; one atomic operation. */
void api_cache_on_subscription(void *ctx, bool up);
/** The counters, summed over the workers. */
void api_cache_get_stats(const api_cache_t *cache, api_cache_stats_t *out);

/* ---- verified session tokens ----
 *
 * Verifying a session token (base64url, HMAC-SHA256, a JSON payload) costs more than answering
 * from the cache, and a client sends the same token with every request. So each worker keeps
 * the tokens it verified, compared byte for byte (an equal token verifies equally: the secrets
 * do not change while the process runs), with what the caller derived from them and the time
 * window in which they verify. Only accepted tokens are kept; a refused one is checked every
 * time. Independent of the answer cache's TTL (works with API_CACHE_TTL_MS=0). */

#define API_CACHE_TOKEN_MAX 512       /* longer tokens are verified every time */
#define API_CACHE_TOKEN_VALUE_MAX 192 /* bytes kept with a token */

/** On a worker: true, with the `value_size` bytes stored with `token` copied to `value`, when
 * this worker verified the same token before and `now_s` is in its window. O(token length). */
bool api_cache_token_get(api_cache_t *cache, const char *token, size_t len, int64_t now_s,
                         void *value, size_t value_size);
/** On a worker: keeps `token`, accepted for valid_from_s <= now < valid_until_s, with `value`
 * (at most API_CACHE_TOKEN_VALUE_MAX bytes). Evicts an older token on collision. */
void api_cache_token_put(api_cache_t *cache, const char *token, size_t len, int64_t valid_from_s,
                         int64_t valid_until_s, const void *value, size_t value_size);

#endif
