//! A second reading of issue 14 ("every deadline lawful, everyone who must be told is told")
//! against whole case timelines that the issue's own examples do not cover: closure days around
//! other deadlines, reviews moved more than once or moved and then cancelled, preparation that
//! comes after the meeting, care proceedings across periods of care, section 20 and care orders
//! in the first 24 hours, fallbacks, people who join late, the new seed duties and the checks
//! across cases, and the daemon end to end for a moved and a cancelled review.
//!
//! Every expected date is worked out here from the regulations' definition of a working day
//! (tests/it/common/timeline.rs), with the shipped config's closure days (29 to 31 December 2026
//! and 2027), never from driftwatch's own calendar. Each test cites the text it reads.

use crate::common::timeline::*;
use crate::common::*;
use driftwatch::event::Event;
use driftwatch::planner::{
    CasePlan, Notification, NotificationKind as K, NotificationStatus, ObligationPlan,
    ObligationState as S, Target,
};
use serde_json::{Value, json};

/// The obligations of a rule, in due order (a rule with a key can have several).
fn all<'p>(p: &'p CasePlan, rule: &str) -> Vec<&'p ObligationPlan> {
    p.obligations.iter().filter(|o| o.rule == rule).collect()
}

/// The notifications that go (not passed over), with their recipients' roles.
fn going(p: &CasePlan) -> impl Iterator<Item = &Notification> {
    p.notifications
        .iter()
        .filter(|n| n.status != NotificationStatus::Superseded)
}

/// `(local time, role)` of every message of a rule that goes to `role`.
fn to_role(p: &CasePlan, rule: &str, role: &str) -> Vec<(String, String)> {
    let mut v: Vec<_> = going(p)
        .filter(|n| n.rule == rule && n.recipient.label() == role)
        .map(|n| (local(n), n.step.clone()))
        .collect();
    v.sort();
    v
}

fn rendered(c: &driftwatch::config::Config, n: &Notification) -> String {
    driftwatch::message::render(
        &c.rules,
        "C1",
        n,
        n.data.as_deref().unwrap(),
        &Default::default(),
    )
    .unwrap()
    .text
}

/// A child looked after from `start` on `basis`, born 1 June 2015, with a social worker and an
/// IRO allocated at the start.
fn in_care_on(c: &driftwatch::config::Config, start: &str, basis: &str) -> Vec<Event> {
    let mut events = in_care(c, start);
    events[0] = ev(
        c,
        "lac",
        "child_looked_after",
        start,
        json!({"start": start, "legal_basis": basis, "date_of_birth": "2015-06-01"}),
    );
    events
}

fn held(c: &driftwatch::config::Config, id: &str, review: &str, at: &str, held_at: &str) -> Event {
    ev(
        c,
        id,
        "review_held",
        at,
        json!({"review_id": review, "held_at": held_at}),
    )
}

fn moved(c: &driftwatch::config::Config, id: &str, at: &str, review: &str, to: &str) -> Event {
    ev(
        c,
        id,
        "review_rescheduled",
        at,
        json!({"review_id": review, "meeting_at": to}),
    )
}

fn cancelled(c: &driftwatch::config::Config, id: &str, at: &str, review: &str) -> Event {
    ev(c, id, "review_cancelled", at, json!({"review_id": review}))
}

fn proceedings(c: &driftwatch::config::Config, at: &str) -> Event {
    ev(
        c,
        "proc",
        "proceedings_started",
        at,
        json!({"guardian": contact("Gina Guardian"), "legal_adviser": contact("Lee Legal")}),
    )
}

/// The invitation deadline for a meeting on `meeting`: ten working days before, the earlier of
/// the statutory and the council answer (seed 000; issue 14 point 1).
fn invitations_due(meeting: &str) -> chrono::NaiveDate {
    wd(meeting, -10).min(count(d(meeting), -10, open_day))
}

// ---------------------------------------------------------------------------------------------
// 1. Statutory working days

#[test]
fn a_review_record_due_after_the_christmas_closure_counts_the_closure_days() {
    let c = config();
    // Seed 004: "IROs are required to distribute this record within 20 working days of the
    // review having taken place." The review is held on Friday 4 December 2026.
    let mut events = in_care(&c, "2026-11-09T09:00:00Z");
    events.push(held(
        &c,
        "held",
        "R1",
        "2026-12-04T16:00:00Z",
        "2026-12-04T14:00:00Z",
    ));
    let p = plan(&c, &events, "2026-12-05T12:00:00Z");
    let due = wd("2026-12-04", 20);
    assert_eq!(due, d("2027-01-06"));
    assert_eq!(obligation(&p, "review_record").due, due);
    assert_eq!(obligation(&p, "child_letter").due, due);
    // Five working days before is Tuesday 29 December, a closure day: the reminder goes on the
    // last day the council is open before it (Thursday 24 December).
    let reminder = last_open(count(due, -5, working_day));
    assert_eq!(reminder, d("2026-12-24"));
    assert_eq!(
        sent_to(&p, "review_record", "reminder -5 working days"),
        vec![(nine(reminder), "iro".to_string())]
    );
    assert_eq!(
        sent_to(&p, "child_letter", "reminder -5 working days"),
        vec![(nine(reminder), "iro".to_string())]
    );
    let escalation = next_open(count(due, 1, working_day));
    assert_eq!(
        sent_to(&p, "review_record", "escalation 1 working day"),
        vec![
            (nine(escalation), "iro".to_string()),
            (nine(escalation), "iro_manager".to_string())
        ]
    );
    // Distributed on Friday 8 January: two statutory working days late (7 and 8 January), and
    // the care plan update counts ten working days from then.
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-01-08T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-01-11T12:00:00Z");
    let record = obligation(&p, "review_record");
    assert_eq!(record.state, S::MetLate);
    assert_eq!(record.working_days_late, Some(late(due, d("2027-01-08"))));
    assert_eq!(record.working_days_late, Some(2));
    assert_eq!(
        obligation(&p, "care_plan_after_review").due,
        wd("2027-01-08", 10)
    );
}

