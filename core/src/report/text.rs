//! The report as a table for a terminal and as CSV for a council's own template: the same
//! figures as the page, from the same [`Report`].

use super::{CASELOAD_GUIDANCE, Report};
use std::fmt::Write;

/// The report as a table for people.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    if let (Some(from), Some(to)) = (r.from, r.to) {
        let _ = writeln!(out, "IRO annual report, {from} to {to}\n");
    }
    let c = &r.children;
    let _ = writeln!(
        out,
        "Children looked after: {} in the period, {} started, {} ceased, monthly average {}",
        c.in_period,
        c.started,
        c.ceased,
        c.monthly_average
            .map_or_else(|| "-".to_string(), |a| format!("{a:.1}"))
    );
    for review in &r.reviews {
        let _ = writeln!(out, "\n{} ({})", review.title, review.timescale);
        let _ = writeln!(
            out,
            "  {:<8} {:>8} {:>8} {:>8}",
            "MONTH", "ON TIME", "LATE", "OVERDUE"
        );
        for m in &review.months {
            let _ = writeln!(
                out,
                "  {:<8} {:>8} {:>8} {:>8}",
                m.month, m.on_time, m.late, m.overdue
            );
        }
    }
    if let (Some(from), Some(to)) = (r.from, r.to) {
        let _ = writeln!(out, "\nTimeliness, obligations due {from} to {to}\n");
    }
    let _ = writeln!(
        out,
        "  {:<30} {:>5} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8}",
        "RULE", "DUE", "ON TIME", "LATE", "OVERDUE", "NOT DONE", "CANCELLED", "ON TIME%"
    );
    for f in &r.rules {
        let _ = writeln!(
            out,
            "  {:<30} {:>5} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8}",
            f.rule,
            f.due,
            f.met_on_time,
            f.met_late,
            f.overdue,
            f.not_done,
            f.cancelled,
            f.on_time_percent
                .map_or_else(|| "-".to_string(), |p| format!("{p}%"))
        );
    }
    let _ = writeln!(
        out,
        "\nIRO caseloads now (guidance {}–{} children)",
        CASELOAD_GUIDANCE.0, CASELOAD_GUIDANCE.1
    );
    for c in &r.caseloads {
        let _ = writeln!(out, "  {:<40} {:>5}  {}", c.iro, c.children, c.guidance);
    }
    let _ = writeln!(out, "\nEscalations raised in the period");
    for e in &r.drift.rules {
        let _ = writeln!(
            out,
            "  {}: {} escalated, {} resolved",
            e.title, e.obligations, e.resolved
        );
        for (stage, n) in &e.stages {
            let _ = writeln!(out, "    {stage:<56} {n:>5}");
        }
    }
    let _ = writeln!(
        out,
        "  Referrals to Cafcass considered: {}",
        r.drift.cafcass_referrals_considered
    );
    out.push_str("\nChecks across cases\n");
    if r.checks.is_empty() {
        out.push_str("  none: no siblings with different IROs, no parent and child with the same IRO, no IRO above the guidance\n");
    }
    for f in &r.checks {
        let _ = writeln!(out, "  - {f}");
    }
    out.push_str("\nNeeds attention: overdue longest\n");
    for o in &r.attention.overdue_longest {
        let _ = writeln!(
            out,
            "  {:<16} {:<40} due {}  {} working days late",
            o.case, o.rule, o.due, o.working_days_late
        );
    }
    out.push_str("\nEvents in the period\n");
    for (label, n) in &r.events {
        let _ = writeln!(out, "  {label:<60} {n:>5}");
    }
    out
}

