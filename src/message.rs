//! What a notification says: its template rendered with a fixed, documented context.
//!
//! Owns that context, so the shipped templates, an admin's templates and the daemon's delivery
//! all agree on it. Pure: the caller supplies the rule set and the data of the event behind the
//! notification. Must not send anything or log the rendered text (it may hold personal data).

use crate::localtime;
use crate::planner::{Notification, Target};
use crate::rules::RuleSet;
use serde_json::{Map, Value, json};

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    /// Present when the template has a `body.html`.
    pub html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}` ({part}) for rule {rule}: {message}")]
pub struct RenderError {
    pub template: String,
    pub part: &'static str,
    pub rule: String,
    pub message: String,
}

/// The values every template sees:
/// `case.reference`; `rule.id`, `rule.title`, `rule.source`; `notification.kind`, `.step`,
/// `.title` (none for unnamed steps), `.due` (YYYY-MM-DD or none), `.late`, `.urgent`,
/// `.send_at` (local `YYYY-MM-DD HH:MM`); `recipient.role`, `recipient.name`; `data`: the data of
/// the event that opened the obligation or caused the notice.
pub fn context(rules: &RuleSet, case: &str, n: &Notification, data: &Map<String, Value>) -> Value {
    let rule = rules.rule(&n.rule);
    let (role, name) = match &n.recipient {
        Target::Email { role, name, .. } => (role.clone(), name.clone()),
        Target::Webhook { webhook } => (format!("webhook:{webhook}"), None),
    };
    json!({
        "case": {"reference": case},
        "rule": {
            "id": n.rule,
            "title": rule.map(|r| r.title.as_str()).unwrap_or_default(),
            "source": rule.map(|r| r.source.as_str()).unwrap_or_default(),
        },
        "notification": {
            "kind": n.kind,
            "step": n.step,
            "title": n.title,
            "due": n.due.map(|d| d.to_string()),
            "late": n.late,
            "urgent": n.urgent,
            "send_at": localtime::display(n.send_at),
        },
        "recipient": {"role": role, "name": name},
        "data": data,
    })
}

/// Renders a notification's subject, text and optional HTML body.
pub fn render(
    rules: &RuleSet,
    case: &str,
    n: &Notification,
    data: &Map<String, Value>,
) -> Result<Message, RenderError> {
    let ctx = context(rules, case, n, data);
    let part = |part: &'static str| {
        rules
            .engine
            .render(&n.template, part, &ctx)
            .map_err(|message| RenderError {
                template: n.template.clone(),
                part,
                rule: n.rule.clone(),
                message,
            })
    };
    let html = if rules.engine.has_part(&n.template, "body.html") {
        Some(part("body.html")?)
    } else {
        None
    };
    Ok(Message {
        subject: part("subject.txt")?.trim().to_string(),
        text: part("body.txt")?,
        html,
    })
}
