//! The `driftwatch` command: the binary's edge, where errors become messages and exit codes.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use driftwatch::api::hex;
use driftwatch::calendar::Reckoning;
use driftwatch::caseload::{self, Caseload, InMemory};
use driftwatch::clock::Clock;
use driftwatch::config::service::resolve_database_url;
use driftwatch::config::{Config, ConfigSource};
use driftwatch::daemon::{self, RunOptions};
use driftwatch::event::{Event, numbered_json_lines};
use driftwatch::planner::table;
use driftwatch::service::{self, CaseChunks, Changed, Service};
use driftwatch::store::Store;
use driftwatch::{inbox, snapshot};
use driftwatch::{localtime, rules::RuleBody};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "driftwatch",
    version,
    about = "Keeps looked-after child reviews on time"
)]
struct Cli {
    /// The config file. Without it (or DRIFTWATCH_CONFIG): ./config/driftwatch.yaml, then
    /// /etc/driftwatch/driftwatch.yaml, then the defaults built into the binary.
    #[arg(long, global = true, env = "DRIFTWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Where the built-in defaults keep the SQLite database and the .eml spool (when no config
    /// file is found). Default: systemd's STATE_DIRECTORY, else ./var.
    #[arg(long, global = true, env = "DRIFTWATCH_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the config, calendar, rules and templates; report every error as file:line:column.
    Check,
    /// Write the built-in config, rules, rule tests, templates, bank holidays, snapshot mapping
    /// and schemas into DIR, for a council to edit (existing files are left alone).
    Init {
        dir: PathBuf,
        /// Overwrite files that are already there.
        #[arg(long)]
        force: bool,
    },
    /// Show every case's obligations and notifications from a JSON Lines file of events.
    Plan {
        /// JSON Lines file of events.
        #[arg(long)]
        events: PathBuf,
        /// The moment to plan at (RFC 3339 or YYYY-MM-DD for the start of that day); default now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Only this case.
        #[arg(long)]
        case: Option<String>,
    },
    /// Working-day arithmetic with the configured calendar.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Run the daemon: the event API, the scheduler and delivery, until SIGTERM.
    Run {
        /// The store, overriding the config's `database.url` (sqlite:PATH or postgres://...).
        #[arg(long, env = "DRIFTWATCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Address to listen on, overriding the config's `api.listen` (port 0 picks a free one).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Start a clock that only moves when an admin posts to /v1/admin/clock, at this time
        /// (RFC 3339 or YYYY-MM-DD): for trying rules out and for tests, never for production.
        #[arg(long, value_name = "TIME")]
        manual_clock: Option<String>,
    },
    /// Load a JSON Lines file of events into the store, checked like the API checks them; a
    /// file with any bad event stores nothing. Events already stored are skipped.
    Import {
        /// JSON Lines file of events, or with --snapshot a CSV export of the caseload. With
        /// --snapshot, a folder: the newest settled `*.csv` in it is imported and then moved to
        /// `imported/` (or `rejected/` if it had problems); older ones go to `skipped/`.
        file: PathBuf,
        /// FILE is a CSV snapshot, one row per child, mapped by --mapping.
        #[arg(long)]
        snapshot: bool,
        /// The column mapping of a snapshot (default: snapshot-mapping.yaml beside the config
        /// file, else the built-in one).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Check the file and show what going live would send and record, changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// The moment of the import (RFC 3339 or YYYY-MM-DD); default now.
        #[arg(long)]
        now: Option<String>,
        /// With a folder: a report changed less than this many seconds ago may still be being
        /// written, so nothing is imported and the exit status is 75 (try again later).
        #[arg(long, default_value_t = 120, value_name = "SECONDS")]
        settle_seconds: u64,
        #[arg(long, env = "DRIFTWATCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// The IRO annual report for a period: children looked after, review timeliness by month,
    /// timeliness by rule, IRO caseloads, escalations, what needs attention (`--format html`
    /// for the board's page).
    Report {
        #[arg(long, value_parser = date_arg)]
        from: NaiveDate,
        #[arg(long, value_parser = date_arg)]
        to: NaiveDate,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Plan as at this moment (RFC 3339 or YYYY-MM-DD); default now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, env = "DRIFTWATCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// A rule in plain English, with an example timeline on the working-day calendar.
    Explain {
        /// The rule's id.
        rule: String,
        /// When the rule's anchor falls in the example (local YYYY-MM-DD or YYYY-MM-DDTHH:MM).
        #[arg(long, default_value = "2027-01-04T10:00")]
        from: String,
    },
    /// What a changed rules folder would do to the caseload before it is put in place and
    /// reloaded: deadlines that move and by how many working days, obligations opened or taken
    /// away, messages added (and sent at once) or withdrawn in the next ten working days, by
    /// rule, with example cases. Changes nothing.
    Preview {
        /// The changed rules folder; the config's own rules are the ones in force.
        #[arg(long)]
        rules: PathBuf,
        /// A changed templates folder to go with it (default: the config's).
        #[arg(long)]
        templates: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
        format: PreviewFormat,
        /// Plan as at this moment (RFC 3339 or YYYY-MM-DD); default now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, env = "DRIFTWATCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Show what the daemon would send when it starts after downtime, counted by rule: what
    /// still applies goes, stale earlier steps are recorded as superseded.
    Catchup {
        /// Only show; the daemon does the catching up when it starts.
        #[arg(long, required = true)]
        dry_run: bool,
        /// The moment the daemon would start (RFC 3339 or YYYY-MM-DD); default now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, env = "DRIFTWATCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Run rule tests: each test's events planned at its moments against the rules, calendar
    /// and roles in force, compared with what it expects. Exit status 0 when all pass, 1 when any
    /// fails, 2 when a test file (or the config) cannot be read.
    Test {
        /// Test files (default: every *.yaml in the rules folder's `tests` folder, or the
        /// built-in tests with the built-in rules).
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of rules files, rule test files or the config (editors use it to complete and
    /// check them; the shipped files name it in their first line).
    Schema {
        #[arg(value_enum)]
        of: SchemaOf,
    },
    /// API tokens: make a new one, or hash one for the config.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new random token and the config entry that accepts it.
    New {
        /// A name for the token (shown in logs and errors).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: ingest, read, admin.
        #[arg(long, value_delimiter = ',', default_value = "ingest")]
        scopes: Vec<String>,
    },
    /// Print the SHA-256 of a token read from standard input, for `api.tokens[].sha256`.
    Hash,
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// The statutory working day N working days after DATE (before, if N is negative).
    Add {
        #[arg(value_parser = date_arg)]
        date: NaiveDate,
        #[arg(allow_negative_numbers = true)]
        n: i32,
        /// Count the council's working days (closure days left out) instead of statutory ones.
        #[arg(long)]
        council: bool,
    },
    /// The number of statutory working days in (A, B].
    Between {
        #[arg(value_parser = date_arg)]
        a: NaiveDate,
        #[arg(value_parser = date_arg)]
        b: NaiveDate,
        /// Count the council's working days (closure days left out) instead of statutory ones.
        #[arg(long)]
        council: bool,
    },
    /// Bank holidays and closure days of a year.
    Holidays { year: i32 },
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaOf {
    Rules,
    Tests,
    Config,
}

#[derive(Clone, Copy, ValueEnum)]
enum PreviewFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
    /// One self-contained page for the corporate parenting board (prints to A4).
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Writes to standard output; when the reader has gone (`driftwatch plan ... | head`), stops
/// quietly with success instead of panicking.
fn emit(text: &str) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` through [`emit`].
macro_rules! say {
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format_args!($($arg)*)))
    };
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("driftwatch: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load(source: &ConfigSource) -> Result<Config, ExitCode> {
    Config::load_from(source).map_err(|problems| {
        for p in &problems.0 {
            eprintln!("{p}");
        }
        eprintln!(
            "driftwatch: {} problem(s) found; nothing was changed",
            problems.0.len()
        );
        ExitCode::from(1)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Token { command } = &cli.command {
        return token(command);
    }
    if let Command::Schema { of } = cli.command {
        let schema = match of {
            SchemaOf::Rules => driftwatch::rules::RuleSet::schema(),
            SchemaOf::Tests => driftwatch::ruletest::schema(),
            SchemaOf::Config => Config::schema(),
        };
        say!("{}", serde_json::to_string_pretty(&schema)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Init { dir, force } = &cli.command {
        return init(dir, *force);
    }
    let state_dir = cli.state_dir.clone().unwrap_or_else(|| {
        std::env::var_os("STATE_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("var"))
    });
    let source = ConfigSource::find(cli.config.as_deref(), &state_dir);
    let config = match load(&source) {
        Ok(c) => c,
        // Rule tests cannot run at all: not the same as a test that fails.
        Err(_) if matches!(cli.command, Command::Test { .. }) => return Ok(ExitCode::from(2)),
        Err(code) => return Ok(code),
    };
    match cli.command {
        Command::Run {
            database_url,
            listen,
            manual_clock,
        } => {
            let clock = match manual_clock {
                Some(t) => Clock::manual(parse_now(Some(&t))?),
                None => Clock::System,
            };
            daemon::init_logging(&config.log);
            runtime()?.block_on(daemon::run(
                config,
                RunOptions {
                    database_url: database_url.as_deref().map(from_command_line),
                    listen,
                    clock,
                },
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            file,
            snapshot,
            mapping,
            dry_run,
            now,
            settle_seconds,
            database_url,
        } => {
            daemon::init_logging(&config.log);
            let options = ImportOptions {
                snapshot: snapshot.then_some(mapping),
                dry_run,
                now: parse_now(now.as_deref())?,
                database_url,
            };
            if options.snapshot.is_some() && file.is_dir() {
                let settle = std::time::Duration::from_secs(settle_seconds);
                return import_from_folder(config, &file, settle, options);
            }
            import(config, &file, options)
        }
        Command::Preview {
            rules,
            templates,
            format,
            now,
            database_url,
        } => {
            let folders = driftwatch::config::Folders {
                rules: Some(rules),
                templates,
            };
            preview(
                config,
                &folders,
                format,
                parse_now(now.as_deref())?,
                database_url,
            )
        }
        Command::Catchup {
            dry_run: _,
            now,
            database_url,
        } => catchup(config, parse_now(now.as_deref())?, database_url),
        Command::Report {
            from,
            to,
            format,
            now,
            database_url,
        } => {
            let now = parse_now(now.as_deref())?;
            if to < from {
                anyhow::bail!("--to {to} is before --from {from}");
            }
            let url = database_url
                .as_deref()
                .map(from_command_line)
                .unwrap_or_else(|| config.database_url.clone());
            let r = runtime()?.block_on(async {
                let store = Store::open(&url).await?;
                let service = Service::new(store, config, Clock::manual(now));
                let report = service.report(from, to).await?;
                service.store().close().await;
                Ok::<_, anyhow::Error>(report)
            })?;
            match format {
                ReportFormat::Table => emit(&driftwatch::report::table(&r)),
                ReportFormat::Csv => emit(&driftwatch::report::csv(&r)),
                ReportFormat::Json => say!("{}", serde_json::to_string_pretty(&r)?),
                ReportFormat::Html => emit(&driftwatch::report::html::page(&r)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { rule, from } => {
            let example = chrono::NaiveDateTime::parse_from_str(&from, "%Y-%m-%dT%H:%M")
                .or_else(|_| {
                    NaiveDate::parse_from_str(&from, "%Y-%m-%d")
                        .map(|d| d.and_time(chrono::NaiveTime::MIN))
                })
                .map_err(|_| {
                    anyhow::anyhow!("--from: `{from}` is not YYYY-MM-DD or YYYY-MM-DDTHH:MM")
                })?;
            match driftwatch::explain::explain(
                &config.rules,
                &config.calendar,
                config.working_hours,
                &rule,
                example,
            ) {
                Ok(text) => {
                    emit(&text);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("driftwatch: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Token { .. } | Command::Schema { .. } | Command::Init { .. } => {
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => check(&config, Utc::now()),
        Command::Plan {
            events,
            now,
            format,
            case,
        } => plan(&config, &events, now.as_deref(), format, case.as_deref()),
        Command::Calendar { command } => calendar(&config, command),
        Command::Test { files } => rule_tests(&config, files),
    }
}

/// `driftwatch test`: 0 when every test passes, 1 when any fails, 2 when a file is malformed
/// (its problems on standard error, `file:line:column: message`; the other files still run).
fn rule_tests(config: &Config, files: Vec<PathBuf>) -> Result<ExitCode> {
    use driftwatch::diagnostic::{Diagnostic, Diagnostics};
    use driftwatch::ruletest;
    use driftwatch::sources::SourceFile;
    let read: Vec<Result<SourceFile, Diagnostic>> = if files.is_empty() {
        default_rule_tests(config)?.into_iter().map(Ok).collect()
    } else {
        files
            .into_iter()
            .map(|path| match std::fs::read_to_string(&path) {
                Ok(text) => Ok(SourceFile { path, text }),
                Err(e) => Err(Diagnostic::whole_file(&path, format!("cannot read: {e}"))),
            })
            .collect()
    };
    let planner = config.planner();
    let mut outcomes = Vec::new();
    let mut malformed = 0;
    for file in read {
        let parsed = file
            .map_err(|d| Diagnostics(vec![d]))
            .and_then(|f| ruletest::parse(&f.path, &f.text, config));
        match parsed {
            Ok(tests) => outcomes.push(ruletest::run(&tests, &planner)),
            Err(problems) => {
                malformed += 1;
                for p in &problems.0 {
                    eprintln!("{p}");
                }
            }
        }
    }
    let (text, summary) = ruletest::render(&outcomes);
    if !outcomes.is_empty() {
        emit(&text);
    }
    if malformed > 0 {
        eprintln!(
            "driftwatch: {malformed} test file(s) could not be read; their tests did not run"
        );
        return Ok(ExitCode::from(2));
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The rule tests of the rules in force, when no file is named: every *.yaml in the rules
/// folder's `tests/`, or the built-in tests when the built-in rules are in force.
fn default_rule_tests(config: &Config) -> Result<Vec<driftwatch::sources::SourceFile>> {
    use driftwatch::sources::{self, SourceFile};
    if config.rules_dir == Path::new(sources::BUILT_IN).join("rules") {
        return Ok(sources::built_in_rule_tests());
    }
    let folder = config.rules_dir.join(sources::RULE_TESTS);
    let entries = std::fs::read_dir(&folder)
        .with_context(|| format!("no test files given, and cannot read {}", folder.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("no test files given, and no *.yaml in {}", folder.display());
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(SourceFile { path, text })
        })
        .collect()
}

fn check(config: &Config, now: DateTime<Utc>) -> Result<ExitCode> {
    let rules = &config.rules;
    let notices = rules
        .rules
        .iter()
        .filter(|r| matches!(r.body, RuleBody::Notice(_)))
        .count();
    let years = config.calendar.published_years();
    say!("{}: ok", config.path.display());
    say!("  config: read from {}", config.source.describe());
    say!(
        "  calendar: {} bank holidays {}–{} from {}, {} closure day(s)",
        config.calendar.division(),
        years.start(),
        years.end(),
        config.bank_holidays_path.display(),
        config.closure_days
    );
    say!(
        "  statutory timescales count statutory working days: closure days never stretch them, only keep messages off those days"
    );
    let mut by_calendar: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for rule in &rules.rules {
        if let Some(c) = driftwatch::explain::deadline_calendar(rule) {
            by_calendar.entry(c).or_default().push(rule.id.as_str());
        }
    }
    for (calendar, ids) in by_calendar {
        say!("  deadlines in {calendar}: {}", ids.join(", "));
    }
    say!(
        "  working hours: {}–{} Europe/London on days the council is open",
        config.working_hours.start.format("%H:%M"),
        config.working_hours.end.format("%H:%M")
    );
    say!(
        "  rules: {} from {} file(s) in {} ({} obligations, {} notices)",
        rules.rules.len(),
        rules.files.len(),
        config.rules_dir.display(),
        rules.rules.len() - notices,
        notices
    );
    say!(
        "  rules version: {} (daemons sharing a database must hold the same)",
        config.rules_version
    );
    say!("  event types: {}", rules.vocabulary.events.len());
    say!(
        "  case roles: {}",
        rules
            .case
            .roles
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    say!(
        "  service roles: {}",
        config.roles.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    say!(
        "  webhooks: {}",
        if config.webhooks.is_empty() {
            "none".to_string()
        } else {
            config
                .webhooks
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    say!("  templates: {}", rules.engine.template_names().count());
    let until = config.calendar.published_until();
    let today = localtime::date_of(now);
    if until
        < today
            .checked_add_months(chrono::Months::new(12))
            .unwrap_or(today)
    {
        say!(
            "warning: {}: the bank-holiday data ends on {until}; later years use projected holidays. \
             Replace it with the government's latest bank-holidays.json.",
            config.bank_holidays_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A date argument, exactly `YYYY-MM-DD` as everywhere else driftwatch reads dates.
fn date_arg(text: &str) -> Result<NaiveDate, String> {
    driftwatch::event::parse_date(text).ok_or_else(|| "expected a date such as 2027-01-21".into())
}

fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>> {
    let Some(text) = now else {
        return Ok(Utc::now());
    };
    if let Some(t) = driftwatch::event::parse_timestamp(text) {
        return Ok(t.with_timezone(&Utc));
    }
    match driftwatch::event::parse_date(text) {
        Some(d) => Ok(localtime::start_of(d)),
        None => bail!("--now: `{text}` is neither an RFC 3339 time nor a YYYY-MM-DD date"),
    }
}

fn plan(
    config: &Config,
    events: &Path,
    now: Option<&str>,
    format: Format,
    case: Option<&str>,
) -> Result<ExitCode> {
    let now = parse_now(now)?;
    let Some(mut all) = read_events(config, events)? else {
        return Ok(ExitCode::from(1));
    };
    if let Some(case) = case {
        all.retain(|e| e.case == case);
    }
    let plans = config.planner().plan(&all, now);
    match format {
        Format::Table => emit(&table::render(&plans)),
        Format::Json => say!("{}", serde_json::to_string_pretty(&plans)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// A database URL given on the command line or in the environment: SQLite paths are taken from
/// the working directory, and the file is created on first use.
fn from_command_line(url: &str) -> String {
    resolve_database_url(url, Path::new("."))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Caps glibc's malloc at two arenas. By default each thread that allocates while another holds
/// the heap gets an arena of its own (up to eight a core), and every arena keeps the high-water
/// mark of what it once held: the SQLite writer, sqlx's SQLite workers and tokio's workers each
/// kept theirs, about 20 MB of the daemon's resident memory after a working day, for allocation
/// contention these threads hardly have (they hand work to each other rather than allocate side
/// by side).
fn limit_malloc_arenas() {
    // An operator's own MALLOC_ARENA_MAX (read by glibc itself) stands.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets one of the allocator's tunables, and is called first thing
        // in main, before any other thread exists. Its answer (0 if refused) changes nothing.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Reads and checks a JSON Lines file of events: every bad line is reported as `FILE:line N:`
/// and then nothing is returned.
fn read_events(config: &Config, path: &Path) -> Result<Option<Vec<Event>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let numbered = match numbered_json_lines(&text) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}:{e}", path.display());
            }
            eprintln!(
                "driftwatch: {} bad event(s); nothing was changed",
                errors.len()
            );
            return Ok(None);
        }
    };
    let mut bad = 0;
    for (line, e) in &numbered {
        if let Err(err) = config.rules.vocabulary.validate(e) {
            eprintln!("{}:line {line}: {err}", path.display());
            bad += 1;
        }
    }
    if bad > 0 {
        eprintln!("driftwatch: {bad} bad event(s); nothing was changed");
        return Ok(None);
    }
    Ok(Some(numbered.into_iter().map(|(_, e)| e).collect()))
}

struct ImportOptions {
    /// For a CSV snapshot: the mapping file named, if any.
    snapshot: Option<Option<PathBuf>>,
    dry_run: bool,
    now: DateTime<Utc>,
    database_url: Option<String>,
}

/// Reads a snapshot CSV into events; every bad cell is reported as `FILE:LINE:COLUMN:`.
fn read_snapshot(
    config: &Config,
    path: &Path,
    mapping: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Event>>> {
    let mapping = match snapshot::find_mapping(mapping, &config.source) {
        Ok(m) => m,
        Err(d) => {
            eprintln!("{d}");
            return Ok(None);
        }
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let names = match snapshot::Names::of(&config.rules.case) {
        Ok(names) => names,
        Err(e) => {
            eprintln!("driftwatch: {e}; nothing was changed");
            return Ok(None);
        }
    };
    let events = match snapshot::read(&mapping, names, &text, now) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}:{e}", path.display());
            }
            eprintln!(
                "driftwatch: {} problem(s) in the snapshot; nothing was changed",
                errors.len()
            );
            return Ok(None);
        }
    };
    for e in &events {
        if let Err(err) = config.rules.vocabulary.validate(e) {
            eprintln!("{}: {err}", path.display());
            eprintln!(
                "driftwatch: the snapshot does not fit the rules' vocabulary; nothing was changed"
            );
            return Ok(None);
        }
    }
    Ok(Some(events))
}

fn import(config: Config, file: &Path, options: ImportOptions) -> Result<ExitCode> {
    // A snapshot (a row a child) is read whole; a history of events is read a few cases at a
    // time, so a whole council's takes little memory.
    match &options.snapshot {
        Some(mapping) => match read_snapshot(&config, file, mapping.as_deref(), options.now)? {
            Some(events) => import_events(config, file, options, Imported::Snapshot(events)),
            None => Ok(ExitCode::from(1)),
        },
        None => match read_caseload(&config, file)? {
            Some(caseload) => import_events(config, file, options, Imported::History(caseload)),
            None => Ok(ExitCode::from(1)),
        },
    }
}

/// What `import` read.
enum Imported {
    Snapshot(Vec<Event>),
    History(Caseload),
}

/// Reads and checks a JSON Lines file of events for `import`: every bad line is reported as
/// `FILE:line N:` and then nothing is returned.
fn read_caseload(config: &Config, path: &Path) -> Result<Option<Caseload>> {
    let vocabulary = &config.rules.vocabulary;
    let read = Caseload::read(path, |e| vocabulary.validate(e).map_err(|e| e.to_string()))
        .with_context(|| format!("cannot read {}", path.display()))?;
    match read {
        Ok(caseload) => Ok(Some(caseload)),
        Err(caseload::Refused::Lines(bad)) => {
            for e in &bad {
                eprintln!("{}:{e}", path.display());
            }
            eprintln!(
                "driftwatch: {} bad event(s); nothing was changed",
                bad.len()
            );
            Ok(None)
        }
        Err(caseload::Refused::Conflict(why)) => {
            eprintln!("{}: {why}", path.display());
            Ok(None)
        }
    }
}

fn import_events(
    config: Config,
    file: &Path,
    options: ImportOptions,
    read: Imported,
) -> Result<ExitCode> {
    let stale = service::stale_after(&config);
    if options.dry_run {
        let preview = match read {
            Imported::Snapshot(events) => {
                go_live_preview(&config, InMemory::new(events), &options, stale)
            }
            Imported::History(caseload) => go_live_preview(&config, caseload, &options, stale),
        }?;
        say!(
            "{}: {} event(s) for {} case(s) are valid; nothing was changed (dry run).",
            file.display(),
            preview.events,
            preview.cases
        );
        say!(
            "Going live at {}, as if these cases were new to driftwatch:",
            localtime::display(options.now)
        );
        say!("{}", first_batch(&config, options.now));
        emit(&service::go_live_table(&preview.by_rule));
        return Ok(ExitCode::SUCCESS);
    }
    let url = options
        .database_url
        .as_deref()
        .map(from_command_line)
        .unwrap_or_else(|| config.database_url.clone());
    runtime()?.block_on(async {
        let service = Service::new(Store::open(&url).await?, config, Clock::manual(options.now));
        // Closed however the import ends: an import refused halfway leaves no WAL to copy.
        let imported = store_imported(&service, file, &options, read).await;
        service.store().close().await;
        imported
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Stores what `import` read, with its cases' plans, and says what it did.
async fn store_imported(
    service: &Service,
    file: &Path,
    options: &ImportOptions,
    read: Imported,
) -> Result<()> {
    let store = service.store();
    // One transaction: the whole file is stored with its plans, or nothing is.
    let (known, ingested, read, cases) = match read {
        Imported::Snapshot(mut events) => {
            let read = events.len();
            let cases: BTreeSet<String> = events.iter().map(|e| e.case.clone()).collect();
            let known = store.known_cases(cases.iter().map(String::as_str)).await?;
            // What an earlier import stored stays as it was: a row that has not changed
            // stores nothing, whenever the file is imported again.
            let stored = store
                .known_events(events.iter().map(|e| e.id.as_str()))
                .await?;
            events.retain(|e| !stored.contains(&e.id));
            let case_model = &service.config().rules.case;
            for e in &mut events {
                if snapshot::dated_at_import_when_new(&e.kind, case_model)
                    && known.contains(&e.case)
                {
                    e.at = options.now;
                }
            }
            if let Some(id) = driftwatch::event::conflicting_id(&events) {
                bail!(service::IngestError::Conflict {
                    id: id.to_string(),
                    stored: false,
                });
            }
            let ingested = service
                .ingest_chunks(InMemory::new(events), Changed::KeepStored)
                .await?;
            (known, ingested, read, cases.len())
        }
        Imported::History(caseload) => {
            let (read, cases) = (caseload.len(), caseload.cases().len());
            let known = store
                .known_cases(caseload.cases().iter().map(String::as_str))
                .await?;
            let ingested = service.ingest_chunks(caseload, Changed::KeepStored).await?;
            (known, ingested, read, cases)
        }
    };
    say!(
        "{}: {} event(s) stored, {} already stored, {} case(s) planned",
        file.display(),
        ingested.stored,
        read - ingested.stored,
        cases
    );
    // What changed, in counts only: case references and contents stay out of the journal.
    let new = ingested
        .changed
        .iter()
        .filter(|c| !known.contains(*c))
        .count();
    say!(
        "  cases: {new} new, {} changed, {} unchanged",
        ingested.changed.len() - new,
        cases - ingested.changed.len()
    );
    if !ingested.stored_by_kind.is_empty() {
        let kinds: Vec<String> = ingested
            .stored_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        say!("  stored by type: {}", kinds.join(", "));
    }
    Ok(())
}

/// What going live with a file's cases would send, as if every case were new to driftwatch.
struct Preview {
    events: usize,
    cases: usize,
    by_rule: BTreeMap<String, service::GoLiveCounts>,
}

/// The go-live preview of `source`, planned a few cases at a time.
fn go_live_preview(
    config: &Config,
    mut source: impl CaseChunks,
    options: &ImportOptions,
    stale: chrono::Duration,
) -> Result<Preview> {
    let mut preview = Preview {
        events: 0,
        cases: source.cases().len(),
        by_rule: BTreeMap::new(),
    };
    while let Some(events) = source.next_chunk().map_err(anyhow::Error::msg)? {
        preview.events += events.len();
        let mut by_case: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in events {
            by_case.entry(e.case.clone()).or_default().push(e);
        }
        let input: Vec<_> = by_case
            .into_iter()
            .map(|(case, events)| service::CaseHistory {
                case,
                events,
                go_live: Some(options.now),
                settled: Default::default(),
            })
            .collect();
        let chunk = service::go_live_preview(
            &config.planner(),
            config.routing(),
            &input,
            options.now,
            stale,
        );
        for (rule, counts) in chunk {
            preview.by_rule.entry(rule).or_default().add(&counts);
        }
    }
    Ok(preview)
}

/// The nightly import: the newest settled report in `folder`, filed away afterwards (see
/// [`inbox`]). A report still being written exits 75 and changes nothing.
fn import_from_folder(
    config: Config,
    folder: &Path,
    settle: std::time::Duration,
    options: ImportOptions,
) -> Result<ExitCode> {
    let waiting = inbox::waiting(folder, settle, std::time::SystemTime::now())
        .with_context(|| format!("cannot read the folder {}", folder.display()))?;
    let (file, older) = match waiting {
        inbox::Waiting::Nothing => {
            say!(
                "{}: no caseload report (*.csv) is waiting; nothing was imported",
                folder.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        inbox::Waiting::Unsettled { file, changed_ago } => {
            eprintln!(
                "driftwatch: {} changed {} second(s) ago and may still be being written; \
                 nothing was imported (a report is imported once it has not changed for {} \
                 second(s))",
                file.display(),
                changed_ago.as_secs(),
                settle.as_secs()
            );
            return Ok(ExitCode::from(inbox::EX_TEMPFAIL));
        }
        inbox::Waiting::Ready { file, older } => (file, older),
    };
    let dry_run = options.dry_run;
    let at = options.now;
    let code = import(config, &file, options)?;
    if dry_run {
        return Ok(code);
    }
    let outcome = if code == ExitCode::SUCCESS {
        inbox::Outcome::Imported
    } else {
        inbox::Outcome::Rejected
    };
    let kept = inbox::file_away(&file, outcome, at)
        .with_context(|| format!("cannot move {}", file.display()))?;
    match outcome {
        inbox::Outcome::Rejected => eprintln!(
            "driftwatch: nothing from {} was stored; it is kept as {}",
            file.display(),
            kept.display()
        ),
        _ => say!("{}: kept as {}", file.display(), kept.display()),
    }
    for old in older {
        let kept = inbox::file_away(&old, inbox::Outcome::Skipped, at)
            .with_context(|| format!("cannot move {}", old.display()))?;
        say!(
            "{}: older than {}, so not imported; kept as {}",
            old.display(),
            file.display(),
            kept.display()
        );
    }
    Ok(code)
}

fn preview(
    config: Config,
    folders: &driftwatch::config::Folders,
    format: PreviewFormat,
    now: DateTime<Utc>,
    database_url: Option<String>,
) -> Result<ExitCode> {
    let changed = match Config::load_changed(&config.source, folders) {
        Ok(c) => c,
        Err(problems) => {
            eprint!("{problems}");
            eprintln!("driftwatch: the changed rules have problems; a reload would refuse them");
            return Ok(ExitCode::from(1));
        }
    };
    let url = database_url
        .as_deref()
        .map(from_command_line)
        .unwrap_or_else(|| config.database_url.clone());
    runtime()?.block_on(async {
        let store = Store::open(&url).await?;
        let service = Service::new(store, config, Clock::manual(now));
        let change = service.preview_rules(&changed).await?;
        match format {
            PreviewFormat::Table => {
                say!(
                    "Rules in force: {}; changed: {}; as at {}.",
                    service.config().rules_dir.display(),
                    changed.rules_dir.display(),
                    localtime::display(now)
                );
                emit(&change.to_text());
            }
            PreviewFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&change)?)),
        }
        service.store().close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn catchup(config: Config, now: DateTime<Utc>, database_url: Option<String>) -> Result<ExitCode> {
    let url = database_url
        .as_deref()
        .map(from_command_line)
        .unwrap_or_else(|| config.database_url.clone());
    let stale = service::stale_after(&config);
    runtime()?.block_on(async {
        let store = Store::open(&url).await?;
        let mut input = Vec::new();
        for case in store.cases_stale(now, stale, i64::MAX).await? {
            input.push(service::CaseHistory {
                events: store.case_events(&case).await?,
                go_live: store.first_received(&case).await?,
                settled: store.settled_keys(&case).await?,
                case,
            });
        }
        say!(
            "Catching up at {}: {} case(s) have notifications waiting more than {} hour(s).",
            localtime::display(now),
            input.len(),
            config.delivery.stale_after_hours
        );
        let preview =
            service::go_live_preview(&config.planner(), config.routing(), &input, now, stale);
        say!("{}", first_batch(&config, now));
        emit(&service::go_live_table(&preview));
        store.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn token(command: &TokenCommand) -> Result<ExitCode> {
    use sha2::{Digest, Sha256};
    match command {
        TokenCommand::New { name, scopes } => {
            for s in scopes {
                if !["ingest", "read", "admin"].contains(&s.as_str()) {
                    bail!("--scopes: `{s}` is not ingest, read or admin");
                }
            }
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let token = format!("dw_{}", hex(&bytes));
            say!("token (give it to the client; it is not stored anywhere):");
            say!("  {token}");
            say!("config entry (under api.tokens):");
            say!(
                "  - {{name: {name}, sha256: {}, scopes: [{}]}}",
                hex(&Sha256::digest(token.as_bytes())),
                scopes.join(", ")
            );
        }
        TokenCommand::Hash => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let token = line.trim();
            if token.is_empty() {
                bail!("no token on standard input");
            }
            say!("{}", hex(&Sha256::digest(token.as_bytes())));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `driftwatch init DIR`: the built-in defaults written out for a council to edit.
fn init(dir: &Path, force: bool) -> Result<ExitCode> {
    let mut written = 0;
    let mut kept = Vec::new();
    for (path, text) in driftwatch::sources::defaults_to_write() {
        let target = dir.join(&path);
        if target.exists() && !force {
            kept.push(target);
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
        written += 1;
    }
    say!("{}: wrote {written} file(s)", dir.display());
    for k in &kept {
        say!(
            "  kept {} (already there; --force overwrites it)",
            k.display()
        );
    }
    let config = dir.join("driftwatch.yaml");
    say!("Next:");
    say!(
        "  edit {} (roles, closures, database, email, tokens)",
        config.display()
    );
    say!("  driftwatch --config {} check", config.display());
    say!(
        "  driftwatch --config {} test {}/rules/tests/*.yaml",
        config.display(),
        dir.display()
    );
    say!("  driftwatch --config {} run", config.display());
    Ok(ExitCode::SUCCESS)
}

/// When the first batch of a go-live or catch-up goes, for the preview's header.
fn first_batch(config: &Config, now: DateTime<Utc>) -> String {
    let first = config.planner().place(now, false);
    if first == now {
        "Messages that apply now go at once.".to_string()
    } else {
        format!(
            "Messages that apply now go at {} (working hours on a day the council is open); urgent ones at once.",
            localtime::display(first)
        )
    }
}

/// Statutory working days unless the council's were asked for.
fn reckoning(council: bool) -> Reckoning {
    if council {
        Reckoning::Council
    } else {
        Reckoning::Statutory
    }
}

fn calendar(config: &Config, command: CalendarCommand) -> Result<ExitCode> {
    let cal = &config.calendar;
    match command {
        CalendarCommand::Add { date, n, council } => {
            say!("{}", cal.add_in(reckoning(council), date, n))
        }
        CalendarCommand::Between { a, b, council } => {
            say!("{}", cal.between_in(reckoning(council), a, b))
        }
        CalendarCommand::Holidays { year } => {
            for h in cal.holidays(year) {
                let source = format!("{:?}", h.source).to_lowercase();
                say!(
                    "{}  {:<3}  {:<10} {}",
                    h.date,
                    h.date.format("%a"),
                    source,
                    h.title
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
