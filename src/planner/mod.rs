//! The planner: a pure function of (rules, calendar, one case's events, now) that returns the
//! case's obligations and every notification they cause, past and future.
//!
//! It owns the meaning of the rules language at run time: when obligations open, which events
//! meet, cancel or move them, when reminders, escalations and deadline actions fall, and how
//! notifications are placed in working hours. It must not read files, the clock, a database or
//! the network; the daemon and the commands pass everything in. Events may arrive twice or out of
//! order: only the set of events counts, ordered by their `at` time (then id).

mod ack;
mod model;
mod state;
pub mod table;

pub use model::*;
use state::{CaseState, ContactIn, History};

use crate::calendar::{Calendar, OffsetUnit};
use crate::config::{Config, WorkingHours};
use crate::event::{Contact, Event};
use crate::localtime;
use crate::rules::vocabulary::ACKNOWLEDGED;
use crate::rules::{
    Action, KeyMatch, Matcher, ObligationRule, Recipient, Rule, RuleBody, RuleSet, Send, Step,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

/// Everything the planner needs besides the events and the time.
#[derive(Debug, Clone, Copy)]
pub struct Planner<'a> {
    pub rules: &'a RuleSet,
    pub calendar: &'a Calendar,
    pub working_hours: WorkingHours,
    /// Service-wide roles from the config.
    pub roles: &'a BTreeMap<String, Contact>,
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

/// One stretch of an obligation's life with one deadline; a re-plan starts the next.
#[derive(Debug, Clone)]
struct Segment {
    start: DateTime<Utc>,
    by: String,
    due: DueAt,
    /// The trigger's data, overlaid by the data of re-planning events. Shared, not copied, by
    /// the obligations one event opens (one per item of a list of hundreds).
    data: Arc<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndKind {
    Met,
    Cancelled,
    /// Met by driftwatch's own deadline action.
    Actioned,
}

#[derive(Debug, Clone)]
struct End {
    at: DateTime<Utc>,
    kind: EndKind,
    by: String,
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
}

/// A notice rule that fired on an event.
struct NoticeHit {
    rule: usize,
    part: String,
    event: String,
    at: DateTime<Utc>,
    data: Arc<Map<String, Value>>,
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
    /// Deadline actions waiting to fire, earliest first: (moment, obligation, its segment
    /// count then). An entry whose obligation has ended or moved since is dropped when it comes
    /// up, so finding the next action does not walk every obligation.
    actions: BinaryHeap<Reverse<(DateTime<Utc>, usize, usize)>>,
    notices: Vec<NoticeHit>,
    derived: Vec<Event>,
    /// Derived events already among the events of this pass (from an earlier pass).
    known_derived: std::collections::HashSet<String>,
    /// Derived events dated before events this pass had already applied.
    back_dated: Vec<Event>,
    /// Acknowledgements and snoozes, in the order they were made.
    acks: Vec<ack::Ack>,
    problems: Vec<String>,
}

/// How many times a case is re-planned for back-dated derived events, at most.
const MAX_PASSES: usize = 32;

impl<'a> Planner<'a> {
    pub fn from_config(config: &'a Config) -> Planner<'a> {
        Planner {
            rules: &config.rules,
            calendar: &config.calendar,
            working_hours: config.working_hours,
            roles: &config.roles,
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
        ));
        run.finish()
    }

    /// Places a moment in the working-hours window: unchanged if urgent or already inside it,
    /// otherwise the next window start on a working day.
    pub fn place(&self, t: DateTime<Utc>, urgent: bool) -> DateTime<Utc> {
        if urgent {
            return t;
        }
        let local = localtime::naive_of(t);
        let (date, time) = (local.date(), local.time());
        let hours = self.working_hours;
        if self.calendar.is_working_day(date) && time < hours.end {
            if time >= hours.start {
                t
            } else {
                localtime::instant(date.and_time(hours.start))
            }
        } else {
            localtime::instant(self.calendar.add(date, 1).and_time(hours.start))
        }
    }
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

fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
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
            actions: BinaryHeap::new(),
            notices: Vec::new(),
            derived: Vec::new(),
            known_derived: known.iter().map(|e| e.id.clone()).collect(),
            back_dated: Vec::new(),
            acks: Vec::new(),
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
                    self.problems.push(format!("event {} was received twice with different contents; the first in a stable order is used", e.id));
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
        queue.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
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

    /// The earliest deadline action due by `now` among open obligations.
    fn next_action(&mut self) -> Option<(DateTime<Utc>, usize)> {
        while let Some(Reverse((m, i, segments))) = self.actions.peek().copied() {
            let o = &self.obligations[i];
            if o.end.is_some() || o.segments.len() != segments {
                self.actions.pop();
                continue;
            }
            return (m <= self.now).then_some((m, i));
        }
        None
    }

    /// Puts obligation `idx`'s deadline actions, if its rule has any, in the queue at the moment
    /// its current segment gives them.
    fn queue_actions(&mut self, idx: usize) {
        let o = &self.obligations[idx];
        let Some(rule) = self.rules().rules[o.rule].obligation() else {
            return;
        };
        if !rule.at_deadline.is_empty() {
            let m = self.action_moment(rule, o.current());
            self.actions.push(Reverse((m, idx, o.segments.len())));
        }
    }

    /// When a rule's deadline actions happen for a segment: sends at the start of working hours
    /// on the due date (the last compliant moment); derived events when the deadline passes.
    /// Never before the segment began.
    fn action_moment(&self, rule: &ObligationRule, seg: &Segment) -> DateTime<Utc> {
        let sends: Vec<&Send> = rule
            .at_deadline
            .iter()
            .filter_map(|a| match a {
                Action::Send(s) => Some(s),
                Action::Emit { .. } => None,
            })
            .collect();
        if sends.is_empty() {
            seg.due.deadline().max(seg.start)
        } else {
            let urgent = sends.iter().all(|s| s.urgent);
            self.planner.place(seg.due.start().max(seg.start), urgent)
        }
    }

    fn fire_actions(&mut self, idx: usize, at: DateTime<Utc>, queue: &mut Vec<Event>, next: usize) {
        let rules = self.planner.rules;
        let ob = self.obligations[idx].clone();
        let rule = &rules.rules[ob.rule];
        let Some(orule) = rule.obligation() else {
            return;
        };
        for action in &orule.at_deadline {
            if let Action::Emit { event, data } = action {
                let seg = ob.current();
                let mut out = Map::new();
                for (field, path) in data {
                    if let Some(v) = path.resolve_in(&seg.data, ob.trigger_at, ob.item.as_ref()) {
                        out.insert(field.clone(), v);
                    }
                }
                // The derived event happened when the deadline passed, even if driftwatch only
                // learned of the obligation later (a back-dated start of care).
                let derived = Event {
                    id: format!("derived:{}:{}", self.case, ob.id(rule)),
                    case: self.case.clone(),
                    kind: event.clone(),
                    at: seg.due.deadline().min(at),
                    data: out,
                    source: Some(format!("driftwatch rule {}", rule.id)),
                };
                self.derived.push(derived.clone());
                if self.known_derived.contains(&derived.id) {
                    continue;
                }
                let applied_later = next
                    .checked_sub(1)
                    .and_then(|i| queue.get(i))
                    .is_some_and(|e| e.at > derived.at);
                if applied_later {
                    self.back_dated.push(derived);
                } else {
                    let pos = next
                        + queue[next..]
                            .partition_point(|e| (e.at, &e.id) <= (derived.at, &derived.id));
                    queue.insert(pos, derived);
                }
            }
        }
        self.obligations[idx].end = Some(End {
            at,
            kind: EndKind::Actioned,
            by: "driftwatch".into(),
        });
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
                    .push(format!("{what}: condition failed ({e}); treated as false"));
                false
            }
        }
    }

    /// `what` names the matcher in a problem; it is only written out when a condition fails.
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

    fn apply(&mut self, event: &Event) {
        let rules = self.planner.rules;
        if event.kind == ACKNOWLEDGED
            && let Some(a) = ack::Ack::of(event)
        {
            self.acks.push(a);
        }
        self.state.apply(&rules.case, event);
        self.history.record(event.at, &self.state);

        if rules.case.closed_by.contains(&event.kind) {
            for ob in self.obligations.iter_mut().filter(|o| o.end.is_none()) {
                ob.end = Some(End {
                    at: event.at,
                    kind: EndKind::Cancelled,
                    by: event.id.clone(),
                });
            }
        }

        for idx in 0..self.obligations.len() {
            if self.obligations[idx].end.is_some() {
                continue;
            }
            let rule = &rules.rules[self.obligations[idx].rule];
            let Some(orule) = rule.obligation() else {
                continue;
            };
            // Most events concern few of a case's obligations: pass over the others cheaply.
            let named = |m: &Matcher| m.event == event.kind;
            if !(orule.cancelled_by.iter().any(named)
                || orule.met_by.iter().any(named)
                || orule.replanned_by.iter().any(|r| named(&r.matcher)))
            {
                continue;
            }
            let key = self.obligations[idx].key.clone();
            let key = key.as_deref();
            if let Some(_m) = orule.cancelled_by.iter().find(|m| {
                self.matches(m, key, event, || {
                    format!("rule {} cancelled_by {}", rule.id, event.kind)
                })
            }) {
                self.obligations[idx].end = Some(End {
                    at: event.at,
                    kind: EndKind::Cancelled,
                    by: event.id.clone(),
                });
            } else if let Some(m) = orule.met_by.iter().find(|m| {
                self.matches(m, key, event, || {
                    format!("rule {} met_by {}", rule.id, event.kind)
                })
            }) {
                let at =
                    m.at.as_ref()
                        .and_then(|p| p.resolve(event, None))
                        .and_then(|v| parse_moment(&v))
                        .map(Moment::instant)
                        .unwrap_or(event.at);
                self.obligations[idx].end = Some(End {
                    at,
                    kind: EndKind::Met,
                    by: event.id.clone(),
                });
            } else if let Some(r) = orule.replanned_by.iter().find(|r| {
                self.matches(&r.matcher, key, event, || {
                    format!("rule {} replanned_by {}", rule.id, event.kind)
                })
            }) {
                let anchor = r.from.resolve(event, None);
                self.replan(idx, rule, orule, anchor, event);
            }
        }

        // The event's data, copied once however many obligations and notices it opens.
        let mut shared: Option<Arc<Map<String, Value>>> = None;
        for (ri, rule) in rules
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.on == event.kind)
        {
            let items: Vec<Option<Value>> = match &rule.for_each {
                Some(path) => match path.resolve(event, None) {
                    Some(Value::Array(items)) => items.into_iter().map(Some).collect(),
                    _ => Vec::new(),
                },
                None => vec![None],
            };
            // Built once per rule, not per item: it holds the whole event.
            let mut ctx = rule.when.as_ref().map(|_| self.context(event, None));
            for (index, item) in items.into_iter().enumerate() {
                if let Some(ctx) = ctx.as_mut() {
                    ctx["item"] = item.clone().unwrap_or(Value::Null);
                    if !self.condition(&rule.when, ctx, &format!("rule {} when", rule.id)) {
                        continue;
                    }
                }
                let key = match &rule.key {
                    Some(path) => match path
                        .resolve(event, item.as_ref())
                        .and_then(|v| key_text(&v))
                    {
                        Some(k) => Some(k),
                        None => {
                            self.problems.push(format!(
                                "rule {}: event {} has no `{path}`; no obligation opened",
                                rule.id, event.id
                            ));
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
                        data: Arc::clone(
                            shared.get_or_insert_with(|| Arc::new(event.data.clone())),
                        ),
                        item,
                    }),
                    RuleBody::Obligation(orule) => {
                        let data = shared.get_or_insert_with(|| Arc::new(event.data.clone()));
                        let data = Arc::clone(data);
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
            self.problems.push(format!(
                "rule {}: event {} has no usable `{}`; deadline not set",
                rule.id, event.id, orule.due.from
            ));
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
        match offset.apply_to_date(self.planner.calendar, moment.date()) {
            Some(date) => Some(DueAt { date, time: None }),
            None => {
                self.problems.push(format!(
                    "rule {}: deadline from event {} is out of range",
                    rule.id, event.id
                ));
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
        data: Arc<Map<String, Value>>,
    ) {
        // A second trigger for an obligation still open moves its deadline instead of opening another.
        if let Some(idx) = self
            .obligations
            .iter()
            .position(|o| o.rule == ri && o.key == key && o.end.is_none())
        {
            let anchor = orule.due.from.resolve(event, item.as_ref());
            self.replan(idx, rule, orule, anchor, event);
            return;
        }
        let anchor = orule.due.from.resolve(event, item.as_ref());
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
        });
        self.queue_actions(self.obligations.len() - 1);
    }

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
        let mut data = Map::clone(&ob.current().data);
        data.extend(event.data.clone());
        ob.segments.push(Segment {
            start: event.at,
            by: event.id.clone(),
            due,
            data: Arc::new(data),
        });
        self.queue_actions(idx);
    }

    /// Addresses a message as the case stood at `at` (or now, if `at` is still to come).
    fn recipients(
        &mut self,
        send: &Send,
        at: DateTime<Utc>,
        data: &Map<String, Value>,
        event_at: DateTime<Utc>,
        item: Option<&Value>,
        what: Option<&str>,
    ) -> Vec<Target> {
        let state = self
            .history
            .at(at.min(self.now))
            .cloned()
            .unwrap_or_else(|| CaseState::new(&self.case));
        let mut out: Vec<Target> = Vec::new();
        for r in &send.to {
            match r {
                Recipient::Webhook(name) => out.push(Target::Webhook {
                    webhook: name.clone(),
                }),
                Recipient::Role(role) => {
                    let contact = self
                        .planner
                        .roles
                        .get(role)
                        .or_else(|| state.contacts.get(role));
                    match contact {
                        Some(c) => out.push(Target::Email {
                            role: role.clone(),
                            name: c.name.clone(),
                            email: c.email.clone(),
                        }),
                        None => {
                            if let Some(what) = what {
                                self.problems.push(format!(
                                    "{what}: the case has no `{role}` contact at {}; not addressed to that role",
                                    localtime::display(at)
                                ));
                            }
                        }
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
                            .push(format!("{what}: `list:{path}` names nobody"));
                    }
                    for v in values {
                        if let Ok(c) = serde_json::from_value::<ContactIn>(v) {
                            let role = c.role.clone().unwrap_or_else(|| {
                                path.segments.last().cloned().unwrap_or_default()
                            });
                            let c: Contact = c.into();
                            out.push(Target::Email {
                                role,
                                name: c.name,
                                email: c.email,
                            });
                        }
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|t| seen.insert(t.identity()));
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn push_notifications(
        &mut self,
        out: &mut Vec<Notification>,
        key_base: &[&str],
        send: &Send,
        at: DateTime<Utc>,
        status: NotificationStatus,
        meta: NoteMeta,
        data: &Map<String, Value>,
        event_at: DateTime<Utc>,
        item: Option<&Value>,
    ) {
        // Nobody is told of a missing contact for a message that will not be sent.
        let what = (status != NotificationStatus::Superseded)
            .then(|| format!("rule {} {}", meta.rule, meta.step));
        for recipient in self.recipients(send, at, data, event_at, item, what.as_deref()) {
            let identity = recipient.identity();
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
                late: meta.late,
                kind: meta.kind,
                step: meta.step.clone(),
                title: meta.title.clone(),
                rule: meta.rule.clone(),
                obligation: meta.obligation.clone(),
                due: meta.due,
                recipient,
                template: send.template.clone(),
                urgent: send.urgent,
                event: meta.event.clone(),
            });
        }
    }

    /// Reminders and escalations of one obligation across its segments.
    fn ladder(
        &mut self,
        ob: &Obligation,
        rule: &Rule,
        orule: &ObligationRule,
        out: &mut Vec<Notification>,
    ) {
        let id = ob.id(rule);
        let end_at = ob.end.as_ref().map(|e| e.at);
        let mut fired: HashMap<String, u32> = HashMap::new();
        for (i, seg) in ob.segments.iter().enumerate() {
            let seg_end = match (ob.segments.get(i + 1).map(|s| s.start), end_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let before_end = |t: DateTime<Utc>| seg_end.is_none_or(|e| t < e);
            let deadline = seg.due.deadline();
            for (kind, steps) in [
                (NotificationKind::Reminder, &orule.reminders),
                (NotificationKind::Escalation, &orule.escalations),
            ] {
                let mut missed: Vec<(DateTime<Utc>, &Step)> = Vec::new();
                let mut plan: Vec<(DateTime<Utc>, &Step, NotificationStatus, bool)> = Vec::new();
                for step in steps {
                    let Some(date) = step
                        .offset
                        .apply_to_date(self.planner.calendar, seg.due.date)
                    else {
                        continue;
                    };
                    let nominal = self.planner.place(localtime::start_of(date), false);
                    if nominal >= seg.start {
                        if !before_end(nominal) {
                            continue;
                        }
                        if kind == NotificationKind::Reminder && nominal >= deadline {
                            plan.push((nominal, step, NotificationStatus::Superseded, false));
                        } else {
                            plan.push((nominal, step, NotificationStatus::Scheduled, false));
                        }
                    } else if i == 0 || !fired.contains_key(&step.id) {
                        missed.push((nominal, step));
                    }
                }
                // Of the steps whose time passed before this segment began, only the latest goes
                // (late, now); the rest are superseded by it.
                missed.sort_by_key(|(t, _)| *t);
                if let Some((_, latest)) = missed.pop() {
                    let at = self.planner.place(seg.start, latest.send.urgent);
                    let stale_reminder = kind == NotificationKind::Reminder && at >= deadline;
                    if before_end(at) {
                        let status = if stale_reminder {
                            NotificationStatus::Superseded
                        } else {
                            NotificationStatus::Scheduled
                        };
                        plan.push((at, latest, status, true));
                    }
                    for (nominal, step) in missed {
                        plan.push((nominal, step, NotificationStatus::Superseded, true));
                    }
                }
                for (at, step, status, late) in plan {
                    let count = fired.entry(step.id.clone()).or_default();
                    // A superseded step is never sent; its key only has to be unique.
                    let occurrence = if status == NotificationStatus::Superseded {
                        format!("superseded at {}", at.to_rfc3339())
                    } else {
                        *count += 1;
                        count.to_string()
                    };

                    let meta = NoteMeta {
                        kind,
                        step: step.id.clone(),
                        title: step.title.clone(),
                        rule: rule.id.clone(),
                        obligation: Some(id.clone()),
                        due: Some(seg.due.date),
                        event: ob.opened_by.clone(),
                        late,
                    };
                    self.push_notifications(
                        out,
                        &[&id, &step.id, &occurrence],
                        &step.send,
                        at,
                        status,
                        meta,
                        &seg.data,
                        ob.trigger_at,
                        ob.item.as_ref(),
                    );
                }
            }
        }
    }

    fn finish(mut self) -> CasePlan {
        let rules = self.planner.rules;
        let calendar = self.planner.calendar;
        let mut notifications = Vec::new();
        let mut obligations = Vec::new();
        let mut upcoming = Vec::new();
        let today = localtime::date_of(self.now);

        for ob in self.obligations.clone() {
            let rule = &rules.rules[ob.rule];
            let Some(orule) = rule.obligation() else {
                continue;
            };
            let id = ob.id(rule);
            let seg = ob.current().clone();
            self.ladder(&ob, rule, orule, &mut notifications);

            // Deadline actions: done (Actioned) or still to come.
            let action_at = match &ob.end {
                Some(End {
                    kind: EndKind::Actioned,
                    at,
                    ..
                }) => Some(*at),
                None if !orule.at_deadline.is_empty() => Some(self.action_moment(orule, &seg)),
                _ => None,
            };
            if let Some(at) = action_at {
                let nominal = seg.due.start();
                let deadline = seg.due.deadline();

                for action in &orule.at_deadline {
                    match action {
                        Action::Send(send) => {
                            let meta = NoteMeta {
                                kind: NotificationKind::Action,
                                step: "at deadline".into(),
                                title: None,
                                rule: rule.id.clone(),
                                obligation: Some(id.clone()),
                                due: Some(seg.due.date),
                                event: ob.opened_by.clone(),
                                late: seg.start > nominal || at >= deadline,
                            };
                            let segs = ob.segments.len().to_string();
                            self.push_notifications(
                                &mut notifications,
                                &[&id, "at deadline", &segs],
                                send,
                                at,
                                NotificationStatus::Scheduled,
                                meta,
                                &seg.data,
                                ob.trigger_at,
                                ob.item.as_ref(),
                            );
                        }
                        Action::Emit { event, .. } if ob.end.is_none() => {
                            upcoming.push(UpcomingEvent {
                                kind: event.clone(),
                                at,
                                rule: rule.id.clone(),
                                obligation: id.clone(),
                            })
                        }
                        Action::Emit { .. } => {}
                    }
                }
            }

            let deadline = seg.due.deadline();
            let late_days = |at: DateTime<Utc>| {
                calendar
                    .between(seg.due.date, localtime::date_of(at))
                    .max(1)
            };
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
                None if self.now >= deadline => (
                    ObligationState::Overdue,
                    Some(calendar.between(seg.due.date, today).max(1)),
                ),
                None => (ObligationState::Open, None),
            };
            obligations.push(ObligationPlan {
                id,
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
            });
        }

        for hit in std::mem::take(&mut self.notices) {
            let rule = &rules.rules[hit.rule];
            let RuleBody::Notice(send) = &rule.body else {
                continue;
            };
            let at = self.planner.place(hit.at, send.urgent);
            let notice_id = format!("notice/{}/{}/{}", rule.id, hit.event, hit.part);

            let meta = NoteMeta {
                kind: NotificationKind::Notice,
                step: "notice".into(),
                title: None,
                rule: rule.id.clone(),
                obligation: None,
                due: None,
                event: hit.event.clone(),
                late: false,
            };
            self.push_notifications(
                &mut notifications,
                &[&notice_id],
                send,
                at,
                NotificationStatus::Scheduled,
                meta,
                &hit.data,
                hit.at,
                hit.item.as_ref(),
            );
        }

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
        CasePlan {
            case: self.case,
            now: self.now,
            obligations,
            notifications,
            upcoming_events: upcoming,
            derived_events: self.derived,
            problems: self.problems,
        }
    }
}

/// What a notification says about where it came from.
struct NoteMeta {
    kind: NotificationKind,
    step: String,
    title: Option<String>,
    rule: String,
    obligation: Option<String>,
    due: Option<NaiveDate>,
    event: String,
    late: bool,
}
