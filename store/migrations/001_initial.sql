-- The initial schema. The API contract is shared/api.md; the engine's invariants are in
-- design.md. Every money-relevant rule that can be a constraint is one, so that a bug in the
-- application cannot store a row the product would misread.

CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    wallet_address  bytea NOT NULL UNIQUE CHECK (length(wallet_address) = 20),
    telegram_id     bigint UNIQUE,
    telegram_chat   bytea,          -- AES-256-GCM (store/crypto.h), the chat id
    email           bytea,          -- AES-256-GCM, the address
    email_hash      bytea,          -- keyed hash of the normalised address, for look-ups
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_active     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth_nonces (
    nonce           text PRIMARY KEY CHECK (nonce ~ '^[A-Za-z0-9]{8,64}$'),
    wallet_address  bytea NOT NULL CHECK (length(wallet_address) = 20),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    CHECK (expires_at > issued_at),
    CHECK (used_at IS NULL OR used_at >= issued_at)
);
CREATE INDEX auth_nonces_expiry ON auth_nonces (expires_at) WHERE used_at IS NULL;

CREATE TABLE intents (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id           uuid NOT NULL REFERENCES users (id),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    chain_id           bigint NOT NULL CHECK (chain_id > 0),
    recipient          bytea NOT NULL CHECK (length(recipient) = 20),
    token              bytea NOT NULL CHECK (length(token) = 20),
    amount             numeric(78, 0) NOT NULL CHECK (amount > 0),      -- base units
    frequency          text NOT NULL
                       CHECK (frequency IN ('once', 'daily', 'weekly', 'monthly', 'custom')),
    interval_seconds   bigint CHECK (interval_seconds >= 60),
    start_at           timestamptz NOT NULL,
    end_at             timestamptz,
    max_executions     integer CHECK (max_executions > 0),             -- NULL: unlimited
    safety_buffer      numeric(78, 0) NOT NULL DEFAULT 0 CHECK (safety_buffer >= 0),
    constraints        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(constraints) = 'object'),
    status             text NOT NULL
                       CHECK (status IN ('pending_signature', 'active', 'paused', 'delayed',
                                         'completed', 'cancelled', 'failed')),
    delay_reason       text CHECK (delay_reason IN ('insufficient_balance', 'below_safety_buffer',
                                                    'allowance_too_low', 'gas_price_above_cap',
                                                    'outside_time_window', 'chain_unavailable')),
    next_execution     timestamptz,
    last_execution     timestamptz,
    execution_count    integer NOT NULL DEFAULT 0 CHECK (execution_count >= 0),
    min_interval       bigint NOT NULL CHECK (min_interval >= 0),       -- signed term, seconds
    salt               bytea NOT NULL CHECK (length(salt) = 32),
    on_chain_id        bytea NOT NULL UNIQUE CHECK (length(on_chain_id) = 32),
    signature          bytea CHECK (length(signature) = 65),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((frequency = 'custom') = (interval_seconds IS NOT NULL)),
    CHECK (frequency <> 'once' OR max_executions = 1),
    CHECK (end_at IS NULL OR end_at > start_at),
    CHECK ((status = 'delayed') = (delay_reason IS NOT NULL)),
    CHECK (status = 'pending_signature' OR signature IS NOT NULL),
    CHECK (max_executions IS NULL OR execution_count <= max_executions)
);
-- the API: a user's intents, newest first, optionally by status (cursor = created_at, id)
CREATE INDEX intents_owner_created ON intents (owner_id, created_at DESC, id DESC);
CREATE INDEX intents_owner_status ON intents (owner_id, status, created_at DESC, id DESC);
-- the engine: what is due, and what to load at start
CREATE INDEX intents_due ON intents (next_execution)
    WHERE status IN ('active', 'delayed');
CREATE INDEX intents_live ON intents (id) WHERE status IN ('active', 'delayed', 'paused');

CREATE TABLE executions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    intent_id        uuid NOT NULL REFERENCES intents (id),
    period           integer NOT NULL CHECK (period >= 0),   -- the registry's count
    status           text NOT NULL
                     CHECK (status IN ('signed', 'broadcast', 'confirmed', 'failed', 'replaced')),
    amount           numeric(78, 0) NOT NULL CHECK (amount > 0),
    executor         bytea NOT NULL CHECK (length(executor) = 20),
    nonce            bigint NOT NULL CHECK (nonce >= 0),
    raw_tx           bytea NOT NULL,                         -- stored before broadcast
    tx_hash          bytea NOT NULL CHECK (length(tx_hash) = 32),
    gas_used         bigint CHECK (gas_used >= 0),
    gas_price_wei    numeric(78, 0) CHECK (gas_price_wei >= 0),
    block_number     bigint CHECK (block_number >= 0),
    block_hash       bytea CHECK (length(block_hash) = 32),
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    broadcast_at     timestamptz,
    confirmed_at     timestamptz,
    CHECK (status <> 'confirmed' OR (block_number IS NOT NULL AND confirmed_at IS NOT NULL)),
    CHECK (status <> 'failed' OR error IS NOT NULL)
);
-- invariant 1: at most one live execution per intent period. A replaced transaction keeps its
-- row (status 'replaced') next to the one that replaced it, so uniqueness covers the others.
CREATE UNIQUE INDEX executions_one_per_period ON executions (intent_id, period)
    WHERE status <> 'replaced';
CREATE INDEX executions_intent_newest ON executions (intent_id, created_at DESC);
CREATE INDEX executions_in_flight ON executions (executor, nonce)
    WHERE status IN ('signed', 'broadcast');
CREATE INDEX executions_tx_hash ON executions (tx_hash);

CREATE TABLE notifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id),
    type        text NOT NULL CHECK (type IN ('execution_succeeded', 'execution_delayed',
                                               'execution_failed', 'low_buffer',
                                               'weekly_summary')),
    title       text NOT NULL,
    message     text NOT NULL,
    intent_id   uuid REFERENCES intents (id),
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_newest ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

-- Append-only: the application role may insert and read, never change or delete; a trigger
-- refuses UPDATE and DELETE even for the table's owner.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     uuid REFERENCES users (id),
    actor       text NOT NULL,          -- 'user', 'engine', 'system'
    action      text NOT NULL,          -- e.g. 'auth.sign_in', 'intent.create'
    subject_id  uuid,
    remote_ip   inet,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_user ON audit_log (user_id, at DESC);
CREATE INDEX audit_log_subject ON audit_log (subject_id, at DESC);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

CREATE TABLE idempotency_keys (
    user_id        uuid NOT NULL REFERENCES users (id),
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash   bytea NOT NULL CHECK (length(request_hash) = 32),
    state          text NOT NULL CHECK (state IN ('running', 'done')),
    response_status integer CHECK (response_status BETWEEN 200 AND 499),
    response_body  bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, key),
    CHECK ((state = 'done') = (response_status IS NOT NULL))
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
