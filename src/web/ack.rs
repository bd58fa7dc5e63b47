//! `GET /ack/{token}` shows what the link acknowledges and asks to confirm; `POST` records it.
//!
//! A GET never changes anything, so a mail scanner that follows links cannot acknowledge for
//! anyone. The POST stores a `notification_acknowledged` event whose id is derived from the
//! notification, so a link works once: a second press finds the event already stored.

use super::{AppState, message, page};
use crate::event::Event;
use crate::links::LinkError;
use crate::localtime;
use crate::planner::{Notification, NotificationKind};
use crate::rules::vocabulary::ACKNOWLEDGED;
use crate::scheduler::courier_of;
use crate::store::NotificationFilter;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How many working days ahead a snooze can reach.
pub const SNOOZE_WORKING_DAYS: i32 = 10;

/// The id of the event that acknowledges a notification: one per notification.
fn event_id(key: &str) -> String {
    format!("ack-{key}")
}

/// What a valid link points at.
struct Found {
    key: String,
    case: String,
    notification: Notification,
    expires: DateTime<Utc>,
}

/// Checks the link and finds its notification, or says (as a page) why not.
async fn find(s: &AppState, token: &str) -> Result<Found, Response> {
    let courier = courier_of(&s.courier);
    let Some(links) = courier.links() else {
        return Err(message(
            StatusCode::NOT_FOUND,
            "Not found",
            "Acknowledgement links are not switched on here.",
        ));
    };
    let now = s.service.now();
    let (key, expires) = links.ack(token, now).map_err(|e| match e {
        LinkError::Invalid => message(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            "It may have been altered or cut short. Open it again from the email, or copy the \
             whole address.",
        ),
        LinkError::Expired => message(
            StatusCode::GONE,
            "This link has expired",
            "Acknowledgement links work for a limited time after the message is sent. If the \
             obligation is still open, the next reminder or escalation will carry a new link.",
        ),
    })?;
    let unavailable = |_| {
        message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "driftwatch cannot reach its store just now; nothing was changed.",
        )
    };
    let filter = NotificationFilter {
        key: Some(key.clone()),
        limit: 1,
        ..NotificationFilter::default()
    };
    let entry = s
        .service
        .store()
        .notifications(&filter)
        .await
        .map_err(unavailable)?
        .pop();
    let notification = entry
        .as_ref()
        .and_then(|e| serde_json::from_value::<Notification>(e.notification.clone()).ok())
        .filter(|n| {
            matches!(
                n.kind,
                NotificationKind::Reminder | NotificationKind::Escalation
            )
        });
    let (Some(entry), Some(notification)) = (entry, notification) else {
        return Err(message(
            StatusCode::NOT_FOUND,
            "Nothing to acknowledge",
            "driftwatch has no reminder or escalation for this link any more.",
        ));
    };
    let acknowledged = s
        .service
        .store()
        .has_event(&event_id(&key))
        .await
        .map_err(unavailable)?;
    if acknowledged {
        return Err(already());
    }
    Ok(Found {
        key,
        case: entry.case,
        notification,
        expires,
    })
}

fn already() -> Response {
    message(
        StatusCode::CONFLICT,
        "Already acknowledged",
        "This reminder was acknowledged (or snoozed) before; a link works once.",
    )
}

#[derive(Serialize)]
struct Day {
    value: String,
    label: String,
}

/// The days a snooze may choose: the council's next [`SNOOZE_WORKING_DAYS`] open days (no
/// reminder comes back on a closure day).
fn snooze_days(s: &AppState) -> Vec<NaiveDate> {
    let config = s.service.config();
    let today = localtime::date_of(s.service.now());
    (1..=SNOOZE_WORKING_DAYS)
        .map(|n| {
            config
                .calendar
                .add_in(crate::calendar::Reckoning::Council, today, n)
        })
        .collect()
}

