//! The working-day calendar against the shipped bank-holiday data (`config/bank-holidays.json`):
//! pinned dates around Christmas, Easter and substitute days in every division, the one-off
//! proclaimed holidays, the projection agreeing with the data, offsets, and property tests of
//! the working-day arithmetic against a naive reference.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use driftwatch::calendar::{
    Calendar, CalendarError, ClosureDay, Division, Holiday, HolidaySource, Offset, OffsetUnit,
    Reckoning, easter_sunday, projected_bank_holidays,
};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::LazyLock;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const DATA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/bank-holidays.json");

static DATA: LazyLock<String> = LazyLock::new(|| std::fs::read_to_string(DATA_PATH).unwrap());

fn calendar(division: Division, closures: &[&str]) -> Calendar {
    let closures = closures
        .iter()
        .map(|c| ClosureDay {
            date: d(c),
            title: "Council closed".into(),
        })
        .collect();
    Calendar::from_json("config/bank-holidays.json", &DATA, division, closures).unwrap()
}

static EW: LazyLock<Calendar> = LazyLock::new(|| calendar(Division::EnglandAndWales, &[]));
static SCOTLAND: LazyLock<Calendar> = LazyLock::new(|| calendar(Division::Scotland, &[]));
static NI: LazyLock<Calendar> = LazyLock::new(|| calendar(Division::NorthernIreland, &[]));

fn cal_for(division: Division) -> &'static Calendar {
    match division {
        Division::EnglandAndWales => &EW,
        Division::Scotland => &SCOTLAND,
        Division::NorthernIreland => &NI,
    }
}

/// The working days among `from..=to`.
fn working_days(cal: &Calendar, from: &str, to: &str) -> Vec<NaiveDate> {
    d(from)
        .iter_days()
        .take_while(|x| *x <= d(to))
        .filter(|x| cal.is_working_day(*x))
        .collect()
}

fn dates(list: &[&str]) -> Vec<NaiveDate> {
    list.iter().map(|s| d(s)).collect()
}

fn titled(cal: &Calendar, year: i32) -> Vec<(String, String)> {
    cal.holidays(year)
        .into_iter()
        .map(|h| (h.date.to_string(), h.title))
        .collect()
}

fn has(cal: &Calendar, date: &str, title: &str, source: HolidaySource) -> bool {
    let date = d(date);
    cal.holidays(date.year())
        .iter()
        .any(|h| h.date == date && h.title == title && h.source == source)
}

// ---------------------------------------------------------------------------------------------
// Christmas 2026 to New Year 2027, England and Wales

#[test]
fn christmas_2026_to_new_year_2027() {
    let cal = &*EW;
    // Thu 24 Dec; Fri 25 Christmas; Sat 26 and Sun 27; Mon 28 Boxing Day substitute; 29–31;
    // Fri 1 Jan New Year's Day; Sat 2 and Sun 3; Mon 4.
    assert_eq!(
        working_days(cal, "2026-12-24", "2027-01-04"),
        dates(&[
            "2026-12-24",
            "2026-12-29",
            "2026-12-30",
            "2026-12-31",
            "2027-01-04"
        ])
    );
    assert_eq!(cal.add(d("2026-12-24"), 1), d("2026-12-29"));
    assert_eq!(cal.add(d("2026-12-24"), 3), d("2026-12-31"));
    assert_eq!(cal.add(d("2026-12-24"), 4), d("2027-01-04"));
    assert_eq!(cal.add(d("2026-12-31"), 1), d("2027-01-04"));
    assert_eq!(cal.add(d("2027-01-04"), -1), d("2026-12-31"));
    assert_eq!(cal.add(d("2027-01-04"), -4), d("2026-12-24"));
    assert_eq!(cal.add(d("2026-12-29"), -1), d("2026-12-24"));
    assert_eq!(cal.between(d("2026-12-24"), d("2027-01-04")), 4);
    assert_eq!(cal.between(d("2027-01-04"), d("2026-12-24")), -4);
    assert_eq!(cal.between(d("2026-12-24"), d("2026-12-28")), 0);
    assert_eq!(cal.between(d("2026-12-25"), d("2026-12-29")), 1);
    assert_eq!(cal.between(d("2026-12-24"), d("2026-12-24")), 0);
    assert_eq!(cal.between(d("2027-01-01"), d("2027-01-03")), 0);
    assert!(has(
        cal,
        "2026-12-28",
        "Boxing Day (substitute day)",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2026-12-25",
        "Christmas Day",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2027-01-01",
        "New Year’s Day",
        HolidaySource::Published
    ));
}

