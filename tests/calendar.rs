//! The working-day calendar against the shipped bank-holiday data: pinned dates around Christmas,
//! Easter and substitute days, the projection agreeing with the data, and property tests.

mod common;
use chrono::{Datelike, NaiveDate, Weekday};
use driftwatch::calendar::{
    Calendar, ClosureDay, Division, HolidaySource, Offset, OffsetUnit, easter_sunday,
    projected_bank_holidays,
};
use proptest::prelude::*;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn data() -> String {
    std::fs::read_to_string(common::root().join("config/bank-holidays.json")).unwrap()
}

fn calendar(division: Division, closures: &[&str]) -> Calendar {
    let closures = closures
        .iter()
        .map(|c| ClosureDay {
            date: d(c),
            title: "Council closed".into(),
        })
        .collect();
    Calendar::from_json("bank-holidays.json", &data(), division, closures).unwrap()
}

fn ew() -> Calendar {
    calendar(Division::EnglandAndWales, &[])
}

#[test]
fn christmas_2026_to_new_year_2027() {
    let cal = ew();
    let working: Vec<_> = (0..12)
        .map(|i| d("2026-12-24") + chrono::Days::new(i))
        .filter(|x| cal.is_working_day(*x))
        .collect();
    // 25 Dec (Fri) Christmas, 26–27 weekend, 28 Dec Boxing Day substitute, 1 Jan, 2–3 weekend.
    assert_eq!(
        working,
        vec![
            d("2026-12-24"),
            d("2026-12-29"),
            d("2026-12-30"),
            d("2026-12-31"),
            d("2027-01-04")
        ]
    );
    assert_eq!(cal.add(d("2026-12-24"), 1), d("2026-12-29"));
    assert_eq!(cal.add(d("2026-12-31"), 1), d("2027-01-04"));
    assert_eq!(cal.between(d("2026-12-24"), d("2027-01-04")), 4);
    assert_eq!(cal.between(d("2027-01-04"), d("2026-12-24")), -4);
    // With the council closed 29–31 December, Christmas Eve is followed by 4 January.
    let closed = calendar(
        Division::EnglandAndWales,
        &["2026-12-29", "2026-12-30", "2026-12-31"],
    );
    assert_eq!(closed.add(d("2026-12-24"), 1), d("2027-01-04"));
    assert_eq!(closed.between(d("2026-12-24"), d("2027-01-04")), 1);
    assert_eq!(closed.add(d("2027-01-04"), -1), d("2026-12-24"));
    let holidays = closed.holidays(2026);
    assert_eq!(
        holidays
            .iter()
            .filter(|h| h.source == HolidaySource::Closure)
            .count(),
        3
    );
    assert!(
        holidays
            .iter()
            .any(|h| h.date == d("2026-12-28") && h.title == "Boxing Day (substitute day)")
    );
}

#[test]
fn easter_2027() {
    let cal = ew();
    assert!(!cal.is_working_day(d("2027-03-26")), "Good Friday");
    assert!(!cal.is_working_day(d("2027-03-29")), "Easter Monday");
    assert_eq!(cal.add(d("2027-03-25"), 1), d("2027-03-30"));
    assert_eq!(cal.add(d("2027-03-30"), -1), d("2027-03-25"));
    assert_eq!(cal.between(d("2027-03-25"), d("2027-03-30")), 1);
}

#[test]
fn christmas_2027_falls_on_a_saturday_with_substitute_days() {
    let cal = ew();
    assert_eq!(d("2027-12-25").weekday(), Weekday::Sat);
    assert!(!cal.is_working_day(d("2027-12-27")));
    assert!(!cal.is_working_day(d("2027-12-28")));
    assert_eq!(cal.add(d("2027-12-24"), 1), d("2027-12-29"));
}

#[test]
fn one_off_holidays_come_from_the_data() {
    let cal = ew();
    for day in [
        "2020-05-08",
        "2022-06-02",
        "2022-06-03",
        "2022-09-19",
        "2023-05-08",
    ] {
        assert!(!cal.is_working_day(d(day)), "{day}");
    }
    assert!(
        cal.is_working_day(d("2020-05-04")),
        "early May 2020 moved to VE day"
    );
    assert!(
        cal.is_working_day(d("2022-05-30")),
        "spring 2022 moved to 2 June"
    );
}

