//! The planner: a pure function of (rules, calendar, one case's events, now) that returns the
//! case's obligations and every notification they cause, past and future.
//!
//! It owns the meaning of the rules language at run time: when obligations open, which events
//! meet, cancel, move or end them, when reminders, escalations and deadline actions fall, who
//! is told (fallbacks and people who join a case late included), and how notifications are
//! placed in working hours. It must not read files, the clock, a database or the network; the
//! daemon and the commands pass everything in. Events may arrive twice or out of order: only the
//! set of events counts, ordered by their `at` time (then id).
//!
//! The work is split by what it does: [`Run::apply`] walks the case's timeline event by event
//! (periods of care, meetings, matching, opening); `actions` fires deadline actions and what
//! follows them; `ladder` lays out reminders and escalations; `recipients` addresses messages;
//! [`Run::finish`] turns the run into the plan.

mod ack;
mod actions;
mod ladder;
mod model;
mod recipients;
mod state;
pub mod table;

pub use model::*;
use state::{CaseState, History, Meeting, key_text};

use crate::calendar::{Calendar, OffsetUnit, Reckoning};
use crate::event::{Contact, Event};
use crate::localtime;
use crate::localtime::WorkingHours;
use crate::rules::vocabulary::ACKNOWLEDGED;
use crate::rules::{ForEach, KeyMatch, Matcher, ObligationRule, Rule, RuleBody, RuleSet};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

/// Everything the planner needs besides the events and the time.
#[derive(Debug, Clone, Copy)]
pub struct Planner<'a> {
    pub rules: &'a RuleSet,
    pub calendar: &'a Calendar,
    pub working_hours: WorkingHours,
    /// Service-wide roles from the config.
    pub roles: &'a BTreeMap<String, Contact>,
    /// Who is told instead when a case has no contact for a role (`iro: [iro_manager]`).
    pub fallbacks: &'a BTreeMap<String, Vec<String>>,
}

/// A deadline: a local date, and a time of day when the anchor and offset give one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DueAt {
    date: NaiveDate,
    time: Option<NaiveTime>,
}

impl DueAt {
    /// The instant the obligation becomes overdue: the end of a date-only deadline.
    fn deadline(&self) -> DateTime<Utc> {
        match self.time {
            Some(t) => localtime::instant(self.date.and_time(t)),
            None => localtime::end_of(self.date),
        }
    }

    /// The moment a deadline action aims at: the start of the day (or the exact time).
    fn start(&self) -> DateTime<Utc> {
        match self.time {
            Some(t) => localtime::instant(self.date.and_time(t)),
            None => localtime::start_of(self.date),
        }
    }
}

/// The data an obligation or a message is about, and the stored events it was laid together
/// from, in order (so the store can keep a reference to them rather than a copy).
#[derive(Debug, Clone)]
struct About {
    data: Arc<Map<String, Value>>,
    from: Arc<Vec<String>>,
}

impl About {
    fn new(data: Map<String, Value>, from: Vec<String>) -> About {
        About {
            data: Arc::new(data),
            from: Arc::new(from),
        }
    }

    /// This, with `event`'s data laid over it.
    fn and(&self, event: &Event) -> About {
        let mut data = (*self.data).clone();
        data.extend(event.data.clone());
        let mut from = (*self.from).clone();
        from.push(event.id.clone());
        About::new(data, from)
    }
}

impl std::ops::Deref for About {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.data
    }
}

/// One stretch of an obligation's life with one deadline; a re-plan starts the next.
#[derive(Debug, Clone)]
struct Segment {
    start: DateTime<Utc>,
    by: String,
    due: DueAt,
    /// The trigger's data (laid over its meeting's), overlaid by the data of re-planning events.
    data: About,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndKind {
    Met,
    Cancelled,
    /// Met by driftwatch's own deadline action.
    Actioned,
    /// It could no longer be met (`ended_by`: the meeting it prepared for was held).
    Ended,
}

#[derive(Debug, Clone)]
struct End {
    at: DateTime<Utc>,
    kind: EndKind,
    by: String,
}

/// A deadline send that went: in which segment, when, and to whom.
#[derive(Debug, Clone)]
struct Sent {
    segment: usize,
    at: DateTime<Utc>,
    /// Which send of the rule's `at_deadline`.
    action: usize,
    targets: Vec<Target>,
}

/// What those a deadline send went to were told when the obligation changed afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowUpKind {
    /// The deadline moved: a new message replacing the earlier one.
    Moved,
    /// The obligation was cancelled.
    Cancelled,
}

#[derive(Debug, Clone)]
struct FollowUp {
    kind: FollowUpKind,
    at: DateTime<Utc>,
    /// For a move, the segment the move began (its number keys the messages).
    segment: usize,
    /// The earlier segment's deadline and anchor, which the message replaces.
    replaces: Replaced,
}

