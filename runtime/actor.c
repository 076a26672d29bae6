#include "runtime/actor.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/log.h"
#include "runtime/worker.h"

/* Message flags */
#define MSG_FLAG_BOUNDED 0x2 /* counted in the target's bounded_pending */

_Static_assert(sizeof(rt_actor_t) <= 64, "an idle actor must stay small");

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void *alloc_object(rt_worker_t *w, size_t size, uint16_t *owner)
{
    if (w != NULL && size <= RT_SLAB_MAX_OBJECT) {
        *owner = w->id;
        return rt_slab_alloc(&w->slab, size);
    }
    *owner = RT_MSG_OWNER_HEAP;
    void *p = aligned_alloc(16, (size + 15) & ~(size_t)15);
    if (p == NULL)
        rt_log_fatal("actor", "out of memory allocating %zu bytes", size);
    return p;
}

static void free_object(rt_runtime_t *rt, void *p, size_t size, uint16_t owner)
{
    if (owner == RT_MSG_OWNER_HEAP) {
        free(p);
        return;
    }
    rt_worker_t *self = rt_worker_current();
    rt_worker_t *home = &rt->workers[owner];
    if (self == home)
        rt_slab_free_local(&home->slab, p, size);
    else
        rt_slab_free_remote(&home->slab, p, size);
}

/* One runtime exists per process at a time (see worker.h). Actors and messages remember only a
 * worker index, which keeps an idle actor within one cache line; the runtime they belong to is
 * this process-wide pointer, set by rt_runtime_create. */
extern rt_runtime_t *rt__process_runtime;

rt_actor_t *rt_actor_spawn(rt_runtime_t *rt, int worker, rt_behaviour_fn behaviour,
                           size_t state_size)
{
    assert(behaviour != NULL);
    rt_worker_t *self = rt_worker_current();
    if (worker < 0 || worker >= rt->num_workers) {
        if (self != NULL && self->rt == rt)
            worker = self->id;
        else
            worker = (int)(atomic_fetch_add(&rt->spawn_cursor, 1) % (unsigned)rt->num_workers);
    }
    size_t size = RT_ACTOR_HEADER_SIZE + ((state_size + 7) & ~(size_t)7);
    uint16_t owner;
    /* the home worker's slab is only touched by its own thread; spawning elsewhere allocates
     * from the heap, and the allocation owner is recorded so the free goes back there */
    rt_actor_t *a = alloc_object(self != NULL && self->id == worker && self->rt == rt ? self : NULL,
                                 size, &owner);
    memset(a, 0, size);
    rt_mpsc_init(&a->mailbox);
    a->behaviour = behaviour;
    atomic_store_explicit(&a->refs, 2, memory_order_relaxed); /* alive + caller */
    a->home = (uint16_t)worker;
    a->alloc_size = (uint32_t)size;
    /* a heap-allocated actor is marked by alloc_size's top bit, so it needs no extra field */
    if (owner == RT_MSG_OWNER_HEAP)
        a->alloc_size |= 0x80000000u;
    rt_worker_t *home = &rt->workers[worker];
    atomic_fetch_add_explicit(&home->metrics.actors_spawned, 1, memory_order_relaxed);
    return a;
}

static void free_actor(rt_actor_t *a)
{
    rt_runtime_t *rt = rt__process_runtime;
    rt_worker_t *home = &rt->workers[a->home];
    atomic_fetch_add_explicit(&home->metrics.actors_freed, 1, memory_order_relaxed);
    bool on_heap = (a->alloc_size & 0x80000000u) != 0;
    size_t size = a->alloc_size & 0x7fffffffu;
    free_object(rt, a, size, on_heap ? RT_MSG_OWNER_HEAP : a->home);
}

void rt_actor_retain(rt_actor_t *actor)
{
    uint32_t old = atomic_fetch_add_explicit(&actor->refs, 1, memory_order_relaxed);
    assert(old > 0);
    (void)old;
}

void rt_actor_release(rt_actor_t *actor)
{
    uint32_t old = atomic_fetch_sub_explicit(&actor->refs, 1, memory_order_acq_rel);
    assert(old > 0);
    if (old == 1) {
        /* nothing can reach it: every sender held a reference, and scheduling holds one, so
         * the mailbox is empty */
        assert(rt_mpsc_is_empty(&actor->mailbox));
        free_actor(actor);
    }
}

void rt_actor_stop(rt_actor_t *self)
{
    assert(rt_worker_current() != NULL && rt_worker_current()->id == self->home);
    self->stopped = 1; /* the alive reference is dropped when the current turn ends */
}

rt_msg_t *rt_msg_new(uint32_t type, size_t payload_size)
{
    size_t size = RT_MSG_HEADER_SIZE + payload_size;
    uint16_t owner;
    rt_msg_t *m = alloc_object(rt_worker_current(), size, &owner);
    memset(m, 0, size);
    m->type = type;
    m->alloc_size = (uint32_t)size;
    m->payload_size = (uint32_t)payload_size;
    m->owner = owner;
    return m;
}

void rt_msg_free(rt_msg_t *msg)
{
    if (msg->dispose != NULL)
        msg->dispose(msg);
    if (msg->reply_to != NULL)
        rt_actor_release(msg->reply_to);
    free_object(rt__process_runtime, msg, msg->alloc_size, msg->owner);
}

void rt_msg_keep(rt_msg_t *msg)
{
    /* recorded on the worker, not in the message: once kept, the behaviour may forward the
     * message and another worker may free it before this turn ends, so the run loop must not
     * read the message again */
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && w->current_msg == msg);
    w->current_msg_kept = true;
}

