//! The daemon's sections of the config: database, API and its tokens, email, delivery, logs.
//!
//! Owns their shapes, defaults and checks. Secrets never appear here: a token is stored as its
//! SHA-256 hash, and the SMTP password and webhook secrets are named by environment variable or
//! file, read when the daemon starts. Must not open connections.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the store lives. SQLite paths are taken from the config file's folder.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_database_url")]
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
        }
    }
}

fn default_database_url() -> String {
    "sqlite:../var/driftwatch.db".into()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Larger request bodies get `413`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            tokens: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

/// A bearer token: its name (for logs), the hex SHA-256 of the token, and what it may do.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Post events.
    Ingest,
    /// Read plans, obligations and notifications.
    Read,
    /// Reload, retry dead notifications, move a manual clock.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The sender of every message.
    #[serde(default = "default_from")]
    pub from: String,
    /// Where messages are written as `.eml` files when no SMTP server is configured.
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: default_from(),
            spool: default_spool(),
            smtp: None,
        }
    }
}

fn default_from() -> String {
    "driftwatch <driftwatch@council.example>".into()
}

fn default_spool() -> PathBuf {
    PathBuf::from("../var/outbox")
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for the server before counting the attempt as failed.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u64,
    /// Sign in with an OAuth 2.0 access token (XOAUTH2) instead of a password: Microsoft 365
    /// and Google Workspace no longer take passwords. `username` is the mailbox sent from.
    #[serde(default)]
    pub oauth2: Option<SmtpOAuth2>,
}

/// An OAuth 2.0 client-credentials grant for SMTP: driftwatch asks `token_url` for an access
/// token as `client_id`, signs in to the SMTP server with it (XOAUTH2), and asks again shortly
/// before it expires.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpOAuth2 {
    /// The token endpoint, https (plain http only to this machine). Microsoft 365:
    /// `https://login.microsoftonline.com/TENANT-ID/oauth2/v2.0/token`.
    pub token_url: String,
    /// The application (client) id registered with the identity provider.
    pub client_id: String,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (relative paths from the config's folder).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// What the token is for. Microsoft 365: `https://outlook.office365.com/.default`.
    pub scope: String,
}

fn default_smtp_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); required, never skipped.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

/// The daily digest: who prefers it, and when it goes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// Local time on working days (Europe/London).
    #[serde(default = "default_digest_at", deserialize_with = "super::clock_time")]
    #[schemars(with = "String")]
    pub at: chrono::NaiveTime,
    /// A person's choice, by email address or by role (`iro: digest`); the address wins.
    #[serde(default)]
    pub recipients: std::collections::BTreeMap<String, crate::rules::Delivery>,
    /// What counts as "this week": obligations due within this many working days.
    #[serde(default = "default_digest_horizon")]
    pub horizon_working_days: i32,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            at: default_digest_at(),
            recipients: Default::default(),
            horizon_working_days: default_digest_horizon(),
        }
    }
}

fn default_digest_at() -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(8, 30, 0).unwrap_or(chrono::NaiveTime::MIN)
}

fn default_digest_horizon() -> i32 {
    5
}

/// Secret links: calendar feeds and the acknowledge/snooze links in reminders and escalations.
/// Off unless a secret is configured.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// Environment variable holding the secret that signs the links (a long random string).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding it.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How people reach driftwatch, for the URLs handed out (`https://driftwatch.council.example`).
    pub public_url: String,
    /// Days an acknowledgement link works after its message is sent.
    #[serde(default = "default_ack_valid_days")]
    pub ack_valid_days: u32,
}

fn default_ack_valid_days() -> u32 {
    30
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before a notification is kept as dead.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; each later retry waits twice as long, with jitter.
    #[serde(default = "default_first_retry")]
    pub first_retry_seconds: u64,
    #[serde(default = "default_max_retry")]
    pub max_retry_seconds: u64,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds a claimed notification stays with the daemon that claimed it; after that another
    /// daemon (or this one, restarted) sends it again under the same idempotency key.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
    /// Hours after which a notification not yet sent counts as stale: after downtime only the
    /// latest due step of each obligation is sent, the earlier ones are recorded as superseded.
    #[serde(default = "default_stale_after")]
    pub stale_after_hours: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: default_max_attempts(),
            first_retry_seconds: default_first_retry(),
            max_retry_seconds: default_max_retry(),
            concurrency: default_concurrency(),
            lease_seconds: default_lease(),
            stale_after_hours: default_stale_after(),
        }
    }
}

