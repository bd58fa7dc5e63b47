-- When a case's stored plan may stop holding for the notifications waiting in it (an event dated
-- ahead takes effect, a derived event falls due, a deadline action ends an obligation whose
-- ladder has later steps): none of them is claimed from then until the case is planned again.
-- `replan_at` stays the moment the stored plan changes at all (an obligation met by its deadline
-- action), which can be brought up to date after the deliveries due at that moment.
ALTER TABLE cases ADD COLUMN hold_at BIGINT;
UPDATE cases SET hold_at = replan_at;
CREATE INDEX cases_by_hold ON cases (hold_at);
