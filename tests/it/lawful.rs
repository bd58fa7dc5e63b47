//! Whole case timelines against the regulations and the council documents: every expected date
//! here is worked out in the test from the regulations' definition of a working day, with the
//! bank holidays written out in tests/it/common/timeline.rs, not from driftwatch's own calendar.
//! The shipped config's council closure days (29 to 31 December 2026 and 2027) are part of
//! every test: they may make things earlier or quieter, never later.

use crate::common::timeline::*;
use crate::common::*;
use driftwatch::planner::{
    Notification, NotificationKind as K, NotificationStatus, ObligationState as S, Planner, Target,
};
use serde_json::json;
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// 1. Statutory working days are the regulations' working days

#[test]
fn the_first_review_is_due_twenty_working_days_from_care_whatever_the_council_closes() {
    let c = config();
    // Seed 004: "The first review must be held within 20 working days of the child coming into
    // care." Care begins on Wednesday 2 December 2026; the council shuts 29 to 31 December.
    let events = in_care(&c, "2026-12-02T09:00:00Z");
    let p = plan(&c, &events, "2026-12-02T12:00:00Z");
    let due = wd("2026-12-02", 20);
    assert_eq!(due, d("2027-01-04"));
    assert_eq!(obligation(&p, "first_review").due, due);

    // The reminder five working days before goes on a day the council is open.
    let reminder = last_open(count(due, -5, working_day));
    assert_eq!(
        sent_to(&p, "first_review", "reminder -5 working days"),
        vec![(nine(reminder), "iro".to_string())]
    );

    // Held on 6 January: late, by statutory working days, and late in the report.
    let mut held = events.clone();
    held.push(ev(
        &c,
        "held",
        "review_held",
        "2027-01-06T16:00:00Z",
        json!({"review_id": "R1", "held_at": "2027-01-06T14:00:00Z"}),
    ));
    let p = plan(&c, &held, "2027-01-08T12:00:00Z");
    let first = obligation(&p, "first_review");
    assert_eq!(first.state, S::MetLate);
    assert_eq!(first.working_days_late, Some(late(due, d("2027-01-06"))));
    let report = driftwatch::report::compute(
        &c.rules,
        &c.calendar,
        [(&p, &held[..])],
        d("2026-12-01"),
        d("2027-01-31"),
        p.now,
    );
    let row = report
        .rules
        .iter()
        .find(|r| r.rule == "first_review")
        .unwrap();
    assert_eq!((row.met_on_time, row.met_late), (0, 1));
}

#[test]
fn papers_and_invitations_counted_back_from_a_meeting_take_the_earlier_answer() {
    let c = config();
    // Seed 000: invitations "at least ten working days before the meeting"; seed 004: papers
    // "at least three working days before". The meeting is on Wednesday 13 January 2027.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2026-12-01T10:00:00Z",
        "R1",
        "2027-01-13T14:00:00Z",
    ));
    let p = plan(&c, &events, "2026-12-01T12:00:00Z");
    let statutory = wd("2027-01-13", -10);
    let council = count(d("2027-01-13"), -10, open_day);
    assert_eq!((statutory, council), (d("2026-12-29"), d("2026-12-22")));
    assert_eq!(
        obligation(&p, "review_invitations").due,
        statutory.min(council)
    );
    let papers = wd("2027-01-13", -3).min(count(d("2027-01-13"), -3, open_day));
    assert_eq!(obligation(&p, "papers_to_iro").due, papers);
    // The invitations go at the start of that day, which the council is open.
    assert_eq!(
        sent_to(&p, "review_invitations", "at deadline"),
        vec![
            (nine(council), "carer".to_string()),
            (nine(council), "parent".to_string())
        ]
    );
}

