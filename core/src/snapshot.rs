//! Going live from a snapshot: one CSV row per child, as a council's case system exports it,
//! turned into ordinary events. Pure: text in, events or errors out.
//!
//! A small YAML mapping names the council's column headings, so a council maps its own report
//! without code. Every event carries `source: snapshot` and an id made from the case and the
//! values it stands for, so importing the same file again changes nothing and next week's file
//! adds only what changed (a new IRO, a review held, a new recommendation). Errors name the line
//! and column and never repeat a cell's value. The event types and fields that say who the
//! child's people are, when a period of care opens and when a review is booked or held are
//! learnt from the rules' case model ([`Names`]), so a council that renames them in its
//! vocabulary keeps its imports. Must not touch the store or read files.

use crate::diagnostic::{Diagnostic, from_yaml_error};
use crate::event::Event;
use crate::localtime;
use crate::rules::{CaseModel, FieldPath};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The value of `source` on every event a snapshot makes.
pub const SOURCE: &str = "snapshot";

/// How a council's export maps to driftwatch: `columns` gives the heading of each field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub columns: Columns,
    /// The report's wording of the legal basis, mapped to driftwatch's (`s20`, `s31`, ...).
    /// Values already in driftwatch's words need no entry.
    #[serde(default)]
    pub legal_basis: BTreeMap<String, String>,
    /// Cell values that mean yes (case-insensitive); anything else, or empty, means no.
    #[serde(default = "default_yes")]
    pub yes: Vec<String>,
}

fn default_yes() -> Vec<String> {
    ["yes", "y", "true", "1"].map(String::from).to_vec()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub case: String,
    pub looked_after_since: String,
    pub legal_basis: String,
    pub date_of_birth: String,
    #[serde(default)]
    pub iro_name: Option<String>,
    pub iro_email: String,
    #[serde(default)]
    pub social_worker_name: Option<String>,
    pub social_worker_email: String,
    #[serde(default)]
    pub team_manager_name: Option<String>,
    pub team_manager_email: String,
    /// How many reviews the child has had, so the next is known to be a second or later one.
    #[serde(default)]
    pub reviews_held: Option<String>,
    #[serde(default)]
    pub last_review_held: Option<String>,
    #[serde(default)]
    pub next_review_at: Option<String>,
    /// Open recommendations as `ID due DATE`, separated by `;`
    /// (for example `R3-1 due 2027-02-01; R3-2 due 2027-03-01`); the social worker owns them.
    #[serde(default)]
    pub recommendations: Option<String>,
    /// Whether the record of the last review has gone out (yes/no).
    #[serde(default)]
    pub record_distributed: Option<String>,
    #[serde(default)]
    pub in_proceedings: Option<String>,
    #[serde(default)]
    pub guardian_name: Option<String>,
    #[serde(default)]
    pub guardian_email: Option<String>,
    #[serde(default)]
    pub legal_adviser_name: Option<String>,
    #[serde(default)]
    pub legal_adviser_email: Option<String>,
    /// An id shared by brothers and sisters, for the check that siblings share an IRO.
    #[serde(default)]
    pub sibling_group: Option<String>,
    /// The case reference of a parent who is also in care, for the check that they have
    /// different IROs.
    #[serde(default)]
    pub parent_case: Option<String>,
}

impl Mapping {
    /// A mapping from its text; `path` names it in errors. (The shell finds and reads the file.)
    pub fn from_text(path: &Path, text: &str) -> Result<Mapping, Diagnostic> {
        serde_yaml::from_str(text).map_err(|e| from_yaml_error(path, &e))
    }
}

/// The event types and fields that carry what the rules' case model gives meaning to: the event
/// that opens a period of care, the one that books a review (with the review's id and time) and
/// the one that records it held, and who sets each of the child's people
/// ([`CaseModel::contact_set_by`]). Other facts a snapshot records (a care plan, a record
/// distributed) are in the default vocabulary's words, and every event is checked against the
/// rules' vocabulary before anything is stored.
#[derive(Debug, Clone, Copy)]
pub struct Names<'r> {
    case: &'r CaseModel,
    opened: &'r str,
    booked: &'r str,
    held: &'r str,
    meeting_key: &'r FieldPath,
    meeting_at: &'r FieldPath,
}

