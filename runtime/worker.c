#include "runtime/worker.h"
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "runtime/log.h"

/* Actors handled per loop turn before timers and completions are looked at again. */
#define TURNS_PER_ITERATION 512
/* Longest sleep when nothing is scheduled: bounds how stale the cached clock can get. */
#define MAX_SLEEP_MS 1000
/* Longest sleep while draining, so the deadline is noticed promptly. */
#define DRAIN_POLL_MS 10

rt_runtime_t *rt__process_runtime;
static __thread rt_worker_t *current_worker;

/* actor.c and io.c */
bool rt__actor_run(rt_worker_t *w, rt_actor_t *a);
void rt__actor_discard(rt_actor_t *a);
uint64_t rt__fire_timers(rt_worker_t *w, uint64_t now_ms);
void rt__io_complete(rt_worker_t *w, struct io_uring_cqe *cqe);

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

rt_worker_t *rt_worker_current(void)
{
    return current_worker;
}

uint64_t rt_now_ms(void)
{
    return current_worker != NULL ? current_worker->cached_now_ms : monotonic_ms();
}

static void wake(rt_worker_t *w)
{
    if (w->wake_fd < 0)
        return; /* a worker that failed to open: nothing to wake */
    /* pairs with the worker's "sleeping = 1, then re-check the run queue" (Dekker-style, both
     * sides seq_cst): either it sees our push or we see its flag */
    if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst)) {
        uint64_t one = 1;
        ssize_t n = write(w->wake_fd, &one, sizeof(one));
        assert(n == sizeof(one) || errno == EAGAIN); /* EAGAIN: counter full, already awake */
        (void)n;
        atomic_fetch_add_explicit(&w->metrics.wakeups_sent, 1, memory_order_relaxed);
    }
}

void rt_worker_schedule(rt_worker_t *worker, rt_actor_t *actor)
{
    rt_mpsc_push(&worker->run_queue, &actor->run_node);
    if (worker != current_worker)
        wake(worker);
}

/* ---- the default waiter: poll(2) on the wake eventfd ---- */

static void drain_wake_fd(int fd)
{
    uint64_t value;
    while (read(fd, &value, sizeof(value)) == sizeof(value))
        ;
}

static void *poll_waiter_init(rt_worker_t *worker, int wake_fd, void *data)
{
    return (void *)(intptr_t)wake_fd;
}

static void poll_waiter_wait(void *ctx, int timeout_ms)
{
    struct pollfd pfd = {.fd = (int)(intptr_t)ctx, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) > 0)
        drain_wake_fd(pfd.fd);
}

static bool poll_waiter_is_idle(void *ctx)
{
    return true;
}

static void poll_waiter_noop(void *ctx)
{
}

static rt_waiter_t poll_waiter = {poll_waiter_init,    poll_waiter_wait, poll_waiter_noop,
                                  poll_waiter_is_idle, poll_waiter_noop, NULL};

/* ---- io_uring set-up ---- */

static const struct {
    int opcode;
    const char *name;
} required_ops[] = {
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_READ, "READ"},
    {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_TIMEOUT, "TIMEOUT"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
};

static int read_sysctl_int(const char *path)
{
    FILE *f = fopen(path, "r");
    int value = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &value) != 1)
            value = -1;
        fclose(f);
    }
    return value;
}

/* The probe's arguments and answer, for the thread that runs it. */
typedef struct st_probe_t {
    char *why;
    size_t why_size;
    bool ok;
} probe_t;

