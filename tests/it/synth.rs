//! The benchmarks' synthetic caseload generator (`benches/scale/synth.rs`): reproducible from its
//! seed, valid against the shipped vocabulary, and as varied as a council's caseload (reviews on
//! time and late, decisions met and drifting, children leaving care), so benchmark figures
//! measure realistic work.

use crate::caseload as synth;

use chrono::{DateTime, Duration, TimeZone, Utc};
use driftwatch::event::Event;
use driftwatch::planner::ObligationState;
use serde_json::Value;
use std::collections::BTreeMap;

fn events(values: &[Value]) -> Vec<Event> {
    values
        .iter()
        .map(|v| Event::from_value(v, "synthetic").expect("a valid envelope"))
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_caseload_and_a_larger_one_begins_with_it() {
    let small = synth::caseload(&synth::Shape::new(200, 7));
    assert_eq!(small, synth::caseload(&synth::Shape::new(200, 7)));
    let large = synth::caseload(&synth::Shape::new(400, 7));
    assert_eq!(small[..], large[..200]);
    assert_ne!(small, synth::caseload(&synth::Shape::new(200, 8)));
}

#[test]
fn every_event_is_valid_in_time_order_and_never_after_the_moment_it_is_seen_at() {
    let config = crate::common::config();
    let shape = synth::Shape::new(300, 1);
    let mut ids = std::collections::HashSet::new();
    for case in synth::caseload(&shape) {
        let case = events(&case);
        assert_eq!(case[0].kind, "child_looked_after", "{}", case[0].case);
        for pair in case.windows(2) {
            assert!(pair[0].at <= pair[1].at, "{} out of order", pair[1].id);
        }
        for e in &case {
            assert!(
                e.at <= shape.as_of,
                "{} is after the caseload's moment",
                e.id
            );
            assert!(ids.insert(e.id.clone()), "{} twice", e.id);
            if let Err(err) = config.rules.vocabulary.validate(e) {
                panic!("{} is invalid: {err}", e.id);
            }
        }
    }
}

#[test]
fn the_caseload_is_as_varied_as_a_councils() {
    let config = crate::common::config();
    let planner = config.planner();
    let shape = synth::Shape::new(500, 3);
    let (mut kinds, mut states) = (BTreeMap::new(), BTreeMap::new());
    let mut total = 0;
    for case in synth::caseload(&shape) {
        let case = events(&case);
        total += case.len();
        for e in &case {
            *kinds.entry(e.kind.clone()).or_insert(0) += 1;
        }
        let plan = planner.plan_case(&case[0].case, &case, shape.as_of);
        for o in &plan.obligations {
            *states
                .entry((o.rule.clone(), format!("{:?}", o.state)))
                .or_insert(0) += 1;
        }
    }
    let per_case = total as f64 / 500.0;
    assert!((12.0..35.0).contains(&per_case), "{per_case} events a case");
    for kind in [
        "review_held",
        "review_rescheduled",
        "recommendations_issued",
        "recommendation_queried",
        "decision_completed",
        "drift_resolved",
        "significant_event",
        "ceased_looked_after",
        "proceedings_started",
    ] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind}");
    }
    // Reviews are mostly on time but not all, and some decisions drift.
    let count = |rule: &str, state: ObligationState| {
        states
            .get(&(rule.to_string(), format!("{state:?}")))
            .copied()
            .unwrap_or(0)
    };
    let on_time = count("later_review", ObligationState::Met);
    let late = count("later_review", ObligationState::MetLate);
    assert!(
        on_time > late && late > 0,
        "later reviews: {on_time} on time, {late} late"
    );
    assert!(count("decision_carried_out", ObligationState::Overdue) > 0);
    assert!(count("decision_carried_out", ObligationState::Met) > 0);
}

#[test]
fn the_wave_puts_one_invitation_per_case_at_one_moment() {
    let config = crate::common::config();
    let planner = config.planner();
    let wave: DateTime<Utc> = Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap();
    let meeting = Utc.with_ymd_and_hms(2027, 3, 15, 9, 0, 0).unwrap();
    for case in synth::wave(20, meeting, true) {
        let case = events(&case);
        let plan = planner.plan_case(&case[0].case, &case, wave - Duration::hours(1));
        let at_wave: Vec<_> = plan
            .notifications
            .iter()
            .filter(|n| n.send_at == wave)
            .map(|n| n.rule.as_str())
            .collect();
        assert_eq!(at_wave, ["review_invitations"], "{}", case[0].case);
    }
}
