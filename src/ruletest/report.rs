//! The outcome of rule tests as people read it: each test `ok` or `FAILED`, and for each failure
//! its `file:line:column`, the moment, what was expected and what the plan had instead.
//! Owns only the wording; pure.

use super::{FailureKind, FileOutcome};
use std::fmt::Write;
use std::path::Path;

/// How many tests ran and how many failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub tests: usize,
    pub failed: usize,
}

fn place(path: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

/// The report of every file's tests, and the counts.
pub fn render(outcomes: &[FileOutcome]) -> (String, Summary) {
    let mut out = String::new();
    let mut summary = Summary::default();
    for file in outcomes {
        summary.files += 1;
        let _ = writeln!(out, "Testing {}", file.path.display());
        for test in &file.tests {
            summary.tests += 1;
            if test.passed() {
                let _ = writeln!(out, "  ok      {}", test.name);
                continue;
            }
            summary.failed += 1;
            let _ = writeln!(
                out,
                "  FAILED  {} ({})",
                test.name,
                place(&file.path, test.position)
            );
            for failure in &test.failures {
                let at = place(&file.path, failure.position);
                match &failure.kind {
                    FailureKind::Missing {
                        noun,
                        expected,
                        nearest,
                        more,
                        note,
                    } => {
                        let _ = writeln!(
                            out,
                            "    {at}: at {}: expected {noun} not in the plan",
                            failure.moment
                        );
                        let _ = writeln!(out, "      expected: {expected}");
                        for candidate in nearest {
                            let _ = writeln!(out, "      nearest:  {}", candidate.shown);
                            for d in &candidate.differs {
                                let _ = writeln!(out, "                {d}");
                            }
                        }
                        if *more > 0 {
                            let _ = writeln!(out, "      ({more} more of the same rule not shown)");
                        }
                        if let Some(note) = note {
                            let _ = writeln!(out, "      ({note})");
                        }
                    }
                    FailureKind::Unexpected { noun, found } => {
                        let _ = writeln!(
                            out,
                            "    {at}: at {}: the plan has a {noun} not expected (exactly)",
                            failure.moment
                        );
                        let _ = writeln!(out, "      found:    {found}");
                    }
                }
            }
        }
    }
    let passed = summary.tests - summary.failed;
    let _ = writeln!(
        out,
        "\n{} test(s) in {} file(s): {passed} passed, {} failed",
        summary.tests, summary.files, summary.failed
    );
    (out, summary)
}
