//! The scale benchmarks behind `BENCHMARKS.md`: the real `driftwatch` binary (release build) on a
//! temporary SQLite file or a fresh PostgreSQL database, fed a synthetic caseload, with a real
//! SMTP server and a real HTTP receiver on loopback. Every figure is printed beside the limit it
//! is measured against in the same run: the raw insert rate of the same rows into the same
//! database, and the rate of a plain SMTP or HTTP client against the same receiver.
//!
//! Run with `cargo bench --bench scale -- COMMAND` (see `--help`); PostgreSQL runs need
//! `DRIFTWATCH_TEST_POSTGRES_URL`, as the tests do.

#[path = "../../tests/it/support/mod.rs"]
mod support;
mod synth;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use driftwatch::clock::Clock;
use driftwatch::config::Config;
use driftwatch::event::Event;
use driftwatch::service::Service;
use driftwatch::store::Store;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use support::{Daemon, Mailbox, Receiver, Setup, TOKEN};

#[derive(Parser)]
#[command(about = "driftwatch's scale benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic caseload as JSON Lines (for trying driftwatch, or importing).
    Generate {
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How far back children entered care (about 11 events a case at 0.5, 21 at 1, 40 at 3).
        #[arg(long, default_value_t = 1.0)]
        years: f64,
        /// Instead, the wave's cases: each with a review invitation due at 09:00 on 1 March 2027.
        #[arg(long)]
        wave: bool,
    },
    /// Events per second through `POST /v1/events`, beside the raw insert rate.
    Ingest {
        #[arg(long, default_value_t = 2000)]
        cases: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
        backend: Backend,
        /// Events per request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Clients posting at once (each with its own cases, in time order).
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// For each size: `driftwatch import` (beside the raw insert rate), re-planning every case
    /// (as after a rules reload), start-up time, and resident memory after a working day.
    Scale {
        /// Numbers of cases, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How far back children entered care.
        #[arg(long, default_value_t = 1.0)]
        years: f64,
        #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
        backend: Backend,
    },
    /// The 09:00 wave: this many notifications fall due at one moment; how long until all are
    /// handed to the transport, beside a plain client's rate against the same receiver.
    Wave {
        #[arg(long, default_value_t = 50_000)]
        notifications: usize,
        #[arg(long, value_enum, default_value_t = Transport::Smtp)]
        transport: Transport,
        #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
        backend: Backend,
        /// `delivery.concurrency`, and the plain client's (the shipped config has 8).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[derive(Clone, Copy, ValueEnum, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, ValueEnum, Debug, PartialEq)]
enum Transport {
    Smtp,
    Webhook,
}

/// The shipped config's delivery settings.
const DELIVERY: &str = "{max_attempts: 8, first_retry_seconds: 60, max_retry_seconds: 21600, concurrency: 8, lease_seconds: 300}";

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Generate {
                cases,
                seed,
                years,
                wave: false,
            } => generate(cases, seed, years),
            Command::Generate {
                cases, wave: true, ..
            } => {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for case in synth::wave(cases, wave_moments()?.1, true) {
                    for event in case {
                        writeln!(out, "{event}")?;
                    }
                }
                out.flush()?;
                Ok(())
            }
            Command::Ingest {
                cases,
                seed,
                backend,
                batch,
                clients,
            } => ingest(cases, seed, backend, batch.max(1), clients.max(1)).await,
            Command::Scale {
                sizes,
                seed,
                years,
                backend,
            } => {
                for cases in sizes {
                    let shape = synth::Shape {
                        years,
                        ..synth::Shape::new(cases, seed)
                    };
                    scale(&shape, backend).await?;
                }
                Ok(())
            }
            Command::Wave {
                notifications,
                transport,
                backend,
                concurrency,
            } => wave(notifications, transport, backend, concurrency.max(1)).await,
        }
    })
}

