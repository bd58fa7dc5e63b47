//! The timeliness report against a hand-computed scenario: the example case as it stood on
//! 15 February 2027 (see the README's plan of it).

use crate::common::*;
use chrono::NaiveDate;
use driftwatch::report::{self, RuleFigures};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn figures_for_the_example_case_match_its_plan() {
    let c = config();
    let events = example_events();
    let plan = c
        .planner()
        .plan_case("C-1001", &events, t("2027-02-15T12:00:00Z"));
    let r = report::compute(&[plan], &events, d("2026-12-01"), d("2027-02-15"));
    let row = |rule: &str| -> RuleFigures {
        r.rules
            .iter()
            .find(|f| f.rule == rule)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {rule}: {r:?}"))
    };
    // Told to the IRO service on 3 December, due the 4th: on time.
    let told = row("iro_service_told");
    assert_eq!(
        (told.due, told.met_on_time, told.on_time_percent),
        (1, 1, Some(100))
    );
    // The first review, held 6 January, was due on the 4th: 20 statutory working days from
    // 2 December, the council's closure days (29 to 31 December) counting. Late.
    let first = row("first_review");
    assert_eq!((first.due, first.met_on_time, first.met_late), (1, 0, 1));
    // The invitations went on 15 December, ten working days before the meeting.
    assert_eq!(row("review_invitations").met_on_time, 1);
    // The decision due 29 January is still not carried out: overdue, 0% on time.
    let decision = row("decision_carried_out");
    assert_eq!(
        (decision.due, decision.overdue, decision.on_time_percent),
        (1, 1, Some(0))
    );
    // The second review is due in April: outside the period.
    assert!(r.rules.iter().all(|f| f.rule != "second_review"));

    assert_eq!(r.caseloads.len(), 1);
    assert_eq!(r.caseloads[0].iro, "ira.reviewer@council.example");
    assert_eq!(
        (r.caseloads[0].children, r.caseloads[0].guidance),
        (1, "under")
    );
    assert_eq!(
        r.events.get("significant_event/placement_disruption"),
        Some(&1)
    );
    assert_eq!(r.events.get("review_held"), Some(&1));

    let csv = report::csv(&r);
    assert!(csv.starts_with(
        "rule,title,due,met_on_time,met_late,overdue,cancelled,on_time_percent,not_done\n"
    ));
    assert!(
        csv.contains("\ndecision_carried_out,\"Review decision carried out\",1,0,0,1,0,0,0\n"),
        "{csv}"
    );
    let table = report::table(&r);
    assert!(table.contains("Timeliness, obligations due 2026-12-01 to 2027-02-15"));
}
