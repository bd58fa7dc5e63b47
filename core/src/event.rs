//! The event envelope a council's case system sends: `{id, case, type, at, data}`.
//!
//! Owns parsing and checking the envelope (JSON, JSON Lines) and the `Contact` shape. What the
//! `data` of each event type must hold is the rules' vocabulary (`rules::vocabulary`), not this
//! module's: the engine hard-codes no event names. Must not log or print `data`: it carries
//! children's personal data.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Longest id, case reference or type accepted, so a hostile sender cannot bloat keys.
pub const MAX_NAME_LEN: usize = 200;

/// The most items a `contacts` or `list` field may hold: far more people than are ever invited
/// to one review, or recommendations made at one, and few enough that one event cannot make
/// the store and the scheduler do unbounded work.
pub const MAX_LIST_ITEMS: usize = 500;

/// Whether a character may never appear in a value that can reach a mail header or a log line
/// (the envelope's `id`, `case`, `type` and `source`; a contact's `name`, `email` and `role`):
/// the C0 controls (tab, CR and LF included), DEL, the C1 controls (NEL included) and the
/// Unicode line and paragraph separators.
pub fn breaks_a_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether a character may never appear in free text (any other string in `data`, which reaches
/// only message bodies): as [`breaks_a_line`], except that tab, CR and LF are kept.
pub fn forbidden_in_text(c: char) -> bool {
    breaks_a_line(c) && !matches!(c, '\t' | '\n' | '\r')
}

/// What a refused name or contact field is told.
pub const NO_CONTROL_CHARACTERS: &str =
    "must not contain control characters or line breaks (CR, LF, NUL, NEL, U+2028, U+2029, ...)";

/// What a refused string in `data` is told.
pub const NO_CONTROL_CHARACTERS_IN_TEXT: &str =
    "must not contain control characters other than tab, CR and LF";

/// One thing that happened on a child's case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique across the council: the same id sent twice is the same event.
    pub id: String,
    /// The case reference (never the child's name).
    pub case: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (not when driftwatch heard of it).
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub data: Map<String, Value>,
    /// Where the event came from, when not the case system's live feed (an import, driftwatch
    /// itself for derived events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A person driftwatch can write to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub email: String,
}

/// A rejected event: which event, which field, what is wrong. Carries no field values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EventError {
    /// The event's id, or a description such as `line 4` when it has none.
    pub event: String,
    /// The field at fault, as a path: `at`, `data.meeting_at`, `data.recommendations[1].due`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}: {}: {}", self.event, self.field, self.message)
    }
}

