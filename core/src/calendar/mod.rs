//! The working-day calendar: which days count towards a statutory deadline, and arithmetic in
//! working days.
//!
//! Two reckonings live here ([`Reckoning`]). A **statutory** working day is the regulations'
//! working day: any day other than a Saturday, a Sunday, Christmas Day, Good Friday or a bank
//! holiday of the council's UK division. A **council** working day is a statutory working day on
//! which the council is also open (not one of its own closure days, such as the days between
//! Christmas and New Year). A council's closures can never stretch a statutory deadline, so
//! statutory timescales and every lateness count statutory working days; the council reckoning
//! only makes things earlier or quieter (when messages may go, deadlines counted back from a
//! meeting, and timescales a council opts into it). This module owns:
//! - the bank-holiday data, in the UK government's published JSON shape, for one division;
//! - the projection of bank holidays by the standing rules for years the data does not cover
//!   (see [`projected_bank_holidays`]), so no year is ever treated as having none;
//! - working-day arithmetic ([`Calendar::add`], [`Calendar::between`]);
//! - the offsets rules are written in (`-10 working days`, `3 months`; see [`Offset`]).
//!
//! It must not do I/O: the caller reads the bank-holiday file and passes its text and the
//! council's closure days, so the planner built on top stays a pure function of its inputs and
//! every answer here can be tested without touching a disk or a clock.

mod offset;
mod projection;

pub use offset::{Offset, OffsetUnit};
pub use projection::{easter_sunday, projected_bank_holidays};

use chrono::{Datelike, NaiveDate};
use projection::{is_weekend, standing_rules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A UK bank-holiday division, named as in the government's file.
///
/// The divisions have different bank holidays (Scotland has 2 January and St Andrew's Day but no
/// Easter Monday; Northern Ireland adds St Patrick's Day and the Boyne), so a council's deadlines
/// depend on which one it is in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Division {
    /// `england-and-wales`: English councils, the usual case.
    EnglandAndWales,
    /// `scotland`.
    Scotland,
    /// `northern-ireland`.
    NorthernIreland,
}

impl Division {
    /// Every division, in the order the government's file lists them.
    pub const ALL: [Division; 3] = [
        Division::EnglandAndWales,
        Division::Scotland,
        Division::NorthernIreland,
    ];

    /// The division's key in the government's file and in configuration (`england-and-wales`).
    pub fn name(self) -> &'static str {
        match self {
            Division::EnglandAndWales => "england-and-wales",
            Division::Scotland => "scotland",
            Division::NorthernIreland => "northern-ireland",
        }
    }
}

impl fmt::Display for Division {
    /// Prints the file's key, so messages name the division the way the configuration does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Division {
    type Err = CalendarError;

    /// Parses the file's key exactly (`scotland`), as written in configuration.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Division::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| CalendarError::UnknownDivision(s.to_string()))
    }
}

/// A day the council itself is closed (between Christmas and New Year, say). It is not a council
/// working day, so no non-urgent message goes on it, but it is still a statutory working day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClosureDay {
    /// The day the council is closed.
    pub date: NaiveDate,
    /// Why, for people reading a holiday list ("Council closure").
    pub title: String,
}

/// Which working days a count uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reckoning {
    /// The regulations' working days: every day but a Saturday, a Sunday, Christmas Day, Good
    /// Friday or a bank holiday of the division. Statutory timescales and lateness count these.
    Statutory,
    /// The council's working days: statutory working days on which the council is open (its
    /// closure days left out). Messages go on these; a council may opt a local timescale in.
    Council,
}

impl Reckoning {
    /// How people are told which calendar a timescale counts in.
    pub fn describe(self) -> &'static str {
        match self {
            Reckoning::Statutory => {
                "statutory working days (weekends, Christmas Day, Good Friday and bank holidays excluded; council closure days still count)"
            }
            Reckoning::Council => {
                "council working days (statutory working days on which the council is open: closure days excluded too)"
            }
        }
    }
}

