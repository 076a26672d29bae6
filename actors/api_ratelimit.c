/*
 * Rate limits: fixed windows (aligned to the epoch, so every process agrees on them) counted per
 * key in Redis, with a per-worker table in front.
 *
 * Why this shape: asking Redis on every request would put a network round trip in front of every
 * handler, GET /api/intents/:id included, and make Redis the API's throughput ceiling. So each
 * worker keeps, per key, an estimate of the window's shared count: what Redis last answered plus
 * what this worker admitted since. Far from the limit (the estimate plus a slack of an eighth of
 * the limit, at least 8 or the whole limit when smaller, stays below it) a request is admitted at
 * once and the worker pushes its admissions to Redis in the background (INCRBY, at most one push
 * in flight per key, so a hot key costs one round trip per RTT, not one per request), once a
 * batch of them is pending: an eighth of the slack shared out over the workers (at least 1, at
 * most API_RL_PUSH_BATCH_MAX), so small limits push every admission while large ones do not pay
 * a Redis command per request (pushing each one made Redis and the workers' replies cost about
 * a quarter of a core at 37k requests/s in the bench, on cores the requests needed; batches of at
 * most 64 still cost 1,240 commands/s at 38k requests/s, one per 31 requests, hence 1024). Close to
 * the limit, or before the worker has heard Redis in this window, the request waits for its own
 * INCRBY 1 and is admitted when the total is within the limit: exact where it matters, and small
 * limits are always exact. Once the estimate reaches the limit, refusals are local too (counts
 * only grow within a window), so a flood costs no Redis traffic. The error is bounded by the
 * slack: other workers and processes would have to admit more than the slack within one push's
 * round trip for the total to pass the limit; the batches one process's workers hold back hide
 * less than an eighth of it.
 *
 * Without Redis (not configured, or a command answered UNAVAILABLE: then for a second before
 * trying again), each worker admits its share of the limit, rounded up, so that a process admits
 * about the limit in all; a client whose connections all land on one worker meets the 429
 * earlier.
 *
 * The table is fixed at API_RL_SLOTS entries per worker (open addressing, API_RL_PROBES probes):
 * under more distinct keys than that per window, the entry with the fewest admissions among the
 * probed is reused, which forgets that key's local count (with Redis, it asks again).
 */
#include "actors/api_guard.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "net/http_async.h"
#include "runtime/log.h"

#define API_RL_SLOTS 4096 /* per worker, a power of two */
#define API_RL_PROBES 8
#define API_RL_PUSH_ROUNDS 64      /* pushes one background call makes before it ends */
#define API_RL_PUSH_BATCH_MAX 1024 /* admissions a worker may hold back from Redis per key */
#define API_RL_REDIS_RETRY_S 1

/* Sets a key's count within a window and makes it expire with the window. */
static const char script[] = "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) "
                             "if n == tonumber(ARGV[1]) then "
                             "redis.call('EXPIRE', KEYS[1], ARGV[2]) end return n";

typedef struct st_rl_entry_t {
    uint64_t window;     /* the window index counted (0: free) */
    uint32_t generation; /* bumped when the entry is reset, so late replies are dropped */
    uint32_t local;      /* admitted by this worker in the window */
    uint32_t shared;     /* estimate of the window's count across processes */
    uint32_t unsynced;   /* admitted here, not yet acknowledged by Redis (in flight included) */
    uint32_t inflight;   /* in the push now in flight (0: none) */
    bool synced;         /* Redis gave us the window's count */
    uint8_t kind;
    char key[API_RL_KEY_MAX];
} rl_entry_t;

typedef struct st_rl_table_t {
    time_t redis_down_until; /* a command found Redis unavailable: count alone until then */
    rl_entry_t entries[API_RL_SLOTS];
} rl_table_t;

struct st_api_rl_t {
    uint32_t limits[2], windows_s[2];
    uint64_t seed;
    _Atomic(store_redis_t *) *redis;              /* the API's: NULL once the stores close */
    _Atomic(rl_table_t *) tables[RT_MAX_WORKERS]; /* each created and used by its own worker */
};

