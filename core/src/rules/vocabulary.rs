//! The event vocabulary: which event types exist and what their `data` holds.
//!
//! The vocabulary is written in the rules files (`events:`), not in code, so a council can add an
//! event type without a release. Owns field types, field paths (`data.meeting_at`, `item.due`,
//! `at`) and checking an event's data against its type. Must not hold values in errors: event
//! data is personal.

use crate::event::{Event, EventError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The kind of value a field holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "items")]
pub enum FieldType {
    String,
    /// `YYYY-MM-DD`, a local date.
    Date,
    /// An RFC 3339 timestamp.
    Datetime,
    Boolean,
    Number,
    /// `{name, email}` (and `role` when it is a participant).
    Contact,
    /// A list of contacts.
    Contacts,
    /// A list of objects with the given fields, for example recommendations.
    List(Fields),
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Boolean => "boolean",
            FieldType::Number => "number",
            FieldType::Contact => "contact",
            FieldType::Contacts => "contacts",
            FieldType::List(_) => "list",
        }
    }

    /// Parses a simple type name (`list` needs its items, so it is handled by the loader).
    pub fn simple(name: &str) -> Option<FieldType> {
        Some(match name {
            "string" => FieldType::String,
            "date" => FieldType::Date,
            "datetime" => FieldType::Datetime,
            "boolean" => FieldType::Boolean,
            "number" => FieldType::Number,
            "contact" => FieldType::Contact,
            "contacts" => FieldType::Contacts,
            _ => return None,
        })
    }

    /// Whether a value of this type can anchor a deadline.
    pub fn is_moment(&self) -> bool {
        matches!(self, FieldType::Date | FieldType::Datetime)
    }
}

/// One field of an event's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldSpec {
    #[serde(flatten)]
    pub ty: FieldType,
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub type Fields = BTreeMap<String, FieldSpec>;

/// One event type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub fields: Fields,
}

/// The event driftwatch records when a recipient acknowledges or snoozes a reminder or
/// escalation through its link. It is always part of the vocabulary and cannot be posted.
pub const ACKNOWLEDGED: &str = "notification_acknowledged";

/// The fields of [`ACKNOWLEDGED`]: the notification's idempotency key, `acknowledge` or
/// `snooze`, and for a snooze the working day to be reminded again.
pub fn acknowledged_spec() -> EventSpec {
    let field =
        |ty: FieldType, optional: bool, one_of: Option<Vec<String>>, text: &str| FieldSpec {
            ty,
            optional,
            one_of,
            description: Some(text.to_string()),
        };
    EventSpec {
        description: Some(
            "Recorded by driftwatch when a recipient acknowledges or snoozes a reminder or \
             escalation through the link in it"
                .into(),
        ),
        fields: Fields::from([
            (
                "notification".to_string(),
                field(
                    FieldType::String,
                    false,
                    None,
                    "the notification's idempotency key",
                ),
            ),
            (
                "action".to_string(),
                field(
                    FieldType::String,
                    false,
                    Some(vec!["acknowledge".into(), "snooze".into()]),
                    "acknowledge, or snooze until a later working day",
                ),
            ),
            (
                "until".to_string(),
                field(
                    FieldType::Date,
                    true,
                    None,
                    "for a snooze: the day to be reminded again",
                ),
            ),
        ]),
    }
}

/// Every event type the rules know.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Vocabulary {
    pub events: BTreeMap<String, EventSpec>,
}

impl Vocabulary {
    /// Checks an event's type and data. The error names the event and the field, never a value.
    pub fn validate(&self, event: &Event) -> Result<(), EventError> {
        let Some(spec) = self.events.get(&event.kind) else {
            // Never repeat the sent value: the field is named, and `driftwatch check` lists
            // the declared types.
            return Err(EventError::new(
                &event.id,
                "type",
                "is not an event type the rules declare",
            ));
        };
        check_fields(&spec.fields, &event.data, "data").map_err(|(field, msg)| EventError {
            event: event.id.clone(),
            field,
            message: msg,
        })
    }
}