static bool probe_rings(char *why, size_t why_size)
{
    struct io_uring ring;
    int ret = io_uring_queue_init(8, &ring, 0);
    if (ret < 0) {
        int disabled = read_sysctl_int("/proc/sys/kernel/io_uring_disabled");
        if (disabled > 0)
            snprintf(why, why_size,
                     "io_uring is disabled on this host (sysctl kernel.io_uring_disabled=%d); "
                     "intentd needs it: set it to 0",
                     disabled);
        else if (ret == -ENOSYS || ret == -EPERM)
            snprintf(why, why_size,
                     "io_uring_setup was refused (%s): the kernel lacks io_uring or a seccomp "
                     "policy (container runtime) blocks it; intentd needs io_uring",
                     strerror(-ret));
        else
            snprintf(why, why_size, "io_uring_setup failed: %s", strerror(-ret));
        return false;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    bool ok = probe != NULL;
    if (!ok)
        snprintf(why, why_size, "this kernel cannot report io_uring opcodes (needs >= 5.6)");
    for (size_t i = 0; ok && i != sizeof(required_ops) / sizeof(required_ops[0]); ++i) {
        if (!io_uring_opcode_supported(probe, required_ops[i].opcode)) {
            snprintf(why, why_size, "this kernel's io_uring lacks IORING_OP_%s",
                     required_ops[i].name);
            ok = false;
        }
    }
    if (probe != NULL)
        io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    return ok;
}

static void *probe_main(void *arg)
{
    probe_t *p = arg;
    p->ok = probe_rings(p->why, p->why_size);
    return NULL;
}

bool rt_probe_io_uring(char *why, size_t why_size)
{
    /* The probe's ring is made and closed on a thread of its own, joined at once. The kernel
     * remembers each thread that set up a ring; tearing the ring down (a kernel worker, a few ms
     * after the close, later on a busy machine) then interrupts every such thread still alive
     * with task work, as a signal would. The caller's blocking calls restart after that, except
     * socket reads and writes with SO_RCVTIMEO/SO_SNDTIMEO, which fail with EINTR: the tests'
     * blocking JSON-RPC calls to anvil right after harness_start failed so ("no answer").
     * A thread that has exited is forgotten, so this one interrupts nobody. */
    probe_t p = {why, why_size, false};
    pthread_t thread;
    int ret = pthread_create(&thread, NULL, probe_main, &p);
    if (ret != 0) {
        snprintf(why, why_size, "cannot start the io_uring probe's thread: %s", strerror(ret));
        return false;
    }
    pthread_join(thread, NULL);
    return p.ok;
}

/* Called on the worker's own thread: the ring is created here so that its single issuer is the
 * thread that will submit to it. */
static bool worker_open(rt_worker_t *w)
{
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    /* default task-run mode: measured against COOP_TASKRUN|SINGLE_ISSUER (docs/architecture.md),
     * same wake-up latency and message rate, and no rule about which thread may submit */
    params.flags = IORING_SETUP_CLAMP;
    int ret = io_uring_queue_init_params(w->rt->config.ring_entries, &w->ring, &params);
    if (ret < 0) {
        rt_log_error("runtime", "worker %d: io_uring_queue_init: %s", w->id, strerror(-ret));
        return false;
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0 || io_uring_register_eventfd(&w->ring, w->wake_fd) != 0) {
        rt_log_error("runtime", "worker %d: eventfd set-up failed: %s", w->id, strerror(errno));
        return false;
    }
    rt_waiter_t *waiter = w->rt->config.waiter;
    w->waiter_ctx = waiter->init(w, w->wake_fd, waiter->data);
    return w->waiter_ctx != NULL;
}

static void reap_completions(rt_worker_t *w)
{
    struct io_uring_cqe *cqes[64];
    unsigned n;
    /* bounded: one batch per turn keeps actors and HTTP from waiting behind a flood */
    n = io_uring_peek_batch_cqe(&w->ring, cqes, sizeof(cqes) / sizeof(cqes[0]));
    for (unsigned i = 0; i != n; ++i)
        rt__io_complete(w, cqes[i]);
    if (n != 0) {
        io_uring_cq_advance(&w->ring, n);
        atomic_fetch_add_explicit(&w->metrics.ring_completions, n, memory_order_relaxed);
    }
}

static void run_ready_actors(rt_worker_t *w)
{
    for (int turns = 0; turns != TURNS_PER_ITERATION; ++turns) {
        rt_mpsc_node_t *node = rt_mpsc_pop(&w->run_queue);
        if (node == NULL)
            break;
        rt_actor_t *a = container_of(node, rt_actor_t, run_node);
        if (rt__actor_run(w, a))
            rt_mpsc_push(&w->run_queue, &a->run_node);
    }
}

static void submit_pending(rt_worker_t *w)
{
    unsigned ready = io_uring_sq_ready(&w->ring);
    if (ready == 0)
        return;
    int ret = io_uring_submit(&w->ring);
    if (ret > 0)
        atomic_fetch_add_explicit(&w->metrics.ring_submissions, (uint64_t)ret,
                                  memory_order_relaxed);
    else if (ret < 0 && ret != -EAGAIN && ret != -EBUSY)
        rt_log_error("runtime", "io_uring_submit: %s", strerror(-ret));
}

/* How long the worker may sleep: 0 when anything is runnable, else until the next timer. */
static int sleep_budget_ms(rt_worker_t *w)
{
    if (!rt_mpsc_is_empty(&w->run_queue) || io_uring_cq_ready(&w->ring) != 0)
        return 0;
    uint64_t next = rt_wheel_next_event_ms(&w->wheel);
    uint64_t now = monotonic_ms();
    if (next <= now)
        return 0;
    return next - now > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)(next - now);
}

