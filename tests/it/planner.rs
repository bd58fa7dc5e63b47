//! The planner against the shipped default rules and calendar, with dates checked by hand against
//! the England and Wales bank holidays and the example config's closure days (29–31 Dec 2026).

use crate::common::*;
use driftwatch::planner::{NotificationKind as K, NotificationStatus, ObligationState as S};
use serde_json::json;

fn d(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

#[test]
fn section_20_status_starts_after_24_hours_and_drives_the_first_deadlines() {
    let c = config();
    // Tuesday 1 December 2026, 10:00 GMT.
    let events = vec![ev(
        &c,
        "lac",
        "child_looked_after",
        "2026-12-01T10:00:00Z",
        json!({"start": "2026-12-01T10:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}),
    )];
    let p = plan(&c, &events, "2026-12-02T12:00:00Z");
    assert_eq!(p.derived_events.len(), 1);
    assert_eq!(p.derived_events[0].kind, "looked_after_began");
    assert_eq!(p.derived_events[0].at, t("2026-12-02T10:00:00Z"));
    // From Wednesday 2 December: 2 working days, 5 working days, 10 days.
    assert_eq!(obligation(&p, "iro_service_told").due, d("2026-12-04"));
    assert_eq!(obligation(&p, "iro_allocation").due, d("2026-12-09"));
    assert_eq!(obligation(&p, "care_plan_in_place").due, d("2026-12-12"));
    // 20 working days: 16 up to Thu 24 Dec; 25 Dec and Mon 28 Dec (Boxing Day substitute) are
    // bank holidays; the council's closure days 29–31 Dec still count (17, 18, 19); 1 Jan is a
    // bank holiday; then Mon 4 January is the 20th.
    assert_eq!(obligation(&p, "first_review").due, d("2027-01-04"));

    // Before the 24 hours pass, the status has not begun and nothing else is open.
    let early = plan(&c, &events, "2026-12-02T09:59:00Z");
    assert!(early.derived_events.is_empty());
    assert_eq!(early.obligations.len(), 1);
    assert_eq!(early.upcoming_events[0].at, t("2026-12-02T10:00:00Z"));

    // A child who goes home within 24 hours never became looked after under section 20.
    let mut home = events.clone();
    home.push(ev(
        &c,
        "end",
        "ceased_looked_after",
        "2026-12-01T20:00:00Z",
        json!({}),
    ));
    let p = plan(&c, &home, "2027-02-01T12:00:00Z");
    assert!(p.derived_events.is_empty());
    assert_eq!(
        obligation(&p, "section20_status_begins").state,
        S::Cancelled
    );
    assert_eq!(p.obligations.len(), 1);
}

#[test]
fn care_order_status_starts_at_once() {
    let c = config();
    let p = plan(
        &c,
        &in_care(&c, "2027-03-01T09:00:00Z"),
        "2027-03-01T12:00:00Z",
    );
    assert_eq!(p.derived_events[0].at, t("2027-03-01T09:00:00Z"));
    // 20 working days from Mon 1 March 2027 skip Good Friday 26 and Easter Monday 29 March.
    assert_eq!(obligation(&p, "first_review").due, d("2027-03-31"));
}

#[test]
fn reminders_and_escalations_fall_on_working_days_at_nine() {
    let c = config();
    let events = vec![ev(
        &c,
        "lac",
        "child_looked_after",
        "2027-03-01T09:00:00Z",
        json!({"start": "2027-03-01T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
    )];
    let p = plan(&c, &events, "2027-03-20T12:00:00Z");
    // IRO allocation due Mon 8 March: reminder 1 working day before, escalations 1 and 3 after.
    assert_eq!(
        when_who(&notes(&p, "iro_allocation", K::Reminder)),
        vec![("2027-03-05 09:00".into(), "iro_manager".into())]
    );
    assert_eq!(
        when_who(&notes(&p, "iro_allocation", K::Escalation)),
        vec![
            ("2027-03-09 09:00".into(), "iro_manager".into()),
            ("2027-03-11 09:00".into(), "head_of_service".into()),
            ("2027-03-11 09:00".into(), "iro_manager".into()),
        ]
    );
    assert_eq!(obligation(&p, "iro_allocation").state, S::Overdue);
    assert_eq!(obligation(&p, "iro_allocation").working_days_late, Some(9));
    // No IRO on the case, so the first-review reminders to the IRO cannot be addressed: a problem.
    assert!(
        p.problems.iter().any(|m| m.contains("no `iro` contact")),
        "{:?}",
        p.problems
    );
}

#[test]
fn invitations_go_ten_working_days_before_the_meeting() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    let parents = json!([{"name": "Parent One", "email": "parent@example.org", "role": "parent"}, {"name": "Carer", "email": "carer@example.org", "role": "carer"}]);
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2026-12-01T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-01-06T14:00:00Z", "participants": parents}),
    ));
    let p = plan(&c, &events, "2026-12-20T12:00:00Z");
    // Back from Wed 6 January 2027: 5, 4 January, then past the holidays and closure: 24, 23,
    // 22, 21, 18, 17, 16, 15 December.
    let inv = obligation(&p, "review_invitations");
    assert_eq!(inv.due, d("2026-12-15"));
    assert_eq!(inv.state, S::Met);
    assert_eq!(inv.closed_by.as_deref(), Some("driftwatch"));
    assert_eq!(
        when_who(&notes(&p, "review_invitations", K::Action)),
        vec![
            ("2026-12-15 09:00".into(), "carer".into()),
            ("2026-12-15 09:00".into(), "parent".into())
        ]
    );
    assert_eq!(
        when_who(&notes(&p, "review_invitations", K::Reminder)),
        vec![("2026-12-11 09:00".into(), "review_administrator".into())]
    );
    // Papers 3 working days before: 5 Jan, 4 Jan, 24 Dec. The SW consultation 15 days before.
    assert_eq!(obligation(&p, "papers_to_iro").due, d("2026-12-24"));
    assert_eq!(
        obligation(&p, "social_worker_consultation").due,
        d("2026-12-22")
    );
    // Invitations sent by hand first: driftwatch sends none.
    events.push(ev(
        &c,
        "sent",
        "invitations_sent",
        "2026-12-10T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2026-12-20T12:00:00Z");
    assert!(notes(&p, "review_invitations", K::Action).is_empty());
    assert_eq!(
        obligation(&p, "review_invitations").closed_by.as_deref(),
        Some("sent")
    );
}

#[test]
fn a_rescheduled_review_moves_its_deadlines_and_keeps_idempotency_keys() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    let parent = json!([{"name": "Parent", "email": "parent@example.org"}]);
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2026-12-01T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-01-21T10:00:00Z", "participants": parent}),
    ));
    let before = plan(&c, &events, "2027-01-04T11:00:00Z");
    // Thursday 21 January: invitations on Thursday 7 January, reminder on Tuesday 5 January.
    assert_eq!(
        obligation(&before, "review_invitations").due,
        d("2027-01-07")
    );
    let reminder = notes(&before, "review_invitations", K::Reminder)[0].clone();
    assert_eq!(
        driftwatch::localtime::display(reminder.send_at),
        "2027-01-05 09:00"
    );
    assert_eq!(reminder.status, NotificationStatus::Scheduled);

    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        "2027-01-04T12:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-04T10:00:00Z"}),
    ));
    let after = plan(&c, &events, "2027-01-04T13:00:00Z");
    let inv = obligation(&after, "review_invitations");
    assert_eq!(inv.due, d("2027-01-21"));
    assert_eq!(inv.replanned.len(), 1);
    assert_eq!(inv.replanned[0].due, d("2027-01-07"));
    let moved = notes(&after, "review_invitations", K::Reminder);
    assert_eq!(
        moved.len(),
        1,
        "the old reminder never went, so only the new one stands"
    );
    assert_eq!(
        driftwatch::localtime::display(moved[0].send_at),
        "2027-01-19 09:00"
    );
    assert_eq!(moved[0].idempotency_key, reminder.idempotency_key);
    // The invitation keeps the participants from the original booking.
    assert_eq!(
        when_who(&notes(&after, "review_invitations", K::Action)),
        vec![("2027-01-21 09:00".into(), "participants".into())]
    );
    // The move itself is announced, in working hours.
    assert_eq!(
        notes(&after, "review_rescheduled_notice", K::Notice).len(),
        3
    );
}

