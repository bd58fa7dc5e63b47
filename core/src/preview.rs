//! What a change of rules would do to the caseload, before it is reloaded: each case planned
//! with the rules in force and with the changed ones, at the same moment, and the two plans
//! compared. Pure: plans in, counts out; must not load rules, read the store or send anything
//! (the binary and the API do that, then hand the plans here one case at a time, so a national
//! caseload is never held in memory at once).
//!
//! What an admin needs to decide whether to reload, by rule:
//! - deadlines that move, earlier or later, and by how many working days at most;
//! - obligations the change opens or takes away;
//! - messages added (and how many of those would go at once, their time having passed) or
//!   withdrawn within the look-ahead (ten working days), and messages whose time moves;
//! - a few case references to look at with `driftwatch plan`.

use crate::calendar::Calendar;
use crate::planner::{CasePlan, Notification, NotificationStatus, ObligationPlan, ObligationState};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Working days ahead that messages are compared over.
pub const LOOK_AHEAD_WORKING_DAYS: i32 = 10;

/// How many example cases are kept for each rule.
const EXAMPLES: usize = 3;

/// The change across the caseload.
#[derive(Debug, Clone, Serialize)]
pub struct RulesChange {
    pub now: DateTime<Utc>,
    /// Messages are compared up to the end of this local date.
    pub look_ahead_until: NaiveDate,
    pub cases: usize,
    /// Cases with any difference counted below.
    pub cases_changed: usize,
    /// Rule ids only the changed rules have, and only the rules in force have.
    pub rules_added: Vec<String>,
    pub rules_removed: Vec<String>,
    /// By rule id, only rules with a difference.
    pub by_rule: BTreeMap<String, RuleChange>,
}

/// The change to one rule's obligations and messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleChange {
    /// Open or overdue obligations whose due date moves.
    pub deadlines_moved: usize,
    pub deadlines_earlier: usize,
    /// The most working days any deadline moves earlier.
    pub most_earlier_working_days: i32,
    pub deadlines_later: usize,
    pub most_later_working_days: i32,
    /// Open or overdue obligations only the changed rules have.
    pub obligations_opened: usize,
    /// Open or overdue obligations only the rules in force have.
    pub obligations_taken_away: usize,
    /// Messages within the look-ahead only the changed rules would send.
    pub messages_added: usize,
    /// Of those, the ones whose time has passed: they would go as soon as the rules are reloaded.
    pub messages_at_once: usize,
    /// Messages within the look-ahead the rules in force would send and the changed ones not.
    pub messages_withdrawn: usize,
    /// Messages both would send within the look-ahead, at different times.
    pub messages_retimed: usize,
    /// A few of the cases affected.
    pub examples: Vec<String>,
}

impl RuleChange {
    fn is_empty(&self) -> bool {
        *self
            == RuleChange {
                examples: self.examples.clone(),
                ..RuleChange::default()
            }
    }
}

/// Compares plans case by case; [`Comparison::finish`] gives the result.
pub struct Comparison<'a> {
    calendar: &'a Calendar,
    now: DateTime<Utc>,
    until: NaiveDate,
    cases: usize,
    cases_changed: usize,
    by_rule: BTreeMap<String, RuleChange>,
    rules_before: Vec<String>,
    rules_after: Vec<String>,
}