fn default_max_attempts() -> u32 {
    8
}
fn default_first_retry() -> u64 {
    60
}
fn default_max_retry() -> u64 {
    6 * 3600
}
fn default_concurrency() -> usize {
    8
}
fn default_lease() -> u64 {
    300
}
fn default_stale_after() -> u64 {
    24
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter such as `info` or `driftwatch=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::default(),
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Checks what serde cannot: token hashes, the sender address, sensible delivery numbers.
/// `longest_webhook` is the longest `timeout_seconds` of the configured webhooks.
/// `at(path, message)` places a problem at a YAML path of the config file.
pub(super) fn check(
    api: &ApiConfig,
    email: &EmailConfig,
    delivery: &DeliveryConfig,
    longest_webhook: Option<u64>,
    at: &dyn Fn(&str, String) -> crate::diagnostic::Diagnostic,
) -> Vec<crate::diagnostic::Diagnostic> {
    let mut problems = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, token) in api.tokens.iter().enumerate() {
        if !names.insert(token.name.as_str()) {
            problems.push(at(
                &format!("api.tokens[{i}].name"),
                format!("api.tokens: the name `{}` is used twice", token.name),
            ));
        }
        if token.sha256.len() != 64 || !token.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(at(
                &format!("api.tokens[{i}].sha256"),
                format!(
                    "api.tokens `{}`: sha256 must be the 64-hex-digit SHA-256 of the token \
                     (`driftwatch token new` prints one); never put the token itself here",
                    token.name
                ),
            ));
        }
        if token.scopes.is_empty() {
            problems.push(at(
                &format!("api.tokens[{i}].scopes"),
                format!(
                    "api.tokens `{}`: give at least one scope (ingest, read, admin)",
                    token.name
                ),
            ));
        }
    }
    if email.from.parse::<lettre::message::Mailbox>().is_err() {
        problems.push(at(
            "email.from",
            "email.from: not an address such as `driftwatch <driftwatch@council.example>`".into(),
        ));
    }
    if let Some(smtp) = &email.smtp
        && smtp.password_env.is_some()
        && smtp.password_file.is_some()
    {
        problems.push(at(
            "email.smtp.password_file",
            "email.smtp: give password_env or password_file, not both".into(),
        ));
    }
    if let Some(smtp) = &email.smtp {
        problems.extend(
            smtp_sign_in_problems(smtp)
                .into_iter()
                .map(|(path, message)| at(path, message)),
        );
    }
    if delivery.max_attempts == 0 || delivery.concurrency == 0 || delivery.first_retry_seconds == 0
    {
        problems.push(at(
            "delivery",
            "delivery: max_attempts, concurrency and first_retry_seconds must be at least 1".into(),
        ));
    }
    // A claim must outlast the longest send, or a second daemon sends it too.
    let longest_send = email
        .smtp
        .as_ref()
        .map_or(30, |s| s.timeout_seconds)
        .max(longest_webhook.unwrap_or(0));
    if delivery.lease_seconds <= longest_send || delivery.lease_seconds > 86_400 {
        problems.push(at(
            "delivery.lease_seconds",
            format!(
                "delivery.lease_seconds: must be more than the longest send ({longest_send} s: \
                 email.smtp.timeout_seconds, or a webhook's timeout_seconds) and at \
                 most a day (86400)"
            ),
        ));
    }
    if delivery.max_retry_seconds > 30 * 86_400 || delivery.stale_after_hours > 24 * 366 {
        problems.push(at(
            "delivery",
            "delivery: max_retry_seconds is at most 30 days and stale_after_hours at most a year"
                .into(),
        ));
    }
    problems
}

/// What is wrong with how driftwatch signs in to the SMTP server: a password or a token, never
/// both; a token needs the mailbox's username, one client secret, and a token endpoint that
/// keeps the secret off the network.
fn smtp_sign_in_problems(smtp: &SmtpConfig) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let Some(oauth2) = &smtp.oauth2 else {
        return problems;
    };
    if smtp.password_env.is_some() || smtp.password_file.is_some() {
        problems.push((
            "email.smtp.oauth2",
            "email.smtp: sign in with a password or with oauth2, not both".into(),
        ));
    }
    if smtp.username.is_none() {
        problems.push((
            "email.smtp.oauth2",
            "email.smtp.oauth2: give email.smtp.username, the mailbox driftwatch sends from".into(),
        ));
    }
    if oauth2.client_secret_env.is_some() == oauth2.client_secret_file.is_some() {
        problems.push((
            "email.smtp.oauth2",
            "email.smtp.oauth2: give client_secret_file or client_secret_env (one of them)".into(),
        ));
    }
    match reqwest::Url::parse(&oauth2.token_url) {
        Ok(url) if url.scheme() == "https" => {}
        Ok(url)
            if url.scheme() == "http"
                && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => {}
        _ => problems.push((
            "email.smtp.oauth2.token_url",
            "email.smtp.oauth2.token_url: not an https URL (the client secret is sent to it)"
                .into(),
        )),
    }
    problems
}

/// Where the store is, for logs and people: `SQLite file /var/lib/driftwatch/driftwatch.db`,
/// `PostgreSQL database dw on db.council.example:5432`. Never the URL: no user, no password.
pub fn describe_database(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once(':') else {
        return "a database of unknown kind".into();
    };
    let rest = rest.trim_start_matches("//");
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    if scheme == "sqlite" {
        return format!("SQLite file {rest}");
    }
    let hosted = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (host, name) = hosted.split_once('/').unwrap_or((hosted, ""));
    let host = if host.is_empty() {
        "the local socket"
    } else {
        host
    };
    match name {
        "" => format!("PostgreSQL on {host}"),
        name => format!("PostgreSQL database {name} on {host}"),
    }
}

/// `sqlite:relative/path.db` made absolute against the config folder, with `mode=rwc` so the
/// file is created on first start. Other URLs are returned unchanged.
pub fn resolve_database_url(url: &str, base: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path == ":memory:" {
        return url.to_string();
    }
    let path = Path::new(path);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        super::normalize(&base.join(path))
    };
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    format!("sqlite://{}?{query}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_in_with_a_token_is_checked_before_the_daemon_starts() {
        let smtp = |extra: &str| -> SmtpConfig {
            serde_yaml::from_str(&format!("{{host: smtp.office365.com{extra}}}")).unwrap()
        };
        let oauth2 = "oauth2: {token_url: 'https://login.microsoftonline.com/t/oauth2/v2.0/token', \
                      client_id: app, client_secret_file: s, scope: 'https://outlook.office365.com/.default'}";
        let problems = |extra: &str| -> Vec<String> {
            smtp_sign_in_problems(&smtp(extra))
                .into_iter()
                .map(|(_, m)| m)
                .collect()
        };
        assert!(problems(&format!(", username: dw@council.example, {oauth2}")).is_empty());
        assert!(problems("").is_empty());
        assert!(problems(&format!(", {oauth2}"))[0].contains("give email.smtp.username"));
        assert!(
            problems(&format!(", username: u, password_env: P, {oauth2}"))[0]
                .contains("a password or with oauth2, not both")
        );
        let both = oauth2.replace(
            "client_secret_file: s",
            "client_secret_file: s, client_secret_env: E",
        );
        assert!(problems(&format!(", username: u, {both}"))[0].contains("one of them"));
        let neither = oauth2.replace("client_secret_file: s, ", "");
        assert!(problems(&format!(", username: u, {neither}"))[0].contains("one of them"));
        let plain = oauth2.replace("https://login", "http://login");
        assert!(problems(&format!(", username: u, {plain}"))[0].contains("not an https URL"));
        let local = oauth2.replace("https://login.microsoftonline.com", "http://127.0.0.1:8080");
        assert!(problems(&format!(", username: u, {local}")).is_empty());
    }

    #[test]
    fn a_database_is_described_without_its_url() {
        assert_eq!(
            describe_database("postgres://dw:secret@db.council.example:5432/dw?sslmode=require"),
            "PostgreSQL database dw on db.council.example:5432"
        );
        assert_eq!(
            describe_database("postgresql://dw:p@ss@word@db/x"),
            "PostgreSQL database x on db"
        );
        assert_eq!(
            describe_database("sqlite:///var/lib/driftwatch/driftwatch.db?mode=rwc"),
            "SQLite file /var/lib/driftwatch/driftwatch.db"
        );
        assert_eq!(
            describe_database("sqlite:var/driftwatch.db"),
            "SQLite file var/driftwatch.db"
        );
        assert_eq!(
            describe_database("postgres:///dw"),
            "PostgreSQL database dw on the local socket"
        );
    }

    #[test]
    fn sqlite_paths_are_taken_from_the_config_folder() {
        let base = Path::new("/etc/driftwatch");
        assert_eq!(
            resolve_database_url("sqlite:../var/dw.db", base),
            "sqlite:///etc/var/dw.db?mode=rwc"
        );
        assert_eq!(
            resolve_database_url("sqlite:///var/lib/driftwatch/dw.db", base),
            "sqlite:///var/lib/driftwatch/dw.db?mode=rwc"
        );
        assert_eq!(
            resolve_database_url("postgres://u@h/db", base),
            "postgres://u@h/db"
        );
    }

    #[test]
    fn a_claim_outlasts_the_longest_webhook_timeout() {
        let at = |_: &str, m: String| crate::diagnostic::Diagnostic::whole_file(Path::new("c"), m);
        let (api, email) = (ApiConfig::default(), EmailConfig::default());
        let delivery = DeliveryConfig::default();
        assert!(check(&api, &email, &delivery, Some(5), &at).is_empty());
        let problems = check(&api, &email, &delivery, Some(600), &at);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("lease_seconds") && problems[0].message.contains("600 s"),
            "{}",
            problems[0].message
        );
    }
}
