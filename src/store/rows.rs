//! What goes into the store and comes out of it, in the domain's words.

use super::{StoreError, json, time};
use crate::planner::Notification;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A notification claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub key: String,
    /// The daemon holding the claim.
    pub owner: String,
    pub case: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub notification: Notification,
    /// The data of the event behind it (with what moved its obligation added), for its
    /// template.
    pub data: Map<String, Value>,
}

pub use driftwatch_core::outbox::{
    CaseWrite, Lane, ObligationWrite, OutboxState, OutboxWrite, Person, PlannedState,
};

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub state: Option<OutboxState>,
    pub case: Option<String>,
    pub key: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationQueryState {
    /// Open, overdue or not.
    #[default]
    Outstanding,
    /// Open and not yet overdue.
    Open,
    Overdue,
    Met,
    MetLate,
    Cancelled,
}

#[derive(Debug, Clone, Default)]
pub struct ObligationFilter {
    pub state: ObligationQueryState,
    pub role: Option<String>,
    pub email: Option<String>,
    pub rule: Option<String>,
    pub case: Option<String>,
    pub limit: i64,
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

impl OutboxEntry {
    pub(super) fn from_row(r: &AnyRow) -> Result<OutboxEntry, StoreError> {
        Ok(OutboxEntry {
            idempotency_key: r.try_get("key")?,
            case: r.try_get("case_ref")?,
            rule: r.try_get("rule")?,
            channel: r.try_get("channel")?,
            send_at: time(r.try_get("send_at")?),
            state: {
                let word: String = r.try_get("state")?;
                OutboxState::parse(&word).ok_or(StoreError::UnknownState(word))?
            },
            attempts: r.try_get("attempts")?,
            last_error: r.try_get("last_error")?,
            sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(time),
            // As the planner writes it (docs/plan-json.md), whatever record version it is kept in.
            notification: {
                let text: String = r.try_get("notification")?;
                match super::record::decode(&text) {
                    Ok(n) => serde_json::to_value(n).unwrap_or(Value::Null),
                    Err(_) => json("notification", &text)?,
                }
            },
        })
    }
}
