//! Real parts for the daemon's tests: the `driftwatch` binary on a free port with a temporary
//! database, a real SMTP server (mailin-embedded) that keeps what it receives, a real HTTP
//! server that receives webhooks and checks their signatures, PostgreSQL databases made fresh
//! for each test, and a TCP proxy that can cut a daemon off from its database.
#![allow(dead_code)]

pub mod browser;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tokio::sync::Notify;

/// The example config's token (all scopes).
pub const TOKEN: &str = "dw_example_token_change_me";
/// A token with only the read scope, configured by [`Setup`].
pub const READ_TOKEN: &str = "dw_test_read_only";
/// The webhook signing secret [`Setup::webhook`] configures.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A daemon's configuration in a temporary folder.
pub struct Setup {
    pub dir: TempDir,
    pub database_url: String,
    pub smtp_port: Option<u16>,
    /// `email.smtp.timeout_seconds`.
    pub smtp_timeout_seconds: u64,
    /// More of `email.smtp`, after its timeout (`, username: ..., oauth2: {...}`).
    pub smtp_sign_in: String,
    /// `email.from`.
    pub email_from: String,
    pub webhook_url: Option<String>,
    /// The webhook's `timeout_seconds` (the daemon's default when `None`).
    pub webhook_timeout_seconds: Option<u64>,
    /// An extra rules file added to a copy of the shipped rules.
    pub extra_rules: Option<String>,
    /// Extra templates added to a copy of the shipped ones: (name, `subject.txt`, `body.txt`).
    pub extra_templates: Vec<(String, String, String)>,
    pub delivery: String,
    /// More config, appended as written.
    pub extra: String,
    /// `api.max_body_bytes`.
    pub max_body_bytes: usize,
    /// The daemon's limit on open files (`ulimit -n`), when not the test's own.
    pub open_files: Option<u64>,
}

