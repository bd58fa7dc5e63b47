//! Model-based test of the send path: whatever happens, what the daemon sends is what the case's
//! plan says at the moment of sending, and everything the plan has due is sent, apart from what
//! the documented catch-up rules record instead.
//!
//! Each run generates a scenario from its seed: two or three children from the benchmarks'
//! synthetic caseload generator (reviews booked, moved and held late, recommendations, decisions
//! met or drifting, significant events, children leaving care), posted to the real daemon as a
//! case system would, mostly soon after each event, sometimes days late and sometimes ahead of
//! time (future-dated); the clock moved by hours and by weeks; the daemon stopped and started
//! again after downtime; the SMTP server refusing an address once (`451`) or for good (`550`); the
//! webhook receiver answering `500` or `404`. After every step the outbox, the mailbox and the
//! webhooks received are compared with each case's plan (`GET /v1/cases/{case}/plan`) at that
//! moment, and the stored obligations with the plan's; at the end of a run the plans are checked
//! against `driftwatch plan` on the same events.
//!
//! The generator knows nothing of the planner: it writes events, and the checks read only the
//! plan's documented JSON, the outbox and what the receivers got. The catch-up rules are those
//! the README documents, written out here independently.
//!
//! CI runs a fixed seed and a few runs. The long run, a thousand scenarios from another seed:
//!
//! ```sh
//! DRIFTWATCH_MODEL_RUNS=1000 DRIFTWATCH_MODEL_SEED=7 cargo test --release --test it model:: -- --nocapture
//! ```
//!
//! A failure names its seed: `DRIFTWATCH_MODEL_SEED=<seed> DRIFTWATCH_MODEL_RUNS=1` replays it.

use crate::caseload as synth;

use crate::support::*;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use driftwatch::calendar::Calendar;
use driftwatch::config::Config;
use driftwatch::localtime;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// `delivery.stale_after_hours`, the daemon's default.
fn stale() -> Duration {
    Duration::hours(24)
}

/// `delivery.max_attempts` as [`Setup`] configures it.
const MAX_ATTEMPTS: i64 = 4;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// One thing that happens to the daemon or around it.
#[derive(Debug, Clone)]
enum Step {
    /// The case system posts these events, at the daemon's current time.
    Post(Vec<Value>),
    /// The clock moves on to this moment.
    Clock(DateTime<Utc>),
    /// The daemon is stopped (SIGTERM) and started again with its clock at this moment.
    Restart(DateTime<Utc>),
    /// The SMTP server refuses this address with `code`, `times` times.
    Refuse {
        address: String,
        code: u16,
        times: u32,
    },
    /// The webhook receiver answers its next request with this status.
    Answer(u16),
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Post(events) => {
                let ids: Vec<String> = events
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} at {}",
                            text(&e["id"]),
                            text(&e["type"]),
                            text(&e["at"])
                        )
                    })
                    .collect();
                format!("post [{}]", ids.join(", "))
            }
            Step::Clock(t) => format!("clock to {}", rfc(*t)),
            Step::Restart(t) => format!("stop; start again at {}", rfc(*t)),
            Step::Refuse {
                address,
                code,
                times,
            } => format!("SMTP refuses {address} with {code}, {times} time(s)"),
            Step::Answer(status) => format!("webhook answers {status} once"),
        }
    }
}

/// A generated run: where the clock starts, and what happens.
struct Scenario {
    seed: u64,
    start: DateTime<Utc>,
    steps: Vec<Step>,
}

/// Added to [`WEBHOOK_RULE`]: a deadline action with a step of its ladder at the same moment, which
/// falls away when it happens (no shipped rule has one).
const CHASED_RULE: &str = r#"
  - id: invitations_chased
    title: Invitations chased on the day
    source: "Test: a step at the moment of a deadline action"
    on: review_scheduled
    key: data.review_id
    due: {from: data.meeting_at, offset: -10 working days}
    met_by: [invitations_sent]
    cancelled_by: [review_cancelled]
    replanned_by:
      - {event: review_rescheduled, from: data.meeting_at}
    reminders:
      - {offset: 0 working days, title: Invitations go out today, to: [review_administrator], template: reminder}
    at_deadline:
      - send: {to: [review_administrator], template: reminder}
