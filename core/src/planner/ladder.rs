//! An obligation's reminders and escalations: when each step falls, which are passed over, an
//! escalation ladder moved straight to a later stage, and the step someone who joins the case
//! late is sent.

use super::{
    LateReason, NoteMeta, Notification, NotificationKind, NotificationStatus, Obligation, Run,
    localtime, step_day,
};
use crate::rules::{ObligationRule, Recipient, Rule, Send, Step};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One step placed in time: when, which, whether it goes, whether late.
struct Placed<'r> {
    at: DateTime<Utc>,
    kind: NotificationKind,
    step: &'r Step,
    /// Its index in its ladder.
    index: usize,
    status: NotificationStatus,
    late: bool,
}

impl Run<'_, '_> {
    /// Reminders and escalations of one obligation across its segments.
    pub(super) fn ladder(
        &mut self,
        ob: &Obligation,
        rule: &Rule,
        orule: &ObligationRule,
        out: &mut Vec<Notification>,
    ) {
        let id = ob.id(rule);
        let end_at = ob.end.as_ref().map(|e| e.at);
        let mut fired: HashMap<String, u32> = HashMap::new();
        for (i, seg) in ob.segments.iter().enumerate() {
            let seg_end = match (ob.segments.get(i + 1).map(|s| s.start), end_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let before_end = |t: DateTime<Utc>| seg_end.is_none_or(|e| t < e);
            let deadline = seg.due.deadline();
            let mut placed: Vec<Placed> = Vec::new();
            for (kind, steps) in [
                (NotificationKind::Reminder, &orule.reminders),
                (NotificationKind::Escalation, &orule.escalations),
            ] {
                let mut missed: Vec<(DateTime<Utc>, usize)> = Vec::new();
                for (index, step) in steps.iter().enumerate() {
                    let Some(date) =
                        step_day(self.planner.calendar, kind, &step.offset, seg.due.date)
                    else {
                        continue;
                    };
                    let nominal = self.planner.place(localtime::start_of(date), false);
                    if nominal >= seg.start {
                        if !before_end(nominal) {
                            continue;
                        }
                        let status = if kind == NotificationKind::Reminder && nominal >= deadline {
                            NotificationStatus::Superseded
                        } else {
                            NotificationStatus::Scheduled
                        };
                        placed.push(Placed {
                            at: nominal,
                            kind,
                            step,
                            index,
                            status,
                            late: false,
                        });
                    } else if i == 0 || !fired.contains_key(&step.id) {
                        missed.push((nominal, index));
                    }
                }
                // Of the steps whose time passed before this segment began, only the latest goes
                // (late, now); the rest are superseded by it.
                missed.sort_by_key(|(t, _)| *t);
                if let Some((_, latest)) = missed.pop() {
                    let step = &steps[latest];
                    let at = self.planner.place(seg.start, step.send.urgent);
                    let stale_reminder = kind == NotificationKind::Reminder && at >= deadline;
                    if before_end(at) {
                        placed.push(Placed {
                            at,
                            kind,
                            step,
                            index: latest,
                            status: if stale_reminder {
                                NotificationStatus::Superseded
                            } else {
                                NotificationStatus::Scheduled
                            },
                            late: true,
                        });
                    }
                    for (nominal, index) in missed {
                        placed.push(Placed {
                            at: nominal,
                            kind,
                            step: &steps[index],
                            index,
                            status: NotificationStatus::Superseded,
                            late: true,
                        });
                    }
                }
            }
            self.advance(ob, seg.start, seg_end, &mut placed);
            let joined = self.joiners(seg.start, seg_end, deadline, &placed);

            for p in &placed {
                let count = fired.entry(p.step.id.clone()).or_default();
                // A superseded step is never sent; its key only has to be unique.
                let occurrence = if p.status == NotificationStatus::Superseded {
                    format!("superseded at {}", p.at.to_rfc3339())
                } else {
                    *count += 1;
                    count.to_string()
                };
                let late = p.late.then_some(LateReason::OpenedLate);
                let meta = self.step_meta(ob, rule, &id, p.kind, p.step, seg.due.date, late);
                let meta = NoteMeta {
                    data: seg.data.clone(),
                    ..meta
                };
                self.push_notifications(
                    out,
                    &[&id, &p.step.id, &occurrence],
                    &p.step.send,
                    p.at,
                    p.status,
                    meta,
                    ob.trigger_at,
                    ob.item.as_ref(),
                );
            }
            for (at, kind, step, send) in joined {
                let late = Some(LateReason::JoinedLate);
                let meta = self.step_meta(ob, rule, &id, kind, step, seg.due.date, late);
                let meta = NoteMeta {
                    data: seg.data.clone(),
                    ..meta
                };
                self.push_notifications(
                    out,
                    &[&id, &step.id, "joined"],
                    &send,
                    at,
                    NotificationStatus::Scheduled,
                    meta,
                    ob.trigger_at,
                    ob.item.as_ref(),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn step_meta(
        &self,
        ob: &Obligation,
        rule: &Rule,
        id: &str,
        kind: NotificationKind,
        step: &Step,
        due: chrono::NaiveDate,
        late: Option<LateReason>,
    ) -> NoteMeta {
        NoteMeta {
            kind,
            step: step.id.clone(),
            title: step.title.clone(),
            rule: rule.id.clone(),
            obligation: Some(id.to_string()),
            due: Some(due),
            event: ob.opened_by.clone(),
            late,
            replaces: None,
            data: ob.current().data.clone(),
        }
    }

    /// An escalation ladder moved to a later stage (`advanced_by`): that stage goes at once (in
    /// working hours unless urgent) and the earlier stages not yet gone are passed over.
    fn advance(
        &self,
        ob: &Obligation,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        placed: &mut [Placed],
    ) {
        for &(t, target) in &ob.advances {
            if t < start || end.is_some_and(|e| t >= e) {
                continue;
            }
            for p in placed.iter_mut().filter(|p| {
                p.kind == NotificationKind::Escalation
                    && p.at >= t
                    && p.status != NotificationStatus::Superseded
            }) {
                if p.index < target {
                    p.status = NotificationStatus::Superseded;
                } else if p.index == target {
                    p.at = self.planner.place(t, p.step.send.urgent);
                    p.late = false;
                }
            }
        }
    }

    /// Someone who joins the case in a role after a step addressed to that role went (an IRO
    /// allocated after "book the first review" was sent) is sent the step that applies now: the
    /// latest one of either ladder that went to the role before they joined, while the
    /// obligation is still open (a reminder only while its deadline is still ahead).
    fn joiners<'r>(
        &self,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        deadline: DateTime<Utc>,
        placed: &[Placed<'r>],
    ) -> Vec<(DateTime<Utc>, NotificationKind, &'r Step, Send)> {
        let mut roles: Vec<&str> = placed
            .iter()
            .flat_map(|p| p.step.send.to.iter())
            .filter_map(|r| match r {
                Recipient::Role(role) if self.planner.rules.case.roles.contains(role) => {
                    Some(role.as_str())
                }
                _ => None,
            })
            .collect();
        roles.sort_unstable();
        roles.dedup();
        let mut out = Vec::new();
        for role in roles {
            for (t, email) in self.history.joins(role) {
                if t <= start || end.is_some_and(|e| t >= e) || t > self.now {
                    continue;
                }
                let applies = placed
                    .iter()
                    .filter(|p| {
                        p.at < t
                            && p.status != NotificationStatus::Superseded
                            && p.step.send.to.contains(&Recipient::Role(role.to_string()))
                    })
                    .max_by_key(|p| (p.at, p.kind));
                let Some(p) = applies else { continue };
                let had_it = self
                    .history
                    .at(p.at)
                    .and_then(|s| s.contacts.get(role))
                    .is_some_and(|c| c.email.eq_ignore_ascii_case(&email));
                let at = self.planner.place(t, p.step.send.urgent);
                if had_it
                    || end.is_some_and(|e| at >= e)
                    || (p.kind == NotificationKind::Reminder && at >= deadline)
                {
                    continue;
                }
                let send = Send {
                    to: vec![Recipient::Role(role.to_string())],
                    ..p.step.send.clone()
                };
                out.push((at, p.kind, p.step, send));
            }
        }
        out
    }
}
