//! Rule test files as an admin writes them, and their checks: every problem is reported as
//! `file:line:column: message` and nothing half-checked is run.
//!
//! Owns the YAML shapes of a test file (serde_yaml, with the schema editors use), reading local
//! times people write, and turning a file into checked [`TestFile`]s. Must not plan or compare:
//! see [`super::matching`].

use super::{Exactly, Expected, Moment, NotificationSpec, ObligationSpec, Test, TestFile};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Diagnostics, from_yaml_error};
use crate::event::Event;
use crate::localtime;
use crate::planner::{NotificationKind, NotificationStatus, ObligationState};
use crate::rules::locate::Locator;
use crate::rules::{Rule, RuleBody, closest};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The case reference of a test's events when neither the test nor the event gives one.
pub const DEFAULT_CASE: &str = "TEST";

/// A rule test file: one or more named tests of the rules in force.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTestFile {
    /// The tests, each with its own case.
    pub tests: Vec<RawTest>,
}

/// One test: a case's events, and what the plan must show at one or more moments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    /// What the test shows, in words; unique within its file.
    pub name: String,
    /// The case reference of every event that does not give its own (default `TEST`).
    #[serde(default)]
    pub case: Option<String>,
    /// The case's events, in the API's envelope (`id`, `case`, `type`, `at`, `data`), written as
    /// YAML. `case` defaults to the test's; `id` defaults to `e1`, `e2`, ... by position.
    #[schemars(with = "Vec<EventShape>")]
    pub events: Vec<Value>,
    /// The moments to look at the plan, and what it must show then.
    pub expect: Vec<RawMoment>,
}

/// The API's event envelope, for the schema only (the events are checked like the API's).
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EventShape {
    /// Unique within the test; default `e1`, `e2`, ... by position.
    id: Option<String>,
    /// Default: the test's case.
    case: Option<String>,
    /// The event type, as the rules' vocabulary declares it.
    #[serde(rename = "type")]
    kind: String,
    /// When it happened: RFC 3339 with its offset (`2027-01-04T10:00:00Z`, `2027-07-05T10:00:00+01:00`).
    at: String,
    data: Option<serde_json::Map<String, Value>>,
    source: Option<String>,
}

/// A moment and what the plan must show then.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMoment {
    /// Europe/London local time: `2027-01-05 12:00`, `Tuesday 5 January 2027 at 12:00`, or a date
    /// alone for the start of that day.
    pub at: String,
    /// `true`: the plan has nothing more than each list given here expects. A list of rule ids:
    /// nothing more from those rules, in the obligations and notifications given.
    #[serde(default)]
    pub exactly: RawExactly,
    #[serde(default)]
    pub obligations: Option<Vec<RawObligation>>,
    #[serde(default)]
    pub notifications: Option<Vec<RawNotification>>,
    /// Pieces of text, each of which must appear in one of the plan's problems.
    #[serde(default)]
    pub problems: Option<Vec<String>>,
}

/// `exactly:` as written: a yes or no, or the rules it applies to.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(
    untagged,
    expecting = "`exactly:` is true, false or a list of rule ids"
)]
pub enum RawExactly {
    All(bool),
    Rules(Vec<String>),
}

impl Default for RawExactly {
    fn default() -> Self {
        RawExactly::All(false)
    }
}

/// An obligation the plan must have. Fields left out are not compared.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawObligation {
    pub rule: String,
    /// The obligation's key (a review id, a recommendation id).
    #[serde(default)]
    pub key: Option<Scalar>,
    /// As the JSON plan writes it: `open`, `met`, `met_late`, `overdue`, `cancelled`, `not_done`.
    #[serde(default)]
    pub state: Option<ObligationState>,
    /// The due date (`2027-01-04`), with its time for a deadline in hours (`2027-01-04 10:00`).
    #[serde(default)]
    pub due: Option<String>,
    /// Statutory working days late (overdue, met late or not done).
    #[serde(default)]
    pub working_days_late: Option<i32>,
}