"#;

/// Kinds of significant event the scenarios add.
const SIGNIFICANT: [&str; 4] = [
    "placement_disruption",
    "missing_from_placement",
    "health_event",
    "school_exclusion",
];

/// Generates a scenario from its seed.
fn scenario(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let first = Utc
        .with_ymd_and_hms(2027, 1, 4, 7, 0, 0)
        .single()
        .unwrap_or_default();
    let as_of = first
        + Duration::days(rng.random_range(0..330))
        + Duration::minutes(rng.random_range(0..16 * 60));
    let shape = synth::Shape {
        cases: rng.random_range(2..=3),
        seed,
        as_of,
        years: 0.25,
    };
    let mut events: Vec<Value> = synth::caseload(&shape).into_iter().flatten().collect();
    // A few more significant events than a quarter of a year brings: urgent notices, and the
    // webhook.
    for case in synth::caseload(&shape) {
        let (Some(open), Some(last)) = (case.first(), case.last()) else {
            continue;
        };
        let (from, to) = (time(&open["at"]), time(&last["at"]).max(time(&open["at"])));
        for k in 0..rng.random_range(0..=2) {
            let span = (to - from).num_minutes().max(1);
            let at = from + Duration::minutes(rng.random_range(0..=span));
            let occurred = at - Duration::minutes(rng.random_range(0..600));
            events.push(json!({
                "id": format!("{}-se{k}", text(&open["case"])),
                "case": open["case"],
                "type": "significant_event",
                "at": rfc(at),
                "data": {"kind": SIGNIFICANT[rng.random_range(0..SIGNIFICANT.len())], "occurred_at": rfc(occurred)},
            }));
        }
    }
    // When the case system posts each: mostly within hours; sometimes days late (history);
    // sometimes up to three days ahead of its time (future-dated).
    let mut posts: Vec<(DateTime<Utc>, Value)> = events
        .into_iter()
        .map(|e| {
            let at = time(&e["at"]);
            let roll: f64 = rng.random();
            let post = if roll < 0.6 {
                at + Duration::minutes(rng.random_range(0..240))
            } else if roll < 0.85 {
                at + Duration::hours(rng.random_range(24..240))
            } else {
                at - Duration::minutes(rng.random_range(60..3 * 24 * 60))
            };
            (post, e)
        })
        .collect();
    posts.sort_by(|a, b| (a.0, text(&a.1["id"])).cmp(&(b.0, text(&b.1["id"]))));
    let start = posts.first().map(|(t, _)| *t).unwrap_or(as_of) - Duration::hours(1);
    let addresses = addresses(&posts);

    let mut steps = Vec::new();
    let mut now = start;
    let mut i = 0;
    while i < posts.len() {
        // What the case system sends within the next six hours goes as one batch.
        let batch_end = posts[i].0 + Duration::hours(6);
        let mut batch = Vec::new();
        let mut at = posts[i].0;
        while i < posts.len() && posts[i].0 <= batch_end {
            at = posts[i].0;
            batch.push(posts[i].1.clone());
            i += 1;
        }
        // Before it, maybe: a moment in between (a 09:00 passing), downtime, a fault.
        if at > now && rng.random_bool(0.3) {
            let between = now + (at - now) / 2;
            steps.push(Step::Clock(between));
            now = between;
        }
        if rng.random_bool(0.08) {
            let until = at.max(now) + Duration::hours(rng.random_range(0..=96));
            steps.push(Step::Restart(until));
            now = until;
        }
        if rng.random_bool(0.12) && !addresses.is_empty() {
            let address = addresses[rng.random_range(0..addresses.len())].clone();
            let (code, times) = if rng.random_bool(0.25) {
                (550, u32::MAX)
            } else {
                (451, rng.random_range(1..=2))
            };
            steps.push(Step::Refuse {
                address,
                code,
                times,
            });
        }
        if rng.random_bool(0.06) {
            steps.push(Step::Answer(if rng.random_bool(0.7) { 500 } else { 404 }));
        }
        if at > now {
            steps.push(Step::Clock(at));
            now = at;
        }
        steps.push(Step::Post(batch));
    }
    // Then weeks pass: every deadline, reminder and escalation still ahead.
    for weeks in [1, 3, 8] {
        steps.push(Step::Clock(now + Duration::weeks(weeks)));
    }
    Scenario { seed, start, steps }
}