#[derive(Debug, Clone)]
struct Obligation {
    rule: usize,
    key: Option<String>,
    seq: u32,
    item: Option<Value>,
    opened_by: String,
    trigger_at: DateTime<Utc>,
    segments: Vec<Segment>,
    end: Option<End>,
    /// Deadline sends that went.
    sent: Vec<Sent>,
    /// Segments whose deadline sends found nobody, and when.
    nobody: Vec<(usize, DateTime<Utc>)>,
    follow_ups: Vec<FollowUp>,
    /// Escalation stages moved to (`advanced_by`): when, and the step's index.
    advances: Vec<(DateTime<Utc>, usize)>,
    /// Nothing more follows a deadline send (the meeting was held or cancelled).
    settled: bool,
}

impl Obligation {
    fn id(&self, rule: &Rule) -> String {
        format!(
            "{}/{}/{}",
            rule.id,
            self.key.as_deref().unwrap_or("-"),
            self.seq
        )
    }

    fn current(&self) -> &Segment {
        // An obligation is created with one segment and only ever gains more.
        &self.segments[self.segments.len() - 1]
    }

    /// Everyone its deadline sends went to, each once.
    fn sent_to(&self) -> Vec<Target> {
        let mut seen = std::collections::HashSet::new();
        self.sent
            .iter()
            .flat_map(|s| s.targets.iter())
            .filter(|t| seen.insert(t.identity()))
            .cloned()
            .collect()
    }
}

/// A notice rule that fired on an event.
struct NoticeHit {
    rule: usize,
    part: String,
    event: String,
    at: DateTime<Utc>,
    data: About,
    item: Option<Value>,
}

/// The working state of one planning run.
struct Run<'p, 'a> {
    planner: &'p Planner<'a>,
    case: String,
    now: DateTime<Utc>,
    state: CaseState,
    history: History,
    obligations: Vec<Obligation>,
    notices: Vec<NoticeHit>,
    derived: Vec<Event>,
    /// Derived events already among the events of this pass (from an earlier pass).
    known_derived: std::collections::HashSet<String>,
    /// Derived events dated before events this pass had already applied.
    back_dated: Vec<Event>,
    /// Acknowledgements and snoozes, in the order they were made.
    acks: Vec<ack::Ack>,
    /// When periods of care ended: nothing about a period is sent after it.
    period_ends: Vec<DateTime<Utc>>,
    /// The events of the current period of care so far, for `met_by` matchers that count an
    /// event from before their obligation opened (`earlier: true`).
    period_events: Vec<Event>,
    /// Deadline actions waiting, soonest first: (moment, obligation, its number of segments
    /// then). A stale entry (the obligation closed or moved since) is dropped when reached.
    actions: BinaryHeap<Reverse<(DateTime<Utc>, usize, usize)>>,
    problems: Vec<Problem>,
}

/// How many times a case is re-planned for back-dated derived events, at most.
const MAX_PASSES: usize = 32;

impl<'a> Planner<'a> {
    /// A planner of `rules` on `calendar`, with the service roles and fallbacks the config
    /// gives (the shell's `Config::planner`).
    pub fn new(
        rules: &'a RuleSet,
        calendar: &'a Calendar,
        working_hours: WorkingHours,
        roles: &'a BTreeMap<String, Contact>,
        fallbacks: &'a BTreeMap<String, Vec<String>>,
    ) -> Planner<'a> {
        Planner {
            rules,
            calendar,
            working_hours,
            roles,
            fallbacks,
        }
    }

    /// Plans every case in `events`, in case-reference order.
    pub fn plan(&self, events: &[Event], now: DateTime<Utc>) -> Vec<CasePlan> {
        let mut by_case: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
        for e in events {
            by_case.entry(e.case.as_str()).or_default().push(e.clone());
        }
        by_case
            .into_iter()
            .map(|(case, events)| self.plan_case(case, &events, now))
            .collect()
    }

    /// Plans one case. Events of other cases and events after `now` are ignored.
    pub fn plan_case(&self, case: &str, events: &[Event], now: DateTime<Utc>) -> CasePlan {
        // A derived event can be dated before events already applied (a start of care recorded
        // days late). It is then added to the events and the case planned again, so everything
        // is applied in time order. Each pass adds a new derived event and rules cannot derive
        // in a cycle, so this ends; the bound is only a guard.
        let mut back_dated: Vec<Event> = Vec::new();
        for _ in 0..MAX_PASSES {
            let mut run = Run::new(self, case, now, &back_dated);
            let mut all = events.to_vec();
            all.extend(back_dated.iter().cloned());
            let queue = run.dedupe(&all);
            run.process(queue);
            if run.back_dated.is_empty() {
                return run.finish();
            }
            back_dated.append(&mut run.back_dated);
        }
        let mut run = Run::new(self, case, now, &[]);
        let queue = run.dedupe(events);
        run.process(queue);
        run.problems.push(format!(
            "derived events kept arriving out of order after {MAX_PASSES} passes; this plan may be incomplete"
        ).into());
        run.finish()
    }

    /// Places a moment in the working-hours window: see [`Placement::place`].
    pub fn place(&self, t: DateTime<Utc>, urgent: bool) -> DateTime<Utc> {
        self.placement().place(t, urgent)
    }

    /// When messages may go: the council's open days and working hours.
    pub fn placement(&self) -> Placement<'a> {
        Placement {
            calendar: self.calendar,
            hours: self.working_hours,
        }
    }
}

