/*
 * The users' live event stream: what the engine and the API announce, and what the WebSocket
 * sessions (actors/session.c) deliver.
 *
 * An event is {"type","at","data"} for one user (shared/api.md, "Live updates"). It reaches every
 * open socket of that user in every intentd process sharing the Redis: the producing process
 * delivers it to its own sessions directly and publishes it once on Redis; the other processes
 * deliver what they receive from Redis, and each process ignores its own publications, so each
 * socket gets it once. Without Redis, delivery stays in the process.
 *
 * Events of one intent are published from the actor that owns that intent's state, so they keep
 * their order per intent.
 */
#ifndef ACTORS_EVENTS_H
#define ACTORS_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct st_events_t events_t;

/**
 * Publishes an event of `type` (intent.created, intent.updated, intent.delayed,
 * execution.signed, execution.broadcast, execution.confirmed, execution.failed,
 * notification.created) for the user `user_id` (a UUID), with `data` the intent, execution or
 * notification object; steals the reference to `data`. `at_ms` is the event's time (unix ms; 0:
 * now). Callable from any worker thread; never blocks. `events` may be NULL (the event is
 * dropped), so that components run without live updates in tests.
 */
void events_publish(events_t *events, const char *user_id, const char *type, json_t *data,
                    int64_t at_ms);
/** events_publish with the data already written as JSON text (`len` bytes, one JSON value, as
 * json_dumps would write it), so that a caller that has rendered the object for its own answer
 * does not build it again. */
void events_publish_text(events_t *events, const char *user_id, const char *type, const char *data,
                         size_t len, int64_t at_ms);

/* ---- life cycle (main.c) and helpers ---- */

typedef struct st_rt_runtime_t rt_runtime_t;
typedef struct st_store_redis_t store_redis_t;

/** Limits of the live sockets (net/websocket.h applies them per socket). */
typedef struct st_events_config_t {
    uint32_t queue_max_frames;     /* frames waiting per socket before it is closed (1013) */
    uint32_t queue_max_bytes;      /* bytes waiting per socket before it is closed (1013) */
    uint32_t max_message_bytes;    /* largest message a client may send (else 1009) */
    uint32_t max_sockets_per_user; /* more are closed at once (1008) */
    uint64_t ping_interval_ms;     /* keepalive ping period */
    uint64_t idle_timeout_ms;      /* nothing heard (no pong) for this long: closed (1001) */
    uint64_t close_grace_ms;       /* a closing socket that does not finish is dropped then */
    uint32_t hub_queue_max;        /* events waiting per hub before events are dropped */
} events_config_t;

/** Counters, for /metrics and tests (relaxed reads). */
typedef struct st_events_stats_t {
    uint64_t published;      /* events_publish calls accepted */
    uint64_t dropped;        /* refused: queue full, not started, or out of memory */
    uint64_t delivered;      /* frames queued on sockets */
    uint64_t from_redis;     /* events received from other processes */
    uint64_t sockets_open;   /* live sockets now */
    uint64_t slow_closed;    /* sockets closed for not reading */
    uint64_t sessions_alive; /* session actors now */
    uint64_t subscribed;     /* 1 while the other processes' events surely reach this one */
    uint64_t resubscribed;   /* times that subscription came (back) up */
} events_stats_t;

/** Called with the user id of every event this process delivers: published here (from
 * events_publish, on the publisher's thread, whether or not it can be queued) or received from
 * another process through Redis (on the relay's worker). For caches of what the events announce
 * (actors/api_cache.h): it must be cheap, thread-safe and never block. */
typedef void (*events_user_hook_fn)(void *ctx, const char *user_id);
/** Sets the user hook (NULL: none); before events_start, or after the runtime has stopped. */
void events_set_user_hook(events_t *events, events_user_hook_fn fn, void *ctx);

/** Called when this process's subscription to the other processes' events comes up (`up`:
 * from now on every event another process publishes reaches this one; the events of the time
 * before may have been lost) or goes down (Redis or the connection to it lost, or the probe of
 * events.c not answered: their events may be lost from now on), on the relay's worker. Never
 * up without Redis. For caches that other processes' events invalidate (actors/api_cache.h):
 * cheap, thread-safe, never blocking. */
typedef void (*events_subscription_hook_fn)(void *ctx, bool up);
/** Sets the subscription hook (NULL: none); before events_start, or after the runtime has
 * stopped. */
void events_set_subscription_hook(events_t *events, events_subscription_hook_fn fn, void *ctx);

/** Creates the event hub (nothing runs until events_start). NULL `config`: defaults. */
events_t *events_create(const events_config_t *config);
/** Spawns the hubs on the workers of `rt` (running); events published before are dropped. */
void events_start(events_t *events, rt_runtime_t *rt);
/** Publishes on and subscribes to Redis from now on (NULL: local delivery only). */
void events_attach_redis(events_t *events, store_redis_t *redis);
/** Closes every socket (1001), stops the hubs and stops using Redis; while the runtime still
 * runs, before the stores close. */
void events_stop(events_t *events);
/** Frees what is left, after the runtime has stopped. */
void events_free(events_t *events);
/** The limits in force. */
const events_config_t *events_config(const events_t *events);
/** A snapshot of the counters. */
void events_get_stats(const events_t *events, events_stats_t *out);

/**
 * Pushes `notification` (the object of actors/notification_model.h, reference stolen) as a
 * `notification.created` event to `user_id`'s sockets. Call it after the insert committed.
 */
void notifications_publish_created(events_t *events, const char *user_id, json_t *notification);

#endif
