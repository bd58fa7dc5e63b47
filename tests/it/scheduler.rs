//! The scheduler stepped through time in process (`Scheduler::step`, a manual clock): the
//! README's walk-through, checked against the pure planner at every step. What is sent by each
//! moment is what the plan at that moment has due (apart from what the catch-up rules record
//! instead), nothing the plan no longer has, and nothing twice.

use crate::common::{config, outbox_keys, outbox_rows, root, t};
use driftwatch::clock::Clock;
use driftwatch::notify::Courier;
use driftwatch::planner::NotificationStatus;
use driftwatch::scheduler::{Progress, Scheduler};
use driftwatch::service::Service;
use driftwatch::store::{OutboxState, Store};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

#[tokio::test]
async fn stepped_through_the_walk_through_it_sends_what_the_plan_has_due_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut config = config();
    config.email.smtp = None;
    config.email.spool = dir.path().join("outbox");
    let store = Store::open(&format!(
        "sqlite:{}?mode=rwc",
        dir.path().join("driftwatch.db").display()
    ))
    .await
    .expect("store");
    let courier = Courier::from_config(&config).expect("courier");
    let service = Arc::new(Service::new(
        store.clone(),
        config,
        Clock::manual(t("2026-12-01T09:00:00Z")),
    ));
    let scheduler = Scheduler {
        service: Arc::clone(&service),
        courier: Arc::new(RwLock::new(Arc::new(courier))),
        owner: "stepped".into(),
        progress: Arc::new(Progress::default()),
    };
    let text = std::fs::read_to_string(root().join("examples/events.jsonl")).expect("events");
    let events = driftwatch::event::parse_json_lines(&text).expect("example events");
    service.ingest(&events).await.expect("ingest");

    let mut before = BTreeSet::new();
    for now in [
        "2026-12-01T09:00:00Z",
        "2026-12-11T09:00:00Z",
        "2026-12-15T09:00:00Z",
        "2027-01-08T09:00:00Z",
    ] {
        service.clock().set(t(now)).expect("the clock moves on");
        scheduler.step().await.expect("a step");
        let after = outbox_keys(&store, OutboxState::Sent).await;
        assert!(after.is_superset(&before), "nothing un-sent");
        // The pure planner's view at this moment: everything due has gone, nothing else has.
        let config = service.config();
        let plans = config.planner().plan(&events, t(now));
        let due: BTreeSet<String> = plans
            .iter()
            .flat_map(|p| &p.notifications)
            .filter(|n| n.status == NotificationStatus::Due)
            .map(|n| n.idempotency_key.clone())
            .collect();
        let planned: BTreeSet<String> = plans
            .iter()
            .flat_map(|p| &p.notifications)
            .map(|n| n.idempotency_key.clone())
            .collect();
        let newly: BTreeSet<String> = after.difference(&before).cloned().collect();
        assert!(
            newly.is_subset(&due),
            "at {now}, sent but not due: {:?}",
            newly.difference(&due).collect::<Vec<_>>()
        );
        assert!(
            after.is_subset(&planned),
            "at {now}, sent but not in the plan"
        );
        // Due and not sent: only what the documented catch-up rules record instead (a step
        // gone stale while the clock jumped days is recorded superseded, not sent late).
        let mut recorded = BTreeSet::new();
        for state in [
            OutboxState::Superseded,
            OutboxState::BeforeGoLive,
            OutboxState::InDigest,
            OutboxState::Acknowledged,
        ] {
            recorded.extend(outbox_keys(&store, state).await);
        }
        let missing: Vec<&String> = due
            .iter()
            .filter(|k| !after.contains(*k) && !recorded.contains(*k))
            .collect();
        assert!(
            missing.is_empty(),
            "at {now}, due but neither sent nor recorded: {missing:?}"
        );
        before = after;
    }
    // One .eml per message sent, and nothing sent twice.
    let spooled = std::fs::read_dir(dir.path().join("outbox"))
        .expect("spool")
        .count();
    assert_eq!(spooled, before.len());
    assert!(!before.is_empty());
    // The care plan was met on 11 December at 16:00: no escalation of it ever goes, however
    // the clock jumps (the README's own case of a message the plan no longer had).
    let escalations: Vec<String> = outbox_rows(&store, OutboxState::Sent)
        .await
        .into_iter()
        .filter(|n| n.rule == "care_plan_in_place" && n.notification["kind"] == "escalation")
        .map(|n| n.idempotency_key)
        .collect();
    assert!(escalations.is_empty(), "{escalations:?}");
}
