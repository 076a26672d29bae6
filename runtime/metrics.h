/*
 * Prometheus text exposition of the runtime's per-worker counters.
 */
#ifndef RUNTIME_METRICS_H
#define RUNTIME_METRICS_H

#include <stddef.h>
#include "runtime/worker.h"

/** Writes every runtime metric in Prometheus text format (0.0.4) into `buf`, with one sample per
 * worker (label worker="N"). Returns the length the full text needs, like snprintf: when it
 * is >= cap, the output was cut and the caller retries with a larger buffer. O(workers). */
size_t rt_metrics_render(rt_runtime_t *rt, char *buf, size_t cap);

#endif
