//! The working-day calendar: which days count, and arithmetic in working days.
//!
//! Owns the bank-holiday data (the UK government's bank-holidays JSON shape), the council's
//! closure days, the projection of years past the data, and offsets. Must not do I/O: the caller
//! reads the file and passes its text, so the planner stays a pure function.

mod offset;
mod projection;

pub use offset::{Offset, OffsetUnit};
pub use projection::{easter_sunday, projected_bank_holidays};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A UK bank-holiday division, named as in the government's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Division {
    EnglandAndWales,
    Scotland,
    NorthernIreland,
}

impl Division {
    pub fn name(self) -> &'static str {
        match self {
            Division::EnglandAndWales => "england-and-wales",
            Division::Scotland => "scotland",
            Division::NorthernIreland => "northern-ireland",
        }
    }
}

impl fmt::Display for Division {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Division {
    type Err = CalendarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Division::EnglandAndWales,
            Division::Scotland,
            Division::NorthernIreland,
        ]
        .into_iter()
        .find(|d| d.name() == s)
        .ok_or_else(|| CalendarError::Division(s.to_string()))
    }
}

/// A day the council is closed (between Christmas and New Year, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureDay {
    pub date: NaiveDate,
    pub title: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HolidaySource {
    /// From the government's published file.
    Published,
    /// By the division's standing rules, for a year the file does not cover.
    Projected,
    /// A council closure day from the config.
    Closure,
}

/// A day that is not a working day, besides weekends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holiday {
    pub date: NaiveDate,
    pub title: String,
    pub source: HolidaySource,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{source_name}:{line}:{column}: not bank-holiday JSON: {message}")]
    Json {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{source_name}: has no `{division}` division")]
    MissingDivision {
        source_name: String,
        division: Division,
    },
    #[error("{source_name}: the `{division}` division lists no bank holidays")]
    Empty {
        source_name: String,
        division: Division,
    },
    #[error("`{0}` is not a division: use england-and-wales, scotland or northern-ireland")]
    Division(String),
    #[error(
        "`{0}` is not an offset: write a whole number and working days, days, weeks, months or hours (e.g. `-10 working days`)"
    )]
    Offset(String),
}

#[derive(Deserialize)]
struct FileDivision {
    events: Vec<FileEvent>,
}

#[derive(Deserialize)]
struct FileEvent {
    title: String,
    date: NaiveDate,
    #[serde(default)]
    notes: String,
}

/// Working days for one division plus the council's closures.
#[derive(Debug, Clone)]
pub struct Calendar {
    division: Division,
    published: RangeInclusive<i32>,
    /// Every non-working weekday and its reason, by date, for published years and closures.
    listed: BTreeMap<NaiveDate, Holiday>,
    /// Fast membership for the same dates.
    days_off: HashSet<NaiveDate>,
    /// Projected holidays for years outside the published range, computed for a generous
    /// window at load so look-ups never allocate.
    projected: HashSet<NaiveDate>,
    projected_years: RangeInclusive<i32>,
}

/// Years either side of the data that projections are precomputed for.
const PROJECTION_WINDOW: i32 = 60;