fn check_fields(
    fields: &Fields,
    data: &Map<String, Value>,
    prefix: &str,
) -> Result<(), (String, String)> {
    for (name, spec) in fields {
        let path = format!("{prefix}.{name}");
        match data.get(name) {
            None | Some(Value::Null) if spec.optional => {}
            None | Some(Value::Null) => return Err((path, "is required".into())),
            Some(v) => check_value(spec, v, &path)?,
        }
    }
    Ok(())
}

fn check_value(spec: &FieldSpec, value: &Value, path: &str) -> Result<(), (String, String)> {
    let fail = |msg: &str| Err((path.to_string(), msg.to_string()));
    let in_years = |d: Option<NaiveDate>| match d {
        Some(d) if crate::event::plausible(d) => Ok(()),
        _ => fail("must fall in the years 1900 to 2199"),
    };
    match (&spec.ty, value) {
        (FieldType::String, Value::String(s)) => {
            if let Some(allowed) = &spec.one_of
                && !allowed.iter().any(|a| a == s)
            {
                return fail(&format!("must be one of: {}", allowed.join(", ")));
            }
            Ok(())
        }
        (FieldType::String, _) => fail("must be a string"),
        (FieldType::Date, Value::String(s)) if crate::event::parse_date(s).is_some() => {
            in_years(crate::event::parse_date(s))
        }
        (FieldType::Date, _) => fail("must be a date such as 2027-01-21"),
        (FieldType::Datetime, Value::String(s)) if crate::event::parse_timestamp(s).is_some() => {
            in_years(crate::event::parse_timestamp(s).map(|t| t.date_naive()))
        }
        (FieldType::Datetime, _) => {
            fail("must be an RFC 3339 timestamp such as 2027-01-21T14:00:00Z")
        }
        (FieldType::Boolean, Value::Bool(_)) => Ok(()),
        (FieldType::Boolean, _) => fail("must be true or false"),
        (FieldType::Number, Value::Number(_)) => Ok(()),
        (FieldType::Number, _) => fail("must be a number"),
        (FieldType::Contact, v) => check_contact(v, path),
        (FieldType::Contacts | FieldType::List(_), Value::Array(items))
            if items.len() > crate::event::MAX_LIST_ITEMS =>
        {
            fail(&format!(
                "has more than {} items, the most an event may carry",
                crate::event::MAX_LIST_ITEMS
            ))
        }
        (FieldType::Contacts, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_contact(item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (FieldType::Contacts, _) => fail("must be a list of contacts"),
        (FieldType::List(fields), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                match item {
                    Value::Object(obj) => check_fields(fields, obj, &item_path)?,
                    _ => return Err((item_path, "must be an object".into())),
                }
            }
            Ok(())
        }
        (FieldType::List(_), _) => fail("must be a list"),
    }
}

fn check_contact(value: &Value, path: &str) -> Result<(), (String, String)> {
    let Value::Object(obj) = value else {
        return Err((path.to_string(), "must be a contact: {name, email}".into()));
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "name" | "email" | "role") {
            return Err((
                format!("{path}.{key}"),
                "is not a contact field (name, email, role)".into(),
            ));
        }
    }
    match obj.get("email") {
        Some(Value::String(e)) if plausible_email(e) => {}
        Some(_) => return Err((format!("{path}.email"), "is not an email address".into())),
        None => return Err((format!("{path}.email"), "is required".into())),
    }
    for key in ["name", "role"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            // A name reaches a mail header: no line can be slipped in.
            Some(Value::String(s)) if s.chars().any(crate::event::breaks_a_line) => {
                return Err((
                    format!("{path}.{key}"),
                    crate::event::NO_CONTROL_CHARACTERS.into(),
                ));
            }
            Some(Value::String(_)) => {}
            Some(_) => return Err((format!("{path}.{key}"), "must be a string".into())),
        }
    }
    Ok(())
}

