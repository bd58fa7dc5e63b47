//! `driftwatch run`: wires the store, the service, the scheduler, the courier, the API and the
//! periodic jobs together, and handles signals.
//!
//! `SIGHUP` reloads the config, calendar, rules and templates: a valid change is swapped in and
//! every case re-planned; an invalid one is logged with its `file:line:column` and the old rules
//! keep running. `SIGTERM` (or Ctrl-C) stops taking requests, answers a clock move still waiting
//! for the scheduler `503` at once, cuts requests still running after
//! [`crate::serve::DRAIN_LIMIT`], lets the deliveries in flight finish, and returns so the
//! process exits 0. Owns start-up and shut-down order; must not hold domain logic.
//!
//! The API listens before the database is asked anything: a daemon started before its database
//! (a PostgreSQL server still booting, a network not yet up) waits for it, answering `503`
//! meanwhile, instead of exiting and running into its supervisor's restart limit.

use crate::api;
use crate::app::{Shared, hostname, put_rules_in_force, reload, send_digests};
use crate::clock::Clock;
use crate::config::{Config, LogConfig, LogFormat};
use crate::notify::Courier;
use crate::scheduler::{Progress, Scheduler};
use crate::service::Service;
use crate::store::{Backend, Store};
use chrono::Timelike;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_cron_scheduler::{Job, JobScheduler};

/// SHA-256 of `dw_example_token_change_me`, the example config's token.
const EXAMPLE_TOKEN_SHA256: &str =
    "bccea538b6b676b18c94de3ad07f5960004a65efdbf2823efacd2fba72638a99";

/// The longest pause between two attempts to reach the database at start-up.
const MAX_STORE_PAUSE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Courier(#[from] crate::notify::CourierError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("periodic jobs: {0}")]
    Cron(#[from] tokio_cron_scheduler::JobSchedulerError),
    #[error("the scheduler stopped unexpectedly; see the log")]
    SchedulerFailed,
    #[error(
        "another driftwatch daemon{} is running on {database}: one daemon per SQLite file (more than one needs PostgreSQL)",
        .pid.map(|p| format!(" (process {p})")).unwrap_or_default()
    )]
    AnotherDaemon { database: String, pid: Option<u32> },
    #[error("cannot take the lock {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

/// Holds a SQLite database for this daemon alone while it lives: an exclusive lock on
/// `FILE-daemon.lock` beside the database, released by the system when the process ends however
/// it ends. Why: on SQLite the daemon assumes it is the only one (a claim found at start-up was
/// cut short by a crash and is sent again at once, and claims are never leased against another
/// daemon), so a second daemon on the same file would send what the first is sending. Other
/// commands (`import`, `report`) may run beside it: SQLite orders their writes.
struct OneDaemon {
    _file: std::fs::File,
}

