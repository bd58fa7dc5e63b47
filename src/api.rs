//! The HTTP API (axum): events in; plans, obligations and the outbox out; health; and the
//! admin's reload, retry and (with a manual clock) time travel.
//!
//! Owns request parsing, status codes and bearer-token checks. Tokens are configured as SHA-256
//! hashes and compared in constant time; each has scopes (ingest, read, admin). Every error is
//! JSON, `{"error": ...}`, including what axum itself refuses (a body over the limit, an unknown
//! path or method): error bodies say which event and which field are wrong, never echoing a
//! value. Must not plan or deliver: it calls the service and the store.

use crate::app::{Shared, reload};
use crate::config::Scope;
pub use crate::http::hex;
use crate::http::{ApiError, STORE_UNAVAILABLE, authorize};
use crate::scheduler::courier_of;
use crate::service::{CONFLICT_IN_BATCH, CONFLICT_WITH_STORED, Changed, IngestError, OtherRules};
use crate::store::{NotificationFilter, ObligationFilter, ObligationQueryState, OutboxState};
use crate::{feed, telemetry};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

type AppState = Arc<Shared>;

/// The most rows one listing returns.
const MAX_LIMIT: i64 = 10_000;

pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.service.config().api.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/events", post(post_events))
        .route("/v1/cases/{case}/plan", get(case_plan))
        .route("/v1/obligations", get(obligations))
        .route("/v1/notifications", get(notifications))
        .route("/v1/notifications/{key}/retry", post(retry_notification))
        .route("/v1/admin/reload", post(admin_reload))
        .route("/v1/admin/clock", post(admin_clock))
        .route("/v1/admin/digest", post(admin_digest))
        .route("/metrics", get(metrics))
        .route("/v1/feeds", get(feed_url))
        .route("/v1/report", get(report))
        .route("/feeds/{file}", get(calendar_feed))
        .merge(crate::web::router())
        .fallback(no_such_path)
        .method_not_allowed_fallback(no_such_method)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            until_ready,
        ))
        .layer(axum::middleware::from_fn(body_in_time))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response_with_state(
            limit,
            json_errors,
        ))
        .with_state(shared)
}

/// How long a request's body may take to arrive once its headers have.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a request's whole body (within `api.max_body_bytes`) before anything else sees it, and
/// answers `408` to a client that sends it too slowly: one sending a byte at a time would
/// otherwise hold its connection, and what is buffered for it, for ever.
async fn body_in_time(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::extract::FromRequest;
    let (parts, body) = request.into_parts();
    let limits = axum::extract::Request::from_parts(parts.clone(), body);
    match tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(limits, &())).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        // 413 over the limit, 400 for a body cut short; made JSON by `json_errors`.
        Ok(Err(rejection)) => rejection.into_response(),
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} seconds; nothing was stored",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

async fn no_such_path() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such path")
}

async fn no_such_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this path does not take that method",
    )
}

/// Every error answer is the documented JSON shape, whoever made it: an error axum answers by
/// itself (a body over `api.max_body_bytes`, a path or query it could not read) comes as plain
/// text and is replaced by `{"error": ...}` with a fixed message, since axum's text can quote
/// what was sent. JSON answers and the HTML pages are left as they are.
async fn json_errors(State(limit): State<usize>, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let shaped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if shaped {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the body is larger than api.max_body_bytes ({limit} bytes); nothing was stored"
        ),
        StatusCode::NOT_FOUND => "no such path".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this path does not take that method".to_string(),
        StatusCode::BAD_REQUEST => {
            "the request could not be read (its path, query string or body)".to_string()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the body's Content-Type is not one this path takes".to_string()
        }
        other => other
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_lowercase(),
    };
    let mut shaped = ApiError::new(status, message).into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        shaped.headers_mut().insert(header::ALLOW, allow.clone());
    }
    shaped
}

/// Until the store is open (the database may still be down when the daemon starts), and while
/// the database does not answer its probe, every call but the health checks is answered `503`
/// at once: nothing is accepted that could not be stored.
async fn until_ready(
    State(s): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(request).await;
    }
    if !s.service.store().is_answering() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, STORE_UNAVAILABLE).into_response();
    }
    if s.is_ready() {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "driftwatch is waiting for its database; nothing was changed, try again",
    )
    .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> Response {
    let rules = s.service.config().rules.rules.len();
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"database": "unavailable", "rules": rules})),
        )
            .into_response()
    };
    // Not open yet: the start-up logs why, once per attempt rather than once per probe. Not
    // answering its probe: said at once.
    if !s.is_ready() || !s.service.store().is_answering() {
        return unavailable();
    }
    let held = s.service.config().rules_version.clone();
    match s.service.store().rules_in_force().await {
        Ok(in_force) => match OtherRules::check(&held, in_force) {
            Ok(()) => Json(json!({"database": "ok", "rules": rules, "rules_version": held}))
                .into_response(),
            // Not ready: a load balancer sends events to a daemon with the rules in force.
            Err(other) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "database": "ok",
                    "rules": rules,
                    "rules_version": other.held,
                    "rules_in_force": other.in_force,
                    "error": OtherRules::MESSAGE,
                })),
            )
                .into_response(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            unavailable()
        }
    }
}

