//! Delivery: turning a claimed notification into an email or a signed webhook, and saying what
//! happened (delivered, try again, or failed for good).
//!
//! Owns the transports (SMTP, the `.eml` spool, HTTP) and their secrets, read from the
//! environment or files when the courier is built. Must not touch the store or decide when to
//! send; the scheduler does. Logs and error texts carry idempotency keys, case references and
//! status codes, never addresses or message text.

mod email;
mod oauth2;
pub mod retry;
mod webhook;

pub use email::Mailer;
pub use webhook::{Webhook, sign};

use crate::config::Config;
use crate::links::Links;
use crate::message;
use crate::planner::{NotificationKind, Target};
use crate::store::Claimed;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// A passing failure (connection refused, 5xx, 429): try again later, no sooner than
    /// `after` if the receiver said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (a template that does not render, a 4xx, an address the server
    /// refuses for good).
    Failed {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    #[error("email.smtp: {0}")]
    Smtp(String),
    #[error("webhooks.{name}: {message}")]
    Webhook { name: String, message: String },
    #[error("{0}")]
    Secret(String),
}

/// Every transport the configuration names, ready to send.
pub struct Courier {
    mailer: Mailer,
    webhooks: BTreeMap<String, Webhook>,
    http: reqwest::Client,
    /// Signs feed URLs and acknowledgement links; off without a configured secret.
    links: Option<Links>,
}

impl Courier {
    /// Builds the transports, reading secrets from the environment and files now, so a missing
    /// secret stops the start (or the reload) with a clear message.
    pub fn from_config(config: &Config) -> Result<Courier, CourierError> {
        let mailer = Mailer::from_config(&config.email)?;
        let webhooks = config
            .webhooks
            .iter()
            .map(|(name, hook)| Ok((name.clone(), Webhook::from_config(name, hook)?)))
            .collect::<Result<_, CourierError>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("driftwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CourierError::Webhook {
                name: "*".into(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let links = match &config.links {
            None => None,
            Some(l) => {
                let secret = required_secret(
                    "links secret",
                    l.secret_env.as_deref(),
                    l.secret_file.as_deref(),
                    "links: give secret_env or secret_file (a long random string)",
                )?;
                let valid = chrono::Duration::days(i64::from(l.ack_valid_days));
                Some(Links::new(secret, &l.public_url, valid))
            }
        };
        Ok(Courier {
            mailer,
            webhooks,
            http,
            links,
        })
    }

    /// The link signer, when a link secret is configured.
    pub fn links(&self) -> Option<&Links> {
        self.links.as_ref()
    }

    /// Where email goes, for the start-up log.
    pub fn describe(&self) -> String {
        self.mailer.describe()
    }

    /// Sends an already rendered email (a digest) once, under `key` as its Message-ID.
    pub async fn send_email(
        &self,
        key: &str,
        name: Option<&str>,
        address: &str,
        message: &message::Message,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.mailer.send(key, name, address, message, now).await
    }

    /// Renders the notification with the rules in force and sends it once.
    pub async fn deliver(&self, config: &Config, c: &Claimed, now: DateTime<Utc>) -> Outcome {
        let n = &c.notification;
        match &n.recipient {
            Target::Email { name, email, .. } => {
                // Only the recipient of a reminder or escalation gets its acknowledgement link.
                let ladder = matches!(
                    n.kind,
                    NotificationKind::Reminder | NotificationKind::Escalation
                );
                let links = message::MessageLinks {
                    acknowledge: self
                        .links
                        .as_ref()
                        .filter(|_| ladder)
                        .map(|l| l.ack_url(&c.key, now)),
                };
                let message = match message::render(&config.rules, &c.case, n, &c.data, &links) {
                    Ok(m) => m,
                    Err(e) => {
                        return Outcome::Failed {
                            reason: e.to_string(),
                        };
                    }
                };
                self.mailer
                    .send(&c.key, name.as_deref(), email, &message, now)
                    .await
            }
            Target::Webhook { webhook } => {
                let Some(hook) = self.webhooks.get(webhook) else {
                    return Outcome::Failed {
                        reason: format!("no webhook `{webhook}` in the config"),
                    };
                };
                let body_template = config.webhooks.get(webhook).and_then(|w| w.body.as_deref());
                let body = match message::render_webhook(
                    &config.rules,
                    &c.case,
                    n,
                    &c.data,
                    body_template,
                    now,
                ) {
                    Ok(b) => b,
                    Err(e) => {
                        return Outcome::Failed {
                            reason: e.to_string(),
                        };
                    }
                };
                hook.send(&self.http, &c.key, &body).await
            }
            // The plan found nobody to tell: dead at once, with the reason, for an admin.
            target @ Target::Nobody { .. } => Outcome::Failed {
                reason: target.nobody_reason().unwrap_or_default(),
            },
        }
    }
}

/// A secret named by environment variable or file, trimmed of the file's final newline.
/// `None` when neither is configured.
/// As [`read_secret`], for a secret that must be given and not empty.
pub(crate) fn required_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&std::path::Path>,
    missing: &str,
) -> Result<String, CourierError> {
    read_secret(what, env, file)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CourierError::Secret(missing.into()))
}

pub(crate) fn read_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, CourierError> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(CourierError::Secret(format!(
                "{what}: the environment variable {var} is not set"
            ))),
        };
    }
    if let Some(path) = file {
        return match std::fs::read_to_string(path) {
            Ok(v) => Ok(Some(v.trim_end_matches(['\r', '\n']).to_string())),
            Err(e) => Err(CourierError::Secret(format!(
                "{what}: cannot read {}: {e}",
                path.display()
            ))),
        };
    }
    Ok(None)
}
