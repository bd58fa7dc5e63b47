//! `driftwatch test` as an admin runs it, through the real binary: the shipped rule tests pass
//! and cover every default rule, a failing test shows what the plan had instead, a malformed
//! file is reported at `file:line:column`, and the rules loader leaves test files alone.

use crate::common::{copy_dir, driftwatch_in, driftwatch_with, root, yaml_files_in};
use std::path::{Path, PathBuf};

fn shipped_config() -> PathBuf {
    root().join("config/driftwatch.yaml")
}

/// The shipped rule test files, as `rules/tests/*.yaml` expands.
fn shipped_tests() -> Vec<PathBuf> {
    yaml_files_in("rules/tests")
}

fn test_files(files: &[PathBuf]) -> (i32, String, String) {
    let mut args = vec!["test"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    driftwatch_with(&shipped_config(), &args)
}

/// A test file in a temporary folder.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// One care-order case; the tests below add what they expect.
const CARE_ORDER: &str = "tests:
  - name: a care order on Monday 4 January 2027
    events:
      - {id: lac, type: child_looked_after, at: 2027-01-04T10:00:00Z,
         data: {start: 2027-01-04T10:00:00Z, legal_basis: s31, date_of_birth: 2015-06-01}}
    expect:
      - at: 2027-01-04 12:00
";

#[test]
fn the_shipped_rule_tests_pass() {
    let files = shipped_tests();
    assert!(files.len() >= 5, "{files:?}");
    let (code, out, err) = test_files(&files);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("FAILED"), "{out}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(&format!(
            "test(s) in {} file(s): {} passed, 0 failed",
            files.len(),
            out.lines().filter(|l| l.starts_with("  ok ")).count()
        )),
        "{out}"
    );
    // With no files named, the rules folder's tests folder is what runs.
    let (code, default_out, err) = driftwatch_with(&shipped_config(), &["test"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        default_out.replace(&format!("{}/", root().display()), ""),
        { out.replace(&format!("{}/", root().display()), "") }
    );
}

#[test]
fn every_default_rule_has_a_shipped_test() {
    let config = crate::common::config();
    let mut tested = std::collections::BTreeSet::new();
    for path in shipped_tests() {
        let text = std::fs::read_to_string(&path).unwrap();
        let file =
            driftwatch::ruletest::parse(&path, &text, &config).unwrap_or_else(|d| panic!("{d}"));
        for moment in file.tests.iter().flat_map(|t| &t.moments) {
            for o in moment.obligations.iter().flatten() {
                tested.insert(o.spec.rule.clone());
            }
            for n in moment.notifications.iter().flatten() {
                tested.insert(n.spec.rule.clone());
            }
        }
    }
    let untested: Vec<&str> = config
        .rules
        .rules
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| !tested.contains(*id))
        .collect();
    assert!(
        untested.is_empty(),
        "rules without an expectation in rules/tests: {untested:?}"
    );
}

#[test]
fn a_failing_test_shows_what_the_plan_had_instead() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "wrong.yaml",
        &format!(
            "{CARE_ORDER}        obligations:
          - {{rule: first_review, state: open, due: 2027-02-02}}
        notifications:
          - {{rule: iro_allocation, kind: reminder, to: iro_manager, send_at: 2027-01-08 09:00}}
          - {{rule: first_review, step: Book the first review, to: review_administrator, send_at: 2027-01-12 09:00}}
"
        ),
    );
    let (code, out, err) = test_files(std::slice::from_ref(&path));
    assert_eq!(code, 1, "{out}\n{err}");
    let file = path.display();
    let expected = [
        format!("  FAILED  a care order on Monday 4 January 2027 ({file}:2:11)"),
        // 20 working days from Monday 4 January 2027 end on Monday 1 February.
        format!("    {file}:9:13: at 2027-01-04 12:00: expected obligation not in the plan"),
        "      expected: {rule: first_review, state: open, due: 2027-02-02}".to_string(),
        "      nearest:  {rule: first_review, state: open, due: 2027-02-01}".to_string(),
        "                due is 2027-02-01, not 2027-02-02".to_string(),
        format!("    {file}:12:13: at 2027-01-04 12:00: expected notification not in the plan"),
        "      expected: {rule: first_review, step: Book the first review, to: review_administrator, send_at: 2027-01-12 09:00}".to_string(),
        // The nearest is the same step to the same role, a day earlier; it pastes back as is.
        "      nearest:  {rule: first_review, kind: reminder, step: Book the first review, to: review_administrator, send_at: 2027-01-11 09:00, status: scheduled}".to_string(),
        "                send_at is 2027-01-11 09:00, not 2027-01-12 09:00".to_string(),
        "1 test(s) in 1 file(s): 0 passed, 1 failed".to_string(),
    ];
    for line in &expected {
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    // The expectation that holds is not reported.
    assert!(!out.contains("iro_allocation"), "{out}");
}