#[test]
fn a_deadline_on_a_closure_day_stands_and_its_messages_move_off_it() {
    let c = config();
    // Seed 000: an IRO appointed "within the first five working days". Care begins on Monday 21
    // December 2026, so the five working days end on Wednesday 30 December: a closure day,
    // but a working day in law.
    let events = vec![ev(
        &c,
        "lac",
        "child_looked_after",
        "2026-12-21T09:00:00Z",
        json!({"start": "2026-12-21T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
    )];
    let due = wd("2026-12-21", 5);
    assert_eq!(due, d("2026-12-30"));
    let p = plan(&c, &events, "2027-01-02T12:00:00Z");
    let allocation = obligation(&p, "iro_allocation");
    assert_eq!(allocation.due, due);
    // On Saturday 2 January it is one working day late (Thursday 31 December counts).
    assert_eq!(allocation.state, S::Overdue);
    assert_eq!(
        allocation.working_days_late,
        Some(late(due, d("2027-01-02")))
    );
    assert_eq!(allocation.working_days_late, Some(1));
    // The reminder a working day before would fall on 29 December, a closure day: it goes on the
    // last open day before. The escalations go on the next open day after their day.
    assert_eq!(
        sent_to(&p, "iro_allocation", "reminder -1 working day"),
        vec![(
            nine(last_open(wd("2026-12-30", -1))),
            "iro_manager".to_string()
        )]
    );
    assert_eq!(
        sent_to(&p, "iro_allocation", "escalation 1 working day"),
        vec![(
            nine(next_open(wd("2026-12-30", 1))),
            "iro_manager".to_string()
        )]
    );
    assert_eq!(nine(next_open(wd("2026-12-30", 1))), "2027-01-04 09:00");
    // No non-urgent message goes on a closure day at all.
    for n in &p.notifications {
        let day = driftwatch::localtime::date_of(n.send_at);
        assert!(n.urgent || open_day(day), "{} on {day}", n.step);
    }
}

#[test]
fn a_council_can_opt_a_local_timescale_into_its_own_calendar() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["config", "rules", "templates"] {
        copy_dir(&root().join(sub), &dir.path().join(sub));
    }
    std::fs::write(
        dir.path().join("rules/local.yaml"),
        "rules:\n  - id: local_visit\n    title: Placement visit\n    source: Local practice\n    on: iro_allocated\n    due: {from: at, offset: 5 council working days}\n    met_by: [care_plan_updated]\n    reminders:\n      - {offset: -1 council working day, to: [iro], template: reminder}\n",
    )
    .unwrap();
    let c = driftwatch::config::Config::load(&dir.path().join("config/driftwatch.yaml")).unwrap();
    let mut events = in_care(&c, "2026-12-21T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    events.push(ev(
        &c,
        "iro",
        "iro_allocated",
        "2026-12-22T10:00:00Z",
        json!({"iro": contact("Ira Reviewer")}),
    ));
    let p = plan(&c, &events, "2026-12-22T12:00:00Z");
    assert_eq!(
        obligation(&p, "local_visit").due,
        count(d("2026-12-22"), 5, open_day)
    );
    let text = driftwatch::explain::explain(
        &c.rules,
        &c.calendar,
        c.working_hours,
        "local_visit",
        d("2026-12-22").and_hms_opt(10, 0, 0).unwrap(),
    )
    .unwrap();
    assert!(text.contains("council working days"), "{text}");
    let text = driftwatch::explain::explain(
        &c.rules,
        &c.calendar,
        c.working_hours,
        "first_review",
        d("2026-12-22").and_hms_opt(10, 0, 0).unwrap(),
    )
    .unwrap();
    assert!(text.contains("statutory working days"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 2. Reviews that move or are cancelled

#[test]
fn a_review_moved_after_its_invitations_went_invites_everyone_again_for_the_new_date() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    // Booked for Wednesday 10 February 2027: invitations ten working days before.
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    let first = wd("2027-02-10", -10);
    let p = plan(&c, &events, &format!("{first}T12:00:00Z"));
    assert_eq!(sent_to(&p, "review_invitations", "at deadline").len(), 2);
    // Two days later it moves to Wednesday 24 February, and a grandparent is added.
    let moved = count(first, 2, working_day);
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        &format!("{moved}T11:00:00Z"),
        json!({"review_id": "R1", "meeting_at": "2027-02-24T14:00:00Z",
               "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer"), ("Grand Parent", "grandparent")])}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    // Everyone already invited gets a new invitation at once, saying it replaces the first.
    let again: Vec<&Notification> = p
        .notifications
        .iter()
        .filter(|n| n.rule == "review_invitations" && n.step == "moved")
        .collect();
    assert_eq!(
        sent_to(&p, "review_invitations", "moved"),
        vec![
            (format!("{moved} 11:00"), "carer".to_string()),
            (format!("{moved} 11:00"), "parent".to_string())
        ]
    );
    let replaces = again[0].replaces.as_ref().unwrap();
    assert_eq!(replaces.due, first);
    assert_eq!(replaces.at, Some(t("2027-02-10T14:00:00Z")));
    let text = driftwatch::message::render(
        &c.rules,
        "C1",
        again[0],
        again[0].data.as_deref().unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert!(text.text.contains("replaces"), "{}", text.text);
    assert!(
        text.text.contains("Wednesday 24 February 2027 at 14:00"),
        "{}",
        text.text
    );
    // The invitation obligation is planned again for the new date; the grandparent, added to
    // the list, is invited then.
    let second = wd("2027-02-24", -10).min(count(d("2027-02-24"), -10, open_day));
    let inv = obligation(&p, "review_invitations");
    assert_eq!(inv.due, second);
    assert_eq!(inv.state, S::Met);
    assert_eq!(
        sent_to(&p, "review_invitations", "at deadline"),
        vec![
            (nine(first), "carer".to_string()),
            (nine(first), "parent".to_string()),
            (nine(second), "grandparent".to_string())
        ]
    );
}

#[test]
fn a_review_moved_too_close_is_invited_at_once_and_marked_late() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    let mut list = people(&[("Parent One", "parent")]);
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2027-01-11T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-03-10T14:00:00Z", "participants": list.clone()}),
    ));
    // Moved forward, with a new participant, to a date only five working days away.
    list.as_array_mut()
        .unwrap()
        .push(json!({"name": "Advocate", "email": "advocate@example.org", "role": "advocate"}));
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        "2027-02-01T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": format!("{}T14:00:00Z", wd("2027-02-01", 5)), "participants": list}),
    ));
    let p = plan(&c, &events, "2027-02-01T12:00:00Z");
    let sends: Vec<&Notification> = notes(&p, "review_invitations", K::Action);
    assert_eq!(sends.len(), 2);
    for n in sends {
        assert_eq!(local(n), "2027-02-01 10:00");
        assert!(n.late, "{n:?}");
    }
    assert_eq!(obligation(&p, "review_invitations").state, S::MetLate);
}

