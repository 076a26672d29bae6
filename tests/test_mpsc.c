/* The MPSC queue under many producers: nothing lost, nothing duplicated, and each producer's
 * items come out in the order it pushed them. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include "runtime/mpsc.h"

#define PRODUCERS 4
#define ITEMS_PER_PRODUCER 200000

typedef struct {
    rt_mpsc_node_t node;
    int producer;
    int seq;
} item_t;

static rt_mpsc_t queue;
static item_t *items;

static void *produce(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = 0; i != ITEMS_PER_PRODUCER; ++i) {
        item_t *it = &items[p * ITEMS_PER_PRODUCER + i];
        it->producer = p;
        it->seq = i;
        rt_mpsc_push(&queue, &it->node);
    }
    return NULL;
}

Test(mpsc, empty_queue_pops_nothing)
{
    rt_mpsc_init(&queue);
    cr_assert(rt_mpsc_is_empty(&queue));
    cr_assert_null(rt_mpsc_pop(&queue));
}

Test(mpsc, single_thread_fifo)
{
    item_t local[3];
    rt_mpsc_init(&queue);
    for (int i = 0; i != 3; ++i)
        rt_mpsc_push(&queue, &local[i].node);
    cr_assert_not(rt_mpsc_is_empty(&queue));
    for (int i = 0; i != 3; ++i)
        cr_assert_eq(rt_mpsc_pop(&queue), &local[i].node);
    cr_assert_null(rt_mpsc_pop(&queue));
    cr_assert(rt_mpsc_is_empty(&queue));
}

Test(mpsc, many_producers_no_loss_and_per_producer_order, .timeout = 60)
{
    items = calloc(PRODUCERS * ITEMS_PER_PRODUCER, sizeof(item_t));
    rt_mpsc_init(&queue);
    pthread_t threads[PRODUCERS];
    for (int p = 0; p != PRODUCERS; ++p)
        pthread_create(&threads[p], NULL, produce, (void *)(intptr_t)p);
    int next_seq[PRODUCERS] = {0};
    long received = 0;
    while (received != (long)PRODUCERS * ITEMS_PER_PRODUCER) {
        rt_mpsc_node_t *node = rt_mpsc_pop(&queue);
        if (node == NULL) {
            sched_yield();
            continue;
        }
        item_t *it = (item_t *)node;
        cr_assert_eq(it->seq, next_seq[it->producer], "producer %d: got %d, expected %d",
                     it->producer, it->seq, next_seq[it->producer]);
        ++next_seq[it->producer];
        ++received;
    }
    for (int p = 0; p != PRODUCERS; ++p)
        pthread_join(threads[p], NULL);
    cr_assert_null(rt_mpsc_pop(&queue));
    cr_assert(rt_mpsc_is_empty(&queue));
    free(items);
}