impl Calendar {
    /// Builds the calendar from bank-holiday JSON text; `source` names the file in errors.
    pub fn from_json(
        source: &str,
        json: &str,
        division: Division,
        closures: Vec<ClosureDay>,
    ) -> Result<Calendar, CalendarError> {
        let file: BTreeMap<String, FileDivision> =
            serde_json::from_str(json).map_err(|e| CalendarError::Json {
                source_name: source.to_string(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        let Some(div) = file.get(division.name()) else {
            return Err(CalendarError::MissingDivision {
                source_name: source.to_string(),
                division,
            });
        };
        let years: Vec<i32> = div.events.iter().map(|e| e.date.year()).collect();
        let (Some(first), Some(last)) = (years.iter().min(), years.iter().max()) else {
            return Err(CalendarError::Empty {
                source_name: source.to_string(),
                division,
            });
        };
        let published = *first..=*last;
        let mut listed = BTreeMap::new();
        for e in &div.events {
            // "Substitute day" matters to a reader: Christmas is on the 27th because the 25th is a Saturday.
            let title = match e.notes.trim() {
                "" => e.title.clone(),
                notes => format!("{} ({})", e.title, notes.to_lowercase()),
            };
            listed.insert(
                e.date,
                Holiday {
                    date: e.date,
                    title,
                    source: HolidaySource::Published,
                },
            );
        }
        for c in closures {
            listed.insert(
                c.date,
                Holiday {
                    date: c.date,
                    title: c.title,
                    source: HolidaySource::Closure,
                },
            );
        }
        let projected_years = (first - PROJECTION_WINDOW)..=(last + PROJECTION_WINDOW);
        let projected = projected_years
            .clone()
            .filter(|y| !published.contains(y))
            .flat_map(|y| projected_bank_holidays(division, y))
            .map(|h| h.date)
            .collect();
        let days_off = listed.keys().copied().collect();
        Ok(Calendar {
            division,
            published,
            listed,
            days_off,
            projected,
            projected_years,
        })
    }

    pub fn division(&self) -> Division {
        self.division
    }

    fn is_bank_holiday(&self, d: NaiveDate) -> bool {
        let year = d.year();
        if self.published.contains(&year) {
            false // published days are in `days_off`
        } else if self.projected_years.contains(&year) {
            self.projected.contains(&d)
        } else {
            projected_bank_holidays(self.division, year)
                .iter()
                .any(|h| h.date == d)
        }
    }

    /// Not a Saturday, a Sunday, a bank holiday of the division or a closure day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
            && !self.days_off.contains(&d)
            && !self.is_bank_holiday(d)
    }

    /// For n > 0 the working day w with exactly n working days in (d, w]; for n < 0 the working
    /// day w with exactly |n| working days in [w, d); for 0, d if it is a working day, else the
    /// next. Stops at chrono's limits rather than panicking.
    pub fn add(&self, d: NaiveDate, n: i32) -> NaiveDate {
        let mut w = d;
        if n == 0 {
            while !self.is_working_day(w) {
                match w.succ_opt() {
                    Some(next) => w = next,
                    None => return w,
                }
            }
            return w;
        }
        let mut left = n.unsigned_abs();
        while left > 0 {
            let step = if n > 0 { w.succ_opt() } else { w.pred_opt() };
            match step {
                Some(next) => w = next,
                None => return w,
            }
            if self.is_working_day(w) {
                left -= 1;
            }
        }
        w
    }

    /// The number of working days in (a, b]; negative (minus those in (b, a]) when b < a.
    pub fn between(&self, a: NaiveDate, b: NaiveDate) -> i32 {
        let (lo, hi, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
        let mut count = 0;
        let mut d = lo;
        while d < hi {
            match d.succ_opt() {
                Some(next) => d = next,
                None => break,
            }
            if self.is_working_day(d) {
                count += 1;
            }
        }
        sign * count
    }

    pub fn next_working_day_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        self.add(d, 0)
    }

    /// A year's bank holidays (published, or projected outside the data) and closure days.
    pub fn holidays(&self, year: i32) -> Vec<Holiday> {
        let start = NaiveDate::from_ymd_opt(year, 1, 1);
        let end = NaiveDate::from_ymd_opt(year, 12, 31);
        let mut out: Vec<Holiday> = match (start, end) {
            (Some(s), Some(e)) => self.listed.range(s..=e).map(|(_, h)| h.clone()).collect(),
            _ => Vec::new(),
        };
        if !self.published.contains(&year) {
            out.extend(projected_bank_holidays(self.division, year));
            out.sort_by(|a, b| (a.date, &a.title).cmp(&(b.date, &b.title)));
        }
        out
    }

    /// The years the published data covers for this division.
    pub fn published_years(&self) -> RangeInclusive<i32> {
        self.published.clone()
    }

    /// 31 December of the last published year.
    pub fn published_until(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(*self.published.end(), 12, 31)
            .and_then(|d| d.checked_add_days(Days::new(0)))
            .unwrap_or(NaiveDate::MAX)
    }
}
