//! One minijinja engine for both rule conditions (`when:`) and message templates, so admins learn
//! one language.
//!
//! Owns compiling and evaluating them with undefined values treated as errors (a typo must fail
//! loudly, not render empty). Templates cannot reach files or the environment: the engine has no
//! loader and no functions beyond the few registered here. Must not decide what to send.

use crate::diagnostic::Diagnostic;
use chrono::{Datelike, NaiveDate};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// The parts a message template folder may hold. `subject.txt` and `body.txt` are required.
pub const TEMPLATE_PARTS: [&str; 4] = ["subject.txt", "body.txt", "body.html", "webhook.json"];

/// The compiled conditions and templates of one rules load.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    templates: BTreeSet<String>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_function("age", age);
        env.add_function("school_age", school_age);
        env.add_filter("in_words", in_words);
        env.add_function(
            "in_school_hours",
            |_: String| -> Result<bool, minijinja::Error> {
                Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "in_school_hours() needs `school_day:` in the config",
                ))
            },
        );
        Engine {
            env,
            templates: BTreeSet::new(),
        }
    }

    /// Sets the school day `in_school_hours()` tests against (Europe/London clock times).
    pub fn set_school_day(&mut self, start: chrono::NaiveTime, end: chrono::NaiveTime) {
        self.env.add_function(
            "in_school_hours",
            move |at: String| -> Result<bool, minijinja::Error> {
                let t = chrono::DateTime::parse_from_rfc3339(&at).map_err(|_| {
                    minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "in_school_hours() takes a date and time such as 2027-01-21T14:00:00Z",
                    )
                })?;
                let local = crate::localtime::naive_of(t.with_timezone(&chrono::Utc));
                let weekday = local.weekday().number_from_monday() <= 5;
                Ok(weekday && local.time() >= start && local.time() < end)
            },
        );
    }

    /// Loads every template folder under `dir` (`dir/NAME/subject.txt`, ...). Returns a diagnostic
    /// for each part that does not compile or each folder missing a required part.
    pub fn load_templates(&mut self, dir: &Path) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return vec![Diagnostic::whole_file(
                    dir,
                    format!("cannot read the templates folder: {e}"),
                )];
            }
        };
        let mut folders: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        for folder in folders {
            let Some(name) = folder
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            // Known even if broken, so rules using it are not also reported as unknown.
            self.templates.insert(name.clone());
            for part in TEMPLATE_PARTS {
                let file = folder.join(part);
                let required = matches!(part, "subject.txt" | "body.txt");
                let source = match std::fs::read_to_string(&file) {
                    Ok(s) => s,
                    Err(_) if !required => continue,
                    Err(e) => {
                        problems.push(Diagnostic::whole_file(
                            &file,
                            format!("template `{name}` needs this file: {e}"),
                        ));
                        continue;
                    }
                };
                if let Err(e) = self
                    .env
                    .add_template_owned(format!("{name}/{part}"), source)
                {
                    let line = e.line().unwrap_or(1);
                    problems.push(Diagnostic::new(&file, Some((line, 1)), describe(&e)));
                }
            }
        }
        problems
    }

    /// Whether a template folder of that name exists (a broken one is reported on its own).
    pub fn has_template(&self, name: &str) -> bool {
        self.templates.contains(name)
    }

    pub fn template_names(&self) -> impl Iterator<Item = &str> {
        self.templates.iter().map(String::as_str)
    }

    /// Whether a template has an optional part such as `body.html`.
    pub fn has_part(&self, name: &str, part: &str) -> bool {
        self.env.get_template(&format!("{name}/{part}")).is_ok()
    }

    /// Compiles a condition under a unique name; the error is minijinja's, without position
    /// (the caller knows where the condition stands in the YAML).
    pub fn add_condition(&mut self, name: &str, expression: &str) -> Result<(), String> {
        if expression.contains("%}") || expression.contains("{%") || expression.contains("}}") {
            return Err("a condition is an expression, without {{ }} or {% %}".into());
        }
        let source = format!("{{% if {expression} %}}true{{% endif %}}");
        self.env
            .add_template_owned(format!("when:{name}"), source)
            .map_err(|e| describe(&e))
    }

    /// Evaluates a compiled condition against a context.
    pub fn condition<S: Serialize>(&self, name: &str, ctx: &S) -> Result<bool, String> {
        let template = self
            .env
            .get_template(&format!("when:{name}"))
            .map_err(|e| describe(&e))?;
        let out = template
            .render(minijinja::value::Serde(ctx))
            .map_err(|e| describe(&e))?;
        Ok(out == "true")
    }

    /// Renders one part of a message template.
    pub fn render<S: Serialize>(&self, name: &str, part: &str, ctx: &S) -> Result<String, String> {
        self.render_with_line(name, part, ctx)
            .map_err(|(_, message)| message)
    }

    /// The same, with the template line an error stands on, for `check`'s reports.
    pub fn render_with_line<S: Serialize>(
        &self,
        name: &str,
        part: &str,
        ctx: &S,
    ) -> Result<String, (Option<usize>, String)> {
        let template = self
            .env
            .get_template(&format!("{name}/{part}"))
            .map_err(|e| (e.line(), describe(&e)))?;
        template
            .render(minijinja::value::Serde(ctx))
            .map_err(|e| (e.line(), describe(&e)))
    }
}