#[test]
fn a_review_cancelled_after_its_invitations_went_tells_everyone_invited() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "cancel",
        "review_cancelled",
        "2027-02-03T18:30:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-02-05T12:00:00Z");
    // Told on the next working morning (the cancellation came in the evening).
    assert_eq!(
        sent_to(&p, "review_invitations", "cancelled"),
        vec![
            ("2027-02-04 09:00".to_string(), "carer".to_string()),
            ("2027-02-04 09:00".to_string(), "parent".to_string())
        ]
    );
    let n = p
        .notifications
        .iter()
        .find(|n| n.step == "cancelled")
        .unwrap();
    assert_eq!(n.template, "review_cancelled");
    // Cancelled before any invitation went, nobody is told anything.
    let mut early = events.clone();
    early.retain(|e| e.id != "cancel");
    early.push(ev(
        &c,
        "cancel",
        "review_cancelled",
        "2027-01-12T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &early, "2027-02-05T12:00:00Z");
    assert!(notes(&p, "review_invitations", K::Action).is_empty());
    assert_eq!(obligation(&p, "review_invitations").state, S::Cancelled);
}

#[test]
fn preparation_for_a_meeting_ends_when_the_meeting_is_held() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "held",
        "review_held",
        "2027-02-10T17:00:00Z",
        json!({"review_id": "R1", "held_at": "2027-02-10T14:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-06-01T12:00:00Z");
    // Papers never reached the IRO and the social worker was never consulted: not done before
    // the meeting, not overdue for ever.
    let papers = obligation(&p, "papers_to_iro");
    assert_eq!(papers.state, S::NotDone);
    let papers_due = wd("2027-02-10", -3);
    assert_eq!(papers.due, papers_due);
    assert_eq!(
        papers.working_days_late,
        Some(late(papers_due, d("2027-02-10")))
    );
    assert_eq!(
        obligation(&p, "social_worker_consultation").state,
        S::NotDone
    );
    assert_eq!(obligation(&p, "iro_meets_child").state, S::NotDone);
    for rule in [
        "papers_to_iro",
        "social_worker_consultation",
        "iro_meets_child",
        "review_invitations",
    ] {
        assert_ne!(obligation(&p, rule).state, S::Overdue, "{rule}");
    }
    // Papers sent late but before the meeting are met late.
    events.push(ev(
        &c,
        "papers",
        "reports_submitted",
        "2027-02-09T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-06-01T12:00:00Z");
    assert_eq!(obligation(&p, "papers_to_iro").state, S::MetLate);
}

#[test]
fn an_invitation_list_with_nobody_on_it_is_not_met_and_the_administrators_are_told() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2027-01-11T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-10T14:00:00Z"}),
    ));
    let due = wd("2027-02-10", -10);
    let p = plan(
        &c,
        &events,
        &format!("{}T12:00:00Z", wd(&due.to_string(), 1)),
    );
    let inv = obligation(&p, "review_invitations");
    assert_eq!(inv.state, S::Overdue);
    assert_eq!(
        sent_to(&p, "review_invitations", "nobody to send to"),
        vec![(nine(due), "review_administrator".to_string())]
    );
    // Participants added by moving the booking: the invitations go, late.
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        &format!("{}T10:00:00Z", wd(&due.to_string(), 2)),
        json!({"review_id": "R1", "meeting_at": "2027-02-10T14:00:00Z", "participants": people(&[("Parent One", "parent")])}),
    ));
    let p = plan(&c, &events, "2027-02-09T12:00:00Z");
    let sends = sent_to(&p, "review_invitations", "at deadline");
    assert_eq!(
        sends,
        vec![(
            format!("{} 10:00", wd(&due.to_string(), 2)),
            "parent".to_string()
        )]
    );
    assert_eq!(obligation(&p, "review_invitations").state, S::MetLate);
}

