//! Email: SMTP through lettre, or `.eml` files in a spool folder when no server is configured.
//!
//! The `Message-ID` is the notification's idempotency key, so a message sent again after a crash
//! is recognisably the same message; in the spool the file name is the key, so it is replaced, not
//! doubled.

use super::{CourierError, Outcome, read_secret};
use crate::config::{EmailConfig, SmtpTls};
use crate::message::Message;
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        server: String,
        /// The longest one attempt at a message may take, whatever the server does:
        /// `email.smtp.timeout_seconds`.
        limit: Duration,
    },
    Spool {
        folder: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn from_config(email: &EmailConfig) -> Result<Mailer, CourierError> {
        let from: Mailbox = email
            .from
            .parse()
            .map_err(|e| CourierError::Smtp(format!("email.from: {e}")))?;
        let Some(smtp) = &email.smtp else {
            return Ok(Mailer::Spool {
                folder: email.spool.clone(),
                from,
            });
        };
        let builder = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &smtp.host,
            )),
        }
        .map_err(|e| CourierError::Smtp(e.to_string()))?;
        let mut builder = builder.timeout(Some(Duration::from_secs(smtp.timeout_seconds)));
        if let Some(port) = smtp.port {
            builder = builder.port(port);
        }
        let password = read_secret(
            "email.smtp password",
            smtp.password_env.as_deref(),
            smtp.password_file.as_deref(),
        )?;
        match (&smtp.username, password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            _ => {
                return Err(CourierError::Smtp(
                    "give both username and a password (password_env or password_file), or neither"
                        .into(),
                ));
            }
        }
        Ok(Mailer::Smtp {
            transport: builder.build(),
            from,
            server: match smtp.port {
                Some(port) => format!("{}:{port}", smtp.host),
                None => smtp.host.clone(),
            },
            limit: Duration::from_secs(smtp.timeout_seconds),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { server, .. } => format!("SMTP server {server}"),
            Mailer::Spool { folder, .. } => format!(".eml files in {}", folder.display()),
        }
    }

    fn from(&self) -> &Mailbox {
        match self {
            Mailer::Smtp { from, .. } | Mailer::Spool { from, .. } => from,
        }
    }

    pub async fn send(
        &self,
        key: &str,
        name: Option<&str>,
        address: &str,
        message: &Message,
        now: DateTime<Utc>,
    ) -> Outcome {
        let email = match build(key, self.from(), name, address, message, now) {
            Ok(e) => e,
            Err(reason) => return Outcome::Failed { reason },
        };
        match self {
            Mailer::Spool { folder, .. } => spool(folder, key, &email.formatted()).await,
            Mailer::Smtp {
                transport, limit, ..
            } => {
                let exchange = async {
                    let first = transport.send(email.clone()).await;
                    // A pooled connection the server closed while idle fails at once without
                    // an SMTP reply; one more try on a fresh connection is the cure (lettre #743).
                    // A server that did not answer in time is not asked again in this attempt.
                    match first {
                        Err(e) if e.status().is_none() && !e.is_permanent() && !e.is_timeout() => {
                            transport.send(email).await
                        }
                        other => other,
                    }
                };
                // lettre's own timeout covers each read and write, so an exchange of many of
                // them (or a server that stops answering after refusing a message) could take a
                // multiple of it: the whole attempt, the retry on a fresh connection included, is
                // bounded by the configured timeout.
                match tokio::time::timeout(*limit, exchange).await {
                    Ok(Ok(_)) => Outcome::Delivered,
                    Ok(Err(e)) => smtp_outcome(&e),
                    Err(_) => Outcome::Retry {
                        reason: "the SMTP server did not answer in time".into(),
                        after: None,
                    },
                }
            }
        }
    }
}

fn build(
    key: &str,
    from: &Mailbox,
    name: Option<&str>,
    address: &str,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<lettre::Message, String> {
    let to = Mailbox::new(
        name.map(str::to_string),
        address
            .parse()
            .map_err(|_| "the recipient's email address is not valid".to_string())?,
    );
    let domain = from.email.domain().to_string();
    let builder = lettre::Message::builder()
        .message_id(Some(format!("<{key}@{domain}>")))
        .from(from.clone())
        .to(to)
        .subject(&message.subject)
        .date(now.into());
    let built = match &message.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(message.text.clone()),
        ),
    };
    built.map_err(|e| format!("cannot build the message: {e}"))
}

/// Writes `KEY.eml` whole or not at all (a temporary file renamed into place).
async fn spool(folder: &std::path::Path, key: &str, bytes: &[u8]) -> Outcome {
    let write = async {
        tokio::fs::create_dir_all(folder).await?;
        let tmp = folder.join(format!(".{key}.tmp"));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::File::open(&tmp).await?.sync_all().await?;
        tokio::fs::rename(&tmp, folder.join(format!("{key}.eml"))).await
    };
    match write.await {
        Ok(()) => Outcome::Delivered,
        Err(e) => Outcome::Retry {
            reason: format!("cannot write to the spool folder: {e}"),
            after: None,
        },
    }
}

/// What an SMTP failure means, described by its reply code only: a server's text can echo the
/// recipient's address.
fn smtp_outcome(e: &lettre::transport::smtp::Error) -> Outcome {
    let reason = match e.status() {
        Some(code) => format!("the SMTP server answered {code}"),
        None if e.is_timeout() => "the SMTP server did not answer in time".to_string(),
        None if e.is_tls() => "TLS with the SMTP server failed".to_string(),
        None => "could not talk to the SMTP server".to_string(),
    };
    if e.is_permanent() {
        Outcome::Failed { reason }
    } else {
        Outcome::Retry {
            reason,
            after: None,
        }
    }
}