impl EventError {
    pub fn new(event: &str, field: &str, message: impl Into<String>) -> Self {
        EventError {
            event: event.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

const ENVELOPE_FIELDS: [&str; 6] = ["id", "case", "type", "at", "data", "source"];

/// The years an event's time and its dates may fall in. Anything outside is a typing or
/// conversion mistake (a year 0001 from an empty date, 20277 for 2027), and is refused rather
/// than planned centuries away.
pub const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2199;

/// A date written exactly `YYYY-MM-DD` (`2027-01-21`): no single-digit month or day, no
/// spaces, no time. The one date format driftwatch reads from events, query strings and forms.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    shape
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

/// An RFC 3339 timestamp exactly as RFC 3339's grammar has it: `2027-01-21T14:00:00Z`,
/// `2027-07-06T10:00:00.5+01:00` (`T` and `Z` may be lower case). No space for the `T`, no
/// missing seconds or offset, no spaces around it.
pub fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let head = b.len() >= 20
        && parse_date(text.get(..10)?).is_some()
        && matches!(b[10], b'T' | b't')
        && digits(11, 13)
        && b[13] == b':'
        && digits(14, 16)
        && b[16] == b':'
        && digits(17, 19);
    if !head {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &fraction[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    };
    offset
        .then(|| DateTime::parse_from_rfc3339(text).ok())
        .flatten()
}

/// Whether a date falls in [`PLAUSIBLE_YEARS`].
pub fn plausible(date: NaiveDate) -> bool {
    use chrono::Datelike;
    PLAUSIBLE_YEARS.contains(&date.year())
}

impl Event {
    /// Checks the envelope of one JSON value and builds the event. `fallback` names the event in
    /// errors when it has no usable id (for example `line 4`).
    pub fn from_value(value: &Value, fallback: &str) -> Result<Event, EventError> {
        let Some(obj) = value.as_object() else {
            return Err(EventError::new(
                fallback,
                "(event)",
                "must be a JSON object",
            ));
        };
        let id = match obj.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => {
                return Err(EventError::new(fallback, "id", "must not be empty"));
            }
            Some(_) => return Err(EventError::new(fallback, "id", "must be a string")),
            None => return Err(EventError::new(fallback, "id", "is missing")),
        };
        let name = id.clone();
        let err = |field: &str, msg: &str| EventError::new(&name, field, msg);
        if id.len() > MAX_NAME_LEN {
            return Err(err("id", "is longer than 200 characters"));
        }
        if id.chars().any(breaks_a_line) {
            return Err(EventError::new(fallback, "id", NO_CONTROL_CHARACTERS));
        }
        if let Some(extra) = obj.keys().find(|k| !ENVELOPE_FIELDS.contains(&k.as_str())) {
            return Err(EventError::new(
                &name,
                extra,
                "is not an envelope field (id, case, type, at, data, source); put it in data",
            ));
        }
        let case = required_name(obj, "case").map_err(|m| err("case", m))?;
        let kind = required_name(obj, "type").map_err(|m| err("type", m))?;
        let at = match obj.get("at") {
            Some(Value::String(s)) => parse_timestamp(s)
                .ok_or_else(|| {
                    err(
                        "at",
                        "is not an RFC 3339 timestamp such as 2027-01-07T10:30:00Z",
                    )
                })?
                .with_timezone(&Utc),
            Some(_) => return Err(err("at", "must be an RFC 3339 timestamp string")),
            None => return Err(err("at", "is missing")),
        };
        if !plausible(at.date_naive()) {
            return Err(err("at", "must fall in the years 1900 to 2199"));
        }
        let data = match obj.get("data") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(err("data", "must be a JSON object")),
        };
        if let Some((field, message)) = bad_text_in(&data, "data") {
            return Err(err(&field, message));
        }
        let source = match obj.get("source") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().any(breaks_a_line) => {
                return Err(err("source", NO_CONTROL_CHARACTERS));
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(err("source", "must be a string")),
        };
        Ok(Event {
            id,
            case,
            kind,
            at,
            data,
            source,
        })
    }

    /// The event as the JSON value conditions, paths and templates see.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The first string in `data`, at any depth, holding a character free text may not hold, or a
/// field name holding a control character: its path (`data.recommendations[1].summary`) and the
/// problem, never the value.
fn bad_text_in(fields: &Map<String, Value>, path: &str) -> Option<(String, &'static str)> {
    if fields.keys().any(|k| k.chars().any(breaks_a_line)) {
        return Some((path.to_string(), "has a field name with control characters"));
    }
    fields
        .iter()
        .filter(|(_, v)| !clean(v))
        .find_map(|(k, v)| bad_text(v, &format!("{path}.{k}")))
}

fn bad_text(value: &Value, path: &str) -> Option<(String, &'static str)> {
    match value {
        Value::String(_) => Some((path.to_string(), NO_CONTROL_CHARACTERS_IN_TEXT)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, v)| !clean(v))
            .find_map(|(i, v)| bad_text(v, &format!("{path}[{i}]"))),
        Value::Object(fields) => bad_text_in(fields, path),
        _ => None,
    }
}

/// Whether a value holds no forbidden character anywhere (checked before any path is built).
fn clean(value: &Value) -> bool {
    match value {
        Value::String(s) => !s.chars().any(forbidden_in_text),
        Value::Array(items) => items.iter().all(clean),
        Value::Object(fields) => fields
            .iter()
            .all(|(k, v)| !k.chars().any(breaks_a_line) && clean(v)),
        _ => true,
    }
}

fn required_name(obj: &Map<String, Value>, field: &str) -> Result<String, &'static str> {
    match obj.get(field) {
        Some(Value::String(s)) if s.trim().is_empty() => Err("must not be empty"),
        Some(Value::String(s)) if s.len() > MAX_NAME_LEN => Err("is longer than 200 characters"),
        Some(Value::String(s)) if s.chars().any(breaks_a_line) => Err(NO_CONTROL_CHARACTERS),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err("must be a string"),
        None => Err("is missing"),
    }
}

/// The first id two events of a batch share with different contents: the batch cannot say
/// which of them happened. Identical repeats are not a conflict (they count once).
pub fn conflicting_id(events: &[Event]) -> Option<&str> {
    let mut seen: std::collections::HashMap<&str, &Event> = std::collections::HashMap::new();
    events
        .iter()
        .find_map(|e| match seen.insert(e.id.as_str(), e) {
            Some(earlier) if earlier != e => Some(e.id.as_str()),
            _ => None,
        })
}

/// A problem on one line of a JSON Lines file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    pub line: usize,
    pub error: EventError,
}

/// Reads JSON Lines: one event per non-blank line. Returns every bad line, not just the first,
/// so a whole file can be fixed in one pass.
pub fn parse_json_lines(text: &str) -> Result<Vec<Event>, Vec<LineError>> {
    numbered_json_lines(text).map(|events| events.into_iter().map(|(_, e)| e).collect())
}

