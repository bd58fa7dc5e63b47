//! Acknowledge and snooze links, end to end: the real daemon writes a reminder with its link to
//! the spool; the test follows the link as a browser would (GET shows, POST acts) and reads what
//! is sent afterwards.

use crate::support::*;
use serde_json::json;

const SAM: &str = "sam.social@council.example";
const RULE: &str = "decision_carried_out";

/// The messages to `to` about `rule`, oldest first by send time (file names are keys, so the
/// order is taken from the outbox).
fn mails(setup: &Setup, to: &str, rule: &str) -> Vec<String> {
    spooled(&setup.spool())
        .into_iter()
        .map(|(_, m)| m.replace("=\r\n", "").replace("=\n", ""))
        .filter(|m| m.contains(&format!("<{to}>")) && m.contains(&format!("\"{rule}\"")))
        .collect()
}

/// The acknowledgement link in a message, pointed at the test daemon.
fn ack_link(daemon: &Daemon, mail: &str) -> String {
    let at = mail
        .find("http://feeds.test/ack/")
        .expect("an acknowledgement link");
    let link: String = mail[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/:._-".contains(*c))
        .collect();
    link.replace("http://feeds.test", &daemon.base)
}

async fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let res = reqwest::get(url).await.expect("GET");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.unwrap_or_default(), headers)
}

