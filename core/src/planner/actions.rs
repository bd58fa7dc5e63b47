//! Deadline actions and what follows them: invitations sent at the deadline, decisions derived
//! when it passes, the review administrator told when nobody is on the list, and, after the
//! invitations went, everyone invited told when the meeting moves (a new invitation replacing
//! the earlier one) or is cancelled.

use super::recipients::Addressed;
use super::{
    End, EndKind, FollowUp, FollowUpKind, LateReason, NoteMeta, Notification, NotificationKind,
    NotificationStatus, Obligation, Replaced, Run, Segment, Sent, Target, UpcomingEvent,
};
use crate::event::Event;
use crate::rules::{Action, ObligationRule, Rule, Send};
use chrono::{DateTime, Utc};
use serde_json::Map;
use std::collections::HashSet;

impl Run<'_, '_> {
    /// The earliest deadline action due by `now` among open obligations (those whose sends
    /// already found nobody in this stretch wait for a change).
    pub(super) fn next_action(&mut self) -> Option<(DateTime<Utc>, usize)> {
        while let Some(std::cmp::Reverse((m, i, segments))) = self.actions.peek().copied() {
            let o = &self.obligations[i];
            let waiting = o.nobody.iter().any(|(s, _)| *s + 1 == segments);
            if o.end.is_some() || o.segments.len() != segments || waiting {
                self.actions.pop();
                continue;
            }
            return (m <= self.now).then_some((m, i));
        }
        None
    }

    /// Puts obligation `idx`'s deadline actions, if its rule has any, in the queue at the moment
    /// its current segment gives them.
    pub(super) fn queue_actions(&mut self, idx: usize) {
        let o = &self.obligations[idx];
        let Some(rule) = self.rules().rules[o.rule].obligation() else {
            return;
        };
        if !rule.at_deadline.is_empty() {
            let m = self.action_moment(rule, o.current());
            self.actions
                .push(std::cmp::Reverse((m, idx, o.segments.len())));
        }
    }

    /// When a rule's deadline actions happen for a segment: sends at the start of working hours
    /// on the due date (the last compliant moment); derived events when the deadline passes.
    /// Never before the segment began.
    pub(super) fn action_moment(&self, rule: &ObligationRule, seg: &Segment) -> DateTime<Utc> {
        let sends: Vec<&Send> = sends(rule).map(|(_, s)| s).collect();
        if sends.is_empty() {
            seg.due.deadline().max(seg.start)
        } else {
            let urgent = sends.iter().all(|s| s.urgent);
            self.planner.place(seg.due.start().max(seg.start), urgent)
        }
    }

    /// Takes an obligation's deadline actions at `at`: records derived events, and who the
    /// sends go to. Sends that find nobody at all (and nobody was sent to before) do not meet
    /// the obligation: it stays open, and `if_nobody` is told.
    pub(super) fn fire_actions(
        &mut self,
        idx: usize,
        at: DateTime<Utc>,
        queue: &mut Vec<Event>,
        next: usize,
    ) {
        let rules = self.planner.rules;
        let ob = self.obligations[idx].clone();
        let rule = &rules.rules[ob.rule];
        let Some(orule) = rule.obligation() else {
            return;
        };
        let segment = ob.segments.len() - 1;
        let seg = ob.current().clone();
        let already: HashSet<String> = ob.sent_to().iter().map(Target::identity).collect();
        let mut found_anyone = !already.is_empty();
        let mut sent = Vec::new();
        for (action, send) in sends(orule) {
            let what = format!("rule {} at deadline", rule.id);
            let addressed = self.recipients(
                send,
                at,
                &seg.data,
                ob.trigger_at,
                ob.item.as_ref(),
                Some(&what),
            );
            found_anyone |= !addressed.is_empty();
            let targets: Vec<Target> = addressed
                .into_iter()
                .map(|a| a.target)
                .filter(|t| !already.contains(&t.identity()))
                .collect();
            if !targets.is_empty() {
                sent.push(Sent {
                    segment,
                    at,
                    action,
                    targets,
                });
            }
        }
        let has_emits = orule
            .at_deadline
            .iter()
            .any(|a| matches!(a, Action::Emit { .. }));
        if !found_anyone && !has_emits {
            self.obligations[idx].nobody.push((segment, at));
            return;
        }
        for action in &orule.at_deadline {
            if let Action::Emit { event, data } = action {
                let mut out = Map::new();
                for (field, path) in data {
                    if let Some(v) = path.resolve_in(&seg.data, ob.trigger_at, ob.item.as_ref()) {
                        out.insert(field.clone(), v);
                    }
                }
                // The derived event happened when the deadline passed, even if driftwatch only
                // learned of the obligation later (a back-dated start of care).
                let derived = Event {
                    id: format!("derived:{}:{}", self.case, ob.id(rule)),
                    case: self.case.clone(),
                    kind: event.clone(),
                    at: seg.due.deadline().min(at),
                    data: out,
                    source: Some(format!("driftwatch rule {}", rule.id)),
                };
                self.derived.push(derived.clone());
                if self.known_derived.contains(&derived.id) {
                    continue;
                }
                let applied_later = next
                    .checked_sub(1)
                    .and_then(|i| queue.get(i))
                    .is_some_and(|e| e.at > derived.at);
                if applied_later {
                    self.back_dated.push(derived);
                } else {
                    let pos = next
                        + queue[next..]
                            .partition_point(|e| (e.at, &e.id) <= (derived.at, &derived.id));
                    queue.insert(pos, derived);
                }
            }
        }
        let ob = &mut self.obligations[idx];
        ob.sent.extend(sent);
        ob.end = Some(End {
            at,
            kind: EndKind::Actioned,
            by: "driftwatch".into(),
        });
    }

