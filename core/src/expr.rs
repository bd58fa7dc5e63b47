//! One minijinja engine for both rule conditions (`when:`) and message templates, so admins learn
//! one language.
//!
//! Owns compiling and evaluating them with undefined values treated as errors (a typo must fail
//! loudly, not render empty). Templates cannot reach files or the environment: the engine has no
//! loader and no functions beyond the few registered here. Must not decide what to send.

use crate::diagnostic::Diagnostic;
use crate::sources::TemplateFiles;
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

    /// Adds every template folder of `templates` (`NAME/subject.txt`, ...). Returns a diagnostic
    /// for each part that does not compile or each folder missing a required part.
    pub fn add_templates(&mut self, templates: &TemplateFiles) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for (name, parts) in templates {
            // Known even if broken, so rules using it are not also reported as unknown.
            self.templates.insert(name.clone());
            // A folder with only a `webhook.json` is a webhook body (a Teams card, a Slack
            // message) that a webhook's `body:` names: it needs no subject or text of its own.
            let body_only = parts.contains_key("webhook.json")
                && !parts.contains_key("subject.txt")
                && !parts.contains_key("body.txt");
            for part in TEMPLATE_PARTS {
                let required = !body_only && matches!(part, "subject.txt" | "body.txt");
                let Some(file) = parts.get(part) else {
                    if required {
                        let folder = parts
                            .values()
                            .next()
                            .and_then(|f| f.path.parent())
                            .map(|d| d.join(part))
                            .unwrap_or_else(|| Path::new(name).join(part));
                        problems.push(Diagnostic::whole_file(
                            &folder,
                            format!("template `{name}` needs this file"),
                        ));
                    }
                    continue;
                };
                if let Err(e) = self
                    .env
                    .add_template_owned(format!("{name}/{part}"), file.text.clone())
                {
                    let line = e.line().unwrap_or(1);
                    problems.push(Diagnostic::new(&file.path, Some((line, 1)), describe(&e)));
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
    let (born, on) = (local_date(&date_of_birth)?, local_date(&on)?);
    let mut years = i64::from(on.year() - born.year());
    if (on.month(), on.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    Ok(years)
}

/// `school_age(date_of_birth, on)`: whether a child is of compulsory school age on a day, for
/// "reviews for school-age children should be outside school hours". Education Act 1996 s.8:
/// from the first 1 January, 1 April or 1 September on or after the fifth birthday, to the last
/// Friday in June of the school year (September to August) in which the child turns 16.
fn school_age(date_of_birth: String, on: String) -> Result<bool, minijinja::Error> {
    let (born, on) = (local_date(&date_of_birth)?, local_date(&on)?);
    let birthday = |years: i32| {
        born.with_year(born.year() + years)
            // 29 February: the birthday is kept on 1 March in other years.
            .or_else(|| NaiveDate::from_ymd_opt(born.year() + years, 3, 1))
    };
    let (Some(fifth), Some(sixteenth)) = (birthday(5), birthday(16)) else {
        return Ok(false);
    };
    let starts = [(1, 1), (4, 1), (9, 1)]
        .into_iter()
        .flat_map(|(m, d)| {
            [fifth.year(), fifth.year() + 1]
                .into_iter()
                .filter_map(move |y| NaiveDate::from_ymd_opt(y, m, d))
        })
        .filter(|d| *d >= fifth)
        .min();
    let school_year = if sixteenth.month() >= 9 {
        sixteenth.year()
    } else {
        sixteenth.year() - 1
    };
    let leaves = NaiveDate::from_ymd_opt(school_year + 1, 6, 30).map(|mut d| {
        while d.weekday() != chrono::Weekday::Fri {
            d = d.pred_opt().unwrap_or(d);
        }
        d
    });
    Ok(matches!((starts, leaves), (Some(s), Some(l)) if on >= s && on <= l))
}

/// A day from `YYYY-MM-DD` or an RFC 3339 time (its Europe/London date), for the functions
/// conditions call.
fn local_date(s: &str) -> Result<NaiveDate, minijinja::Error> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(crate::localtime::date_of(t.with_timezone(&chrono::Utc)));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "takes dates such as 2019-05-01",
        )
    })
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