/// One `@`, something either side, no spaces or angle brackets: enough to stop header injection
/// and obvious mistakes without pretending to validate RFC 5322.
pub fn plausible_email(e: &str) -> bool {
    let mut parts = e.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

/// Where a field path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The event's own time.
    At,
    /// The event's data.
    Data,
    /// The current item when a rule opens one obligation per list item (`for_each`).
    Item,
}

/// A path to a value in an event: `at`, `data.meeting_at`, `data.iro.email`, `item.due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub root: Root,
    pub segments: Vec<String>,
    text: String,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for FieldPath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let mut parts = text.split('.');
        let root = match parts.next() {
            Some("at") => Root::At,
            Some("data") => Root::Data,
            Some("item") => Root::Item,
            _ => {
                return Err(format!(
                    "`{text}` is not a field path: write `at`, `data.FIELD` or `item.FIELD`"
                ));
            }
        };
        let segments: Vec<String> = parts.map(str::to_string).collect();
        let bad = segments
            .iter()
            .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if bad
            || (root == Root::At && !segments.is_empty())
            || (root == Root::Data && segments.is_empty())
        {
            return Err(format!(
                "`{text}` is not a field path: write `at`, `data.FIELD` or `item.FIELD`"
            ));
        }
        Ok(FieldPath {
            root,
            segments,
            text: text.to_string(),
        })
    }
}

impl FieldPath {
    /// The path's value in an event (and its current list item), if present and not null.
    pub fn resolve(&self, event: &Event, item: Option<&Value>) -> Option<Value> {
        self.resolve_in(&event.data, event.at, item)
    }

    /// The same against data that may have been merged from several events.
    pub fn resolve_in(
        &self,
        data: &Map<String, Value>,
        at: DateTime<Utc>,
        item: Option<&Value>,
    ) -> Option<Value> {
        let mut current = match self.root {
            Root::At => return Some(Value::String(at.to_rfc3339())),
            Root::Data => data.get(self.segments.first()?)?,
            Root::Item => item?,
        };
        let rest = match self.root {
            Root::Data => &self.segments[1..],
            _ => &self.segments[..],
        };
        for seg in rest {
            current = current.get(seg)?;
        }
        (!current.is_null()).then(|| current.clone())
    }

    /// Sets this path's value in event data, making the objects on the way. Only a `data.`
    /// path names a place in the data; any other does nothing.
    pub fn put_in(&self, data: &mut Map<String, Value>, value: Value) {
        if self.root != Root::Data {
            return;
        }
        let Some((last, on_the_way)) = self.segments.split_last() else {
            return;
        };
        let mut here = data;
        for seg in on_the_way {
            let next = here
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            let Value::Object(inner) = next else { return };
            here = inner;
        }
        here.insert(last.clone(), value);
    }

