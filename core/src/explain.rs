//! `driftwatch explain RULE`: a rule in plain English, with an example timeline worked out on
//! the configured working-day calendar, so an admin can check a rule says what they meant.
//!
//! Pure: the rule set, the calendar and an example start in, text out. Must not plan a real case
//! (the planner does) or read files.

use crate::calendar::{Calendar, Offset, OffsetUnit};
use crate::localtime::WorkingHours;
use crate::planner::{NotificationKind, step_day};
use crate::rules::{Action, KeyMatch, Matcher, Recipient, Rule, RuleBody, RuleSet, Send, Step};
use chrono::{Duration, NaiveDateTime};
use std::fmt::Write;

/// Explains rule `id`, with a timeline as if its anchor fell at `example` (local time).
pub fn explain(
    rules: &RuleSet,
    calendar: &Calendar,
    hours: WorkingHours,
    id: &str,
    example: NaiveDateTime,
) -> Result<String, String> {
    let Some(rule) = rules.rule(id) else {
        let mut known: Vec<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
        known.sort_unstable();
        return Err(format!(
            "no rule `{id}`; the rules are: {}",
            known.join(", ")
        ));
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", rule.id, rule.title);
    let _ = writeln!(out, "  Source: {}", rule.source);
    if let Some(d) = &rule.description {
        let _ = writeln!(out, "  {d}");
    }
    let where_ = match rule.origin.position {
        Some((line, col)) => format!("{}:{line}:{col}", rule.origin.file.display()),
        None => rule.origin.file.display().to_string(),
    };
    let _ = writeln!(out, "  Written in {where_}");
    let _ = writeln!(out);
    let _ = writeln!(out, "  {}", trigger(rule));
    match &rule.body {
        RuleBody::Notice(send) => {
            let _ = writeln!(
                out,
                "  It tells {} {}, with the template `{}`.",
                recipients(send),
                if send.urgent {
                    "at once, day or night (urgent)"
                } else {
                    "in the next working hours"
                },
                send.template
            );
        }
        RuleBody::Obligation(o) => {
            let _ = writeln!(
                out,
                "  It is due {} {}.",
                offset_words(&o.due.offset, "after"),
                anchor(&o.due.from)
            );
            if !o.met_by.is_empty() {
                let _ = writeln!(out, "  It is met by {}.", matchers(&o.met_by));
            }
            if !o.cancelled_by.is_empty() {
                let _ = writeln!(out, "  It is cancelled by {}.", matchers(&o.cancelled_by));
            }
            if !o.ended_by.is_empty() {
                let _ = writeln!(
                    out,
                    "  It ends when {} arrives: if still open then, it is recorded as not done.",
                    matchers(&o.ended_by)
                );
            }
            for a in &o.advanced_by {
                let _ = writeln!(
                    out,
                    "  When {} arrives, the escalation moves straight to the stage it names ({}): that stage goes at once.",
                    matchers(std::slice::from_ref(&a.matcher)),
                    a.to
                );
            }
            for r in &o.replanned_by {
                let _ = writeln!(
                    out,
                    "  Its deadline moves when {} arrives: then due {} its {}.",
                    matchers(std::slice::from_ref(&r.matcher)),
                    offset_words(&o.due.offset, "after"),
                    anchor(&r.from)
                );
            }
            for (label, steps) in [("Reminder", &o.reminders), ("Escalation", &o.escalations)] {
                for step in steps {
                    let _ = writeln!(out, "  {label}: {}", step_words(step));
                }
            }
            for action in &o.at_deadline {
                let _ = match action {
                    Action::Send(send) => {
                        let _ = writeln!(
                            out,
                            "  At the deadline it sends `{}` to {}.",
                            send.template,
                            recipients(send)
                        );
                        if let Some(t) = &send.after.if_moved {
                            let _ = writeln!(
                                out,
                                "  If the deadline moves after that, everyone it went to gets `{t}` at once, and anyone added is sent it at the new deadline."
                            );
                        }
                        if let Some(t) = &send.after.if_cancelled {
                            let _ = writeln!(
                                out,
                                "  If it is cancelled after that, everyone it went to gets `{t}`."
                            );
                        }
                        match &send.after.if_nobody {
                            Some(nobody) => writeln!(
                                out,
                                "  If nobody is on the list, it is not met: {} gets `{}` instead.",
                                recipients(nobody),
                                nobody.template
                            ),
                            None => Ok(()),
                        }
                    }
                    Action::Emit { event, .. } => writeln!(
                        out,
                        "  At the deadline, if still open, it records a `{event}` event (and is met by it)."
                    ),
                };
            }
            for line in calendar_words(o) {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(
                out,
                "  Messages that are not urgent wait for working hours ({}–{} on days the council is open); a reminder that falls on a closure day goes on the last open day before it, an escalation on the next open day.",
                hours.start.format("%H:%M"),
                hours.end.format("%H:%M")
            );
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "  Example: if {} is {}",
                anchor(&o.due.from),
                example.format("%a %d %b %Y %H:%M")
            );
            for (when, what) in timeline(calendar, &o.due.offset, o, example) {
                let _ = writeln!(out, "    {}  {what}", when.format("%a %d %b %Y"));
            }
        }
    }
    Ok(out)
}

/// Which calendar the rule's timescales count in, in words, so an admin can see that a council
/// closure never stretches a statutory deadline.
pub fn calendar_words(o: &crate::rules::ObligationRule) -> Vec<String> {
    let mut lines = Vec::new();
    let steps = o.reminders.iter().chain(&o.escalations).map(|s| &s.offset);
    let reckonings: std::collections::BTreeSet<_> = std::iter::once(&o.due.offset)
        .chain(steps)
        .filter_map(Offset::reckoning)
        .collect();
    for r in reckonings {
        lines.push(format!("Working days here are {}.", r.describe()));
    }
    if o.due.offset.unit == OffsetUnit::WorkingDays && o.due.offset.amount < 0 {
        lines.push(
            "Counted back from its anchor: where council closure days fall in between, the deadline comes as much earlier as they need, never later.".to_string(),
        );
    }
    lines
}

/// The calendar a rule's deadline counts in, in a few words, for `check`'s summary.
pub fn deadline_calendar(rule: &Rule) -> Option<&'static str> {
    match rule.obligation()?.due.offset.unit {
        OffsetUnit::WorkingDays => Some("statutory working days"),
        OffsetUnit::CouncilWorkingDays => Some("council working days"),
        OffsetUnit::Days | OffsetUnit::Weeks => Some("calendar days"),
        OffsetUnit::Months => Some("calendar months"),
        OffsetUnit::Hours => Some("hours"),
    }
}