#[test]
fn add_zero_and_negative_counts() {
    let cal = ew();
    assert_eq!(
        cal.add(d("2027-01-09"), 0),
        d("2027-01-11"),
        "Saturday moves to Monday"
    );
    assert_eq!(
        cal.add(d("2026-12-25"), 0),
        d("2026-12-29"),
        "Christmas moves past Boxing Day"
    );
    assert_eq!(cal.add(d("2027-01-11"), 0), d("2027-01-11"));
    // Ten working days before a meeting on Thursday 21 January 2027.
    assert_eq!(cal.add(d("2027-01-21"), -10), d("2027-01-07"));
    assert_eq!(
        cal.add(d("2027-01-09"), -1),
        d("2027-01-08"),
        "from a Saturday"
    );
    assert_eq!(cal.add(d("2027-01-09"), 1), d("2027-01-11"));
}

#[test]
fn scotland_and_northern_ireland() {
    let sc = calendar(Division::Scotland, &[]);
    assert!(
        !sc.is_working_day(d("2027-01-04")),
        "2 January 2027 is a Saturday: substitute Monday 4th"
    );
    assert!(!sc.is_working_day(d("2026-11-30")), "St Andrew's Day");
    assert!(
        !sc.is_working_day(d("2027-08-02")),
        "first Monday of August"
    );
    assert!(
        sc.is_working_day(d("2027-08-30")),
        "no late-August holiday in Scotland"
    );
    assert!(
        sc.is_working_day(d("2027-03-29")),
        "no Easter Monday in Scotland"
    );
    let ni = calendar(Division::NorthernIreland, &[]);
    assert!(!ni.is_working_day(d("2027-03-17")), "St Patrick's Day");
    assert!(
        !ni.is_working_day(d("2026-07-13")),
        "the Boyne, 12 July 2026 a Sunday: substitute Monday"
    );
}

#[test]
fn month_offsets_clamp_to_the_end_of_the_month() {
    let cal = ew();
    let months = |n| Offset {
        amount: n,
        unit: OffsetUnit::Months,
    };
    assert_eq!(
        months(6).apply_to_date(&cal, d("2027-08-31")),
        Some(d("2028-02-29"))
    );
    assert_eq!(
        months(6).apply_to_date(&cal, d("2026-08-31")),
        Some(d("2027-02-28"))
    );
    assert_eq!(
        months(1).apply_to_date(&cal, d("2027-01-31")),
        Some(d("2027-02-28"))
    );
    assert_eq!(
        months(-1).apply_to_date(&cal, d("2027-03-31")),
        Some(d("2027-02-28"))
    );
    let weeks = Offset {
        amount: 12,
        unit: OffsetUnit::Weeks,
    };
    assert_eq!(
        weeks.apply_to_date(&cal, d("2027-01-06")),
        Some(d("2027-03-31"))
    );
    let hours = Offset {
        amount: 24,
        unit: OffsetUnit::Hours,
    };
    assert_eq!(hours.apply_to_date(&cal, d("2027-01-06")), None);
}

#[test]
fn offsets_parse_and_print() {
    for (text, amount, unit, canonical) in [
        (
            "-10 working days",
            -10,
            OffsetUnit::WorkingDays,
            "-10 working days",
        ),
        ("1 working day", 1, OffsetUnit::WorkingDays, "1 working day"),
        (" +15 days ", 15, OffsetUnit::Days, "15 days"),
        ("2 weeks", 2, OffsetUnit::Weeks, "2 weeks"),
        ("3 months", 3, OffsetUnit::Months, "3 months"),
        ("24 hours", 24, OffsetUnit::Hours, "24 hours"),
        ("-1 day", -1, OffsetUnit::Days, "-1 day"),
    ] {
        let o: Offset = text.parse().unwrap();
        assert_eq!((o.amount, o.unit), (amount, unit), "{text}");
        assert_eq!(o.to_string(), canonical);
        assert_eq!(o.to_string().parse::<Offset>().unwrap(), o);
    }
    for bad in ["", "ten days", "3 fortnights", "3", "days 3", "1.5 days"] {
        let err = bad.parse::<Offset>().unwrap_err().to_string();
        assert!(err.contains("is not an offset"), "{bad}: {err}");
    }
}

