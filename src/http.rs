//! What the API and the pages share about HTTP: who may call (tokens and their scopes, checked
//! in constant time) and how an error is answered ([`ApiError`], JSON naming the field, never
//! the value). Must not route or answer requests itself (`api` and `web` do).

use crate::config::{Config, Scope};
use crate::event::EventError;
use crate::service::OtherRules;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a request is told when the database does not answer.
pub(crate) const STORE_UNAVAILABLE: &str =
    "the store is unavailable; nothing was changed, try again";

/// An error answer: a status and a JSON body `{"error": ...}` with optional details.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({"error": message.into()}),
        }
    }

    /// `400` for a query parameter or body field that cannot be read: names it, never its value.
    pub(crate) fn bad(field: &str, message: &str) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": format!("{field}: {message}"), "field": field, "message": message}),
        }
    }

    /// `503`: another daemon sharing the database holds other rules (see [`OtherRules`]).
    pub(crate) fn other_rules(other: &OtherRules) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: json!({
                "error": OtherRules::MESSAGE,
                "rules_version": other.held,
                "rules_in_force": other.in_force,
            }),
        }
    }

    pub(crate) fn unavailable(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "the store failed during a request");
        // A full disk does not pass by itself: 507 tells the sender (and whoever reads its
        // logs) that someone must free space first.
        if e.is_disk_full() {
            return ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "the database's disk is full; nothing was changed, try again once space is freed",
            );
        }
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, STORE_UNAVAILABLE)
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({
                "error": e.to_string(),
                "event": e.event,
                "field": e.field,
                "message": e.message,
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"driftwatch\""),
            );
        }
        response
    }
}

/// The token a request presents: `Authorization: Bearer TOKEN`, or, for reading (the dashboard
/// in a browser), HTTP Basic with the token as the password (the user name is not used).
///
/// Basic is refused for anything but reading: a browser that signed in to the dashboard sends
/// Basic credentials with every request to the site, including form posts made by other sites,
/// which must not be able to post events or use admin calls in its name. A Bearer token is never
/// sent by a browser on its own.
fn presented_token(headers: &HeaderMap, scope: Scope) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    // The scheme is case-insensitive (RFC 9110): `bearer` is `Bearer`.
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.trim().to_string()
    } else if scheme.eq_ignore_ascii_case("basic") && scope == Scope::Read {
        let basic = credentials.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        text.split_once(':')?.1.to_string()
    } else {
        return None;
    };
    (!token.is_empty()).then_some(token)
}

/// Checks the token and its scope. Every configured hash is compared, in constant time, so the
/// answer's timing does not tell which tokens exist.
pub(crate) fn authorize(
    headers: &HeaderMap,
    config: &Config,
    scope: Scope,
) -> Result<(), ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required (Authorization: Bearer TOKEN)",
        )
    };
    let token = presented_token(headers, scope).ok_or_else(unauthorized)?;
    let digest = hex(&Sha256::digest(token.as_bytes()));
    let mut found = None;
    for t in &config.api.tokens {
        let same: bool = digest
            .as_bytes()
            .ct_eq(t.sha256.to_ascii_lowercase().as_bytes())
            .into();
        if same && found.is_none() {
            found = Some(t);
        }
    }
    let token = found.ok_or_else(unauthorized)?;
    if token.scopes.contains(&scope) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the token `{}` does not have the `{}` scope",
                token.name,
                scope.as_str()
            ),
        ))
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
