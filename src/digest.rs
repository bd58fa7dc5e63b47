//! The daily digest: one email per person on working days, instead of a stream of single
//! reminders, listing what is overdue and what falls due soon, grouped by case, each line with
//! its rule, due date and source.
//!
//! [`compose`] is pure: the outstanding obligations and who is told of them in, one digest per
//! person who takes digests (by their own choice or the rule's) out; nobody with nothing to
//! report gets one. [`send`] is the shell: it reads the store, renders the `digest` template and
//! sends each digest once per person and day, even with two daemons or a restart.

use crate::calendar::Calendar;
use crate::localtime;
use crate::notify::{Courier, Outcome};
use crate::rules::Delivery;
use crate::service::{Routing, Service};
use crate::store::{InView, ObligationFilter, StoreError, StoredObligation};
use chrono::{DateTime, Utc};
pub use driftwatch_core::digest::{Digest, Line, TEMPLATE, check_template, key, render};
use std::collections::BTreeMap;

/// Who gets which lines on `today`: every outstanding obligation overdue or due within
/// `horizon` working days, for each person told of it who takes digests. Pure.
pub fn compose(
    routing: Routing,
    calendar: &Calendar,
    obligations: &[StoredObligation],
    now: DateTime<Utc>,
    horizon: i32,
) -> Vec<Digest> {
    let today = localtime::date_of(now);
    let until = calendar.add(today, horizon.max(0));
    let mut by_person: BTreeMap<String, BTreeMap<String, Vec<Line>>> = BTreeMap::new();
    for o in obligations {
        let Some(InView { due, overdue }) = o.in_view(now, until) else {
            continue;
        };
        let rule = o.text("rule");
        for person in &o.people {
            if routing.for_person(&rule, &person.role, &person.email) == Delivery::Immediate {
                continue;
            }
            let lines = by_person
                .entry(person.email.clone())
                .or_default()
                .entry(o.case.clone())
                .or_default();
            let line = Line {
                rule: rule.clone(),
                title: o.text("title"),
                source: o.text("source"),
                due,
                overdue,
                working_days_late: crate::planner::working_days_late_at(
                    calendar, due, o.deadline, now,
                )
                .unwrap_or(0),
            };
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    by_person
        .into_iter()
        .map(|(email, mut cases)| {
            for lines in cases.values_mut() {
                lines.sort_by(|a, b| {
                    (!a.overdue, a.due, &a.rule).cmp(&(!b.overdue, b.due, &b.rule))
                });
            }
            Digest { email, cases }
        })
        .collect()
}

/// Sends today's digests, if today is a working day; returns how many went. Each person's
/// digest is claimed in the store first, so it goes once per day however many daemons run;
/// one that fails is given back for the next run.
pub async fn send(service: &Service, courier: &Courier) -> Result<usize, StoreError> {
    let config = service.config();
    let now = service.now();
    let today = localtime::date_of(now);
    // A digest is not urgent: none goes on a day the council is closed.
    if !config.calendar.is_open_day(today) {
        return Ok(0);
    }
    let filter = ObligationFilter {
        limit: i64::MAX,
        ..ObligationFilter::default()
    };
    let obligations = service.store().obligations(&filter, now).await?;
    let digests = compose(
        config.routing(),
        &config.calendar,
        &obligations,
        now,
        config.digest.horizon_working_days,
    );
    let mut sent = 0;
    for d in &digests {
        let key = key(&d.email, today);
        if !service
            .store()
            .claim_digest(&key, &today.to_string(), now)
            .await?
        {
            continue;
        }
        let outcome = match render(&config.rules, config.digest.horizon_working_days, d, today) {
            Ok(message) => {
                courier
                    .send_email(&key, None, &d.email, &message, now)
                    .await
            }
            Err(e) => Outcome::Failed {
                reason: format!("template `{TEMPLATE}`: {e}"),
            },
        };
        match outcome {
            Outcome::Delivered => {
                sent += 1;
                tracing::info!(key = key.as_str(), cases = d.cases.len(), "digest sent");
            }
            Outcome::Retry { reason, .. } | Outcome::Failed { reason } => {
                service.store().release_digest(&key).await?;
                tracing::warn!(
                    key = key.as_str(),
                    reason = reason.as_str(),
                    "digest not sent; the next run tries again"
                );
            }
        }
    }
    Ok(sent)
}
