//! Hostile input: property tests that throw malformed and adversarial input at the parsers and
//! checkers every outside party reaches (the event envelope and vocabulary, JSON Lines, rules
//! files, signed links) and require a clear error, never a panic, and never a value echoed back.
//!
//! The case counts are small so CI stays fast; `PROPTEST_CASES=100000 cargo test --release
//! --test it hostile::` is the long run.

use crate::common::{config, root};
use driftwatch::event::{Event, parse_json_lines};
use driftwatch::links::Links;
use driftwatch::rules::Services;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Every string value planted in generated events starts with this, so an error that echoes a
/// value is caught.
const PLANTED: &str = "planted-";

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z@. ]{0,12}".prop_map(|s| Value::from(format!("{PLANTED}{s}"))),
        // With line breaks and other controls, as a hostile sender would try.
        "[a-z@. \r\n\t\u{0}\u{85}\u{2028}\u{7f}]{0,12}"
            .prop_map(|s| Value::from(format!("{PLANTED}{s}"))),
        // Dates and times, plausible and not.
        (0u32..=10000, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| Value::from(format!("{y:04}-{m:02}-{d:02}"))),
        (0u32..=10000, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| Value::from(format!("{y:04}-{m:02}-{d:02}T10:00:00Z"))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,14}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An event envelope whose fields are each right, wrong or missing, with a type from the
