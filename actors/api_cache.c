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
 *   answer a miss produces lands in the cache the next request on that worker looks at. A
 *   worker that stores an answer it read hands a copy to the other workers (share/take_shared:
 *   a lock-free list per worker, taken in at its next lookup, on the same terms as its own
 *   reads), so one database read serves every worker's copy.
 * - An entry is (key = user id + raw path with its query, body, the body's gzip coding when it
 *   is worth keeping (gzip_coding), generation, epoch, fill time). Bodies and keys live in a
 *   per-worker ring arena written like a log: each entry is appended at the head, and an entry
 *   is intact while the head has not lapped its first byte (head - pos <= size), so old entries
 *   fall off the end in insertion order with no free lists and no per-entry allocation. The
 *   index is an 8-way set-associative table of fixed size (an eighth of the budget; 2 ways lost
 *   ~0.5 % of the bench's 1,600 entries per worker to collisions, each then missing over and
 *   over); a collision evicts the way filled first. Both are sized from API_CACHE_MAX_BYTES at
 *   the worker's first use, so memory is bounded per worker. A hit is sent from the arena
 *   itself, not a copy: each of the arena's ARENA_SEGMENTS segments counts the answers still
 *   being sent from it, and an append skips a segment whose count is not 0 (make_room).
 * - Invalidation: a fixed array of per-user generation counters shared by all workers, indexed
 *   by a hash of the user id (two users on one counter only cost each other extra misses). An
 *   entry is served only while its stored generation equals its user's counter now and it has
 *   not expired. The generation is read BEFORE the database is read and stored with the answer,
 *   so a change that commits while the read runs (and bumps after its commit) makes that answer
 *   stale at once: a slow read can never put an old answer in the cache as current.
 * - Bumps: the API's intent-changing handlers bump right after the database confirms and before
 *   their answer leaves (so the client's next GET, on any worker, misses); every event of a user
 *   (the engine's, local or from another process through Redis) bumps through the events hook.
 * - Lifetime: the TTL only bounds staleness when a bump is LOST: another process's event while
 *   Redis is down, a dropped event, a change made behind the server's back. While this process
 *   surely receives the other processes' events (events.c proves its Redis subscription with a
 *   probe and calls api_cache_on_subscription), an event bumps at once and a short TTL buys
 *   little but database reads (the bench: ~1,600 entries per worker re-read ~1,100 times a
 *   second with 2 s, ~0.2 core of intentd's replays and PostgreSQL on the requests' cores). So
 *   there are two: API_CACHE_TTL_SUBSCRIBED_MS (default 15 s) while subscribed,
 *   API_CACHE_TTL_MS (2 s) otherwise (no Redis, or its subscription down). The state is a
 *   shared epoch, odd while subscribed, +1 at each change, read with the user's generation
 *   before the database and stored with the entry. Coming up, every entry goes stale at once
 *   (the events of the gap were lost): while subscribed, an entry needs the current epoch, like
 *   the current generation. Going down, an entry is served until its fill + the short TTL,
 *   whichever TTL it was filled under: the TTL is the one in force at the lookup, never one
 *   stored with the entry; so nothing outlives the short TTL from the moment the relay sees it
 *   down. Why 15 s: it cuts the re-reads ~7.5x (~150/s, ~0.03 core), and 30 s would only save
 *   ~0.015 core more while doubling how long a lost bump can go unseen. The refresh points are
 *   fractions of the TTL in force (refresh_frac), so they follow a change of TTL: going down,
 *   an entry is refreshed in [1/6 or 2/3, 7/8) of the short TTL from its fill, not left to
 *   expire at the long one's pace.
 * - What bounds a lost bump while subscribed: the long TTL, and only it. That covers a change
 *   behind the server's back, an event a hub queue dropped, a drop of the subscription that
 *   events.c never saw (see there), and the publish side: an event whose PUBLISH failed here
 *   (this process's connections down or backlogged, Redis up for the others) never reaches
 *   the other processes, whose subscriptions stay up. Considered for that last one: republish
 *   a "resync everything" when this process's Redis comes back (every other process then
 *   misses on every entry at once, for what is a partial Redis failure), or keep the failed
 *   users and republish per user (a queue to bound, and old processes would take it for an
 *   event). Both guard a case rarer than a change made in SQL, which the long TTL must bound
 *   anyway; a whole-Redis outage is already covered (every subscription goes down: short TTL,
 *   then a new epoch when it is back).
 * - Refresh ahead, in the background, spread out: an entry filled at t is served until t + TTL,
 *   but the first request that finds it past a refresh point drawn at random in
 *   [t + 2/3 TTL, t + 7/8 TTL) is answered from it and starts a copy of itself
 *   (net_http_replay) that goes to the database (with the generation read first) while every
 *   request is still answered from the entry; the copy's answer replaces it, on every worker.
 *   One refresh per entry at a time across the workers: the refresh point moves on by
 *   REFRESH_RETRY_MS on the worker that reaches it, in case the answer never comes, and a
 *   shared claim per key hash (claim_refresh) keeps the other workers from reading it too;
 *   every worker's copy carries the same refresh point. A refresh answered with an error is not
 *   tried again. Why in the background: the request that refreshed used to wait for
 *   PostgreSQL, and with 1,800 entries per worker (the standard bench) that was ~5 % of all
 *   requests at 37k/s, most of them slower than 1 ms (counted by cause in a private build):
 *   the p99. Why up to 7/8 TTL: the entry must still be current when a request next comes by
 *   and when the copy answers (an entry past its expiry is a miss that waits), and a later
 *   point means fewer database reads (one per entry per ~3/4 TTL). Why spread out: with one
 *   expiry at t + TTL, the
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
 *   refresh point over [t + TTL/6, t + 7/8 TTL), about one round, and the refreshes are even
 *   from the first round on; this costs at most one early database read per miss. The
 *   staleness bound is unchanged (a hit still needs the current generation, and epoch while
 *   subscribed, and t + the TTL in force, t being when the generation was read before the
 *   database, on whichever worker read it).
 * - Only 200 application/json answers of GET are stored, captured with the per-request answer
 *   hook of net/http_util.h, byte for byte; a hit answers them with net_http_send_owned like
 *   net_json_send does, and the router adds the security, request id and CORS headers to both
 *   alike. A client whose Accept-Encoding takes gzip gets the gzip coding of a hit, with
 *   Content-Encoding: gzip; a miss's answer goes out as it was made. Authentication, rate limits
 *   and ownership run before every lookup, and the key holds the token's subject, so an entry is
 *   only ever served to its own user.
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
#include <zlib.h>
#include "net/http_server.h"
#include "net/http_util.h"
#include "runtime/worker.h"

#define CACHE_WAYS 8 /* 2 ways lost ~0.5 % of a 1,600-entry working set to collisions */
/* the arena's segments, each with a count of the hits still sending from it (see answer_hit) */
#define ARENA_SEGMENTS 64
#define CONTENT_TYPE "application/json"
/* a refresh whose answer has not come back this long is tried again by another request */
#define REFRESH_RETRY_MS 100
#define REFRESH_ONE 65536u /* refresh points are fractions of the TTL in force, in these */
/* Bodies from this size on are also kept gzip-coded, for clients that accept it (see
 * gzip_coding): below it the header and the coding cost more than the bytes saved. */
#define GZIP_MIN_BYTES 1024

/* One index entry; hash 0 means empty. The key's bytes, then the body's, then the body's gzip
 * coding when there is one, are at arena position `pos` (absolute: bytes ever appended, so that
 * "lapped" is a subtraction). */
typedef struct st_cache_slot_t {
    uint64_t hash;
    uint64_t pos;
    uint64_t generation;   /* the user's counter when the database was read */
    uint64_t filled_ms;    /* when that counter was read (rt_now_ms() clock) */
    uint64_t retry_ms;     /* no refresh starts before then: one is under way, or failed */
    uint32_t epoch;        /* the subscription epoch when the counter was read */
    uint32_t refresh_frac; /* the refresh point, in REFRESH_ONE-ths of the TTL in force */
    uint32_t key_len, body_len;
    uint32_t gz_len; /* 0: kept in the identity coding only */
} cache_slot_t;

/* A verified token and what the caller derived from it; len 0 means empty. */
typedef struct st_token_slot_t {
    uint64_t hash; /* token_hash: compared before the bytes */
    int64_t valid_from_s, valid_until_s;
    uint32_t len;
    uint8_t value[API_CACHE_TOKEN_VALUE_MAX];
    char token[API_CACHE_TOKEN_MAX];
} token_slot_t;

/* 64 sets x 8 ways: ~370 KiB per worker, touched as used (256 x 2 lost ~8 % of 200 users' tokens
 * to collisions, each then verified again on every request) */
#define TOKEN_SETS 64
#define TOKEN_WAYS 8

/* A worker's cache: written only on that worker's thread; counters read by anyone. */
typedef struct st_cache_worker_t {
    token_slot_t *tokens; /* TOKEN_SETS * TOKEN_WAYS */
    char *arena;
    size_t arena_size;   /* ARENA_SEGMENTS * segment_size */
    size_t segment_size; /* bytes */
    uint64_t head;       /* absolute position of the next append */
    /* per segment: answers sent from its bytes that h2o may still be writing (answer_hit); an
     * append never overwrites a segment while its count is not 0 */
    uint32_t pins[ARENA_SEGMENTS];
    cache_slot_t *slots;
    size_t set_mask;   /* sets - 1 (a set is CACHE_WAYS slots) */
    uint64_t rng;      /* xorshift64 state for the refresh points (not a secret) */
    z_stream deflater; /* reset for each body compressed (an init allocates ~270 KiB) */
    bool deflater_ready;
    char *gz_buf; /* gzip_coding's output, grown as needed */
    size_t gz_cap;
    _Atomic(struct st_cache_share_t *) inbox; /* answers other workers read (see share) */
    _Atomic size_t inbox_bytes;
    _Atomic uint64_t hits, misses, fills, stale, evicted, refreshes, shared;
} cache_worker_t;

struct st_api_cache_t {
    uint64_t ttl_ms;            /* while the subscription is down (even epoch) */
    uint64_t ttl_subscribed_ms; /* while it is up (odd epoch); >= ttl_ms */
    /* the subscription epoch: odd while this process surely receives the other processes'
     * events, even otherwise; +1 at each change (api_cache_on_subscription) */
    _Atomic uint32_t epoch;
    size_t max_bytes;
    _Atomic uint64_t *generations; /* API_CACHE_GENERATIONS, shared by every worker */
    _Atomic uint64_t *claims; /* API_CACHE_GENERATIONS, by key hash: a refresh under way until */
    _Atomic uint64_t bumps;
    _Atomic(cache_worker_t *) workers[RT_MAX_WORKERS]; /* each set once, by its own worker */
};

/* What a miss hands to its answer's hook, in the request's pool. */
typedef struct st_cache_fill_t {
    api_cache_t *cache;
    uint64_t hash, generation, filled_ms;
    uint32_t epoch, gen_index, key_len;
    bool refresh; /* of a current entry, ahead of its expiry */
    char key[];
} cache_fill_t;

/* An answer one worker read, handed to another (see share); key, body and its gzip coding in
 * `data`. */
typedef struct st_cache_share_t {
    struct st_cache_share_t *next;
    uint64_t hash, generation, filled_ms;
    uint32_t epoch, refresh_frac, gen_index, key_len, body_len, gz_len;
    char data[];
} cache_share_t;

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

/* Adds 1 to a counter that only its worker writes (anyone may read it): a load and a store,
 * not a locked read-modify-write, on the hit path. */
static void count_own(_Atomic uint64_t *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
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

/* Eight bytes a step, then a full mix (MurmurHash3's finaliser): both the set (low bits) and
 * the refresh claim (high bits) come from it. FNV-1a's byte a step cost ~3 % of a hit's
 * userland time on a ~90-byte key. Not a secret, like FNV: a collision costs no more than the
 * key comparison every hit makes anyway. O(len). */
static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = FNV_BASIS ^ len, v;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&v, key + i, 8);
        h = (h ^ v) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    v = 0;
    memcpy(&v, key + i, len - i);
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
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
    w->segment_size = (max_bytes - sets * CACHE_WAYS * sizeof(cache_slot_t)) / ARENA_SEGMENTS;
    w->arena_size = w->segment_size * ARENA_SEGMENTS;
    w->arena = malloc(w->arena_size); /* untouched pages cost no memory until used */
    w->tokens = calloc(TOKEN_SETS * TOKEN_WAYS, sizeof(token_slot_t));
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

/* The TTL in force in subscription epoch `epoch` (odd: subscribed). */
static uint64_t ttl_of(const api_cache_t *cache, uint32_t epoch)
{
    return (epoch & 1) != 0 ? cache->ttl_subscribed_ms : cache->ttl_ms;
}

/* True when an answer read at `filled_ms` with the user's counter at `generation` and the
 * subscription epoch at `epoch` may still be served, the counter being `gen_now` and the epoch
 * `epoch_now` now (see the header comment): always the same counter; while subscribed, the
 * same epoch (what came before the subscription came up missed the events of the gap) and the
 * long TTL; otherwise any epoch and the short TTL from its fill, whichever TTL it was filled
 * under. */
static bool current(const api_cache_t *cache, uint64_t generation, uint32_t epoch,
                    uint64_t filled_ms, uint64_t gen_now, uint32_t epoch_now, uint64_t now_ms)
{
    return generation == gen_now && ((epoch_now & 1) == 0 || epoch == epoch_now) &&
           now_ms < filled_ms + ttl_of(cache, epoch_now);
}

/* Where a new entry for `hash` goes: its own key's slot, else an empty or lapped way, else the
 * way filled first, hence expiring first (counted as an eviction when still in its TTL). */
static cache_slot_t *victim(cache_worker_t *w, uint64_t hash, const char *key, size_t key_len,
                            uint64_t now_ms, uint64_t ttl_ms)
{
    cache_slot_t *own = find(w, hash, key, key_len);
    if (own != NULL)
        return own;
    cache_slot_t *set = set_of(w, hash), *best = &set[0];
    for (int i = 0; i != CACHE_WAYS; ++i) {
        if (!intact(w, &set[i]))
            return &set[i];
        if (set[i].filled_ms < best->filled_ms)
            best = &set[i];
    }
    if (best->filled_ms + ttl_ms > now_ms)
        count_own(&w->evicted);
    return best;
}

/* A refresh point, as a fraction of the TTL in force (REFRESH_ONE: all of it), drawn uniformly
 * in [2/3, 7/8) for an entry a refresh filled, and in [1/6, 7/8) for one a miss filled: see the
 * header comment. */
static uint32_t refresh_frac(cache_worker_t *w, bool refresh)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    uint32_t earliest = refresh ? REFRESH_ONE * 2 / 3 : REFRESH_ONE / 6,
             span = REFRESH_ONE * 7 / 8 - earliest;
    return earliest + (uint32_t)(w->rng % span);
}

