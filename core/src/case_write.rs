//! What the store keeps of a case's plan ([`case_write`]): the obligations, who is told of them,
//! and the outbox rows, each in the state the go-live and catch-up policy gives it (sent, or
//! recorded superseded, before go-live, in a digest or acknowledged), late messages placed in
//! working hours, and the moments to plan the case again. Pure: the shell's service reads the
//! stored plan, calls this, and writes what it returns.

use crate::event::Event;
use crate::outbox::{CaseWrite, Lane, ObligationWrite, OutboxWrite, Person, PlannedState};
use crate::planner::{
    CasePlan, Notification, NotificationKind, NotificationStatus, ObligationPlan, ObligationState,
    Planner, Target,
};
use crate::rules::{CaseModel, Delivery};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// When each obligation's deadline action still to come goes, as its notifications say.
fn action_notifications(plan: &CasePlan) -> HashMap<String, DateTime<Utc>> {
    let mut moments: HashMap<String, DateTime<Utc>> = HashMap::new();
    for n in plan
        .notifications
        .iter()
        .filter(|n| n.kind == NotificationKind::Action && n.send_at > plan.now)
    {
        if let Some(o) = &n.obligation {
            let t = moments.entry(o.clone()).or_insert(n.send_at);
            *t = (*t).min(n.send_at);
        }
    }
    moments
}

/// When each open obligation's own deadline action will meet it (the invitations going), by
/// obligation id: from then its reminders and escalations are not wanted. Read from the plan's
/// action notifications; an action that sends nothing now (a moved review's invitations when
/// everyone was told of the move, nobody to send to) leaves none, and the plan at the latest such
/// deadline says when driftwatch met each of those obligations. Pure.
pub fn closing_actions(
    planner: &Planner,
    plan: &CasePlan,
    events: &[Event],
) -> HashMap<String, DateTime<Utc>> {
    let mut moments = action_notifications(plan);
    let acts_at_deadline = |rule: &str| {
        planner
            .rules
            .rule(rule)
            .and_then(|r| r.obligation())
            .is_some_and(|o| !o.at_deadline.is_empty())
    };
    let unknown: Vec<&ObligationPlan> = plan
        .obligations
        .iter()
        .filter(|o| matches!(o.state, ObligationState::Open | ObligationState::Overdue))
        .filter(|o| acts_at_deadline(&o.rule) && o.deadline > plan.now)
        .filter(|o| !moments.contains_key(&o.id))
        .collect();
    if let Some(latest) = unknown.iter().map(|o| o.deadline).max() {
        let later = planner.plan_case(&plan.case, events, latest);
        for o in unknown {
            let closed = later
                .obligations
                .iter()
                .find(|l| l.id == o.id)
                .and_then(|l| {
                    (l.closed_by.as_deref() == Some("driftwatch")).then_some(l.closed_at)?
                });
            if let Some(at) = closed.filter(|at| *at > plan.now) {
                moments.insert(o.id.clone(), at);
            }
        }
    }
    moments
}

/// Who gets what one by one and what only in the daily digest, and when a message sent late
/// may go, for [`case_write`] and the digest.
#[derive(Debug, Clone, Copy)]
pub struct Routing<'a> {
    pub rules: &'a crate::rules::RuleSet,
    /// People's own choices, by email address or role.
    pub recipients: &'a std::collections::BTreeMap<String, Delivery>,
    /// Working hours on the council's open days.
    pub placement: crate::planner::Placement<'a>,
}

impl<'a> Routing<'a> {
    /// How `rule`'s reminders and escalations reach this person: their own choice (by
    /// address, then role), else the rule's.
    pub fn for_person(&self, rule: &str, role: &str, email: &str) -> Delivery {
        self.recipients
            .get(&email.to_lowercase())
            .or_else(|| self.recipients.get(role))
            .copied()
            .unwrap_or_else(|| {
                self.rules
                    .rule(rule)
                    .map(|r| r.delivery)
                    .unwrap_or_default()
            })
    }

