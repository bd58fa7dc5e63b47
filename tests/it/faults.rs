//! Fault injection: the real daemon killed with SIGKILL while it ingests and while it delivers,
//! its SMTP server down for a while or hung (accepting connections and never answering), its
//! webhook receiver slow or answering `429` with `Retry-After`, its database unreachable at start
//! and mid-run, its SQLite disk full, and one of two daemons sharing PostgreSQL killed in the
//! middle of a wave of deliveries.
//!
//! What they prove: an event the API answered `2xx` for is stored, whatever happens next; the API
//! answers `503` (or `507`), never `202`, when it cannot store; every notification that falls due
//! is delivered at least once, and a notification delivered twice (its sender killed before it
//! could record the delivery) goes under the same idempotency key; nothing stalls once the fault
//! is gone; an attempt takes at most its configured timeout, and a hung channel holds up neither
//! urgent notices nor the other channel. As in `daemon.rs`, no test sleeps waiting for a timer: the daemons run on a manual
//! clock, and moving it answers once the scheduler has handled everything due. What is outside
//! the daemon's clock (a killed process, a server coming back) is polled with a bounded deadline.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The idempotency key of a message received by the SMTP server (its Message-ID's local part).
fn key_of(mail: &Mail) -> String {
    let id = mail.message_id();
    id.trim_start_matches('<')
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// How many times each key reached the SMTP server.
fn deliveries(mailbox: &Mailbox) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for m in mailbox.mail() {
        *count.entry(key_of(&m)).or_default() += 1;
    }
    count
}

/// The keys of outbox rows.
fn keys(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|n| n["idempotency_key"].as_str().map(str::to_string))
        .collect()
}

/// The keys `driftwatch plan` (the pure planner, no store) says are due at `now` for these
/// events: what a daemon that was never disturbed would have sent by then.
fn due_by_plan(setup: &Setup, events: &[Value], now: &str) -> BTreeSet<String> {
    cli_plan(setup, events, now)
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["notifications"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["status"] == "due")
        .filter_map(|n| n["idempotency_key"].as_str().map(str::to_string))
        .collect()
}