#[test]
fn a_deadline_missed_on_a_friday_is_a_working_day_late_on_the_saturday_and_in_the_report() {
    let c = config();
    // Looked after from Friday 5 February 2027: the first review within 20 working days is
    // due on Friday 5 March.
    let mut events = in_care(&c, "2027-02-05T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    let due = wd("2027-02-05", 20);
    assert_eq!(due, d("2027-03-05"));
    // The IRO allocation, due within five working days (Friday 12 February), is a working day
    // late on the Sunday after, still one on the Monday, two on the Tuesday.
    let allocation = wd("2027-02-05", 5);
    for (now, days) in [
        ("2027-02-14T12:00:00Z", 1),
        ("2027-02-15T12:00:00Z", 1),
        ("2027-02-16T12:00:00Z", 2),
    ] {
        let p = plan(&c, &events, now);
        let o = obligation(&p, "iro_allocation");
        assert_eq!(o.due, allocation);
        assert_eq!(
            (o.state, o.working_days_late),
            (S::Overdue, Some(days)),
            "{now}"
        );
    }
    // Held on Saturday 6 March: late, by one working day, and late in the report.
    events.push(held(
        &c,
        "held",
        "R1",
        "2027-03-06T12:00:00Z",
        "2027-03-06T11:00:00Z",
    ));
    let p = plan(&c, &events, "2027-03-08T12:00:00Z");
    let first = obligation(&p, "first_review");
    assert_eq!(first.due, due);
    assert_eq!(first.state, S::MetLate);
    assert_eq!(first.working_days_late, Some(late(due, d("2027-03-06"))));
    let report = driftwatch::report::compute(
        &c.rules,
        &c.calendar,
        [(&p, &events[..])],
        d("2027-03-01"),
        d("2027-03-31"),
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
fn papers_and_invitations_for_a_meeting_just_after_new_year_come_before_the_closure() {
    let c = config();
    // A review on Tuesday 5 January 2027 at 14:00, booked on 1 December. Seed 000: invitations
    // "at least ten working days before the meeting"; seed 004: papers "at least three working
    // days before", the social worker consulted "15 days before", the IRO speaks with the child
    // before the review.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2026-12-01T10:00:00Z",
        "R1",
        "2027-01-05T14:00:00Z",
    ));
    let p = plan(&c, &events, "2026-12-01T12:00:00Z");

    let invitations = invitations_due("2027-01-05");
    assert_eq!(invitations, d("2026-12-14"));
    assert_eq!(obligation(&p, "review_invitations").due, invitations);
    assert_eq!(
        sent_to(&p, "review_invitations", "at deadline"),
        vec![
            (nine(invitations), "carer".to_string()),
            (nine(invitations), "parent".to_string())
        ]
    );
    assert_eq!(
        sent_to(&p, "review_invitations", "reminder -2 working days"),
        vec![(
            nine(last_open(count(invitations, -2, working_day))),
            "review_administrator".to_string()
        )]
    );

    let papers = wd("2027-01-05", -3).min(count(d("2027-01-05"), -3, open_day));
    assert_eq!(papers, d("2026-12-23"));
    assert_eq!(obligation(&p, "papers_to_iro").due, papers);
    let reminder = nine(last_open(count(papers, -5, working_day)));
    assert_eq!(
        sent_to(&p, "papers_to_iro", "reminder -5 working days"),
        vec![
            (reminder.clone(), "social_worker".to_string()),
            (reminder, "team_manager".to_string())
        ]
    );
    let escalation = nine(next_open(count(papers, 1, working_day)));
    assert_eq!(
        sent_to(&p, "papers_to_iro", "escalation 1 working day"),
        vec![
            (escalation.clone(), "iro".to_string()),
            (escalation, "team_manager".to_string())
        ]
    );

    let consult = d("2027-01-05") - chrono::Days::new(15);
    assert_eq!(obligation(&p, "social_worker_consultation").due, consult);
    assert_eq!(
        sent_to(&p, "social_worker_consultation", "reminder -3 working days"),
        vec![(
            nine(last_open(count(consult, -3, working_day))),
            "iro".to_string()
        )]
    );
    // Five working days before 5 January is Tuesday 29 December, a closure day: the reminder
    // to meet the child goes on Thursday 24 December.
    assert_eq!(
        sent_to(&p, "iro_meets_child", "reminder -5 working days"),
        vec![(nine(last_open(wd("2027-01-05", -5))), "iro".to_string())]
    );
    assert_eq!(last_open(wd("2027-01-05", -5)), d("2026-12-24"));
}

#[test]
fn no_message_that_is_not_urgent_goes_on_a_day_the_council_is_closed_across_a_whole_winter() {
    let c = config();
    // A child looked after from Monday 16 November 2026: the first review on 14 December,
    // recommendations with a decision due on Wednesday 30 December (a closure day), the record
    // late in January, an urgent significant event on the night of 30 December.
    let mut events = in_care(&c, "2026-11-16T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2026-11-20T10:00:00Z",
        "R1",
        "2026-12-14T14:00:00Z",
    ));
    events.push(held(
        &c,
        "held",
        "R1",
        "2026-12-14T16:00:00Z",
        "2026-12-14T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "recs",
        "recommendations_issued",
        "2026-12-15T12:00:00Z",
        json!({"review_id": "R1", "recommendations": [
            {"id": "R1-1", "owner": contact("Sam Social"), "due": "2026-12-30"},
            {"id": "R1-2", "owner": contact("Sam Social"), "due": "2027-01-04"}
        ]}),
    ));
    events.push(ev(
        &c,
        "sig",
        "significant_event",
        "2026-12-30T22:10:00Z",
        json!({"kind": "missing_from_placement", "occurred_at": "2026-12-30T21:30:00Z"}),
    ));
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-01-20T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-04-01T12:00:00Z");
    assert!(going(&p).count() > 30, "{:#?}", p.notifications);
    for n in going(&p) {
        let at = driftwatch::localtime::naive_of(n.send_at);
        if n.urgent {
            continue;
        }
        assert!(
            open_day(at.date()) && at.time() >= chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            "{} {} to {} at {at}",
            n.rule,
            n.step,
            n.recipient.label()
        );
        // Reminders come before their deadline; escalations after it.
        match n.kind {
            K::Reminder => assert!(at.date() <= n.due.unwrap(), "{} {}", n.rule, n.step),
            K::Escalation => assert!(at.date() > n.due.unwrap(), "{} {}", n.rule, n.step),
            _ => {}
        }
    }
    // The urgent notice went at once, on the closure day, at night.
    assert_eq!(
        to_role(&p, "significant_event_notice", "iro"),
        vec![("2026-12-30 22:10".to_string(), "notice".to_string())]
    );
    // The decision due on 30 December: the reminder a working day before (29 December, closed)
    // goes on 24 December; the informal stage (31 December, closed) on 4 January.
    let decision: Vec<_> = going(&p)
        .filter(|n| n.obligation.as_deref() == Some("decision_carried_out/R1-1/1"))
        .map(|n| (local(n), n.step.clone(), n.recipient.label()))
        .collect();
    assert!(
        decision.contains(&(
            nine(last_open(wd("2026-12-30", -1))),
            "reminder -1 working day".to_string(),
            "owner".to_string()
        )),
        "{decision:#?}"
    );
    assert!(
        decision.contains(&(
            nine(next_open(wd("2026-12-30", 1))),
            "escalation 1 working day".to_string(),
            "iro".to_string()
        )),
        "{decision:#?}"
    );
}

#[test]
fn an_escalation_a_closure_pushes_onto_the_next_stages_day_still_reaches_its_people() {
    let c = config();
    // Issue 14, 1: "an escalation goes on the next open day". Seed 004: the care plan is
    // updated within 10 working days of the review process concluding. The record goes out on
    // Thursday 10 December 2026, so the update is due on Thursday 24 December. The first
    // escalation (a working day after: 29 December, closed) is to the social worker and team
    // manager; the second (three working days after: 31 December, closed) to the team manager
    // and the IRO. Both move to Monday 4 January; the social worker, whose duty it is, must
    // still hear that it is late.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(held(
        &c,
        "held",
        "R1",
        "2026-11-25T16:00:00Z",
        "2026-11-25T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2026-12-10T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-01-05T12:00:00Z");
    let due = wd("2026-12-10", 10);
    assert_eq!(obligation(&p, "care_plan_after_review").due, due);
    let first = next_open(count(due, 1, working_day));
    let second = next_open(count(due, 3, working_day));
    assert_eq!((first, second), (d("2027-01-04"), d("2027-01-04")));
    let escalated: Vec<(String, String)> = going(&p)
        .filter(|n| n.rule == "care_plan_after_review" && n.kind == K::Escalation)
        .map(|n| (local(n), n.recipient.label()))
        .collect();
    assert!(
        escalated.contains(&(nine(first), "social_worker".to_string())),
        "the social worker is never told the care plan update is late: {escalated:?}"
    );
}

#[test]
fn a_notice_on_a_closure_day_waits_for_the_next_open_day() {
    let c = config();
    // A change of legal status recorded on Wednesday 30 December 2026, a closure day: the
    // notice to the IRO is not urgent, so it goes on Monday 4 January at 09:00.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "order",
        "legal_status_changed",
        "2026-12-30T11:00:00Z",
        json!({"legal_basis": "s38"}),
    ));
    let p = plan(&c, &events, "2027-01-05T12:00:00Z");
    assert_eq!(
        sent_to(&p, "legal_status_change_notice", "notice"),
        vec![(nine(next_open(d("2026-12-30"))), "iro".to_string())]
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Reviews that move or are cancelled

/// A review booked on 11 January 2027 for Wednesday 10 February at 14:00, a parent and a carer
/// invited: the invitations go on Wednesday 27 January.
fn booked(c: &driftwatch::config::Config) -> Vec<Event> {
    let mut events = in_care(c, "2026-11-02T09:00:00Z");
    events.push(review(
        c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    events
}

#[test]
fn a_review_moved_twice_after_its_invitations_went_tells_everyone_invited_each_time() {
    let c = config();
    // Issue 14, 2: "A review moved after its invitations went out: every person already
    // invited gets a new invitation for the new date, saying it replaces the earlier one."
    let mut events = booked(&c);
    let first = invitations_due("2027-02-10");
    assert_eq!(first, d("2027-01-27"));
    // Friday 29 January: moved to Wednesday 17 March. Wednesday 3 February: moved again, to
    // Wednesday 24 March, and a grandparent is added.
    events.push(moved(
        &c,
        "move1",
        "2027-01-29T11:00:00Z",
        "R1",
        "2027-03-17T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "move2",
        "review_rescheduled",
        "2027-02-03T11:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-03-24T14:00:00Z",
               "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer"), ("Grand Parent", "grandparent")])}),
    ));
    let p = plan(&c, &events, "2027-03-25T12:00:00Z");
    assert_eq!(
        sent_to(&p, "review_invitations", "at deadline"),
        vec![
            (nine(first), "carer".to_string()),
            (nine(first), "parent".to_string()),
            (
                nine(invitations_due("2027-03-24")),
                "grandparent".to_string()
            )
        ]
    );
    // The parent and the carer, holding an invitation for 17 March, are told of 24 March.
    assert_eq!(
        sent_to(&p, "review_invitations", "moved"),
        vec![
            ("2027-01-29 11:00".to_string(), "carer".to_string()),
            ("2027-01-29 11:00".to_string(), "parent".to_string()),
            ("2027-02-03 11:00".to_string(), "carer".to_string()),
            ("2027-02-03 11:00".to_string(), "parent".to_string())
        ]
    );
    let last = going(&p)
        .filter(|n| n.rule == "review_invitations" && n.step == "moved")
        .max_by_key(|n| n.send_at)
        .unwrap();
    assert_eq!(
        last.replaces.as_ref().and_then(|r| r.at),
        Some(t("2027-03-17T14:00:00Z"))
    );
    assert!(
        rendered(&c, last).contains("Wednesday 24 March 2027 at 14:00"),
        "{}",
        rendered(&c, last)
    );
}

#[test]
fn a_review_moved_then_cancelled_after_its_invitations_went_tells_everyone_invited() {
    let c = config();
    // Issue 14, 2: "A review cancelled after invitations went out: everyone invited is told it
    // is cancelled." Here it was moved to 17 March first (everyone re-invited), then cancelled.
    let mut events = booked(&c);
    events.push(moved(
        &c,
        "move1",
        "2027-01-29T11:00:00Z",
        "R1",
        "2027-03-17T14:00:00Z",
    ));
    events.push(cancelled(&c, "cancel", "2027-02-03T11:00:00Z", "R1"));
    let p = plan(&c, &events, "2027-03-25T12:00:00Z");
    assert_eq!(
        sent_to(&p, "review_invitations", "moved").len(),
        2,
        "re-invited for 17 March"
    );
    assert_eq!(
        sent_to(&p, "review_invitations", "cancelled"),
        vec![
            ("2027-02-03 11:00".to_string(), "carer".to_string()),
            ("2027-02-03 11:00".to_string(), "parent".to_string())
        ]
    );
}

