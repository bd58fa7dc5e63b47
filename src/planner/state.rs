//! What the planner knows about a case at a moment: its contacts by role, facts taken from events
//! (a date of birth, the legal basis) and how many events of each type it has seen.

use crate::event::{Contact, Event};
use crate::rules::CaseModel;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseState {
    pub reference: String,
    pub contacts: BTreeMap<String, Contact>,
    pub facts: BTreeMap<String, Value>,
    /// Events seen so far by type, this one included (`case.seen.review_held == 1`).
    pub seen: BTreeMap<String, u32>,
}

impl CaseState {
    pub fn new(reference: &str) -> Self {
        CaseState {
            reference: reference.to_string(),
            ..Default::default()
        }
    }

    /// Applies one event's case updates.
    pub fn apply(&mut self, model: &CaseModel, event: &Event) {
        *self.seen.entry(event.kind.clone()).or_default() += 1;
        for update in model.updates.iter().filter(|u| u.on == event.kind) {
            for role in &update.clear {
                self.contacts.remove(role);
            }
            for (role, path) in &update.contacts {
                if let Some(contact) = path
                    .resolve(event, None)
                    .and_then(|v| serde_json::from_value::<ContactIn>(v).ok())
                {
                    self.contacts.insert(role.clone(), contact.into());
                }
            }
            for (fact, path) in &update.facts {
                if let Some(value) = path.resolve(event, None) {
                    self.facts.insert(fact.clone(), value);
                }
            }
        }
    }
}

/// A contact as carried in event data, where participants also carry a `role`.
#[derive(serde::Deserialize)]
pub(super) struct ContactIn {
    #[serde(default)]
    name: Option<String>,
    email: String,
    #[serde(default)]
    pub(super) role: Option<String>,
}

impl From<ContactIn> for Contact {
    fn from(c: ContactIn) -> Contact {
        Contact {
            name: c.name,
            email: c.email,
        }
    }
}

/// The states a case went through, so a notification is addressed as the case stood when it went.
#[derive(Debug, Default)]
pub struct History {
    snapshots: Vec<(chrono::DateTime<chrono::Utc>, CaseState)>,
}

impl History {
    pub fn record(&mut self, at: chrono::DateTime<chrono::Utc>, state: &CaseState) {
        // A derived event may carry a time before the event that revealed it; keep the order.
        let at = self.snapshots.last().map_or(at, |(last, _)| at.max(*last));
        self.snapshots.push((at, state.clone()));
    }

    /// The state after every event up to and including `at`.
    pub fn at(&self, at: chrono::DateTime<chrono::Utc>) -> Option<&CaseState> {
        let idx = self.snapshots.partition_point(|(t, _)| *t <= at);
        idx.checked_sub(1).map(|i| &self.snapshots[i].1)
    }
}