#[test]
fn christmas_2026_with_the_council_closed_29_to_31_december() {
    let cal = calendar(
        Division::EnglandAndWales,
        &["2026-12-29", "2026-12-30", "2026-12-31"],
    );
    // The closure days are still statutory working days: they never stretch a deadline.
    assert_eq!(
        working_days(&cal, "2026-12-24", "2027-01-04"),
        dates(&[
            "2026-12-24",
            "2026-12-29",
            "2026-12-30",
            "2026-12-31",
            "2027-01-04"
        ])
    );
    assert_eq!(cal.add(d("2026-12-24"), 1), d("2026-12-29"));
    assert_eq!(cal.between(d("2026-12-24"), d("2027-01-04")), 4);
    // The council's own working days leave them out.
    let council = Reckoning::Council;
    let open: Vec<_> = d("2026-12-24")
        .iter_days()
        .take_while(|x| *x <= d("2027-01-04"))
        .filter(|x| cal.is_open_day(*x))
        .collect();
    assert_eq!(open, dates(&["2026-12-24", "2027-01-04"]));
    assert_eq!(cal.add_in(council, d("2026-12-24"), 1), d("2027-01-04"));
    assert_eq!(cal.add_in(council, d("2026-12-24"), 2), d("2027-01-05"));
    assert_eq!(cal.add_in(council, d("2027-01-04"), -1), d("2026-12-24"));
    assert_eq!(cal.add_in(council, d("2026-12-29"), 0), d("2027-01-04"));
    assert_eq!(cal.between_in(council, d("2026-12-24"), d("2027-01-04")), 1);
    assert_eq!(
        cal.between_in(council, d("2027-01-04"), d("2026-12-24")),
        -1
    );
    assert_eq!(
        cal.between_in(council, d("2026-12-20"), d("2027-01-10")),
        4 + 5
    );
    assert_eq!(cal.between(d("2026-12-20"), d("2027-01-10")), 4 + 3 + 5);
    assert_eq!(
        cal.last_open_day_on_or_before(d("2026-12-31")),
        d("2026-12-24")
    );
    assert_eq!(
        cal.next_open_day_on_or_after(d("2026-12-29")),
        d("2027-01-04")
    );
    // The closures are listed with the bank holidays, sorted by date.
    let end_of_2026: Vec<_> = cal
        .holidays(2026)
        .into_iter()
        .filter(|h| h.date.month() == 12)
        .map(|h| (h.date.to_string(), h.title, h.source))
        .collect();
    assert_eq!(
        end_of_2026,
        vec![
            (
                "2026-12-25".to_string(),
                "Christmas Day".to_string(),
                HolidaySource::Published
            ),
            (
                "2026-12-28".into(),
                "Boxing Day (substitute day)".into(),
                HolidaySource::Published
            ),
            (
                "2026-12-29".into(),
                "Council closed".into(),
                HolidaySource::Closure
            ),
            (
                "2026-12-30".into(),
                "Council closed".into(),
                HolidaySource::Closure
            ),
            (
                "2026-12-31".into(),
                "Council closed".into(),
                HolidaySource::Closure
            ),
        ]
    );
    assert!(
        cal.holidays(2027)
            .iter()
            .all(|h| h.source != HolidaySource::Closure)
    );
}

#[test]
fn closure_days_count_in_projected_years_and_on_holidays_too() {
    let cal = calendar(
        Division::EnglandAndWales,
        &["2035-12-27", "2035-12-25", "2010-06-01"],
    );
    assert!(!cal.is_open_day(d("2035-12-27"))); // a Thursday
    assert!(!cal.is_open_day(d("2010-06-01"))); // a Tuesday before the data
    assert!(cal.is_working_day(d("2035-12-27")) && cal.is_working_day(d("2010-06-01")));
    assert!(cal.is_open_day(d("2035-12-28")));
    let christmas: Vec<_> = cal
        .holidays(2035)
        .into_iter()
        .filter(|h| h.date == d("2035-12-25"))
        .map(|h| h.source)
        .collect();
    assert_eq!(
        christmas,
        vec![HolidaySource::Projected, HolidaySource::Closure]
    );
}

// ---------------------------------------------------------------------------------------------
// Easter, Christmas on a Saturday, one-off holidays

#[test]
fn easter_2027() {
    let cal = &*EW;
    assert_eq!(easter_sunday(2027), d("2027-03-28"));
    assert!(has(
        cal,
        "2027-03-26",
        "Good Friday",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2027-03-29",
        "Easter Monday",
        HolidaySource::Published
    ));
    assert_eq!(
        working_days(cal, "2027-03-25", "2027-03-30"),
        dates(&["2027-03-25", "2027-03-30"])
    );
    assert_eq!(cal.add(d("2027-03-25"), 1), d("2027-03-30"));
    assert_eq!(cal.add(d("2027-03-30"), -1), d("2027-03-25"));
    assert_eq!(cal.add(d("2027-03-26"), 0), d("2027-03-30"));
    assert_eq!(cal.between(d("2027-03-25"), d("2027-03-30")), 1);
    assert_eq!(cal.between(d("2027-03-22"), d("2027-04-02")), 3 + 4);
}

#[test]
fn christmas_2027_on_a_saturday_has_substitute_days_on_27_and_28() {
    let cal = &*EW;
    assert_eq!(d("2027-12-25").weekday(), Weekday::Sat);
    assert!(has(
        cal,
        "2027-12-27",
        "Christmas Day (substitute day)",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2027-12-28",
        "Boxing Day (substitute day)",
        HolidaySource::Published
    ));
    assert!(!cal.holidays(2027).iter().any(|h| h.date == d("2027-12-25")));
    assert_eq!(
        working_days(cal, "2027-12-23", "2028-01-05"),
        dates(&[
            "2027-12-23",
            "2027-12-24",
            "2027-12-29",
            "2027-12-30",
            "2027-12-31",
            "2028-01-04",
            "2028-01-05"
        ])
    );
    // New Year's Day 2028 is a Saturday too: its substitute is Monday 3 January.
    assert!(has(
        cal,
        "2028-01-03",
        "New Year’s Day (substitute day)",
        HolidaySource::Published
    ));
    assert_eq!(cal.add(d("2027-12-24"), 1), d("2027-12-29"));
    assert_eq!(cal.add(d("2027-12-31"), 1), d("2028-01-04"));
    assert_eq!(cal.between(d("2027-12-24"), d("2028-01-04")), 4);
}

