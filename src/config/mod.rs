//! The daemon's configuration file (`config/driftwatch.yaml`).
//!
//! Owns reading and checking the config and loading what it points at: the bank-holiday data and
//! closure days (into a `Calendar`) and the rules and templates folders (into a `RuleSet`). Relative
//! paths are taken from the config file's folder, so the config works from any working directory.
//! The daemon's own sections (database, API, email, delivery, logs) are in [`service`].
//! Must not plan or deliver anything.

pub mod service;

use crate::calendar::{Calendar, ClosureDay, Division};
use crate::diagnostic::{Diagnostic, Diagnostics, from_yaml_error};
use crate::event::Contact;
use crate::rules::locate::Locator;
use crate::rules::{self, RuleSet};
use chrono::{Days, NaiveDate, NaiveTime};
use serde::Deserialize;
pub use service::{
    ApiConfig, DeliveryConfig, DigestConfig, EmailConfig, LinksConfig, LogConfig, LogFormat, Scope,
    SmtpConfig, SmtpOAuth2, SmtpTls, TokenConfig,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where `driftwatch` looks for its config when neither `--config` nor `DRIFTWATCH_CONFIG`
/// names one, in order; with none there, it runs on the defaults built into the binary.
pub const CONFIG_SEARCH: [&str; 2] = ["config/driftwatch.yaml", "/etc/driftwatch/driftwatch.yaml"];

/// Where a config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A config file; relative paths in it are taken from its folder.
    File(PathBuf),
    /// The defaults built into the binary: the shipped rules, templates and bank holidays, the
    /// example config, with the SQLite database and the `.eml` spool in `state_dir`.
    BuiltIn { state_dir: PathBuf },
}

impl ConfigSource {
    /// The config named (`--config` or `DRIFTWATCH_CONFIG`), else the first of
    /// [`CONFIG_SEARCH`] that exists, else the built-in defaults with their state in
    /// `state_dir`.
    pub fn find(named: Option<&Path>, state_dir: &Path) -> ConfigSource {
        if let Some(path) = named {
            return ConfigSource::File(path.to_path_buf());
        }
        CONFIG_SEARCH
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .map_or_else(
                || ConfigSource::BuiltIn {
                    state_dir: state_dir.to_path_buf(),
                },
                ConfigSource::File,
            )
    }

    /// How `check` and the daemon's first log line name it.
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::File(path) => path.display().to_string(),
            ConfigSource::BuiltIn { state_dir } => format!(
                "the built-in defaults (no config file found: looked for {}; state in {})",
                CONFIG_SEARCH.join(", "),
                state_dir.display()
            ),
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    calendar: CalendarSection,
    #[serde(default)]
    working_hours: WorkingHours,
    /// The rules folder; without it, the rules built into the binary.
    #[serde(default)]
    rules: Option<PathBuf>,
    /// The templates folder; without it, the templates built into the binary.
    #[serde(default)]
    templates: Option<PathBuf>,
    #[serde(default)]
    roles: BTreeMap<String, Contact>,
    /// Who is told instead when a case has no contact for a role, by case role: a list of
    /// service roles (`iro: [iro_manager]`). Without this section, the IRO manager (when that
    /// role is configured) stands in for an IRO not yet allocated.
    #[serde(default)]
    fallbacks: Option<BTreeMap<String, Vec<String>>>,
    /// The school day (Europe/London, Monday to Friday), for rules that keep reviews of
    /// school-age children out of it. Default 08:45 to 15:15.
    #[serde(default)]
    school_day: SchoolDay,
    #[serde(default)]
    webhooks: BTreeMap<String, WebhookConfig>,
    #[serde(default)]
    database: service::DatabaseConfig,
    #[serde(default)]
    api: ApiConfig,
    #[serde(default)]
    email: EmailConfig,
    #[serde(default)]
    delivery: DeliveryConfig,
    #[serde(default)]
    log: LogConfig,
    /// `feeds:` is its earlier name.
    #[serde(default, alias = "feeds")]
    links: Option<LinksConfig>,
    #[serde(default)]
    digest: DigestConfig,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CalendarSection {
    #[serde(default = "default_division")]
    division: Division,
    /// The UK government's bank-holidays.json; without it, the copy built into the binary.
    #[serde(default)]
    bank_holidays: Option<PathBuf>,
    #[serde(default)]
    closures: Vec<ClosureEntry>,
}

impl Default for CalendarSection {
    fn default() -> Self {
        CalendarSection {
            division: default_division(),
            bank_holidays: None,
            closures: Vec::new(),
        }
    }
}

fn default_division() -> Division {
    Division::EnglandAndWales
}

/// A council closure: one day, or a run of days through `until` (inclusive).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ClosureEntry {
    date: NaiveDate,
    #[serde(default)]
    until: Option<NaiveDate>,
    title: String,
}