#[test]
fn a_reminder_already_sent_is_sent_again_after_a_move_under_a_new_key() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2026-12-01T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-01-21T10:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        "2027-01-05T12:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-04T10:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-01T12:00:00Z");
    let r = notes(&p, "review_invitations", K::Reminder);
    assert_eq!(
        when_who(&r),
        vec![
            ("2027-01-05 09:00".into(), "review_administrator".into()),
            ("2027-01-19 09:00".into(), "review_administrator".into())
        ]
    );
    assert_ne!(r[0].idempotency_key, r[1].idempotency_key);
    // Nobody to invite: the invitations "went" to nobody, which the plan says plainly.
    assert!(
        p.problems
            .iter()
            .any(|m| m.contains("`list:data.participants` names nobody")),
        "{:?}",
        p.problems
    );
}

#[test]
fn a_late_booking_sends_invitations_at_once_and_supersedes_missed_reminders() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    // Booked on Wed 13 January at 18:00 for Wed 20 January: invitations were due on 6 January.
    events.push(ev(&c, "book", "review_scheduled", "2027-01-13T18:00:00Z", json!({"review_id": "R1", "meeting_at": "2027-01-20T10:00:00Z", "participants": [{"email": "parent@example.org"}]})));
    let p = plan(&c, &events, "2027-01-14T12:00:00Z");
    let inv = notes(&p, "review_invitations", K::Action);
    assert_eq!(
        when_who(&inv),
        vec![("2027-01-14 09:00".into(), "participants".into())]
    );
    assert!(inv[0].late);
    assert_eq!(obligation(&p, "review_invitations").state, S::MetLate);

    // Papers reminder (-5 wd = 13 Jan 09:00) passed before the booking: it goes late, next morning.
    let papers = notes(&p, "papers_to_iro", K::Reminder);
    assert!(
        papers
            .iter()
            .all(|n| n.late && driftwatch::localtime::display(n.send_at) == "2027-01-14 09:00")
    );
    // The reminder to the administrator two days before the (already passed) invitation deadline
    // is superseded: the invitations went instead.
    let admin = notes(&p, "review_invitations", K::Reminder);
    assert!(
        admin
            .iter()
            .all(|n| n.status == NotificationStatus::Superseded),
        "{admin:#?}"
    );
}