/* When the entry's refresh point is, under a TTL of `ttl_ms`. */
static uint64_t refresh_at(const cache_slot_t *s, uint64_t ttl_ms)
{
    return s->filled_ms + ttl_ms * s->refresh_frac / REFRESH_ONE;
}

/* Where in the arena `total` bytes go next: at the head, unless that would wrap (entries never
 * do: the tail is skipped) or overwrite a segment that an answer is still being sent from (a
 * pinned one, see answer_hit: the head moves past it, which ends its entries as a lap would).
 * False when every place within one lap is pinned. O(ARENA_SEGMENTS). */
static bool make_room(cache_worker_t *w, size_t total, size_t *off_out)
{
    for (int tries = 0; tries <= ARENA_SEGMENTS; ++tries) {
        size_t off = (size_t)(w->head % w->arena_size);
        if (off + total > w->arena_size) {
            w->head += w->arena_size - off;
            off = 0;
        }
        size_t first = off / w->segment_size, last = (off + total - 1) / w->segment_size;
        size_t busy = SIZE_MAX;
        for (size_t i = first; i <= last; ++i)
            if (w->pins[i] != 0)
                busy = i;
        if (busy == SIZE_MAX) {
            *off_out = off;
            return true;
        }
        w->head += (busy + 1) * w->segment_size - off; /* each try moves on a segment or more */
    }
    return false;
}

