-- Issue #6 (executions per second end to end): the two updates every executions row gets after
-- its insert ('signed' -> 'broadcast' in executor_mark_broadcast, then 'confirmed' or 'failed' in
-- executor_finalize, actors/executor.c) become HOT updates: a new version of the row on the same
-- page and no index entries. An update is HOT only when no column an index reads (its key, or a
-- column of its predicate) changes and the page has room. Before this migration `status` was in
-- the predicates of executions_one_per_period and executions_in_flight, and `block_number` was
-- the key of executions_block, so every version took an entry in every index whose predicate it
-- met. Measured with executor_bench (10,000 executions due at once, pg_stat_statements, three
-- runs each): executor_mark_broadcast 4.4-4.7 -> 0.8-0.9 ms a call (WAL records per row 7 -> 1),
-- executor_finalize 16-26 -> 8.8-9.5 ms a unit of ~192 executions (WAL records per row 15 -> 9);
-- all 20,000 updates HOT (pg_stat_user_tables).

-- 1. Invariant 1 (at most one execution in flight or done per intent period, 002) reads `live`
-- instead of `status`: 'signed' -> 'broadcast' -> 'confirmed' keeps live true, so those updates
-- leave the index's predicate as it was. ('failed' makes live false: that update stays non-HOT,
-- as it must, since the row leaves the unique index.) Queries that used the index through
-- `status IN ('signed', 'broadcast', 'confirmed')` name `live` now (a planner cannot prove one
-- from the other), and so do the ON CONFLICT clauses that infer it (actors/executor.c
-- executor_insert_again, actors/chain_follower.c follower_adopt).
-- Adding a stored generated column rewrites the table (and its indexes) under an ACCESS EXCLUSIVE
-- lock: nothing reads or writes executions while this migration runs (seconds per million rows).
ALTER TABLE executions ADD COLUMN live boolean
    GENERATED ALWAYS AS (status IN ('signed', 'broadcast', 'confirmed')) STORED;
DROP INDEX executions_one_per_period;
CREATE UNIQUE INDEX executions_one_per_period ON executions (intent_id, period) WHERE live;

-- 2. The transactions of the executors, one row per transaction (a batch of up to ~192
-- executions), so that the lookups by nonce and by block no longer need an index on executions
-- whose key or predicate the outcome changes. Written in the same database transaction as the
-- executions rows they describe, by every statement of actors/executor.c and
-- actors/chain_follower.c that makes a row of the transaction in flight, decided, or mined in a
-- block. Both columns are supersets, so that a stale value costs a look and is never wrong:
--  - in_flight is true whenever a row of the transaction is 'signed' or 'broadcast' (it may be
--    true while none is; the readers check the rows). Statements that put rows in flight set it
--    true (and so take the row's lock); it becomes false only in executor_finalize, computed
--    from the rows after the unit's executor_supersede_nonce took the lock of every transaction
--    of the nonce, so that a concurrent statement that puts rows back in flight either committed
--    before that computation (which sees its rows) or sets true after it;
--  - block_number is at least the block_number of every decided row of the transaction
--    (GREATEST; a reorg that takes rows back leaves it as it was).
-- A statement that writes both locks the executor_txs row before the executions rows (the lane's
-- finalizing unit by its first statement, the follower's by a FOR UPDATE ahead of its updates),
-- so that two of them about one transaction wait for each other instead of deadlocking.
-- executor_reconcile (a lane's start: its nonces in flight, then every row of them) and
-- executor_supersede_nonce read it by (executor, nonce); follower_recent (the decided
-- transactions re-checked after a reorg) by block.
CREATE TABLE executor_txs (
    tx_hash       bytea PRIMARY KEY CHECK (length(tx_hash) = 32),
    executor      bytea NOT NULL CHECK (length(executor) = 20),
    nonce         bigint NOT NULL CHECK (nonce >= 0),
    in_flight     boolean NOT NULL,
    block_number  bigint CHECK (block_number >= 0)
);
CREATE INDEX executor_txs_nonce ON executor_txs (executor, nonce);
-- a lane's start reads the nonces in flight without the executor's whole history
CREATE INDEX executor_txs_in_flight ON executor_txs (executor, nonce) WHERE in_flight;
CREATE INDEX executor_txs_block ON executor_txs (block_number) WHERE block_number IS NOT NULL;

INSERT INTO executor_txs (tx_hash, executor, nonce, in_flight, block_number)
SELECT tx_hash, (array_agg(executor))[1], min(nonce), bool_or(status IN ('signed', 'broadcast')),
       max(block_number)
FROM executions GROUP BY tx_hash;

-- executions_in_flight's and executions_block's readers read executor_txs now.
DROP INDEX executions_in_flight;
DROP INDEX executions_block;

-- 3. A HOT update needs room on the row's page. Rows are inserted a batch at a time, so the
-- rows of a page are updated together, twice (broadcast, then the outcome), and each update
-- writes a whole new version of the row next to the old one, which is reclaimed (pruned when the
-- page is next read) only once no transaction can see it. So a page must hold its rows as
-- inserted plus as broadcast, then as broadcast plus as decided (the largest: ~70 bytes more,
-- the block, its hash, the gas and the time). Measured with executor_bench (10,000 executions,
-- pg_stat_user_tables): fillfactor 50 (15 rows a page) made 16,025 of 19,005 updates HOT (the
-- outcome's about two in three); 40 (12 rows a page) all 20,000. The heap of executions grows
-- 2.5 times (~270 bytes a row as inserted); its indexes do not. Set after the rewrite above, so
-- it applies to pages filled from now on: existing rows, decided and not updated again, keep
-- their full pages.
ALTER TABLE executions SET (fillfactor = 40);
