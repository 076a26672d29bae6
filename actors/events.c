/*
 * The event hub: events_publish, the per-worker hubs that find users' sessions, and the relay
 * between processes over Redis pub/sub. See actors/events.h and actors/session.h.
 *
 * Redis. The hub that delivers an event locally also publishes it once on EVENTS_CHANNEL,
 * tagged with this process's origin (a random id drawn at start); every process's relay actor
 * receives all publications, ignores its own origin and hands the rest to the user's hub as
 * "from Redis" (delivered, never published again). One hub handles a given user, on one
 * worker's Redis connection, so one process's events of a user reach Redis in order. When Redis
 * is down the PUBLISH is answered UNAVAILABLE at once and the events stay local: live updates
 * are a best-effort view of what the database holds.
 *
 * Batches. Each write that reaches Redis costs it a wake-up, a read, the answer to us and a
 * write to every subscriber (us too: Redis sends our own publications back, and the relay drops
 * them by origin); that costs about the same for one event as for many. So a hub gathers its
 * events and publishes them together: at the end of the loop turn when it last published
 * FLUSH_INTERVAL_MS ago or more (its first event asks its flusher actor, which runs after what
 * the worker had scheduled by then and sends the flush back), else when that interval is over
 * (a timer). Idle, an event goes out in the turn it came; under load a hub writes to Redis at
 * most every FLUSH_INTERVAL_MS, which is all the delay it adds for the other processes (and
 * their caches, actors/api_cache.c). Local sockets never wait for it. A PUBLISH carries at most
 * BATCH_MAX_BYTES (or one larger event). A lone event goes out as "<origin> <user id> <frame>"
 * (the format of the first versions, still read), several as "<origin>*" followed by
 * "\n<user id> <frame length> <frame>" each, in order. Processes of versions that read only the
 * first format drop batches as malformed (a rolling upgrade: their sockets miss the new
 * processes' bursts until they are upgraded too).
 *
 * Whether the subscription is up. Caches of what the events announce (actors/api_cache.c) keep
 * answers longer while every other process's event surely reaches this one, so the relay
 * tracks that and tells them (events_set_subscription_hook). A connected subscriber socket is
 * not proof: the SUBSCRIBE is sent after the connect, and what is published in between is lost.
 * So the relay publishes a probe (a sequence number) on a channel of its own,
 * PROBE_CHANNEL_PREFIX + origin, subscribed on the same connection after EVENTS_CHANNEL: Redis
 * runs a connection's commands in order, so a probe that comes back proves that EVENTS_CHANNEL's
 * SUBSCRIBE ran before the probe's PUBLISH, and every event published after that reaches us.
 * Up: a probe sent after the last time it was down came back while every connection is up.
 * Down: a connection of store_redis_is_connected is down (looked at every PROBE_TICK_MS; the
 * store's reconnect waits at least 50 ms, so a drop and reconnect is seen), or a probe went
 * unanswered for PROBE_TIMEOUT_MS (probes go out every PROBE_INTERVAL_MS while up). A drop that
 * is never seen (worker 0 stalled through all of it) is one more lost event to those caches:
 * bounded by their longest TTL. One PUBLISH per second per process, received only by itself.
 */
#include "actors/events.h"
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "actors/session.h"
#include "runtime/log.h"
#include "runtime/worker.h"
#include "store/redis.h"

#define EVENTS_CHANNEL "intentd:events"
#define ORIGIN_LEN 16
#define HUB_BUCKETS_MIN 1024
#define HUB_BUCKETS_MAX (1u << 22)
#define STOP_WAIT_MS 5000
#define PROBE_CHANNEL_PREFIX "intentd:probe:"
#define PROBE_TICK_MS 20            /* the connections are looked at this often */
#define PROBE_INTERVAL_MS 1000      /* a probe this often while up */
#define PROBE_TIMEOUT_MS 2000       /* a probe unanswered this long: down */
#define BATCH_MARK '*'              /* after the origin: a batch (a lone event has a space) */
#define BATCH_MAX_BYTES (32u << 10) /* a PUBLISH's payload, unless one event is larger */
#define FLUSH_INTERVAL_MS 2         /* a hub's PUBLISHes at most this often while events flow */

enum {
    RELAY_MSG_START = RT_MSG_USER + 0x7f0, /* to the relay: Redis attached, start probing */
    HUB_MSG_FLUSH,                         /* hub -> flusher -> hub: publish the batch */
};

