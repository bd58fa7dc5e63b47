//! End-to-end tests of `driftwatch run`: the real binary on a free port with a temporary
//! database and a manual clock, driven through its HTTP API, read back from a real SMTP server,
//! a real webhook receiver and the `.eml` spool. No test sleeps waiting for a timer: moving the
//! clock answers once the scheduler has handled everything due.

use crate::support::*;
use serde_json::{Value, json};

/// Notifications in the spool addressed to `to` whose body names `rule`.
fn spooled_for(setup: &Setup, to: &str, rule: &str) -> usize {
    spooled(&setup.spool())
        .iter()
        .filter(|(_, m)| m.contains(&format!("<{to}>")) && m.contains(&format!("\"{rule}\"")))
        .count()
}

#[tokio::test]
async fn readme_example_events_become_eml_files_at_their_working_day_moments() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let (status, body) = daemon.post_events(&example_events()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"].as_array().map(Vec::len), Some(15));

    // Invitations: a reminder to the review administrators two working days before they are
    // due (Friday 11 December, 09:00), then the invitations themselves on Tuesday the 15th.
    daemon.clock("2026-12-11T08:59:00Z").await;
    assert_eq!(
        spooled_for(&setup, "reviews@council.example", "review_invitations"),
        0
    );
    daemon.clock("2026-12-11T09:00:00Z").await;
    assert_eq!(
        spooled_for(&setup, "reviews@council.example", "review_invitations"),
        1
    );
    daemon.clock("2026-12-15T08:59:59Z").await;
    assert_eq!(
        spooled_for(&setup, "parent.one@example.org", "review_invitations"),
        0
    );
    daemon.clock("2026-12-15T09:00:00Z").await;
    assert_eq!(
        spooled_for(&setup, "parent.one@example.org", "review_invitations"),
        1,
        "{:?}",
        spooled(&setup.spool())
            .iter()
            .map(|(_, m)| m.lines().take(4).collect::<Vec<_>>().join(" | "))
            .collect::<Vec<_>>()
    );

    // A significant event on a Wednesday evening reaches the IRO at once (urgent), not the
    // next morning.
    daemon.clock("2027-02-10T19:29:00Z").await;
    assert_eq!(
        spooled_for(
            &setup,
            "ira.reviewer@council.example",
            "significant_event_notice"
        ),
        0
    );
    daemon.clock("2027-02-10T19:30:00Z").await;
    assert_eq!(
        spooled_for(
            &setup,
            "ira.reviewer@council.example",
            "significant_event_notice"
        ),
        1
    );

    // Every message went once, under its key, and the outbox agrees with the spool.
    let sent = daemon.outbox("sent").await;
    let files = spooled(&setup.spool());
    assert_eq!(files.len(), sent.len());
    for n in &sent {
        let key = n["idempotency_key"].as_str().unwrap_or_default();
        let (_, mail) = files
            .iter()
            .find(|(name, _)| name == &format!("{key}.eml"))
            .unwrap_or_else(|| panic!("{key} was recorded as sent but not spooled"));
        assert!(mail.contains(&format!("Message-ID: <{key}@council.example>")));
        assert!(
            mail.contains("C-1001"),
            "messages name the case by reference"
        );
    }
    // Nothing pending is already due.
    for n in daemon.outbox("pending").await {
        assert!(
            n["send_at"].as_str().unwrap_or_default() > "2027-02-10T19:30:00Z",
            "{n}"
        );
    }

    let logs = daemon.logs();
    assert!(logs.contains("notification sent"));
    for private in [
        "@",
        "Sam Social",
        "Ira Reviewer",
        "Parent One",
        "sibling contact",
    ] {
        assert!(
            !logs.contains(private),
            "the logs contain `{private}`:\n{logs}"
        );
    }
    assert!(daemon.terminate().success(), "SIGTERM exits 0");
}

/// The example config's delivery settings, as the README's walk-through runs.
fn readme_setup() -> Setup {
    let mut setup = Setup::new();
    setup.delivery = "{concurrency: 8}".into();
    setup
}

/// The README's walk-through: the example case posted on 1 December, its care plan updated on
/// Friday 11 December at 16:00 (an event posted ahead of its time).
async fn walk_through(setup: &Setup) -> Daemon {
    let daemon = Daemon::start(setup, "2026-12-01T09:00:00Z");
    let (status, body) = daemon.post_events(&example_events()).await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2026-12-11T09:00:00Z").await;
    daemon
}