/// `GET /ack/{token}`: what the link is for, and the buttons. Changes nothing.
pub async fn show(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let found = match find(&s, &token).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let n = &found.notification;
    let config = s.service.config();
    let title = config
        .rules
        .rule(&n.rule)
        .map_or(n.rule.as_str(), |r| r.title.as_str());
    let what = match &n.title {
        Some(step) => format!("{title} ({step})"),
        None => title.to_string(),
    };
    let kind = match n.kind {
        NotificationKind::Escalation => "escalation",
        _ => "reminder",
    };
    let effect = match n.kind {
        NotificationKind::Escalation => {
            "It is recorded on the case; if the obligation stays unmet, the next stage still comes."
        }
        _ => {
            "The later reminders for this deadline stop coming to you; if it is still not met \
             when it falls due, the escalation still comes."
        }
    };
    let days: Vec<Day> = snooze_days(&s)
        .into_iter()
        .map(|d| Day {
            value: d.to_string(),
            label: d.format("%A %-d %B %Y").to_string(),
        })
        .collect();
    page(
        StatusCode::OK,
        "ack.html",
        json!({
            "heading": format!("Acknowledge this {kind}"),
            "case": found.case,
            "what": what,
            "kind": kind,
            "effect": effect,
            "due": n.due.map(|d| d.format("%A %-d %B %Y").to_string()).unwrap_or_default(),
            "snooze_days": days,
            "expires": localtime::in_words(found.expires),
        }),
    )
}

#[derive(Debug, Deserialize)]
pub struct AckForm {
    action: String,
    #[serde(default)]
    until: Option<String>,
}

/// `POST /ack/{token}`: records the acknowledgement (or snooze) as an event, once.
pub async fn act(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<AckForm>,
) -> Response {
    let found = match find(&s, &token).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let mut data = Map::new();
    data.insert("notification".into(), json!(found.key));
    let until = match form.action.as_str() {
        "acknowledge" => None,
        "snooze" => {
            let chosen = form
                .until
                .as_deref()
                .and_then(crate::event::parse_date)
                .filter(|d| snooze_days(&s).contains(d));
            let Some(day) = chosen else {
                return message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Choose a day",
                    &format!(
                        "A snooze runs to one of the next {SNOOZE_WORKING_DAYS} working days. \
                         Go back and choose one of the days offered."
                    ),
                );
            };
            data.insert("until".into(), json!(day.to_string()));
            Some(day)
        }
        _ => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unknown action",
                "The form asks to acknowledge or to snooze.",
            );
        }
    };
    data.insert(
        "action".into(),
        Value::from(if until.is_some() {
            "snooze"
        } else {
            "acknowledge"
        }),
    );
    let event = Event {
        id: event_id(&found.key),
        case: found.case.clone(),
        kind: ACKNOWLEDGED.to_string(),
        at: s.service.now(),
        data,
        source: Some("driftwatch".into()),
    };
    match s.service.ingest(std::slice::from_ref(&event)).await {
        Ok(accepted)
            if accepted
                .first()
                .is_some_and(|a| a.status == crate::service::AcceptedStatus::Duplicate) =>
        {
            already()
        }
        Ok(_) => {
            tracing::info!(
                case = found.case.as_str(),
                key = found.key.as_str(),
                rule = found.notification.rule.as_str(),
                snoozed = until.is_some(),
                "a notification was acknowledged through its link"
            );
            crate::telemetry::acknowledged(until.is_some());
            match until {
                None => message(
                    StatusCode::OK,
                    "Acknowledged",
                    "Thank you, it is recorded. Repeats of this message stop coming to you; if \
                     the obligation is still not met, the next step will still come.",
                ),
                Some(day) => message(
                    StatusCode::OK,
                    "Snoozed",
                    &format!(
                        "You will be reminded again on {}, if the obligation is still open then.",
                        day.format("%A %-d %B %Y")
                    ),
                ),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "an acknowledgement could not be stored");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "driftwatch cannot reach its store just now; nothing was changed.",
            )
        }
    }
}
