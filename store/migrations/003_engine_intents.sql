-- The intent engine's own bookkeeping on intents (the executor's is in 002).
--
-- low_buffer_period: the period (the registry's count) of the last low_buffer warning, so that
-- the warning goes out once per period even across restarts: the engine sets it in the same
-- statement that inserts the notification, only when it differs.
ALTER TABLE intents ADD COLUMN low_buffer_period integer CHECK (low_buffer_period >= 0);