    /// An obligation already met by its deadline sends, against a later event: a cancellation
    /// tells everyone it went to (`if_cancelled`); a move re-opens it for the new deadline and
    /// sends everyone it went to a new message replacing the earlier one (`if_moved`); an
    /// `ended_by` event (the meeting was held) settles it.
    pub(super) fn match_after_action(&mut self, idx: usize, event: &Event) {
        let rules = self.planner.rules;
        let ob = &self.obligations[idx];
        if ob.settled || ob.sent.is_empty() {
            return;
        }
        let rule = &rules.rules[ob.rule];
        let Some(orule) = rule.obligation() else {
            return;
        };
        let key = ob.key.clone();
        let key = key.as_deref();
        let what = |field: &str| format!("rule {} {field} {}", rule.id, event.kind);
        if orule
            .ended_by
            .iter()
            .any(|m| self.matches(m, key, event, || what("ended_by")))
        {
            self.obligations[idx].settled = true;
        } else if orule
            .cancelled_by
            .iter()
            .any(|m| self.matches(m, key, event, || what("cancelled_by")))
        {
            self.tell_cancelled(idx, event.at);
            self.obligations[idx].settled = true;
        } else if let Some(r) = orule
            .replanned_by
            .iter()
            .find(|r| self.matches(&r.matcher, key, event, || what("replanned_by")))
        {
            let anchor = r.from.resolve(event, None);
            self.move_after_sending(idx, rule, orule, anchor, event);
        }
    }

    /// Everyone a deadline send went to is told it is cancelled (`if_cancelled`), when it went
    /// to anyone and the rule says what to tell them.
    pub(super) fn tell_cancelled(&mut self, idx: usize, at: DateTime<Utc>) {
        let rules = self.planner.rules;
        let ob = &mut self.obligations[idx];
        let Some(orule) = rules.rules[ob.rule].obligation() else {
            return;
        };
        let told = sends(orule).any(|(_, s)| s.after.if_cancelled.is_some());
        if ob.sent.is_empty() || !told {
            return;
        }
        let segment = ob.segments.len() - 1;
        let replaces = Replaced {
            due: ob.current().due.date,
            at: None,
        };
        ob.follow_ups.push(FollowUp {
            kind: FollowUpKind::Cancelled,
            at,
            segment,
            replaces,
        });
    }

