//! OAuth 2.0 access tokens for signing in to SMTP (XOAUTH2): the client-credentials grant
//! (RFC 6749 s.4.4) against the configured token endpoint, each token kept until shortly before
//! it expires. Owns the client secret and the token in use; must not send mail (the mailer asks
//! for a token and says when the server refused one) or decide when to retry.
//!
//! One form POST is all the grant needs, so it is made with the HTTP client driftwatch already
//! has rather than a general OAuth library. Neither the secret nor a token ever appears in an
//! error or a log: reasons name the endpoint's host and the OAuth error code only.

use crate::config::SmtpOAuth2;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;

/// A token is asked for again once less than this share of its lifetime is left, and at the
/// latest five minutes before it expires: a message never starts with a token about to lapse.
const REFRESH_WHEN_LEFT: (u32, Duration) = (4, Duration::from_secs(300));

/// The lifetime assumed when the endpoint does not say (`expires_in` is only recommended).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(600);

/// An access token and when to stop using it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub secret: String,
    /// Ask for a new token from this moment on.
    pub refresh_at: DateTime<Utc>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

/// Why no token could be had; never holds the secret or a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint {host} could not be reached: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("the token endpoint {host} refused the client credentials: HTTP {status}{code}")]
    Refused {
        host: String,
        status: u16,
        /// `, invalid_client` when the endpoint gave an OAuth error code.
        code: String,
    },
    #[error("the token endpoint {host} answered without an access token")]
    Malformed { host: String },
}

/// The endpoint, the client's credentials, and the token in use.
pub struct TokenSource {
    url: reqwest::Url,
    host: String,
    client_id: String,
    client_secret: String,
    scope: String,
    http: reqwest::Client,
    current: Mutex<Option<Token>>,
}

#[derive(Deserialize)]
struct Granted {
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Refusal {
    error: Option<String>,
}

impl TokenSource {
    /// `client_secret` is read by the caller (from a file or the environment) when the courier
    /// is built, so a missing secret stops the start.
    pub fn new(
        config: &SmtpOAuth2,
        client_secret: String,
        timeout: Duration,
    ) -> Result<TokenSource, String> {
        let url =
            reqwest::Url::parse(&config.token_url).map_err(|e| format!("oauth2.token_url: {e}"))?;
        let host = url.host_str().unwrap_or("?").to_string();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("driftwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(TokenSource {
            url,
            host,
            client_id: config.client_id.clone(),
            client_secret,
            scope: config.scope.clone(),
            http,
            current: Mutex::new(None),
        })
    }

    /// The token endpoint's host, for logs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The token to sign in with at `now`: the one in use while it is fresh, else a new one.
    pub async fn token(&self, now: DateTime<Utc>) -> Result<Token, TokenError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref().filter(|t| now < t.refresh_at) {
            return Ok(token.clone());
        }
        let token = self.request(now).await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// The server refused `token` (revoked, or expired early): the next message asks for a new
    /// one. A token already replaced by another message is left alone.
    pub async fn forget(&self, token: &Token) {
        let mut current = self.current.lock().await;
        if current.as_ref() == Some(token) {
            *current = None;
        }
    }

    async fn request(&self, now: DateTime<Utc>) -> Result<Token, TokenError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", self.scope.as_str()),
        ];
        let response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::Unreachable {
                host: self.host.clone(),
                reason: if e.is_timeout() {
                    "no answer in time".into()
                } else if e.is_connect() {
                    "the connection was refused or failed".into()
                } else {
                    "the exchange failed".into()
                },
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            // Only the OAuth error code (`invalid_client`), a fixed vocabulary: the description
            // may quote what was sent.
            let code = serde_json::from_slice::<Refusal>(&body)
                .ok()
                .and_then(|r| r.error)
                .filter(|c| c.len() <= 64 && c.chars().all(|c| c.is_ascii_graphic()))
                .map(|c| format!(", {c}"))
                .unwrap_or_default();
            return Err(TokenError::Refused {
                host: self.host.clone(),
                status: status.as_u16(),
                code,
            });
        }
        let granted: Granted =
            serde_json::from_slice(&body).map_err(|_| TokenError::Malformed {
                host: self.host.clone(),
            })?;
        let secret = granted
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TokenError::Malformed {
                host: self.host.clone(),
            })?;
        let lifetime = granted
            .expires_in
            .map_or(ASSUMED_LIFETIME, Duration::from_secs);
        Ok(Token {
            secret,
            refresh_at: now + refresh_after(lifetime),
        })
    }
}

/// How long a token with `lifetime` is used before a new one is asked for.
fn refresh_after(lifetime: Duration) -> chrono::Duration {
    let (share, most) = REFRESH_WHEN_LEFT;
    let margin = (lifetime / share).min(most);
    chrono::Duration::from_std(lifetime - margin).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let hour = Duration::from_secs(3600);
        // An hour's token (Microsoft 365's usual) is used for 55 minutes.
        assert_eq!(refresh_after(hour), chrono::Duration::minutes(55));
        // A short one is renewed with a quarter of its life left.
        assert_eq!(
            refresh_after(Duration::from_secs(120)),
            chrono::Duration::seconds(90)
        );
        assert_eq!(refresh_after(Duration::ZERO), chrono::Duration::zero());
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let t = Token {
            secret: "eyJ0eXAiOi".into(),
            refresh_at: DateTime::UNIX_EPOCH,
        };
        assert!(!format!("{t:?}").contains("eyJ0"));
    }
}
