//! The scheduler: one loop that sleeps until the next thing is due, or until new work wakes it,
//! then re-plans the cases whose plans changed with time and delivers what is due, oldest first.
//!
//! Notifications wait in lanes ([`Lane`]): urgent ones apart from bulk traffic, email apart from
//! webhooks. Each lane delivers one batch at a time, as a task of its own, while the loop goes on
//! claiming for the other lanes and re-planning; so an urgent notice never waits behind a wave of
//! reminders, and a mail server that stops answering holds up only email, for at most its
//! configured timeout an attempt.
//!
//! Not a poll: each round asks the store for what is due now and for the next moment anything
//! is due, both through indexes, so a round costs what is due, not what is stored. Notifications
//! that fell due while the daemon was down are simply due at start-up and go first. Owns claiming,
//! recording outcomes and retry timing; must not plan (the service does) or build messages (the
//! courier does).

use crate::clock::Clock;
use crate::notify::retry::RetryPolicy;
use crate::notify::{Courier, Outcome};
use crate::service::{OtherRules, Service, stale_after};
use crate::store::{ClaimTerms, Claimed, Lane, StoreError};
use crate::telemetry;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The most notifications one lane has in flight.
const BATCH: usize = 64;

/// The most rounds [`Scheduler::step`] runs.
const MAX_STEP_ROUNDS: usize = 10_000;

/// The longest the scheduler waits before looking at the store again, whatever it expects next:
/// work written by another daemon sharing the database or by a command (`driftwatch import`),
/// and claims whose lease ran out, are noticed within this.
const LOOK_AGAIN: Duration = Duration::from_secs(5);

/// The courier in force; a reload swaps it.
pub type CourierSlot = RwLock<Arc<Courier>>;

pub fn courier_of(slot: &CourierSlot) -> Arc<Courier> {
    match slot.read() {
        Ok(c) => Arc::clone(&c),
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

pub struct Scheduler {
    pub service: Arc<Service>,
    pub courier: Arc<CourierSlot>,
    /// Names this daemon in claims, so a second daemon's claims are told apart.
    pub owner: String,
    pub progress: Arc<Progress>,
}

/// How far the scheduler has got, so whoever moves a manual clock can wait until the scheduler
/// has caught up with the new time, without sleeping.
#[derive(Debug)]
pub struct Progress {
    started: AtomicU64,
    /// The number of the latest round that found nothing left to do.
    settled: watch::Sender<u64>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: AtomicU64::new(0),
            settled: watch::Sender::new(0),
        }
    }
}

impl Progress {
    /// Resolves once a round that started after this call has found nothing left to do. The
    /// caller moves the clock first and wakes the scheduler after calling this.
    pub fn caught_up(&self) -> impl std::future::Future<Output = ()> + use<> {
        let after = self.started.load(Ordering::SeqCst);
        let mut rx = self.settled.subscribe();
        async move {
            // Err only if the scheduler is gone, and then there is nothing to wait for.
            let _ = rx.wait_for(|settled| *settled > after).await;
        }
    }
}

/// Whether `lane` may send at `now`: what is not urgent goes only inside working hours on a day
/// the council is open, even when it is late (after downtime, a retry, or a clock moved by
/// hand), so outside them only the urgent lanes send.
fn lane_open(config: &crate::config::Config, lane: Lane, now: DateTime<Utc>) -> bool {
    lane.is_urgent() || config.planner().placement().place(now, false) <= now
}

/// Sends a lane has in flight at most (`delivery.concurrency`, at most [`BATCH`]).
fn concurrency(config: &crate::config::Config) -> usize {
    config.delivery.concurrency.clamp(1, BATCH)
}