static void sleep_until_woken(rt_worker_t *w, bool draining)
{
    /* ask the ring to signal the eventfd only while we may be asleep: when busy, completions are
     * reaped by polling the CQ and signalling would cost a needless eventfd read per turn */
    io_uring_cq_eventfd_toggle(&w->ring, true);
    atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
    int timeout_ms = sleep_budget_ms(w);
    if (draining && timeout_ms > DRAIN_POLL_MS)
        timeout_ms = DRAIN_POLL_MS; /* look at the drain deadline often */
    w->rt->config.waiter->wait(w->waiter_ctx, timeout_ms);
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
    io_uring_cq_eventfd_toggle(&w->ring, false);
}

/* At stop: asks the kernel to cancel every operation still in flight (polls on sockets that
 * will never be readable again, timeouts), so that their completions come back promptly. */
static void cancel_all_io(rt_worker_t *w)
{
    if (w->io_in_flight == 0)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (sqe == NULL)
        return; /* the deadline still bounds the wait */
    io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data(sqe, NULL); /* its own completion is not reported */
    submit_pending(w);
}

static void worker_loop(rt_worker_t *w)
{
    rt_runtime_t *rt = w->rt;
    bool draining = false, cancelled_io = false;
    for (;;) {
        w->cached_now_ms = monotonic_ms();
        uint64_t fired = rt__fire_timers(w, w->cached_now_ms);
        if (fired != 0)
            atomic_fetch_add_explicit(&w->metrics.timers_fired, fired, memory_order_relaxed);
        reap_completions(w);
        run_ready_actors(w);
        submit_pending(w);
        atomic_fetch_add_explicit(&w->metrics.loop_iterations, 1, memory_order_relaxed);
        atomic_store_explicit(&w->metrics.slab_bytes, w->slab.bytes_reserved, memory_order_relaxed);
        int state = atomic_load_explicit(&rt->state, memory_order_acquire);
        if (state != RT_STATE_RUNNING) {
            if (!draining) {
                draining = true;
                rt->config.waiter->begin_drain(w->waiter_ctx);
            }
            bool idle = rt->config.waiter->is_idle(w->waiter_ctx);
            atomic_store_explicit(&w->drained, idle, memory_order_release);
            if (state == RT_STATE_STOPPING && !cancelled_io) {
                cancel_all_io(w);
                cancelled_io = true;
            }
            /* exit once nothing is runnable and every ring operation has completed (each holds
             * a reference on its actor, released by its completion), or at the deadline */
            if (state == RT_STATE_STOPPING &&
                ((idle && rt_mpsc_is_empty(&w->run_queue) && w->io_in_flight == 0) ||
                 monotonic_ms() >= rt->drain_deadline_ms))
                break;
        }
        sleep_until_woken(w, draining);
    }
}

/* Discards the actors left on w's run queue (their messages and run-queue references). Only
 * the queue's consumer may call it: w's thread, or anyone once it has been joined. */
static void discard_run_queue(rt_worker_t *w)
{
    rt_mpsc_node_t *node;
    while ((node = rt_mpsc_pop(&w->run_queue)) != NULL)
        rt__actor_discard(container_of(node, rt_actor_t, run_node));
}

static void worker_close(rt_worker_t *w)
{
    discard_run_queue(w);
    w->rt->config.waiter->dispose(w->waiter_ctx);
    io_uring_queue_exit(&w->ring); /* cancels what is still in flight */
    /* the eventfd stays open until rt_runtime_join_and_free: another thread may still be
     * waking this worker (wake_all at shutdown), and a closed, reused fd would take the write */
}

static void *worker_main(void *arg)
{
    rt_worker_t *w = arg;
    current_worker = w;
    rt_log_set_worker(w->id);
    bool ok = worker_open(w);
    if (!ok)
        atomic_fetch_add(&w->rt->workers_failed, 1);
    atomic_fetch_add(&w->rt->workers_reported, 1);
    if (ok) {
        worker_loop(w);
        worker_close(w);
    }
    current_worker = NULL;
    return NULL;
}