/// `POST /v1/events`: one event, an array of events, or JSON Lines
/// (`Content-Type: application/x-ndjson`). All or nothing: one bad event rejects the batch.
async fn post_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Ingest)?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let values = if ndjson {
        parse_json_lines(&body).inspect_err(|_| telemetry::events_rejected("bad_json"))?
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(items)) => items,
            Ok(one) => vec![one],
            Err(e) => {
                telemetry::events_rejected("bad_json");
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not JSON: {e}"),
                ));
            }
        }
    };
    if values.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no events in the body",
        ));
    }
    let events = s.service.check(&values).inspect_err(|_| {
        telemetry::events_rejected("invalid");
    })?;
    let accepted = s
        .service
        .ingest_with(events.into(), Changed::Refuse)
        .await
        .map_err(|e| match e {
            IngestError::Store(e) => {
                telemetry::events_rejected("unavailable");
                ApiError::unavailable(e)
            }
            // Posted events are handed over whole, never a chunk at a time.
            IngestError::Source(_) => {
                telemetry::events_rejected("unavailable");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the events could not be handed to the store; nothing was stored",
                )
            }
            IngestError::OtherRules(other) => {
                telemetry::events_rejected("unavailable");
                ApiError::other_rules(&other)
            }
            IngestError::Conflict { id, stored } => {
                telemetry::events_rejected("conflict");
                let message = if stored {
                    CONFLICT_WITH_STORED
                } else {
                    CONFLICT_IN_BATCH
                };
                ApiError {
                    status: if stored {
                        StatusCode::CONFLICT
                    } else {
                        StatusCode::UNPROCESSABLE_ENTITY
                    },
                    body: json!({
                        "error": format!("event {id}: id: {message}"),
                        "event": id,
                        "field": "id",
                        "message": message,
                    }),
                }
            }
        })?;
    for a in &accepted {
        telemetry::event_accepted(a.status == crate::service::AcceptedStatus::Stored);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": accepted}))).into_response())
}

fn parse_json_lines(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("line {}: not JSON: {e}", i + 1),
                )
            })
        })
        .collect()
}

async fn case_plan(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(case): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Read)?;
    match s
        .service
        .case_plan(&case)
        .await
        .map_err(ApiError::unavailable)?
    {
        Some(plan) => Ok(Json(plan).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no events are stored for this case",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct ObligationQuery {
    state: Option<String>,
    role: Option<String>,
    email: Option<String>,
    rule: Option<String>,
    case: Option<String>,
    limit: Option<String>,
}

/// `limit=N`: a whole number; below 1 counts as 1 and above [`MAX_LIMIT`] as [`MAX_LIMIT`].
fn limit_of(text: Option<&str>) -> Result<i64, ApiError> {
    match text {
        None => Ok(1000),
        Some(t) => t
            .parse::<i64>()
            .map(|n| n.clamp(1, MAX_LIMIT))
            .map_err(|_| {
                ApiError::bad("limit", "must be a whole number (at most 10000 are listed)")
            }),
    }
}

/// A required `YYYY-MM-DD` query parameter.
fn date_of(field: &str, text: Option<&str>) -> Result<chrono::NaiveDate, ApiError> {
    let text = text.ok_or_else(|| ApiError::bad(field, "is required"))?;
    crate::event::parse_date(text)
        .ok_or_else(|| ApiError::bad(field, "must be a date such as 2027-01-21"))
}

/// `GET /v1/obligations`: what a person or a manager needs to chase. `state` is `outstanding`
/// (the default: open, overdue or not), `open`, `overdue`, `met`, `met_late` or `cancelled`;
/// `role` and `email` pick the obligations that person is told about.
async fn obligations(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ObligationQuery>,
) -> Result<Response, ApiError> {
    let config = s.service.config();
    authorize(&headers, &config, Scope::Read)?;
    let state = match q.state.as_deref() {
        None => ObligationQueryState::Outstanding,
        Some(text) => serde_json::from_value(Value::String(text.to_string())).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "state: must be outstanding, open, overdue, met, met_late or cancelled",
            )
        })?,
    };
    let filter = ObligationFilter {
        state,
        role: q.role,
        email: q.email,
        rule: q.rule,
        case: q.case,
        limit: limit_of(q.limit.as_deref())?,
    };
    let now = s.service.now();
    let found = s
        .service
        .store()
        .obligations(&filter, now)
        .await
        .map_err(ApiError::unavailable)?;
    let items: Vec<Value> = found
        .into_iter()
        .map(|o| {
            let mut body = o.body;
            if o.open {
                // The stored state is as of the last plan; say what it is now.
                let overdue = o.deadline <= now;
                body["state"] = json!(if overdue { "overdue" } else { "open" });
                body["working_days_late"] = match body["due"].as_str().map(str::parse) {
                    Some(Ok(due)) => json!(crate::planner::working_days_late_at(
                        &config.calendar,
                        due,
                        o.deadline,
                        now
                    )),
                    _ => Value::Null,
                };
            }
            body["case"] = json!(o.case);
            body["people"] = json!(o.people);
            body
        })
        .collect();
    Ok(Json(json!({"now": now, "count": items.len(), "obligations": items})).into_response())
}

