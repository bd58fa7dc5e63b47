//! What the store keeps of a plan (`service::case_write`, pure): which notifications wait in
//! the outbox, which are recorded but never sent, who is told of each obligation, and when the
//! case must be planned again.

mod common;

use common::*;
use driftwatch::config::Config;
use driftwatch::event::Event;
use driftwatch::planner::{CasePlan, NotificationKind, NotificationStatus, Planner, Target};
use driftwatch::service::case_write;
use driftwatch::store::PlannedState;

/// The example case planned at `now`.
fn example_plan(c: &Config, events: &[Event], now: &str) -> CasePlan {
    Planner::from_config(c).plan_case("C-1001", events, t(now))
}

#[test]
fn every_notification_still_to_go_waits_in_the_outbox_under_its_key() {
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2026-12-10T16:00:00Z");
    let write = case_write(&plan, &events, &[]);
    let pending: Vec<&str> = write
        .outbox
        .iter()
        .filter(|w| w.state == PlannedState::Pending)
        .map(|w| w.key.as_str())
        .collect();
    for n in &plan.notifications {
        let waits = pending.contains(&n.idempotency_key.as_str());
        match n.status {
            NotificationStatus::Scheduled => assert!(waits, "{} {}", n.rule, n.step),
            NotificationStatus::Superseded => assert!(!waits),
            NotificationStatus::Due => {}
        }
    }
    // Each row carries the data of the event behind it, for its template.
    let invitation = write
        .outbox
        .iter()
        .find(|w| w.rule == "review_invitations" && w.notification.contains("\"action\""))
        .expect("the invitations are planned");
    assert!(invitation.data.contains("meeting_at"));
    assert_eq!(invitation.channel, "email");
}

#[test]
fn reminders_for_obligations_already_met_are_recorded_not_sent() {
    // Planned for the first time long after the events (a daemon that was down): the care plan
    // was updated on 11 December, so its reminder of the 9th must not go out on the 18th.
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2026-12-18T12:00:00Z");
    let write = case_write(&plan, &events, &[]);
    let care_plan_reminders: Vec<_> = plan
        .notifications
        .iter()
        .filter(|n| n.rule == "care_plan_in_place" && n.kind == NotificationKind::Reminder)
        .collect();
    assert!(!care_plan_reminders.is_empty());
    for n in care_plan_reminders {
        let row = write
            .outbox
            .iter()
            .find(|w| w.key == n.idempotency_key)
            .expect("recorded");
        assert_eq!(row.state, PlannedState::Superseded, "{}", n.step);
    }
    // The invitations meet their own obligation: they still go.
    assert!(write.outbox.iter().any(|w| w.rule == "review_invitations"
        && w.notification.contains("\"action\"")
        && w.state == PlannedState::Pending));
}

#[test]
fn pending_rows_the_plan_no_longer_wants_are_retired() {
    let c = config();
    let events = example_events();
    let early = example_plan(&c, &events[..5], "2026-12-10T16:00:00Z");
    let early_write = case_write(&early, &events[..5], &[]);
    let pending: Vec<String> = early_write
        .outbox
        .iter()
        .filter(|w| w.state == PlannedState::Pending)
        .map(|w| w.key.clone())
        .collect();
    // The review is held on 6 January: the first review's later reminders and escalations are
    // no longer wanted.
    let later = example_plan(&c, &events, "2027-01-07T12:00:00Z");
    let write = case_write(&later, &events, &pending);
    assert!(!write.retire.is_empty());
    for key in &write.retire {
        assert!(pending.contains(key));
        assert!(
            !write
                .outbox
                .iter()
                .any(|w| &w.key == key && w.state == PlannedState::Pending),
            "{key} is still planned"
        );
    }
}

#[test]
fn people_and_the_next_replan_come_from_the_plan() {
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2027-01-08T13:00:00Z");
    let write = case_write(&plan, &events, &[]);
    // Every email recipient of an obligation's notifications is among its people, lower-cased.
    for n in &plan.notifications {
        if let (Some(o), Target::Email { role, email, .. }) = (&n.obligation, &n.recipient) {
            assert!(
                write
                    .people
                    .iter()
                    .any(|(id, p)| id == o && &p.role == role && p.email == email.to_lowercase())
            );
        }
    }
    // Next: the recommendations become decisions after five working days (a derived event), or
    // the next stored event, whichever is sooner.
    let next = write.replan_at.expect("a later moment");
    let upcoming = plan.upcoming_events.iter().map(|u| u.at).min();
    let later_event = events.iter().map(|e| e.at).filter(|t| *t > plan.now).min();
    assert_eq!(Some(next), upcoming.into_iter().chain(later_event).min());
    assert!(next > plan.now);
    assert_eq!(write.obligations.len(), plan.obligations.len());
}