/// The terms of a claim by `owner` at `now` of at most `limit`.
fn claim_terms<'a>(
    config: &'a crate::config::Config,
    owner: &'a str,
    now: DateTime<Utc>,
    limit: usize,
) -> ClaimTerms<'a> {
    let lease =
        chrono::Duration::seconds(i64::try_from(config.delivery.lease_seconds).unwrap_or(300));
    ClaimTerms {
        owner,
        lease_until: now + lease,
        stale: stale_after(config),
        limit: i64::try_from(limit).unwrap_or(1),
        rules: &config.rules_version,
    }
}

/// The lanes delivering now, each as a task of its own that claims more as its sends finish.
#[derive(Default)]
struct Lanes {
    /// Each lane's task ends `true` when it could not record every outcome of what it claimed.
    tasks: JoinSet<bool>,
    by_task: HashMap<tokio::task::Id, Lane>,
    /// Set when the scheduler is stopping: the lanes claim nothing more and finish what they
    /// hold.
    stopping: Arc<AtomicBool>,
}

impl Lanes {
    fn is_busy(&self, lane: Lane) -> bool {
        self.by_task.values().any(|l| *l == lane)
    }

    fn is_empty(&self) -> bool {
        self.by_task.is_empty()
    }

    fn start(
        &mut self,
        lane: Lane,
        batch: impl std::future::Future<Output = bool> + Send + 'static,
    ) {
        let id = self.tasks.spawn(batch).id();
        self.by_task.insert(id, lane);
    }

    /// The lane whose batch just ended, and whether it ended without recording its outcomes
    /// (a panic, or a store that failed it: its claims are put back).
    fn ended(
        &mut self,
        done: Result<(tokio::task::Id, bool), tokio::task::JoinError>,
    ) -> Option<(Lane, bool)> {
        let (id, failed) = match done {
            Ok((id, unrecorded)) => (id, unrecorded),
            Err(e) => {
                // Not the panic's message: it may quote what was being sent.
                tracing::error!(panicked = e.is_panic(), "a lane's deliveries failed");
                (e.id(), true)
            }
        };
        self.by_task.remove(&id).map(|lane| (lane, failed))
    }
}

