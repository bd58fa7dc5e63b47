//! The pages people open in a browser: where the link in a reminder or escalation leads
//! ([`ack`]), and the dashboard for IROs and IRO managers ([`dashboard`]).
//!
//! Server-rendered HTML from templates compiled into the binary, escaped by minijinja, with no
//! JavaScript. Every page is sent with a strict Content-Security-Policy, is never cached, and
//! sends no Referer, because acknowledgement URLs are credentials. Owns the HTML; must not
//! compute what the dashboard shows ([`crate::dashboard`] does) or write to the store other than
//! through the service.

mod ack;
mod dashboard;

use crate::app::Shared;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;
use serde::Serialize;
use std::sync::{Arc, OnceLock};

type AppState = Arc<Shared>;

/// The routes of the pages, to merge into the API's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ack/{token}", get(ack::show).post(ack::act))
        .route("/dashboard", get(dashboard::overview))
        .route("/dashboard/cases/{case}", get(dashboard::case))
}

const PAGES: [(&str, &str); 5] = [
    ("layout.html", include_str!("pages/layout.html")),
    ("message.html", include_str!("pages/message.html")),
    ("ack.html", include_str!("pages/ack.html")),
    ("dashboard.html", include_str!("pages/dashboard.html")),
    ("case.html", include_str!("pages/case.html")),
];

fn pages() -> &'static Environment<'static> {
    static PAGES_ENV: OnceLock<Environment<'static>> = OnceLock::new();
    PAGES_ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // `{{ r.due | day }}`: a date (`2027-01-29`) as people read it in a table.
        env.add_filter("day", |value: String| -> String {
            crate::event::parse_date(&value).map_or(value, crate::localtime::short_date_in_words)
        });
        for (name, source) in PAGES {
            if let Err(e) = env.add_template(name, source) {
                // The pages are part of the binary and a test renders each of them.
                tracing::error!(page = name, error = %e, "a built-in page does not compile");
            }
        }
        env
    })
}

/// Renders a page with the headers every page carries.
fn page(status: StatusCode, name: &str, ctx: impl Serialize) -> Response {
    let html = pages()
        .get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(ctx)))
        .unwrap_or_else(|e| {
            tracing::error!(page = name, error = %e, "a built-in page failed to render");
            "<!doctype html><title>driftwatch</title><p>This page could not be shown.".into()
        });
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page that only says something: an error, or what an action did.
fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        "message.html",
        minijinja::context! { title, text, status => status.as_u16() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_compiles() {
        let env = pages();
        for (name, _) in PAGES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn text_is_escaped() {
        let response = message(StatusCode::OK, "<b>", "<script>alert(1)</script>");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.starts_with("default-src 'none'"));
        let html = pages()
            .get_template("message.html")
            .unwrap()
            .render(minijinja::context! { title => "<b>", text => "<script>", status => 200 })
            .unwrap();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;"));
    }
}
