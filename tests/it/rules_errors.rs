//! Mistakes in rules files are reported as `file:line:column: message`, every one of them, and a
//! broken rules folder loads nothing.

use crate::common::{copy_dir, root};
use driftwatch::config::Config;
use std::path::{Path, PathBuf};

/// A copy of the shipped config, rules and templates that a test may break.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["config", "rules", "templates"] {
        copy_dir(&root().join(sub), &dir.path().join(sub));
    }
    dir
}

fn write_rules(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join("rules").join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn errors(dir: &Path) -> Vec<String> {
    match Config::load(&dir.join("config/driftwatch.yaml")) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
    }
}

fn expect(text: &str, expected: &[&str]) {
    let dir = workspace();
    let file = write_rules(dir.path(), "extra.yaml", text);
    let got = errors(dir.path());
    let want: Vec<String> = expected
        .iter()
        .map(|e| format!("{}:{e}", file.display()))
        .collect();
    assert_eq!(got, want);
}

const HEAD: &str = "rules:\n  - id: extra\n    title: Extra\n    source: test\n";

#[test]
fn the_shipped_rules_load() {
    let dir = workspace();
    assert_eq!(errors(dir.path()), Vec::<String>::new());
}

#[test]
fn unknown_fields_are_named_with_their_position() {
    expect(
        &format!("{HEAD}    on: review_held\n    due: {{from: data.held_at, ofset: 3 days}}\n"),
        &["6:31: rules[0].due: unknown field `ofset`, expected `from` or `offset`"],
    );
}

#[test]
fn bad_offsets_are_errors() {
    let dir = workspace();
    let file = write_rules(
        dir.path(),
        "extra.yaml",
        &format!(
            "{HEAD}    on: review_held\n    due: {{from: data.held_at, offset: 3 fortnights}}\n"
        ),
    );
    let got = errors(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{}:6:10: rules[0].due", file.display())),
        "{got:?}"
    );
    assert!(
        got[0].contains("3 fortnights") && got[0].contains("working days"),
        "{got:?}"
    );
}

#[test]
fn unknown_roles_templates_event_types_and_fields_are_all_reported() {
    let text = format!(
        "{HEAD}    on: review_held
    key: data.review_id
    due: {{from: data.held_on, offset: 20 working days}}
    met_by: [record_distribute]
    reminders:
      - {{offset: -5 working days, to: [iro_manger, ira], template: remind}}
"
    );
    expect(
        &text,
        &["7:17: `data.held_on`: no field `held_on` (known: held_at, review_id)"],
    );
    // The anchor fixed, the remaining mistakes are reported together.
    let text = text.replace("data.held_on", "data.held_at");
    expect(
        &text,
        &[
            "8:14: unknown event type `record_distribute`, did you mean `record_distributed`?",
            "10:40: unknown role `iro_manger`: neither a case contact set by `case.updates` nor a role in the config, did you mean `iro_manager`?",
            "10:52: unknown role `ira`: neither a case contact set by `case.updates` nor a role in the config, did you mean `iro`?",
            "10:68: unknown template `remind`: no folder of that name in the templates folder, did you mean `reminder`?",
        ],
    );
}

#[test]
fn step_offsets_must_point_the_right_way() {
    expect(
        &format!(
            "{HEAD}    on: review_held
    due: {{from: data.held_at, offset: 20 working days}}
    reminders:
      - {{offset: 2 working days, to: [iro], template: reminder}}
    escalations:
      - {{offset: 0 working days, to: [iro], template: escalation}}
"
        ),
        &[
            "8:18: a reminder comes before the deadline: its offset is zero or negative",
            "10:18: an escalation comes after the deadline: its offset is positive",
        ],
    );
}

#[test]
fn conditions_must_compile() {
    expect(
        &format!(
            "{HEAD}    on: review_held\n    when: data.review_id ==\n    notice: {{to: [iro], template: reminder}}\n"
        ),
        &["6:11: condition does not compile: syntax error: unexpected end of block"],
    );
}

#[test]
fn a_matcher_must_say_which_field_carries_the_key() {
    expect(
        &format!(
            "{HEAD}    on: review_held\n    key: data.review_id\n    due: {{from: data.held_at, offset: 1 day}}\n    met_by: [care_plan_updated]\n"
        ),
        &[
            "8:14: `care_plan_updated` does not carry the rule's key `data.review_id`: add `key: data.FIELD` naming the field that does, or `key: any`",
        ],
    );
}

#[test]
fn duplicate_rule_ids_point_at_the_first() {
    let dir = workspace();
    let file = write_rules(
        dir.path(),
        "zz.yaml",
        &format!("{HEAD}    on: review_held\n    notice: {{to: [iro], template: reminder}}\n")
            .replace("id: extra", "id: first_review"),
    );
    let got = errors(dir.path());
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(&format!(
            "{}:2:9: rule id `first_review` is already used in ",
            file.display()
        )),
        "{got:?}"
    );
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let dir = workspace();
    let file = write_rules(dir.path(), "extra.yaml", "rules:\n  - id: \"unclosed\n");
    let got = errors(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0],
        format!("{}:3:1: found unexpected end of stream", file.display())
    );
}

#[test]
fn template_errors_name_the_template_file_and_line() {
    let dir = workspace();
    let body = dir.path().join("templates/reminder/body.txt");
    std::fs::write(&body, "line one\n{{ case }\n").unwrap();
    let got = errors(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{}:2:1: syntax error", body.display())),
        "{got:?}"
    );
}

#[test]
fn matcher_fields_that_would_be_ignored_are_errors() {
    expect(
        &format!(
            "{HEAD}    on: review_held
    due: {{from: data.held_at, offset: 1 day}}
    met_by: [{{event: record_distributed, key: data.review_id}}]
    cancelled_by: [{{event: review_cancelled, key: any, at: at}}]
"
        ),
        &[
            "7:47: the rule has no `key`, so this event finds every open obligation of the rule; remove this `key`",
            "8:60: `at` says when an obligation was met; it belongs under `met_by`",
        ],
    );
}

#[test]
fn config_mistakes_point_into_the_config() {
    let dir = workspace();
    let config = dir.path().join("config/driftwatch.yaml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("until: 2026-12-31", "until: 2026-12-01");
    std::fs::write(&config, text).unwrap();
    let got = errors(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{}:11:33: closure", config.display())),
        "{got:?}"
    );
}

#[test]
fn a_template_value_that_does_not_exist_is_found_by_check() {
    let dir = workspace();
    let body = dir.path().join("templates/escalation/body.txt");
    std::fs::write(
        &body,
        "Case {{ case.reference }}\nStep: {{ notification.titel }}\n",
    )
    .unwrap();
    let got = errors(dir.path());
    assert!(!got.is_empty());
    // Reported once, at the line, naming the first rule that uses it.
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!(
            "{}:2:1: does not render for rule `",
            body.display()
        )),
        "{got:?}"
    );
    assert!(got[0].contains("undefined value"), "{got:?}");
}
