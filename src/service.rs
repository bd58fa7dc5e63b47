//! The service: what happens when an event arrives or time passes. The event is stored, its
//! case re-planned, and the case's obligations and outbox brought in step with the new plan, all
//! in one transaction, so the store never holds an event without its consequences.
//!
//! Owns the configuration in force (swapped whole on reload) and the translation from the
//! planner's output to the store's rows ([`case_write`], pure). Must not deliver anything or speak
//! HTTP; the scheduler and the API call in.

use crate::clock::Clock;
use crate::config::Config;
use crate::event::{Event, EventError};
use crate::planner::{
    CasePlan, Notification, NotificationKind, NotificationStatus, ObligationPlan, ObligationState,
    Planner, Target,
};
use crate::rules::{CaseModel, Delivery};
use crate::store::{
    CaseWrite, Lane, ObligationWrite, OutboxWrite, Person, PlannedState, Store, StoreError, Tx,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// How many cases one pass of re-planning reads, and plans in one transaction.
const REPLAN_BATCH: i64 = 200;
const REPLAN_BATCH_SIZE: usize = REPLAN_BATCH as usize;

pub struct Service {
    store: Store,
    config: RwLock<Arc<Config>>,
    clock: Clock,
    wake: Notify,
}

/// Why a batch of events was not stored. Nothing of it was.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Two events of the batch, or an event of the batch and a stored one, have this id and
    /// different contents.
    #[error(
        "event {id}: id: {}",
        if *.stored { CONFLICT_WITH_STORED } else { CONFLICT_IN_BATCH }
    )]
    Conflict { id: String, stored: bool },
    /// Another daemon sharing the database put other rules in force.
    #[error("{}", OtherRules::MESSAGE)]
    OtherRules(OtherRules),
}

/// The rules this daemon holds are not those in force in the database it shares: another daemon
/// started or was reloaded with other rules since. It plans, sends and accepts nothing until it
/// is reloaded with the same rules (or is the last to start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherRules {
    pub held: String,
    pub in_force: String,
}

impl OtherRules {
    pub const MESSAGE: &str = "the rules in force in the database (those of the driftwatch \
         daemon started or reloaded last) are not the rules, templates and calendar held here; \
         nothing is accepted, planned or sent with other rules until this is reloaded with the \
         same; nothing was changed";

    /// `Err` when `in_force` is another version than `held`; no version recorded is no
    /// disagreement (a database no daemon has started on yet).
    pub fn check(held: &str, in_force: Option<String>) -> Result<(), OtherRules> {
        match in_force {
            Some(v) if v != held => Err(OtherRules {
                held: held.to_string(),
                in_force: v,
            }),
            _ => Ok(()),
        }
    }
}

/// What a batch repeating a stored id with other contents is told.
pub const CONFLICT_WITH_STORED: &str = "an event with this id is already stored with different \
     contents; nothing was stored (an event cannot be changed: send what changed as a new event)";

/// What a batch using one id for two different events is told.
pub const CONFLICT_IN_BATCH: &str =
    "is used by two events of the batch with different contents; nothing was stored";

/// What an id already stored with other contents does to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// The batch is refused ([`IngestError::Conflict`]): what the case system posts.
    Refuse,
    /// The stored event stands and the new one counts as a duplicate: for imports run again
    /// (a snapshot's events dated at the import keep their ids) and acknowledgement links.
    KeepStored,
}

/// What became of one posted event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub id: String,
    pub status: AcceptedStatus,
}

/// What became of one posted event, as the API answers it (`stored`, `duplicate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptedStatus {
    /// Stored now, and its case planned again.
    Stored,
    /// An event with this id was already stored: nothing changed.
    Duplicate,
}

impl Service {
    pub fn new(store: Store, config: Config, clock: Clock) -> Service {
        Service {
            store,
            config: RwLock::new(Arc::new(config)),
            clock,
            wake: Notify::new(),
        }
    }