impl<'r> Names<'r> {
    /// The names in the rules' case model, or what it lacks that a snapshot needs.
    pub fn of(case: &'r CaseModel) -> Result<Names<'r>, String> {
        let opened = case.opened_by.first().ok_or(
            "the rules' case model names no event that begins a period of care (`opened_by`)",
        )?;
        let meeting = case
            .meetings
            .first()
            .ok_or("the rules' case model has no meetings, so reviews cannot be imported")?;
        let held = meeting
            .held_by
            .first()
            .ok_or("the rules' case model names no event that records a review held (`held_by`)")?;
        if [&meeting.key, &meeting.at]
            .iter()
            .any(|p| p.root != crate::rules::vocabulary::Root::Data)
        {
            return Err(format!(
                "the rules' meetings keep a review's id and time elsewhere than in its data \
                 (`key: {}`, `at: {}`), so a snapshot cannot book one",
                meeting.key, meeting.at
            ));
        }
        Ok(Names {
            case,
            opened,
            booked: &meeting.booked_by,
            held,
            meeting_key: &meeting.key,
            meeting_at: &meeting.at,
        })
    }

    fn sets_contact(&self, kind: &str, role: &str) -> bool {
        self.case
            .contact_set_by(role)
            .is_some_and(|(k, _)| k == kind)
    }

    fn booking_data(&self, review_id: &str, at: DateTime<Utc>) -> Value {
        let mut data = Map::new();
        self.meeting_key.put_in(&mut data, json!(review_id));
        self.meeting_at.put_in(&mut data, json!(rfc3339(at)));
        Value::Object(data)
    }

    fn held_data(&self, review_id: &str, at: DateTime<Utc>) -> Value {
        let mut data = Map::new();
        self.meeting_key.put_in(&mut data, json!(review_id));
        data.insert("held_at".into(), json!(rfc3339(at)));
        Value::Object(data)
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A bad cell (or a missing column): where it is and what is wrong, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    /// 1-based; 0 when the problem is the whole row.
    pub column: usize,
    pub heading: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.heading.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(
                f,
                "{}:{}: column `{}`: {}",
                self.line, self.column, self.heading, self.message
            )
        }
    }
}

/// Turns a snapshot into events, dated from the row's own dates; events that only record the
/// snapshot's knowledge (a review booked, proceedings running) are dated `as_of`. Every problem
/// in the file is reported; any problem means no events.
pub fn read(
    mapping: &Mapping,
    names: Names<'_>,
    csv_text: &str,
    as_of: DateTime<Utc>,
) -> Result<Vec<Event>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(csv_text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![csv_error(&e, 1)]),
    };
    let index = |heading: &str| headers.iter().position(|h| h == heading);
    let mut errors = Vec::new();
    let mut columns: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (field, heading, required) in mapping.columns.fields() {
        match (heading, index(heading.unwrap_or_default())) {
            (Some(_), Some(i)) => {
                columns.insert(field, i);
            }
            (Some(h), None) if required || !h.is_empty() => errors.push(RowError {
                line: 1,
                column: 0,
                heading: h.to_string(),
                message: format!("no such column in the header (mapped from `{field}`)"),
            }),
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut events = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(csv_error(&e, 0));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let row = Row {
            mapping,
            names,
            headers: &headers,
            columns: &columns,
            record: &record,
            line,
        };
        match row.events(as_of) {
            Ok(mut e) => events.append(&mut e),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

fn csv_error(e: &csv::Error, fallback_line: u64) -> RowError {
    let line = e.position().map_or(fallback_line, csv::Position::line);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} cells where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the row is not UTF-8 text".to_string(),
        _ => "the row cannot be read as CSV".to_string(),
    };
    RowError {
        line,
        column: 0,
        heading: String::new(),
        message,
    }
}

impl Columns {
    /// (field, heading, required) for every field.
    fn fields(&self) -> Vec<(&'static str, Option<&str>, bool)> {
        fn req<'c>(name: &'static str, h: &'c str) -> (&'static str, Option<&'c str>, bool) {
            (name, Some(h), true)
        }
        fn opt<'c>(
            name: &'static str,
            h: &'c Option<String>,
        ) -> (&'static str, Option<&'c str>, bool) {
            (name, h.as_deref(), false)
        }
        vec![
            req("case", &self.case),
            req("looked_after_since", &self.looked_after_since),
            req("legal_basis", &self.legal_basis),
            req("date_of_birth", &self.date_of_birth),
            opt("iro_name", &self.iro_name),
            req("iro_email", &self.iro_email),
            opt("social_worker_name", &self.social_worker_name),
            req("social_worker_email", &self.social_worker_email),
            opt("team_manager_name", &self.team_manager_name),
            req("team_manager_email", &self.team_manager_email),
            opt("reviews_held", &self.reviews_held),
            opt("last_review_held", &self.last_review_held),
            opt("next_review_at", &self.next_review_at),
            opt("recommendations", &self.recommendations),
            opt("record_distributed", &self.record_distributed),
            opt("in_proceedings", &self.in_proceedings),
            opt("guardian_name", &self.guardian_name),
            opt("guardian_email", &self.guardian_email),
            opt("legal_adviser_name", &self.legal_adviser_name),
            opt("legal_adviser_email", &self.legal_adviser_email),
            opt("sibling_group", &self.sibling_group),
            opt("parent_case", &self.parent_case),
        ]
    }
}

