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
    pub problems: Vec<Problem>,
    /// Where the case stands now, for checks across cases.
    pub status: CaseStatus,
}

/// Something the planner could not do as the rules say, for an admin: never an event's values,
/// only ids, rule names, roles and paths. Written (in the plan JSON, the table and the logs) as
/// its message, an error's starting `error: `.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The message as written, `error: ` included for an error: problems sort and compare by it.
    text: String,
    pub severity: Severity,
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Planned anyway, differently (sent to a fallback, a condition read as false).
    Warning,
    /// A message nobody could be found to receive: recorded as undeliverable, and someone must
    /// allocate a contact or a fallback.
    Error,
}

impl Problem {
    pub fn warning(message: impl Into<String>) -> Problem {
        Problem {
            text: message.into(),
            severity: Severity::Warning,
        }
    }

    pub fn error(message: impl std::fmt::Display) -> Problem {
        Problem {
            text: format!("error: {message}"),
            severity: Severity::Error,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The message as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A message written `error: ...` is an error, any other a warning.
impl From<String> for Problem {
    fn from(text: String) -> Problem {
        let severity = if text.starts_with("error: ") {
            Severity::Error
        } else {
            Severity::Warning
        };
        Problem { text, severity }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A problem reads as its message (`problem.contains("no `iro` contact")`).
impl std::ops::Deref for Problem {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Where a case stands at `now`: whether the child is looked after, who holds each case role,
/// and the facts that link it to other cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseStatus {
    /// A period of care has begun and not ended.
    pub looked_after: bool,
    /// Which period of care (1 for the first; 0 before any began).
    pub period: u32,
    /// The IRO allocated now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iro: Option<crate::event::Contact>,
    /// The sibling group the child belongs to (the `sibling_group` fact), if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling_group: Option<String>,
    /// The case of a parent who is also looked after (the `parent_case` fact), if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_case: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObligationState {
    Open,
    Met,
    MetLate,
    Overdue,
    Cancelled,
    /// Not done by the time it stopped mattering: the meeting it prepared for was held first.
    NotDone,
}

impl ObligationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationState::Open => "open",
            ObligationState::Met => "met",
            ObligationState::MetLate => "met late",
            ObligationState::Overdue => "overdue",
            ObligationState::Cancelled => "cancelled",
            ObligationState::NotDone => "not done",
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

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Reminder,
    Escalation,
    /// Sent at the deadline by the rule itself (the invitations).
    Action,
    /// Sent at once on an event (a significant event).
    Notice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Nobody could be found to tell: no contact for any role named, no fallback, an empty
    /// list. The daemon records it as dead with this reason, for an admin to see.
    Nobody {
        /// What was tried, as rules write it (`iro`, `list:data.participants`).
        tried: Vec<String>,
    },
}

impl Target {
    /// What identifies the recipient in an idempotency key.
    pub fn identity(&self) -> String {
        match self {
            Target::Email { email, .. } => email.to_lowercase(),
            Target::Webhook { webhook } => format!("webhook:{webhook}"),
            Target::Nobody { .. } => "nobody".to_string(),
        }
    }

    /// `email` or `webhook`: the channel, as the outbox and the metrics name it (`none` for a
    /// message nobody could be found to receive).
    pub fn channel(&self) -> &'static str {
        match self {
            Target::Email { .. } => "email",
            Target::Webhook { .. } => "webhook",
            Target::Nobody { .. } => "none",
        }
    }

    /// The role or webhook, for tables and logs (never the address).
    pub fn label(&self) -> String {
        match self {
            Target::Email { role, .. } => role.clone(),
            Target::Webhook { webhook } => format!("webhook:{webhook}"),
            Target::Nobody { tried } => format!("nobody ({})", tried.join(", ")),
        }
    }

    /// Why a message to nobody cannot go, for the dead row an admin reads.
    pub fn nobody_reason(&self) -> Option<String> {
        match self {
            Target::Nobody { tried } => Some(format!(
                "nobody to send to: the case has no contact for {} and no fallback is configured",
                tried.join(", ")
            )),
            _ => None,
        }
    }
}

/// Why a message goes after its usual time, so it can say so truthfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LateReason {
    /// The obligation opened or its deadline moved after the step's usual time (a review
    /// booked at short notice).
    OpenedLate,
    /// The recipient took their role on the case after the step first went.
    JoinedLate,
    /// Its time came before driftwatch started following the case (going live).
    WentLive,
    /// driftwatch could not send it at its time (it was stopped) and is catching up.
    CaughtUp,
}

impl LateReason {
    /// The reason in words, for the message (`notification.why_late`).
    pub fn words(self) -> &'static str {
        match self {
            LateReason::OpenedLate => {
                "the deadline was set or moved after the time this would usually have been sent"
            }
            LateReason::JoinedLate => {
                "you took on this case after it was first sent to whoever held your role"
            }
            LateReason::WentLive => {
                "driftwatch started following this case after the time this would usually have been sent"
            }
            LateReason::CaughtUp => {
                "driftwatch could not send it at its usual time and is catching up now"
            }
        }
    }
}

/// What a message replaces: the earlier deadline, and the earlier meeting time when the deadline
/// was counted from one (an invitation for a review that moved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub due: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across re-planning: the daemon's outbox key, the email Message-ID and webhook-id.
    pub idempotency_key: String,
    pub send_at: DateTime<Utc>,
    pub status: NotificationStatus,
    /// Sent after its nominal time (see `late_reason`).
    pub late: bool,
    /// Why it is late, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_reason: Option<LateReason>,
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
    /// Sent to a fallback because the case had no contact for this role (`iro`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instead_of: Option<String>,
    /// For a message that replaces an earlier one (a new invitation for a moved meeting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Replaced>,
    /// The data the message is about: the event's, overlaid by events that moved the deadline
    /// and laid over the meeting's. Kept beside the plan, not in its JSON.
    #[serde(skip)]
    pub data: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The stored events `data` was laid together from, in order (the case's contacts aside):
    /// the store keeps a reference to them rather than a copy.
    #[serde(skip)]
    pub data_from: Vec<String>,
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

/// Where the planner leaves the case's contacts (as the case stood when the message goes) in a
/// notification's data; templates see them as `case.contacts`, never under `data`.
pub const CONTACTS_KEY: &str = "$case_contacts";