struct st_events_t {
    events_config_t config;
    rt_runtime_t *rt;
    rt_actor_t **hubs;     /* one per worker, while running */
    rt_actor_t **flushers; /* the hubs' flushers, likewise */
    int num_hubs;
    rt_actor_t *relay;
    _Atomic int running;
    _Atomic int hubs_stopped;
    _Atomic int flushers_stopped; /* each has let go of its hub (events_stop waits for both) */
    _Atomic(store_redis_t *) redis;
    char origin[ORIGIN_LEN + 1];
    char probe_channel[sizeof(PROBE_CHANNEL_PREFIX) + ORIGIN_LEN];
    events_user_hook_fn user_hook; /* set before the workers run: read without ordering */
    void *user_hook_ctx;
    events_subscription_hook_fn subscription_hook; /* likewise */
    void *subscription_hook_ctx;
    _Atomic uint64_t published, dropped, delivered, from_redis, sockets_open, slow_closed,
        sessions_alive, subscribed, resubscribed;
};

/* ---- frames ---- */

/* A frame of `len` bytes whose text the caller writes, or NULL. */
static session_frame_t *frame_alloc(size_t len)
{
    session_frame_t *f = len <= UINT32_MAX ? malloc(sizeof(*f) + len) : NULL;
    if (f == NULL)
        return NULL;
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    return f;
}

session_frame_t *session_frame_new(const char *text, size_t len)
{
    session_frame_t *f = frame_alloc(len);
    if (f != NULL)
        memcpy(f->text, text, len);
    return f;
}

void session_frame_retain(session_frame_t *frame)
{
    atomic_fetch_add_explicit(&frame->refs, 1, memory_order_relaxed);
}

void session_frame_release(session_frame_t *frame)
{
    if (frame != NULL && atomic_fetch_sub_explicit(&frame->refs, 1, memory_order_acq_rel) == 1)
        free(frame);
}

static void dispose_event(rt_msg_t *msg)
{
    session_event_t *e = rt_msg_payload(msg);
    session_frame_release(e->frame);
    e->frame = NULL;
}

rt_msg_t *session_event_msg(session_frame_t *frame, const char *user_id, bool from_redis)
{
    rt_msg_t *msg = rt_msg_new(SESSION_MSG_EVENT, sizeof(session_event_t));
    session_event_t *e = rt_msg_payload(msg);
    session_frame_retain(frame);
    e->frame = frame;
    e->from_redis = from_redis;
    size_t ulen = strnlen(user_id, sizeof(e->user_id) - 1);
    memcpy(e->user_id, user_id, ulen); /* the payload is zeroed: NUL-terminated */
    msg->dispose = dispose_event;
    return msg;
}

rt_msg_t *session_close_msg(uint16_t code, const char *reason)
{
    rt_msg_t *msg = rt_msg_new(SESSION_MSG_CLOSE, sizeof(session_close_t));
    session_close_t *c = rt_msg_payload(msg);
    c->code = code;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    return msg;
}

/* ---- counters ---- */

void events__count(events_t *events, int which, int64_t delta)
{
    _Atomic uint64_t *c = which == EVENTS_STAT_DELIVERED ? &events->delivered
                          : which == EVENTS_STAT_SOCKETS ? &events->sockets_open
                          : which == EVENTS_STAT_SLOW    ? &events->slow_closed
                                                         : &events->sessions_alive;
    atomic_fetch_add_explicit(c, (uint64_t)delta, memory_order_relaxed);
}

void events_get_stats(const events_t *e, events_stats_t *out)
{
    events_t *m = (events_t *)e; /* atomics are read-only here */
    out->published = atomic_load_explicit(&m->published, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
    out->delivered = atomic_load_explicit(&m->delivered, memory_order_relaxed);
    out->from_redis = atomic_load_explicit(&m->from_redis, memory_order_relaxed);
    out->sockets_open = atomic_load_explicit(&m->sockets_open, memory_order_relaxed);
    out->slow_closed = atomic_load_explicit(&m->slow_closed, memory_order_relaxed);
    out->sessions_alive = atomic_load_explicit(&m->sessions_alive, memory_order_relaxed);
    out->subscribed = atomic_load_explicit(&m->subscribed, memory_order_relaxed);
    out->resubscribed = atomic_load_explicit(&m->resubscribed, memory_order_relaxed);
}

const events_config_t *events_config(const events_t *events)
{
    return &events->config;
}

/* ---- the hubs: user id -> session, one hub per worker ---- */

typedef struct st_hub_entry_t {
    struct st_hub_entry_t *next;
    rt_actor_t *session; /* holds a reference */
    uint32_t sockets;    /* attached and not yet detached, as seen by this hub */
    char user_id[SESSION_USER_ID_SIZE];
} hub_entry_t;

typedef struct st_hub_t {
    events_t *events;
    hub_entry_t **buckets;
    size_t nbuckets, count;
    /* what goes to Redis at the next flush: the first event held as is (a lone one is sent in
     * the single format), the batch written out in `batch` from the second on */
    rt_actor_t *flusher;
    rt_actor_timer_t flush_timer;
    uint64_t flushed_ms; /* when the last batch went out */
    bool flush_asked;    /* of the flusher or the timer */
    uint32_t batch_events;
    session_frame_t *first_frame; /* a reference, while batch_events == 1 */
    char first_user[SESSION_USER_ID_SIZE];
    char *batch;
    size_t batch_len, batch_cap;
} hub_t;

/* FNV-1a: spreads UUIDs evenly enough over hubs and buckets. */
static uint64_t hash_user(const char *user_id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; user_id[i] != '\0' && i != SESSION_USER_ID_SIZE; ++i)
        h = (h ^ (uint8_t)user_id[i]) * 0x100000001b3ull;
    return h;
}

