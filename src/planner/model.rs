//! The planner's output: the stable JSON shape of `driftwatch plan --format json`, which the
//! daemon's API returns too. Field names and meanings are documented in `docs/plan-json.md`;
//! change them only with a version bump there.

use crate::event::Event;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Everything one case's events produce, as seen at `now`.
#[derive(Debug, Clone, Serialize)]
pub struct CasePlan {
    pub case: String,
    pub now: DateTime<Utc>,
    pub obligations: Vec<ObligationPlan>,
    pub notifications: Vec<Notification>,
    /// Events driftwatch will derive later if nothing intervenes (decisions at the end of the
    /// recommendation window).
    pub upcoming_events: Vec<UpcomingEvent>,
    /// Events driftwatch derived up to `now`.
    pub derived_events: Vec<Event>,
    /// What could not be planned (a missing contact, a condition that failed). Never holds event
    /// data values.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationState {
    Open,
    Met,
    MetLate,
    Overdue,
    Cancelled,
}

impl ObligationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationState::Open => "open",
            ObligationState::Met => "met",
            ObligationState::MetLate => "met late",
            ObligationState::Overdue => "overdue",
            ObligationState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ObligationPlan {
    /// `RULE/KEY/N`: unique within the case; KEY is `-` for one-per-case obligations.
    pub id: String,
    pub rule: String,
    pub title: String,
    pub source: String,
    pub key: Option<String>,
    /// The local date the obligation is due (Europe/London).
    pub due: NaiveDate,
    /// The local time it is due, for deadlines with a time of day; otherwise it is due by the end
    /// of `due`.
    pub due_time: Option<String>,
    /// The instant it becomes overdue.
    pub deadline: DateTime<Utc>,
    pub state: ObligationState,
    /// Working days past the due date, for overdue and late-met obligations.
    pub working_days_late: Option<i32>,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    pub closed_at: Option<DateTime<Utc>>,
    /// The event that met or cancelled it, or `driftwatch` when its own deadline action did.
    pub closed_by: Option<String>,
    /// Earlier deadlines, oldest first, when events moved it.
    pub replanned: Vec<Replanned>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Replanned {
    pub at: DateTime<Utc>,
    pub by: String,
    pub due: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Reminder,
    Escalation,
    /// Sent at the deadline by the rule itself (the invitations).
    Action,
    /// Sent at once on an event (a significant event).
    Notice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Its time is after `now`.
    Scheduled,
    /// Its time has come (the daemon sends it unless its outbox says it was sent).
    Due,
    /// Passed over: a later step of the same ladder went instead, or its deadline had passed.
    Superseded,
    /// Not sent: its recipient acknowledged (or snoozed) an earlier message of the same step.
    Acknowledged,
}

impl NotificationStatus {
    /// The name the JSON plan, the plan table and the dashboard use.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Scheduled => "scheduled",
            NotificationStatus::Due => "due",
            NotificationStatus::Superseded => "superseded",
            NotificationStatus::Acknowledged => "acknowledged",
        }
    }
}

/// Who a notification goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Target {
    Email {
        /// The role it was addressed to (`iro`, `iro_manager`), or the list it came from.
        role: String,
        name: Option<String>,
        email: String,
    },
    Webhook {
        webhook: String,
    },
}

impl Target {
    /// What identifies the recipient in an idempotency key.
    pub fn identity(&self) -> String {
        match self {
            Target::Email { email, .. } => email.to_lowercase(),
            Target::Webhook { webhook } => format!("webhook:{webhook}"),
        }
    }

    /// `email` or `webhook`: the channel, as the outbox and the metrics name it.
    pub fn channel(&self) -> &'static str {
        match self {
            Target::Email { .. } => "email",
            Target::Webhook { .. } => "webhook",
        }
    }

    /// The role or webhook, for tables and logs (never the address).
    pub fn label(&self) -> String {
        match self {
            Target::Email { role, .. } => role.clone(),
            Target::Webhook { webhook } => format!("webhook:{webhook}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across re-planning: the daemon's outbox key, the email Message-ID and webhook-id.
    pub idempotency_key: String,
    pub send_at: DateTime<Utc>,
    pub status: NotificationStatus,
    /// Sent after its nominal time because the obligation opened or moved too late for it.
    pub late: bool,
    pub kind: NotificationKind,
    /// The step's id (`reminder -2 working days`, `at deadline`, `notice`).
    pub step: String,
    pub title: Option<String>,
    pub rule: String,
    pub obligation: Option<String>,
    pub due: Option<NaiveDate>,
    #[serde(flatten)]
    pub recipient: Target,
    pub template: String,
    pub urgent: bool,
    /// The event that opened the obligation or caused the notice.
    pub event: String,
}

/// A derived event that will be recorded at `at` if the obligation is still open then.
#[derive(Debug, Clone, Serialize)]
pub struct UpcomingEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: DateTime<Utc>,
    pub rule: String,
    pub obligation: String,
}