impl Scheduler {
    /// Runs until `stop` turns true; every batch being delivered finishes (and is recorded)
    /// first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let clock = self.service.clock().clone();
        let mut lanes = Lanes::default();
        let mut other_rules: Option<OtherRules> = None;
        // The lanes stop claiming as soon as the daemon is told to stop, not when the loop next
        // comes round.
        let (stopping, mut told) = (Arc::clone(&lanes.stopping), stop.clone());
        tokio::spawn(async move {
            let _ = told.wait_for(|stop| *stop).await;
            stopping.store(true, Ordering::SeqCst);
        });
        loop {
            while let Some(done) = lanes.tasks.try_join_next_with_id() {
                self.lane_ended(&mut lanes, done).await;
            }
            if *stop.borrow() {
                lanes.stopping.store(true, Ordering::SeqCst);
                break;
            }
            let round = self.progress.started.fetch_add(1, Ordering::SeqCst) + 1;
            let now = clock.now();
            let agreed = self.rules_agreed(&mut other_rules).await;
            match if agreed {
                self.round(now, &mut lanes).await
            } else {
                Ok(false)
            } {
                Ok(true) => continue,
                Ok(false) if lanes.is_empty() => {
                    self.progress.settled.send_replace(round);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        "scheduler: the store failed; trying again in 5 s, or when new work arrives"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        // An event just stored (or the clock moved): the store may be back, and
                        // what it brought should not wait out the pause.
                        _ = self.service.woken() => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
            let (open, opens) = self.open_lanes(now);
            let free: Vec<Lane> = open.into_iter().filter(|l| !lanes.is_busy(*l)).collect();
            let next = match self.service.store().next_wake(&free).await {
                Ok(next) => next.into_iter().chain(opens).min(),
                Err(e) => {
                    tracing::error!(error = %e, "scheduler: cannot read the next due time");
                    Some(now + chrono::Duration::seconds(5))
                }
            };
            // Something due that no free lane could claim: it waits for its case to be planned,
            // which this round would have done. Looked at again in a second rather than at once,
            // so that a row nothing can claim never spins the loop.
            let stuck = next.is_some_and(|t| t <= now) && lanes.is_empty();
            tokio::select! {
                Some(done) = lanes.tasks.join_next_with_id(), if !lanes.is_empty() => {
                    self.lane_ended(&mut lanes, done).await;
                }
                _ = sleep_until(&clock, next.filter(|t| *t > now)), if !stuck && agreed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)), if stuck => {}
                _ = tokio::time::sleep(LOOK_AGAIN) => {}
                _ = self.service.woken() => {}
                _ = stop.changed() => {}
            }
        }
        while let Some(done) = lanes.tasks.join_next_with_id().await {
            self.lane_ended(&mut lanes, done).await;
        }
        tracing::info!("scheduler stopped");
    }

    /// Everything the loop would do at the clock's present moment, run to the end: re-plan,
    /// claim, deliver and record, round after round until a round finds nothing to do, with no
    /// timer and no waiting for one. For tests and tools that step a scheduler through time with
    /// a manual clock, in process. Returns how many rounds did something; nothing is done while
    /// another daemon's rules are in force.
    pub async fn step(&self) -> Result<usize, StoreError> {
        let mut lanes = Lanes::default();
        let mut other_rules = None;
        let mut busy_rounds = 0;
        while self.rules_agreed(&mut other_rules).await {
            let busy = self.round(self.service.now(), &mut lanes).await?;
            while let Some(done) = lanes.tasks.join_next_with_id().await {
                self.lane_ended(&mut lanes, done).await;
            }
            // A round that always finds something would be a fault; a step still ends.
            if !busy || busy_rounds >= MAX_STEP_ROUNDS {
                break;
            }
            busy_rounds += 1;
        }
        Ok(busy_rounds)
    }

    /// Whether the rules in force in the store are this daemon's. When another daemon started
    /// or was reloaded with other rules, this one plans and claims nothing (the claim checks
    /// too, in the same statement) until it is reloaded with the same; said once when it
    /// starts and once when it ends. A store that cannot say is left to the round to report.
    async fn rules_agreed(&self, other: &mut Option<OtherRules>) -> bool {
        let held = self.service.config().rules_version.clone();
        let in_force = match self.service.store().rules_in_force_for_scheduler().await {
            Ok(v) => v,
            Err(_) => return true,
        };
        match (OtherRules::check(&held, in_force), other.is_some()) {
            (Ok(()), false) => true,
            (Ok(()), true) => {
                tracing::info!(
                    rules_version = held.as_str(),
                    "the rules in force are this daemon's again: planning and sending"
                );
                *other = None;
                true
            }
            (Err(now_in_force), _) => {
                if other.as_ref() != Some(&now_in_force) {
                    tracing::error!(
                        rules_version = now_in_force.held.as_str(),
                        rules_in_force = now_in_force.in_force.as_str(),
                        "another daemon sharing the database put other rules in force: this one \
                         plans, sends and accepts nothing until it is reloaded with the same rules, \
                         templates and calendar"
                    );
                }
                *other = Some(now_in_force);
                false
            }
        }
    }

    /// The lanes that may send at `now` (see [`lane_open`]), and when the others open.
    fn open_lanes(&self, now: DateTime<Utc>) -> (Vec<Lane>, Option<DateTime<Utc>>) {
        let config = self.service.config();
        let open = Lane::ALL
            .into_iter()
            .filter(|l| lane_open(&config, *l, now))
            .collect();
        let opens = config.planner().placement().place(now, false);
        (open, (opens > now).then_some(opens))
    }

    /// A lane's batch ended: the lane may claim again. Had the batch ended without recording
    /// its outcomes, its claims wait again (to be sent once their cases are planned again)
    /// rather than for their lease.
    async fn lane_ended(
        &self,
        lanes: &mut Lanes,
        done: Result<(tokio::task::Id, bool), tokio::task::JoinError>,
    ) {
        let Some((lane, true)) = lanes.ended(done) else {
            return;
        };
        let store = self.service.store();
        if let Err(e) = store
            .release_lane(&self.owner, lane, self.service.now())
            .await
        {
            tracing::error!(error = %e, lane = lane.as_str(), "its claims wait out their lease");
        }
    }

    /// Re-plans a batch of the cases whose waiting notifications depend on it, then claims a
    /// batch for every lane not busy delivering one and starts delivering it. A notification is
    /// claimed only once its case's plan holds for it at `now` (see
    /// [`crate::store::Store::claim`]), so what is sent is what the plan says at the moment of
    /// sending. The rest of re-planning (an obligation met by its own deadline action, which no
    /// waiting notification depends on) waits until no lane has anything to deliver: at 09:00,
    /// when thousands of invitations go together, they do not queue behind the bookkeeping of
    /// their obligations. `true` if there was anything to do (so the loop looks again at once).
    async fn round(&self, now: DateTime<Utc>, lanes: &mut Lanes) -> Result<bool, StoreError> {
        let config = self.service.config();
        let store = self.service.store();
        let released = store.release_expired(&self.owner, now).await?;
        if released > 0 {
            tracing::warn!(
                notifications = released,
                "claims whose lease ran out wait again, to be sent once their cases are planned again"
            );
        }
        let held = self.service.replan_held().await?;
        let courier = courier_of(&self.courier);
        let mut claimed_any = false;
        for lane in self.open_lanes(now).0 {
            if lanes.is_busy(lane) {
                continue;
            }
            // As many as go at once: every claimed notification starts sending straight away,
            // so its lease covers its own send, not a wait behind others.
            let terms = claim_terms(&config, &self.owner, now, concurrency(&config));
            let claimed = store.claim(lane, now, &terms).await?;
            if claimed.is_empty() {
                continue;
            }
            claimed_any = true;
            let refill = Refill {
                service: Arc::clone(&self.service),
                config: Arc::clone(&config),
                owner: self.owner.clone(),
                lane,
                stopping: Arc::clone(&lanes.stopping),
                failed: AtomicBool::new(false),
            };
            lanes.start(lane, deliver(Arc::clone(&courier), refill, claimed));
        }
        let due = if claimed_any || !lanes.is_empty() {
            0
        } else {
            self.service.replan_due().await?
        };
        if held + due > 0 {
            tracing::debug!(
                cases = held + due,
                "re-planned cases whose plans changed with time"
            );
        }
        Ok(claimed_any || held + due > 0 || released > 0)
    }
}