#[test]
fn an_obligation_opened_past_its_deadline_starts_at_the_escalation_step_that_applies_now() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    // Recommendation due 4 January, recorded as a decision only on 3 February.
    events.push(ev(&c, "recs", "recommendations_issued", "2026-12-01T10:00:00Z", json!({"review_id": "R1", "recommendations": [{"id": "A", "owner": contact("Sam Social"), "due": "2027-01-04"}]})));
    let p = plan(&c, &events, "2027-01-20T12:00:00Z");
    // Decision at the end of 8 December; escalations from 4 January: +1 wd 5 Jan, +6 wd 12 Jan,
    // +11 wd 19 Jan, +16 wd 26 Jan, +21 wd 2 Feb.
    let esc = notes(&p, "decision_carried_out", K::Escalation);
    let due_now: Vec<_> = esc
        .iter()
        .filter(|n| n.status == NotificationStatus::Due)
        .map(|n| {
            (
                driftwatch::localtime::display(n.send_at),
                n.title.clone().unwrap(),
            )
        })
        .collect();
    assert!(due_now.contains(&(
        "2027-01-19 09:00".into(),
        "Formal stage 2: head of service".into()
    )));
    assert!(due_now.iter().all(|(_, title)| !title.contains("director")));
    assert_eq!(obligation(&p, "decision_carried_out").state, S::Overdue);
}

