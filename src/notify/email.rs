//! Email: SMTP through lettre, or `.eml` files in a spool folder when no server is configured.
//!
//! The `Message-ID` is the notification's idempotency key, so a message sent again after a crash
//! is recognisably the same message; in the spool the file name is the key, so it is replaced, not
//! doubled. Building a message never panics: a name or address that cannot go in a header (one
//! stored before such values were refused) is an error that makes the notification dead with
//! its reason, and a subject's line breaks become spaces.

use super::oauth2::{Token, TokenSource};
use super::{CourierError, Outcome, read_secret, required_secret};
use crate::config::{EmailConfig, SmtpTls};
use crate::event::breaks_a_line;
use crate::message::Message;
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

pub enum Mailer {
    Smtp {
        sign_in: SignIn,
        from: Mailbox,
        server: String,
        /// The longest one attempt at a message may take, whatever the server does, a token's
        /// fetch included: `email.smtp.timeout_seconds`.
        limit: Duration,
    },
    Spool {
        folder: PathBuf,
        from: Mailbox,
    },
}

/// How the SMTP connection signs in: once for good (no sign-in, or a password), or with an
/// OAuth 2.0 token that changes, the transport being rebuilt (and its pooled connections
/// dropped) for each new token.
pub enum SignIn {
    Fixed(AsyncSmtpTransport<Tokio1Executor>),
    Token(Box<TokenSignIn>),
}

pub struct TokenSignIn {
    builder: AsyncSmtpTransportBuilder,
    username: String,
    tokens: TokenSource,
    /// The transport signed in with the token in use.
    current: tokio::sync::Mutex<Option<(Token, AsyncSmtpTransport<Tokio1Executor>)>>,
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
        let timeout = Duration::from_secs(smtp.timeout_seconds);
        let mut builder = builder.timeout(Some(timeout));
        if let Some(port) = smtp.port {
            builder = builder.port(port);
        }
        let sign_in = match (&smtp.oauth2, &smtp.username) {
            (Some(oauth2), Some(username)) => {
                let secret = required_secret(
                    "email.smtp.oauth2 client secret",
                    oauth2.client_secret_env.as_deref(),
                    oauth2.client_secret_file.as_deref(),
                    "email.smtp.oauth2: give client_secret_file or client_secret_env",
                )?;
                SignIn::Token(Box::new(TokenSignIn {
                    builder: builder.authentication(vec![Mechanism::Xoauth2]),
                    username: username.clone(),
                    tokens: TokenSource::new(oauth2, secret, timeout)
                        .map_err(CourierError::Smtp)?,
                    current: tokio::sync::Mutex::new(None),
                }))
            }
            (Some(_), None) => {
                return Err(CourierError::Smtp(
                    "oauth2 needs username, the mailbox driftwatch sends from".into(),
                ));
            }
            (None, _) => {
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
                            "give both username and a password (password_env or password_file), \
                             or neither"
                                .into(),
                        ));
                    }
                }
                SignIn::Fixed(builder.build())
            }
        };
        Ok(Mailer::Smtp {
            sign_in,
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
            Mailer::Smtp {
                server,
                sign_in: SignIn::Token(t),
                ..
            } => format!(
                "SMTP server {server}, signing in with OAuth 2.0 tokens from {}",
                t.tokens.host()
            ),
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
            Mailer::Smtp { sign_in, limit, .. } => {
                // lettre's own timeout covers each read and write, so an exchange of many of
                // them (or a server that stops answering after refusing a message) could take a
                // multiple of it: the whole attempt, the retry on a fresh connection and a
                // token's fetch included, is bounded by the configured timeout.
                match tokio::time::timeout(*limit, sign_in.send(email, now)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Retry {
                        reason: "the SMTP server did not answer in time".into(),
                        after: None,
                    },
                }
            }
        }
    }
}

impl SignIn {
    async fn send(&self, email: lettre::Message, now: DateTime<Utc>) -> Outcome {
        match self {
            SignIn::Fixed(transport) => match exchange(transport, &email).await {
                Ok(()) => Outcome::Delivered,
                Err(e) => smtp_outcome(&e),
            },
            SignIn::Token(t) => {
                let TokenSignIn {
                    builder,
                    username,
                    tokens,
                    current,
                } = t.as_ref();
                // A token the server refuses (revoked, or expired early) is dropped and a new
                // one tried at once, once.
                for _ in 0..2 {
                    let token = match tokens.token(now).await {
                        Ok(t) => t,
                        Err(e) => {
                            return Outcome::Retry {
                                reason: format!("no token to sign in to the SMTP server: {e}"),
                                after: None,
                            };
                        }
                    };
                    let transport = signed_in(builder, username, current, &token).await;
                    match exchange(&transport, &email).await {
                        Ok(()) => return Outcome::Delivered,
                        Err(e) if refused_sign_in(&e) => tokens.forget(&token).await,
                        Err(e) => return smtp_outcome(&e),
                    }
                }
                Outcome::Retry {
                    reason: "the SMTP server refused a new access token (check that the \
                             application may send as email.smtp.username)"
                        .into(),
                    after: None,
                }
            }
        }
    }
}

