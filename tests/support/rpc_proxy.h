/*
 * A JSON-RPC proxy for tests, in front of a local node (anvil): it forwards every call, single or
 * in a batch, except an eth_getLogs whose block range is wider than its limit, which it answers
 * with the error a capped node gives ("block range too large"), as hosted nodes do. It records
 * the eth_getLogs ranges it let through. Served by threads of the test process, on 127.0.0.1.
 */
#ifndef TESTS_SUPPORT_RPC_PROXY_H
#define TESTS_SUPPORT_RPC_PROXY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct st_rpc_proxy_t rpc_proxy_t;

/** What the proxy saw of eth_getLogs. */
typedef struct st_rpc_proxy_stats_t {
    unsigned refused;         /* calls answered "block range too large" */
    unsigned forwarded;       /* calls let through */
    uint64_t widest;          /* the widest range let through, in blocks */
    unsigned filtered;        /* those filtered by a second topic (one intent's logs) */
    uint64_t filtered_lowest; /* the lowest fromBlock of those (UINT64_MAX: none) */
} rpc_proxy_stats_t;

/** Starts the proxy to the node at 127.0.0.1:`node_port`, refusing eth_getLogs ranges wider
 * than `max_blocks`; aborts the test process when it cannot listen. */
rpc_proxy_t *rpc_proxy_start(uint16_t node_port, uint64_t max_blocks);
/** The port it listens on. */
uint16_t rpc_proxy_port(rpc_proxy_t *p);
/** A copy of its figures so far. */
void rpc_proxy_stats(rpc_proxy_t *p, rpc_proxy_stats_t *out);
/** Stops it: closes the listener and every connection, joins the threads, frees it. */
void rpc_proxy_stop(rpc_proxy_t *p);

#endif