    /// How a notification goes. Urgent messages, invitations and notices always go at once;
    /// only reminders and escalations to people can wait for a digest.
    pub fn delivery(&self, n: &Notification) -> Delivery {
        match &n.recipient {
            Target::Email { role, email, .. } if is_ladder(n) && !n.urgent => {
                self.for_person(&n.rule, role, email)
            }
            _ => Delivery::Immediate,
        }
    }
}

/// What counts as catching up, for [`case_write`].
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    /// When driftwatch first heard of the case (the earliest receipt of its events): what fell
    /// due before then is recorded as "before go-live", never sent, but for the step of each
    /// obligation that applies now.
    pub go_live: Option<DateTime<Utc>>,
    /// A notification more than this late is stale: after downtime, only the latest due step of
    /// each obligation's ladder is sent, and the earlier steps are recorded as superseded.
    pub stale_after: chrono::Duration,
}

/// What the store keeps of a plan: its obligations and who is told of them, the outbox rows it
/// wants (pending, or recorded as superseded or before go-live), the pending rows it no longer
/// wants, and when the case must be planned again. Pure.
///
/// Catching up informs instead of flooding. Of the notifications whose time has passed without
/// them being sent, and which are stale or fell before go-live:
/// - notices (significant events) always go, marked late;
/// - deadline actions (invitations) go, marked late, while the meeting is still ahead;
/// - of each obligation's reminders and escalations only the latest due step goes (to all of its
///   recipients), marked late, unless it is a reminder whose deadline has already passed;
/// - the rest are recorded, not sent.
///
/// Reminders and escalations of obligations already met or cancelled are never sent late.
/// Those a recipient takes only in the daily digest are recorded as `in_digest`.
///
/// Its reminders and escalations are held from the moment their obligation's deadline action
/// meets it as the plan's action notifications say; the daemon uses [`case_write_with`] and
/// [`closing_actions`], which also know the moment of an action that sends nothing.
pub fn case_write(
    plan: &CasePlan,
    events: &[Event],
    pending: &[String],
    catch_up: CatchUp,
    routing: Routing,
) -> CaseWrite {
    let actions = action_notifications(plan);
    case_write_with(plan, events, pending, catch_up, routing, &actions)
}

