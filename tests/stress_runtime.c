/*
 * Runtime stress run without criterion, so that ThreadSanitizer can watch it (criterion's
 * forking runner does not start under TSan). Exercises the lock-free paths from many threads at
 * once: mailboxes with many producers, cross-worker request/reply, remote frees of messages,
 * stops with messages in flight, and timers. Exits 0 when every count matches, 1 otherwise.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include "runtime/worker.h"

enum { MSG_WORK = RT_MSG_USER, MSG_PING, MSG_PONG, MSG_KICK };

#define ACTORS 32
#define PRODUCERS 4
#define PER_PRODUCER 20000
#define ROUND_TRIPS 50000

static _Atomic long work_done, pongs, timer_fires, failures;
static rt_actor_t *workers_actors[ACTORS];

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "stress: FAILED: %s\n", what);
        atomic_fetch_add(&failures, 1);
    }
}

typedef struct {
    long handled;
    rt_actor_timer_t timer;
    int timer_rounds;
} work_state_t;

static void work_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    work_state_t *st = rt_actor_state(self);
    switch (msg->type) {
    case MSG_WORK:
        ++st->handled; /* plain state: only this actor's worker touches it */
        atomic_fetch_add_explicit(&work_done, 1, memory_order_relaxed);
        break;
    case MSG_KICK:
        rt_actor_timer_start(self, &st->timer, 1, 0);
        break;
    case RT_MSG_TIMER:
        atomic_fetch_add(&timer_fires, 1);
        if (++st->timer_rounds < 20)
            rt_actor_timer_start(self, &st->timer, 1, 0);
        break;
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &st->timer);
        break;
    }
}

static void *produce(void *arg)
{
    for (int i = 0; i != PER_PRODUCER; ++i)
        rt_actor_send(workers_actors[(i + (int)(intptr_t)arg) % ACTORS], rt_msg_new(MSG_WORK, 8));
    return NULL;
}

typedef struct {
    rt_actor_t *peer;
    long remaining;
} pinger_t;

/* Answers every other ping by forwarding the request message itself back (kept, then sent), so
 * that ownership moving across workers mid-turn runs under TSan too. */
static void ponger_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    static __thread long turn;
    if (msg->type != MSG_PING)
        return;
    if (++turn % 2 == 0) {
        rt_actor_reply(msg, rt_msg_new(MSG_PONG, 16));
        return;
    }
    rt_actor_t *to = msg->reply_to;
    msg->reply_to = NULL;
    msg->type = MSG_PONG;
    rt_msg_keep(msg);
    rt_actor_send(to, msg);
    rt_actor_release(to); /* the reference the request held */
}

static void pinger_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    pinger_t *st = rt_actor_state(self);
    if (msg->type == RT_MSG_STOP)
        return;
    if (msg->type == MSG_PONG) {
        atomic_fetch_add(&pongs, 1);
        if (--st->remaining == 0)
            return;
    }
    rt_actor_request(self, st->peer, rt_msg_new(MSG_PING, 16), 1);
}

static long wait_for(_Atomic long *counter, long target)
{
    for (int waited_ms = 0; atomic_load(counter) < target && waited_ms < 120000; ++waited_ms)
        usleep(1000);
    return atomic_load(counter);
}

int main(void)
{
    rt_config_t config = {.workers = 2, .drain_timeout_ms = 5000};
    rt_runtime_t *rt = rt_runtime_create(&config);
    check(rt != NULL && rt_runtime_start(rt), "runtime start");

    for (int i = 0; i != ACTORS; ++i)
        workers_actors[i] = rt_actor_spawn(rt, i % 2, work_behaviour, sizeof(work_state_t));
    rt_actor_t *ponger = rt_actor_spawn(rt, 1, ponger_behaviour, 0);
    rt_actor_t *pinger = rt_actor_spawn(rt, 0, pinger_behaviour, sizeof(pinger_t));
    ((pinger_t *)rt_actor_state(pinger))->peer = ponger;
    ((pinger_t *)rt_actor_state(pinger))->remaining = ROUND_TRIPS;
    rt_actor_send(pinger, rt_msg_new(MSG_WORK, 0));
    for (int i = 0; i != ACTORS; ++i)
        rt_actor_send(workers_actors[i], rt_msg_new(MSG_KICK, 0));

    pthread_t threads[PRODUCERS];
    for (int p = 0; p != PRODUCERS; ++p)
        pthread_create(&threads[p], NULL, produce, (void *)(intptr_t)p);
    for (int p = 0; p != PRODUCERS; ++p)
        pthread_join(threads[p], NULL);

    check(wait_for(&work_done, (long)PRODUCERS * PER_PRODUCER) == (long)PRODUCERS * PER_PRODUCER,
          "every work message handled once");
    check(wait_for(&pongs, ROUND_TRIPS) == ROUND_TRIPS, "every ping answered");
    check(wait_for(&timer_fires, ACTORS * 20) == ACTORS * 20, "every timer fired");

    /* stop everything, with messages still arriving after the stop */
    for (int i = 0; i != ACTORS; ++i) {
        rt_actor_send_stop(workers_actors[i]);
        for (int k = 0; k != 100; ++k)
            rt_actor_send(workers_actors[i], rt_msg_new(MSG_WORK, 8));
        rt_actor_release(workers_actors[i]);
    }
    rt_actor_send_stop(pinger);
    rt_actor_send_stop(ponger);
    rt_actor_release(pinger);
    rt_actor_release(ponger);
    for (int w = 0; w != rt->num_workers; ++w) {
        rt_worker_metrics_t *m = &rt->workers[w].metrics;
        for (int waited = 0;
             atomic_load(&m->actors_freed) != atomic_load(&m->actors_spawned) && waited < 10000;
             ++waited)
            usleep(1000);
        check(atomic_load(&m->actors_freed) == atomic_load(&m->actors_spawned),
              "every actor freed after its stop");
    }
    check(atomic_load(&work_done) == (long)PRODUCERS * PER_PRODUCER,
          "no message handled after a stop");
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    long failed = atomic_load(&failures);
    printf("stress_runtime: %s\n", failed == 0 ? "ok" : "FAILED");
    return failed == 0 ? 0 : 1;
}