static hub_entry_t **hub_slot(hub_t *hub, const char *user_id)
{
    hub_entry_t **p = &hub->buckets[hash_user(user_id) >> 20 & (hub->nbuckets - 1)];
    while (*p != NULL && strcmp((*p)->user_id, user_id) != 0)
        p = &(*p)->next;
    return p;
}

/* Doubles the table when it holds more entries than buckets (entries are bounded by the
 * sockets, themselves bounded by file descriptors). A failed grow keeps the old table. */
static void hub_grow(hub_t *hub)
{
    if (hub->count < hub->nbuckets || hub->nbuckets >= HUB_BUCKETS_MAX)
        return;
    size_t n = hub->nbuckets * 2;
    hub_entry_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i != hub->nbuckets; ++i) {
        for (hub_entry_t *e = hub->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            hub_entry_t **slot = &b[hash_user(e->user_id) >> 20 & (n - 1)];
            e->next = *slot;
            *slot = e;
        }
    }
    free(hub->buckets);
    hub->buckets = b;
    hub->nbuckets = n;
}

/* Makes room for `more` bytes in the hub's buffer; false when out of memory. */
static bool hub_reserve(hub_t *hub, size_t more)
{
    if (hub->batch_len + more <= hub->batch_cap)
        return true;
    size_t cap = hub->batch_cap != 0 ? hub->batch_cap : 1024;
    while (cap < hub->batch_len + more)
        cap *= 2;
    char *b = realloc(hub->batch, cap);
    if (b == NULL)
        return false;
    hub->batch = b;
    hub->batch_cap = cap;
    return true;
}

static void hub_put(hub_t *hub, const void *bytes, size_t len)
{
    memcpy(hub->batch + hub->batch_len, bytes, len);
    hub->batch_len += len;
}

/* Appends "\n<user> <len> <frame>" (room reserved by the caller: batch_record_size). */
static void hub_put_record(hub_t *hub, const char *user_id, const session_frame_t *frame)
{
    char len[16];
    int n = snprintf(len, sizeof(len), " %u ", frame->len);
    hub_put(hub, "\n", 1);
    hub_put(hub, user_id, strlen(user_id));
    hub_put(hub, len, (size_t)n);
    hub_put(hub, frame->text, frame->len);
}

static size_t batch_record_size(const char *user_id, const session_frame_t *frame)
{
    return 1 + strlen(user_id) + 12 + frame->len; /* "\n", user, " <10 digits> ", frame */
}

/* Publishes what the hub gathered and starts afresh; keeps a buffer of ordinary size. */
static void hub_flush(rt_actor_t *self, hub_t *hub)
{
    store_redis_t *redis = atomic_load_explicit(&hub->events->redis, memory_order_acquire);
    if (hub->batch_events == 1) { /* "<origin> <user> <frame>" */
        hub->batch_len = 0;
        if (redis != NULL &&
            hub_reserve(hub, ORIGIN_LEN + 2 + strlen(hub->first_user) + hub->first_frame->len)) {
            hub_put(hub, hub->events->origin, ORIGIN_LEN);
            hub_put(hub, " ", 1);
            hub_put(hub, hub->first_user, strlen(hub->first_user));
            hub_put(hub, " ", 1);
            hub_put(hub, hub->first_frame->text, hub->first_frame->len);
        }
        session_frame_release(hub->first_frame);
        hub->first_frame = NULL;
    }
    if (redis != NULL && hub->batch_events != 0 && hub->batch_len != 0) {
        const char *argv[] = {"PUBLISH", EVENTS_CHANNEL, hub->batch};
        const size_t argv_len[] = {7, sizeof(EVENTS_CHANNEL) - 1, hub->batch_len};
        store_redis_command(redis, self, 0, 3, argv, argv_len); /* the reply is ignored */
    }
    hub->batch_events = 0;
    hub->batch_len = 0;
    hub->flushed_ms = rt_now_ms();
    if (hub->batch_cap > 2 * BATCH_MAX_BYTES) { /* one large event: not kept */
        free(hub->batch);
        hub->batch = NULL;
        hub->batch_cap = 0;
    }
}