/// [`case_write`], with when each open obligation's deadline action meets it (`actions`, see
/// [`closing_actions`]). Pure.
pub fn case_write_with(
    plan: &CasePlan,
    events: &[Event],
    pending: &[String],
    catch_up: CatchUp,
    routing: Routing,
    actions: &HashMap<String, DateTime<Utc>>,
) -> CaseWrite {
    let data_of: HashMap<&str, &Map<String, Value>> = events
        .iter()
        .chain(&plan.derived_events)
        .map(|e| (e.id.as_str(), &e.data))
        .collect();
    // The data each notification is about: what the planner used (a moved meeting's, not only
    // the booking's).
    let data: Vec<Option<&Map<String, Value>>> = plan
        .notifications
        .iter()
        .map(|n| {
            n.data
                .as_deref()
                .or_else(|| data_of.get(n.event.as_str()).copied())
        })
        .collect();
    let stored: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let deadlines: HashMap<&str, (DateTime<Utc>, bool)> = plan
        .obligations
        .iter()
        .map(|o| {
            let open = matches!(o.state, ObligationState::Open | ObligationState::Overdue);
            (o.id.as_str(), (o.deadline, open))
        })
        .collect();
    let now = plan.now;
    let before_go_live = |n: &Notification| catch_up.go_live.is_some_and(|g| n.send_at < g);
    let overdue_send = |n: &Notification| {
        n.status == NotificationStatus::Due
            && (before_go_live(n) || n.send_at < now - catch_up.stale_after)
    };
    // What is caught up goes in the first batch: now, or at the start of working hours when
    // catching up outside them.
    let first = routing.placement.place(now, false);
    let latest = latest_steps(plan, &routing, first);

    let mut outbox = Vec::new();
    let mut wanted = HashSet::new();
    // Whether any notification waits to go late: what goes then changes with time.
    let mut catching_up_any = false;
    // When notifications waiting for working hours go stale.
    let mut waiting = Vec::new();
    for (n, data) in plan.notifications.iter().zip(data.iter().copied()) {
        let obligation = n.obligation.as_deref().and_then(|o| deadlines.get(o));
        let closed = obligation.is_some_and(|(_, open)| !open);
        let catching_up = overdue_send(n);
        let send = match n.status {
            NotificationStatus::Superseded | NotificationStatus::Acknowledged => false,
            // Nobody needs a reminder for what is done.
            _ if is_ladder(n) && closed => false,
            NotificationStatus::Scheduled => true,
            NotificationStatus::Due if !catching_up => true,
            NotificationStatus::Due => {
                goes_late(n, data, &routing, (&latest, obligation), (now, first))
            }
        };
        let digest_only = routing.delivery(n) == Delivery::Digest;
        catching_up_any |= send && catching_up && !digest_only;
        let state = if send && digest_only {
            PlannedState::InDigest
        } else if send {
            wanted.insert(n.idempotency_key.as_str());
            PlannedState::Pending
        } else if n.status == NotificationStatus::Acknowledged {
            PlannedState::Acknowledged
        } else if before_go_live(n) {
            PlannedState::BeforeGoLive
        } else {
            PlannedState::Superseded
        };
        let mut n = n.clone();
        if send && catching_up {
            n.late = true;
            n.late_reason = Some(if before_go_live(&n) {
                crate::planner::LateReason::WentLive
            } else {
                crate::planner::LateReason::CaughtUp
            });
        }
        // A message that goes after its time (at going live, after downtime) still goes inside
        // working hours on a day the council is open, and its row says when. If it has not gone
        // by the time it goes stale, it is judged again then.
        if send && n.send_at < now {
            let placed = routing.placement.place(now, n.urgent);
            if placed > now {
                if !catching_up {
                    waiting
                        .push(n.send_at + catch_up.stale_after + chrono::Duration::milliseconds(1));
                }
                n.send_at = placed;
            }
        }
        let row = row_data(&n, &stored, &data_of);
        outbox.push(OutboxWrite {
            key: n.idempotency_key.clone(),
            rule: n.rule.clone(),
            channel: n.recipient.channel(),
            lane: Lane::of(&n),
            send_at: n.send_at,
            state,
            hold_at: n
                .obligation
                .as_deref()
                .filter(|_| is_ladder(&n) && state == PlannedState::Pending)
                .and_then(|o| actions.get(o).copied()),
            notification: n.clone(),
            data: row,
        });
    }
    let retire = pending
        .iter()
        .filter(|k| !wanted.contains(k.as_str()))
        .cloned()
        .collect();

    let (replan_at, hold_at) = next_change(
        plan,
        events,
        (&routing.rules.case, &data),
        actions,
        &waiting,
        catching_up_any,
        first,
    );
    CaseWrite {
        case: plan.case.clone(),
        planned_at: plan.now,
        replan_at,
        hold_at,
        obligations: obligation_rows(plan),
        people: people_told(plan),
        outbox,
        retire,
        status: to_json(&plan.status),
    }
}

/// The latest step of each obligation's ladder going in the first batch (`first`): the one that
/// applies when it goes. A stage that falls due at 09:00 takes the place of the earlier one
/// caught up at 08:00; of two stages at one moment (closures pushed one onto the other's day),
/// the later stage of the ladder.
fn latest_steps<'p>(
    plan: &'p CasePlan,
    routing: &Routing,
    first: DateTime<Utc>,
) -> LatestSteps<'p> {
    let mut latest: LatestSteps = HashMap::new();
    for n in &plan.notifications {
        let going = matches!(
            n.status,
            NotificationStatus::Due | NotificationStatus::Scheduled
        ) && n.send_at <= first;
        if let (true, Some(o)) = (is_ladder(n) && going, n.obligation.as_deref()) {
            let this = (n.send_at, stage(routing, n));
            let t = latest.entry(o).or_insert(this);
            *t = (*t).max(this);
        }
    }
    latest
}

/// By obligation, when its latest step going in the first batch goes and where it stands.
type LatestSteps<'p> = HashMap<&'p str, (DateTime<Utc>, Stage)>;