    /// Moves an obligation's deadline; if its deadline sends went already and the rule says
    /// what to tell people (`if_moved`), it is open again for the new deadline and everyone it
    /// went to is told at once. A move that changes nothing but the list (the same meeting time)
    /// tells nobody it moved: the people added are invited, at the deadline or at once.
    pub(super) fn move_after_sending(
        &mut self,
        idx: usize,
        rule: &Rule,
        orule: &ObligationRule,
        anchor: Option<serde_json::Value>,
        event: &Event,
    ) {
        let before = self.obligations[idx].current().clone();
        let old_anchor = self.anchor_of(&self.obligations[idx], orule, &before);
        let segments = self.obligations[idx].segments.len();
        self.replan(idx, rule, orule, anchor, event);
        let if_moved = sends(orule).any(|(_, s)| s.after.if_moved.is_some());
        let ob = &self.obligations[idx];
        if ob.segments.len() == segments || ob.sent.is_empty() || !if_moved {
            return;
        }
        let after = ob.current().clone();
        let new_anchor = self.anchor_of(ob, orule, &after);
        let ob = &mut self.obligations[idx];
        if ob.end.as_ref().is_some_and(|e| e.kind == EndKind::Actioned) {
            ob.end = None;
        }
        if (after.due, new_anchor) == (before.due, old_anchor) {
            return;
        }
        ob.follow_ups.push(FollowUp {
            kind: FollowUpKind::Moved,
            at: event.at,
            segment: ob.segments.len() - 1,
            replaces: Replaced {
                due: before.due.date,
                at: old_anchor,
            },
        });
    }

