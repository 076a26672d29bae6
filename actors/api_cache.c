/*
 * The API's read cache (see api_cache.h).
 *
 * Why: an authenticated GET of an intent costs a PostgreSQL transaction (the intent and its
 * newest executions), a list one statement, and the database then caps the read rate far below
 * what the HTTP layer can answer. Users read far more often than they change anything, and every
 * change to what these answers show is either made by the API itself or announced as an event
 * of that user (actors/events.h). So answers are kept, and thrown away by user.
 *
 * Shape:
 * - One cache per worker, touched only by its worker's thread: no locks and no shared cache
 *   lines on the hot path. A request and its async continuation run on the same worker, so the
 *   answer a miss produces lands in the cache the next request on that worker looks at. Each
 *   worker fills its own copy (at most one miss per worker per entry and change).
 * - An entry is (key = user id + raw path with its query, body, generation, expiry). Bodies and
 *   keys live in a per-worker ring arena written like a log: each entry is appended at the head,
 *   and an entry is intact while the head has not lapped its first byte (head - pos <= size), so
 *   old entries fall off the end in insertion order with no free lists and no per-entry
 *   allocation. The index is a 2-way set-associative table of fixed size (an eighth of the
 *   budget); a collision evicts the way that expires first. Both are sized from
 *   API_CACHE_MAX_BYTES at the worker's first use, so memory is bounded per worker.
 * - Invalidation: a fixed array of per-user generation counters shared by all workers, indexed
 *   by a hash of the user id (two users on one counter only cost each other extra misses). An
 *   entry is served only while its stored generation equals its user's counter now and it has
 *   not expired. The generation is read BEFORE the database is read and stored with the answer,
 *   so a change that commits while the read runs (and bumps after its commit) makes that answer
 *   stale at once: a slow read can never put an old answer in the cache as current.
 * - Bumps: the API's intent-changing handlers bump right after the database confirms and before
 *   their answer leaves (so the client's next GET, on any worker, misses); every event of a user
 *   (the engine's, local or from another process through Redis) bumps through the events hook.
 *   The TTL (API_CACHE_TTL_MS) bounds staleness when a bump is lost: another process's event
 *   while Redis is down, a dropped event, a change made behind the server's back.
 * - Refresh ahead, spread out: an entry filled at t is served until t + TTL, but from a refresh
 *   point drawn at random in [t + 2/3 TTL, t + TTL) the first request that finds it goes to the
 *   database (as a miss, with the generation read first) while every other request is still
 *   answered from the entry; that request's answer replaces it. One refresh per entry at a time
 *   (the refresh point moves on by REFRESH_RETRY_MS when one starts, in case its answer never
 *   comes; one answered with an error is not tried again). Why: with one expiry at t + TTL, the
 *   entries a warm-up (or a mass invalidation) filled together expired together, and every TTL
 *   all of them missed within a few hundred milliseconds: a burst of thousands of database
 *   reads that, with PostgreSQL on the workers' cores, stalled every request for tens of
 *   milliseconds (bench: misses in bursts every ~2.1 s with a 2 s TTL, the slowest answers
 *   with them). The random point spreads a burst over a third of the TTL in one round, but
 *   only that: rounds of about 5/6 TTL each, with a third of a TTL of jitter, kept the entries
 *   a warm-up filled together in waves for tens of seconds (bench, list at 38k/s: refreshes
 *   swinging between 0 and 500/s with a ~1.7 s period, the slowest answers in the peaks, with
 *   PostgreSQL and the list's rendering on the cores the requests need). So an entry that a
 *   miss filled (a warm-up, a mass invalidation: the ones filled together) draws its first
 *   refresh point over [t + TTL/6, t + TTL), about one round, and the refreshes are even from
 *   the first round on; this costs at most one early database read per miss. An entry a
 *   refresh filled draws from [t + 2/3 TTL, t + TTL). The staleness bound is unchanged (a hit
 *   still needs the current generation and t + TTL).
 * - Only 200 application/json answers of GET are stored, captured with the per-request answer
 *   hook of net/http_util.h, byte for byte; a hit answers them with net_http_send_owned like
 *   net_json_send does, and the router adds the security, request id and CORS headers to both
 *   alike. Authentication, rate limits and ownership run before every lookup, and the key holds
 *   the token's subject, so an entry is only ever served to its own user.
 *
 * Considered: one shared cache under a lock or RCU (one copy instead of one per worker, but
 * cross-core traffic on every hit); invalidating by sending messages to every worker (a change
 * then needs N deliveries, and a read in flight could still fill an old answer afterwards); and
 * caching rows rather than answers (the JSON building would remain on every hit).
 */