/// Where a step stands in its obligation's ladders (see [`Stage`]).
fn stage(routing: &Routing, n: &Notification) -> Stage {
    let o = routing.rules.rule(&n.rule).and_then(|r| r.obligation());
    let index = |steps: &[crate::rules::Step]| steps.iter().position(|s| s.id == n.step);
    match n.kind {
        NotificationKind::Escalation => (1, o.and_then(|o| index(&o.escalations))),
        _ => (0, o.and_then(|o| index(&o.reminders))),
    }
}

/// Whether a message due but caught up (after going live or downtime) still goes: a notice
/// always, to nobody never (recorded, not raised as dead again for what is long past), an
/// invitation while its meeting is ahead, and of a ladder only the latest step going in the
/// first batch, a reminder only while its deadline has not passed by then.
fn goes_late(
    n: &Notification,
    data: Option<&Map<String, Value>>,
    routing: &Routing,
    (latest, obligation): (&LatestSteps, Option<&(DateTime<Utc>, bool)>),
    (now, first): (DateTime<Utc>, DateTime<Utc>),
) -> bool {
    match n.kind {
        _ if matches!(n.recipient, Target::Nobody { .. }) => false,
        NotificationKind::Notice => true,
        NotificationKind::Action => meeting_ahead(&routing.rules.case, data, now),
        NotificationKind::Reminder | NotificationKind::Escalation => {
            let is_latest = n
                .obligation
                .as_deref()
                .and_then(|o| latest.get(o))
                .is_some_and(|t| *t == (n.send_at, stage(routing, n)));
            let deadline_passed = obligation.is_some_and(|(d, _)| *d <= first);
            is_latest && !(n.kind == NotificationKind::Reminder && deadline_passed)
        }
    }
}

/// The obligations as the store keeps them.
fn obligation_rows(plan: &CasePlan) -> Vec<ObligationWrite> {
    plan.obligations
        .iter()
        .map(|o| ObligationWrite {
            id: o.id.clone(),
            rule: o.rule.clone(),
            state: match o.state {
                ObligationState::Open | ObligationState::Overdue => "open",
                ObligationState::Met => "met",
                ObligationState::MetLate => "met_late",
                ObligationState::Cancelled => "cancelled",
                ObligationState::NotDone => "not_done",
            },
            deadline: o.deadline,
            body: to_json(o),
        })
        .collect()
}

/// Everyone told about each obligation, by email (lower-cased), each once.
fn people_told(plan: &CasePlan) -> Vec<(String, Person)> {
    let mut people = BTreeSet::new();
    for n in &plan.notifications {
        if let (Some(obligation), Target::Email { role, email, .. }) = (&n.obligation, &n.recipient)
        {
            people.insert((obligation.clone(), role.clone(), email.to_lowercase()));
        }
    }
    people
        .into_iter()
        .map(|(o, role, email)| (o, Person { role, email }))
        .collect()
}

/// When the case must be planned again without a new event: the next moment after `plan.now`
/// its plan changes with time alone (`replan_at`), and the next such moment that may touch any
/// notification waiting to go (`hold_at`: none of the case's notifications is claimed from then
/// until it is planned again).
///
/// A future-dated event taking effect and a derived event falling due may change anything. A
/// deadline action (`actions`, see [`closing_actions`]) meets its obligation, which touches only
/// that obligation's reminders and escalations: their rows carry the moment instead. A notification due but
/// waiting for working hours goes stale at one of the `waiting` moments, and is judged again by
/// the catch-up rules then. While a notification waits to go late (`catching_up`), what goes
/// depends on the moment too: a later step falling due supersedes it, a reminder's deadline
/// passing or an invitation's meeting going by stops it (what goes late is judged for its first
/// batch, `first`: only what changes after that counts).
#[allow(clippy::too_many_arguments)]
fn next_change(
    plan: &CasePlan,
    events: &[Event],
    (case_model, data): (&CaseModel, &[Option<&Map<String, Value>>]),
    actions: &HashMap<String, DateTime<Utc>>,
    waiting: &[DateTime<Utc>],
    catching_up: bool,
    first: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut hold: Vec<DateTime<Utc>> = plan
        .upcoming_events
        .iter()
        .map(|u| u.at)
        .chain(events.iter().map(|e| e.at))
        .chain(waiting.iter().copied())
        .collect();
    if catching_up {
        let open = |o: &&ObligationPlan| {
            matches!(o.state, ObligationState::Open | ObligationState::Overdue)
        };
        // What goes late was judged for its first batch (`first`): steps and deadlines up to
        // then were taken into account.
        hold.extend(
            plan.notifications
                .iter()
                .map(|n| n.send_at)
                .chain(plan.obligations.iter().filter(open).map(|o| o.deadline))
                .filter(|t| *t > first),
        );
        hold.extend(
            plan.notifications
                .iter()
                .zip(data)
                .filter(|(n, _)| n.kind == NotificationKind::Action)
                .filter_map(|(_, data)| case_model.meeting_time((*data)?)),
        );
    }
    let later = |t: &DateTime<Utc>| *t > plan.now;
    let hold_at = hold.into_iter().filter(later).min();
    let replan_at = actions.values().copied().chain(hold_at).filter(later).min();
    (replan_at, hold_at)
}

