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
