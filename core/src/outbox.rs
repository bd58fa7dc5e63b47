//! What the store keeps of a case's plan, in the domain's words: the obligations, who is told of
//! them, and the outbox rows with the state each starts in and the lane it waits in. Pure data:
//! the store writes and reads it; `case_write` makes it from a plan.

use crate::planner::{Notification, Target};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

/// The key of an outbox row's `data` that names the events its data comes from.
pub const DATA_FROM: &str = "$from";

/// A case's plan as the store keeps it.
#[derive(Debug, Clone)]
pub struct CaseWrite {
    pub case: String,
    pub planned_at: DateTime<Utc>,
    /// When the plan changes next without a new event (a future-dated or derived event falls
    /// due, a deadline action happens).
    pub replan_at: Option<DateTime<Utc>>,
    /// When such a change may first touch any notification waiting to go: none of the case's
    /// notifications is claimed from then until it is planned again. Never before `replan_at`.
    /// (A deadline action touches only its own obligation's ladder: see
    /// [`OutboxWrite::hold_at`].)
    pub hold_at: Option<DateTime<Utc>>,
    pub obligations: Vec<ObligationWrite>,
    /// (obligation id, person told about it).
    pub people: Vec<(String, Person)>,
    pub outbox: Vec<OutboxWrite>,
    /// Pending outbox keys no longer in the plan: cancelled.
    pub retire: Vec<String>,
    /// Where the case stands (the planner's `CaseStatus` as JSON), for checks across cases.
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct ObligationWrite {
    pub id: String,
    pub rule: String,
    /// `open`, `met`, `met_late`, `cancelled` or `not_done`.
    pub state: &'static str,
    pub deadline: DateTime<Utc>,
    /// The planner's obligation as JSON.
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct OutboxWrite {
    pub key: String,
    pub rule: String,
    pub channel: &'static str,
    pub lane: Lane,
    pub send_at: DateTime<Utc>,
    pub state: PlannedState,
    /// For a reminder or escalation, when its obligation's own deadline action may meet it:
    /// not claimed from then until its case is planned again.
    pub hold_at: Option<DateTime<Utc>>,
    /// The planned notification; the store keeps it in its own record format.
    pub notification: Notification,
    /// The data of the event behind it, as JSON; empty when that event is stored (the claim
    /// reads its data from the event log, so a long list is not copied into every row).
    pub data: String,
}

/// The queue a notification waits in. Each lane is claimed and delivered apart from the others,
/// so urgent notices never wait behind bulk traffic (a wave of reminders at 09:00), and a channel
/// that hangs (a mail server that stops answering) never holds up the other channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    UrgentEmail,
    UrgentWebhook,
    Email,
    Webhook,
}

impl Lane {
    /// Every lane, the urgent ones first.
    pub const ALL: [Lane; 4] = [
        Lane::UrgentEmail,
        Lane::UrgentWebhook,
        Lane::Email,
        Lane::Webhook,
    ];

    /// A message nobody can be found to receive waits with email (it fails at once, and is
    /// kept as dead with its reason).
    pub fn of(n: &Notification) -> Lane {
        match (&n.recipient, n.urgent) {
            (Target::Email { .. } | Target::Nobody { .. }, true) => Lane::UrgentEmail,
            (Target::Webhook { .. }, true) => Lane::UrgentWebhook,
            (Target::Email { .. } | Target::Nobody { .. }, false) => Lane::Email,
            (Target::Webhook { .. }, false) => Lane::Webhook,
        }
    }

    /// Whether it carries urgent notices, which go at any hour; the others go inside working
    /// hours on a day the council is open.
    pub fn is_urgent(self) -> bool {
        matches!(self, Lane::UrgentEmail | Lane::UrgentWebhook)
    }

    /// Its name in the outbox's `lane` column and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::UrgentEmail => "email:urgent",
            Lane::UrgentWebhook => "webhook:urgent",
            Lane::Email => "email",
            Lane::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedState {
    Pending,
    /// A later step of the same ladder went instead, or its obligation was met first;
    /// recorded, never sent.
    Superseded,
    /// Its time passed before driftwatch knew the case (a go-live import); recorded, never sent.
    BeforeGoLive,
    /// Its recipient takes it in the daily digest only; recorded, not sent by itself.
    InDigest,
    /// Its recipient acknowledged or snoozed an earlier message of the same step; recorded,
    /// not sent.
    Acknowledged,
}

impl PlannedState {
    pub fn as_str(self) -> &'static str {
        OutboxState::from(self).as_str()
    }
}

impl From<PlannedState> for OutboxState {
    fn from(p: PlannedState) -> OutboxState {
        match p {
            PlannedState::Pending => OutboxState::Pending,
            PlannedState::Superseded => OutboxState::Superseded,
            PlannedState::BeforeGoLive => OutboxState::BeforeGoLive,
            PlannedState::InDigest => OutboxState::InDigest,
            PlannedState::Acknowledged => OutboxState::Acknowledged,
        }
    }
}

/// Where an outbox row stands: the states of ARCHITECTURE.md's outbox state machine, written
/// in the `state` column and shown by `GET /v1/notifications` as these snake_case words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its time (or its retry).
    Pending,
    /// Claimed by a daemon, being delivered.
    Sending,
    Sent,
    /// Failed for good, or could not be built: with its reason, for an admin to retry.
    Dead,
    /// Its case's plan no longer has it.
    Cancelled,
    Superseded,
    BeforeGoLive,
    InDigest,
    Acknowledged,
}

impl OutboxState {
    pub const ALL: [OutboxState; 9] = [
        OutboxState::Pending,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Dead,
        OutboxState::Cancelled,
        OutboxState::Superseded,
        OutboxState::BeforeGoLive,
        OutboxState::InDigest,
        OutboxState::Acknowledged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
            OutboxState::Cancelled => "cancelled",
            OutboxState::Superseded => "superseded",
            OutboxState::BeforeGoLive => "before_go_live",
            OutboxState::InDigest => "in_digest",
            OutboxState::Acknowledged => "acknowledged",
        }
    }

    /// The state a word names, if any.
    pub fn parse(word: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub role: String,
    pub email: String,
}

/// An outstanding obligation as the digest and the dashboard show it: overdue, or due by a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InView {
    pub due: NaiveDate,
    pub overdue: bool,
}

#[derive(Debug, Clone)]
pub struct StoredObligation {
    pub case: String,
    pub deadline: DateTime<Utc>,
    /// Not met or cancelled when last planned.
    pub open: bool,
    /// The planner's obligation as JSON.
    pub body: Value,
    pub people: Vec<Person>,
}

impl StoredObligation {
    /// A text field of the planner's obligation (`rule`, `title`, `source`), or empty.
    pub fn text(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_default().to_string()
    }

    /// Whether it is open and overdue at `now` or due by `until`, and its due date. Pure.
    pub fn in_view(&self, now: DateTime<Utc>, until: NaiveDate) -> Option<InView> {
        let due = self.text("due").parse::<NaiveDate>().ok()?;
        let overdue = self.deadline <= now;
        (self.open && (overdue || due <= until)).then_some(InView { due, overdue })
    }
}

/// One row of the outbox, for the API: what went, what is waiting, what died and why.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub idempotency_key: String,
    pub case: String,
    pub rule: String,
    pub channel: String,
    pub send_at: DateTime<Utc>,
    pub state: OutboxState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub notification: Value,
}