    /// The configuration in force; a reload swaps it without disturbing holders of the old one.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace_config(&self, config: Config) {
        let new = Arc::new(config);
        match self.config.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Tells the scheduler there may be new work (a permit is kept if it is busy).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Checks a batch of posted events, envelope and vocabulary; the first bad one is reported
    /// with its index when it has no id. Acknowledgements come only through their links.
    pub fn check(&self, values: &[Value]) -> Result<Vec<Event>, EventError> {
        let config = self.config();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let event = Event::from_value(v, &format!("#{i}"))?;
                if event.kind == crate::rules::vocabulary::ACKNOWLEDGED {
                    return Err(EventError::new(
                        &event.id,
                        "type",
                        "is recorded by driftwatch when someone follows an acknowledgement link; \
                         it cannot be posted",
                    ));
                }
                config.rules.vocabulary.validate(&event)?;
                Ok(event)
            })
            .collect()
    }

    /// Stores events and re-plans their cases in one transaction: when this returns `Ok`, the
    /// events and their consequences are on disk. A batch using one id for two different
    /// events is refused; an event whose id is stored already counts as a duplicate (the stored
    /// one stands, whatever the new one holds).
    pub async fn ingest(&self, events: &[Event]) -> Result<Vec<Accepted>, IngestError> {
        self.ingest_with(events, Changed::KeepStored).await
    }

    /// As [`Service::ingest`], with `changed` saying what an id stored with other contents does.
    pub async fn ingest_with(
        &self,
        events: &[Event],
        changed: Changed,
    ) -> Result<Vec<Accepted>, IngestError> {
        if let Some(id) = crate::event::conflicting_id(events) {
            return Err(IngestError::Conflict {
                id: id.to_string(),
                stored: false,
            });
        }
        // Two daemons given the same events in other orders take the same locks in other
        // orders; PostgreSQL ends one transaction of such a cycle, which is tried again.
        let mut attempt = 1;
        loop {
            match self.ingest_once(events, changed).await {
                Err(IngestError::Store(e)) if e.is_deadlock() && attempt < 3 => attempt += 1,
                done => return done,
            }
        }
    }

    async fn ingest_once(
        &self,
        events: &[Event],
        changed: Changed,
    ) -> Result<Vec<Accepted>, IngestError> {
        let config = self.config();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // Every case of the batch taken first, in case order, before any event is stored: two
        // daemons given overlapping batches never wait on each other in a cycle. (A write
        // first, too: a SQLite transaction that began by reading could not then write if
        // another connection had written meanwhile.)
        let batch_cases: BTreeSet<&str> = events.iter().map(|e| e.case.as_str()).collect();
        for case in &batch_cases {
            tx.lock_case(case, now).await?;
        }
        OtherRules::check(&config.rules_version, tx.rules_in_force().await?)
            .map_err(IngestError::OtherRules)?;
        let mut accepted = Vec::with_capacity(events.len());
        let mut cases = BTreeSet::new();
        for event in events {
            let stored = tx.append(event, now).await?;
            if stored {
                cases.insert(event.case.as_str());
            } else if changed == Changed::Refuse
                && tx.event(&event.id).await?.is_some_and(|s| s != *event)
            {
                // Dropped without a commit: nothing of the batch is kept.
                return Err(IngestError::Conflict {
                    id: event.id.clone(),
                    stored: true,
                });
            }
            accepted.push(Accepted {
                id: event.id.clone(),
                status: if stored {
                    AcceptedStatus::Stored
                } else {
                    AcceptedStatus::Duplicate
                },
            });
        }
        // In case order, so two daemons taking case locks never wait on each other in a cycle.
        for case in cases {
            replan(&mut tx, &config, case, now).await?;
        }
        tx.commit().await?;
        self.wake();
        Ok(accepted)
    }

    /// Re-plans one batch of the cases whose notifications wait for it: their plans changed with
    /// time by now in a way that may touch a notification waiting to go (see
    /// [`CaseWrite::hold_at`](crate::store::CaseWrite)), or a waiting notification went stale
    /// since they were last planned. Their notifications are not claimed until this is done, so
    /// what goes is what the plan says at the moment of sending. Returns how many were re-planned;
    /// the caller calls again while that is more than none.
    pub async fn replan_held(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let config = self.config();
        let mut cases = self.store.cases_held(now, REPLAN_BATCH).await?;
        if cases.len() < REPLAN_BATCH_SIZE {
            let room = REPLAN_BATCH - i64::try_from(cases.len()).unwrap_or(REPLAN_BATCH);
            for case in self
                .store
                .cases_stale(now, stale_after(&config), room)
                .await?
            {
                if !cases.contains(&case) {
                    cases.push(case);
                }
            }
        }
        self.replan_batch(&config, &cases, now).await
    }

    /// Re-plans one batch of the cases whose stored plans changed with time by now in a way no
    /// waiting notification depends on (an obligation met by its deadline action): so that their
    /// obligations say what the plan says. Returns how many were re-planned; the caller calls
    /// again while that is more than none.
    pub async fn replan_due(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let config = self.config();
        let cases = self.store.cases_due(now, REPLAN_BATCH).await?;
        self.replan_batch(&config, &cases, now).await
    }

    async fn replan_batch(
        &self,
        config: &Config,
        cases: &[String],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if !cases.is_empty() {
            self.replan_cases(config, cases, now).await?;
        }
        Ok(cases.len())
    }

    /// Re-plans every case with the rules in force (after a reload).
    pub async fn replan_all(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let config = self.config();
        let mut after = String::new();
        let mut count = 0;
        loop {
            let cases = self.store.cases_after(&after, REPLAN_BATCH).await?;
            let Some(last) = cases.last() else {
                self.wake();
                return Ok(count);
            };
            after = last.clone();
            self.replan_cases(&config, &cases, now).await?;
            count += cases.len();
        }
    }

    /// After downtime, before anything is sent: re-plans every case whose plan changed with time
    /// while the daemon was down, or with a notification waiting since before the stale limit,
    /// so that only what still applies is sent. Returns how many were re-planned.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        loop {
            match self.replan_held().await? + self.replan_due().await? {
                0 => return Ok(count),
                n => count += n,
            }
        }
    }

    /// Every case planned at now, with all the events: for reports.
    pub async fn all_plans(&self) -> Result<(Vec<CasePlan>, Vec<Event>), StoreError> {
        let config = self.config();
        let planner = config.planner();
        let now = self.now();
        let (mut plans, mut all) = (Vec::new(), Vec::new());
        let mut after = String::new();
        loop {
            let cases = self.store.cases_after(&after, REPLAN_BATCH).await?;
            let Some(last) = cases.last() else {
                return Ok((plans, all));
            };
            after = last.clone();
            for case in &cases {
                let events = self.store.case_events(case).await?;
                plans.push(planner.plan_case(case, &events, now));
                all.extend(events);
            }
        }
    }

    /// What `changed` would do to every case if it replaced the config in force now: each case
    /// planned with both, compared (see [`crate::preview`]). Reads only; changes nothing.
    pub async fn preview_rules(
        &self,
        changed: &Config,
    ) -> Result<crate::preview::RulesChange, StoreError> {
        let config = self.config();
        let (before, after) = (config.planner(), changed.planner());
        let ids = |c: &Config| c.rules.rules.iter().map(|r| r.id.clone()).collect();
        let now = self.now();
        let mut comparison =
            crate::preview::Comparison::new(&changed.calendar, now, ids(&config), ids(changed));
        let mut after_case = String::new();
        loop {
            let cases = self.store.cases_after(&after_case, REPLAN_BATCH).await?;
            let Some(last) = cases.last() else {
                return Ok(comparison.finish());
            };
            after_case = last.clone();
            for case in &cases {
                let events = self.store.case_events(case).await?;
                comparison.add_case(
                    &before.plan_case(case, &events, now),
                    &after.plan_case(case, &events, now),
                );
            }
        }
    }

    /// Re-plans one case in a transaction of its own.
    /// Re-plans a batch of cases in one transaction: one commit (one sync to disk) for the
    /// batch rather than one per case, which made re-planning after a reload disk-bound. In case
    /// order, so two daemons taking case locks never wait on each other in a cycle.
    async fn replan_cases(
        &self,
        config: &Config,
        cases: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut sorted: Vec<&str> = cases.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let mut tx = self.store.begin().await?;
        for case in sorted {
            replan(&mut tx, config, case, now).await?;
        }
        tx.commit().await
    }

    /// The planner's view of a case from its stored events, or `None` for an unknown case.
    pub async fn case_plan(&self, case: &str) -> Result<Option<CasePlan>, StoreError> {
        let events = self.store.case_events(case).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let config = self.config();
        Ok(Some(config.planner().plan_case(case, &events, self.now())))
    }
}