pub use driftwatch_core::localtime::{WorkingHours, clock_time};

/// The school day: `in_school_hours()` in a rule's condition is true for a time between `start`
/// and `end`, Monday to Friday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolDay {
    #[serde(deserialize_with = "clock_time")]
    #[schemars(with = "String")]
    pub start: NaiveTime,
    #[serde(deserialize_with = "clock_time")]
    #[schemars(with = "String")]
    pub end: NaiveTime,
}

impl Default for SchoolDay {
    fn default() -> Self {
        SchoolDay {
            start: NaiveTime::from_hms_opt(8, 45, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(15, 15, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

/// A named webhook a rule can send to as `webhook:NAME`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Environment variable holding the signing secret (never the secret itself in YAML).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Seconds to wait for the receiver's answer before counting the attempt as failed (it is
    /// tried again later, under the same `webhook-id`).
    #[serde(default = "default_webhook_timeout")]
    pub timeout_seconds: u64,
    /// A template folder whose `webhook.json` shapes every request to this webhook (the shipped
    /// `teams_card` for a Teams Workflows webhook, `slack_message` for Slack), unless the
    /// message's own template has a `webhook.json`.
    #[serde(default)]
    pub body: Option<String>,
}

fn default_webhook_timeout() -> u64 {
    30
}

/// Folders read instead of the ones the config names (see [`Config::load_changed`]).
#[derive(Debug, Clone, Default)]
pub struct Folders {
    pub rules: Option<PathBuf>,
    pub templates: Option<PathBuf>,
}

/// A checked configuration with everything it points at loaded.
#[derive(Debug)]
pub struct Config {
    /// The config file, or a description of the built-in defaults, for messages.
    pub path: PathBuf,
    /// Where it came from, to read it again on reload.
    pub source: ConfigSource,
    pub calendar: Calendar,
    pub bank_holidays_path: PathBuf,
    /// The council's closure days, one entry per day.
    pub closure_days: usize,
    pub working_hours: WorkingHours,
    pub rules_dir: PathBuf,
    pub templates_dir: PathBuf,
    /// Service-wide roles (IRO manager, review administrators, senior managers): name and email.
    pub roles: BTreeMap<String, Contact>,
    /// Who is told instead when a case has no contact for a role (case role to service roles).
    pub fallbacks: BTreeMap<String, Vec<String>>,
    pub school_day: SchoolDay,
    pub webhooks: BTreeMap<String, WebhookConfig>,
    pub rules: RuleSet,
    /// What daemons sharing a database must agree on before they plan or send: a digest of the
    /// rules, templates, calendar and service roles (see [`rules_version`]).
    pub rules_version: String,
    /// The store's URL, SQLite paths made absolute or relative to the working directory.
    pub database_url: String,
    pub api: ApiConfig,
    /// With `spool` resolved against the config folder.
    pub email: EmailConfig,
    pub delivery: DeliveryConfig,
    pub log: LogConfig,
    /// With `secret_file` resolved against the config folder.
    pub links: Option<LinksConfig>,
    pub digest: DigestConfig,
}

impl Config {
    /// The planner of the rules in force, on this calendar, with these service roles.
    pub fn planner(&self) -> crate::planner::Planner<'_> {
        crate::planner::Planner::new(
            &self.rules,
            &self.calendar,
            self.working_hours,
            &self.roles,
            &self.fallbacks,
        )
    }

    /// Who gets what one by one and what in the digest, and when a late message may go.
    pub fn routing(&self) -> crate::case_write::Routing<'_> {
        crate::case_write::Routing {
            rules: &self.rules,
            recipients: &self.digest.recipients,
            placement: self.planner().placement(),
        }
    }

    /// The JSON Schema of the config file, for editors and `driftwatch schema config`.
    pub fn schema() -> schemars::Schema {
        let mut schema = schemars::schema_for!(ConfigFile);
        schema.insert("title".into(), "driftwatch configuration".into());
        schema
    }

    /// Reads the config file and everything it names, reporting every problem found.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        Config::load_from(&ConfigSource::File(path.to_path_buf()))
    }

    /// Reads a config and everything it names: the file's folders and files, or the built-in
    /// rules, templates and bank holidays where it names none.
    pub fn load_from(source: &ConfigSource) -> Result<Config, Diagnostics> {
        Config::load_changed(source, &Folders::default())
    }

    /// As [`Config::load_from`], with the rules and templates read from other folders: a
    /// changed copy an admin wants to preview before putting it in place.
    pub fn load_changed(source: &ConfigSource, folders: &Folders) -> Result<Config, Diagnostics> {
        let (path, text, base) = match source {
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Diagnostics(vec![Diagnostic::whole_file(
                        path,
                        format!("cannot read the config: {e}"),
                    )])
                })?;
                let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                (path.clone(), text, base)
            }
            ConfigSource::BuiltIn { state_dir } => (
                Path::new(crate::sources::BUILT_IN).join("driftwatch.yaml"),
                crate::sources::CONFIG.to_string(),
                state_dir.clone(),
            ),
        };
        let path = path.as_path();
        let base = base.as_path();
        let mut file: ConfigFile = serde_yaml::from_str(&text)
            .map_err(|e| Diagnostics(vec![from_yaml_error(path, &e)]))?;
        if let ConfigSource::BuiltIn { .. } = source {
            // Everything the service reads is built in; what it writes goes in the state folder.
            file.rules = None;
            file.templates = None;
            file.calendar.bank_holidays = None;
            file.database.url = "sqlite:driftwatch.db".to_string();
            file.email.spool = PathBuf::from("outbox");
        }
        let locator = Locator::new(&text);
        let at = |yaml: &str, message: String| Diagnostic::new(path, locator.at(yaml), message);
        let mut problems = Vec::new();

        if file.working_hours.start >= file.working_hours.end {
            problems.push(at(
                "working_hours.end",
                "working_hours: start must be before end".into(),
            ));
        }
        for (name, hook) in &file.webhooks {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                problems.push(at(
                    &format!("webhooks.{name}.url"),
                    format!("webhooks.{name}.url: must start with http:// or https://"),
                ));
            }
            if hook.timeout_seconds == 0 || hook.timeout_seconds > 3600 {
                problems.push(at(
                    &format!("webhooks.{name}.timeout_seconds"),
                    format!("webhooks.{name}.timeout_seconds: must be between 1 and 3600"),
                ));
            }
        }
        if file.school_day.start >= file.school_day.end {
            problems.push(at(
                "school_day.end",
                "school_day: start must be before end".into(),
            ));
        }
        let fallbacks = match &file.fallbacks {
            Some(f) => f.clone(),
            None if file.roles.contains_key("iro_manager") => {
                BTreeMap::from([("iro".to_string(), vec!["iro_manager".to_string()])])
            }
            None => BTreeMap::new(),
        };
        for (role, instead) in file.fallbacks.iter().flatten() {
            for (j, f) in instead.iter().enumerate() {
                if !file.roles.contains_key(f) {
                    problems.push(at(
                        &format!("fallbacks.{role}[{j}]"),
                        format!("fallbacks.{role}: `{f}` is not a role under `roles:`"),
                    ));
                }
            }
        }
        let longest_webhook = file.webhooks.values().map(|h| h.timeout_seconds).max();
        problems.extend(service::check(
            &file.api,
            &file.email,
            &file.delivery,
            longest_webhook,
            &at,
        ));
        for (i, closure) in file.calendar.closures.iter().enumerate() {
            if closure.until.is_some_and(|u| u < closure.date) {
                problems.push(at(
                    &format!("calendar.closures[{i}].until"),
                    format!("closure `{}`: `until` is before `date`", closure.title),
                ));
            }
        }

        let built_in = Path::new(crate::sources::BUILT_IN);
        let bank_holidays = match &file.calendar.bank_holidays {
            Some(p) => {
                let path = normalize(&base.join(p));
                std::fs::read_to_string(&path)
                    .map(|text| (path.clone(), text))
                    .map_err(|e| {
                        Diagnostic::whole_file(
                            &path,
                            format!("cannot read the bank-holiday data: {e}"),
                        )
                    })
            }
            None => Ok((
                built_in.join("bank-holidays.json"),
                crate::sources::BANK_HOLIDAYS.to_string(),
            )),
        };
        let bank_holidays_text = bank_holidays.as_ref().ok().map(|(_, text)| text.clone());
        let bank_holidays_path = match &bank_holidays {
            Ok((p, _)) => p.clone(),
            Err(_) => built_in.join("bank-holidays.json"),
        };
        let calendar =
            match bank_holidays.and_then(|(p, text)| load_calendar(&p, &text, &file.calendar)) {
                Ok(c) => Some(c),
                Err(d) => {
                    problems.push(d);
                    None
                }
            };

        if let Some(rules) = &folders.rules {
            file.rules = Some(normalize(
                &std::env::current_dir().unwrap_or_default().join(rules),
            ));
        }
        if let Some(templates) = &folders.templates {
            file.templates = Some(normalize(
                &std::env::current_dir().unwrap_or_default().join(templates),
            ));
        }
        let rules_dir = file
            .rules
            .as_ref()
            .map_or_else(|| built_in.join("rules"), |r| normalize(&base.join(r)));
        let templates_dir = file
            .templates
            .as_ref()
            .map_or_else(|| built_in.join("templates"), |t| normalize(&base.join(t)));
        let services = rules::Services {
            roles: file.roles.keys().cloned().collect(),
            webhooks: file.webhooks.keys().cloned().collect(),
            school_day: Some((file.school_day.start, file.school_day.end)),
        };
        let (rule_files, mut read) = match &file.rules {
            Some(_) => crate::sources::read_rules_dir(&rules_dir),
            None => (crate::sources::built_in_rules(), Vec::new()),
        };
        let (templates, more) = match &file.templates {
            Some(_) => crate::sources::read_templates_dir(&templates_dir),
            None => (crate::sources::built_in_templates(), Vec::new()),
        };
        read.extend(more);
        let version = rules_version(
            (&rule_files, &rules_dir),
            &templates,
            bank_holidays_text.as_deref().unwrap_or_default(),
            &format!(
                "{:?}",
                (
                    &file.calendar,
                    &file.working_hours,
                    &file.roles,
                    &file.fallbacks,
                    &file.school_day
                )
            ),
        );
        let loaded = RuleSet::from_read(&rule_files, &templates, read, &services);
        let rules = match loaded {
            Ok(r) => {
                for (name, hook) in &file.webhooks {
                    let Some(body) = &hook.body else { continue };
                    if r.engine.has_part(body, "webhook.json") {
                        problems.extend(crate::message::check_webhook_body(
                            &r,
                            &templates_dir,
                            name,
                            body,
                        ));
                    } else {
                        problems.push(at(
                            &format!("webhooks.{name}.body"),
                            format!("webhooks.{name}.body: no template `{body}` with a webhook.json in the templates folder"),
                        ));
                    }
                }
                for role in file.fallbacks.iter().flat_map(|f| f.keys()) {
                    if !r.case.roles.contains(role) {
                        problems.push(at(
                            &format!("fallbacks.{role}"),
                            format!("fallbacks: `{role}` is not a case role set by the rules' `case.updates`"),
                        ));
                    }
                }
                problems.extend(crate::message::check_templates(&r, &templates_dir));
                let takers = !file.digest.recipients.is_empty()
                    || r.rules
                        .iter()
                        .any(|rule| rule.delivery != rules::Delivery::Immediate);
                problems.extend(driftwatch_core::digest::check_template(
                    &r,
                    &templates_dir,
                    takers,
                ));
                Some(r)
            }

            Err(Diagnostics(mut d)) => {
                problems.append(&mut d);
                None
            }
        };

        match (calendar, rules) {
            (Some(calendar), Some(rules)) if problems.is_empty() => Ok(Config {
                path: path.to_path_buf(),
                source: source.clone(),
                calendar,
                bank_holidays_path,
                closure_days: file.calendar.closures.iter().map(ClosureEntry::days).sum(),
                working_hours: file.working_hours,
                rules_dir,
                templates_dir,
                roles: file.roles,
                fallbacks,
                school_day: file.school_day,
                // Secret files, like every other path, are taken from the config's folder.
                webhooks: file
                    .webhooks
                    .into_iter()
                    .map(|(name, hook)| {
                        let secret_file = hook.secret_file.map(|f| normalize(&base.join(f)));
                        (
                            name,
                            WebhookConfig {
                                secret_file,
                                ..hook
                            },
                        )
                    })
                    .collect(),
                rules,
                rules_version: version,
                database_url: service::resolve_database_url(&file.database.url, base),
                api: file.api,
                email: EmailConfig {
                    spool: normalize(&base.join(&file.email.spool)),
                    smtp: file.email.smtp.map(|smtp| SmtpConfig {
                        password_file: smtp.password_file.map(|f| normalize(&base.join(f))),
                        oauth2: smtp.oauth2.map(|o| service::SmtpOAuth2 {
                            client_secret_file: o
                                .client_secret_file
                                .map(|f| normalize(&base.join(f))),
                            ..o
                        }),
                        ..smtp
                    }),
                    ..file.email
                },
                delivery: file.delivery,
                log: file.log,
                digest: file.digest,
                links: file.links.map(|f| LinksConfig {
                    secret_file: f.secret_file.map(|p| normalize(&base.join(p))),
                    ..f
                }),
            }),
            _ => Err(Diagnostics(problems)),
        }
    }
}