/* Appends the key, `body` and its gzip coding `gz` ({NULL, 0}: none) of an answer read with `f`
 * and indexes them. An entry over an eighth of the arena is not kept, so that one large list
 * cannot flush everything else. O(key + body). */
static bool store(api_cache_t *cache, cache_worker_t *w, const cache_fill_t *f, const char *key,
                  h2o_iovec_t body, h2o_iovec_t gz, uint32_t frac)
{
    size_t total = f->key_len + body.len + gz.len, off;
    if (total > w->arena_size / 8 || body.len > UINT32_MAX || !make_room(w, total, &off))
        return false;
    uint32_t epoch = atomic_load_explicit(&cache->epoch, memory_order_relaxed);
    cache_slot_t *s = victim(w, f->hash, key, f->key_len, rt_now_ms(), ttl_of(cache, epoch));
    s->hash = 0; /* its bytes may be overwritten below */
    memcpy(w->arena + off, key, f->key_len);
    memcpy(w->arena + off + f->key_len, body.base, body.len);
    if (gz.len != 0)
        memcpy(w->arena + off + f->key_len + body.len, gz.base, gz.len);
    *s = (cache_slot_t){.hash = f->hash,
                        .pos = w->head,
                        .generation = f->generation,
                        .filled_ms = f->filled_ms,
                        .epoch = f->epoch,
                        .refresh_frac = frac,
                        .key_len = f->key_len,
                        .body_len = (uint32_t)body.len,
                        .gz_len = (uint32_t)gz.len};
    w->head += total;
    count_own(&w->fills);
    return true;
}

