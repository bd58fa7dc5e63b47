//! Comparing what a test expects at a moment with the plan at that moment.
//!
//! Each expected item stands for one item of the plan: it matches an item whose every field the
//! test gives is equal (fields left out are not compared), and two identical expectations need
//! two such items. Expectations are paired with plan items as a maximum matching, so the order
//! they are written in does not matter. With `exactly: true`, a plan item no expectation pairs
//! with is a failure too (with `exactly: [RULE, ...]`, one of those rules). For an expectation left unpaired, the nearest plan items of the same
//! rule are shown with how they differ. Owns nothing but that comparison; pure.

use super::{Candidate, Exactly, Expected, Failure, FailureKind, Moment};
use crate::localtime;
use crate::planner::{CasePlan, Notification, NotificationKind, ObligationPlan, Target};

/// How many near candidates to show for a missing expectation.
const NEAREST: usize = 3;

/// An item of the plan as compared: each field's text, first the one shown, then any other text
/// an expectation may use for it (a step's id beside its title; a due date without its time).
type Item = Vec<(&'static str, Vec<String>)>;

/// An expected item: the fields the test gives, as text.
type Want = Vec<(&'static str, String)>;

/// Every failure at one moment.
pub fn compare(moment: &Moment, plan: &CasePlan) -> Vec<Failure> {
    let mut failures = Vec::new();
    if let Some(expected) = &moment.obligations {
        let wants = expected.iter().map(|e| (obligation_want(e), e.position));
        let items = plan.obligations.iter().map(obligation_item).collect();
        failures.extend(section(moment, "obligation", wants.collect(), items));
    }
    if let Some(expected) = &moment.notifications {
        let wants = expected.iter().map(|e| (notification_want(e), e.position));
        let items = plan.notifications.iter().map(notification_item).collect();
        failures.extend(section(moment, "notification", wants.collect(), items));
    }
    if let Some(expected) = &moment.problems {
        let wants = expected
            .iter()
            .map(|e| (vec![("problem", e.spec.clone())], e.position));
        let items = plan
            .problems
            .iter()
            .map(|p| vec![("problem", vec![p.to_string()])])
            .collect();
        failures.extend(section(moment, "problem", wants.collect(), items));
    }
    failures
}

fn obligation_want(e: &Expected<super::ObligationSpec>) -> Want {
    let s = &e.spec;
    let mut want = vec![("rule", s.rule.clone())];
    want.extend(s.key.clone().map(|k| ("key", k)));
    want.extend(s.state.map(|st| ("state", state_name(st))));
    want.extend(s.due.map(|d| ("due", d.text())));
    want.extend(
        s.working_days_late
            .map(|n| ("working_days_late", n.to_string())),
    );
    want
}

fn notification_want(e: &Expected<super::NotificationSpec>) -> Want {
    let s = &e.spec;
    let mut want = vec![("rule", s.rule.clone())];
    want.extend(s.kind.map(|k| ("kind", kind_name(k).to_string())));
    want.extend(s.step.clone().map(|v| ("step", v)));
    want.extend(s.to.clone().map(|v| ("to", v)));
    want.extend(s.instead_of.clone().map(|v| ("instead_of", v)));
    want.extend(s.send_at.map(|t| ("send_at", t.text())));
    want.extend(s.status.map(|st| ("status", st.as_str().to_string())));
    want.extend(s.late.map(|l| ("late", l.to_string())));
    want
}

/// The state as a test file writes it (`met_late`, as in the JSON plan).
fn state_name(state: crate::planner::ObligationState) -> String {
    state.as_str().replace(' ', "_")
}

fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Reminder => "reminder",
        NotificationKind::Escalation => "escalation",
        NotificationKind::Action => "action",
        NotificationKind::Notice => "notice",
    }
}

fn obligation_item(o: &ObligationPlan) -> Item {
    let due = match &o.due_time {
        Some(t) => vec![format!("{} {t}", o.due), o.due.to_string()],
        None => vec![o.due.to_string()],
    };
    vec![
        ("rule", vec![o.rule.clone()]),
        ("key", o.key.iter().cloned().collect()),
        ("state", vec![state_name(o.state)]),
        ("due", due),
        (
            "working_days_late",
            o.working_days_late
                .iter()
                .map(ToString::to_string)
                .collect(),
        ),
    ]
}