fn generate(cases: usize, seed: u64, years: f64) -> Result<()> {
    let shape = synth::Shape {
        years,
        ..synth::Shape::new(cases, seed)
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for case in 0..cases {
        for event in synth::case(&shape, case) {
            writeln!(out, "{event}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A setup on the backend asked for, with the shipped delivery settings.
async fn setup(backend: Backend) -> Result<Setup> {
    let mut setup = Setup::new();
    setup.delivery = DELIVERY.into();
    if let Backend::Postgres = backend {
        if std::env::var("DRIFTWATCH_TEST_POSTGRES_URL").is_err() {
            bail!(
                "DRIFTWATCH_TEST_POSTGRES_URL must name a PostgreSQL server for --backend postgres"
            );
        }
        setup.database_url = support::fresh_postgres().await;
    }
    Ok(setup)
}

/// A second, empty database on the same backend, for the raw insert rate.
async fn raw_database(backend: Backend, setup: &Setup) -> String {
    match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            setup.dir.path().join("raw.db").display()
        ),
        Backend::Postgres => support::fresh_postgres().await,
    }
}

fn events(values: &[Value]) -> Result<Vec<Event>> {
    values
        .iter()
        .map(|v| Event::from_value(v, "synthetic").map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
}

/// The raw insert rate: the same rows, through the same `INSERT` (driftwatch's `append_all`), in
/// transactions of `batch`, `clients` at once, with no planning.
async fn raw_insert(url: &str, streams: Vec<Vec<Event>>, batch: usize) -> Result<f64> {
    let store = Store::open(url).await?;
    let now = synth::default_as_of();
    let total: usize = streams.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for stream in streams {
        let store = store.clone();
        tasks.spawn(async move {
            for chunk in stream.chunks(batch) {
                let chunk = chunk.to_vec();
                store
                    .write(move |tx| {
                        Box::pin(async move {
                            tx.append_all(&chunk, now).await?;
                            Ok::<_, driftwatch::store::StoreError>(())
                        })
                    })
                    .await?;
            }
            Ok::<_, driftwatch::store::StoreError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let took = started.elapsed().as_secs_f64();
    store.close().await;
    Ok(total as f64 / took)
}

/// Each client's events: its cases (every `clients`-th) merged in time order.
fn streams(caseload: &[Vec<Value>], clients: usize) -> Vec<Vec<Value>> {
    let mut streams = vec![Vec::new(); clients];
    for (i, case) in caseload.iter().enumerate() {
        streams[i % clients].extend(case.iter().cloned());
    }
    for s in &mut streams {
        s.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    }
    streams
}

async fn ingest(
    cases: usize,
    seed: u64,
    backend: Backend,
    batch: usize,
    clients: usize,
) -> Result<()> {
    let shape = synth::Shape::new(cases, seed);
    let caseload = synth::caseload(&shape);
    let streams = streams(&caseload, clients);
    let total: usize = streams.iter().map(Vec::len).sum();
    let setup = setup(backend).await?;
    let daemon = start(&setup, shape.as_of);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for stream in streams.clone() {
        let (http, url) = (http.clone(), format!("{}/v1/events", daemon.base));
        tasks.spawn(async move {
            for chunk in stream.chunks(batch) {
                let res = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&chunk)?)
                    .send()
                    .await?;
                let status = res.status();
                if !status.is_success() {
                    bail!("{status}: {}", res.text().await.unwrap_or_default());
                }
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    daemon.terminate();
    let raw_streams = streams
        .iter()
        .map(|s| events(s))
        .collect::<Result<Vec<_>>>()?;
    let raw = raw_insert(&raw_database(backend, &setup).await, raw_streams, batch).await?;
    println!(
        "| ingest via HTTP ({backend:?}, {cases} cases, {total} events, {batch} per request, {clients} clients) | {rate:.0} events/s | raw insert {raw:.0} rows/s | {:.0}% (target ≥ 50%) |",
        100.0 * rate / raw
    );
    Ok(())
}

async fn scale(shape: &synth::Shape, backend: Backend) -> Result<()> {
    let cases = shape.cases;
    let setup = setup(backend).await?;
    let file = setup.dir.path().join("caseload.jsonl");
    // Written as it is generated, not held: the child's peak resident memory (`wait4`) counts
    // the benchmark's own at the moment it starts `import` (the kernel carries the parent's
    // high-water mark over a fork and exec), so a caseload held here would be counted as
    // import's. The raw insert reads the file back afterwards.
    let mut total = 0;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for case in 0..cases {
            for event in synth::case(shape, case) {
                writeln!(out, "{event}")?;
                total += 1;
            }
        }
        out.flush()?;
    }
    let config = setup.write();

    // import, one transaction, beside the raw insert of the same rows in one transaction.
    let started = Instant::now();
    let (status, import_peak) = run_measured(
        std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .arg("--config")
            .arg(&config)
            .arg("import")
            .arg(&file)
            .args(["--now", &rfc(shape.as_of)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )?;
    if !status.success() {
        bail!("driftwatch import failed: {status}");
    }
    let import = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "| `import` peak resident memory ({backend:?}, {cases} cases, {total} events) | {} | | target < 500 MB at 100,000 cases |",
        import_peak.map_or("not measured here".to_string(), |mb| format!("{mb:.0} MB"))
    );
    let values = std::fs::read_to_string(&file)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()?;
    let mut sorted = events(&values)?;
    drop(values);
    sorted.sort_by(|a, b| (&a.case, a.at).cmp(&(&b.case, b.at)));
    let raw = raw_insert(
        &raw_database(backend, &setup).await,
        vec![sorted],
        usize::MAX,
    )
    .await?;
    println!(
        "| import ({backend:?}, {cases} cases, {total} events) | {import:.0} events/s | raw insert {raw:.0} rows/s | {:.0}% (target ≥ 50%) |",
        100.0 * import / raw
    );

    // Re-planning every case with the rules in force, as a reload does.
    let replan = {
        let loaded = Config::load(&config).map_err(|d| anyhow::anyhow!("{d}"))?;
        let store = Store::open(&loaded.database_url).await?;
        let service = Service::new(store, loaded, Clock::manual(shape.as_of));
        let started = Instant::now();
        let n = service.replan_all().await?;
        let took = started.elapsed().as_secs_f64();
        service.store().close().await;
        if n != cases {
            bail!("re-planned {n} cases, expected {cases}");
        }
        took
    };
    println!(
        "| re-plan every case after a reload ({backend:?}, {cases} cases) | {replan:.1} s | {:.0} cases/s | |",
        cases as f64 / replan
    );

    // Start-up: from exec to a ready API.
    let started = Instant::now();
    let daemon = start(&setup, shape.as_of);
    let startup = started.elapsed().as_secs_f64();
    let after_start = memory(daemon.pid())?;

    // A rules reload in the running daemon (every case re-planned, as after an admin changes a
    // rule), while an IRO's page of the overdue list is read over and over: each read's time is
    // how the API answers during a reload.
    let (reload, reads) = reload_under_reads(&daemon).await?;
    println!(
        "| re-plan every case on a reload, in the daemon ({backend:?}, {cases} cases) | {reload:.1} s | {:.0} cases/s | target ≥ 2,000 cases/s |",
        cases as f64 / reload
    );
    println!(
        "| API reads during that reload ({backend:?}, {} reads of 100 overdue obligations) | p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms | | target p99 < 100 ms |",
        reads.len(),
        percentile(&reads, 0.50),
        percentile(&reads, 0.99),
        percentile(&reads, 1.0)
    );

    // A working day: the morning's notifications go out, IROs look at what is overdue.
    let evening = shape.as_of + Duration::hours(11);
    settle(&daemon, evening).await?;
    for _ in 0..5 {
        daemon.get("/v1/obligations?state=overdue&limit=1000").await;
    }
    let metrics = daemon.get("/metrics").await;
    let after_day = memory(daemon.pid())?;
    // From the outbox gauge: the notifications API pages, and a day can send more than a page.
    let sent = metrics
        .as_str()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("driftwatch_outbox{state=\"sent\"} "))
        })
        .unwrap_or("0")
        .trim()
        .to_string();
    daemon.terminate();
    println!("| start-up ({backend:?}, {cases} cases, {total} events) | {startup:.2} s | | |");
    println!(
        "| resident memory ({backend:?}, {cases} cases, {total} events) | {:.0} MB after start, {:.0} MB after a working day ({sent} sent), peak {:.0} MB | | target < 100 MB at 100,000 cases |",
        after_start.0, after_day.0, after_day.1
    );
    Ok(())
}

/// A reload of the running daemon's rules, timed, with the overdue list read again and again
/// meanwhile: (the reload's seconds, each read's milliseconds, sorted).
async fn reload_under_reads(daemon: &Daemon) -> Result<(f64, Vec<f64>)> {
    let done = std::sync::atomic::AtomicBool::new(false);
    let reload = async {
        let started = Instant::now();
        let answer = daemon
            .request(reqwest::Method::POST, "/v1/admin/reload", Some(TOKEN), None)
            .await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (answer, started.elapsed().as_secs_f64())
    };
    let reads = async {
        let mut took = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let started = Instant::now();
            let (status, _) = daemon
                .request(
                    reqwest::Method::GET,
                    "/v1/obligations?state=overdue&limit=100",
                    Some(TOKEN),
                    None,
                )
                .await;
            took.push((status, started.elapsed().as_secs_f64() * 1000.0));
        }
        took
    };
    let (((status, body), seconds), reads) = tokio::join!(reload, reads);
    if status != 200 || body["reloaded"] != true {
        bail!("the reload failed: {status} {body}");
    }
    if let Some((status, _)) = reads.iter().find(|(status, _)| *status != 200) {
        bail!("a read during the reload answered {status}");
    }
    let mut millis: Vec<f64> = reads.into_iter().map(|(_, ms)| ms).collect();
    millis.sort_by(f64::total_cmp);
    Ok((seconds, millis))
}

/// The `q` quantile (0 to 1) of sorted figures; 0 when there are none.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n - 1) as f64 * q).round() as usize],
    }
}

/// Runs `command` to its end: its exit status and, where the platform gives it, its peak
/// resident memory in MB (the kernel's own account of the child, from `wait4`).
fn run_measured(
    command: &mut std::process::Command,
) -> Result<(std::process::ExitStatus, Option<f64>)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::ExitStatusExt;
        let child = command.spawn()?;
        let pid = libc::pid_t::try_from(child.id())?;
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid one; wait4 fills it and the status for this
        // child of ours, which `child` (dropped unwaited) never waits for again.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
            bail!("waiting for the child: {}", std::io::Error::last_os_error());
        }
        // ru_maxrss is in kilobytes on Linux.
        Ok((
            std::process::ExitStatus::from_raw(status),
            Some(usage.ru_maxrss as f64 / 1024.0),
        ))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        Ok((command.status()?, None))
    }
}