#include "actors/api_cache.h"
#include <assert.h>
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "net/http_util.h"
#include "runtime/worker.h"

#define CACHE_WAYS 2
#define CONTENT_TYPE "application/json"
/* a refresh whose answer has not come back this long is tried again by another request */
#define REFRESH_RETRY_MS 100

/* One index entry; hash 0 means empty. The key's bytes, then the body's, are at arena position
 * `pos` (absolute: bytes ever appended, so that "lapped" is a subtraction). */
typedef struct st_cache_slot_t {
    uint64_t hash;
    uint64_t pos;
    uint64_t generation; /* the user's counter when the database was read */
    uint64_t expires_ms; /* rt_now_ms() clock */
    uint64_t refresh_ms; /* from then on, one request refreshes the entry (see above) */
    uint32_t key_len, body_len;
} cache_slot_t;

/* A verified token and what the caller derived from it; len 0 means empty. */
typedef struct st_token_slot_t {
    int64_t valid_from_s, valid_until_s;
    uint32_t len;
    uint8_t value[API_CACHE_TOKEN_VALUE_MAX];
    char token[API_CACHE_TOKEN_MAX];
} token_slot_t;

#define TOKEN_SETS 256 /* x CACHE_WAYS tokens per worker: ~360 KiB, touched as used */

/* A worker's cache: written only on that worker's thread; counters read by anyone. */
typedef struct st_cache_worker_t {
    token_slot_t *tokens; /* TOKEN_SETS * CACHE_WAYS */
    char *arena;
    size_t arena_size;
    uint64_t head; /* absolute position of the next append */
    cache_slot_t *slots;
    size_t set_mask; /* sets - 1 (a set is CACHE_WAYS slots) */
    uint64_t rng;    /* xorshift64 state for the refresh points (not a secret) */
    _Atomic uint64_t hits, misses, fills, stale, evicted, refreshes;
} cache_worker_t;

struct st_api_cache_t {
    uint64_t ttl_ms;
    size_t max_bytes;
    _Atomic uint64_t *generations; /* API_CACHE_GENERATIONS, shared by every worker */
    _Atomic uint64_t bumps;
    _Atomic(cache_worker_t *) workers[RT_MAX_WORKERS]; /* each set once, by its own worker */
};

/* What a miss hands to its answer's hook, in the request's pool. */
typedef struct st_cache_fill_t {
    api_cache_t *cache;
    uint64_t hash, generation, filled_ms, expires_ms;
    uint32_t gen_index, key_len;
    bool refresh; /* of a current entry, ahead of its expiry */
    char key[];
} cache_fill_t;

/* ---- hashing ---- */

/* FNV-1a, continued from `h`; user ids are hashed case-insensitively, so that a counter is the
 * same whichever way a UUID was written. O(len). */