impl Setup {
    /// SQLite in the temporary folder, `.eml` files in `outbox/` there.
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temporary folder");
        let database_url = format!("sqlite:{}", dir.path().join("driftwatch.db").display());
        Setup {
            dir,
            database_url,
            smtp_port: None,
            smtp_timeout_seconds: 5,
            smtp_sign_in: String::new(),
            email_from: "driftwatch <driftwatch@council.example>".into(),
            webhook_url: None,
            webhook_timeout_seconds: None,
            extra_rules: None,
            extra_templates: Vec::new(),
            delivery: "{max_attempts: 4, first_retry_seconds: 60, max_retry_seconds: 600, concurrency: 4, lease_seconds: 300}".into(),
            extra: String::new(),
            max_body_bytes: 65536,
            open_files: None,
        }
    }

    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.dir.path().join("rules")
    }

    /// The shipped templates, or a copy of them with the extra ones added.
    fn templates(&self) -> PathBuf {
        if self.extra_templates.is_empty() {
            return repo().join("templates");
        }
        let folder = self.dir.path().join("templates");
        for entry in std::fs::read_dir(repo().join("templates")).expect("shipped templates") {
            let from = entry.expect("templates entry").path();
            let to = folder.join(from.file_name().expect("a template's name"));
            std::fs::create_dir_all(&to).expect("template folder");
            for file in std::fs::read_dir(&from).expect("a template") {
                let file = file.expect("template file").path();
                std::fs::copy(&file, to.join(file.file_name().expect("name"))).expect("copy");
            }
        }
        for (name, subject, body) in &self.extra_templates {
            let to = folder.join(name);
            std::fs::create_dir_all(&to).expect("template folder");
            std::fs::write(to.join("subject.txt"), subject).expect("subject");
            std::fs::write(to.join("body.txt"), body).expect("body");
        }
        folder
    }

    /// Writes the config (and a copy of the rules) and returns its path.
    pub fn write(&self) -> PathBuf {
        let rules = self.rules_dir();
        if !rules.exists() {
            std::fs::create_dir_all(&rules).expect("rules folder");
            for entry in std::fs::read_dir(repo().join("rules")).expect("shipped rules") {
                let path = entry.expect("rules entry").path();
                // The rules files only: rules/tests holds rule tests.
                if path.is_file()
                    && let Some(name) = path.file_name()
                {
                    std::fs::copy(&path, rules.join(name)).expect("copy rule file");
                }
            }
            if let Some(extra) = &self.extra_rules {
                std::fs::write(rules.join("zz_test.yaml"), extra).expect("extra rules");
            }
        }
        let repo = repo();
        let templates = self.templates();
        let smtp = match self.smtp_port {
            Some(port) => format!(
                "  smtp: {{host: 127.0.0.1, port: {port}, tls: none, timeout_seconds: {}{}}}\n",
                self.smtp_timeout_seconds, self.smtp_sign_in
            ),
            None => String::new(),
        };
        let webhooks = match &self.webhook_url {
            Some(url) => format!(
                "webhooks:\n  teams: {{url: \"{url}\", secret_env: DRIFTWATCH_TEST_WEBHOOK_SECRET{}}}\n",
                self.webhook_timeout_seconds
                    .map(|t| format!(", timeout_seconds: {t}"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        let config = format!(
            r#"calendar:
  division: england-and-wales
  bank_holidays: {bank}
  closures:
    - {{date: 2026-12-29, until: 2026-12-31, title: Council closed}}
working_hours: {{start: "09:00", end: "17:00"}}
rules: {rules}
templates: {templates}
roles:
  iro_manager: {{name: IRO Service Manager, email: iro.manager@council.example}}
  review_administrator: {{name: Review administration team, email: reviews@council.example}}
  placements_team: {{name: Placements, email: placements@council.example}}
  service_manager: {{name: Service manager, email: cic.service.manager@council.example}}
  head_of_service: {{name: Head of Service, email: head.of.service@council.example}}
  director: {{name: Director, email: dcs@council.example}}
{webhooks}database:
  url: "{db}"
api:
  listen: 127.0.0.1:0
  max_body_bytes: {max_body_bytes}
  tokens:
    - {{name: example, sha256: {admin}, scopes: [ingest, read, admin]}}
    - {{name: dashboard, sha256: {read}, scopes: [read]}}
email:
  from: "{from}"
  spool: {spool}
{smtp}delivery: {delivery}
links: {{secret_env: DRIFTWATCH_TEST_FEED_SECRET, public_url: "http://feeds.test/"}}
log: {{format: json, level: "{level}"}}
"#,
            bank = repo.join("config/bank-holidays.json").display(),
            rules = rules.display(),
            templates = templates.display(),
            db = self.database_url,
            admin = sha256_hex(TOKEN),
            read = sha256_hex(READ_TOKEN),
            from = self.email_from,
            spool = self.spool().display(),
            delivery = self.delivery,
            max_body_bytes = self.max_body_bytes,
            level = std::env::var("DRIFTWATCH_TEST_LOG").unwrap_or_else(|_| "info".into()),
        );
        let path = self.dir.path().join("driftwatch.yaml");
        std::fs::write(&path, config + &self.extra).expect("write config");
        path
    }
}

/// The real `driftwatch run`, with a manual clock, on a free port.
pub struct Daemon {
    child: Child,
    pub base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Daemon {
    /// Starts the daemon and waits until it is ready (its store open).
    pub fn start(setup: &Setup, clock: &str) -> Daemon {
        let daemon = Daemon::start_listening(setup, clock);
        daemon.wait_ready(std::time::Duration::from_secs(60));
        daemon
    }

    /// Starts the daemon on the real clock and waits until it is ready.
    pub fn start_on_real_clock(setup: &Setup) -> Daemon {
        let daemon = Daemon::spawn(setup, None);
        daemon.wait_ready(std::time::Duration::from_secs(60));
        daemon
    }

    /// Starts the daemon and returns once it listens, ready or not (its database may be down).
    pub fn start_listening(setup: &Setup, clock: &str) -> Daemon {
        Daemon::spawn(setup, Some(clock))
    }

    /// Starts the daemon, on a manual clock at `clock` or on the real one.
    fn spawn(setup: &Setup, clock: Option<&str>) -> Daemon {
        let config = setup.write();
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let log = setup.dir.path().join(format!("daemon-{n}.log"));
        let mut command = match setup.open_files {
            // The shell sets the limit and becomes the daemon (same process id).
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_driftwatch"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_driftwatch")),
        };
        let mut child = command
            .arg("--config")
            .arg(&config)
            .arg("run")
            .args(clock.map(|c| ["--manual-clock", c]).into_iter().flatten())
            .env("DRIFTWATCH_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env(
                "DRIFTWATCH_TEST_FEED_SECRET",
                "a long random feed secret for tests",
            )
            .env_remove("DRIFTWATCH_DATABASE_URL")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start driftwatch");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the daemon's first line");
        let Some(base) = first.trim().strip_prefix("driftwatch listening on ") else {
            let _ = child.kill();
            panic!(
                "the daemon did not start: {first:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Daemon {
            base: base.to_string(),
            child,
            log,
            http: reqwest::Client::new(),
        }
    }

    /// Whether `GET /readyz` answers `200` (asked without the async runtime, so that it can be
    /// asked from anywhere).
    pub fn is_ready(&self) -> bool {
        use std::io::{Read, Write};
        let Some(addr) = self.base.strip_prefix("http://") else {
            return false;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        let mut answer = String::new();
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: driftwatch\r\n\r\n")
            .and_then(|()| stream.read_to_string(&mut answer))
            .is_ok()
            && answer.split_whitespace().nth(1) == Some("200")
    }

    /// Waits (polling: readiness is up to the process and its database) until the daemon is
    /// ready, or panics with its log.
    pub fn wait_ready(&self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while !self.is_ready() {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon was not ready within {within:?}; its log:\n{}",
                self.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let res = req.send().await.expect("request to the daemon");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post_events(&self, events: &Value) -> (u16, Value) {
        self.request(
            reqwest::Method::POST,
            "/v1/events",
            Some(TOKEN),
            Some(("application/json", events.to_string().into_bytes())),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .request(reqwest::Method::GET, path, Some(TOKEN), None)
            .await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Moves the manual clock and waits until everything due by then has been handled.
    pub async fn clock(&self, now: &str) {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                "/v1/admin/clock",
                Some(TOKEN),
                Some((
                    "application/json",
                    json!({ "now": now }).to_string().into_bytes(),
                )),
            )
            .await;
        assert_eq!(status, 200, "moving the clock: {body}");
        assert_eq!(
            body["caught_up"],
            true,
            "the scheduler did not catch up; its log:\n{}",
            self.logs()
        );
    }

    /// The case's plan as the daemon's API gives it, at the daemon's clock.
    pub async fn plan(&self, case: &str) -> Value {
        self.get(&format!("/v1/cases/{case}/plan")).await
    }

    /// The case's stored obligations by id, each with the state the API gives it (`open`,
    /// `overdue`, `met`, `met_late` or `cancelled`): what the plan says, if the store agrees.
    pub async fn stored_obligations(
        &self,
        case: &str,
    ) -> std::collections::BTreeMap<String, String> {
        self.obligation_states(&format!("&case={case}"))
            .await
            .into_iter()
            .map(|((_, id), state)| (id, state))
            .collect()
    }

    /// Every case's stored obligations by (case, id), with the state the API gives each.
    pub async fn all_stored_obligations(
        &self,
    ) -> std::collections::BTreeMap<(String, String), String> {
        self.obligation_states("").await
    }

    async fn obligation_states(
        &self,
        filter: &str,
    ) -> std::collections::BTreeMap<(String, String), String> {
        let mut states = std::collections::BTreeMap::new();
        for query in ["outstanding", "met", "met_late", "cancelled"] {
            let body = self
                .get(&format!(
                    "/v1/obligations?state={query}&limit=10000{filter}"
                ))
                .await;
            for o in body["obligations"].as_array().into_iter().flatten() {
                let text = |field: &str| o[field].as_str().unwrap_or_default().to_string();
                states.insert((text("case"), text("id")), text("state"));
            }
        }
        states
    }

    /// Every outbox row, whatever its state.
    pub async fn outbox_all(&self) -> Vec<Value> {
        self.get("/v1/notifications?limit=10000").await["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The outbox rows in a state.
    pub async fn outbox(&self, state: &str) -> Vec<Value> {
        self.get(&format!("/v1/notifications?state={state}&limit=10000"))
            .await["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name}");
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.child.wait().expect("wait for the daemon")
    }

    /// The exit status, if the daemon exits within `within` (it is polled: exiting is up to the
    /// process, not the clock).
    pub fn exited_within(&mut self, within: std::time::Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the daemon's status") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static STARTS: AtomicU32 = AtomicU32::new(0);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub raw: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.raw
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default()
    }
}

#[derive(Clone)]
struct SmtpHandler {
    mailbox: Arc<Mailbox>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for SmtpHandler {
    /// Refusals come at RCPT, like a greylisting server's `451` or an unknown mailbox's `550`.
    fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
        let address = to.trim_matches(['<', '>']).to_ascii_lowercase();
        if let Some((code, left)) = self
            .mailbox
            .refuse_to
            .lock()
            .expect("refusals")
            .get_mut(&address)
            .filter(|(_, left)| *left > 0)
        {
            *left -= 1;
            return match code {
                550 => mailin_embedded::response::NO_MAILBOX,
                _ => mailin_embedded::response::INTERNAL_ERROR,
            };
        }
        let refuse = self
            .mailbox
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            mailin_embedded::response::INTERNAL_ERROR
        } else {
            mailin_embedded::response::OK
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let mail = Mail {
            to: self.to.clone(),
            raw: String::from_utf8_lossy(&self.data).replace("\r\n", "\n"),
        };
        self.mailbox
            .mail
            .lock()
            .expect("mailbox")
            .push(mail.clone());
        self.mailbox.arrived.notify_waiters();
        // Kept, but not yet confirmed: the sender waits for the `250`.
        let mut hold = self.mailbox.hold.lock().expect("hold");
        if let Some(held) = hold.as_mut() {
            held.push(mail);
            while hold.is_some() {
                hold = self.mailbox.released.wait(hold).expect("hold");
            }
        }
        mailin_embedded::response::OK
    }
}

/// A real SMTP server on a free port, keeping every message it accepts.
pub struct Mailbox {
    pub port: u16,
    mail: Mutex<Vec<Mail>>,
    /// Refuse this many messages with `451` before accepting again.
    refuse: AtomicU32,
    /// Refusals by recipient address (lower case): the reply code and how many more times.
    refuse_to: Mutex<std::collections::HashMap<String, (u16, u32)>>,
    arrived: Notify,
    /// While set, each message is kept as it arrives but its `250` is held back; these are the
    /// messages waiting for it.
    hold: Mutex<Option<Vec<Mail>>>,
    released: std::sync::Condvar,
}

impl Mailbox {
    pub fn start() -> Arc<Mailbox> {
        Mailbox::serve(std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP"))
    }

    /// On a given port: a server that comes up where a daemon has been failing to connect.
    pub fn start_on(port: u16) -> Arc<Mailbox> {
        Mailbox::serve(std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind SMTP"))
    }

    fn serve(listener: std::net::TcpListener) -> Arc<Mailbox> {
        let port = listener.local_addr().expect("SMTP address").port();
        let mailbox = Arc::new(Mailbox {
            port,
            mail: Mutex::new(Vec::new()),
            refuse: AtomicU32::new(0),
            refuse_to: Mutex::new(std::collections::HashMap::new()),
            arrived: Notify::new(),
            hold: Mutex::new(None),
            released: std::sync::Condvar::new(),
        });
        let handler = SmtpHandler {
            mailbox: Arc::clone(&mailbox),
            to: Vec::new(),
            data: Vec::new(),
        };
        std::thread::spawn(move || {
            let mut server = mailin_embedded::Server::new(handler);
            server
                .with_name("mail.test")
                .with_num_threads(64)
                .with_tcp_listener(listener);
            let _ = server.serve();
        });
        mailbox
    }

    pub fn refuse_next(&self, n: u32) {
        self.refuse.store(n, Ordering::SeqCst);
    }

    /// Refuses messages to `address` with `code` (`451`, a passing failure, or `550`, an
    /// address refused for good) the next `times` times, whatever order they arrive in.
    pub fn refuse_address(&self, address: &str, code: u16, times: u32) {
        self.refuse_to
            .lock()
            .expect("refusals")
            .insert(address.to_ascii_lowercase(), (code, times));
    }

    /// While on, every message is received and kept, but the server's `250` is held back until
    /// it is turned off: its sender is caught mid-send.
    pub fn hold(&self, on: bool) {
        let mut hold = self.hold.lock().expect("hold");
        match (on, hold.is_some()) {
            (true, false) => *hold = Some(Vec::new()),
            (false, true) => {
                *hold = None;
                self.released.notify_all();
            }
            _ => {}
        }
    }

    /// The messages waiting for their `250`.
    pub fn held(&self) -> Vec<Mail> {
        self.hold.lock().expect("hold").clone().unwrap_or_default()
    }

    pub fn mail(&self) -> Vec<Mail> {
        self.mail.lock().expect("mailbox").clone()
    }

    /// How many messages arrived.
    pub fn count(&self) -> usize {
        self.mail.lock().expect("mailbox").len()
    }
}

/// A server that accepts connections and never says a word: a mail server that has hung.
/// Connections are kept open, so a client waits until its own timeout.
pub struct Silent {
    pub port: u16,
    held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().expect("connections").push(stream);
            }
        });
        Silent { port, held }
    }

    /// How many connections it has taken.
    pub fn connections(&self) -> usize {
        self.held.lock().expect("connections").len()
    }
}

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub timestamp: String,
    pub signature_valid: bool,
    /// The timestamp is within [`TIMESTAMP_TOLERANCE`] of the receiver's real clock.
    pub timestamp_fresh: bool,
    pub body: Value,
    pub answered: u16,
}

/// How far a webhook's timestamp may be from the receiver's clock, either way: the Standard
/// Webhooks libraries' tolerance.
pub const TIMESTAMP_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A real HTTP server receiving webhooks. It verifies each one as the Standard Webhooks
/// libraries do (the signature, and a timestamp within [`TIMESTAMP_TOLERANCE`] of its own real
/// clock) and refuses one that fails with `400`; otherwise it answers with the next scripted
/// status (200 once the script is used up), never while `hang` is set, and only after a delay
/// while `slow` is.
pub struct Receiver {
    pub url: String,
    hooks: Mutex<Vec<Hook>>,
    /// Statuses to answer, each with an optional `Retry-After` in seconds.
    script: Mutex<VecDeque<(u16, Option<u64>)>>,
    hang: std::sync::atomic::AtomicBool,
    slow: Mutex<Option<std::time::Duration>>,
    pub arrived: Notify,
}

impl Receiver {
    pub async fn start() -> Arc<Receiver> {
        use axum::routing::post;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let receiver = Arc::new(Receiver {
            url: format!("http://{addr}/hook"),
            hooks: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            hang: std::sync::atomic::AtomicBool::new(false),
            slow: Mutex::new(None),
            arrived: Notify::new(),
        });
        let state = Arc::clone(&receiver);
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    pub fn script(&self, statuses: &[u16]) {
        self.script
            .lock()
            .expect("script")
            .extend(statuses.iter().map(|s| (*s, None)));
    }

    /// The next answer after those scripted already: `status` with `Retry-After: seconds`.
    pub fn script_retry_after(&self, status: u16, seconds: u64) {
        self.script
            .lock()
            .expect("script")
            .push_back((status, Some(seconds)));
    }

    pub fn hang(&self, on: bool) {
        self.hang.store(on, Ordering::SeqCst);
    }

    /// Answers each request only after `delay` (at once with `None`), having recorded it first.
    pub fn slow(&self, delay: Option<std::time::Duration>) {
        *self.slow.lock().expect("slow") = delay;
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().expect("hooks").clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.hooks.lock().expect("hooks").len()
    }
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    );
    let key = STANDARD
        .decode(WEBHOOK_SECRET.trim_start_matches("whsec_"))
        .expect("secret");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("hmac key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&body);
    let signature_valid = signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    let timestamp_fresh = timestamp.parse::<u64>().is_ok_and(|t| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        now.abs_diff(t) <= TIMESTAMP_TOLERANCE.as_secs()
    });
    let hang = r.hang.load(Ordering::SeqCst);
    let (answered, retry_after) = if !(signature_valid && timestamp_fresh) {
        // "Message timestamp too old/too new" or a bad signature: the library refuses it.
        (400, None)
    } else if hang {
        (0, None)
    } else {
        r.script
            .lock()
            .expect("script")
            .pop_front()
            .unwrap_or((200, None))
    };
    r.hooks.lock().expect("hooks").push(Hook {
        id,
        timestamp,
        signature_valid,
        timestamp_fresh,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered,
    });
    r.arrived.notify_waiters();
    if hang && answered == 0 {
        std::future::pending::<()>().await;
    }
    let slow = *r.slow.lock().expect("slow");
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    let status = axum::http::StatusCode::from_u16(answered).unwrap_or(axum::http::StatusCode::OK);
    match retry_after {
        Some(seconds) => (status, [("retry-after", seconds.to_string())]).into_response(),
        None => status.into_response(),
    }
}

/// `.eml` files in a spool folder: (file name, contents).
pub fn spooled(folder: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(folder)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read_to_string(e.path()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A rule that posts significant-event notices to the `teams` webhook.
pub const WEBHOOK_RULE: &str = r#"
rules:
  - id: significant_event_webhook
    title: Significant event posted to the IRO team's channel
    source: "Test: a council's Teams channel"
    on: significant_event
    notice: {to: ["webhook:teams"], template: significant_event, urgent: true}
"#;

/// A child looked after from 4 January 2027 and a significant event at `at`: the IRO's urgent
/// notice (and, with [`WEBHOOK_RULE`], a webhook) falls due at once.
pub fn significant_event(case: &str, id: &str, at: &str) -> Value {
    json!([
        {"id": format!("{id}-start"), "case": case, "type": "child_looked_after", "at": "2027-01-04T10:00:00Z",
         "data": {"start": "2027-01-04T10:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}},
        {"id": id, "case": case, "type": "significant_event", "at": at,
         "data": {"kind": "placement_disruption", "occurred_at": at}}
    ])
}

/// The example case's events as a JSON array.
pub fn example_events() -> Value {
    let text =
        std::fs::read_to_string(repo().join("examples/events.jsonl")).expect("example events");
    Value::Array(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("example event"))
            .collect(),
    )
}

/// The example case's events renamed to another case (ids prefixed by the case).
pub fn example_events_for(case: &str) -> Value {
    let Value::Array(events) = example_events() else {
        unreachable!()
    };
    Value::Array(
        events
            .into_iter()
            .map(|mut e| {
                e["id"] = json!(format!("{case}-{}", e["id"].as_str().unwrap_or_default()));
                e["case"] = json!(case);
                e
            })
            .collect(),
    )
}

/// What `driftwatch plan --format json` (the pure planner: no store, no daemon) says of these
/// events at `now`, with `setup`'s config: an array of case plans.
pub fn cli_plan(setup: &Setup, events: &[Value], now: &str) -> Value {
    let file = setup.dir.path().join("all-events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).expect("write the events");
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(setup.write())
        .args(["plan", "--format", "json", "--now", now, "--events"])
        .arg(&file)
        .env_remove("DRIFTWATCH_DATABASE_URL")
        .output()
        .expect("driftwatch plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

/// The URL of a fresh, empty PostgreSQL database, or `None` when `DRIFTWATCH_TEST_POSTGRES_URL`
/// (a URL to a server where the user may create databases) is not set. Tests that need it are
/// `#[ignore]`d, so without PostgreSQL they are reported as ignored, never passed.
pub async fn fresh_postgres() -> String {
    let admin = std::env::var("DRIFTWATCH_TEST_POSTGRES_URL").expect(
        "DRIFTWATCH_TEST_POSTGRES_URL must name a PostgreSQL server for the PostgreSQL tests",
    );
    sqlx::any::install_default_drivers();
    let name = format!(
        "driftwatch_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut conn)
    .await
    .expect("drop test database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Daemon {
    /// `GET /metrics`, parsed as Prometheus text.
    pub async fn metrics(&self) -> prometheus_parse::Scrape {
        let text = self.metrics_text().await;
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("valid Prometheus text")
    }

    /// `/metrics` as served.
    pub async fn metrics_text(&self) -> String {
        let (status, body) = self
            .request(reqwest::Method::GET, "/metrics", Some(READ_TOKEN), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_str().expect("metrics are text").to_string()
    }
}

/// The value of a counter or gauge with these labels, if present.
pub fn sample(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let matches = s.metric == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v));
        match (&s.value, matches) {
            (prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v), true) => {
                Some(*v)
            }
            (prometheus_parse::Value::Untyped(v), true) => Some(*v),
            _ => None,
        }
    })
}

/// A port nothing listens on (free when asked; a server may be started on it later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A TCP proxy in front of a server (PostgreSQL), which a test can cut as a crashed server or a
/// broken network looks to its clients, and restore. It runs on its own threads, so it keeps
/// forwarding while a test blocks.
pub struct Proxy {
    pub port: u16,
    target: String,
    runtime: Option<tokio::runtime::Runtime>,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    listener: Option<tokio::task::AbortHandle>,
    connections: Vec<tokio::task::AbortHandle>,
    hang_up: bool,
}

impl Proxy {
    /// Forwarding to the server of a database URL.
    pub fn start(url: &str) -> Proxy {
        let (start, end) = authority(url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let mut proxy = Proxy {
            port: 0,
            target: url[start..end].to_string(),
            runtime: Some(runtime),
            state: Arc::new(Mutex::new(ProxyState::default())),
        };
        proxy.port = proxy.listen(0);
        proxy
    }

    /// `url` with its server replaced by the proxy.
    pub fn url(&self, url: &str) -> String {
        let (start, end) = authority(url);
        format!("{}127.0.0.1:{}{}", &url[..start], self.port, &url[end..])
    }

    /// The server is down: every connection is cut and nothing listens on the port, so new ones
    /// are refused.
    pub fn refuse(&self) {
        let listener = {
            let mut state = self.state.lock().expect("proxy");
            for c in state.connections.drain(..) {
                c.abort();
            }
            state.listener.take()
        };
        if let Some(listener) = listener {
            listener.abort();
            // Closed when its task has ended, on the proxy's own threads.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !listener.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert!(listener.is_finished(), "the proxy's listener did not close");
        }
    }

    /// Every connection is cut, and new ones are closed as soon as they are made, as a pooler or
    /// load balancer in front of a dead server does.
    pub fn hang_up(&self) {
        let listening = {
            let mut state = self.state.lock().expect("proxy");
            state.hang_up = true;
            for c in state.connections.drain(..) {
                c.abort();
            }
            state.listener.is_some()
        };
        if !listening {
            self.listen(self.port);
        }
    }

    /// Forwarding again.
    pub fn restore(&self) {
        let listening = {
            let mut state = self.state.lock().expect("proxy");
            state.hang_up = false;
            state.listener.is_some()
        };
        if !listening {
            self.listen(self.port);
        }
    }

    fn listen(&self, port: u16) -> u16 {
        let runtime = self.runtime.as_ref().expect("the proxy's runtime");
        let listener = {
            let _inside = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            // The port is taken again after a cut, while its old connections are in TIME_WAIT.
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            socket
                .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                .expect("bind the proxy");
            socket.listen(128).expect("listen")
        };
        let bound = listener.local_addr().expect("proxy address").port();
        let (state, target) = (Arc::clone(&self.state), self.target.clone());
        let task = runtime.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut state = state.lock().expect("proxy");
                if state.hang_up {
                    continue;
                }
                let target = target.clone();
                let forward = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                state.connections.push(forward.abort_handle());
            }
        });
        self.state.lock().expect("proxy").listener = Some(task.abort_handle());
        bound
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where the `host:port` of a URL starts and ends.
fn authority(url: &str) -> (usize, usize) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let start = url[scheme_end..]
        .find('@')
        .map_or(scheme_end, |i| scheme_end + i + 1);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    (start, end)
}

/// An OAuth 2.0 token endpoint on a free port, as Microsoft's or Google's answers the
/// client-credentials grant, and the introspection an SMTP server asks to check a token.
pub struct TokenEndpoint {
    pub url: String,
    pub introspect_url: String,
    state: Arc<TokenState>,
}

pub struct TokenState {
    client_id: String,
    client_secret: String,
    scope: String,
    mailbox: String,
    /// Every token issued, in order.
    issued: Mutex<Vec<String>>,
    revoked: Mutex<Vec<String>>,
    /// While set, every request is refused as `invalid_client`.
    refuse: std::sync::atomic::AtomicBool,
    expires_in: u64,
}

impl TokenEndpoint {
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        scope: &str,
        mailbox: &str,
        expires_in: u64,
    ) -> TokenEndpoint {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind token endpoint");
        let addr = listener.local_addr().expect("token endpoint address");
        let state = Arc::new(TokenState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: scope.into(),
            mailbox: mailbox.into(),
            issued: Mutex::new(Vec::new()),
            revoked: Mutex::new(Vec::new()),
            refuse: std::sync::atomic::AtomicBool::new(false),
            expires_in,
        });
        let app = axum::Router::new()
            .route("/tenant/oauth2/v2.0/token", post(grant))
            .route("/introspect", get(introspect))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenEndpoint {
            url: format!("http://{addr}/tenant/oauth2/v2.0/token"),
            introspect_url: format!("http://{addr}/introspect"),
            state,
        }
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.issued.lock().expect("issued").clone()
    }

    pub fn revoke(&self, token: &str) {
        self.state
            .revoked
            .lock()
            .expect("revoked")
            .push(token.into());
    }

    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, Ordering::SeqCst);
    }
}

async fn grant(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    axum::extract::Form(form): axum::extract::Form<std::collections::HashMap<String, String>>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if state.refuse.load(Ordering::SeqCst)
        || field("grant_type") != "client_credentials"
        || field("client_id") != state.client_id
        || field("client_secret") != state.client_secret
    {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client",
                "error_description": format!("AADSTS7000215: Invalid client secret {}", field("client_secret"))})),
        );
    }
    if field("scope") != state.scope {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_scope"})),
        );
    }
    let mut issued = state.issued.lock().expect("issued");
    let token = format!("tok-{}-{}", issued.len() + 1, std::process::id());
    issued.push(token.clone());
    (
        axum::http::StatusCode::OK,
        axum::Json(
            json!({"token_type": "Bearer", "expires_in": state.expires_in, "access_token": token}),
        ),
    )
}

