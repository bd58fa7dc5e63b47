//! The rules language: what a council's admins write in `rules/*.yaml`.
//!
//! A rule opens an **obligation** when its trigger event arrives, with a **deadline**, the events
//! that **meet**, **cancel** or **re-plan** it, **reminders** before the deadline, an **escalation**
//! ladder after it, and **actions at the deadline**; or it sends an immediate **notice**. The
//! files also declare the event vocabulary and how events update a case's contacts and facts.
//!
//! This module owns the checked, in-memory form of all that (`RuleSet`) and loading it
//! (`load`). It must not evaluate rules against a case: that is the planner's job.

mod load;
pub mod locate;
pub mod raw;
pub mod vocabulary;

pub use load::closest;

use crate::calendar::Offset;
use crate::expr::Engine;
use std::collections::BTreeSet;
use std::path::PathBuf;
pub use vocabulary::{FieldPath, FieldSpec, FieldType, Vocabulary};

/// The names the config provides that rules may send to.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// Service-wide roles with a configured contact (`iro_manager`, `review_administrator`, ...).
    pub roles: BTreeSet<String>,
    /// Named webhooks (`webhook:NAME`).
    pub webhooks: BTreeSet<String>,
    /// The school day, for `in_school_hours()` in conditions.
    pub school_day: Option<(chrono::NaiveTime, chrono::NaiveTime)>,
}

/// Every rule, the vocabulary and the templates of one load, checked against each other.
#[derive(Debug)]
pub struct RuleSet {
    pub vocabulary: Vocabulary,
    pub case: CaseModel,
    pub rules: Vec<Rule>,
    pub engine: Engine,
    /// The rules files read, in the order read.
    pub files: Vec<PathBuf>,
    pub services: Services,
}

/// How events change what the planner knows about a case.
#[derive(Debug, Clone, Default)]
pub struct CaseModel {
    /// Events that begin a period of care: reviews are counted again from here.
    pub opened_by: Vec<String>,
    /// Events that end a period of care: every open obligation is cancelled, and no later event
    /// opens anything or sends anything until a period begins again.
    pub closed_by: Vec<String>,
    pub updates: Vec<CaseUpdate>,
    /// Roles that events set on a case (`iro`, `social_worker`, ...).
    pub roles: BTreeSet<String>,
    /// The kinds of meeting a case has.
    pub meetings: Vec<MeetingModel>,
}

/// How one kind of meeting (a review) is booked, moved, cancelled and held.
#[derive(Debug, Clone)]
pub struct MeetingModel {
    pub booked_by: String,
    /// The meeting's id, at the same path in every event named here.
    pub key: FieldPath,
    /// When it takes place, in `booked_by` and `moved_by` events.
    pub at: FieldPath,
    pub moved_by: Vec<String>,
    pub cancelled_by: Vec<String>,
    pub held_by: Vec<String>,
}

impl CaseModel {
    /// When the meeting some event data is about takes place: the first meeting kind's `at`
    /// (`data.meeting_at` in the default vocabulary) found in it. The shell asks this rather
    /// than naming the field, so a council that renames it in its vocabulary loses nothing.
    pub fn meeting_time(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.meetings
            .iter()
            .filter(|m| m.at.root == vocabulary::Root::Data)
            .find_map(|m| {
                let value = m.at.resolve_in(data, chrono::DateTime::UNIX_EPOCH, None)?;
                chrono::DateTime::parse_from_rfc3339(value.as_str()?)
                    .ok()
                    .map(|t| t.with_timezone(&chrono::Utc))
            })
    }

    /// The event type, and the field in it, that sets a role's contact: the first update that
    /// does.
    pub fn contact_set_by(&self, role: &str) -> Option<(&str, &FieldPath)> {
        self.updates.iter().find_map(|u| {
            u.contacts
                .iter()
                .find(|(r, _)| r == role)
                .map(|(_, path)| (u.on.as_str(), path))
        })
    }

    /// Whether events of this type change nothing the case model keeps but who the case's
    /// people are (an IRO or a social worker allocated): no period of care, meeting or fact
    /// changes with them. (Rules may still act on them.)
    pub fn only_sets_contacts(&self, kind: &str) -> bool {
        let mut updates = self.updates.iter().filter(|u| u.on == kind).peekable();
        updates.peek().is_some()
            && updates.all(|u| !u.contacts.is_empty() && u.facts.is_empty() && u.clear.is_empty())
            && !self
                .opened_by
                .iter()
                .chain(&self.closed_by)
                .any(|e| e == kind)
            && !self.meeting_events().any(|(_, e)| e == kind)
    }