/// A notification the plan must have. Fields left out are not compared.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotification {
    pub rule: String,
    #[serde(default)]
    pub kind: Option<NotificationKind>,
    /// The step's title, or its id when it has none (`reminder -5 working days`, `at deadline`,
    /// `notice`), as `driftwatch plan` shows it.
    #[serde(default)]
    pub step: Option<String>,
    /// The role it goes to (`iro`, `review_administrator`, a participant's role such as `parent`),
    /// `webhook:NAME`, or `nobody`.
    #[serde(default)]
    pub to: Option<String>,
    /// The case role a fallback recipient stands in for (`iro`).
    #[serde(default)]
    pub instead_of: Option<String>,
    /// When it goes, Europe/London: `2027-01-05 09:00` or `Tuesday 5 January 2027 at 09:00`.
    #[serde(default)]
    pub send_at: Option<String>,
    #[serde(default)]
    pub status: Option<NotificationStatus>,
    /// Sent after its usual time (opened late, going live, catching up).
    #[serde(default)]
    pub late: Option<bool>,
}

/// A key written as text or as a number.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged, expecting = "a key is text or a number")]
pub enum Scalar {
    Text(String),
    Integer(i64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Integer(n) => n.to_string(),
        }
    }
}

/// A local date, with a time of day when one was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalWhen {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
}

impl LocalWhen {
    /// `2027-01-05 09:00`, or `2027-01-05` for a date alone: how plans show local times.
    pub fn text(&self) -> String {
        match self.time {
            Some(t) => format!("{} {}", self.date, t.format("%H:%M")),
            None => self.date.to_string(),
        }
    }
}

const LOCAL_HELP: &str =
    "write a Europe/London time as 2027-01-05 09:00 or Tuesday 5 January 2027 at 09:00";

/// Reads a local time as people write it: `2027-01-05 09:00`, `2027-01-05T09:00`, `2027-01-05`,
/// `Tuesday 5 January 2027 at 09:00` or `Tuesday 5 January 2027`. A weekday that does not
/// match its date is an error, since one of the two is a mistake.
pub fn parse_local(text: &str) -> Result<LocalWhen, String> {
    let text = text.trim();
    for format in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(LocalWhen {
                date: t.date(),
                time: Some(t.time()),
            });
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(LocalWhen { date, time: None });
    }
    let unreadable = || format!("`{text}` is not a local time: {LOCAL_HELP}");
    let (weekday, rest) = text.split_once(' ').ok_or_else(unreadable)?;
    let (day, time) = match rest.split_once(" at ") {
        Some((day, time)) => (
            day,
            Some(NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| unreadable())?),
        ),
        None => (rest, None),
    };
    let date = NaiveDate::parse_from_str(day.trim(), "%d %B %Y").map_err(|_| unreadable())?;
    let actual = localtime::date_in_words(date);
    if !actual.starts_with(&format!("{weekday} ")) {
        let named = actual.split(' ').next().unwrap_or_default();
        return Err(format!(
            "`{text}`: {} is a {named}, not a {weekday}",
            date.format("%-d %B %Y")
        ));
    }
    Ok(LocalWhen { date, time })
}

/// Reads and checks one test file's text against the rules in force. Every problem is returned,
/// as far as the file's shape allows: a YAML syntax or shape error stops at the first.
pub fn parse(path: &Path, text: &str, config: &Config) -> Result<TestFile, Diagnostics> {
    let raw: RawTestFile =
        serde_yaml::from_str(text).map_err(|e| Diagnostics(vec![from_yaml_error(path, &e)]))?;
    let locator = Locator::new(text);
    let mut checker = Checker {
        path,
        locator: &locator,
        config,
        problems: Vec::new(),
    };
    if raw.tests.is_empty() {
        checker.problem("tests", "no tests in this file");
    }
    let mut names = BTreeSet::new();
    let mut tests = Vec::new();
    for (i, test) in raw.tests.into_iter().enumerate() {
        let yaml = format!("tests[{i}]");
        if !names.insert(test.name.clone()) {
            checker.problem(
                &format!("{yaml}.name"),
                format!(
                    "two tests are named `{}`: give each its own name",
                    test.name
                ),
            );
        }
        tests.push(checker.test(&yaml, test));
    }
    // In the order they stand in the file, as an admin reads it.
    checker.problems.sort_by_key(|d| d.position);
    if checker.problems.is_empty() {
        Ok(TestFile {
            path: path.to_path_buf(),
            tests,
        })
    } else {
        Err(Diagnostics(checker.problems))
    }
}

