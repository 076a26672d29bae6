/*
 * Executor actors: the engine's wallets. One actor per executor key is one nonce lane.
 *
 * A lane owns its nonce (read from the chain at start and whenever it is in doubt), batches the
 * jobs it is given into executeBatch transactions (bounded by a gas budget and
 * EXECUTOR_BATCH_MAX), prices them EIP-1559 style from the gas oracle (maxFeePerGas = 2 * base
 * fee + tip, capped by a ceiling), and stores every signed transaction as `signed` execution
 * rows in one database unit BEFORE it broadcasts it (its raw bytes once, in one of its rows);
 * the insert is the lock that keeps a period from being signed twice (the unique index of
 * 002_engine.sql). Gas is declared per execution from a measured figure with a margin, raised
 * by what receipts show; a batch that runs out anyway fails its members without paying, and
 * their periods are tried again. A transaction that is not mined within replace_after_ms is
 * re-signed on the same nonce with both fees raised by at least 12.5%; the old rows become
 * `replaced` in the same unit that stores the new ones, and are announced like other changes.
 *
 * Receipts decide (asked once per new head, not in a loop): once a transaction is
 * CONFIRMATIONS deep, its Executed logs make their executions `confirmed` and its
 * ExecutionFailed logs make them `failed` (with the decoded reason); a transaction that
 * reverted fails them all. The confirmation, the intent's count, the notification and the
 * audit row commit together; on_outcome is called after the commit. A nonce that is "too low"
 * means a transaction with it was mined: the lane finds which of its versions it was, or, when
 * none, gives the executions back to its queue under a new nonce.
 *
 * At start each lane reconciles the rows left `signed` or `broadcast` by an earlier run: it
 * re-sends their stored raw transactions byte for byte and follows them like its own. The pool
 * also runs the chain follower (actors/chain_follower.h), which tracks heads and reorgs and
 * adopts what other executors did.
 */
#ifndef ACTORS_EXECUTOR_H
#define ACTORS_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "actors/events.h"
#include "actors/gas_oracle.h"
#include "actors/intent_model.h"
#include "chain/eip712.h"
#include "chain/key.h"
#include "chain/rpc.h"
#include "store/pg.h"

/** Most executions in one transaction. */
#define EXECUTOR_BATCH_MAX 200
/** Most jobs waiting per lane; executor_submit refuses beyond. */
#define EXECUTOR_LANE_QUEUE_MAX 8192
/** Most transactions (nonces) a lane has in flight at once: enough for 1 s blocks to take a
 * burst of EXECUTOR_LANE_QUEUE_MAX jobs in one or two blocks (at ~100 per batch); at most 255
 * (a slot index is a byte in the reply tags). */
#define EXECUTOR_LANE_TXS_MAX 64

/** One execution to make: the signed terms and the registry count (period) it is for. */
typedef struct st_executor_job_t {
    char intent_id[37];
    char user_id[37];
    chain_intent_t terms;  /* the signed PaymentIntent, chain/eip712.h */
    uint8_t signature[65]; /* as the registry takes it (v 27 or 28) */
    uint32_t period;       /* the registry count this execution is for */
} executor_job_t;

/** What became of an execution (or of an intent, for REVOKED). */
typedef enum en_executor_status_t {
    EXECUTOR_CONFIRMED,
    EXECUTOR_FAILED,
    EXECUTOR_REVOKED,
} executor_status_t;

/** An outcome, as committed to the database before on_outcome hears of it. */
typedef struct st_executor_outcome_t {
    char intent_id[37];
    char user_id[37];
    uint32_t period; /* unused for REVOKED */
    executor_status_t status;
    char error[256]; /* FAILED: the decoded reason */
    uint8_t tx_hash[32];
    uint64_t block_number;
    int64_t block_time_s;
    bool by_us; /* false: another executor's transaction, seen in the registry's logs */
} executor_outcome_t;

/** Settings; the pointers must outlive the pool. */
typedef struct st_executor_config_t {
    chain_rpc_t *rpc;
    store_pg_t *pg;
    gas_oracle_t *gas; /* NULL: the lane prices from the follower's latest base fee */
    events_t *events;  /* NULL: no live events */
    const chain_key_t *const *keys;
    size_t num_keys; /* one nonce lane per key */
    uint64_t chain_id;
    chain_addr_t registry;
    uint32_t confirmations;           /* blocks deep before an outcome counts (>= 1) */
    uint64_t batch_gas_budget;        /* gas of one transaction (default 8,000,000) */
    chain_u256_t max_fee_ceiling_wei; /* zero: no ceiling */
    uint32_t replace_after_ms;        /* not mined by then: replace (default 30000) */
    uint32_t poll_ms;                 /* receipts and heads (default 500) */
    uint64_t gas_per_execution;       /* declared at first (0: executor.c's measured figure) */
    void (*on_outcome)(void *ctx, const executor_outcome_t *o);
    void *on_outcome_ctx;
    /* the token registry, to render the execution object of events (may be empty) */
    const intent_token_t *tokens;
    size_t num_tokens;
} executor_config_t;

typedef struct st_executor_pool_t executor_pool_t;

/** Registers the executor's and the follower's statements; before the database pool is created
 * (store_pg_statement's rule). Idempotent. */
void executor_register_statements(void);
/** Creates the pool (one lane per key, and the follower). NULL when out of memory or when the
 * configuration is unusable (no key, no rpc or pg). */
executor_pool_t *executor_pool_create(const executor_config_t *c);
/** Spawns the lanes and the follower on `rt` (running): each lane reconciles its in-flight rows
 * first, then syncs its nonce, then takes jobs. */
void executor_pool_start(executor_pool_t *pool, rt_runtime_t *rt);
/**
 * Queues `job` on a lane. Any thread. Returns false when every lane's queue is full (the caller
 * retries later, with backoff). A job for a period that already has a live execution row
 * (signed, broadcast or confirmed) is never signed again: it is dropped when its insert meets
 * that row.
 */
bool executor_submit(executor_pool_t *pool, const executor_job_t *job);
/** Jobs queued and executions in flight (signed, not yet decided) over all lanes. Any thread. */
uint64_t executor_pool_pending(executor_pool_t *pool);
/** The latest head the follower saw (0 before the first). Any thread. */
uint64_t executor_pool_head(executor_pool_t *pool);
/** Reorgs the follower has noticed since start. Any thread. */
uint64_t executor_pool_reorgs(executor_pool_t *pool);
/** Stops the lanes and the follower (before rt_runtime_shutdown); rows stay for the next start. */
void executor_pool_stop(executor_pool_t *pool);
/** Frees the pool (after the runtime is joined). */
void executor_pool_free(executor_pool_t *pool);

#endif
