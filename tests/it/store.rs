//! One conformance suite for the store, run against SQLite and PostgreSQL alike, in process:
//! what the service and the scheduler rely on (an event stored once, a batch all or nothing, a
//! notification claimed by one daemon at a time and taken over when its lease runs out, retries
//! and dead rows, the rules in force) must hold on both. The PostgreSQL half needs
//! `DRIFTWATCH_TEST_POSTGRES_URL` and runs with `--include-ignored`, as in CI.

use crate::common::{config, outbox_keys, root, t};
use chrono::{DateTime, Duration, Utc};
use driftwatch::clock::Clock;
use driftwatch::service::{AcceptedStatus, Service};
use driftwatch::store::{
    ClaimTerms, Claimed, Lane, NotificationFilter, OutboxState, Store, StoreError,
};
use std::collections::BTreeSet;

/// Late on 11 February 2027: the example case has reminders and escalations due.
const NOW: &str = "2027-02-11T12:00:00Z";

fn example_events() -> Vec<driftwatch::event::Event> {
    let text = std::fs::read_to_string(root().join("examples/events.jsonl")).expect("events");
    driftwatch::event::parse_json_lines(&text).expect("example events")
}

/// The example case stored and planned at `now`.
async fn example_service(store: &Store, now: DateTime<Utc>) -> Service {
    let service = Service::new(store.clone(), config(), Clock::manual(now));
    let accepted = service.ingest(&example_events()).await.expect("ingest");
    assert!(accepted.iter().all(|a| a.status == AcceptedStatus::Stored));
    while service.replan_due().await.expect("replan") > 0 {}
    service
}

/// Claims everything due in every lane for `owner`, with no rules version to agree on.
async fn claim_all(store: &Store, owner: &str, now: DateTime<Utc>) -> Vec<Claimed> {
    claim_with(store, owner, now, "").await
}

async fn claim_with(store: &Store, owner: &str, now: DateTime<Utc>, rules: &str) -> Vec<Claimed> {
    let mut claimed = Vec::new();
    for lane in Lane::ALL {
        let terms = ClaimTerms {
            owner,
            lease_until: now + Duration::minutes(5),
            stale: Duration::days(3650),
            limit: 1000,
            rules,
        };
        claimed.extend(store.claim(lane, now, &terms).await.expect("claim"));
    }
    claimed
}

fn keys(claimed: &[Claimed]) -> BTreeSet<String> {
    claimed.iter().map(|c| c.key.clone()).collect()
}

async fn an_event_is_stored_once_and_read_back(store: Store) {
    let service = example_service(&store, t(NOW)).await;
    let events = example_events();
    let again = service.ingest(&events).await.expect("ingest again");
    assert!(again.iter().all(|a| a.status == AcceptedStatus::Duplicate));
    assert_eq!(
        store.count_events().await.expect("count"),
        i64::try_from(events.len()).unwrap_or_default()
    );
    let case = &events[0].case;
    assert_eq!(
        store.case_events(case).await.expect("case events").len(),
        events.iter().filter(|e| &e.case == case).count()
    );
    assert!(store.has_event(&events[0].id).await.expect("has event"));
    assert!(!store.has_event("no-such-event").await.expect("has event"));
}

async fn a_transaction_not_committed_leaves_nothing(store: Store) {
    store.migrate().await.expect("migrate");
    let event = example_events().remove(0);
    let append = |event: driftwatch::event::Event, fail: bool| {
        store.write(move |tx| {
            Box::pin(async move {
                assert!(tx.append(&event, t(NOW)).await?);
                if fail {
                    return Err(StoreError::Url("refused on purpose".into()));
                }
                Ok(())
            })
        })
    };
    assert!(append(event.clone(), true).await.is_err());
    assert!(!store.has_event(&event.id).await.expect("has event"));
    // The connection that ran the failed write works as new.
    append(event.clone(), false).await.expect("append again");
    assert!(store.has_event(&event.id).await.expect("has event"));
}

/// Writes sent at once (on SQLite, committed together in one transaction): each is kept or not
/// on its own, and each caller hears only once its own write is on disk.
async fn writes_at_once_each_stand_or_fall_alone(store: Store) {
    store.migrate().await.expect("migrate");
    let events = example_events();
    let mut writes = tokio::task::JoinSet::new();
    for (i, event) in events.iter().cloned().enumerate() {
        let store = store.clone();
        writes.spawn(async move {
            let id = event.id.clone();
            let done = store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.append(&event, t(NOW)).await?;
                        if i % 3 == 0 {
                            return Err(StoreError::Url("refused on purpose".into()));
                        }
                        Ok(())
                    })
                })
                .await;
            // Answered: what it wrote is already there for every other connection, or not at
            // all.
            let stored = store.has_event(&id).await.expect("has event");
            assert_eq!(stored, done.is_ok(), "event {i}");
            (i, done.is_ok())
        });
    }
    let mut kept = 0;
    while let Some(done) = writes.join_next().await {
        let (i, ok) = done.expect("write task");
        assert_eq!(ok, i % 3 != 0, "write {i}");
        kept += usize::from(ok);
    }
    assert_eq!(
        store.count_events().await.expect("count"),
        i64::try_from(kept).unwrap_or_default()
    );
}

