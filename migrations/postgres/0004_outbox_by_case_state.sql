-- A case's pending (or sent) notifications are looked up on every re-plan. With only an index on
-- case_ref, PostgreSQL could AND it with the (state, ...) index and read every pending row of
-- every case: during a large import, whose rows no statistics have seen yet, that made
-- re-planning slower with every case imported. One index on both columns answers it directly.
CREATE INDEX outbox_by_case_state ON outbox (case_ref, state);
DROP INDEX outbox_by_case;