/// (resident, peak resident) in MB, from `/proc`.
fn memory(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} in /proc/{pid}/status"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The wave, Monday 1 March 2027 at 09:00 in London (GMT), and the meetings ten working days
/// later.
fn wave_moments() -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let at = Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).single();
    let meeting = Utc.with_ymd_and_hms(2027, 3, 15, 9, 0, 0).single();
    at.zip(meeting).context("the wave's moments")
}

/// The daemon, ready, however long a large database takes (the tests' helper allows 60 s).
fn start(setup: &Setup, now: DateTime<Utc>) -> Daemon {
    let daemon = Daemon::start_listening(setup, &rfc(now));
    daemon.wait_ready(std::time::Duration::from_secs(3600));
    daemon
}

/// The wave's only rule: the invitations of the shipped rules without their reminder, so that
/// nothing but the wave is due (the shipped reminder two working days before would go at
/// going live and flood the measurement). `TO` is the participants or the webhook.
const WAVE_RULE: &str = r#"
rules:
  - id: review_invitations
    title: Invitations and consultation papers sent
    source: "Benchmark: the 09:00 wave"
    on: review_scheduled
    key: data.review_id
    due: {from: data.meeting_at, offset: -10 working days}
    met_by: [invitations_sent]
    at_deadline:
      - send: {to: [TO], template: invitation}