/// Where a step stands in its obligation's ladders: reminders (0) before escalations (1), then
/// its place in its ladder.
type Stage = (u8, Option<usize>);

/// A reminder or an escalation: a step of an obligation's ladder.
fn is_ladder(n: &Notification) -> bool {
    matches!(
        n.kind,
        NotificationKind::Reminder | NotificationKind::Escalation
    )
}

/// Whether the meeting a deadline action is about (when the vocabulary's meetings say it takes
/// place, `data.meeting_at` by default) is still ahead; an action about no meeting is always
/// worth sending.
fn meeting_ahead(
    case_model: &CaseModel,
    data: Option<&Map<String, Value>>,
    now: DateTime<Utc>,
) -> bool {
    data.and_then(|d| case_model.meeting_time(d))
        .is_none_or(|t| t > now)
}

/// What an outbox row keeps of a notification's data. A stored event's data is read from the
/// event log when the notification is claimed, not copied into every row: an invitation to each
/// of hundreds of participants would otherwise store the whole list once per participant. So
/// when every event the data came from is stored (not derived by driftwatch), the row names them
/// (`$from`) and keeps only what the planner laid over them (the case's contacts); otherwise it
/// keeps the data itself.
fn row_data(
    n: &Notification,
    stored: &HashSet<&str>,
    data_of: &HashMap<&str, &Map<String, Value>>,
) -> String {
    let Some(data) = n.data.as_deref() else {
        return data_of
            .get(n.event.as_str())
            .copied()
            .map_or_else(|| "{}".to_string(), to_json);
    };
    let in_log =
        !n.data_from.is_empty() && n.data_from.iter().all(|id| stored.contains(id.as_str()));
    if !in_log {
        return to_json(data);
    }
    let mut row = Map::new();
    row.insert(
        crate::outbox::DATA_FROM.to_string(),
        serde_json::json!(n.data_from),
    );
    if let Some(contacts) = data.get(crate::message::CONTACTS_KEY) {
        row.insert(crate::message::CONTACTS_KEY.to_string(), contacts.clone());
    }
    to_json(&row)
}

/// Serialises one of the planner's shapes. They hold only strings, numbers and dates, so this
/// cannot fail in practice; an empty object is stored if it ever did.
fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// What going live (or catching up) does with one rule's notifications: every row the import
/// writes, in the state it writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GoLiveCounts {
    /// Sent in the first batch: at once, or at the start of working hours if going live outside
    /// them.
    pub send_now: usize,
    /// Sent later, by the end of the next day the council is open.
    pub next_working_day: usize,
    /// Scheduled after that.
    pub later: usize,
    /// Lines of the recipient's daily digest only.
    pub in_digest: usize,
    /// Their time passed before driftwatch knew the case: recorded, not sent.
    pub before_go_live: usize,
    /// A later step applies now, or the obligation was met: recorded, not sent.
    pub superseded: usize,
    /// Its recipient acknowledged an earlier message of the step: recorded, not sent.
    pub acknowledged: usize,
}