static void enqueue(rt_actor_t *to, rt_msg_t *msg)
{
    rt_mpsc_push(&to->mailbox, &msg->node);
    /* schedule on the idle -> busy edge; the seq_cst pair with the consumer's
     * "store 0 then re-check the mailbox" guarantees that one of the two sides schedules */
    if (atomic_exchange_explicit(&to->scheduled, 1, memory_order_seq_cst) == 0) {
        rt_actor_retain(to); /* the run queue's reference */
        rt_worker_schedule(&rt__process_runtime->workers[to->home], to);
    }
}

void rt_actor_send(rt_actor_t *to, rt_msg_t *msg)
{
    enqueue(to, msg);
}

bool rt_actor_try_send(rt_actor_t *to, rt_msg_t *msg, uint32_t max_pending)
{
    uint32_t before = atomic_fetch_add_explicit(&to->bounded_pending, 1, memory_order_relaxed);
    if (before >= max_pending) {
        atomic_fetch_sub_explicit(&to->bounded_pending, 1, memory_order_relaxed);
        return false;
    }
    msg->flags |= MSG_FLAG_BOUNDED;
    enqueue(to, msg);
    return true;
}

void rt_actor_send_stop(rt_actor_t *actor)
{
    enqueue(actor, rt_msg_new(RT_MSG_STOP, 0));
}

void rt_actor_request(rt_actor_t *self, rt_actor_t *to, rt_msg_t *msg, uint64_t corr)
{
    assert(msg->reply_to == NULL);
    rt_actor_retain(self);
    msg->reply_to = self;
    msg->corr = corr;
    enqueue(to, msg);
}

void rt_actor_reply(rt_msg_t *request, rt_msg_t *reply)
{
    if (request->reply_to == NULL) {
        rt_msg_free(reply);
        return;
    }
    reply->corr = request->corr;
    enqueue(request->reply_to, reply);
}

/* Called by the home worker for a scheduled actor: handles up to RT_ACTOR_BATCH messages, then
 * either stays scheduled (more waiting) or goes idle. Returns true when it must be re-queued. */
bool rt__actor_run(rt_worker_t *w, rt_actor_t *a)
{
    uint32_t handled = 0, bounded = 0;
    rt_mpsc_node_t *node;
    while (handled < RT_ACTOR_BATCH && (node = rt_mpsc_pop(&a->mailbox)) != NULL) {
        rt_msg_t *msg = container_of(node, rt_msg_t, node);
        ++handled;
        if ((msg->flags & MSG_FLAG_BOUNDED) != 0)
            ++bounded;
        if (a->stopped) {
            atomic_fetch_add_explicit(&w->metrics.messages_dropped, 1, memory_order_relaxed);
            rt_msg_free(msg);
            continue;
        }
        uint32_t type = msg->type;
        w->current_msg = msg;
        w->current_msg_kept = false;
        a->behaviour(a, msg);
        w->current_msg = NULL;
        if (type == RT_MSG_STOP)
            a->stopped = 1; /* the behaviour has cleaned up; now the runtime stops it */
        if (!w->current_msg_kept)
            rt_msg_free(msg);
        if (a->stopped)
            rt_actor_release(a); /* the alive reference; ours (the run queue's) remains */
    }
    if (bounded != 0)
        atomic_fetch_sub_explicit(&a->bounded_pending, bounded, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->metrics.messages_handled, handled, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->metrics.actor_turns, 1, memory_order_relaxed);
    if (handled == RT_ACTOR_BATCH || !rt_mpsc_is_empty(&a->mailbox))
        return true; /* keep the scheduled flag and the run queue's reference */
    atomic_store_explicit(&a->scheduled, 0, memory_order_seq_cst);
    if (!rt_mpsc_is_empty(&a->mailbox) &&
        atomic_exchange_explicit(&a->scheduled, 1, memory_order_seq_cst) == 0)
        return true;     /* a sender raced with us and saw scheduled == 1: we re-queue for it */
    rt_actor_release(a); /* the run queue's reference */
    return false;
}

/* Frees whatever is still queued for `a` at shutdown, and its run-queue reference. */
void rt__actor_discard(rt_actor_t *a)
{
    rt_mpsc_node_t *node;
    while ((node = rt_mpsc_pop(&a->mailbox)) != NULL)
        rt_msg_free(container_of(node, rt_msg_t, node));
    atomic_store_explicit(&a->scheduled, 0, memory_order_seq_cst);
    rt_actor_release(a);
}

static void deliver_timer(rt_timer_t *node, void *cb_data)
{
    rt_actor_timer_t *timer = container_of(node, rt_actor_timer_t, node);
    rt_actor_t *a = timer->actor;
    timer->actor = NULL;
    rt_msg_t *msg = rt_msg_new(RT_MSG_TIMER, 0);
    msg->corr = node->tag;
    enqueue(a, msg);
    rt_actor_release(a); /* the armed timer's reference */
    (void)cb_data;
}

uint64_t rt__fire_timers(rt_worker_t *w, uint64_t now_ms)
{
    return rt_wheel_advance(&w->wheel, now_ms, deliver_timer, w);
}

void rt_actor_timer_start(rt_actor_t *self, rt_actor_timer_t *timer, uint64_t delay_ms,
                          uint64_t tag)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && w->id == self->home);
    if (timer->actor == NULL) {
        rt_actor_retain(self);
        timer->actor = self;
    }
    timer->node.tag = tag;
    rt_wheel_arm(&w->wheel, &timer->node, rt_now_ms() + delay_ms);
}

void rt_actor_timer_cancel(rt_actor_t *self, rt_actor_timer_t *timer)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && w->id == self->home);
    if (timer->actor == NULL)
        return;
    rt_wheel_cancel(&w->wheel, &timer->node);
    timer->actor = NULL;
    rt_actor_release(self);
}