/* Hands a copy of an answer this worker just stored to every other worker's inbox, so that
 * each worker does not read the database for the same entry (a refresh round, or a warm-up,
 * cost one read per worker per entry). Each takes it in at its next lookup (take_shared) on
 * the same terms as its own reads: the generation read before the database and the expiry
 * counted from then. An inbox holds at most an eighth of the budget; past that, the other
 * worker reads for itself. Lock-free (a push onto a list); O(workers x body). */
static void share(api_cache_t *cache, uint16_t self, const cache_fill_t *f, h2o_iovec_t body,
                  h2o_iovec_t gz, uint32_t frac)
{
    size_t size = sizeof(cache_share_t) + f->key_len + body.len + gz.len;
    for (uint16_t i = 0; i != RT_MAX_WORKERS; ++i) {
        cache_worker_t *o = atomic_load_explicit(&cache->workers[i], memory_order_acquire);
        if (o == NULL || i == self ||
            atomic_load_explicit(&o->inbox_bytes, memory_order_relaxed) + size >
                cache->max_bytes / 8)
            continue;
        cache_share_t *c = malloc(size);
        if (c == NULL)
            return;
        *c = (cache_share_t){.hash = f->hash,
                             .generation = f->generation,
                             .filled_ms = f->filled_ms,
                             .epoch = f->epoch,
                             .refresh_frac = frac,
                             .gen_index = f->gen_index,
                             .key_len = f->key_len,
                             .body_len = (uint32_t)body.len,
                             .gz_len = (uint32_t)gz.len};
        memcpy(c->data, f->key, f->key_len);
        memcpy(c->data + f->key_len, body.base, body.len);
        if (gz.len != 0)
            memcpy(c->data + f->key_len + body.len, gz.base, gz.len);
        atomic_fetch_add_explicit(&o->inbox_bytes, size, memory_order_relaxed);
        c->next = atomic_load_explicit(&o->inbox, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&o->inbox, &c->next, c, memory_order_release,
                                                      memory_order_relaxed))
            ;
    }
}

