/*
 * Runtime micro-benchmarks: message throughput (ping-pong across workers, fan-in), spawn rate,
 * bytes per idle actor and RSS with a million idle actors. Prints one table row per figure and
 * a JSON line per figure (prefix "json: ") for the bench harness.
 *
 * usage: runtime_bench [WORKERS]   (default 2)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "runtime/io.h"
#include "runtime/worker.h"
#include <poll.h>

enum { MSG_BOUNCE = RT_MSG_USER, MSG_FAN, MSG_SEND_BURST, MSG_SPAWN };

static rt_runtime_t *rt;
static _Atomic long done;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_bytes(void)
{
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
        pages_resident = 0;
    if (f != NULL)
        fclose(f);
    return pages_resident * sysconf(_SC_PAGESIZE);
}

static void wait_done(long target)
{
    while (atomic_load(&done) < target)
        usleep(100);
}

static void report(const char *name, double value, const char *unit, const char *target)
{
    printf("| %-44s | %14.0f | %-10s | %-22s |\n", name, value, unit, target);
    printf("json: {\"name\":\"%s\",\"value\":%.1f,\"unit\":\"%s\"}\n", name, value, unit);
}

static void stop_all(rt_actor_t **actors, long n)
{
    for (long i = 0; i != n; ++i) {
        rt_actor_send_stop(actors[i]);
        rt_actor_release(actors[i]);
    }
}

/* ---- ping-pong: pairs split across the two workers bounce one message each ---- */

static void bounce(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != MSG_BOUNCE)
        return;
    long *remaining = rt_msg_payload(msg);
    if (--*remaining == 0) {
        atomic_fetch_add(&done, 1);
        return;
    }
    rt_msg_keep(msg); /* the same message goes back: no allocation per hop */
    rt_actor_send(*(rt_actor_t **)rt_actor_state(self), msg);
}

static double bench_ping_pong(long pairs, long hops)
{
    rt_actor_t **actors = malloc(sizeof(*actors) * (size_t)pairs * 2);
    for (long i = 0; i != pairs * 2; ++i)
        actors[i] = rt_actor_spawn(rt, (int)(i % rt->num_workers), bounce, sizeof(rt_actor_t *));
    for (long i = 0; i != pairs * 2; ++i)
        *(rt_actor_t **)rt_actor_state(actors[i]) = actors[i ^ 1];
    atomic_store(&done, 0);
    double start = now_s();
    for (long p = 0; p != pairs; ++p) {
        rt_msg_t *msg = rt_msg_new(MSG_BOUNCE, sizeof(long));
        *(long *)rt_msg_payload(msg) = hops;
        rt_actor_send(actors[2 * p], msg);
    }
    wait_done(pairs);
    double elapsed = now_s() - start;
    stop_all(actors, pairs * 2);
    free(actors);
    return (double)(pairs * hops) / elapsed;
}

/* ---- fan-in: many senders (on every worker) to one sink, fresh message each ---- */

static _Atomic long fan_received;
static long fan_expected;

static void sink(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type == MSG_FAN && atomic_fetch_add(&fan_received, 1) + 1 == fan_expected)
        atomic_fetch_add(&done, 1);
}

static void sender(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != MSG_SEND_BURST)
        return;
    rt_actor_t *to = *(rt_actor_t **)rt_actor_state(self);
    long count = *(long *)rt_msg_payload(msg);
    for (long i = 0; i != count; ++i)
        rt_actor_send(to, rt_msg_new(MSG_FAN, 8));
}

static double bench_fan_in(long senders, long per_sender)
{
    rt_actor_t *target = rt_actor_spawn(rt, 0, sink, 0);
    rt_actor_t **actors = malloc(sizeof(*actors) * (size_t)senders);
    for (long i = 0; i != senders; ++i) {
        actors[i] = rt_actor_spawn(rt, (int)(i % rt->num_workers), sender, sizeof(rt_actor_t *));
        *(rt_actor_t **)rt_actor_state(actors[i]) = target;
    }
    atomic_store(&done, 0);
    atomic_store(&fan_received, 0);
    fan_expected = senders * per_sender;
    double start = now_s();
    for (long i = 0; i != senders; ++i) {
        rt_msg_t *msg = rt_msg_new(MSG_SEND_BURST, sizeof(long));
        *(long *)rt_msg_payload(msg) = per_sender;
        rt_actor_send(actors[i], msg);
    }
    wait_done(1);
    double elapsed = now_s() - start;
    stop_all(actors, senders);
    stop_all(&target, 1);
    free(actors);
    return (double)fan_expected / elapsed;
}

/* ---- spawn: one spawner per worker creates idle actors locally (slab-allocated) ---- */

typedef struct {
    rt_actor_t **out;
    long count;
} spawn_order_t;

static void idle(rt_actor_t *self, rt_msg_t *msg)
{
}

static void spawner(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != MSG_SPAWN)
        return;
    spawn_order_t *order = rt_msg_payload(msg);
    for (long i = 0; i != order->count; ++i)
        order->out[i] = rt_actor_spawn(rt, -1, idle, 0);
    atomic_fetch_add(&done, 1);
}