#[test]
fn one_off_proclaimed_holidays_2020_2022_2023_in_every_division() {
    for div in Division::ALL {
        let cal = cal_for(div);
        // 2020: the Early May bank holiday moved to Friday 8 May for VE day.
        assert!(has(
            cal,
            "2020-05-08",
            "Early May bank holiday (VE day)",
            HolidaySource::Published
        ));
        assert!(cal.is_working_day(d("2020-05-04")), "{div}");
        assert_eq!(cal.add(d("2020-05-07"), 1), d("2020-05-11"));
        // 2022: Spring bank holiday on Thursday 2 June, the Platinum Jubilee on Friday 3 June;
        // Monday 30 May was a normal working day.
        assert!(has(
            cal,
            "2022-06-02",
            "Spring bank holiday",
            HolidaySource::Published
        ));
        assert!(has(
            cal,
            "2022-06-03",
            "Platinum Jubilee bank holiday",
            HolidaySource::Published
        ));
        assert!(cal.is_working_day(d("2022-05-30")), "{div}");
        assert_eq!(cal.add(d("2022-06-01"), 1), d("2022-06-06"));
        assert_eq!(cal.between(d("2022-05-27"), d("2022-06-06")), 4);
        // 2022: the Queen's state funeral, Monday 19 September.
        assert!(has(
            cal,
            "2022-09-19",
            "Bank Holiday for the State Funeral of Queen Elizabeth II",
            HolidaySource::Published
        ));
        assert_eq!(cal.add(d("2022-09-16"), 1), d("2022-09-20"));
        // 2023: the coronation, Monday 8 May, a week after the Early May bank holiday.
        assert!(has(
            cal,
            "2023-05-08",
            "Bank holiday for the coronation of King Charles III",
            HolidaySource::Published
        ));
        assert!(has(
            cal,
            "2023-05-01",
            "Early May bank holiday",
            HolidaySource::Published
        ));
        assert_eq!(cal.add(d("2023-05-05"), 1), d("2023-05-09"));
        assert_eq!(cal.add(d("2023-05-09"), -1), d("2023-05-05"));
    }
}

// ---------------------------------------------------------------------------------------------
// add with n = 0 and n < 0

#[test]
fn add_zero_is_the_day_itself_or_the_next_working_day() {
    let cal = &*EW;
    assert_eq!(cal.add(d("2027-01-05"), 0), d("2027-01-05")); // a Tuesday
    assert_eq!(cal.add(d("2027-01-09"), 0), d("2027-01-11")); // Saturday → Monday
    assert_eq!(cal.add(d("2027-01-10"), 0), d("2027-01-11")); // Sunday → Monday
    assert_eq!(cal.add(d("2026-12-25"), 0), d("2026-12-29")); // Christmas → after Boxing Day
    assert_eq!(cal.add(d("2027-03-26"), 0), d("2027-03-30")); // Good Friday → Tuesday
    assert_eq!(cal.add(d("2027-08-30"), 0), d("2027-08-31")); // Summer bank holiday
    for s in ["2027-01-05", "2027-01-09", "2026-12-25", "2027-03-26"] {
        assert_eq!(cal.next_working_day_on_or_after(d(s)), cal.add(d(s), 0));
    }
}

#[test]
fn negative_n_counts_back() {
    let cal = &*EW;
    // Invitations 10 working days before a review on Thursday 21 January 2027 go on Thursday
    // 7 January: 7, 8, 11–15, 18–20 are the ten working days in [7 Jan, 21 Jan).
    assert_eq!(cal.add(d("2027-01-21"), -10), d("2027-01-07"));
    assert_eq!(cal.between(d("2027-01-21"), d("2027-01-07")), -10);
    assert_eq!(cal.add(d("2027-01-21"), -1), d("2027-01-20"));
    assert_eq!(cal.add(d("2027-01-18"), -1), d("2027-01-15")); // Monday → Friday
    // Back across Christmas 2026: Dec 31, 30, 29, 24, 23.
    assert_eq!(cal.add(d("2027-01-04"), -5), d("2026-12-23"));
    // From a non-working day: [w, d) has |n| working days, d itself not counted.
    assert_eq!(cal.add(d("2027-01-02"), -1), d("2026-12-31")); // Saturday
    assert_eq!(cal.add(d("2027-01-01"), -1), d("2026-12-31")); // New Year's Day
    assert_eq!(cal.add(d("2026-12-28"), -1), d("2026-12-24")); // Boxing Day substitute
    // 20 working days after a review on 7 January 2027, and back again.
    assert_eq!(cal.add(d("2027-01-07"), 20), d("2027-02-04"));
    assert_eq!(cal.add(d("2027-02-04"), -20), d("2027-01-07"));
}

// ---------------------------------------------------------------------------------------------
// Scotland and Northern Ireland

#[test]
fn scotland() {
    let cal = &*SCOTLAND;
    assert_eq!(cal.division(), Division::Scotland);
    // 2 January is a holiday; in 2027 it is a Saturday, so its substitute is Monday 4 January.
    assert!(has(
        cal,
        "2026-01-02",
        "2nd January",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2027-01-04",
        "2nd January (substitute day)",
        HolidaySource::Published
    ));
    assert_eq!(cal.add(d("2026-12-31"), 1), d("2027-01-05"));
    assert_eq!(EW.add(d("2026-12-31"), 1), d("2027-01-04"));
    // New Year's Day 2022 on a Saturday: 3 and 4 January.
    assert!(!cal.is_working_day(d("2022-01-03")) && !cal.is_working_day(d("2022-01-04")));
    assert!(EW.is_working_day(d("2022-01-04")));
    // St Andrew's Day 2026 is Monday 30 November; in 2025 it is a Sunday, so Monday 1 December.
    assert!(has(
        cal,
        "2026-11-30",
        "St Andrew’s Day",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2025-12-01",
        "St Andrew’s Day (substitute day)",
        HolidaySource::Published
    ));
    assert_eq!(cal.add(d("2026-11-27"), 1), d("2026-12-01"));
    assert!(EW.is_working_day(d("2026-11-30")));
    // Summer bank holiday is the first Monday of August, not the last; no Easter Monday.
    assert!(has(
        cal,
        "2026-08-03",
        "Summer bank holiday",
        HolidaySource::Published
    ));
    assert!(cal.is_working_day(d("2026-08-31")));
    assert!(!EW.is_working_day(d("2026-08-31")));
    assert!(cal.is_working_day(d("2027-03-29")));
    assert!(!cal.is_working_day(d("2027-03-26")));
    assert_eq!(cal.add(d("2027-03-25"), 1), d("2027-03-29"));
}

