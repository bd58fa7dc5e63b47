//! Offsets as rules write them: `-10 working days`, `15 days`, `2 weeks`, `3 months`, `24 hours`.
//!
//! Statutory timescales mix units (a first review within 20 working days, later reviews every
//! six months, a section 20 placement's clock in hours), so a rule's offset carries its unit and
//! the calendar applies it.

use super::{Calendar, CalendarError, Reckoning};
use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The unit of an [`Offset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetUnit {
    /// Statutory working days, counted by the [`Calendar`]: most statutory review timescales.
    /// A council's closure days count as working days here.
    WorkingDays,
    /// The council's own working days (`council working days`): closure days left out too. Only
    /// for local timescales a council opts in; never for a statutory one.
    CouncilWorkingDays,
    /// Calendar days; the result may be a weekend or holiday.
    Days,
    /// Calendar weeks of 7 days.
    Weeks,
    /// Calendar months, clamped to the month's end (31 August + 6 months = 28 or 29 February),
    /// as "every six months" is read.
    Months,
    /// Exact hours from a date and time (section 20's 24 continuous hours); meaningless on a
    /// bare date.
    Hours,
}

impl OffsetUnit {
    const ALL: [OffsetUnit; 6] = [
        OffsetUnit::CouncilWorkingDays,
        OffsetUnit::WorkingDays,
        OffsetUnit::Days,
        OffsetUnit::Weeks,
        OffsetUnit::Months,
        OffsetUnit::Hours,
    ];

    /// Singular and plural, as written in rules.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            OffsetUnit::WorkingDays => ("working day", "working days"),
            OffsetUnit::CouncilWorkingDays => ("council working day", "council working days"),
            OffsetUnit::Days => ("day", "days"),
            OffsetUnit::Weeks => ("week", "weeks"),
            OffsetUnit::Months => ("month", "months"),
            OffsetUnit::Hours => ("hour", "hours"),
        }
    }
}

/// A signed distance from an anchor date or time; negative means before it ("-10 working days"
/// before a review meeting is when invitations go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Offset {
    /// How many units; negative for "before".
    pub amount: i32,
    /// What is counted.
    pub unit: OffsetUnit,
}

impl Offset {
    /// The date `self` away from `d`: working days by `cal` (see [`Calendar::add`]; council
    /// working days in the council's reckoning), days and
    /// weeks by plain calendar arithmetic, months clamped to the end of a shorter month (31
    /// January + 1 month = 28 or 29 February; the same backwards).
    ///
    /// `None` for hours, which need a time of day (asking is the caller's error, and the rules
    /// checker stops it happening), and `None` when the result would fall outside chrono's date
    /// range, for every unit alike.
    pub fn apply_to_date(&self, cal: &Calendar, d: NaiveDate) -> Option<NaiveDate> {
        let n = self.amount;
        match self.unit {
            OffsetUnit::WorkingDays => cal.checked_add_in(Reckoning::Statutory, d, n),
            OffsetUnit::CouncilWorkingDays => cal.checked_add_in(Reckoning::Council, d, n),
            OffsetUnit::Days => add_days(d, i64::from(n)),
            OffsetUnit::Weeks => add_days(d, i64::from(n) * 7),
            OffsetUnit::Months if n >= 0 => d.checked_add_months(Months::new(n.unsigned_abs())),
            OffsetUnit::Months => d.checked_sub_months(Months::new(n.unsigned_abs())),
            OffsetUnit::Hours => None,
        }
    }

    /// The date of a deadline `self` away from the anchor date `d`. As [`Offset::apply_to_date`],
    /// except that a deadline counted back from its anchor in statutory working days (papers
    /// and invitations before a meeting) takes the earlier of the statutory and the council
    /// answer: a council's closures may bring such a deadline forward, never push it later.
    pub fn deadline_from(&self, cal: &Calendar, d: NaiveDate) -> Option<NaiveDate> {
        let statutory = self.apply_to_date(cal, d)?;
        if self.unit == OffsetUnit::WorkingDays && self.amount < 0 {
            let council = cal.checked_add_in(Reckoning::Council, d, self.amount)?;
            Some(statutory.min(council))
        } else {
            Some(statutory)
        }
    }

    /// Which working days the offset counts, if it counts working days at all.
    pub fn reckoning(&self) -> Option<Reckoning> {
        match self.unit {
            OffsetUnit::WorkingDays => Some(Reckoning::Statutory),
            OffsetUnit::CouncilWorkingDays => Some(Reckoning::Council),
            _ => None,
        }
    }

    /// Whether the offset can be applied to a bare date: every unit but hours. The rules checker
    /// uses it to refuse an hours offset from a date-only anchor.
    pub fn is_day_based(&self) -> bool {
        self.unit != OffsetUnit::Hours
    }
}

fn add_days(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    if n >= 0 {
        d.checked_add_days(Days::new(n.unsigned_abs()))
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs()))
    }
}

impl FromStr for Offset {
    type Err = CalendarError;

    /// Parses `[+|-]N unit`, where unit is `working day(s)`, `day(s)`, `week(s)`, `month(s)` or
    /// `hour(s)`; singular and plural are both accepted whatever N is, and spaces around and
    /// between the words do not matter. The error says what is wrong and lists the units.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let bad = |problem: String| CalendarError::Offset {
            text: trimmed.to_string(),
            problem,
        };
        let mut words = trimmed.split_whitespace();
        let Some(number) = words.next() else {
            return Err(bad("it is empty".into()));
        };
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                "it does not start with a whole number (`{number}`)"
            )));
        }
        let magnitude: i64 = digits
            .parse()
            .map_err(|_| bad(format!("{number} is too large")))?;
        let amount = i32::try_from(if negative { -magnitude } else { magnitude })
            .map_err(|_| bad(format!("{number} is too large")))?;
        let unit_text = words.collect::<Vec<_>>().join(" ");
        if unit_text.is_empty() {
            return Err(bad("it has no unit".into()));
        }
        let unit = OffsetUnit::ALL
            .into_iter()
            .find(|u| {
                let (one, many) = u.names();
                unit_text == one || unit_text == many
            })
            .ok_or_else(|| bad(format!("`{unit_text}` is not a unit")))?;
        Ok(Offset { amount, unit })
    }
}

impl fmt::Display for Offset {
    /// The canonical text: `-10 working days`, `1 working day`, `-1 month`, `0 hours`. It parses
    /// back to the same offset, so rules and plans can show offsets as people write them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = self.unit.names();
        let name = if self.amount.unsigned_abs() == 1 {
            one
        } else {
            many
        };
        write!(f, "{} {name}", self.amount)
    }
}

impl<'de> Deserialize<'de> for Offset {
    /// From the text a rule writes (`offset: -10 working days`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Offset {
    /// As the canonical text, so serialised rules read like the YAML they came from.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for Offset {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Offset".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A signed distance: `10 working days` (statutory), `-2 council working days`, `28 days`, `1 week`, `6 months`, `24 hours`.",
            "pattern": "^\\s*[+-]?\\s*\\d+\\s*((council\\s+)?working\\s+days?|days?|weeks?|months?|hours?)\\s*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn calendar() -> Calendar {
        let json = r#"{"england-and-wales": {"events": [{"title": "x", "date": "2020-01-01"}]}}"#;
        Calendar::from_json(
            "t.json",
            json,
            super::super::Division::EnglandAndWales,
            vec![],
        )
        .unwrap()
    }

    fn unit() -> impl Strategy<Value = OffsetUnit> {
        proptest::sample::select(OffsetUnit::ALL.to_vec())
    }

    #[test]
    fn edge_amounts_parse() {
        assert_eq!(
            "-2147483648 days".parse::<Offset>().unwrap(),
            Offset {
                amount: i32::MIN,
                unit: OffsetUnit::Days
            }
        );
        assert_eq!(
            "+2147483647 hours".parse::<Offset>().unwrap().amount,
            i32::MAX
        );
        assert_eq!("-0 days".parse::<Offset>().unwrap().to_string(), "0 days");
        assert_eq!("007 weeks".parse::<Offset>().unwrap().amount, 7);
        for bad in [
            "2147483648 days",
            "-2147483649 days",
            "99999999999999999999999 days",
        ] {
            let e = bad.parse::<Offset>().unwrap_err().to_string();
            assert!(e.contains("is too large"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(amount in any::<i32>(), unit in unit()) {
            let o = Offset { amount, unit };
            let text = o.to_string();
            prop_assert_eq!(text.parse::<Offset>().unwrap(), o);
            prop_assert_eq!(format!("  +{text}  ").replace("+-", "-").parse::<Offset>().unwrap(), o);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,30}") {
            let _ = s.parse::<Offset>();
        }

        #[test]
        fn months_land_in_the_right_month_clamped(
            days in 0i64..80_000, n in -1200i32..1200
        ) {
            let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Days::new(days as u64);
            let o = Offset { amount: n, unit: OffsetUnit::Months };
            let cal = calendar();
            let got = o.apply_to_date(&cal, d).unwrap();
            use chrono::Datelike;
            let months = |x: NaiveDate| x.year() * 12 + x.month0() as i32;
            prop_assert_eq!(months(got), months(d) + n);
            prop_assert!(got.day() == d.day() || (got.day() < d.day() && got.succ_opt().unwrap().day() == 1));
        }
    }
}