/// Every email address in the events, service roles included: what a fault may be aimed at.
fn addresses(posts: &[(DateTime<Utc>, Value)]) -> Vec<String> {
    fn collect(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("email") {
                    out.insert(e.to_lowercase());
                }
                m.values().for_each(|x| collect(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for (_, e) in posts {
        collect(&e["data"], &mut out);
    }
    out.insert("iro.manager@council.example".into());
    out.insert("reviews@council.example".into());
    out.into_iter().collect()
}

/// What the checks remember between steps.
#[derive(Default)]
struct Observed {
    /// When each case was first posted: its go-live.
    go_live: HashMap<String, DateTime<Utc>>,
    /// Notifications seen sent.
    sent: HashSet<String>,
    /// Addresses the SMTP server refuses for good.
    refused: HashSet<String>,
    /// Whether the webhook receiver was told to answer `404` (a failure for good).
    webhook_refused: bool,
    /// Every event posted.
    posted: Vec<Value>,
}

/// When what goes now would go if it is not urgent (the README: inside working hours, 09:00 to
/// 17:00 as the test config has them, on a day the council is open): `now`, or the start of
/// working hours on the next open day. What is sent late is judged for that first batch.
fn first_batch(calendar: &Calendar, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = localtime::naive_of(now);
    let (start, end) = (
        NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
    );
    let date = local.date();
    match (calendar.is_open_day(date), local.time()) {
        (true, t) if t >= start && t < end => now,
        (true, t) if t < start => localtime::instant(date.and_time(start)),
        _ => {
            let next = calendar.next_open_day_on_or_after(date + Duration::days(1));
            localtime::instant(next.and_time(start))
        }
    }
}

/// One step's view: the time and the first batch from it, every case's plan, the outbox.
struct View {
    now: DateTime<Utc>,
    first: DateTime<Utc>,
    plans: BTreeMap<String, Value>,
    outbox: BTreeMap<String, Value>,
}

impl View {
    async fn read(
        daemon: &Daemon,
        calendar: &Calendar,
        now: DateTime<Utc>,
        cases: &BTreeSet<String>,
    ) -> View {
        let mut plans = BTreeMap::new();
        for case in cases {
            plans.insert(case.clone(), daemon.plan(case).await);
        }
        let outbox = daemon
            .outbox_all()
            .await
            .into_iter()
            .map(|n| (text(&n["idempotency_key"]).to_string(), n))
            .collect();
        View {
            now,
            first: first_batch(calendar, now),
            plans,
            outbox,
        }
    }

    fn obligation<'v>(&'v self, case: &str, id: &str) -> Option<&'v Value> {
        self.plans.get(case)?["obligations"]
            .as_array()?
            .iter()
            .find(|o| text(&o["id"]) == id)
    }

    /// Every notification of every plan, with its case.
    fn notifications(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.plans.iter().flat_map(|(case, p)| {
            p["notifications"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |n| (case.as_str(), n))
        })
    }
}

fn is_ladder(n: &Value) -> bool {
    n["kind"] == "reminder" || n["kind"] == "escalation"
}

fn is_open(obligation: Option<&Value>) -> bool {
    obligation.is_some_and(|o| o["state"] == "open" || o["state"] == "overdue")
}

impl Observed {
    /// Everything wrong with what the daemon did, at this step.
    fn check(&mut self, view: &View, mailbox: &Mailbox, receiver: &Receiver) -> Vec<String> {
        let mut wrong = Vec::new();
        let now = view.now;
        let planned: HashMap<&str, (&str, &Value)> = view
            .notifications()
            .map(|(case, n)| (text(&n["idempotency_key"]), (case, n)))
            .collect();

        // What went in this step went while its plan, as at this moment, had it due.
        for (key, row) in &view.outbox {
            if row["state"] != "sent" || self.sent.contains(key) {
                continue;
            }
            self.sent.insert(key.clone());
            if time(&row["sent_at"]) != now {
                wrong.push(format!(
                    "{key} was recorded sent at {}, not now",
                    row["sent_at"]
                ));
            }
            // Not urgent: on its first attempt, inside working hours on a day the council is open.
            let urgent = row["notification"]["urgent"] == true;
            if !urgent && row["attempts"] == 1 && view.first != now {
                wrong.push(format!("{key} went outside working hours: {row}"));
            }
            match planned.get(key.as_str()) {
                None => wrong.push(format!("{key} went, but the plan does not have it: {row}")),
                Some((_, n)) if n["status"] != "due" => wrong.push(format!(
                    "{key} went, but the plan says {}: {n}",
                    n["status"]
                )),
                Some((case, n)) => {
                    let obligation = view.obligation(case, text(&n["obligation"]));
                    if is_ladder(n) && !is_open(obligation) {
                        wrong.push(format!(
                            "{key} ({} {}) went for an obligation that is {}",
                            n["rule"],
                            n["step"],
                            obligation.map_or("gone".into(), |o| o["state"].to_string())
                        ));
                    } else if self.is_late(view, case, n) && !self.goes_late(view, case, n) {
                        wrong.push(format!(
                            "{key} ({} {}) went late, but the catch-up rules record it: {n}",
                            n["rule"], n["step"]
                        ));
                    }
                }
            }
        }

        // Everything the plan has due was sent, is waiting for a retry, failed for good for a
        // reason, or is recorded instead by the catch-up rules; what is still to come waits.
        for (case, n) in view.notifications() {
            let key = text(&n["idempotency_key"]);
            let row = view.outbox.get(key);
            let state = row.map_or("missing", |r| text(&r["state"]));
            match text(&n["status"]) {
                "due" => {
                    let ok = match (state, row) {
                        ("sent", _) => true,
                        ("dead", Some(r)) => self.may_be_dead(n, r),
                        // Waiting for a retry, or (not urgent) for working hours: placed at
                        // their start (its row saying so), or due since before now.
                        ("pending", Some(r)) => {
                            let placed = time(&r["send_at"]);
                            (r["attempts"].as_i64() >= Some(1) && !r["last_error"].is_null())
                                || (n["urgent"] == false
                                    && view.first > now
                                    && (placed == view.first || placed <= now))
                        }
                        ("superseded" | "before_go_live", Some(r)) => {
                            self.may_be_recorded(view, case, n, r)
                        }
                        _ => false,
                    };
                    if !ok {
                        wrong.push(format!("{key} is due but {state}: {n} / {row:?}"));
                    }
                }
                "scheduled" if !["pending", "sent"].contains(&state) => {
                    wrong.push(format!("{key} is still to come but {state}: {n}"));
                }
                "superseded" | "acknowledged" if ["pending", "sending"].contains(&state) => {
                    wrong.push(format!("{key} is {} but {state}: {n}", n["status"]));
                }
                _ => {}
            }
        }
        for (key, row) in &view.outbox {
            let waiting = row["state"] == "pending"
                && !planned
                    .get(key.as_str())
                    .is_some_and(|(_, n)| n["status"] == "due" || n["status"] == "scheduled");
            if waiting || row["state"] == "sending" {
                wrong.push(format!("{key} is {} outside the plan: {row}", row["state"]));
            }
        }

        // What reached the receivers is what the outbox says went, each once.
        let mut mails: BTreeMap<String, usize> = BTreeMap::new();
        for m in mailbox.mail() {
            let id = m.message_id();
            let key = id
                .trim_start_matches('<')
                .split('@')
                .next()
                .unwrap_or_default();
            *mails.entry(key.to_string()).or_default() += 1;
        }
        let mut hooks: BTreeMap<String, usize> = BTreeMap::new();
        for h in receiver.hooks() {
            if !h.signature_valid {
                wrong.push(format!("webhook {} is not validly signed", h.id));
            }
            if (200..300).contains(&h.answered) {
                *hooks.entry(h.id.clone()).or_default() += 1;
            }
        }
        for (key, count) in mails.iter().chain(&hooks) {
            let state = view
                .outbox
                .get(key)
                .map_or("missing", |r| text(&r["state"]));
            if *count != 1 || state != "sent" {
                wrong.push(format!("{key} was received {count} time(s) and is {state}"));
            }
        }
        for (key, row) in &view.outbox {
            let received = if row["channel"] == "email" {
                &mails
            } else {
                &hooks
            };
            if row["state"] == "sent" && !received.contains_key(key) {
                wrong.push(format!("{key} is recorded sent but was never received"));
            }
        }
        wrong
    }

    /// A notification is dead only after a failure for good or its last attempt, with its reason.
    fn may_be_dead(&self, n: &Value, row: &Value) -> bool {
        let reason = !text(&row["last_error"]).is_empty();
        let refused = match text(&n["channel"]) {
            "email" => self.refused.contains(&text(&n["email"]).to_lowercase()),
            "webhook" => self.webhook_refused,
            // The plan itself says nobody can receive it.
            _ => true,
        };
        reason && (refused || row["attempts"].as_i64() >= Some(MAX_ATTEMPTS))
    }

    /// Whether a notification going now goes late, by the catch-up rules: it fell due before
    /// driftwatch heard of the case, or more than a day ago.
    fn is_late(&self, view: &View, case: &str, n: &Value) -> bool {
        let send_at = time(&n["send_at"]);
        self.go_live.get(case).is_some_and(|g| send_at < *g) || view.now - send_at > stale()
    }

    /// The catch-up rules (README, "Downtime and go-live") for what goes late: notices always;
    /// invitations while the meeting is ahead; of each obligation's reminders and escalations
    /// only the step that applies when it goes (the latest due by the first batch), and not a
    /// reminder whose deadline has passed by then.
    fn goes_late(&self, view: &View, case: &str, n: &Value) -> bool {
        let send_at = time(&n["send_at"]);
        let obligation = view.obligation(case, text(&n["obligation"]));
        if n["channel"] == "nobody" {
            // Nobody to tell: recorded, not raised as dead again for what is long past.
            return false;
        }
        match text(&n["kind"]) {
            "notice" => true,
            "action" => self
                .meeting(case, obligation, send_at)
                .is_none_or(|m| m > view.now),
            _ => {
                let later_step = view.notifications().any(|(c, m)| {
                    c == case
                        && is_ladder(m)
                        && (m["status"] == "due" || m["status"] == "scheduled")
                        && m["obligation"] == n["obligation"]
                        && time(&m["send_at"]) > send_at
                        && time(&m["send_at"]) <= view.first
                });
                let deadline_passed = n["kind"] == "reminder"
                    && obligation.is_some_and(|o| time(&o["deadline"]) <= view.first);
                !later_step && !deadline_passed
            }
        }
    }

    /// The catch-up rules (README, "Downtime and go-live"): a reminder or escalation of an
    /// obligation met or cancelled is never sent late. Of what is late (it fell due before
    /// driftwatch heard of the case, or more than a day ago), what [`Observed::goes_late`] does
    /// not send is recorded: `before_go_live` if it fell due before the case was first posted,
    /// otherwise `superseded`.
    fn may_be_recorded(&self, view: &View, case: &str, n: &Value, row: &Value) -> bool {
        let send_at = time(&n["send_at"]);
        let go_live = self.go_live.get(case).copied().unwrap_or(view.now);
        let before_go_live = send_at < go_live;
        let expected = if before_go_live {
            "before_go_live"
        } else {
            "superseded"
        };
        if row["state"] != expected {
            return false;
        }
        let obligation = view.obligation(case, text(&n["obligation"]));
        if is_ladder(n) && !is_open(obligation) {
            return true;
        }
        // Recorded only once it is late: had it been recorded while it was still fresh, the check
        // at that step would have caught it.
        let judged_late = before_go_live || view.now - send_at > stale();
        judged_late && !self.goes_late(view, case, n)
    }

    /// The meeting an invitation is for: its review's booking, as moved by `by`.
    fn meeting(
        &self,
        case: &str,
        obligation: Option<&Value>,
        by: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let review = obligation?["key"].as_str()?;
        self.posted
            .iter()
            .filter(|e| text(&e["case"]) == case && text(&e["data"]["review_id"]) == review)
            .filter(|e| e["type"] == "review_scheduled" || e["type"] == "review_rescheduled")
            .filter(|e| time(&e["at"]) <= by)
            .max_by_key(|e| time(&e["at"]))
            .map(|e| time(&e["data"]["meeting_at"]))
    }
}

/// The stored obligations say what the plans say.
async fn obligations_agree(daemon: &Daemon, view: &View) -> Vec<String> {
    let planned: BTreeMap<(String, String), String> = view
        .plans
        .iter()
        .flat_map(|(case, p)| {
            p["obligations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |o| {
                    (
                        (case.clone(), text(&o["id"]).to_string()),
                        text(&o["state"]).to_string(),
                    )
                })
        })
        .collect();
    let stored = daemon.all_stored_obligations().await;
    let mut wrong = Vec::new();
    for (id, state) in &planned {
        // `GET /v1/obligations` has no filter for an obligation not done before it stopped
        // mattering: it must at least not be listed as anything else.
        let expected = (state != "not_done").then_some(state);
        if stored.get(id) != expected {
            wrong.push(format!(
                "obligation {id:?} is {state} in the plan but {:?} in the store",
                stored.get(id)
            ));
        }
    }
    for id in stored.keys().filter(|id| !planned.contains_key(*id)) {
        wrong.push(format!("obligation {id:?} is stored but not in the plan"));
    }
    wrong
}

