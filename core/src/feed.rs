//! Calendar feeds: each person's outstanding deadlines, and the review meetings of the
//! obligations they are told about, as an iCalendar (RFC 5545) feed an IRO adds to Outlook.
//!
//! The feed's URL carries a token signed with the council's link secret ([`crate::links`]), so
//! nobody can read another person's feed and no login is needed. Pure: writing the calendar.
//! Must not read the store (the API gathers the items).

use chrono::{DateTime, NaiveDate, Utc};
use icalendar::{Calendar, Component, Event, EventLike};

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

/// The feed as iCalendar text: one `PRODID` (the crate's default is left out), `VERSION` 2.0,
/// and every entry with a `UID`, a `DTSTAMP` and an end after its start (an all-day deadline
/// ends at the start of the next day, as RFC 5545 says `DTEND` is exclusive).
pub fn render(name: &str, items: &[FeedItem], now: DateTime<Utc>) -> String {
    let mut calendar = Calendar::empty();
    calendar.append_property(("VERSION", "2.0"));
    calendar.append_property(("PRODID", "-//driftwatch//feed//EN"));
    calendar.append_property(("CALSCALE", "GREGORIAN"));
    calendar.name(name);
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
                let next = d.succ_opt().unwrap_or(d);
                event.starts(d).ends(next);
            }
            When::At(t) => {
                event.starts(t).ends(t + chrono::Duration::hours(1));
            }
        }
        calendar.push(event.done());
    }
    calendar.done().to_string()
}
