//! When a failed delivery is tried again: exponential backoff with jitter, up to a limit. Pure.
//!
//! The jitter is drawn from the notification's idempotency key and attempt number rather than a
//! random source, so retries of many notifications that failed together spread out, and a test
//! can predict each one.

use crate::config::DeliveryConfig;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The longest a receiver's `Retry-After` can hold a notification back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_config(d: &DeliveryConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: d.max_attempts,
            first: Duration::from_secs(d.first_retry_seconds),
            max: Duration::from_secs(d.max_retry_seconds.max(d.first_retry_seconds)),
        }
    }

    /// When to try again after attempt number `attempts` (counting from 1) failed, or `None`
    /// when the attempts are used up. `retry_after` is the receiver's own request, honoured up
    /// to a day.
    pub fn next_attempt(
        &self,
        key: &str,
        attempts: u32,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
    ) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let ceiling = self.first.saturating_mul(1u32 << doublings).min(self.max);
        // "Equal jitter": half the ceiling, plus up to the other half.
        let half = ceiling / 2;
        let delay = half + half.mul_f64(jitter(key, attempts));
        let delay = delay.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
        Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX))
    }
}

/// A fraction in [0, 1) fixed by the key and attempt.
fn jitter(key: &str, attempts: u32) -> f64 {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(attempts.to_be_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            first: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_limit() {
        let now: DateTime<Utc> = "2027-01-04T09:00:00Z".parse().unwrap();
        let p = policy();
        for key in ["dw1-a", "dw1-b", "dw1-c"] {
            for attempts in 1..6u32 {
                let at = p.next_attempt(key, attempts, now, None).unwrap();
                let secs = (at - now).num_seconds();
                let ceiling = (60i64 << (attempts - 1)).min(3600);
                assert!(
                    secs >= ceiling / 2 && secs <= ceiling,
                    "attempt {attempts}: {secs}s not within [{}, {ceiling}]",
                    ceiling / 2
                );
                // The same key and attempt always give the same time.
                assert_eq!(Some(at), p.next_attempt(key, attempts, now, None));
            }
            assert_eq!(p.next_attempt(key, 6, now, None), None, "gives up");
        }
        let a = p.next_attempt("dw1-a", 3, now, None);
        let b = p.next_attempt("dw1-b", 3, now, None);
        assert_ne!(a, b, "jitter spreads notifications that failed together");
    }

    #[test]
    fn a_receivers_retry_after_is_honoured_up_to_a_day() {
        let now: DateTime<Utc> = "2027-01-04T09:00:00Z".parse().unwrap();
        let p = policy();
        let at = p
            .next_attempt("k", 1, now, Some(Duration::from_secs(900)))
            .unwrap();
        assert_eq!((at - now).num_seconds(), 900);
        let at = p
            .next_attempt("k", 1, now, Some(Duration::from_secs(10 * 86400)))
            .unwrap();
        assert_eq!((at - now).num_seconds(), 86400);
    }
}
