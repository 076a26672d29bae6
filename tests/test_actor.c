/* Actors on a running worker pool: delivery across workers under stress, request/reply,
 * stop with messages in flight, bounded sends, actor timers and I/O completions. */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>
#include "runtime/io.h"
#include "runtime/worker.h"

enum { MSG_COUNT = RT_MSG_USER, MSG_PING, MSG_PONG, MSG_STOP, MSG_ARM, MSG_WATCH };

static rt_runtime_t *rt;

static void start_runtime(void)
{
    rt_config_t config = {.workers = 2, .drain_timeout_ms = 2000};
    rt = rt_runtime_create(&config);
    cr_assert_not_null(rt);
    cr_assert(rt_runtime_start(rt));
}

/* Every test stops its actors; shutdown drains the stop messages, after which none may be left. */
static void stop_runtime(void)
{
    for (int i = 0; i != rt->num_workers; ++i) {
        rt_worker_metrics_t *m = &rt->workers[i].metrics;
        for (int waited = 0;
             atomic_load(&m->actors_freed) != atomic_load(&m->actors_spawned) && waited < 5000;
             ++waited)
            usleep(1000);
        cr_assert_eq(atomic_load(&m->actors_freed), atomic_load(&m->actors_spawned),
                     "worker %d: actors still alive at the end of the test", i);
    }
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
}

/* Waits (bounded) until `counter` reaches `target`; returns its final value. */
static long wait_for(_Atomic long *counter, long target, int timeout_ms)
{
    for (int waited = 0; atomic_load(counter) < target && waited < timeout_ms; waited += 1)
        usleep(1000);
    return atomic_load(counter);
}

/* ---- delivery under stress: many producer threads, actors on both workers ---- */

#define STRESS_ACTORS 64
#define STRESS_PRODUCERS 4
#define STRESS_PER_PRODUCER 50000

typedef struct {
    int expected_next[STRESS_PRODUCERS]; /* per producer, messages must arrive in send order */
    _Atomic int order_errors;
} counter_state_t;

static _Atomic long total_received;

static void counter_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    counter_state_t *st = rt_actor_state(self);
    cr_assert_eq(rt_worker_current()->id, self->home, "actor ran off its home worker");
    if (msg->type != MSG_COUNT)
        return;
    int *payload = rt_msg_payload(msg);
    if (payload[1] != st->expected_next[payload[0]])
        atomic_fetch_add(&st->order_errors, 1);
    st->expected_next[payload[0]] = payload[1] + 1;
    atomic_fetch_add(&total_received, 1);
}

static rt_actor_t *stress_actors[STRESS_ACTORS];

static void *producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    int seq[STRESS_ACTORS] = {0};
    for (int i = 0; i != STRESS_PER_PRODUCER; ++i) {
        int target = (i * 7 + p) % STRESS_ACTORS;
        rt_msg_t *msg = rt_msg_new(MSG_COUNT, 2 * sizeof(int));
        int *payload = rt_msg_payload(msg);
        payload[0] = p;
        payload[1] = seq[target]++;
        rt_actor_send(stress_actors[target], msg);
    }
    return NULL;
}

Test(actor, delivery_under_stress_no_loss_and_in_order, .timeout = 120)
{
    start_runtime();
    for (int i = 0; i != STRESS_ACTORS; ++i)
        stress_actors[i] = rt_actor_spawn(rt, i % 2, counter_behaviour, sizeof(counter_state_t));
    pthread_t threads[STRESS_PRODUCERS];
    for (int p = 0; p != STRESS_PRODUCERS; ++p)
        pthread_create(&threads[p], NULL, producer, (void *)(intptr_t)p);
    for (int p = 0; p != STRESS_PRODUCERS; ++p)
        pthread_join(threads[p], NULL);
    long expected = (long)STRESS_PRODUCERS * STRESS_PER_PRODUCER;
    cr_assert_eq(wait_for(&total_received, expected, 60000), expected);
    usleep(10000);
    cr_assert_eq(atomic_load(&total_received), expected, "a message was delivered twice");
    for (int i = 0; i != STRESS_ACTORS; ++i) {
        counter_state_t *st = rt_actor_state(stress_actors[i]);
        cr_assert_eq(atomic_load(&st->order_errors), 0, "actor %d saw messages out of order", i);
        rt_actor_send_stop(stress_actors[i]);
        rt_actor_release(stress_actors[i]);
    }
    stop_runtime();
}

