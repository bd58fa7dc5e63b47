//! What the store keeps of a plan (`service::case_write`, pure): which notifications wait in
//! the outbox, which are recorded but never sent, who is told of each obligation, and when the
//! case must be planned again.

use crate::common::*;
use driftwatch::config::Config;
use driftwatch::event::Event;
use driftwatch::planner::{
    CasePlan, NotificationKind, NotificationStatus, ObligationState, Target,
};
use driftwatch::service::{CatchUp, case_write_with, closing_actions};
use driftwatch::store::PlannedState;

/// Running live: nothing is late enough to count as catching up.
fn live() -> CatchUp {
    CatchUp {
        go_live: None,
        stale_after: chrono::Duration::days(3650),
    }
}

/// What the store keeps of a plan: [`case_write_with`] with the shipped config and the moments
/// the plan's deadline actions meet their obligations, as the daemon writes it.
fn kept(
    c: &Config,
    plan: &CasePlan,
    events: &[Event],
    pending: &[String],
    catch_up: CatchUp,
) -> driftwatch::store::CaseWrite {
    let actions = closing_actions(&c.planner(), plan, events);
    case_write_with(plan, events, pending, catch_up, c.routing(), &actions)
}

/// The example case planned at `now`.
fn example_plan(c: &Config, events: &[Event], now: &str) -> CasePlan {
    c.planner().plan_case("C-1001", events, t(now))
}

#[test]
fn every_notification_still_to_go_waits_in_the_outbox_under_its_key() {
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2026-12-10T16:00:00Z");
    let write = kept(&c, &plan, &events, &[], live());
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
            NotificationStatus::Superseded | NotificationStatus::Acknowledged => assert!(!waits),
            NotificationStatus::Due => {}
        }
    }
    // A row of a stored event leaves its data in the event log (read when the row is claimed,
    // so a list of hundreds of participants is not copied into each of their invitations); a
    // row of a derived event, stored nowhere else, carries it.
    let invitation = write
        .outbox
        .iter()
        .find(|w| w.rule == "review_invitations" && w.notification.kind == NotificationKind::Action)
        .expect("the invitations are planned");
    // It names the events its data comes from and keeps only the case's contacts.
    let data: serde_json::Value = serde_json::from_str(&invitation.data).unwrap();
    assert!(
        data["$from"].as_array().is_some_and(|a| !a.is_empty()),
        "{data}"
    );
    assert!(
        !invitation.data.contains("participants"),
        "{}",
        invitation.data
    );
    assert_eq!(invitation.channel, "email");
    let derived: Vec<_> = write
        .outbox
        .iter()
        .filter(|w| w.notification.event.starts_with("derived:"))
        .collect();
    assert!(!derived.is_empty());
    assert!(derived.iter().all(|w| w.data.contains("legal_basis")));
}

#[test]
fn reminders_for_obligations_already_met_are_recorded_not_sent() {
    // Planned for the first time long after the events (a daemon that was down): the care plan
    // was updated on 11 December, so its reminder of the 9th must not go out on the 18th.
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2026-12-18T12:00:00Z");
    let write = kept(&c, &plan, &events, &[], live());
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
        && w.notification.kind == NotificationKind::Action
        && w.state == PlannedState::Pending));
}