static void bench_spawn(long total)
{
    rt_actor_t **actors = malloc(sizeof(*actors) * (size_t)total);
    rt_actor_t *spawners[RT_MAX_WORKERS];
    long per_worker = total / rt->num_workers;
    for (int w = 0; w != rt->num_workers; ++w)
        spawners[w] = rt_actor_spawn(rt, w, spawner, 0);
    usleep(100000);
    long rss_before = rss_bytes();
    atomic_store(&done, 0);
    double start = now_s();
    for (int w = 0; w != rt->num_workers; ++w) {
        rt_msg_t *msg = rt_msg_new(MSG_SPAWN, sizeof(spawn_order_t));
        spawn_order_t *order = rt_msg_payload(msg);
        order->out = actors + w * per_worker;
        order->count = per_worker;
        rt_actor_send(spawners[w], msg);
    }
    wait_done(rt->num_workers);
    double elapsed = now_s() - start;
    long spawned = per_worker * rt->num_workers;
    long rss_after = rss_bytes();
    report("spawn rate (actors/s, all workers)", (double)spawned / elapsed, "actors/s", "-");
    report("bytes per idle actor (RSS delta / actors)",
           (double)(rss_after - rss_before) / (double)spawned, "bytes", "<= 128");
    report("RSS with 1M idle actors (whole process)", (double)rss_after / (1024.0 * 1024.0), "MiB",
           "<= 256");
    stop_all(actors, spawned);
    stop_all(spawners, rt->num_workers);
    free(actors);
}

/* ---- wake latency: a sleeping worker gets an io_uring poll completion ---- */

enum { MSG_WATCH = MSG_SPAWN + 1 };
static int pipe_fds[2];
static _Atomic long woke_ns;

static long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void watcher(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type == RT_MSG_IO) {
        atomic_store(&woke_ns, mono_ns());
        char byte;
        if (read(pipe_fds[0], &byte, 1) != 1)
            abort();
        atomic_fetch_add(&done, 1);
    }
    if (msg->type == RT_MSG_IO || msg->type == MSG_WATCH)
        rt_io_poll(self, pipe_fds[0], POLLIN, 0);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static void bench_io_wake(int rounds)
{
    if (pipe(pipe_fds) != 0)
        abort();
    long *lat = malloc(sizeof(long) * (size_t)rounds);
    rt_actor_t *a = rt_actor_spawn(rt, rt->num_workers - 1, watcher, 0);
    atomic_store(&done, 0);
    rt_actor_send(a, rt_msg_new(MSG_WATCH, 0));
    for (int i = 0; i != rounds; ++i) {
        usleep(300); /* let the worker fall asleep in its wait */
        long start = mono_ns();
        if (write(pipe_fds[1], "x", 1) != 1)
            abort();
        wait_done(i + 1);
        lat[i] = atomic_load(&woke_ns) - start;
    }
    qsort(lat, (size_t)rounds, sizeof(long), cmp_long);
    report("I/O completion wakes a sleeping worker, p50 (us)", (double)lat[rounds / 2] / 1000.0,
           "us", "-");
    report("I/O completion wakes a sleeping worker, p99 (us)",
           (double)lat[rounds * 99 / 100] / 1000.0, "us", "-");
    stop_all(&a, 1);
    free(lat);
}

int main(int argc, char **argv)
{
    int workers = argc > 1 ? atoi(argv[1]) : 2;
    rt_config_t config = {.workers = workers};
    rt = rt_runtime_create(&config);
    if (rt == NULL || !rt_runtime_start(rt)) {
        fprintf(stderr, "runtime_bench: cannot start the runtime\n");
        return 1;
    }
    printf("runtime_bench: %d workers, %ld online CPUs, sizeof(rt_actor_t) = %zu\n\n",
           rt->num_workers, sysconf(_SC_NPROCESSORS_ONLN), sizeof(rt_actor_t));
    printf("| %-44s | %14s | %-10s | %-22s |\n", "figure", "value", "unit", "target");
    printf("|%s|%s|%s|%s|\n", "----------------------------------------------", "----------------",
           "------------", "------------------------");
    /* memory first, on a fresh runtime: later runs leave freed slab memory resident that new
     * actors would reuse, which would hide their cost */
    bench_spawn(1000000);
    bench_ping_pong(1000, 2000); /* warm-up: fills the slabs and caches */
    report("ping-pong across workers, 1000 pairs (msg/s)", bench_ping_pong(1000, 10000), "msg/s",
           ">= 10,000,000 total");
    report("ping-pong across workers, 1 pair (msg/s)", bench_ping_pong(1, 200000), "msg/s", "-");
    report("fan-in, 1000 senders -> 1 actor (msg/s)", bench_fan_in(1000, 2000), "msg/s", "-");
    bench_io_wake(2000);
    printf("command: build/bench/runtime_bench %d\n", rt->num_workers);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    return 0;
}
