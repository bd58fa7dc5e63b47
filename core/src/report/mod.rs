//! The IRO service's annual report (IRO Handbook: the manager reports to the corporate parenting
//! board): children looked after in the period, review timeliness by month, timeliness by rule,
//! IRO caseloads against the 50–70 guidance, drift (escalations by stage, how long they took to
//! resolve, referrals to Cafcass considered), events notified at once, and a short list of what
//! needs attention. One computation gives the page ([`html`]), the table and CSV ([`text`]) and
//! the JSON.
//!
//! Pure: the rules, the calendar and the period in, then one case at a time (its plan at `now`
//! and its events) folded into a [`Tally`], so memory does not grow with the caseload. Knows no
//! rule or event names: a review is an obligation met by the case model's "meeting held" event,
//! periods of care open and close on the case model's events, and every lateness is counted in
//! statutory working days by the calendar. Never holds a child's name or free text from events:
//! cases are named by reference only.

pub mod html;
mod text;

pub use text::{csv, table};

use crate::calendar::Calendar;
use crate::checks::Checks;
use crate::event::Event;
use crate::localtime;
use crate::planner::{CasePlan, NotificationKind, NotificationStatus, ObligationState};
use crate::rules::{RuleBody, RuleSet};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The IRO Handbook's guidance on caseloads.
pub use crate::checks::CASELOAD_GUIDANCE;

/// How many obligations the "overdue longest" list shows.
pub const OVERDUE_LONGEST: usize = 10;

/// How many percentage points a rule's timeliness must fall, from the first half of the period
/// to the second, to be listed as needing attention.
pub const FALL_POINTS: u32 = 5;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// When the figures were worked out: states (overdue, open) are as at this moment.
    pub as_at: Option<DateTime<Utc>>,
    pub children: Children,
    /// One chart per review rule, in the rules' order.
    pub reviews: Vec<ReviewTimeliness>,
    pub rules: Vec<RuleFigures>,
    pub caseloads: Vec<Caseload>,
    pub drift: Drift,
    /// Events that caused a message at once (a notice), by `type` or `type/kind`: significant
    /// events and the like, each counted once however many people were told.
    pub notified: BTreeMap<String, usize>,
    /// `type` or `type/kind`, with how many happened in the period.
    pub events: BTreeMap<String, usize>,
    /// Checks across cases as they stand now: siblings with different IROs, a parent and child
    /// with the same IRO, IROs above the caseload guidance.
    pub checks: Vec<crate::checks::Finding>,
    pub attention: Attention,
}

/// Children looked after in the period (the opening of a council's annual report).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Children {
    /// Periods of care that began in the period.
    pub started: usize,
    /// Periods of care that ended in the period.
    pub ceased: usize,
    /// Children looked after at the end of each month (or at the end of the period, for its last
    /// month), month by month.
    pub by_month: Vec<MonthCount>,
    /// The mean of `by_month`, to one decimal place; none for a period with no months.
    pub monthly_average: Option<f64>,
    /// Children looked after at any time in the period.
    pub in_period: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthCount {
    /// `2027-01`.
    pub month: String,
    pub looked_after: usize,
}

/// Reviews held on time, late and still overdue, by the month they were due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewTimeliness {
    pub rule: String,
    pub title: String,
    /// The statutory timescale: the rule's deadline, in words, and its source.
    pub timescale: String,
    pub source: String,
    pub months: Vec<MonthTimeliness>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MonthTimeliness {
    pub month: String,
    pub on_time: usize,
    pub late: usize,
    pub overdue: usize,
}

impl MonthTimeliness {
    pub fn total(&self) -> usize {
        self.on_time + self.late + self.overdue
    }
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
    /// The IRO's name (their address when no name is known).
    pub iro: String,
    /// Looked-after children allocated to the IRO as the cases stand now.
    pub children: usize,
    /// `under`, `within` or `over` the guidance.
    pub guidance: &'static str,
}

/// Drift and delay challenged: escalations raised, by rule and stage of its ladder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub rules: Vec<Escalated>,
    /// Escalation stages raised whose title names Cafcass (the last stage of the dispute
    /// ladder: the IRO considers a referral).
    pub cafcass_referrals_considered: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Escalated {
    pub rule: String,
    pub title: String,
    /// Raised in the period, by stage (in ladder order): (stage title, how many).
    pub stages: Vec<(String, usize)>,
    /// Obligations with an escalation raised in the period.
    pub obligations: usize,
    /// Of those, met or ended since.
    pub resolved: usize,
    /// Statutory working days from the deadline to resolution: the median (the lower of the two
    /// middle values when there is an even number) and the longest.
    pub median_working_days: Option<i32>,
    pub longest_working_days: Option<i32>,
}