/// minijinja's message without its template-internal names.
fn describe(e: &minijinja::Error) -> String {
    let mut msg = match e.kind() {
        ErrorKind::UndefinedError => "undefined value".to_string(),
        _ => e.kind().to_string(),
    };
    if let Some(detail) = e.detail() {
        msg.push_str(": ");
        msg.push_str(detail);
    }
    msg
}

/// `age(date_of_birth, on)`: whole years between two `YYYY-MM-DD` dates (or RFC 3339 times), for
/// rules such as "a letter for children aged 5 or over".
fn age(date_of_birth: String, on: String) -> Result<i64, minijinja::Error> {
    // A timestamp counts by its Europe/London date, like every other date in driftwatch.
    let parse = |s: &str| {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(crate::localtime::date_of(t.with_timezone(&chrono::Utc)));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "age() takes dates such as 2019-05-01",
            )
        })
    };
    let (born, on) = (parse(&date_of_birth)?, parse(&on)?);
    let mut years = i64::from(on.year() - born.year());
    if (on.month(), on.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    Ok(years)
}

/// `school_age(date_of_birth, on)`: whether a child is of compulsory school age (5 to 15 years
/// old) on a day, for "reviews for school-age children should be outside school hours".
fn school_age(date_of_birth: String, on: String) -> Result<bool, minijinja::Error> {
    let years = age(date_of_birth, on)?;
    Ok((5..16).contains(&years))
}

/// `{{ data.meeting_at | in_words }}`: a date and time in Europe/London, in words
/// ("Wednesday 6 January 2027 at 14:00"); a date alone as "Wednesday 6 January 2027". Anything
/// else is left as it is.
fn in_words(value: String) -> String {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&value) {
        return crate::localtime::in_words(t.with_timezone(&chrono::Utc));
    }
    match NaiveDate::parse_from_str(&value, "%Y-%m-%d") {
        Ok(d) => crate::localtime::date_in_words(d),
        Err(_) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_evaluate_and_undefined_is_an_error() {
        let mut e = Engine::new();
        e.add_condition("a", "data.legal_basis == 's20'").unwrap();
        assert!(
            e.condition("a", &json!({"data": {"legal_basis": "s20"}}))
                .unwrap()
        );
        assert!(
            !e.condition("a", &json!({"data": {"legal_basis": "s31"}}))
                .unwrap()
        );
        assert!(e.condition("a", &json!({"data": {}})).is_err());
        assert!(e.add_condition("b", "data.x ==").is_err());
        assert!(e.add_condition("c", "{{ x }}").is_err());
    }

    #[test]
    fn times_read_in_words_and_school_hours() {
        let mut e = Engine::new();
        e.set_school_day(
            chrono::NaiveTime::from_hms_opt(8, 45, 0).unwrap(),
            chrono::NaiveTime::from_hms_opt(15, 15, 0).unwrap(),
        );
        // 13:00 UTC in July is 14:00 in London.
        assert_eq!(
            in_words("2027-07-07T13:00:00Z".into()),
            "Wednesday 7 July 2027 at 14:00"
        );
        assert_eq!(in_words("2027-01-06".into()), "Wednesday 6 January 2027");
        e.add_condition("s", "in_school_hours(t) and school_age(dob, t)")
            .unwrap();
        let ctx = |t: &str, dob: &str| json!({"t": t, "dob": dob});
        assert!(
            e.condition("s", &ctx("2027-01-06T14:00:00Z", "2015-06-01"))
                .unwrap()
        );
        assert!(
            !e.condition("s", &ctx("2027-01-06T15:30:00Z", "2015-06-01"))
                .unwrap()
        );
        assert!(
            !e.condition("s", &ctx("2027-01-09T10:00:00Z", "2015-06-01"))
                .unwrap()
        ); // Saturday
        assert!(
            !e.condition("s", &ctx("2027-01-06T14:00:00Z", "2023-06-01"))
                .unwrap()
        ); // aged 3
        assert!(
            !e.condition("s", &ctx("2027-01-06T14:00:00Z", "2009-06-01"))
                .unwrap()
        ); // aged 17
    }

    #[test]
    fn age_counts_whole_years() {
        let mut e = Engine::new();
        e.add_condition("five", "age(dob, on) >= 5").unwrap();
        assert!(
            e.condition("five", &json!({"dob": "2022-03-10", "on": "2027-03-10"}))
                .unwrap()
        );
        assert!(
            !e.condition(
                "five",
                &json!({"dob": "2022-03-10", "on": "2027-03-09T23:00:00Z"})
            )
            .unwrap()
        );
    }
}