#[test]
fn recommendations_become_decisions_unless_queried_and_drift_climbs_the_ladder() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(&c, "recs", "recommendations_issued", "2027-01-08T12:00:00Z", json!({"review_id": "R1", "recommendations": [
        {"id": "A", "summary": "Sibling contact", "owner": contact("Sam Social"), "due": "2027-01-29"},
        {"id": "B", "owner": contact("Tara Manager"), "due": "2027-02-26"}]})));
    events.push(ev(
        &c,
        "query",
        "recommendation_queried",
        "2027-01-12T10:00:00Z",
        json!({"recommendation_id": "B"}),
    ));
    let p = plan(&c, &events, "2027-03-10T12:00:00Z");
    // Friday 8 January + 5 working days = Friday 15 January; the decision at its end.
    let decisions: Vec<_> = p
        .derived_events
        .iter()
        .filter(|e| e.kind == "decision_made")
        .collect();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].at, t("2027-01-16T00:00:00Z"));
    assert_eq!(decisions[0].data["recommendation_id"], "A");
    let esc = notes(&p, "decision_carried_out", K::Escalation);
    let ladder: Vec<_> = esc
        .iter()
        .filter(|n| n.recipient.label() == "iro")
        .map(|n| {
            (
                driftwatch::localtime::display(n.send_at),
                n.title.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ladder,
        vec![
            (
                "2027-02-01 09:00".into(),
                "Informal resolution with the social worker and team manager".into()
            ),
            (
                "2027-02-08 09:00".into(),
                "Formal stage 1: service manager".into()
            ),
            (
                "2027-02-15 09:00".into(),
                "Formal stage 2: head of service".into()
            ),
            ("2027-02-22 09:00".into(), "Formal stage 3: director".into()),
            (
                "2027-03-01 09:00".into(),
                "Consider referral to Cafcass".into()
            ),
        ]
    );
    // Reminders go to the decision's owner.
    assert_eq!(
        when_who(&notes(&p, "decision_carried_out", K::Reminder)),
        vec![
            ("2027-01-22 09:00".into(), "owner".into()),
            ("2027-01-28 09:00".into(), "owner".into())
        ]
    );

    // Carried out on 9 February: the ladder stops after the formal stage 1 step.
    events.push(ev(
        &c,
        "done",
        "decision_completed",
        "2027-02-09T10:00:00Z",
        json!({"recommendation_id": "A"}),
    ));
    let p = plan(&c, &events, "2027-03-10T12:00:00Z");
    let o = obligation(&p, "decision_carried_out");
    assert_eq!(o.state, S::MetLate);
    assert_eq!(o.working_days_late, Some(7));
    let steps: Vec<_> = notes(&p, "decision_carried_out", K::Escalation)
        .iter()
        .filter(|n| n.recipient.label() == "iro")
        .map(|n| n.title.clone().unwrap())
        .collect();
    assert_eq!(steps.len(), 2);
}

#[test]
fn review_record_letter_or_certificate_and_care_plan_update() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "held",
        "review_held",
        "2027-01-06T16:00:00Z",
        json!({"review_id": "R1", "held_at": "2027-01-06T14:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-01-07T12:00:00Z");
    // 20 working days after Wednesday 6 January 2027: Wednesday 3 February.
    assert_eq!(obligation(&p, "review_record").due, d("2027-02-03"));
    assert_eq!(obligation(&p, "child_letter").due, d("2027-02-03"));
    assert!(
        p.obligations
            .iter()
            .all(|o| o.rule != "participation_certificate")
    );
    // The first review was due 20 working days after 2 November: 30 November. Met late.
    let first = obligation(&p, "first_review");
    assert_eq!(first.due, d("2026-11-30"));
    assert_eq!(first.state, S::MetLate);
    // Second review 3 months after the first was held.
    assert_eq!(obligation(&p, "second_review").due, d("2027-04-06"));

    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-01-20T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    events.push(ev(
        &c,
        "cp",
        "care_plan_updated",
        "2027-02-05T10:00:00Z",
        json!({}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert_eq!(obligation(&p, "review_record").state, S::Met);
    // 10 working days after 20 January: 3 February; updated on the 5th, met late.
    let cp = obligation(&p, "care_plan_after_review");
    assert_eq!(cp.due, d("2027-02-03"));
    assert_eq!(cp.state, S::MetLate);

    // A child under 5 gets a certificate of participation instead of a letter.
    let mut young = events.clone();
    young[0] = ev(
        &c,
        "lac",
        "child_looked_after",
        "2026-11-02T09:00:00Z",
        json!({"start": "2026-11-02T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2023-01-01"}),
    );
    let p = plan(&c, &young, "2027-01-07T12:00:00Z");
    assert_eq!(
        obligation(&p, "participation_certificate").due,
        d("2027-02-03")
    );
    assert!(p.obligations.iter().all(|o| o.rule != "child_letter"));
}

#[test]
fn later_reviews_every_six_months_with_month_end_clamping() {
    let c = config();
    let mut events = in_care(&c, "2027-06-01T09:00:00Z");
    events.push(ev(
        &c,
        "h1",
        "review_held",
        "2027-06-20T12:00:00Z",
        json!({"review_id": "R1", "held_at": "2027-06-20T12:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "h2",
        "review_held",
        "2027-08-31T12:00:00Z",
        json!({"review_id": "R2", "held_at": "2027-08-31T12:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-09-01T12:00:00Z");
    assert_eq!(obligation(&p, "second_review").state, S::Met);
    // 31 August 2027 + 6 months = 29 February 2028 (a leap year).
    assert_eq!(obligation(&p, "later_review").due, d("2028-02-29"));
    events.push(ev(
        &c,
        "h3",
        "review_held",
        "2028-02-20T12:00:00Z",
        json!({"review_id": "R3", "held_at": "2028-02-20T12:00:00Z"}),
    ));
    let p = plan(&c, &events, "2028-02-21T12:00:00Z");
    let later: Vec<_> = p
        .obligations
        .iter()
        .filter(|o| o.rule == "later_review")
        .collect();
    assert_eq!(later.len(), 2);
    assert_eq!(
        (later[0].id.as_str(), later[0].state),
        ("later_review/-/1", S::Met)
    );
    assert_eq!(
        (later[1].id.as_str(), later[1].due),
        ("later_review/-/2", d("2028-08-20"))
    );
}

#[test]
fn significant_events_go_to_the_iro_at_once_and_disruption_asks_for_an_early_review_decision() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    // Friday 12 February 2027, 19:30: outside working hours, but urgent.
    events.push(ev(
        &c,
        "sig",
        "significant_event",
        "2027-02-12T19:30:00Z",
        json!({"kind": "placement_disruption", "occurred_at": "2027-02-12T18:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-12T20:00:00Z");
    let n = notes(&p, "significant_event_notice", K::Notice);
    assert_eq!(
        when_who(&n),
        vec![("2027-02-12 19:30".into(), "iro".into())]
    );
    assert!(n[0].urgent);
    assert_eq!(
        obligation(&p, "early_review_considered").due,
        d("2027-02-19")
    );
    // A non-urgent notice at the same moment waits for Monday 09:00.
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        "2027-02-12T19:30:00Z",
        json!({"review_id": "R9", "meeting_at": "2027-03-01T10:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-12T20:00:00Z");
    assert!(
        notes(&p, "review_rescheduled_notice", K::Notice)
            .iter()
            .all(|n| driftwatch::localtime::display(n.send_at) == "2027-02-15 09:00")
    );
    // Exclusion from school is reported but does not ask for an early review.
    let mut other = in_care(&c, "2026-11-02T09:00:00Z");
    other.push(ev(
        &c,
        "sig",
        "significant_event",
        "2027-02-12T10:00:00Z",
        json!({"kind": "school_exclusion", "occurred_at": "2027-02-12T09:00:00Z"}),
    ));
    let p = plan(&c, &other, "2027-02-12T20:00:00Z");
    assert!(
        p.obligations
            .iter()
            .all(|o| o.rule != "early_review_considered")
    );
    assert_eq!(notes(&p, "significant_event_notice", K::Notice).len(), 1);
}

#[test]
fn guardian_and_legal_adviser_hear_of_reviews_only_during_proceedings() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "pro",
        "proceedings_started",
        "2026-11-10T10:00:00Z",
        json!({"guardian": contact("Gail Guardian"), "legal_adviser": contact("Lee Legal")}),
    ));
    events.push(ev(
        &c,
        "b1",
        "review_scheduled",
        "2026-11-12T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2026-11-30T10:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "r1",
        "record_distributed",
        "2026-12-10T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    events.push(ev(
        &c,
        "end",
        "proceedings_ended",
        "2027-01-10T10:00:00Z",
        json!({}),
    ));
    events.push(ev(
        &c,
        "b2",
        "review_scheduled",
        "2027-02-01T10:00:00Z",
        json!({"review_id": "R2", "meeting_at": "2027-03-01T10:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-02T12:00:00Z");
    assert_eq!(
        when_who(&notes(&p, "proceedings_review_notice", K::Notice)),
        vec![
            ("2026-11-12 10:00".into(), "guardian".into()),
            ("2026-11-12 10:00".into(), "legal_adviser".into())
        ]
    );
    assert_eq!(notes(&p, "proceedings_record_copy", K::Notice).len(), 3);
    // A move during proceedings is announced to them too; after proceedings, not.
    events.push(ev(
        &c,
        "m1",
        "review_rescheduled",
        "2026-11-20T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2026-12-02T10:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "m2",
        "review_rescheduled",
        "2027-02-10T10:00:00Z",
        json!({"review_id": "R2", "meeting_at": "2027-03-08T10:00:00Z"}),
    ));
    let p = plan(&c, &events, "2027-02-11T12:00:00Z");
    assert_eq!(
        when_who(&notes(&p, "proceedings_review_moved_notice", K::Notice)),
        vec![
            ("2026-11-20 10:00".into(), "guardian".into()),
            ("2026-11-20 10:00".into(), "legal_adviser".into())
        ]
    );
}

#[test]
fn closing_the_case_cancels_everything_open() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2026-11-05T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2026-11-27T10:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "end",
        "ceased_looked_after",
        "2026-11-06T10:00:00Z",
        json!({}),
    ));
    let p = plan(&c, &events, "2027-01-01T12:00:00Z");
    assert!(
        p.obligations
            .iter()
            .all(|o| matches!(o.state, S::Cancelled | S::Met)),
        "{:#?}",
        p.obligations
    );
    assert!(
        p.notifications
            .iter()
            .all(|n| n.send_at < t("2026-11-06T10:00:00Z"))
    );
}

#[test]
fn out_of_order_and_duplicate_events_give_the_same_plan() {
    let c = config();
    let events = example_events();
    let planner = c.planner();
    let now = t("2027-02-15T12:00:00Z");
    let reference = serde_json::to_string(&planner.plan(&events, now)).unwrap();
    let mut shuffled = events.clone();
    shuffled.reverse();
    shuffled.extend(events.iter().step_by(3).cloned());
    shuffled.rotate_left(5);
    assert_eq!(
        serde_json::to_string(&planner.plan(&shuffled, now)).unwrap(),
        reference
    );
    // Events after `now` have not happened yet.
    let earlier = planner.plan(&events, t("2026-12-05T12:00:00Z"));
    assert!(
        earlier[0]
            .obligations
            .iter()
            .all(|o| o.opened_at <= t("2026-12-05T12:00:00Z"))
    );
}

#[test]
fn idempotency_keys_are_unique_and_stable() {
    let c = config();
    let events = example_events();
    let planner = c.planner();
    let a = planner.plan(&events, t("2027-02-15T12:00:00Z"));
    let b = planner.plan(&events, t("2027-06-01T12:00:00Z"));
    let keys: std::collections::HashSet<_> = a[0]
        .notifications
        .iter()
        .map(|n| &n.idempotency_key)
        .collect();
    assert_eq!(keys.len(), a[0].notifications.len());
    // Planning later changes statuses, not keys, of what was already planned.
    for n in &a[0].notifications {
        assert!(
            b[0].notifications
                .iter()
                .any(|m| m.idempotency_key == n.idempotency_key && m.send_at == n.send_at)
        );
    }
}

#[test]
fn a_back_dated_start_of_care_counts_from_the_real_start() {
    let c = config();
    // Recorded on Friday 5 March 2027 for a care order from Monday 1 March.
    let events = vec![ev(
        &c,
        "lac",
        "child_looked_after",
        "2027-03-05T15:00:00Z",
        json!({"start": "2027-03-01T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
    )];
    let p = plan(&c, &events, "2027-03-05T16:00:00Z");
    assert_eq!(p.derived_events[0].at, t("2027-03-01T09:00:00Z"));
    assert_eq!(obligation(&p, "iro_allocation").due, d("2027-03-08"));
}

#[test]
fn non_urgent_messages_wait_for_working_hours_across_the_clock_change() {
    let c = config();
    let planner = c.planner();
    let local = |s: &str| driftwatch::localtime::display(planner.place(t(s), false));
    // Inside hours: unchanged. Before 09:00: 09:00 that day. After 17:00: next working day.
    assert_eq!(local("2027-02-10T11:15:00Z"), "2027-02-10 11:15");
    assert_eq!(local("2027-02-10T07:00:00Z"), "2027-02-10 09:00");
    assert_eq!(local("2027-02-10T17:00:00Z"), "2027-02-11 09:00");
    // Friday evening before Easter: Good Friday and Easter Monday are skipped.
    assert_eq!(local("2027-03-25T18:00:00Z"), "2027-03-30 09:00");
    // After the clocks go forward (28 March 2027), 09:00 local is 08:00 UTC.
    assert_eq!(
        planner.place(t("2027-03-30T05:00:00Z"), false),
        t("2027-03-30T08:00:00Z")
    );
    // Christmas Eve evening 2026 waits past the holidays and the closure to 4 January.
    assert_eq!(local("2026-12-24T18:00:00Z"), "2027-01-04 09:00");
    // Urgent messages are never moved.
    assert_eq!(
        planner.place(t("2026-12-25T03:00:00Z"), true),
        t("2026-12-25T03:00:00Z")
    );
}

/// The example case's plan with an acknowledgement (or snooze) of the first reminder that the
/// owner of decision R1-1 gets, five working days before it is due on Friday 29 January 2027.
fn acknowledged(
    action: serde_json::Value,
    extra: Vec<driftwatch::event::Event>,
    now: &str,
) -> (String, driftwatch::planner::CasePlan) {
    let c = config();
    let planner = c.planner();
    let events = example_events();
    let before = planner.plan_case("C-1001", &events, t("2027-01-22T10:00:00Z"));
    let first = notes(&before, "decision_carried_out", K::Reminder)
        .into_iter()
        .find(|n| n.send_at == t("2027-01-22T09:00:00Z"))
        .expect("the reminder five working days ahead")
        .idempotency_key
        .clone();
    let mut data = action;
    data["notification"] = json!(first);
    let ack = driftwatch::event::Event::from_value(
        &json!({"id": "ack-1", "case": "C-1001", "type": "notification_acknowledged",
                "at": "2027-01-22T11:00:00Z", "data": data, "source": "driftwatch"}),
        "ack-1",
    )
    .unwrap();
    c.rules.vocabulary.validate(&ack).unwrap();
    let mut all = events;
    all.push(ack);
    all.extend(extra);
    (first, planner.plan_case("C-1001", &all, t(now)))
}

#[test]
fn an_acknowledged_reminder_silences_its_repeats_but_not_the_escalations() {
    let (first, p) = acknowledged(
        json!({"action": "acknowledge"}),
        vec![],
        "2027-02-02T12:00:00Z",
    );
    let reminders = notes(&p, "decision_carried_out", K::Reminder);
    let status = |key: &str| {
        reminders
            .iter()
            .find(|n| n.idempotency_key == key)
            .unwrap()
            .status
    };
    assert_eq!(
        status(&first),
        NotificationStatus::Due,
        "the acknowledged one was sent"
    );
    let second = reminders
        .iter()
        .find(|n| n.send_at == t("2027-01-28T09:00:00Z"))
        .unwrap();
    assert_eq!(second.status, NotificationStatus::Acknowledged);
    // Every escalation stage still comes while the decision is not carried out.
    let escalations = notes(&p, "decision_carried_out", K::Escalation);
    assert!(!escalations.is_empty());
    assert!(
        escalations
            .iter()
            .all(|n| n.status != NotificationStatus::Acknowledged)
    );
    // Other rules' reminders are untouched.
    assert_eq!(
        p.notifications
            .iter()
            .filter(|n| n.status == NotificationStatus::Acknowledged)
            .count(),
        1
    );
    // An acknowledgement of a key the plan does not have changes nothing.
    let c = config();
    let mut events = example_events();
    events.push(
        driftwatch::event::Event::from_value(
            &json!({"id": "ack-x", "case": "C-1001", "type": "notification_acknowledged",
                    "at": "2027-01-22T11:00:00Z",
                    "data": {"notification": "dw1-nothing", "action": "acknowledge"}}),
            "ack-x",
        )
        .unwrap(),
    );
    let plain = c
        .planner()
        .plan_case("C-1001", &events, t("2027-02-02T12:00:00Z"));
    assert!(
        plain
            .notifications
            .iter()
            .all(|n| n.status != NotificationStatus::Acknowledged)
    );
}

#[test]
fn a_snoozed_reminder_comes_back_once_on_its_day_while_the_obligation_is_open() {
    let snooze = json!({"action": "snooze", "until": "2027-01-26"});
    let (first, p) = acknowledged(snooze.clone(), vec![], "2027-01-26T12:00:00Z");
    let reminders = notes(&p, "decision_carried_out", K::Reminder);
    let snoozed: Vec<_> = reminders
        .iter()
        .filter(|n| n.step.ends_with("(snoozed)"))
        .collect();
    assert_eq!(snoozed.len(), 1);
    assert_eq!(snoozed[0].send_at, t("2027-01-26T09:00:00Z"));
    assert_eq!(snoozed[0].status, NotificationStatus::Due);
    assert_ne!(snoozed[0].idempotency_key, first);
    assert_eq!(
        snoozed[0].recipient.identity(),
        "sam.social@council.example"
    );
    // The day-before reminder falls after the snooze, so it stays.
    let last = reminders
        .iter()
        .find(|n| n.send_at == t("2027-01-28T09:00:00Z"))
        .unwrap();
    assert_eq!(last.status, NotificationStatus::Scheduled);

    // Snoozed past the day-before reminder: that one is silenced instead.
    let (_, p) = acknowledged(
        json!({"action": "snooze", "until": "2027-01-29"}),
        vec![],
        "2027-01-26T12:00:00Z",
    );
    let reminders = notes(&p, "decision_carried_out", K::Reminder);
    let last = reminders
        .iter()
        .find(|n| n.send_at == t("2027-01-28T09:00:00Z"))
        .unwrap();
    assert_eq!(last.status, NotificationStatus::Acknowledged);

    // Snoozed to the day of the day-before reminder: one message that morning, not two.
    let (_, p) = acknowledged(
        json!({"action": "snooze", "until": "2027-01-28"}),
        vec![],
        "2027-01-28T12:00:00Z",
    );
    let that_morning: Vec<_> = notes(&p, "decision_carried_out", K::Reminder)
        .into_iter()
        .filter(|n| n.send_at == t("2027-01-28T09:00:00Z"))
        .collect();
    assert_eq!(that_morning.len(), 2);
    assert_eq!(
        that_morning
            .iter()
            .filter(|n| n.status != NotificationStatus::Acknowledged)
            .count(),
        1,
        "{that_morning:#?}"
    );

    // Snoozed past the deadline: the escalation takes over, no reminder comes back.
    let (_, p) = acknowledged(
        json!({"action": "snooze", "until": "2027-02-01"}),
        vec![],
        "2027-02-02T12:00:00Z",
    );
    assert!(
        p.notifications
            .iter()
            .all(|n| !n.step.ends_with("(snoozed)"))
    );

    // Carried out before the chosen day: nothing comes back.
    let c = config();
    let done = driftwatch::event::Event::from_value(
        &json!({"id": "done", "case": "C-1001", "type": "decision_completed",
                "at": "2027-01-25T10:00:00Z", "data": {"recommendation_id": "R1-1"}}),
        "done",
    )
    .unwrap();
    c.rules.vocabulary.validate(&done).unwrap();
    let (_, p) = acknowledged(snooze, vec![done], "2027-01-26T12:00:00Z");
    assert!(
        p.notifications
            .iter()
            .all(|n| !n.step.ends_with("(snoozed)")),
        "no snoozed reminder for a met obligation"
    );
}