/// The deadline's anchor in words: `at` is the trigger event's own time.
fn anchor(path: &crate::rules::vocabulary::FieldPath) -> String {
    match path.to_string().as_str() {
        "at" => "the time of the event".to_string(),
        other => other.to_string(),
    }
}

fn trigger(rule: &Rule) -> String {
    let mut s = format!("When a `{}` event arrives", rule.on);
    if rule.when.is_some() {
        s.push_str(" and its `when` condition holds");
    }
    if let Some(m) = &rule.meeting {
        let _ = write!(s, " (about the meeting {m})");
    }
    match (&rule.body, &rule.for_each, &rule.key) {
        (RuleBody::Notice(_), Some(crate::rules::ForEach::Meetings), _) => {
            s.push_str(", for each meeting booked and still ahead:")
        }
        (RuleBody::Notice(_), _, _) => s.push(':'),
        (_, Some(list), _) => {
            let _ = write!(s, ", one obligation opens for each item of {list}.");
        }
        (_, None, Some(key)) => {
            let _ = write!(s, ", an obligation opens, one per {key}.");
        }
        (_, None, None) => s.push_str(", an obligation opens (one per case at a time)."),
    }
    s
}

fn recipients(send: &Send) -> String {
    send.to
        .iter()
        .map(|r| match r {
            Recipient::Role(role) => format!("the {role}"),
            Recipient::Webhook(w) => format!("the webhook `{w}`"),
            Recipient::List(p) => format!("everyone in {p}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn matchers(list: &[Matcher]) -> String {
    list.iter()
        .map(|m| {
            let mut s = format!("`{}`", m.event);
            if let KeyMatch::Path(p) = &m.key {
                let _ = write!(s, " (same {p})");
            }
            if m.when.is_some() {
                s.push_str(" when its condition holds");
            }
            if m.earlier {
                s.push_str(" (one from before it opened, in the same period of care, counts too)");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unit_words(o: &Offset) -> String {
    let n = o.amount.unsigned_abs();
    let unit = match o.unit {
        OffsetUnit::WorkingDays => "working day",
        OffsetUnit::CouncilWorkingDays => "council working day",
        OffsetUnit::Days => "day",
        OffsetUnit::Weeks => "week",
        OffsetUnit::Months => "month",
        OffsetUnit::Hours => "hour",
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// "20 working days after", "3 working days before", "on the day of".
fn offset_words(o: &Offset, after: &str) -> String {
    match o.amount {
        0 => "on the day of".to_string(),
        n if n > 0 => format!("{} {after}", unit_words(o)),
        _ => format!("{} before", unit_words(o)),
    }
}

fn step_words(step: &Step) -> String {
    let when = match step.offset.amount {
        0 => "on the day it is due".to_string(),
        n if n < 0 => format!("{} before the deadline", unit_words(&step.offset)),
        _ => format!(
            "{} after the deadline, if still not met",
            unit_words(&step.offset)
        ),
    };
    let title = step
        .title
        .as_deref()
        .map(|t| format!(" \"{t}\""))
        .unwrap_or_default();
    format!(
        "{when}{title}, to {} (template `{}`{})",
        recipients(&step.send),
        step.send.template,
        if step.send.urgent { ", urgent" } else { "" }
    )
}

/// The deadline `o` away from the anchor `t`, counted as the planner counts it.
fn deadline(cal: &Calendar, o: &Offset, t: NaiveDateTime) -> Option<NaiveDateTime> {
    match o.unit {
        OffsetUnit::Hours => t.checked_add_signed(Duration::hours(i64::from(o.amount))),
        _ => o.deadline_from(cal, t.date()).map(|d| d.and_time(t.time())),
    }
}

/// The example's dates, in order.
fn timeline(
    cal: &Calendar,
    due_offset: &Offset,
    o: &crate::rules::ObligationRule,
    start: NaiveDateTime,
) -> Vec<(NaiveDateTime, String)> {
    let mut lines = vec![(start, anchor(&o.due.from))];
    let Some(due) = deadline(cal, due_offset, start) else {
        return lines;
    };
    let due_words = if due_offset.unit == OffsetUnit::Hours {
        format!("due by {}", due.format("%H:%M"))
    } else {
        "due (by the end of the day)".to_string()
    };
    lines.push((due, due_words));
    for (label, kind, steps) in [
        ("reminder", NotificationKind::Reminder, &o.reminders),
        ("escalation", NotificationKind::Escalation, &o.escalations),
    ] {
        for step in steps {
            if let Some(t) =
                step_day(cal, kind, &step.offset, due.date()).map(|d| d.and_time(due.time()))
            {
                let what = match step.title.as_deref() {
                    Some(title) => format!("{label}: {title}"),
                    None => label.to_string(),
                };
                lines.push((t, format!("{what}, to {}", recipients(&step.send))));
            }
        }
    }
    for action in &o.at_deadline {
        let what = match action {
            Action::Send(send) => format!("sends `{}` to {}", send.template, recipients(send)),
            Action::Emit { event, .. } => format!("records `{event}` if still open"),
        };
        lines.push((due, what));
    }
    lines.sort_by_key(|(t, _)| *t);
    lines
}
