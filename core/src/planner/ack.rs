//! Acknowledgements and snoozes: what a recipient's click on the link in a reminder or
//! escalation changes in the plan.
//!
//! Acknowledging a notification stops the repeats of its step to that person for that deadline:
//! after a reminder is acknowledged, the later reminders of the same obligation and deadline are
//! not sent to them; after an escalation stage is acknowledged, that stage's repeats (the steps
//! with the same id) are not. The next step of the ladder still comes while the obligation stays
//! unmet, and a moved deadline starts the reminders again. A snooze does the same until the
//! chosen working day, when the step is sent to that person once more.
//!
//! Pure, like the rest of the planner: it reads the acknowledgement events and rewrites the
//! notifications the ladder produced.

use super::{Notification, ObligationPlan, ObligationState, idempotency_key};
use super::{NotificationKind, NotificationStatus};
use crate::event::Event;
use chrono::{DateTime, NaiveDate, Utc};

/// One `notification_acknowledged` event, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ack {
    pub at: DateTime<Utc>,
    /// The idempotency key of the notification whose link was followed.
    pub notification: String,
    /// For a snooze: the day to be told again.
    pub until: Option<NaiveDate>,
}

impl Ack {
    /// Reads an acknowledgement event; `None` when its data is not usable (the API only ever
    /// records usable ones).
    pub fn of(event: &Event) -> Option<Ack> {
        let notification = event.data.get("notification")?.as_str()?.to_string();
        let until = match event.data.get("action")?.as_str()? {
            "acknowledge" => None,
            "snooze" => Some(
                event
                    .data
                    .get("until")?
                    .as_str()?
                    .parse::<NaiveDate>()
                    .ok()?,
            ),
            _ => return None,
        };
        Some(Ack {
            at: event.at,
            notification,
            until,
        })
    }
}

/// Whether two notifications are repeats of one step to one person for one deadline.
fn same_step(a: &Notification, b: &Notification) -> bool {
    a.obligation.is_some()
        && a.obligation == b.obligation
        && a.kind == b.kind
        && a.due == b.due
        && a.recipient.identity() == b.recipient.identity()
        && (a.kind == NotificationKind::Reminder || a.step == b.step)
}

/// Applies acknowledgements in the order they were made. `place` turns a snooze's day into the
/// moment its reminder goes (the start of working hours).
pub(super) fn apply(
    case: &str,
    now: DateTime<Utc>,
    acks: &[Ack],
    obligations: &[ObligationPlan],
    notifications: &mut Vec<Notification>,
    place: impl Fn(NaiveDate) -> DateTime<Utc>,
) {
    for ack in acks {
        let Some(acked) = notifications
            .iter()
            .find(|n| n.idempotency_key == ack.notification)
            .filter(|n| {
                matches!(
                    n.kind,
                    NotificationKind::Reminder | NotificationKind::Escalation
                )
            })
            .cloned()
        else {
            continue;
        };
        let snooze_at = ack.until.map(&place);
        for n in notifications.iter_mut() {
            // A repeat on the snooze day itself gives way to the snoozed copy.
            let silenced = n.send_at > ack.at && snooze_at.is_none_or(|s| n.send_at <= s);
            if n.idempotency_key != acked.idempotency_key
                && same_step(n, &acked)
                && silenced
                && n.status != NotificationStatus::Superseded
            {
                n.status = NotificationStatus::Acknowledged;
            }
        }
        let Some(at) = snooze_at else {
            continue;
        };
        // The step comes back on the chosen day while its obligation is still open then, with
        // the same deadline (a moved deadline has started its own reminders), and a reminder
        // only before the deadline passes (the escalations take over then).
        let comes_back = obligations
            .iter()
            .find(|o| Some(&o.id) == acked.obligation.as_ref())
            .is_some_and(|o| {
                let open = match o.state {
                    ObligationState::Open | ObligationState::Overdue => true,
                    _ => o.closed_at.is_some_and(|c| c > at),
                };
                let in_time = acked.kind != NotificationKind::Reminder || at < o.deadline;
                open && in_time && acked.due == Some(o.due)
            });
        if !comes_back {
            continue;
        }
        let day = at.format("%Y-%m-%d").to_string();
        notifications.push(Notification {
            idempotency_key: idempotency_key(&[case, &acked.idempotency_key, "snoozed", &day]),
            send_at: at,
            status: if at <= now {
                NotificationStatus::Due
            } else {
                NotificationStatus::Scheduled
            },
            late: false,
            step: format!("{} (snoozed)", acked.step),
            ..acked
        });
    }
}