/// `POST /v1/events` without a borrowed [`Daemon`], for clients running beside it; `Err` when
/// the daemon is gone.
async fn post(http: &reqwest::Client, base: &str, events: &Value) -> Result<(u16, Value), String> {
    let res = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(events.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

/// Polls `check` until it holds, for at most `within`: for what the manual clock does not
/// govern (a process starting or stopping, a server coming back). Whether it held.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// No address, name or free text from an event is in the logs of any daemon run with `setup`,
/// whatever went wrong.
fn assert_logs_private(setup: &Setup) {
    let logs: String = std::fs::read_dir(setup.dir.path())
        .expect("the test folder")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("daemon-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(!logs.is_empty());
    for private in [
        "@",
        "Sam Social",
        "Parent One",
        "Foster Carer",
        "sibling contact",
    ] {
        assert!(
            !logs.contains(private),
            "the logs contain `{private}`:\n{logs}"
        );
    }
}

/// The statuses (`stored` or `duplicate`) of a `202` answer, by event id.
fn statuses(body: &Value) -> BTreeMap<String, String> {
    body["accepted"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// When the example case's first reminder falls due as soon as the case is known: each case
/// posted at this moment is delivered to while others are still being ingested.
const INGEST_AT: &str = "2026-12-08T09:00:00Z";

#[tokio::test]
async fn a_kill_during_ingestion_loses_no_accepted_event_and_every_due_notification_goes() {
    kill_during_ingestion(Setup::new(), 150).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_a_kill_during_ingestion_loses_no_accepted_event() {
    let mut setup = Setup::new();
    setup.database_url = fresh_postgres().await;
    kill_during_ingestion(setup, 80).await;
}

/// Four clients post `cases` cases, one at a time (13 events each), and the daemon is killed
/// once a third are accepted, with requests in flight and reminders being delivered; then it is
/// restarted on the same database. On PostgreSQL, what the killed daemon was sending stays
/// claimed until its lease runs out (5 minutes), well before the last clock move.
async fn kill_during_ingestion(mut setup: Setup, cases: usize) {
    const CLIENTS: usize = 4;
    let mailbox = Mailbox::start();
    setup.smtp_port = Some(mailbox.port);
    let daemon = Daemon::start(&setup, INGEST_AT);

    let batches: Vec<Value> = (0..cases)
        .map(|i| example_events_for(&format!("C-{}", 20_000 + i)))
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(
        (0..cases).collect::<std::collections::VecDeque<usize>>(),
    ));
    let accepted = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (queue, accepted, count) = (queue.clone(), accepted.clone(), count.clone());
        let (http, base, batches) = (http.clone(), daemon.base.clone(), batches.clone());
        clients.spawn(async move {
            loop {
                let Some(i) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                match post(&http, &base, &batches[i]).await {
                    Ok((status, body)) if (200..300).contains(&status) => {
                        assert_eq!(status, 202, "{body}");
                        accepted.lock().expect("accepted").push(i);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => panic!("{status} {body}"),
                    // The daemon is gone: this case and the rest were not accepted.
                    Err(_) => return,
                }
            }
        });
    }
    let third = eventually(Duration::from_secs(60), || {
        count.load(Ordering::SeqCst) >= cases / 3
    })
    .await;
    assert!(
        third,
        "a third of the cases accepted; the log:\n{}",
        daemon.logs()
    );
    daemon.kill();
    while let Some(done) = clients.join_next().await {
        done.expect("a client");
    }
    let accepted: BTreeSet<usize> = accepted.lock().expect("accepted").iter().copied().collect();
    assert!(
        accepted.len() >= cases / 3 && accepted.len() < cases,
        "killed mid-stream: {} of {cases} cases accepted",
        accepted.len()
    );

    // Restarted on the same database at the same moment.
    let daemon = Daemon::start(&setup, INGEST_AT);
    // Every event answered 202 is stored: posted again, each is a duplicate.
    for chunk in accepted.iter().collect::<Vec<_>>().chunks(16) {
        let events: Vec<Value> = chunk
            .iter()
            .flat_map(|i| batches[**i].as_array().cloned().unwrap_or_default())
            .collect();
        let (status, body) = daemon.post_events(&Value::Array(events.clone())).await;
        assert_eq!(status, 202, "{body}");
        let statuses = statuses(&body);
        assert_eq!(statuses.len(), events.len());
        for (id, status) in &statuses {
            assert_eq!(
                status, "duplicate",
                "{id} was answered 202 but is not stored"
            );
        }
    }
    // The case system sends again what got no answer; some of it may have been stored just
    // before the kill.
    for i in (0..cases).filter(|i| !accepted.contains(i)) {
        let (status, body) = daemon.post_events(&batches[i]).await;
        assert_eq!(status, 202, "{body}");
        let statuses = statuses(&body);
        let duplicates = statuses.values().filter(|s| *s == "duplicate").count();
        assert!(
            duplicates == 0 || duplicates == statuses.len(),
            "a batch is stored whole or not at all: {body}"
        );
    }

    // Every notification due by then went at least once; a repeat is the same message, under
    // the same key, sent again because the kill came before its delivery was recorded.
    const LATER: &str = "2026-12-08T12:00:00Z";
    daemon.clock(INGEST_AT).await;
    daemon.clock(LATER).await;
    let all: Vec<Value> = batches
        .iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        .collect();
    let mut due = due_by_plan(&setup, &all, INGEST_AT);
    due.extend(due_by_plan(&setup, &all, LATER));
    assert!(due.len() >= cases, "{} due", due.len());
    // A claim the kill cut short waits out its lease (on PostgreSQL another daemon may hold
    // it), and is then judged by the plan of that moment: one whose obligation was met by
    // events posted meanwhile is recorded, not sent (again).
    let outbox = daemon.outbox_all().await;
    let cut_short_and_unwanted = |key: &String| {
        outbox.iter().any(|n| {
            n["idempotency_key"] == key.as_str()
                && n["attempts"].as_i64() >= Some(1)
                && ["superseded", "cancelled"].contains(&n["state"].as_str().unwrap_or_default())
        })
    };
    let delivered = deliveries(&mailbox);
    let missing: Vec<&String> = due
        .iter()
        .filter(|k| !delivered.contains_key(*k) && !cut_short_and_unwanted(k))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let unplanned: Vec<&String> = delivered.keys().filter(|k| !due.contains(*k)).collect();
    assert!(unplanned.is_empty(), "delivered but not due: {unplanned:?}");
    let sent = keys(&daemon.outbox("sent").await);
    assert!(sent.is_subset(&due), "sent but not due");
    let unsent: Vec<&String> = due
        .difference(&sent)
        .filter(|k| !cut_short_and_unwanted(k))
        .collect();
    assert!(unsent.is_empty(), "due but not recorded sent: {unsent:?}");
    for state in ["pending", "sending", "dead"] {
        let left: Vec<Value> = daemon
            .outbox(state)
            .await
            .into_iter()
            .filter(|n| n["send_at"].as_str().unwrap_or_default() <= LATER)
            .collect();
        assert!(left.is_empty(), "{state}: {left:?}");
    }
    let twice: Vec<(&String, &usize)> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= 4 && twice.iter().all(|(_, n)| **n == 2),
        "only what was in flight at the kill (4 at once) may go twice: {twice:?}"
    );
    assert_logs_private(&setup);
}

#[tokio::test]
async fn an_smtp_server_down_for_a_while_is_waited_for_and_each_message_goes_once() {
    // Nothing listens on the configured port yet.
    let port = free_port();
    let mut setup = Setup::new();
    setup.smtp_port = Some(port);
    let daemon = Daemon::start(&setup, "2027-02-10T19:30:00Z");
    assert_eq!(daemon.post_events(&example_events()).await.0, 202);
    // 19:30: the significant event's urgent notice, with what else is due, cannot be sent.
    daemon.clock("2027-02-10T19:30:00Z").await;
    let due = |rows: Vec<Value>| -> Vec<Value> {
        rows.into_iter()
            .filter(|n| n["send_at"].as_str().unwrap_or_default() <= "2027-02-10T19:30:00Z")
            .collect()
    };
    let waiting = due(daemon.outbox("pending").await);
    assert!(
        waiting
            .iter()
            .any(|n| n["rule"] == "significant_event_notice"),
        "{waiting:?}"
    );
    let expected = keys(&waiting);
    for n in &waiting {
        assert_eq!(n["attempts"], 1, "{n}");
        assert_eq!(n["last_error"], "could not talk to the SMTP server", "{n}");
    }
    assert!(daemon.outbox("sent").await.is_empty());
    assert!(daemon.outbox("dead").await.is_empty());

    // Still down at the first retry (within a minute): tried again, still waiting, not dead.
    daemon.clock("2027-02-10T19:31:00Z").await;
    let waiting = due(daemon.outbox("pending").await);
    assert_eq!(keys(&waiting), expected);
    assert!(waiting.iter().all(|n| n["attempts"] == 2), "{waiting:?}");
    assert!(daemon.outbox("dead").await.is_empty());

    // The server comes up on that port; by the next retry (within two minutes) every message
    // has gone, once.
    let mailbox = Mailbox::start_on(port);
    daemon.clock("2027-02-10T19:33:00Z").await;
    let delivered = deliveries(&mailbox);
    assert_eq!(delivered.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    let sent = daemon.outbox("sent").await;
    assert_eq!(keys(&sent), expected);
    assert!(sent.iter().all(|n| n["attempts"] == 3), "{sent:?}");
    assert_logs_private(&setup);
}

/// The mean time one attempt of `channel` took, from the daemon's own histogram.
async fn mean_attempt(daemon: &Daemon, channel: &str) -> Duration {
    let m = daemon.metrics().await;
    let of = |name: &str| {
        sample(&m, name, &[("channel", channel)])
            .unwrap_or_else(|| panic!("{name} for {channel} is in the metrics"))
    };
    let (sum, count) = (
        of("driftwatch_delivery_seconds_sum"),
        of("driftwatch_delivery_seconds_count"),
    );
    assert!(count > 0.0);
    Duration::from_secs_f64(sum / count)
}

#[tokio::test]
async fn an_smtp_attempt_takes_at_most_its_configured_timeout() {
    // A mail server that accepts the connection and never answers.
    let server = Silent::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(server.port);
    setup.smtp_timeout_seconds = 2;
    // Every message at once, so the whole round is one attempt long.
    setup.delivery = "{max_attempts: 4, first_retry_seconds: 60, max_retry_seconds: 600, \
                      concurrency: 64, lease_seconds: 300}"
        .into();
    // Thursday 11 February 2027 at noon: the example case's significant-event notice and the
    // steps that apply now are due at once.
    let daemon = Daemon::start(&setup, "2027-02-11T12:00:00Z");
    let started = std::time::Instant::now();
    assert_eq!(daemon.post_events(&example_events()).await.0, 202);
    daemon.clock("2027-02-11T12:00:00Z").await;
    let took = started.elapsed();
    let waiting: Vec<Value> = daemon
        .outbox("pending")
        .await
        .into_iter()
        .filter(|n| n["send_at"].as_str().unwrap_or_default() <= "2027-02-11T12:00:00Z")
        .collect();
    assert!(waiting.len() > 1, "{waiting:?}");
    assert!(server.connections() > 0);
    for n in &waiting {
        assert_eq!(n["attempts"], 1, "{n}");
        assert_eq!(
            n["last_error"], "the SMTP server did not answer in time",
            "{n}"
        );
    }
    // Each attempt took the configured two seconds, not a multiple of them (six, before).
    let mean = mean_attempt(&daemon, "email").await;
    assert!(
        mean >= Duration::from_millis(1900) && mean < Duration::from_secs(4),
        "an attempt took {mean:?} on average"
    );
    assert!(took >= Duration::from_secs(2), "the round took {took:?}");
    assert_logs_private(&setup);
}

/// A second rule to follow [`WEBHOOK_RULE`]'s urgent one: an ordinary notice for the IRO
/// team's channel, inside working hours.
const ORDINARY_WEBHOOK_RULE: &str = r#"
  - id: significant_event_log
    title: Significant event logged in the IRO team's channel
    source: "Test: a council's Teams channel"
    on: significant_event
    notice: {to: ["webhook:teams"], template: significant_event}
"#;

#[tokio::test]
async fn urgent_notices_and_webhooks_do_not_wait_behind_email_to_a_hung_server() {
    let server = Silent::start();
    let receiver = Receiver::start().await;
    let mut setup = Setup::new();
    setup.smtp_port = Some(server.port);
    setup.smtp_timeout_seconds = 10;
    setup.webhook_url = Some(receiver.url.clone());
    setup.extra_rules = Some(format!("{WEBHOOK_RULE}{ORDINARY_WEBHOOK_RULE}"));
    setup.delivery = "{max_attempts: 4, first_retry_seconds: 60, max_retry_seconds: 600, \
                      concurrency: 2, lease_seconds: 300}"
        .into();
    // Wednesday 10 February 2027, noon.
    let daemon = Daemon::start(&setup, "2027-02-10T12:00:00Z");
    // Six children whose reminders and escalations are all due: dozens of ordinary emails,
    // two at a time, each attempt hanging for ten seconds.
    for i in 0..6 {
        let events = example_events_for(&format!("C-H{i}"));
        assert_eq!(daemon.post_events(&events).await.0, 202);
    }
    assert!(
        eventually(Duration::from_secs(10), || server.connections() > 0).await,
        "the email lane is sending"
    );
    let queued = daemon
        .outbox_all()
        .await
        .iter()
        .filter(|n| {
            n["channel"] == "email"
                && ["pending", "sending"].contains(&n["state"].as_str().unwrap_or_default())
        })
        .filter(|n| n["send_at"].as_str().unwrap_or_default() <= "2027-02-10T12:00:00Z")
        .count();
    assert!(queued > 20, "only {queued} emails queued");

    // A significant event: an urgent notice (webhook and email) and an ordinary webhook.
    let posted = std::time::Instant::now();
    let events = significant_event("C-H-SE", "se-h", "2027-02-10T11:55:00Z");
    assert_eq!(daemon.post_events(&events).await.0, 202);
    assert!(
        eventually(Duration::from_secs(8), || receiver.count() >= 2).await,
        "both webhooks went while email hung (after {:?}: {} arrived)",
        posted.elapsed(),
        receiver.count()
    );
    let hooks = receiver.hooks();
    assert!(hooks.iter().all(|h| h.signature_valid && h.answered == 200));
    let rules: BTreeSet<String> = hooks
        .iter()
        .filter_map(|h| h.body["rule"]["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        rules,
        BTreeSet::from([
            "significant_event_log".into(),
            "significant_event_webhook".into()
        ])
    );
    // They went while every email attempt was still waiting for the hung server.
    let emails: Vec<Value> = daemon
        .outbox_all()
        .await
        .into_iter()
        .filter(|n| n["channel"] == "email")
        .collect();
    assert!(
        emails.iter().all(|n| n["last_error"].is_null()),
        "no email attempt had ended yet"
    );
    assert!(emails.iter().any(|n| n["state"] == "sending"));
}

/// A notice whose template fails when a placement is disrupted (it names a value the event does
/// not have); `driftwatch check`'s example data, another kind of event, renders.
const FRAGILE_RULE: &str = r#"
rules:
  - id: fragile_notice
    title: A notice whose template cannot always be rendered
    source: "Test: a template that fails at render time"
    on: significant_event
    notice: {to: [iro_manager], template: fragile, urgent: true}
"#;

#[tokio::test]
async fn a_message_that_cannot_be_built_is_dead_with_its_reason_and_the_rest_go() {
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    setup.extra_rules = Some(FRAGILE_RULE.into());
    setup.extra_templates = vec![(
        "fragile".into(),
        "Case {{ case.reference }}: significant event\n".into(),
        "{% if data.kind == \"placement_disruption\" %}{{ data.no_such_field }}{% endif %}\n"
            .into(),
    )];
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");
    let mut events = significant_event("C-41001", "se-41", "2027-02-01T11:00:00Z");
    if let Value::Array(list) = &mut events {
        list.push(
            serde_json::json!({"id": "se-41-iro", "case": "C-41001", "type": "iro_allocated",
            "at": "2027-01-05T10:00:00Z",
            "data": {"iro": {"name": "Ira Reviewer", "email": "ira.reviewer@council.example"}}}),
        );
    }
    assert_eq!(daemon.post_events(&events).await.0, 202);
    daemon.clock("2027-02-01T12:00:00Z").await;

    let dead: Vec<Value> = daemon
        .outbox("dead")
        .await
        .into_iter()
        .filter(|n| n["rule"] == "fragile_notice")
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["attempts"], 1, "not tried again");
    let reason = dead[0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.starts_with("template `fragile`") && !reason.contains("placement_disruption"),
        "{reason}"
    );
    assert!(
        daemon.outbox("sending").await.is_empty(),
        "nothing is stuck"
    );
    // The IRO's own notice of the same event went, once.
    let notice = daemon
        .outbox("sent")
        .await
        .into_iter()
        .find(|n| n["rule"] == "significant_event_notice")
        .expect("the IRO's notice went");
    assert_eq!(
        deliveries(&mailbox).get(notice["idempotency_key"].as_str().unwrap_or_default()),
        Some(&1)
    );

    // The dashboard lists it with its reason.
    let page = reqwest::Client::new()
        .get(format!("{}/dashboard", daemon.base))
        .basic_auth("manager", Some(READ_TOKEN))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap_or_default();
    let key = dead[0]["idempotency_key"].as_str().unwrap_or_default();
    assert!(html.contains(key), "the dead delivery is listed");
    assert!(html.contains("template `fragile`") || html.contains("template &#x60;fragile&#x60;"));
    assert_logs_private(&setup);
}

/// A daemon posting significant-event notices to the [`Receiver`] as webhook `teams`.
async fn webhook_daemon(timeout_seconds: Option<u64>) -> (Arc<Receiver>, Setup, Daemon) {
    let receiver = Receiver::start().await;
    let mut setup = Setup::new();
    setup.webhook_url = Some(receiver.url.clone());
    setup.webhook_timeout_seconds = timeout_seconds;
    setup.extra_rules = Some(WEBHOOK_RULE.into());
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");
    (receiver, setup, daemon)
}

/// The webhook rows of the outbox in a state.
async fn webhooks(daemon: &Daemon, state: &str) -> Vec<Value> {
    daemon
        .outbox(state)
        .await
        .into_iter()
        .filter(|n| n["channel"] == "webhook")
        .collect()
}

#[tokio::test]
async fn a_webhook_receiver_slower_than_the_timeout_is_tried_again_under_the_same_id() {
    let (receiver, _setup, daemon) = webhook_daemon(Some(1)).await;
    // The receiver takes the request and answers only after 3 seconds; the daemon waits 1.
    receiver.slow(Some(Duration::from_secs(3)));
    let events = significant_event("C-31001", "se-31", "2027-02-01T11:00:00Z");
    assert_eq!(daemon.post_events(&events).await.0, 202);
    daemon.clock("2027-02-01T12:00:00Z").await;
    assert_eq!(receiver.hooks().len(), 1);
    let waiting = webhooks(&daemon, "pending").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        waiting[0]["last_error"],
        "the webhook did not answer in time"
    );
    assert_eq!(waiting[0]["attempts"], 1);

    // The receiver is quick again: the retry (within a minute) is delivered, under the same id
    // it may already have processed, so it can drop the repeat.
    receiver.slow(None);
    daemon.clock("2027-02-01T12:01:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].id, hooks[1].id, "the same webhook-id");
    assert!(hooks[1].signature_valid);
    assert_eq!(hooks[1].answered, 200);
    let sent = webhooks(&daemon, "sent").await;
    assert_eq!(keys(&sent), BTreeSet::from([hooks[0].id.clone()]));
    assert_eq!(sent[0]["attempts"], 2);
}

#[tokio::test]
async fn a_429_with_retry_after_holds_the_next_attempt_back_that_long() {
    let (receiver, _setup, daemon) = webhook_daemon(None).await;
    // Too many requests: come back in 15 minutes (the backoff alone would retry within one).
    receiver.script_retry_after(429, 900);
    let events = significant_event("C-32001", "se-32", "2027-02-01T11:00:00Z");
    assert_eq!(daemon.post_events(&events).await.0, 202);
    daemon.clock("2027-02-01T12:00:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].answered, 429);
    let waiting = webhooks(&daemon, "pending").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["last_error"], "the webhook answered HTTP 429");

    daemon.clock("2027-02-01T12:14:59Z").await;
    assert_eq!(receiver.hooks().len(), 1, "not before the receiver asked");
    daemon.clock("2027-02-01T12:15:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 2, "at the moment the receiver asked for");
    assert_eq!(hooks[1].id, hooks[0].id);
    assert_eq!(hooks[1].answered, 200);
    assert_eq!(keys(&webhooks(&daemon, "sent").await).len(), 1);
}

/// `GET` without a token (the health checks): the status and body.
async fn health(daemon: &Daemon, path: &str) -> (u16, Value) {
    daemon.request(reqwest::Method::GET, path, None, None).await
}

/// A database URL's password, and the URL with another password.
fn password(url: &str, instead: &str) -> (String, String) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = start + url[start..].find('@').expect("a URL with a user");
    let user_end = url[start..end].find(':').map_or(end, |i| start + i);
    let password = url[user_end..end].trim_start_matches(':').to_string();
    let other = format!("{}:{instead}{}", &url[..user_end], &url[end..]);
    (password, other)
}

/// Neither the database URL nor its password is in the daemon's log.
fn assert_no_password(daemon: &Daemon, password: &str) {
    let logs = daemon.logs();
    assert!(
        !logs.contains(&format!(":{password}@")) && !logs.contains("postgres://"),
        "the log shows the database URL:\n{logs}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_a_daemon_started_before_its_database_answers_503_then_works() {
    let url = fresh_postgres().await;
    let proxy = Proxy::start(&url);
    // The server is down: nothing listens on its port.
    proxy.refuse();
    let mut setup = Setup::new();
    setup.database_url = proxy.url(&url);
    let daemon = Daemon::start_listening(&setup, "2027-02-01T12:00:00Z");

    // The daemon runs and says it is waiting; it accepts nothing it could not store.
    let events = significant_event("C-41001", "se-41", "2027-02-01T11:00:00Z");
    let (status, body) = daemon.post_events(&events).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("waiting for its database")),
        "{body}"
    );
    assert_eq!(health(&daemon, "/readyz").await.0, 503);
    assert_eq!(health(&daemon, "/healthz").await.0, 200);
    let (status, _) = daemon
        .request(reqwest::Method::GET, "/v1/notifications", Some(TOKEN), None)
        .await;
    assert_eq!(status, 503);
    // Then something answers, and hangs up at once (a pooler in front of a server still down):
    // each attempt fails quickly, and the daemon keeps trying rather than exiting.
    proxy.hang_up();
    let waiting = eventually(Duration::from_secs(20), || {
        daemon.logs().matches("cannot reach the database").count() >= 2
    })
    .await;
    assert!(waiting, "two attempts logged:\n{}", daemon.logs());

    // The database comes back: without a restart, the daemon migrates and works.
    proxy.restore();
    let ready = eventually(Duration::from_secs(60), || daemon.is_ready()).await;
    assert!(ready, "ready once the database is back:\n{}", daemon.logs());
    let (status, body) = daemon.post_events(&events).await;
    assert_eq!(status, 202, "{body}");
    assert!(statuses(&body).values().all(|s| s == "stored"), "{body}");
    daemon.clock("2027-02-01T12:00:00Z").await;
    let sent = daemon.outbox("sent").await;
    assert!(sent.iter().any(|n| n["case"] == "C-41001"), "{sent:?}");
    assert_eq!(spooled(&setup.spool()).len(), sent.len());
    assert_no_password(&daemon, &password(&url, "").0);
    assert_logs_private(&setup);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_a_database_lost_mid_run_gets_503_not_202_and_nothing_is_lost() {
    let url = fresh_postgres().await;
    let proxy = Proxy::start(&url);
    let mut setup = Setup::new();
    setup.database_url = proxy.url(&url);
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");
    let before = significant_event("C-42001", "se-42a", "2027-02-01T11:00:00Z");
    assert_eq!(daemon.post_events(&before).await.0, 202);
    daemon.clock("2027-02-01T12:00:00Z").await;
    let sent_before = keys(&daemon.outbox("sent").await);
    assert!(!sent_before.is_empty());

    // The database goes away mid-run: its connections are cut, new ones hung up on.
    proxy.hang_up();
    let during = significant_event("C-42002", "se-42b", "2027-02-01T11:30:00Z");
    let (status, body) = daemon.post_events(&during).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"],
        "the store is unavailable; nothing was changed, try again"
    );
    assert!(daemon.logs().contains("the store failed during a request"));
    // Once its probe has found the database silent, the daemon says so at once, rather than
    // after waiting out a connection attempt (ten seconds).
    let noticed = eventually(Duration::from_secs(10), || {
        daemon.logs().contains("the database does not answer")
    })
    .await;
    assert!(noticed, "{}", daemon.logs());
    let asked = std::time::Instant::now();
    let (status, ready) = health(&daemon, "/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["database"], "unavailable");
    let (status, body) = daemon.post_events(&during).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"],
        "the store is unavailable; nothing was changed, try again"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "503 took {:?}",
        asked.elapsed()
    );
    assert_eq!(health(&daemon, "/healthz").await.0, 200);

    // Back: nothing of the refused batch was stored, nothing from before is lost, and what is
    // posted now is delivered.
    proxy.restore();
    let ready = eventually(Duration::from_secs(30), || daemon.is_ready()).await;
    assert!(ready, "ready once the database is back:\n{}", daemon.logs());
    let (status, body) = daemon.post_events(&during).await;
    assert_eq!(status, 202, "{body}");
    assert!(statuses(&body).values().all(|s| s == "stored"), "{body}");
    let (status, body) = daemon.post_events(&before).await;
    assert_eq!(status, 202, "{body}");
    assert!(statuses(&body).values().all(|s| s == "duplicate"), "{body}");
    daemon.clock("2027-02-01T12:05:00Z").await;
    let sent = daemon.outbox("sent").await;
    assert!(keys(&sent).is_superset(&sent_before));
    assert!(sent.iter().any(|n| n["case"] == "C-42002"), "{sent:?}");
    let left: Vec<Value> = daemon
        .outbox("pending")
        .await
        .into_iter()
        .filter(|n| n["send_at"].as_str().unwrap_or_default() <= "2027-02-01T12:05:00Z")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(spooled(&setup.spool()).len(), sent.len());
    assert_no_password(&daemon, &password(&url, "").0);
    assert_logs_private(&setup);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_a_wrong_password_stops_the_daemon_with_a_clear_message_and_no_password() {
    let mut setup = Setup::new();
    setup.database_url = password(&fresh_postgres().await, "not-the-password-4711").1;
    let mut daemon = Daemon::start_listening(&setup, "2027-02-01T12:00:00Z");
    // Only the operator can fix this: the daemon stops (for its supervisor to report), rather
    // than waiting for ever.
    let status = daemon
        .exited_within(Duration::from_secs(30))
        .expect("the daemon stops");
    assert!(!status.success());
    let logs = daemon.logs();
    assert!(logs.contains("password authentication failed"), "{logs}");
    assert!(!logs.contains("not-the-password-4711"), "{logs}");
    assert_no_password(&daemon, "not-the-password-4711");
    assert_logs_private(&setup);
}

/// A small tmpfs, unmounted however the test ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            mounted,
            "cannot mount a tmpfs at {} (needs root)",
            at.display()
        );
        Tmpfs(at)
    }

    /// Fills it with one file, to the last byte; the file's path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a daemon killed by a failing assertion may still hold its files open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
#[ignore = "needs root to mount a small tmpfs: run with --include-ignored"]
async fn a_full_disk_under_sqlite_gets_507_the_daemon_keeps_running_and_loses_nothing() {
    let mut setup = Setup::new();
    let disk = Tmpfs::mount(setup.dir.path().join("disk"), "4m");
    setup.database_url = format!("sqlite:{}", disk.0.join("driftwatch.db").display());
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");
    let before = significant_event("C-51000", "se-51", "2027-02-01T11:00:00Z");
    assert_eq!(daemon.post_events(&before).await.0, 202);
    daemon.clock("2027-02-01T12:00:00Z").await;
    let sent_before = keys(&daemon.outbox("sent").await);
    assert!(!sent_before.is_empty());

    // The disk fills up. Each batch is refused with a clear 507, or, when SQLite finds room in
    // what its log already holds, stored and answered 202: never answered 202 and lost. The
    // daemon keeps running and answering.
    let filler = disk.fill();
    let mut refused = Vec::new();
    let mut stored = Vec::new();
    for i in 1..=4 {
        let events = significant_event(
            &format!("C-5100{i}"),
            &format!("se-51-{i}"),
            "2027-02-01T11:30:00Z",
        );
        let (status, body) = daemon.post_events(&events).await;
        match status {
            507 => refused.push(events),
            202 => stored.push(events),
            _ => panic!("{status} {body}"),
        }
        if status == 507 {
            assert_eq!(
                body["error"],
                "the database's disk is full; nothing was changed, try again once space is freed"
            );
        }
    }
    assert!(!refused.is_empty(), "nothing was refused on a full disk");
    assert_eq!(health(&daemon, "/healthz").await.0, 200);
    for events in &refused {
        let case = events[0]["case"].as_str().unwrap_or_default();
        let outbox = daemon.get(&format!("/v1/notifications?case={case}")).await;
        assert_eq!(outbox["count"], 0, "{case} was refused: {outbox}");
    }
    assert!(daemon.logs().contains("database or disk is full"));

    // Space is freed: accepted again; a refused batch was not half-stored, and nothing
    // accepted is lost.
    std::fs::remove_file(filler).expect("free the disk");
    for (events, expected) in refused
        .iter()
        .map(|e| (e, "stored"))
        .chain(stored.iter().map(|e| (e, "duplicate")))
    {
        let (status, body) = daemon.post_events(events).await;
        assert_eq!(status, 202, "{body}");
        assert!(statuses(&body).values().all(|s| s == expected), "{body}");
    }
    let (status, body) = daemon.post_events(&before).await;
    assert_eq!(status, 202, "{body}");
    assert!(statuses(&body).values().all(|s| s == "duplicate"), "{body}");
    daemon.clock("2027-02-01T12:05:00Z").await;
    let sent = daemon.outbox("sent").await;
    assert!(keys(&sent).is_superset(&sent_before));
    for i in 1..=4 {
        let case = format!("C-5100{i}");
        assert!(
            sent.iter().any(|n| n["case"] == case.as_str()),
            "{case}: {sent:?}"
        );
    }
    assert_eq!(spooled(&setup.spool()).len(), sent.len());
    assert_logs_private(&setup);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn two_daemons_on_postgres_one_killed_mid_wave_deliver_everything_once_but_the_interrupted() {
    const CASES: usize = 60;
    const WAVE: &str = "2026-12-09T09:00:00Z";
    let mailbox = Mailbox::start();
    let url = fresh_postgres().await;
    let setup = |from: &str| {
        let mut s = Setup::new();
        s.database_url = url.clone();
        s.smtp_port = Some(mailbox.port);
        // Long enough for a message held at the server to wait for its answer.
        s.smtp_timeout_seconds = 30;
        // Which daemon sent a message, told by its From.
        s.email_from = format!("driftwatch <{from}@council.example>");
        s
    };
    let (a_setup, b_setup) = (setup("daemon-a"), setup("daemon-b"));
    let a = Daemon::start(&a_setup, "2026-12-01T09:00:00Z");
    let b = Daemon::start(&b_setup, "2026-12-01T09:00:00Z");
    let batches: Vec<Value> = (0..CASES)
        .map(|i| example_events_for(&format!("C-{}", 60_000 + i)))
        .collect();
    for (i, events) in batches.iter().enumerate() {
        let daemon = if i % 2 == 0 { &a } else { &b };
        assert_eq!(daemon.post_events(events).await.0, 202);
    }
    assert!(mailbox.mail().is_empty());

    // 09:00 on 9 December: four reminders per child fall due at once, and both daemons race
    // for them. Once some have gone, the SMTP server holds back its answers, so that each
    // daemon is caught mid-send, and A is killed.
    let a_base = a.base.clone();
    tokio::spawn(async move {
        // A never answers this: it is killed first.
        let _ = reqwest::Client::new()
            .post(format!("{a_base}/v1/admin/clock"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "now": WAVE }).to_string())
            .send()
            .await;
    });
    let from = |m: &Mail, daemon: &str| m.header("From").is_some_and(|f| f.contains(daemon));
    let killer = async {
        let begun = eventually(Duration::from_secs(60), || mailbox.mail().len() >= 30).await;
        mailbox.hold(true);
        let caught = eventually(Duration::from_secs(20), || {
            let held = mailbox.held();
            ["daemon-a", "daemon-b"]
                .iter()
                .all(|d| held.iter().any(|m| from(m, d)))
        })
        .await;
        let logs = a.logs() + &b.logs();
        let held = mailbox.held();
        a.kill();
        mailbox.hold(false);
        assert!(
            begun && caught,
            "both daemons mid-send ({} held):\n{logs}",
            held.len()
        );
        held.iter()
            .filter(|m| from(m, "daemon-a"))
            .map(key_of)
            .collect::<BTreeSet<_>>()
    };
    // B carries on alone: its clock answers once it has caught up, nothing left for it to do.
    let ((), held_from_a) = tokio::join!(b.clock(WAVE), killer);

    // What the daemons took on to send (not what a later step or a met obligation superseded
    // before it went).
    let sent = keys(&b.outbox("sent").await);
    let interrupted = keys(&b.outbox("sending").await);
    let due: BTreeSet<String> = sent.union(&interrupted).cloned().collect();
    assert!(
        due.len() >= 3 * CASES,
        "hundreds fall due at once: {}",
        due.len()
    );
    for state in ["pending", "dead"] {
        let left: Vec<Value> = b
            .outbox(state)
            .await
            .into_iter()
            .filter(|n| n["send_at"].as_str().unwrap_or_default() <= WAVE)
            .collect();
        assert!(left.is_empty(), "{state}: {left:?}");
    }
    // What A was sending when it was killed stays claimed by A until its lease runs out: among
    // it, what the server received (and held its answer to) but A never recorded.
    assert!(!held_from_a.is_empty());
    assert!(
        held_from_a.is_subset(&interrupted),
        "{held_from_a:?} / {interrupted:?}"
    );
    let delivered = deliveries(&mailbox);
    assert!(
        delivered.values().all(|n| *n == 1),
        "nothing went twice while both ran"
    );
    let reached: BTreeSet<String> = delivered.keys().cloned().collect();
    assert_eq!(
        &reached - &interrupted,
        sent,
        "every notification recorded as sent reached the server, and nothing else did"
    );

    // Once A's lease (300 s) has run out, B sends those again, under the same keys: the
    // repeats are exactly what the server received from A unrecorded. Nothing is left behind.
    b.clock("2026-12-09T09:05:00Z").await;
    let delivered = deliveries(&mailbox);
    let twice: BTreeSet<String> = delivered
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        twice,
        &reached & &interrupted,
        "only the interrupted went twice"
    );
    assert!(twice.is_superset(&held_from_a));
    assert!(delivered.values().all(|n| *n <= 2));
    assert_eq!(delivered.keys().cloned().collect::<BTreeSet<_>>(), due);
    assert_eq!(keys(&b.outbox("sent").await), due);
    assert!(b.outbox("sending").await.is_empty());
    let left: Vec<Value> = b
        .outbox("pending")
        .await
        .into_iter()
        .filter(|n| n["send_at"].as_str().unwrap_or_default() <= "2026-12-09T09:05:00Z")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_logs_private(&a_setup);
    assert_logs_private(&b_setup);
}

/// A case in care with an IRO, and a significant event at `at`: the IRO's urgent notice falls
/// due then (`iro.CASE@council.example`).
fn notice_to_iro(case: &str, id: &str, at: &str) -> Value {
    let mut events = significant_event(case, id, at);
    if let Value::Array(list) = &mut events {
        list.push(serde_json::json!({
            "id": format!("{id}-iro"), "case": case, "type": "iro_allocated", "at": "2027-01-05T10:00:00Z",
            "data": {"iro": {"name": "Ira", "email": format!("iro.{}@council.example", case.to_lowercase())}}
        }));
    }
    events
}

/// Raises this test process's open-files limit to its hard limit, which must leave room for
/// `needed` sockets: a flood is opened from here.
fn room_for_sockets(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|n| n >= needed),
        "this test opens {needed} sockets; raise the hard limit on open files (ulimit -Hn)"
    );
}