#[test]
fn northern_ireland() {
    let cal = &*NI;
    // St Patrick's Day, Tuesday 17 March 2026; on Sunday 17 March 2024 its substitute is Monday.
    assert!(has(
        cal,
        "2026-03-17",
        "St Patrick’s Day",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2024-03-18",
        "St Patrick’s Day (substitute day)",
        HolidaySource::Published
    ));
    assert_eq!(cal.add(d("2026-03-16"), 1), d("2026-03-18"));
    assert!(EW.is_working_day(d("2026-03-17")));
    // The Boyne, 12 July; a Sunday in 2026, so Monday 13 July.
    assert!(has(
        cal,
        "2026-07-13",
        "Battle of the Boyne (Orangemen’s Day) (substitute day)",
        HolidaySource::Published
    ));
    assert!(has(
        cal,
        "2027-07-12",
        "Battle of the Boyne (Orangemen’s Day)",
        HolidaySource::Published
    ));
    assert_eq!(cal.add(d("2026-07-10"), 1), d("2026-07-14"));
    assert_eq!(cal.between(d("2026-07-10"), d("2026-07-14")), 1);
    // Easter Monday, as in England and Wales.
    assert!(!cal.is_working_day(d("2027-03-29")));
}

// ---------------------------------------------------------------------------------------------
// The shipped data file

/// England and Wales by year, as the government published them (2018–2026) and the standing
/// rules give them (2027–2028).
const ENGLAND_AND_WALES: &[(i32, &str)] = &[
    (2018, "01-01 03-30 04-02 05-07 05-28 08-27 12-25 12-26"),
    (2019, "01-01 04-19 04-22 05-06 05-27 08-26 12-25 12-26"),
    (2020, "01-01 04-10 04-13 05-08 05-25 08-31 12-25 12-28"),
    (2021, "01-01 04-02 04-05 05-03 05-31 08-30 12-27 12-28"),
    (
        2022,
        "01-03 04-15 04-18 05-02 06-02 06-03 08-29 09-19 12-26 12-27",
    ),
    (
        2023,
        "01-02 04-07 04-10 05-01 05-08 05-29 08-28 12-25 12-26",
    ),
    (2024, "01-01 03-29 04-01 05-06 05-27 08-26 12-25 12-26"),
    (2025, "01-01 04-18 04-21 05-05 05-26 08-25 12-25 12-26"),
    (2026, "01-01 04-03 04-06 05-04 05-25 08-31 12-25 12-28"),
    (2027, "01-01 03-26 03-29 05-03 05-31 08-30 12-27 12-28"),
    (2028, "01-03 04-14 04-17 05-01 05-29 08-28 12-25 12-26"),
];

