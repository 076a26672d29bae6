/*
 * A running runtime for tests of code that lives on workers: every worker runs an h2o loop that
 * does not listen, with the outbound HTTP client on it, and a driver actor on worker 0 runs the
 * test's steps. Whatever the driver receives is copied into a queue that the test thread reads
 * with a timeout, so assertions stay on the test thread.
 */
#ifndef TESTS_SUPPORT_HARNESS_H
#define TESTS_SUPPORT_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "net/http_client.h"
#include "net/http_server.h"
#include "runtime/worker.h"

/** A step that runs inside the driver actor's behaviour. */
typedef void (*harness_fn)(rt_actor_t *self, void *arg);

/** A message the driver received, copied: the header fields tests use and the payload. */
typedef struct st_harness_msg_t {
    struct st_harness_msg_t *next;
    uint32_t type;
    uint64_t corr;
    size_t payload_size;
    _Alignas(16) unsigned char payload[];
} harness_msg_t;

typedef struct st_harness_t {
    rt_runtime_t *rt;
    net_http_server_t *server;
    rt_actor_t *driver;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    harness_msg_t *head, **tail;
} harness_t;

/** Starts `workers` workers with `client` on them, and the driver; shutdown waits up to
 * `drain_timeout_ms` for requests in flight. */
void harness_start(harness_t *h, net_http_client_t *client, int workers, uint64_t drain_timeout_ms);
/** Runs `fn(driver, arg)` on the driver; returns at once. `arg` must outlive the step. */
void harness_run(harness_t *h, harness_fn fn, void *arg);
/** The next message the driver received, or NULL after `timeout_ms`. Free it with free(). */
harness_msg_t *harness_wait(harness_t *h, int timeout_ms);
/** Stops the driver and the runtime and joins the workers (the client is the caller's). */
void harness_stop(harness_t *h);

#endif