#[test]
fn easter_dates() {
    for (year, date) in [
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2026, "2026-04-05"),
        (2027, "2027-03-28"),
        (2038, "2038-04-25"),
    ] {
        assert_eq!(easter_sunday(year), d(date));
    }
}

/// One-off proclamations the standing rules cannot know.
fn proclaimed(date: NaiveDate) -> bool {
    [
        "2020-05-04",
        "2020-05-08",
        "2022-05-30",
        "2022-06-02",
        "2022-06-03",
        "2022-09-19",
        "2023-05-08",
    ]
    .contains(&date.to_string().as_str())
}

#[test]
fn the_projection_agrees_with_the_published_data() {
    for division in [
        Division::EnglandAndWales,
        Division::Scotland,
        Division::NorthernIreland,
    ] {
        let cal = calendar(division, &[]);
        assert_eq!(cal.published_years(), 2018..=2028);
        for year in 2018..=2028 {
            let published: Vec<_> = cal
                .holidays(year)
                .into_iter()
                .map(|h| h.date)
                .filter(|d| !proclaimed(*d))
                .collect();
            let projected: Vec<_> = projected_bank_holidays(division, year)
                .into_iter()
                .map(|h| h.date)
                .filter(|d| !proclaimed(*d))
                .collect();
            assert_eq!(published, projected, "{division} {year}");
        }
    }
}

#[test]
fn years_past_the_data_are_projected_never_empty() {
    let cal = ew();
    let h = cal.holidays(2031);
    assert!(h.iter().all(|h| h.source == HolidaySource::Projected));
    assert!(h.iter().any(|h| h.date == d("2031-12-25")));
    assert!(
        h.iter().any(|h| h.date == d("2031-04-14")),
        "Easter Monday 2031"
    );
    assert!(!cal.is_working_day(d("2031-04-14")));
    assert!(!cal.is_working_day(d("2140-12-25")), "far years too");
    assert_eq!(cal.published_until(), d("2028-12-31"));
}

#[test]
fn bad_data_is_a_clear_error() {
    let err = Calendar::from_json(
        "bh.json",
        "{\"england-and-wales\": [",
        Division::EnglandAndWales,
        vec![],
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("bh.json:1:"), "{err}");
    let err = Calendar::from_json("bh.json", "{}", Division::Scotland, vec![]).unwrap_err();
    assert_eq!(err.to_string(), "bh.json: has no `scotland` division");
}

fn naive_working(cal: &Calendar, day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
        && !cal.holidays(day.year()).iter().any(|h| h.date == day)
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (0i64..40_000).prop_map(|n| d("1990-01-01") + chrono::Duration::days(n))
}

proptest! {
    #[test]
    fn add_lands_on_a_working_day_and_between_inverts_it(day in date(), n in -400i32..400) {
        let cal = ew();
        let w = cal.add(day, n);
        prop_assert!(cal.is_working_day(w));
        let start = cal.add(day, 0);
        if cal.is_working_day(day) {
            prop_assert_eq!(cal.between(day, w), n);
        } else if n > 0 {
            // From a non-working day, counting starts after it all the same.
            prop_assert_eq!(cal.between(day, w), n);
        } else {
            prop_assert!(start > day);
        }
    }

    #[test]
    fn add_is_monotonic_and_composes(day in date(), a in 1i32..200, b in 1i32..200) {
        let cal = ew();
        let day = cal.add(day, 0);
        prop_assert!(cal.add(day, a) < cal.add(day, a + 1));
        prop_assert!(cal.add(day, -a) > cal.add(day, -a - 1));
        prop_assert_eq!(cal.add(cal.add(day, a), b), cal.add(day, a + b));
        prop_assert_eq!(cal.add(cal.add(day, -a), -b), cal.add(day, -a - b));
    }

    #[test]
    fn between_is_antisymmetric_and_additive(a in date(), b in date(), c in date()) {
        let cal = ew();
        prop_assert_eq!(cal.between(a, b), -cal.between(b, a));
        prop_assert_eq!(cal.between(a, c), cal.between(a, b) + cal.between(b, c));
    }

    #[test]
    fn working_days_agree_with_the_holiday_list(day in date()) {
        let cal = calendar(Division::EnglandAndWales, &["2026-12-29", "2030-06-03"]);
        prop_assert_eq!(cal.is_working_day(day), naive_working(&cal, day));
    }
}
