-- driftwatch's store on PostgreSQL. Times are milliseconds since 1970-01-01 UTC.

-- The event log: append-only, the source of truth. `body` is the event as received (JSON).
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    case_ref TEXT NOT NULL,
    type TEXT NOT NULL,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_by_case ON events (case_ref, at);

-- One row per case: when it was last planned and when it must be planned again (a derived event
-- or a future-dated event falls due then).
CREATE TABLE cases (
    case_ref TEXT PRIMARY KEY,
    planned_at BIGINT NOT NULL,
    replan_at BIGINT
);
CREATE INDEX cases_by_replan ON cases (replan_at);

-- Obligations as last planned (derived from the events; rewritten with each plan of the case).
-- `state` is open, met, met_late or cancelled; an open obligation is overdue once `deadline` passes.
CREATE TABLE obligations (
    case_ref TEXT NOT NULL,
    id TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (case_ref, id)
);
CREATE INDEX obligations_by_state ON obligations (state, deadline);

-- Who is told about each obligation (its notifications' recipients), for "what must I chase".
CREATE TABLE obligation_people (
    case_ref TEXT NOT NULL,
    obligation TEXT NOT NULL,
    role TEXT NOT NULL,
    email TEXT NOT NULL,
    PRIMARY KEY (case_ref, obligation, role, email)
);
CREATE INDEX obligation_people_by_email ON obligation_people (email, role);

-- The notification outbox. `state`: pending, sending (claimed under a lease until attempt_at),
-- sent, dead, cancelled (no longer planned), superseded (a later step went instead).
CREATE TABLE outbox (
    key TEXT PRIMARY KEY,
    case_ref TEXT NOT NULL,
    rule TEXT NOT NULL,
    channel TEXT NOT NULL,
    send_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    last_error TEXT,
    sent_at BIGINT,
    notification TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_by_due ON outbox (state, attempt_at);
CREATE INDEX outbox_by_case ON outbox (case_ref);
