-- Idempotency-Key: a repeat gets the first answer back with its content type too (JSON for a
-- 2xx, problem+json for a 4xx), so the type is stored beside the status and body.
ALTER TABLE idempotency_keys ADD COLUMN response_type text
    CHECK (response_type IS NULL OR length(response_type) <= 255);
