//! What the dashboard shows an IRO manager: the obligations overdue or falling due soon, counted
//! by IRO, by rule and by case, and one case's timeline.
//!
//! Pure: the outstanding obligations (as the store keeps them), a case's plan and outbox in;
//! tables out. The shell's web pages render these and must not compute them. Nothing
//! here reads event data: the dashboard shows case references, rule titles, dates and staff
//! addresses, never a child's details.

use crate::calendar::Calendar;
use crate::event::Event;
use crate::localtime;
use crate::outbox::{InView, OutboxEntry, StoredObligation};
use crate::planner::CasePlan;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The label for obligations of a case no IRO is recorded on.
pub const NO_IRO: &str = "(no IRO recorded)";

/// One obligation on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub case: String,
    pub rule: String,
    pub title: String,
    pub due: NaiveDate,
    pub overdue: bool,
    /// Working days past the due date (0 when not overdue).
    pub working_days_late: i32,
    /// The case's IROs (addresses), or [`NO_IRO`].
    pub iro: String,
}

/// How many obligations of one IRO, rule or case are overdue and due soon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub name: String,
    /// What to show: a rule's title, an address, a case reference.
    pub label: String,
    pub overdue: usize,
    pub due_soon: usize,
    /// The most working days any of them is late.
    pub worst: i32,
}

/// The dashboard's front page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub today: NaiveDate,
    /// Obligations due on or before this day (and not yet overdue) count as due soon.
    pub until: NaiveDate,
    pub horizon_working_days: i32,
    /// Overdue first, the most late at the top; then due soon, the soonest first.
    pub rows: Vec<Row>,
    pub by_iro: Vec<Tally>,
    pub by_rule: Vec<Tally>,
    pub by_case: Vec<Tally>,
    pub overdue: usize,
    pub due_soon: usize,
}

