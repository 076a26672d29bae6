-- The block time of a decided execution (the `timestamp` of the block it was mined in), so that a
-- reorg that takes a payment back can put intents.last_execution back to the block time of the
-- payment before it (the registry's lastExecutedAt after that reorg) instead of clearing it:
-- confirmed_at is our clock (when we recorded the outcome), not the block's. Written by every
-- statement that decides a row or moves it to another block (actors/executor.c
-- executor_finalize; actors/chain_follower.c follower_adopt, follower_remine) with the time it
-- writes to intents.last_execution, cleared with the row's block by follower_unmine, and read by
-- their REOPEN_CTES.
-- Nullable and without a default, so adding it rewrites nothing (a catalog change only). Not
-- indexed: the outcome's update must stay HOT (store/migrations/009), so no index may read a
-- column it writes.
ALTER TABLE executions ADD COLUMN block_time timestamptz;

-- What is known already: intents.last_execution is the block time of the intent's newest payment,
-- the live confirmed row of period execution_count - 1. The block times of older payments were
-- never kept (only the newest survives in last_execution, overwritten by each payment), so their
-- rows stay NULL; a reorg that reopens a period above one of them clears last_execution as before.
UPDATE executions e SET block_time = i.last_execution FROM intents i
WHERE i.last_execution IS NOT NULL AND i.execution_count > 0 AND e.intent_id = i.id
    AND e.period = i.execution_count - 1 AND e.live AND e.status = 'confirmed';
