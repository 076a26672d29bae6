/*
 * The chain follower: one actor that watches the chain's head and the intent registry's logs.
 *
 * Every poll_ms it reads the latest header; new heads go to the gas oracle and to the executor
 * lanes (so they look for receipts at once). It keeps the hashes of the last
 * CHAIN_FOLLOWER_BLOCKS blocks: a header whose hash or parent differs from what it saw is a
 * reorg, which it counts, tells the lanes of (they re-check their receipts) and answers by
 * reading the registry's logs again from the first block that changed. Our transactions already
 * decided in the blocks that changed are re-checked: one that left the chain is sent again (its
 * stored bytes), its rows go back to broadcast while it stays out, and once it is mined
 * CONFIRMATIONS deep again they take its new block and the outcomes its receipt gives now. Every
 * row the follower writes is published after the commit as the execution.* event of its new status
 * (broadcast, confirmed, failed; a row marked replaced has no event of its own in api.md, and the
 * adoption that replaces it publishes its intent's new confirmed row).
 *
 * Logs are read CONFIRMATIONS deep, in bounded block ranges, from a cursor kept in the database
 * (chain_cursors), so that a restart neither reads all history nor skips a block. An Executed
 * log that no live (signed, broadcast, confirmed) row of ours records for its transaction,
 * intent and period is adopted: another executor's (the registry being open to anyone) as a new
 * confirmed row, one of ours whose row was marked replaced or failed by making that row
 * confirmed; with the intent's count, a notification and an audit row in the same unit. A live
 * row of another transaction for the same period is then `replaced`, since that period is paid.
 * Revoked logs cancel the intent. Each adoption or cancellation is reported
 * through on_outcome after it is committed.
 */
#ifndef ACTORS_CHAIN_FOLLOWER_H
#define ACTORS_CHAIN_FOLLOWER_H

#include <stdbool.h>
#include <stdint.h>
#include "actors/executor.h"

/** Recent block hashes kept to notice reorgs. */
#define CHAIN_FOLLOWER_BLOCKS 64
/** Most blocks read per eth_getLogs call. */
#define CHAIN_FOLLOWER_LOG_RANGE 500

typedef struct st_chain_follower_t chain_follower_t;

/** Creates the follower of `pool` (its configuration: rpc, pg, gas, registry, confirmations,
 * poll_ms, on_outcome). NULL when out of memory. */
chain_follower_t *chain_follower_create(executor_pool_t *pool);
/** Registers the follower's statements (before the database pool is created). */
void chain_follower_register_statements(void);
/** Spawns the follower's actor on `rt` (running). */
void chain_follower_start(chain_follower_t *f, rt_runtime_t *rt);
/** The latest head seen (0 before the first). Any thread. */
uint64_t chain_follower_head(chain_follower_t *f);
/** Reorgs noticed so far. Any thread. */
uint64_t chain_follower_reorgs(chain_follower_t *f);
/** The next block whose logs are still to be read (0 before the cursor is loaded). Any
 * thread. */
uint64_t chain_follower_cursor(chain_follower_t *f);
/** The base fee the latest head implies for the next block; false before the first head or
 * before London. Any thread. */
bool chain_follower_base_fee(chain_follower_t *f, chain_u256_t *out);
/** Asks the follower of `pool` to read every Executed log of the intent `on_chain_id` from block
 * 0 and adopt those our rows lack (its registry count is ahead of the database: a database
 * restored from an older backup, or a log cursor that started late); done when the cursor has
 * caught up, one intent per poll. False when the follower does not run or is overloaded (ask
 * again later). Any thread. */
bool chain_follower_backfill(executor_pool_t *pool, const uint8_t on_chain_id[32]);
/** Stops the actor (before rt_runtime_shutdown). */
void chain_follower_stop(chain_follower_t *f);
/** Frees the follower (after the runtime is joined). */
void chain_follower_free(chain_follower_t *f);

#endif