    /// The type of the value this path names in an event type, checking every step exists.
    /// `item_fields` are the fields of the list a `for_each` walks, if any.
    pub fn type_in(
        &self,
        spec: &EventSpec,
        item_fields: Option<&Fields>,
    ) -> Result<FieldSpec, String> {
        let (fields, rest): (&Fields, &[String]) = match self.root {
            Root::At => {
                return Ok(FieldSpec {
                    ty: FieldType::Datetime,
                    optional: false,
                    one_of: None,
                    description: None,
                });
            }
            Root::Data => (&spec.fields, &self.segments[..]),
            Root::Item => match item_fields {
                Some(f) => (f, &self.segments[..]),
                None => {
                    return Err(format!(
                        "`{self}` uses `item`, but the rule has no `for_each`"
                    ));
                }
            },
        };
        let Some((first, rest)) = rest.split_first() else {
            return Err(format!(
                "`{self}` names the whole item: name one of its fields"
            ));
        };
        let Some(mut found) = fields.get(first).cloned() else {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(format!(
                "`{self}`: no field `{first}` (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        };
        for (i, seg) in rest.iter().enumerate() {
            found = match &found.ty {
                FieldType::Contact
                    if matches!(seg.as_str(), "name" | "email" | "role") && i == rest.len() - 1 =>
                {
                    FieldSpec {
                        ty: FieldType::String,
                        optional: true,
                        one_of: None,
                        description: None,
                    }
                }
                FieldType::Contact => {
                    return Err(format!("`{self}`: a contact has only name, email and role"));
                }
                FieldType::List(_) => {
                    return Err(format!(
                        "`{self}` reaches inside a list; walk it with `for_each` and use `item.FIELD`"
                    ));
                }
                other => return Err(format!("`{self}`: a {} has no fields", other.name())),
            };
        }
        if matches!(found.ty, FieldType::List(_)) || rest.is_empty() {
            return Ok(found);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vocab() -> Vocabulary {
        let field = |ty| FieldSpec {
            ty,
            optional: false,
            one_of: None,
            description: None,
        };
        let mut rec = Fields::new();
        rec.insert("id".into(), field(FieldType::String));
        rec.insert("due".into(), field(FieldType::Date));
        let mut fields = Fields::new();
        fields.insert("meeting_at".into(), field(FieldType::Datetime));
        fields.insert("iro".into(), field(FieldType::Contact));
        fields.insert("recommendations".into(), field(FieldType::List(rec)));
        fields.insert(
            "participants".into(),
            FieldSpec {
                optional: true,
                ..field(FieldType::Contacts)
            },
        );
        let mut v = Vocabulary::default();
        v.events.insert(
            "review_scheduled".into(),
            EventSpec {
                description: None,
                fields,
            },
        );
        v
    }

    fn event(data: Value) -> Event {
        Event::from_value(
            &json!({"id": "e1", "case": "C1", "type": "review_scheduled", "at": "2027-01-01T09:00:00Z", "data": data}),
            "x",
        )
        .unwrap()
    }

    #[test]
    fn validation_names_the_exact_field() {
        let v = vocab();
        let ok = json!({"meeting_at": "2027-01-21T14:00:00Z", "iro": {"name": "A", "email": "a@x.org"}, "recommendations": []});
        assert!(v.validate(&event(ok.clone())).is_ok());
        let mut bad = ok.clone();
        bad["recommendations"] =
            json!([{"id": "r1", "due": "2027-02-01"}, {"id": "r2", "due": "soon"}]);
        assert_eq!(
            v.validate(&event(bad)).unwrap_err().to_string(),
            "event e1: data.recommendations[1].due: must be a date such as 2027-01-21"
        );
        let mut bad = ok.clone();
        bad["iro"] = json!({"email": "not an email"});
        assert_eq!(v.validate(&event(bad)).unwrap_err().field, "data.iro.email");
        let mut bad = ok;
        bad.as_object_mut().unwrap().remove("meeting_at");
        assert_eq!(
            v.validate(&event(bad)).unwrap_err().to_string(),
            "event e1: data.meeting_at: is required"
        );
    }

    #[test]
    fn paths_are_type_checked_against_the_vocabulary() {
        let v = vocab();
        let spec = &v.events["review_scheduled"];
        let p: FieldPath = "data.meeting_at".parse().unwrap();
        assert_eq!(p.type_in(spec, None).unwrap().ty, FieldType::Datetime);
        let p: FieldPath = "data.iro.email".parse().unwrap();
        assert_eq!(p.type_in(spec, None).unwrap().ty, FieldType::String);
        let p: FieldPath = "data.meting_at".parse().unwrap();
        assert!(
            p.type_in(spec, None)
                .unwrap_err()
                .contains("no field `meting_at`")
        );
        let p: FieldPath = "item.due".parse().unwrap();
        assert!(p.type_in(spec, None).is_err());
        assert!("meeting_at".parse::<FieldPath>().is_err());
        assert!("data.".parse::<FieldPath>().is_err());
    }

    #[test]
    fn email_plausibility() {
        assert!(plausible_email("iro.one@council.gov.uk"));
        for bad in [
            "",
            "a@",
            "@b.org",
            "a@b",
            "a b@c.org",
            "a@b.org\r\nBcc: x@y.org",
            "a@@b.org",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }
}
