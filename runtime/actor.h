/*
 * Actors: a behaviour, a lock-free mailbox and a home worker.
 *
 * An actor runs only on its home worker, one message at a time, so its state needs no locks.
 * Sending appends to the mailbox (wait-free) and, when the mailbox goes from idle to busy,
 * puts the actor on its home worker's run queue, waking that worker if it sleeps. A scheduled
 * actor handles at most RT_ACTOR_BATCH messages before yielding, so one busy actor cannot
 * starve the others. Messages are owned by whoever holds them: rt_send passes ownership to the
 * receiver, and the runtime frees a message after the behaviour returns unless the behaviour
 * kept it (rt_msg_keep) to forward or reply with it.
 *
 * Lifetime: an actor is reference counted. It holds one reference on itself while alive;
 * rt_spawn hands one more to the caller, who drops it with rt_actor_release when done. A
 * scheduled actor, an armed actor timer and a request's reply-to each hold one too, so memory
 * stays valid while anything can still reach it. After rt_actor_stop, messages still arriving
 * are dropped and freed.
 */
#ifndef RUNTIME_ACTOR_H
#define RUNTIME_ACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "runtime/mpsc.h"
#include "runtime/timer_wheel.h"

/** Messages an actor handles per turn before yielding its worker. */
#define RT_ACTOR_BATCH 64
/** Message types below this are the runtime's own. */
#define RT_MSG_USER 256

typedef struct st_rt_runtime_t rt_runtime_t;
typedef struct st_rt_actor_t rt_actor_t;
typedef struct st_rt_msg_t rt_msg_t;

/** The runtime's own message types. */
enum {
    RT_MSG_TIMER = 1, /* an actor timer fired; msg->corr is the timer's tag */
    RT_MSG_IO = 2,    /* an I/O operation completed; payload is rt_io_result_t */
    RT_MSG_STOP = 3,  /* rt_actor_send_stop: clean up (cancel timers); the runtime then stops it */
};

/** Handles one message. `msg` is freed after return unless rt_msg_keep(msg) was called. */
typedef void (*rt_behaviour_fn)(rt_actor_t *self, rt_msg_t *msg);

struct st_rt_msg_t {
    rt_mpsc_node_t node;
    uint32_t type;
    uint32_t alloc_size; /* header + payload as allocated; needed for sized free */
    uint16_t owner;      /* worker whose slab holds it, or RT_MSG_OWNER_HEAP */
    uint16_t flags;
    uint32_t payload_size;
    rt_actor_t *reply_to; /* holds a reference when set */
    uint64_t corr;        /* correlation id for request/reply, or a timer's tag */
    /* releases what the payload owns (a PGresult, say) when the message is freed, whether it
     * was handled or dropped; NULL for plain payloads */
    void (*dispose)(rt_msg_t *msg);
    /* payload follows, 16-byte aligned */
} __attribute__((aligned(16)));

#define RT_MSG_OWNER_HEAP 0xffff

struct st_rt_actor_t {
    rt_mpsc_t mailbox;
    rt_mpsc_node_t run_node; /* link in the home worker's run queue */
    rt_behaviour_fn behaviour;
    _Atomic uint32_t refs;
    _Atomic uint32_t bounded_pending; /* messages sent through rt_actor_try_send, not yet handled */
    _Atomic uint8_t scheduled;
    uint8_t stopped;
    uint16_t home;
    uint32_t alloc_size;
    /* state follows, 8-byte aligned */
};

/** An actor timer: a wheel node that delivers RT_MSG_TIMER to its actor. Embed it in state. */
typedef struct st_rt_actor_timer_t {
    rt_timer_t node;
    rt_actor_t *actor; /* set while armed; holds a reference */
} rt_actor_timer_t;

/** Spawns an actor on `worker` (-1: the calling worker, or round-robin off-worker) with
 * `state_size` zeroed bytes of state. Returns it with one reference for the caller. */
rt_actor_t *rt_actor_spawn(rt_runtime_t *rt, int worker, rt_behaviour_fn behaviour,
                           size_t state_size);
/** The actor's state area. */
static inline void *rt_actor_state(rt_actor_t *actor);
/** Adds a reference. Any thread. */
void rt_actor_retain(rt_actor_t *actor);
/** Drops a reference; the last one frees the actor. Any thread. */
void rt_actor_release(rt_actor_t *actor);
/** Stops the calling actor after the current message; later messages are dropped. Only from
 * its own behaviour. */
void rt_actor_stop(rt_actor_t *self);

/** Asks `actor` to stop, from anywhere: it gets RT_MSG_STOP after what is already queued, may
 * clean up in its behaviour, and is stopped by the runtime when that returns. */
void rt_actor_send_stop(rt_actor_t *actor);

/** Allocates a message with `payload_size` zeroed payload bytes, from the calling worker's slab
 * when on a worker (malloc otherwise). */
rt_msg_t *rt_msg_new(uint32_t type, size_t payload_size);
/** The payload area. */
static inline void *rt_msg_payload(rt_msg_t *msg);
/** Frees a message the caller owns (and drops its reply-to reference). Any thread. */
void rt_msg_free(rt_msg_t *msg);
/** Inside a behaviour: keeps `msg` alive past return (ownership moves to the behaviour). */
void rt_msg_keep(rt_msg_t *msg);

/** Sends `msg` (ownership passes to the runtime). Always delivered unless the target stopped,
 * in which case it is dropped. Any thread. For runtime-internal and reply traffic, which must
 * not be refused; for load from outside use rt_actor_try_send. */
void rt_actor_send(rt_actor_t *to, rt_msg_t *msg);
/** Like rt_actor_send but refuses (returns false, caller keeps `msg`) when `to` already has
 * `max_pending` bounded messages waiting: the backpressure that turns into 503 upstream. */
bool rt_actor_try_send(rt_actor_t *to, rt_msg_t *msg, uint32_t max_pending);
/** Sends `msg` as a request: the receiver answers with rt_actor_reply. */
void rt_actor_request(rt_actor_t *self, rt_actor_t *to, rt_msg_t *msg, uint64_t corr);
/** Answers `request` with `reply` (same corr), if the request asked for a reply; otherwise
 * frees `reply`. */
void rt_actor_reply(rt_msg_t *request, rt_msg_t *reply);

/** Arms `timer` (inside self's state) to deliver RT_MSG_TIMER with `tag` after `delay_ms`.
 * Re-arming an armed timer moves it. Only from the actor's own behaviour. */
void rt_actor_timer_start(rt_actor_t *self, rt_actor_timer_t *timer, uint64_t delay_ms,
                          uint64_t tag);
/** Disarms; no message will arrive for it. Only from the actor's own behaviour. */
void rt_actor_timer_cancel(rt_actor_t *self, rt_actor_timer_t *timer);

/* inline definitions */

#define RT_ACTOR_HEADER_SIZE ((sizeof(rt_actor_t) + 7) & ~(size_t)7)
#define RT_MSG_HEADER_SIZE sizeof(rt_msg_t)

static inline void *rt_actor_state(rt_actor_t *actor)
{
    return (char *)actor + RT_ACTOR_HEADER_SIZE;
}

static inline void *rt_msg_payload(rt_msg_t *msg)
{
    return (char *)msg + RT_MSG_HEADER_SIZE;
}

#endif