fn notification_item(n: &Notification) -> Item {
    let to = match &n.recipient {
        Target::Email { role, .. } => role.clone(),
        Target::Webhook { webhook } => format!("webhook:{webhook}"),
        Target::Nobody { .. } => "nobody".to_string(),
    };
    let step = match &n.title {
        Some(title) => vec![title.clone(), n.step.clone()],
        None => vec![n.step.clone()],
    };
    vec![
        ("rule", vec![n.rule.clone()]),
        ("kind", vec![kind_name(n.kind).to_string()]),
        ("step", step),
        ("to", vec![to]),
        ("instead_of", n.instead_of.iter().cloned().collect()),
        ("send_at", vec![localtime::display(n.send_at)]),
        ("status", vec![n.status.as_str().to_string()]),
        ("late", vec![n.late.to_string()]),
    ]
}

/// Whether one expected field is met by the item's texts for it. A problem is met by any
/// problem that contains the expected text.
fn field_fits(name: &str, want: &str, have: &[String]) -> bool {
    if name == "problem" {
        have.iter().any(|h| h.contains(want))
    } else {
        have.iter().any(|h| h == want)
    }
}

fn have<'i>(item: &'i Item, name: &str) -> &'i [String] {
    item.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_slice())
        .unwrap_or_default()
}

fn fits(want: &Want, item: &Item) -> bool {
    want.iter()
        .all(|(name, w)| field_fits(name, w, have(item, name)))
}

/// How many of the expected fields the item meets, for ranking near candidates.
fn score(want: &Want, item: &Item) -> usize {
    want.iter()
        .filter(|(name, w)| field_fits(name, w, have(item, name)))
        .count()
}

/// What differs, field by field, in the words a test would use.
fn differences(want: &Want, item: &Item) -> Vec<String> {
    want.iter()
        .filter(|(name, w)| !field_fits(name, w, have(item, name)))
        .map(|(name, w)| match have(item, name).first() {
            Some(h) => format!("{name} is {h}, not {w}"),
            None => format!("no {name}, not {w}"),
        })
        .collect()
}