/// Sends recorded together at most: one commit (one sync to disk) for many deliveries...
const RECORD_SENT_MAX: usize = 256;

/// ...and none waits longer than this to be recorded (its lease runs for minutes).
const RECORD_SENT_EVERY: Duration = Duration::from_millis(20);

/// What a lane's pipeline needs to claim more as its sends finish.
struct Refill {
    service: Arc<Service>,
    config: Arc<crate::config::Config>,
    owner: String,
    lane: Lane,
    stopping: Arc<AtomicBool>,
    /// Set when a claim failed: it may have claimed rows it could not hand over.
    failed: AtomicBool,
}

impl Refill {
    /// Claims up to `room` more for the lane, at the clock's present moment: nothing once the
    /// scheduler is stopping or the lane has closed (working hours ended), and nothing that the
    /// claim itself would not give the main loop (a case waiting to be planned again, another
    /// daemon's rules in force).
    async fn claim(&self, room: usize) -> Vec<Claimed> {
        let now = self.service.now();
        if self.stopping.load(Ordering::SeqCst) || !lane_open(&self.config, self.lane, now) {
            return Vec::new();
        }
        let terms = claim_terms(&self.config, &self.owner, now, room);
        match self.service.store().claim(self.lane, now, &terms).await {
            Ok(claimed) => claimed,
            Err(e) => {
                // The main loop claims again (and reports a store that stays down); what this
                // claim may have taken is put back when the lane ends.
                tracing::warn!(error = %e, lane = self.lane.as_str(), "claiming more failed");
                self.failed.store(true, Ordering::SeqCst);
                Vec::new()
            }
        }
    }
}