    /// Every event type that books, moves, cancels or holds a meeting.
    pub fn meeting_events(&self) -> impl Iterator<Item = (&MeetingModel, &str)> {
        self.meetings.iter().flat_map(|m| {
            std::iter::once(m.booked_by.as_str())
                .chain(m.moved_by.iter().map(String::as_str))
                .chain(m.cancelled_by.iter().map(String::as_str))
                .chain(m.held_by.iter().map(String::as_str))
                .map(move |e| (m, e))
        })
    }
}

/// On an event, set contacts and facts from its data, or clear contacts.
#[derive(Debug, Clone)]
pub struct CaseUpdate {
    pub on: String,
    pub contacts: Vec<(String, FieldPath)>,
    pub facts: Vec<(String, FieldPath)>,
    pub clear: Vec<String>,
}

/// Where a rule was written, for messages and `file:line:column` reports.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: PathBuf,
    pub position: Option<(usize, usize)>,
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// The regulation or council document the rule implements, shown in messages.
    pub source: String,
    pub description: Option<String>,
    /// The trigger event type.
    pub on: String,
    /// Name of the compiled `when:` condition in the engine, if the rule has one.
    pub when: Option<String>,
    /// One obligation (or notice) per item of a list in the trigger event, or per meeting of
    /// the case still ahead.
    pub for_each: Option<ForEach>,
    /// What tells this rule's obligations apart within a case (a review id, a recommendation id).
    pub key: Option<FieldPath>,
    /// The id of the meeting the rule is about: the meeting's data lies under the event's.
    pub meeting: Option<FieldPath>,
    pub body: RuleBody,
    /// How its reminders and escalations reach people: one by one, in the daily digest, or both.
    /// A recipient's own choice in the config wins; urgent messages always go at once.
    pub delivery: Delivery,
    pub origin: Origin,
}

/// How a notification reaches its recipient.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// A message of its own, at its moment.
    #[default]
    Immediate,
    /// Only a line in the recipient's daily digest.
    Digest,
    /// Both.
    Both,
}

/// What a rule walks: a list in its trigger event, or the case's meetings still ahead.
#[derive(Debug, Clone)]
pub enum ForEach {
    /// `for_each: data.recommendations`.
    List(FieldPath),
    /// `for_each: meetings`: every meeting booked and still ahead when the event happened; the
    /// meeting's data lies under the event's own.
    Meetings,
}

