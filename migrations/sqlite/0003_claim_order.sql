-- Claiming takes due notifications in (attempt_at, key) order one state at a time; this index
-- gives that order without sorting every waiting row. It covers what outbox_by_due did.
CREATE INDEX outbox_waiting ON outbox (state, attempt_at, key);
DROP INDEX outbox_by_due;