impl OneDaemon {
    fn take(database: &str) -> Result<OneDaemon, DaemonError> {
        use std::io::{Read, Seek, Write};
        let path = format!("{database}-daemon.lock");
        let failed = |source| DaemonError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(DaemonError::AnotherDaemon {
                    database: database.to_string(),
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        // Who holds it, for the message a second daemon gives.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(failed)?;
        Ok(OneDaemon { _file: file })
    }
}

/// Sets up logging once per process: human-readable or JSON lines on standard error.
/// `RUST_LOG` overrides the configured level.
pub fn init_logging(log: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    // The cron library narrates its own start-up at info; only its warnings are worth keeping.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{},tokio_cron_scheduler=warn", log.level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Options of `driftwatch run` beyond the config file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub clock: Clock,
}

/// Runs the daemon until `SIGTERM` or Ctrl-C.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| config.database_url.clone());
    if crate::telemetry::handle().is_none() {
        tracing::warn!("metrics are not recorded: another recorder was installed first");
    }
    // Where everything is, for whoever started it.
    tracing::info!(
        config = %config.source.describe(),
        rules = %config.rules_dir.display(),
        templates = %config.templates_dir.display(),
        bank_holidays = %config.bank_holidays_path.display(),
        database = %crate::config::service::describe_database(&url),
        email = %match &config.email.smtp {
            Some(smtp) => format!("SMTP {}", smtp.host),
            None => format!(".eml files in {}", config.email.spool.display()),
        },
        "driftwatch configured"
    );
    // Nothing is asked of the database yet: see `open_store`.
    let store = Store::connect(&url)?;
    let _one_daemon = store.sqlite_file().map(OneDaemon::take).transpose()?;
    let courier = Courier::from_config(&config)?;
    let listen = options.listen.unwrap_or(config.api.listen);
    if config
        .api
        .tokens
        .iter()
        .any(|t| t.sha256.eq_ignore_ascii_case(EXAMPLE_TOKEN_SHA256))
    {
        tracing::warn!(
            "the README's example API token is configured; replace it (driftwatch token new) before going live"
        );
    }
    if config.api.tokens.is_empty() {
        tracing::warn!(
            "no API tokens are configured: every API call except /healthz will be refused"
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared::new(
        Arc::new(Service::new(store, config, options.clock.clone())),
        Arc::new(RwLock::new(Arc::new(courier))),
        Arc::new(Progress::default()),
        stop_rx.clone(),
    ));

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(DaemonError::Serve)?;
    // Printed (not logged) so a supervisor or test can read the port when it asked for port 0.
    println!("driftwatch listening on http://{bound}");
    tracing::info!(address = %bound, "API listening");

    let scheduler = Scheduler {
        service: Arc::clone(&shared.service),
        courier: Arc::clone(&shared.courier),
        owner: format!("{}:{}:{}", hostname(), std::process::id(), bound.port()),
        progress: Arc::clone(&shared.progress),
    };
    // If the scheduler ever ends (a panic included), the whole daemon stops, so a supervisor
    // restarts it rather than an API accepting events nobody will act on. Nothing is claimed
    // before the store is open.
    let stop_all = StopOnDrop(stop_tx.clone());
    let opening = Arc::clone(&shared);
    let scheduler = tokio::spawn(async move {
        let _stop_all = stop_all;
        let mut stop = stop_rx.clone();
        if open_store(&opening, &mut stop).await? {
            scheduler.run(stop_rx).await;
        }
        Ok::<(), DaemonError>(())
    });
    let mut cron = periodic_jobs(&shared).await?;
    let signals = tokio::spawn(handle_signals(Arc::clone(&shared), stop_tx.clone()));
    let prober = tokio::spawn(watch_database(Arc::clone(&shared)));

    let app = api::router(Arc::clone(&shared));
    crate::serve::serve(
        listener,
        app,
        crate::serve::Limits::for_this_process(),
        stop_tx.subscribe(),
    )
    .await;

    tracing::info!("stopping: finishing deliveries in flight");
    let _ = stop_tx.send(true);
    let outcome = match scheduler.await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::error!(error = %e, "the scheduler ended abnormally; stopping");
            Err(DaemonError::SchedulerFailed)
        }
    };
    signals.abort();
    prober.abort();
    if let Err(e) = cron.shutdown().await {
        tracing::warn!(error = %e, "periodic jobs did not stop cleanly");
    }
    shared.service.store().close().await;
    outcome?;
    tracing::info!("driftwatch stopped");
    Ok(())
}

/// Asks a PostgreSQL server every second whether it answers (SQLite, a file, always does), so
/// that while it does not the API answers `503` at once, not after waiting out a connection
/// attempt; said once when it stops answering and once when it is back.
async fn watch_database(shared: Arc<Shared>) {
    if shared.service.store().backend() != Backend::Postgres {
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match shared.service.store().probe().await {
            Some(Ok(())) => tracing::info!("the database answers again"),
            Some(Err(e)) => tracing::warn!(
                error = %e,
                "the database does not answer; the API answers 503 at once until it does"
            ),
            None => {}
        }
    }
}