impl std::fmt::Display for ForEach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForEach::List(p) => write!(f, "{p}"),
            ForEach::Meetings => f.write_str("meetings"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum RuleBody {
    Obligation(Box<ObligationRule>),
    Notice(Send),
}

impl Rule {
    pub fn obligation(&self) -> Option<&ObligationRule> {
        match &self.body {
            RuleBody::Obligation(o) => Some(o),
            RuleBody::Notice(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ObligationRule {
    pub due: Due,
    pub met_by: Vec<Matcher>,
    pub cancelled_by: Vec<Matcher>,
    pub replanned_by: Vec<Replan>,
    /// Events after which it can no longer be met: if still open, it is recorded as not done.
    pub ended_by: Vec<Matcher>,
    /// Events that move the escalation ladder straight to a later stage.
    pub advanced_by: Vec<Advance>,
    pub reminders: Vec<Step>,
    pub escalations: Vec<Step>,
    pub at_deadline: Vec<Action>,
}

/// An event that moves the escalation ladder to a later stage (the child's welfare requires
/// it): that stage goes at once and the stages before it that have not gone are passed over.
#[derive(Debug, Clone)]
pub struct Advance {
    pub matcher: Matcher,
    /// The stage, in the event: its number (1 is the first escalation) or its step id.
    pub to: FieldPath,
}

/// The deadline: an anchor in the trigger event plus an offset.
#[derive(Debug, Clone)]
pub struct Due {
    pub from: FieldPath,
    pub offset: Offset,
}

/// An event that finds an open obligation of the rule.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub event: String,
    pub key: KeyMatch,
    /// When the obligation counts as met, if not the event's own time (`data.held_at`).
    pub at: Option<FieldPath>,
    pub when: Option<String>,
    /// Such an event before the obligation opened, in the same period of care, counts too.
    pub earlier: bool,
}

#[derive(Debug, Clone)]
pub enum KeyMatch {
    /// The event's value at this path must equal the obligation's key.
    Path(FieldPath),
    /// Any open obligation of the rule on the case.
    Any,
}

/// An event that moves the deadline (a review rescheduled).
#[derive(Debug, Clone)]
pub struct Replan {
    pub matcher: Matcher,
    pub from: FieldPath,
}

/// A reminder or escalation step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Stable name of the step; part of its notifications' idempotency keys.
    pub id: String,
    pub title: Option<String>,
    /// From the deadline: negative or zero for reminders, positive for escalations.
    pub offset: Offset,
    pub send: Send,
}

/// Who gets which template, and whether it waits for working hours.
#[derive(Debug, Clone)]
pub struct Send {
    pub to: Vec<Recipient>,
    pub template: String,
    /// Urgent messages go at once, outside working hours too.
    pub urgent: bool,
    /// For a send at the deadline: what those it went to are told if it changes afterwards.
    pub after: AfterSend,
}

/// What a deadline send does when its obligation changes after it went, or finds nobody.
#[derive(Debug, Clone, Default)]
pub struct AfterSend {
    /// Everyone it went to gets this template when the deadline moves (the meeting moved).
    pub if_moved: Option<String>,
    /// Everyone it went to gets this template when the obligation is cancelled.
    pub if_cancelled: Option<String>,
    /// Told instead when `to` names nobody at all; the obligation then stays open.
    pub if_nobody: Option<Box<Send>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A case contact (`iro`) or a service role from the config (`iro_manager`).
    Role(String),
    /// A configured webhook.
    Webhook(String),
    /// Contacts carried in the trigger event (`list:data.participants`).
    List(FieldPath),
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::Role(r) => f.write_str(r),
            Recipient::Webhook(w) => write!(f, "webhook:{w}"),
            Recipient::List(p) => write!(f, "list:{p}"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Send at the deadline (the invitations, ten working days before the meeting).
    Send(Send),
    /// Record a derived event at the deadline (recommendations become decisions).
    Emit {
        event: String,
        data: Vec<(String, FieldPath)>,
    },
}

impl RuleSet {
    /// As [`RuleSet::from_sources`], reporting first the problems met reading them (a file that
    /// could not be read, an empty rules folder): what could be read is still checked, so every
    /// problem is reported at once.
    pub fn from_read(
        files: &[crate::sources::SourceFile],
        templates: &crate::sources::TemplateFiles,
        mut read: Vec<crate::diagnostic::Diagnostic>,
        services: &Services,
    ) -> Result<RuleSet, crate::diagnostic::Diagnostics> {
        match Self::from_sources(files, templates, services) {
            Ok(r) if read.is_empty() => Ok(r),
            Ok(_) => Err(crate::diagnostic::Diagnostics(read)),
            Err(crate::diagnostic::Diagnostics(mut found)) => {
                read.append(&mut found);
                Err(crate::diagnostic::Diagnostics(read))
            }
        }
    }

    /// Checks rules files and templates given as text (read from folders, or built in),
    /// against the names the config provides. Pure.
    pub fn from_sources(
        files: &[crate::sources::SourceFile],
        templates: &crate::sources::TemplateFiles,
        services: &Services,
    ) -> Result<RuleSet, crate::diagnostic::Diagnostics> {
        load::load(files, templates, services)
    }

    /// The JSON Schema of a rules file, for editors and `driftwatch schema rules`.
    pub fn schema() -> schemars::Schema {
        let mut schema = schemars::schema_for!(raw::RawFile);
        schema.insert("title".into(), "driftwatch rules file".into());
        schema
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meetings_at(path: &str) -> CaseModel {
        CaseModel {
            meetings: vec![MeetingModel {
                booked_by: "review_scheduled".into(),
                key: "data.review_id".parse().expect("path"),
                at: path.parse().expect("path"),
                moved_by: Vec::new(),
                cancelled_by: Vec::new(),
                held_by: Vec::new(),
            }],
            ..CaseModel::default()
        }
    }

    #[test]
    fn the_meeting_time_is_where_the_vocabulary_says_it_is() {
        let data =
            json!({"meeting_at": "2027-01-21T14:00:00Z", "starts_at": "2027-02-03T10:00:00+00:00"});
        let data = data.as_object().expect("an object");
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        assert_eq!(
            meetings_at("data.meeting_at").meeting_time(data),
            at("2027-01-21T14:00:00Z")
        );
        // A council that renamed the field: the shell reads the new name, not the old one.
        assert_eq!(
            meetings_at("data.starts_at").meeting_time(data),
            at("2027-02-03T10:00:00Z")
        );
        assert_eq!(meetings_at("data.held_at").meeting_time(data), None);
        assert_eq!(CaseModel::default().meeting_time(data), None);
    }
}
