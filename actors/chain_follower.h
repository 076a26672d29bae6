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
 * CONFIRMATIONS deep again they take its new block and the outcomes its receipt gives now. A
 * confirmed row that leaves the chain, or fails where it is mined again, gives its period back:
 * the intent's count goes back to it, an intent that had completed is active again (audited as
 * intent.reopened), and on_reopen tells the engine, whose actor reads the row, announces it and
 * pays the period again unless its transaction, sent again, is mined. Every
 * row the follower writes is published after the commit as the execution.* event of its new status
 * (broadcast, confirmed, failed; a row marked replaced has no event of its own in api.md, and the
 * adoption that replaces it publishes its intent's new confirmed row).
 *
 * Logs are read CONFIRMATIONS deep, in bounded block ranges, from a cursor kept in the database
 * (chain_cursors), so that a restart neither reads all history nor skips a block. A node that
 * refuses a range (too many blocks or results) halves the window, down to one block. An Executed
 * log that no live (signed, broadcast, confirmed) row of ours records for its transaction,
 * intent and period is adopted: another executor's (the registry being open to anyone) as a new
 * confirmed row, one of ours whose row was marked replaced or failed by making that row
 * confirmed; with the intent's count, a notification and an audit row in the same unit. A live
 * row of another transaction for the same period is then `replaced`, since that period is paid.
 * Revoked logs cancel the intent. Each adoption or cancellation is reported
 * through on_outcome after it is committed. The Executed logs of a transaction a lane follows are
 * that lane's to record: they are passed over without a query, and a range whose blocks (their
 * headers, read for the reorg check) hold only such transactions, or none, is not read at all.
 */
#ifndef ACTORS_CHAIN_FOLLOWER_H
#define ACTORS_CHAIN_FOLLOWER_H

#include <stdbool.h>
#include <stdint.h>
#include "actors/executor.h"

/** Recent block hashes kept to notice reorgs. */
#define CHAIN_FOLLOWER_BLOCKS 64
/** Most blocks read per eth_getLogs call of the log cursor (a backfill's calls, filtered by one
 * intent, take up to the whole window). */
#define CHAIN_FOLLOWER_LOG_RANGE 500
/** The default window of one eth_getLogs call (LOGS_BLOCK_RANGE): nodes that cap the range of
 * eth_getLogs commonly allow at least this many blocks. */
#define CHAIN_FOLLOWER_WINDOW_DEFAULT 10000
/** The least time between two early polls asked by chain_follower_poke. */
#define CHAIN_FOLLOWER_POKE_MIN_MS 10

typedef struct st_chain_follower_t chain_follower_t;

/** Hears of an intent whose executions a reorg took back (its count went down, and a completed
 * intent became active again): its row is to be read again. Called on the follower's thread,
 * after the commit; must not block. */
typedef void (*chain_follower_reopen_fn)(void *ctx, const char *intent_id);

/** What the engine tells the follower beyond the pool's configuration. */
typedef struct st_chain_follower_options_t {
    uint64_t window_blocks; /* most blocks per eth_getLogs call (0: the default); halved while
                             * the node refuses a range as too wide or too full */
    uint64_t start_block;   /* the registry's deployment block: backfills start there */
    chain_follower_reopen_fn on_reopen; /* NULL: none */
    void *on_reopen_ctx;
} chain_follower_options_t;

/** Creates the follower of `pool` (its configuration: rpc, pg, gas, registry, confirmations,
 * poll_ms, on_outcome). NULL when out of memory. */
chain_follower_t *chain_follower_create(executor_pool_t *pool);
/** Registers the follower's statements (before the database pool is created). */
void chain_follower_register_statements(void);
/** Sets the follower's options of `pool` (before executor_pool_start). */
void chain_follower_configure(executor_pool_t *pool, const chain_follower_options_t *options);
/** Spawns the follower's actor on `rt` (running). */
void chain_follower_start(chain_follower_t *f, rt_runtime_t *rt);
/** Tells the follower that the node's head is at least `head` (an executor lane read it). When
 * that is newer than the follower's head, the follower polls now rather than at its next tick
 * (the same cycle: the head, the reorg check, the logs), so that the outcomes waiting for it to
 * see their block (executor.c, ready_to_record) are recorded without waiting up to poll_ms.
 * Coalesced: at most one such request on its way, and none within CHAIN_FOLLOWER_POKE_MIN_MS of
 * the last one the follower took. Any thread; never blocks. */
void chain_follower_poke(chain_follower_t *f, uint64_t head);
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
/** Asks the follower of `pool` to read every Executed log of the intent `on_chain_id` from the
 * registry's deployment block (in windows of at most window_blocks) and adopt those our rows lack
 * (its registry count is ahead of the database: a database restored from an older backup, or a log
 * cursor that started late); done when the cursor has caught up, one intent per poll. False when
 * the follower does not run or is overloaded (ask again later). Any thread. */
bool chain_follower_backfill(executor_pool_t *pool, const uint8_t on_chain_id[32]);
/** Stops the actor (before rt_runtime_shutdown). */
void chain_follower_stop(chain_follower_t *f);
/** Frees the follower (after the runtime is joined). */
void chain_follower_free(chain_follower_t *f);

#endif