/* Adds a locally produced event to what goes to the other processes at the next flush. An
 * event that cannot be added (out of memory) stays local, as when Redis is down. */
static void hub_gather(rt_actor_t *self, hub_t *hub, const session_event_t *e)
{
    if (atomic_load_explicit(&hub->events->redis, memory_order_relaxed) == NULL)
        return;
    if (!hub->flush_asked) {
        hub->flush_asked = true;
        uint64_t now_ms = rt_now_ms(), next_ms = hub->flushed_ms + FLUSH_INTERVAL_MS;
        if (now_ms >= next_ms)
            rt_actor_send(hub->flusher, rt_msg_new(HUB_MSG_FLUSH, 0));
        else
            rt_actor_timer_start(self, &hub->flush_timer, next_ms - now_ms, 0);
    }
    size_t more = batch_record_size(e->user_id, e->frame);
    if (hub->batch_events >= 2 &&
        (hub->batch_len + more > BATCH_MAX_BYTES || !hub_reserve(hub, more)))
        hub_flush(self, hub);     /* full: this event starts the next batch */
    if (hub->batch_events == 1) { /* the second: the batch is written out from now on */
        hub->batch_len = 0;
        if (hub_reserve(hub, ORIGIN_LEN + 1 + batch_record_size(hub->first_user, hub->first_frame) +
                                 more)) {
            hub_put(hub, hub->events->origin, ORIGIN_LEN);
            hub_put(hub, (char[]){BATCH_MARK}, 1);
            hub_put_record(hub, hub->first_user, hub->first_frame);
            session_frame_release(hub->first_frame);
            hub->first_frame = NULL;
        } else {
            hub_flush(self, hub); /* the first alone; this one starts the next batch */
        }
    }
    if (hub->batch_events == 0) {
        session_frame_retain(e->frame);
        hub->first_frame = e->frame;
        memcpy(hub->first_user, e->user_id, sizeof(hub->first_user));
        hub->batch_events = 1;
        return;
    }
    hub_put_record(hub, e->user_id, e->frame); /* room reserved above */
    ++hub->batch_events;
}

/* The flusher: sends the hub's flush back to it from the end of its worker's run queue, so
 * that what the worker's other actors publish meanwhile joins the batch. */
static void flusher_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    rt_actor_t **hub = rt_actor_state(self);
    if (msg->type == HUB_MSG_FLUSH) {
        rt_msg_keep(msg);
        rt_actor_send(*hub, msg);
    } else if (msg->type == RT_MSG_STOP) {
        events_t *events = ((hub_t *)rt_actor_state(*hub))->events; /* our reference keeps it */
        rt_actor_release(*hub);
        *hub = NULL;
        atomic_fetch_add(&events->flushers_stopped, 1);
    }
}

static void hub_on_attach(rt_actor_t *self, hub_t *hub, rt_msg_t *msg)
{
    session_member_t *m = rt_msg_payload(msg);
    hub_entry_t **slot = hub_slot(hub, m->user_id);
    if (*slot == NULL) {
        hub_entry_t *e = calloc(1, sizeof(*e));
        if (e == NULL) { /* the socket is refused rather than left without a session */
            rt_actor_send(m->socket, session_close_msg(1011, "out of memory"));
            return;
        }
        snprintf(e->user_id, sizeof(e->user_id), "%s", m->user_id);
        e->session =
            rt_actor_spawn(hub->events->rt, self->home, session_behaviour, session_state_size());
        session_init(e->session, hub->events, m->user_id);
        *slot = e;
        ++hub->count;
        hub_grow(hub);
        slot = hub_slot(hub, m->user_id);
    }
    ++(*slot)->sockets;
    rt_msg_keep(msg);
    rt_actor_send((*slot)->session, msg);
}

