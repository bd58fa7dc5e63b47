//! What a notification says: its template rendered with a fixed, documented context.
//!
//! Owns that context, so the shipped templates, an admin's templates and the daemon's delivery
//! all agree on it. Pure: the caller supplies the rule set and the data of the event behind the
//! notification. Must not send anything or log the rendered text (it may hold personal data).

use crate::diagnostic::Diagnostic;
use crate::expr::TEMPLATE_PARTS;
use crate::localtime;
use crate::planner::{Notification, NotificationKind, NotificationStatus, Target};
use crate::rules::vocabulary::Fields;
use crate::rules::{Action, FieldType, RuleBody, RuleSet, Send};
use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::Path;

pub use crate::planner::CONTACTS_KEY;

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

/// The links a message carries, when the config has a link secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageLinks {
    /// Acknowledge (or snooze) this reminder or escalation: emails only.
    pub acknowledge: Option<String>,
}

/// The values every template sees:
/// `case.reference`; `rule.id`, `rule.title`, `rule.source`; `notification.kind`, `.step`,
/// `.title` (none for unnamed steps), `.due` (YYYY-MM-DD or none), `.late`, `.urgent`,
/// `.send_at` (local `YYYY-MM-DD HH:MM`); `recipient.role`, `recipient.name`; `data`: the data of
/// the event that opened the obligation or caused the notice; `links.acknowledge`: the link to
/// acknowledge or snooze a reminder or escalation sent by email (none otherwise).
pub fn context(
    rules: &RuleSet,
    case: &str,
    n: &Notification,
    data: &Map<String, Value>,
    links: &MessageLinks,
) -> Value {
    let rule = rules.rule(&n.rule);
    let (role, name) = match &n.recipient {
        Target::Email { role, name, .. } => (role.clone(), name.clone()),
        Target::Webhook { webhook } => (format!("webhook:{webhook}"), None),
        Target::Nobody { .. } => ("nobody".to_string(), None),
    };
    let mut data = data.clone();
    let contacts = data.remove(CONTACTS_KEY).unwrap_or_else(|| json!({}));
    json!({
        "case": {"reference": case, "contacts": contacts},
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
            "late_reason": n.late_reason,
            "why_late": n.late_reason.map(|r| r.words()),
            "urgent": n.urgent,
            "send_at": localtime::display(n.send_at),
            "instead_of": n.instead_of,
            "replaces": n.replaces.as_ref().map(|r| json!({
                "due": r.due.to_string(),
                "at": r.at.map(|t| t.to_rfc3339()),
            })),
        },
        "recipient": {"role": role, "name": name},
        "data": data,
        "links": {"acknowledge": links.acknowledge},
    })
}

/// Example data for an event type, every declared field filled, for trying templates.
fn sample_data(fields: &Fields) -> Map<String, Value> {
    let contact =
        || json!({"name": "Example Name", "email": "example@council.example", "role": "example"});
    fields
        .iter()
        .map(|(name, spec)| {
            let value = match &spec.ty {
                FieldType::String => json!(
                    spec.one_of
                        .as_ref()
                        .and_then(|o| o.first())
                        .cloned()
                        .unwrap_or_else(|| "example".into())
                ),
                FieldType::Date => json!("2027-01-21"),
                FieldType::Datetime => json!("2027-01-21T14:00:00Z"),
                FieldType::Boolean => json!(true),
                FieldType::Number => json!(1),
                FieldType::Contact => contact(),
                FieldType::Contacts => json!([contact()]),
                FieldType::List(items) => json!([sample_data(items)]),
            };
            (name.clone(), value)
        })
        .collect()
}

