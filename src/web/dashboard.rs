//! `GET /dashboard` and `GET /dashboard/cases/{case}`: what is overdue and due soon, by IRO,
//! rule and case, the dead deliveries, and each case's timeline. Read scope: the browser asks for
//! the token as the password of HTTP Basic (any user name), so no other login is needed.

use super::{AppState, message, page};
use crate::config::Scope;
use crate::http::authorize;
use crate::localtime;
use crate::store::{NotificationFilter, ObligationFilter, ObligationQueryState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

/// The most outstanding obligations one page reads.
const MAX_ROWS: i64 = 10_000;
/// The most dead deliveries one page lists.
const DEAD_LIMIT: i64 = 1000;

/// The token check: the refusal as a page, if any (a 401 makes the browser ask for the token).
fn refusal(s: &AppState, headers: &HeaderMap) -> Option<Response> {
    authorize(headers, &s.service.config(), Scope::Read)
        .err()
        .map(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                let mut r = message(
                    StatusCode::UNAUTHORIZED,
                    "Sign in",
                    "Give an API token with the read scope as the password (any user name).",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Basic realm=\"driftwatch dashboard\", charset=\"UTF-8\"",
                    ),
                );
                r
            } else {
                message(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    "This token does not have the read scope.",
                )
            }
        })
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the store failed while showing the dashboard");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "driftwatch cannot reach its store just now.",
    )
}

#[derive(Serialize)]
struct Dead {
    key: String,
    case: String,
    rule: String,
    /// The role or webhook it was for.
    to: String,
    channel: String,
    send_at: String,
    attempts: i64,
    last_error: String,
}

/// The role or webhook a stored notification was for (`iro`, `webhook:teams`), never the
/// address.
fn recipient_label(notification: &serde_json::Value) -> String {
    serde_json::from_value::<crate::planner::Notification>(notification.clone())
        .map(|n| n.recipient.label())
        .unwrap_or_default()
}

/// `GET /dashboard`
pub async fn overview(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    let config = s.service.config();
    let now = s.service.now();
    let store = s.service.store();
    let filter = ObligationFilter {
        state: ObligationQueryState::Outstanding,
        limit: MAX_ROWS,
        ..ObligationFilter::default()
    };
    let obligations = match store.obligations(&filter, now).await {
        Ok(o) => o,
        Err(e) => return unavailable(e),
    };
    let dead = NotificationFilter {
        state: Some(crate::store::OutboxState::Dead),
        limit: DEAD_LIMIT,
        ..NotificationFilter::default()
    };
    let dead: Vec<Dead> = match store.notifications(&dead).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| Dead {
                // Which role or webhook it was for, never the address.
                to: recipient_label(&r.notification),
                key: r.idempotency_key,
                case: r.case,
                rule: config
                    .rules
                    .rule(&r.rule)
                    .map_or(r.rule.clone(), |x| x.title.clone()),
                channel: r.channel,
                send_at: localtime::short_in_words(r.send_at),
                attempts: r.attempts,
                last_error: r.last_error.unwrap_or_default(),
            })
            .collect(),
        Err(e) => return unavailable(e),
    };
    // Checks across cases, folding the stored case statuses a page at a time.
    let mut checks = crate::checks::Checks::default();
    let mut after = String::new();
    loop {
        let page = match store.case_statuses(&after, 1_000).await {
            Ok(p) => p,
            Err(e) => return unavailable(e),
        };
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (case, status) in &page {
            if let Some(status) = status
                .as_deref()
                .and_then(|j| serde_json::from_str::<crate::planner::CaseStatus>(j).ok())
            {
                checks.add(case, &status);
            }
        }
    }
    let findings: Vec<String> = checks.findings().iter().map(ToString::to_string).collect();
    let truncated = obligations.len() as i64 >= MAX_ROWS;
    let o = crate::dashboard::overview(
        &config.calendar,
        &obligations,
        now,
        config.digest.horizon_working_days,
        &checks.iro_names(),
    );
    page(
        StatusCode::OK,
        "dashboard.html",
        json!({
            "o": o,
            "checks": findings,
            "dead": dead,
            "dead_limit": DEAD_LIMIT,
            "truncated": truncated,
            "read": MAX_ROWS,
            "now": localtime::in_words(now),
        }),
    )
}

/// `GET /dashboard/cases/{case}`
pub async fn case(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(case): Path<String>,
) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    let store = s.service.store();
    let plan = match s.service.case_plan(&case).await {
        Ok(Some(plan)) => plan,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                "No such case",
                "driftwatch has no events for this case reference.",
            );
        }
        Err(e) => return unavailable(e),
    };
    let events = match store.case_events(&case).await {
        Ok(e) => e,
        Err(e) => return unavailable(e),
    };
    let filter = NotificationFilter {
        case: Some(case.clone()),
        limit: 10_000,
        ..NotificationFilter::default()
    };
    let outbox = match store.notifications(&filter).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    let entries = crate::dashboard::timeline(&s.service.config().rules, &plan, &events, &outbox);
    page(
        StatusCode::OK,
        "case.html",
        json!({"case": case, "entries": entries, "now": localtime::in_words(s.service.now())}),
    )
}