/* A background push: `amount` admissions of one entry. */
typedef struct st_rl_push_t {
    api_rl_t *rl;
    uint32_t worker, slot, generation, amount, rounds, batch;
} rl_push_t;

api_rl_t *api__rl_create(const uint32_t limits[2], const uint32_t windows_s[2],
                         _Atomic(store_redis_t *) *redis)
{
    api_rl_t *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    memcpy(rl->limits, limits, sizeof(rl->limits));
    memcpy(rl->windows_s, windows_s, sizeof(rl->windows_s));
    rl->redis = redis;
    assert(windows_s[0] > 0 && windows_s[1] > 0);
    /* a secret seed: clients cannot pick keys that all probe the same slots */
    if (getrandom(&rl->seed, sizeof(rl->seed), 0) != sizeof(rl->seed))
        rl->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    return rl;
}

void api__rl_free(api_rl_t *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i != RT_MAX_WORKERS; ++i)
        free(atomic_load(&rl->tables[i]));
    free(rl);
}

bool api__rl_enabled(const api_rl_t *rl, api_rl_kind_t kind)
{
    return rl->limits[kind] != 0;
}

/* The calling worker's table, created on first use (by that worker only). */
static rl_table_t *worker_table(api_rl_t *rl, uint32_t *worker_id, int *num_workers)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && w->id < RT_MAX_WORKERS);
    *worker_id = w->id;
    *num_workers = w->rt->num_workers;
    rl_table_t *t = atomic_load_explicit(&rl->tables[w->id], memory_order_relaxed);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t != NULL)
            atomic_store_explicit(&rl->tables[w->id], t, memory_order_relaxed);
    }
    return t;
}

static uint64_t key_hash(uint64_t seed, api_rl_kind_t kind, const char *key)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull ^ (uint64_t)kind; /* FNV-1a, seeded */
    for (const char *p = key; *p != '\0'; ++p)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* True when `e` counts its key in the current window of its kind. */
static bool is_live(const api_rl_t *rl, const rl_entry_t *e, time_t now)
{
    return e->window != 0 && e->window == (uint64_t)now / rl->windows_s[e->kind] + 1;
}

/* The entry counting `key` in `window`: its own, else a free or stale one, else the one with the
 * fewest admissions among the probed (reset). O(API_RL_PROBES). */
static rl_entry_t *find_entry(api_rl_t *rl, rl_table_t *t, api_rl_kind_t kind, const char *key,
                              time_t now, uint64_t window, uint32_t *slot)
{
    uint64_t h = key_hash(rl->seed, kind, key);
    rl_entry_t *found = NULL, *victim = NULL;
    uint32_t victim_slot = 0;
    for (uint32_t i = 0; i != API_RL_PROBES && found == NULL; ++i) {
        uint32_t at = (uint32_t)(h + i) & (API_RL_SLOTS - 1);
        rl_entry_t *e = &t->entries[at];
        if (e->window != 0 && e->kind == kind && strcmp(e->key, key) == 0) {
            found = e;
            *slot = at;
        } else if (victim == NULL || (is_live(rl, victim, now) && !is_live(rl, e, now)) ||
                   (is_live(rl, e, now) && is_live(rl, victim, now) && e->local < victim->local)) {
            victim = e;
            victim_slot = at;
        }
    }
    if (found != NULL && found->window == window)
        return found;
    rl_entry_t *e = found != NULL ? found : victim; /* found: the key's previous window */
    if (found == NULL)
        *slot = victim_slot;
    uint32_t generation = e->generation + 1;
    memset(e, 0, sizeof(*e));
    e->generation = generation;
    e->window = window;
    e->kind = (uint8_t)kind;
    snprintf(e->key, sizeof(e->key), "%s", key);
    return e;
}

/* Each worker's share of `limit` when it counts alone. */
static uint32_t worker_share(uint32_t limit, int num_workers)
{
    return (limit + (uint32_t)num_workers - 1) / (uint32_t)num_workers;
}