/* ---- ping-pong across workers with request/reply ---- */

typedef struct {
    rt_actor_t *peer;
    long remaining;
} pinger_t;

static _Atomic long pongs;

static void ponger_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != MSG_PING)
        return;
    rt_actor_reply(msg, rt_msg_new(MSG_PONG, 0));
}

static void pinger_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    pinger_t *st = rt_actor_state(self);
    if (msg->type == RT_MSG_STOP)
        return;
    if (msg->type == MSG_PONG) {
        cr_assert_eq(msg->corr, (uint64_t)st->remaining, "reply carries the wrong corr");
        atomic_fetch_add(&pongs, 1);
        if (--st->remaining == 0)
            return;
    }
    rt_actor_request(self, st->peer, rt_msg_new(MSG_PING, 0), (uint64_t)st->remaining);
}

Test(actor, request_reply_across_workers, .timeout = 60)
{
    start_runtime();
    rt_actor_t *ponger = rt_actor_spawn(rt, 1, ponger_behaviour, 0);
    rt_actor_t *pinger = rt_actor_spawn(rt, 0, pinger_behaviour, sizeof(pinger_t));
    pinger_t *st = rt_actor_state(pinger);
    st->peer = ponger;
    st->remaining = 100000;
    rt_actor_send(pinger, rt_msg_new(MSG_COUNT, 0));
    cr_assert_eq(wait_for(&pongs, 100000, 30000), 100000);
    rt_actor_send_stop(pinger);
    rt_actor_send_stop(ponger);
    rt_actor_release(pinger);
    rt_actor_release(ponger);
    stop_runtime();
}

/* ---- stop with messages in flight ---- */

static _Atomic long handled_before_stop;

static void stopper_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    atomic_fetch_add(&handled_before_stop, 1);
    if (msg->type == MSG_STOP)
        rt_actor_stop(self);
}

Test(actor, stop_with_messages_in_flight_drops_the_rest, .timeout = 60)
{
    start_runtime();
    rt_actor_t *a = rt_actor_spawn(rt, 1, stopper_behaviour, 0);
    for (int i = 0; i != 100; ++i)
        rt_actor_send(a, rt_msg_new(MSG_COUNT, 16));
    rt_actor_send(a, rt_msg_new(MSG_STOP, 0));
    for (int i = 0; i != 10000; ++i) /* all of these arrive after the stop */
        rt_actor_send(a, rt_msg_new(MSG_COUNT, 16));
    rt_worker_metrics_t *m = &rt->workers[1].metrics;
    for (int waited = 0; atomic_load(&m->messages_dropped) < 10000 && waited < 10000; ++waited)
        usleep(1000);
    cr_assert_eq(atomic_load(&handled_before_stop), 101);
    cr_assert_eq(atomic_load(&m->messages_dropped), 10000);
    rt_actor_release(a); /* the last reference: frees it (ASan checks the rest) */
    for (int waited = 0; atomic_load(&m->actors_freed) < 1 && waited < 1000; ++waited)
        usleep(1000);
    cr_assert_eq(atomic_load(&m->actors_freed), 1);
    stop_runtime();
}

/* ---- bounded sends refuse instead of growing ---- */

static void slow_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != RT_MSG_STOP)
        usleep(100);
}

Test(actor, try_send_refuses_beyond_the_bound, .timeout = 60)
{
    start_runtime();
    rt_actor_t *a = rt_actor_spawn(rt, 0, slow_behaviour, 0);
    int accepted = 0, refused = 0;
    for (int i = 0; i != 1000; ++i) {
        rt_msg_t *msg = rt_msg_new(MSG_COUNT, 0);
        if (rt_actor_try_send(a, msg, 16)) {
            ++accepted;
        } else {
            ++refused;
            rt_msg_free(msg);
        }
    }
    cr_assert_gt(refused, 0, "the bound never refused");
    cr_assert_geq(accepted, 16);
    rt_actor_send_stop(a);
    rt_actor_release(a);
    stop_runtime();
}

/* ---- timers and I/O completions arrive as messages ---- */

typedef struct {
    rt_actor_timer_t t1, t2, cancelled;
    int pipe_rd;
    char buf[16];
} timed_state_t;

static _Atomic long timer_tags_seen, io_bytes_seen, wrong_events;

