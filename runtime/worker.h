/*
 * The worker pool: a fixed set of threads, each owning one io_uring, a run queue of actors, a
 * timer wheel and a slab allocator.
 *
 * A worker's loop: fire due timers, turn ring completions into messages, run ready actors
 * (bounded), submit queued ring operations, then sleep until the next timer, a completion or
 * a cross-worker wake-up. The ring signals completions on an eventfd (io_uring_register_eventfd)
 * and other threads wake the worker by writing the same eventfd, so one wait covers all three.
 * What that wait is belongs to the layer above: by default poll(2) on the eventfd; net/ installs
 * a waiter that runs h2o's event loop with the eventfd as one of its sockets, so HTTP and actors
 * share the thread without either busy-polling.
 */
#ifndef RUNTIME_WORKER_H
#define RUNTIME_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "runtime/actor.h"
#include "runtime/mpsc.h"
#include "runtime/slab.h"
#include "runtime/timer_wheel.h"

#define RT_MAX_WORKERS 256

typedef struct st_rt_worker_t rt_worker_t;

/** How a worker sleeps, and what else runs on its thread (h2o). All calls are on the worker's
 * own thread. */
typedef struct st_rt_waiter_t {
    /** Sets up per-worker state; `wake_fd` becomes readable on completions and wake-ups. */
    void *(*init)(rt_worker_t *worker, int wake_fd, void *data);
    /** Blocks up to `timeout_ms` (0: just poll) or until `wake_fd` is readable; must read
     * (drain) wake_fd when it is. May run other work (HTTP) in the meantime. */
    void (*wait)(void *ctx, int timeout_ms);
    /** Shutdown has begun: stop taking new work (close listeners). */
    void (*begin_drain)(void *ctx);
    /** True when nothing started by this waiter is still in flight (HTTP requests). */
    bool (*is_idle)(void *ctx);
    /** Frees per-worker state, on the worker's thread, before it exits. */
    void (*dispose)(void *ctx);
    void *data;
} rt_waiter_t;

/** Per-worker counters, written only by the worker (relaxed), read by anyone (/metrics). */
typedef struct st_rt_worker_metrics_t {
    _Atomic uint64_t messages_handled;
    _Atomic uint64_t messages_dropped; /* sent to stopped actors */
    _Atomic uint64_t actors_spawned;
    _Atomic uint64_t actors_freed;
    _Atomic uint64_t actor_turns;
    _Atomic uint64_t timers_fired;
    _Atomic uint64_t ring_submissions; /* SQEs submitted */
    _Atomic uint64_t ring_completions;
    _Atomic uint64_t wakeups_sent; /* eventfd writes to wake this worker */
    _Atomic uint64_t loop_iterations;
    _Atomic uint64_t http_requests; /* maintained by net/ */
    _Atomic uint64_t slab_bytes;
} rt_worker_metrics_t;

struct st_rt_worker_t {
    rt_runtime_t *rt;
    uint16_t id;
    pthread_t thread;
    struct io_uring ring;
    int wake_fd;
    rt_mpsc_t run_queue;
    _Atomic int sleeping; /* set while in (or about to enter) the wait */
    _Atomic int drained;  /* draining, and nothing of the waiter's is in flight */
    rt_timer_wheel_t wheel;
    rt_slab_t slab;
    void *waiter_ctx;
    uint64_t io_in_flight; /* ring operations submitted on behalf of actors, not yet completed */
    uint64_t cached_now_ms;
    rt_msg_t *current_msg; /* the message a behaviour is handling now */
    bool current_msg_kept; /* rt_msg_keep was called for it */
    rt_worker_metrics_t metrics __attribute__((aligned(64)));
} __attribute__((aligned(64)));

typedef struct st_rt_config_t {
    int workers;               /* 0: one per online CPU */
    unsigned ring_entries;     /* submission queue size per worker */
    uint64_t drain_timeout_ms; /* graceful shutdown deadline */
    rt_waiter_t *waiter;       /* NULL: poll(2) on the wake eventfd */
} rt_config_t;

struct st_rt_runtime_t {
    rt_config_t config;
    int num_workers;
    rt_worker_t *workers;
    _Atomic int state; /* RT_STATE_* */
    _Atomic unsigned spawn_cursor;
    uint64_t drain_deadline_ms;
    _Atomic int workers_reported; /* start-up: workers that tried to open their ring */
    _Atomic int workers_failed;
};

/* RUNNING -> DRAINING (listeners closed, in-flight HTTP finishing, actors still run) ->
 * STOPPING (workers exit once their run queues are empty) -> STOPPED (joined) */
enum { RT_STATE_RUNNING, RT_STATE_DRAINING, RT_STATE_STOPPING, RT_STATE_STOPPED };

/** Checks that io_uring is usable with what the runtime needs. On failure writes a clear
 * explanation (disabled by sysctl, blocked by seccomp, missing opcode) into `why` and returns
 * false. Its test ring lives on a short thread of its own, so that the ring's teardown never
 * interrupts the caller's blocking calls (EINTR from a socket read with a timeout). */
bool rt_probe_io_uring(char *why, size_t why_size);
/** Creates the runtime; rings, eventfds and waiters are opened on start, on each worker's own
 * thread. One runtime per process at a time. Returns NULL when out of memory. */
rt_runtime_t *rt_runtime_create(const rt_config_t *config);
/** Starts the worker threads and waits until each has opened its ring and waiter. Returns
 * false (the workers exit; call rt_runtime_join_and_free) when any could not. */
bool rt_runtime_start(rt_runtime_t *rt);
/** Stops taking new work (the waiters close their listeners) and waits until no request is in
 * flight on any worker, or the drain deadline. Actors keep running, so the application can
 * close what it owns (database pools) afterwards. Call from a normal thread (e.g. after
 * sigwait). Returns false when the deadline passed first. */
bool rt_runtime_begin_drain(rt_runtime_t *rt);
/** Drains (if not done yet), then asks every worker to exit once its run queue is empty, or at
 * the deadline. */
void rt_runtime_shutdown(rt_runtime_t *rt);
/** Waits for every worker thread to exit, then frees the runtime. */
void rt_runtime_join_and_free(rt_runtime_t *rt);

/** The worker the calling thread runs, or NULL off-worker. */
rt_worker_t *rt_worker_current(void);
/** Monotonic milliseconds (cached per loop turn on a worker). */
uint64_t rt_now_ms(void);
/** Puts `actor` on its home worker's run queue and wakes that worker if needed. Internal to
 * the runtime (actor.c); exposed for the I/O module. */
void rt_worker_schedule(rt_worker_t *worker, rt_actor_t *actor);

#endif