/// What needs urgent action, by case reference only.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attention {
    /// Rules whose on-time share fell by at least [`FALL_POINTS`] from the first half of the
    /// period to the second.
    pub falling: Vec<Falling>,
    /// IROs above the caseload guidance.
    pub over_guidance: Vec<Caseload>,
    /// The obligations overdue longest now, longest first.
    pub overdue_longest: Vec<Overdue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Falling {
    pub rule: String,
    pub title: String,
    pub first_half_percent: u32,
    pub second_half_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub case: String,
    pub rule: String,
    pub title: String,
    pub due: NaiveDate,
    pub working_days_late: i32,
}

/// Per-rule counts while folding.
#[derive(Default)]
struct RuleTally {
    figures: RuleFigures,
    /// (on time, judged) for each half of the period.
    halves: [(usize, usize); 2],
}

#[derive(Default)]
struct EscalationTally {
    stages: BTreeMap<usize, usize>,
    obligations: usize,
    resolved_days: Vec<i32>,
}

/// Folds cases one at a time into a [`Report`].
pub struct Tally<'a> {
    rules: &'a RuleSet,
    calendar: &'a Calendar,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    /// The first day of each month the period touches.
    months: Vec<NaiveDate>,
    /// Review rule id to its index in `reviews`.
    review_rules: HashMap<String, usize>,
    reviews: Vec<ReviewTimeliness>,
    by_rule: BTreeMap<String, RuleTally>,
    escalations: BTreeMap<String, EscalationTally>,
    cafcass: usize,
    looked_after_at_month_end: Vec<usize>,
    started: usize,
    ceased: usize,
    in_period: usize,
    notified: BTreeMap<String, usize>,
    events: BTreeMap<String, usize>,
    checks: Checks,
    overdue: Vec<Overdue>,
}

/// The first day of every month from `from`'s to `to`'s.
fn months_between(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut m = from.with_day(1).unwrap_or(from);
    while m <= to {
        out.push(m);
        match m.checked_add_months(Months::new(1)) {
            Some(next) => m = next,
            None => break,
        }
    }
    out
}