/// One row being read, collecting every problem in it.
struct Row<'a> {
    mapping: &'a Mapping,
    names: Names<'a>,
    headers: &'a csv::StringRecord,
    columns: &'a BTreeMap<&'static str, usize>,
    record: &'a csv::StringRecord,
    line: u64,
}

impl Row<'_> {
    fn cell(&self, field: &str) -> Option<(usize, &str)> {
        let i = *self.columns.get(field)?;
        let text = self.record.get(i)?;
        (!text.is_empty()).then_some((i, text))
    }

    fn error(&self, i: usize, message: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            column: i + 1,
            heading: self.headers.get(i).unwrap_or_default().to_string(),
            message: message.into(),
        }
    }

    fn missing(&self, field: &str) -> RowError {
        let i = self.columns.get(field).copied().unwrap_or(0);
        self.error(i, "is empty")
    }

    fn required(&self, field: &str, errors: &mut Vec<RowError>) -> Option<(usize, String)> {
        match self.cell(field) {
            Some((i, t)) => Some((i, t.to_string())),
            None => {
                errors.push(self.missing(field));
                None
            }
        }
    }

    fn date(&self, field: &str, errors: &mut Vec<RowError>) -> Option<NaiveDate> {
        let (i, text) = self.cell(field)?;
        let parsed = parse_date(text);
        if parsed.is_none() {
            errors.push(self.error(i, "is not a date such as 2027-01-21 or 21/01/2027"));
        }
        parsed
    }

    fn moment(&self, field: &str, errors: &mut Vec<RowError>) -> Option<DateTime<Utc>> {
        let (i, text) = self.cell(field)?;
        let parsed = parse_moment(text);
        if parsed.is_none() {
            errors.push(self.error(
                i,
                "is not a date or time such as 2027-01-21, 21/01/2027 14:00 or 2027-01-21T14:00:00Z",
            ));
        }
        parsed
    }

    fn contact(&self, name: &str, email: &str, errors: &mut Vec<RowError>) -> Option<Value> {
        let (i, address) = self.required(email, errors)?;
        if !address.contains('@') || address.contains(char::is_whitespace) {
            errors.push(self.error(i, "is not an email address"));
            return None;
        }
        let mut contact = Map::new();
        if let Some((_, n)) = self.cell(name) {
            contact.insert("name".into(), json!(n));
        }
        contact.insert("email".into(), json!(address));
        Some(Value::Object(contact))
    }

    fn yes(&self, field: &str) -> bool {
        self.cell(field)
            .is_some_and(|(_, t)| self.mapping.yes.iter().any(|y| y.eq_ignore_ascii_case(t)))
    }

    fn events(&self, as_of: DateTime<Utc>) -> Result<Vec<Event>, Vec<RowError>> {
        let mut errors = Vec::new();
        let case = self.required("case", &mut errors).map(|(_, c)| c);
        let since = match self.cell("looked_after_since") {
            Some(_) => self.moment("looked_after_since", &mut errors),
            None => {
                errors.push(self.missing("looked_after_since"));
                None
            }
        };
        let basis = self.required("legal_basis", &mut errors).and_then(|(i, b)| {
            let mapped = self.mapping.legal_basis.get(&b).cloned().unwrap_or(b);
            const BASES: [&str; 7] = ["s20", "s31", "s38", "s44", "s46", "remand", "other"];
            if BASES.contains(&mapped.as_str()) {
                Some(mapped)
            } else {
                errors.push(self.error(
                    i,
                    "is not a legal basis driftwatch knows; map it under `legal_basis` in the mapping",
                ));
                None
            }
        });
        let born = match self.cell("date_of_birth") {
            Some(_) => self.date("date_of_birth", &mut errors),
            None => {
                errors.push(self.missing("date_of_birth"));
                None
            }
        };
        // A child waiting for an IRO is a fact of the caseload (an allocation overdue), not a
        // bad cell: no IRO is recorded and the allocation shows as overdue.
        let iro = match self.cell("iro_email") {
            Some(_) => self.contact("iro_name", "iro_email", &mut errors).map(Some),
            None => Some(None),
        };
        let social_worker = self.contact("social_worker_name", "social_worker_email", &mut errors);
        let team_manager = self.contact("team_manager_name", "team_manager_email", &mut errors);
        let reviews = match self.cell("reviews_held") {
            None => 0,
            Some((i, t)) => t.parse::<u32>().unwrap_or_else(|_| {
                errors.push(self.error(i, "is not a whole number"));
                0
            }),
        };
        let last_review = self.moment("last_review_held", &mut errors);
        if reviews > 0 && last_review.is_none() && self.cell("last_review_held").is_none() {
            errors.push(self.missing("last_review_held"));
        }
        let next_review = self.moment("next_review_at", &mut errors);
        let recommendations = self.recommendations(&mut errors);
        let proceedings = self.yes("in_proceedings");
        let record_distributed = self.yes("record_distributed");
        let (guardian, adviser) = if proceedings {
            (
                self.contact("guardian_name", "guardian_email", &mut errors),
                self.contact("legal_adviser_name", "legal_adviser_email", &mut errors),
            )
        } else {
            (None, None)
        };
        let (
            Some(case),
            Some(since),
            Some(basis),
            Some(born),
            Some(iro),
            Some(social_worker),
            Some(team_manager),
        ) = (case, since, basis, born, iro, social_worker, team_manager)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }

        // Who the child's people are, by role, with the event type that records each.
        let owner = social_worker.clone();
        let mut people = vec![
            ("social_worker", social_worker),
            ("team_manager", team_manager),
        ];
        if let Some(iro) = iro {
            people.insert(0, ("iro", iro));
        }
        let mut in_proceedings = Vec::new();
        if let (Some(guardian), Some(adviser)) = (guardian, adviser) {
            in_proceedings = vec![("guardian", guardian), ("legal_adviser", adviser)];
        }
        let (Some(allocations), Some(proceedings)) = (
            self.allocations(people, &mut errors),
            self.allocations(in_proceedings, &mut errors),
        ) else {
            return Err(errors);
        };
        let names = self.names;

        let mut out = Vec::new();
        // Ids come from the facts an event stands for: its data, and its time when that comes
        // from the row (an event dated at the import would get a new id every week, and so
        // would the booking of a meeting that has since passed: it is known by its data alone).
        let mut add = |kind: &str, at: DateTime<Utc>, data: Value| {
            let data = match data {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            let from_row = (at != as_of && kind != names.booked).then_some(at);
            out.push(Event {
                id: snapshot_id(&case, kind, from_row, &data),
                case: case.clone(),
                kind: kind.to_string(),
                at,
                data,
                source: Some(SOURCE.to_string()),
            });
        };
        let start = json!(rfc3339(since));
        add(
            names.opened,
            since,
            json!({"start": start, "legal_basis": basis, "date_of_birth": born.to_string()}),
        );
        // A child already in care has been told to the IRO service, has an IRO (and has been
        // told who it is), a social worker and a care plan: the snapshot says so, so these
        // first steps are not reported as overdue. They are dated just after looked-after
        // status began (24 hours after the start under section 20), when the obligations they
        // meet opened.
        let began = since
            + if basis == "s20" {
                chrono::Duration::hours(24)
            } else {
                chrono::Duration::zero()
            };
        let minute = |n: i64| began + chrono::Duration::minutes(n);
        add("iro_service_notified", minute(1), json!({}));
        add("care_plan_updated", minute(1), json!({}));
        for (kind, data) in allocations {
            let told_of_iro = names.sets_contact(&kind, "iro");
            add(&kind, minute(1), Value::Object(data));
            if told_of_iro {
                add(
                    "child_told_of_iro",
                    minute(1) + chrono::Duration::seconds(30),
                    json!({}),
                );
            }
        }
        let mut links = Map::new();
        for field in ["sibling_group", "parent_case"] {
            if let Some((_, text)) = self.cell(field) {
                links.insert(field.to_string(), json!(text.trim()));
            }
        }
        if !links.is_empty() {
            add("family_links_recorded", as_of, Value::Object(links));
        }
        if let Some(last) = last_review {
            // Reviews before the last: one stands for all of them (the rules count whether there
            // were earlier reviews, not their dates), held just after the start, its record
            // distributed.
            if reviews >= 2 {
                let earlier = minute(2);
                add(
                    names.held,
                    earlier,
                    names.held_data("snapshot-earlier", earlier),
                );
                add(
                    "record_distributed",
                    minute(3),
                    json!({"review_id": "snapshot-earlier"}),
                );
                add("care_plan_updated", minute(4), json!({}));
                // A child past their second review has had their permanence plan considered.
                add("permanence_plan_identified", minute(4), json!({}));
            }
            let review_id = review_id(last);
            add(names.held, last, names.held_data(&review_id, last));
            if record_distributed {
                add(
                    "record_distributed",
                    last + chrono::Duration::minutes(1),
                    json!({"review_id": review_id}),
                );
            }
            if !recommendations.is_empty() {
                let items: Vec<Value> = recommendations
                    .iter()
                    .map(|(id, due)| json!({"id": id, "owner": owner, "due": due.to_string()}))
                    .collect();
                add(
                    "recommendations_issued",
                    last,
                    json!({"review_id": review_id, "recommendations": items}),
                );
            }
        }
        if let Some(meeting) = next_review {
            add(
                names.booked,
                as_of.min(meeting),
                names.booking_data(&review_id(meeting), meeting),
            );
        }
        for (kind, data) in proceedings {
            add(&kind, as_of, Value::Object(data));
        }
        Ok(out)
    }

    /// The events that record these people, one per event type (in the order the roles come),
    /// each with its people at the fields the case model gives. A role no event records is a
    /// problem with the rules, reported on the row.
    fn allocations(
        &self,
        people: Vec<(&str, Value)>,
        errors: &mut Vec<RowError>,
    ) -> Option<Vec<(String, Map<String, Value>)>> {
        let mut events: Vec<(String, Map<String, Value>)> = Vec::new();
        for (role, contact) in people {
            let Some((kind, field)) = self.names.case.contact_set_by(role) else {
                errors.push(RowError {
                    line: self.line,
                    column: 0,
                    heading: String::new(),
                    message: format!(
                        "the rules' case model has no event that sets the `{role}` contact \
                         (`updates:` in the vocabulary), so the snapshot cannot record it"
                    ),
                });
                return None;
            };
            let at = match events.iter().position(|(k, _)| k == kind) {
                Some(i) => i,
                None => {
                    events.push((kind.to_string(), Map::new()));
                    events.len() - 1
                }
            };
            field.put_in(&mut events[at].1, contact);
        }
        Some(events)
    }

    /// `ID due DATE; ID due DATE`.
    fn recommendations(&self, errors: &mut Vec<RowError>) -> Vec<(String, NaiveDate)> {
        let Some((i, text)) = self.cell("recommendations") else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = part
                .split_once(" due ")
                .and_then(|(id, due)| Some((id.trim().to_string(), parse_date(due.trim())?)))
                .filter(|(id, _)| !id.is_empty());
            match parsed {
                Some(r) => found.push(r),
                None => {
                    errors.push(self.error(
                        i,
                        "each recommendation must read `ID due DATE`, separated by `;`",
                    ));
                    break;
                }
            }
        }
        if self.cell("last_review_held").is_none() && !found.is_empty() {
            errors.push(self.error(
                i,
                "recommendations need the review they came from (`last_review_held`)",
            ));
        }
        found
    }
}