/* Stores the answers other workers handed over, each unless its user changed since it was read
 * or this worker holds one read as late or later. O(answers taken x body). */
static void take_shared(api_cache_t *cache, cache_worker_t *w)
{
    if (atomic_load_explicit(&w->inbox, memory_order_relaxed) == NULL)
        return;
    cache_share_t *c = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    while (c != NULL) {
        cache_share_t *next = c->next;
        size_t size = sizeof(*c) + c->key_len + c->body_len + c->gz_len;
        cache_slot_t *own = find(w, c->hash, c->data, c->key_len);
        uint64_t now =
            atomic_load_explicit(&cache->generations[c->gen_index], memory_order_acquire);
        uint32_t epoch = atomic_load_explicit(&cache->epoch, memory_order_acquire);
        if (current(cache, c->generation, c->epoch, c->filled_ms, now, epoch, rt_now_ms()) &&
            (own == NULL || own->generation != c->generation || own->epoch != c->epoch ||
             own->filled_ms < c->filled_ms)) {
            cache_fill_t f = {.hash = c->hash,
                              .generation = c->generation,
                              .filled_ms = c->filled_ms,
                              .epoch = c->epoch,
                              .key_len = c->key_len};
            const char *body = c->data + c->key_len;
            if (store(cache, w, &f, c->data, h2o_iovec_init(body, c->body_len),
                      h2o_iovec_init(body + c->body_len, c->gz_len), c->refresh_frac))
                count_own(&w->shared);
        }
        atomic_fetch_sub_explicit(&w->inbox_bytes, size, memory_order_relaxed);
        free(c);
        c = next;
    }
}