/// Delivers one lane through the courier: see [`deliver_with`]. `true` when some outcome may be
/// unrecorded (the lane's claims are then put back).
async fn deliver(courier: Arc<Courier>, refill: Refill, claimed: Vec<Claimed>) -> bool {
    let policy = RetryPolicy::from_config(&refill.config.delivery);
    let service = Arc::clone(&refill.service);
    let config = Arc::clone(&refill.config);
    let send = |c: Claimed| {
        let (service, courier, config) = (
            Arc::clone(&service),
            Arc::clone(&courier),
            Arc::clone(&config),
        );
        async move { courier.deliver(&config, &c, service.now()).await }
    };
    let concurrency = concurrency(&config);
    let unrecorded = deliver_with(&service, &policy, concurrency, claimed, send, |room| {
        refill.claim(room)
    })
    .await;
    unrecorded || refill.failed.load(Ordering::SeqCst)
}

/// What a notification whose attempt panicked is kept as (dead) says. The panic's own message is
/// not kept: it may quote what was being built.
const PANICKED: &str = "driftwatch failed unexpectedly while building or sending this message \
                        (a bug: see the log under this key)";

/// A lane's sends in flight, and those sent but not yet recorded.
struct Pipeline {
    in_flight: JoinSet<(Outcome, f64)>,
    by_task: HashMap<tokio::task::Id, Claimed>,
    sent: Vec<Claimed>,
    /// When the oldest of `sent` was sent.
    sent_since: Option<std::time::Instant>,
    /// Batches of sent ones being recorded; each ends with whether it could not be, and its
    /// size.
    recording: JoinSet<(bool, usize)>,
    /// How many sent ones are being recorded.
    being_recorded: usize,
    /// Whether some outcome could not be recorded.
    unrecorded: bool,
}

impl Pipeline {
    /// Starts sending one notification, as a task of its own.
    fn start<S, F>(&mut self, service: &Service, c: Claimed, send: &S)
    where
        S: Fn(Claimed) -> F,
        F: std::future::Future<Output = Outcome> + Send + 'static,
    {
        if c.attempts == 1 {
            let lag = (service.now() - c.notification.send_at).num_milliseconds() as f64 / 1000.0;
            telemetry::scheduler_lag(lag);
        }
        let attempt = send(c.clone());
        let task = self.in_flight.spawn(async move {
            let started = std::time::Instant::now();
            let outcome = attempt.await;
            (outcome, started.elapsed().as_secs_f64())
        });
        self.by_task.insert(task.id(), c);
    }