static void timed_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    timed_state_t *st = rt_actor_state(self);
    switch (msg->type) {
    case MSG_ARM:
        rt_actor_timer_start(self, &st->t2, 30, 2);
        rt_actor_timer_start(self, &st->t1, 10, 1);
        rt_actor_timer_start(self, &st->cancelled, 20, 99);
        rt_actor_timer_cancel(self, &st->cancelled);
        break;
    case MSG_WATCH:
        cr_assert_neq(rt_io_poll(self, st->pipe_rd, POLLIN, 7), 0);
        break;
    case RT_MSG_TIMER:
        /* tags must come in expiry order: 1 then 2; the cancelled one never */
        if (msg->corr != (uint64_t)atomic_load(&timer_tags_seen) + 1)
            atomic_fetch_add(&wrong_events, 1);
        atomic_fetch_add(&timer_tags_seen, 1);
        break;
    case RT_MSG_IO: {
        rt_io_result_t *res = rt_msg_payload(msg);
        if (res->tag == 7) { /* readable: now read through the ring too */
            cr_assert(res->res & POLLIN);
            cr_assert_neq(rt_io_read(self, st->pipe_rd, st->buf, sizeof(st->buf), 8), 0);
        } else if (res->tag == 8) {
            atomic_fetch_add(&io_bytes_seen, res->res);
        }
        break;
    }
    }
}

Test(actor, timers_and_io_completions_arrive_as_messages, .timeout = 60)
{
    start_runtime();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    rt_actor_t *a = rt_actor_spawn(rt, 1, timed_behaviour, sizeof(timed_state_t));
    ((timed_state_t *)rt_actor_state(a))->pipe_rd = fds[0];
    rt_actor_send(a, rt_msg_new(MSG_ARM, 0));
    rt_actor_send(a, rt_msg_new(MSG_WATCH, 0));
    cr_assert_eq(wait_for(&timer_tags_seen, 2, 5000), 2);
    usleep(50000); /* the cancelled timer would have fired by now */
    cr_assert_eq(atomic_load(&timer_tags_seen), 2);
    cr_assert_eq(atomic_load(&wrong_events), 0);
    /* the worker sleeps in poll(2); the completion of the ring's poll must wake it */
    cr_assert_eq(write(fds[1], "hello", 5), 5);
    cr_assert_eq(wait_for(&io_bytes_seen, 5, 5000), 5);
    rt_actor_send_stop(a);
    rt_actor_release(a);
    stop_runtime();
    close(fds[0]);
    close(fds[1]);
}

/* ---- a kept message forwarded back and forth across workers (ownership moves with it) ---- */

typedef struct {
    rt_actor_t *peer;
} bouncer_t;

static _Atomic long bounces_done;

static void bouncer_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    bouncer_t *st = rt_actor_state(self);
    if (msg->type != MSG_PING)
        return;
    long *remaining = rt_msg_payload(msg);
    if (--*remaining == 0) {
        atomic_fetch_add(&bounces_done, 1);
        return; /* not kept: the runtime frees it */
    }
    rt_msg_keep(msg);
    rt_actor_send(st->peer, msg); /* from here on the peer's worker may free it */
}

Test(actor, kept_message_is_forwarded_and_freed_once, .timeout = 60)
{
    enum { PAIRS = 50, BOUNCES = 2000 };
    start_runtime();
    rt_actor_t *actors[2 * PAIRS];
    for (int i = 0; i != 2 * PAIRS; ++i)
        actors[i] = rt_actor_spawn(rt, i % 2, bouncer_behaviour, sizeof(bouncer_t));
    for (int i = 0; i != 2 * PAIRS; ++i)
        ((bouncer_t *)rt_actor_state(actors[i]))->peer = actors[i ^ 1];
    for (int p = 0; p != PAIRS; ++p) {
        rt_msg_t *msg = rt_msg_new(MSG_PING, sizeof(long));
        *(long *)rt_msg_payload(msg) = BOUNCES;
        rt_actor_send(actors[2 * p], msg);
    }
    cr_assert_eq(wait_for(&bounces_done, PAIRS, 30000), PAIRS);
    long handled = 0;
    for (int i = 0; i != rt->num_workers; ++i)
        handled += (long)atomic_load(&rt->workers[i].metrics.messages_handled);
    cr_assert_geq(handled, (long)PAIRS * BOUNCES);
    for (int i = 0; i != 2 * PAIRS; ++i) {
        rt_actor_send_stop(actors[i]);
        rt_actor_release(actors[i]);
    }
    stop_runtime();
}
