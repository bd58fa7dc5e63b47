//! The running application: what the API, the scheduler and the signal handlers share
//! ([`Shared`]), and what an admin may ask of it while it runs: reload the rules, preview a
//! reload, send the digests. `daemon` builds it and starts everything around it; `api` and `web`
//! answer with it. Must not start tasks, listen or handle signals (the daemon does).

use crate::config::Config;
use crate::notify::Courier;
use crate::scheduler::{CourierSlot, Progress};
use crate::service::Service;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Mutex, watch};

/// What the API, the scheduler and the signal handlers share.
pub struct Shared {
    pub service: Arc<Service>,
    pub courier: Arc<CourierSlot>,
    pub progress: Arc<Progress>,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// The store is open: migrated, and caught up after downtime. Until then the API answers
    /// `503` and nothing is claimed or sent.
    ready: AtomicBool,
    /// Turns true when the daemon is asked to stop: a request that would wait for the
    /// scheduler (a clock move) answers at once instead.
    stop: watch::Receiver<bool>,
}

impl Shared {
    /// The daemon's shared state, not yet ready (its store not yet open).
    pub fn new(
        service: Arc<Service>,
        courier: Arc<CourierSlot>,
        progress: Arc<Progress>,
        stop: watch::Receiver<bool>,
    ) -> Shared {
        Shared {
            service,
            courier,
            progress,
            reloading: Mutex::new(()),
            ready: AtomicBool::new(false),
            stop,
        }
    }

    /// The store is open: the API starts answering.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Resolves once the daemon is asked to stop.
    pub async fn stopping(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// A reload that was refused, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("reload refused; the previous rules keep running: {}", .problems.join("; "))]
pub struct ReloadError {
    pub problems: Vec<String>,
}

/// Records this daemon's rules as those in force for every daemon sharing the database: the
/// last to start or reload wins, and one that holds other rules stops planning, sending and
/// accepting until it is reloaded with these (see [`crate::service::OtherRules`]).
pub(crate) async fn put_rules_in_force(service: &Service) -> Result<(), crate::store::StoreError> {
    let version = service.config().rules_version.clone();
    let by = format!("{}:{}", hostname(), std::process::id());
    match service
        .store()
        .put_rules_in_force(&version, &by, crate::clock::wall_now())
        .await?
    {
        Some(replaced) => tracing::warn!(
            rules_version = version.as_str(),
            replaced = replaced.as_str(),
            "this daemon's rules are now in force; a daemon sharing the database that holds the \
             previous ones plans, sends and accepts nothing until it is reloaded with these"
        ),
        None => tracing::info!(rules_version = version.as_str(), "rules in force"),
    }
    Ok(())
}

/// This machine's name, for naming the daemon in claims and in the rules in force.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "driftwatch".into())
}

/// Reloads config, calendar, rules and templates from the config file in force. On success the
/// new rules are swapped in and every case re-planned; on failure nothing changes and every
/// problem is logged with its `file:line:column`. Returns the number of cases re-planned.
pub async fn reload(shared: &Shared) -> Result<usize, ReloadError> {
    let _one_at_a_time = shared.reloading.lock().await;
    let old = shared.service.config();
    let refused = |problems: Vec<String>| {
        for p in &problems {
            tracing::error!(problem = p.as_str(), "reload refused");
        }
        tracing::error!(
            problems = problems.len(),
            "reload refused; the previous rules keep running"
        );
        ReloadError { problems }
    };
    let config = Config::load_from(&old.source)
        .map_err(|d| refused(d.0.iter().map(ToString::to_string).collect()))?;
    let courier = Courier::from_config(&config).map_err(|e| refused(vec![e.to_string()]))?;
    if config.database_url != old.database_url || config.api.listen != old.api.listen {
        tracing::warn!("database and api.listen changes take effect at the next restart");
    }
    let rules = config.rules.rules.len();
    shared.service.replace_config(config);
    match shared.courier.write() {
        Ok(mut c) => *c = Arc::new(courier),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(courier),
    }
    if let Err(e) = put_rules_in_force(&shared.service).await {
        tracing::error!(error = %e, "rules reloaded, but not recorded as those in force");
        return Err(ReloadError {
            problems: vec![format!(
                "the rules were loaded but could not be recorded as those in force ({e}); \
                 this daemon plans and sends nothing until a reload succeeds"
            )],
        });
    }
    match shared.service.replan_all().await {
        Ok(cases) => {
            tracing::info!(rules, cases, "rules reloaded and every case re-planned");
            Ok(cases)
        }
        Err(e) => {
            // The new rules are in force; cases not re-planned now are re-planned with their
            // next event or the nightly re-plan.
            tracing::error!(error = %e, "rules reloaded, but re-planning failed part-way");
            Err(ReloadError {
                problems: vec![format!("re-planning failed: {e}")],
            })
        }
    }
}

/// What reloading would do, changing nothing: the config, calendar, rules and templates read
/// again from the config file in force, checked as a reload checks them, and every case planned
/// with them beside the rules in force (see [`crate::preview`]).
pub async fn preview_reload(shared: &Shared) -> Result<crate::preview::RulesChange, ReloadError> {
    let old = shared.service.config();
    let config = Config::load_from(&old.source).map_err(|d| ReloadError {
        problems: d.0.iter().map(ToString::to_string).collect(),
    })?;
    Courier::from_config(&config).map_err(|e| ReloadError {
        problems: vec![e.to_string()],
    })?;
    shared
        .service
        .preview_rules(&config)
        .await
        .map_err(|e| ReloadError {
            problems: vec![format!("the caseload could not be read: {e}")],
        })
}

/// Sends today's digests (nothing on a day that is not a working day). Returns how many went.
pub async fn send_digests(shared: &Shared) -> usize {
    let courier = crate::scheduler::courier_of(&shared.courier);
    match crate::digest::send(&shared.service, &courier).await {
        Ok(sent) => {
            tracing::info!(sent, "daily digests done");
            sent
        }
        Err(e) => {
            tracing::error!(error = %e, "daily digests failed");
            0
        }
    }
}
