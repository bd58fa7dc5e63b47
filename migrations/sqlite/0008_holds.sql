-- When a case's stored plan may stop holding for the notifications waiting in it (an event dated
-- ahead takes effect, a derived event falls due, a notification waiting for working hours goes
-- stale): none of them is claimed from then until the case is planned again. `replan_at` stays
-- the moment the stored plan changes at all (an obligation met by its deadline action), which can
-- be brought up to date after the deliveries due at that moment.
ALTER TABLE cases ADD COLUMN hold_at BIGINT;
UPDATE cases SET hold_at = replan_at;
CREATE INDEX cases_by_hold ON cases (hold_at);
-- A reminder or escalation whose obligation its own deadline action may meet (the invitations
-- going) is not claimed from that moment until its case is planned again: nobody needs a reminder
-- for what is done. The invitations themselves, and everything else of the case, go meanwhile.
ALTER TABLE outbox ADD COLUMN hold_at BIGINT;
CREATE INDEX outbox_pending_by_hold ON outbox (hold_at) WHERE state = 'pending';