#[test]
fn pending_rows_the_plan_no_longer_wants_are_retired() {
    let c = config();
    let events = example_events();
    let early = example_plan(&c, &events[..5], "2026-12-10T16:00:00Z");
    let early_write = kept(&c, &early, &events[..5], &[], live());
    let pending: Vec<String> = early_write
        .outbox
        .iter()
        .filter(|w| w.state == PlannedState::Pending)
        .map(|w| w.key.clone())
        .collect();
    // The review is held on 6 January: the first review's later reminders and escalations are
    // no longer wanted.
    let later = example_plan(&c, &events, "2027-01-07T12:00:00Z");
    let write = kept(&c, &later, &events, &pending, live());
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
    let write = kept(&c, &plan, &events, &[], live());
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

/// The example case up to the booking of its first review (10 December, 15:00).
fn booked(events: Vec<Event>) -> Vec<Event> {
    let booking = t("2026-12-10T15:00:00Z");
    events.into_iter().filter(|e| e.at <= booking).collect()
}

#[test]
fn a_deadline_action_is_a_moment_the_case_is_planned_again() {
    // Up to the booking of the review, planned on 10 December: nothing more is known, but at
    // 09:00 on the 15th the invitations go and meet their obligation (and any later step of its
    // ladder falls away), so the case must be planned again then.
    let c = config();
    let events = &booked(example_events());
    let plan = example_plan(&c, events, "2026-12-10T16:00:00Z");
    assert!(plan.upcoming_events.iter().all(|u| u.at <= plan.now));
    assert!(events.iter().all(|e| e.at <= plan.now));
    let write = kept(&c, &plan, events, &[], live());
    assert_eq!(write.replan_at, Some(t("2026-12-15T09:00:00Z")));
    // Only the invitations' own reminder (two working days before) depends on that re-planning:
    // it is held from then if it has not gone; nothing else of the case waits for it.
    assert_eq!(write.hold_at, None);
    for row in &write.outbox {
        let reminder =
            row.rule == "review_invitations" && row.notification.kind == NotificationKind::Reminder;
        let expected =
            (reminder && row.state == PlannedState::Pending).then(|| t("2026-12-15T09:00:00Z"));
        assert_eq!(row.hold_at, expected, "{:?}", row.notification);
    }
    // Planned then, the obligation is met and nothing about the invitations changes again.
    let later = example_plan(&c, events, "2026-12-15T09:00:00Z");
    assert_eq!(
        obligation(&later, "review_invitations").state,
        ObligationState::Met
    );
    let write = kept(&c, &later, events, &[], live());
    assert!(write.replan_at.is_none_or(|t| t > later.now));
    // A future-dated event changes anything: the case's notifications wait for it.
    let all = example_events();
    let plan = example_plan(&c, &all, "2026-12-10T16:00:00Z");
    let write = kept(&c, &plan, &all, &[], live());
    assert_eq!(write.hold_at, Some(t("2026-12-11T16:00:00Z")));
    assert_eq!(write.replan_at, write.hold_at);
}

/// The outbox rows of a plan as (notification, state).
fn outbox_rows<'p>(
    plan: &'p CasePlan,
    write: &driftwatch::store::CaseWrite,
) -> Vec<(&'p driftwatch::planner::Notification, PlannedState, bool)> {
    plan.notifications
        .iter()
        .map(|n| {
            let w = write
                .outbox
                .iter()
                .find(|w| w.key == n.idempotency_key)
                .expect("every notification has a row");
            (n, w.state, w.notification.late)
        })
        .collect()
}

/// At most one step of each obligation's ladder goes late, and never a reminder whose deadline
/// has passed.
fn assert_one_step_per_obligation(plan: &CasePlan, write: &driftwatch::store::CaseWrite) {
    use std::collections::HashMap;
    let mut steps: HashMap<&str, Vec<chrono::DateTime<chrono::Utc>>> = HashMap::new();
    for (n, state, _) in outbox_rows(plan, write) {
        let ladder = matches!(
            n.kind,
            NotificationKind::Reminder | NotificationKind::Escalation
        );
        if ladder && state == PlannedState::Pending && n.status == NotificationStatus::Due {
            let o = n
                .obligation
                .as_deref()
                .expect("ladder steps belong to obligations");
            steps.entry(o).or_default().push(n.send_at);
            let deadline = plan
                .obligations
                .iter()
                .find(|x| x.id == o)
                .map(|x| x.deadline)
                .expect("obligation");
            assert!(
                !(n.kind == NotificationKind::Reminder && deadline <= plan.now),
                "a reminder for {o} goes after its deadline"
            );
        }
    }
    for (o, mut times) in steps {
        times.sort();
        times.dedup();
        assert_eq!(
            times.len(),
            1,
            "{o}: more than one step goes at once: {times:?}"
        );
    }
}