/// Whether the server has closed a connection (it reads end-of-file), without waiting.
fn closed_by_server(stream: &std::net::TcpStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    !matches!((&*stream).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// 1,200 connections opened and left silent, as a client that never sends its request (or a
/// slow-loris attack) leaves them, against a daemon limited to 1,024 open files: it used to run
/// out of file descriptors, and then the API, ingest and the scheduler ("unable to open database
/// file") all stopped. The daemon keeps its connections under its limit, closing the ones waiting
/// longest for a request to make room: the API answers, an event is stored, and the notice it
/// makes due reaches the SMTP server.
#[tokio::test]
async fn a_flood_of_silent_connections_stops_neither_the_api_nor_the_scheduler() {
    const FLOOD: usize = 1200;
    room_for_sockets(FLOOD as u64 + 512);
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    setup.open_files = Some(1024);
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");
    let address: std::net::SocketAddr = daemon
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the daemon's address");

    let flood: Vec<std::net::TcpStream> = tokio::task::spawn_blocking(move || {
        (0..FLOOD)
            .map(|_| {
                std::net::TcpStream::connect_timeout(&address, Duration::from_secs(10))
                    .expect("the daemon takes connections during the flood")
            })
            .collect()
    })
    .await
    .expect("the flood");

    let within = Duration::from_secs(20);
    let (status, body) = tokio::time::timeout(within, health(&daemon, "/readyz"))
        .await
        .expect("the API answers during the flood");
    assert_eq!(status, 200, "{body}");
    let (status, body) = tokio::time::timeout(
        within,
        daemon.post_events(&notice_to_iro("C-4001", "se-flood", "2027-02-01T12:30:00Z")),
    )
    .await
    .expect("ingest answers during the flood");
    assert_eq!(status, 202, "{body}");
    tokio::time::timeout(within, daemon.clock("2027-02-01T12:30:00Z"))
        .await
        .expect("the clock moves during the flood");
    assert!(
        mailbox.mail().iter().any(|m| {
            m.to == vec!["iro.c-4001@council.example".to_string()]
                && m.header("Subject")
                    .is_some_and(|s| s.starts_with("Significant event"))
        }),
        "the significant-event notice was delivered during the flood"
    );
    // Room was made by closing silent connections, never by running out of files.
    let closed = flood.iter().filter(|s| closed_by_server(s)).count();
    assert!(
        closed >= FLOOD - (1024 - 256),
        "only {closed} of {FLOOD} silent connections were closed"
    );
    let logs = daemon.logs();
    assert!(logs.contains("the connection limit is reached"), "{logs}");
    for symptom in ["Too many open files", "unable to open database file"] {
        assert!(!logs.contains(symptom), "{symptom}:\n{logs}");
    }
    drop(flood);
    assert!(daemon.terminate().success());
}

/// SIGTERM while a clock move waits for the scheduler, with deliveries in flight (the SMTP
/// server holding back its `250`): the clock request answers `503` at once, the deliveries in
/// flight finish and are recorded, and the daemon exits 0 well inside systemd's 30 seconds. It
/// used to ignore SIGTERM for over 40 seconds, the clock request waiting out its two minutes.
#[tokio::test]
async fn sigterm_during_a_clock_move_stops_the_daemon_promptly() {
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    let mut daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");
    // Significant events dated 13:00: their urgent notices fall due when the clock gets there.
    for i in 0..12 {
        let (status, body) = daemon
            .post_events(&notice_to_iro(
                &format!("C-50{i:02}"),
                &format!("se-term-{i}"),
                "2027-02-01T13:00:00Z",
            ))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // What the cases' earlier events made due has gone; only the clock move sends more.
    daemon.clock("2027-02-01T12:00:00Z").await;
    mailbox.hold(true);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/admin/clock", daemon.base);
    let moving = tokio::spawn(async move {
        let res = http
            .post(url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(r#"{"now": "2027-02-01T13:00:00Z"}"#)
            .send()
            .await;
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    });
    assert!(
        eventually(Duration::from_secs(20), || !mailbox.held().is_empty()).await,
        "a delivery is in flight"
    );
    let in_flight: BTreeSet<String> = mailbox.held().iter().map(key_of).collect();

    let asked = std::time::Instant::now();
    daemon.signal("TERM");
    let (status, text) = tokio::time::timeout(Duration::from_secs(5), moving)
        .await
        .expect("the clock request answers at once")
        .expect("the clock request");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("stopping"), "{text}");
    mailbox.hold(false);
    let exit = daemon
        .exited_within(Duration::from_secs(20))
        .expect("the daemon stopped");
    assert!(exit.success(), "{exit:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "stopping took {:?}",
        asked.elapsed()
    );
    drop(daemon);

    // What was in flight finished and was recorded: started again, it is not sent twice, and
    // the rest goes.
    let daemon = Daemon::start(&setup, "2027-02-01T13:00:00Z");
    daemon.clock("2027-02-01T13:00:00Z").await;
    let sent = keys(&daemon.outbox("sent").await);
    assert!(in_flight.is_subset(&sent), "{in_flight:?} not in {sent:?}");
    let counts = deliveries(&mailbox);
    assert!(
        in_flight.iter().all(|k| counts.get(k) == Some(&1)),
        "in flight, then sent again: {counts:?}"
    );
    let notices = daemon
        .outbox("sent")
        .await
        .iter()
        .filter(|n| n["rule"] == "significant_event_notice")
        .count();
    assert_eq!(notices, 12, "every notice went");
    assert!(daemon.outbox("sending").await.is_empty());
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_real_clocks_a_standby_daemon_takes_over_the_work_of_one_killed() {
    const CASES: usize = 40;
    let mailbox = Mailbox::start();
    let url = fresh_postgres().await;
    let setup = |from: &str| {
        let mut s = Setup::new();
        s.database_url = url.clone();
        s.smtp_port = Some(mailbox.port);
        s.smtp_timeout_seconds = 5;
        s.webhook_timeout_seconds = Some(5);
        s.email_from = format!("driftwatch <{from}@council.example>");
        // A short lease, so what the killed daemon was sending is taken on within the test.
        s.delivery = "{max_attempts: 4, first_retry_seconds: 60, max_retry_seconds: 600, \
                      concurrency: 4, lease_seconds: 10}"
            .into();
        s
    };
    let (a_setup, b_setup) = (setup("daemon-a"), setup("daemon-b"));
    let a = Daemon::start_on_real_clock(&a_setup);
    let b = Daemon::start_on_real_clock(&b_setup);

    // Significant events that have just happened: their notices are urgent, so they go at
    // once whatever the hour the test runs at. Everything is posted to A; B is told nothing.
    let now = chrono::Utc::now();
    let at = |ago: i64| (now - chrono::Duration::minutes(ago)).to_rfc3339();
    for i in 0..CASES {
        let case = format!("C-{}", 70_000 + i);
        let events = serde_json::json!([
            {"id": format!("{case}-start"), "case": case, "type": "child_looked_after",
             "at": at(3 * 24 * 60),
             "data": {"start": at(3 * 24 * 60), "legal_basis": "s20", "date_of_birth": "2015-06-01"}},
            {"id": format!("{case}-se"), "case": case, "type": "significant_event", "at": at(10),
             "data": {"kind": "placement_disruption", "occurred_at": at(10)}}
        ]);
        assert_eq!(a.post_events(&events).await.0, 202);
    }
    let notices = |rows: Vec<Value>| -> BTreeSet<String> {
        keys(
            &rows
                .into_iter()
                .filter(|n| n["rule"] == "significant_event_notice")
                .collect::<Vec<_>>(),
        )
    };

    // A sends; once a few have gone the server holds its answers, A is caught mid-send and
    // killed.
    let from = |m: &Mail, daemon: &str| m.header("From").is_some_and(|f| f.contains(daemon));
    let begun = eventually(Duration::from_secs(30), || mailbox.mail().len() >= 5).await;
    mailbox.hold(true);
    let caught = eventually(Duration::from_secs(20), || {
        mailbox.held().iter().any(|m| from(m, "daemon-a"))
    })
    .await;
    a.kill();
    // What was being sent when A died: A's claims (among them what the server took from A
    // unrecorded), and whatever B had in hand.
    let interrupted = keys(&b.outbox("sending").await);
    mailbox.hold(false);
    assert!(begun && caught, "A was caught mid-send:\n{}", b.logs());

    // B, never posted to and never woken, finds the work within seconds and sends all of it;
    // what A was sending goes once A's lease has run out.
    let all = notices(b.outbox("pending").await)
        .union(&notices(b.outbox("sending").await))
        .cloned()
        .collect::<BTreeSet<_>>()
        .union(&notices(b.outbox("sent").await))
        .cloned()
        .collect::<BTreeSet<_>>();
    assert!(all.len() >= CASES, "{} notices", all.len());
    let mut sent = BTreeSet::new();
    for _ in 0..60 {
        sent = notices(b.outbox("sent").await);
        if sent == all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(sent, all, "B took over:\n{}", b.logs());
    assert!(
        b.logs().contains("notification sent"),
        "B itself sent:\n{}",
        b.logs()
    );
    assert!(notices(b.outbox("dead").await).is_empty(), "{}", b.logs());
    // Nothing reached the server twice but what A was sending when it died, taken over by B.
    for (key, n) in deliveries(&mailbox) {
        let senders: BTreeSet<bool> = mailbox
            .mail()
            .iter()
            .filter(|m| key_of(m) == key)
            .map(|m| from(m, "daemon-a"))
            .collect();
        assert!(
            n == 1 || (n == 2 && senders.len() == 2 && interrupted.contains(&key)),
            "{key} reached the server {n} times"
        );
    }
    assert_logs_private(&b_setup);
}