async fn a_claim_is_one_daemons_until_its_lease_runs_out(store: Store) {
    let now = t(NOW);
    let _service = example_service(&store, now).await;
    let first = claim_all(&store, "daemon-a", now).await;
    assert!(!first.is_empty(), "something is due at {NOW}");
    assert!(
        first
            .iter()
            .all(|c| c.owner == "daemon-a" && c.attempts == 1)
    );
    assert!(
        claim_all(&store, "daemon-b", now).await.is_empty(),
        "claimed once"
    );
    assert_eq!(
        outbox_keys(&store, OutboxState::Sending).await,
        keys(&first)
    );

    // Before the lease runs out nothing is put back; after, another daemon takes the claims
    // over once their cases are planned again, under the same keys.
    assert_eq!(
        store
            .release_expired("daemon-b", now)
            .await
            .expect("release"),
        0
    );
    let later = now + Duration::minutes(6);
    let released = store
        .release_expired("daemon-b", later)
        .await
        .expect("release");
    assert_eq!(released, u64::try_from(first.len()).unwrap_or_default());
    let service = Service::new(store.clone(), config(), Clock::manual(later));
    while service.replan_held().await.expect("replan") > 0 {}
    let taken = claim_all(&store, "daemon-b", later).await;
    assert_eq!(keys(&taken), keys(&first));
    assert!(taken.iter().all(|c| c.attempts == 2));

    // Recorded sent by its holder; what the first daemon says late changes nothing.
    let sent: Vec<&Claimed> = taken.iter().collect();
    store.mark_sent(&sent, later).await.expect("mark sent");
    store
        .mark_dead(&first[0], "too late to matter", later)
        .await
        .expect("mark dead");
    assert_eq!(outbox_keys(&store, OutboxState::Sent).await, keys(&first));
    assert!(outbox_keys(&store, OutboxState::Dead).await.is_empty());
    drop(service);
}

async fn a_failed_attempt_waits_for_its_retry_and_a_dead_one_goes_again(store: Store) {
    let now = t(NOW);
    let service = example_service(&store, now).await;
    let claimed = claim_all(&store, "daemon-a", now).await;
    assert!(claimed.len() >= 2, "two are due");
    let (retried, doomed) = (&claimed[0], &claimed[1]);
    let retry_at = now + Duration::minutes(10);
    store
        .mark_retry(retried, retry_at, "451", now)
        .await
        .expect("retry");
    store.mark_dead(doomed, "550", now).await.expect("dead");
    assert!(
        outbox_keys(&store, OutboxState::Pending)
            .await
            .contains(&retried.key)
    );
    assert_eq!(
        outbox_keys(&store, OutboxState::Dead).await,
        BTreeSet::from([doomed.key.clone()])
    );
    let rows = store
        .notifications(&NotificationFilter {
            key: Some(doomed.key.clone()),
            limit: 10,
            ..NotificationFilter::default()
        })
        .await
        .expect("the dead row");
    assert_eq!(rows[0].last_error.as_deref(), Some("550"));
    // Not before its time.
    let before = claim_all(&store, "daemon-a", now + Duration::minutes(5)).await;
    assert!(!keys(&before).contains(&retried.key));
    // An admin's retry: pending again at once, with a fresh count of attempts.
    assert!(
        store
            .retry_dead(&doomed.key, now)
            .await
            .expect("retry dead")
    );
    assert!(!store.retry_dead(&doomed.key, now).await.expect("only once"));
    while service.replan_held().await.expect("replan") > 0 {}
    let again = claim_all(&store, "daemon-a", retry_at).await;
    assert!(
        keys(&again).contains(&retried.key),
        "the retry goes at its time"
    );
    assert!(
        keys(&again).contains(&doomed.key),
        "the dead one goes again"
    );
}

async fn only_the_rules_in_force_claim(store: Store) {
    let now = t(NOW);
    let _service = example_service(&store, now).await;
    assert_eq!(store.rules_in_force().await.expect("read"), None);
    assert_eq!(
        store
            .put_rules_in_force("v1", "host:1", now)
            .await
            .expect("put"),
        None
    );
    assert_eq!(
        store
            .put_rules_in_force("v1", "host:2", now)
            .await
            .expect("put"),
        None,
        "the same rules again replace nothing"
    );
    assert_eq!(
        store
            .put_rules_in_force("v2", "host:2", now)
            .await
            .expect("put"),
        Some("v1".to_string())
    );
    assert_eq!(
        store.rules_in_force().await.expect("read"),
        Some("v2".to_string())
    );
    assert!(claim_with(&store, "daemon-a", now, "v1").await.is_empty());
    assert!(!claim_with(&store, "daemon-b", now, "v2").await.is_empty());
}

/// Each conformance test, once on a fresh SQLite file and once on a fresh PostgreSQL database.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temporary folder");
                    let url = format!("sqlite:{}?mode=rwc", dir.path().join("driftwatch.db").display());
                    super::$name(driftwatch::store::Store::open(&url).await.expect("store")).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
                async fn $name() {
                    let url = crate::support::fresh_postgres().await;
                    super::$name(driftwatch::store::Store::open(&url).await.expect("store")).await;
                }
            )*
        }
    };
}

conformance!(
    an_event_is_stored_once_and_read_back,
    a_transaction_not_committed_leaves_nothing,
    writes_at_once_each_stand_or_fall_alone,
    a_claim_is_one_daemons_until_its_lease_runs_out,
    a_failed_attempt_waits_for_its_retry_and_a_dead_one_goes_again,
    only_the_rules_in_force_claim,
);