/// Builds the overview from the outstanding obligations at `now`. A case's IRO is whoever has
/// the role `iro` on any of its outstanding obligations. Pure.
pub fn overview(
    calendar: &Calendar,
    obligations: &[StoredObligation],
    now: DateTime<Utc>,
    horizon: i32,
    iro_names: &HashMap<String, String>,
) -> Overview {
    let today = localtime::date_of(now);
    let until = calendar.add(today, horizon.max(0));
    let mut iros: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for o in obligations.iter().filter(|o| o.open) {
        for p in o.people.iter().filter(|p| p.role == "iro") {
            iros.entry(o.case.as_str()).or_default().insert(&p.email);
        }
    }
    let mut rows = Vec::new();
    for o in obligations {
        let Some(InView { due, overdue }) = o.in_view(now, until) else {
            continue;
        };
        // IROs by name where the case's status gives one, by address otherwise.
        let iro = iros
            .get(o.case.as_str())
            .map(|s| {
                s.iter()
                    .map(|e| iro_names.get(&e.to_lowercase()).map_or(*e, String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| NO_IRO.to_string());
        rows.push(Row {
            case: o.case.clone(),
            rule: o.text("rule"),
            title: o.text("title"),
            due,
            overdue,
            working_days_late: crate::planner::working_days_late_at(calendar, due, o.deadline, now)
                .unwrap_or(0),
            iro,
        });
    }
    rows.sort_by(|a, b| {
        (!a.overdue, -a.working_days_late, a.due, &a.case, &a.rule).cmp(&(
            !b.overdue,
            -b.working_days_late,
            b.due,
            &b.case,
            &b.rule,
        ))
    });
    let tally = |key: &dyn Fn(&Row) -> (String, String)| {
        let mut by: BTreeMap<String, Tally> = BTreeMap::new();
        for r in &rows {
            let (name, label) = key(r);
            let t = by.entry(name.clone()).or_insert_with(|| Tally {
                name,
                label,
                ..Tally::default()
            });
            if r.overdue {
                t.overdue += 1;
            } else {
                t.due_soon += 1;
            }
            t.worst = t.worst.max(r.working_days_late);
        }
        let mut out: Vec<Tally> = by.into_values().collect();
        out.sort_by(|a, b| {
            (b.overdue, b.worst, b.due_soon, &a.name)
                .cmp(&(a.overdue, a.worst, a.due_soon, &b.name))
        });
        out
    };
    let by_iro = tally(&|r| (r.iro.clone(), r.iro.clone()));
    let by_rule = tally(&|r| (r.rule.clone(), r.title.clone()));
    let by_case = tally(&|r| (r.case.clone(), r.case.clone()));
    let overdue = rows.iter().filter(|r| r.overdue).count();
    Overview {
        today,
        until,
        horizon_working_days: horizon,
        due_soon: rows.len() - overdue,
        overdue,
        rows,
        by_iro,
        by_rule,
        by_case,
    }
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Local time in words (`Wed 10 Feb 2027, 19:30`), or the day a deadline falls on.
    pub when: String,
    #[serde(skip)]
    pub at: DateTime<Utc>,
    /// `event`, `deadline` or `notification`.
    pub kind: &'static str,
    pub what: String,
    /// Where it stands: an obligation's state, a notification's delivery.
    pub state: String,
    /// Whether it needs attention (overdue, dead).
    pub alert: bool,
}

/// A case's timeline, oldest first: its events (type and source only), its obligations'
/// deadlines with their state, and its notifications with what became of each (from the outbox
/// where it has a row). Pure.
pub fn timeline(
    rules: &crate::rules::RuleSet,
    plan: &CasePlan,
    events: &[Event],
    outbox: &[OutboxEntry],
) -> Vec<Entry> {
    let mut out = Vec::new();
    for e in events {
        let source = e.source.as_deref().unwrap_or("case system");
        out.push(Entry {
            when: localtime::short_in_words(e.at),
            at: e.at,
            kind: "event",
            what: format!("{} (from {source})", e.kind.replace('_', " ")),
            state: String::new(),
            alert: false,
        });
    }
    for o in &plan.obligations {
        let mut state = o.state.as_str().to_string();
        if let Some(days) = o.working_days_late {
            state.push_str(&format!(", {days} working day(s) late"));
        }
        // The day it is due (and the time, for a deadline at a time), not the midnight after.
        let day = localtime::short_date_in_words(o.due);
        let when = match &o.due_time {
            Some(time) => format!("{day}, {time}"),
            None => day.clone(),
        };
        out.push(Entry {
            when,
            at: o.deadline,
            kind: "deadline",
            what: format!("{} (due {day})", o.title),
            alert: o.state == crate::planner::ObligationState::Overdue,
            state,
        });
    }
    let stored: HashMap<&str, &OutboxEntry> = outbox
        .iter()
        .map(|r| (r.idempotency_key.as_str(), r))
        .collect();
    for n in &plan.notifications {
        let row = stored.get(n.idempotency_key.as_str());
        let state = match row {
            Some(r) => r.state.as_str().replace('_', " "),
            None => n.status.as_str().to_string(),
        };
        let step = n.title.as_deref().unwrap_or(&n.step);
        out.push(Entry {
            when: localtime::short_in_words(n.send_at),
            at: n.send_at,
            kind: "notification",
            what: format!(
                "{} to {}: {step} ({})",
                format!("{:?}", n.kind).to_lowercase(),
                n.recipient.label(),
                rules
                    .rule(&n.rule)
                    .map_or(n.rule.as_str(), |r| r.title.as_str())
            ),
            alert: row.is_some_and(|r| r.state == crate::outbox::OutboxState::Dead),
            state,
        });
    }
    out.sort_by(|a, b| (a.at, a.kind).cmp(&(b.at, b.kind)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Division;
    use crate::outbox::Person;
    use serde_json::json;

    fn calendar() -> Calendar {
        let json = include_str!("../../config/bank-holidays.json");
        Calendar::from_json(
            "bank-holidays.json",
            json,
            Division::EnglandAndWales,
            vec![],
        )
        .unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn ob(case: &str, rule: &str, due: &str, open: bool, iro: Option<&str>) -> StoredObligation {
        let mut people = vec![Person {
            role: "social_worker".into(),
            email: "sw@council.example".into(),
        }];
        if let Some(iro) = iro {
            people.push(Person {
                role: "iro".into(),
                email: iro.into(),
            });
        }
        StoredObligation {
            case: case.into(),
            // The end of the due date, London time (GMT in February).
            deadline: t(&format!("{due}T23:59:59Z")) + chrono::Duration::seconds(1),
            open,
            body: json!({"rule": rule, "title": format!("Title of {rule}"), "due": due}),
            people,
        }
    }

    #[test]
    fn overview_counts_by_iro_rule_and_case_most_late_first() {
        // Monday 15 February 2027, 10:00. Due soon: by Monday the 22nd (5 working days).
        let now = t("2027-02-15T10:00:00Z");
        let obligations = vec![
            // Due Friday 29 January: 11 working days late.
            ob(
                "C-1",
                "decision",
                "2027-01-29",
                true,
                Some("ira@council.example"),
            ),
            // Due Wednesday 3 February: 8 late. The IRO is known from the case's other row.
            ob("C-1", "care_plan", "2027-02-03", true, None),
            ob("C-2", "care_plan", "2027-02-12", true, None),
            ob("C-2", "review", "2027-02-22", true, None),
            // Beyond the horizon, met, or not yet overdue today: left out or counted as soon.
            ob("C-2", "review", "2027-02-23", true, None),
            ob(
                "C-3",
                "decision",
                "2027-01-04",
                false,
                Some("ira@council.example"),
            ),
            ob(
                "C-3",
                "review",
                "2027-02-15",
                true,
                Some("oli@council.example"),
            ),
        ];
        let o = overview(&calendar(), &obligations, now, 5, &HashMap::new());
        assert_eq!(o.until, "2027-02-22".parse::<NaiveDate>().unwrap());
        let rows: Vec<(&str, &str, bool, i32, &str)> = o
            .rows
            .iter()
            .map(|r| {
                (
                    r.case.as_str(),
                    r.rule.as_str(),
                    r.overdue,
                    r.working_days_late,
                    r.iro.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("C-1", "decision", true, 11, "ira@council.example"),
                ("C-1", "care_plan", true, 8, "ira@council.example"),
                ("C-2", "care_plan", true, 1, NO_IRO),
                ("C-3", "review", false, 0, "oli@council.example"),
                ("C-2", "review", false, 0, NO_IRO),
            ]
        );
        assert_eq!((o.overdue, o.due_soon), (3, 2));
        let tallies = |ts: &[Tally]| -> Vec<(String, usize, usize, i32)> {
            ts.iter()
                .map(|t| (t.name.clone(), t.overdue, t.due_soon, t.worst))
                .collect()
        };
        assert_eq!(
            tallies(&o.by_iro),
            vec![
                ("ira@council.example".into(), 2, 0, 11),
                (NO_IRO.into(), 1, 1, 1),
                ("oli@council.example".into(), 0, 1, 0),
            ]
        );
        assert_eq!(
            tallies(&o.by_rule),
            vec![
                ("care_plan".into(), 2, 0, 8),
                ("decision".into(), 1, 0, 11),
                ("review".into(), 0, 2, 0),
            ]
        );
        assert_eq!(o.by_rule[0].label, "Title of care_plan");
        assert_eq!(
            tallies(&o.by_case),
            vec![
                ("C-1".into(), 2, 0, 11),
                ("C-2".into(), 1, 1, 1),
                ("C-3".into(), 0, 1, 0),
            ]
        );
    }
}
