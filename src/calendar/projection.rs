//! Bank holidays by each division's standing rules, for years the published data does not cover.
//! One-off proclamations (a jubilee, a coronation) cannot be projected: that is why the published
//! file wins wherever it has data, and why `check` warns before it runs out.

use super::{Division, Holiday, HolidaySource};
use chrono::{Datelike, Days, NaiveDate, Weekday};

/// Easter Sunday in the Gregorian calendar (the anonymous Gregorian computus).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, month as u32, day as u32)
}

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn shift(d: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        d.checked_add_days(Days::new(days as u64)).unwrap_or(d)
    } else {
        d.checked_sub_days(Days::new(days.unsigned_abs()))
            .unwrap_or(d)
    }
}

fn first_monday(year: i32, month: u32) -> NaiveDate {
    let first = ymd(year, month, 1);
    let ahead = (7 - first.weekday().num_days_from_monday()) % 7;
    shift(first, i64::from(ahead))
}

fn last_monday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 {
        ymd(year + 1, 1, 1)
    } else {
        ymd(year, month + 1, 1)
    };
    let last = shift(next, -1);
    shift(last, -i64::from(last.weekday().num_days_from_monday()))
}

/// The standing-rule bank holidays of a division in a year, sorted by date.
pub fn projected_bank_holidays(division: Division, year: i32) -> Vec<Holiday> {
    let mut out: Vec<(NaiveDate, &str, bool)> = Vec::new();
    let easter = easter_sunday(year);
    out.push((shift(easter, -2), "Good Friday", false));
    if division != Division::Scotland {
        out.push((shift(easter, 1), "Easter Monday", false));
    }
    out.push((first_monday(year, 5), "Early May bank holiday", false));
    out.push((last_monday(year, 5), "Spring bank holiday", false));
    let summer = match division {
        Division::Scotland => first_monday(year, 8),
        _ => last_monday(year, 8),
    };
    out.push((summer, "Summer bank holiday", false));

    let mut fixed: Vec<(NaiveDate, &str)> = vec![(ymd(year, 1, 1), "New Year’s Day")];
    match division {
        Division::Scotland => {
            fixed.push((ymd(year, 1, 2), "2nd January"));
            fixed.push((ymd(year, 11, 30), "St Andrew’s Day"));
        }
        Division::NorthernIreland => {
            fixed.push((ymd(year, 3, 17), "St Patrick’s Day"));
            fixed.push((ymd(year, 7, 12), "Battle of the Boyne (Orangemen’s Day)"));
        }
        Division::EnglandAndWales => {}
    }
    fixed.push((ymd(year, 12, 25), "Christmas Day"));
    fixed.push((ymd(year, 12, 26), "Boxing Day"));
    fixed.sort();
    // A fixed holiday on a weekday keeps its date; one at a weekend moves to the next weekday
    // not already a holiday (Christmas on a Saturday: 27th, Boxing Day: 28th).
    let mut taken: Vec<NaiveDate> = fixed
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| !is_weekend(*d))
        .collect();
    for (date, title) in fixed {
        if !is_weekend(date) {
            out.push((date, title, false));
            continue;
        }
        let mut day = date;
        while is_weekend(day) || taken.contains(&day) {
            day = shift(day, 1);
        }
        taken.push(day);
        out.push((day, title, true));
    }
    out.sort();
    out.into_iter()
        .map(|(date, title, substitute)| Holiday {
            date,
            title: if substitute {
                format!("{title} (substitute day)")
            } else {
                title.to_string()
            },
            source: HolidaySource::Projected,
        })
        .collect()
}
