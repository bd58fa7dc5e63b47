//! Every shipped template renders for every notification of the example case, and messages name
//! the child by case reference only.

use crate::common::*;
use driftwatch::message::render;
use std::collections::BTreeSet;

#[test]
fn every_notification_of_the_example_case_renders() {
    let c = config();
    let events = example_events();
    let plans = c.planner().plan(&events, t("2027-06-01T12:00:00Z"));
    let mut templates = BTreeSet::new();
    for plan in &plans {
        let derived = plan.derived_events.iter();
        for n in &plan.notifications {
            let data = events
                .iter()
                .chain(derived.clone())
                .find(|e| e.id == n.event)
                .map(|e| e.data.clone())
                .unwrap_or_default();
            let m = render(&c.rules, &plan.case, n, &data, &Default::default())
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(m.subject.contains(&plan.case), "{}", m.subject);
            assert!(m.text.contains(&plan.case));
            assert!(
                m.text.contains(&n.rule),
                "the message says which rule sent it"
            );
            // The example child's carers and parents are named in the events; no message repeats
            // a name except the addressee's own greeting (none of the defaults greets by name).
            for name in ["Parent One", "Foster Carer", "Sam Social", "Ira Reviewer"] {
                assert!(
                    !m.subject.contains(name) && !m.text.contains(name),
                    "{} names {name}",
                    n.template
                );
            }
            templates.insert(n.template.clone());
        }
    }
    for expected in [
        "reminder",
        "escalation",
        "invitation",
        "significant_event",
        "decision_reminder",
        "dispute_resolution",
        "cafcass_consideration",
    ] {
        assert!(
            templates.contains(expected),
            "the example exercises `{expected}`: {templates:?}"
        );
    }
}

#[test]
fn an_invitation_says_when_the_meeting_is() {
    let c = config();
    let events = example_events();
    let plan = c
        .planner()
        .plan_case("C-1001", &events, t("2027-01-01T12:00:00Z"));
    let n = plan
        .notifications
        .iter()
        .find(|n| n.template == "invitation")
        .unwrap();
    let data = &events.iter().find(|e| e.id == n.event).unwrap().data;
    let m = render(&c.rules, "C-1001", n, data, &Default::default()).unwrap();
    assert_eq!(m.subject, "Invitation: looked-after review, case C-1001");
    // Local time, in words.
    assert!(
        m.text.contains("Wednesday 6 January 2027 at 14:00"),
        "{}",
        m.text
    );
    assert!(m.html.is_none());
}

#[test]
fn every_shipped_template_renders() {
    let c = config();
    let events = example_events();
    let plan = c
        .planner()
        .plan_case("C-1001", &events, t("2027-02-15T12:00:00Z"));
    // The data fields the default rules' events carry that templates use.
    let data = serde_json::json!({"meeting_at": "2027-01-06T14:00:00Z", "kind": "placement_disruption", "review_id": "R1", "legal_basis": "s31"});
    let data = data.as_object().unwrap();
    let names: Vec<String> = c
        .rules
        .engine
        .template_names()
        .filter(|n| *n != driftwatch::digest::TEMPLATE)
        // Webhook bodies (Teams, Slack) have no subject or text of their own.
        .filter(|n| c.rules.engine.has_part(n, "subject.txt"))
        .map(str::to_string)
        .collect();
    assert_eq!(names.len(), 19);
    for name in names {
        let mut n = plan.notifications[0].clone();
        n.template = name.clone();
        let m = render(&c.rules, "C-1001", &n, data, &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(m.subject.contains("C-1001"), "{name}: {}", m.subject);
    }
}

#[test]
fn the_shipped_teams_and_slack_bodies_have_the_shapes_their_receivers_take() {
    let c = config();
    let events = example_events();
    let plan = c
        .planner()
        .plan_case("C-1001", &events, t("2027-02-15T12:00:00Z"));
    let n = plan
        .notifications
        .iter()
        .find(|n| {
            n.rule == "decision_carried_out"
                && n.kind == driftwatch::planner::NotificationKind::Escalation
        })
        .unwrap();
    let data = n.data.as_deref().unwrap();
    let render = |body: &str| -> serde_json::Value {
        let text =
            driftwatch::message::render_webhook(&c.rules, "C-1001", n, data, Some(body), n.send_at)
                .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&text).unwrap()
    };

    // A Teams Workflows webhook ("post to a channel when a webhook request is received") takes a
    // message with one Adaptive Card attachment.
    let teams = render("teams_card");
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert!(
        card["content"]["version"]
            .as_str()
            .unwrap()
            .starts_with("1.")
    );
    let blocks = card["content"]["body"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "TextBlock");
    assert!(blocks[0]["text"].as_str().unwrap().contains("C-1001"));
    assert!(
        blocks[1]["text"]
            .as_str()
            .unwrap()
            .contains("was due on Friday 29 January 2027")
    );
    let facts = blocks[2]["facts"].as_array().unwrap();
    assert!(
        facts
            .iter()
            .any(|f| f["title"] == "Case" && f["value"] == "C-1001")
    );

    // A Slack incoming webhook takes `text` (the notification fallback) and Block Kit `blocks`.
    let slack = render("slack_message");
    assert!(slack["text"].as_str().unwrap().contains("C-1001"));
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
    assert_eq!(blocks[1]["type"], "section");
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("29 January 2027")
    );
    assert_eq!(blocks[2]["type"], "context");
    // Neither names the child or carries anything but the case reference.
    for body in [teams.to_string(), slack.to_string()] {
        assert!(!body.contains("Parent One") && !body.contains("sibling contact"));
    }
}
