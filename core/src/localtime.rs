//! Europe/London local time, the only time zone councils and the regulations speak in.
//!
//! Owns conversions between stored UTC instants and local dates and clock times, including the
//! spring-forward gap and the autumn double hour. Must not know about working days (see `calendar`).

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde::{Deserialize, Deserializer};

/// The local calendar date of an instant.
pub fn date_of(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&London).date_naive()
}

/// The local wall-clock date and time of an instant.
pub fn naive_of(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&London).naive_local()
}

/// The instant a local wall-clock time names. In the autumn double hour the earlier instant is
/// taken; a time inside the spring gap (01:00–02:00 on the last Sunday of March) is moved to the
/// first instant after the gap, so a deadline never disappears.
pub fn instant(local: NaiveDateTime) -> DateTime<Utc> {
    match London.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // The gap is one hour long in Europe/London; one hour later is always valid.
            let later = local + chrono::Duration::hours(1);
            match London.from_local_datetime(&later) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                LocalResult::None => local.and_utc(),
            }
        }
    }
}

/// The instant a local date starts (00:00 Europe/London).
pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
    instant(date.and_time(NaiveTime::MIN))
}

/// The instant a date-only deadline passes: the start of the next local day.
pub fn end_of(date: NaiveDate) -> DateTime<Utc> {
    match date.checked_add_days(Days::new(1)) {
        Some(next) => start_of(next),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// `Wednesday 6 January 2027 at 14:00`: an instant as people read it, in local time and words.
pub fn in_words(t: DateTime<Utc>) -> String {
    naive_of(t).format("%A %-d %B %Y at %H:%M").to_string()
}

/// `Wednesday 6 January 2027`: a date as people read it.
pub fn date_in_words(d: NaiveDate) -> String {
    d.format("%A %-d %B %Y").to_string()
}

/// `Fri 29 Jan 2027`: a date in a table people read.
pub fn short_date_in_words(d: NaiveDate) -> String {
    d.format("%a %-d %b %Y").to_string()
}

/// `Wed 10 Feb 2027, 19:30` in local time: a moment in a table people read.
pub fn short_in_words(t: DateTime<Utc>) -> String {
    naive_of(t).format("%a %-d %b %Y, %H:%M").to_string()
}

/// `2027-01-07 09:00` in local time, for people.
pub fn display(t: DateTime<Utc>) -> String {
    naive_of(t).format("%Y-%m-%d %H:%M").to_string()
}

/// When non-urgent notifications may go out: from `start` to `end` on working days, Europe/London.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    #[serde(deserialize_with = "clock_time", serialize_with = "clock_time_out")]
    #[schemars(with = "String")]
    pub start: NaiveTime,
    #[serde(deserialize_with = "clock_time", serialize_with = "clock_time_out")]
    #[schemars(with = "String")]
    pub end: NaiveTime,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

/// Reads a clock time written `HH:MM` (working hours, the school day, the digest's time).
pub fn clock_time<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let text = String::deserialize(d)?;
    NaiveTime::parse_from_str(&text, "%H:%M").map_err(|_| {
        serde::de::Error::custom(format!("`{text}` is not a clock time like \"09:00\""))
    })
}

/// Writes a clock time as `HH:MM`.
pub fn clock_time_out<S: serde::Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%H:%M"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn winter_and_summer_offsets() {
        assert_eq!(
            start_of(d("2027-01-07")).to_rfc3339(),
            "2027-01-07T00:00:00+00:00"
        );
        assert_eq!(
            start_of(d("2027-07-07")).to_rfc3339(),
            "2027-07-06T23:00:00+00:00"
        );
        assert_eq!(
            end_of(d("2027-07-07")).to_rfc3339(),
            "2027-07-07T23:00:00+00:00"
        );
    }

    #[test]
    fn spring_gap_moves_forward_and_autumn_takes_the_earlier_hour() {
        // 28 March 2027: clocks go from 01:00 GMT to 02:00 BST.
        let gap = d("2027-03-28").and_hms_opt(1, 30, 0).unwrap();
        assert_eq!(instant(gap).to_rfc3339(), "2027-03-28T01:30:00+00:00");
        // 31 October 2027: 01:30 happens twice; the first is 00:30 UTC.
        let twice = d("2027-10-31").and_hms_opt(1, 30, 0).unwrap();
        assert_eq!(instant(twice).to_rfc3339(), "2027-10-31T00:30:00+00:00");
    }

    #[test]
    fn local_date_of_late_evening_in_summer_is_the_next_day() {
        let t: DateTime<Utc> = "2027-07-06T23:30:00Z".parse().unwrap();
        assert_eq!(date_of(t), d("2027-07-07"));
        assert_eq!(display(t), "2027-07-07 00:30");
    }
}
