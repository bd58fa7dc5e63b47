-- Lanes: notifications wait in one of four queues, claimed apart from one another, so that urgent
-- notices never wait behind bulk traffic and a channel that hangs never holds up the other:
-- `email`, `webhook`, `email:urgent`, `webhook:urgent`. Rows that may still be claimed (or be
-- retried by an admin) are given theirs; the rest keep the default, which nothing reads.
ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT 'email';
-- (A message nobody can be found to receive waits with email.)
UPDATE outbox SET lane = CASE WHEN channel = 'webhook' THEN 'webhook' ELSE 'email' END
    || CASE WHEN notification LIKE '%"urgent":true%' THEN ':urgent' ELSE '' END
WHERE state IN ('pending', 'sending', 'dead');
-- Each lane's waiting rows in due order, as the claim reads them.
CREATE INDEX outbox_lane_waiting ON outbox (lane, attempt_at, key) WHERE state = 'pending';
