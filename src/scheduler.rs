//! The scheduler: one loop that sleeps until the next thing is due, or until new work wakes it,
//! then re-plans the cases whose plans changed with time and delivers what is due, oldest first.
//!
//! Not a poll: each round asks the store for what is due now and for the next moment anything
//! is due, both through indexes, so a round costs what is due, not what is stored. Notifications
//! that fell due while the daemon was down are simply due at start-up and go first. Owns claiming,
//! recording outcomes and retry timing; must not plan (the service does) or build messages (the
//! courier does).

use crate::clock::Clock;
use crate::notify::retry::RetryPolicy;
use crate::notify::{Courier, Outcome};
use crate::service::{Service, stale_after};
use crate::store::{Claimed, StoreError};
use crate::telemetry;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The most notifications claimed in one round.
const BATCH: i64 = 64;

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

impl Scheduler {
    /// Runs until `stop` turns true; a round in progress (and every delivery in it) finishes
    /// first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let clock = self.service.clock().clone();
        loop {
            if *stop.borrow() {
                break;
            }
            let round = self.progress.started.fetch_add(1, Ordering::SeqCst) + 1;
            let now = clock.now();
            match self.round(now).await {
                Ok(true) => continue,
                Ok(false) => {
                    self.progress.settled.send_replace(round);
                }
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
            let next = match self.service.store().next_wake().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler: cannot read the next due time");
                    Some(now + chrono::Duration::seconds(5))
                }
            };
            tokio::select! {
                _ = sleep_until(&clock, next) => {}
                _ = self.service.woken() => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    /// Re-plans a batch of the cases whose plans changed with time, then claims and delivers one
    /// batch of what is due. A notification is claimed only once its case's plan as at `now`
    /// is stored (see [`crate::store::Store::claim`]), so what is sent is what the plan says at
    /// the moment of sending. Re-planning goes a batch at a time between deliveries, so at 09:00,
    /// when thousands of cases pass a deadline together, the first messages do not wait for the
    /// last case's bookkeeping. `true` if there was anything to do (so the loop looks again at
    /// once).
    async fn round(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let config = self.service.config();
        let store = self.service.store();
        let lease =
            chrono::Duration::seconds(i64::try_from(config.delivery.lease_seconds).unwrap_or(300));
        let released = store.release_expired(now).await?;
        if released > 0 {
            tracing::warn!(
                notifications = released,
                "claims whose lease ran out wait again, to be sent once their cases are planned again"
            );
        }
        let replanned = self.service.replan_due().await?;
        if replanned > 0 {
            tracing::debug!(
                cases = replanned,
                "re-planned cases whose plans changed with time"
            );
        }
        // As many as go at once: every claimed notification starts sending straight away, so
        // its lease covers its own send, not a wait behind others.
        let batch = i64::try_from(config.delivery.concurrency)
            .unwrap_or(BATCH)
            .clamp(1, BATCH);
        let claimed = store
            .claim(&self.owner, now, now + lease, stale_after(&config), batch)
            .await?;
        if claimed.is_empty() {
            return Ok(replanned > 0 || released > 0);
        }
        let courier = courier_of(&self.courier);
        let policy = RetryPolicy::from_config(&config.delivery);
        let permits = Arc::new(Semaphore::new(config.delivery.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for c in claimed {
            // Taken here, in due order, so deliveries start oldest first.
            let permit = Arc::clone(&permits).acquire_owned().await;
            let (service, courier, config) = (
                Arc::clone(&self.service),
                Arc::clone(&courier),
                Arc::clone(&config),
            );
            tasks.spawn(async move {
                let _permit = permit;
                let now = service.now();
                if c.attempts == 1 {
                    let lag = (now - c.notification.send_at).num_milliseconds() as f64 / 1000.0;
                    telemetry::scheduler_lag(lag);
                }
                let started = std::time::Instant::now();
                let outcome = courier.deliver(&config, &c, now).await;
                let took = started.elapsed().as_secs_f64();
                (c, outcome, took)
            });
        }
        let mut sent = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((c, Outcome::Delivered, took)) => {
                    telemetry::delivery(c.notification.recipient.channel(), "sent", took);
                    sent.push(c);
                }
                Ok((c, outcome, took)) => {
                    if let Err(e) = record_failure(&self.service, &policy, &c, outcome, took).await
                    {
                        // The lease runs out and the notification goes again under its key.
                        tracing::error!(error = %e, "could not record a failed delivery");
                    }
                }
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        if !sent.is_empty() {
            let now = self.service.now();
            let store = self.service.store();
            let mut marked: Vec<&Claimed> = sent.iter().collect();
            marked.sort_by(|a, b| (&a.case, &a.key).cmp(&(&b.case, &b.key)));
            if let Err(e) = store.mark_sent(&marked, now).await {
                // On PostgreSQL a re-plan by another daemon can hold some of these rows and
                // the transaction be chosen as a deadlock victim: mark them one by one. If
                // that fails too, the leases run out and they go again under the same keys.
                tracing::warn!(error = %e, "marking a round sent failed; marking one by one");
                for c in &marked {
                    store.mark_sent(&[c], now).await?;
                }
            }
            for c in &sent {
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
        }
        Ok(true)
    }
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