#[test]
fn go_live_sends_only_what_applies_now_and_records_the_rest() {
    // The whole example case is imported on 15 February 2027, when it is already part-way through.
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2027-02-15T12:00:00Z");
    let go_live = CatchUp {
        go_live: Some(t("2027-02-15T12:00:00Z")),
        stale_after: chrono::Duration::hours(24),
    };
    let write = kept(&c, &plan, &events, &[], go_live);
    let rows = outbox_rows(&plan, &write);
    assert_one_step_per_obligation(&plan, &write);

    let state_of = |rule: &str, step: &str| -> Vec<PlannedState> {
        rows.iter()
            .filter(|(n, _, _)| n.rule == rule && n.step.contains(step))
            .map(|(_, s, _)| *s)
            .collect()
    };
    // The invitations were for a meeting long past: recorded, not sent.
    assert!(
        state_of("review_invitations", "at deadline")
            .iter()
            .all(|s| *s == PlannedState::BeforeGoLive)
    );
    // The drifting decision's escalation starts at the step that applies now, not at the IRO's
    // informal step of 1 February; the director's step of 22 February is still to come.
    let decision: Vec<_> = rows
        .iter()
        .filter(|(n, _, _)| {
            n.rule == "decision_carried_out" && n.kind == NotificationKind::Escalation
        })
        .collect();
    let applies_now = decision
        .iter()
        .map(|(n, _, _)| n.send_at)
        .filter(|t| *t <= plan.now)
        .max()
        .expect("an escalation step is due");
    assert!(applies_now > t("2027-02-01T09:00:00Z"));
    for (n, state, late) in &decision {
        let expected = if n.send_at > plan.now {
            PlannedState::Pending
        } else if n.send_at == applies_now {
            assert!(*late, "sent late, and says so");
            PlannedState::Pending
        } else {
            PlannedState::BeforeGoLive
        };
        assert_eq!(*state, expected, "{} {}", n.step, n.send_at);
    }
    // The significant event of 10 February is always told, marked late.
    let notice: Vec<_> = rows
        .iter()
        .filter(|(n, _, _)| n.rule == "significant_event_notice")
        .collect();
    assert!(!notice.is_empty());
    assert!(
        notice
            .iter()
            .all(|(_, s, late)| *s == PlannedState::Pending && *late)
    );
}

#[test]
fn after_downtime_only_the_latest_due_step_of_each_ladder_goes() {
    // Live since December, then down from 22 January to 15 February 2027.
    let c = config();
    let events = example_events();
    let plan = example_plan(&c, &events, "2027-02-15T12:00:00Z");
    let downtime = CatchUp {
        go_live: Some(t("2026-12-01T10:00:00Z")),
        stale_after: chrono::Duration::hours(24),
    };
    let write = kept(&c, &plan, &events, &[], downtime);
    assert_one_step_per_obligation(&plan, &write);
    let rows = outbox_rows(&plan, &write);
    // Nothing is recorded as before go-live after it; stale steps are superseded instead.
    for (n, state, _) in &rows {
        if *state == PlannedState::BeforeGoLive {
            assert!(n.send_at < t("2026-12-01T10:00:00Z"));
        }
    }
    assert!(rows.iter().any(|(n, s, _)| n.rule == "decision_carried_out"
        && n.send_at == t("2027-02-01T09:00:00Z")
        && *s == PlannedState::Superseded));
    // A step within the stale limit is not catching up: it goes as planned.
    let fresh = example_plan(&c, &events, "2027-02-08T12:00:00Z");
    let write = kept(&c, &fresh, &events, &[], downtime);
    assert!(outbox_rows(&fresh, &write).iter().any(|(n, s, late)| n.rule
        == "decision_carried_out"
        && n.send_at == t("2027-02-08T09:00:00Z")
        && *s == PlannedState::Pending
        && !*late));
}
