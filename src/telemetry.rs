//! Metrics for Prometheus: what was accepted, sent, retried and dead, how late the scheduler
//! ran, how long deliveries took, and (read from the store at each scrape) obligations open and
//! overdue by rule and the outbox by state.
//!
//! Owns the metric names and the recorder. Labels are rule ids, channels, states and reasons,
//! never case references or people. Must not decide anything.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls return the same handle. `None` if
/// another recorder was installed first (metrics are then not exported).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
                ])
                .ok()?
                .install_recorder()
                .ok()
                .inspect(|_| describe())
        })
        .as_ref()
}

/// The `# HELP` line of every metric family, so Prometheus tooling (`promtool check metrics`)
/// and people reading `/metrics` know what each one counts.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "driftwatch_events_accepted_total",
        "Events accepted through the API or an import, by status (stored, or duplicate of one already stored)."
    );
    describe_counter!(
        "driftwatch_events_rejected_total",
        "Event batches refused, by reason (bad_json, invalid, unavailable)."
    );
    describe_counter!(
        "driftwatch_notifications_total",
        "Delivery attempts, by channel and outcome (sent, retry, dead)."
    );
    describe_histogram!(
        "driftwatch_delivery_seconds",
        metrics::Unit::Seconds,
        "How long one delivery attempt took, by channel."
    );
    describe_histogram!(
        "driftwatch_scheduler_lag_seconds",
        metrics::Unit::Seconds,
        "How long after its time a notification was first picked up."
    );
    describe_gauge!(
        "driftwatch_obligations",
        "Obligations in the store at the scrape, by rule and state (open, overdue, ...)."
    );
    describe_gauge!(
        "driftwatch_outbox",
        "Outbox rows at the scrape, by state (pending, sending, sent, dead, ...)."
    );
    describe_counter!(
        "driftwatch_acknowledgements_total",
        "Reminders and escalations acknowledged or snoozed through their links, by action."
    );
}

pub fn event_accepted(stored: bool) {
    let status = if stored { "stored" } else { "duplicate" };
    metrics::counter!("driftwatch_events_accepted_total", "status" => status).increment(1);
}

/// `reason`: `bad_json`, `invalid` or `unavailable`.
pub fn events_rejected(reason: &'static str) {
    metrics::counter!("driftwatch_events_rejected_total", "reason" => reason).increment(1);
}

/// `outcome`: `sent`, `retry` or `dead`.
pub fn delivery(channel: &'static str, outcome: &'static str, seconds: f64) {
    metrics::counter!("driftwatch_notifications_total", "channel" => channel, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("driftwatch_delivery_seconds", "channel" => channel).record(seconds);
}

/// How long after its time a notification was first picked up.
pub fn scheduler_lag(seconds: f64) {
    metrics::histogram!("driftwatch_scheduler_lag_seconds").record(seconds.max(0.0));
}

/// The store's figures at a scrape: obligations by rule and state, outbox rows by state.
pub fn store_figures(obligations: &[(String, &'static str, i64)], outbox: &[(String, i64)]) {
    for (rule, state, n) in obligations {
        metrics::gauge!("driftwatch_obligations", "rule" => rule.clone(), "state" => *state)
            .set(*n as f64);
    }
    for (state, n) in outbox {
        metrics::gauge!("driftwatch_outbox", "state" => state.clone()).set(*n as f64);
    }
}

/// A reminder or escalation acknowledged (or snoozed) through its link.
pub fn acknowledged(snoozed: bool) {
    let action = if snoozed { "snooze" } else { "acknowledge" };
    metrics::counter!("driftwatch_acknowledgements_total", "action" => action).increment(1);
}