rt_runtime_t *rt_runtime_create(const rt_config_t *config)
{
    assert(rt__process_runtime == NULL); /* one runtime per process at a time */
    rt_runtime_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return NULL;
    rt->config = *config;
    if (rt->config.workers <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        rt->config.workers = cpus > 0 ? (int)cpus : 1;
    }
    if (rt->config.workers > RT_MAX_WORKERS)
        rt->config.workers = RT_MAX_WORKERS;
    if (rt->config.ring_entries == 0)
        rt->config.ring_entries = 1024;
    if (rt->config.drain_timeout_ms == 0)
        rt->config.drain_timeout_ms = 10000;
    if (rt->config.waiter == NULL)
        rt->config.waiter = &poll_waiter;
    rt->num_workers = rt->config.workers;
    rt->workers = aligned_alloc(64, sizeof(rt_worker_t) * (size_t)rt->num_workers);
    if (rt->workers == NULL) {
        free(rt);
        return NULL;
    }
    memset(rt->workers, 0, sizeof(rt_worker_t) * (size_t)rt->num_workers);
    uint64_t now = monotonic_ms();
    for (int i = 0; i != rt->num_workers; ++i) {
        rt_worker_t *w = &rt->workers[i];
        w->rt = rt;
        w->id = (uint16_t)i;
        w->wake_fd = -1;
        rt_mpsc_init(&w->run_queue);
        rt_wheel_init(&w->wheel, now);
        rt_slab_init(&w->slab);
    }
    rt__process_runtime = rt;
    return rt;
}

static void wake_all(rt_runtime_t *rt);

bool rt_runtime_start(rt_runtime_t *rt)
{
    /* workers inherit a mask with the shutdown signals blocked: the main thread takes them */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (int i = 0; i != rt->num_workers; ++i) {
        int ret = pthread_create(&rt->workers[i].thread, NULL, worker_main, &rt->workers[i]);
        if (ret != 0)
            rt_log_fatal("runtime", "pthread_create: %s", strerror(ret));
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* wait until every worker reports; bounded: each either opens its ring or fails at once */
    while (atomic_load(&rt->workers_reported) < rt->num_workers)
        usleep(1000);
    if (atomic_load(&rt->workers_failed) == 0)
        return true;
    /* the workers that did open exit at once: nothing is in flight yet */
    atomic_store(&rt->state, RT_STATE_STOPPING);
    wake_all(rt);
    return false;
}

static void wake_all(rt_runtime_t *rt)
{
    for (int i = 0; i != rt->num_workers; ++i) {
        rt_worker_t *w = &rt->workers[i];
        atomic_store(&w->sleeping, 1); /* force the eventfd write even if it is awake */
        wake(w);
    }
}

bool rt_runtime_begin_drain(rt_runtime_t *rt)
{
    int expected = RT_STATE_RUNNING;
    if (atomic_load(&rt->state) == RT_STATE_RUNNING)
        rt->drain_deadline_ms = monotonic_ms() + rt->config.drain_timeout_ms;
    if (atomic_compare_exchange_strong(&rt->state, &expected, RT_STATE_DRAINING))
        wake_all(rt);
    /* bounded by the deadline; the workers publish their state every loop turn */
    for (;;) {
        int idle = 0;
        for (int i = 0; i != rt->num_workers; ++i)
            idle += atomic_load_explicit(&rt->workers[i].drained, memory_order_acquire);
        if (idle == rt->num_workers)
            return true;
        if (monotonic_ms() >= rt->drain_deadline_ms)
            return false;
        usleep(1000);
    }
}

void rt_runtime_shutdown(rt_runtime_t *rt)
{
    if (atomic_load(&rt->state) == RT_STATE_RUNNING)
        rt_runtime_begin_drain(rt);
    atomic_store(&rt->state, RT_STATE_STOPPING);
    wake_all(rt);
}

void rt_runtime_join_and_free(rt_runtime_t *rt)
{
    for (int i = 0; i != rt->num_workers; ++i)
        pthread_join(rt->workers[i].thread, NULL);
    atomic_store(&rt->state, RT_STATE_STOPPED);
    /* workers leave one by one: a worker still running may have scheduled an actor on one that
     * had already closed (a socket's session detaching from its hub while the hubs stop), and
     * that actor's run-queue reference and messages would leak. Every thread is joined now, so
     * nothing can be pushed any more. */
    for (int i = 0; i != rt->num_workers; ++i)
        discard_run_queue(&rt->workers[i]);
    for (int i = 0; i != rt->num_workers; ++i) {
        if (rt->workers[i].wake_fd >= 0)
            close(rt->workers[i].wake_fd);
        rt_slab_dispose(&rt->workers[i].slab);
    }
    free(rt->workers);
    free(rt);
    rt__process_runtime = NULL;
}