#[test]
fn a_review_moved_and_cancelled_the_same_evening_is_not_reinvited_after_the_cancellation() {
    let c = config();
    // Invitations for 10 February went on 27 January. On Friday 29 January at 17:30 the review
    // is moved to 12 February; at 18:00 it is cancelled. The new invitations would only go on
    // Monday at 09:00, after the cancellation: they must not go, and those invited are told it
    // is cancelled.
    let mut events = booked(&c);
    events.push(moved(
        &c,
        "move",
        "2027-01-29T17:30:00Z",
        "R1",
        "2027-02-12T14:00:00Z",
    ));
    events.push(cancelled(&c, "cancel", "2027-01-29T18:00:00Z", "R1"));
    let p = plan(&c, &events, "2027-02-20T12:00:00Z");
    let mut after: Vec<(String, String, String)> = going(&p)
        .filter(|n| n.rule == "review_invitations" && n.send_at > t("2027-01-29T18:00:00Z"))
        .map(|n| (local(n), n.step.clone(), n.recipient.label()))
        .collect();
    after.sort();
    assert_eq!(
        after,
        vec![
            (
                "2027-02-01 09:00".to_string(),
                "cancelled".to_string(),
                "carer".to_string()
            ),
            (
                "2027-02-01 09:00".to_string(),
                "cancelled".to_string(),
                "parent".to_string()
            )
        ],
        "a new invitation for a cancelled meeting, and no word of the cancellation"
    );
}

#[test]
fn a_participant_added_without_a_new_date_is_invited_and_nobody_is_told_the_meeting_moved() {
    let c = config();
    // Invitations for 10 February went on 27 January. On 1 February the case system sends the
    // booking again (`review_rescheduled`, the vocabulary's only way to change the list) with
    // the same time and a grandparent added. Issue 14, 2: "people added to the participants are
    // invited too"; nothing moved, so nobody should be told that it did.
    let mut events = booked(&c);
    events.push(ev(
        &c,
        "add",
        "review_rescheduled",
        "2027-02-01T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-10T14:00:00Z",
               "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer"), ("Grand Parent", "grandparent")])}),
    ));
    let p = plan(&c, &events, "2027-02-02T12:00:00Z");
    let late_invite: Vec<(String, String, bool)> = going(&p)
        .filter(|n| n.rule == "review_invitations" && n.step == "at deadline")
        .filter(|n| n.recipient.label() == "grandparent")
        .map(|n| (local(n), n.recipient.label(), n.late))
        .collect();
    assert_eq!(
        late_invite,
        vec![(
            "2027-02-01 10:00".to_string(),
            "grandparent".to_string(),
            true
        )]
    );
    let told_moved: Vec<String> = going(&p)
        .filter(|n| n.rule == "review_invitations" && n.step == "moved")
        .map(|n| {
            format!(
                "{} to {}: {}",
                local(n),
                n.recipient.label(),
                rendered(&c, n)
            )
        })
        .collect();
    assert!(
        told_moved.is_empty(),
        "told the meeting moved when it did not:\n{}",
        told_moved.join("\n")
    );
}

#[test]
fn a_review_moved_before_its_invitations_went_invites_once_for_the_new_date() {
    let c = config();
    let mut events = booked(&c);
    // Moved on Wednesday 20 January, before the invitations were due (27 January), to 24 February.
    events.push(moved(
        &c,
        "move",
        "2027-01-20T10:00:00Z",
        "R1",
        "2027-02-24T14:00:00Z",
    ));
    let p = plan(&c, &events, "2027-02-25T12:00:00Z");
    let second = invitations_due("2027-02-24");
    assert_eq!(
        sent_to(&p, "review_invitations", "at deadline"),
        vec![
            (nine(second), "carer".to_string()),
            (nine(second), "parent".to_string())
        ]
    );
    assert!(sent_to(&p, "review_invitations", "moved").is_empty());
    assert_eq!(
        sent_to(&p, "review_invitations", "reminder -2 working days"),
        vec![(
            nine(last_open(count(second, -2, working_day))),
            "review_administrator".to_string()
        )]
    );
    let inv = obligation(&p, "review_invitations");
    assert_eq!((inv.due, inv.state), (second, S::Met));
    // The IRO, social worker and administrators are told of the move.
    assert_eq!(
        sent_to(&p, "review_rescheduled_notice", "notice"),
        vec![
            ("2027-01-20 10:00".to_string(), "iro".to_string()),
            (
                "2027-01-20 10:00".to_string(),
                "review_administrator".to_string()
            ),
            ("2027-01-20 10:00".to_string(), "social_worker".to_string())
        ]
    );
}

#[test]
fn a_review_moved_closer_after_its_invitations_went_reinvites_at_once_and_is_met_late() {
    let c = config();
    // Booked for Wednesday 24 February, invitations on 10 February; on Friday 12 February it
    // is brought forward to five working days later, too close for ten working days' notice.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-24T14:00:00Z",
    ));
    let first = invitations_due("2027-02-24");
    let closer = wd("2027-02-12", 5);
    events.push(moved(
        &c,
        "move",
        "2027-02-12T10:00:00Z",
        "R1",
        &format!("{closer}T14:00:00Z"),
    ));
    let p = plan(&c, &events, "2027-02-13T12:00:00Z");
    assert_eq!(
        sent_to(&p, "review_invitations", "at deadline"),
        vec![
            (nine(first), "carer".to_string()),
            (nine(first), "parent".to_string())
        ]
    );
    assert_eq!(
        sent_to(&p, "review_invitations", "moved"),
        vec![
            ("2027-02-12 10:00".to_string(), "carer".to_string()),
            ("2027-02-12 10:00".to_string(), "parent".to_string())
        ]
    );
    let inv = obligation(&p, "review_invitations");
    let due = invitations_due(&closer.to_string());
    assert_eq!(inv.due, due);
    assert_eq!(inv.state, S::MetLate);
    assert_eq!(inv.working_days_late, Some(late(due, d("2027-02-12"))));
}

#[test]
fn papers_that_reach_the_iro_after_the_meeting_are_not_done_before_it() {
    let c = config();
    // Issue 14, 2: preparation obligations "end when the meeting is held: met, met late, or
    // recorded as not done before the meeting". The meeting is on Wednesday 10 February at
    // 14:00; the papers and the consultation come on Thursday 11 February, after it.
    let mut events = booked(&c);
    events.push(ev(
        &c,
        "papers",
        "reports_submitted",
        "2027-02-11T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    events.push(ev(
        &c,
        "consulted",
        "social_worker_consulted",
        "2027-02-11T10:30:00Z",
        json!({"review_id": "R1"}),
    ));
    // Recorded the evening of the meeting: not done before it.
    let mut same_day = events.clone();
    same_day.push(held(
        &c,
        "held",
        "R1",
        "2027-02-10T17:00:00Z",
        "2027-02-10T14:00:00Z",
    ));
    let p = plan(&c, &same_day, "2027-03-01T12:00:00Z");
    assert_eq!(obligation(&p, "papers_to_iro").state, S::NotDone);
    assert_eq!(
        obligation(&p, "social_worker_consultation").state,
        S::NotDone
    );
    // The same meeting recorded on Friday 12 February: the papers still came after it.
    events.push(held(
        &c,
        "held",
        "R1",
        "2027-02-12T10:00:00Z",
        "2027-02-10T14:00:00Z",
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert_eq!(obligation(&p, "papers_to_iro").state, S::NotDone);
    assert_eq!(
        obligation(&p, "social_worker_consultation").state,
        S::NotDone
    );
}

#[test]
fn an_empty_invitation_list_is_not_met_and_the_administrators_are_told() {
    let c = config();
    // Issue 14, 2: "An invitation obligation with nobody to invite is not 'met': the review
    // administrator is told that nobody is on the invitation list." Here the list is sent,
    // empty.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "book",
        "review_scheduled",
        "2027-01-11T10:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-10T14:00:00Z", "participants": []}),
    ));
    let due = invitations_due("2027-02-10");
    let p = plan(&c, &events, "2027-02-01T12:00:00Z");
    assert_eq!(obligation(&p, "review_invitations").state, S::Overdue);
    assert_eq!(
        sent_to(&p, "review_invitations", "nobody to send to"),
        vec![(nine(due), "review_administrator".to_string())]
    );
    // Held with nobody ever invited: not done, not met.
    events.push(held(
        &c,
        "held",
        "R1",
        "2027-02-10T17:00:00Z",
        "2027-02-10T14:00:00Z",
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert_eq!(obligation(&p, "review_invitations").state, S::NotDone);
}

#[test]
fn a_review_cancelled_during_proceedings_is_told_to_the_guardian_and_legal_adviser() {
    let c = config();
    // Seed 002 s.4: "The Children's Guardian should be advised of each review meeting and
    // invited"; issue 14, 2: a review cancelled after invitations went out, everyone invited
    // is told. driftwatch tells them of a move (proceedings_review_moved_notice).
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(proceedings(&c, "2026-11-10T10:00:00Z"));
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    events.push(cancelled(&c, "cancel", "2027-02-03T11:00:00Z", "R1"));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert_eq!(
        sent_to(&p, "proceedings_review_notice", "notice"),
        vec![
            ("2027-01-11 10:00".to_string(), "guardian".to_string()),
            ("2027-01-11 10:00".to_string(), "legal_adviser".to_string())
        ]
    );
    // The parent and the carer are told of the cancellation; so must the guardian and the
    // legal adviser be.
    assert_eq!(sent_to(&p, "review_invitations", "cancelled").len(), 2);
    let mut told: Vec<(String, String)> = going(&p)
        .filter(|n| n.send_at >= t("2027-02-03T11:00:00Z"))
        .filter(|n| matches!(n.recipient.label().as_str(), "guardian" | "legal_adviser"))
        .map(|n| (local(n), n.recipient.label()))
        .collect();
    told.sort();
    assert_eq!(
        told,
        vec![
            ("2027-02-03 11:00".to_string(), "guardian".to_string()),
            ("2027-02-03 11:00".to_string(), "legal_adviser".to_string())
        ],
        "the guardian and legal adviser hear nothing of the cancellation"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Care proceedings

#[test]
fn a_review_booked_and_moved_before_proceedings_is_told_at_its_new_time() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2026-12-01T10:00:00Z",
        "R2",
        "2027-02-10T14:00:00Z",
    ));
    events.push(moved(
        &c,
        "move",
        "2027-01-05T10:00:00Z",
        "R2",
        "2027-02-17T14:00:00Z",
    ));
    events.push(proceedings(&c, "2027-01-12T15:00:00Z"));
    let p = plan(&c, &events, "2027-01-13T12:00:00Z");
    let told: Vec<&Notification> = going(&p)
        .filter(|n| n.rule == "proceedings_reviews_ahead_notice")
        .collect();
    assert_eq!(
        when_who(&told),
        vec![
            ("2027-01-12 15:00".to_string(), "guardian".to_string()),
            ("2027-01-12 15:00".to_string(), "legal_adviser".to_string())
        ]
    );
    let text = rendered(&c, told[0]);
    assert!(
        text.contains("Wednesday 17 February 2027 at 14:00"),
        "{text}"
    );
}