/// vocabulary (or not) and data of random shape over the type's own field names.
fn envelope() -> impl Strategy<Value = Value> {
    let c = config();
    let mut kinds: Vec<String> = c.rules.vocabulary.events.keys().cloned().collect();
    kinds.push("not_a_type".into());
    let fields: Vec<String> = c
        .rules
        .vocabulary
        .events
        .values()
        .flat_map(|e| e.fields.keys().cloned())
        .collect();
    (
        prop::sample::select(kinds),
        prop::collection::vec((prop::sample::select(fields), json_value()), 0..8),
        json_value(),
        any::<bool>(),
        prop::option::of(json_value()),
    )
        .prop_map(|(kind, data, at, stringy_id, extra)| {
            let mut e = json!({
                "id": if stringy_id { json!("e-1") } else { json!(17) },
                "case": "C-1",
                "type": kind,
                "at": at,
                "data": Value::Object(data.into_iter().collect()),
            });
            if let Some(extra) = extra {
                e["extra"] = extra;
            }
            e
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any envelope is an event or an error that names a field and echoes no value.
    #[test]
    fn any_event_is_accepted_or_refused_by_field_without_echoing_values(value in envelope()) {
        let c = config();
        let checked = Event::from_value(&value, "#0")
            .and_then(|e| c.rules.vocabulary.validate(&e).map(|_| e));
        if let Err(e) = checked {
            prop_assert!(!e.field.is_empty());
            prop_assert!(!e.to_string().contains(PLANTED), "{e}");
        }
    }

    /// Arbitrary JSON, and arbitrary text as JSON Lines, never panic the parsers.
    #[test]
    fn arbitrary_json_and_text_never_panic(value in json_value(), text in ".{0,300}") {
        let _ = Event::from_value(&value, "#0");
        let _ = parse_json_lines(&text);
        let _ = parse_json_lines(&value.to_string());
    }

    /// Only a token the secret signed passes, whatever is sent.
    #[test]
    fn no_forged_acknowledgement_token_passes(token in ".{0,200}", key in "[a-z0-9-]{1,40}") {
        let links = Links::new("secret", "https://dw.example", chrono::Duration::days(30));
        let now = chrono::Utc::now();
        prop_assert!(links.ack_key(&token, now).is_err());
        let (payload, _) = links
            .ack_token(&key, now + chrono::Duration::days(1))
            .rsplit_once('.')
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .unwrap();
        let forged = format!("{payload}.{}", token.replace('.', ""));
        prop_assert!(links.ack_key(&forged, now).is_err());
    }
}

/// A mutation of a rules file: text cut out, text put in, or a line repeated.
#[derive(Debug, Clone)]
enum Mutation {
    Cut(usize, usize),
    Insert(usize, String),
    Repeat(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Cut(at, n)),
        (
            any::<usize>(),
            prop_oneof![
                "[ :\\-\\[\\]{}#&*!|>'\"%@`,?a-z0-9\n]{1,12}",
                Just("\n  - ".to_string()),
                Just(": ".to_string()),
                Just("{{".to_string()),
                Just("*anchor".to_string()),
                Just("&a [*a, *a, *a]".to_string()),
            ]
        )
            .prop_map(|(at, s)| Mutation::Insert(at, s)),
        any::<usize>().prop_map(Mutation::Repeat),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut s = text.to_string();
    for m in mutations {
        let boundary = |s: &str, at: usize| {
            let mut at = at % (s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            at
        };
        match m {
            Mutation::Cut(at, n) => {
                let a = boundary(&s, *at);
                let b = boundary(&s, a + n);
                s.replace_range(a..b.max(a), "");
            }
            Mutation::Insert(at, text) => {
                let a = boundary(&s, *at);
                s.insert_str(a, text);
            }
            Mutation::Repeat(line) => {
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let i = line % lines.len();
                    let mut out: Vec<&str> = lines[..=i].to_vec();
                    out.extend_from_slice(&lines[i..]);
                    s = out.join("\n");
                }
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A damaged rules file loads (if the damage is harmless) or is refused with every problem
    /// placed in a named file; the loader never panics.
    #[test]
    fn damaged_rules_files_are_refused_with_positions_never_a_panic(
        file in prop::sample::select(vec!["decisions.yaml", "reviews.yaml", "vocabulary.yaml"]),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        for entry in std::fs::read_dir(root().join("rules")).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_dir() {
                continue; // rules/tests holds rule tests, not rules
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let name = entry.file_name();
            let text = if name == file { apply(&text, &mutations) } else { text };
            std::fs::write(rules.join(name), text).unwrap();
        }
        let c = config();
        let services = Services {
            roles: c.roles.keys().cloned().collect(),
            ..Default::default()
        };
        if let Err(problems) = driftwatch::sources::load_rules(&rules, &root().join("templates"), &services) {
            prop_assert!(!problems.0.is_empty());
            for p in &problems.0 {
                let text = p.to_string();
                prop_assert!(text.contains(".yaml"), "{text}");
            }
        }
    }
}

/// Deeply nested JSON, far-off years and wrong types through the real API: a 4xx naming the
/// problem, and nothing stored.
#[tokio::test]
async fn the_api_refuses_deep_json_and_implausible_years_and_stores_nothing() {
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, body) = daemon
        .request(
            reqwest::Method::POST,
            "/v1/events",
            Some(crate::support::TOKEN),
            Some(("application/json", deep.into_bytes())),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    for (at, field) in [
        ("0001-01-01T00:00:00Z", "at"),
        ("9999-12-31T00:00:00Z", "at"),
        ("2027-01-04T08:00:00Z", "data.start"),
    ] {
        let event = json!({"id": "far", "case": "C-1", "type": "child_looked_after", "at": at,
            "data": {"start": if field == "at" { at } else { "20277-01-04T08:00:00Z" },
                     "legal_basis": "s31", "date_of_birth": "2015-01-01"}});
        let (status, body) = daemon.post_events(&event).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let (status, body) = daemon
        .post_events(&json!({"id": 5, "case": ["C"], "type": "review_held", "at": 1}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(daemon.get("/v1/notifications").await["count"], 0);
    let (status, _) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/cases/C-1/plan",
            Some(crate::support::TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404, "nothing stored");
}

/// Templates are written by admins but rendered with event data: they can reach nothing beyond
/// the message's context. There is no template loader (an `include` of a file finds nothing), no
/// environment, and undefined names are errors rather than empty strings.
#[test]
fn a_template_cannot_read_files_or_the_environment() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the link secret").expect("secret file");
    let attempts = [
        (
            "include_absolute",
            format!("{{% include \"{}\" %}}", secret.display()),
        ),
        (
            "include_relative",
            "{% include \"../secret.txt\" %}".to_string(),
        ),
        (
            "import",
            format!("{{% import \"{}\" as s %}}", secret.display()),
        ),
        ("environment", "{{ env.HOME }}{{ HOME }}".to_string()),
        ("globals", "{{ self }}{{ namespace }}".to_string()),
    ];
    let folder = dir.path().join("templates");
    for (name, text) in &attempts {
        let t = folder.join(name);
        std::fs::create_dir_all(&t).expect("template folder");
        std::fs::write(t.join("subject.txt"), "Subject").expect("subject");
        std::fs::write(t.join("body.txt"), text).expect("body");
    }
    let mut engine = driftwatch::expr::Engine::new();
    let (templates, read) = driftwatch::sources::read_templates_dir(&folder);
    assert!(read.is_empty());
    let problems = engine.add_templates(&templates);
    for (name, _) in &attempts {
        match engine.render(name, "body.txt", &json!({"case": {"ref": "C1"}})) {
            Ok(out) => panic!("{name} rendered: {out:?}"),
            Err(e) => assert!(!e.contains("the link secret"), "{name}: {e}"),
        }
    }
    assert!(
        problems
            .iter()
            .all(|p| !p.to_string().contains("the link secret")),
        "{problems:?}"
    );
}

/// A rule names whom it tells by role: a case contact set by the rules, a role in the config, a
/// configured webhook or a list of contacts in the event. A bare address or an unknown webhook
/// is refused when the rules load, with its position.
#[test]
fn a_rule_cannot_send_to_an_address_or_webhook_nobody_configured() {
    let dir = tempfile::tempdir().expect("temporary folder");
    for sub in ["config", "rules", "templates"] {
        copy_tree(&root().join(sub), &dir.path().join(sub));
    }
    let rules = dir.path().join("rules/outsider.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - id: outsider\n    title: Outsider\n    source: test\n    on: review_held\n    notice: {to: [\"someone@outside.example\", \"webhook:elsewhere\", \"https://outside.example/hook\"], template: reminder}\n",
    )
    .expect("rules file");
    let errors = match driftwatch::config::Config::load(&dir.path().join("config/driftwatch.yaml"))
    {
        Ok(_) => panic!("a rule sending to an outside address loaded"),
        Err(d) => d.0.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    };
    let file = rules.display().to_string();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors.iter().all(|e| e.starts_with(&format!("{file}:6:"))),
        "{errors:#?}"
    );
    assert!(
        errors[0].contains("unknown role `someone@outside.example`"),
        "{errors:#?}"
    );
    assert!(errors[1].contains("elsewhere"), "{errors:#?}");
    assert!(
        errors[2].contains("unknown role `https://outside.example/hook`"),
        "{errors:#?}"
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// What could slip a header or a log line into a name: CR LF, a lone LF, NUL, NEL (U+0085),
/// the Unicode line and paragraph separators, DEL, a C1 control and tab.
const LINE_BREAKERS: [&str; 9] = [
    "\r\n", "\n", "\r", "\0", "\u{85}", "\u{2028}", "\u{2029}", "\u{7f}", "\u{9b}",
];

/// Every field that can reach a mail header or a log line refuses control characters with a
/// `422` naming the field by its path, never its value; free text that reaches only message
/// bodies keeps its line breaks.
#[tokio::test]
async fn control_characters_in_names_and_references_are_refused_by_field_path() {
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let start = json!({"id": "lac", "case": "C-9", "type": "child_looked_after",
        "at": "2027-01-04T08:00:00Z",
        "data": {"start": "2027-01-04T08:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-01-01"}});
    let (status, body) = daemon.post_events(&start).await;
    assert_eq!(status, 202, "{body}");
    for breaker in LINE_BREAKERS.iter().chain(&["\t"]) {
        let bad = format!("Sam{breaker}Bcc: intruder@elsewhere.example");
        let contact = |name: &str| json!({"name": name, "email": "sam@council.example"});
        let attempts = [
            (
                json!({"id": "sw", "case": "C-9", "type": "social_worker_allocated", "at": "2027-01-04T09:00:00Z",
                       "data": {"social_worker": contact(&bad), "team_manager": contact("Tara")}}),
                "sw",
                "data.social_worker.name",
            ),
            (
                json!({"id": "rs", "case": "C-9", "type": "review_scheduled", "at": "2027-01-04T09:00:00Z",
                       "data": {"review_id": "R1", "meeting_at": "2027-01-28T10:00:00Z",
                                "participants": [contact("Parent"), contact(&bad)]}}),
                "rs",
                "data.participants[1].name",
            ),
            (
                json!({"id": "rs", "case": "C-9", "type": "review_scheduled", "at": "2027-01-04T09:00:00Z",
                       "data": {"review_id": "R1", "meeting_at": "2027-01-28T10:00:00Z",
                                "participants": [{"name": "Parent", "email": "p@example.org", "role": bad}]}}),
                "rs",
                "data.participants[0].role",
            ),
            (
                json!({"id": "iro", "case": "C-9", "type": "iro_allocated", "at": "2027-01-04T09:00:00Z",
                       "data": {"iro": {"name": "Ira", "email": format!("ira{breaker}@council.example")}}}),
                "iro",
                "data.iro.email",
            ),
            (
                json!({"id": "ri", "case": "C-9", "type": "recommendations_issued", "at": "2027-01-04T09:00:00Z",
                       "data": {"review_id": "R1", "recommendations": [
                           {"id": "R1-1", "owner": contact(&bad), "due": "2027-02-01"}]}}),
                "ri",
                "data.recommendations[0].owner.name",
            ),
            (
                json!({"id": bad, "case": "C-9", "type": "iro_service_notified", "at": "2027-01-04T09:00:00Z"}),
                "#0",
                "id",
            ),
            (
                json!({"id": "n1", "case": bad, "type": "iro_service_notified", "at": "2027-01-04T09:00:00Z"}),
                "n1",
                "case",
            ),
            (
                json!({"id": "n1", "case": "C-9", "type": "iro_service_notified", "at": "2027-01-04T09:00:00Z",
                       "source": bad}),
                "n1",
                "source",
            ),
        ];
        for (event, id, field) in attempts {
            let (status, body) = daemon.post_events(&event).await;
            assert_eq!(status, 422, "{breaker:?} in {field}: {body}");
            assert_eq!(body["field"], field, "{breaker:?}: {body}");
            assert_eq!(body["event"], id, "{breaker:?}: {body}");
            let text = body.to_string();
            assert!(
                !text.contains("Bcc") && !text.contains("intruder"),
                "{text}"
            );
        }
    }
    // Free text that reaches only message bodies keeps its line breaks and tabs; other controls
    // are refused there too.
    let summary = |text: &str| {
        json!({"id": "ri-text", "case": "C-9", "type": "recommendations_issued", "at": "2027-01-04T09:00:00Z",
               "data": {"review_id": "R1", "recommendations": [
                   {"id": "R1-1", "summary": text, "owner": {"name": "Sam", "email": "sam@council.example"},
                    "due": "2027-02-01"}]}})
    };
    for breaker in ["\0", "\u{85}", "\u{2028}", "\u{7f}", "\u{1b}"] {
        let (status, body) = daemon
            .post_events(&summary(&format!("Arrange{breaker}contact")))
            .await;
        assert_eq!(status, 422, "{breaker:?}: {body}");
        assert_eq!(body["field"], "data.recommendations[0].summary", "{body}");
        assert!(!body.to_string().contains("Arrange"), "{body}");
    }
    let (status, body) = daemon
        .post_events(&summary("Arrange sibling contact\r\n\tweekly"))
        .await;
    assert_eq!(status, 202, "{body}");
    let stored = crate::support::sample(
        &daemon.metrics().await,
        "driftwatch_events_accepted_total",
        &[("status", "stored")],
    );
    assert_eq!(stored, Some(2.0), "only the two good events are stored");
}

/// A name with a line break stored before such names were refused (here written into the
/// database while the daemon was stopped) cannot be built into a message: that notification
/// becomes dead with its reason, the others go, and no header is slipped in.
#[tokio::test]
async fn a_name_stored_before_it_was_refused_makes_its_message_dead_not_a_panic() {
    let mailbox = crate::support::Mailbox::start();
    let mut setup = crate::support::Setup::new();
    setup.smtp_port = Some(mailbox.port);
    let daemon = crate::support::Daemon::start(&setup, "2026-12-02T10:00:00Z");
    let (status, body) = daemon.post_events(&crate::support::example_events()).await;
    assert_eq!(status, 202, "{body}");
    assert!(daemon.terminate().success());

    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&setup.database_url)
        .await
        .expect("open the database");
    for sql in [
        "UPDATE events SET body = REPLACE(body, 'Sam Social', 'Sam\\r\\nBcc: intruder@elsewhere.example')",
        "UPDATE outbox SET notification = REPLACE(notification, 'Sam Social', 'Sam\\r\\nBcc: intruder@elsewhere.example')",
    ] {
        let done = sqlx::query(sql).execute(&mut db).await.expect(sql);
        assert!(done.rows_affected() > 0, "{sql}");
    }
    <sqlx::AnyConnection as sqlx::Connection>::close(db)
        .await
        .expect("close the database");

    let daemon = crate::support::Daemon::start(&setup, "2026-12-02T10:00:00Z");
    // The care-plan reminders go to the social worker and the team manager on 9 December.
    daemon.clock("2026-12-09T09:00:00Z").await;
    let dead = daemon.outbox("dead").await;
    let to_sam: Vec<&serde_json::Value> = dead
        .iter()
        .filter(|n| n["notification"]["email"] == "sam.social@council.example")
        .collect();
    assert!(!to_sam.is_empty(), "dead: {dead:?}");
    for n in &to_sam {
        let reason = n["last_error"].as_str().unwrap_or_default();
        assert!(reason.contains("recipient's name"), "{reason}");
        assert!(!reason.contains("Bcc"), "{reason}");
    }
    assert!(
        dead.iter()
            .all(|n| n["notification"]["email"] == "sam.social@council.example"),
        "only Sam's messages are dead: {dead:?}"
    );
    let mail = mailbox.mail();
    assert!(
        mail.iter()
            .any(|m| m.to == vec!["tara.manager@council.example".to_string()]),
        "the team manager's reminder went"
    );
    assert!(
        mail.iter()
            .all(|m| m.header("Bcc").is_none() && !m.to.iter().any(|t| t.contains("intruder"))),
        "no header was slipped in"
    );
    assert!(daemon.outbox("sending").await.is_empty(), "nothing stuck");
    assert!(!daemon.logs().contains("intruder"), "the log holds no name");
}

/// Every error is the documented JSON shape, `{"error": ...}`, whatever refused the request
/// (driftwatch or the HTTP framework under it), and none repeats a value that was sent.
#[tokio::test]
async fn every_error_is_json_naming_the_field_never_the_value() {
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<String>| {
        let mut req = http
            .request(method, format!("{}{path}", daemon.base))
            .bearer_auth(crate::support::TOKEN);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let json = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            let text = res.text().await.unwrap_or_default();
            (status, json, text)
        }
    };
    let planted = "planted-value-xyzzy";
    let event = |kind: &str, at: &str, data: Value| {
        json!({"id": "e1", "case": "C-1", "type": kind, "at": at, "data": data}).to_string()
    };
    let lac = |dob: &str| {
        event(
            "child_looked_after",
            "2027-01-04T08:00:00Z",
            json!({"start": "2027-01-04T08:00:00Z", "legal_basis": "s31", "date_of_birth": dob}),
        )
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    // (method, path, body, status, field named)
    type Probe = (
        reqwest::Method,
        String,
        Option<String>,
        u16,
        Option<&'static str>,
    );
    let cases: Vec<Probe> = vec![
        // An unknown event type is named as the field, not repeated.
        (
            post.clone(),
            "/v1/events".into(),
            Some(event(planted, "2027-01-04T08:00:00Z", json!({}))),
            422,
            Some("type"),
        ),
        // Over api.max_body_bytes (64 KiB in the tests).
        (
            post.clone(),
            "/v1/events".into(),
            Some(format!("[\"{}\"]", planted.repeat(5000))),
            413,
            None,
        ),
        (
            post.clone(),
            "/v1/events".into(),
            Some(format!("{{\"id\": \"{planted}\"")),
            400,
            None,
        ),
        (
            get.clone(),
            "/v1/obligations?limit=abc".into(),
            None,
            400,
            Some("limit"),
        ),
        (
            get.clone(),
            format!("/v1/notifications?limit={planted}"),
            None,
            400,
            Some("limit"),
        ),
        (
            get.clone(),
            "/v1/notifications?state=dead&state=sent".into(),
            None,
            400,
            None,
        ),
        (
            get.clone(),
            "/v1/report?from=2026-4-1&to=2027-03-31".into(),
            None,
            400,
            Some("from"),
        ),
        (
            get.clone(),
            "/v1/report?from=2026-04-01".into(),
            None,
            400,
            Some("to"),
        ),
        (
            get.clone(),
            "/v1/report?from=2026-04-01&to=%202027-03-31".into(),
            None,
            400,
            Some("to"),
        ),
        (get.clone(), "/v1/feeds".into(), None, 400, Some("email")),
        (get.clone(), "/v1/cases/%FF%FE/plan".into(), None, 400, None),
        (get.clone(), format!("/v1/{planted}"), None, 404, None),
        (get.clone(), "/v1/events".into(), None, 405, None),
        (
            reqwest::Method::DELETE,
            "/v1/notifications".into(),
            None,
            405,
            None,
        ),
        // Dates and times: RFC 3339 and YYYY-MM-DD only.
        (
            post.clone(),
            "/v1/events".into(),
            Some(event(
                "iro_service_notified",
                "2027-03-01 09:00:00Z",
                json!({}),
            )),
            422,
            Some("at"),
        ),
        (
            post.clone(),
            "/v1/events".into(),
            Some(event(
                "iro_service_notified",
                "2027-03-01T09:00Z",
                json!({}),
            )),
            422,
            Some("at"),
        ),
        (
            post.clone(),
            "/v1/events".into(),
            Some(lac("2015-6-1")),
            422,
            Some("data.date_of_birth"),
        ),
        (
            post.clone(),
            "/v1/events".into(),
            Some(lac(" 2015-06-01")),
            422,
            Some("data.date_of_birth"),
        ),
        (
            post.clone(),
            "/v1/admin/clock".into(),
            Some(json!({"now": "2027-03-01 09:00:00Z"}).to_string()),
            400,
            Some("now"),
        ),
        (
            post.clone(),
            "/v1/admin/clock".into(),
            Some(json!({"now": planted}).to_string()),
            400,
            Some("now"),
        ),
        (
            post.clone(),
            "/v1/admin/clock".into(),
            Some(json!({"then": 5}).to_string()),
            400,
            Some("now"),
        ),
    ];
    for (method, path, body, status, field) in cases {
        let (got, is_json, text) = call(method.clone(), &path, body).await;
        assert_eq!(got, status, "{method} {path}: {text}");
        assert!(is_json, "{method} {path}: not JSON: {text}");
        let body: Value = serde_json::from_str(&text).expect("JSON");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{method} {path}: {body}");
        }
        assert!(!text.contains(planted), "{method} {path}: {text}");
        assert!(!text.contains("2027-03-01 09"), "{method} {path}: {text}");
    }
    let (status, _, text) = call(post.clone(), "/v1/events", Some(lac("2015-06-01"))).await;
    assert_eq!(status, 202, "{text}");
    let (status, _, text) = call(
        post,
        "/v1/admin/clock",
        Some(json!({"now": "2027-01-04t10:00:00z"}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        daemon
            .get("/v1/report?from=2026-04-01&to=2027-03-31")
            .await
            .is_object()
    );
}

/// The authorization scheme is case-insensitive; Basic still gives reading only.
#[tokio::test]
async fn the_authorization_scheme_is_case_insensitive() {
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let http = reqwest::Client::new();
    let event = json!({"id": "n-1", "case": "C-1", "type": "iro_service_notified", "at": "2027-01-04T08:00:00Z"});
    for (scheme, expected) in [
        ("bearer", 202),
        ("BEARER", 202),
        ("bEaReR", 202),
        ("Token", 401),
    ] {
        let res = http
            .post(format!("{}/v1/events", daemon.base))
            .header(
                "authorization",
                format!("{scheme} {}", crate::support::TOKEN),
            )
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(res.status().as_u16(), expected, "{scheme}");
    }
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("anyone:{}", crate::support::TOKEN));
    for (method, path, expected) in [
        (reqwest::Method::GET, "/v1/notifications", 200),
        (reqwest::Method::POST, "/v1/events", 401),
    ] {
        let res = http
            .request(method, format!("{}{path}", daemon.base))
            .header("authorization", format!("basic {basic}"))
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), expected, "{path}");
    }
}

/// One id for two different events: which one happened cannot be told, so the batch is refused
/// naming the id, whatever the order; an identical repeat is a duplicate; a posted event that
/// would change a stored one is refused with `409`, and the stored one stands.
#[tokio::test]
async fn one_id_with_two_contents_is_refused_naming_the_id() {
    let setup = crate::support::Setup::new();
    let daemon = crate::support::Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let start = |basis: &str| {
        json!({"id": "lac-1", "case": "C-7", "type": "child_looked_after", "at": "2027-01-04T08:00:00Z",
               "data": {"start": "2027-01-04T08:00:00Z", "legal_basis": basis, "date_of_birth": "2015-01-01"}})
    };
    let (a, b) = (start("s20"), start("s31"));
    for batch in [json!([a, b]), json!([b, a])] {
        let (status, body) = daemon.post_events(&batch).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            (body["event"].as_str(), body["field"].as_str()),
            (Some("lac-1"), Some("id")),
            "{body}"
        );
        assert!(
            !body.to_string().contains("s31") && !body.to_string().contains("s20"),
            "{body}"
        );
    }
    let (status, _) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/cases/C-7/plan",
            Some(crate::support::TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404, "nothing of a refused batch is stored");

    // The same event twice, even written differently (another offset, other key order), is one.
    let mut same = a.clone();
    same["at"] = json!("2027-01-04T09:00:00+01:00");
    let (status, body) = daemon.post_events(&json!([a, same])).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"][0]["status"], "stored");
    assert_eq!(body["accepted"][1]["status"], "duplicate");

    // Changing a stored event is refused, with the rest of its batch.
    let other = json!({"id": "notified-1", "case": "C-7", "type": "iro_service_notified", "at": "2027-01-04T08:30:00Z"});
    let (status, body) = daemon.post_events(&json!([other, b])).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (body["event"].as_str(), body["field"].as_str()),
        (Some("lac-1"), Some("id")),
        "{body}"
    );
    assert!(!body.to_string().contains("s31"), "{body}");
    let (status, body) = daemon.post_events(&other).await;
    assert_eq!(
        (status, body["accepted"][0]["status"].as_str()),
        (202, Some("stored")),
        "nothing of the refused batch was stored: {body}"
    );
    let (status, body) = daemon.post_events(&a).await;
    assert_eq!(
        (status, body["accepted"][0]["status"].as_str()),
        (202, Some("duplicate")),
        "{body}"
    );
    let obligations = daemon
        .get("/v1/obligations?case=C-7&state=outstanding")
        .await;
    assert!(
        obligations["obligations"]
            .as_array()
            .is_some_and(|o| o.iter().any(|o| o["rule"] == "section20_status_begins")),
        "the stored section 20 start stands: {obligations}"
    );
}

/// The bytes a case's plan takes in the store: its obligations, the people told and its outbox.
async fn stored_bytes(database_url: &str, case: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("open the database");
    let mut total = 0;
    for sql in [
        "SELECT COALESCE(SUM(LENGTH(notification) + LENGTH(data)), 0) AS n FROM outbox WHERE case_ref = $1",
        "SELECT COALESCE(SUM(LENGTH(body)), 0) AS n FROM obligations WHERE case_ref = $1",
        "SELECT COALESCE(SUM(LENGTH(email) + LENGTH(role) + LENGTH(obligation)), 0) AS n FROM obligation_people WHERE case_ref = $1",
    ] {
        let row = sqlx::query(sql)
            .bind(case)
            .fetch_one(&mut db)
            .await
            .expect(sql);
        total += sqlx::Row::try_get::<i64, _>(&row, "n").expect("a sum");
    }
    total
}

/// A review booked with `n` participants (and a case taken into care before it).
fn booking(case: &str, n: usize) -> Value {
    let participants: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("Person {i}"), "email": format!("person.{i}@example.org"), "role": "parent"}))
        .collect();
    json!([
        {"id": format!("{case}-lac"), "case": case, "type": "child_looked_after", "at": "2026-12-01T10:00:00Z",
         "data": {"start": "2026-12-01T10:00:00Z", "legal_basis": "s31", "date_of_birth": "2015-06-01"}},
        {"id": format!("{case}-rs"), "case": case, "type": "review_scheduled", "at": "2026-12-10T15:00:00Z",
         "data": {"review_id": "R1", "meeting_at": "2027-01-06T14:00:00Z", "participants": participants}}
    ])
}

