//! What the planner knows about a case at a moment: its contacts by role, facts taken from events
//! (a date of birth, the legal basis), how many events of each type it has seen in the current
//! period of care, whether it is in care, and its meetings.

use crate::event::{Contact, Event};
use crate::rules::{CaseModel, MeetingModel};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseState {
    pub reference: String,
    pub contacts: BTreeMap<String, Contact>,
    pub facts: BTreeMap<String, Value>,
    /// Events seen so far in the current period of care by type, this one included
    /// (`case.seen.review_held == 1`).
    pub seen: BTreeMap<String, u32>,
    /// Which period of care this is: 1 for the first, 0 before any began.
    pub period: u32,
    /// How many meetings (reviews) have been held in the current period of care, each counted
    /// once however often its holding is recorded (`case.held == 1` on the first review).
    pub held: u32,
    /// Whether this event records the holding of a meeting already held (a correction).
    pub held_again: bool,
    /// The case roles whose contact this event changed (`"iro" in case.changed`): a new person,
    /// not the same one recorded again.
    pub changed: Vec<String>,
    /// Whether the child has ceased to be looked after (until a new period begins).
    pub closed: bool,
    /// Meetings by id, as booked, moved, cancelled or held.
    #[serde(skip)]
    pub meetings: BTreeMap<String, Meeting>,
    /// The meetings held in the current period of care.
    #[serde(skip)]
    held_in_period: std::collections::BTreeSet<String>,
}

/// One meeting (a review), as the events about it left it.
#[derive(Debug, Clone, PartialEq)]
pub struct Meeting {
    pub at: DateTime<Utc>,
    /// The booking's data, overlaid by the data of the events that moved it.
    pub data: Map<String, Value>,
    /// The events `data` was laid together from, in order.
    pub from: Vec<String>,
    pub status: MeetingStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingStatus {
    Booked,
    Cancelled,
    Held,
}

impl CaseState {
    pub fn new(reference: &str) -> Self {
        CaseState {
            reference: reference.to_string(),
            ..Default::default()
        }
    }

    /// Begins a new period of care: reviews and every other event are counted afresh.
    pub fn begin_period(&mut self) {
        self.period += 1;
        self.closed = false;
        self.seen.clear();
        self.held_in_period.clear();
        self.held = 0;
    }

    /// Ends the period of care: meetings still booked will not take place.
    pub fn end_period(&mut self) {
        self.closed = true;
        for m in self.meetings.values_mut() {
            if m.status == MeetingStatus::Booked {
                m.status = MeetingStatus::Cancelled;
            }
        }
    }

    /// Applies one event's case updates and what it does to a meeting.
    pub fn apply(&mut self, model: &CaseModel, event: &Event) {
        *self.seen.entry(event.kind.clone()).or_default() += 1;
        self.changed.clear();
        self.held_again = false;
        for update in model.updates.iter().filter(|u| u.on == event.kind) {
            for role in &update.clear {
                if self.contacts.remove(role).is_some() {
                    self.changed.push(role.clone());
                }
            }
            for (role, path) in &update.contacts {
                if let Some(contact) = path
                    .resolve(event, None)
                    .and_then(|v| serde_json::from_value::<ContactIn>(v).ok())
                {
                    let contact: Contact = contact.into();
                    let same = self
                        .contacts
                        .get(role)
                        .is_some_and(|c| c.email.eq_ignore_ascii_case(&contact.email));
                    if !same {
                        self.changed.push(role.clone());
                    }
                    self.contacts.insert(role.clone(), contact);
                }
            }
            for (fact, path) in &update.facts {
                if let Some(value) = path.resolve(event, None) {
                    self.facts.insert(fact.clone(), value);
                }
            }
        }
        for (meeting, kind) in model.meeting_events() {
            if kind == event.kind {
                self.apply_meeting(meeting, event);
            }
        }
    }

    fn apply_meeting(&mut self, model: &MeetingModel, event: &Event) {
        let Some(key) = model.key.resolve(event, None).and_then(|v| key_text(&v)) else {
            return;
        };
        let at = model
            .at
            .resolve(event, None)
            .and_then(|v| {
                v.as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            })
            .map(|t| t.with_timezone(&Utc));
        if event.kind == model.booked_by || model.moved_by.contains(&event.kind) {
            let Some(at) = at else { return };
            let meeting = self.meetings.entry(key).or_insert_with(|| Meeting {
                at,
                data: Map::new(),
                from: Vec::new(),
                status: MeetingStatus::Booked,
            });
            meeting.at = at;
            meeting.status = MeetingStatus::Booked;
            meeting.data.extend(event.data.clone());
            meeting.from.push(event.id.clone());
        } else if model.held_by.contains(&event.kind) {
            // A meeting held counts once in the period, booked through driftwatch or not.
            let meeting = self.meetings.entry(key.clone()).or_insert_with(|| Meeting {
                at: event.at,
                data: event.data.clone(),
                from: vec![event.id.clone()],
                status: MeetingStatus::Held,
            });
            meeting.status = MeetingStatus::Held;
            if self.held_in_period.insert(key) {
                self.held += 1;
            } else {
                self.held_again = true;
            }
        } else if let Some(meeting) = self.meetings.get_mut(&key) {
            meeting.status = MeetingStatus::Cancelled;
        }
    }

    /// The meetings booked and still ahead at `at`, soonest first, each as its data.
    pub fn meetings_ahead(&self, at: DateTime<Utc>) -> Vec<&Meeting> {
        let mut ahead: Vec<&Meeting> = self
            .meetings
            .values()
            .filter(|m| m.status == MeetingStatus::Booked && m.at > at)
            .collect();
        ahead.sort_by_key(|m| m.at);
        ahead
    }
}

/// A key or meeting id as text: strings as they are, numbers written out.
pub fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
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
    snapshots: Vec<(DateTime<Utc>, CaseState)>,
}

impl History {
    pub fn record(&mut self, at: DateTime<Utc>, state: &CaseState) {
        // A derived event may carry a time before the event that revealed it; keep the order.
        let at = self.snapshots.last().map_or(at, |(last, _)| at.max(*last));
        self.snapshots.push((at, state.clone()));
    }

    /// The state after every event up to and including `at`.
    pub fn at(&self, at: DateTime<Utc>) -> Option<&CaseState> {
        let idx = self.snapshots.partition_point(|(t, _)| *t <= at);
        idx.checked_sub(1).map(|i| &self.snapshots[i].1)
    }

    /// When someone new took case role `role` (the first allocation included), and their
    /// address, in time order.
    pub fn joins(&self, role: &str) -> Vec<(DateTime<Utc>, String)> {
        let mut out = Vec::new();
        let mut current: Option<String> = None;
        for (t, state) in &self.snapshots {
            let now = state.contacts.get(role).map(|c| c.email.to_lowercase());
            if now.is_some() && now != current {
                out.push((*t, now.clone().unwrap_or_default()));
            }
            current = now;
        }
        out
    }
}
