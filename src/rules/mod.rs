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
    /// Events that close the case: every open obligation is cancelled.
    pub closed_by: Vec<String>,
    pub updates: Vec<CaseUpdate>,
    /// Roles that events set on a case (`iro`, `social_worker`, ...).
    pub roles: BTreeSet<String>,
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
    /// One obligation per item of this list in the trigger event.
    pub for_each: Option<FieldPath>,
    /// What tells this rule's obligations apart within a case (a review id, a recommendation id).
    pub key: Option<FieldPath>,
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
    pub reminders: Vec<Step>,
    pub escalations: Vec<Step>,
    pub at_deadline: Vec<Action>,
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
    /// Reads and checks every `*.yaml` under `rules_dir` and every template under
    /// `templates_dir`, against the names the config provides.
    pub fn load(
        rules_dir: &std::path::Path,
        templates_dir: &std::path::Path,
        services: &Services,
    ) -> Result<RuleSet, crate::diagnostic::Diagnostics> {
        load::load(rules_dir, templates_dir, services)
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