/// Renders every template part each rule uses against example data of the rule's trigger event,
/// so `check` finds a misspelt value before a message fails to go. Each failure is reported once,
/// at its line in the template file.
pub fn check_templates(rules: &RuleSet, templates_dir: &Path) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();

    let contact = json!({"name": "Example Name", "email": "example@council.example"});
    let contacts: Map<String, Value> = rules
        .case
        .roles
        .iter()
        .map(|r| (r.clone(), contact.clone()))
        .collect();
    let meeting_events: Vec<&str> = rules
        .case
        .meetings
        .iter()
        .map(|m| m.booked_by.as_str())
        .collect();
    let fields_of = |event: &str| {
        rules
            .vocabulary
            .events
            .get(event)
            .map(|e| sample_data(&e.fields))
            .unwrap_or_default()
    };
    let mut after_sends: Vec<Send> = Vec::new();
    for rule in &rules.rules {
        // The data a real message of the rule is about: a meeting's under the event's own.
        let mut data = Map::new();
        if rule.meeting.is_some() || matches!(rule.for_each, Some(crate::rules::ForEach::Meetings))
        {
            for event in &meeting_events {
                data.extend(fields_of(event));
            }
        }
        data.extend(fields_of(&rule.on));
        data.insert(CONTACTS_KEY.to_string(), Value::Object(contacts.clone()));
        after_sends.clear();
        if let Some(o) = rule.obligation() {
            for action in &o.at_deadline {
                if let Action::Send(send) = action {
                    for template in [&send.after.if_moved, &send.after.if_cancelled]
                        .into_iter()
                        .flatten()
                    {
                        after_sends.push(Send {
                            template: template.clone(),
                            ..send.clone()
                        });
                    }
                    if let Some(nobody) = &send.after.if_nobody {
                        after_sends.push((**nobody).clone());
                    }
                }
            }
        }
        let mut sends: Vec<(NotificationKind, Option<&str>, &Send)> = Vec::new();
        for send in &after_sends {
            sends.push((NotificationKind::Action, None, send));
        }
        match &rule.body {
            RuleBody::Notice(send) => sends.push((NotificationKind::Notice, None, send)),
            RuleBody::Obligation(o) => {
                for step in &o.reminders {
                    sends.push((
                        NotificationKind::Reminder,
                        step.title.as_deref(),
                        &step.send,
                    ));
                }
                for step in &o.escalations {
                    sends.push((
                        NotificationKind::Escalation,
                        step.title.as_deref(),
                        &step.send,
                    ));
                }
                for action in &o.at_deadline {
                    if let Action::Send(send) = action {
                        sends.push((NotificationKind::Action, None, send));
                    }
                }
            }
        }
        for ((kind, title, send), variant) in
            sends.into_iter().flat_map(|s| [(s, false), (s, true)])
        {
            // The same context a real message gets, from an example notification: plain, and
            // as a late message to a fallback replacing an earlier one.
            let example = example_notification(&rule.id, kind, title, send, variant);
            let links = MessageLinks {
                acknowledge: Some("https://driftwatch.council.example/ack/example".into()),
            };
            let ctx = context(rules, "EXAMPLE-1", &example, &data, &links);
            for part in TEMPLATE_PARTS {
                if !rules.engine.has_part(&send.template, part) {
                    continue;
                }
                if let Err((line, message)) =
                    rules.engine.render_with_line(&send.template, part, &ctx)
                    && seen.insert((send.template.clone(), part, message.clone()))
                {
                    let file = templates_dir.join(&send.template).join(part);
                    problems.push(Diagnostic::new(
                        &file,
                        line.map(|l| (l, 1)),
                        format!(
                            "does not render for rule `{}` ({} on `{}`): {message}",
                            rule.id, rule.on, send.template
                        ),
                    ));
                }
            }
        }
    }
    problems
}

/// An example notification of `rule` for trying its templates: plain, or (`variant`) as a late
/// message to a fallback replacing an earlier one, so every branch of a template is tried.
fn example_notification(
    rule: &str,
    kind: NotificationKind,
    title: Option<&str>,
    send: &Send,
    variant: bool,
) -> Notification {
    let example_day = NaiveDate::from_ymd_opt(2027, 1, 21).unwrap_or_default();
    let at = |h| {
        example_day
            .and_hms_opt(h, 0, 0)
            .unwrap_or_default()
            .and_utc()
    };
    Notification {
        idempotency_key: "example".into(),
        send_at: at(9),
        status: NotificationStatus::Scheduled,
        late: variant,
        late_reason: variant.then_some(crate::planner::LateReason::CaughtUp),
        kind,
        step: "example".into(),
        title: title.map(str::to_string),
        rule: rule.to_string(),
        obligation: None,
        due: Some(example_day),
        recipient: Target::Email {
            role: send.to.first().map(ToString::to_string).unwrap_or_default(),
            name: Some("Example Name".into()),
            email: "example@council.example".into(),
        },
        template: send.template.clone(),
        urgent: send.urgent,
        event: "example".into(),
        instead_of: variant.then(|| "iro".to_string()),
        replaces: variant.then(|| crate::planner::Replaced {
            due: example_day,
            at: Some(at(14)),
        }),
        data: None,
        data_from: Vec::new(),
    }
}