"#;

async fn wave(
    count: usize,
    transport: Transport,
    backend: Backend,
    concurrency: usize,
) -> Result<()> {
    let (at, meeting) = wave_moments()?;
    let mut setup = setup(backend).await?;
    setup.delivery = DELIVERY.replace("concurrency: 8", &format!("concurrency: {concurrency}"));
    let mailbox = Mailbox::start();
    let receiver = Receiver::start().await;
    let to = match transport {
        Transport::Smtp => {
            setup.smtp_port = Some(mailbox.port);
            "\"list:data.participants\""
        }
        Transport::Webhook => {
            setup.webhook_url = Some(receiver.url.clone());
            "\"webhook:teams\""
        }
    };
    // The rules folder: the shipped vocabulary and the wave's rule alone.
    let rules = setup.rules_dir();
    std::fs::create_dir_all(&rules)?;
    std::fs::copy(
        support::repo().join("rules/vocabulary.yaml"),
        rules.join("vocabulary.yaml"),
    )?;
    std::fs::write(rules.join("wave.yaml"), WAVE_RULE.replace("TO", to))?;
    let config = setup.write();
    let file = setup.dir.path().join("wave.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for case in synth::wave(count, meeting, transport == Transport::Smtp) {
            for event in case {
                writeln!(out, "{event}")?;
            }
        }
        out.flush()?;
    }
    let before = at - Duration::hours(1);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(&config)
        .arg("import")
        .arg(&file)
        .args(["--now", &rfc(before)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("driftwatch import failed: {status}");
    }
    let daemon = start(&setup, before);
    let delivered = || match transport {
        Transport::Smtp => mailbox.count(),
        Transport::Webhook => receiver.count(),
    };
    // What going live sends at once (the current step of each overdue obligation) goes before
    // the wave; it is counted out.
    settle(&daemon, before + Duration::minutes(1)).await?;
    let baseline = delivered();
    let base = daemon.base.clone();
    let started = Instant::now();
    let mover = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/v1/admin/clock"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(serde_json::json!({"now": rfc(at)}).to_string())
            .send()
            .await
    });
    let mut first = None;
    let delivered = || delivered() - baseline;
    while delivered() < count {
        if first.is_none() && delivered() > 0 {
            first = Some(started.elapsed().as_secs_f64());
        }
        if started.elapsed().as_secs() > 900 {
            bail!("only {} of {count} delivered after 15 minutes", delivered());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let all = started.elapsed().as_secs_f64();
    let _ = mover.await;
    let extra = delivered() - count;
    daemon.terminate();
    let rate = count as f64 / all;
    // The targets: a wave of 50,000 within 10 s at the default concurrency; webhooks at 80% of
    // a bare client's rate, email at 90%.
    let (raw, kind, share) = match transport {
        Transport::Smtp => (
            raw_smtp(mailbox.port, count, &mailbox, concurrency).await?,
            "SMTP",
            90,
        ),
        Transport::Webhook => (raw_http(&receiver, count, concurrency).await?, "HTTP", 80),
    };
    println!(
        "| 09:00 wave ({backend:?}, {count} {kind} notifications, concurrency {concurrency}) | all handed over in {all:.1} s (first after {:.2} s, {extra} beyond the wave, {baseline} at going live) | | target ≤ 10 s for 50,000 at the default concurrency |",
        first.unwrap_or(all)
    );
    println!(
        "| delivery throughput ({backend:?}, {kind}, concurrency {concurrency}) | {rate:.0}/s | plain client {raw:.0}/s | {:.0}% (target ≥ {share}%) |",
        100.0 * rate / raw
    );
    Ok(())
}

/// Moves the daemon's clock and waits until it has caught up, however long that takes.
async fn settle(daemon: &Daemon, now: DateTime<Utc>) -> Result<()> {
    loop {
        let (status, body) = daemon
            .request(
                reqwest::Method::POST,
                "/v1/admin/clock",
                Some(TOKEN),
                Some((
                    "application/json",
                    serde_json::json!({"now": rfc(now)})
                        .to_string()
                        .into_bytes(),
                )),
            )
            .await;
        if status != 200 {
            bail!("moving the clock: {status} {body}");
        }
        if body["caught_up"] == true {
            return Ok(());
        }
    }
}

/// A plain lettre client sending `count` messages of an invitation's size, as many at once as
/// the daemon's delivery concurrency.
async fn raw_smtp(port: u16, count: usize, mailbox: &Mailbox, concurrency: usize) -> Result<f64> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let body = "A review is booked for the child with case reference WAVE-0000001.\n".repeat(12);
    let before = mailbox.count();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        let (transport, body, limit) = (transport.clone(), body.clone(), Arc::clone(&limit));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let message = Message::builder()
                .from("driftwatch <driftwatch@council.example>".parse()?)
                .to(format!("parent.{n}@synthetic.example").parse()?)
                .subject("Review invitation")
                .body(body)?;
            transport.send(message).await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    if mailbox.count() - before != count {
        bail!("the plain SMTP client's messages did not all arrive");
    }
    Ok(rate)
}