/* The gzip coding of `body`, in the worker's buffer until its next call; {NULL, 0} when the body
 * is under GZIP_MIN_BYTES, the coding saves less than an eighth, or zlib fails (the entry is
 * then kept in the identity coding only). Why: an intent list is ~14 KB of JSON whose EIP-712
 * payloads repeat the same type descriptions, and gzip takes it to ~1.9 KB; browsers ask for
 * gzip on every request, and every byte of an answer is copied by the kernel on both sides of
 * the connection. Compressed once per fill and served from the arena on every hit, like the
 * body. No BREACH exposure: these bodies carry no secret that an attacker's text could be
 * compressed against (the token travels in a header, never in a body). O(body). */
static h2o_iovec_t gzip_coding(cache_worker_t *w, h2o_iovec_t body)
{
    h2o_iovec_t none = h2o_iovec_init(NULL, 0);
    if (body.len < GZIP_MIN_BYTES)
        return none;
    if (!w->deflater_ready) { /* zalloc, zfree and opaque are NULL (calloc): zlib's allocator */
        if (deflateInit2(&w->deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16 /* gzip */, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return none;
        w->deflater_ready = true;
    } else if (deflateReset(&w->deflater) != Z_OK) {
        return none;
    }
    size_t bound = deflateBound(&w->deflater, (uLong)body.len);
    if (bound > w->gz_cap) {
        char *grown = realloc(w->gz_buf, bound);
        if (grown == NULL)
            return none;
        w->gz_buf = grown;
        w->gz_cap = bound;
    }
    w->deflater.next_in = (Bytef *)body.base;
    w->deflater.avail_in = (uInt)body.len;
    w->deflater.next_out = (Bytef *)w->gz_buf;
    w->deflater.avail_out = (uInt)bound;
    if (deflate(&w->deflater, Z_FINISH) != Z_STREAM_END)
        return none;
    size_t len = bound - w->deflater.avail_out;
    return len <= body.len - body.len / 8 ? h2o_iovec_init(w->gz_buf, len) : none;
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
            s->retry_ms = UINT64_MAX;
        return true;
    }
    api_cache_t *cache = f->cache;
    uint64_t now = atomic_load_explicit(&cache->generations[f->gen_index], memory_order_acquire);
    uint32_t epoch = atomic_load_explicit(&cache->epoch, memory_order_acquire);
    /* every worker's copy gets the same refresh point: the first to pass it refreshes all */
    uint32_t frac = refresh_frac(w, f->refresh);
    if (!current(cache, f->generation, f->epoch, f->filled_ms, now, epoch, rt_now_ms()))
        return true;
    h2o_iovec_t gz = gzip_coding(w, res->body);
    if (store(cache, w, f, f->key, res->body, gz, frac))
        share(cache, worker->id, f, res->body, gz, frac);
    return true;
}

/* ---- the interface ---- */

api_cache_t *api_cache_create(uint64_t ttl_ms, uint64_t ttl_subscribed_ms, size_t max_bytes)
{
    if (max_bytes == 0)
        max_bytes = API_CACHE_DEFAULT_BYTES;
    assert(max_bytes >= API_CACHE_MIN_BYTES && max_bytes <= API_CACHE_MAX_BYTES);
    api_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ttl_ms = ttl_ms;
    c->ttl_subscribed_ms = ttl_subscribed_ms > ttl_ms ? ttl_subscribed_ms : ttl_ms;
    c->max_bytes = max_bytes;
    c->generations = calloc(API_CACHE_GENERATIONS, sizeof(*c->generations));
    c->claims = calloc(API_CACHE_GENERATIONS, sizeof(*c->claims));
    if (c->generations == NULL || c->claims == NULL) {
        free(c->generations);
        free(c->claims);
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
            for (cache_share_t *c = atomic_load(&w->inbox), *next; c != NULL; c = next) {
                next = c->next;
                free(c);
            }
            if (w->deflater_ready)
                deflateEnd(&w->deflater);
            free(w->gz_buf);
            free(w->tokens);
            free(w->arena);
            free(w->slots);
            free(w);
        }
    }
    free(cache->generations);
    free(cache->claims);
    free(cache);
}