fn month_label(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// An event's label in the report: `type`, or `type/kind` when its vocabulary declares `kind`
/// as one of a fixed list (a significant event's kind). Any other `kind` could be free text,
/// which must not reach the report.
fn event_label(vocabulary: &crate::rules::Vocabulary, e: &Event) -> String {
    let listed = vocabulary
        .events
        .get(&e.kind)
        .and_then(|spec| spec.fields.get("kind"))
        .and_then(|f| f.one_of.as_ref());
    match (e.data.get("kind").and_then(|k| k.as_str()), listed) {
        (Some(kind), Some(one_of)) if one_of.iter().any(|k| k == kind) => {
            format!("{}/{kind}", e.kind)
        }
        _ => e.kind.clone(),
    }
}

fn percent(on_time: usize, judged: usize) -> Option<u32> {
    (judged > 0).then(|| u32::try_from(on_time * 100 / judged).unwrap_or(100))
}

impl<'a> Tally<'a> {
    pub fn new(
        rules: &'a RuleSet,
        calendar: &'a Calendar,
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> Tally<'a> {
        let held: BTreeSet<&str> = rules
            .case
            .meetings
            .iter()
            .flat_map(|m| m.held_by.iter().map(String::as_str))
            .collect();
        let months = months_between(from, to);
        let mut reviews = Vec::new();
        let mut review_rules = HashMap::new();
        for rule in &rules.rules {
            let RuleBody::Obligation(o) = &rule.body else {
                continue;
            };
            if o.met_by.iter().any(|m| held.contains(m.event.as_str())) {
                review_rules.insert(rule.id.clone(), reviews.len());
                reviews.push(ReviewTimeliness {
                    rule: rule.id.clone(),
                    title: rule.title.clone(),
                    timescale: timescale(rule, &o.due),
                    source: rule.source.clone(),
                    months: months
                        .iter()
                        .map(|m| MonthTimeliness {
                            month: month_label(*m),
                            ..MonthTimeliness::default()
                        })
                        .collect(),
                });
            }
        }
        Tally {
            rules,
            calendar,
            from,
            to,
            now,
            looked_after_at_month_end: vec![0; months.len()],
            months,
            review_rules,
            reviews,
            by_rule: BTreeMap::new(),
            escalations: BTreeMap::new(),
            cafcass: 0,
            started: 0,
            ceased: 0,
            in_period: 0,
            notified: BTreeMap::new(),
            events: BTreeMap::new(),
            checks: Checks::default(),
            overdue: Vec::new(),
        }
    }

    fn in_period(&self, d: NaiveDate) -> bool {
        d >= self.from && d <= self.to
    }

    /// Which half of the period a day falls in.
    fn half(&self, d: NaiveDate) -> usize {
        let days = (self.to - self.from).num_days();
        usize::from((d - self.from).num_days() * 2 > days)
    }

    /// One case: its plan at `now`, its events (in any order; those after `now` have not
    /// happened yet and are left out, as the planner leaves them out) and when driftwatch first
    /// knew the case: messages whose time came before that were never sent (see
    /// [`crate::case_write`]), so they are not counted as raised or notified.
    pub fn add(&mut self, plan: &CasePlan, events: &[Event], go_live: Option<DateTime<Utc>>) {
        let now = self.now;
        let happened: Vec<&Event> = events.iter().filter(|e| e.at <= now).collect();
        self.checks.add(&plan.case, &plan.status);
        self.add_periods_of_care(&happened);
        self.add_obligations(plan);
        self.add_notifications(plan, &happened, go_live);
        for e in happened {
            if self.in_period(localtime::date_of(e.at)) && e.source.as_deref() != Some("driftwatch")
            {
                *self
                    .events
                    .entry(event_label(&self.rules.vocabulary, e))
                    .or_default() += 1;
            }
        }
    }

    fn add_periods_of_care(&mut self, events: &[&Event]) {
        let case = &self.rules.case;
        let mut changes: Vec<(DateTime<Utc>, bool)> = events
            .iter()
            .filter_map(|e| {
                if case.opened_by.contains(&e.kind) {
                    Some((e.at, true))
                } else if case.closed_by.contains(&e.kind) {
                    Some((e.at, false))
                } else {
                    None
                }
            })
            .collect();
        // At the same instant an opening comes first, as in the planner.
        changes.sort_by_key(|(at, opens)| (*at, !*opens));
        // Periods as (start, end): an opening while already looked after changes nothing.
        let mut periods: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
        for (at, opens) in changes {
            let open = periods.last().is_some_and(|(_, end)| end.is_none());
            match (opens, open) {
                (true, false) => periods.push((at, None)),
                (false, true) => {
                    if let Some(last) = periods.last_mut() {
                        last.1 = Some(at);
                    }
                }
                _ => {}
            }
        }
        let (start, end) = (
            localtime::start_of(self.from),
            localtime::end_of(self.to).min(self.now),
        );
        for (began, ended) in &periods {
            if self.in_period(localtime::date_of(*began)) && *began <= self.now {
                self.started += 1;
            }
            if let Some(ended) = ended
                && self.in_period(localtime::date_of(*ended))
                && *ended <= self.now
            {
                self.ceased += 1;
            }
        }
        if periods
            .iter()
            .any(|(b, e)| *b < end && e.is_none_or(|e| e >= start))
        {
            self.in_period += 1;
        }
        let today = localtime::date_of(self.now);
        for (i, month) in self.months.iter().enumerate() {
            if *month > today {
                break;
            }
            let month_end = month
                .checked_add_months(Months::new(1))
                .map_or(self.to, |next| next.pred_opt().unwrap_or(next))
                .min(self.to);
            // A month not over yet counts as it stands now.
            let at = localtime::end_of(month_end).min(self.now);
            if periods
                .iter()
                .any(|(b, e)| *b < at && e.is_none_or(|e| e >= at))
            {
                self.looked_after_at_month_end[i] += 1;
            }
        }
    }

    fn add_obligations(&mut self, plan: &CasePlan) {
        for o in &plan.obligations {
            if o.state == ObligationState::Overdue {
                let late = crate::planner::working_days_late_at(
                    self.calendar,
                    o.due,
                    o.deadline,
                    self.now,
                );
                if let Some(late) = late {
                    self.overdue.push(Overdue {
                        case: plan.case.clone(),
                        rule: o.rule.clone(),
                        title: o.title.clone(),
                        due: o.due,
                        working_days_late: late,
                    });
                }
            }
            if !self.in_period(o.due) {
                continue;
            }
            let half = self.half(o.due);
            let t = self
                .by_rule
                .entry(o.rule.clone())
                .or_insert_with(|| RuleTally {
                    figures: RuleFigures {
                        rule: o.rule.clone(),
                        title: o.title.clone(),
                        ..RuleFigures::default()
                    },
                    halves: [(0, 0); 2],
                });
            let f = &mut t.figures;
            f.due += 1;
            let judged = match o.state {
                ObligationState::Met => {
                    f.met_on_time += 1;
                    t.halves[half].0 += 1;
                    true
                }
                ObligationState::MetLate => {
                    f.met_late += 1;
                    true
                }
                ObligationState::Overdue => {
                    f.overdue += 1;
                    true
                }
                ObligationState::Cancelled => {
                    f.cancelled += 1;
                    false
                }
                ObligationState::NotDone => {
                    f.not_done += 1;
                    true
                }
                ObligationState::Open => false,
            };
            if judged {
                t.halves[half].1 += 1;
            }
            if let Some(&i) = self.review_rules.get(&o.rule) {
                let m = self
                    .months
                    .iter()
                    .rposition(|m| *m <= o.due)
                    .unwrap_or_default();
                let month = &mut self.reviews[i].months[m];
                match o.state {
                    ObligationState::Met => month.on_time += 1,
                    ObligationState::MetLate => month.late += 1,
                    ObligationState::Overdue => month.overdue += 1,
                    _ => {}
                }
            }
        }
        if self.overdue.len() > OVERDUE_LONGEST * 4 {
            self.keep_longest();
        }
    }

    fn keep_longest(&mut self) {
        self.overdue.sort_by(|a, b| {
            b.working_days_late
                .cmp(&a.working_days_late)
                .then(a.due.cmp(&b.due))
                .then(a.case.cmp(&b.case))
                .then(a.rule.cmp(&b.rule))
        });
        self.overdue.truncate(OVERDUE_LONGEST);
    }

    fn add_notifications(
        &mut self,
        plan: &CasePlan,
        events: &[&Event],
        go_live: Option<DateTime<Utc>>,
    ) {
        // Escalation stages raised in the period, each (obligation, step) once whoever was told.
        let mut raised: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
        let mut notices: BTreeSet<&str> = BTreeSet::new();
        for n in &plan.notifications {
            if n.status != NotificationStatus::Due
                || !self.in_period(localtime::date_of(n.send_at))
                || go_live.is_some_and(|g| n.send_at < g)
            {
                continue;
            }
            match (n.kind, &n.obligation) {
                (NotificationKind::Escalation, Some(obligation)) => {
                    // A step sent again after a snooze is the same stage.
                    let step = n.step.trim_end_matches(" (snoozed)");
                    raised.insert((n.rule.as_str(), obligation.as_str(), step));
                }
                (NotificationKind::Notice, _) => {
                    notices.insert(n.event.as_str());
                }
                _ => {}
            }
        }
        for id in notices {
            if let Some(e) = events.iter().find(|e| e.id == id) {
                *self
                    .notified
                    .entry(event_label(&self.rules.vocabulary, e))
                    .or_default() += 1;
            }
        }
        let mut escalated: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (rule_id, obligation, step) in raised {
            let Some(rule) = self.rules.rules.iter().find(|r| r.id == rule_id) else {
                continue;
            };
            let RuleBody::Obligation(o) = &rule.body else {
                continue;
            };
            let Some(stage) = o.escalations.iter().position(|s| s.id == step) else {
                continue;
            };
            let t = self.escalations.entry(rule_id.to_string()).or_default();
            *t.stages.entry(stage).or_default() += 1;
            if o.escalations[stage]
                .title
                .as_deref()
                .is_some_and(|t| t.to_lowercase().contains("cafcass"))
            {
                self.cafcass += 1;
            }
            escalated.insert((rule_id, obligation));
        }
        for (rule_id, obligation) in escalated {
            let Some(o) = plan.obligations.iter().find(|o| o.id == obligation) else {
                continue;
            };
            let t = self.escalations.entry(rule_id.to_string()).or_default();
            t.obligations += 1;
            if let (
                Some(closed),
                ObligationState::Met | ObligationState::MetLate | ObligationState::Cancelled,
            ) = (o.closed_at, o.state)
            {
                let days = self
                    .calendar
                    .working_days_late(o.due, localtime::date_of(closed));
                t.resolved_days.push(days);
            }
        }
    }

    pub fn finish(mut self) -> Report {
        self.keep_longest();
        let rules: Vec<RuleFigures> = self
            .by_rule
            .values()
            .map(|t| {
                let mut f = t.figures.clone();
                let judged = f.met_on_time + f.met_late + f.overdue + f.not_done;
                f.on_time_percent = percent(f.met_on_time, judged);
                f
            })
            .collect();
        let falling = self
            .by_rule
            .values()
            .filter_map(|t| {
                let first = percent(t.halves[0].0, t.halves[0].1)?;
                let second = percent(t.halves[1].0, t.halves[1].1)?;
                (first >= second + FALL_POINTS).then(|| Falling {
                    rule: t.figures.rule.clone(),
                    title: t.figures.title.clone(),
                    first_half_percent: first,
                    second_half_percent: second,
                })
            })
            .collect();
        let caseloads: Vec<Caseload> = self
            .checks
            .caseloads()
            .into_iter()
            .map(|(iro, children)| Caseload {
                iro,
                children,
                guidance: crate::checks::guidance_for(children),
            })
            .collect();
        let over_guidance = caseloads
            .iter()
            .filter(|c| c.guidance == "over")
            .cloned()
            .collect();
        let drift_rules = self
            .rules
            .rules
            .iter()
            .filter_map(|rule| {
                let t = self.escalations.get(&rule.id)?;
                let RuleBody::Obligation(o) = &rule.body else {
                    return None;
                };
                let mut days = t.resolved_days.clone();
                days.sort_unstable();
                Some(Escalated {
                    rule: rule.id.clone(),
                    title: rule.title.clone(),
                    stages: t
                        .stages
                        .iter()
                        .map(|(i, n)| {
                            let step = &o.escalations[*i];
                            (
                                step.title
                                    .clone()
                                    .unwrap_or_else(|| step.offset.to_string()),
                                *n,
                            )
                        })
                        .collect(),
                    obligations: t.obligations,
                    resolved: days.len(),
                    median_working_days: days.get(days.len().saturating_sub(1) / 2).copied(),
                    longest_working_days: days.last().copied(),
                })
            })
            .collect();
        // Months not begun by `now` have no count yet.
        let today = localtime::date_of(self.now);
        let begun = self.months.iter().filter(|m| **m <= today).count();
        let monthly_average = (begun > 0).then(|| {
            let sum: usize = self.looked_after_at_month_end.iter().take(begun).sum();
            (sum as f64 * 10.0 / begun as f64).round() / 10.0
        });
        Report {
            from: Some(self.from),
            to: Some(self.to),
            as_at: Some(self.now),
            children: Children {
                started: self.started,
                ceased: self.ceased,
                by_month: self
                    .months
                    .iter()
                    .zip(&self.looked_after_at_month_end)
                    .take(begun)
                    .map(|(m, n)| MonthCount {
                        month: month_label(*m),
                        looked_after: *n,
                    })
                    .collect(),
                monthly_average,
                in_period: self.in_period,
            },
            reviews: self.reviews,
            rules,
            caseloads,
            drift: Drift {
                rules: drift_rules,
                cafcass_referrals_considered: self.cafcass,
            },
            notified: self.notified,
            events: self.events,
            checks: self.checks.findings(),
            attention: Attention {
                falling,
                over_guidance,
                overdue_longest: self.overdue,
            },
        }
    }
}

/// "Within 20 working days of: looked after began": a rule's deadline as the chart names it.
fn timescale(rule: &crate::rules::Rule, due: &crate::rules::Due) -> String {
    let event = rule.on.replace('_', " ");
    let offset = &due.offset;
    match due.from.to_string().strip_prefix("data.") {
        None => format!("Within {offset} of: {event}"),
        Some(field) => format!(
            "Within {offset} of: {event} ({})",
            field.replace(['_', '.'], " ")
        ),
    }
}

/// The report for cases already planned (tests and small callers); the binary and the API fold
/// one case at a time with a [`Tally`].
pub fn compute<'c>(
    rules: &RuleSet,
    calendar: &Calendar,
    cases: impl IntoIterator<Item = (&'c CasePlan, &'c [Event])>,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Report {
    let mut tally = Tally::new(rules, calendar, from, to, now);
    for (plan, events) in cases {
        tally.add(plan, events, None);
    }
    tally.finish()
}

impl Report {
    /// Whether the report found nothing at all in its period: no child looked after, no
    /// obligation due, no event.
    pub fn is_empty(&self) -> bool {
        self.children.in_period == 0 && self.rules.is_empty() && self.events.is_empty()
    }
}