async fn replan(
    tx: &mut Tx,
    config: &Config,
    case: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.lock_case(case, now).await?;
    let events = tx.case_events(case).await?;
    let planner = config.planner();
    let plan = planner.plan_case(case, &events, now);
    for problem in &plan.problems {
        // Planner problems never hold event values, only ids, rule names and roles. A message
        // nobody can receive is an error: someone must allocate a contact or a fallback.
        if problem.is_error() {
            tracing::error!(case, problem = problem.as_str(), "planning problem");
        } else {
            tracing::warn!(case, problem = problem.as_str(), "planning problem");
        }
    }
    let stored = tx.stored_plan(case).await?;
    let pending = stored.pending_keys();
    let catch_up = CatchUp {
        go_live: tx.first_received(case).await?,
        stale_after: stale_after(config),
    };
    let actions = closing_actions(&planner, &plan, &events);
    tx.write_plan(
        &case_write_with(
            &plan,
            &events,
            &pending,
            catch_up,
            Routing::from_config(config),
            &actions,
        ),
        &stored,
    )
    .await
}

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
    pub fn from_config(config: &'a Config) -> Routing<'a> {
        Routing {
            rules: &config.rules,
            recipients: &config.digest.recipients,
            placement: config.planner().placement(),
        }
    }

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
    // catching up outside them. The latest step of each obligation's ladder due by then is the
    // one that applies when it goes: a stage that falls due at 09:00 takes the place of the
    // earlier one caught up at 08:00.
    let first = routing.placement.place(now, false);
    // Two stages falling at one moment (closures pushed one onto the other's day): the later
    // stage of the ladder is the one that applies.
    let stage = |n: &Notification| {
        let o = routing.rules.rule(&n.rule).and_then(|r| r.obligation());
        let index = |steps: &[crate::rules::Step]| steps.iter().position(|s| s.id == n.step);
        match n.kind {
            NotificationKind::Escalation => (1, o.and_then(|o| index(&o.escalations))),
            _ => (0, o.and_then(|o| index(&o.reminders))),
        }
    };
    let mut latest: HashMap<&str, (DateTime<Utc>, Stage)> = HashMap::new();
    for n in &plan.notifications {
        let going = matches!(
            n.status,
            NotificationStatus::Due | NotificationStatus::Scheduled
        ) && n.send_at <= first;
        if let (true, Some(o)) = (is_ladder(n) && going, n.obligation.as_deref()) {
            let this = (n.send_at, stage(n));
            let t = latest.entry(o).or_insert(this);
            *t = (*t).max(this);
        }
    }

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
            NotificationStatus::Due => match n.kind {
                // Nobody to tell: recorded, not raised as dead again for what is long past.
                _ if matches!(n.recipient, Target::Nobody { .. }) => false,
                NotificationKind::Notice => true,
                NotificationKind::Action => meeting_ahead(&routing.rules.case, data, now),
                NotificationKind::Reminder | NotificationKind::Escalation => {
                    let is_latest = n
                        .obligation
                        .as_deref()
                        .and_then(|o| latest.get(o))
                        .is_some_and(|t| *t == (n.send_at, stage(n)));
                    let deadline_passed = obligation.is_some_and(|(d, _)| *d <= first);
                    is_latest && !(n.kind == NotificationKind::Reminder && deadline_passed)
                }
            },
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
            notification: crate::store::record::encode(&n),
            data: row,
        });
    }
    let retire = pending
        .iter()
        .filter(|k| !wanted.contains(k.as_str()))
        .cloned()
        .collect();

    let obligations = plan
        .obligations
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
        .collect();
    let mut people = BTreeSet::new();
    for n in &plan.notifications {
        if let (Some(obligation), Target::Email { role, email, .. }) = (&n.obligation, &n.recipient)
        {
            people.insert((obligation.clone(), role.clone(), email.to_lowercase()));
        }
    }
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
        obligations,
        people: people
            .into_iter()
            .map(|(o, role, email)| (o, Person { role, email }))
            .collect(),
        outbox,
        retire,
        status: to_json(&plan.status),
    }
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

pub fn stale_after(config: &Config) -> chrono::Duration {
    chrono::Duration::hours(i64::try_from(config.delivery.stale_after_hours).unwrap_or(24))
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
        crate::store::DATA_FROM.to_string(),
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

    fn add(&mut self, other: &GoLiveCounts) {
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