#[test]
fn england_and_wales_dates_are_exactly_the_known_list() {
    let got: Vec<NaiveDate> = (2018..=2028)
        .flat_map(|y| EW.holidays(y))
        .map(|h| h.date)
        .collect();
    let want: Vec<NaiveDate> = ENGLAND_AND_WALES
        .iter()
        .flat_map(|(year, days)| days.split(' ').map(move |md| d(&format!("{year}-{md}"))))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn data_file_has_the_governments_shape() {
    let file: serde_json::Value = serde_json::from_str(&DATA).unwrap();
    let object = file.as_object().unwrap();
    assert_eq!(object.len(), 3);
    for div in Division::ALL {
        let entry = &object[div.name()];
        assert_eq!(entry["division"], div.name());
        let events = entry["events"].as_array().unwrap();
        let mut previous: Option<NaiveDate> = None;
        let mut years = BTreeSet::new();
        for e in events {
            let e = e.as_object().unwrap();
            assert_eq!(e.len(), 4, "{e:?}");
            let date = d(e["date"].as_str().unwrap());
            assert!(
                previous.is_none_or(|p| p < date),
                "{div}: {date} out of order"
            );
            previous = Some(date);
            years.insert(date.year());
            assert!(
                !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                "{date}"
            );
            assert!(["", "Substitute day"].contains(&e["notes"].as_str().unwrap()));
            assert!(e["bunting"].is_boolean());
            assert!(!e["title"].as_str().unwrap().is_empty());
        }
        assert_eq!(years, (2018..=2028).collect::<BTreeSet<_>>(), "{div}");
        let cal = cal_for(div);
        assert_eq!(cal.published_years(), 2018..=2028);
        assert_eq!(cal.published_until(), d("2028-12-31"));
        assert_eq!(cal.division(), div);
        let expected = match div {
            Division::EnglandAndWales => 8 * 11 + 3,
            Division::Scotland => 9 * 11 + 3,
            Division::NorthernIreland => 10 * 11 + 3,
        };
        assert_eq!(events.len(), expected, "{div}");
    }
}

#[test]
fn every_holiday_in_the_data_is_a_non_working_day() {
    for div in Division::ALL {
        let cal = cal_for(div);
        for year in cal.published_years() {
            for h in cal.holidays(year) {
                assert_eq!(h.source, HolidaySource::Published);
                assert!(!cal.is_working_day(h.date), "{div} {}", h.date);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Projection

/// (date, title) pairs.
type Listed = &'static [(&'static str, &'static str)];

/// The one-off proclamations that the standing rules cannot know: (year, only in the data,
/// only in the projection). The same in every division.
const PROCLAIMED: &[(i32, Listed, Listed)] = &[
    (
        2020,
        &[("2020-05-08", "Early May bank holiday (VE day)")],
        &[("2020-05-04", "Early May bank holiday")],
    ),
    (
        2022,
        &[
            ("2022-06-02", "Spring bank holiday"),
            ("2022-06-03", "Platinum Jubilee bank holiday"),
            (
                "2022-09-19",
                "Bank Holiday for the State Funeral of Queen Elizabeth II",
            ),
        ],
        &[("2022-05-30", "Spring bank holiday")],
    ),
    (
        2023,
        &[(
            "2023-05-08",
            "Bank holiday for the coronation of King Charles III",
        )],
        &[],
    ),
];

#[test]
fn projection_agrees_with_the_data_except_proclaimed_holidays() {
    let set = |v: Vec<Holiday>| -> BTreeSet<(String, String)> {
        v.into_iter()
            .map(|h| (h.date.to_string(), h.title))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    for div in Division::ALL {
        let cal = cal_for(div);
        for year in 2018..=2028 {
            let projected = projected_bank_holidays(div, year);
            assert!(
                projected
                    .iter()
                    .all(|h| h.source == HolidaySource::Projected)
            );
            assert!(projected.windows(2).all(|w| w[0].date < w[1].date));
            let projected = set(projected);
            let published = set(cal.holidays(year));
            let only_published: BTreeSet<_> = published.difference(&projected).cloned().collect();
            let only_projected: BTreeSet<_> = projected.difference(&published).cloned().collect();
            let (want_published, want_projected) = PROCLAIMED
                .iter()
                .find(|(y, _, _)| *y == year)
                .map(|(_, a, b)| (pairs(a), pairs(b)))
                .unwrap_or_default();
            assert_eq!(only_published, want_published, "{div} {year}");
            assert_eq!(only_projected, want_projected, "{div} {year}");
        }
    }
}

#[test]
fn years_past_the_data_are_projected() {
    let cal = &*EW;
    let h = cal.holidays(2031);
    assert!(h.iter().all(|h| h.source == HolidaySource::Projected));
    assert_eq!(
        titled(cal, 2031),
        vec![
            ("2031-01-01".to_string(), "New Year’s Day".to_string()),
            ("2031-04-11".into(), "Good Friday".into()),
            ("2031-04-14".into(), "Easter Monday".into()),
            ("2031-05-05".into(), "Early May bank holiday".into()),
            ("2031-05-26".into(), "Spring bank holiday".into()),
            ("2031-08-25".into(), "Summer bank holiday".into()),
            ("2031-12-25".into(), "Christmas Day".into()),
            ("2031-12-26".into(), "Boxing Day".into()),
        ]
    );
    assert!(!cal.is_working_day(d("2031-04-14")));
    assert!(!cal.is_working_day(d("2031-12-25")));
    assert_eq!(cal.add(d("2031-12-24"), 1), d("2031-12-29"));
    // Christmas 2032 is a Saturday: projected substitutes on 27 and 28 December.
    assert!(has(
        cal,
        "2032-12-27",
        "Christmas Day (substitute day)",
        HolidaySource::Projected
    ));
    assert!(has(
        cal,
        "2032-12-28",
        "Boxing Day (substitute day)",
        HolidaySource::Projected
    ));
    // The first year after the data, and years before it, are projected too.
    assert!(has(
        cal,
        "2029-04-02",
        "Easter Monday",
        HolidaySource::Projected
    ));
    assert!(has(
        cal,
        "2017-04-17",
        "Easter Monday",
        HolidaySource::Projected
    ));
    assert!(has(
        cal,
        "2017-12-25",
        "Christmas Day",
        HolidaySource::Projected
    ));
    assert!(!cal.is_working_day(d("2017-12-26")));
    assert_eq!(cal.add(d("2028-12-22"), 1), d("2028-12-27"));
    assert_eq!(cal.add(d("2028-12-29"), 1), d("2029-01-02"));
    // Scotland and Northern Ireland project their own holidays.
    assert!(has(
        &SCOTLAND,
        "2031-12-01",
        "St Andrew’s Day (substitute day)",
        HolidaySource::Projected
    ));
    assert!(has(
        &SCOTLAND,
        "2031-01-02",
        "2nd January",
        HolidaySource::Projected
    ));
    assert!(has(
        &NI,
        "2031-03-17",
        "St Patrick’s Day",
        HolidaySource::Projected
    ));
    assert!(has(
        &NI,
        "2031-07-14",
        "Battle of the Boyne (Orangemen’s Day) (substitute day)",
        HolidaySource::Projected
    ));
}

#[test]
fn easter_sunday_known_years() {
    for (year, date) in [
        (2018, "2018-04-01"),
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2026, "2026-04-05"),
        (2027, "2027-03-28"),
        (2031, "2031-04-13"),
        (2038, "2038-04-25"),
    ] {
        assert_eq!(easter_sunday(year), d(date), "{year}");
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and serialisation

#[test]
fn bad_data_errors_name_the_file_line_and_column() {
    let truncated = &DATA[..DATA.len() / 2];
    let e = Calendar::from_json(
        "config/bank-holidays.json",
        truncated,
        Division::Scotland,
        vec![],
    )
    .unwrap_err();
    let CalendarError::Json { line, column, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(*line > 100 && *column > 0);
    assert!(
        e.to_string()
            .starts_with(&format!("config/bank-holidays.json:{line}:{column}: ")),
        "{e}"
    );
    let bad_date = DATA.replacen("2018-01-01", "2018-01-32", 1);
    let e = Calendar::from_json("bh.json", &bad_date, Division::Scotland, vec![]).unwrap_err();
    assert!(e.to_string().starts_with("bh.json:5:"), "{e}");
    let renamed = DATA.replace("\"scotland\": {", "\"alba\": {");
    let e = Calendar::from_json("bh.json", &renamed, Division::Scotland, vec![]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bh.json: has no `scotland` division (it has: alba, england-and-wales, northern-ireland)"
    );
}

#[test]
fn holidays_and_closures_serialise() {
    let h = EW.holidays(2027);
    assert_eq!(
        serde_json::to_string(&h[1]).unwrap(),
        r#"{"date":"2027-03-26","title":"Good Friday","source":"published"}"#
    );
    assert_eq!(
        serde_json::to_string(&HolidaySource::Projected).unwrap(),
        r#""projected""#
    );
    let c: ClosureDay =
        serde_json::from_str(r#"{"date": "2026-12-29", "title": "Council closed"}"#).unwrap();
    assert_eq!(c.date, d("2026-12-29"));
    let div: Division = serde_json::from_str(r#""northern-ireland""#).unwrap();
    assert_eq!(div, Division::NorthernIreland);
    assert_eq!("scotland".parse::<Division>().unwrap(), Division::Scotland);
    assert_eq!(Division::EnglandAndWales.to_string(), "england-and-wales");
    assert!("Scotland".parse::<Division>().is_err());
}

// ---------------------------------------------------------------------------------------------
// Offsets

fn offset(s: &str) -> Offset {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn offsets_parse_and_print_canonically() {
    use OffsetUnit::*;
    for (text, amount, unit, canonical) in [
        ("-10 working days", -10, WorkingDays, "-10 working days"),
        ("10 working days", 10, WorkingDays, "10 working days"),
        ("1 working day", 1, WorkingDays, "1 working day"),
        ("-1 working day", -1, WorkingDays, "-1 working day"),
        ("0 working days", 0, WorkingDays, "0 working days"),
        ("15 days", 15, Days, "15 days"),
        ("-15 days", -15, Days, "-15 days"),
        ("1 day", 1, Days, "1 day"),
        ("2 weeks", 2, Weeks, "2 weeks"),
        ("1 week", 1, Weeks, "1 week"),
        ("3 months", 3, Months, "3 months"),
        ("1 month", 1, Months, "1 month"),
        ("-6 months", -6, Months, "-6 months"),
        ("24 hours", 24, Hours, "24 hours"),
        ("1 hour", 1, Hours, "1 hour"),
        ("0 hours", 0, Hours, "0 hours"),
        ("  +5 working days \n", 5, WorkingDays, "5 working days"),
        ("+1 day", 1, Days, "1 day"),
        ("2 working  days", 2, WorkingDays, "2 working days"),
        ("1 working days", 1, WorkingDays, "1 working day"),
        ("3 month", 3, Months, "3 months"),
        (
            "-3 council working days",
            -3,
            CouncilWorkingDays,
            "-3 council working days",
        ),
        (
            "1 council  working day",
            1,
            CouncilWorkingDays,
            "1 council working day",
        ),
    ] {
        let o = offset(text);
        assert_eq!(o, Offset { amount, unit }, "{text}");
        assert_eq!(o.to_string(), canonical, "{text}");
        assert_eq!(offset(canonical), o);
        assert_eq!(o.is_day_based(), unit != Hours);
    }
}

#[test]
fn offset_errors_say_what_is_wrong_and_list_the_units() {
    let units = "write a whole number and one of working days, council working days, days, weeks, months or hours";
    for (text, problem) in [
        (
            "3 fortnights",
            "`3 fortnights` is not an offset: `fortnights` is not a unit",
        ),
        ("", "`` is not an offset: it is empty"),
        ("   ", "`` is not an offset: it is empty"),
        ("10", "`10` is not an offset: it has no unit"),
        (
            "working days",
            "`working days` is not an offset: it does not start with a whole number (`working`)",
        ),
        (
            "ten days",
            "`ten days` is not an offset: it does not start with a whole number (`ten`)",
        ),
        (
            "1.5 days",
            "`1.5 days` is not an offset: it does not start with a whole number (`1.5`)",
        ),
        (
            "+-5 days",
            "`+-5 days` is not an offset: it does not start with a whole number (`+-5`)",
        ),
        (
            "- 5 days",
            "`- 5 days` is not an offset: it does not start with a whole number (`-`)",
        ),
        (
            "10working days",
            "`10working days` is not an offset: it does not start with a whole number (`10working`)",
        ),
        (
            "10 Working Days",
            "`10 Working Days` is not an offset: `Working Days` is not a unit",
        ),
        (
            "10 working",
            "`10 working` is not an offset: `working` is not a unit",
        ),
        (
            "10 days ago",
            "`10 days ago` is not an offset: `days ago` is not a unit",
        ),
        (
            "3000000000 days",
            "`3000000000 days` is not an offset: 3000000000 is too large",
        ),
    ] {
        let e = text.parse::<Offset>().unwrap_err();
        assert!(matches!(e, CalendarError::Offset { .. }));
        let message = e.to_string();
        assert!(message.starts_with(problem), "{message}");
        assert!(message.contains(units), "{message}");
    }
}

#[test]
fn offsets_serialise_as_their_text() {
    let o: Offset = serde_json::from_str(r#""-10 working days""#).unwrap();
    assert_eq!(o, offset("-10 working days"));
    assert_eq!(serde_json::to_string(&o).unwrap(), r#""-10 working days""#);
    assert_eq!(
        serde_json::to_string(&offset("+1 months")).unwrap(),
        r#""1 month""#
    );
    let e = serde_json::from_str::<Offset>(r#""3 fortnights""#).unwrap_err();
    assert!(e.to_string().contains("`fortnights` is not a unit"), "{e}");
    assert!(serde_json::from_str::<Offset>("10").is_err());
}

#[test]
fn offsets_apply_to_dates() {
    let cal = &*EW;
    let apply = |o: &str, from: &str| offset(o).apply_to_date(cal, d(from));
    // Working days, through the calendar.
    assert_eq!(
        apply("-10 working days", "2027-01-21"),
        Some(d("2027-01-07"))
    );
    assert_eq!(apply("1 working day", "2026-12-24"), Some(d("2026-12-29")));
    assert_eq!(apply("0 working days", "2026-12-26"), Some(d("2026-12-29")));
    assert_eq!(
        apply("20 working days", "2027-01-07"),
        Some(d("2027-02-04"))
    );
    // Days and weeks are plain calendar arithmetic: weekends and holidays are not skipped.
    assert_eq!(apply("15 days", "2026-12-24"), Some(d("2027-01-08")));
    assert_eq!(apply("-15 days", "2027-01-08"), Some(d("2026-12-24")));
    assert_eq!(apply("1 day", "2027-01-01"), Some(d("2027-01-02")));
    assert_eq!(apply("1 day", "2026-12-24"), Some(d("2026-12-25")));
    assert_eq!(apply("2 weeks", "2026-12-21"), Some(d("2027-01-04")));
    assert_eq!(apply("-1 week", "2027-01-04"), Some(d("2026-12-28")));
    // Hours need a time of day.
    assert_eq!(apply("24 hours", "2027-01-04"), None);
    assert_eq!(apply("0 hours", "2027-01-04"), None);
    // Past the end of chrono's range every unit gives None.
    assert_eq!(offset("1 day").apply_to_date(cal, NaiveDate::MAX), None);
    assert_eq!(offset("1 week").apply_to_date(cal, NaiveDate::MAX), None);
    assert_eq!(offset("1 month").apply_to_date(cal, NaiveDate::MAX), None);
    assert_eq!(offset("-1 month").apply_to_date(cal, NaiveDate::MIN), None);
    assert_eq!(
        offset("1 working day").apply_to_date(cal, NaiveDate::MAX),
        None
    );
    assert_eq!(
        offset("-1 working day").apply_to_date(cal, NaiveDate::MIN),
        None
    );
}

#[test]
fn months_clamp_to_the_end_of_a_shorter_month() {
    let cal = &*EW;
    let apply = |o: &str, from: &str| offset(o).apply_to_date(cal, d(from)).unwrap();
    assert_eq!(apply("6 months", "2026-08-31"), d("2027-02-28"));
    assert_eq!(apply("6 months", "2027-08-31"), d("2028-02-29")); // leap year
    assert_eq!(apply("1 month", "2027-01-31"), d("2027-02-28"));
    assert_eq!(apply("1 month", "2028-01-31"), d("2028-02-29"));
    assert_eq!(apply("1 month", "2027-03-31"), d("2027-04-30"));
    assert_eq!(apply("2 months", "2026-12-31"), d("2027-02-28"));
    assert_eq!(apply("12 months", "2028-02-29"), d("2029-02-28"));
    assert_eq!(apply("48 months", "2028-02-29"), d("2032-02-29"));
    assert_eq!(apply("1 month", "2027-01-15"), d("2027-02-15"));
    assert_eq!(apply("1 month", "2027-12-31"), d("2028-01-31"));
    // Backwards the same way.
    assert_eq!(apply("-1 month", "2027-03-31"), d("2027-02-28"));
    assert_eq!(apply("-1 month", "2028-03-31"), d("2028-02-29"));
    assert_eq!(apply("-3 months", "2027-05-31"), d("2027-02-28"));
    assert_eq!(apply("-6 months", "2028-08-31"), d("2028-02-29"));
    assert_eq!(apply("-6 months", "2027-02-28"), d("2026-08-28"));
    assert_eq!(apply("-1 month", "2027-01-31"), d("2026-12-31"));
    // Clamping loses the day: six months on and back again is not the start.
    assert_eq!(
        apply("-6 months", &apply("6 months", "2026-08-31").to_string()),
        d("2026-08-28")
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn date_between(from: &'static str, to: &'static str) -> impl Strategy<Value = NaiveDate> {
    let start = d(from);
    let days = (d(to) - start).num_days() as u64;
    (0..=days).prop_map(move |i| start + Days::new(i))
}

/// Dates in 1990–2099: before, across and well after the published data.
fn any_date() -> impl Strategy<Value = NaiveDate> {
    date_between("1990-01-01", "2099-12-31")
}

fn division() -> impl Strategy<Value = Division> {
    proptest::sample::select(Division::ALL.to_vec())
}

/// A statutory working day by the definition, from the bank holidays of `holidays(year)` and
/// the weekday alone.
fn naive_is_working_day(cal: &Calendar, d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
        && !cal
            .holidays(d.year())
            .iter()
            .any(|h| h.date == d && h.source != HolidaySource::Closure)
}

/// A council working day by the definition: a statutory one that is not a closure day.
fn naive_is_open_day(cal: &Calendar, d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
        && !cal.holidays(d.year()).iter().any(|h| h.date == d)
}

/// Working days in (a, b] by walking every day.
fn naive_between(cal: &Calendar, a: NaiveDate, b: NaiveDate) -> i32 {
    let count = |lo: NaiveDate, hi: NaiveDate| {
        lo.iter_days()
            .skip(1)
            .take_while(|x| *x <= hi)
            .filter(|x| cal.is_working_day(*x))
            .count() as i32
    };
    if a <= b { count(a, b) } else { -count(b, a) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn is_working_day_agrees_with_the_definition(div in division(), d in any_date()) {
        let cal = cal_for(div);
        prop_assert_eq!(cal.is_working_day(d), naive_is_working_day(cal, d));
    }

    #[test]
    fn add_lands_on_a_working_day_on_the_right_side(
        div in division(), d in any_date(), n in -400i32..400
    ) {
        let cal = cal_for(div);
        let w = cal.add(d, n);
        prop_assert!(cal.is_working_day(w));
        match n {
            0 => prop_assert!(w >= d),
            n if n > 0 => prop_assert!(w > d),
            _ => prop_assert!(w < d),
        }
    }

    #[test]
    fn between_undoes_add_from_a_working_day(
        div in division(), d in any_date(), n in -400i32..400
    ) {
        let cal = cal_for(div);
        let d = cal.add(d, 0);
        prop_assert_eq!(cal.between(d, cal.add(d, n)), n);
        prop_assert_eq!(cal.add(cal.add(d, n), -n), d);
    }

    #[test]
    fn between_and_add_from_a_non_working_day(
        div in division(), d in any_date(), n in -400i32..400
    ) {
        let cal = cal_for(div);
        // Move to a non-working day: the next Saturday.
        let d = d + Days::new(u64::from((12 - d.weekday().num_days_from_monday()) % 7));
        prop_assert_eq!(d.weekday(), Weekday::Sat);
        prop_assert!(!cal.is_working_day(d));
        // Forward, d itself is never counted, so nothing changes; backward, the result is
        // counted in [w, d) but between counts (w, d], so one fewer; add(d, 0) is one ahead.
        let expected = match n {
            0 => 1,
            n if n > 0 => n,
            n => n + 1,
        };
        prop_assert_eq!(cal.between(d, cal.add(d, n)), expected);
        prop_assert_eq!(cal.add(d, 0), cal.add(d, 1));
        prop_assert_eq!(cal.add(d, 0), cal.next_working_day_on_or_after(d));
    }

    #[test]
    fn add_is_monotonic_in_n(div in division(), d in any_date(), n in -400i32..400) {
        let cal = cal_for(div);
        let (here, next) = (cal.add(d, n), cal.add(d, n + 1));
        if n == 0 && !cal.is_working_day(d) {
            prop_assert_eq!(here, next);
        } else {
            prop_assert!(here < next);
            // Strictly next: no working day in between.
            prop_assert_eq!(cal.between(here, next), 1);
        }
    }

    #[test]
    fn add_composes(
        div in division(), d in any_date(), a in 1i32..300, b in 1i32..300
    ) {
        let cal = cal_for(div);
        prop_assert_eq!(cal.add(cal.add(d, a), b), cal.add(d, a + b));
        prop_assert_eq!(cal.add(cal.add(d, -a), -b), cal.add(d, -a - b));
        let w = cal.add(d, 0);
        prop_assert_eq!(cal.add(cal.add(w, a), b), cal.add(w, a + b));
        prop_assert_eq!(cal.add(cal.add(w, a), -b), cal.add(w, a - b));
    }

    #[test]
    fn next_working_day_is_the_first_on_or_after(div in division(), d in any_date()) {
        let cal = cal_for(div);
        let w = cal.next_working_day_on_or_after(d);
        prop_assert!(w >= d && cal.is_working_day(w));
        prop_assert!(d.iter_days().take_while(|x| *x < w).all(|x| !cal.is_working_day(x)));
    }

    #[test]
    fn between_is_antisymmetric_and_additive(
        div in division(), a in any_date(), b in any_date(), c in any_date()
    ) {
        let cal = cal_for(div);
        prop_assert_eq!(cal.between(a, b), -cal.between(b, a));
        prop_assert_eq!(cal.between(a, c), cal.between(a, b) + cal.between(b, c));
        prop_assert_eq!(cal.between(a, a), 0);
    }

    #[test]
    fn between_counts_working_days_in_the_half_open_interval(
        div in division(), a in any_date(), len in -800i64..800
    ) {
        let cal = cal_for(div);
        let b = a + chrono::Duration::days(len);
        prop_assert_eq!(cal.between(a, b), naive_between(cal, a, b));
    }

    #[test]
    fn holidays_are_sorted_and_in_their_year(div in division(), year in 1990i32..2100) {
        let cal = cal_for(div);
        let hs = cal.holidays(year);
        prop_assert!(hs.len() >= 8);
        prop_assert!(hs.windows(2).all(|w| w[0].date <= w[1].date));
        prop_assert!(hs.iter().all(|h| h.date.year() == year));
        let source = if cal.published_years().contains(&year) {
            HolidaySource::Published
        } else {
            HolidaySource::Projected
        };
        prop_assert!(hs.iter().all(|h| h.source == source));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn closure_days_are_never_working_days(
        closures in proptest::collection::vec(any_date(), 0..20),
        probe in any_date(),
    ) {
        let cal = Calendar::from_json(
            "bh.json",
            &DATA,
            Division::EnglandAndWales,
            closures.iter().map(|&date| ClosureDay { date, title: "Closed".into() }).collect(),
        ).unwrap();
        for &c in &closures {
            prop_assert!(!cal.is_open_day(c));
        }
        for &x in closures.iter().chain([&probe]) {
            prop_assert_eq!(cal.is_working_day(x), naive_is_working_day(&cal, x));
            prop_assert_eq!(cal.is_open_day(x), naive_is_open_day(&cal, x));
            // Closures never change the statutory answer.
            prop_assert_eq!(cal.is_working_day(x), EW.is_working_day(x));
            prop_assert_eq!(
                cal.is_open_day(x),
                EW.is_working_day(x) && !closures.contains(&x)
            );
        }
        // A deadline counted forward never moves for a closure; the council's count never
        // ends earlier than the statutory one, and counted back never later.
        let start = cal.add(probe, 0);
        for n in [1, 5, 20] {
            prop_assert_eq!(cal.add(start, n), EW.add(start, n));
            prop_assert!(cal.add_in(Reckoning::Council, start, n) >= cal.add(start, n));
            prop_assert!(cal.add_in(Reckoning::Council, start, -n) <= cal.add(start, -n));
        }
    }

    /// Nothing panics anywhere in 1900–2200, including long walks.
    #[test]
    fn no_panics_over_two_centuries(
        div in division(),
        a in date_between("1900-01-01", "2200-12-31"),
        b in date_between("1900-01-01", "2200-12-31"),
        n in -20_000i32..20_000,
    ) {
        let cal = cal_for(div);
        let start = cal.add(a, 0);
        let w = cal.add(start, n);
        prop_assert!(cal.is_working_day(w));
        prop_assert_eq!(cal.between(start, w), n);
        let _ = cal.between(a, b);
        let _ = cal.holidays(a.year());
        for unit in ["working days", "council working days", "days", "weeks", "months", "hours"] {
            let o: Offset = format!("{n} {unit}").parse().unwrap();
            prop_assert_eq!(o.apply_to_date(cal, a).is_some(), o.is_day_based());
        }
    }
}