#[derive(Debug, Deserialize)]
struct NotificationQuery {
    state: Option<String>,
    case: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/notifications?state=dead`: the outbox, including what finally failed and why.
async fn notifications(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NotificationQuery>,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Read)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(word) => Some(OutboxState::parse(word).ok_or_else(|| {
            let states: Vec<&str> = OutboxState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("state: must be one of {}", states.join(", ")),
            )
        })?),
    };
    let filter = NotificationFilter {
        state,
        case: q.case,
        key: None,
        limit: limit_of(q.limit.as_deref())?,
    };
    let found = s
        .service
        .store()
        .notifications(&filter)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(json!({"count": found.len(), "notifications": found})).into_response())
}

/// `POST /v1/notifications/{key}/retry`: sends a dead notification again (after the cause is
/// fixed).
async fn retry_notification(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Admin)?;
    let retried = s
        .service
        .store()
        .retry_dead(&key, s.service.now())
        .await
        .map_err(ApiError::unavailable)?;
    if !retried {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no dead notification has this key",
        ));
    }
    s.service.wake();
    Ok(Json(json!({"retried": key})).into_response())
}

#[derive(Deserialize)]
struct ReloadQuery {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/admin/reload`: reads the config, rules and templates again and re-plans every case;
/// with `?dry_run=true`, says what that would change (deadlines moved, messages added or
/// withdrawn in the next ten working days, by rule) and changes nothing.
async fn admin_reload(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReloadQuery>,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Admin)?;
    if q.dry_run {
        return match crate::app::preview_reload(&s).await {
            Ok(change) => Ok(
                Json(json!({"dry_run": true, "reloaded": false, "change": change})).into_response(),
            ),
            Err(e) => Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: json!({"error": "the changed rules would be refused; nothing was changed", "problems": e.problems}),
            }),
        };
    }
    match reload(&s).await {
        Ok(cases) => Ok(Json(json!({"reloaded": true, "cases_replanned": cases})).into_response()),
        Err(e) => Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({"error": "reload refused; the previous rules keep running", "problems": e.problems}),
        }),
    }
}

/// `POST /v1/admin/digest`: sends today's digests now (they also go by themselves at
/// `digest.at` on working days); each person's goes once a day however often this is called.
async fn admin_digest(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Admin)?;
    let sent = crate::app::send_digests(&s).await;
    Ok(Json(json!({"sent": sent})).into_response())
}

/// How long a clock move waits for the scheduler to catch up before answering anyway.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// `POST /v1/admin/clock {"now": ...}`: with `run --manual-clock`, moves the clock forward and
/// answers once the scheduler has sent everything due by then.
async fn admin_clock(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Admin)?;
    if !s.service.clock().is_manual() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "the clock is the system clock; start with --manual-clock to move it",
        ));
    }
    let request: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be JSON: {\"now\": \"RFC 3339 time\"}",
        )
    })?;
    let now = request
        .get("now")
        .and_then(Value::as_str)
        .and_then(crate::event::parse_timestamp)
        .ok_or_else(|| {
            ApiError::bad(
                "now",
                "must be an RFC 3339 timestamp such as 2027-01-04T09:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    s.service
        .clock()
        .set(now)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    let caught_up = s.progress.caught_up();
    s.service.wake();
    let settled = tokio::select! {
        settled = tokio::time::timeout(CATCH_UP_LIMIT, caught_up) => settled.is_ok(),
        // SIGTERM: answer now; the scheduler finishes the deliveries in flight and stops.
        () = s.stopping() => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "driftwatch is stopping: the clock was moved, but what falls due by then may not \
                 all be handled until it runs again",
            ));
        }
    };
    Ok(Json(json!({"now": now, "caught_up": settled})).into_response())
}