static void hub_on_detach(hub_t *hub, rt_msg_t *msg)
{
    session_member_t *m = rt_msg_payload(msg);
    hub_entry_t **slot = hub_slot(hub, m->user_id), *e = *slot;
    if (e == NULL)
        return;
    rt_msg_keep(msg);
    rt_actor_send(e->session, msg);
    if (--e->sockets != 0)
        return;
    /* the stop arrives after the detach just sent; a later attach makes a new session */
    rt_actor_send_stop(e->session);
    rt_actor_release(e->session);
    *slot = e->next;
    free(e);
    --hub->count;
}

static void hub_on_stop(rt_actor_t *self, hub_t *hub)
{
    rt_actor_timer_cancel(self, &hub->flush_timer);
    for (size_t i = 0; i != hub->nbuckets; ++i) {
        for (hub_entry_t *e = hub->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            rt_actor_send_stop(e->session);
            rt_actor_release(e->session);
            free(e);
        }
    }
    free(hub->buckets);
    hub->buckets = NULL;
    hub->count = hub->nbuckets = 0;
    hub_flush(self, hub); /* what it gathered goes out: Redis is detached after the hubs stop */
    free(hub->batch);
    hub->batch = NULL;
    atomic_fetch_add(&hub->events->hubs_stopped, 1);
}

static void hub_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    hub_t *hub = rt_actor_state(self);
    switch (msg->type) {
    case SESSION_MSG_EVENT: {
        session_event_t *e = rt_msg_payload(msg);
        if (!e->from_redis)
            hub_gather(self, hub, e);
        hub_entry_t *entry = *hub_slot(hub, e->user_id);
        if (entry != NULL) {
            rt_msg_keep(msg);
            rt_actor_send(entry->session, msg);
        }
        break;
    }
    case SESSION_MSG_ATTACH:
        hub_on_attach(self, hub, msg);
        break;
    case SESSION_MSG_DETACH:
        hub_on_detach(hub, msg);
        break;
    case HUB_MSG_FLUSH:
    case RT_MSG_TIMER:
        hub->flush_asked = false;
        hub_flush(self, hub);
        break;
    case RT_MSG_STOP:
        hub_on_stop(self, hub);
        break;
    default: /* Redis replies to PUBLISH: nothing to do */
        break;
    }
}

rt_actor_t *events__hub_of(events_t *events, const char *user_id)
{
    if (events == NULL || !atomic_load_explicit(&events->running, memory_order_acquire))
        return NULL;
    return events->hubs[hash_user(user_id) % (uint64_t)events->num_hubs];
}

/* ---- the relay: events from other processes, and the probes ---- */

/* The relay's state (on worker 0). Probes are numbered from 1; one is out at a time. */
typedef struct st_relay_t {
    events_t *events;
    rt_actor_timer_t timer;
    bool up;
    uint64_t sent_seq;   /* the last probe sent */
    uint64_t echoed_seq; /* the last probe back, or given up on */
    uint64_t valid_seq;  /* the first probe sent since it was last down: only those prove up */
    uint64_t sent_ms;    /* when sent_seq went out */
} relay_t;

