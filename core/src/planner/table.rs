//! The plan as a table for people (`driftwatch plan --format table`). Shows roles, never email
//! addresses, so a plan can be pasted into a ticket.

use super::CasePlan;
use crate::localtime;
use std::fmt::Write;

const OBLIGATION_COLUMNS: [(&str, usize); 5] = [
    ("DUE", 16),
    ("STATE", 15),
    ("RULE", 28),
    ("KEY", 10),
    ("CLOSED", 0),
];
const NOTIFICATION_COLUMNS: [(&str, usize); 6] = [
    ("SEND AT", 16),
    ("STATUS", 10),
    ("KIND", 10),
    ("RULE", 28),
    ("TO", 22),
    ("STEP", 0),
];

/// One line of a table: each cell padded to its column's width (the last one unpadded).
fn row<const N: usize>(out: &mut String, columns: &[(&str, usize); N], cells: [&str; N]) {
    let mut line = String::from(" ");
    for ((_, width), cell) in columns.iter().zip(cells) {
        let _ = write!(line, " {cell:<width$}");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn header<const N: usize>(out: &mut String, title: &str, columns: &[(&str, usize); N]) {
    let _ = writeln!(out, "\n  {title}");
    row(out, columns, columns.map(|(name, _)| name));
}

pub fn render(plans: &[CasePlan]) -> String {
    let mut out = String::new();
    for (i, plan) in plans.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "Case {}  (as at {} Europe/London)",
            plan.case,
            localtime::display(plan.now)
        );

        header(&mut out, "Obligations", &OBLIGATION_COLUMNS);
        for o in &plan.obligations {
            let due = match &o.due_time {
                Some(t) => format!("{} {t}", o.due),
                None => o.due.to_string(),
            };
            let state = match o.working_days_late {
                Some(n) => format!("{} ({n}wd)", o.state.as_str()),
                None => o.state.as_str().to_string(),
            };
            let closed = o.closed_at.map(localtime::display).unwrap_or_default();
            row(
                &mut out,
                &OBLIGATION_COLUMNS,
                [
                    &due,
                    &state,
                    &o.rule,
                    o.key.as_deref().unwrap_or("-"),
                    &closed,
                ],
            );
        }

        header(&mut out, "Notifications", &NOTIFICATION_COLUMNS);
        for n in &plan.notifications {
            let mut status = n.status.as_str().to_string();
            if n.late {
                status.push('*');
            }
            let kind = format!("{:?}", n.kind).to_lowercase();
            let step = n.title.as_deref().unwrap_or(&n.step);
            row(
                &mut out,
                &NOTIFICATION_COLUMNS,
                [
                    &localtime::display(n.send_at),
                    &status,
                    &kind,
                    &n.rule,
                    &n.recipient.label(),
                    step,
                ],
            );
        }
        if plan.notifications.iter().any(|n| n.late) {
            let _ = writeln!(
                out,
                "  (* late: the obligation opened or moved after this step's time)"
            );
        }
        if !plan.upcoming_events.is_empty() {
            let _ = writeln!(out, "\n  Upcoming derived events");
            for u in &plan.upcoming_events {
                let _ = writeln!(
                    out,
                    "  {:<16} {} (rule {})",
                    localtime::display(u.at),
                    u.kind,
                    u.rule
                );
            }
        }
        if !plan.problems.is_empty() {
            let _ = writeln!(out, "\n  Problems");
            for p in &plan.problems {
                let _ = writeln!(out, "  - {p}");
            }
        }
    }
    out
}