static api_rl_verdict_t decide_alone(rl_entry_t *e, uint32_t limit, int num_workers)
{
    if (e->local >= worker_share(limit, num_workers))
        return API_RL_REFUSE;
    ++e->local;
    ++e->shared;
    return API_RL_ADMIT;
}

static void send_incr(api_rl_t *rl, store_redis_t *redis, rt_actor_t *self, uint64_t corr,
                      api_rl_kind_t kind, const char *key, uint64_t window, uint32_t amount)
{
    char redis_key[128], amount_str[16], ttl[16];
    uint32_t window_s = rl->windows_s[kind];
    int key_len =
        snprintf(redis_key, sizeof(redis_key), "intentd:rl:%c:%u:%llu:%s",
                 kind == API_RL_IP ? 'i' : 'u', window_s, (unsigned long long)window, key);
    snprintf(amount_str, sizeof(amount_str), "%u", amount);
    snprintf(ttl, sizeof(ttl), "%u", window_s + 1); /* outlives the window, never much longer */
    const char *argv[] = {"EVAL", script, "1", redis_key, amount_str, ttl};
    size_t lens[] = {4, sizeof(script) - 1, 1, (size_t)key_len, strlen(amount_str), strlen(ttl)};
    store_redis_command(redis, self, corr, 6, argv, lens);
}

/* A command failed: the worker counts alone for a while (a busy connection is no outage). Logged
 * at most once per API_RL_REDIS_RETRY_S per worker, since every request would otherwise log. */
static void redis_failed(rl_table_t *t, const store_redis_reply_t *r)
{
    if (r->status == STORE_REDIS_BUSY)
        return;
    if (r->status != STORE_REDIS_UNAVAILABLE)
        rt_log_warn("ratelimit", "Redis refused the count (%s): counting alone for %d s",
                    r->status == STORE_REDIS_ERROR ? r->text : "not an integer",
                    API_RL_REDIS_RETRY_S);
    t->redis_down_until = time(NULL) + API_RL_REDIS_RETRY_S;
}

/* The background push's continuation: folds Redis's total into the entry and pushes what was
 * admitted meanwhile, up to API_RL_PUSH_ROUNDS times. */
static void push_replied(net_http_async_t *call, rt_msg_t *msg)
{
    rl_push_t *p = net_http_async_state(call);
    if (msg->type != STORE_REDIS_MSG_REPLY)
        return;
    const store_redis_reply_t *r = rt_msg_payload(msg);
    rl_table_t *t = atomic_load_explicit(&p->rl->tables[p->worker], memory_order_relaxed);
    rl_entry_t *e = &t->entries[p->slot];
    if (e->generation != p->generation) { /* reset meanwhile: the answer is for a past window */
        net_http_async_end(call);
        return;
    }
    assert(e->unsynced >= p->amount);
    e->unsynced -= p->amount;
    e->inflight = 0;
    if (r->status != STORE_REDIS_OK || r->type != STORE_REDIS_INTEGER) {
        redis_failed(t, r);
        net_http_async_end(call);
        return;
    }
    uint64_t total = (uint64_t)(r->integer > 0 ? r->integer : 0) + e->unsynced;
    e->shared = total > e->shared ? (total > UINT32_MAX ? UINT32_MAX : (uint32_t)total) : e->shared;
    e->synced = true;
    if (e->unsynced < p->batch || ++p->rounds == API_RL_PUSH_ROUNDS) {
        net_http_async_end(call);
        return;
    }
    store_redis_t *redis = atomic_load_explicit(p->rl->redis, memory_order_acquire);
    if (redis == NULL) { /* closing */
        net_http_async_end(call);
        return;
    }
    p->amount = e->inflight = e->unsynced;
    send_incr(p->rl, redis, net_http_async_actor(call), 0, (api_rl_kind_t)e->kind, e->key,
              e->window, p->amount);
}

/* Admissions a worker holds back before pushing: an eighth of the slack over the workers. */
static uint32_t push_batch(uint32_t slack, int num_workers)
{
    uint32_t batch = slack / (8u * (uint32_t)num_workers);
    return batch < 1 ? 1 : batch > API_RL_PUSH_BATCH_MAX ? API_RL_PUSH_BATCH_MAX : batch;
}

