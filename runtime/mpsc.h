/*
 * Intrusive multi-producer single-consumer queue (Dmitry Vyukov's design).
 *
 * Producers never block or loop: a push is one atomic exchange plus one store, which is why
 * mailboxes and run queues use it. The consumer may briefly see the queue as "not empty but
 * nothing to pop" while a producer is between its two steps; rt_mpsc_pop then returns NULL and
 * rt_mpsc_is_empty returns false, and the caller retries later. Nodes are embedded in the
 * objects being queued, so the queue itself never allocates.
 */
#ifndef RUNTIME_MPSC_H
#define RUNTIME_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct st_rt_mpsc_node_t {
    _Atomic(struct st_rt_mpsc_node_t *) next;
} rt_mpsc_node_t;

typedef struct st_rt_mpsc_t {
    _Atomic(rt_mpsc_node_t *) head; /* producers exchange here: the newest node */
    rt_mpsc_node_t *tail;           /* the consumer's end: the oldest node */
    rt_mpsc_node_t stub;
} rt_mpsc_t;

/** Makes an empty queue. Not thread-safe; call before sharing the queue. */
static inline void rt_mpsc_init(rt_mpsc_t *q);
/** Appends a node. Any thread; wait-free. */
static inline void rt_mpsc_push(rt_mpsc_t *q, rt_mpsc_node_t *node);
/** Takes the oldest node, or NULL when empty or when a push is half done. Consumer only. */
static inline rt_mpsc_node_t *rt_mpsc_pop(rt_mpsc_t *q);
/** True when nothing is queued and no push is in progress. Consumer only. */
static inline bool rt_mpsc_is_empty(rt_mpsc_t *q);

/* inline definitions */

static inline void rt_mpsc_init(rt_mpsc_t *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

static inline void rt_mpsc_push(rt_mpsc_t *q, rt_mpsc_node_t *node)
{
    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    /* seq_cst: the actor scheduler pairs this exchange with a later read of the
     * "scheduled" flag (see actor.c), which needs a total order between the two. */
    rt_mpsc_node_t *prev = atomic_exchange_explicit(&q->head, node, memory_order_seq_cst);
    atomic_store_explicit(&prev->next, node, memory_order_release);
}

static inline rt_mpsc_node_t *rt_mpsc_pop(rt_mpsc_t *q)
{
    rt_mpsc_node_t *tail = q->tail;
    rt_mpsc_node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL; /* a producer swapped head but has not linked its node yet */
    rt_mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

static inline bool rt_mpsc_is_empty(rt_mpsc_t *q)
{
    return q->tail == &q->stub && atomic_load_explicit(&q->head, memory_order_seq_cst) == &q->stub;
}

#endif