static uint64_t fnv1a(uint64_t h, const char *s, size_t len, bool fold)
{
    for (size_t i = 0; i != len; ++i)
        h = (h ^ (uint8_t)(fold ? tolower((unsigned char)s[i]) : s[i])) * 0x100000001b3ull;
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

static uint32_t gen_index(const char *user_id)
{
    uint64_t h = fnv1a(FNV_BASIS, user_id, strlen(user_id), true);
    return (uint32_t)((h ^ h >> 32) & (API_CACHE_GENERATIONS - 1));
}

/* The key "<user id> <raw path?query>" into `key`; 0 when it does not fit. */
static size_t make_key(char key[API_CACHE_KEY_MAX], const char *user_id, h2o_iovec_t path)
{
    size_t ulen = strlen(user_id);
    if (ulen + 1 + path.len > API_CACHE_KEY_MAX)
        return 0;
    memcpy(key, user_id, ulen);
    key[ulen] = ' ';
    memcpy(key + ulen + 1, path.base, path.len);
    return ulen + 1 + path.len;
}

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = fnv1a(FNV_BASIS, key, len, false);
    return h != 0 ? h : 1; /* 0 marks an empty slot */
}

/* ---- a worker's cache ---- */

/* A budget of `max_bytes`: an eighth for the index (a power of two of sets), the rest arena. */
static cache_worker_t *cache_worker_new(size_t max_bytes)
{
    cache_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    size_t sets = 1;
    while (sets * 2 * CACHE_WAYS * sizeof(cache_slot_t) <= max_bytes / 8)
        sets *= 2;
    w->set_mask = sets - 1;
    w->rng = ((uint64_t)(uintptr_t)w * 0x9e3779b97f4a7c15ull) | 1; /* never 0 */
    w->slots = calloc(sets * CACHE_WAYS, sizeof(cache_slot_t));
    w->arena_size = max_bytes - sets * CACHE_WAYS * sizeof(cache_slot_t);
    w->arena = malloc(w->arena_size); /* untouched pages cost no memory until used */
    w->tokens = calloc(TOKEN_SETS * CACHE_WAYS, sizeof(token_slot_t));
    if (w->slots == NULL || w->arena == NULL || w->tokens == NULL) {
        free(w->tokens);
        free(w->slots);
        free(w->arena);
        free(w);
        return NULL;
    }
    return w;
}

/* The calling worker's cache, made on first use; NULL when out of memory. */
static cache_worker_t *worker_cache(api_cache_t *cache, uint16_t id)
{
    assert(id < RT_MAX_WORKERS);
    cache_worker_t *w = atomic_load_explicit(&cache->workers[id], memory_order_relaxed);
    if (w == NULL && (w = cache_worker_new(cache->max_bytes)) != NULL)
        atomic_store_explicit(&cache->workers[id], w, memory_order_release);
    return w;
}

/* True while the arena has not overwritten the slot's first (hence oldest) byte. */
static bool intact(const cache_worker_t *w, const cache_slot_t *s)
{
    return s->hash != 0 && w->head - s->pos <= w->arena_size;
}

static const char *at(const cache_worker_t *w, uint64_t pos)
{
    return w->arena + pos % w->arena_size;
}

static cache_slot_t *set_of(cache_worker_t *w, uint64_t hash)
{
    return &w->slots[(hash & w->set_mask) * CACHE_WAYS];
}

/* The intact slot holding `key`, or NULL. O(ways + key length). */
static cache_slot_t *find(cache_worker_t *w, uint64_t hash, const char *key, size_t key_len)
{
    cache_slot_t *set = set_of(w, hash);
    for (int i = 0; i != CACHE_WAYS; ++i) {
        cache_slot_t *s = &set[i];
        if (s->hash == hash && s->key_len == key_len && intact(w, s) &&
            memcmp(at(w, s->pos), key, key_len) == 0)
            return s;
    }
    return NULL;
}

/* Where a new entry for `hash` goes: its own key's slot, else an empty or lapped way, else the
 * way that expires first (counted as an eviction when it was still current). */
static cache_slot_t *victim(cache_worker_t *w, uint64_t hash, const char *key, size_t key_len,
                            uint64_t now_ms)
{
    cache_slot_t *own = find(w, hash, key, key_len);
    if (own != NULL)
        return own;
    cache_slot_t *set = set_of(w, hash), *best = &set[0];
    for (int i = 0; i != CACHE_WAYS; ++i) {
        if (!intact(w, &set[i]))
            return &set[i];
        if (set[i].expires_ms < best->expires_ms)
            best = &set[i];
    }
    if (best->expires_ms > now_ms)
        atomic_fetch_add_explicit(&w->evicted, 1, memory_order_relaxed);
    return best;
}

