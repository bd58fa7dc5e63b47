-- Daily digests sent (or being sent): one row per recipient and day, so a digest goes once even
-- with two daemons or a restart. `key` is also the digest's Message-ID.
CREATE TABLE digests (
    key TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    claimed_at BIGINT NOT NULL
);
