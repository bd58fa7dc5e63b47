//! How the outbox keeps a planned notification: the store's own record in the `notification`
//! column, versioned, rather than the planner's type written as it happens to be today. The
//! planner may gain a field without a pending row written by an earlier release becoming
//! unreadable (and so dead) after an upgrade: a field is added to the record only with a default,
//! and a change that cannot be read the old way raises [`VERSION`].
//!
//! Version 0 is what releases before the record wrote: the planner's notification as JSON, with
//! no `v`. Its fields are the record's, so it is read the same way.

use super::StoreError;
use crate::planner::{
    LateReason, Notification, NotificationKind, NotificationStatus, Replaced, Target,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The record's format, written as `v`.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    #[serde(default)]
    v: u32,
    idempotency_key: String,
    send_at: DateTime<Utc>,
    status: NotificationStatus,
    #[serde(default)]
    late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    late_reason: Option<LateReason>,
    kind: NotificationKind,
    step: String,
    #[serde(default)]
    title: Option<String>,
    rule: String,
    #[serde(default)]
    obligation: Option<String>,
    #[serde(default)]
    due: Option<NaiveDate>,
    #[serde(flatten)]
    recipient: Target,
    template: String,
    #[serde(default)]
    urgent: bool,
    event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instead_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaces: Option<Replaced>,
}

/// The record of `n` as the outbox keeps it.
pub fn encode(n: &Notification) -> String {
    let record = Record {
        v: VERSION,
        idempotency_key: n.idempotency_key.clone(),
        send_at: n.send_at,
        status: n.status,
        late: n.late,
        late_reason: n.late_reason,
        kind: n.kind,
        step: n.step.clone(),
        title: n.title.clone(),
        rule: n.rule.clone(),
        obligation: n.obligation.clone(),
        due: n.due,
        recipient: n.recipient.clone(),
        template: n.template.clone(),
        urgent: n.urgent,
        event: n.event.clone(),
        instead_of: n.instead_of.clone(),
        replaces: n.replaces.clone(),
    };
    serde_json::to_string(&record).unwrap_or_else(|_| "{}".into())
}

