//! Calendar feeds: each person's outstanding deadlines, and the review meetings of the
//! obligations they are told about, as an iCalendar (RFC 5545) feed an IRO adds to Outlook.
//!
//! The feed's URL carries a token: the person's address and an HMAC of it under the council's
//! feed secret, so nobody can read another person's feed and no login is needed; changing the
//! secret withdraws every URL. Pure: building and checking tokens, and writing the calendar.
//! Must not read the store (the API gathers the items).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, KeyInit, Mac};
use icalendar::{Calendar, Component, Event, EventLike};
use sha2::Sha256;

/// The feed token for a person (their address, lower-cased): an HMAC of the address under the
/// secret. It does not contain the address, so a URL in a proxy's log gives nobody away.
pub fn token(secret: &[u8], email: &str) -> String {
    let email = email.trim().to_lowercase();
    URL_SAFE_NO_PAD.encode(mac(secret, &email).finalize().into_bytes())
}

/// Which of `people` a token was made for, if any, with this secret. Every candidate is
/// compared in constant time.
pub fn email_of<'a>(
    secret: &[u8],
    token: &str,
    people: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let signature = URL_SAFE_NO_PAD.decode(token).ok()?;
    let mut found = None;
    for email in people {
        let email = email.trim().to_lowercase();
        if mac(secret, &email).verify_slice(&signature).is_ok() && found.is_none() {
            found = Some(email);
        }
    }
    found
}

fn mac(secret: &[u8], email: &str) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(b"driftwatch feed\x1f");
    m.update(email.as_bytes());
    m
}

/// One entry of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// Stable across updates, so a calendar moves the entry rather than adding another.
    pub uid: String,
    pub when: When,
    pub summary: String,
    pub description: String,
    /// Raised each time the entry's date moves.
    pub sequence: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// A deadline: an all-day entry.
    Day(NaiveDate),
    /// A meeting: from this instant, for an hour.
    At(DateTime<Utc>),
}

/// The feed as iCalendar text.
pub fn render(name: &str, items: &[FeedItem], now: DateTime<Utc>) -> String {
    let mut calendar = Calendar::new();
    calendar.name(name);
    calendar.append_property(("PRODID", "-//driftwatch//feed//EN"));
    for item in items {
        let mut event = Event::new();
        event
            .uid(&item.uid)
            .summary(&item.summary)
            .description(&item.description)
            .timestamp(now)
            .sequence(item.sequence);
        match item.when {
            When::Day(d) => {
                event.all_day(d);
            }
            When::At(t) => {
                event.starts(t).ends(t + chrono::Duration::hours(1));
            }
        }
        calendar.push(event.done());
    }
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_feed() {
        let people = ["ira.reviewer@council.example", "sam.social@council.example"];
        let t = token(b"secret", "Ira.Reviewer@council.example");
        assert!(!t.contains("ira"), "the address is not in the token");
        assert_eq!(
            email_of(b"secret", &t, people).as_deref(),
            Some("ira.reviewer@council.example")
        );
        assert_eq!(email_of(b"another secret", &t, people), None);
        let mut altered = t.clone().into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(email_of(b"secret", &altered, people), None);
        assert_eq!(email_of(b"secret", "nonsense!", people), None);
    }
}
