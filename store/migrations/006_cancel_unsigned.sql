-- An intent cancelled before its owner signed it has no signature, and never will: 001 required
-- a signature of every status but pending_signature, so cancelling an unsigned intent broke the
-- constraint (a 500 instead of the cancellation). A cancelled intent may now be unsigned too.
ALTER TABLE intents DROP CONSTRAINT intents_check4;
ALTER TABLE intents ADD CONSTRAINT intents_signed_unless_pending_or_cancelled
    CHECK (status IN ('pending_signature', 'cancelled') OR signature IS NOT NULL);
