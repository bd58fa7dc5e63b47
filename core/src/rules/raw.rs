//! The rules files exactly as written, before any checking: serde shapes for serde_yaml.
//!
//! serde_yaml reports shape errors (unknown field, wrong type) with their line and column; the
//! checks that need the whole rule set are in `load`. Keep YAML parsing behind this module and
//! `locate` so a change of YAML crate stays local.

use crate::calendar::Offset;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub events: BTreeMap<String, RawEventSpec>,
    #[serde(default)]
    pub case: Option<RawCase>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEventSpec {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, Short<RawField>>,
}

/// A field written out in full; the short form is just the type name (`meeting_at: datetime`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub one_of: Option<Vec<String>>,
    #[serde(default)]
    pub items: Option<BTreeMap<String, Short<RawField>>>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    /// Events that begin a period of care (the child becomes looked after).
    #[serde(default)]
    pub opened_by: Vec<String>,
    /// Events that end a period of care: every open obligation is cancelled.
    #[serde(default)]
    pub closed_by: Vec<String>,
    #[serde(default)]
    pub updates: Vec<RawCaseUpdate>,
    /// The meetings a case has (reviews): which events book, move, cancel and hold them.
    #[serde(default)]
    pub meetings: Vec<RawMeeting>,
}

/// How a kind of meeting is tracked: `booked_by` books one, identified by `key`, at `at`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMeeting {
    pub booked_by: String,
    /// A path to the meeting's id, present in every event named here (`data.review_id`).
    pub key: String,
    /// A path to the meeting's date and time, in `booked_by` and `moved_by` events.
    pub at: String,
    #[serde(default)]
    pub moved_by: Vec<String>,
    #[serde(default)]
    pub cancelled_by: Vec<String>,
    #[serde(default)]
    pub held_by: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCaseUpdate {
    pub on: String,
    #[serde(default)]
    pub contacts: BTreeMap<String, String>,
    #[serde(default)]
    pub facts: BTreeMap<String, String>,
    #[serde(default)]
    pub clear: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    pub title: String,
    pub source: String,
    #[serde(default)]
    pub description: Option<String>,
    pub on: String,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub for_each: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    /// A path to the id of the meeting the rule is about: its data is laid under the event's.
    #[serde(default)]
    pub meeting: Option<String>,
    #[serde(default)]
    pub due: Option<RawDue>,
    #[serde(default)]
    pub met_by: Vec<Short<RawMatcher>>,
    #[serde(default)]
    pub cancelled_by: Vec<Short<RawMatcher>>,
    #[serde(default)]
    pub replanned_by: Vec<RawReplan>,
    /// Events after which the obligation can no longer be met (the meeting it prepares for was
    /// held): if still open then, it is recorded as not done.
    #[serde(default)]
    pub ended_by: Vec<Short<RawMatcher>>,
    /// Events that move the escalation ladder straight to a later stage.
    #[serde(default)]
    pub advanced_by: Vec<RawAdvance>,
    #[serde(default)]
    pub reminders: Vec<RawStep>,
    #[serde(default)]
    pub escalations: Vec<RawStep>,
    #[serde(default)]
    pub at_deadline: Vec<RawAction>,
    #[serde(default)]
    pub notice: Option<RawSend>,
    #[serde(default)]
    pub delivery: super::Delivery,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDue {
    pub from: String,
    pub offset: Offset,
}

/// `met_by: [invitations_sent]` or `met_by: [{event: decision_completed, key: data.recommendation_id}]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatcher {
    pub event: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub when: Option<String>,
    /// For `met_by`: such an event that came before the obligation opened, in the same period
    /// of care, meets it too (the IRO allocated before section 20 status formally began).
    #[serde(default)]
    pub earlier: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReplan {
    pub event: String,
    #[serde(default)]
    pub key: Option<String>,
    pub from: String,
    #[serde(default)]
    pub when: Option<String>,
}

/// `advanced_by: [{event: escalation_advanced, key: data.recommendation_id, to: data.stage}]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdvance {
    pub event: String,
    #[serde(default)]
    pub key: Option<String>,
    /// A path in the event to the stage: its number (1 is the first escalation) or its step id.
    pub to: String,
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub offset: Offset,
    pub to: Vec<String>,
    pub template: String,
    #[serde(default)]
    pub urgent: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    #[serde(default)]
    pub send: Option<RawSend>,
    #[serde(default)]
    pub emit: Option<RawEmit>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSend {
    pub to: Vec<String>,
    pub template: String,
    #[serde(default)]
    pub urgent: bool,
    /// At the deadline only: the template everyone already sent this gets when the deadline
    /// moves afterwards (the meeting was moved after its invitations went).
    #[serde(default)]
    pub if_moved: Option<String>,
    /// At the deadline only: the template everyone already sent this gets when the obligation
    /// is cancelled afterwards (the meeting was cancelled).
    #[serde(default)]
    pub if_cancelled: Option<String>,
    /// At the deadline only: who is told, instead, when `to` names nobody at all.
    #[serde(default)]
    pub if_nobody: Option<RawNobody>,
}

/// `if_nobody: {to: [review_administrator], template: nobody_invited}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNobody {
    pub to: Vec<String>,
    pub template: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmit {
    pub event: String,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// A value written either as a plain string (the short form) or as a mapping (the full form).
#[derive(Debug)]
pub enum Short<T> {
    Text(String),
    Full(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Short<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShortVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ShortVisitor<T> {
            type Value = Short<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Short::Text(v.to_string()))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Short::Full)
            }
        }
        deserializer.deserialize_any(ShortVisitor(PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Short<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("ShortOr{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let full = generator.subschema_for::<T>();
        schemars::json_schema!({"anyOf": [{"type": "string"}, full]})
    }
}