async fn post_form(url: &str, form: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .expect("POST");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

async fn started() -> (Setup, Daemon) {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let (status, body) = daemon.post_events(&example_events()).await;
    assert_eq!(status, 202, "{body}");
    // Friday 22 January 2027, 09:00: five working days before the decision is due (the 29th),
    // its owner is reminded.
    daemon.clock("2027-01-22T10:00:00Z").await;
    (setup, daemon)
}

#[tokio::test]
async fn an_acknowledged_reminder_stops_its_repeats_but_not_the_escalation() {
    let (setup, daemon) = started().await;
    let first = mails(&setup, SAM, RULE);
    assert_eq!(first.len(), 1);
    assert!(first[0].contains("Already in hand? Acknowledge it"));
    let link = ack_link(&daemon, &first[0]);

    // Opening the link changes nothing: it asks.
    for _ in 0..2 {
        let (status, html, headers) = get(&link).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Acknowledge this reminder"));
        assert!(html.contains("C-1001") && html.contains("Review decision carried out"));
        assert!(!html.contains("Sam Social") && !html.contains("sibling"));
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
    }
    assert!(daemon.outbox("acknowledged").await.is_empty());

    // An altered link is refused, and so is one that names another notification.
    let mut altered = link.clone().into_bytes();
    let i = link.rfind('.').expect("a signature") + 4;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("text");
    assert_eq!(get(&altered).await.0, 403);
    assert_eq!(post_form(&altered, "action=acknowledge").await.0, 403);
    let path = link.rsplit('/').next().expect("a token");
    let key = path.split('.').next().expect("a key");
    let other = daemon.get("/v1/notifications?limit=10000").await["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter_map(|n| n["idempotency_key"].as_str().map(str::to_string))
        .find(|k| k != key)
        .expect("another notification");
    let swapped = link.replace(key, &other);
    assert_eq!(get(&swapped).await.0, 403, "{link} {swapped}");

    // Acknowledged once; the second press finds it done.
    let (status, html) = post_form(&link, "action=acknowledge").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Acknowledged"));
    let (status, html) = post_form(&link, "action=acknowledge").await;
    assert_eq!(status, 409, "{html}");
    assert_eq!(get(&link).await.0, 409);

    // The stored event, and the reminder it stops.
    let plan = daemon.get("/v1/cases/C-1001/plan").await;
    let silenced: Vec<_> = plan["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["status"] == "acknowledged")
        .collect();
    assert_eq!(silenced.len(), 1, "{silenced:?}");
    assert_eq!(silenced[0]["rule"], RULE);
    assert_eq!(silenced[0]["email"], SAM);
    assert_eq!(silenced[0]["step"], "reminder -1 working day");
    assert_eq!(daemon.outbox("acknowledged").await.len(), 1);

    // Thursday the 28th: no second reminder. Monday 1 February: the escalation still comes, to
    // the social worker (the same person) among others, because the decision is not carried out.
    daemon.clock("2027-01-28T16:00:00Z").await;
    assert_eq!(mails(&setup, SAM, RULE).len(), 1);
    daemon.clock("2027-02-01T10:00:00Z").await;
    let now = mails(&setup, SAM, RULE);
    assert_eq!(now.len(), 2);
    let escalation = now
        .iter()
        .find(|m| m.contains("is not recorded as carried out"))
        .expect("the escalation");
    let escalation_link = ack_link(&daemon, escalation);
    assert_eq!(get(&escalation_link).await.0, 200);

    // Thirty days after it was sent, the escalation's link has expired.
    daemon.clock("2027-03-03T10:00:00Z").await;
    let (status, html, _) = get(&escalation_link).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("expired"));
    assert_eq!(
        post_form(&escalation_link, "action=acknowledge").await.0,
        410
    );

    let logs = daemon.logs();
    assert!(logs.contains("a notification was acknowledged through its link"));
    assert!(!logs.contains(SAM));
}

#[tokio::test]
async fn a_snoozed_reminder_comes_back_on_the_chosen_working_day() {
    let (setup, daemon) = started().await;
    let link = ack_link(&daemon, &mails(&setup, SAM, RULE)[0]);
    let (_, html, _) = get(&link).await;
    // The next ten working days are offered, from Monday 25 January.
    assert!(html.contains("value=\"2027-01-25\""), "{html}");
    assert!(!html.contains("value=\"2027-01-23\""), "not a Saturday");

    // A day that was not offered changes nothing.
    for form in [
        "action=snooze&until=2027-01-23",
        "action=snooze&until=2027-03-01",
        "action=snooze",
        "action=delete",
    ] {
        assert_eq!(post_form(&link, form).await.0, 422, "{form}");
    }
    assert!(daemon.outbox("acknowledged").await.is_empty());

    let (status, html) = post_form(&link, "action=snooze&until=2027-01-26").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Tuesday 26 January 2027"), "{html}");

    daemon.clock("2027-01-26T08:59:00Z").await;
    assert_eq!(mails(&setup, SAM, RULE).len(), 1);
    daemon.clock("2027-01-26T09:00:00Z").await;
    let again = mails(&setup, SAM, RULE);
    assert_eq!(again.len(), 2, "the reminder again on the chosen day");
    // It has a link of its own, which works.
    let second = again
        .iter()
        .map(|m| ack_link(&daemon, m))
        .find(|l| *l != link)
        .expect("a new link");
    assert_eq!(get(&second).await.0, 200);
    // The usual reminder the day before the deadline is after the snooze, so it still comes.
    daemon.clock("2027-01-28T10:00:00Z").await;
    assert_eq!(mails(&setup, SAM, RULE).len(), 3);
}

#[tokio::test]
async fn basic_credentials_read_but_never_write() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let client = reqwest::Client::new();
    // The admin token as a browser would send it after signing in to the dashboard.
    let res = client
        .post(format!("{}/v1/events", daemon.base))
        .basic_auth("manager", Some(TOKEN))
        .header("content-type", "text/plain")
        .body(example_events().to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{}/v1/admin/reload", daemon.base))
        .basic_auth("manager", Some(TOKEN))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 401);
    assert_eq!(daemon.get("/v1/notifications").await["count"], 0);
    let res = client
        .get(format!("{}/v1/notifications", daemon.base))
        .basic_auth("manager", Some(READ_TOKEN))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn acknowledgements_cannot_be_posted_as_events() {
    let setup = Setup::new();
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let event = json!({
        "id": "forged", "case": "C-1001", "type": "notification_acknowledged",
        "at": "2026-12-01T09:00:00Z",
        "data": {"notification": "dw1-0000", "action": "acknowledge"}
    });
    let (status, body) = daemon.post_events(&event).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "type");
}
