//! The regulations' calendar written out, for whole case timelines (tests/it/lawful.rs,
//! tests/it/probe14.rs): expected dates are worked out here from the regulations' definition of a
//! working day and a bank-holiday list typed in from gov.uk, never from driftwatch's own
//! calendar. The shipped config's council closure days are listed too: they may make things
//! earlier or quieter, never later.

use super::ev;
use chrono::{Datelike, NaiveDate, Weekday};
use driftwatch::config::Config;
use driftwatch::event::Event;
use driftwatch::planner::{CasePlan, Notification, NotificationStatus};
use serde_json::json;

/// Bank holidays in England and Wales, 2025 to 2028 (gov.uk/bank-holidays).
pub const BANK_HOLIDAYS: &[&str] = &[
    "2025-01-01",
    "2025-04-18",
    "2025-04-21",
    "2025-05-05",
    "2025-05-26",
    "2025-08-25",
    "2025-12-25",
    "2025-12-26",
    "2026-01-01",
    "2026-04-03",
    "2026-04-06",
    "2026-05-04",
    "2026-05-25",
    "2026-08-31",
    "2026-12-25",
    "2026-12-28",
    "2027-01-01",
    "2027-03-26",
    "2027-03-29",
    "2027-05-03",
    "2027-05-31",
    "2027-08-30",
    "2027-12-27",
    "2027-12-28",
    "2028-01-03",
    "2028-04-14",
    "2028-04-17",
    "2028-05-01",
    "2028-05-29",
    "2028-08-28",
    "2028-12-25",
    "2028-12-26",
];

/// The council's own closure days in the shipped config.
pub const CLOSURES: &[&str] = &[
    "2026-12-29",
    "2026-12-30",
    "2026-12-31",
    "2027-12-29",
    "2027-12-30",
    "2027-12-31",
];

pub fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// "A working day is any day other than a Saturday, a Sunday, Christmas Day, Good Friday or a
/// bank holiday."
pub fn working_day(x: NaiveDate) -> bool {
    !matches!(x.weekday(), Weekday::Sat | Weekday::Sun) && !BANK_HOLIDAYS.contains(&&*x.to_string())
}

/// A day the council is open: a working day that is not one of its closure days.
pub fn open_day(x: NaiveDate) -> bool {
    working_day(x) && !CLOSURES.contains(&&*x.to_string())
}

/// "Within n working days of x": the n-th working day after x. Negative n: "at least |n|
/// working days before x", the |n|-th working day before it. `day` says which days count.
pub fn count(x: NaiveDate, n: i32, day: fn(NaiveDate) -> bool) -> NaiveDate {
    let mut w = x;
    let mut left = n.abs();
    while left > 0 {
        w = if n > 0 { w.succ_opt() } else { w.pred_opt() }.unwrap();
        if day(w) {
            left -= 1;
        }
    }
    w
}

pub fn wd(x: &str, n: i32) -> NaiveDate {
    count(d(x), n, working_day)
}

/// Working days after a deadline `due` up to and including `on`: how late something is.
pub fn late(due: NaiveDate, on: NaiveDate) -> i32 {
    let mut n = 0;
    let mut x = due;
    while x < on {
        x = x.succ_opt().unwrap();
        if working_day(x) {
            n += 1;
        }
    }
    n.max(1)
}

/// The last day the council is open on or before `x`.
pub fn last_open(x: NaiveDate) -> NaiveDate {
    let mut w = x;
    while !open_day(w) {
        w = w.pred_opt().unwrap();
    }
    w
}

/// The first day the council is open on or after `x`.
pub fn next_open(x: NaiveDate) -> NaiveDate {
    let mut w = x;
    while !open_day(w) {
        w = w.succ_opt().unwrap();
    }
    w
}

/// `2027-01-04 09:00`: a local send time at the start of working hours.
pub fn nine(x: NaiveDate) -> String {
    format!("{x} 09:00")
}

pub fn local(n: &Notification) -> String {
    driftwatch::localtime::display(n.send_at)
}

/// `(local send time, role)` of a rule's step that goes (not passed over), sorted.
pub fn sent_to(p: &CasePlan, rule: &str, step: &str) -> Vec<(String, String)> {
    let mut v: Vec<_> = p
        .notifications
        .iter()
        .filter(|n| n.rule == rule && n.step == step)
        .filter(|n| n.status != NotificationStatus::Superseded)
        .map(|n| (local(n), n.recipient.label()))
        .collect();
    v.sort();
    v
}

/// Participants as the case system sends them: name, address and role.
pub fn people(list: &[(&str, &str)]) -> serde_json::Value {
    json!(
        list.iter()
            .map(|(name, role)| json!({"name": name, "email": format!("{}@example.org", name.to_lowercase().replace(' ', ".")), "role": role}))
            .collect::<Vec<_>>()
    )
}

/// A review booked at `at` for `meeting`, with a parent and a foster carer invited.
pub fn review(c: &Config, id: &str, at: &str, review: &str, meeting: &str) -> Event {
    ev(
        c,
        id,
        "review_scheduled",
        at,
        json!({"review_id": review, "meeting_at": meeting, "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer")])}),
    )
}
