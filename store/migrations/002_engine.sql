-- The engine's chain side (actors/executor.c, actors/chain_follower.c).

-- Invariant 1, refined: a period has at most one execution that is in flight or done. 001's index
-- also counted 'failed' rows, which would forbid retrying a period whose execution failed on
-- chain (no allowance yet, say); a failed execution moved nothing, so it must not hold the lock.
DROP INDEX executions_one_per_period;
CREATE UNIQUE INDEX executions_one_per_period ON executions (intent_id, period)
    WHERE status IN ('signed', 'broadcast', 'confirmed');

-- Receipts and reorg checks look executions up by the block they were mined in.
CREATE INDEX executions_block ON executions (block_number) WHERE block_number IS NOT NULL;

-- Where the chain follower has read the registry's logs up to: the next block to read. One row
-- per (chain, registry), so that a restart neither reads the whole history nor skips a block.
CREATE TABLE chain_cursors (
    chain_id    bigint NOT NULL CHECK (chain_id > 0),
    registry    bytea NOT NULL CHECK (length(registry) = 20),
    next_block  bigint NOT NULL CHECK (next_block >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, registry)
);
