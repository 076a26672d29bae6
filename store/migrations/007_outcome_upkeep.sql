-- What recording an execution's outcome costs the database (actors/executor.c, executor_finalize:
-- per execution one executions update, one intents update, one notification and one audit row, in
-- one statement per batch transaction). Measured on a batch of 200 (EXPLAIN (ANALYZE, BUFFERS,
-- WAL), a 10,000-intent database): ~15-20 ms, of which the intents update ~4-9 ms (8 WAL records
-- a row: a new heap tuple and an entry in each of intents' 6 indexes) and the foreign-key checks
-- of the notification and audit rows ~2.7 ms (600 lookups that also lock the referenced rows).

-- 1. The outcome's intents update (execution_count, last_execution, updated_at, delay_reason;
-- status only when the intent completes or leaves 'delayed') changes no indexed column, so it can
-- be a HOT update (no index entries) when the intent's page has room for the new version. Intents
-- created together sit on the same pages, come due together and are confirmed in the same
-- statement, so every row of a page gets its new version at once: only a page at most half full
-- has room for all of them (measured on a 200-row batch of consecutive intents: fillfactor 100 ->
-- 1,611 WAL records and ~9 ms, 80 -> 1,203 and ~6 ms, 60 -> 696, 50 -> 200 (all HOT) and ~1.6 ms).
-- The heap of intents doubles (~350 bytes a row); its indexes do not grow. Applies to pages
-- filled from now on (existing pages keep their rows until rewritten).
ALTER TABLE intents SET (fillfactor = 50);

-- 2. Notifications and audit rows are append-only records about a user and an intent; their
-- foreign keys cost a locking look-up per row and key (600 per batch of 200). They go, and the
-- integrity they kept holds another way:
--  - every statement that inserts one takes user_id and intent_id from the users or intents row it
--    reads in the same statement (the engine's and the follower's outcomes, delays and reopens
--    join intents; weekly summaries join their own weekly_summaries row, which keeps its foreign
--    key to users; the API's audit rows name the signed-in user, whose row exists), and
--  - users and intents are never deleted (no code path deletes them; intents end as cancelled or
--    completed, and executions keep their foreign key to intents): the triggers below make that a
--    rule of the database, as audit_log_append_only does for the audit log, so a referenced row
--    cannot disappear. The triggers are per statement, so inserts and updates pay nothing.
ALTER TABLE notifications DROP CONSTRAINT notifications_user_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_intent_id_fkey;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_user_id_fkey;

CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted (notifications and audit rows name them)',
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER users_never_deleted BEFORE DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER intents_never_deleted BEFORE DELETE OR TRUNCATE ON intents
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