static void relay_set_up(relay_t *r, bool up)
{
    if (r->up == up)
        return;
    r->up = up;
    events_t *events = r->events;
    if (!up) { /* a probe out now proves nothing any more */
        r->valid_seq = r->sent_seq + 1;
        r->echoed_seq = r->sent_seq;
    } else {
        atomic_fetch_add_explicit(&events->resubscribed, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&events->subscribed, up, memory_order_relaxed);
    rt_log_info("events", "subscription to the other processes' events %s",
                up ? "up" : "down: their events may be lost until it is up again");
    if (events->subscription_hook != NULL)
        events->subscription_hook(events->subscription_hook_ctx, up);
}

static void relay_send_probe(rt_actor_t *self, relay_t *r, store_redis_t *redis, uint64_t now_ms)
{
    char seq[24];
    int len = snprintf(seq, sizeof(seq), "%llu", (unsigned long long)++r->sent_seq);
    r->sent_ms = now_ms;
    const char *argv[] = {"PUBLISH", r->events->probe_channel, seq};
    const size_t argv_len[] = {7, strlen(r->events->probe_channel), (size_t)len};
    store_redis_command(redis, self, 0, 3, argv, argv_len); /* the reply is ignored */
}

/* Every PROBE_TICK_MS: down when a connection is, or a probe went unanswered; a probe out when
 * down (to come up), or every PROBE_INTERVAL_MS while up. */
static void relay_tick(rt_actor_t *self, relay_t *r)
{
    store_redis_t *redis = atomic_load_explicit(&r->events->redis, memory_order_acquire);
    if (redis == NULL)
        return; /* stopping: no more ticks */
    uint64_t now_ms = rt_now_ms();
    bool out = r->echoed_seq != r->sent_seq;
    if (!store_redis_is_connected(redis)) {
        relay_set_up(r, false);
    } else if (out && now_ms - r->sent_ms < PROBE_TIMEOUT_MS) {
        /* wait for it */
    } else if (out || !r->up || now_ms - r->sent_ms >= PROBE_INTERVAL_MS) {
        if (out)
            relay_set_up(r, false);
        relay_send_probe(self, r, redis, now_ms);
    }
    rt_actor_timer_start(self, &r->timer, PROBE_TICK_MS, 0);
}

/* A probe came back: up, when it was sent since the last time down and nothing is down now. */
static void relay_on_probe(relay_t *r, const char *text, size_t len)
{
    char digits[24];
    if (len == 0 || len >= sizeof(digits))
        return;
    memcpy(digits, text, len);
    digits[len] = '\0';
    uint64_t seq = strtoull(digits, NULL, 10);
    store_redis_t *redis = atomic_load_explicit(&r->events->redis, memory_order_acquire);
    if (seq != r->sent_seq || seq == r->echoed_seq || redis == NULL)
        return;
    r->echoed_seq = seq;
    if (seq >= r->valid_seq && store_redis_is_connected(redis))
        relay_set_up(r, true);
}

/* Hands one event of another process to its user's hub (and runs the user hook). */
static void relay_deliver(events_t *events, const char *user, size_t user_len,
                          const char *frame_text, size_t frame_len)
{
    if (user_len == 0 || user_len >= SESSION_USER_ID_SIZE)
        return;
    char user_id[SESSION_USER_ID_SIZE];
    memcpy(user_id, user, user_len);
    user_id[user_len] = '\0';
    if (events->user_hook != NULL)
        events->user_hook(events->user_hook_ctx, user_id);
    session_frame_t *frame = session_frame_new(frame_text, frame_len);
    rt_actor_t *hub = events__hub_of(events, user_id);
    if (frame == NULL || hub == NULL) {
        session_frame_release(frame);
        return;
    }
    rt_msg_t *ev = session_event_msg(frame, user_id, true);
    session_frame_release(frame);
    atomic_fetch_add_explicit(&events->from_redis, 1, memory_order_relaxed);
    if (!rt_actor_try_send(hub, ev, events->config.hub_queue_max)) {
        rt_msg_free(ev);
        atomic_fetch_add_explicit(&events->dropped, 1, memory_order_relaxed);
    }
}

/* One "\n<user> <len> <frame>" of a batch at `p`: delivers it and returns what follows, or NULL
 * when it is malformed (the rest of the batch is dropped). */
static const char *relay_record(events_t *events, const char *p, const char *end)
{
    if (end - p < 5 || *p != '\n')
        return NULL;
    const char *user = p + 1, *space = memchr(user, ' ', (size_t)(end - user));
    if (space == NULL || space - user >= SESSION_USER_ID_SIZE)
        return NULL;
    size_t len = 0;
    const char *q = space + 1;
    for (; q != end && *q >= '0' && *q <= '9' && q - space <= 10; ++q)
        len = len * 10 + (size_t)(*q - '0');
    if (q == end || *q != ' ' || q == space + 1 || len > (size_t)(end - q - 1))
        return NULL;
    relay_deliver(events, user, (size_t)(space - user), q + 1, len);
    return q + 1 + len;
}

/* A publication on EVENTS_CHANNEL: "<origin> <user> <frame>" or a batch, "<origin>*" and its
 * records (see the top of the file). */
static void relay_on_event(events_t *events, const char *text, const char *end)
{
    if (end - text < ORIGIN_LEN + 3 || memcmp(text, events->origin, ORIGIN_LEN) == 0)
        return; /* malformed, or our own */
    const char *p = text + ORIGIN_LEN + 1;
    if (text[ORIGIN_LEN] == BATCH_MARK) {
        /* each record takes at least 5 bytes of the payload: bounded */
        while (p != NULL && p != end)
            p = relay_record(events, p, end);
        return;
    }
    const char *space = text[ORIGIN_LEN] == ' ' ? memchr(p, ' ', (size_t)(end - p)) : NULL;
    if (space != NULL)
        relay_deliver(events, p, (size_t)(space - p), space + 1, (size_t)(end - space - 1));
}

static void relay_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    relay_t *r = rt_actor_state(self);
    switch (msg->type) {
    case STORE_REDIS_MSG_PUBLISHED: {
        store_redis_published_t *p = rt_msg_payload(msg);
        const char *text = p->text + p->channel_len + 1;
        if (p->channel_len == strlen(r->events->probe_channel) &&
            memcmp(p->text, r->events->probe_channel, p->channel_len) == 0)
            relay_on_probe(r, text, p->message_len);
        else
            relay_on_event(r->events, text, text + p->message_len);
        break;
    }
    case RELAY_MSG_START:
    case RT_MSG_TIMER:
        relay_tick(self, r);
        break;
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &r->timer);
        break;
    default: /* Redis replies to the probes: an unanswered probe is what counts */
        break;
    }
}

