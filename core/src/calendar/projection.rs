//! Bank holidays by the standing rules, for years the government's file does not cover.
//!
//! The government publishes bank holidays only a couple of years ahead, but a review due in six
//! months' time, or a plan re-run over old cases, needs working days for any year. The standing
//! rules (Easter, the May and August Mondays, fixed dates with weekend substitutes) give the
//! right answer for every year in which nothing extra is proclaimed; one-off proclamations
//! (jubilees, coronations, state funerals, a moved May Day) cannot be projected and only ever
//! come from the published file.
//!
//! Everything here works on the stack, so the calendar can ask about a projected year on every
//! step of a working-day walk without allocating.

use super::{Division, Holiday, HolidaySource, substitute_title};
use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The date of Easter Sunday in `year` by the Gregorian computus (the anonymous
/// Meeus/Jones/Butcher algorithm), proleptic for years before 1583.
///
/// Good Friday and Easter Monday hang off it, and they are the only bank holidays that move by
/// more than a weekend from year to year, so the projection needs it. It never panics: for a
/// year outside chrono's range it returns [`NaiveDate::MIN`] or [`NaiveDate::MAX`], whichever is
/// nearer.
pub fn easter_sunday(year: i32) -> NaiveDate {
    let (month, day) = easter_month_day(i64::from(year));
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(if year < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

/// Month and day of Easter Sunday; floor division keeps it right for negative years too.
fn easter_month_day(y: i64) -> (u32, u32) {
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let n = h + l - 7 * m + 114;
    // n lies in 3 * 31 + 22 ..= 4 * 31 + 24, so both casts are exact.
    (n.div_euclid(31) as u32, (n.rem_euclid(31) + 1) as u32)
}

/// The bank holidays `division` has in `year` by its standing rules, sorted by date, each
/// marked [`HolidaySource::Projected`].
///
/// Substitute days carry the government's wording in their title ("Boxing Day (substitute
/// day)"), exactly as the calendar shows a published substitute day, so a projected year reads
/// like a published one. One-off proclamations are never included. A year outside chrono's range
/// has no representable dates and gives an empty list.
pub fn projected_bank_holidays(division: Division, year: i32) -> Vec<Holiday> {
    standing_rules(division, year)
        .as_slice()
        .iter()
        .map(|s| Holiday {
            date: s.date,
            title: if s.substitute {
                substitute_title(s.name, "Substitute day")
            } else {
                s.name.to_string()
            },
            source: HolidaySource::Projected,
        })
        .collect()
}

/// One bank holiday by the standing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Standing {
    pub(super) date: NaiveDate,
    pub(super) name: &'static str,
    /// The holiday's own date fell on a weekend and this is the weekday that replaces it.
    pub(super) substitute: bool,
}

/// More than any division has in a year (Northern Ireland has ten).
const MOST_IN_A_YEAR: usize = 12;

/// A year's standing-rule bank holidays in a fixed-size array, so asking costs no allocation.
#[derive(Debug, Clone, Copy)]
pub(super) struct StandingYear {
    items: [Standing; MOST_IN_A_YEAR],
    len: usize,
}

impl StandingYear {
    fn empty() -> Self {
        StandingYear {
            items: [Standing {
                date: NaiveDate::MIN,
                name: "",
                substitute: false,
            }; MOST_IN_A_YEAR],
            len: 0,
        }
    }

    fn push(&mut self, s: Standing) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = s;
            self.len += 1;
        }
    }

    pub(super) fn as_slice(&self) -> &[Standing] {
        &self.items[..self.len]
    }

    pub(super) fn contains(&self, d: NaiveDate) -> bool {
        self.as_slice().iter().any(|s| s.date == d)
    }
}

const NEW_YEAR: &str = "New Year’s Day";
const SECOND_JANUARY: &str = "2nd January";
const ST_PATRICK: &str = "St Patrick’s Day";
const BOYNE: &str = "Battle of the Boyne (Orangemen’s Day)";
const ST_ANDREW: &str = "St Andrew’s Day";
const CHRISTMAS: &str = "Christmas Day";
const BOXING: &str = "Boxing Day";

/// The standing rules for one division and year. Empty for a year chrono cannot represent.
pub(super) fn standing_rules(division: Division, year: i32) -> StandingYear {
    standing_rules_checked(division, year).unwrap_or_else(StandingYear::empty)
}

