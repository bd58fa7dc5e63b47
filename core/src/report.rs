//! Timeliness figures for a period, for the IRO service's annual report: for each rule, how
//! many obligations fell due and how many were met on time, met late, are overdue or were
//! cancelled; IRO caseloads against the 50–70 guidance; and events by type (and kind).
//!
//! Pure: plans and events in, figures out. Knows no rule or event names: each of the council's
//! rules is a row (first, second and later reviews, invitations, records, decisions...).

use crate::event::Event;
use crate::planner::{CasePlan, ObligationState};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The IRO Handbook's guidance on caseloads.
pub use crate::checks::CASELOAD_GUIDANCE;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub rules: Vec<RuleFigures>,
    pub caseloads: Vec<Caseload>,
    /// `type` or `type/kind`, with how many happened in the period.
    pub events: BTreeMap<String, usize>,
    /// Checks across cases as they stand now: siblings with different IROs, a parent and child
    /// with the same IRO, IROs above the caseload guidance.
    pub checks: Vec<crate::checks::Finding>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleFigures {
    pub rule: String,
    pub title: String,
    /// Obligations due in the period.
    pub due: usize,
    pub met_on_time: usize,
    pub met_late: usize,
    /// Still open past their deadline.
    pub overdue: usize,
    pub cancelled: usize,
    /// Not done before it stopped mattering (papers never sent before the meeting was held).
    pub not_done: usize,
    /// Met on time, as a share of those met, overdue or not done (none when there are none).
    pub on_time_percent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caseload {
    pub iro: String,
    /// Children with an obligation the IRO was told about, open in the period.
    pub children: usize,
    /// `under`, `within` or `over` the guidance.
    pub guidance: &'static str,
}

/// The figures for obligations due, and events that happened, from `from` to `to` inclusive.
pub fn compute(plans: &[CasePlan], events: &[Event], from: NaiveDate, to: NaiveDate) -> Report {
    let mut rules: BTreeMap<String, RuleFigures> = BTreeMap::new();
    let mut caseloads: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut checks = crate::checks::Checks::default();
    for plan in plans {
        checks.add(&plan.case, &plan.status);
        for o in plan
            .obligations
            .iter()
            .filter(|o| o.due >= from && o.due <= to)
        {
            let f = rules.entry(o.rule.clone()).or_insert_with(|| RuleFigures {
                rule: o.rule.clone(),
                title: o.title.clone(),
                ..RuleFigures::default()
            });
            f.due += 1;
            match o.state {
                ObligationState::Met => f.met_on_time += 1,
                ObligationState::MetLate => f.met_late += 1,
                ObligationState::Overdue => f.overdue += 1,
                ObligationState::Cancelled => f.cancelled += 1,
                ObligationState::NotDone => f.not_done += 1,
                ObligationState::Open => {}
            }
        }
        for n in &plan.notifications {
            if let crate::planner::Target::Email { role, email, .. } = &n.recipient
                && role == "iro"
                && n.due.is_some_and(|d| d >= from && d <= to)
            {
                caseloads
                    .entry(email.to_lowercase())
                    .or_default()
                    .insert(plan.case.clone());
            }
        }
    }
    let rules = rules
        .into_values()
        .map(|mut f| {
            let judged = f.met_on_time + f.met_late + f.overdue + f.not_done;
            f.on_time_percent =
                (judged > 0).then(|| u32::try_from(f.met_on_time * 100 / judged).unwrap_or(100));
            f
        })
        .collect();
    let caseloads = caseloads
        .into_iter()
        .map(|(iro, cases)| {
            let children = cases.len();
            let guidance = if children < CASELOAD_GUIDANCE.0 {
                "under"
            } else if children <= CASELOAD_GUIDANCE.1 {
                "within"
            } else {
                "over"
            };
            Caseload {
                iro,
                children,
                guidance,
            }
        })
        .collect();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        let day = crate::localtime::date_of(e.at);
        if day < from || day > to || e.source.as_deref() == Some("driftwatch") {
            continue;
        }
        let label = match e.data.get("kind").and_then(|k| k.as_str()) {
            Some(kind) => format!("{}/{kind}", e.kind),
            None => e.kind.clone(),
        };
        *by_type.entry(label).or_default() += 1;
    }
    Report {
        from: Some(from),
        to: Some(to),
        rules,
        caseloads,
        events: by_type,
        checks: checks.findings(),
    }
}

/// The report as a table for people.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    if let (Some(from), Some(to)) = (r.from, r.to) {
        out.push_str(&format!("Timeliness, obligations due {from} to {to}\n\n"));
    }
    out.push_str(&format!(
        "  {:<30} {:>5} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8}\n",
        "RULE", "DUE", "ON TIME", "LATE", "OVERDUE", "NOT DONE", "CANCELLED", "ON TIME%"
    ));
    for f in &r.rules {
        out.push_str(&format!(
            "  {:<30} {:>5} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8}\n",
            f.rule,
            f.due,
            f.met_on_time,
            f.met_late,
            f.overdue,
            f.not_done,
            f.cancelled,
            f.on_time_percent
                .map_or_else(|| "-".to_string(), |p| format!("{p}%"))
        ));
    }
    out.push_str(&format!(
        "\nIRO caseloads (guidance {}–{} children)\n",
        CASELOAD_GUIDANCE.0, CASELOAD_GUIDANCE.1
    ));
    for c in &r.caseloads {
        out.push_str(&format!(
            "  {:<40} {:>5}  {}\n",
            c.iro, c.children, c.guidance
        ));
    }
    out.push_str("\nChecks across cases\n");
    if r.checks.is_empty() {
        out.push_str("  none: no siblings with different IROs, no parent and child with the same IRO, no IRO above the guidance\n");
    }
    for f in &r.checks {
        out.push_str(&format!("  - {f}\n"));
    }
    out.push_str("\nEvents in the period\n");
    for (label, n) in &r.events {
        out.push_str(&format!("  {label:<60} {n:>5}\n"));
    }
    out
}

/// The per-rule figures as CSV (one header line, one line per rule).
pub fn csv(r: &Report) -> String {
    let mut out = String::from(
        "rule,title,due,met_on_time,met_late,overdue,cancelled,on_time_percent,not_done\n",
    );
    for f in &r.rules {
        out.push_str(&format!(
            "{},\"{}\",{},{},{},{},{},{},{}\n",
            f.rule,
            f.title.replace('"', "\"\""),
            f.due,
            f.met_on_time,
            f.met_late,
            f.overdue,
            f.cancelled,
            f.on_time_percent.map(|p| p.to_string()).unwrap_or_default(),
            f.not_done
        ));
    }
    out
}