#[test]
fn exactly_reports_what_nothing_expects() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "exactly.yaml",
        &format!(
            "{CARE_ORDER}        exactly: [iro_service_told]
        notifications:
          - {{rule: iro_service_told, kind: reminder, to: placements_team, send_at: 2027-01-06 09:00}}
          - {{rule: iro_service_told, kind: escalation, to: iro_manager, send_at: 2027-01-07 09:00}}
          - {{rule: iro_service_told, kind: escalation, to: iro_manager, send_at: 2027-01-07 09:00}}
"
        ),
    );
    let (code, out, _) = test_files(std::slice::from_ref(&path));
    assert_eq!(code, 1, "{out}");
    let file = path.display();
    // The escalation to the placements team is not expected, and a second one to the IRO
    // manager is not in the plan.
    assert!(
        out.contains(&format!("    {file}:7:13: at 2027-01-04 12:00: the plan has a notification not expected (exactly)\n      found:    {{rule: iro_service_told, kind: escalation, step: IRO service not yet told, to: placements_team, send_at: 2027-01-07 09:00, status: scheduled}}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "    {file}:12:13: at 2027-01-04 12:00: expected notification not in the plan"
        )),
        "{out}"
    );
    assert!(
        out.contains("(the plan has no more of these than line 11 already expects)"),
        "{out}"
    );
}

#[test]
fn a_malformed_file_is_reported_at_file_line_column_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let misspelt = write(
        dir.path(),
        "misspelt.yaml",
        &format!(
            "{CARE_ORDER}        obligations:\n          - {{rule: first_review, stat: open}}\n"
        ),
    );
    let unknown = write(
        dir.path(),
        "unknown.yaml",
        "tests:
  - name: unknown names
    events:
      - {type: iro_alocated, at: 2027-01-04T10:00:00Z}
      - {type: care_plan_updated, at: 4 January}
    expect:
      - at: Monday 5 January 2027 at 12:00
        notifications:
          - {rule: first_reveiw, send_at: 2027-01-11}
",
    );
    let good = shipped_tests()
        .into_iter()
        .find(|p| p.ends_with("decisions.yaml"))
        .unwrap();
    let (code, out, err) = test_files(&[misspelt.clone(), good, unknown.clone()]);
    assert_eq!(code, 2, "{out}\n{err}");
    let (m, u) = (misspelt.display(), unknown.display());
    for line in [
        format!(
            "{m}:9:34: tests[0].expect[0].obligations[0]: unknown field `stat`, expected one of `rule`, `key`, `state`, `due`, `working_days_late`"
        ),
        format!(
            "{u}:4:16: event e1: type: is not an event type the rules declare, did you mean `iro_allocated`?"
        ),
        format!(
            "{u}:5:39: event e2: at: is not an RFC 3339 timestamp such as 2027-01-07T10:30:00Z"
        ),
        format!(
            "{u}:7:13: `Monday 5 January 2027 at 12:00`: 5 January 2027 is a Tuesday, not a Monday"
        ),
        format!("{u}:9:20: unknown rule `first_reveiw`, did you mean `first_review`?"),
        format!(
            "{u}:9:43: `2027-01-11` has no time of day: notifications go at a time (2027-01-11 09:00)"
        ),
        "driftwatch: 2 test file(s) could not be read; their tests did not run".to_string(),
    ] {
        assert!(
            err.lines().any(|l| l == line),
            "no line {line:?} in:\n{err}"
        );
    }
    // The good file still ran.
    assert!(out.contains("decisions.yaml"), "{out}");
    assert!(out.contains("passed, 0 failed"), "{out}");
}

#[test]
fn a_config_that_does_not_load_is_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "driftwatch.yaml", "rules: nowhere\n");
    let (code, _, err) = driftwatch_with(&config, &["test"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
}

#[test]
fn the_tests_folder_is_not_read_as_rules_and_runs_against_a_copy_of_them() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["config", "rules", "templates"] {
        copy_dir(&root().join(folder), &dir.path().join(folder));
    }
    let config = dir.path().join("config/driftwatch.yaml");
    let (code, out, err) = driftwatch_with(&config, &["check"]);
    assert_eq!(code, 0, "{err}");
    // rules/tests is in the copy, and not among the rules files read.
    assert!(dir.path().join("rules/tests/reviews.yaml").exists());
    assert!(out.contains("rules: 37 from 6 file(s)"), "{out}");
    // The copied tests run against the copied rules.
    let (code, out, err) = driftwatch_with(&config, &["test"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("rules/tests/reviews.yaml"), "{out}");
}

#[test]
fn outside_a_checkout_the_built_in_tests_run_against_the_built_in_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = driftwatch_in(dir.path(), &["test"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Testing built-in/rules/tests/reviews.yaml"),
        "{out}"
    );
    let (_, in_checkout, _) = test_files(&shipped_tests());
    let count = |text: &str| text.lines().filter(|l| l.starts_with("  ok ")).count();
    assert_eq!(count(&out), count(&in_checkout), "{out}");
}