/* ---- publishing ---- */

/* "2026-11-21T09:00:00.123Z" */
static void format_at(int64_t at_ms, char out[32])
{
    time_t s = (time_t)(at_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(at_ms % 1000));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The frame {"type":..,"at":..,"data":<data>}, written out directly (`type` is one of the event
 * names, which need no escaping): what json_dumps of that object gives, without building it. */
static session_frame_t *frame_of(const char *type, int64_t at_ms, const char *data, size_t len)
{
    char at[32];
    format_at(at_ms > 0 ? at_ms : now_ms(), at);
    size_t tlen = strlen(type), alen = strlen(at);
    size_t total = sizeof("{\"type\":\"\",\"at\":\"\",\"data\":}") - 1 + tlen + alen + len;
    session_frame_t *frame = frame_alloc(total); /* written in place: one allocation */
    if (frame == NULL)
        return NULL;
    char *p = frame->text;
#define PUT(s, n) (memcpy(p, (s), (n)), p += (n))
    PUT("{\"type\":\"", 9);
    PUT(type, tlen);
    PUT("\",\"at\":\"", 8);
    PUT(at, alen);
    PUT("\",\"data\":", 9);
    PUT(data, len);
    PUT("}", 1);
#undef PUT
    return frame;
}

/* Queues `frame` (NULL: out of memory) to the hub of `user_id`, or counts it dropped. */
static void deliver(events_t *events, rt_actor_t *hub, const char *user_id, session_frame_t *frame)
{
    if (frame == NULL) {
        atomic_fetch_add_explicit(&events->dropped, 1, memory_order_relaxed);
        return;
    }
    rt_msg_t *msg = session_event_msg(frame, user_id, false);
    session_frame_release(frame);
    if (rt_actor_try_send(hub, msg, events->config.hub_queue_max)) {
        atomic_fetch_add_explicit(&events->published, 1, memory_order_relaxed);
    } else {
        rt_msg_free(msg);
        atomic_fetch_add_explicit(&events->dropped, 1, memory_order_relaxed);
    }
}

/* Runs the user hook (the change happened, sent or not) and returns the hub of `user_id`, NULL
 * when the event cannot go out (no hub, no type or no data: counted dropped). */
static rt_actor_t *hub_for(events_t *events, const char *user_id, const char *type,
                           const void *data)
{
    rt_actor_t *hub = user_id != NULL && strlen(user_id) < SESSION_USER_ID_SIZE
                          ? events__hub_of(events, user_id)
                          : NULL;
    if (events != NULL && events->user_hook != NULL && user_id != NULL)
        events->user_hook(events->user_hook_ctx, user_id);
    if (hub != NULL && type != NULL && data != NULL)
        return hub;
    if (events != NULL)
        atomic_fetch_add_explicit(&events->dropped, 1, memory_order_relaxed);
    return NULL;
}

void events_publish(events_t *events, const char *user_id, const char *type, json_t *data,
                    int64_t at_ms)
{
    rt_actor_t *hub = hub_for(events, user_id, type, data);
    char *text = hub != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (hub == NULL)
        return;
    deliver(events, hub, user_id, text != NULL ? frame_of(type, at_ms, text, strlen(text)) : NULL);
    free(text);
}

void events_publish_text(events_t *events, const char *user_id, const char *type, const char *data,
                         size_t len, int64_t at_ms)
{
    rt_actor_t *hub = hub_for(events, user_id, type, data);
    if (hub != NULL)
        deliver(events, hub, user_id, frame_of(type, at_ms, data, len));
}

void notifications_publish_created(events_t *events, const char *user_id, json_t *notification)
{
    events_publish(events, user_id, "notification.created", notification, 0);
}

/* ---- life cycle ---- */

events_t *events_create(const events_config_t *config)
{
    events_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    static const events_config_t defaults = {.queue_max_frames = 256,
                                             .queue_max_bytes = 1u << 20,
                                             .max_message_bytes = 64u << 10,
                                             .max_sockets_per_user = 32,
                                             .ping_interval_ms = 30000,
                                             .idle_timeout_ms = 75000,
                                             .close_grace_ms = 2000,
                                             .hub_queue_max = 65536};
    e->config = config != NULL ? *config : defaults;
    uint8_t raw[ORIGIN_LEN / 2];
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
        free(e);
        return NULL;
    }
    for (size_t i = 0; i != sizeof(raw); ++i)
        snprintf(e->origin + 2 * i, 3, "%02x", raw[i]);
    snprintf(e->probe_channel, sizeof(e->probe_channel), "%s%s", PROBE_CHANNEL_PREFIX, e->origin);
    return e;
}