impl<'a> Comparison<'a> {
    /// `rules_before` and `rules_after` are the rule ids in force and in the changed rules.
    pub fn new(
        calendar: &'a Calendar,
        now: DateTime<Utc>,
        rules_before: Vec<String>,
        rules_after: Vec<String>,
    ) -> Comparison<'a> {
        let today = crate::localtime::date_of(now);
        Comparison {
            calendar,
            now,
            until: calendar.add(today, LOOK_AHEAD_WORKING_DAYS),
            cases: 0,
            cases_changed: 0,
            by_rule: BTreeMap::new(),
            rules_before,
            rules_after,
        }
    }

    /// Adds one case, planned at the same moment with the rules in force and the changed ones.
    pub fn add_case(&mut self, before: &CasePlan, after: &CasePlan) {
        self.cases += 1;
        let mut changes: BTreeMap<String, RuleChange> = BTreeMap::new();
        self.compare_obligations(before, after, &mut changes);
        self.compare_messages(before, after, &mut changes);
        changes.retain(|_, c| !c.is_empty());
        if changes.is_empty() {
            return;
        }
        self.cases_changed += 1;
        for (rule, c) in changes {
            let total = self.by_rule.entry(rule).or_default();
            total.deadlines_moved += c.deadlines_moved;
            total.deadlines_earlier += c.deadlines_earlier;
            total.deadlines_later += c.deadlines_later;
            total.most_earlier_working_days = total
                .most_earlier_working_days
                .max(c.most_earlier_working_days);
            total.most_later_working_days =
                total.most_later_working_days.max(c.most_later_working_days);
            total.obligations_opened += c.obligations_opened;
            total.obligations_taken_away += c.obligations_taken_away;
            total.messages_added += c.messages_added;
            total.messages_at_once += c.messages_at_once;
            total.messages_withdrawn += c.messages_withdrawn;
            total.messages_retimed += c.messages_retimed;
            if total.examples.len() < EXAMPLES {
                total.examples.push(before.case.clone());
            }
        }
    }

    fn compare_obligations(
        &self,
        before: &CasePlan,
        after: &CasePlan,
        changes: &mut BTreeMap<String, RuleChange>,
    ) {
        let pending = |plan: &'_ CasePlan| -> HashMap<String, ObligationPlan> {
            plan.obligations
                .iter()
                .filter(|o| matches!(o.state, ObligationState::Open | ObligationState::Overdue))
                .map(|o| (o.id.clone(), o.clone()))
                .collect()
        };
        let (old, new) = (pending(before), pending(after));
        for (id, o) in &old {
            let c = changes.entry(o.rule.clone()).or_default();
            match new.get(id) {
                None => c.obligations_taken_away += 1,
                Some(n) if n.due != o.due => {
                    c.deadlines_moved += 1;
                    let by = self.calendar.between(o.due, n.due);
                    if n.due < o.due {
                        c.deadlines_earlier += 1;
                        c.most_earlier_working_days = c.most_earlier_working_days.max(-by);
                    } else {
                        c.deadlines_later += 1;
                        c.most_later_working_days = c.most_later_working_days.max(by);
                    }
                }
                Some(_) => {}
            }
        }
        for (id, n) in &new {
            if !old.contains_key(id) {
                changes
                    .entry(n.rule.clone())
                    .or_default()
                    .obligations_opened += 1;
            }
        }
    }

    /// Messages still to go: due now or later, within the look-ahead.
    fn to_go<'p>(&self, plan: &'p CasePlan) -> HashMap<&'p str, &'p Notification> {
        plan.notifications
            .iter()
            .filter(|n| {
                matches!(
                    n.status,
                    NotificationStatus::Due | NotificationStatus::Scheduled
                ) && crate::localtime::date_of(n.send_at) <= self.until
            })
            .map(|n| (n.idempotency_key.as_str(), n))
            .collect()
    }

    fn compare_messages(
        &self,
        before: &CasePlan,
        after: &CasePlan,
        changes: &mut BTreeMap<String, RuleChange>,
    ) {
        let (old, new) = (self.to_go(before), self.to_go(after));
        for (key, o) in &old {
            let c = changes.entry(o.rule.clone()).or_default();
            match new.get(key) {
                None => c.messages_withdrawn += 1,
                Some(n) if n.send_at != o.send_at => c.messages_retimed += 1,
                Some(_) => {}
            }
        }
        for (key, n) in &new {
            if old.contains_key(key) {
                continue;
            }
            let c = changes.entry(n.rule.clone()).or_default();
            c.messages_added += 1;
            if n.send_at <= self.now {
                c.messages_at_once += 1;
            }
        }
    }

    pub fn finish(self) -> RulesChange {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            let mut v: Vec<String> = a.iter().filter(|r| !b.contains(r)).cloned().collect();
            v.sort();
            v
        };
        RulesChange {
            now: self.now,
            look_ahead_until: self.until,
            cases: self.cases,
            cases_changed: self.cases_changed,
            rules_added: only(&self.rules_after, &self.rules_before),
            rules_removed: only(&self.rules_before, &self.rules_after),
            by_rule: self.by_rule,
        }
    }
}

impl RulesChange {
    /// The change as an admin reads it at a terminal.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} of {} case(s) would change; messages compared up to the end of {}.",
            self.cases_changed,
            self.cases,
            crate::localtime::date_in_words(self.look_ahead_until)
        );
        if !self.rules_added.is_empty() {
            let _ = writeln!(out, "Rules added: {}", self.rules_added.join(", "));
        }
        if !self.rules_removed.is_empty() {
            let _ = writeln!(out, "Rules removed: {}", self.rules_removed.join(", "));
        }
        if self.by_rule.is_empty() {
            let _ = writeln!(
                out,
                "No deadline moves and no message is added or withdrawn."
            );
            return out;
        }
        let rows: Vec<Vec<String>> = self
            .by_rule
            .iter()
            .map(|(rule, c)| {
                let moved = |n: usize, most: i32, way: &str| {
                    if n == 0 {
                        "-".to_string()
                    } else {
                        format!("{n} {way} (up to {most} wd)")
                    }
                };
                vec![
                    rule.clone(),
                    moved(c.deadlines_earlier, c.most_earlier_working_days, "earlier"),
                    moved(c.deadlines_later, c.most_later_working_days, "later"),
                    format!("+{} -{}", c.obligations_opened, c.obligations_taken_away),
                    if c.messages_at_once > 0 {
                        format!("{} ({} at once)", c.messages_added, c.messages_at_once)
                    } else {
                        c.messages_added.to_string()
                    },
                    c.messages_withdrawn.to_string(),
                    c.messages_retimed.to_string(),
                    c.examples.join(" "),
                ]
            })
            .collect();
        let header = [
            "RULE",
            "DEADLINES EARLIER",
            "DEADLINES LATER",
            "OBLIGATIONS +/-",
            "MESSAGES ADDED",
            "WITHDRAWN",
            "RETIMED",
            "FOR EXAMPLE",
        ];
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: Vec<String>| {
            let cells: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
        };
        line(header.iter().map(|h| h.to_string()).collect());
        for r in rows {
            line(r);
        }
        out
    }
}