/// The daemon's plans are the pure planner's on the same events.
fn plans_match_the_cli(setup: &Setup, view: &View, posted: &[Value]) -> Vec<String> {
    let summary = |p: &Value| {
        let notes: BTreeSet<(String, String)> = p["notifications"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    text(&n["idempotency_key"]).into(),
                    text(&n["status"]).into(),
                )
            })
            .collect();
        let obligations: BTreeSet<(String, String)> = p["obligations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| (text(&o["id"]).into(), text(&o["state"]).into()))
            .collect();
        (notes, obligations)
    };
    let cli = cli_plan(setup, posted, &rfc(view.now));
    let mut wrong = Vec::new();
    for p in cli.as_array().into_iter().flatten() {
        let case = text(&p["case"]);
        match view.plans.get(case) {
            Some(api) if summary(api) == summary(p) => {}
            _ => wrong.push(format!(
                "case {case}: the API's plan differs from `driftwatch plan`"
            )),
        }
    }
    wrong
}

/// What the runs exercised, so that a generator that stopped producing a kind of trouble is
/// noticed rather than passing quietly.
#[derive(Debug, Default)]
struct Coverage {
    steps: usize,
    /// Events posted ahead of their time (future-dated), and more than a day after it.
    ahead: usize,
    late: usize,
    /// Clock moves of a week or more, and restarts.
    weeks: usize,
    restarts: usize,
    /// Outbox rows at the end: sent (of them, after a failed attempt), recorded instead of
    /// sent, dead.
    sent: usize,
    retried: usize,
    recorded: usize,
    dead: usize,
}

