-- The rules in force: daemons sharing this database plan and send only while the rules,
-- templates and calendar they hold are these (their digest, `rules_version`). The daemon that
-- starts or reloads last puts its own in force; one that holds other rules plans, sends and
-- accepts nothing until it is reloaded with the same.
CREATE TABLE rules_in_force (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
