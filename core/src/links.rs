//! Secret links: the calendar-feed URLs and the acknowledgement links in reminders and
//! escalations. Both work without a login because the URL itself is signed with the council's
//! link secret (HMAC-SHA256); changing the secret withdraws every link.
//!
//! - A feed token is an HMAC of the person's address, so the URL does not contain the address.
//! - An acknowledgement token names one notification (its idempotency key, which already binds
//!   the case, the step and the recipient) and when the link expires, with an HMAC of both. It
//!   is only ever written into the message sent to that recipient, so nobody can acknowledge what
//!   was not sent to them.
//!
//! Pure: signing and checking. Must not read the store or the clock (callers pass `now`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What the link secret signs, with where people reach driftwatch.
#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    public_url: String,
    /// How long an acknowledgement link works after its message is sent.
    pub ack_valid: Duration,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("public_url", &self.public_url)
            .field("ack_valid", &self.ack_valid)
            .finish_non_exhaustive()
    }
}

/// Why an acknowledgement link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not valid: it may have been altered or cut short")]
    Invalid,
    #[error("this link has expired")]
    Expired,
}

impl Links {
    pub fn new(secret: impl Into<Vec<u8>>, public_url: &str, ack_valid: Duration) -> Links {
        Links {
            secret: secret.into(),
            public_url: public_url.trim_end_matches('/').to_string(),
            ack_valid,
        }
    }

    /// `https://driftwatch.council.example/feeds/TOKEN.ics`
    pub fn feed_url(&self, email: &str) -> String {
        format!("{}/feeds/{}.ics", self.public_url, self.feed_token(email))
    }

    /// The feed token for a person (their address, lower-cased).
    pub fn feed_token(&self, email: &str) -> String {
        let email = email.trim().to_lowercase();
        URL_SAFE_NO_PAD.encode(self.mac(b"feed", email.as_bytes()).finalize().into_bytes())
    }

    /// Which of `people` a feed token was made for, if any. Every candidate is compared in
    /// constant time.
    pub fn feed_owner<'a>(
        &self,
        token: &str,
        people: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let signature = URL_SAFE_NO_PAD.decode(token).ok()?;
        let mut found = None;
        for email in people {
            let email = email.trim().to_lowercase();
            let ok = self
                .mac(b"feed", email.as_bytes())
                .verify_slice(&signature)
                .is_ok();
            if ok && found.is_none() {
                found = Some(email);
            }
        }
        found
    }

    /// The acknowledgement link for a notification sent at `sent`.
    pub fn ack_url(&self, key: &str, sent: DateTime<Utc>) -> String {
        let expires = sent
            .checked_add_signed(self.ack_valid)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        format!("{}/ack/{}", self.public_url, self.ack_token(key, expires))
    }

    /// `KEY.EXPIRES.SIGNATURE`, EXPIRES in seconds since 1970.
    pub fn ack_token(&self, key: &str, expires: DateTime<Utc>) -> String {
        let payload = format!("{key}.{}", expires.timestamp());
        let signature = self.mac(b"ack", payload.as_bytes()).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The notification key an acknowledgement token names, if its signature holds and it has
    /// not expired at `now`. The signature is checked first, in constant time, so an altered
    /// expiry reads as invalid rather than expired.
    pub fn ack_key(&self, token: &str, now: DateTime<Utc>) -> Result<String, LinkError> {
        self.ack(token, now).map(|(key, _)| key)
    }

    /// [`Links::ack_key`], with when the link expires.
    pub fn ack(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), LinkError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Invalid)?;
        self.mac(b"ack", payload.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| LinkError::Invalid)?;
        let (key, expires) = payload.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let expires = expires
            .parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or(LinkError::Invalid)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok((key.to_string(), expires))
    }

    /// An HMAC under the secret, separated by purpose so a token for one can never pass as the
    /// other.
    fn mac(&self, purpose: &[u8], message: &[u8]) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        m.update(b"driftwatch ");
        m.update(purpose);
        m.update(b"\x1f");
        m.update(message);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(secret: &str) -> Links {
        Links::new(secret, "https://dw.example/", Duration::days(30))
    }

    fn alter(token: &str, at: usize) -> String {
        let mut bytes = token.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_feed_token_opens_only_its_own_feed() {
        let people = ["ira.reviewer@council.example", "sam.social@council.example"];
        let l = links("secret");
        let t = l.feed_token("Ira.Reviewer@council.example");
        assert!(!t.contains("ira"), "the address is not in the token");
        assert_eq!(
            l.feed_owner(&t, people).as_deref(),
            Some("ira.reviewer@council.example")
        );
        assert_eq!(links("another secret").feed_owner(&t, people), None);
        assert_eq!(l.feed_owner(&alter(&t, 3), people), None);
        assert_eq!(l.feed_owner("nonsense!", people), None);
        assert_eq!(
            l.feed_url("ira.reviewer@council.example"),
            format!("https://dw.example/feeds/{t}.ics")
        );
    }

    #[test]
    fn an_ack_token_works_until_it_expires_and_not_once_altered() {
        let l = links("secret");
        let sent = DateTime::parse_from_rfc3339("2027-01-04T09:00:00Z")
            .unwrap()
            .to_utc();
        let url = l.ack_url("dw1-0123abcd", sent);
        let token = url.strip_prefix("https://dw.example/ack/").unwrap();
        assert_eq!(l.ack_key(token, sent).as_deref(), Ok("dw1-0123abcd"));
        let last = sent + Duration::days(30) - Duration::seconds(1);
        assert_eq!(l.ack_key(token, last).as_deref(), Ok("dw1-0123abcd"));
        assert_eq!(
            l.ack_key(token, sent + Duration::days(30)),
            Err(LinkError::Expired)
        );
        // Any altered character: the key, the expiry, the signature.
        for at in [5, token.find('.').unwrap() + 3, token.len() - 2] {
            assert_eq!(l.ack_key(&alter(token, at), sent), Err(LinkError::Invalid));
        }
        // A later expiry written in by hand, another secret, a feed token, nonsense.
        let (key_and_expiry, signature) = token.rsplit_once('.').unwrap();
        let (key, _) = key_and_expiry.rsplit_once('.').unwrap();
        let stretched = format!("{key}.{}.{signature}", sent.timestamp() + 86400 * 365);
        assert_eq!(l.ack_key(&stretched, sent), Err(LinkError::Invalid));
        assert_eq!(
            links("another secret").ack_key(token, sent),
            Err(LinkError::Invalid)
        );
        let feed = l.feed_token("dw1-0123abcd");
        assert_eq!(l.ack_key(&feed, sent), Err(LinkError::Invalid));
        assert_eq!(l.ack_key("", sent), Err(LinkError::Invalid));
        assert_eq!(l.ack_key("a.b.c.d", sent), Err(LinkError::Invalid));
    }
}