/// `GET /metrics`: Prometheus text. Obligations and the outbox are counted from the store at
/// each scrape; every rule appears, at zero when it has nothing open.
async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let config = s.service.config();
    authorize(&headers, &config, Scope::Read)?;
    let Some(handle) = telemetry::handle() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not being recorded",
        ));
    };
    let store = s.service.store();
    let counted = store
        .obligation_counts(s.service.now())
        .await
        .map_err(ApiError::unavailable)?;
    let mut obligations: Vec<(String, &'static str, i64)> = config
        .rules
        .rules
        .iter()
        .flat_map(|r| [(r.id.clone(), "open", 0), (r.id.clone(), "overdue", 0)])
        .filter(|(rule, state, _)| !counted.iter().any(|(r, st, _)| r == rule && st == state))
        .collect();
    obligations.extend(counted);
    let outbox = store.outbox_counts().await.map_err(ApiError::unavailable)?;
    telemetry::store_figures(&obligations, &outbox);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    email: Option<String>,
}

/// `GET /v1/feeds?email=...` (admin): the secret URL of a person's calendar feed.
async fn feed_url(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Response, ApiError> {
    let config = s.service.config();
    authorize(&headers, &config, Scope::Admin)?;
    let courier = courier_of(&s.courier);
    let Some(links) = courier.links() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "calendar feeds are off: configure links.secret_env or links.secret_file",
        ));
    };
    let email = q
        .email
        .ok_or_else(|| ApiError::bad("email", "is required"))?;
    Ok(Json(json!({"url": links.feed_url(&email)})).into_response())
}

/// `GET /feeds/{token}.ics`: a person's outstanding deadlines, and the meetings those
/// obligations are about, as iCalendar. The token is the credential; a wrong one gets `404`.
async fn calendar_feed(
    State(s): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such feed");
    let courier = courier_of(&s.courier);
    let links = courier.links().ok_or_else(not_found)?;
    let token = file.strip_suffix(".ics").unwrap_or(&file);
    let store = s.service.store();
    let config = s.service.config();
    let people = store.people().await.map_err(ApiError::unavailable)?;
    let email = links
        .feed_owner(token, people.iter().map(String::as_str))
        .ok_or_else(not_found)?;
    let now = s.service.now();
    let filter = ObligationFilter {
        email: Some(email),
        limit: 10_000,
        ..ObligationFilter::default()
    };
    let found = store
        .obligations(&filter, now)
        .await
        .map_err(ApiError::unavailable)?;
    let mut items = Vec::new();
    let mut meetings = std::collections::BTreeSet::new();
    for o in &found {
        let body = &o.body;
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        let replanned = body["replanned"].as_array().map_or(0, Vec::len);
        let Ok(due) = text("due").parse::<chrono::NaiveDate>() else {
            continue;
        };
        let overdue = o.deadline <= now;
        items.push(feed::FeedItem {
            uid: format!("{}/{}@driftwatch", o.case, text("id")),
            when: feed::When::Day(due),
            summary: format!(
                "{}{}: {}",
                if overdue { "OVERDUE " } else { "" },
                o.case,
                text("title")
            ),
            description: format!(
                "Case reference {}. Rule {}: {}.",
                o.case,
                text("rule"),
                text("source")
            ),
            sequence: u32::try_from(replanned).unwrap_or(0),
        });
        // The meeting the obligation is about, in the event that last set it (where the
        // vocabulary's meetings say it takes place).
        let last = body["replanned"]
            .as_array()
            .and_then(|r| r.last())
            .and_then(|r| r["by"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| text("opened_by"));
        let meeting = store
            .event_data(&last)
            .await
            .map_err(ApiError::unavailable)?
            .and_then(|d| config.rules.case.meeting_time(&d));
        let key = body["key"].as_str().unwrap_or("-");
        if let Some(at) = meeting.filter(|t| *t >= now)
            && meetings.insert((o.case.clone(), key.to_string()))
        {
            items.push(feed::FeedItem {
                uid: format!("{}/meeting/{key}@driftwatch", o.case),
                when: feed::When::At(at),
                summary: format!("{}: review meeting", o.case),
                description: format!("Case reference {}. Review {key}.", o.case),
                sequence: u32::try_from(replanned).unwrap_or(0),
            });
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        feed::render("driftwatch", &items, now),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// `GET /v1/report?from=2026-04-01&to=2027-03-31[&format=json|csv|html]`: the annual report's
/// figures as JSON (the default), CSV, or the page for the board.
async fn report(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    authorize(&headers, &s.service.config(), Scope::Read)?;
    let from = date_of("from", q.from.as_deref())?;
    let to = date_of("to", q.to.as_deref())?;
    if to < from {
        return Err(ApiError::bad("to", "must not be before `from`"));
    }
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "csv", "html"].contains(&format) {
        return Err(ApiError::bad("format", "must be json, csv or html"));
    }
    let report = s
        .service
        .report(from, to)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(match format {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::report::csv(&report),
        )
            .into_response(),
        "html" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            ],
            crate::report::html::page(&report),
        )
            .into_response(),
        _ => Json(report).into_response(),
    })
}