// ---------------------------------------------------------------------------------------------
// 3. Care proceedings (seed 002, section 4)

fn proceedings(c: &driftwatch::config::Config, at: &str) -> driftwatch::event::Event {
    ev(
        c,
        "proc",
        "proceedings_started",
        at,
        json!({"guardian": contact("Gina Guardian"), "legal_adviser": contact("Lee Legal")}),
    )
}

#[test]
fn when_proceedings_start_the_guardian_and_legal_adviser_hear_of_every_review_ahead() {
    let c = config();
    // "The Children's Guardian should be advised of each review meeting": reviews booked before
    // the proceedings began count too, but not one already held.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "b1",
        "2026-11-10T10:00:00Z",
        "R1",
        "2026-11-25T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "h1",
        "review_held",
        "2026-11-25T16:00:00Z",
        json!({"review_id": "R1", "held_at": "2026-11-25T14:00:00Z"}),
    ));
    events.push(review(
        &c,
        "b2",
        "2026-12-01T10:00:00Z",
        "R2",
        "2027-02-24T14:00:00Z",
    ));
    events.push(proceedings(&c, "2027-01-12T15:00:00Z"));
    let p = plan(&c, &events, "2027-01-13T12:00:00Z");
    let told = sent_to(&p, "proceedings_reviews_ahead_notice", "notice");
    assert_eq!(
        told,
        vec![
            ("2027-01-12 15:00".to_string(), "guardian".to_string()),
            ("2027-01-12 15:00".to_string(), "legal_adviser".to_string())
        ]
    );
    let n = p
        .notifications
        .iter()
        .find(|n| n.rule == "proceedings_reviews_ahead_notice")
        .unwrap();
    let m = driftwatch::message::render(
        &c.rules,
        "C1",
        n,
        n.data.as_deref().unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        m.text.contains("Wednesday 24 February 2027 at 14:00"),
        "{}",
        m.text
    );
}