/* True when no worker is refreshing an entry of `hash` (it would hand its answer over): this
 * one then is, for REFRESH_RETRY_MS. Keys that share a claim only delay each other's refresh. */
static bool claim_refresh(api_cache_t *cache, uint64_t hash, uint64_t now_ms)
{
    _Atomic uint64_t *claim = &cache->claims[(hash >> 32) & (API_CACHE_GENERATIONS - 1)];
    uint64_t until = atomic_load_explicit(claim, memory_order_relaxed);
    return until <= now_ms &&
           atomic_compare_exchange_strong_explicit(claim, &until, now_ms + REFRESH_RETRY_MS,
                                                   memory_order_relaxed, memory_order_relaxed);
}

/* The segments of an entry that a hit's answer is sent from, until its request is over. */
typedef struct st_cache_pin_t {
    cache_worker_t *w;
    uint32_t first, last;
} cache_pin_t;

/* The request's pool is released (the answer is written or the client gone): on the worker's
 * own thread, like every use of `pins`. */
static void unpin(void *p)
{
    cache_pin_t *pin = p;
    for (uint32_t i = pin->first; i <= pin->last; ++i)
        --pin->w->pins[i];
}

/* Answers a hit straight from the arena, without a copy (a list's body was a malloc, a 12 KB
 * copy and a free per hit, ~7 % of the bench's CPU): h2o may still be writing those bytes after
 * this returns (a client that reads slowly), so their segments are pinned until the request is
 * over and appends skip them (make_room). The gzip coding when the entry has one and the client
 * accepts it (`gzip`), else the body. */
static void answer_hit(cache_worker_t *w, const cache_slot_t *s, h2o_req_t *req, bool gzip)
{
    size_t off = (size_t)(s->pos % w->arena_size), total = s->key_len + s->body_len + s->gz_len;
    cache_pin_t *pin = h2o_mem_alloc_shared(&req->pool, sizeof(*pin), unpin);
    *pin = (cache_pin_t){w, (uint32_t)(off / w->segment_size),
                         (uint32_t)((off + total - 1) / w->segment_size)};
    for (uint32_t i = pin->first; i <= pin->last; ++i)
        ++w->pins[i];
    count_own(&w->hits);
    h2o_iovec_t out = h2o_iovec_init(w->arena + off + s->key_len, s->body_len);
    if (gzip && s->gz_len != 0) {
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING,
                       H2O_STRLIT("gzip"), 1);
        out = h2o_iovec_init(out.base + s->body_len, s->gz_len);
    }
    net_http_send_owned(req, 200, CONTENT_TYPE, out);
}

