-- Index upkeep that recording outcomes paid for and no query uses (actors/executor.c,
-- executor_finalize). An executions row is written three times (inserted 'signed', updated to
-- 'broadcast', then to 'confirmed' or 'failed'), and neither update can be HOT (status is in the
-- predicates of executions_one_per_period and executions_in_flight, block_number is indexed), so
-- every version of the row takes an entry in every B-tree index of executions whose predicate it
-- meets (five or six of them). Each outcome also inserts an audit row. Measured on one
-- 192-execution outcome unit of a 10,000-intent database (EXPLAIN (ANALYZE, BUFFERS, WAL)):
-- ~3,450 WAL records before, ~2,900 with both of the audit log's indexes dropped (the audit
-- insert ~1.0 ms, was 1.5-4.7); one of them is kept (2. below).

-- 1. executions_created (004) serves one query, the weekly summary's page (actors/weekly_summary.c:
-- the executions created in one week, once a week). A BRIN index answers that range as well, since
-- rows are inserted in created_at order and their later versions are written within seconds of
-- the first, while its upkeep is a look at the summary of the row's page range (nothing written
-- while the range is unsummarized or the value is inside it) instead of a B-tree entry per
-- version. The summary's result does not depend on the index (tests/test_notifications.c runs
-- it); on 500,000 rows over ten weeks its page query reads a week through this index (a bitmap
-- scan).
CREATE INDEX executions_created_brin ON executions USING brin (created_at);
DROP INDEX executions_created;

-- 2. audit_log_subject (001) is read by no code and is the lesser of the audit log's two indexes:
-- the audit log is written by the engine, the follower and the API and read only by people, who
-- look a user up (audit_log_user, kept: a dispute or a support case starts from a wallet) and
-- then that user's intents among its rows. One B-tree entry less per audit row, one audit row
-- per outcome. An operator who needs to search a large log by subject alone can create the
-- index again (CONCURRENTLY).
DROP INDEX audit_log_subject;
