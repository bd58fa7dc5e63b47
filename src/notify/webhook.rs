//! Webhooks, signed by the Standard Webhooks scheme: `webhook-id` (the idempotency key),
//! `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`. A receiver verifies the signature, refuses a timestamp more than a few
//! minutes from its own clock, and drops repeats by id; so the timestamp is the real time of
//! sending ([`crate::clock::wall_now`]), even under a manual clock, whose time goes in the body.

use super::{CourierError, Outcome, read_secret};
use crate::config::WebhookConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

pub struct Webhook {
    url: String,
    /// The signing key; without one the request goes unsigned (an incoming webhook of Teams or
    /// Slack, whose secret is its URL).
    secret: Option<Vec<u8>>,
    /// The longest the whole request may take.
    timeout: Duration,
}

impl Webhook {
    pub fn from_config(name: &str, hook: &WebhookConfig) -> Result<Webhook, CourierError> {
        let secret = read_secret(
            &format!("webhooks.{name} secret"),
            hook.secret_env.as_deref(),
            hook.secret_file.as_deref(),
        )?;
        let secret = match secret {
            None => None,
            // Standard Webhooks secrets are `whsec_` and base64; anything else is used as is.
            Some(s) => Some(match s.strip_prefix("whsec_") {
                Some(b64) => STANDARD.decode(b64).map_err(|_| CourierError::Webhook {
                    name: name.into(),
                    message: "the secret starts with whsec_ but the rest is not base64".into(),
                })?,
                None => s.into_bytes(),
            }),
        };
        Ok(Webhook {
            url: hook.url.clone(),
            secret,
            timeout: Duration::from_secs(hook.timeout_seconds),
        })
    }

    /// Posts `body` once, signed with the real time of sending.
    pub async fn send(&self, http: &reqwest::Client, key: &str, body: &str) -> Outcome {
        let timestamp = crate::clock::wall_now().timestamp();
        let mut request = http
            .post(&self.url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", key)
            .header("webhook-timestamp", timestamp.to_string())
            .body(body.to_string());
        if let Some(secret) = &self.secret {
            request = request.header("webhook-signature", sign(secret, key, timestamp, body));
        }
        match request.send().await {
            Ok(response) => status_outcome(response.status().as_u16(), retry_after(&response)),
            Err(e) if e.is_timeout() => Outcome::Retry {
                reason: "the webhook did not answer in time".into(),
                after: None,
            },
            Err(_) => Outcome::Retry {
                reason: "could not connect to the webhook".into(),
                after: None,
            },
        }
    }
}

/// The `webhook-signature` header value for a message.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// 2xx delivered; 408, 429 and 5xx retried; any other answer fails for good.
fn status_outcome(status: u16, after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("the webhook answered HTTP {status}"),
            after,
        },
        _ => Outcome::Failed {
            reason: format!("the webhook answered HTTP {status}"),
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from webhook receivers and ignored).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example in the Standard Webhooks specification.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert_eq!(status_outcome(204, None), Outcome::Delivered);
        for s in [408, 429, 500, 503] {
            assert!(
                matches!(status_outcome(s, None), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [301, 400, 401, 404, 410] {
            assert!(
                matches!(status_outcome(s, None), Outcome::Failed { .. }),
                "{s}"
            );
        }
    }
}