    /// The notifications of an obligation's deadline actions: those that went, the one still
    /// to come, the warnings that nobody was on the list, and the follow-ups after they went.
    pub(super) fn deadline_notifications(
        &mut self,
        ob: &Obligation,
        rule: &Rule,
        orule: &ObligationRule,
        out: &mut Vec<Notification>,
        upcoming: &mut Vec<UpcomingEvent>,
    ) {
        let id = ob.id(rule);
        let meta = |seg: &Segment, step: &str, late: bool| NoteMeta {
            late: late.then_some(LateReason::OpenedLate),
            kind: NotificationKind::Action,
            step: step.to_string(),
            title: None,
            rule: rule.id.clone(),
            obligation: Some(id.clone()),
            due: Some(seg.due.date),
            event: ob.opened_by.clone(),
            replaces: None,
            data: seg.data.clone(),
        };
        let action_sends: Vec<(usize, &Send)> = sends(orule).collect();
        let send_of = |action: usize| {
            action_sends
                .iter()
                .find(|(a, _)| *a == action)
                .map(|(_, s)| *s)
        };

        for s in &ob.sent {
            let (Some(seg), Some(send)) = (ob.segments.get(s.segment), send_of(s.action)) else {
                continue;
            };
            let late = seg.start > seg.due.start() || s.at >= seg.due.deadline();
            let number = (s.segment + 1).to_string();
            let targets = s.targets.iter().cloned().map(Addressed::to).collect();
            self.push_targets(
                out,
                &[&id, "at deadline", &number],
                targets,
                send,
                s.at,
                NotificationStatus::Scheduled,
                &meta(seg, "at deadline", late),
            );
        }

        // Still to come, for an open obligation: to everyone not sent it already.
        let segment = ob.segments.len() - 1;
        let seg = ob.current();
        let waiting = ob.nobody.iter().any(|(s, _)| *s == segment);
        if ob.end.is_none() && !orule.at_deadline.is_empty() && !waiting {
            let at = self.action_moment(orule, seg);
            let already: HashSet<String> = ob.sent_to().iter().map(Target::identity).collect();
            let number = (segment + 1).to_string();
            for (_, send) in &action_sends {
                let addressed: Vec<Addressed> = self
                    .recipients(send, at, &seg.data, ob.trigger_at, ob.item.as_ref(), None)
                    .into_iter()
                    .filter(|a| !already.contains(&a.target.identity()))
                    .collect();
                let late = seg.start > seg.due.start() || at >= seg.due.deadline();
                self.push_targets(
                    out,
                    &[&id, "at deadline", &number],
                    addressed,
                    send,
                    at,
                    NotificationStatus::Scheduled,
                    &meta(seg, "at deadline", late),
                );
            }
            for action in &orule.at_deadline {
                if let Action::Emit { event, .. } = action {
                    upcoming.push(UpcomingEvent {
                        kind: event.clone(),
                        at,
                        rule: rule.id.clone(),
                        obligation: id.clone(),
                    });
                }
            }
        }

        for &(segment, at) in &ob.nobody {
            let Some(seg) = ob.segments.get(segment) else {
                continue;
            };
            let number = (segment + 1).to_string();
            let fallback = action_sends
                .iter()
                .find_map(|(_, s)| s.after.if_nobody.as_deref());
            match fallback {
                Some(send) => self.push_notifications(
                    out,
                    &[&id, "nobody", &number],
                    send,
                    at,
                    NotificationStatus::Scheduled,
                    meta(seg, "nobody to send to", false),
                    ob.trigger_at,
                    ob.item.as_ref(),
                ),
                None => {
                    let tried: Vec<String> = action_sends
                        .iter()
                        .flat_map(|(_, s)| s.to.iter().map(ToString::to_string))
                        .collect();
                    self.problems.push(format!(
                        "error: rule {} at deadline: nobody to send to ({}); it is recorded as undeliverable",
                        rule.id,
                        tried.join(", ")
                    ).into());
                    if let Some((_, send)) = action_sends.first() {
                        self.push_targets(
                            out,
                            &[&id, "at deadline", &number],
                            vec![Addressed::to(Target::Nobody { tried })],
                            send,
                            at,
                            NotificationStatus::Scheduled,
                            &meta(seg, "at deadline", false),
                        );
                    }
                }
            }
        }

        for (i, fu) in ob.follow_ups.iter().enumerate() {
            let Some(seg) = ob.segments.get(fu.segment) else {
                continue;
            };
            let at = self.planner.place(fu.at, false);
            // A new date overtaken before it could go (moved again, cancelled) is not sent: it
            // is no longer true. Nothing goes after the child left care.
            let overtaken = (fu.kind == FollowUpKind::Moved
                && ob.follow_ups[i + 1..].iter().any(|later| later.at <= at))
                || self.period_ends.iter().any(|e| *e >= fu.at && *e < at);
            if overtaken {
                continue;
            }
            let (step, number) = match fu.kind {
                FollowUpKind::Moved => ("moved", (fu.segment + 1).to_string()),
                FollowUpKind::Cancelled => ("cancelled", String::new()),
            };
            // Still on the list for the new date: invited again; taken off it: told the
            // meeting they were invited to is off for them.
            let on_list: Option<HashSet<String>> = (fu.kind == FollowUpKind::Moved).then(|| {
                action_sends
                    .iter()
                    .flat_map(|(_, send)| {
                        self.recipients(send, at, &seg.data, ob.trigger_at, ob.item.as_ref(), None)
                    })
                    .map(|a| a.target.identity())
                    .collect()
            });
            // Late when the new deadline had already passed when the meeting moved.
            let late = fu.kind == FollowUpKind::Moved && at > seg.due.start();
            for (action, send) in &action_sends {
                let mut seen = HashSet::new();
                let sent_before: Vec<Target> = ob
                    .sent
                    .iter()
                    .filter(|s| s.action == *action && s.at <= fu.at)
                    .flat_map(|s| s.targets.iter())
                    .filter(|t| seen.insert(t.identity()))
                    .cloned()
                    .collect();
                let (stay, gone): (Vec<Target>, Vec<Target>) = sent_before
                    .into_iter()
                    .partition(|t| on_list.as_ref().is_none_or(|l| l.contains(&t.identity())));
                // Those taken off the list are told of the meeting they were invited to.
                let earlier = fu
                    .segment
                    .checked_sub(1)
                    .and_then(|i| ob.segments.get(i))
                    .unwrap_or(seg);
                let parts = [
                    (step, seg, fu.kind, stay),
                    ("taken off the list", earlier, FollowUpKind::Cancelled, gone),
                ];
                for (step, about, kind, targets) in parts {
                    let template = match kind {
                        FollowUpKind::Moved => send.after.if_moved.as_ref(),
                        FollowUpKind::Cancelled => send.after.if_cancelled.as_ref(),
                    };
                    let Some(template) = template else { continue };
                    let follow = Send {
                        template: template.clone(),
                        ..(*send).clone()
                    };
                    let meta = NoteMeta {
                        replaces: Some(fu.replaces.clone()),
                        ..meta(about, step, late && kind == FollowUpKind::Moved)
                    };
                    let targets = targets.into_iter().map(Addressed::to).collect();
                    self.push_targets(
                        out,
                        &[&id, step, &number],
                        targets,
                        &follow,
                        at,
                        NotificationStatus::Scheduled,
                        &meta,
                    );
                }
            }
        }
    }
}

/// A rule's deadline sends, with their place among its actions.
fn sends(rule: &ObligationRule) -> impl Iterator<Item = (usize, &Send)> {
    rule.at_deadline
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            Action::Send(s) => Some((i, s)),
            Action::Emit { .. } => None,
        })
}