/// The care plan was in place on 11 December at 16:00, so the escalation of Monday the 14th
/// ("No care plan", to the team manager and the IRO) is not due: the plan says so, and nothing
/// of it was sent or waits to go. The stored obligations agree with the plan.
async fn assert_no_care_plan_escalation(daemon: &Daemon, setup: &Setup) {
    let plan = daemon.plan("C-1001").await;
    let care_plan = plan["obligations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["rule"] == "care_plan_in_place")
        .cloned()
        .unwrap_or_default();
    assert_eq!(care_plan["state"], "met", "{care_plan}");
    assert_eq!(care_plan["closed_at"], "2026-12-11T16:00:00Z");
    let escalation = |n: &Value| {
        n["rule"] == "care_plan_in_place"
            && (n["kind"] == "escalation" || n["notification"]["kind"] == "escalation")
    };
    assert!(
        !plan["notifications"]
            .as_array()
            .into_iter()
            .flatten()
            .any(escalation),
        "the plan has no escalation"
    );
    for n in daemon.outbox_all().await.iter().filter(|n| escalation(n)) {
        assert!(
            ["cancelled", "superseded"].contains(&n["state"].as_str().unwrap_or_default()),
            "an escalation for a care plan already in place: {n}"
        );
    }
    assert!(
        !spooled(&setup.spool())
            .iter()
            .any(|(_, m)| m.contains("No care plan")),
        "no `No care plan` message went"
    );
    assert_obligations_agree(daemon, "C-1001").await;
}

/// The obligations the API lists from the store say what the case's plan says.
async fn assert_obligations_agree(daemon: &Daemon, case: &str) {
    let plan = daemon.plan(case).await;
    let planned: std::collections::BTreeMap<String, String> = plan["obligations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or_default().to_string(),
                o["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(daemon.stored_obligations(case).await, planned);
}

#[tokio::test]
async fn a_care_plan_in_place_before_a_clock_jump_gets_no_escalation() {
    let setup = readme_setup();
    let daemon = walk_through(&setup).await;
    // Straight on to Tuesday 15 December, 09:00.
    daemon.clock("2026-12-15T09:00:00Z").await;
    assert_no_care_plan_escalation(&daemon, &setup).await;
    // What is due did go: the invitations, at their moment.
    let invitations = daemon
        .outbox("sent")
        .await
        .into_iter()
        .filter(|n| n["rule"] == "review_invitations" && n["notification"]["kind"] == "action")
        .count();
    assert_eq!(invitations, 2, "to the parent and the carer");
}

#[tokio::test]
async fn a_second_daemon_on_the_same_sqlite_file_refuses_to_start_and_the_first_carries_on() {
    let setup = Setup::new();
    let first = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let posted = example_events_for("C-4242");
    let (status, body) = first.post_events(&posted).await;
    assert_eq!(status, 202, "{body}");
    let outbox = first.outbox_all().await;

    // A second daemon on the same file would send what the first is sending: it stops at once,
    // saying who holds the file, before it listens or touches the database.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(setup.write())
        .args(["run", "--manual-clock", "2026-12-01T09:00:00Z"])
        .env_remove("DRIFTWATCH_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("start a second daemon");
    assert!(!second.status.success());
    assert!(second.stdout.is_empty(), "it never listened");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains(&format!(
            "another driftwatch daemon (process {}) is running on ",
            first.pid()
        )) && said.contains("one daemon per SQLite file (more than one needs PostgreSQL)"),
        "{said}"
    );
    assert!(first.is_ready(), "the first carries on");
    assert_eq!(first.outbox_all().await, outbox, "nothing was touched");

    // Once the first has stopped, however it stopped, the file is free.
    first.kill();
    let next = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    assert!(next.is_ready());
}

#[tokio::test]
async fn a_restart_after_the_care_plan_was_met_sends_no_escalation() {
    let setup = readme_setup();
    let daemon = walk_through(&setup).await;
    assert!(daemon.terminate().success());
    // Back on Monday 14 December at 10:00, an hour after the escalation's time.
    let daemon = Daemon::start(&setup, "2026-12-14T10:00:00Z");
    daemon.clock("2026-12-14T10:00:00Z").await;
    assert_no_care_plan_escalation(&daemon, &setup).await;
}

#[tokio::test]
async fn after_the_invitations_go_the_stored_obligations_agree_with_the_plan() {
    // A child in care under a care order since Monday 4 January 2027, a review booked for
    // Monday 1 February: nothing about the case changes with time but the invitations, which go
    // at 09:00 on Monday 18 January and so meet their obligation.
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2027-01-05T12:00:00Z");
    let contact = |name: &str| json!({"name": name, "email": format!("{}@council.example", name.to_lowercase().replace(' ', "."))});
    let events = json!([
        {"id": "c7-1", "case": "C-7001", "type": "child_looked_after", "at": "2027-01-04T10:00:00Z",
         "data": {"start": "2027-01-04T10:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}},
        {"id": "c7-2", "case": "C-7001", "type": "social_worker_allocated", "at": "2027-01-04T11:00:00Z",
         "data": {"social_worker": contact("Sam Social"), "team_manager": contact("Tara Manager")}},
        {"id": "c7-3", "case": "C-7001", "type": "iro_service_notified", "at": "2027-01-04T12:00:00Z", "data": {}},
        {"id": "c7-4", "case": "C-7001", "type": "iro_allocated", "at": "2027-01-05T09:00:00Z",
         "data": {"iro": contact("Ira Reviewer")}},
        {"id": "c7-5", "case": "C-7001", "type": "care_plan_updated", "at": "2027-01-05T10:00:00Z", "data": {}},
        {"id": "c7-6", "case": "C-7001", "type": "review_scheduled", "at": "2027-01-05T11:00:00Z",
         "data": {"review_id": "R1", "meeting_at": "2027-02-01T14:00:00Z",
                  "participants": [{"name": "Parent One", "email": "parent.one@example.org", "role": "parent"}]}}
    ]);
    let (status, body) = daemon.post_events(&events).await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2027-01-18T09:00:00Z").await;
    assert!(
        daemon.outbox("sent").await.iter().any(|n| {
            n["rule"] == "review_invitations" && n["notification"]["kind"] == "action"
        }),
        "the invitation went"
    );
    assert_obligations_agree(&daemon, "C-7001").await;
    // Days later the invitations are not overdue: they went.
    daemon.clock("2027-01-21T12:00:00Z").await;
    let overdue = daemon
        .get("/v1/obligations?state=overdue&case=C-7001")
        .await;
    assert!(
        !overdue["obligations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["rule"] == "review_invitations"),
        "the invitations went: {overdue}"
    );
    assert_obligations_agree(&daemon, "C-7001").await;
}

#[tokio::test]
async fn identical_runs_with_a_550_and_a_451_give_identical_outboxes() {
    async fn run() -> std::collections::BTreeMap<String, Value> {
        let mailbox = Mailbox::start();
        let mut setup = readme_setup();
        setup.smtp_port = Some(mailbox.port);
        // The parent's address is refused for good; the team manager's first message is refused
        // once, whichever message that is and whenever it arrives.
        mailbox.refuse_address("parent.one@example.org", 550, u32::MAX);
        mailbox.refuse_address("tara.manager@council.example", 451, 1);
        let daemon = walk_through(&setup).await;
        daemon.clock("2026-12-15T09:00:00Z").await;
        daemon.clock("2026-12-15T09:30:00Z").await;
        assert_no_care_plan_escalation(&daemon, &setup).await;
        daemon
            .outbox_all()
            .await
            .into_iter()
            .map(|n| {
                let key = n["idempotency_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let seen = json!([n["state"], n["attempts"], n["last_error"], n["sent_at"]]);
                (key, seen)
            })
            .collect()
    }
    let first = run().await;
    assert_eq!(first, run().await, "the same walk-through, the same outbox");
    let dead: Vec<&Value> = first.values().filter(|v| v[0] == "dead").collect();
    assert_eq!(dead.len(), 1, "the parent's invitation: {first:?}");
    assert_eq!(dead[0][2], "the SMTP server answered 550");
    // The team manager's refused reminder was not sent on a retry: by then the care plan was in
    // place, and the plan recorded it instead.
    let refused: Vec<&Value> = first
        .values()
        .filter(|v| v[2] == "the SMTP server answered 451")
        .collect();
    assert_eq!(refused.len(), 1, "{first:?}");
    assert_eq!(refused[0][0], "superseded");
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_server_and_a_refusal_is_retried() {
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    let daemon = Daemon::start(&setup, "2027-02-10T19:00:00Z");
    let events = example_events();
    // The first message the server sees is refused with 451 (a passing failure).
    mailbox.refuse_next(1);
    let (status, _) = daemon.post_events(&events).await;
    assert_eq!(status, 202);
    daemon.clock("2027-02-10T19:30:00Z").await;

    let notice_key = |d: &Value| -> Option<String> {
        d["notifications"].as_array()?.iter().find_map(|n| {
            (n["rule"] == "significant_event_notice")
                .then(|| n["idempotency_key"].as_str().map(str::to_string))
                .flatten()
        })
    };
    let all = daemon.get("/v1/notifications?case=C-1001").await;
    let key = notice_key(&all).expect("the significant event notice is in the outbox");
    let row = all["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["idempotency_key"] == key.as_str())
        .cloned()
        .unwrap_or_default();

    // Whether the refused message was the notice or a catch-up reminder, exactly one message
    // waits for a retry with the server's answer recorded, and none is lost.
    let pending_retry: Vec<Value> = daemon
        .outbox("pending")
        .await
        .into_iter()
        .filter(|n| n["attempts"] == 1)
        .collect();
    assert_eq!(pending_retry.len(), 1, "{pending_retry:?} / notice {row}");
    assert_eq!(
        pending_retry[0]["last_error"],
        "the SMTP server answered 451"
    );
    let before = mailbox.mail().len();

    // The retry comes within the configured backoff (at most 10 minutes for a second attempt).
    daemon.clock("2027-02-10T19:40:00Z").await;
    let mail = mailbox.mail();
    assert_eq!(mail.len(), before + 1);
    let retried = pending_retry[0]["idempotency_key"]
        .as_str()
        .unwrap_or_default();
    assert!(
        mail.iter()
            .any(|m| m.message_id() == format!("<{retried}@council.example>"))
    );
    let notice = mail
        .iter()
        .find(|m| m.message_id() == format!("<{key}@council.example>"))
        .expect("the notice reached the SMTP server");
    assert_eq!(notice.to, vec!["ira.reviewer@council.example".to_string()]);
    assert!(
        notice
            .header("Subject")
            .unwrap_or_default()
            .contains("C-1001")
    );
    // Every message once.
    let mut ids: Vec<String> = mail.iter().map(Mail::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), mail.len(), "no message was sent twice");
    assert_eq!(daemon.outbox("sent").await.len(), mail.len());
}

/// A Standard Webhooks receiver refuses a timestamp more than five minutes from its own clock.
/// Under a manual clock set months ahead, the signed `webhook-timestamp` is still the real time
/// of sending, so the receiver takes it; the clock's time is in the body as `sent_at`.
#[tokio::test]
async fn a_webhook_under_a_manual_clock_is_signed_with_the_real_time() {
    let receiver = Receiver::start().await;
    let mut setup = Setup::new();
    setup.webhook_url = Some(receiver.url.clone());
    setup.extra_rules = Some(WEBHOOK_RULE.into());
    let daemon = Daemon::start(&setup, "2031-02-03T12:00:00Z");
    let (status, body) = daemon
        .post_events(&significant_event("C-2002", "se-7", "2031-02-03T11:00:00Z"))
        .await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2031-02-03T12:00:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(hooks[0].signature_valid, "{hooks:?}");
    assert!(
        hooks[0].timestamp_fresh,
        "webhook-timestamp {} is not the real time",
        hooks[0].timestamp
    );
    assert_eq!(hooks[0].answered, 200);
    assert_eq!(hooks[0].body["sent_at"], "2031-02-03T12:00:00Z");
    let sent = daemon.outbox("sent").await;
    assert!(
        sent.iter()
            .any(|n| n["idempotency_key"] == hooks[0].id.as_str()),
        "{sent:?}"
    );
    assert!(daemon.outbox("dead").await.is_empty());
}

#[tokio::test]
async fn webhooks_are_signed_retried_after_a_500_and_dead_after_a_404() {
    let receiver = Receiver::start().await;
    let mut setup = Setup::new();
    setup.webhook_url = Some(receiver.url.clone());
    setup.extra_rules = Some(WEBHOOK_RULE.into());
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");

    receiver.script(&[500]);
    let (status, body) = daemon
        .post_events(&significant_event("C-2001", "se-1", "2027-02-01T11:00:00Z"))
        .await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2027-02-01T12:00:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].answered, 500);
    assert!(hooks[0].signature_valid, "Standard Webhooks signature");
    let pending = daemon.outbox("pending").await;
    let retry = pending
        .iter()
        .find(|n| n["channel"] == "webhook")
        .expect("the webhook waits for a retry");
    assert_eq!(retry["last_error"], "the webhook answered HTTP 500");

    daemon.clock("2027-02-01T12:10:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 2, "retried once the backoff passed");
    assert_eq!(hooks[1].answered, 200);
    assert_eq!(
        hooks[0].id, hooks[1].id,
        "the retry carries the same webhook-id"
    );
    assert!(hooks[1].signature_valid);
    assert_eq!(hooks[1].body["case"]["reference"], "C-2001");
    assert_eq!(hooks[1].body["rule"]["id"], "significant_event_webhook");
    assert!(
        daemon
            .outbox("sent")
            .await
            .iter()
            .any(|n| n["idempotency_key"] == hooks[0].id.as_str())
    );

    // A 404 is not retried: the notification is dead, visible through the API and the logs,
    // until an admin retries it.
    receiver.script(&[404]);
    let (status, _) = daemon
        .post_events(&significant_event("C-2002", "se-2", "2027-02-01T12:05:00Z"))
        .await;
    assert_eq!(status, 202);
    daemon.clock("2027-02-01T12:10:00Z").await;
    let dead = daemon.outbox("dead").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["last_error"], "the webhook answered HTTP 404");
    assert!(daemon.logs().contains("notification is dead"));
    daemon.clock("2027-02-02T12:00:00Z").await;
    assert_eq!(
        receiver.hooks().len(),
        3,
        "a dead notification is not retried by itself"
    );

    let key = dead[0]["idempotency_key"].as_str().unwrap_or_default();
    let (status, _) = daemon
        .request(
            reqwest::Method::POST,
            &format!("/v1/notifications/{key}/retry"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    daemon.clock("2027-02-02T12:00:00Z").await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 4);
    assert_eq!(hooks[3].id, key);
    assert!(daemon.outbox("dead").await.is_empty());

    // The same story in the metrics.
    let m = daemon.metrics().await;
    let webhook = |outcome| {
        sample(
            &m,
            "driftwatch_notifications_total",
            &[("channel", "webhook"), ("outcome", outcome)],
        )
    };
    assert_eq!(webhook("retry"), Some(1.0));
    assert_eq!(webhook("dead"), Some(1.0));
    assert_eq!(webhook("sent"), Some(2.0));
    assert_eq!(
        sample(&m, "driftwatch_outbox", &[("state", "sent")]),
        Some(daemon.outbox("sent").await.len() as f64)
    );
    assert!(
        sample(
            &m,
            "driftwatch_obligations",
            &[("rule", "early_review_considered"), ("state", "open")]
        )
        .is_some_and(|n| n >= 2.0),
        "both children wait for an early-review decision"
    );
    assert_eq!(
        sample(
            &m,
            "driftwatch_obligations",
            &[("rule", "early_review_considered"), ("state", "overdue")]
        ),
        Some(0.0),
        "every rule is listed, at zero when nothing is overdue"
    );
    assert!(
        m.samples
            .iter()
            .any(|s| s.metric.starts_with("driftwatch_scheduler_lag_seconds"))
    );
    assert!(
        m.samples
            .iter()
            .any(|s| s.metric.starts_with("driftwatch_delivery_seconds"))
    );
}

#[tokio::test]
async fn catch_up_after_a_restart_sends_what_fell_due_in_due_order() {
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    setup.delivery = "{concurrency: 1}".into();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    assert_eq!(daemon.post_events(&example_events()).await.0, 202);
    daemon.clock("2026-12-04T12:00:00Z").await;
    let before = mailbox.mail().len();
    assert!(daemon.terminate().success());

    // Down from Friday 4 to Friday 18 December; back up, it sends what fell due meanwhile.
    let daemon = Daemon::start(&setup, "2026-12-18T12:00:00Z");
    daemon.clock("2026-12-18T12:00:00Z").await;
    let mail = mailbox.mail();
    assert!(mail.len() > before, "something fell due while it was down");
    let sent = daemon.outbox("sent").await;
    assert_eq!(
        sent.len(),
        mail.len(),
        "every sent row reached the server once"
    );
    // In due order: the catch-up messages arrived in the order of their send times.
    let send_at = |m: &Mail| {
        let id = m.message_id();
        sent.iter()
            .find(|n| {
                format!(
                    "<{}@council.example>",
                    n["idempotency_key"].as_str().unwrap_or("")
                ) == id
            })
            .and_then(|n| n["send_at"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let order: Vec<String> = mail[before..].iter().map(send_at).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert!(order.iter().all(|t| t.as_str() > "2026-12-04T12:00:00Z"));
}

#[tokio::test]
async fn a_kill_during_delivery_loses_nothing_and_sends_again_under_the_same_key() {
    kill_during_delivery(Setup::new(), None, "2027-02-01T12:01:00Z").await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_a_killed_daemons_claim_is_taken_again_when_its_lease_runs_out() {
    let mut setup = Setup::new();
    setup.database_url = fresh_postgres().await;
    // Another daemon may still hold claims on PostgreSQL, so nothing is released at start-up:
    // the claim is taken again once its five-minute lease has run out.
    kill_during_delivery(setup, Some("2027-02-01T12:04:00Z"), "2027-02-01T12:06:00Z").await;
}

/// Kills the daemon while a webhook is being delivered, restarts it at `restart_at`, and checks
/// the webhook went again under the same id and is recorded as sent. At `too_early`, if given,
/// nothing has been sent again yet.
async fn kill_during_delivery(mut setup: Setup, too_early: Option<&str>, restart_at: &str) {
    let receiver = Receiver::start().await;
    setup.webhook_url = Some(receiver.url.clone());
    setup.extra_rules = Some(WEBHOOK_RULE.into());
    let daemon = Daemon::start(&setup, "2027-02-01T12:00:00Z");

    // The receiver takes the request and never answers: the daemon is mid-send.
    receiver.hang(true);
    let arrived = receiver.arrived.notified();
    assert_eq!(
        daemon
            .post_events(&significant_event("C-3001", "se-3", "2027-02-01T11:00:00Z"))
            .await
            .0,
        202
    );
    arrived.await;
    daemon.kill();
    assert_eq!(receiver.hooks().len(), 1);

    receiver.hang(false);
    let daemon = Daemon::start(&setup, too_early.unwrap_or(restart_at));
    if let Some(t) = too_early {
        daemon.clock(t).await;
        assert_eq!(receiver.hooks().len(), 1, "the claim still holds at {t}");
    }
    daemon.clock(restart_at).await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 2, "sent again after the restart");
    assert_eq!(hooks[0].id, hooks[1].id, "under the same webhook-id");
    assert_eq!(hooks[1].answered, 200);
    let sent = daemon.outbox("sent").await;
    assert!(
        sent.iter()
            .any(|n| n["idempotency_key"] == hooks[0].id.as_str())
    );
}

#[tokio::test]
async fn the_api_rejects_bad_input_clearly_and_stores_nothing_of_a_rejected_batch() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let post = |token: Option<&'static str>, content_type: &'static str, body: Vec<u8>| {
        daemon.request(
            reqwest::Method::POST,
            "/v1/events",
            token,
            Some((content_type, body)),
        )
    };
    let good = significant_event("C-4001", "se-4", "2027-01-04T08:00:00Z");

    let (status, _) = post(None, "application/json", good.to_string().into_bytes()).await;
    assert_eq!(status, 401);
    let (status, _) = post(
        Some("wrong"),
        "application/json",
        good.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post(
        Some(READ_TOKEN),
        "application/json",
        good.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ingest")
    );

    let (status, body) = post(Some(TOKEN), "application/json", b"{\"id\": ".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not JSON")
    );

    let big = vec![b' '; 70_000];
    let (status, _) = post(Some(TOKEN), "application/json", big).await;
    assert_eq!(status, 413);

    // A batch with one bad event: 422 naming the event and field, and nothing stored.
    let mut batch = good.clone();
    if let Some(a) = batch.as_array_mut() {
        a.push(json!({"id": "bad-1", "case": "C-4001", "type": "review_held",
                      "at": "2027-01-04T08:00:00Z", "data": {"review_id": "R1", "held_at": "yesterday"}}));
    }
    let (status, body) = post(
        Some(TOKEN),
        "application/json",
        batch.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["event"], "bad-1");
    assert_eq!(body["field"], "data.held_at");
    assert!(
        !body.to_string().contains("yesterday"),
        "values are not echoed"
    );
    let (status, _) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/cases/C-4001/plan",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404, "nothing of the rejected batch was stored");

    let (status, body) = post(
        Some(TOKEN),
        "application/json",
        json!({"id": "x", "case": "C", "type": "no_such_event", "at": "2027-01-04T08:00:00Z"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "type");
    let (status, body) = post(
        Some(TOKEN),
        "application/json",
        json!({"id": "y", "case": "C\u{0}1", "type": "review_held", "at": "2027-01-04T08:00:00Z"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        status, 422,
        "a NUL in a case reference is the sender's mistake"
    );
    assert_eq!(body["field"], "case");

    // Stored once; posted again it is accepted and changes nothing.
    let (status, body) = post(
        Some(TOKEN),
        "application/json",
        good.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"][1]["status"], "stored");
    daemon.clock("2027-01-04T09:00:00Z").await;
    let outbox = daemon.get("/v1/notifications?case=C-4001").await;
    let (status, body) = post(
        Some(TOKEN),
        "application/json",
        good.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"][0]["status"], "duplicate");
    assert_eq!(body["accepted"][1]["status"], "duplicate");
    daemon.clock("2027-01-04T09:00:00Z").await;
    assert_eq!(daemon.get("/v1/notifications?case=C-4001").await, outbox);

    // Reading: plan and obligations, with the read scope.
    let (status, plan) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/cases/C-4001/plan",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(plan["case"], "C-4001");
    assert!(
        plan["obligations"]
            .as_array()
            .is_some_and(|o| !o.is_empty())
    );
    let (status, _) = daemon
        .request(
            reqwest::Method::POST,
            "/v1/admin/reload",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = daemon
        .request(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(status, 200);
    let ready = daemon.get("/readyz").await;
    assert_eq!(ready["database"], "ok");

    let m = daemon.metrics().await;
    let rejected = |reason| {
        sample(
            &m,
            "driftwatch_events_rejected_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(rejected("bad_json"), Some(1.0));
    assert_eq!(rejected("invalid"), Some(3.0));
    assert_eq!(
        sample(
            &m,
            "driftwatch_events_accepted_total",
            &[("status", "stored")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "driftwatch_events_accepted_total",
            &[("status", "duplicate")]
        ),
        Some(2.0)
    );
    let (status, _) = daemon
        .request(reqwest::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(status, 401, "metrics need the read scope");
}

#[tokio::test]
async fn obligations_show_what_a_person_must_chase() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2027-02-15T12:00:00Z");
    assert_eq!(daemon.post_events(&example_events()).await.0, 202);
    let overdue = daemon
        .get("/v1/obligations?state=overdue&role=iro&email=Ira.Reviewer@council.example")
        .await;
    let items = overdue["obligations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!items.is_empty(), "{overdue}");
    for o in &items {
        assert_eq!(o["state"], "overdue");
        assert_eq!(o["case"], "C-1001");
        assert!(
            o["working_days_late"].as_i64().is_some_and(|d| d > 0),
            "{o}"
        );
        assert!(o["people"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["email"] == "ira.reviewer@council.example")
        }));
    }
    assert!(items.iter().any(|o| o["rule"] == "decision_carried_out"));
    let nobody = daemon
        .get("/v1/obligations?state=overdue&email=nobody@council.example")
        .await;
    assert_eq!(nobody["count"], 0);
    let (status, _) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/obligations?state=late",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sighup_applies_good_rules_and_keeps_the_old_ones_on_an_error() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let due = |plan: &Value| -> Vec<String> {
        plan["obligations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["rule"] == "early_review_considered")
            .filter_map(|o| o["due"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        daemon
            .post_events(&significant_event("C-5001", "se-5", "2027-01-04T08:00:00Z"))
            .await
            .0,
        202
    );
    let plan = daemon.get("/v1/cases/C-5001/plan").await;
    assert_eq!(due(&plan), vec!["2027-01-11"]);

    // A broken rules file: refused with file:line:column, the old rules keep running.
    let file = setup.rules_dir().join("significant_events.yaml");
    let good = std::fs::read_to_string(&file).expect("rules");
    std::fs::write(
        &file,
        good.replace("offset: 5 working days}", "offset: 5 workign days}"),
    )
    .expect("write rules");
    daemon.signal("HUP");
    let logs = wait_for_log(&daemon, "reload refused; the previous rules keep running").await;
    assert!(
        logs.contains("significant_events.yaml:") && logs.contains("workign"),
        "{logs}"
    );
    assert_eq!(
        due(&daemon.get("/v1/cases/C-5001/plan").await),
        vec!["2027-01-11"]
    );

    // A good change: re-planned at once.
    std::fs::write(
        &file,
        good.replace("offset: 5 working days}", "offset: 3 working days}"),
    )
    .expect("write rules");
    daemon.signal("HUP");
    wait_for_log(&daemon, "rules reloaded").await;
    assert_eq!(
        due(&daemon.get("/v1/cases/C-5001/plan").await),
        vec!["2027-01-07"]
    );
    let obligations = daemon
        .get("/v1/obligations?case=C-5001&rule=early_review_considered")
        .await;
    assert_eq!(obligations["obligations"][0]["due"], "2027-01-07");
    assert!(daemon.terminate().success());
}

/// Waits for a line in the daemon's log (written when a signal has been handled).
async fn wait_for_log(daemon: &Daemon, text: &str) -> String {
    for _ in 0..400 {
        let logs = daemon.logs();
        if logs.contains(text) {
            return logs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the log never said `{text}`:\n{}", daemon.logs());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn two_daemons_on_postgres_never_send_a_notification_twice() {
    let mailbox = Mailbox::start();
    let url = fresh_postgres().await;
    let mut a_setup = Setup::new();
    a_setup.database_url = url.clone();
    a_setup.smtp_port = Some(mailbox.port);
    let mut b_setup = Setup::new();
    b_setup.database_url = url;
    b_setup.smtp_port = Some(mailbox.port);
    let a = Daemon::start(&a_setup, "2026-12-01T09:00:00Z");
    let b = Daemon::start(&b_setup, "2026-12-01T09:00:00Z");

    // Twenty children, posted half to each daemon.
    for i in 0..20 {
        let events = example_events_for(&format!("C-{}", 6000 + i));
        let daemon = if i % 2 == 0 { &a } else { &b };
        assert_eq!(daemon.post_events(&events).await.0, 202);
    }
    // Both daemons travel through the same days at once, racing for the same notifications.
    for day in [
        "2026-12-09T09:00:00Z",
        "2026-12-15T09:00:00Z",
        "2027-01-08T09:00:00Z",
        "2027-02-15T12:00:00Z",
    ] {
        tokio::join!(a.clock(day), b.clock(day));
    }
    let mail = mailbox.mail();
    let sent = a.outbox("sent").await;
    assert!(sent.len() >= 20 * 5, "{} sent", sent.len());
    let mut ids: Vec<String> = mail.iter().map(Mail::message_id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "a notification was sent twice");
    assert_eq!(
        mail.len(),
        sent.len(),
        "every sent notification reached the server once"
    );
    assert!(
        a.outbox("pending")
            .await
            .iter()
            .all(|n| n["send_at"].as_str().unwrap_or("") > "2027-02-15T12:00:00Z")
    );

    // One daemon killed: the other carries on alone.
    a.kill();
    b.clock("2027-04-06T12:00:00Z").await;
    let mail = mailbox.mail();
    let mut ids: Vec<String> = mail.iter().map(Mail::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), mail.len());
    assert_eq!(b.outbox("sent").await.len(), mail.len());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn postgres_runs_the_readme_example_like_sqlite() {
    let url = fresh_postgres().await;
    let mut pg = Setup::new();
    pg.database_url = url;
    let lite = Setup::new();
    let mut keys = Vec::new();
    for setup in [&pg, &lite] {
        let daemon = Daemon::start(setup, "2026-12-01T09:00:00Z");
        assert_eq!(daemon.post_events(&example_events()).await.0, 202);
        daemon.clock("2027-02-15T12:00:00Z").await;
        let mut sent: Vec<String> = daemon
            .outbox("sent")
            .await
            .iter()
            .filter_map(|n| n["idempotency_key"].as_str().map(str::to_string))
            .collect();
        sent.sort();
        keys.push(sent);
        assert!(daemon.terminate().success());
    }
    assert!(!keys[0].is_empty());
    assert_eq!(
        keys[0], keys[1],
        "the same notifications, under the same keys"
    );
}

#[tokio::test]
async fn after_seven_working_days_down_each_obligation_gets_one_message_at_most() {
    use chrono::{Datelike, Duration, NaiveDate, Weekday};
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    for case in ["C-7001", "C-7002", "C-7003"] {
        assert_eq!(daemon.post_events(&example_events_for(case)).await.0, 202);
    }
    // Live through December and January, morning and afternoon of every weekday...
    let mut day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let last_live = NaiveDate::from_ymd_opt(2027, 1, 20).unwrap();
    while day <= last_live {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            for hour in ["09:00:00", "16:00:00"] {
                daemon.clock(&format!("{day}T{hour}Z")).await;
            }
        }
        day += Duration::days(1);
    }
    let sent_before = daemon.outbox("sent").await.len();
    assert_eq!(mailbox.mail().len(), sent_before);
    assert!(daemon.terminate().success());

    // ...then down from Wednesday 20 January 16:00 until Friday 29 January 12:00: seven
    // working days. Before starting it again, an IRO manager asks what it will send.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(setup.write())
        .args(["catchup", "--dry-run", "--now", "2027-01-29T12:00:00Z"])
        .env_remove("DRIFTWATCH_DATABASE_URL")
        .output()
        .expect("catchup --dry-run");
    let preview = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{preview}");
    let send_now: std::collections::BTreeMap<String, usize> = preview
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("RULE"))
        .skip(1)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            Some((cells.first()?.to_string(), cells.get(1)?.parse().ok()?))
        })
        .collect();
    assert!(send_now.get("total").is_some_and(|n| *n > 0), "{preview}");

    let daemon = Daemon::start(&setup, "2027-01-29T12:00:00Z");
    daemon.clock("2027-01-29T12:00:00Z").await;
    let mail = mailbox.mail();
    let after: Vec<&Mail> = mail[sent_before..].iter().collect();
    let sent = daemon.outbox("sent").await;
    let row_of = |m: &Mail| {
        sent.iter()
            .find(|n| {
                format!(
                    "<{}@council.example>",
                    n["idempotency_key"].as_str().unwrap_or("")
                ) == m.message_id()
            })
            .cloned()
            .unwrap_or_else(|| panic!("{} is not recorded as sent", m.message_id()))
    };
    // One step per obligation at most, and it says it is late.
    let mut steps = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for m in &after {
        let row = row_of(m);
        let n = &row["notification"];
        if let Some(obligation) = n["obligation"].as_str()
            && matches!(n["kind"].as_str(), Some("reminder" | "escalation"))
        {
            steps
                .entry(format!("{}/{obligation}", row["case"]))
                .or_default()
                .insert(n["step"].as_str().unwrap_or_default().to_string());
        }
    }
    assert!(
        !steps.is_empty(),
        "the step that applies now went for some obligation"
    );
    // It sent what the dry run said it would.
    let mut by_rule = std::collections::BTreeMap::<String, usize>::new();
    for m in &after {
        *by_rule
            .entry(row_of(m)["rule"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    for (rule, n) in &send_now {
        if rule != "total" {
            assert_eq!(
                by_rule.get(rule).copied().unwrap_or(0),
                *n,
                "{rule}: {preview}"
            );
        }
    }
    assert_eq!(after.len(), send_now["total"], "{preview}");
    for (obligation, s) in &steps {
        assert_eq!(s.len(), 1, "{obligation} got more than one step: {s:?}");
    }
    // The missed steps are recorded as superseded, not lost and not sent.
    let superseded = daemon.outbox("superseded").await;
    assert!(
        superseded.iter().any(|n| {
            let t = n["send_at"].as_str().unwrap_or_default();
            t > "2027-01-20T16:00:00Z" && t < "2027-01-29T12:00:00Z"
        }),
        "steps missed during the downtime are recorded: {superseded:?}"
    );
    // Nothing due is left behind, and nothing went twice.
    for n in daemon.outbox("pending").await {
        assert!(
            n["send_at"].as_str().unwrap_or_default() > "2027-01-29T12:00:00Z",
            "{n}"
        );
    }
    let mut ids: Vec<String> = mail.iter().map(Mail::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), mail.len());
    assert!(daemon.logs().contains("catching up after downtime"));
}

#[tokio::test]
async fn an_iros_calendar_feed_shows_deadlines_and_meetings_and_follows_a_reschedule() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    assert_eq!(daemon.post_events(&example_events()).await.0, 202);
    daemon.clock("2026-12-20T12:00:00Z").await;

    // The admin hands the IRO a secret URL; nobody else can ask for it.
    let (status, _) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/feeds?email=ira.reviewer@council.example",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let url = daemon
        .get("/v1/feeds?email=ira.reviewer@council.example")
        .await["url"]
        .as_str()
        .expect("a feed URL")
        .replace("http://feeds.test", &daemon.base);
    let fetch = |url: String| async move {
        let res = reqwest::get(&url).await.expect("feed");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    };
    let events = |text: &str| {
        rfc5545(text);
        let mut parser = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
        let calendar = parser
            .next()
            .expect("one calendar")
            .expect("valid iCalendar");
        assert!(parser.next().is_none());
        calendar
            .events
            .into_iter()
            .map(|e| {
                e.properties
                    .into_iter()
                    .map(|p| (p.name, p.value.unwrap_or_default()))
                    .collect::<std::collections::BTreeMap<String, String>>()
            })
            .collect::<Vec<_>>()
    };

    let (status, text) = fetch(url.clone()).await;
    assert_eq!(status, 200, "{text}");
    let before = events(&text);
    assert!(!before.is_empty());
    for e in &before {
        assert!(e["UID"].starts_with("C-1001/") && e["UID"].ends_with("@driftwatch"));
        assert!(e["SUMMARY"].starts_with("C-1001") || e["SUMMARY"].starts_with("OVERDUE C-1001"));
        assert!(!e["SUMMARY"].contains("Parent One") && !e["DESCRIPTION"].contains("Sam"));
    }
    let meeting = before
        .iter()
        .find(|e| e["SUMMARY"] == "C-1001: review meeting")
        .expect("the booked review meeting is in the feed");
    assert_eq!(meeting["DTSTART"], "20270106T140000Z");
    assert!(
        before
            .iter()
            .any(|e| e.get("DTSTART").is_some_and(|d| d == "20270104")),
        "the first review's deadline, as an all-day entry: {before:?}"
    );

    // The meeting moves: the same entry (same UID) moves with it, its sequence raised.
    let moved = serde_json::json!({"id": "ev-move", "case": "C-1001", "type": "review_rescheduled",
        "at": "2026-12-20T12:00:00Z", "data": {"review_id": "R1", "meeting_at": "2027-01-08T10:00:00Z"}});
    assert_eq!(daemon.post_events(&moved).await.0, 202);
    let (_, text) = fetch(url.clone()).await;
    let after = events(&text);
    let moved_meeting = after
        .iter()
        .find(|e| e["UID"] == meeting["UID"])
        .expect("the same entry");
    assert_eq!(moved_meeting["DTSTART"], "20270108T100000Z");
    assert!(
        moved_meeting["SEQUENCE"].parse::<u32>().unwrap_or(0)
            > meeting["SEQUENCE"].parse::<u32>().unwrap_or(0)
    );

    // Another person's address under this signature, or a mangled token: no feed.
    let token_at = url.find("/feeds/").expect("a feed path") + "/feeds/".len();
    let mut altered = url.clone().into_bytes();
    altered[token_at] = if altered[token_at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let (status, _) = fetch(String::from_utf8(altered).expect("text")).await;
    assert_eq!(status, 404);
    assert!(!url.contains("ira"), "the URL does not carry the address");
    let sam = daemon
        .get("/v1/feeds?email=sam.social@council.example")
        .await["url"]
        .as_str()
        .unwrap_or_default()
        .replace("http://feeds.test", &daemon.base);
    assert_ne!(sam, url);
}

#[tokio::test]
async fn an_iro_who_takes_the_digest_gets_one_email_a_working_day_instead_of_a_stream() {
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    setup.extra = "digest: {at: \"08:30\", recipients: {iro: digest}}\n".into();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let cases = ["C-8001", "C-8002", "C-8003"];
    for case in cases {
        assert_eq!(daemon.post_events(&example_events_for(case)).await.0, 202);
    }
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    // Each morning at the start of working hours, when what is not urgent goes.
    while day <= chrono::NaiveDate::from_ymd_opt(2027, 2, 15).unwrap() {
        daemon.clock(&format!("{day}T09:00:00Z")).await;
        day += chrono::Duration::days(1);
    }
    let to_iro = |mail: &[Mail]| -> Vec<Mail> {
        mail.iter()
            .filter(|m| m.to == vec!["ira.reviewer@council.example".to_string()])
            .cloned()
            .collect()
    };
    // Ten weeks of reminders and escalations for three children, and the IRO got only notices
    // (the urgent significant events, and the warning that each review is booked in school
    // hours); every reminder and escalation waited for the digest.
    let before = to_iro(&mailbox.mail());
    let subjects: Vec<_> = before.iter().map(|m| m.header("Subject")).collect();
    assert_eq!(before.len(), 6, "{subjects:?}");
    assert_eq!(
        before
            .iter()
            .filter(|m| m.raw.contains("significant_event_notice"))
            .count(),
        3,
        "{subjects:?}"
    );
    assert!(
        before
            .iter()
            .all(|m| m.raw.contains("significant_event_notice")
                || m.raw.contains("review_in_school_hours")),
        "{subjects:?}"
    );
    assert!(!daemon.outbox("in_digest").await.is_empty());

    // Monday 15 February 2027: the digest.
    let (status, body) = daemon
        .request(reqwest::Method::POST, "/v1/admin/digest", Some(TOKEN), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sent"], 1, "one digest: only the IRO takes them");
    let after = to_iro(&mailbox.mail());
    assert_eq!(after.len(), before.len() + 1);
    let digest = &after[before.len()];
    let subject = digest.header("Subject").unwrap_or_default();
    assert!(
        subject.starts_with("driftwatch digest for Monday 15 February 2027:"),
        "{subject}"
    );
    let text = digest.raw.replace("=\n", "");
    for case in cases {
        assert!(text.contains(&format!("Case {case}")), "{text}");
    }
    // The drifting decision of each child, overdue by 11 working days.
    assert_eq!(
        text.matches(
            "OVERDUE by 11 working day(s): Review decision carried out (due Friday 29 January 2027)"
        )
        .count(),
        3,
        "{text}"
    );
    assert!(text.contains("Rule \"decision_carried_out\""));
    for private in [
        "Parent One",
        "Foster Carer",
        "Sam Social",
        "sibling contact",
    ] {
        assert!(!text.contains(private), "the digest names `{private}`");
    }

    // Once a day, however often asked; nothing on a Saturday.
    let (_, body) = daemon
        .request(reqwest::Method::POST, "/v1/admin/digest", Some(TOKEN), None)
        .await;
    assert_eq!(body["sent"], 0);
    daemon.clock("2027-02-20T08:30:00Z").await;
    let (_, body) = daemon
        .request(reqwest::Method::POST, "/v1/admin/digest", Some(TOKEN), None)
        .await;
    assert_eq!(body["sent"], 0);
    assert_eq!(to_iro(&mailbox.mail()).len(), before.len() + 1);
}

/// RFC 5545's rules for what the feed carries, checked with a parser driftwatch does not write
/// with (the `ical` crate): one `PRODID` and one `VERSION:2.0` on the calendar, and on every
/// event exactly one `UID`, `DTSTAMP` and `DTSTART`, and a `DTEND` after its `DTSTART` (for an
/// all-day entry, the next day or later: `DTEND` is exclusive).
fn rfc5545(text: &str) {
    let mut parser = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
    let calendar = parser.next().expect("a calendar").expect("valid iCalendar");
    let count = |props: &[ical::property::Property], name: &str| {
        props.iter().filter(|p| p.name == name).count()
    };
    assert_eq!(count(&calendar.properties, "PRODID"), 1, "{text}");
    assert_eq!(count(&calendar.properties, "VERSION"), 1, "{text}");
    assert!(
        calendar
            .properties
            .iter()
            .any(|p| p.name == "VERSION" && p.value.as_deref() == Some("2.0"))
    );
    for e in &calendar.events {
        for name in ["UID", "DTSTAMP", "DTSTART"] {
            assert_eq!(
                count(&e.properties, name),
                1,
                "{name} in {:?}",
                e.properties
            );
        }
        let value = |name: &str| {
            e.properties
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.value.clone())
        };
        if let (Some(start), Some(end)) = (value("DTSTART"), value("DTEND")) {
            // Both dates (YYYYMMDD) or both date-times (YYYYMMDDTHHMMSSZ): text order is time order.
            assert_eq!(start.len(), end.len(), "{start} {end}");
            assert!(end > start, "DTEND {end} is not after DTSTART {start}");
        }
    }
}

/// Prometheus's own linter, `promtool check metrics`, accepts a live `/metrics` with every family
/// in it: a `# HELP` and a `# TYPE` line each.
#[tokio::test]
#[ignore = "needs promtool: install Debian's prometheus package and run with --include-ignored"]
async fn live_metrics_pass_promtool() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    assert_eq!(daemon.post_events(&example_events()).await.0, 202);
    let (status, _) = daemon
        .request(
            reqwest::Method::POST,
            "/v1/events",
            Some(TOKEN),
            Some(("application/json", b"{not json".to_vec())),
        )
        .await;
    assert_eq!(status, 400);
    daemon.clock("2027-02-15T09:00:00Z").await;
    let text = daemon.metrics_text().await;
    for family in [
        "driftwatch_events_accepted_total",
        "driftwatch_events_rejected_total",
        "driftwatch_notifications_total",
        "driftwatch_delivery_seconds",
        "driftwatch_scheduler_lag_seconds",
        "driftwatch_obligations",
        "driftwatch_outbox",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family}: {text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}: {text}"
        );
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool: install Debian's prometheus package");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = promtool.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` working days after `from` by the regulations' definition (not Saturday, Sunday or a bank
/// holiday), for a stretch with no bank holiday in it (checked by the caller).
fn weekdays_after(from: chrono::NaiveDate, n: u32) -> chrono::NaiveDate {
    use chrono::Datelike;
    let mut d = from;
    let mut left = n;
    while left > 0 {
        d = d.succ_opt().unwrap();
        if d.weekday().num_days_from_monday() < 5 {
            left -= 1;
        }
    }
    d
}

/// Before a rules change is reloaded, `driftwatch preview --rules DIR` and
/// `POST /v1/admin/reload?dry_run=true` say what it would do to the live caseload, the same
/// thing, and change nothing; a changed folder with a mistake is reported as a reload would
/// refuse it.
#[tokio::test]
async fn a_rules_change_is_previewed_before_it_is_reloaded() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2027-01-04T12:00:00Z");
    let events = json!([
        {"id": "pv-1", "case": "PV-1", "type": "child_looked_after", "at": "2027-01-04T10:00:00Z",
         "data": {"start": "2027-01-04T10:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}},
        {"id": "pv-2", "case": "PV-1", "type": "iro_allocated", "at": "2027-01-04T11:00:00Z",
         "data": {"iro": {"name": "Ira Reviewer", "email": "ira.reviewer@council.example"}}},
    ]);
    assert_eq!(daemon.post_events(&events).await.0, 202);
    let first_review_due = |plan: &Value| {
        plan["obligations"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["rule"] == "first_review")
            .map(|o| o["due"].as_str().unwrap_or_default().to_string())
            .expect("first review")
    };
    // The first review within 20 working days of 4 January 2027 (no bank holiday until April).
    let looked_after = chrono::NaiveDate::from_ymd_opt(2027, 1, 4).unwrap();
    let due_20 = weekdays_after(looked_after, 20).to_string();
    let due_15 = weekdays_after(looked_after, 15).to_string();
    let before = daemon.get("/v1/cases/PV-1/plan").await;
    assert_eq!(first_review_due(&before), due_20);

    // A changed copy of the rules: the first review within 15 working days.
    let changed = setup.dir.path().join("changed-rules");
    std::fs::create_dir(&changed).unwrap();
    for entry in std::fs::read_dir(setup.rules_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, changed.join(path.file_name().unwrap())).unwrap();
        }
    }
    let file = changed.join("becoming_looked_after.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace(
        "due: {from: at, offset: 20 working days}\n    # A review's holding",
        "due: {from: at, offset: 15 working days}\n    # A review's holding",
    );
    assert_ne!(text, edited);
    std::fs::write(&file, &edited).unwrap();

    let config = setup.dir.path().join("driftwatch.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(&config)
        .args(["preview", "--rules"])
        .arg(&changed)
        .args(["--now", "2027-01-04T12:00:00Z", "--format", "json"])
        .env_remove("DRIFTWATCH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &cli["by_rule"]["first_review"];
    assert_eq!(cli["cases"], 1, "{cli}");
    assert_eq!(cli["cases_changed"], 1, "{cli}");
    assert_eq!(first["deadlines_earlier"], 1, "{cli}");
    assert_eq!(first["most_earlier_working_days"], 5, "{cli}");
    assert_eq!(first["deadlines_later"], 0, "{cli}");
    assert_eq!(first["examples"], json!(["PV-1"]), "{cli}");
    // Its reminders move with it: each counted once, as withdrawn and added, or retimed.
    assert!(
        first["messages_withdrawn"].as_u64().unwrap() + first["messages_retimed"].as_u64().unwrap()
            >= 1,
        "{cli}"
    );
    // No other rule changes.
    assert_eq!(
        cli["by_rule"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["first_review"],
        "{cli}"
    );
    // The table an admin reads.
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(&config)
        .args(["preview", "--rules"])
        .arg(&changed)
        .args(["--now", "2027-01-04T12:00:00Z"])
        .env_remove("DRIFTWATCH_DATABASE_URL")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("1 of 1 case(s) would change"), "{table}");
    assert!(table.contains("first_review"), "{table}");
    assert!(table.contains("1 earlier (up to 5 wd)"), "{table}");

    // The same change put in place: the dry run says the same, and changes nothing.
    std::fs::write(
        setup.rules_dir().join("becoming_looked_after.yaml"),
        &edited,
    )
    .unwrap();
    let (status, dry) = daemon
        .request(
            reqwest::Method::POST,
            "/v1/admin/reload?dry_run=true",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["reloaded"], false);
    assert_eq!(dry["change"]["by_rule"], cli["by_rule"]);
    assert_eq!(
        first_review_due(&daemon.get("/v1/cases/PV-1/plan").await),
        due_20
    );

    // A mistake in the folder: the dry run says what a reload would refuse.
    std::fs::write(
        setup.rules_dir().join("zz_broken.yaml"),
        "rules:\n  - id: [\n",
    )
    .unwrap();
    let (status, refused) = daemon
        .request(
            reqwest::Method::POST,
            "/v1/admin/reload?dry_run=true",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("zz_broken.yaml:")),
        "{refused}"
    );
    std::fs::remove_file(setup.rules_dir().join("zz_broken.yaml")).unwrap();

    // Reloaded for real, the deadline moves as previewed.
    let (status, _) = daemon
        .request(reqwest::Method::POST, "/v1/admin/reload", Some(TOKEN), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        first_review_due(&daemon.get("/v1/cases/PV-1/plan").await),
        due_15
    );
}

/// Moves the clock to `at`, then posts a significant event for case `OA-n` at `at` and waits
/// until what it makes due has been sent. The clock moves first: what the event makes due goes
/// at once, so posted at the earlier time it would go then, with that time's token.
async fn move_and_post(daemon: &Daemon, n: u32, at: &str) {
    daemon.clock(at).await;
    let events = significant_event(&format!("OA-{n}"), &format!("oa-{n}"), at);
    assert_eq!(daemon.post_events(&events).await.0, 202);
    daemon.clock(at).await;
}

/// Councils on Microsoft 365 or Google Workspace sign in to SMTP with an OAuth 2.0 token
/// (XOAUTH2), not a password: driftwatch gets one from the token endpoint with the client secret
/// from a file, uses it until shortly before it expires, gets a new one when the server refuses
/// it, and says why when the endpoint will not give one, never showing the secret or a token.
#[tokio::test]
#[ignore = "needs Debian's python3-aiosmtpd (a real XOAUTH2 SMTP server); run with --include-ignored"]
async fn smtp_signs_in_with_an_oauth2_token_renewed_before_it_expires() {
    const SECRET: &str = "client-secret-Zm9vYmFy";
    const MAILBOX: &str = "driftwatch@council.example";
    const SCOPE: &str = "https://outlook.office365.com/.default";
    let endpoint = TokenEndpoint::start("driftwatch-app", SECRET, SCOPE, MAILBOX, 3600).await;
    let smtp = XoauthSmtp::start(&endpoint);
    let mut setup = Setup::new();
    std::fs::write(
        setup.dir.path().join("oauth2-secret"),
        format!("{SECRET}\n"),
    )
    .unwrap();
    setup.smtp_port = Some(smtp.port);
    setup.smtp_sign_in = format!(
        ", username: {MAILBOX}, oauth2: {{token_url: \"{}\", client_id: driftwatch-app, \
         client_secret_file: oauth2-secret, scope: \"{SCOPE}\"}}",
        endpoint.url
    );
    let daemon = Daemon::start(&setup, "2027-02-03T11:00:00Z");

    // The first message: one token asked for, and the message signed in with it as the mailbox.
    move_and_post(&daemon, 1, "2027-02-03T11:00:00Z").await;
    let first = daemon.outbox("sent").await.len();
    assert!(first >= 1);
    let mail = smtp.mail_when(first);
    assert_eq!(endpoint.issued().len(), 1);
    let token_1 = endpoint.issued()[0].clone();
    assert!(
        mail.iter().all(|m| m.user == MAILBOX && m.token == token_1),
        "{mail:?}"
    );

    // Forty minutes on, the hour's token is still good: no new one.
    move_and_post(&daemon, 2, "2027-02-03T11:40:00Z").await;
    let second = daemon.outbox("sent").await.len();
    assert!(second > first);
    smtp.mail_when(second);
    assert_eq!(endpoint.issued(), std::slice::from_ref(&token_1));

    // Fifty-six minutes after it was issued it is renewed before it lapses.
    move_and_post(&daemon, 3, "2027-02-03T11:56:00Z").await;
    let third = daemon.outbox("sent").await.len();
    let mail = smtp.mail_when(third);
    assert_eq!(endpoint.issued().len(), 2);
    let token_2 = endpoint.issued()[1].clone();
    assert!(
        mail[second..].iter().all(|m| m.token == token_2),
        "{mail:?}"
    );

    // Revoked by the identity provider: the server refuses it, and a new one is fetched at once.
    endpoint.revoke(&token_2);
    move_and_post(&daemon, 4, "2027-02-03T12:00:00Z").await;
    let fourth = daemon.outbox("sent").await.len();
    assert!(fourth > third);
    let mail = smtp.mail_when(fourth);
    assert_eq!(endpoint.issued().len(), 3);
    let token_3 = endpoint.issued()[2].clone();
    assert!(mail[third..].iter().all(|m| m.token == token_3), "{mail:?}");

    // The endpoint refuses the client (a secret rotated and not updated): nothing goes, the
    // outbox says why in a way an admin can act on, and no secret is shown anywhere.
    endpoint.refuse(true);
    move_and_post(&daemon, 5, "2027-02-03T13:00:00Z").await;
    assert_eq!(daemon.outbox("sent").await.len(), fourth);
    let waiting = daemon.outbox("pending").await;
    let refused = waiting
        .iter()
        .find(|n| n["case"] == "OA-5")
        .unwrap_or_else(|| panic!("the notice waits to be tried again: {waiting:?}"));
    let reason = refused["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("token endpoint 127.0.0.1 refused the client credentials")
            && reason.contains("HTTP 401, invalid_client"),
        "{reason}"
    );
    let everything = format!("{waiting:?}{}", daemon.logs());
    for secret in [SECRET, &token_1, &token_2, &token_3, "Zm9vYmFy"] {
        assert!(
            !everything.contains(secret),
            "`{secret}` shown:\n{everything}"
        );
    }

    // Put right, the notice goes at its next try.
    endpoint.refuse(false);
    daemon.clock("2027-02-03T13:10:00Z").await;
    let fifth = daemon.outbox("sent").await.len();
    assert!(fifth > fourth, "{:?}", daemon.outbox("pending").await);
    smtp.mail_when(fifth);
    assert_eq!(endpoint.issued().len(), 4);
}

/// Rewrites every template's subject in a setup's copy of the templates: a new wording.
fn reword_subjects(setup: &Setup) {
    let templates = setup.dir.path().join("templates");
    for entry in std::fs::read_dir(&templates).expect("templates copy") {
        let subject = entry.expect("template").path().join("subject.txt");
        if let Ok(text) = std::fs::read_to_string(&subject) {
            std::fs::write(&subject, format!("[new wording] {text}")).expect("reword");
        }
    }
}

async fn reload(daemon: &Daemon) -> Value {
    let (status, body) = daemon
        .request(reqwest::Method::POST, "/v1/admin/reload", Some(TOKEN), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_daemons_plan_and_send_only_with_the_rules_in_force() {
    let mailbox = Mailbox::start();
    let url = fresh_postgres().await;
    let setup = |from: &str| {
        let mut s = Setup::new();
        s.database_url = url.clone();
        s.smtp_port = Some(mailbox.port);
        s.email_from = format!("driftwatch <{from}@council.example>");
        // A copy of the templates of its own, which the test rewords.
        s.extra_templates = vec![("spare".into(), "Spare".into(), "Case {{ case }}".into())];
        s
    };
    let (a_setup, b_setup) = (setup("daemon-a"), setup("daemon-b"));
    let a = Daemon::start(&a_setup, "2026-12-01T09:00:00Z");
    let b = Daemon::start(&b_setup, "2026-12-01T09:00:00Z");
    let version = |ready: &Value| {
        ready["rules_version"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (a_ready, b_ready) = (a.get("/readyz").await, b.get("/readyz").await);
    assert_eq!(version(&a_ready), version(&b_ready), "the same rules agree");
    for i in 0..6 {
        let events = example_events_for(&format!("C-{}", 6100 + i));
        let daemon = if i % 2 == 0 { &a } else { &b };
        assert_eq!(daemon.post_events(&events).await.0, 202);
    }

    // A is reloaded with a new wording; B still holds the old one.
    reword_subjects(&a_setup);
    reload(&a).await;
    let in_force = version(&a.get("/readyz").await);
    assert_ne!(in_force, version(&a_ready));
    let (status, ready) = b.request(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["rules_in_force"], in_force.as_str());
    assert_eq!(ready["rules_version"], version(&b_ready).as_str());
    let more = example_events_for("C-6199");
    let (status, body) = b.post_events(&more).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("are not the rules, templates and calendar held here")),
        "{body}"
    );
    assert_eq!(b.get("/v1/notifications?case=C-6199").await["count"], 0);
    assert_eq!(a.post_events(&more).await.0, 202);

    // Both travel to the day invitations go: only A sends, and only in the new wording.
    let subjects = || {
        mailbox
            .mail()
            .iter()
            .map(|m| {
                (
                    m.header("From").unwrap_or_default(),
                    m.header("Subject").unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    tokio::join!(
        a.clock("2026-12-09T09:00:00Z"),
        b.clock("2026-12-09T09:00:00Z")
    );
    assert!(
        b.logs().contains("put other rules in force"),
        "{}",
        b.logs()
    );
    let mail = subjects();
    assert!(!mail.is_empty());
    assert!(
        mail.iter().all(|(from, _)| from.contains("daemon-a")),
        "{mail:?}"
    );
    assert!(
        mail.iter().all(|(_, s)| s.starts_with("[new wording]")),
        "{mail:?}"
    );

    // B reloaded with the same rules: it plans and sends again, and nothing goes twice.
    reword_subjects(&b_setup);
    reload(&b).await;
    assert_eq!(version(&b.get("/readyz").await), in_force);
    assert_eq!(b.post_events(&example_events_for("C-6198")).await.0, 202);
    // What that makes due now goes before the clocks move on: two manual clocks jumping days
    // apart would take each other's claims as long expired.
    b.clock("2026-12-09T09:00:00Z").await;
    tokio::join!(
        a.clock("2026-12-15T09:00:00Z"),
        b.clock("2026-12-15T09:00:00Z")
    );
    let mail = subjects();
    assert!(
        mail.iter().any(|(from, _)| from.contains("daemon-b")),
        "{mail:?}"
    );
    assert!(
        mail.iter().all(|(_, s)| s.starts_with("[new wording]")),
        "{mail:?}"
    );
    let mut ids: Vec<String> = mailbox.mail().iter().map(Mail::message_id).collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    let twice: Vec<(String, String, String)> = mailbox
        .mail()
        .iter()
        .filter(|m| {
            mailbox
                .mail()
                .iter()
                .filter(|n| n.message_id() == m.message_id())
                .count()
                > 1
        })
        .map(|m| {
            (
                m.message_id(),
                m.header("From").unwrap_or_default(),
                m.header("Subject").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        ids.len(),
        all,
        "a notification was sent twice: {twice:#?}\nA:\n{}\nB:\n{}",
        a.logs(),
        b.logs()
    );
    assert!(b.outbox("dead").await.is_empty());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DRIFTWATCH_TEST_POSTGRES_URL and run with --include-ignored"]
async fn on_postgres_the_same_events_posted_to_two_daemons_in_other_orders_are_all_accepted() {
    let url = fresh_postgres().await;
    let setup = || {
        let mut s = Setup::new();
        s.database_url = url.clone();
        s
    };
    let (a_setup, b_setup) = (setup(), setup());
    let a = Daemon::start(&a_setup, "2026-12-01T09:00:00Z");
    let b = Daemon::start(&b_setup, "2026-12-01T09:00:00Z");
    // Fifty pairs of batches, each of the same four children's events, posted at once to both
    // daemons, one in case order and the other reversed.
    for pair in 0..50 {
        let mut events = Vec::new();
        for i in 0..4 {
            let Value::Array(mut e) = example_events_for(&format!("C-{}-{i}", 6500 + pair)) else {
                unreachable!()
            };
            events.append(&mut e);
        }
        let forward = Value::Array(events.clone());
        events.reverse();
        let backward = Value::Array(events);
        let ((a_status, a_body), (b_status, b_body)) =
            tokio::join!(a.post_events(&forward), b.post_events(&backward));
        assert_eq!((a_status, b_status), (202, 202), "{a_body} {b_body}");
        // Every event stored once: by one daemon, a duplicate to the other.
        let stored = |body: &Value| {
            body["accepted"]
                .as_array()
                .map_or(0, |e| e.iter().filter(|e| e["status"] == "stored").count())
        };
        assert_eq!(
            stored(&a_body) + stored(&b_body),
            forward.as_array().map_or(0, Vec::len)
        );
    }
    for daemon in [&a, &b] {
        assert!(
            !daemon.logs().contains("the store failed"),
            "{}",
            daemon.logs()
        );
    }
}
