#include "harness.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HARNESS_MSG_RUN 0x7e01

typedef struct st_run_step_t {
    harness_fn fn;
    void *arg;
} run_step_t;

typedef struct st_driver_state_t {
    harness_t *harness;
} driver_state_t;

static void record(harness_t *h, rt_msg_t *msg)
{
    harness_msg_t *copy = malloc(sizeof(*copy) + msg->payload_size);
    copy->next = NULL;
    copy->type = msg->type;
    copy->corr = msg->corr;
    copy->payload_size = msg->payload_size;
    memcpy(copy->payload, rt_msg_payload(msg), msg->payload_size);
    pthread_mutex_lock(&h->mutex);
    *h->tail = copy;
    h->tail = &copy->next;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->mutex);
}

static void driver(rt_actor_t *self, rt_msg_t *msg)
{
    driver_state_t *state = rt_actor_state(self);
    if (msg->type == HARNESS_MSG_RUN) {
        run_step_t *step = rt_msg_payload(msg);
        step->fn(self, step->arg);
    } else if (msg->type != RT_MSG_STOP) {
        record(state->harness, msg);
    }
}

void harness_start(harness_t *h, net_http_client_t *client, int workers, uint64_t drain_timeout_ms)
{
    char why[256];
    if (!rt_probe_io_uring(why, sizeof(why))) {
        fprintf(stderr, "harness: %s\n", why);
        abort();
    }
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->mutex, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->tail = &h->head;
    h->server = net_http_create("127.0.0.1", 0); /* no listener: an h2o loop for the client */
    rt_config_t config = {.workers = workers,
                          .drain_timeout_ms = drain_timeout_ms,
                          .waiter = net_http_client_waiter(client, net_http_waiter(h->server))};
    h->rt = rt_runtime_create(&config);
    if (h->rt == NULL || !rt_runtime_start(h->rt)) {
        fprintf(stderr, "harness: the runtime did not start\n");
        abort();
    }
    h->driver = rt_actor_spawn(h->rt, 0, driver, sizeof(driver_state_t));
    ((driver_state_t *)rt_actor_state(h->driver))->harness = h;
}

void harness_run(harness_t *h, harness_fn fn, void *arg)
{
    rt_msg_t *msg = rt_msg_new(HARNESS_MSG_RUN, sizeof(run_step_t));
    *(run_step_t *)rt_msg_payload(msg) = (run_step_t){fn, arg};
    rt_actor_send(h->driver, msg);
}

harness_msg_t *harness_wait(harness_t *h, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        ++deadline.tv_sec;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&h->mutex);
    while (h->head == NULL)
        if (pthread_cond_timedwait(&h->cond, &h->mutex, &deadline) == ETIMEDOUT)
            break;
    harness_msg_t *msg = h->head;
    if (msg != NULL) {
        h->head = msg->next;
        if (h->head == NULL)
            h->tail = &h->head;
    }
    pthread_mutex_unlock(&h->mutex);
    return msg;
}

void harness_stop(harness_t *h)
{
    rt_actor_send_stop(h->driver);
    rt_actor_release(h->driver);
    rt_runtime_shutdown(h->rt);
    rt_runtime_join_and_free(h->rt);
    net_http_free(h->server);
    for (harness_msg_t *m = h->head, *next; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->mutex);
}
