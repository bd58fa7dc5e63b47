//! What goes into the store and comes out of it, in the domain's words.

use super::{StoreError, json, time};
use crate::planner::Notification;
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
    CaseWrite, InView, Lane, ObligationWrite, OutboxEntry, OutboxState, OutboxWrite, Person,
    PlannedState, StoredObligation,
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

/// An outbox row as the API shows it, from the store's columns.
pub(super) fn outbox_entry(r: &AnyRow) -> Result<OutboxEntry, StoreError> {
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