struct Checker<'a> {
    path: &'a Path,
    locator: &'a Locator,
    config: &'a Config,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&self, yaml: &str) -> Option<(usize, usize)> {
        self.locator.at(yaml)
    }

    fn problem(&mut self, yaml: &str, message: impl Into<String>) {
        let d = Diagnostic::new(self.path, self.at(yaml), message);
        self.problems.push(d);
    }

    /// A local time the file gives at `yaml`, or a problem there.
    fn local(&mut self, yaml: &str, text: &str) -> Option<LocalWhen> {
        match parse_local(text) {
            Ok(when) => Some(when),
            Err(message) => {
                self.problem(yaml, message);
                None
            }
        }
    }

    fn test(&mut self, yaml: &str, raw: RawTest) -> Test {
        let case = raw.case.unwrap_or_else(|| DEFAULT_CASE.to_string());
        let mut events = Vec::new();
        let mut ids = BTreeSet::new();
        for (j, value) in raw.events.into_iter().enumerate() {
            let at = format!("{yaml}.events[{j}]");
            let Some(event) = self.event(&at, value, &case, j) else {
                continue;
            };
            if !ids.insert(event.id.clone()) {
                self.problem(
                    &format!("{at}.id"),
                    format!(
                        "two events of this test have the id `{}`: the second would be ignored as a repeat",
                        event.id
                    ),
                );
            }
            events.push(event);
        }
        if raw.expect.is_empty() {
            self.problem(
                &format!("{yaml}.expect"),
                "a test needs at least one moment under `expect:`",
            );
        }
        let moments = raw
            .expect
            .into_iter()
            .enumerate()
            .map(|(k, m)| self.moment(&format!("{yaml}.expect[{k}]"), m))
            .collect();
        Test {
            name: raw.name,
            position: self.at(&format!("{yaml}.name")),
            case,
            events,
            moments,
        }
    }

    /// Checks an event like the API does, after filling in the test's defaults.
    fn event(&mut self, yaml: &str, mut value: Value, case: &str, index: usize) -> Option<Event> {
        if let Value::Object(obj) = &mut value {
            obj.entry("case")
                .or_insert_with(|| Value::String(case.to_string()));
            obj.entry("id")
                .or_insert_with(|| Value::String(format!("e{}", index + 1)));
        }
        let event = match Event::from_value(&value, &format!("{}", index + 1)) {
            Ok(e) => e,
            Err(e) => {
                let field = if e.field.starts_with('(') {
                    yaml.to_string()
                } else {
                    format!("{yaml}.{}", e.field)
                };
                self.problem(&field, e.to_string());
                return None;
            }
        };
        if event.case != case {
            self.problem(
                &format!("{yaml}.case"),
                format!(
                    "this event is for case `{}`, the test for `{case}`: a test plans one case",
                    event.case
                ),
            );
            return None;
        }
        if let Err(e) = self.config.rules.vocabulary.validate(&event) {
            let mut message = e.to_string();
            if e.field == "type" {
                message.push_str(&closest(
                    &event.kind,
                    self.config.rules.vocabulary.events.keys(),
                ));
            }
            self.problem(&format!("{yaml}.{}", e.field), message);
            return None;
        }
        Some(event)
    }

    fn moment(&mut self, yaml: &str, raw: RawMoment) -> Moment {
        let given = [
            raw.obligations.as_ref().map(Vec::len),
            raw.notifications.as_ref().map(Vec::len),
            raw.problems.as_ref().map(Vec::len),
        ];
        let exactly = match raw.exactly {
            RawExactly::All(false) => Exactly::No,
            RawExactly::All(true) => Exactly::All,
            RawExactly::Rules(ids) => {
                for (n, id) in ids.iter().enumerate() {
                    self.known_rule(&format!("{yaml}.exactly[{n}]"), id);
                }
                Exactly::Rules(ids.into_iter().collect())
            }
        };
        // An empty list checks something when `exactly` makes it mean "none".
        let checks_something = given.iter().enumerate().any(|(i, n)| match n {
            Some(n) if *n > 0 => true,
            Some(_) => match &exactly {
                Exactly::No => false,
                Exactly::All => true,
                Exactly::Rules(_) => i < 2,
            },
            None => false,
        });
        if !checks_something {
            self.problem(
                yaml,
                "this moment checks nothing: list the obligations, notifications or problems \
                 expected (an empty list with `exactly:` expects none)",
            );
        }
        let obligations = raw.obligations.map(|list| {
            list.into_iter()
                .enumerate()
                .map(|(n, o)| self.obligation(&format!("{yaml}.obligations[{n}]"), o))
                .collect()
        });
        let notifications = raw.notifications.map(|list| {
            list.into_iter()
                .enumerate()
                .map(|(n, o)| self.notification(&format!("{yaml}.notifications[{n}]"), o))
                .collect()
        });
        let problems = raw.problems.map(|list| {
            list.into_iter()
                .enumerate()
                .map(|(n, text)| Expected {
                    position: self.at(&format!("{yaml}.problems[{n}]")),
                    spec: text,
                })
                .collect()
        });
        // An unreadable moment is reported; 1970-01-01 stands in for it, and the file never runs.
        let at = self
            .local(&format!("{yaml}.at"), &raw.at)
            .unwrap_or(LocalWhen {
                date: NaiveDate::default(),
                time: None,
            });
        Moment {
            at: localtime::instant(at.date.and_time(at.time.unwrap_or(NaiveTime::MIN))),
            shown: at.text(),
            position: self.at(&format!("{yaml}.at")),
            exactly,
            obligations,
            notifications,
            problems,
        }
    }

    /// Checks that a rule id at `yaml` names a rule in force.
    fn known_rule(&mut self, yaml: &str, id: &str) -> Option<&Rule> {
        let config = self.config;
        let rules = &config.rules;
        let found = rules.rule(id);
        if found.is_none() {
            let hint = closest(id, rules.rules.iter().map(|r| r.id.as_str()));
            self.problem(yaml, format!("unknown rule `{id}`{hint}"));
        }
        found
    }

    /// Checks the rule an expectation names; `obligation` when it must be an obligation rule.
    fn rule(&mut self, yaml: &str, id: &str, obligation: bool) {
        match self.known_rule(&format!("{yaml}.rule"), id) {
            Some(r) if obligation && matches!(r.body, RuleBody::Notice(_)) => {
                self.problem(
                    &format!("{yaml}.rule"),
                    format!(
                        "`{id}` is a notice rule: it sends notifications, it has no obligations"
                    ),
                );
            }
            _ => {}
        }
    }

    fn obligation(&mut self, yaml: &str, raw: RawObligation) -> Expected<ObligationSpec> {
        self.rule(yaml, &raw.rule, true);
        let due = raw
            .due
            .and_then(|text| self.local(&format!("{yaml}.due"), &text));
        Expected {
            position: self.at(yaml),
            spec: ObligationSpec {
                rule: raw.rule,
                key: raw.key.map(|k| k.text()),
                state: raw.state,
                due,
                working_days_late: raw.working_days_late,
            },
        }
    }

    fn notification(&mut self, yaml: &str, raw: RawNotification) -> Expected<NotificationSpec> {
        self.rule(yaml, &raw.rule, false);
        let send_at = raw
            .send_at
            .and_then(|text| self.local(&format!("{yaml}.send_at"), &text));
        if let Some(when) = send_at
            && when.time.is_none()
        {
            self.problem(
                &format!("{yaml}.send_at"),
                format!(
                    "`{}` has no time of day: notifications go at a time ({} 09:00)",
                    when.date, when.date
                ),
            );
        }
        Expected {
            position: self.at(yaml),
            spec: NotificationSpec {
                rule: raw.rule,
                kind: raw.kind,
                step: raw.step,
                to: raw.to,
                instead_of: raw.instead_of,
                send_at,
                status: raw.status,
                late: raw.late,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn local_times_in_figures_and_in_words() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0);
        for text in [
            "2027-01-05 09:00",
            "2027-01-05T09:00",
            "Tuesday 5 January 2027 at 09:00",
        ] {
            assert_eq!(
                parse_local(text),
                Ok(LocalWhen {
                    date: d("2027-01-05"),
                    time: nine
                }),
                "{text}"
            );
        }
        assert_eq!(
            parse_local("Tuesday 5 January 2027").map(|w| w.text()),
            Ok("2027-01-05".to_string())
        );
        assert_eq!(
            parse_local("Monday 5 January 2027"),
            Err("`Monday 5 January 2027`: 5 January 2027 is a Tuesday, not a Monday".to_string())
        );
        assert!(
            parse_local("next Tuesday")
                .unwrap_err()
                .contains("not a local time")
        );
        assert!(parse_local("2027-01-05 9am").is_err());
    }
}