/// A plain reqwest client posting `count` bodies of a webhook's size, as many at once as the
/// daemon's delivery concurrency.
async fn raw_http(receiver: &Receiver, count: usize, concurrency: usize) -> Result<f64> {
    let http = reqwest::Client::new();
    let body =
        serde_json::json!({"type": "invitation", "case": "WAVE-0000001", "text": "x".repeat(600)});
    let before = receiver.count();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (http, url, body, limit) = (
            http.clone(),
            receiver.url.clone(),
            body.clone(),
            Arc::clone(&limit),
        );
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            // Signed as a Standard Webhooks sender signs (the receiver checks, as for the
            // daemon's): HMAC-SHA256 over id, timestamp and body.
            use base64::Engine;
            use hmac::{KeyInit, Mac};
            let (id, body) = (format!("msg_raw_{i}"), body.to_string());
            let timestamp = Utc::now().timestamp().to_string();
            let key = base64::engine::general_purpose::STANDARD
                .decode(support::WEBHOOK_SECRET.trim_start_matches("whsec_"))?;
            let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key)?;
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            http.post(url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", format!("v1,{signature}"))
                .body(body)
                .send()
                .await?
                .error_for_status()?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    if receiver.count() - before != count {
        bail!("the plain HTTP client's requests did not all arrive");
    }
    Ok(rate)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
