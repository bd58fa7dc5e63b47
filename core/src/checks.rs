//! Checks across cases, for the dashboard and the annual report: brothers and sisters in care
//! with different IROs, a parent and their child both in care with the same IRO, and IROs whose
//! caseload is above the 50–70 guidance (Hertfordshire and Halton procedures).
//!
//! Pure: it folds the cases' statuses ([`CaseStatus`]) one at a time and names cases by their
//! reference and IROs by name (their address only when no name is known), never a child's name.
//! Must not read the store or plan a case.

use crate::planner::CaseStatus;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Good practice for a full-time IRO: 50 to 70 children (Hertfordshire procedures, 2023).
pub const CASELOAD_GUIDANCE: (usize, usize) = (50, 70);

/// Where a caseload of `children` stands against the guidance: `under`, `within` or `over`.
pub fn guidance_for(children: usize) -> &'static str {
    if children < CASELOAD_GUIDANCE.0 {
        "under"
    } else if children <= CASELOAD_GUIDANCE.1 {
        "within"
    } else {
        "over"
    }
}

/// One thing a manager should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Finding {
    /// Siblings in care with more than one IRO between them.
    SiblingsWithDifferentIros {
        sibling_group: String,
        /// Each case and its IRO.
        cases: Vec<(String, String)>,
    },
    /// A child and their parent both in care with the same IRO.
    ParentAndChildShareAnIro {
        case: String,
        parent_case: String,
        iro: String,
    },
    /// An IRO looking after more children than the guidance.
    CaseloadAboveGuidance { iro: String, children: usize },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::SiblingsWithDifferentIros {
                sibling_group,
                cases,
            } => {
                let list: Vec<String> = cases.iter().map(|(c, i)| format!("{c} ({i})")).collect();
                write!(
                    f,
                    "siblings in group {sibling_group} have different IROs: {}",
                    list.join(", ")
                )
            }
            Finding::ParentAndChildShareAnIro {
                case,
                parent_case,
                iro,
            } => write!(
                f,
                "case {case} and the parent's case {parent_case} are both with {iro}; a child in care with a parent in care should have a different IRO"
            ),
            Finding::CaseloadAboveGuidance { iro, children } => write!(
                f,
                "{iro} has {children} children, above the {}–{} guidance",
                CASELOAD_GUIDANCE.0, CASELOAD_GUIDANCE.1
            ),
        }
    }
}

/// How an IRO is named to managers: by name, or by address when no name is known.
pub fn iro_label(status: &CaseStatus) -> Option<String> {
    status.iro.as_ref().map(|c| match &c.name {
        Some(name) if !name.trim().is_empty() => name.clone(),
        _ => c.email.clone(),
    })
}

/// A case in a sibling group: its reference, its IRO's address and how the IRO is named.
type Member = (String, Option<String>, Option<String>);

/// Folds cases one at a time; [`Checks::findings`] gives the result.
#[derive(Debug, Default)]
pub struct Checks {
    /// Sibling group to its members.
    siblings: BTreeMap<String, Vec<Member>>,
    /// Case to its IRO address, for looked-after cases.
    iro_of: BTreeMap<String, String>,
    /// (child case, parent case) pairs.
    parents: Vec<(String, String)>,
    /// IRO address to label and children.
    caseloads: BTreeMap<String, (String, BTreeSet<String>)>,
}