fn standing_rules_checked(division: Division, year: i32) -> Option<StandingYear> {
    let mut out = StandingYear::empty();
    let mut movable = |date: NaiveDate, name| {
        out.push(Standing {
            date,
            name,
            substitute: false,
        })
    };

    let easter = NaiveDate::from_ymd_opt(year, 3, 1).map(|_| easter_sunday(year))?;
    movable(easter.checked_sub_days(Days::new(2))?, "Good Friday");
    if division != Division::Scotland {
        movable(easter.checked_add_days(Days::new(1))?, "Easter Monday");
    }
    movable(first_monday(year, 5)?, "Early May bank holiday");
    movable(last_monday(year, 5)?, "Spring bank holiday");
    let summer = match division {
        Division::Scotland => first_monday(year, 8)?,
        Division::EnglandAndWales | Division::NorthernIreland => last_monday(year, 8)?,
    };
    movable(summer, "Summer bank holiday");

    // Fixed-date holidays, in date order. One on a weekday stays put; one on a weekend moves to
    // the next weekday that is not already a holiday, which pairs Christmas and Boxing Day (and
    // Scotland's 1 and 2 January) the way the government does.
    let fixed: &[(u32, u32, &'static str)] = match division {
        Division::EnglandAndWales => &[(1, 1, NEW_YEAR), (12, 25, CHRISTMAS), (12, 26, BOXING)],
        Division::Scotland => &[
            (1, 1, NEW_YEAR),
            (1, 2, SECOND_JANUARY),
            (11, 30, ST_ANDREW),
            (12, 25, CHRISTMAS),
            (12, 26, BOXING),
        ],
        Division::NorthernIreland => &[
            (1, 1, NEW_YEAR),
            (3, 17, ST_PATRICK),
            (7, 12, BOYNE),
            (12, 25, CHRISTMAS),
            (12, 26, BOXING),
        ],
    };
    for &(month, day, name) in fixed {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        if !is_weekend(date) {
            out.push(Standing {
                date,
                name,
                substitute: false,
            });
        }
    }
    for &(month, day, name) in fixed {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        if is_weekend(date) {
            let mut sub = date;
            while is_weekend(sub) || out.contains(sub) {
                sub = sub.succ_opt()?;
            }
            out.push(Standing {
                date: sub,
                name,
                substitute: true,
            });
        }
    }
    let len = out.len;
    out.items[..len].sort_unstable_by_key(|s| s.date);
    Some(out)
}

pub(super) fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn first_monday(year: i32, month: u32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 1)
}

fn last_monday(year: i32, month: u32) -> Option<NaiveDate> {
    // The fourth Monday is always in the month; a fifth may be.
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 5)
        .or_else(|| NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Gauss's Easter algorithm with the Gregorian corrections: a second, independent method.
    fn easter_gauss(y: i32) -> NaiveDate {
        let a = y % 19;
        let b = y % 4;
        let c = y % 7;
        let k = y / 100;
        let p = (13 + 8 * k) / 25;
        let q = k / 4;
        let m = (15 - p + k - q) % 30;
        let n = (4 + k - q) % 7;
        let dd = (19 * a + m) % 30;
        let e = (2 * b + 4 * c + 6 * dd + n) % 7;
        let mut day = 22 + dd + e; // in March, may run into April
        if dd == 29 && e == 6 {
            day = 50; // 19 April
        } else if dd == 28 && e == 6 && (11 * m + 11) % 30 < 19 {
            day = 49; // 18 April
        }
        let (month, day) = if day > 31 { (4, day - 31) } else { (3, day) };
        NaiveDate::from_ymd_opt(y, month as u32, day as u32).unwrap()
    }

    #[test]
    fn easter_agrees_with_gauss_for_the_gregorian_era() {
        for y in 1583..=4099 {
            assert_eq!(easter_sunday(y), easter_gauss(y), "{y}");
        }
    }

    #[test]
    fn easter_known_dates() {
        for (y, s) in [
            (1818, "1818-03-22"), // earliest possible
            (1943, "1943-04-25"), // latest possible
            (2000, "2000-04-23"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2038, "2038-04-25"),
        ] {
            assert_eq!(easter_sunday(y), d(s));
        }
    }

    #[test]
    fn easter_saturates_outside_chrono() {
        assert_eq!(easter_sunday(i32::MAX), NaiveDate::MAX);
        assert_eq!(easter_sunday(i32::MIN), NaiveDate::MIN);
        assert_eq!(easter_sunday(NaiveDate::MAX.year() + 1), NaiveDate::MAX);
    }

    #[test]
    fn years_outside_chrono_have_no_projected_holidays() {
        for div in Division::ALL {
            for y in [
                i32::MIN,
                NaiveDate::MIN.year() - 1,
                NaiveDate::MAX.year() + 1,
                i32::MAX,
            ] {
                assert!(projected_bank_holidays(div, y).is_empty());
            }
        }
    }

    #[test]
    fn last_monday_is_in_the_last_week() {
        for y in 1990..2100 {
            for m in [5, 8] {
                let lm = last_monday(y, m).unwrap();
                assert_eq!(lm.weekday(), Weekday::Mon);
                assert_eq!(lm.month(), m);
                assert_ne!((lm + Days::new(7)).month(), m);
            }
        }
    }

    proptest! {
        #[test]
        fn easter_is_a_spring_sunday_in_every_year_chrono_has(
            y in NaiveDate::MIN.year()..=NaiveDate::MAX.year()
        ) {
            let e = easter_sunday(y);
            prop_assert_eq!(e.year(), y);
            prop_assert_eq!(e.weekday(), Weekday::Sun);
            let (m, day) = (e.month(), e.day());
            prop_assert!((m == 3 && day >= 22) || (m == 4 && day <= 25), "{}", e);
        }

        #[test]
        fn standing_rules_never_panic_and_are_weekdays_of_the_year(
            y in NaiveDate::MIN.year()..=NaiveDate::MAX.year()
        ) {
            for div in Division::ALL {
                let hs = projected_bank_holidays(div, y);
                let expected = match div {
                    Division::EnglandAndWales => 8,
                    Division::Scotland => 9,
                    Division::NorthernIreland => 10,
                };
                prop_assert_eq!(hs.len(), expected);
                for w in hs.windows(2) {
                    prop_assert!(w[0].date < w[1].date, "{:?}", hs);
                }
                for h in &hs {
                    prop_assert_eq!(h.date.year(), y);
                    prop_assert!(!is_weekend(h.date));
                }
            }
        }
    }
}