/// Where a non-working day came from, so a reader can tell a published bank holiday from a
/// guess about a year the government has not announced yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolidaySource {
    /// From the government's published file.
    Published,
    /// By the division's standing rules, for a year the file does not cover; a proclaimed
    /// one-off holiday in that year would be missing.
    Projected,
    /// A council closure day from the configuration.
    Closure,
}

/// A day that is not a working day for a reason other than being a weekend: a bank holiday or a
/// council closure day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Holiday {
    /// The day itself (for a substitute day, the weekday off, not the weekend date).
    pub date: NaiveDate,
    /// The government's title, with its note in brackets when it has one ("Boxing Day
    /// (substitute day)"), so a reader can see why the 28th is off; or the closure's title.
    pub title: String,
    /// Published, projected or a closure.
    pub source: HolidaySource,
}

/// Why a calendar could not be built, or a division or offset not parsed. Each message names
/// what was wrong and where, for the person editing the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The text is not JSON, or not in the government's bank-holiday shape.
    #[error(
        "{source_name}:{line}:{column}: not bank-holiday data in the government's format: {message}"
    )]
    Json {
        /// The file's name, as the caller gave it.
        source_name: String,
        /// 1-based line of the problem, from serde_json.
        line: usize,
        /// 1-based column of the problem, from serde_json.
        column: usize,
        /// serde_json's description, without its position.
        message: String,
    },
    /// The file has no entry for the configured division.
    #[error("{source_name}: has no `{division}` division (it has: {found})")]
    MissingDivision {
        /// The file's name.
        source_name: String,
        /// The division asked for.
        division: Division,
        /// The divisions the file does have, comma-separated, or "none".
        found: String,
    },
    /// The division is there but lists nothing, so there are no published years to trust.
    #[error("{source_name}: the `{division}` division lists no bank holidays")]
    EmptyDivision {
        /// The file's name.
        source_name: String,
        /// The division asked for.
        division: Division,
    },
    /// Not one of the three division names.
    #[error("`{0}` is not a division: write england-and-wales, scotland or northern-ireland")]
    UnknownDivision(String),
    /// Offset text that does not parse.
    #[error(
        "`{text}` is not an offset: {problem}; write a whole number and one of working days, council working days, days, weeks, months or hours (e.g. `-10 working days`, `3 months`, `24 hours`)"
    )]
    Offset {
        /// The text, trimmed.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The title a holiday is shown with: the government's title, plus its note in brackets.
fn substitute_title(title: &str, notes: &str) -> String {
    match notes.trim() {
        "" => title.to_string(),
        notes => format!("{title} ({})", notes.to_lowercase()),
    }
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

/// Years either side of the published data for which every day's status is precomputed.
const CACHE_MARGIN_YEARS: i32 = 150;
/// The precomputed span never exceeds this many years (about 46 KB), whatever the file says.
const CACHE_MAX_YEARS: i32 = 1_000;

/// One bit per day, set for a non-working day, over a span of dates around the published data.
/// Days outside the span are answered from the rules directly, so the span is only a speed-up.
#[derive(Clone)]
struct DayBits {
    /// `num_days_from_ce` of the first day covered.
    first: i64,
    /// Number of days covered.
    len: usize,
    words: Vec<u64>,
}

impl DayBits {
    fn index(&self, d: NaiveDate) -> Option<usize> {
        let i = i64::from(d.num_days_from_ce()) - self.first;
        usize::try_from(i).ok().filter(|&i| i < self.len)
    }

    fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1u64 << (i % 64);
        }
    }

    /// How many days in indices `start..end` are non-working.
    fn count_set(&self, start: usize, end: usize) -> usize {
        let mut count = 0;
        let mut i = start;
        while i < end {
            let word = i / 64;
            let bit = i % 64;
            let take = (64 - bit).min(end - i);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            count += (self.words.get(word).copied().unwrap_or(0) & mask).count_ones() as usize;
            i += take;
        }
        count
    }
}