#[test]
fn proceedings_begun_while_the_child_was_at_home_give_the_legal_adviser_the_iros_details_on_return()
{
    let c = config();
    // Seed 002 s.1: the IRO "should continue as the IRM if a child returns to care"; s.4: "As
    // soon as the IRM has been appointed to a child subject to proceedings: the IRM should
    // provide the Local Authority legal adviser with the name of the IRM". Issue 14, 3: "as
    // soon as both are known". Accommodated under section 20, home on 5 January 2027,
    // proceedings issued on 1 February while at home, back in care under an interim care order
    // on 8 February with the same IRO.
    let mut events = in_care_on(&c, "2026-11-02T09:00:00Z", "s20");
    events.push(ev(
        &c,
        "home",
        "ceased_looked_after",
        "2027-01-05T12:00:00Z",
        json!({}),
    ));
    events.push(proceedings(&c, "2027-02-01T10:00:00Z"));
    events.push(ev(
        &c,
        "ico",
        "child_looked_after",
        "2027-02-08T10:00:00Z",
        json!({"start": "2027-02-08T10:00:00Z", "legal_basis": "s38", "date_of_birth": "2015-06-01"}),
    ));
    let p = plan(&c, &events, "2027-02-10T12:00:00Z");
    assert!(p.status.looked_after);
    assert_eq!(
        p.status.iro.as_ref().map(|i| i.email.as_str()),
        Some("ira.reviewer@council.example")
    );
    let details: Vec<(String, String)> = going(&p)
        .filter(|n| n.template == "iro_details")
        .map(|n| (local(n), n.recipient.label()))
        .collect();
    assert_eq!(
        details,
        vec![("2027-02-08 10:00".to_string(), "legal_adviser".to_string())],
        "the legal adviser is never given the IRO's details"
    );
}

#[test]
fn the_same_iro_allocated_again_is_not_a_change_of_iro() {
    let c = config();
    // Issue 14, 3: the legal adviser is given the IRO's details "again when the IRO changes".
    // The case system sends the allocation of the same IRO again on 5 January 2027 (a
    // correction of the record); nothing changed.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(proceedings(&c, "2026-11-10T10:00:00Z"));
    events.push(ev(
        &c,
        "iro-again",
        "iro_allocated",
        "2027-01-05T10:00:00Z",
        json!({"iro": contact("Ira Reviewer")}),
    ));
    let p = plan(&c, &events, "2027-01-06T12:00:00Z");
    let details: Vec<(String, String)> = going(&p)
        .filter(|n| n.template == "iro_details")
        .map(|n| (local(n), n.rule.clone()))
        .collect();
    assert_eq!(
        details,
        vec![(
            "2026-11-10 10:00".to_string(),
            "iro_details_to_legal_adviser".to_string()
        )],
        "told of the same IRO twice"
    );
    // Telling the child of their IRO was due five working days after the allocation and is
    // overdue; the repeated allocation does not move that deadline later.
    let told = all(&p, "child_told_of_iro");
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].due, wd("2026-11-02", 5));
    assert_eq!(told[0].state, S::Overdue);
}