void events_set_user_hook(events_t *events, events_user_hook_fn fn, void *ctx)
{
    events->user_hook = fn;
    events->user_hook_ctx = ctx;
}

void events_set_subscription_hook(events_t *events, events_subscription_hook_fn fn, void *ctx)
{
    events->subscription_hook = fn;
    events->subscription_hook_ctx = ctx;
}

void events_start(events_t *events, rt_runtime_t *rt)
{
    events->rt = rt;
    events->num_hubs = rt->num_workers;
    events->hubs = calloc((size_t)rt->num_workers, sizeof(*events->hubs));
    events->flushers = calloc((size_t)rt->num_workers, sizeof(*events->flushers));
    if (events->hubs == NULL || events->flushers == NULL)
        rt_log_fatal("events", "out of memory");
    for (int w = 0; w != rt->num_workers; ++w) {
        events->hubs[w] = rt_actor_spawn(rt, w, hub_behaviour, sizeof(hub_t));
        events->flushers[w] = rt_actor_spawn(rt, w, flusher_behaviour, sizeof(rt_actor_t *));
        rt_actor_retain(events->hubs[w]); /* the flusher's, released when it stops */
        *(rt_actor_t **)rt_actor_state(events->flushers[w]) = events->hubs[w];
        hub_t *hub = rt_actor_state(events->hubs[w]);
        hub->events = events;
        hub->flusher = events->flushers[w];
        hub->nbuckets = HUB_BUCKETS_MIN;
        hub->buckets = calloc(HUB_BUCKETS_MIN, sizeof(*hub->buckets));
        if (hub->buckets == NULL)
            rt_log_fatal("events", "out of memory");
    }
    events->relay = rt_actor_spawn(rt, 0, relay_behaviour, sizeof(relay_t));
    relay_t *relay = rt_actor_state(events->relay);
    relay->events = events;
    relay->valid_seq = 1;
    atomic_store_explicit(&events->running, 1, memory_order_release);
}

void events_attach_redis(events_t *events, store_redis_t *redis)
{
    if (redis != NULL && events->relay != NULL) {
        /* in this order: a probe back proves EVENTS_CHANNEL's SUBSCRIBE ran (see above) */
        store_redis_subscribe(redis, EVENTS_CHANNEL, events->relay);
        store_redis_subscribe(redis, events->probe_channel, events->relay);
    }
    atomic_store_explicit(&events->redis, redis, memory_order_release);
    if (redis != NULL && events->relay != NULL)
        rt_actor_send(events->relay, rt_msg_new(RELAY_MSG_START, 0));
}

void events_stop(events_t *events)
{
    if (events->hubs == NULL)
        return;
    atomic_store_explicit(&events->running, 0, memory_order_release);
    for (int w = 0; w != events->num_hubs; ++w) {
        rt_actor_send_stop(events->hubs[w]);
        rt_actor_send_stop(events->flushers[w]);
    }
    rt_actor_send_stop(events->relay);
    /* wait (bounded) until the hubs have stopped their sessions, which close the sockets, and
     * the flushers have let go of their hubs: a stop still queued when the runtime shut down
     * left a hub referenced for good (LeakSanitizer, SIGTERM ~10 ms after the start) */
    for (int waited_ms = 0; (atomic_load(&events->hubs_stopped) != events->num_hubs ||
                             atomic_load(&events->flushers_stopped) != events->num_hubs) &&
                            waited_ms < STOP_WAIT_MS;
         ++waited_ms)
        usleep(1000);
    /* only now: a stopping hub publishes what it gathered (the store closes after this) */
    atomic_store_explicit(&events->redis, NULL, memory_order_release);
    for (int w = 0; w != events->num_hubs; ++w) {
        rt_actor_release(events->hubs[w]);
        rt_actor_release(events->flushers[w]);
    }
    rt_actor_release(events->relay);
    free(events->hubs);
    free(events->flushers);
    events->hubs = NULL;
    events->flushers = NULL;
    events->relay = NULL;
}

void events_free(events_t *events)
{
    if (events == NULL)
        return;
    assert(events->hubs == NULL);
    free(events);
}