/* A refresh point drawn uniformly in [filled + 2/3 ttl, filled + ttl) for an entry a refresh
 * filled, and in [filled + 1/6 ttl, filled + ttl) for one a miss filled: see the header
 * comment. */
static uint64_t refresh_point(cache_worker_t *w, uint64_t filled_ms, uint64_t ttl_ms, bool refresh)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    uint64_t earliest = refresh ? ttl_ms * 2 / 3 : ttl_ms / 6, span = ttl_ms - earliest;
    return filled_ms + earliest + (span > 0 ? w->rng % span : 0);
}

/* Appends the key and `body` and indexes them. An entry over an eighth of the arena is not
 * kept, so that one large list cannot flush everything else. O(key + body). */
static void store(cache_worker_t *w, const cache_fill_t *f, h2o_iovec_t body)
{
    size_t total = f->key_len + body.len;
    if (total > w->arena_size / 8 || body.len > UINT32_MAX)
        return;
    size_t off = (size_t)(w->head % w->arena_size);
    if (off + total > w->arena_size) { /* entries never wrap: skip the tail */
        w->head += w->arena_size - off;
        off = 0;
    }
    cache_slot_t *s = victim(w, f->hash, f->key, f->key_len, rt_now_ms());
    s->hash = 0; /* its bytes may be overwritten below */
    memcpy(w->arena + off, f->key, f->key_len);
    memcpy(w->arena + off + f->key_len, body.base, body.len);
    *s = (cache_slot_t){.hash = f->hash,
                        .pos = w->head,
                        .generation = f->generation,
                        .expires_ms = f->expires_ms,
                        .refresh_ms = refresh_point(w, f->filled_ms, f->cache->ttl_ms, f->refresh),
                        .key_len = f->key_len,
                        .body_len = (uint32_t)body.len};
    w->head += total;
    atomic_fetch_add_explicit(&w->fills, 1, memory_order_relaxed);
}

/* The hook of a miss: stores a 200 application/json answer unless its user changed meanwhile
 * (it would be stale at once, and would only push a current entry out). Never holds it back. */
static bool on_answer(h2o_req_t *req, net_http_answer_t *res, void *ctx)
{
    cache_fill_t *f = ctx;
    rt_worker_t *worker = rt_worker_current();
    cache_worker_t *w = worker != NULL ? worker_cache(f->cache, worker->id) : NULL;
    if (w == NULL)
        return true;
    if (res->status != 200 || res->truncated ||
        !h2o_memis(res->content_type.base, res->content_type.len, H2O_STRLIT(CONTENT_TYPE))) {
        /* a refresh that failed (the database down, say) is not tried again: the entry is
         * served until it expires, as without refreshes, so an outage costs one answer per
         * entry at most rather than one per REFRESH_RETRY_MS */
        cache_slot_t *s = f->refresh ? find(w, f->hash, f->key, f->key_len) : NULL;
        if (s != NULL)
            s->refresh_ms = s->expires_ms;
        return true;
    }
    uint64_t now = atomic_load_explicit(&f->cache->generations[f->gen_index], memory_order_acquire);
    if (now == f->generation)
        store(w, f, res->body);
    return true;
}

/* ---- the interface ---- */