/// The rules version: the first 16 hex digits of a SHA-256 over every rules file and template
/// (by name within its folder, so two daemons with copies in different places agree), the bank
/// holidays, and the config sections that change plans or who is told (calendar, working hours,
/// service roles, fallbacks, school day). Delivery settings, addresses of servers and secrets
/// are left out: daemons may differ in those.
fn rules_version(
    (rule_files, rules_dir): (&[crate::sources::SourceFile], &Path),
    templates: &crate::sources::TemplateFiles,
    bank_holidays: &str,
    settings: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    let mut part = |label: &str, text: &str| {
        // Lengths first, so no two different sets of parts run together into the same bytes.
        for piece in [label, text] {
            hash.update((piece.len() as u64).to_be_bytes());
            hash.update(piece.as_bytes());
        }
    };
    let mut rules: Vec<(String, &str)> = rule_files
        .iter()
        .map(|f| {
            let name = f.path.strip_prefix(rules_dir).unwrap_or(&f.path);
            (name.to_string_lossy().replace('\\', "/"), f.text.as_str())
        })
        .collect();
    rules.sort();
    for (name, text) in rules {
        part(&format!("rules/{name}"), text);
    }
    for (name, parts) in templates {
        for (file, source) in parts {
            part(&format!("templates/{name}/{file}"), &source.text);
        }
    }
    part("bank-holidays", bank_holidays);
    part("settings", settings);
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `config/../rules` becomes `rules`, so messages name files the way an admin would.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

impl ClosureEntry {
    fn days(&self) -> usize {
        let last = self.until.unwrap_or(self.date);
        usize::try_from((last - self.date).num_days() + 1).unwrap_or(0)
    }
}

fn load_calendar(
    path: &Path,
    json: &str,
    section: &CalendarSection,
) -> Result<Calendar, Diagnostic> {
    let mut closures = Vec::new();
    for entry in &section.closures {
        let last = entry.until.unwrap_or(entry.date);
        let mut day = entry.date;
        while day <= last {
            closures.push(ClosureDay {
                date: day,
                title: entry.title.clone(),
            });
            match day.checked_add_days(Days::new(1)) {
                Some(next) => day = next,
                None => break,
            }
        }
    }
    Calendar::from_json(
        &path.display().to_string(),
        json,
        section.division,
        closures,
    )
    .map_err(|e| Diagnostic::whole_file(path, e.to_string()))
}
