//! Where the rules, templates, bank holidays and config come from: a council's folders, or the
//! defaults built into the binary, so `driftwatch run` works from any folder.
//!
//! Owns reading those files into memory (the rules loader and the template engine take text,
//! not paths) and the built-in copies of `rules/`, `templates/`, `config/bank-holidays.json`,
//! `config/driftwatch.yaml` and `config/snapshot-mapping.yaml`. Must not check or interpret
//! what it reads: that is the rules loader's and the config's job.

use crate::diagnostic::Diagnostic;
use include_dir::{Dir, include_dir};
use std::path::{Path, PathBuf};

static RULES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/rules");
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static SCHEMAS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/schemas");

/// The built-in bank holidays (the UK government's file, as shipped).
pub const BANK_HOLIDAYS: &str = include_str!("../config/bank-holidays.json");
/// The built-in config: the shipped example.
pub const CONFIG: &str = include_str!("../config/driftwatch.yaml");
/// The built-in snapshot mapping.
pub const SNAPSHOT_MAPPING: &str = include_str!("../config/snapshot-mapping.yaml");

/// Where built-in files say they come from, in messages (`built-in/rules/reviews.yaml`).
pub const BUILT_IN: &str = "built-in";

/// The folder of rule tests inside a rules folder: not rules, so not read as rules.
pub const RULE_TESTS: &str = "tests";

pub use driftwatch_core::sources::{SourceFile, TemplateFiles};

/// Reads and checks every `*.yaml` under `rules_dir` (but for its `tests/` folder) and every
/// template under `templates_dir`, against the names the config provides.
pub fn load_rules(
    rules_dir: &Path,
    templates_dir: &Path,
    services: &crate::rules::Services,
) -> Result<crate::rules::RuleSet, crate::diagnostic::Diagnostics> {
    let (files, mut read) = read_rules_dir(rules_dir);
    let (templates, more) = read_templates_dir(templates_dir);
    read.extend(more);
    crate::rules::RuleSet::from_read(&files, &templates, read, services)
}

/// Every `*.yaml` or `*.yml` file under `dir` and its subfolders, but for `tests/`, sorted by
/// path; a problem for a folder or file that cannot be read.
pub fn read_rules_dir(dir: &Path) -> (Vec<SourceFile>, Vec<Diagnostic>) {
    let mut paths = Vec::new();
    let mut problems = Vec::new();
    collect_yaml(dir, dir, &mut paths, &mut problems);
    paths.sort();
    if paths.is_empty() && problems.is_empty() {
        problems.push(Diagnostic::whole_file(dir, "no *.yaml rules files here"));
    }
    let mut files = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(SourceFile { path, text }),
            Err(e) => problems.push(Diagnostic::whole_file(&path, format!("cannot read: {e}"))),
        }
    }
    (files, problems)
}

fn collect_yaml(top: &Path, dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Diagnostic::whole_file(
                dir,
                format!("cannot read the rules folder: {e}"),
            ));
            return;
        }
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if dir == top && entry.file_name() == RULE_TESTS {
                continue;
            }
            collect_yaml(top, &path, out, problems);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Every template folder under `dir` with the parts it has; a problem when `dir` cannot be read.
/// Which parts a template needs is the template engine's business.
pub fn read_templates_dir(dir: &Path) -> (TemplateFiles, Vec<Diagnostic>) {
    let mut out = TemplateFiles::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let problem =
                Diagnostic::whole_file(dir, format!("cannot read the templates folder: {e}"));
            return (out, vec![problem]);
        }
    };
    let mut problems = Vec::new();
    for folder in entries.filter_map(Result::ok).map(|e| e.path()) {
        if !folder.is_dir() {
            continue;
        }
        let Some(name) = folder.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let parts = out.entry(name.to_string()).or_default();
        for part in crate::expr::TEMPLATE_PARTS {
            let path = folder.join(part);
            if !path.exists() {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    parts.insert(part.to_string(), SourceFile { path, text });
                }
                Err(e) => problems.push(Diagnostic::whole_file(&path, format!("cannot read: {e}"))),
            }
        }
    }
    (out, problems)
}

/// The rules built into the binary (the shipped `rules/`, without its tests).
pub fn built_in_rules() -> Vec<SourceFile> {
    built_in_rules_folder(false)
}

/// The rule tests built into the binary (the shipped `rules/tests/`), which `driftwatch test`
/// runs when the built-in rules are in force.
pub fn built_in_rule_tests() -> Vec<SourceFile> {
    built_in_rules_folder(true)
}

/// The YAML files of the built-in `rules/`: its tests, or everything else.
fn built_in_rules_folder(tests: bool) -> Vec<SourceFile> {
    let mut files = Vec::new();
    collect_built_in(&RULES, &mut files, &|p| {
        p.starts_with(RULE_TESTS) == tests
            && p.extension().is_some_and(|e| e == "yaml" || e == "yml")
    });
    files
        .into_iter()
        .map(|(path, text)| SourceFile {
            path: Path::new(BUILT_IN).join("rules").join(path),
            text,
        })
        .collect()
}

/// The templates built into the binary (the shipped `templates/`).
pub fn built_in_templates() -> TemplateFiles {
    let mut files = Vec::new();
    collect_built_in(&TEMPLATES, &mut files, &|_| true);
    let mut out = TemplateFiles::new();
    for (path, text) in files {
        let (Some(name), Some(part)) = (
            path.parent().and_then(|p| p.to_str()),
            path.file_name().and_then(|p| p.to_str()),
        ) else {
            continue;
        };
        out.entry(name.to_string()).or_default().insert(
            part.to_string(),
            SourceFile {
                path: Path::new(BUILT_IN).join("templates").join(&path),
                text,
            },
        );
    }
    out
}

fn collect_built_in(
    dir: &Dir<'static>,
    out: &mut Vec<(PathBuf, String)>,
    keep: &dyn Fn(&Path) -> bool,
) {
    for file in dir.files() {
        if keep(file.path())
            && let Some(text) = file.contents_utf8()
        {
            out.push((file.path().to_path_buf(), text.to_string()));
        }
    }
    for sub in dir.dirs() {
        collect_built_in(sub, out, keep);
    }
    out.sort();
}

/// Every built-in file a council may want to edit, by the path `driftwatch init` writes it to:
/// the config, the rules and their tests, the templates, the bank holidays, the snapshot
/// mapping and the JSON Schemas editors use.
pub fn defaults_to_write() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for (dir, under) in [
        (&RULES, "rules"),
        (&TEMPLATES, "templates"),
        (&SCHEMAS, "schemas"),
    ] {
        let mut files = Vec::new();
        collect_built_in(dir, &mut files, &|_| true);
        out.extend(
            files
                .into_iter()
                .map(|(p, t)| (Path::new(under).join(p), t)),
        );
    }
    // The config names its schema and its folders from beside them, not from `config/`.
    let config = CONFIG
        .replace("$schema=../schemas/", "$schema=schemas/")
        .replace("rules: ../rules", "rules: rules")
        .replace("templates: ../templates", "templates: templates")
        .replace("sqlite:../var/driftwatch.db", "sqlite:var/driftwatch.db")
        .replace("spool: ../var/outbox", "spool: var/outbox");
    out.push((PathBuf::from("driftwatch.yaml"), config));
    out.push((
        PathBuf::from("bank-holidays.json"),
        BANK_HOLIDAYS.to_string(),
    ));
    out.push((
        PathBuf::from("snapshot-mapping.yaml"),
        SNAPSHOT_MAPPING.to_string(),
    ));
    out
}