/// A review's id from its day: the booking in one week's file and the review held in the next
/// are the same review, so holding it ends its preparation.
fn review_id(meeting: DateTime<Utc>) -> String {
    format!("snapshot-{}", localtime::date_of(meeting))
}

/// Whether an event of this type, new to a case driftwatch already has, happened at the import
/// rather than when the row says: a contact who changed since the last file changed now, not
/// when the child came into care, so the new allocation follows the old one.
pub fn dated_at_import_when_new(kind: &str, case: &CaseModel) -> bool {
    case.only_sets_contacts(kind)
}

/// `snapshot:CASE:KIND:HASH`, the hash over the event's time (if any) and data: the same facts
/// give the same id.
fn snapshot_id(
    case: &str,
    kind: &str,
    at: Option<DateTime<Utc>>,
    data: &Map<String, Value>,
) -> String {
    let at = at.map(|t| t.timestamp()).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(case.as_bytes())
        .chain_update([0x1f])
        .chain_update(kind.as_bytes())
        .chain_update([0x1f])
        .chain_update(at.to_be_bytes())
        .chain_update(serde_json::to_string(data).unwrap_or_default().as_bytes())
        .finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let case: String = case.chars().take(120).collect();
    format!("snapshot:{case}:{kind}:{hex}")
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y"))
        .ok()
}

/// A date (the start of that day, Europe/London), a local date and time, or an RFC 3339 instant.
fn parse_moment(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(localtime::instant(t));
        }
    }
    parse_date(text).map(localtime::start_of)
}
