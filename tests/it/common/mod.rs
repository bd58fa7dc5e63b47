//! Shared helpers for the integration tests: the shipped config, events and plan look-ups.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use driftwatch::config::Config;
use driftwatch::event::Event;
use driftwatch::planner::{CasePlan, Notification, NotificationKind, ObligationPlan};
use serde_json::{Value, json};
use std::path::PathBuf;

pub mod timeline;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped example config, default rules and templates.
pub fn config() -> Config {
    match Config::load(&root().join("config/driftwatch.yaml")) {
        Ok(c) => c,
        Err(d) => panic!("the shipped config does not load:\n{d}"),
    }
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An event of case C1, checked against the default vocabulary.
pub fn ev(config: &Config, id: &str, kind: &str, at: &str, data: Value) -> Event {
    let e = Event::from_value(
        &json!({"id": id, "case": "C1", "type": kind, "at": at, "data": data}),
        id,
    )
    .unwrap();
    if let Err(err) = config.rules.vocabulary.validate(&e) {
        panic!("test event is invalid: {err}");
    }
    e
}

pub fn contact(name: &str) -> Value {
    json!({"name": name, "email": format!("{}@council.example", name.to_lowercase().replace(' ', "."))})
}

pub fn plan(config: &Config, events: &[Event], now: &str) -> CasePlan {
    config.planner().plan_case("C1", events, t(now))
}

pub fn obligation<'p>(plan: &'p CasePlan, rule: &str) -> &'p ObligationPlan {
    let found: Vec<_> = plan.obligations.iter().filter(|o| o.rule == rule).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{rule}` obligation, found {}: {:#?}",
        found.len(),
        plan.obligations
    );
    found[0]
}

pub fn notes<'p>(plan: &'p CasePlan, rule: &str, kind: NotificationKind) -> Vec<&'p Notification> {
    plan.notifications
        .iter()
        .filter(|n| n.rule == rule && n.kind == kind)
        .collect()
}

/// `(local send time, role or webhook)` pairs, for compact assertions.
pub fn when_who(notes: &[&Notification]) -> Vec<(String, String)> {
    let mut v: Vec<_> = notes
        .iter()
        .map(|n| {
            (
                driftwatch::localtime::display(n.send_at),
                n.recipient.label(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A case taken into care under section 31 at `start`, with its social worker, team manager and IRO.
pub fn in_care(config: &Config, start: &str) -> Vec<Event> {
    vec![
        ev(
            config,
            "lac",
            "child_looked_after",
            start,
            json!({"start": start, "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
        ),
        ev(
            config,
            "sw",
            "social_worker_allocated",
            start,
            json!({"social_worker": contact("Sam Social"), "team_manager": contact("Tara Manager")}),
        ),
        ev(
            config,
            "iro",
            "iro_allocated",
            start,
            json!({"iro": contact("Ira Reviewer")}),
        ),
    ]
}

/// The events of the example case shipped in `examples/events.jsonl`.
pub fn example_events() -> Vec<Event> {
    let text = std::fs::read_to_string(root().join("examples/events.jsonl")).unwrap();
    driftwatch::event::parse_json_lines(&text).unwrap()
}

/// Copies a folder and everything in it (the shipped config, rules or templates, to change).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs the `driftwatch` binary with `--config CONFIG` and `args`, as an admin would (no
/// `DRIFTWATCH_CONFIG` from the environment): its exit code, standard output and standard error.
pub fn driftwatch_with(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    outcome(
        std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("DRIFTWATCH_CONFIG"),
    )
}

/// `driftwatch` run in a folder, with no `--config` (nor a config or state folder from the
/// environment, but for `env`).
pub fn driftwatch_in(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    outcome(
        std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .current_dir(dir)
            .args(args)
            .env_remove("DRIFTWATCH_CONFIG")
            .env_remove("DRIFTWATCH_STATE_DIR")
            .env_remove("STATE_DIRECTORY")
            .envs(env.iter().copied()),
    )
}

/// A command's exit code, standard output and standard error.
fn outcome(command: &mut std::process::Command) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The `*.yaml` files directly in a folder of the checkout, in order (`rules/tests/*.yaml`).
pub fn yaml_files_in(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A store's outbox rows in `state` (every one of them is in it).
pub async fn outbox_rows(
    store: &driftwatch::store::Store,
    state: driftwatch::store::OutboxState,
) -> Vec<driftwatch::store::OutboxEntry> {
    let filter = driftwatch::store::NotificationFilter {
        state: Some(state),
        limit: 10_000,
        ..driftwatch::store::NotificationFilter::default()
    };
    let rows = store.notifications(&filter).await.expect("the outbox");
    assert!(rows.iter().all(|r| r.state == state));
    rows
}

/// The keys of a store's outbox rows in `state`.
pub async fn outbox_keys(
    store: &driftwatch::store::Store,
    state: driftwatch::store::OutboxState,
) -> std::collections::BTreeSet<String> {
    outbox_rows(store, state)
        .await
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect()
}