async fn introspect(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::http::StatusCode {
    let token = q.get("token").cloned().unwrap_or_default();
    let user = q.get("user").cloned().unwrap_or_default();
    let known = state.issued.lock().expect("issued").contains(&token);
    let revoked = state.revoked.lock().expect("revoked").contains(&token);
    if known && !revoked && user == state.mailbox {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNAUTHORIZED
    }
}

/// One message a real XOAUTH2-only SMTP server (aiosmtpd) accepted, with the sign-in it came in.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SignedInMail {
    pub user: String,
    pub token: String,
    pub to: Vec<String>,
    pub data: String,
}

/// `tests/it/support/xoauth2_smtp.py` (aiosmtpd) on a free port, checking tokens with `endpoint`.
pub struct XoauthSmtp {
    pub port: u16,
    child: Child,
    mail: Arc<(Mutex<Vec<SignedInMail>>, std::sync::Condvar)>,
}

impl XoauthSmtp {
    pub fn start(endpoint: &TokenEndpoint) -> XoauthSmtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo().join("tests/it/support/xoauth2_smtp.py"))
            .arg(port.to_string())
            .arg(&endpoint.introspect_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd: install Debian's python3-aiosmtpd");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines.next().and_then(Result::ok);
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the XOAUTH2 SMTP server did not start (is python3-aiosmtpd installed?)"
        );
        let mail = Arc::new((Mutex::new(Vec::new()), std::sync::Condvar::new()));
        let kept = Arc::clone(&mail);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(m) = serde_json::from_str::<SignedInMail>(&line) {
                    kept.0.lock().expect("mail").push(m);
                    kept.1.notify_all();
                }
            }
        });
        XoauthSmtp { port, child, mail }
    }

    /// Every message so far, once at least `n` have arrived (the server prints each just
    /// before its `250`, so one the daemon counts as sent may be a moment behind).
    pub fn mail_when(&self, n: usize) -> Vec<SignedInMail> {
        let (mail, arrived) = &*self.mail;
        let (mail, _) = arrived
            .wait_timeout_while(
                mail.lock().expect("mail"),
                std::time::Duration::from_secs(10),
                |m| m.len() < n,
            )
            .expect("mail");
        mail.clone()
    }
}

impl Drop for XoauthSmtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