/// The transport signed in with `token`, built when the token is new.
async fn signed_in(
    builder: &AsyncSmtpTransportBuilder,
    username: &str,
    current: &tokio::sync::Mutex<Option<(Token, AsyncSmtpTransport<Tokio1Executor>)>>,
    token: &Token,
) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut current = current.lock().await;
    match current.as_ref() {
        Some((t, transport)) if t == token => transport.clone(),
        _ => {
            let transport = builder
                .clone()
                .credentials(Credentials::new(username.to_string(), token.secret.clone()))
                .build();
            *current = Some((token.clone(), transport.clone()));
            transport
        }
    }
}

/// One message's exchange. A pooled connection the server closed while idle fails at once
/// without an SMTP reply; one more try on a fresh connection is the cure (lettre #743). A server
/// that did not answer in time is not asked again in this attempt.
async fn exchange(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    email: &lettre::Message,
) -> Result<(), lettre::transport::smtp::Error> {
    match transport.send(email.clone()).await {
        Err(e)
            if e.status().is_none() && !e.is_permanent() && !e.is_client() && !e.is_timeout() =>
        {
            transport.send(email.clone()).await.map(drop)
        }
        other => other.map(drop),
    }
}

/// The server would not take the sign-in: `535` (credentials refused), `530` or `534`, or a
/// challenge after an XOAUTH2 sign-in, which is how some servers say the token was refused.
fn refused_sign_in(e: &lettre::transport::smtp::Error) -> bool {
    match e.status() {
        Some(code) => matches!(code.to_string().as_str(), "530" | "534" | "535"),
        None => e.is_client(),
    }
}

/// The message as it will be sent, or why it cannot be built (no value in the reason).
fn build(
    key: &str,
    from: &Mailbox,
    name: Option<&str>,
    address: &str,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<lettre::Message, String> {
    if name.is_some_and(|n| n.chars().any(breaks_a_line)) {
        return Err(
            "the recipient's name holds control characters or line breaks, which cannot go in a \
             mail header"
                .into(),
        );
    }
    if address.chars().any(breaks_a_line) {
        return Err("the recipient's email address is not valid".into());
    }
    // lettre panics on some header values (a name with CR LF once did); whatever else it may
    // refuse that way must still end as an error, never a panic.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
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
            .subject(one_line(&message.subject))
            .date(now.into());
        let email = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(message.text.clone()),
            ),
        }
        .map_err(|e| format!("cannot build the message: {e}"))?;
        // Formatting is where a bad header shows; done once here so that sending cannot fail so.
        let _ = email.formatted();
        Ok(email)
    }))
    .unwrap_or_else(|_| Err("the message could not be built from its headers".into()))
}

/// A subject on one line: each run of line breaks and control characters becomes a space.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if breaks_a_line(c) {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str) -> Message {
        Message {
            subject: subject.into(),
            text: "Body".into(),
            html: None,
        }
    }

    fn built(name: Option<&str>, address: &str, subject: &str) -> Result<String, String> {
        let from: Mailbox = "driftwatch <driftwatch@council.example>"
            .parse()
            .expect("from");
        let now = "2027-01-04T09:00:00Z".parse().expect("time");
        build("dw1-k", &from, name, address, &message(subject), now)
            .map(|m| String::from_utf8_lossy(&m.formatted()).into_owned())
    }

    /// Values stored before they were refused at the API end as an error naming the problem,
    /// never a panic (lettre panicked on a name with CR LF) and never their text.
    #[test]
    fn a_header_value_with_line_breaks_is_an_error_not_a_panic() {
        for name in [
            "Sam\r\nBcc: x@y.example",
            "Sam\nBcc: x@y.example",
            "Sam\0",
            "Sam\u{85}Bcc",
            "Sam\u{2028}x",
            "Sam\u{7f}",
            "Sam\tSocial",
        ] {
            let error = built(Some(name), "sam@council.example", "Subject")
                .expect_err("a name with a control character is refused");
            assert!(error.contains("recipient's name"), "{error}");
            assert!(!error.contains("Sam"), "{error}");
        }
        for address in [
            "sam@council.example\r\nBcc: x@y.example",
            "sam\0@council.example",
        ] {
            let error = built(Some("Sam"), address, "Subject").expect_err("refused");
            assert!(error.contains("address is not valid"), "{error}");
        }
    }

    #[test]
    fn a_subject_with_line_breaks_stays_on_one_line() {
        let text = built(
            Some("Sam"),
            "sam@council.example",
            "Case C-1:\r\nBcc: x@y.example\u{85}end",
        )
        .expect("built");
        let headers: Vec<&str> = text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .split("\r\n")
            .collect();
        assert!(headers.iter().all(|h| !h.starts_with("Bcc")), "{headers:?}");
        assert!(
            headers.contains(&"Subject: Case C-1: Bcc: x@y.example end"),
            "{headers:?}"
        );
        assert_eq!(one_line("\n a\r\n\r\nb \u{2029}"), " a b ");
    }
}