api_cache_t *api_cache_create(uint64_t ttl_ms, size_t max_bytes)
{
    if (max_bytes == 0)
        max_bytes = API_CACHE_DEFAULT_BYTES;
    assert(max_bytes >= API_CACHE_MIN_BYTES && max_bytes <= API_CACHE_MAX_BYTES);
    api_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ttl_ms = ttl_ms;
    c->max_bytes = max_bytes;
    c->generations = calloc(API_CACHE_GENERATIONS, sizeof(*c->generations));
    if (c->generations == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void api_cache_free(api_cache_t *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i != RT_MAX_WORKERS; ++i) {
        cache_worker_t *w = atomic_load(&cache->workers[i]);
        if (w != NULL) {
            free(w->tokens);
            free(w->arena);
            free(w->slots);
            free(w);
        }
    }
    free(cache->generations);
    free(cache);
}

/* Answers a hit: the body is copied into the request's pool, since h2o may still be writing it
 * after a later fill has reused its arena bytes. */
static void answer_hit(cache_worker_t *w, const cache_slot_t *s, h2o_req_t *req)
{
    h2o_iovec_t body = h2o_strdup(&req->pool, at(w, s->pos) + s->key_len, s->body_len);
    atomic_fetch_add_explicit(&w->hits, 1, memory_order_relaxed);
    net_http_send_owned(req, 200, CONTENT_TYPE, body);
}

/* Hooks a GET's answer to be stored with the generation read now. */
static void watch(api_cache_t *cache, h2o_req_t *req, const char *key, size_t key_len,
                  uint64_t hash, uint32_t gi, uint64_t generation, bool refresh)
{
    cache_fill_t *f = h2o_mem_alloc_pool(&req->pool, sizeof(*f) + key_len);
    uint64_t now_ms = rt_now_ms();
    *f = (cache_fill_t){.cache = cache,
                        .hash = hash,
                        .generation = generation,
                        .filled_ms = now_ms,
                        .expires_ms = now_ms + cache->ttl_ms,
                        .gen_index = gi,
                        .key_len = (uint32_t)key_len,
                        .refresh = refresh};
    memcpy(f->key, key, key_len);
    net_http_hook_response(req, on_answer, f);
}

bool api_cache_serve(api_cache_t *cache, h2o_req_t *req, const char *user_id)
{
    rt_worker_t *worker = rt_worker_current();
    if (cache == NULL || cache->ttl_ms == 0 || worker == NULL)
        return false;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    if (!get && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return false;
    char key[API_CACHE_KEY_MAX];
    size_t key_len = make_key(key, user_id, req->path);
    cache_worker_t *w = worker_cache(cache, worker->id);
    if (key_len == 0 || w == NULL)
        return false;
    uint32_t gi = gen_index(user_id);
    /* read before the lookup and, on a miss, before the database: see the header comment */
    uint64_t generation = atomic_load_explicit(&cache->generations[gi], memory_order_acquire);
    uint64_t hash = key_hash(key, key_len);
    cache_slot_t *s = find(w, hash, key, key_len);
    uint64_t now_ms = rt_now_ms();
    if (s != NULL && s->generation == generation && now_ms < s->expires_ms) {
        if (!get || now_ms < s->refresh_ms) {
            answer_hit(w, s, req);
            return true;
        }
        /* this request refreshes the entry; the others keep being answered from it */
        s->refresh_ms = now_ms + REFRESH_RETRY_MS;
        atomic_fetch_add_explicit(&w->refreshes, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->misses, 1, memory_order_relaxed);
        watch(cache, req, key, key_len, hash, gi, generation, true);
        return false;
    }
    if (s != NULL) {
        s->hash = 0; /* never current again: free the way */
        atomic_fetch_add_explicit(&w->stale, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&w->misses, 1, memory_order_relaxed);
    if (get) /* a HEAD's answer has no body to keep */
        watch(cache, req, key, key_len, hash, gi, generation, false);
    return false;
}

void api_cache_bump(api_cache_t *cache, const char *user_id)
{
    if (cache == NULL || cache->ttl_ms == 0 || user_id == NULL)
        return;
    /* seq_cst: ordered after the caller's observation of the commit, before its answer */
    atomic_fetch_add(&cache->generations[gen_index(user_id)], 1);
    atomic_fetch_add_explicit(&cache->bumps, 1, memory_order_relaxed);
}

void api_cache_on_event(void *ctx, const char *user_id)
{
    api_cache_bump(ctx, user_id);
}

void api_cache_get_stats(const api_cache_t *cache, api_cache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (cache == NULL)
        return;
    api_cache_t *c = (api_cache_t *)cache; /* atomics are only read here */
    out->bumps = atomic_load_explicit(&c->bumps, memory_order_relaxed);
    for (size_t i = 0; i != RT_MAX_WORKERS; ++i) {
        cache_worker_t *w = atomic_load_explicit(&c->workers[i], memory_order_acquire);
        if (w == NULL)
            continue;
        out->hits += atomic_load_explicit(&w->hits, memory_order_relaxed);
        out->misses += atomic_load_explicit(&w->misses, memory_order_relaxed);
        out->fills += atomic_load_explicit(&w->fills, memory_order_relaxed);
        out->stale += atomic_load_explicit(&w->stale, memory_order_relaxed);
        out->evicted += atomic_load_explicit(&w->evicted, memory_order_relaxed);
        out->refreshes += atomic_load_explicit(&w->refreshes, memory_order_relaxed);
    }
}

/* ---- verified session tokens ---- */

/* The set of a token: its last bytes are the signature's, as good as random, so hashing them is
 * enough to spread tokens (a crafted collision can only evict, never match: see token_find). */
static token_slot_t *token_set(cache_worker_t *w, const char *token, size_t len)
{
    size_t tail = len < 16 ? len : 16;
    uint64_t h = fnv1a(FNV_BASIS, token + len - tail, tail, false);
    return &w->tokens[(h % TOKEN_SETS) * CACHE_WAYS];
}

/* The calling worker's cache for tokens of `len`, or NULL (none, or a token too long). */
static cache_worker_t *token_worker(api_cache_t *cache, size_t len)
{
    rt_worker_t *worker = rt_worker_current();
    if (cache == NULL || worker == NULL || len == 0 || len > API_CACHE_TOKEN_MAX)
        return NULL;
    return worker_cache(cache, worker->id);
}

bool api_cache_token_get(api_cache_t *cache, const char *token, size_t len, int64_t now_s,
                         void *value, size_t value_size)
{
    assert(value_size <= API_CACHE_TOKEN_VALUE_MAX);
    cache_worker_t *w = token_worker(cache, len);
    if (w == NULL)
        return false;
    token_slot_t *set = token_set(w, token, len);
    for (int i = 0; i != CACHE_WAYS; ++i) {
        token_slot_t *s = &set[i];
        /* the whole token, byte for byte: equal bytes verify equally, nothing less does */
        if (s->len == len && memcmp(s->token, token, len) == 0) {
            if (now_s < s->valid_from_s || now_s >= s->valid_until_s)
                return false;
            memcpy(value, s->value, value_size);
            return true;
        }
    }
    return false;
}

void api_cache_token_put(api_cache_t *cache, const char *token, size_t len, int64_t valid_from_s,
                         int64_t valid_until_s, const void *value, size_t value_size)
{
    assert(value_size <= API_CACHE_TOKEN_VALUE_MAX);
    cache_worker_t *w = token_worker(cache, len);
    if (w == NULL)
        return;
    token_slot_t *set = token_set(w, token, len), *s = NULL;
    for (int i = 0; i != CACHE_WAYS && s == NULL; ++i) /* the same token's way, or an empty one */
        if (set[i].len == 0 || (set[i].len == len && memcmp(set[i].token, token, len) == 0))
            s = &set[i];
    for (int i = 0; i != CACHE_WAYS && s == NULL; ++i) /* else the way expiring first */
        if (i + 1 == CACHE_WAYS || set[i].valid_until_s <= set[i + 1].valid_until_s)
            s = &set[i];
    s->len = (uint32_t)len;
    s->valid_from_s = valid_from_s;
    s->valid_until_s = valid_until_s;
    memcpy(s->token, token, len);
    memcpy(s->value, value, value_size);
}
