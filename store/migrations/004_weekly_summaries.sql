-- Weekly summaries (actors/weekly_summary.c). One row per user and week, inserted in the same
-- statement as the summary's notification: the primary key is what makes the summary go out
-- once even when several intentd processes run the same week at the same time (the loser's
-- insert does nothing, and so does its notification).
CREATE TABLE weekly_summaries (
    user_id          uuid NOT NULL REFERENCES users (id),
    week_end         timestamptz NOT NULL,   -- the summary covers [week_end - 7 days, week_end)
    notification_id  uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, week_end)
);

-- the summary reads a week of executions and of delay notifications
CREATE INDEX executions_created ON executions (created_at);
CREATE INDEX notifications_delayed ON notifications (created_at)
    WHERE type = 'execution_delayed';