/// Renders a webhook's `body` template (a Teams card, a Slack message) for an example message
/// of every rule that sends to that webhook, so `check` finds a mistake in it.
pub fn check_webhook_body(
    rules: &RuleSet,
    templates_dir: &Path,
    webhook: &str,
    body: &str,
) -> Vec<Diagnostic> {
    let mut problems = BTreeSet::new();
    for rule in &rules.rules {
        let sends: Vec<&Send> = match &rule.body {
            RuleBody::Notice(send) => vec![send],
            RuleBody::Obligation(o) => o
                .reminders
                .iter()
                .chain(&o.escalations)
                .map(|s| &s.send)
                .chain(o.at_deadline.iter().filter_map(|a| match a {
                    Action::Send(s) => Some(s),
                    Action::Emit { .. } => None,
                }))
                .collect(),
        };
        let to_it = crate::rules::Recipient::Webhook(webhook.to_string());
        for send in sends.into_iter().filter(|s| s.to.contains(&to_it)) {
            let example =
                example_notification(&rule.id, NotificationKind::Notice, None, send, false);
            let data = rules
                .vocabulary
                .events
                .get(&rule.on)
                .map(|e| sample_data(&e.fields))
                .unwrap_or_default();
            let at = example.send_at;
            if let Err(e) = render_webhook(rules, "EXAMPLE-1", &example, &data, Some(body), at) {
                problems.insert(e.to_string());
            }
        }
    }
    let file = templates_dir.join(body).join("webhook.json");
    problems
        .into_iter()
        .map(|m| Diagnostic::new(&file, None, m))
        .collect()
}

/// Renders a notification's subject, text and optional HTML body.
pub fn render(
    rules: &RuleSet,
    case: &str,
    n: &Notification,
    data: &Map<String, Value>,
    links: &MessageLinks,
) -> Result<Message, RenderError> {
    let ctx = context(rules, case, n, data, links);
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

/// The body of a webhook request: the notification's own template's `webhook.json` if it has
/// one; else the webhook's `body` template (a Teams card, a Slack message), which sees the
/// rendered message as `message.subject` and `message.text` besides the usual values; else a
/// JSON envelope with the case reference, rule, step, subject and text, and `sent_at`,
/// driftwatch's time of sending (under a manual clock, the clock's time; the signed
/// `webhook-timestamp` header is always the real time).
pub fn render_webhook(
    rules: &RuleSet,
    case: &str,
    n: &Notification,
    data: &Map<String, Value>,
    body_template: Option<&str>,
    sent_at: chrono::DateTime<chrono::Utc>,
) -> Result<String, RenderError> {
    let error = |message: String| RenderError {
        template: n.template.clone(),
        part: "webhook.json",
        rule: n.rule.clone(),
        message,
    };
    if rules.engine.has_part(&n.template, "webhook.json") {
        let ctx = context(rules, case, n, data, &MessageLinks::default());
        let body = rules
            .engine
            .render(&n.template, "webhook.json", &ctx)
            .map_err(error)?;
        serde_json::from_str::<Value>(&body)
            .map_err(|e| error(format!("does not render to JSON: {e}")))?;
        return Ok(body);
    }
    let links = MessageLinks::default();
    let m = render(rules, case, n, data, &links)?;
    let mut ctx = context(rules, case, n, data, &links);
    if let Some(body) = body_template {
        ctx["message"] = json!({"subject": m.subject, "text": m.text});
        let error = |message: String| RenderError {
            template: body.to_string(),
            part: "webhook.json",
            rule: n.rule.clone(),
            message,
        };
        let text = rules
            .engine
            .render(body, "webhook.json", &ctx)
            .map_err(error)?;
        serde_json::from_str::<Value>(&text)
            .map_err(|e| error(format!("does not render to JSON: {e}")))?;
        return Ok(text);
    }
    let body = json!({
        "type": "driftwatch.notification",
        "idempotency_key": n.idempotency_key,
        "case": ctx["case"],
        "rule": ctx["rule"],
        "notification": ctx["notification"],
        "subject": m.subject,
        "text": m.text,
        "sent_at": sent_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Ok(body.to_string())
}
