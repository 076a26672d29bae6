#include "runtime/metrics.h"
#include <stdarg.h>
#include <stdio.h>

typedef struct st_metric_def_t {
    const char *name;
    const char *type;
    const char *help;
    size_t offset;
} metric_def_t;

#define DEF(field, type, help)                                                                     \
    {                                                                                              \
        "intentd_" #field, type, help, offsetof(rt_worker_metrics_t, field)                        \
    }

static const metric_def_t defs[] = {
    DEF(messages_handled, "counter", "Messages handled by actors."),
    DEF(messages_dropped, "counter", "Messages dropped because their actor had stopped."),
    DEF(actors_spawned, "counter", "Actors spawned with this worker as home."),
    DEF(actors_freed, "counter", "Actors freed whose home was this worker."),
    DEF(actor_turns, "counter", "Times an actor was run (each handles a bounded batch)."),
    DEF(timers_fired, "counter", "Timer wheel expirations."),
    DEF(ring_submissions, "counter", "io_uring submission queue entries submitted."),
    DEF(ring_completions, "counter", "io_uring completions reaped."),
    DEF(wakeups_sent, "counter", "Cross-thread wake-ups of this worker (eventfd writes)."),
    DEF(loop_iterations, "counter", "Turns of the worker loop."),
    DEF(http_requests, "counter", "HTTP requests received."),
    DEF(slab_bytes, "gauge", "Bytes the worker's slab allocator holds from the system."),
};

static size_t append(char *buf, size_t cap, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t cap, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, fmt, ap);
    va_end(ap);
    return len + (n > 0 ? (size_t)n : 0);
}

size_t rt_metrics_render(rt_runtime_t *rt, char *buf, size_t cap)
{
    size_t len = 0;
    for (size_t d = 0; d != sizeof(defs) / sizeof(defs[0]); ++d) {
        const char *suffix = defs[d].type[0] == 'c' ? "_total" : "";
        len = append(buf, cap, len, "# HELP %s%s %s\n# TYPE %s%s %s\n", defs[d].name, suffix,
                     defs[d].help, defs[d].name, suffix, defs[d].type);
        for (int i = 0; i != rt->num_workers; ++i) {
            const char *base = (const char *)&rt->workers[i].metrics;
            const _Atomic uint64_t *value = (const _Atomic uint64_t *)(base + defs[d].offset);
            len = append(buf, cap, len, "%s%s{worker=\"%d\"} %llu\n", defs[d].name, suffix, i,
                         (unsigned long long)atomic_load_explicit(value, memory_order_relaxed));
        }
    }
    len = append(buf, cap, len,
                 "# HELP intentd_actors_live Actors alive now (spawned minus freed).\n"
                 "# TYPE intentd_actors_live gauge\n");
    for (int i = 0; i != rt->num_workers; ++i) {
        rt_worker_metrics_t *m = &rt->workers[i].metrics;
        long long live =
            (long long)atomic_load(&m->actors_spawned) - (long long)atomic_load(&m->actors_freed);
        len = append(buf, cap, len, "intentd_actors_live{worker=\"%d\"} %lld\n", i, live);
    }
    return len;
}
