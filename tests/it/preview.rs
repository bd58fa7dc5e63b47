//! The rules-change preview (`reload?dry_run`, `check --against`) on the built-in rules and
//! the example case, with the rules edited as an admin would.

use chrono::{DateTime, Utc};
use driftwatch::config::{Config, ConfigSource, Folders};
use driftwatch::event::Event;
use driftwatch::preview::{Comparison, RulesChange};

/// The built-in config, and the same with the built-in rules written out and edited.
fn configs(edit: impl Fn(&str, String) -> Option<String>) -> (Config, Config, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let source = ConfigSource::BuiltIn {
        state_dir: state.path().to_path_buf(),
    };
    let rules = state.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for file in driftwatch::sources::built_in_rules() {
        let name = file
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if let Some(text) = edit(&name, file.text) {
            std::fs::write(rules.join(&name), text).unwrap();
        }
    }
    let before = Config::load_from(&source).unwrap();
    let folders = Folders {
        rules: Some(rules),
        templates: None,
    };
    let after = Config::load_changed(&source, &folders).unwrap();
    (before, after, state)
}

fn events() -> Vec<Event> {
    let text = include_str!("../../examples/events.jsonl");
    driftwatch::event::numbered_json_lines(text)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

fn compare(before: &Config, after: &Config, now: &str) -> RulesChange {
    let now: DateTime<Utc> = now.parse().unwrap();
    let ids = |c: &Config| c.rules.rules.iter().map(|r| r.id.clone()).collect();
    let mut comparison = Comparison::new(&after.calendar, now, ids(before), ids(after));
    let events = events();
    let old = before.planner().plan(&events, now);
    let new = after.planner().plan(&events, now);
    for (o, n) in old.iter().zip(&new) {
        comparison.add_case(o, n);
    }
    comparison.finish()
}

#[test]
fn the_same_rules_change_nothing() {
    let (before, after, _dir) = configs(|_, text| Some(text));
    let change = compare(&before, &after, "2027-01-11T12:00:00Z");
    assert_eq!(change.cases, 1);
    assert_eq!(change.cases_changed, 0);
    assert!(change.by_rule.is_empty(), "{change:?}");
    assert!(change.rules_added.is_empty() && change.rules_removed.is_empty());
    assert!(change.to_text().contains("No deadline moves"));
}

#[test]
fn a_later_deadline_is_counted_by_rule_in_working_days() {
    // The first review within 25 working days rather than 20.
    let (before, after, _dir) = configs(|name, text| {
        Some(match name {
            "becoming_looked_after.yaml" => {
                let edited = text.replacen(
                    "due: {from: at, offset: 20 working days}",
                    "due: {from: at, offset: 25 working days}",
                    1,
                );
                assert_ne!(edited, text);
                edited
            }
            _ => text,
        })
    });
    let change = compare(&before, &after, "2026-12-02T12:00:00Z");
    let first = &change.by_rule["first_review"];
    assert_eq!(first.deadlines_later, 1, "{change:?}");
    // The child has been looked after since 2 December 2026 (section 20, from 24 hours
    // after the start). 20 working days on is 4 January 2027 (25 and 28 December and
    // 1 January are bank holidays) and 25 is 11 January: 5 working days later.
    assert_eq!(first.most_later_working_days, 5, "{change:?}");
    assert_eq!(first.deadlines_earlier, 0);
    assert_eq!(first.examples, ["C-1001"]);
    assert_eq!(change.cases_changed, 1);
}

#[test]
fn a_rule_taken_away_withdraws_its_obligations_and_messages() {
    let (before, after, _dir) = configs(|name, text| (name != "decisions.yaml").then_some(text));
    let change = compare(&before, &after, "2027-02-15T12:00:00Z");
    assert!(
        change
            .rules_removed
            .contains(&"decision_carried_out".to_string())
    );
    let gone = &change.by_rule["decision_carried_out"];
    assert!(gone.obligations_taken_away > 0, "{change:?}");
    assert_eq!(gone.obligations_opened, 0);
    assert_eq!(gone.messages_added, 0);
}
