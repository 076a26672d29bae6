/*
 * Redis through hiredis's asynchronous API, driven by the runtime's rings.
 *
 * hiredis does the protocol; this module is its event-loop adapter (hiredis ships adapters for
 * libevent, libuv and others, none for io_uring): each worker has one connection actor whose
 * socket readiness is polled through the worker's ring, and one more connection on worker 0
 * carries pub/sub, since a subscribed connection can run nothing else.
 *
 * Callers get exactly one reply per command (STORE_REDIS_MSG_REPLY). When Redis is down the
 * reply says STORE_REDIS_UNAVAILABLE at once, so that callers can fall back (rate limits go per
 * process) instead of failing requests; the connection reconnects with backoff and jitter, and
 * the subscriber re-subscribes its channels.
 */
#ifndef STORE_REDIS_H
#define STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "runtime/actor.h"
#include "runtime/worker.h"

/** A reply to a command. Payload: store_redis_reply_t. */
#define STORE_REDIS_MSG_REPLY (RT_MSG_USER - 32)
/** A message on a subscribed channel. Payload: store_redis_published_t. */
#define STORE_REDIS_MSG_PUBLISHED (RT_MSG_USER - 31)

#define STORE_REDIS_MAX_ARGS 16
#define STORE_REDIS_MAX_ELEMENTS 64 /* array elements kept in a reply */

typedef enum en_store_redis_status_t {
    STORE_REDIS_OK = 0,
    STORE_REDIS_ERROR,       /* Redis answered with an error reply: see `str` */
    STORE_REDIS_UNAVAILABLE, /* not connected, or the connection broke before the answer */
    STORE_REDIS_BUSY,        /* too many commands outstanding on this worker's connection */
} store_redis_status_t;

typedef enum en_store_redis_type_t {
    STORE_REDIS_NIL,
    STORE_REDIS_INTEGER,
    STORE_REDIS_STRING, /* bulk and status strings */
    STORE_REDIS_ARRAY,
} store_redis_type_t;

typedef struct st_store_redis_element_t {
    store_redis_type_t type;
    long long integer;
    uint32_t str_offset, str_len; /* into the reply's text area */
} store_redis_element_t;

typedef struct st_store_redis_reply_t {
    store_redis_status_t status;
    store_redis_type_t type;
    long long integer;
    uint32_t str_len; /* for STRING and ERROR: the text, at `text` */
    uint32_t nelements;
    store_redis_element_t elements[STORE_REDIS_MAX_ELEMENTS];
    char text[]; /* strings, NUL-terminated each */
} store_redis_reply_t;

typedef struct st_store_redis_published_t {
    uint32_t channel_len, message_len;
    char text[]; /* channel, NUL, message, NUL */
} store_redis_published_t;

typedef struct st_store_redis_t store_redis_t;

/** Connects every worker of `rt` (running) to REDIS_URL (redis://[:password@]host:port[/db]).
 * Returns NULL when the URL does not parse. */
store_redis_t *store_redis_create(rt_runtime_t *rt, const char *url, char *err, size_t err_size);
/** Stops the connection actors (outstanding commands are answered UNAVAILABLE), waits until
 * they have closed (bounded), and frees. Call while the runtime still runs. */
void store_redis_free(store_redis_t *redis);
/** Sends a command (binary-safe arguments) from an actor; the reply comes to `self` with
 * `corr`. Never refuses: a full queue or an outage is itself the (immediate) reply. */
void store_redis_command(store_redis_t *redis, rt_actor_t *self, uint64_t corr, int argc,
                         const char *const *argv, const size_t *argv_len);
/** Delivers every message published on `channel` to `target` as STORE_REDIS_MSG_PUBLISHED. */
void store_redis_subscribe(store_redis_t *redis, const char *channel, rt_actor_t *target);
/** True when every connection of this process (commands on each worker, and pub/sub) is up
 * (for /readyz). */
bool store_redis_is_connected(store_redis_t *redis);
/** A reply's string or element text. */
static inline const char *store_redis_text(const store_redis_reply_t *r, uint32_t offset);

static inline const char *store_redis_text(const store_redis_reply_t *r, uint32_t offset)
{
    return r->text + offset;
}

#endif
