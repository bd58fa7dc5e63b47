-- A notification still waiting more than `delivery.stale_after_hours` after its time, whose case
-- was last planned before it went stale, is judged again by the catch-up rules before it may go.
-- This index finds such rows (few: normally a notification goes at its time) by send_at.
CREATE INDEX outbox_pending_by_send_at ON outbox (send_at) WHERE state = 'pending';