/// Pairs each expectation with a distinct plan item it fits, as many as possible (augmenting
/// paths; the lists are short). Returns, for each plan item, the expectation it is paired with.
fn pair(fit: &[Vec<bool>], items: usize) -> Vec<Option<usize>> {
    fn augment(
        w: usize,
        fit: &[Vec<bool>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for i in 0..owner.len() {
            if fit[w][i] && !seen[i] {
                seen[i] = true;
                if owner[i].is_none_or(|other| augment(other, fit, owner, seen)) {
                    owner[i] = Some(w);
                    return true;
                }
            }
        }
        false
    }
    let mut owner = vec![None; items];
    for w in 0..fit.len() {
        let mut seen = vec![false; items];
        augment(w, fit, &mut owner, &mut seen);
    }
    owner
}

fn section(
    moment: &Moment,
    noun: &'static str,
    wants: Vec<(Want, Option<(usize, usize)>)>,
    items: Vec<Item>,
) -> Vec<Failure> {
    let fit: Vec<Vec<bool>> = wants
        .iter()
        .map(|(w, _)| items.iter().map(|i| fits(w, i)).collect())
        .collect();
    let owner = pair(&fit, items.len());
    let mut failures = Vec::new();
    for (w, (want, position)) in wants.iter().enumerate() {
        if owner.contains(&Some(w)) {
            continue;
        }
        failures.push(Failure {
            moment: moment.shown.clone(),
            position: *position,
            kind: missing(noun, want, &wants, &items, &owner),
        });
    }
    let unexpected = |item: &Item| match &moment.exactly {
        Exactly::No => false,
        Exactly::All => true,
        Exactly::Rules(rules) => have(item, "rule").iter().any(|r| rules.contains(r)),
    };
    for (i, item) in items.iter().enumerate() {
        if owner[i].is_none() && unexpected(item) {
            failures.push(Failure {
                moment: moment.shown.clone(),
                position: moment.position,
                kind: FailureKind::Unexpected {
                    noun,
                    found: flow(item),
                },
            });
        }
    }
    failures
}

/// An expectation nothing in the plan was paired with, and the plan's nearest items.
fn missing(
    noun: &'static str,
    want: &Want,
    wants: &[(Want, Option<(usize, usize)>)],
    items: &[Item],
    owner: &[Option<usize>],
) -> FailureKind {
    let expected = match want.as_slice() {
        [("problem", text)] => text.clone(),
        _ => flow_want(want),
    };
    let rule = want.iter().find(|(n, _)| *n == "rule").map(|(_, r)| r);
    let same_rule = |item: &Item| rule.is_none_or(|r| have(item, "rule").contains(r));
    // Items already paired that would fit: this expectation repeats another.
    let taken: Vec<String> = items
        .iter()
        .enumerate()
        .filter(|(i, item)| owner[*i].is_some() && fits(want, item))
        .filter_map(|(i, _)| owner[i].and_then(|o| wants[o].1))
        .map(|(line, _)| line.to_string())
        .collect();
    let mut free: Vec<(usize, &Item)> = items
        .iter()
        .enumerate()
        .filter(|(i, item)| owner[*i].is_none() && same_rule(item))
        .map(|(_, item)| (score(want, item), item))
        .collect();
    free.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let more = free.len().saturating_sub(NEAREST);
    let nearest: Vec<Candidate> = free
        .into_iter()
        .take(NEAREST)
        .map(|(_, item)| Candidate {
            shown: match item.as_slice() {
                [("problem", text)] => text.first().cloned().unwrap_or_default(),
                _ => flow(item),
            },
            differs: match want.as_slice() {
                [("problem", _)] => Vec::new(),
                _ => differences(want, item),
            },
        })
        .collect();
    let note = if !taken.is_empty() {
        Some(format!(
            "the plan has no more of these than line {} already expects",
            taken.join(", line ")
        ))
    } else if nearest.is_empty() {
        Some(match rule {
            Some(r) => format!("the plan has no other {noun} of rule `{r}` at this moment"),
            None => format!("the plan has no other {noun} at this moment"),
        })
    } else {
        None
    };
    FailureKind::Missing {
        noun,
        expected,
        nearest,
        more,
        note,
    }
}

/// A plan item as a YAML flow mapping, in the words a test uses, ready to paste.
fn flow(item: &Item) -> String {
    let fields: Want = item
        .iter()
        .filter_map(|(name, values)| values.first().map(|v| (*name, v.clone())))
        .filter(|(name, v)| !(*name == "late" && v == "false"))
        .collect();
    flow_want(&fields)
}

fn flow_want(fields: &Want) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(name, v)| match *name {
            // A number or a boolean, written as such.
            "working_days_late" | "late" => format!("{name}: {v}"),
            _ => format!("{name}: {}", yaml_scalar(v)),
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A value as YAML reads it back as the same text: plain when safe, double-quoted otherwise.
fn yaml_scalar(v: &str) -> String {
    let plain = v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.()/:+-'".contains(c))
        && !v.contains(": ")
        && !v.ends_with(':')
        && !["true", "false", "null", "yes", "no", "on", "off"].contains(&v);
    if plain {
        v.to_string()
    } else {
        serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_pair_with_distinct_items() {
        // Two expectations fit item 0, one of them also item 1: both are paired.
        let fit = vec![vec![true, false], vec![true, true]];
        assert_eq!(pair(&fit, 2), vec![Some(0), Some(1)]);
        // Two identical expectations and one item: one stays unpaired.
        let fit = vec![vec![true], vec![true]];
        assert_eq!(pair(&fit, 1), vec![Some(0)]);
    }

    #[test]
    fn flow_mappings_read_back_as_written() {
        assert_eq!(
            yaml_scalar("reminder -5 working days"),
            "reminder -5 working days"
        );
        assert_eq!(yaml_scalar("2027-01-05 09:00"), "2027-01-05 09:00");
        assert_eq!(
            yaml_scalar("Formal stage 1: service manager"),
            "\"Formal stage 1: service manager\""
        );
        assert_eq!(yaml_scalar("webhook:teams"), "webhook:teams");
        assert_eq!(yaml_scalar("-"), "\"-\"");
        let item: Item = vec![
            ("rule", vec!["first_review".into()]),
            ("key", vec![]),
            ("late", vec!["false".into()]),
        ];
        assert_eq!(flow(&item), "{rule: first_review}");
    }

    #[test]
    fn a_step_matches_by_title_or_id_and_a_due_date_without_its_time() {
        let item: Item = vec![
            (
                "step",
                vec![
                    "Book the first review".into(),
                    "reminder -15 working days".into(),
                ],
            ),
            ("due", vec!["2027-01-04 10:00".into(), "2027-01-04".into()]),
        ];
        assert!(fits(
            &vec![("step", "reminder -15 working days".into())],
            &item
        ));
        assert!(fits(&vec![("step", "Book the first review".into())], &item));
        assert!(fits(&vec![("due", "2027-01-04".into())], &item));
        assert!(!fits(&vec![("due", "2027-01-04 11:00".into())], &item));
        assert_eq!(
            differences(&vec![("due", "2027-01-05".into())], &item),
            vec!["due is 2027-01-04 10:00, not 2027-01-05"]
        );
    }
}