#[test]
fn after_proceedings_end_the_guardian_hears_of_no_more_reviews_or_records() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(proceedings(&c, "2026-11-10T10:00:00Z"));
    events.push(ev(
        &c,
        "ended",
        "proceedings_ended",
        "2026-12-01T10:00:00Z",
        json!({}),
    ));
    events.push(review(
        &c,
        "book",
        "2027-01-11T10:00:00Z",
        "R1",
        "2027-02-10T14:00:00Z",
    ));
    events.push(held(
        &c,
        "held",
        "R1",
        "2027-02-10T17:00:00Z",
        "2027-02-10T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-02-20T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert!(
        going(&p)
            .filter(|n| n.send_at > t("2026-12-01T10:00:00Z"))
            .all(|n| !matches!(n.recipient.label().as_str(), "guardian" | "legal_adviser")),
        "{:#?}",
        p.notifications
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Periods of care

#[test]
fn section_20_ending_within_24_hours_opens_nothing_and_a_return_counts_from_its_own_start() {
    let c = config();
    // Seed 000: "When a child is accommodated under Section 20, the child's status as a child
    // looked after does not commence until a continuous period of 24 hours has passed."
    // Accommodated on Monday 1 February 2027 at 10:00, home at 20:00 the same day.
    let mut events = vec![
        ev(
            &c,
            "lac1",
            "child_looked_after",
            "2027-02-01T10:00:00Z",
            json!({"start": "2027-02-01T10:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}),
        ),
        ev(
            &c,
            "home",
            "ceased_looked_after",
            "2027-02-01T20:00:00Z",
            json!({}),
        ),
    ];
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    assert_eq!(
        p.obligations
            .iter()
            .map(|o| (o.rule.as_str(), o.state))
            .collect::<Vec<_>>(),
        vec![("section20_status_begins", S::Cancelled)]
    );
    assert!(p.notifications.is_empty(), "{:#?}", p.notifications);
    // Accommodated again on Monday 8 February at 10:00, and this time staying: looked after
    // from 10:00 on Tuesday 9 February.
    events.push(ev(
        &c,
        "lac2",
        "child_looked_after",
        "2027-02-08T10:00:00Z",
        json!({"start": "2027-02-08T10:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}),
    ));
    let p = plan(&c, &events, "2027-02-10T12:00:00Z");
    assert_eq!(obligation(&p, "first_review").due, wd("2027-02-09", 20));
    assert_eq!(obligation(&p, "iro_service_told").due, wd("2027-02-09", 2));
    assert_eq!(obligation(&p, "iro_allocation").due, wd("2027-02-09", 5));
}

#[test]
fn a_care_order_within_the_first_24_hours_of_section_20_starts_looked_after_status_at_once() {
    let c = config();
    // Children Act 1989 s.22(1): a child "in their care" (a care order, interim included) is
    // looked after; one accommodated under section 20 only after 24 hours. Accommodated on
    // Monday 1 February 2027 at 10:00; an interim care order is made at 15:00 the same day.
    let events = vec![
        ev(
            &c,
            "lac",
            "child_looked_after",
            "2027-02-01T10:00:00Z",
            json!({"start": "2027-02-01T10:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}),
        ),
        ev(
            &c,
            "ico",
            "legal_status_changed",
            "2027-02-01T15:00:00Z",
            json!({"legal_basis": "s38"}),
        ),
    ];
    let p = plan(&c, &events, "2027-02-03T12:00:00Z");
    assert_eq!(wd("2027-02-01", 20), d("2027-03-01"));
    assert_eq!(
        obligation(&p, "first_review").due,
        wd("2027-02-01", 20),
        "looked after from the order at 15:00 on 1 February, not 24 hours after the start"
    );
}

#[test]
fn duties_done_in_the_first_24_hours_of_section_20_count() {
    let c = config();
    // Seed 000: the IRO service told within two working days and an IRO appointed within five
    // working days of the child becoming looked after, which under section 20 is 24 hours after
    // the start; seed 004: a care plan "within 10 days of becoming looked after - if not
    // before". Accommodated on Monday 1 February 2027 at 10:00; the council tells the IRO
    // service at 14:00, allocates an IRO at 15:00 and has a care plan at 16:00, all before the
    // 24 hours are up (looked after from 10:00 on Tuesday).
    let mut events = vec![
        ev(
            &c,
            "lac",
            "child_looked_after",
            "2027-02-01T10:00:00Z",
            json!({"start": "2027-02-01T10:00:00Z", "legal_basis": "s20", "date_of_birth": "2015-06-01"}),
        ),
        ev(
            &c,
            "told",
            "iro_service_notified",
            "2027-02-01T14:00:00Z",
            json!({}),
        ),
        ev(
            &c,
            "iro",
            "iro_allocated",
            "2027-02-01T15:00:00Z",
            json!({"iro": contact("Ira Reviewer")}),
        ),
        ev(
            &c,
            "plan",
            "care_plan_updated",
            "2027-02-01T16:00:00Z",
            json!({}),
        ),
    ];
    let p = plan(&c, &events, "2027-02-22T12:00:00Z");
    let states: Vec<(&str, S)> = ["iro_service_told", "iro_allocation", "care_plan_in_place"]
        .into_iter()
        .map(|r| (r, obligation(&p, r).state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("iro_service_told", S::Met),
            ("iro_allocation", S::Met),
            ("care_plan_in_place", S::Met)
        ]
    );
    assert!(
        to_role(&p, "iro_allocation", "head_of_service").is_empty(),
        "the head of service is told no IRO is allocated"
    );

    // Under a care order the child is looked after from the start; an IRO allocated in the same
    // minute is allocated in time.
    events = in_care(&c, "2027-02-01T09:00:00Z");
    let p = plan(&c, &events, "2027-02-22T12:00:00Z");
    assert_eq!(obligation(&p, "iro_allocation").state, S::Met);
}

#[test]
fn a_decision_carried_out_before_it_formally_became_one_does_not_drift() {
    let c = config();
    // Seed 004: recommendations "become decisions after a further 5 working days"; seed 002
    // s.5 and seed 001: drift is a decision not carried out in its timescale. The
    // recommendation of 8 January 2027 (due 29 January) is carried out on 12 January, before
    // it became a decision at the end of 15 January.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "recs",
        "recommendations_issued",
        "2027-01-08T12:00:00Z",
        json!({"review_id": "R1", "recommendations": [{"id": "R1-1", "owner": contact("Sam Social"), "due": "2027-01-29"}]}),
    ));
    events.push(ev(
        &c,
        "done",
        "decision_completed",
        "2027-01-12T10:00:00Z",
        json!({"recommendation_id": "R1-1"}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    let escalated: Vec<(String, String)> = going(&p)
        .filter(|n| n.rule == "decision_carried_out" && n.kind == K::Escalation)
        .map(|n| (local(n), n.title.clone().unwrap_or_default()))
        .collect();
    assert!(
        escalated.is_empty(),
        "a decision done on 12 January climbs the dispute-resolution ladder: {escalated:#?}"
    );
    assert_ne!(obligation(&p, "decision_carried_out").state, S::Overdue);
}

#[test]
fn nothing_is_opened_or_sent_for_events_while_the_child_is_out_of_care() {
    let c = config();
    // Issue 14, 4: "After the child ceases to be looked after, no event opens an obligation or
    // sends a message about that period ... until the child becomes looked after again."
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    let left = "2027-01-05T12:00:00Z";
    events.push(ev(&c, "left", "ceased_looked_after", left, json!({})));
    events.push(review(
        &c,
        "book",
        "2027-01-06T10:00:00Z",
        "R5",
        "2027-02-10T10:00:00Z",
    ));
    events.push(ev(
        &c,
        "sig",
        "significant_event",
        "2027-01-07T21:00:00Z",
        json!({"kind": "health_event", "occurred_at": "2027-01-07T20:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "iro2",
        "iro_allocated",
        "2027-01-08T10:00:00Z",
        json!({"iro": contact("Nora Newiro")}),
    ));
    events.push(ev(
        &c,
        "order",
        "legal_status_changed",
        "2027-01-08T11:00:00Z",
        json!({"legal_basis": "s31"}),
    ));
    events.push(proceedings(&c, "2027-01-11T10:00:00Z"));
    events.push(ev(
        &c,
        "recs",
        "recommendations_issued",
        "2027-01-11T12:00:00Z",
        json!({"review_id": "R4", "recommendations": [{"id": "R4-1", "owner": contact("Sam Social"), "due": "2027-01-29"}]}),
    ));
    events.push(held(
        &c,
        "held",
        "R5",
        "2027-02-10T12:00:00Z",
        "2027-02-10T10:00:00Z",
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    let after: Vec<_> = going(&p)
        .filter(|n| n.send_at >= t(left))
        .map(|n| (n.rule.clone(), n.step.clone()))
        .collect();
    assert!(after.is_empty(), "{after:#?}");
    assert!(
        p.obligations.iter().all(|o| o.opened_at < t(left)),
        "{:#?}",
        p.obligations
    );
    assert!(!p.status.looked_after);
}

#[test]
fn nothing_about_a_period_goes_after_it_ended_not_even_a_new_invitation() {
    let c = config();
    // Issue 14, 4; docs/rules.md: "A notice that would only have gone out after the period
    // ended is not sent." Invitations for 10 February went on 27 January; on Friday 29 January
    // at 17:30 the review is moved to 12 February (the new invitations would go on Monday at
    // 09:00); on Saturday 30 January the child ceases to be looked after.
    let mut events = booked(&c);
    events.push(moved(
        &c,
        "move",
        "2027-01-29T17:30:00Z",
        "R1",
        "2027-02-12T14:00:00Z",
    ));
    let left = "2027-01-30T10:00:00Z";
    events.push(ev(&c, "left", "ceased_looked_after", left, json!({})));
    let p = plan(&c, &events, "2027-02-20T12:00:00Z");
    // The IRO, social worker and administrators' notice of the move is held back ...
    assert!(sent_to(&p, "review_rescheduled_notice", "notice").is_empty());
    // ... and so is everything else about the period.
    let after: Vec<(String, String, String, String)> = going(&p)
        .filter(|n| n.send_at >= t(left))
        .map(|n| {
            (
                local(n),
                n.rule.clone(),
                n.step.clone(),
                n.recipient.label(),
            )
        })
        .collect();
    assert!(after.is_empty(), "sent after the period ended: {after:#?}");
}

#[test]
fn a_review_booked_in_an_earlier_period_of_care_is_not_announced_when_proceedings_start_later() {
    let c = config();
    // A review was booked for 24 February 2027 in the first period of care; the child left care
    // on 5 January (its preparation was cancelled with the period) and returned on 1 February;
    // proceedings start on 8 February. Issue 14, 3 asks for "every review already booked and
    // still ahead": a booking that lapsed with the earlier period is not one (driftwatch sends
    // it no invitations, papers or reminders).
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(review(
        &c,
        "book",
        "2026-12-01T10:00:00Z",
        "R2",
        "2027-02-24T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "left",
        "ceased_looked_after",
        "2027-01-05T12:00:00Z",
        json!({}),
    ));
    events.push(ev(
        &c,
        "back",
        "child_looked_after",
        "2027-02-01T09:00:00Z",
        json!({"start": "2027-02-01T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}),
    ));
    events.push(proceedings(&c, "2027-02-08T10:00:00Z"));
    let p = plan(&c, &events, "2027-02-09T12:00:00Z");
    // Nothing prepares R2 in the new period ...
    assert!(
        all(&p, "review_invitations")
            .iter()
            .all(|o| o.state == S::Cancelled)
    );
    // ... so the guardian is not told of it as a review still ahead.
    assert!(
        sent_to(&p, "proceedings_reviews_ahead_notice", "notice").is_empty(),
        "{:?}",
        sent_to(&p, "proceedings_reviews_ahead_notice", "notice")
    );
}

#[test]
fn the_iro_is_told_of_a_section_20_discharge_recorded_at_the_moment_care_ends() {
    let c = config();
    // Seed 002 s.5: the social worker must inform the IRO of "Discharge from care by a person
    // with parental responsibility when the child is section 20 Accommodated"; issue 14, 5:
    // "No notice is ever dropped silently". The case system records the discharge and the end
    // of care with the same time, Wednesday 3 March 2027 at 18:00, in either order of ids.
    for (sig_id, left_id) in [("a-discharge", "b-left"), ("b-discharge", "a-left")] {
        let mut events = in_care_on(&c, "2027-02-01T09:00:00Z", "s20");
        events.push(ev(
            &c,
            sig_id,
            "significant_event",
            "2027-03-03T18:00:00Z",
            json!({"kind": "discharge_from_care_s20", "occurred_at": "2027-03-03T18:00:00Z"}),
        ));
        events.push(ev(
            &c,
            left_id,
            "ceased_looked_after",
            "2027-03-03T18:00:00Z",
            json!({}),
        ));
        let p = plan(&c, &events, "2027-03-03T18:30:00Z");
        assert_eq!(
            to_role(&p, "significant_event_notice", "iro"),
            vec![("2027-03-03 18:00".to_string(), "notice".to_string())],
            "ids {sig_id}, {left_id}: the IRO is not told of the discharge"
        );
    }
}

#[test]
fn a_corrected_record_of_the_same_review_is_not_a_second_review() {
    let c = config();
    // Seed 004: the second review "within 3 months" of the first, "thereafter at 6 monthly
    // intervals"; issue 14, 4: reviews are counted within the period of care. The first review
    // is held on 28 January 2027; the case system corrects its time the next morning (a second
    // `review_held` for the same review R1).
    let mut events = in_care(&c, "2027-01-04T09:00:00Z");
    events.push(held(
        &c,
        "held",
        "R1",
        "2027-01-28T16:00:00Z",
        "2027-01-28T14:00:00Z",
    ));
    events.push(held(
        &c,
        "held-fix",
        "R1",
        "2027-01-29T09:00:00Z",
        "2027-01-28T15:00:00Z",
    ));
    let p = plan(&c, &events, "2027-02-01T12:00:00Z");
    assert_eq!(obligation(&p, "first_review").state, S::Met);
    let second = all(&p, "second_review");
    assert_eq!(
        second.iter().map(|o| (o.due, o.state)).collect::<Vec<_>>(),
        vec![(d("2027-04-28"), S::Open)],
        "one review counted twice"
    );
    assert!(all(&p, "later_review").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. Nothing urgent dropped; nobody missed

#[test]
fn a_notice_for_the_iro_before_one_is_allocated_goes_to_the_iro_manager_in_working_hours() {
    let c = config();
    let mut events = in_care(&c, "2027-02-01T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    // A care order on Saturday 6 February 2027: not urgent, so Monday at 09:00, to the IRO
    // manager standing in for the IRO.
    events.push(ev(
        &c,
        "order",
        "legal_status_changed",
        "2027-02-06T10:00:00Z",
        json!({"legal_basis": "s31"}),
    ));
    let p = plan(&c, &events, "2027-02-08T12:00:00Z");
    let n: Vec<&Notification> = notes(&p, "legal_status_change_notice", K::Notice);
    assert_eq!(
        when_who(&n),
        vec![("2027-02-08 09:00".to_string(), "iro_manager".to_string())]
    );
    assert_eq!(n[0].instead_of.as_deref(), Some("iro"));
}

#[test]
fn a_reminder_nobody_can_receive_is_kept_as_an_error() {
    let c = config();
    // No social worker or team manager allocated, and no fallback for them: the care plan
    // reminder (three working days before 11 February 2027) is addressed to nobody, an error.
    let mut events = in_care(&c, "2027-02-01T09:00:00Z");
    events.retain(|e| e.kind != "social_worker_allocated");
    let p = plan(&c, &events, "2027-02-09T12:00:00Z");
    let reminder: Vec<&Notification> = notes(&p, "care_plan_in_place", K::Reminder);
    assert_eq!(reminder.len(), 1, "{reminder:#?}");
    assert!(matches!(reminder[0].recipient, Target::Nobody { .. }));
    assert_eq!(local(reminder[0]), nine(wd("2027-02-11", -3)));
    assert!(
        p.problems
            .iter()
            .any(|m| m.starts_with("error:") && m.contains("care_plan_in_place")),
        "{:?}",
        p.problems
    );
}

#[test]
fn a_review_record_for_a_family_nobody_listed_is_not_dropped_silently() {
    let c = config();
    // Seed 000: "A copy of Review Minutes are also provided to families"; issue 14, 5: "No
    // notice is ever dropped silently; where no recipient can be found at all, that is an error
    // on the dashboard and in the log." The review was recorded as held with nobody listed as
    // invited.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(held(
        &c,
        "held",
        "R1",
        "2027-02-10T17:00:00Z",
        "2027-02-10T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "rec",
        "record_distributed",
        "2027-02-26T10:00:00Z",
        json!({"review_id": "R1"}),
    ));
    let p = plan(&c, &events, "2027-03-01T12:00:00Z");
    let family: Vec<&Notification> = notes(&p, "record_to_family", K::Notice);
    let error = p
        .problems
        .iter()
        .any(|m| m.starts_with("error:") && m.contains("record_to_family"));
    assert!(
        error
            || family
                .iter()
                .any(|n| !matches!(n.recipient, Target::Email { .. })),
        "record_to_family found nobody and said so only as {:?}",
        p.problems
    );
}

#[test]
fn a_new_social_worker_gets_the_reminder_that_applies_now() {
    let c = config();
    // Issue 14, 5: "Someone who joins a case late ... gets the step of each open obligation
    // that applies now." Papers for the 10 February 2027 review are due on 5 February; the
    // five-working-day reminder went to Sam on 29 January; Sally takes the case on 1 February.
    let mut events = booked(&c);
    let papers = wd("2027-02-10", -3);
    let reminder = nine(count(papers, -5, working_day));
    events.push(ev(
        &c,
        "sw2",
        "social_worker_allocated",
        "2027-02-01T10:00:00Z",
        json!({"social_worker": contact("Sally New"), "team_manager": contact("Tara Manager")}),
    ));
    let p = plan(&c, &events, "2027-02-02T12:00:00Z");
    let steps: Vec<(String, Option<String>, bool)> = going(&p)
        .filter(|n| n.rule == "papers_to_iro" && n.step == "reminder -5 working days")
        .map(|n| match &n.recipient {
            Target::Email { email, .. } => (local(n), Some(email.clone()), n.late),
            _ => (local(n), None, n.late),
        })
        .collect();
    assert!(
        steps.contains(&(
            reminder,
            Some("sam.social@council.example".to_string()),
            false
        )),
        "{steps:#?}"
    );
    assert!(
        steps.contains(&(
            "2027-02-01 10:00".to_string(),
            Some("sally.new@council.example".to_string()),
            true
        )),
        "{steps:#?}"
    );
    // The team manager did not change and is not told twice.
    assert_eq!(
        steps
            .iter()
            .filter(|s| s.1.as_deref() == Some("tara.manager@council.example"))
            .count(),
        1
    );
}

#[test]
fn an_iro_allocated_late_gets_the_step_of_each_open_obligation() {
    let c = config();
    // Looked after on Monday 1 February 2027, no IRO; a placement disruption on 2 February
    // asks the IRO to decide on an early review within five working days (by 9 February). The
    // IRO manager stands in; the IRO is allocated on Thursday 11 February at 10:00.
    let mut events = in_care(&c, "2027-02-01T09:00:00Z");
    events.retain(|e| e.kind != "iro_allocated");
    events.push(ev(
        &c,
        "sig",
        "significant_event",
        "2027-02-02T10:00:00Z",
        json!({"kind": "placement_disruption", "occurred_at": "2027-02-02T09:00:00Z"}),
    ));
    events.push(ev(
        &c,
        "iro",
        "iro_allocated",
        "2027-02-11T10:00:00Z",
        json!({"iro": contact("Ira Reviewer")}),
    ));
    let p = plan(&c, &events, "2027-02-11T12:00:00Z");
    let joined: Vec<(String, String, String)> = going(&p)
        .filter(|n| n.recipient.label() == "iro" && n.late)
        .map(|n| (local(n), n.rule.clone(), n.step.clone()))
        .collect();
    assert!(
        joined.contains(&(
            "2027-02-11 10:00".to_string(),
            "first_review".to_string(),
            "reminder -15 working days".to_string()
        )),
        "{joined:#?}"
    );
    let early = wd("2027-02-02", 5);
    assert!(nine(next_open(count(early, 1, working_day))).as_str() < "2027-02-11 10:00");
    assert!(
        joined.contains(&(
            "2027-02-11 10:00".to_string(),
            "early_review_considered".to_string(),
            "escalation 1 working day".to_string()
        )),
        "{joined:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Seed duties

#[test]
fn a_permanence_plan_identified_at_the_first_review_counts() {
    let c = config();
    // Seed 001: "being satisfied that plans for permanency have been identified by the second
    // review". The plan is identified at the first review (28 January 2027, 14:00), recorded at
    // 14:30; the review itself is recorded at 16:00.
    let mut events = in_care(&c, "2027-01-04T09:00:00Z");
    events.push(ev(
        &c,
        "perm",
        "permanence_plan_identified",
        "2027-01-28T14:30:00Z",
        json!({}),
    ));
    events.push(held(
        &c,
        "h1",
        "R1",
        "2027-01-28T16:00:00Z",
        "2027-01-28T14:00:00Z",
    ));
    events.push(held(
        &c,
        "h2",
        "R2",
        "2027-04-20T15:00:00Z",
        "2027-04-20T14:00:00Z",
    ));
    let p = plan(&c, &events, "2027-05-01T12:00:00Z");
    assert_eq!(
        obligation(&p, "permanence_plan").state,
        S::Met,
        "identified by the second review, recorded as not done"
    );
}

#[test]
fn the_iro_meets_the_child_before_the_second_review_too_and_a_move_moves_the_deadline() {
    let c = config();
    let mut events = in_care(&c, "2027-01-04T09:00:00Z");
    events.push(review(
        &c,
        "b1",
        "2027-01-05T10:00:00Z",
        "R1",
        "2027-01-27T14:00:00Z",
    ));
    events.push(ev(
        &c,
        "met1",
        "iro_met_child",
        "2027-01-21T10:00:00Z",
        json!({"review_id": "R1", "met_on": "2027-01-20"}),
    ));
    events.push(held(
        &c,
        "h1",
        "R1",
        "2027-01-27T16:00:00Z",
        "2027-01-27T14:00:00Z",
    ));
    // The second review, booked for 21 April at 14:00 (British Summer Time), moved on 1 April
    // to 28 April.
    events.push(review(
        &c,
        "b2",
        "2027-03-01T10:00:00Z",
        "R2",
        "2027-04-21T13:00:00Z",
    ));
    events.push(moved(
        &c,
        "m2",
        "2027-04-01T10:00:00Z",
        "R2",
        "2027-04-28T13:00:00Z",
    ));
    let p = plan(&c, &events, "2027-04-02T12:00:00Z");
    let meet = all(&p, "iro_meets_child");
    assert_eq!(
        meet.iter()
            .map(|o| (o.key.clone().unwrap(), o.state))
            .collect::<Vec<_>>(),
        vec![("R1".to_string(), S::Met), ("R2".to_string(), S::Open)]
    );
    assert_eq!(meet[1].due, d("2027-04-28"));
    assert_eq!(meet[1].deadline, t("2027-04-28T13:00:00Z"));
    assert_eq!(meet[1].due_time.as_deref(), Some("14:00"));
    let reminders: Vec<(String, String)> = going(&p)
        .filter(|n| n.obligation.as_deref() == Some("iro_meets_child/R2/1"))
        .filter(|n| n.send_at > t("2027-04-01T10:00:00Z"))
        .map(|n| (local(n), n.recipient.label()))
        .collect();
    assert_eq!(
        reminders,
        vec![(nine(last_open(wd("2027-04-28", -5))), "iro".to_string())]
    );
}

#[test]
fn school_hours_are_read_in_london_time_for_every_child_of_compulsory_school_age() {
    let c = config();
    // Seed 004: "Reviews for school age children should be held outside of school hours."
    // Born 1 June 2015 (aged 12 in June 2027). Wednesday 9 June 2027 is in British Summer Time:
    // 14:30 UTC is 15:30 in London, after school; 09:30 UTC is 10:30, inside it; 07:50 UTC is
    // 08:50, inside it (the school day begins at 08:45). Saturday 12 June is not a school day.
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    for (id, at) in [
        ("R1", "2027-06-09T14:30:00Z"),
        ("R2", "2027-06-09T09:30:00Z"),
        ("R3", "2027-06-12T09:30:00Z"),
        ("R4", "2027-06-09T07:50:00Z"),
    ] {
        events.push(review(
            &c,
            &format!("book-{id}"),
            "2027-03-01T10:00:00Z",
            id,
            at,
        ));
    }
    let p = plan(&c, &events, "2027-03-02T12:00:00Z");
    let warned: Vec<String> = going(&p)
        .filter(|n| n.rule == "review_in_school_hours" && n.recipient.label() == "iro")
        .map(|n| n.event.clone())
        .collect();
    assert_eq!(warned, vec!["book-R2".to_string(), "book-R4".to_string()]);

    // Born 1 January 2011: sixteen in June 2027 but in Year 11, of compulsory school age until
    // the last Friday in June (Education Act 1996 s.8): a review at 10:30 on a school day is
    // inside school hours.
    let mut older = in_care(&c, "2026-11-02T09:00:00Z");
    older[0] = ev(
        &c,
        "lac",
        "child_looked_after",
        "2026-11-02T09:00:00Z",
        json!({"start": "2026-11-02T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2011-01-01"}),
    );
    older.push(review(
        &c,
        "book",
        "2027-03-01T10:00:00Z",
        "R1",
        "2027-06-09T09:30:00Z",
    ));
    let p = plan(&c, &older, "2027-03-02T12:00:00Z");
    assert_eq!(
        sent_to(&p, "review_in_school_hours", "notice").len(),
        2,
        "a Year 11 pupil aged 16 is of compulsory school age"
    );
}

#[test]
fn the_child_is_told_of_a_new_iro_too() {
    let c = config();
    let mut events = in_care(&c, "2026-11-02T09:00:00Z");
    events.push(ev(
        &c,
        "told",
        "child_told_of_iro",
        "2026-11-04T10:00:00Z",
        json!({}),
    ));
    events.push(ev(
        &c,
        "iro2",
        "iro_allocated",
        "2027-01-05T10:00:00Z",
        json!({"iro": contact("Nora Newiro")}),
    ));
    let p = plan(&c, &events, "2027-01-06T12:00:00Z");
    let told = all(&p, "child_told_of_iro");
    assert_eq!(
        told.iter().map(|o| (o.due, o.state)).collect::<Vec<_>>(),
        vec![
            (wd("2026-11-02", 5), S::Met),
            (wd("2027-01-05", 5), S::Open)
        ]
    );
}

#[test]
fn checks_across_cases_count_only_children_in_care_and_caseloads_above_seventy() {
    let c = config();
    let planner = c.planner();
    let now = t("2027-02-15T12:00:00Z");
    let case = |reference: &str, iro: Option<&str>, links: Value, left: bool, later: Value| {
        let mut data = json!({"start": "2027-01-04T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"});
        data.as_object_mut()
            .unwrap()
            .extend(links.as_object().unwrap().clone());
        let mut raw = vec![
            json!({"id": format!("{reference}-lac"), "case": reference, "type": "child_looked_after", "at": "2027-01-04T09:00:00Z", "data": data}),
        ];
        if let Some(iro) = iro {
            raw.push(json!({"id": format!("{reference}-iro"), "case": reference, "type": "iro_allocated", "at": "2027-01-05T09:00:00Z", "data": {"iro": contact(iro)}}));
        }
        if left {
            raw.push(json!({"id": format!("{reference}-left"), "case": reference, "type": "ceased_looked_after", "at": "2027-02-01T09:00:00Z", "data": {}}));
        }
        if later.as_object().is_some_and(|o| !o.is_empty()) {
            raw.push(json!({"id": format!("{reference}-links"), "case": reference, "type": "family_links_recorded", "at": "2027-02-02T09:00:00Z", "data": later}));
        }
        let events: Vec<Event> = raw
            .iter()
            .map(|v| Event::from_value(v, "x").unwrap())
            .collect();
        planner.plan_case(reference, &events, now)
    };
    let none = json!({});
    let mut plans = vec![
        // A sibling who has left care does not count against the group.
        case(
            "S-1",
            Some("Ira Reviewer"),
            json!({"sibling_group": "G1"}),
            false,
            none.clone(),
        ),
        case(
            "S-2",
            Some("Oli Officer"),
            json!({"sibling_group": "G1"}),
            true,
            none.clone(),
        ),
        // A sibling with no IRO yet is not a second IRO.
        case(
            "T-1",
            Some("Ira Reviewer"),
            json!({"sibling_group": "G2"}),
            false,
            none.clone(),
        ),
        case(
            "T-2",
            None,
            json!({"sibling_group": "G2"}),
            false,
            none.clone(),
        ),
        // A sibling group recorded after the start of care counts.
        case(
            "U-1",
            Some("Ira Reviewer"),
            none.clone(),
            false,
            json!({"sibling_group": "G3"}),
        ),
        case(
            "U-2",
            Some("Oli Officer"),
            none.clone(),
            false,
            json!({"sibling_group": "G3"}),
        ),
        // A parent who has left care is no conflict.
        case("M-1", Some("Oli Officer"), none.clone(), true, none.clone()),
        case(
            "K-1",
            Some("Oli Officer"),
            json!({"parent_case": "M-1"}),
            false,
            none.clone(),
        ),
    ];
    // Ira has 3 children above (S-1, T-1, U-1); 67 more make 70, within the guidance. Oli has
    // 2 in care (U-2, K-1); 69 more make 71, above it.
    for i in 0..67 {
        plans.push(case(
            &format!("I-{i}"),
            Some("Ira Reviewer"),
            none.clone(),
            false,
            none.clone(),
        ));
    }
    for i in 0..69 {
        plans.push(case(
            &format!("O-{i}"),
            Some("Oli Officer"),
            none.clone(),
            false,
            none.clone(),
        ));
    }
    let report = driftwatch::report::compute(
        &c.rules,
        &c.calendar,
        plans.iter().map(|p| (p, &[][..])),
        d("2027-01-01"),
        d("2027-02-15"),
        plans[0].now,
    );
    let found: Vec<String> = report.checks.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        vec![
            "siblings in group G3 have different IROs: U-1 (Ira Reviewer), U-2 (Oli Officer)"
                .to_string(),
            "Oli Officer has 71 children, above the 50–70 guidance".to_string()
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The shell: what the store keeps of a moved review's plan after downtime

#[test]
fn after_downtime_the_invitations_for_a_moved_reviews_new_date_still_go() {
    use driftwatch::service::{CatchUp, case_write};
    use driftwatch::store::PlannedState;
    let c = config();
    // Booked for 10 February 2027, invited on 27 January, moved on 29 January to 24 February
    // with a grandparent added. The daemon is down from the morning of 29 January until
    // Thursday 11 February: the meeting on 24 February is still ahead, so the parent and the
    // carer must still hear of the new date, and the grandparent be invited (late).
    let mut events = booked(&c);
    events.push(ev(
        &c,
        "move",
        "review_rescheduled",
        "2027-01-29T11:00:00Z",
        json!({"review_id": "R1", "meeting_at": "2027-02-24T14:00:00Z",
               "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer"), ("Grand Parent", "grandparent")])}),
    ));
    let p = plan(&c, &events, "2027-02-11T12:00:00Z");
    let downtime = CatchUp {
        go_live: Some(t("2027-01-11T10:00:00Z")),
        stale_after: chrono::Duration::hours(24),
    };
    let write = case_write(&p, &events, &[], downtime, c.routing());
    let state = |n: &Notification| {
        write
            .outbox
            .iter()
            .find(|w| w.key == n.idempotency_key)
            .map(|w| w.state)
    };
    let mut after_the_move: Vec<(String, String, Option<PlannedState>)> = going(&p)
        .filter(|n| n.rule == "review_invitations" && n.send_at >= t("2027-01-29T11:00:00Z"))
        .filter(|n| n.kind == K::Action)
        .map(|n| (n.step.clone(), n.recipient.label(), state(n)))
        .collect();
    after_the_move.sort_by(|a, b| (&b.0, &a.1).cmp(&(&a.0, &b.1)));
    assert_eq!(
        after_the_move,
        vec![
            (
                "moved".to_string(),
                "carer".to_string(),
                Some(PlannedState::Pending)
            ),
            (
                "moved".to_string(),
                "parent".to_string(),
                Some(PlannedState::Pending)
            ),
            (
                "at deadline".to_string(),
                "grandparent".to_string(),
                Some(PlannedState::Pending)
            ),
        ],
        "catching up reads the meeting's first date (10 February), not the one it moved to"
    );
}

// ---------------------------------------------------------------------------------------------
// The daemon end to end: a moved review and a cancelled one

/// A child looked after since 2 November 2026 with a review booked on 11 January 2027 for
/// Wednesday 10 February at 14:00, a parent and a carer invited.
fn booked_case(case: &str) -> Value {
    let e = |id: &str, kind: &str, at: &str, data: Value| json!({"id": format!("{case}-{id}"), "case": case, "type": kind, "at": at, "data": data});
    json!([
        e(
            "lac",
            "child_looked_after",
            "2026-11-02T09:00:00Z",
            json!({"start": "2026-11-02T09:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"})
        ),
        e(
            "sw",
            "social_worker_allocated",
            "2026-11-02T09:00:00Z",
            json!({"social_worker": contact("Sam Social"), "team_manager": contact("Tara Manager")})
        ),
        e(
            "iro",
            "iro_allocated",
            "2026-11-02T09:00:00Z",
            json!({"iro": contact("Ira Reviewer")})
        ),
        e(
            "book",
            "review_scheduled",
            "2027-01-11T10:00:00Z",
            json!({"review_id": "R1", "meeting_at": "2027-02-10T14:00:00Z",
                 "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer")])})
        ),
    ])
}

/// The `.eml` files for `case` addressed to `to` with `words` in them.
fn mails(setup: &crate::support::Setup, case: &str, to: &str, words: &str) -> usize {
    crate::support::spooled(&setup.spool())
        .iter()
        .filter(|(_, m)| m.contains(&format!("<{to}>")) && m.contains(case) && m.contains(words))
        .count()
}

/// Every message the plan says is due has gone (or was recorded before go-live), and nothing
/// went that the plan does not say.
async fn outbox_agrees_with_plan(
    daemon: &crate::support::Daemon,
    setup: &crate::support::Setup,
    case: &str,
) {
    let plan = daemon.get(&format!("/v1/cases/{case}/plan")).await;
    let due: std::collections::BTreeSet<String> = plan["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "due")
        .map(|n| n["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    let rows = daemon
        .get(&format!("/v1/notifications?case={case}&limit=10000"))
        .await["notifications"]
        .as_array()
        .cloned()
        .unwrap();
    // A reminder or escalation is recorded, not sent, if it could not go before its obligation
    // was met (the invitations' reminder caught up for 09:00, when the invitations themselves
    // go: nobody needs a reminder for what is done), or by the catch-up rules once it is more
    // than a day late (the clock moved on sixteen days at once: a reminder whose deadline has
    // passed by then is superseded).
    let stale = plan["now"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t - chrono::Duration::hours(24));
    let late = |r: &serde_json::Value| {
        r["send_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .zip(stale)
            .is_some_and(|(at, stale)| at < stale)
    };
    let closed: std::collections::BTreeSet<&str> = plan["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !matches!(o["state"].as_str(), Some("open" | "overdue")))
        .filter_map(|o| o["id"].as_str())
        .collect();
    let done: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| {
            matches!(r["state"].as_str(), Some("sent" | "before_go_live"))
                || (r["state"] == "superseded"
                    && matches!(
                        r["notification"]["kind"].as_str(),
                        Some("reminder" | "escalation")
                    )
                    && (late(r)
                        || r["notification"]["obligation"]
                            .as_str()
                            .is_some_and(|o| closed.contains(o))))
        })
        .map(|r| r["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        due,
        done,
        "{case}: the plan's due messages and the outbox's sent ones differ:\n{:#?}",
        rows.iter()
            .map(|r| (
                &r["state"],
                &r["rule"],
                &r["notification"]["step"],
                &r["send_at"]
            ))
            .collect::<Vec<_>>()
    );
    for r in &rows {
        if r["state"] == "sent" {
            let key = r["idempotency_key"].as_str().unwrap();
            assert!(
                crate::support::spooled(&setup.spool())
                    .iter()
                    .any(|(name, _)| name == &format!("{key}.eml")),
                "{key} recorded as sent but not in the spool"
            );
        }
    }
}

#[tokio::test]
async fn the_daemon_sends_what_the_plan_says_for_a_moved_review_and_a_cancelled_one() {
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-11T10:00:00Z");
    for case in ["M-1", "X-1"] {
        let (status, body) = daemon.post_events(&booked_case(case)).await;
        assert_eq!(status, 202, "{body}");
    }
    // The invitations go at 09:00 on Wednesday 27 January, ten working days before.
    let first = invitations_due("2027-02-10");
    daemon.clock(&format!("{first}T08:59:00Z")).await;
    assert_eq!(
        mails(&setup, "M-1", "parent.one@example.org", "Invitation"),
        0
    );
    daemon.clock(&format!("{first}T09:00:00Z")).await;
    for case in ["M-1", "X-1"] {
        for who in ["parent.one@example.org", "foster.carer@example.org"] {
            assert_eq!(
                mails(&setup, case, who, "Wednesday 10 February 2027 at 14:00"),
                1,
                "{case} {who}"
            );
        }
    }

    // Friday 29 January, 11:00: M-1's review moves to Wednesday 24 February, a grandparent
    // added. The parent and the carer get a new invitation at once, saying it replaces the first.
    daemon.clock("2027-01-29T11:00:00Z").await;
    let (status, body) = daemon
        .post_events(&json!({"id": "M-1-move", "case": "M-1", "type": "review_rescheduled",
            "at": "2027-01-29T11:00:00Z",
            "data": {"review_id": "R1", "meeting_at": "2027-02-24T14:00:00Z",
                     "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer"), ("Grand Parent", "grandparent")])}}))
        .await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2027-01-29T11:00:01Z").await;
    for who in ["parent.one@example.org", "foster.carer@example.org"] {
        assert_eq!(
            mails(&setup, "M-1", who, "Wednesday 24 February 2027 at 14:00"),
            1,
            "{who}"
        );
        assert_eq!(mails(&setup, "M-1", who, "replaces"), 1, "{who}");
    }
    assert_eq!(
        mails(&setup, "M-1", "grand.parent@example.org", "Invitation"),
        0
    );

    // Wednesday 3 February, 18:30: X-1's review is cancelled; those invited are told the next
    // working morning.
    daemon.clock("2027-02-03T18:30:00Z").await;
    let (status, body) = daemon
        .post_events(
            &json!({"id": "X-1-cancel", "case": "X-1", "type": "review_cancelled",
            "at": "2027-02-03T18:30:00Z", "data": {"review_id": "R1"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2027-02-04T08:59:00Z").await;
    assert_eq!(
        mails(&setup, "X-1", "parent.one@example.org", "cancelled"),
        0
    );
    daemon.clock("2027-02-04T09:00:00Z").await;
    for who in ["parent.one@example.org", "foster.carer@example.org"] {
        assert_eq!(mails(&setup, "X-1", who, "cancelled"), 1, "{who}");
    }

    // The grandparent is invited ten working days before 24 February.
    let second = invitations_due("2027-02-24");
    daemon.clock(&format!("{second}T09:00:00Z")).await;
    assert_eq!(
        mails(
            &setup,
            "M-1",
            "grand.parent@example.org",
            "Wednesday 24 February 2027 at 14:00"
        ),
        1
    );
    for case in ["M-1", "X-1"] {
        outbox_agrees_with_plan(&daemon, &setup, case).await;
    }
    let logs = daemon.logs();
    for private in ["Parent One", "grand.parent", "Ira Reviewer"] {
        assert!(!logs.contains(private), "the logs contain `{private}`");
    }
    assert!(daemon.terminate().success());
}

#[tokio::test]
async fn a_review_moved_while_the_daemon_was_down_over_its_first_date_is_still_announced() {
    // The review of case D-1 is booked for Wednesday 10 February 2027 and the invitations go on
    // 27 January. On Friday 29 January it is moved to Wednesday 24 February. The daemon is down
    // from 28 January to Thursday 11 February, so the case system can only deliver the move
    // when it is back, after the first date. The meeting on 24 February is still ahead: the
    // parent and the carer must get the new invitation, and the grandparent added be invited.
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-11T10:00:00Z");
    let (status, body) = daemon.post_events(&booked_case("D-1")).await;
    assert_eq!(status, 202, "{body}");
    daemon
        .clock(&format!("{}T09:00:00Z", invitations_due("2027-02-10")))
        .await;
    assert_eq!(
        mails(&setup, "D-1", "parent.one@example.org", "Invitation"),
        1
    );
    daemon.clock("2027-01-28T08:00:00Z").await;
    assert!(daemon.terminate().success());

    let daemon = crate::support::Daemon::start(&setup, "2027-02-11T12:00:00Z");
    let (status, body) = daemon
        .post_events(&json!({"id": "D-1-move", "case": "D-1", "type": "review_rescheduled",
            "at": "2027-01-29T11:00:00Z",
            "data": {"review_id": "R1", "meeting_at": "2027-02-24T14:00:00Z",
                     "participants": people(&[("Parent One", "parent"), ("Foster Carer", "carer"), ("Grand Parent", "grandparent")])}}))
        .await;
    assert_eq!(status, 202, "{body}");
    daemon.clock("2027-02-11T12:00:01Z").await;
    let new_date = "Wednesday 24 February 2027 at 14:00";
    let told: Vec<(&str, usize)> = [
        "parent.one@example.org",
        "foster.carer@example.org",
        "grand.parent@example.org",
    ]
    .into_iter()
    .map(|who| (who, mails(&setup, "D-1", who, new_date)))
    .collect();
    let rows = daemon.get("/v1/notifications?case=D-1&limit=10000").await["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let invitations: Vec<String> = rows
        .iter()
        .filter(|r| r["rule"] == "review_invitations")
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["state"], r["send_at"], r["notification"]["step"], r["notification"]["role"]
            )
        })
        .collect();
    assert_eq!(
        told,
        vec![
            ("parent.one@example.org", 1),
            ("foster.carer@example.org", 1),
            ("grand.parent@example.org", 1)
        ],
        "nobody hears of the new date; the outbox's invitations:\n{}",
        invitations.join("\n")
    );
    assert!(daemon.terminate().success());
}
