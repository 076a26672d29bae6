/*
 * What the executor lanes (executor.c) and the chain follower (chain_follower.c) share inside
 * the pool: text forms for SQL parameters, the registry's event topics, and the pool's state
 * that both read.
 */
#ifndef ACTORS_EXECUTOR_INTERNAL_H
#define ACTORS_EXECUTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include "actors/chain_follower.h"
#include "chain/abi.h"
#include "actors/executor.h"

/* actors/ message types of the engine's chain side (RT_MSG_USER + 0x500 ..) */
enum {
    EXECUTOR_MSG_JOB = RT_MSG_USER + 0x500, /* payload: executor_job_t */
    EXECUTOR_MSG_HEAD,                      /* corr: the new head's number */
    EXECUTOR_MSG_REORG,                     /* corr: the first block that changed */
    EXECUTOR_MSG_ADOPT, /* rows of ours are in flight again that no slot may follow (a reorg) */
};

/* What a lane did, timed (bench/executor_bench.c reads them to say where a burst's time goes):
 * a store, a broadcast, a receipt poll, a block read or a finalization sent (_SENT) and its
 * answer, and a head announced by the follower. */
enum {
    EXECUTOR_TRACE_STORE_SENT, /* n: executions */
    EXECUTOR_TRACE_STORED,     /* n: 0 stored, else the unit failed */
    EXECUTOR_TRACE_SEND_SENT,
    EXECUTOR_TRACE_SENT,      /* n: the node's error (0: taken) */
    EXECUTOR_TRACE_POLL_SENT, /* n: calls */
    EXECUTOR_TRACE_POLLED,
    EXECUTOR_TRACE_BLOCK_SENT,
    EXECUTOR_TRACE_BLOCK_READ,
    EXECUTOR_TRACE_FINAL_SENT, /* n: executions */
    EXECUTOR_TRACE_FINALIZED,
    EXECUTOR_TRACE_HEAD,        /* n: the head the follower announced */
    EXECUTOR_TRACE_POLL_PARSED, /* a poll's answer read (after EXECUTOR_TRACE_POLLED) */
    EXECUTOR_TRACE_KINDS,
};

/* One traced event (CLOCK_MONOTONIC microseconds). */
typedef struct st_executor_trace_event_t {
    uint64_t at_us;
    uint32_t n;
    uint8_t kind, lane, slot;
} executor_trace_event_t;

/* One hash of the pool's follow set (executor__pool_follows); refs: the slots holding it. */
typedef struct st_executor_follow_entry_t {
    uint8_t hash[32];
    uint32_t refs; /* 0: the place is empty */
} executor_follow_entry_t;

struct st_executor_pool_t {
    executor_config_t c;
    rt_runtime_t *rt;
    size_t num_lanes;
    rt_actor_t **lanes;
    void **lane_states;
    _Atomic uint32_t *queued; /* per lane: jobs accepted, not yet in a transaction */
    _Atomic uint64_t in_flight;
    _Atomic unsigned next_lane;
    chain_follower_t *follower;
    struct { /* the trace (executor__pool_trace): NULL when nobody asked for one */
        executor_trace_event_t *events;
        uint32_t cap;
        _Atomic uint32_t n; /* events recorded; those past cap are dropped */
    } trace;
    /* the hashes of the versions the lanes' slots follow, stored and not yet decided: an open
     * addressing table (linear probing) of `cap` places, twice the most the slots can hold
     * (lanes x EXECUTOR_LANE_TXS_MAX x their hashes), so it never fills; the lock is held for
     * one look-up or change only */
    struct {
        pthread_mutex_t lock;
        executor_follow_entry_t *entries;
        size_t cap; /* a power of two */
    } follow;
};

/** Records what the lanes do into `events` (`cap` of them) from now on (before
 * executor_pool_start; a bench's instrument, off in the server). */
void executor__pool_trace(executor_pool_t *pool, executor_trace_event_t *events, uint32_t cap);
/** Sends a message of `type` with corr `value` to every lane (heads, reorgs). Any thread. */
void executor__pool_broadcast(executor_pool_t *pool, uint32_t type, uint64_t value);
/** True when a lane of `pool` follows the transaction `hash`: a version that one of its slots
 * stored and has not decided yet, whose receipt that lane records itself. Any thread. */
bool executor__pool_follows(executor_pool_t *pool, const uint8_t hash[32]);
/** Writes `n` bytes as PostgreSQL's bytea text form ("\\x" + hex) into `out` (2n + 3 bytes). */
void executor__bytea(char *out, const uint8_t *bytes, size_t n);
/** Reads a bytea text form ("\\x" + hex) into `out` (exactly `n` bytes); false otherwise. */
bool executor__bytea_read(const char *text, uint8_t *out, size_t n);
/** Turns a revert's data into a short English reason (NUL-terminated, `cap` bytes). */
void executor__revert_reason(const uint8_t *data, size_t len, char *out, size_t cap);
/** True when `log` is the registry's Executed or ExecutionFailed event (decoded into `ev`): the
 * logs of a receipt that tell an execution's outcome. */
bool executor__outcome_event(const executor_pool_t *pool, const chain_rpc_log_t *log,
                             chain_abi_event_t *ev);
/** Publishes the execution objects (EXECUTION_COLUMNS then the owner id, from column 0) of the
 * rows of `res` as execution.confirmed / execution.failed events. */
void executor__publish_executions(executor_pool_t *pool, const PGresult *res);
/** Publishes notification rows (intent id, owner id, then NOTIFICATION_COLUMNS) of `res`. */
void executor__publish_notifications(executor_pool_t *pool, const PGresult *res);

#endif
