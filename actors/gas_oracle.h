/*
 * The gas oracle: one actor that keeps the chain's current fees, for the gas-price constraint of
 * intents, the executor's pricing, and GET /api/stats/gas-prices.
 *
 * It refreshes on every new head it is told of (gas_oracle_on_head) and at least every
 * `refresh_ms`, from the latest block's base fee and the fee history's priority fees. Readers on
 * any thread get the latest snapshot without waiting.
 *
 * A refresh is one JSON-RPC batch: the latest block, eth_feeHistory (the next block's base fee;
 * the median of the recent busy blocks' 50th-percentile tips) and eth_maxPriorityFeePerGas (the
 * tip when the history's blocks are empty or the node has no history); a node with neither gets
 * a second request, eth_gasPrice, whose excess over the base fee is the tip. A failed refresh is
 * retried within a second; heads that arrive during a refresh coalesce into one more.
 */
#ifndef ACTORS_GAS_ORACLE_H
#define ACTORS_GAS_ORACLE_H

#include <stdbool.h>
#include <stdint.h>
#include "chain/rpc.h"
#include "chain/u256.h"
#include "runtime/worker.h"

typedef struct st_gas_snapshot_t {
    chain_u256_t base_fee_wei;     /* of the next block, as the latest block implies */
    chain_u256_t priority_fee_wei; /* a tip that gets included now (fee-history percentile) */
    uint64_t block_number;         /* the block the figures were read at */
    int64_t updated_at_ms;         /* unix ms of the refresh */
} gas_snapshot_t;

typedef struct st_gas_oracle_t gas_oracle_t;

typedef struct st_gas_oracle_config_t {
    chain_rpc_t *rpc;
    uint64_t chain_id;
    uint32_t refresh_ms; /* longest time between refreshes (30000) */
} gas_oracle_config_t;

/** Creates the oracle (before or after the runtime starts). */
gas_oracle_t *gas_oracle_create(const gas_oracle_config_t *config);
/** Spawns its actor on `rt` (started) and makes the first refresh. */
void gas_oracle_start(gas_oracle_t *oracle, rt_runtime_t *rt);
/** Tells the oracle of a new head so it refreshes now. Any thread, never blocks; ignored once
 * gas_oracle_stop has begun (but not after gas_oracle_free). */
void gas_oracle_on_head(gas_oracle_t *oracle, uint64_t block_number);
/** Copies the latest snapshot; false when none has been read yet (or the chain has been
 * unreachable for longer than three refresh periods). Any thread, never blocks. */
bool gas_oracle_read(gas_oracle_t *oracle, gas_snapshot_t *out);
/** Stops the actor (before rt_runtime_shutdown). */
void gas_oracle_stop(gas_oracle_t *oracle);
/** Frees the oracle (after the runtime is joined). */
void gas_oracle_free(gas_oracle_t *oracle);

#endif