impl Checks {
    pub fn add(&mut self, case: &str, status: &CaseStatus) {
        if !status.looked_after {
            return;
        }
        let email = status.iro.as_ref().map(|c| c.email.to_lowercase());
        let label = iro_label(status);
        if let (Some(email), Some(label)) = (&email, &label) {
            self.iro_of.insert(case.to_string(), email.clone());
            self.caseloads
                .entry(email.clone())
                .or_insert_with(|| (label.clone(), BTreeSet::new()))
                .1
                .insert(case.to_string());
        }
        if let Some(group) = &status.sibling_group {
            self.siblings.entry(group.clone()).or_default().push((
                case.to_string(),
                email.clone(),
                label.clone(),
            ));
        }
        if let Some(parent) = &status.parent_case {
            self.parents.push((case.to_string(), parent.clone()));
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for (group, members) in &self.siblings {
            let iros: BTreeSet<&String> =
                members.iter().filter_map(|(_, e, _)| e.as_ref()).collect();
            if iros.len() > 1 {
                out.push(Finding::SiblingsWithDifferentIros {
                    sibling_group: group.clone(),
                    cases: members
                        .iter()
                        .map(|(c, _, l)| (c.clone(), l.clone().unwrap_or_else(|| "no IRO".into())))
                        .collect(),
                });
            }
        }
        for (child, parent) in &self.parents {
            if let (Some(a), Some(b)) = (self.iro_of.get(child), self.iro_of.get(parent))
                && a == b
            {
                let iro = self
                    .caseloads
                    .get(a)
                    .map(|(l, _)| l.clone())
                    .unwrap_or_else(|| a.clone());
                out.push(Finding::ParentAndChildShareAnIro {
                    case: child.clone(),
                    parent_case: parent.clone(),
                    iro,
                });
            }
        }
        for (label, cases) in self.caseloads.values() {
            if guidance_for(cases.len()) == "over" {
                out.push(Finding::CaseloadAboveGuidance {
                    iro: label.clone(),
                    children: cases.len(),
                });
            }
        }
        out
    }

    /// Each IRO's name (or address when no name is known), by lower-case address.
    pub fn iro_names(&self) -> std::collections::HashMap<String, String> {
        self.caseloads
            .iter()
            .map(|(email, (label, _))| (email.clone(), label.clone()))
            .collect()
    }

    /// Looked-after children per IRO (by label), largest first.
    pub fn caseloads(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .caseloads
            .values()
            .map(|(l, c)| (l.clone(), c.len()))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Contact;

    fn status(iro: Option<(&str, &str)>, group: Option<&str>, parent: Option<&str>) -> CaseStatus {
        CaseStatus {
            looked_after: true,
            period: 1,
            iro: iro.map(|(name, email)| Contact {
                name: Some(name.into()),
                email: email.into(),
            }),
            sibling_group: group.map(str::to_string),
            parent_case: parent.map(str::to_string),
        }
    }

    #[test]
    fn siblings_parents_and_caseloads() {
        let ira = Some(("Ira Reviewer", "ira@council.example"));
        let oli = Some(("Oli Officer", "oli@council.example"));
        let mut checks = Checks::default();
        checks.add("C-1", &status(ira, Some("S1"), None));
        checks.add("C-2", &status(oli, Some("S1"), None));
        checks.add("C-3", &status(ira, Some("S2"), None));
        checks.add("C-4", &status(ira, Some("S2"), None));
        checks.add("M-1", &status(oli, None, None));
        checks.add("C-5", &status(oli, None, Some("M-1")));
        let mut left = status(ira, Some("S2"), None);
        left.looked_after = false;
        checks.add("C-6", &left);
        for i in 0..70 {
            checks.add(&format!("X-{i}"), &status(oli, None, None));
        }
        let found = checks.findings();
        assert_eq!(
            found,
            vec![
                Finding::SiblingsWithDifferentIros {
                    sibling_group: "S1".into(),
                    cases: vec![
                        ("C-1".into(), "Ira Reviewer".into()),
                        ("C-2".into(), "Oli Officer".into())
                    ],
                },
                Finding::ParentAndChildShareAnIro {
                    case: "C-5".into(),
                    parent_case: "M-1".into(),
                    iro: "Oli Officer".into(),
                },
                Finding::CaseloadAboveGuidance {
                    iro: "Oli Officer".into(),
                    children: 73,
                },
            ]
        );
        assert!(
            found[0]
                .to_string()
                .contains("C-1 (Ira Reviewer), C-2 (Oli Officer)")
        );
        assert_eq!(checks.caseloads()[0], ("Oli Officer".into(), 73));
    }
}