/* Hooks a GET's answer to be stored with the generation read now. */
static void watch(api_cache_t *cache, h2o_req_t *req, const char *key, size_t key_len,
                  uint64_t hash, uint32_t gi, uint64_t generation, uint32_t epoch, bool refresh)
{
    cache_fill_t *f = h2o_mem_alloc_pool(&req->pool, sizeof(*f) + key_len);
    *f = (cache_fill_t){.cache = cache,
                        .hash = hash,
                        .generation = generation,
                        .filled_ms = rt_now_ms(),
                        .epoch = epoch,
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
    /* on every answer of a cached resource, hit or not, since a hit may be gzip-coded */
    net_http_add_vary(req, H2O_STRLIT("Accept-Encoding"));
    char key[API_CACHE_KEY_MAX];
    size_t key_len = make_key(key, user_id, req->path);
    cache_worker_t *w = worker_cache(cache, worker->id);
    if (key_len == 0 || w == NULL)
        return false;
    take_shared(cache, w);
    uint32_t gi = gen_index(user_id);
    /* read before the lookup and, on a miss, before the database: see the header comment */
    uint32_t epoch = atomic_load_explicit(&cache->epoch, memory_order_acquire);
    uint64_t generation = atomic_load_explicit(&cache->generations[gi], memory_order_acquire);
    uint64_t hash = key_hash(key, key_len);
    if (get && net_http_is_replay(req)) { /* the background refresh started below: the database */
        count_own(&w->refreshes);
        count_own(&w->misses);
        watch(cache, req, key, key_len, hash, gi, generation, epoch, true);
        return false;
    }
    cache_slot_t *s = find(w, hash, key, key_len);
    uint64_t now_ms = rt_now_ms();
    if (s != NULL &&
        current(cache, s->generation, s->epoch, s->filled_ms, generation, epoch, now_ms)) {
        /* past its refresh point, the entry is renewed by a copy of this request run in the
         * background, while this one and the others are still answered from it */
        if (get && now_ms >= s->retry_ms && now_ms >= refresh_at(s, ttl_of(cache, epoch))) {
            s->retry_ms = now_ms + REFRESH_RETRY_MS;
            if (claim_refresh(cache, hash, now_ms))
                net_http_replay(req); /* false (too many at once): tried again after the delay */
        }
        answer_hit(w, s, req, net_http_accepts_gzip(req));
        return true;
    }
    if (s != NULL) {
        s->hash = 0; /* never current again: free the way */
        count_own(&w->stale);
    }
    count_own(&w->misses);
    if (get) /* a HEAD's answer has no body to keep */
        watch(cache, req, key, key_len, hash, gi, generation, epoch, false);
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

void api_cache_on_subscription(void *ctx, bool up)
{
    api_cache_t *cache = ctx;
    if (cache == NULL)
        return;
    /* seq_cst, like a bump: a lookup after this sees the new epoch */
    uint32_t epoch = atomic_load(&cache->epoch);
    while (((epoch & 1) != 0) != up &&
           !atomic_compare_exchange_weak(&cache->epoch, &epoch, epoch + 1))
        ;
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
        out->shared += atomic_load_explicit(&w->shared, memory_order_relaxed);
    }
}

/* ---- verified session tokens ---- */

/* A token's hash: its last bytes are the signature's, as good as random, so hashing them is
 * enough to spread tokens (a crafted collision can only evict, never match: the bytes are
 * compared too). */
static uint64_t token_hash(const char *token, size_t len)
{
    size_t tail = len < 16 ? len : 16;
    return fnv1a(FNV_BASIS, token + len - tail, tail, false);
}

static token_slot_t *token_set(cache_worker_t *w, uint64_t hash)
{
    return &w->tokens[(hash % TOKEN_SETS) * TOKEN_WAYS];
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
    uint64_t hash = token_hash(token, len);
    token_slot_t *set = token_set(w, hash);
    for (int i = 0; i != TOKEN_WAYS; ++i) {
        token_slot_t *s = &set[i];
        /* the whole token, byte for byte: equal bytes verify equally, nothing less does */
        if (s->hash == hash && s->len == len && memcmp(s->token, token, len) == 0) {
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
    uint64_t hash = token_hash(token, len);
    token_slot_t *set = token_set(w, hash), *s = NULL;
    for (int i = 0; i != TOKEN_WAYS && s == NULL; ++i) /* the same token's way, or an empty one */
        if (set[i].len == 0 ||
            (set[i].hash == hash && set[i].len == len && memcmp(set[i].token, token, len) == 0))
            s = &set[i];
    if (s == NULL) { /* else the way expiring first */
        s = &set[0];
        for (int i = 1; i != TOKEN_WAYS; ++i)
            if (set[i].valid_until_s < s->valid_until_s)
                s = &set[i];
    }
    s->hash = hash;
    s->len = (uint32_t)len;
    s->valid_from_s = valid_from_s;
    s->valid_until_s = valid_until_s;
    memcpy(s->token, token, len);
    memcpy(s->value, value, value_size);
}