/// The notification a stored record holds, of this version or an earlier one.
pub fn decode(text: &str) -> Result<Notification, StoreError> {
    let r: Record = serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        what: "notification",
        source,
    })?;
    Ok(Notification {
        idempotency_key: r.idempotency_key,
        send_at: r.send_at,
        status: r.status,
        late: r.late,
        late_reason: r.late_reason,
        kind: r.kind,
        step: r.step,
        title: r.title,
        rule: r.rule,
        obligation: r.obligation,
        due: r.due,
        recipient: r.recipient,
        template: r.template,
        urgent: r.urgent,
        event: r.event,
        instead_of: r.instead_of,
        replaces: r.replaces,
        data: None,
        data_from: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pending reminder's row exactly as releases before the record wrote it (version 0).
    const VERSION_0: &str = r#"{"idempotency_key":"dw1-f524e14a44411806336880a02e1b50d3","send_at":"2026-12-08T09:00:00Z","status":"due","late":false,"kind":"reminder","step":"reminder -1 working day","title":null,"rule":"iro_allocation","obligation":"iro_allocation/-/1","due":"2026-12-09","channel":"email","role":"iro_manager","name":"IRO Service Manager","email":"iro.manager@council.example","template":"reminder","urgent":false,"event":"derived:C-1001:section20_status_begins/-/1"}"#;

    #[test]
    fn a_row_written_before_the_record_is_read() {
        let n = decode(VERSION_0).expect("version 0 reads");
        assert_eq!(n.idempotency_key, "dw1-f524e14a44411806336880a02e1b50d3");
        assert_eq!(n.kind, NotificationKind::Reminder);
        assert_eq!(n.due, NaiveDate::from_ymd_opt(2026, 12, 9));
        assert!(matches!(
            &n.recipient,
            Target::Email { role, email, .. }
                if role == "iro_manager" && email == "iro.manager@council.example"
        ));
        // Written again, it is the current version and reads back the same.
        let again = encode(&n);
        assert!(again.starts_with(r#"{"v":1,"#), "{again}");
        let back = decode(&again).expect("reads back");
        assert_eq!(
            serde_json::to_value(&back).ok(),
            serde_json::to_value(&n).ok()
        );
    }

    #[test]
    fn fields_a_later_planner_added_or_an_earlier_one_lacked_do_not_make_a_row_unreadable() {
        let mut value: serde_json::Value = serde_json::from_str(VERSION_0).expect("json");
        value["a_field_from_a_later_release"] = serde_json::json!({"any": "thing"});
        if let Some(o) = value.as_object_mut() {
            o.remove("late");
            o.remove("urgent");
            o.remove("title");
        }
        let n = decode(&value.to_string()).expect("still reads");
        assert!(!n.late && !n.urgent && n.title.is_none());
    }

    /// An outbox as an earlier release left it (every pending row in version 0) is claimed
    /// whole after an upgrade: nothing becomes dead for its format.
    #[tokio::test]
    async fn an_outbox_written_by_the_previous_release_is_claimed_whole() {
        use crate::clock::Clock;
        use crate::config::Config;
        use crate::service::Service;
        use crate::store::{ClaimTerms, Lane, Store};
        use sqlx::Row;
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(&root.join("config/driftwatch.yaml")).expect("shipped config");
        let url = format!(
            "sqlite:{}?mode=rwc",
            dir.path().join("driftwatch.db").display()
        );
        let store = Store::open(&url).await.expect("store");
        let now: DateTime<Utc> = "2027-02-11T12:00:00Z".parse().expect("time");
        let service = Service::new(store.clone(), config, Clock::manual(now));
        let text = std::fs::read_to_string(root.join("examples/events.jsonl")).expect("events");
        let events = crate::event::parse_json_lines(&text).expect("example events");
        service.ingest(&events).await.expect("ingest");
        while service.replan_due().await.expect("replan") > 0 {}

        // Each pending row rewritten as the previous release wrote it: the planner's JSON.
        let rows = sqlx::query("SELECT key, notification FROM outbox WHERE state = 'pending'")
            .fetch_all(&store.pool)
            .await
            .expect("pending rows");
        assert!(rows.len() > 3, "rows are pending");
        for row in &rows {
            let key: String = row.get("key");
            let current: String = row.get("notification");
            assert!(current.starts_with(r#"{"v":1,"#), "{current}");
            let previous = serde_json::to_string(&decode(&current).expect("reads")).expect("json");
            assert!(!previous.contains(r#""v":"#));
            sqlx::query("UPDATE outbox SET notification = $1 WHERE key = $2")
                .bind(previous)
                .bind(key)
                .execute(&store.pool)
                .await
                .expect("rewrite");
        }

        let mut claimed = Vec::new();
        for lane in Lane::ALL {
            let terms = ClaimTerms {
                owner: "test",
                lease_until: now + chrono::Duration::minutes(5),
                stale: chrono::Duration::days(3650),
                limit: 1000,
                rules: "",
            };
            claimed.extend(store.claim(lane, now, &terms).await.expect("claim"));
        }
        assert!(!claimed.is_empty(), "something is due at {now}");
        for c in &claimed {
            assert_eq!(c.notification.idempotency_key, c.key);
        }
        let dead = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'dead'")
            .fetch_one(&store.pool)
            .await
            .expect("count")
            .get::<i64, _>("n");
        assert_eq!(dead, 0, "no row died for its format");
    }

    #[test]
    fn a_row_that_is_not_a_notification_is_an_error_naming_it() {
        let e = decode(r#"{"v":1}"#).expect_err("no fields");
        assert!(e.to_string().contains("notification"), "{e}");
    }
}