static void start_push(api_rl_t *rl, store_redis_t *redis, h2o_req_t *req, uint32_t worker,
                       uint32_t slot, rl_entry_t *e, uint32_t batch)
{
    net_http_async_t *call = net_http_async_begin(req, push_replied, sizeof(rl_push_t));
    rl_push_t *p = net_http_async_state(call);
    *p = (rl_push_t){rl, worker, slot, e->generation, e->unsynced, 0, batch};
    e->inflight = e->unsynced;
    send_incr(rl, redis, net_http_async_actor(call), 0, (api_rl_kind_t)e->kind, e->key, e->window,
              p->amount);
}

api_rl_verdict_t api__rl_check(api_rl_t *rl, store_redis_t *redis, h2o_req_t *req,
                               api_rl_kind_t kind, const char *key, api_rl_ask_t *ask,
                               uint32_t *retry_after_s)
{
    uint32_t limit = rl->limits[kind], window_s = rl->windows_s[kind], worker, slot = 0;
    if (limit == 0)
        return API_RL_ADMIT;
    int num_workers;
    rl_table_t *t = worker_table(rl, &worker, &num_workers);
    if (t == NULL)
        return API_RL_ADMIT; /* out of memory: a limit is not worth refusing service */
    time_t now = time(NULL);
    uint64_t window = (uint64_t)now / window_s + 1; /* + 1: 0 marks a free entry */
    *retry_after_s = window_s - (uint32_t)((uint64_t)now % window_s);
    rl_entry_t *e = find_entry(rl, t, kind, key, now, window, &slot);
    if (redis == NULL || now < t->redis_down_until)
        return decide_alone(e, limit, num_workers);
    if (e->synced && e->shared >= limit)
        return API_RL_REFUSE;
    uint32_t least = limit < 8 ? limit : 8, slack = limit / 8 > least ? limit / 8 : least;
    if (!e->synced || (uint64_t)e->shared + slack >= limit) {
        *ask = (api_rl_ask_t){.kind = kind,
                              .slot = slot,
                              .generation = e->generation,
                              .window = window,
                              .retry_after_s = *retry_after_s};
        snprintf(ask->key, sizeof(ask->key), "%s", key);
        return API_RL_ASK;
    }
    ++e->local;
    ++e->shared;
    ++e->unsynced;
    uint32_t batch = push_batch(slack, num_workers);
    if (e->inflight == 0 && e->unsynced >= batch)
        start_push(rl, redis, req, worker, slot, e, batch);
    return API_RL_ADMIT;
}

void api__rl_ask_send(api_rl_t *rl, store_redis_t *redis, rt_actor_t *self, const api_rl_ask_t *ask)
{
    send_incr(rl, redis, self, 0, ask->kind, ask->key, ask->window, 1);
}

api_rl_verdict_t api__rl_ask_answer(api_rl_t *rl, const api_rl_ask_t *ask,
                                    const store_redis_reply_t *reply)
{
    uint32_t worker;
    int num_workers;
    rl_table_t *t = worker_table(rl, &worker, &num_workers);
    assert(t != NULL); /* the ask came from an entry of this worker's table */
    rl_entry_t *e = &t->entries[ask->slot];
    bool same = e->generation == ask->generation;
    if (reply->status != STORE_REDIS_OK || reply->type != STORE_REDIS_INTEGER) {
        redis_failed(t, reply);
        return same ? decide_alone(e, rl->limits[ask->kind], num_workers) : API_RL_ADMIT;
    }
    uint64_t total = (uint64_t)(reply->integer > 0 ? reply->integer : 0);
    bool admit = total <= rl->limits[ask->kind];
    if (same) {
        uint64_t estimate = total + e->unsynced - e->inflight; /* ours not yet in Redis */
        if (estimate > e->shared)
            e->shared = estimate > UINT32_MAX ? UINT32_MAX : (uint32_t)estimate;
        e->synced = true;
        e->local += admit;
    }
    return admit ? API_RL_ADMIT : API_RL_REFUSE;
}
