//! The service: what happens when an event arrives or time passes. The event is stored, its
//! case re-planned, and the case's obligations and outbox brought in step with the new plan, all
//! in one transaction, so the store never holds an event without its consequences.
//!
//! Owns the configuration in force (swapped whole on reload); the translation from the
//! planner's output to the store's rows is the core's pure [`case_write`], re-exported here.
//! Must not deliver anything or speak HTTP; the scheduler and the API call in.

use crate::clock::Clock;
use crate::config::Config;
use crate::event::{Event, EventError};
use crate::planner::CasePlan;
use crate::store::{Store, StoreError, Tx};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

pub use driftwatch_core::case_write::{
    CaseHistory, CatchUp, GoLiveCounts, Routing, case_write, case_write_with, closing_actions,
    go_live_preview, go_live_table,
};

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
    /// A batch handed over in chunks could not give the next one (a file that changed after
    /// it was checked, or could no longer be read).
    #[error("{0}")]
    Source(String),
}

/// A batch of events too large to hold at once (a whole caseload imported), handed to
/// [`Service::ingest_chunks`] a few cases at a time.
pub trait CaseChunks: Send {
    /// Every case of the batch, in order, each once.
    fn cases(&self) -> &[String];
    /// Starts again from the first case (the transaction is being tried again).
    fn rewind(&mut self);
    /// The events of the next few cases, each case's in one chunk and the chunks in case
    /// order; `None` once all have been given. An error says why the batch cannot be given
    /// whole, and nothing of it is stored.
    fn next_chunk(&mut self) -> Result<Option<Vec<Event>>, String>;
}

