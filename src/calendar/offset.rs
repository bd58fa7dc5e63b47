//! Offsets as rules write them: `-10 working days`, `15 days`, `2 weeks`, `3 months`, `24 hours`.

use super::{Calendar, CalendarError};
use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetUnit {
    WorkingDays,
    Days,
    Weeks,
    /// Calendar months, clamped to the month's end (31 August + 6 months = 28/29 February).
    Months,
    /// Exact hours, only from a date and time (section 20's 24 continuous hours).
    Hours,
}

impl OffsetUnit {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            OffsetUnit::WorkingDays => ("working day", "working days"),
            OffsetUnit::Days => ("day", "days"),
            OffsetUnit::Weeks => ("week", "weeks"),
            OffsetUnit::Months => ("month", "months"),
            OffsetUnit::Hours => ("hour", "hours"),
        }
    }
}

const UNITS: [OffsetUnit; 5] = [
    OffsetUnit::WorkingDays,
    OffsetUnit::Days,
    OffsetUnit::Weeks,
    OffsetUnit::Months,
    OffsetUnit::Hours,
];

/// A signed distance from an anchor; negative means before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub amount: i32,
    pub unit: OffsetUnit,
}

impl Offset {
    /// Date arithmetic for every unit but hours (`None` for hours, or past chrono's range).
    pub fn apply_to_date(&self, cal: &Calendar, d: NaiveDate) -> Option<NaiveDate> {
        let n = self.amount;
        match self.unit {
            OffsetUnit::WorkingDays => Some(cal.add(d, n)),
            OffsetUnit::Days => add_days(d, i64::from(n)),
            OffsetUnit::Weeks => add_days(d, i64::from(n) * 7),
            OffsetUnit::Months if n >= 0 => d.checked_add_months(Months::new(n.unsigned_abs())),
            OffsetUnit::Months => d.checked_sub_months(Months::new(n.unsigned_abs())),
            OffsetUnit::Hours => None,
        }
    }

    pub fn is_day_based(&self) -> bool {
        self.unit != OffsetUnit::Hours
    }
}

fn add_days(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64))
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs()))
    }
}

impl FromStr for Offset {
    type Err = CalendarError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CalendarError::Offset(text.trim().to_string());
        let trimmed = text.trim();
        let (number, unit) = trimmed.split_once(char::is_whitespace).ok_or_else(bad)?;
        let amount: i32 = number
            .strip_prefix('+')
            .unwrap_or(number)
            .parse()
            .map_err(|_| bad())?;
        let unit = unit.split_whitespace().collect::<Vec<_>>().join(" ");
        let unit = UNITS
            .into_iter()
            .find(|u| {
                let (one, many) = u.names();
                unit == one || unit == many
            })
            .ok_or_else(bad)?;
        Ok(Offset { amount, unit })
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = self.unit.names();
        let name = if self.amount.abs() == 1 { one } else { many };
        write!(f, "{} {name}", self.amount)
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Offset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