    /// One send ended: sent ones wait to be recorded together; a failure (a panic included) is
    /// recorded at once, as a retry or dead.
    async fn ended(
        &mut self,
        service: &Service,
        policy: &RetryPolicy,
        done: Result<(tokio::task::Id, (Outcome, f64)), tokio::task::JoinError>,
    ) {
        let (id, result) = match done {
            Ok((id, attempt)) => (id, Ok(attempt)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(c) = self.by_task.remove(&id) else {
            return;
        };
        let (outcome, took) = match result {
            Ok((Outcome::Delivered, took)) => {
                telemetry::delivery(c.notification.recipient.channel(), "sent", took);
                self.sent_since.get_or_insert_with(std::time::Instant::now);
                self.sent.push(c);
                return;
            }
            Ok(attempt) => attempt,
            Err(e) => {
                // Keys, case references and rule ids only: the panic's message is not logged.
                tracing::error!(
                    key = c.key.as_str(),
                    case = c.case.as_str(),
                    rule = c.notification.rule.as_str(),
                    panicked = e.is_panic(),
                    "delivering a notification failed unexpectedly"
                );
                let reason = PANICKED.to_string();
                (Outcome::Failed { reason }, 0.0)
            }
        };
        if let Err(e) = record_failure(service, policy, &c, outcome, took).await {
            // Put back when the lane ends: it goes again under its key.
            tracing::error!(error = %e, "could not record a failed delivery");
            self.unrecorded = true;
        }
    }

    /// When what was sent must be recorded by.
    fn record_by(&self) -> Option<std::time::Instant> {
        self.sent_since.map(|t| t + RECORD_SENT_EVERY)
    }

    /// Records everything sent so far, in one transaction, as a task of its own: the lane goes
    /// on claiming and sending meanwhile.
    fn record(&mut self, service: &Arc<Service>) {
        let sent = std::mem::take(&mut self.sent);
        self.sent_since = None;
        if sent.is_empty() {
            return;
        }
        let service = Arc::clone(service);
        self.being_recorded += sent.len();
        self.recording.spawn(async move {
            let failed = record_sent(&service, &sent).await.is_err();
            if failed {
                // Put back when the lane ends: they go again under the same keys.
                tracing::error!("could not record deliveries as sent");
            }
            (failed, sent.len())
        });
    }

    /// A batch's recording ended.
    fn recorded(&mut self, done: Result<(bool, usize), tokio::task::JoinError>) {
        match done {
            Ok((failed, size)) => {
                self.unrecorded |= failed;
                self.being_recorded -= size;
            }
            // A recording task cannot panic but by a bug: say nothing is known of its rows.
            Err(_) => {
                self.unrecorded = true;
                self.being_recorded = 0;
            }
        }
    }

    /// Claimed and not yet recorded: in flight, sent, or being recorded. Never more than the
    /// lane's concurrency, so a daemon killed at any moment sends at most that many again.
    fn unsettled(&self) -> usize {
        self.in_flight.len() + self.sent.len() + self.being_recorded
    }
}

/// Delivers a lane as a pipeline: `claimed` start at once, each attempt (`send`) a task of its
/// own, and as they finish `claim_more(room)` tops the lane up to `concurrency` in flight, until
/// it has nothing more to give. So the lane never waits for its slowest send before the next
/// claim, and each claim's lease covers only its own send (it is claimed when a slot is free,
/// not queued behind others). A notification counts against `concurrency` from its claim until
/// it is recorded, so a daemon killed at any moment sends at most that many again. Sent ones are
/// recorded together (at most [`RECORD_SENT_MAX`], at
/// most [`RECORD_SENT_EVERY`] after the first), each failure where it is known, as a retry or
/// dead. Whatever goes wrong with one message, a panic while building or sending it included,
/// ends with its row recorded (a panic makes it dead, with its reason), never with the row left
/// claimed to be tried again at every lease's end. Returns `true` when some outcome could not be
/// recorded (the store failed): the caller puts the lane's claims back.
async fn deliver_with<S, F, M, MF>(
    service: &Arc<Service>,
    policy: &RetryPolicy,
    concurrency: usize,
    claimed: Vec<Claimed>,
    send: S,
    mut claim_more: M,
) -> bool
where
    S: Fn(Claimed) -> F,
    F: std::future::Future<Output = Outcome> + Send + 'static,
    M: FnMut(usize) -> MF,
    MF: std::future::Future<Output = Vec<Claimed>>,
{
    let mut pipeline = Pipeline {
        in_flight: JoinSet::new(),
        by_task: HashMap::new(),
        sent: Vec::new(),
        sent_since: None,
        recording: JoinSet::new(),
        being_recorded: 0,
        unrecorded: false,
    };
    for c in claimed {
        pipeline.start(service, c, &send);
    }
    // Topped up a quarter of the lane at a time (each claim is a commit of its own), and sends
    // recorded as often.
    let top_up_at = (concurrency / 4).max(1);
    let mut more = true;
    loop {
        let room = concurrency.saturating_sub(pipeline.unsettled());
        if more && room >= top_up_at {
            let claimed = claim_more(room).await;
            // Fewer than asked for: nothing more is waiting now (the main loop looks again).
            more = claimed.len() >= room;
            for c in claimed {
                pipeline.start(service, c, &send);
            }
        }
        if pipeline.in_flight.is_empty() {
            // Nothing else to wait for before recording.
            pipeline.record(service);
            if pipeline.recording.is_empty() {
                break;
            }
        }
        let record_by = pipeline.record_by();
        tokio::select! {
            Some(done) = pipeline.in_flight.join_next_with_id(), if !pipeline.in_flight.is_empty() => {
                pipeline.ended(service, policy, done).await;
            }
            Some(done) = pipeline.recording.join_next(), if !pipeline.recording.is_empty() => {
                pipeline.recorded(done);
            }
            _ = sleep_until_instant(record_by), if record_by.is_some() => {}
        }
        while let Some(done) = pipeline.in_flight.try_join_next_with_id() {
            pipeline.ended(service, policy, done).await;
        }
        while let Some(done) = pipeline.recording.try_join_next() {
            pipeline.recorded(done);
        }
        if pipeline.sent.len() >= top_up_at.min(RECORD_SENT_MAX)
            || pipeline
                .record_by()
                .is_some_and(|t| t <= std::time::Instant::now())
        {
            pipeline.record(service);
        }
    }
    pipeline.unrecorded
}

async fn sleep_until_instant(t: Option<std::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Marks a batch's deliveries sent, in one transaction (one sync to disk), and logs each.
async fn record_sent(service: &Service, sent: &[Claimed]) -> Result<(), StoreError> {
    if sent.is_empty() {
        return Ok(());
    }
    let now = service.now();
    let store = service.store();
    let mut marked: Vec<&Claimed> = sent.iter().collect();
    marked.sort_by(|a, b| (&a.case, &a.key).cmp(&(&b.case, &b.key)));
    if let Err(e) = store.mark_sent(&marked, now).await {
        // On PostgreSQL a re-plan by another daemon can hold some of these rows and the
        // transaction be chosen as a deadlock victim: mark them one by one.
        tracing::warn!(error = %e, "marking a batch sent failed; marking one by one");
        for c in &marked {
            store.mark_sent(&[c], now).await?;
        }
    }
    for c in sent {
        let n = &c.notification;
        tracing::info!(
            key = c.key.as_str(),
            case = c.case.as_str(),
            rule = n.rule.as_str(),
            to = n.recipient.label().as_str(),
            step = n.step.as_str(),
            late = n.late,
            "notification sent"
        );
    }
    Ok(())
}

async fn sleep_until(clock: &Clock, next: Option<DateTime<Utc>>) {
    match next {
        Some(t) => clock.sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Writes a failed attempt to the outbox and the log (keys, case references and rule ids only;
/// never addresses or text): pending again until its retry, or dead.
async fn record_failure(
    service: &Service,
    policy: &RetryPolicy,
    c: &Claimed,
    outcome: Outcome,
    took: f64,
) -> Result<(), StoreError> {
    let now = service.now();
    let n = &c.notification;
    let channel = n.recipient.label();
    let attempts = u32::try_from(c.attempts).unwrap_or(u32::MAX);
    let (reason, after) = match outcome {
        Outcome::Delivered => return Ok(()),
        Outcome::Retry { reason, after } => (reason, Some(after)),
        Outcome::Failed { reason } => (reason, None),
    };
    let retry_at = after.and_then(|after| policy.next_attempt(&c.key, attempts, now, after));
    let result = if retry_at.is_some() { "retry" } else { "dead" };
    telemetry::delivery(n.recipient.channel(), result, took);
    match retry_at {
        Some(at) => {
            service.store().mark_retry(c, at, &reason, now).await?;
            tracing::warn!(
                key = c.key.as_str(),
                case = c.case.as_str(),
                rule = n.rule.as_str(),
                to = channel.as_str(),
                attempts,
                retry_at = %at,
                reason = reason.as_str(),
                "delivery failed; will try again"
            );
        }
        None if after.is_some() => {
            let reason = format!("{reason} (after {attempts} attempts)");
            dead(service, c, &channel, &reason, now).await?
        }
        None => dead(service, c, &channel, &reason, now).await?,
    }
    Ok(())
}

async fn dead(
    service: &Service,
    c: &Claimed,
    channel: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    service.store().mark_dead(c, reason, now).await?;
    tracing::error!(
        key = c.key.as_str(),
        case = c.case.as_str(),
        rule = c.notification.rule.as_str(),
        to = channel,
        reason,
        "notification is dead: it will not be tried again until retried through the API"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::store::{NotificationFilter, OutboxState, Store};

    /// The example case in a real SQLite store, at noon on Thursday 11 February 2027: several
    /// notifications are due.
    async fn example_service(dir: &std::path::Path) -> Service {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(&root.join("config/driftwatch.yaml")).expect("shipped config");
        let url = format!("sqlite:{}?mode=rwc", dir.join("driftwatch.db").display());
        let store = Store::open(&url).await.expect("store");
        let now = "2027-02-11T12:00:00Z".parse().expect("time");
        let service = Service::new(store, config, Clock::manual(now));
        let text = std::fs::read_to_string(root.join("examples/events.jsonl")).expect("events");
        let events = crate::event::parse_json_lines(&text).expect("example events");
        service.ingest(&events).await.expect("ingest");
        while service.replan_due().await.expect("replan") > 0 {}
        service
    }

    #[tokio::test]
    async fn a_panic_while_building_or_sending_one_message_makes_that_row_dead() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let service = Arc::new(example_service(dir.path()).await);
        let store = service.store();
        let now = service.now();
        let stale = stale_after(&service.config());
        let mut claimed = Vec::new();
        for lane in Lane::ALL {
            let lease = now + chrono::Duration::minutes(5);
            claimed.extend(
                store
                    .claim(
                        lane,
                        now,
                        &ClaimTerms {
                            owner: "test",
                            lease_until: lease,
                            stale,
                            limit: 64,
                            rules: "",
                        },
                    )
                    .await
                    .unwrap(),
            );
        }
        assert!(claimed.len() > 1, "several notifications are due");
        let doomed = claimed[0].key.clone();
        let send = |c: Claimed| {
            let doomed = doomed.clone();
            async move {
                if c.key == doomed {
                    panic!("building the message failed");
                }
                Outcome::Delivered
            }
        };
        let policy = RetryPolicy::from_config(&service.config().delivery);
        let claim_more = |_room: usize| async { Vec::new() };
        let unrecorded =
            deliver_with(&service, &policy, 8, claimed.clone(), send, claim_more).await;
        assert!(!unrecorded, "every outcome recorded");

        let state = |state: OutboxState| NotificationFilter {
            state: Some(state),
            limit: 1000,
            ..NotificationFilter::default()
        };
        let dead = store
            .notifications(&state(OutboxState::Dead))
            .await
            .unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].idempotency_key, doomed);
        assert_eq!(dead[0].last_error.as_deref(), Some(PANICKED));
        assert!(
            store
                .notifications(&state(OutboxState::Sending))
                .await
                .unwrap()
                .is_empty()
        );
        let sent = store
            .notifications(&state(OutboxState::Sent))
            .await
            .unwrap();
        assert_eq!(sent.len(), claimed.len() - 1, "the others went");
    }
}