/// When a message that is not urgent may go: inside working hours on a day the council is open.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub calendar: &'a Calendar,
    pub hours: WorkingHours,
}

impl Placement<'_> {
    /// Places a moment in the working-hours window: unchanged if urgent or already inside it,
    /// otherwise the next window start on a day the council is open.
    pub fn place(&self, t: DateTime<Utc>, urgent: bool) -> DateTime<Utc> {
        if urgent {
            return t;
        }
        let local = localtime::naive_of(t);
        let (date, time) = (local.date(), local.time());
        let hours = self.hours;
        if self.calendar.is_open_day(date) && time < hours.end {
            if time >= hours.start {
                t
            } else {
                localtime::instant(date.and_time(hours.start))
            }
        } else {
            let next = self.calendar.add_in(Reckoning::Council, date, 1);
            localtime::instant(next.and_time(hours.start))
        }
    }
}

/// How many statutory working days late an obligation still open at `now` is: `None` while its
/// deadline has not passed, else at least 1 (a Saturday straight after a Friday deadline is a
/// day late). The one lateness every plan, list, digest, dashboard and report shows.
pub fn working_days_late_at(
    calendar: &Calendar,
    due: NaiveDate,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<i32> {
    (now >= deadline).then(|| calendar.working_days_late(due, localtime::date_of(now)))
}

/// The day a reminder or escalation step falls on, for a deadline due on `due`: the step's
/// offset from the due date, moved off the council's closed days (closure days, and weekends or
/// holidays a step in calendar days can land on). A reminder moves to the last open day before
/// the day it would fall on, so it still comes before the deadline; an escalation to the next
/// open day. `None` when the date is out of range.
pub fn step_day(
    calendar: &Calendar,
    kind: NotificationKind,
    offset: &crate::calendar::Offset,
    due: NaiveDate,
) -> Option<NaiveDate> {
    let day = offset.apply_to_date(calendar, due)?;
    Some(match kind {
        NotificationKind::Reminder => calendar.last_open_day_on_or_before(day),
        _ => calendar.next_open_day_on_or_after(day),
    })
}

fn parse_moment(v: &Value) -> Option<Moment> {
    let s = v.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Moment::Instant(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(Moment::Date)
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
}

impl Moment {
    fn date(self) -> NaiveDate {
        match self {
            Moment::Instant(t) => localtime::date_of(t),
            Moment::Date(d) => d,
        }
    }

    fn instant(self) -> DateTime<Utc> {
        match self {
            Moment::Instant(t) => t,
            Moment::Date(d) => localtime::start_of(d),
        }
    }
}

fn idempotency_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("dw1-{hex}")
}

impl<'p, 'a> Run<'p, 'a> {
    fn new(planner: &'p Planner<'a>, case: &str, now: DateTime<Utc>, known: &[Event]) -> Self {
        Run {
            planner,
            case: case.to_string(),
            now,
            state: CaseState::new(case),
            history: History::default(),
            obligations: Vec::new(),
            notices: Vec::new(),
            derived: Vec::new(),
            known_derived: known.iter().map(|e| e.id.clone()).collect(),
            back_dated: Vec::new(),
            acks: Vec::new(),
            period_ends: Vec::new(),
            period_events: Vec::new(),
            actions: BinaryHeap::new(),
            problems: Vec::new(),
        }
    }

    fn rules(&self) -> &RuleSet {
        self.planner.rules
    }

    /// Keeps one copy of each event id (the smallest, if two differ, so the result depends only
    /// on the set) and drops events of other cases or after `now`, sorted by time then id.
    fn dedupe(&mut self, events: &[Event]) -> Vec<Event> {
        let mut by_id: BTreeMap<&str, &Event> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e.case == self.case && e.at <= self.now)
        {
            match by_id.get(e.id.as_str()) {
                Some(existing) if *existing == e => {}
                Some(existing) => {
                    self.problems.push(format!("event {} was received twice with different contents; the first in a stable order is used", e.id).into());
                    let a = serde_json::to_string(existing).unwrap_or_default();
                    let b = serde_json::to_string(e).unwrap_or_default();
                    if b < a {
                        by_id.insert(&e.id, e);
                    }
                }
                None => {
                    by_id.insert(&e.id, e);
                }
            }
        }
        let mut queue: Vec<Event> = by_id.into_values().cloned().collect();
        // At one instant, a period of care begins before anything else happens in it and ends
        // after everything else: a discharge recorded at the moment care ends is still told.
        let case = &self.planner.rules.case;
        let rank = |e: &Event| {
            if case.opened_by.contains(&e.kind) {
                0
            } else if case.closed_by.contains(&e.kind) {
                2
            } else {
                1
            }
        };
        queue.sort_by(|a, b| (a.at, rank(a), &a.id).cmp(&(b.at, rank(b), &b.id)));
        queue
    }

    fn process(&mut self, mut queue: Vec<Event>) {
        let mut next = 0;
        loop {
            let event_at = queue.get(next).map(|e| e.at);
            let timer = self.next_action();
            match (event_at, timer) {
                (None, None) => break,
                (Some(t), Some((m, idx))) if m < t => self.fire_actions(idx, m, &mut queue, next),
                (None, Some((m, idx))) => self.fire_actions(idx, m, &mut queue, next),
                (Some(_), _) => {
                    let event = queue[next].clone();
                    self.apply(&event);
                    next += 1;
                }
            }
        }
    }

    fn context(&self, event: &Event, item: Option<&Value>) -> Value {
        json!({
            "event": {"id": event.id, "type": event.kind, "at": event.at.to_rfc3339(), "case": event.case},
            "data": event.data,
            "item": item,
            "case": self.state,
        })
    }

    fn condition(&mut self, name: &Option<String>, ctx: &Value, what: &str) -> bool {
        let Some(name) = name else { return true };
        match self.rules().engine.condition(name, ctx) {
            Ok(b) => b,
            Err(e) => {
                self.problems
                    .push(format!("{what}: condition failed ({e}); treated as false").into());
                false
            }
        }
    }

    /// Whether matcher `m` finds an obligation with key `ob_key` in `event`. `what` names the
    /// matcher in a problem; it is only written out when a condition fails.
    fn matches(
        &mut self,
        m: &Matcher,
        ob_key: Option<&str>,
        event: &Event,
        what: impl FnOnce() -> String,
    ) -> bool {
        if m.event != event.kind {
            return false;
        }
        let key_ok = match (&m.key, ob_key) {
            (KeyMatch::Any, _) | (_, None) => true,
            (KeyMatch::Path(p), Some(k)) => {
                p.resolve(event, None).and_then(|v| key_text(&v)).as_deref() == Some(k)
            }
        };
        // Without a condition, no context: every open obligation is asked about every event.
        key_ok
            && (m.when.is_none() || {
                let ctx = self.context(event, None);
                self.condition(&m.when, &ctx, &what())
            })
    }

    /// Applies one event: the period of care it begins or ends, the case's contacts, facts and
    /// meetings, then the open obligations it meets, cancels, ends, moves or advances, then the
    /// rules it triggers.
    fn apply(&mut self, event: &Event) {
        let rules = self.planner.rules;
        if event.kind == ACKNOWLEDGED
            && let Some(a) = ack::Ack::of(event)
        {
            self.acks.push(a);
        }
        let begins = rules.case.opened_by.contains(&event.kind);
        let in_care = self.state.period > 0 && !self.state.closed;
        if begins && in_care {
            // Already looked after: a second start does not restart the review clock.
            self.state.apply(&rules.case, event);
            self.history.record(event.at, &self.state);
            self.problems.push(format!(
                "event {}: the child is already looked after, so it begins no new period of care and opens nothing (a change of legal status has its own event)",
                event.id
            ).into());
            return;
        }
        if begins {
            self.state.begin_period();
            self.period_events.clear();
        }
        self.state.apply(&rules.case, event);
        self.history.record(event.at, &self.state);
        if self.state.closed {
            // Recorded, and nothing more: the child is no longer looked after.
            return;
        }

        if rules.case.closed_by.contains(&event.kind) {
            self.end_period(event);
        }

        for idx in 0..self.obligations.len() {
            // Most events concern few of a case's obligations: pass over the others cheaply.
            if !self.names(idx, &event.kind) {
                continue;
            }
            match self.obligations[idx].end.as_ref().map(|e| e.kind) {
                None => self.match_open(idx, event),
                Some(EndKind::Actioned) => self.match_after_action(idx, event),
                Some(EndKind::Met) => self.match_after_met(idx, event),
                Some(_) => {}
            }
        }
        self.period_events.push(event.clone());

        if self.state.closed {
            return;
        }
        self.fire_rules(event);
    }

    /// Whether any matcher of obligation `idx`'s rule names events of type `kind`.
    fn names(&self, idx: usize, kind: &str) -> bool {
        let rule = &self.planner.rules.rules[self.obligations[idx].rule];
        let Some(o) = rule.obligation() else {
            return false;
        };
        let named = |m: &Matcher| m.event == kind;
        o.cancelled_by.iter().any(named)
            || o.met_by.iter().any(named)
            || o.ended_by.iter().any(named)
            || o.replanned_by.iter().any(|r| named(&r.matcher))
            || o.advanced_by.iter().any(|a| named(&a.matcher))
    }

    /// The child ceases to be looked after: every open obligation is cancelled and booked
    /// meetings will not take place; after this nothing about the period is sent (those invited
    /// to a meeting are not written to: the council tells them).
    fn end_period(&mut self, event: &Event) {
        for ob in &mut self.obligations {
            if ob.end.is_none() {
                ob.end = Some(End {
                    at: event.at,
                    kind: EndKind::Cancelled,
                    by: event.id.clone(),
                });
            }
            ob.settled = true;
        }
        self.state.end_period();
        self.period_ends.push(event.at);
    }

    /// An obligation met before the meeting it prepared for, by an event recorded only after
    /// the meeting was held, was not done before it: an `ended_by` event whose moment comes
    /// before the meeting turns it into not done.
    fn match_after_met(&mut self, idx: usize, event: &Event) {
        let rules = self.planner.rules;
        let rule = &rules.rules[self.obligations[idx].rule];
        let Some(orule) = rule.obligation() else {
            return;
        };
        let Some(met_at) = self.obligations[idx].end.as_ref().map(|e| e.at) else {
            return;
        };
        let key = self.obligations[idx].key.clone();
        let what = format!("rule {} ended_by {}", rule.id, event.kind);
        if let Some(m) = orule
            .ended_by
            .iter()
            .find(|m| self.matches(m, key.as_deref(), event, || what.clone()))
        {
            let ended = moment_of(m, event);
            if ended < met_at {
                self.obligations[idx].end = Some(End {
                    at: ended,
                    kind: EndKind::Ended,
                    by: event.id.clone(),
                });
            }
        }
    }

    /// Checks an open obligation against an event: cancelled, met, ended, moved or advanced.
    fn match_open(&mut self, idx: usize, event: &Event) {
        let rules = self.planner.rules;
        let rule = &rules.rules[self.obligations[idx].rule];
        let Some(orule) = rule.obligation() else {
            return;
        };
        let key = self.obligations[idx].key.clone();
        let key = key.as_deref();
        let what = |field: &str| format!("rule {} {field} {}", rule.id, event.kind);
        let end = |kind, at: DateTime<Utc>| {
            Some(End {
                at,
                kind,
                by: event.id.clone(),
            })
        };
        if orule
            .cancelled_by
            .iter()
            .any(|m| self.matches(m, key, event, || what("cancelled_by")))
        {
            self.obligations[idx].end = end(EndKind::Cancelled, event.at);
            // Invitations that went before a move are recalled too.
            self.tell_cancelled(idx, event.at);
            self.obligations[idx].settled = true;
        } else if let Some(m) = orule
            .met_by
            .iter()
            .find(|m| self.matches(m, key, event, || what("met_by")))
        {
            self.obligations[idx].end = end(EndKind::Met, moment_of(m, event));
        } else if let Some(m) = orule
            .ended_by
            .iter()
            .find(|m| self.matches(m, key, event, || what("ended_by")))
        {
            self.obligations[idx].end = end(EndKind::Ended, moment_of(m, event));
            self.obligations[idx].settled = true;
        } else if let Some(r) = orule
            .replanned_by
            .iter()
            .find(|r| self.matches(&r.matcher, key, event, || what("replanned_by")))
        {
            let anchor = r.from.resolve(event, None);
            // Moved again after its invitations went: everyone invited is told again.
            self.move_after_sending(idx, rule, orule, anchor, event);
        } else if let Some(a) = orule
            .advanced_by
            .iter()
            .find(|a| self.matches(&a.matcher, key, event, || what("advanced_by")))
        {
            let stage = a.to.resolve(event, None);
            let index = stage.as_ref().and_then(|v| match v {
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(|n| n.checked_sub(1))
                    .filter(|i| *i < orule.escalations.len()),
                Value::String(id) => orule.escalations.iter().position(|s| s.id == *id),
                _ => None,
            });
            match index {
                Some(i) => self.obligations[idx].advances.push((event.at, i)),
                None => self.problems.push(format!(
                    "rule {}: event {} names an escalation stage the rule does not have; the ladder is not moved",
                    rule.id, event.id
                ).into()),
            }
        }
    }

    /// Fires the rules triggered by `event`: each opens an obligation (or re-plans the open one
    /// with the same rule and key) or records a notice, once per item or meeting it walks.
    fn fire_rules(&mut self, event: &Event) {
        let rules = self.planner.rules;
        for (ri, rule) in rules
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.on == event.kind)
        {
            // The data of the meeting the rule is about, under the event's own.
            let meeting = rule
                .meeting
                .as_ref()
                .and_then(|path| path.resolve(event, None))
                .and_then(|v| key_text(&v))
                .and_then(|k| self.state.meetings.get(&k));
            let about = |m: Option<&Meeting>| match m {
                Some(m) => About::new(m.data.clone(), m.from.clone()).and(event),
                None => About::new(Map::new(), Vec::new()).and(event),
            };
            let items: Vec<Walked> = match &rule.for_each {
                Some(ForEach::List(path)) => match path.resolve(event, None) {
                    Some(Value::Array(items)) => {
                        let data = about(meeting);
                        items.into_iter().map(|i| (Some(i), data.clone())).collect()
                    }
                    _ => Vec::new(),
                },
                Some(ForEach::Meetings) => self
                    .state
                    .meetings_ahead(event.at)
                    .into_iter()
                    .map(|m: &Meeting| (Some(Value::Object(m.data.clone())), about(Some(m))))
                    .collect(),
                None => vec![(None, about(meeting))],
            };
            // Built once per rule, not per item: it holds the whole event.
            let mut ctx = rule.when.as_ref().map(|_| self.context(event, None));
            for (index, (item, data)) in items.into_iter().enumerate() {
                if let Some(ctx) = ctx.as_mut() {
                    ctx["item"] = item.clone().unwrap_or(Value::Null);
                    if !self.condition(&rule.when, ctx, &format!("rule {} when", rule.id)) {
                        continue;
                    }
                }
                let key = match &rule.key {
                    Some(path) => match path
                        .resolve_in(&data, event.at, item.as_ref())
                        .and_then(|v| key_text(&v))
                    {
                        Some(k) => Some(k),
                        None => {
                            self.problems.push(
                                format!(
                                    "rule {}: event {} has no `{path}`; no obligation opened",
                                    rule.id, event.id
                                )
                                .into(),
                            );
                            continue;
                        }
                    },
                    None => None,
                };
                match &rule.body {
                    RuleBody::Notice(_) => self.notices.push(NoticeHit {
                        rule: ri,
                        // One notice per item: the item's key, or its place in the list.
                        part: key.clone().unwrap_or_else(|| index.to_string()),
                        event: event.id.clone(),
                        at: event.at,
                        data,
                        item,
                    }),
                    RuleBody::Obligation(orule) => {
                        self.open(ri, rule, orule, key, item, event, data)
                    }
                }
            }
        }
    }

    fn due_from(
        &mut self,
        rule: &Rule,
        orule: &ObligationRule,
        anchor: Option<Value>,
        event: &Event,
    ) -> Option<DueAt> {
        let Some(moment) = anchor.as_ref().and_then(parse_moment) else {
            self.problems.push(
                format!(
                    "rule {}: event {} has no usable `{}`; deadline not set",
                    rule.id, event.id, orule.due.from
                )
                .into(),
            );
            return None;
        };
        let offset = orule.due.offset;
        if offset.unit == OffsetUnit::Hours {
            let t = moment.instant() + Duration::hours(i64::from(offset.amount));
            let local = localtime::naive_of(t);
            return Some(DueAt {
                date: local.date(),
                time: Some(local.time()),
            });
        }
        match offset.deadline_from(self.planner.calendar, moment.date()) {
            Some(date) => Some(DueAt { date, time: None }),
            None => {
                self.problems.push(
                    format!(
                        "rule {}: deadline from event {} is out of range",
                        rule.id, event.id
                    )
                    .into(),
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        ri: usize,
        rule: &Rule,
        orule: &ObligationRule,
        key: Option<String>,
        item: Option<Value>,
        event: &Event,
        data: About,
    ) {
        let anchor = orule.due.from.resolve_in(&data, event.at, item.as_ref());
        // A second trigger for an obligation still open moves its deadline instead of opening another.
        if let Some(idx) = self
            .obligations
            .iter()
            .position(|o| o.rule == ri && o.key == key && o.end.is_none())
        {
            self.replan(idx, rule, orule, anchor, event);
            return;
        }
        let Some(due) = self.due_from(rule, orule, anchor, event) else {
            return;
        };
        let seq = 1 + self
            .obligations
            .iter()
            .filter(|o| o.rule == ri && o.key == key)
            .count() as u32;
        self.obligations.push(Obligation {
            rule: ri,
            key,
            seq,
            item,
            opened_by: event.id.clone(),
            trigger_at: event.at,
            segments: vec![Segment {
                start: event.at,
                by: event.id.clone(),
                due,
                data,
            }],
            end: None,
            sent: Vec::new(),
            nobody: Vec::new(),
            follow_ups: Vec::new(),
            advances: Vec::new(),
            settled: false,
        });
        let idx = self.obligations.len() - 1;
        self.met_earlier(idx, orule);
        self.queue_actions(idx);
    }

    /// Meets a new obligation with an event of the current period of care from before it
    /// opened, for a `met_by` matcher that counts one (`earlier: true`): the IRO allocated, or
    /// the care plan written, before section 20 status formally began.
    fn met_earlier(&mut self, idx: usize, orule: &ObligationRule) {
        let rule_id = self.planner.rules.rules[self.obligations[idx].rule]
            .id
            .clone();
        let key = self.obligations[idx].key.clone();
        let events = std::mem::take(&mut self.period_events);
        let found = orule.met_by.iter().filter(|m| m.earlier).find_map(|m| {
            let what = format!("rule {rule_id} met_by {}", m.event);
            events
                .iter()
                .find(|e| self.matches(m, key.as_deref(), e, || what.clone()))
                .map(|e| (moment_of(m, e), e.id.clone()))
        });
        self.period_events = events;
        if let Some((at, by)) = found {
            self.obligations[idx].end = Some(End {
                at,
                kind: EndKind::Met,
                by,
            });
        }
    }

    /// Moves an obligation's deadline: a new segment from this event, with the event's data
    /// laid over what the obligation had.
    fn replan(
        &mut self,
        idx: usize,
        rule: &Rule,
        orule: &ObligationRule,
        anchor: Option<Value>,
        event: &Event,
    ) {
        let Some(due) = self.due_from(rule, orule, anchor, event) else {
            return;
        };
        let ob = &mut self.obligations[idx];
        let data = ob.current().data.and(event);
        ob.segments.push(Segment {
            start: event.at,
            by: event.id.clone(),
            due,
            data,
        });
        self.queue_actions(idx);
    }

    /// The anchor of a segment as a moment, when it is one (the meeting a deadline is counted
    /// back from).
    fn anchor_of(
        &self,
        ob: &Obligation,
        orule: &ObligationRule,
        seg: &Segment,
    ) -> Option<DateTime<Utc>> {
        orule
            .due
            .from
            .resolve_in(&seg.data, ob.trigger_at, ob.item.as_ref())
            .and_then(|v| parse_moment(&v))
            .map(Moment::instant)
    }

    /// The plan: every obligation with its state, every notification, what is to come.
    fn finish(mut self) -> CasePlan {
        let rules = self.planner.rules;
        let mut notifications = Vec::new();
        let mut obligations = Vec::new();
        let mut upcoming = Vec::new();

        for ob in self.obligations.clone() {
            let rule = &rules.rules[ob.rule];
            let Some(orule) = rule.obligation() else {
                continue;
            };
            self.ladder(&ob, rule, orule, &mut notifications);
            self.deadline_notifications(&ob, rule, orule, &mut notifications, &mut upcoming);
            obligations.push(self.obligation_plan(&ob, rule));
        }
        self.notice_notifications(&mut notifications);

        let planner = self.planner;
        ack::apply(
            &self.case,
            self.now,
            &self.acks,
            &obligations,
            &mut notifications,
            |day| planner.place(localtime::start_of(day), false),
        );
        obligations.sort_by(|a, b| (a.due, &a.rule, &a.id).cmp(&(b.due, &b.rule, &b.id)));
        notifications.sort_by(|a, b| {
            (a.send_at, &a.rule, &a.step, &a.idempotency_key).cmp(&(
                b.send_at,
                &b.rule,
                &b.step,
                &b.idempotency_key,
            ))
        });
        upcoming.sort_by(|a, b| (a.at, &a.obligation).cmp(&(b.at, &b.obligation)));
        self.problems.sort();
        self.problems.dedup();
        let fact = |name: &str| {
            self.state
                .facts
                .get(name)
                .and_then(key_text)
                .filter(|v| !v.is_empty())
        };
        let status = CaseStatus {
            looked_after: self.state.period > 0 && !self.state.closed,
            period: self.state.period,
            iro: self.state.contacts.get("iro").cloned(),
            sibling_group: fact("sibling_group"),
            parent_case: fact("parent_case"),
        };
        CasePlan {
            case: self.case,
            now: self.now,
            obligations,
            notifications,
            upcoming_events: upcoming,
            derived_events: self.derived,
            problems: self.problems,
            status,
        }
    }

    /// An obligation's state as at now, with its lateness counted in statutory working days.
    fn obligation_plan(&self, ob: &Obligation, rule: &Rule) -> ObligationPlan {
        let calendar = self.planner.calendar;
        let seg = ob.current();
        let deadline = seg.due.deadline();
        let late_days =
            |at: DateTime<Utc>| calendar.working_days_late(seg.due.date, localtime::date_of(at));
        let (state, working_days_late) = match &ob.end {
            Some(End {
                kind: EndKind::Cancelled,
                ..
            }) => (ObligationState::Cancelled, None),
            // driftwatch's own derived event is recorded as the deadline passes: on time.
            Some(End {
                kind: EndKind::Actioned,
                at,
                ..
            }) if *at <= deadline => (ObligationState::Met, None),
            Some(End {
                kind: EndKind::Met,
                at,
                ..
            }) if *at < deadline => (ObligationState::Met, None),
            Some(End {
                kind: EndKind::Met | EndKind::Actioned,
                at,
                ..
            }) => (ObligationState::MetLate, Some(late_days(*at))),
            // How long the deadline had passed when it stopped mattering, if it had by a day.
            Some(End {
                kind: EndKind::Ended,
                at,
                ..
            }) => (
                ObligationState::NotDone,
                Some(calendar.between(seg.due.date, localtime::date_of(*at))).filter(|n| *n > 0),
            ),
            None if self.now >= deadline => (
                ObligationState::Overdue,
                working_days_late_at(calendar, seg.due.date, deadline, self.now),
            ),
            None => (ObligationState::Open, None),
        };
        ObligationPlan {
            id: ob.id(rule),
            rule: rule.id.clone(),
            title: rule.title.clone(),
            source: rule.source.clone(),
            key: ob.key.clone(),
            due: seg.due.date,
            due_time: seg.due.time.map(|t| t.format("%H:%M").to_string()),
            deadline,
            state,
            working_days_late,
            opened_at: ob.trigger_at,
            opened_by: ob.opened_by.clone(),
            closed_at: ob.end.as_ref().map(|e| e.at),
            closed_by: ob.end.as_ref().map(|e| e.by.clone()),
            replanned: ob.segments[..ob.segments.len() - 1]
                .iter()
                .zip(ob.segments.iter().skip(1))
                .map(|(old, new)| Replanned {
                    at: new.start,
                    by: new.by.clone(),
                    due: old.due.date,
                })
                .collect(),
        }
    }

    /// The notices: each at its event's time (in working hours unless urgent), unless the
    /// period of care ended before it could go.
    fn notice_notifications(&mut self, out: &mut Vec<Notification>) {
        let rules = self.planner.rules;
        for hit in std::mem::take(&mut self.notices) {
            let rule = &rules.rules[hit.rule];
            let RuleBody::Notice(send) = &rule.body else {
                continue;
            };
            let at = self.planner.place(hit.at, send.urgent);
            // Ended after the event and before the notice could go: not sent.
            let ended = self.period_ends.iter().any(|e| *e >= hit.at && *e < at);
            if ended {
                continue;
            }
            let notice_id = format!("notice/{}/{}/{}", rule.id, hit.event, hit.part);
            let meta = NoteMeta {
                kind: NotificationKind::Notice,
                step: "notice".into(),
                title: None,
                rule: rule.id.clone(),
                obligation: None,
                due: None,
                event: hit.event.clone(),
                late: None,
                replaces: None,
                data: hit.data.clone(),
            };
            self.push_notifications(
                out,
                &[&notice_id],
                send,
                at,
                NotificationStatus::Scheduled,
                meta,
                hit.at,
                hit.item.as_ref(),
            );
        }
    }
}

/// When a matcher says its event happened: its `at` field (the meeting was *held* at
/// `data.held_at`, recorded later), else the event's own time.
fn moment_of(m: &Matcher, event: &Event) -> DateTime<Utc> {
    m.at.as_ref()
        .and_then(|p| p.resolve(event, None))
        .and_then(|v| parse_moment(&v))
        .map(Moment::instant)
        .unwrap_or(event.at)
}

/// What a rule fires for: the list item or meeting (if it walks any), and the data the
/// obligation or notice is about.
type Walked = (Option<Value>, About);

/// What a notification says about where it came from.
struct NoteMeta {
    kind: NotificationKind,
    step: String,
    title: Option<String>,
    rule: String,
    obligation: Option<String>,
    due: Option<NaiveDate>,
    event: String,
    /// Why it goes after its usual time, when it does.
    late: Option<LateReason>,
    replaces: Option<Replaced>,
    /// What the message is about.
    data: About,
}