/// What [`Service::ingest_chunks`] stored, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Events handed over.
    pub read: usize,
    /// Events stored now (the rest were stored already).
    pub stored: usize,
    pub stored_by_kind: std::collections::BTreeMap<String, usize>,
    /// The cases with an event stored now, in order.
    pub changed: Vec<String>,
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
        self.ingest_with(events.into(), Changed::KeepStored).await
    }

    /// As [`Service::ingest`], with `changed` saying what an id stored with other contents does.
    /// The events are shared, not copied, with the store's writer (an import's can be a
    /// million).
    pub async fn ingest_with(
        &self,
        events: Arc<[Event]>,
        changed: Changed,
    ) -> Result<Vec<Accepted>, IngestError> {
        if let Some(id) = crate::event::conflicting_id(&events) {
            return Err(IngestError::Conflict {
                id: id.to_string(),
                stored: false,
            });
        }
        self.write_retried(|config, now| {
            let events = Arc::clone(&events);
            move |tx: &mut Tx| -> Work<'_, Vec<Accepted>> {
                Box::pin(async move { ingest_in(tx, &config, &events, changed, now).await })
            }
        })
        .await
    }

    /// As [`Service::ingest_with`] for a batch too large to hold at once, such as a whole
    /// caseload imported: `source` hands it over a few cases at a time, still in one
    /// transaction (all of it is stored with its consequences, or none of it). `source` has
    /// checked the batch for ids used twice; what is stored is counted, not listed.
    pub async fn ingest_chunks<S: CaseChunks + 'static>(
        &self,
        source: S,
        changed: Changed,
    ) -> Result<Ingested, IngestError> {
        let source = Arc::new(tokio::sync::Mutex::new(source));
        self.write_retried(|config, now| {
            let source = Arc::clone(&source);
            move |tx: &mut Tx| -> Work<'_, Ingested> {
                Box::pin(async move {
                    // Never contended (one attempt at a time), and a write must await
                    // nothing but the database.
                    let Ok(mut source) = source.try_lock() else {
                        return Err(IngestError::Source(
                            "the events being imported were in use elsewhere".into(),
                        ));
                    };
                    // From the start again when the transaction is tried again.
                    source.rewind();
                    chunks_in(tx, &config, &mut *source, changed, now).await
                })
            }
        })
        .await
    }

    /// Runs an ingest's transaction, made by `work` for the configuration in force and the
    /// present moment, and wakes the scheduler once it is on disk. Two daemons given the same
    /// events in other orders take the same locks in other orders; PostgreSQL ends one
    /// transaction of such a cycle, which is tried again.
    async fn write_retried<R, W, F>(&self, work: W) -> Result<R, IngestError>
    where
        R: Send + 'static,
        W: Fn(Arc<Config>, DateTime<Utc>) -> F,
        F: for<'t> FnOnce(&'t mut Tx) -> Work<'t, R> + Send + 'static,
    {
        let mut attempt = 1;
        loop {
            let (config, now) = (self.config(), self.now());
            match self.store.write(work(config, now)).await {
                Err(IngestError::Store(e)) if e.is_deadlock() && attempt < 3 => attempt += 1,
                Err(e) => return Err(e),
                Ok(done) => {
                    self.wake();
                    return Ok(done);
                }
            }
        }
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
        config: &Arc<Config>,
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

    /// Every case planned at now, one at a time, handed to `each` with its events and, when
    /// `with_go_live`, when driftwatch first received one of them (its go-live; one more read
    /// per case, so only for those who need it): a national caseload is never held in memory at
    /// once.
    pub async fn each_case(
        &self,
        planner: &crate::planner::Planner<'_>,
        with_go_live: bool,
        mut each: impl FnMut(&CasePlan, &[Event], Option<DateTime<Utc>>),
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut after = String::new();
        loop {
            let cases = self.store.cases_after(&after, REPLAN_BATCH).await?;
            let Some(last) = cases.last() else {
                return Ok(());
            };
            after = last.clone();
            for case in &cases {
                let events = self.store.case_events(case).await?;
                let go_live = if with_go_live {
                    self.store.first_received(case).await?
                } else {
                    None
                };
                each(&planner.plan_case(case, &events, now), &events, go_live);
            }
        }
    }

    /// The annual report's figures for obligations due, and events that happened, from `from`
    /// to `to`, as the caseload stands now.
    pub async fn report(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<crate::report::Report, StoreError> {
        let config = self.config();
        let planner = config.planner();
        let mut tally =
            crate::report::Tally::new(&config.rules, &config.calendar, from, to, self.now());
        self.each_case(&planner, true, |plan, events, go_live| {
            tally.add(plan, events, go_live)
        })
        .await?;
        Ok(tally.finish())
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
        self.each_case(&before, false, |plan, events, _| {
            comparison.add_case(plan, &after.plan_case(&plan.case, events, now));
        })
        .await?;
        Ok(comparison.finish())
    }

    /// Re-plans one case in a transaction of its own.
    /// Re-plans a batch of cases in one transaction: one commit (one sync to disk) for the
    /// batch rather than one per case, which made re-planning after a reload disk-bound. In case
    /// order, so two daemons taking case locks never wait on each other in a cycle.
    async fn replan_cases(
        &self,
        config: &Arc<Config>,
        cases: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut sorted = cases.to_vec();
        sorted.sort_unstable();
        let config = Arc::clone(config);
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for case in &sorted {
                        replan(tx, &config, case, now).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
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

/// An ingest's transaction's work.
type Work<'t, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<R, IngestError>> + Send + 't>>;

/// Stores a batch of events and re-plans their cases, in the caller's transaction (see
/// [`Service::ingest`]).
async fn ingest_in(
    tx: &mut Tx,
    config: &Config,
    events: &[Event],
    changed: Changed,
    now: DateTime<Utc>,
) -> Result<Vec<Accepted>, IngestError> {
    let batch_cases: BTreeSet<&str> = events.iter().map(|e| e.case.as_str()).collect();
    take_cases(tx, config, batch_cases, now).await?;
    store_and_replan(tx, config, events, changed, now).await
}

/// [`ingest_in`] a few cases at a time: every case taken first, then each chunk stored and its
/// cases planned again before the next is read.
async fn chunks_in(
    tx: &mut Tx,
    config: &Config,
    source: &mut dyn CaseChunks,
    changed: Changed,
    now: DateTime<Utc>,
) -> Result<Ingested, IngestError> {
    take_cases(tx, config, source.cases().iter().map(String::as_str), now).await?;
    let mut ingested = Ingested::default();
    while let Some(events) = source.next_chunk().map_err(IngestError::Source)? {
        let accepted = store_and_replan(tx, config, &events, changed, now).await?;
        for (event, accepted) in events.iter().zip(&accepted) {
            ingested.read += 1;
            if accepted.status == AcceptedStatus::Stored {
                ingested.stored += 1;
                *ingested
                    .stored_by_kind
                    .entry(event.kind.clone())
                    .or_default() += 1;
                if ingested.changed.last() != Some(&event.case) {
                    ingested.changed.push(event.case.clone());
                }
            }
        }
    }
    Ok(ingested)
}

/// Takes `cases` (in order) for the transaction and checks the rules in force are this
/// daemon's. Every case of a batch is taken first, in case order, before any event is stored:
/// two daemons given overlapping batches never wait on each other in a cycle. (A write first,
/// too: a SQLite transaction that began by reading could not then write if another connection
/// had written meanwhile.)
async fn take_cases<'a>(
    tx: &mut Tx,
    config: &Config,
    cases: impl IntoIterator<Item = &'a str>,
    now: DateTime<Utc>,
) -> Result<(), IngestError> {
    for case in cases {
        tx.lock_case(case, now).await?;
    }
    OtherRules::check(&config.rules_version, tx.rules_in_force().await?)
        .map_err(IngestError::OtherRules)
}

/// Stores `events` (their cases taken) and plans again the cases of those newly stored.
async fn store_and_replan(
    tx: &mut Tx,
    config: &Config,
    events: &[Event],
    changed: Changed,
    now: DateTime<Utc>,
) -> Result<Vec<Accepted>, IngestError> {
    let mut accepted = Vec::with_capacity(events.len());
    let mut cases = BTreeSet::new();
    for (event, stored) in events.iter().zip(tx.append_all(events, now).await?) {
        if stored {
            cases.insert(event.case.as_str());
        } else if changed == Changed::Refuse
            && tx.event(&event.id).await?.is_some_and(|s| s != *event)
        {
            // An error: nothing of the batch is kept.
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
        replan(tx, config, case, now).await?;
    }
    Ok(accepted)
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
            config.routing(),
            &actions,
        ),
        &stored,
    )
    .await
}

pub fn stale_after(config: &Config) -> chrono::Duration {
    chrono::Duration::hours(i64::try_from(config.delivery.stale_after_hours).unwrap_or(24))
}
