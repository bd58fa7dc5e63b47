//! Who a message goes to: case contacts as the case stood when it goes, service roles, webhooks
//! and lists in the event; a fallback when the case has no contact for a role; and, when nobody
//! at all can be found, a message addressed to nobody, which the daemon records as dead with its
//! reason so an admin sees it. Nothing is ever dropped without a word.

use super::state::{CaseState, ContactIn};
use super::{NoteMeta, Notification, NotificationStatus, Run, Target, idempotency_key};
use crate::event::Contact;
use crate::localtime;
use crate::rules::{Recipient, Send};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A recipient found for a message, and the role it stands in for when it is a fallback.
#[derive(Debug, Clone)]
pub(super) struct Addressed {
    pub target: Target,
    pub instead_of: Option<String>,
}

impl Addressed {
    pub fn to(target: Target) -> Addressed {
        Addressed {
            target,
            instead_of: None,
        }
    }
}

fn email(role: &str, c: &Contact) -> Target {
    Target::Email {
        role: role.to_string(),
        name: c.name.clone(),
        email: c.email.clone(),
    }
}

impl Run<'_, '_> {
    /// Addresses a message as the case stood at `at` (or now, if `at` is still to come). `what`
    /// names the message in problems; `None` for a message that will not be sent (nobody needs
    /// telling of a missing contact then).
    pub(super) fn recipients(
        &mut self,
        send: &Send,
        at: DateTime<Utc>,
        data: &Map<String, Value>,
        event_at: DateTime<Utc>,
        item: Option<&Value>,
        what: Option<&str>,
    ) -> Vec<Addressed> {
        let state = self
            .history
            .at(at.min(self.now))
            .cloned()
            .unwrap_or_else(|| CaseState::new(&self.case));
        let mut out: Vec<Addressed> = Vec::new();
        for r in &send.to {
            match r {
                Recipient::Webhook(name) => out.push(Addressed::to(Target::Webhook {
                    webhook: name.clone(),
                })),
                Recipient::Role(role) => {
                    let contact = self
                        .planner
                        .roles
                        .get(role)
                        .or_else(|| state.contacts.get(role));
                    if let Some(c) = contact {
                        out.push(Addressed::to(email(role, c)));
                        continue;
                    }
                    let fallbacks: Vec<(&String, &Contact)> = self
                        .planner
                        .fallbacks
                        .get(role)
                        .into_iter()
                        .flatten()
                        .filter_map(|f| {
                            self.planner
                                .roles
                                .get(f)
                                .or_else(|| state.contacts.get(f))
                                .map(|c| (f, c))
                        })
                        .collect();
                    if let Some(what) = what {
                        let instead = if fallbacks.is_empty() {
                            "not addressed to that role".to_string()
                        } else {
                            let names: Vec<&str> =
                                fallbacks.iter().map(|(f, _)| f.as_str()).collect();
                            format!("sent to the {} instead", names.join(" and the "))
                        };
                        self.problems.push(
                            format!(
                                "{what}: the case has no `{role}` contact at {}; {instead}",
                                localtime::display(at)
                            )
                            .into(),
                        );
                    }
                    for (f, c) in fallbacks {
                        out.push(Addressed {
                            target: email(f, c),
                            instead_of: Some(role.clone()),
                        });
                    }
                }
                Recipient::List(path) => {
                    let values = match path.resolve_in(data, event_at, item) {
                        Some(Value::Array(v)) => v,
                        Some(v) => vec![v],
                        None => Vec::new(),
                    };
                    if values.is_empty()
                        && let Some(what) = what
                    {
                        self.problems
                            .push(format!("{what}: `list:{path}` names nobody").into());
                    }
                    for v in values {
                        if let Ok(c) = serde_json::from_value::<ContactIn>(v) {
                            let role = c.role.clone().unwrap_or_else(|| {
                                path.segments.last().cloned().unwrap_or_default()
                            });
                            let c: Contact = c.into();
                            out.push(Addressed::to(email(&role, &c)));
                        }
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|a| seen.insert(a.target.identity()));
        out
    }

    /// One notification per recipient of `send` at `at`, keyed by `key_base`. A message that
    /// finds nobody at all (no contact for a role and no fallback, an empty list), and is not
    /// merely passed over, is addressed to nobody: the daemon records it as dead with its reason,
    /// so an admin sees that nobody was told.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_notifications(
        &mut self,
        out: &mut Vec<Notification>,
        key_base: &[&str],
        send: &Send,
        at: DateTime<Utc>,
        status: NotificationStatus,
        meta: NoteMeta,
        event_at: DateTime<Utc>,
        item: Option<&Value>,
    ) {
        let what = (status != NotificationStatus::Superseded)
            .then(|| format!("rule {} {}", meta.rule, meta.step));
        let warned = self.problems.len();
        let mut addressed = self.recipients(send, at, &meta.data, event_at, item, what.as_deref());
        if addressed.is_empty()
            && let Some(what) = what
        {
            let tried: Vec<String> = send.to.iter().map(ToString::to_string).collect();
            // An error once it is due; until then someone may yet be allocated. The error names
            // every recipient tried, so the warnings about each of them are not repeated.
            if at <= self.now {
                self.problems.truncate(warned);
                self.problems.push(
                    format!(
                        "error: {what}: nobody to send to ({}); it is recorded as undeliverable",
                        tried.join(", ")
                    )
                    .into(),
                );
            }
            addressed.push(Addressed::to(Target::Nobody { tried }));
        }
        self.push_targets(out, key_base, addressed, send, at, status, &meta);
    }

    /// One notification per addressed recipient.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_targets(
        &self,
        out: &mut Vec<Notification>,
        key_base: &[&str],
        addressed: Vec<Addressed>,
        send: &Send,
        at: DateTime<Utc>,
        status: NotificationStatus,
        meta: &NoteMeta,
    ) {
        if addressed.is_empty() {
            return;
        }
        // The case's contacts as it stood when the message goes, for templates
        // (`case.contacts.iro.name`).
        let contacts = self
            .history
            .at(at.min(self.now))
            .map(|s| serde_json::to_value(&s.contacts).unwrap_or_default())
            .unwrap_or_else(|| Value::Object(Map::new()));
        let mut data = (*meta.data).clone();
        data.insert(crate::planner::CONTACTS_KEY.to_string(), contacts);
        let data = std::sync::Arc::new(data);
        let from = meta.data.from.to_vec();
        for Addressed { target, instead_of } in addressed {
            let identity = target.identity();
            let mut parts: Vec<&str> = vec![&self.case];
            parts.extend_from_slice(key_base);
            parts.push(&identity);
            let status = match status {
                NotificationStatus::Superseded => NotificationStatus::Superseded,
                _ if at <= self.now => NotificationStatus::Due,
                _ => NotificationStatus::Scheduled,
            };
            out.push(Notification {
                idempotency_key: idempotency_key(&parts),
                send_at: at,
                status,
                late: meta.late.is_some(),
                late_reason: meta.late,
                kind: meta.kind,
                step: meta.step.clone(),
                title: meta.title.clone(),
                rule: meta.rule.clone(),
                obligation: meta.obligation.clone(),
                due: meta.due,
                recipient: target,
                template: send.template.clone(),
                urgent: send.urgent,
                event: meta.event.clone(),
                instead_of,
                replaces: meta.replaces.clone(),
                data: Some(data.clone()),
                data_from: from.clone(),
            });
        }
    }
}