/// One CSV row: `section,item,title,month,figure,value`.
fn row(
    out: &mut String,
    section: &str,
    item: &str,
    title: &str,
    month: &str,
    figure: &str,
    value: impl std::fmt::Display,
) {
    let cell = |s: &str| {
        // A spreadsheet takes a cell starting with one of these as a formula.
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let _ = writeln!(
        out,
        "{},{},{},{},{},{value}",
        cell(section),
        cell(item),
        cell(title),
        cell(month),
        cell(figure)
    );
}

/// Every figure of the report as CSV, one per line (`section,item,title,month,figure,value`),
/// for a council to look up into its own template.
pub fn csv(r: &Report) -> String {
    let mut out = String::from("section,item,title,month,figure,value\n");
    let o = &mut out;
    let c = &r.children;
    for m in &c.by_month {
        row(
            o,
            "children",
            "",
            "",
            &m.month,
            "looked_after_at_month_end",
            m.looked_after,
        );
    }
    row(o, "children", "", "", "", "in_period", c.in_period);
    row(o, "children", "", "", "", "started", c.started);
    row(o, "children", "", "", "", "ceased", c.ceased);
    if let Some(a) = c.monthly_average {
        row(
            o,
            "children",
            "",
            "",
            "",
            "monthly_average",
            format!("{a:.1}"),
        );
    }
    for review in &r.reviews {
        for m in &review.months {
            row(
                o,
                "reviews",
                &review.rule,
                &review.title,
                &m.month,
                "on_time",
                m.on_time,
            );
            row(
                o,
                "reviews",
                &review.rule,
                &review.title,
                &m.month,
                "late",
                m.late,
            );
            row(
                o,
                "reviews",
                &review.rule,
                &review.title,
                &m.month,
                "overdue",
                m.overdue,
            );
        }
    }
    for f in &r.rules {
        let figures = [
            ("due", f.due),
            ("met_on_time", f.met_on_time),
            ("met_late", f.met_late),
            ("overdue", f.overdue),
            ("cancelled", f.cancelled),
            ("not_done", f.not_done),
        ];
        for (figure, value) in figures {
            row(o, "rules", &f.rule, &f.title, "", figure, value);
        }
        if let Some(p) = f.on_time_percent {
            row(o, "rules", &f.rule, &f.title, "", "on_time_percent", p);
        }
    }
    for c in &r.caseloads {
        row(o, "caseloads", &c.iro, "", "", "children", c.children);
    }
    for e in &r.drift.rules {
        for (stage, n) in &e.stages {
            row(o, "escalations", &e.rule, stage, "", "raised", n);
        }
        row(
            o,
            "escalations",
            &e.rule,
            &e.title,
            "",
            "escalated",
            e.obligations,
        );
        row(
            o,
            "escalations",
            &e.rule,
            &e.title,
            "",
            "resolved",
            e.resolved,
        );
        if let Some(d) = e.median_working_days {
            row(
                o,
                "escalations",
                &e.rule,
                &e.title,
                "",
                "median_working_days_to_resolve",
                d,
            );
        }
        if let Some(d) = e.longest_working_days {
            row(
                o,
                "escalations",
                &e.rule,
                &e.title,
                "",
                "longest_working_days_to_resolve",
                d,
            );
        }
    }
    row(
        o,
        "escalations",
        "",
        "",
        "",
        "cafcass_referrals_considered",
        r.drift.cafcass_referrals_considered,
    );
    for (label, n) in &r.notified {
        row(o, "notified", label, "", "", "events", n);
    }
    for (label, n) in &r.events {
        row(o, "events", label, "", "", "events", n);
    }
    for f in &r.attention.falling {
        row(
            o,
            "attention",
            &f.rule,
            &f.title,
            "",
            "first_half_on_time_percent",
            f.first_half_percent,
        );
        row(
            o,
            "attention",
            &f.rule,
            &f.title,
            "",
            "second_half_on_time_percent",
            f.second_half_percent,
        );
    }
    for d in &r.attention.overdue_longest {
        let item = format!("{} {}", d.case, d.rule);
        row(
            o,
            "overdue_longest",
            &item,
            &d.title,
            "",
            "working_days_late",
            d.working_days_late,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Caseload;

    #[test]
    fn a_cell_a_spreadsheet_would_run_as_a_formula_is_kept_as_text() {
        let r = Report {
            caseloads: vec![Caseload {
                iro: "=HYPERLINK(\"x\",\"y\")".into(),
                children: 3,
                guidance: "under",
            }],
            ..Report::default()
        };
        let csv = csv(&r);
        assert!(
            csv.contains("\ncaseloads,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",,,children,3\n"),
            "{csv}"
        );
    }
}
