//! The JSON Schemas editors use: the committed files are what `driftwatch schema` prints, every
//! shipped rules file and the example config name them and pass them, and they catch a typo.

mod common;

use common::root;
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
    for (of, file, shipped) in [
        ("rules", "schemas/rules.schema.json", vec![]),
        (
            "config",
            "schemas/config.schema.json",
            vec![root().join("config/driftwatch.yaml")],
        ),
    ] {
        let printed = schema(of);
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
        assert_eq!(
            printed, committed,
            "{file} is out of date: run `driftwatch schema {of} > {file}`"
        );
        let validator = jsonschema::validator_for(&committed).unwrap();
        let mut files = shipped;
        if of == "rules" {
            files = std::fs::read_dir(root().join("rules"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
        }
        for path in files {
            let first = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            assert_eq!(
                first,
                format!("# yaml-language-server: $schema=../{file}"),
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