/// Working days for one division plus the council's closures, in both reckonings.
///
/// Built once from the bank-holiday file's text; answers are then O(1) for any date within 150
/// years of the data (a precomputed bit per day and reckoning) and cheap, allocation-free rule
/// evaluation elsewhere.
#[derive(Clone)]
pub struct Calendar {
    division: Division,
    published: RangeInclusive<i32>,
    /// The file's events for this division, sorted by date.
    published_days: Vec<Holiday>,
    /// The council's closure days, sorted by date.
    closures: Vec<Holiday>,
    /// Statutory non-working days: weekends and bank holidays.
    statutory: DayBits,
    /// Council non-working days: the statutory ones and the closures.
    council: DayBits,
}

impl fmt::Debug for Calendar {
    /// A summary: the per-day cache would be thousands of numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("division", &self.division)
            .field("published", &self.published)
            .field("published_days", &self.published_days.len())
            .field("closures", &self.closures)
            .finish_non_exhaustive()
    }
}

impl Calendar {
    /// Builds the calendar for `division` from the text of a bank-holiday file in the
    /// government's JSON shape, plus the council's closure days.
    ///
    /// `source` names the file in error messages (the caller did the reading, so only it knows
    /// the path). Fails if the text is not that JSON shape (with serde_json's line and column),
    /// or the division is missing or lists no events.
    pub fn from_json(
        source: &str,
        json: &str,
        division: Division,
        closures: Vec<ClosureDay>,
    ) -> Result<Calendar, CalendarError> {
        let mut file: BTreeMap<String, FileDivision> = serde_json::from_str(json).map_err(|e| {
            let full = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            CalendarError::Json {
                source_name: source.to_string(),
                line: e.line(),
                column: e.column(),
                message: full.strip_suffix(&position).unwrap_or(&full).to_string(),
            }
        })?;
        let Some(events) = file.remove(division.name()).map(|d| d.events) else {
            let found: Vec<&str> = file.keys().map(String::as_str).collect();
            return Err(CalendarError::MissingDivision {
                source_name: source.to_string(),
                division,
                found: if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                },
            });
        };
        let mut published_days: Vec<Holiday> = events
            .into_iter()
            .map(|e| Holiday {
                date: e.date,
                title: substitute_title(&e.title, &e.notes),
                source: HolidaySource::Published,
            })
            .collect();
        published_days.sort_by_key(|h| h.date);
        let (Some(first), Some(last)) = (published_days.first(), published_days.last()) else {
            return Err(CalendarError::EmptyDivision {
                source_name: source.to_string(),
                division,
            });
        };
        let published = first.date.year()..=last.date.year();
        let mut closures: Vec<Holiday> = closures
            .into_iter()
            .map(|c| Holiday {
                date: c.date,
                title: c.title,
                source: HolidaySource::Closure,
            })
            .collect();
        closures.sort_by(|a, b| (a.date, &a.title).cmp(&(b.date, &b.title)));
        closures.dedup();
        let empty = DayBits {
            first: 0,
            len: 0,
            words: Vec::new(),
        };
        let mut cal = Calendar {
            division,
            published,
            published_days,
            closures,
            statutory: empty.clone(),
            council: empty,
        };
        cal.statutory = cal.precompute();
        cal.council = cal.statutory.clone();
        for c in &cal.closures {
            if let Some(i) = cal.council.index(c.date) {
                cal.council.set(i);
            }
        }
        Ok(cal)
    }

    /// Fills in the statutory per-day cache from the same rules
    /// [`Calendar::is_non_working_by_rules`] uses.
    fn precompute(&self) -> DayBits {
        let lo_year = self.published.start().saturating_sub(CACHE_MARGIN_YEARS);
        let hi_year = self
            .published
            .end()
            .saturating_add(CACHE_MARGIN_YEARS)
            .min(lo_year.saturating_add(CACHE_MAX_YEARS - 1));
        let start = NaiveDate::from_ymd_opt(lo_year, 1, 1).unwrap_or(NaiveDate::MIN);
        let end = NaiveDate::from_ymd_opt(hi_year, 12, 31).unwrap_or(NaiveDate::MAX);
        let first = i64::from(start.num_days_from_ce());
        let len = usize::try_from(i64::from(end.num_days_from_ce()) - first + 1).unwrap_or(0);
        let mut bits = DayBits {
            first,
            len,
            words: vec![0; len.div_ceil(64)],
        };
        for (i, day) in start.iter_days().take(len).enumerate() {
            if is_weekend(day) {
                bits.set(i);
            }
        }
        for year in start.year()..=end.year() {
            if self.published.contains(&year) {
                for h in self.published_in(year) {
                    if let Some(i) = bits.index(h.date) {
                        bits.set(i);
                    }
                }
            } else {
                for s in standing_rules(self.division, year).as_slice() {
                    if let Some(i) = bits.index(s.date) {
                        bits.set(i);
                    }
                }
            }
        }
        bits
    }

    /// The published events of `year`, a slice of the sorted list.
    fn published_in(&self, year: i32) -> &[Holiday] {
        let from = self
            .published_days
            .partition_point(|h| h.date.year() < year);
        let to = self
            .published_days
            .partition_point(|h| h.date.year() <= year);
        &self.published_days[from..to]
    }

    /// The definition of a non-working day, without the cache: weekend, a published bank
    /// holiday for a published year or a projected one otherwise, and (in the council's
    /// reckoning) a closure. Allocation-free.
    fn is_non_working_by_rules(&self, r: Reckoning, d: NaiveDate) -> bool {
        if is_weekend(d) {
            return true;
        }
        if r == Reckoning::Council && self.is_closure(d) {
            return true;
        }
        let year = d.year();
        if self.published.contains(&year) {
            self.published_days
                .binary_search_by_key(&d, |h| h.date)
                .is_ok()
        } else {
            standing_rules(self.division, year).contains(d)
        }
    }

    fn bits(&self, r: Reckoning) -> &DayBits {
        match r {
            Reckoning::Statutory => &self.statutory,
            Reckoning::Council => &self.council,
        }
    }

    /// The division whose bank holidays this calendar uses, for messages and `check` output.
    pub fn division(&self) -> Division {
        self.division
    }

    /// Whether `d` is one of the council's own closure days.
    pub fn is_closure(&self, d: NaiveDate) -> bool {
        self.closures.binary_search_by_key(&d, |h| h.date).is_ok()
    }

    /// Whether `d` is a statutory working day: not a Saturday, a Sunday or a bank holiday of the
    /// division (published, or projected outside the data). Closure days are working days here.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        self.is_working_day_in(Reckoning::Statutory, d)
    }

    /// Whether the council is open on `d`: a statutory working day that is not a closure day.
    /// No non-urgent message goes on any other day.
    pub fn is_open_day(&self, d: NaiveDate) -> bool {
        self.is_working_day_in(Reckoning::Council, d)
    }

    /// Whether `d` is a working day in reckoning `r`.
    pub fn is_working_day_in(&self, r: Reckoning, d: NaiveDate) -> bool {
        let bits = self.bits(r);
        match bits.index(d) {
            Some(i) => !bits.get(i),
            None => !self.is_non_working_by_rules(r, d),
        }
    }

    /// Walks `n` working days from `d` (see [`Calendar::add`]); `Err` holds the last day
    /// reached if chrono's range ran out first.
    fn walk(&self, r: Reckoning, d: NaiveDate, n: i32) -> Result<NaiveDate, NaiveDate> {
        let mut w = d;
        if n == 0 {
            while !self.is_working_day_in(r, w) {
                w = w.succ_opt().ok_or(w)?;
            }
            return Ok(w);
        }
        let mut left = n.unsigned_abs();
        while left > 0 {
            w = if n > 0 { w.succ_opt() } else { w.pred_opt() }.ok_or(w)?;
            if self.is_working_day_in(r, w) {
                left -= 1;
            }
        }
        Ok(w)
    }

    /// `n` statutory working days from `d`, the way statutory deadlines count them.
    ///
    /// For `n > 0`, the working day `w` with exactly `n` working days in `(d, w]` ("within 20
    /// working days of the review"); for `n < 0`, the working day `w` with exactly `|n|` working
    /// days in `[w, d)` ("10 working days before the meeting"); for `n = 0`, `d` itself if it is
    /// a working day, else the next one. The result is always a working day, except near the
    /// ends of chrono's date range (years ±262,000), where the walk stops at the last
    /// representable date instead of panicking. It walks day by day without allocating, so it
    /// costs time proportional to `|n|`.
    pub fn add(&self, d: NaiveDate, n: i32) -> NaiveDate {
        self.add_in(Reckoning::Statutory, d, n)
    }

    /// [`Calendar::add`] in reckoning `r`.
    pub fn add_in(&self, r: Reckoning, d: NaiveDate, n: i32) -> NaiveDate {
        self.walk(r, d, n).unwrap_or_else(|last| last)
    }

    /// Like [`Calendar::add_in`], but `None` where chrono's date range runs out; offsets use it
    /// so every unit fails the same way at the edge.
    pub(crate) fn checked_add_in(&self, r: Reckoning, d: NaiveDate, n: i32) -> Option<NaiveDate> {
        self.walk(r, d, n).ok()
    }

    /// How many statutory working days lie in `(a, b]`: how late `b` is against a deadline `a`,
    /// or how much notice `a` gives before `b`. Negative (minus the count in `(b, a]`) when
    /// `b < a`; 0 when they are equal. `between(d, add(d, n)) == n` whenever `d` is a working
    /// day.
    pub fn between(&self, a: NaiveDate, b: NaiveDate) -> i32 {
        self.between_in(Reckoning::Statutory, a, b)
    }

    /// [`Calendar::between`] in reckoning `r`.
    pub fn between_in(&self, r: Reckoning, a: NaiveDate, b: NaiveDate) -> i32 {
        let (lo, hi, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
        let bits = self.bits(r);
        let count = match (bits.index(lo), bits.index(hi)) {
            (Some(l), Some(h)) => (h - l) - bits.count_set(l + 1, h + 1),
            _ => {
                let mut count = 0usize;
                let mut day = lo;
                while day < hi {
                    match day.succ_opt() {
                        Some(next) => day = next,
                        None => break,
                    }
                    if !self.is_non_working_by_rules(r, day) {
                        count += 1;
                    }
                }
                count
            }
        };
        // chrono's whole range is under 200 million days, so the count always fits.
        sign * i32::try_from(count).unwrap_or(i32::MAX)
    }

    /// How many statutory working days late something done on `done` is against a deadline
    /// ending on `due`: at least 1 once the deadline has passed, even when `done` falls on a
    /// weekend or holiday straight after it. The one definition of lateness every plan, list,
    /// digest and report uses.
    pub fn working_days_late(&self, due: NaiveDate, done: NaiveDate) -> i32 {
        self.between(due, done).max(1)
    }

    /// `d` if it is a statutory working day, else the next one. The same as `add(d, 0)`.
    pub fn next_working_day_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        self.add(d, 0)
    }

    /// The council's next open day on or after `d`: where a message due on a weekend, holiday
    /// or closure day waits until.
    pub fn next_open_day_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        self.add_in(Reckoning::Council, d, 0)
    }

    /// The council's last open day on or before `d`: where a reminder due on a closure day
    /// goes, so it still comes before its deadline.
    pub fn last_open_day_on_or_before(&self, d: NaiveDate) -> NaiveDate {
        if self.is_open_day(d) {
            d
        } else {
            self.add_in(Reckoning::Council, d, -1)
        }
    }

    /// Every non-working day of `year` other than weekends, sorted by date: the division's bank
    /// holidays (exactly the file's events for a published year, else the standing-rule
    /// projection) and the council's closure days. Where a closure falls on a bank holiday both
    /// are listed, bank holiday first. A year chrono cannot represent has none.
    pub fn holidays(&self, year: i32) -> Vec<Holiday> {
        let mut out: Vec<Holiday> = if self.published.contains(&year) {
            self.published_in(year).to_vec()
        } else {
            projected_bank_holidays(self.division, year)
        };
        let from = self.closures.partition_point(|h| h.date.year() < year);
        let to = self.closures.partition_point(|h| h.date.year() <= year);
        out.extend_from_slice(&self.closures[from..to]);
        out.sort_by_key(|h| h.date);
        out
    }

    /// The first to last year the file has events for in this division. Years inside use the
    /// file's events exactly (a year inside with no events has no bank holidays); years outside
    /// are projected.
    pub fn published_years(&self) -> RangeInclusive<i32> {
        self.published.clone()
    }

    /// 31 December of the last published year: deadlines after it rest on projected bank
    /// holidays, which `check` warns about so someone updates the file.
    pub fn published_until(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(*self.published.end(), 12, 31).unwrap_or(NaiveDate::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Days;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const SMALL: &str = r#"{
      "england-and-wales": {"division": "england-and-wales", "events": [
        {"title": "Christmas Day", "date": "2030-12-25", "notes": "", "bunting": true},
        {"title": "New Year’s Day", "date": "2030-01-01", "notes": "", "bunting": true},
        {"title": "Made-up day", "date": "2032-03-03", "notes": "Substitute day", "bunting": false}
      ]},
      "scotland": {"division": "scotland", "events": []}
    }"#;

    fn small(closures: Vec<ClosureDay>) -> Calendar {
        Calendar::from_json("small.json", SMALL, Division::EnglandAndWales, closures).unwrap()
    }

    #[test]
    fn published_years_span_the_events_and_gaps_have_only_the_files_events() {
        let cal = small(vec![]);
        assert_eq!(cal.published_years(), 2030..=2032);
        assert_eq!(cal.published_until(), d("2032-12-31"));
        // 2031 lies inside the published range with no events: exactly the file, so none.
        assert!(cal.holidays(2031).is_empty());
        assert!(cal.is_working_day(d("2031-12-25")));
        // 2030 is exactly the file: no Easter Monday.
        assert!(cal.is_working_day(d("2030-04-22")));
        assert!(!cal.is_working_day(d("2030-12-25")));
        let h = cal.holidays(2032);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].title, "Made-up day (substitute day)");
        // Outside the range: projected.
        assert!(!cal.is_working_day(d("2029-12-25")));
        assert!(!cal.is_working_day(d("2033-04-18"))); // Easter Monday 2033
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let e = Calendar::from_json(
            "bh.json",
            "{\n  \"scotland\": [1,",
            Division::Scotland,
            vec![],
        )
        .unwrap_err();
        match &e {
            CalendarError::Json {
                source_name,
                line,
                column,
                message,
            } => {
                assert_eq!(source_name, "bh.json");
                assert_eq!(*line, 2);
                assert!(*column > 0);
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("bh.json:2:"), "{e}");

        let e =
            Calendar::from_json("bh.json", SMALL, Division::NorthernIreland, vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bh.json: has no `northern-ireland` division (it has: england-and-wales, scotland)"
        );
        let e = Calendar::from_json("bh.json", "{}", Division::Scotland, vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bh.json: has no `scotland` division (it has: none)"
        );
        let e = Calendar::from_json("bh.json", SMALL, Division::Scotland, vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bh.json: the `scotland` division lists no bank holidays"
        );
        let bad_date = r#"{"scotland": {"events": [{"title": "x", "date": "2030-02-30"}]}}"#;
        let e = Calendar::from_json("bh.json", bad_date, Division::Scotland, vec![]).unwrap_err();
        assert!(matches!(e, CalendarError::Json { line: 1, .. }), "{e}");
    }

    #[test]
    fn cache_agrees_with_the_rules_on_every_day_it_covers() {
        let closures = vec![
            ClosureDay {
                date: d("2031-06-04"),
                title: "Closed".into(),
            },
            ClosureDay {
                date: d("1900-06-04"),
                title: "Closed".into(),
            },
        ];
        for cal in [
            small(closures),
            Calendar::from_json(
                "small.json",
                SMALL.replace("2032-03-03", "2032-05-24").as_str(),
                Division::EnglandAndWales,
                vec![],
            )
            .unwrap(),
        ] {
            let start = NaiveDate::from_ymd_opt(2030 - CACHE_MARGIN_YEARS, 1, 1).unwrap();
            let end = NaiveDate::from_ymd_opt(2032 + CACHE_MARGIN_YEARS, 12, 31).unwrap();
            for r in [Reckoning::Statutory, Reckoning::Council] {
                let bits = cal.bits(r);
                assert_eq!(bits.index(start), Some(0));
                assert_eq!(bits.index(end), Some(bits.len - 1));
                assert_eq!(bits.index(start.pred_opt().unwrap()), None);
                assert_eq!(bits.index(end.succ_opt().unwrap()), None);
                for day in start.iter_days().take_while(|x| *x <= end) {
                    let i = bits.index(day).unwrap();
                    assert_eq!(bits.get(i), cal.is_non_working_by_rules(r, day), "{day}");
                }
            }
        }
    }

    #[test]
    fn between_by_bits_agrees_with_counting_day_by_day() {
        let cal = small(vec![]);
        let slow = |a: NaiveDate, b: NaiveDate| {
            a.iter_days()
                .skip(1)
                .take_while(|x| *x <= b)
                .filter(|x| !cal.is_non_working_by_rules(Reckoning::Statutory, *x))
                .count() as i32
        };
        let base = d("2029-11-20");
        for i in 0..200 {
            for len in [0, 1, 5, 63, 64, 65, 130, 700] {
                let a = base + Days::new(i);
                let b = a + Days::new(len);
                assert_eq!(cal.between(a, b), slow(a, b), "{a} {b}");
                assert_eq!(cal.between(b, a), -slow(a, b), "{b} {a}");
            }
        }
    }

    #[test]
    fn outside_the_cache_the_rules_answer() {
        let closure = d("2900-06-04"); // a Friday far outside the cache
        let cal = small(vec![ClosureDay {
            date: closure,
            title: "Far future".into(),
        }]);
        assert_eq!(cal.council.index(closure), None);
        assert!(cal.is_working_day(closure));
        assert!(!cal.is_open_day(closure));
        assert_eq!(
            cal.add_in(Reckoning::Council, d("2900-06-03"), 1),
            d("2900-06-07")
        );
        assert_eq!(cal.add(d("2900-06-03"), 1), d("2900-06-04"));
        assert!(!cal.is_working_day(d("2900-12-25")));
        assert!(!cal.is_working_day(easter_sunday(2900) + Days::new(1)));
        assert!(cal.is_working_day(d("2900-06-07")));
        assert!(!cal.is_working_day(d("2900-05-31"))); // Spring bank holiday, projected
        assert_eq!(cal.between(d("2900-06-01"), d("2900-06-08")), 5);
        assert_eq!(
            cal.between_in(Reckoning::Council, d("2900-06-01"), d("2900-06-08")),
            4
        );
        assert_eq!(cal.between(d("1500-01-01"), d("2900-01-01")), {
            let mut n = 0;
            let mut x = d("1500-01-01");
            while x < d("2900-01-01") {
                x = x.succ_opt().unwrap();
                if cal.is_working_day(x) {
                    n += 1;
                }
            }
            n
        });
    }

    #[test]
    fn no_panic_at_the_ends_of_chronos_range() {
        let cal = small(vec![]);
        let (min, max) = (NaiveDate::MIN, NaiveDate::MAX);
        assert_eq!(cal.add(max, 5), max);
        assert_eq!(cal.add(min, -5), min);
        assert_eq!(cal.checked_add_in(Reckoning::Statutory, max, 5), None);
        assert_eq!(cal.checked_add_in(Reckoning::Council, min, -5), None);
        let near_end = max - Days::new(10);
        let w = cal.add(near_end, 3);
        assert!(cal.is_working_day(w) && w <= max);
        assert_eq!(cal.between(near_end, w), 3);
        assert_eq!(cal.add(max, i32::MAX), max);
        assert_eq!(cal.add(min, i32::MIN), min);
        let _ = cal.next_working_day_on_or_after(max);
        let _ = cal.between(min, min + Days::new(5000));
        let _ = cal.between(max, max - Days::new(5000));
        for y in [i32::MIN, min.year(), max.year(), i32::MAX] {
            let _ = cal.holidays(y);
        }
        assert!(cal.holidays(i32::MAX).is_empty());
        // A file whose data sits at chrono's edges still builds.
        let edges = format!(
            r#"{{"scotland": {{"events": [{{"title": "a", "date": "{min}"}}, {{"title": "b", "date": "{max}"}}]}}}}"#
        );
        let cal = Calendar::from_json("edges.json", &edges, Division::Scotland, vec![]).unwrap();
        assert_eq!(cal.published_years(), min.year()..=max.year());
        assert_eq!(cal.published_until(), max);
        assert!(!cal.is_working_day(max) && !cal.is_working_day(min));
        assert!(cal.is_working_day(d("2026-12-25"))); // published range, no event that day
        // The cache starts at chrono's first day and stops 1,000 years after the margin.
        assert_eq!(cal.statutory.index(min), Some(0));
        let cache_end = min.year() - CACHE_MARGIN_YEARS + CACHE_MAX_YEARS - 1;
        let last = NaiveDate::from_ymd_opt(cache_end, 12, 31).unwrap();
        assert_eq!(cal.statutory.index(last), Some(cal.statutory.len - 1));
    }

    #[test]
    fn closures_are_sorted_deduplicated_and_listed_after_a_bank_holiday_on_the_same_day() {
        let c = |s: &str, t: &str| ClosureDay {
            date: d(s),
            title: t.into(),
        };
        let cal = small(vec![
            c("2030-12-27", "Closed"),
            c("2030-12-25", "Closed"),
            c("2030-12-27", "Closed"),
        ]);
        let got: Vec<_> = cal
            .holidays(2030)
            .into_iter()
            .map(|h| (h.date.to_string(), h.title, h.source))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "2030-01-01".into(),
                    "New Year’s Day".into(),
                    HolidaySource::Published
                ),
                (
                    "2030-12-25".into(),
                    "Christmas Day".into(),
                    HolidaySource::Published
                ),
                ("2030-12-25".into(), "Closed".into(), HolidaySource::Closure),
                ("2030-12-27".into(), "Closed".into(), HolidaySource::Closure),
            ]
        );
    }

    #[test]
    fn debug_is_a_summary() {
        let text = format!("{:?}", small(vec![]));
        assert!(
            text.contains("EnglandAndWales") && text.contains("2030..=2032"),
            "{text}"
        );
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn division_names() {
        for div in Division::ALL {
            assert_eq!(div.to_string().parse::<Division>().unwrap(), div);
            assert_eq!(
                serde_json::to_string(&div).unwrap(),
                format!("\"{}\"", div.name())
            );
        }
        let e = "wales".parse::<Division>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`wales` is not a division: write england-and-wales, scotland or northern-ireland"
        );
    }
}
