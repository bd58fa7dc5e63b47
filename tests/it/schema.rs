//! The JSON Schemas editors use: the committed files are what `driftwatch schema` prints, every
//! shipped rules file, rule test file and the example config name them and pass them, and they
//! catch a typo.

use crate::common::{root, yaml_files_in};
use std::process::Command;

fn schema(of: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["schema", of])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn yaml(path: &std::path::Path) -> serde_json::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn shipped_files_name_and_pass_the_committed_schemas() {
    for (of, file, shipped, up) in [
        (
            "rules",
            "schemas/rules.schema.json",
            yaml_files_in("rules"),
            "../",
        ),
        (
            "tests",
            "schemas/tests.schema.json",
            yaml_files_in("rules/tests"),
            "../../",
        ),
        (
            "config",
            "schemas/config.schema.json",
            vec![root().join("config/driftwatch.yaml")],
            "../",
        ),
    ] {
        assert!(!shipped.is_empty(), "no shipped files name {file}");
        let printed = schema(of);
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
        assert_eq!(
            printed, committed,
            "{file} is out of date: run `driftwatch schema {of} > {file}`"
        );
        let validator = jsonschema::validator_for(&committed).unwrap();
        for path in shipped {
            let first = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            assert_eq!(
                first,
                format!("# yaml-language-server: $schema={up}{file}"),
                "{}",
                path.display()
            );
            let errors: Vec<String> = validator
                .iter_errors(&yaml(&path))
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
}

#[test]
fn the_rules_schema_catches_a_misspelt_field_and_a_bad_offset() {
    let validator = jsonschema::validator_for(&schema("rules")).unwrap();
    let good: serde_json::Value = serde_yaml::from_str(
        "rules:\n  - {id: a, title: A, source: s, on: e, due: {from: at, offset: 5 working days}}\n",
    )
    .unwrap();
    assert!(validator.is_valid(&good));
    let misspelt: serde_json::Value = serde_yaml::from_str(
        "rules:\n  - {id: a, title: A, source: s, on: e, due: {from: at, ofset: 5 working days}}\n",
    )
    .unwrap();
    assert!(!validator.is_valid(&misspelt));
    let bad_offset: serde_json::Value = serde_yaml::from_str(
        "rules:\n  - {id: a, title: A, source: s, on: e, due: {from: at, offset: soon}}\n",
    )
    .unwrap();
    assert!(!validator.is_valid(&bad_offset));
}

#[test]
fn the_tests_schema_catches_a_misspelt_field_and_a_bad_state() {
    let validator = jsonschema::validator_for(&schema("tests")).unwrap();
    let test = |expectation: &str| -> serde_json::Value {
        serde_yaml::from_str(&format!(
            "tests:\n  - name: t\n    events: [{{type: care_plan_updated, at: 2027-01-04T10:00:00Z}}]\n    expect:\n      - at: 2027-01-05 12:00\n        obligations: [{expectation}]\n"
        ))
        .unwrap()
    };
    assert!(validator.is_valid(&test("{rule: first_review, state: met_late, key: R1}")));
    assert!(!validator.is_valid(&test("{rule: first_review, stat: open}")));
    assert!(!validator.is_valid(&test("{rule: first_review, state: late}")));
}