impl GoLiveCounts {
    const COLUMNS: [&'static str; 7] = [
        "SEND NOW",
        "NEXT WORKING DAY",
        "LATER",
        "IN DIGEST",
        "BEFORE GO-LIVE",
        "SUPERSEDED",
        "ACKNOWLEDGED",
    ];

    fn values(&self) -> [usize; 7] {
        [
            self.send_now,
            self.next_working_day,
            self.later,
            self.in_digest,
            self.before_go_live,
            self.superseded,
            self.acknowledged,
        ]
    }

    pub fn add(&mut self, other: &GoLiveCounts) {
        self.send_now += other.send_now;
        self.next_working_day += other.next_working_day;
        self.later += other.later;
        self.in_digest += other.in_digest;
        self.before_go_live += other.before_go_live;
        self.superseded += other.superseded;
        self.acknowledged += other.acknowledged;
    }
}

/// A case as the preview needs it.
#[derive(Debug, Clone, Default)]
pub struct CaseHistory {
    pub case: String,
    /// All its events.
    pub events: Vec<Event>,
    /// When driftwatch first heard of it (none for a case new to driftwatch).
    pub go_live: Option<DateTime<Utc>>,
    /// Outbox keys already sent, being sent or dead: not counted again.
    pub settled: HashSet<String>,
}

/// What importing `cases` (each with all its events and its go-live) at `now` would send and
/// record, counted by rule, for an IRO manager to check before going live. Pure.
pub fn go_live_preview(
    planner: &Planner,
    routing: Routing,
    cases: &[CaseHistory],
    now: DateTime<Utc>,
    stale_after: chrono::Duration,
) -> std::collections::BTreeMap<String, GoLiveCounts> {
    let today = crate::localtime::date_of(now);
    // The daemon's first batch: now, or the start of working hours if going live outside them.
    let first = routing.placement.place(now, false);
    let next_open = planner
        .calendar
        .add_in(crate::calendar::Reckoning::Council, today, 1);
    let horizon = crate::localtime::end_of(next_open);
    let mut by_rule: std::collections::BTreeMap<String, GoLiveCounts> = Default::default();
    for history in cases {
        let plan = planner.plan_case(&history.case, &history.events, now);
        let write = case_write(
            &plan,
            &history.events,
            &[],
            CatchUp {
                go_live: history.go_live,
                stale_after,
            },
            routing,
        );
        for row in write
            .outbox
            .iter()
            .filter(|r| !history.settled.contains(&r.key))
        {
            let counts = by_rule.entry(row.rule.clone()).or_default();
            match row.state {
                PlannedState::Pending if row.send_at <= first => counts.send_now += 1,
                PlannedState::Pending if row.send_at <= horizon => counts.next_working_day += 1,
                PlannedState::Pending => counts.later += 1,
                PlannedState::InDigest => counts.in_digest += 1,
                PlannedState::BeforeGoLive => counts.before_go_live += 1,
                PlannedState::Superseded => counts.superseded += 1,
                PlannedState::Acknowledged => counts.acknowledged += 1,
            }
        }
    }
    by_rule.retain(|_, c| *c != GoLiveCounts::default());
    by_rule
}

/// The preview as a table, with a total line.
pub fn go_live_table(by_rule: &std::collections::BTreeMap<String, GoLiveCounts>) -> String {
    let line = |label: &str, values: &[String]| {
        let mut l = format!("  {label:<32}");
        for (v, h) in values.iter().zip(GoLiveCounts::COLUMNS) {
            l.push_str(&format!(" {v:>w$}", w = h.len()));
        }
        l.push('\n');
        l
    };
    let heads: Vec<String> = GoLiveCounts::COLUMNS
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut out = line("RULE", &heads);
    let mut total = GoLiveCounts::default();
    for (rule, c) in by_rule {
        out.push_str(&line(rule, &c.values().map(|v| v.to_string())));
        total.add(c);
    }
    out.push_str(&line("total", &total.values().map(|v| v.to_string())));
    out
}
