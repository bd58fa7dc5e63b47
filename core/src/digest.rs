//! The daily digest's text: one email per person on working days, listing what is overdue and
//! what falls due soon, grouped by case. Pure: the shell's `digest` composes digests from the
//! store and sends them.

use crate::diagnostic::Diagnostic;
use crate::message::Message;
use crate::rules::RuleSet;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The template every digest is written with.
pub const TEMPLATE: &str = "digest";

/// One person's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub email: String,
    /// By case reference.
    pub cases: BTreeMap<String, Vec<Line>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub rule: String,
    pub title: String,
    pub source: String,
    pub due: NaiveDate,
    pub overdue: bool,
    pub working_days_late: i32,
}

/// The digest's idempotency key for a person and day: its Message-ID, never their address.
pub fn key(email: &str, day: NaiveDate) -> String {
    let digest = Sha256::digest(email.to_lowercase().as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("dwd-{day}-{hex}")
}

/// Renders a digest with the `digest` template.
pub fn render(
    rules: &RuleSet,
    horizon: i32,
    d: &Digest,
    day: NaiveDate,
) -> Result<Message, String> {
    let ctx = context(horizon, d, day);
    let engine = &rules.engine;
    Ok(Message {
        subject: engine
            .render(TEMPLATE, "subject.txt", &ctx)?
            .trim()
            .to_string(),
        text: engine.render(TEMPLATE, "body.txt", &ctx)?,
        html: None,
    })
}

/// The values the digest template sees (documented in docs/rules.md).
fn context(horizon: i32, d: &Digest, day: NaiveDate) -> serde_json::Value {
    let lines = || d.cases.values().flatten();
    json!({
        "day": day.format("%A %-d %B %Y").to_string(),
        "recipient": {"email": d.email},
        "overdue": lines().filter(|l| l.overdue).count(),
        "due": lines().filter(|l| !l.overdue).count(),
        "horizon": horizon,
        "cases": d.cases.iter().map(|(reference, lines)| json!({"reference": reference, "lines": lines})).collect::<Vec<_>>(),
    })
}

/// For `check`: the digest template exists when anyone takes digests, and renders an example
/// digest; each problem is placed at its line in the template file.
pub fn check_template(
    rules: &RuleSet,
    templates_dir: &std::path::Path,
    takers: bool,
) -> Vec<Diagnostic> {
    if !rules.engine.has_part(TEMPLATE, "subject.txt") {
        return if takers {
            vec![Diagnostic::whole_file(
                &templates_dir.join(TEMPLATE),
                "digests are configured but there is no `digest` template (subject.txt and body.txt)",
            )]
        } else {
            Vec::new()
        };
    }
    let day = NaiveDate::from_ymd_opt(2027, 1, 21).unwrap_or_default();
    let line = |overdue: bool| Line {
        rule: "example_rule".into(),
        title: "Example obligation".into(),
        source: "Example source".into(),
        due: day,
        overdue,
        working_days_late: i32::from(overdue),
    };
    let example = Digest {
        email: "example@council.example".into(),
        cases: BTreeMap::from([("EXAMPLE-1".to_string(), vec![line(true), line(false)])]),
    };
    let ctx = context(5, &example, day);
    ["subject.txt", "body.txt"]
        .into_iter()
        .filter_map(|part| {
            let (line, message) = rules.engine.render_with_line(TEMPLATE, part, &ctx).err()?;
            Some(Diagnostic::new(
                &templates_dir.join(TEMPLATE).join(part),
                line.map(|l| (l, 1)),
                format!("the digest does not render: {message}"),
            ))
        })
        .collect()
}