/// Opens the store for the daemon: the migrations, the claims a crash left behind (SQLite) and
/// the catch-up after downtime, then marks the daemon ready. While the database cannot be
/// reached it waits, trying again after a pause that grows to half a minute, and the API answers
/// `503`; a failure only an operator can fix (a wrong password, no such database, migrations that
/// do not match it) is returned, and the daemon stops with it. `false` when asked to stop first.
async fn open_store(
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, DaemonError> {
    let mut pause = Duration::from_secs(1);
    loop {
        let attempt = tokio::select! {
            attempt = prepare_store(shared) => attempt,
            _ = stop.wait_for(|s| *s) => return Ok(false),
        };
        match attempt {
            Ok(()) => {
                shared.mark_ready();
                return Ok(true);
            }
            // The error names the failure, never the URL (which may carry a password).
            Err(e) if !e.needs_operator() => tracing::warn!(
                error = %e,
                retry_in_seconds = pause.as_secs(),
                "cannot reach the database; waiting for it, and answering 503 meanwhile"
            ),
            Err(e) => {
                tracing::error!(error = %e, "the database refused driftwatch; stopping");
                return Err(e.into());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return Ok(false),
        }
        pause = (pause * 2).min(MAX_STORE_PAUSE);
    }
}

/// One attempt at what [`open_store`] does; each step may be repeated.
async fn prepare_store(shared: &Shared) -> Result<(), crate::store::StoreError> {
    let service = &shared.service;
    let store = service.store();
    store.migrate().await?;
    if store.backend() == Backend::Sqlite {
        let released = store.release_claims(service.now()).await?;
        if released > 0 {
            tracing::warn!(
                notifications = released,
                "sending again the notifications a previous run was sending when it stopped"
            );
        }
    }
    let config = service.config();
    let events = store.count_events().await?;
    tracing::info!(
        events,
        rules = config.rules.rules.len(),
        email = crate::scheduler::courier_of(&shared.courier)
            .describe()
            .as_str(),
        database = match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        },
        manual_clock = service.clock().is_manual(),
        "driftwatch starting"
    );
    put_rules_in_force(service).await?;
    // Before anything is sent: what waited through downtime is re-planned, so only what still
    // applies goes.
    let caught_up = service.catch_up().await?;
    if caught_up > 0 {
        tracing::info!(
            cases = caught_up,
            "catching up after downtime: stale reminders and escalations recorded as superseded"
        );
    }
    Ok(())
}

/// Asks everything to stop when dropped.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

#[cfg(unix)]
async fn handle_signals(shared: Arc<Shared>, stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // Errors are logged inside; the old rules keep running.
                let _ = reload(&shared).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stop requested");
    let _ = stop.send(true);
}

#[cfg(not(unix))]
async fn handle_signals(_shared: Arc<Shared>, stop: watch::Sender<bool>) {
    let _ = tokio::signal::ctrl_c().await;
    let _ = stop.send(true);
}

/// The jobs that run by the calendar rather than by the outbox, in Europe/London time:
/// - 06:00 daily: warn when the bank-holiday data runs out within a year;
/// - `digest.at` (08:30) daily: the digests, on working days;
/// - 02:30 daily: re-plan every case (a safety net: obligation states and anything a missed
///   wake-up left behind), and report dead notifications.
///
/// Deadlines are never kept here: they live in the store, so a restart loses nothing.
async fn periodic_jobs(shared: &Arc<Shared>) -> Result<JobScheduler, DaemonError> {
    let cron = JobScheduler::new().await?;
    let s = Arc::clone(shared);
    cron.add(Job::new_async_tz(
        "0 0 6 * * *",
        chrono_tz::Europe::London,
        move |_, _| {
            let s = Arc::clone(&s);
            Box::pin(async move { check_bank_holidays(&s) })
        },
    )?)
    .await?;
    let s = Arc::clone(shared);
    cron.add(Job::new_async_tz(
        "0 30 2 * * *",
        chrono_tz::Europe::London,
        move |_, _| {
            let s = Arc::clone(&s);
            Box::pin(async move { housekeeping(&s).await })
        },
    )?)
    .await?;
    let s = Arc::clone(shared);
    let at = shared.service.config().digest.at;
    cron.add(Job::new_async_tz(
        format!("0 {} {} * * *", at.minute(), at.hour()).as_str(),
        chrono_tz::Europe::London,
        move |_, _| {
            let s = Arc::clone(&s);
            Box::pin(async move {
                send_digests(&s).await;
            })
        },
    )?)
    .await?;
    cron.start().await?;
    check_bank_holidays(shared);
    Ok(cron)
}

fn check_bank_holidays(shared: &Shared) {
    let config = shared.service.config();
    let today = crate::localtime::date_of(shared.service.now());
    let until = config.calendar.published_until();
    if until
        < today
            .checked_add_months(chrono::Months::new(12))
            .unwrap_or(today)
    {
        tracing::warn!(
            file = %config.bank_holidays_path.display(),
            published_until = %until,
            "the bank-holiday data runs out within a year; later years use projected holidays. \
             Replace it with the government's latest bank-holidays.json and reload"
        );
    }
}

async fn housekeeping(shared: &Shared) {
    match shared.service.replan_all().await {
        Ok(cases) => tracing::info!(cases, "nightly re-plan done"),
        Err(e) => tracing::error!(error = %e, "nightly re-plan failed"),
    }
    let filter = crate::store::NotificationFilter {
        state: Some(crate::store::OutboxState::Dead),
        case: None,
        key: None,
        limit: 10_000,
    };
    match shared.service.store().notifications(&filter).await {
        Ok(dead) if !dead.is_empty() => tracing::warn!(
            dead = dead.len(),
            "notifications are dead; see GET /v1/notifications?state=dead and retry them once fixed"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot count dead notifications"),
    }
}