impl Coverage {
    fn add(&mut self, scenario: &Scenario, outbox: &[Value]) {
        let mut now = scenario.start;
        for step in &scenario.steps {
            self.steps += 1;
            match step {
                Step::Post(events) => {
                    for e in events {
                        let at = time(&e["at"]);
                        self.ahead += usize::from(at > now);
                        self.late += usize::from(now - at > Duration::days(1));
                    }
                }
                Step::Clock(t) => {
                    self.weeks += usize::from(*t - now >= Duration::weeks(1));
                    now = *t;
                }
                Step::Restart(t) => {
                    self.restarts += 1;
                    now = *t;
                }
                Step::Refuse { .. } | Step::Answer(_) => {}
            }
        }
        for row in outbox {
            match text(&row["state"]) {
                "sent" => {
                    self.sent += 1;
                    self.retried += usize::from(row["attempts"].as_i64() > Some(1));
                }
                "superseded" | "before_go_live" => self.recorded += 1,
                "dead" => self.dead += 1,
                _ => {}
            }
        }
    }
}

/// Runs one scenario against a fresh daemon, checking after every step; the outbox at the end.
async fn run(scenario: &Scenario) -> Vec<Value> {
    let mailbox = Mailbox::start();
    let receiver = Receiver::start().await;
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    setup.webhook_url = Some(receiver.url.clone());
    setup.extra_rules = Some(format!("{WEBHOOK_RULE}{CHASED_RULE}"));
    let mut daemon = Daemon::start(&setup, &rfc(scenario.start));
    let calendar = match Config::load(&setup.write()) {
        Ok(config) => config.calendar,
        Err(d) => panic!("the test config does not load:\n{d}"),
    };
    let mut now = scenario.start;
    let mut seen = Observed::default();
    let mut cases = BTreeSet::new();
    let mut done: Vec<String> = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        done.push(step.describe());
        match step {
            Step::Post(events) => {
                for e in events {
                    let case = text(&e["case"]).to_string();
                    seen.go_live.entry(case.clone()).or_insert(now);
                    cases.insert(case);
                }
                let (status, body) = daemon.post_events(&Value::Array(events.clone())).await;
                assert_eq!(status, 202, "seed {}: {body}", scenario.seed);
                seen.posted.extend(events.iter().cloned());
            }
            Step::Clock(t) => now = *t,
            Step::Restart(t) => {
                assert!(daemon.terminate().success(), "SIGTERM exits 0");
                now = *t;
                daemon = Daemon::start(&setup, &rfc(now));
            }
            Step::Refuse {
                address,
                code,
                times,
            } => {
                mailbox.refuse_address(address, *code, *times);
                if *code == 550 {
                    seen.refused.insert(address.clone());
                }
                continue;
            }
            Step::Answer(status) => {
                receiver.script(&[*status]);
                seen.webhook_refused |= *status == 404;
                continue;
            }
        }
        // Moving the clock (to where it is, after a post) answers once everything due is done.
        daemon.clock(&rfc(now)).await;
        let view = View::read(&daemon, &calendar, now, &cases).await;
        let mut wrong = seen.check(&view, &mailbox, &receiver);
        wrong.extend(obligations_agree(&daemon, &view).await);
        if i + 1 == scenario.steps.len() {
            wrong.extend(plans_match_the_cli(&setup, &view, &seen.posted));
        }
        if !wrong.is_empty() {
            let recent = done[done.len().saturating_sub(12)..].join("\n  ");
            panic!(
                "seed {} (replay: DRIFTWATCH_MODEL_SEED={} DRIFTWATCH_MODEL_RUNS=1), step {} of {} at {}:\n  {}\nlast steps:\n  {recent}",
                scenario.seed,
                scenario.seed,
                i + 1,
                scenario.steps.len(),
                rfc(now),
                wrong.join("\n  "),
            );
        }
    }
    let outbox = daemon.outbox_all().await;
    assert!(daemon.terminate().success());
    outbox
}

#[tokio::test]
async fn what_is_sent_agrees_with_the_plan_at_every_step() {
    let first = env_number("DRIFTWATCH_MODEL_SEED", 20_261_202);
    let runs = env_number("DRIFTWATCH_MODEL_RUNS", 8);
    let mut coverage = Coverage::default();
    for seed in first..first + runs {
        let scenario = scenario(seed);
        let outbox = run(&scenario).await;
        coverage.add(&scenario, &outbox);
    }
    eprintln!("{runs} scenario(s), every step agreed with the plan: {coverage:?}");
    if runs >= 8 {
        let c = &coverage;
        for (what, n) in [
            ("future-dated events", c.ahead),
            ("events posted late", c.late),
            ("clock moves of weeks", c.weeks),
            ("restarts", c.restarts),
            ("sent", c.sent),
            ("sent after a failure", c.retried),
            ("recorded instead of sent", c.recorded),
            ("dead", c.dead),
        ] {
            assert!(n > 0, "the runs had no {what}: {coverage:?}");
        }
    }
}