#[test]
fn the_legal_adviser_is_given_the_iros_details_as_soon_as_both_are_known_and_again_on_a_change() {
    let c = config();
    // IRO first, proceedings second: told when proceedings start.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(proceedings(&c, "2027-01-12T15:00:00Z"));
    let p = plan(&c, &events, "2027-01-13T12:00:00Z");
    assert_eq!(
        sent_to(&p, "iro_details_to_legal_adviser", "notice"),
        vec![("2027-01-12 15:00".to_string(), "legal_adviser".to_string())]
    );
    let n = p
        .notifications
        .iter()
        .find(|n| n.rule == "iro_details_to_legal_adviser")
        .unwrap();
    let m = driftwatch::message::render(
        &c.rules,
        "C1",
        n,
        n.data.as_deref().unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        m.text
            .contains("Ira Reviewer, ira.reviewer@council.example"),
        "{}",
        m.text
    );

    // Proceedings first, IRO second: told when the IRO is allocated; and again when it changes.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    events.push(proceedings(&c, "2026-11-03T10:00:00Z"));
    events.push(ev(
        &c,
        "iro1",
        "iro_allocated",
        "2026-11-05T10:00:00Z",
        json!({"iro": contact("Ira Reviewer")}),
    ));
    events.push(ev(
        &c,
        "iro2",
        "iro_allocated",
        "2027-01-05T10:00:00Z",
        json!({"iro": contact("Nora Newiro")}),
    ));
    let p = plan(&c, &events, "2027-01-13T12:00:00Z");
    assert!(sent_to(&p, "iro_details_to_legal_adviser", "notice").is_empty());
    assert_eq!(
        sent_to(&p, "iro_details_to_legal_adviser_on_allocation", "notice"),
        vec![
            ("2026-11-05 10:00".to_string(), "legal_adviser".to_string()),
            ("2027-01-05 10:00".to_string(), "legal_adviser".to_string())
        ]
    );
    let last = p
        .notifications
        .iter()
        .filter(|n| n.rule == "iro_details_to_legal_adviser_on_allocation")
        .max_by_key(|n| n.send_at)
        .unwrap();
    let m = driftwatch::message::render(
        &c.rules,
        "C1",
        last,
        last.data.as_deref().unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert!(m.text.contains("Nora Newiro"), "{}", m.text);
}

// ---------------------------------------------------------------------------------------------
// 4. Periods of care

#[test]
fn after_the_child_leaves_care_nothing_opens_and_nothing_is_sent() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "left",
        "ceased_looked_after",
        "2027-01-05T12:00:00Z",
        json!({}),
    ));
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-01-07T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    events.push(ev(
        &c,
        "sig",
        "significant_event",
        "2027-01-08T10:00:00Z",
        json!({"kind": "health_event", "occurred_at": "2027-01-08T09:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert!(
        p.obligations
            .iter()
            .all(|o| o.rule != "care_plan_after_review")
    );
    assert!(
        p.notifications
            .iter()
            .all(|n| n.send_at < t("2027-01-05T12:00:00Z")),
        "{:#?}",
        p.notifications
            .iter()
            .filter(|n| n.send_at >= t("2027-01-05T12:00:00Z"))
            .map(|n| (&n.rule, &n.step))
            .collect::<Vec<_>>()
    );
    assert!(
        p.obligations
            .iter()
            .all(|o| matches!(o.state, S::Cancelled | S::Met | S::MetLate | S::NotDone))
    );
}

#[test]
fn a_return_to_care_starts_a_new_review_sequence() {
    let c = config();
    let mut events = in_care(&c, "2026-01-05T09:00:00Z");
    for (i, held) in ["2026-01-30", "2026-04-28", "2026-10-20"]
        .iter()
        .enumerate()
    {
        events.push(ev(
            &c,
            &format!("held{i}"),
            "review_held",
            &format!("{held}T15:00:00Z"),
            json!({"review_id": format!("R{i}"), "held_at": format!("{held}T14:00:00Z")}),
        ));
    }
    events.push(ev(
        &c,
        "left",
        "ceased_looked_after",
        "2026-11-02T12:00:00Z",
        json!({}),
    ));
    // Back in care on Monday 1 February 2027.
    events.push(ev(
        &c,
        "back",
        "child_looked_after",
        "2027-02-01T09:00:00Z",
        json!({"start": "2027-02-01T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
    ));
    let p = plan(&c, &events, "2027-02-02T12:00:00Z");
    let first: Vec<_> = p
        .obligations
        .iter()
        .filter(|o| o.rule == "first_review")
        .collect();
    assert_eq!(first.len(), 2);
    let new_first = first.iter().find(|o| o.state == S::Open).unwrap();
    assert_eq!(new_first.due, wd("2027-02-01", 20));
    // Nothing of the old period is left open or overdue: what was open when the child left is
    // cancelled.
    let old: Vec<_> = p
        .obligations
        .iter()
        .filter(|o| o.opened_at < t("2026-11-02T12:00:00Z"))
        .collect();
    assert!(
        old.iter().all(|o| !matches!(o.state, S::Open | S::Overdue)),
        "{old:#?}"
    );
    assert_eq!(
        p.obligations
            .iter()
            .filter(|o| o.rule == "later_review")
            .map(|o| o.state)
            .collect::<Vec<_>>(),
        vec![S::Met, S::Cancelled]
    );

    // The first review of the new period is followed by a second within three months, then
    // six-monthly: reviews are counted within the period.
    events.push(ev(
        &c,
        "new1",
        "review_held",
        "2027-02-24T15:00:00Z",
        json!({"review_id": "N1", "held_at": "2027-02-24T14:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-25T12:00:00Z");
    let second = p
        .obligations
        .iter()
        .find(|o| o.rule == "second_review" && o.state == S::Open)
        .unwrap();
    assert_eq!(second.due, d("2027-05-24"));
    assert!(
        p.obligations
            .iter()
            .filter(|o| o.rule == "later_review")
            .all(|o| o.state != S::Open)
    );
}

#[test]
fn a_change_of_legal_status_does_not_restart_the_review_clock() {
    let c = config();
    let mut events = vec![ev(
        &c,
        "lac",
        "child_looked_after",
        "2027-02-01T09:00:00Z",
        json!({"start": "2027-02-01T09:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}),
    )];
    events.push(ev(
        &c,
        "iro",
        "iro_allocated",
        "2027-02-03T09:00:00Z",
        json!({"iro": contact("Ira Reviewer")}),
    ));
    events.push(ev(
        &c,
        "order",
        "legal_status_changed",
        "2027-02-10T09:00:00Z",
        json!({"legal_basis": "s31"}),
    ));
    let p = plan(&c, &events, "2027-02-11T12:00:00Z");
    // Section 20: looked after from 24 hours after the start.
    assert_eq!(obligation(&p, "first_review").due, wd("2027-02-02", 20));
    assert_eq!(
        sent_to(&p, "legal_status_change_notice", "notice"),
        vec![("2027-02-10 09:00".to_string(), "iro".to_string())]
    );
    // A second start while the child is still looked after begins nothing and says so.
    events.push(ev(
        &c,
        "again",
        "child_looked_after",
        "2027-02-12T09:00:00Z",
        json!({"start": "2027-02-12T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
    ));
    let p = plan(&c, &events, "2027-02-15T12:00:00Z");
    assert_eq!(obligation(&p, "first_review").due, wd("2027-02-02", 20));
    assert!(
        p.problems
            .iter()
            .any(|m| m.contains("already looked after")),
        "{:?}",
        p.problems
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Nothing urgent dropped; nobody missed

#[test]
fn a_significant_event_with_no_iro_yet_reaches_the_iro_manager_at_once() {
    let c = config();
    let mut events = in_care(&c, "2027-02-01T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    events.push(ev(
        &c,
        "sig",
        "significant_event",
        "2027-02-02T21:15:00Z",
        json!({"kind": "missing_from_placement", "occurred_at": "2027-02-02T20:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-02T21:20:00Z");
    let n: Vec<&Notification> = notes(&p, "significant_event_notice", K::Notice);
    assert_eq!(n.len(), 1);
    assert_eq!(local(n[0]), "2027-02-02 21:15");
    assert_eq!(n[0].recipient.label(), "iro_manager");
    assert_eq!(n[0].instead_of.as_deref(), Some("iro"));
    assert!(
        p.problems
            .iter()
            .any(|m| m.contains("no `iro` contact") && m.contains("iro_manager instead")),
        "{:?}",
        p.problems
    );

    // With no fallback at all, it is not dropped: it is addressed to nobody, which the daemon
    // records as dead with its reason, and the plan says so as an error.
    let none = BTreeMap::new();
    let planner = Planner {
        fallbacks: &none,
        ..c.planner()
    };
    let p = planner.plan_case("C1", &events, t("2027-02-02T21:20:00Z"));
    let n: Vec<&Notification> = notes(&p, "significant_event_notice", K::Notice);
    assert_eq!(n.len(), 1);
    assert!(matches!(n[0].recipient, Target::Nobody { .. }));
    assert!(n[0].recipient.nobody_reason().unwrap().contains("iro"));
    assert!(
        p.problems.iter().any(|m| m.starts_with("error:")),
        "{:?}",
        p.problems
    );
}

#[test]
fn an_iro_allocated_late_is_sent_the_step_that_applies_now() {
    let c = config();
    // Care begins Monday 1 February 2027; the IRO is allocated only on 2 March.
    let mut events = in_care(&c, "2027-02-01T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    let p = plan(&c, &events, "2027-02-10T12:00:00Z");
    let due = wd("2027-02-01", 20);
    let book = nine(count(due, -15, working_day));
    // "Book the first review" went to the IRO manager instead of the absent IRO.
    assert!(
        sent_to(&p, "first_review", "reminder -15 working days")
            .contains(&(book.clone(), "iro_manager".to_string()))
    );
    events.push(ev(
        &c,
        "iro",
        "iro_allocated",
        "2027-02-18T10:00:00Z",
        json!({"iro": contact("Ira Reviewer")}),
    ));
    let p = plan(&c, &events, "2027-02-19T12:00:00Z");
    let joined: Vec<_> = p
        .notifications
        .iter()
        .filter(|n| n.rule == "first_review" && n.recipient.label() == "iro" && n.late)
        .map(|n| (local(n), n.step.clone()))
        .collect();
    // The latest step addressed to the IRO before they joined.
    let reminder_5 = nine(count(due, -5, working_day));
    assert!(reminder_5.as_str() > "2027-02-18 10:00");
    assert_eq!(
        joined,
        vec![(
            "2027-02-18 10:00".to_string(),
            "reminder -15 working days".to_string()
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Seed duties not yet modelled

#[test]
fn the_iro_meets_the_child_before_each_review_the_first_included() {
    let c = config();
    let mut events = in_care(&c, "2027-02-01T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2027-02-02T10:00:00Z",
        "R1",
        "2027-02-24T15:30:00Z",
    ));
    let p = plan(&c, &events, "2027-02-03T12:00:00Z");
    let meet = obligation(&p, "iro_meets_child");
    assert_eq!(meet.due, d("2027-02-24"));
    assert_eq!(meet.deadline, t("2027-02-24T15:30:00Z"));
    assert_eq!(
        sent_to(&p, "iro_meets_child", "reminder -5 working days"),
        vec![(nine(wd("2027-02-24", -5)), "iro".to_string())]
    );
    events.push(ev(
        &c,
        "met",
        "iro_met_child",
        "2027-02-20T12:00:00Z",
        json!({"review_id": "R1", "met_on": "2027-02-19"}),
    ));
    let p = plan(&c, &events, "2027-02-25T12:00:00Z");
    assert_eq!(obligation(&p, "iro_meets_child").state, S::Met);
    assert_eq!(
        obligation(&p, "iro_meets_child").closed_at,
        Some(t("2027-02-19T00:00:00Z"))
    );
}

#[test]
fn the_child_is_told_who_their_iro_is_with_the_date_recorded() {
    let c = config();
    let events = in_care(&c, "2027-02-01T09:00:00Z");
    let p = plan(&c, &events, "2027-02-02T12:00:00Z");
    let told = obligation(&p, "child_told_of_iro");
    assert_eq!(told.due, wd("2027-02-01", 5));
    let mut events = events.clone();
    events.push(ev(
        &c,
        "told",
        "child_told_of_iro",
        "2027-02-06T12:00:00Z",
        json!({"told_on": "2027-02-04"}),
    ));
    let p = plan(&c, &events, "2027-02-10T12:00:00Z");
    assert_eq!(obligation(&p, "child_told_of_iro").state, S::Met);
    assert_eq!(
        obligation(&p, "child_told_of_iro").closed_at,
        Some(t("2027-02-04T00:00:00Z"))
    );
}

#[test]
fn a_permanence_plan_is_identified_by_the_second_review() {
    let c = config();
    let mut events = in_care(&c, "2027-01-04T09:00:00Z");
    events.push(ev(
        &c,
        "h1",
        "review_held",
        "2027-01-28T15:00:00Z",
        json!({"review_id": "R1", "held_at": "2027-01-28T14:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "h2",
        "review_held",
        "2027-04-20T15:00:00Z",
        json!({"review_id": "R2", "held_at": "2027-04-20T14:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-05-01T12:00:00Z");
    let perm = obligation(&p, "permanence_plan");
    assert_eq!(perm.due, d("2027-04-28"));
    assert_eq!(perm.state, S::NotDone);
    let mut events = events.clone();
    events.push(ev(
        &c,
        "perm",
        "permanence_plan_identified",
        "2027-03-15T10:00:00Z",
        json!({}),
    ));
    let p = plan(&c, &events, "2027-05-01T12:00:00Z");
    assert_eq!(obligation(&p, "permanence_plan").state, S::Met);
}

#[test]
fn the_review_record_goes_to_the_family_too() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "held",
        "review_held",
        "2027-02-10T17:00:00Z",
        json!({"review_id": "R1", "held_at": "2027-02-10T14:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-02-26T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert_eq!(
        sent_to(&p, "record_to_family", "notice"),
        vec![
            ("2027-02-26 10:00".to_string(), "carer".to_string()),
            ("2027-02-26 10:00".to_string(), "parent".to_string())
        ]
    );
}

#[test]
fn a_review_for_a_school_age_child_in_school_hours_gets_a_warning() {
    let c = config();
    // Aged 11 (born 1 June 2015); 10:00 on a Wednesday is inside the school day.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T10:00:00Z",
    ));
    let p = plan(&c, &events, "2027-01-12T12:00:00Z");
    assert_eq!(
        sent_to(&p, "review_in_school_hours", "notice"),
        vec![
            ("2027-01-11 10:00".to_string(), "iro".to_string()),
            (
                "2027-01-11 10:00".to_string(),
                "review_administrator".to_string()
            )
        ]
    );
    // Moved to 16:00: no warning for the move.
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        "2027-01-12T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-10T16:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-01-13T12:00:00Z");
    assert!(sent_to(&p, "review_moved_into_school_hours", "notice").is_empty());
    // Under school age: no warning.
    let mut young = in_care(&c, "2026-11-02T09:00:00Z");
    young[0] = ev(
        &c,
        "lac",
        "child_looked_after",
        "2026-11-02T09:00:00Z",
        json!({"start": "2026-11-02T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2024-06-01"}),
    );
    young.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T10:00:00Z",
    ));
    let p = plan(&c, &young, "2027-01-12T12:00:00Z");
    assert!(sent_to(&p, "review_in_school_hours", "notice").is_empty());
}

fn drifting(c: &driftwatch::config::Config) -> Vec<driftwatch::event::Event> {
    let mut events = in_care(c, "2026-11-02T09:00:00Z");
    events.push(ev(
        c,
        "recs",
        "recommendations_issued",
        "2027-01-08T12:00:00Z",
        json!({"review_id": "R1", "recommendations": [{"id": "R1-1", "owner": contact("Sam Social"), "due": "2027-01-29"}]}),
    ));
    events
}

#[test]
fn the_iro_can_move_an_escalation_straight_to_a_later_stage_or_record_it_resolved() {
    let c = config();
    let mut events = drifting(&c);
    // Due Friday 29 January 2027; informal resolution a working day after. On Tuesday 2
    // February the IRO moves straight to formal stage 3 (the director) for the child's welfare.
    events.push(ev(
        &c,
        "jump",
        "escalation_advanced",
        "2027-02-02T11:00:00Z",
        json!({"recommendation_id": "R1-1", "stage": 4}),
    ));
    let p = plan(&c, &events, "2027-03-15T12:00:00Z");
    let stages: Vec<(String, String, NotificationStatus)> = p
        .notifications
        .iter()
        .filter(|n| {
            n.rule == "decision_carried_out"
                && n.kind == K::Escalation
                && n.recipient.label() == "iro"
        })
        .map(|n| (local(n), n.title.clone().unwrap_or_default(), n.status))
        .collect();
    let due = d("2027-01-29");
    assert_eq!(
        stages,
        vec![
            (
                nine(wd("2027-01-29", 1)),
                "Informal resolution with the social worker and team manager".into(),
                NotificationStatus::Due
            ),
            (
                "2027-02-02 11:00".into(),
                "Formal stage 3: director".into(),
                NotificationStatus::Due
            ),
            (
                nine(count(due, 6, working_day)),
                "Formal stage 1: service manager".into(),
                NotificationStatus::Superseded
            ),
            (
                nine(count(due, 11, working_day)),
                "Formal stage 2: head of service".into(),
                NotificationStatus::Superseded
            ),
            (
                nine(count(due, 21, working_day)),
                "Consider referral to Cafcass".into(),
                NotificationStatus::Due
            ),
        ]
    );
    // Recorded resolved at any stage: nothing more.
    events.push(ev(
        &c,
        "resolved",
        "drift_resolved",
        "2027-02-03T10:00:00Z",
        json!({"recommendation_id": "R1-1"}),
    ));
    let p = plan(&c, &events, "2027-03-15T12:00:00Z");
    assert!(
        p.notifications
            .iter()
            .filter(
                |n| n.rule == "decision_carried_out" && n.status != NotificationStatus::Superseded
            )
            .all(|n| n.send_at < t("2027-02-03T10:00:00Z"))
    );
}

#[test]
fn checks_across_cases_find_siblings_apart_a_parent_and_child_together_and_full_caseloads() {
    let c = config();
    let planner = c.planner();
    let now = t("2027-02-15T12:00:00Z");
    let case = |reference: &str, iro: &str, links: serde_json::Value| {
        let mut data = json!({"start": "2027-01-04T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"});
        data.as_object_mut()
            .unwrap()
            .extend(links.as_object().unwrap().clone());
        let events = vec![
            driftwatch::event::Event::from_value(
                &json!({"id": format!("{reference}-lac"), "case": reference, "type": "child_looked_after", "at": "2027-01-04T09:00:00Z", "data": data}),
                "x",
            )
            .unwrap(),
            driftwatch::event::Event::from_value(
                &json!({"id": format!("{reference}-iro"), "case": reference, "type": "iro_allocated", "at": "2027-01-05T09:00:00Z", "data": {"iro": contact(iro)}}),
                "x",
            )
            .unwrap(),
        ];
        planner.plan_case(reference, &events, now)
    };
    // Seeds 000 and 002: siblings share an IRO where possible; a child in care whose parent is
    // also in care has a different IRO.
    let plans = [
        case("S-1", "Ira Reviewer", json!({"sibling_group": "G1"})),
        case("S-2", "Oli Officer", json!({"sibling_group": "G1"})),
        case("S-3", "Oli Officer", json!({"sibling_group": "G2"})),
        case("S-4", "Oli Officer", json!({"sibling_group": "G2"})),
        case("M-1", "Ira Reviewer", json!({})),
        case("K-1", "Ira Reviewer", json!({"parent_case": "M-1"})),
    ];
    let report = driftwatch::report::compute(
        &c.rules,
        &c.calendar,
        plans.iter().map(|p| (p, &[][..])),
        d("2027-01-01"),
        d("2027-02-15"),
        plans[0].now,
    );
    let found: Vec<String> = report.checks.iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("G1")
            && found[0].contains("S-1 (Ira Reviewer)")
            && found[0].contains("S-2 (Oli Officer)"),
        "{found:?}"
    );
    assert!(
        found[1].contains("K-1") && found[1].contains("M-1") && found[1].contains("Ira Reviewer"),
        "{found:?}"
    );
    assert!(driftwatch::report::table(&report).contains("Checks across cases"));
}