/// The same, keeping each event's line number for later error messages.
pub fn numbered_json_lines(text: &str) -> Result<Vec<(usize, Event)>, Vec<LineError>> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match json_line(line, i + 1) {
            Some(Ok(e)) => events.push((i + 1, e)),
            Some(Err(error)) => errors.push(error),
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

/// Line `number` of a JSON Lines file as an event; `None` when it is blank. For a reader that
/// goes through a file a line at a time rather than holding it.
pub fn json_line(line: &str, number: usize) -> Option<Result<Event, LineError>> {
    if line.trim().is_empty() {
        return None;
    }
    let fallback = format!("on line {number}");
    let parsed = serde_json::from_str::<Value>(line)
        .map_err(|e| {
            EventError::new(
                &fallback,
                "(json)",
                format!("is not valid JSON (column {})", e.column()),
            )
        })
        .and_then(|v| Event::from_value(&v, &fallback));
    Some(parsed.map_err(|error| LineError {
        line: number,
        error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Event, EventError> {
        Event::from_value(&v, "line 1")
    }

    #[test]
    fn a_good_envelope_parses() {
        let e = parse(json!({"id": "e1", "case": "C1", "type": "review_held",
            "at": "2027-01-07T10:30:00+00:00", "data": {"review_id": "R1"}}))
        .unwrap();
        assert_eq!(e.kind, "review_held");
        assert_eq!(e.at.to_rfc3339(), "2027-01-07T10:30:00+00:00");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                json!({"case": "C", "type": "t", "at": "2027-01-01T00:00:00Z"}),
                "event line 1: id: is missing",
            ),
            (
                json!({"id": "e", "type": "t", "at": "2027-01-01T00:00:00Z"}),
                "event e: case: is missing",
            ),
            (
                json!({"id": "e", "case": "C", "type": 3, "at": "2027-01-01T00:00:00Z"}),
                "event e: type: must be a string",
            ),
            (
                json!({"id": "e", "case": "C", "type": "t", "at": "yesterday"}),
                "event e: at: is not an RFC 3339 timestamp such as 2027-01-07T10:30:00Z",
            ),
            (
                json!({"id": "e", "case": "C", "type": "t", "at": "2027-01-01T00:00:00Z", "data": []}),
                "event e: data: must be a JSON object",
            ),
            (
                json!({"id": "e", "case": "C", "type": "t", "at": "2027-01-01T00:00:00Z", "child": "x"}),
                "event e: child: is not an envelope field (id, case, type, at, data, source); put it in data",
            ),
            (
                json!(["not", "an", "object"]),
                "event line 1: (event): must be a JSON object",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn control_characters_are_refused_by_field_and_free_text_keeps_line_breaks() {
        let base = json!({"id": "e", "case": "C", "type": "t", "at": "2027-01-01T00:00:00Z"});
        for c in [
            "\r\n", "\0", "\u{85}", "\u{2028}", "\u{2029}", "\u{7f}", "\u{9f}", "\t",
        ] {
            let mut bad = base.clone();
            bad["case"] = json!(format!("C{c}1"));
            let e = parse(bad).unwrap_err();
            assert_eq!((e.field.as_str(), e.event.as_str()), ("case", "e"));
            let mut bad = base.clone();
            bad["id"] = json!(format!("e{c}1"));
            assert_eq!(parse(bad).unwrap_err().event, "line 1", "{c:?}");
        }
        let mut text = base.clone();
        text["data"] = json!({"notes": [{"summary": "two\r\nlines\tand a tab"}]});
        assert!(parse(text.clone()).is_ok());
        text["data"]["notes"][0]["summary"] = json!("a\u{0}b");
        let e = parse(text.clone()).unwrap_err();
        assert_eq!(e.field, "data.notes[0].summary");
        assert!(!e.to_string().contains("a\u{0}b"));
        text["data"] = json!({"x\ny": 1});
        assert_eq!(parse(text).unwrap_err().field, "data");
    }

    #[test]
    fn only_rfc3339_and_plain_dates_are_read() {
        for good in [
            "2027-01-21T14:00:00Z",
            "2027-01-21t14:00:00z",
            "2027-07-06T10:00:00+01:00",
            "2027-07-06T10:00:00.123456-05:30",
        ] {
            assert!(parse_timestamp(good).is_some(), "{good}");
        }
        for bad in [
            "2027-03-01 09:00:00Z",
            " 2027-03-01T09:00:00Z",
            "2027-03-01T09:00:00Z ",
            "2027-03-01T09:00Z",
            "2027-03-01T09:00:00",
            "2027-3-01T09:00:00Z",
            "2027-03-01T09:00:00.Z",
            "2027-03-01T09:00:00+0100",
            "2027-03-01T09:00:00+01",
            "2027-02-30T09:00:00Z",
            "2027-03-01",
            "",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            parse_date("2015-06-01"),
            NaiveDate::from_ymd_opt(2015, 6, 1)
        );
        for bad in [
            "2015-6-1",
            " 2015-06-01",
            "2015-06-01 ",
            "2015-06-1",
            "2015/06/01",
            "2015-13-01",
            "+2015-06-01",
            "2015-06-01T00:00:00Z",
        ] {
            assert!(parse_date(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn json_lines_reports_every_bad_line() {
        let text = "{\"id\":\"a\",\"case\":\"C\",\"type\":\"t\",\"at\":\"2027-01-01T00:00:00Z\"}\n\n{oops\n{\"id\":\"b\"}\n";
        let errors = parse_json_lines(text).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].line, 3);
        assert_eq!(errors[1].to_string(), "line 4: event b: case: is missing");
    }
}