/// A list longer than 500 items is refused naming the limit; up to it, what an event costs the
/// store grows with the list, not with its square (the whole list used to be copied into each
/// participant's invitation), and every participant's invitation still says when the meeting is.
#[tokio::test]
async fn long_lists_are_bounded_and_cost_in_proportion_to_their_length() {
    let mut setup = crate::support::Setup::new();
    // Room for 500 participants in one body.
    setup.max_body_bytes = 1 << 20;
    let daemon = crate::support::Daemon::start(&setup, "2026-12-10T16:00:00Z");

    for (field, event) in [
        ("data.participants", booking("C-501", 501)[1].clone()),
        (
            "data.recommendations",
            json!({"id": "ri-501", "case": "C-501", "type": "recommendations_issued", "at": "2026-12-10T15:00:00Z",
                   "data": {"review_id": "R1", "recommendations": (0..501).map(|i| json!({
                       "id": format!("R1-{i}"), "owner": {"email": "sam@council.example"}, "due": "2027-03-01"}))
                       .collect::<Vec<_>>()}}),
        ),
    ] {
        let (status, body) = daemon.post_events(&event).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], field, "{body}");
        assert!(
            body["message"].as_str().unwrap_or_default().contains("500"),
            "{body}"
        );
    }

    for (case, n) in [("C-100", 100), ("C-400", 400), ("C-500", 500)] {
        let (status, body) = daemon.post_events(&booking(case, n)).await;
        assert_eq!(status, 202, "{case}: {body}");
    }
    let (small, large) = (
        stored_bytes(&setup.database_url, "C-100").await,
        stored_bytes(&setup.database_url, "C-400").await,
    );
    // Four times the people: about four times the bytes (sixteen if each row held the list).
    assert!(
        large < small * 6,
        "100 participants take {small} bytes, 400 take {large}"
    );

    // The invitations go ten working days before the meeting, each with the meeting's time.
    daemon.clock("2026-12-15T09:00:00Z").await;
    let spool = crate::support::spooled(&setup.spool());
    let invitations: Vec<&(String, String)> = spool
        .iter()
        .filter(|(_, m)| m.contains("@example.org>") && m.contains("invited to a looked-after"))
        .collect();
    assert_eq!(invitations.len(), 1000, "500 + 400 + 100 invitations");
    assert!(
        invitations.iter().all(|(_, m)| m
            .replace("=\n", "")
            .contains("The meeting is on Wednesday 6 January 2027 at 14:00")),
        "every invitation names the meeting"
    );
    assert!(daemon.outbox("dead").await.is_empty());
}
