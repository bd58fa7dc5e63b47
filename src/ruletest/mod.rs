//! `driftwatch test`: rule tests an admin writes in YAML, in the spirit of `promtool test rules`.
//!
//! A test file holds named tests; each gives a case's events and, at one or more moments, the
//! obligations, notifications and problems its plan must show then. Running a test is pure
//! planning ([`Planner::plan_case`] at each moment) against the rules, calendar and roles in
//! force: no database, no network, no clock.
//!
//! Owns the test files' meaning: [`file`] reads and checks them (`file:line:column` errors),
//! [`matching`] compares expectations with a plan and finds the nearest candidates when one is
//! missing, [`report`] writes the outcome for people. Must not change what a plan is: the
//! planner owns that.

mod file;
mod matching;
mod report;

pub use file::{DEFAULT_CASE, LocalWhen, RawTestFile, parse, parse_local};
pub use report::{Summary, render};

use crate::event::Event;
use crate::planner::{NotificationKind, NotificationStatus, ObligationState, Planner};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// A checked test file, ready to run.
#[derive(Debug)]
pub struct TestFile {
    pub path: PathBuf,
    pub tests: Vec<Test>,
}

/// One named test: a case's events and the moments to look at its plan.
#[derive(Debug)]
pub struct Test {
    pub name: String,
    /// Where its name is written.
    pub position: Option<(usize, usize)>,
    pub case: String,
    pub events: Vec<Event>,
    pub moments: Vec<Moment>,
}

/// What the plan must show at one moment. A list left out is not looked at.
#[derive(Debug)]
pub struct Moment {
    pub at: DateTime<Utc>,
    /// The moment as the file gives it, in local time (`2027-01-05 12:00`).
    pub shown: String,
    pub position: Option<(usize, usize)>,
    pub exactly: Exactly,
    pub obligations: Option<Vec<Expected<ObligationSpec>>>,
    pub notifications: Option<Vec<Expected<NotificationSpec>>>,
    /// Pieces of text, each to be found in one of the plan's problems.
    pub problems: Option<Vec<Expected<String>>>,
}

/// Whether the plan may have more than a moment expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exactly {
    /// Items nothing expects are fine.
    No,
    /// Nothing more than each list given expects.
    All,
    /// Nothing more from these rules, in the obligations and notifications given.
    Rules(std::collections::BTreeSet<String>),
}

/// One expected item and where it is written.
#[derive(Debug)]
pub struct Expected<T> {
    pub spec: T,
    pub position: Option<(usize, usize)>,
}

/// An obligation the plan must have; `None` fields are not compared.
#[derive(Debug)]
pub struct ObligationSpec {
    pub rule: String,
    pub key: Option<String>,
    pub state: Option<ObligationState>,
    pub due: Option<LocalWhen>,
    pub working_days_late: Option<i32>,
}

/// A notification the plan must have; `None` fields are not compared.
#[derive(Debug)]
pub struct NotificationSpec {
    pub rule: String,
    pub kind: Option<NotificationKind>,
    /// The step's title or its id.
    pub step: Option<String>,
    pub to: Option<String>,
    pub instead_of: Option<String>,
    pub send_at: Option<LocalWhen>,
    pub status: Option<NotificationStatus>,
    pub late: Option<bool>,
}

/// How one file's tests went.
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub tests: Vec<TestOutcome>,
}

/// How one test went: passed when it has no failures.
#[derive(Debug)]
pub struct TestOutcome {
    pub name: String,
    pub position: Option<(usize, usize)>,
    pub failures: Vec<Failure>,
}

/// One expectation the plan did not meet.
#[derive(Debug)]
pub struct Failure {
    /// The moment, as the file gives it.
    pub moment: String,
    /// Where the expectation (or, for something not expected, the moment) is written.
    pub position: Option<(usize, usize)>,
    pub kind: FailureKind,
}

#[derive(Debug)]
pub enum FailureKind {
    /// An expected item the plan does not have.
    Missing {
        /// `obligation`, `notification` or `problem`.
        noun: &'static str,
        /// The expected item, as written (a YAML flow mapping or the text).
        expected: String,
        /// The plan's nearest items, best first, each with how it differs.
        nearest: Vec<Candidate>,
        /// How many more of the same rule were not shown.
        more: usize,
        /// Why nothing nearer is shown, when that needs saying.
        note: Option<String>,
    },
    /// With `exactly:`, an item the plan has that nothing expects.
    Unexpected { noun: &'static str, found: String },
}

/// A plan item near a missing expectation.
#[derive(Debug)]
pub struct Candidate {
    /// The item in full, as a YAML flow mapping that can be pasted into the test.
    pub shown: String,
    /// How it differs from the expectation (`send_at is 2027-01-06 09:00, not 2027-01-05 09:00`).
    pub differs: Vec<String>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every test of a file: the case planned at each moment, compared with what is expected.
pub fn run(file: &TestFile, planner: &Planner) -> FileOutcome {
    let tests = file
        .tests
        .iter()
        .map(|test| TestOutcome {
            name: test.name.clone(),
            position: test.position,
            failures: test
                .moments
                .iter()
                .flat_map(|moment| {
                    let plan = planner.plan_case(&test.case, &test.events, moment.at);
                    matching::compare(moment, &plan)
                })
                .collect(),
        })
        .collect();
    FileOutcome {
        path: file.path.clone(),
        tests,
    }
}

/// The JSON Schema of test files, for editors and `driftwatch schema tests`.
pub fn schema() -> schemars::Schema {
    let mut schema = schemars::schema_for!(RawTestFile);
    schema.insert("title".into(), "driftwatch rule tests".into());
    schema
}
