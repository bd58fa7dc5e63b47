//! Hostile input: property tests that throw malformed and adversarial input at the parsers and
//! checkers every outside party reaches (the event envelope and vocabulary, JSON Lines, rules
//! files, signed links) and require a clear error, never a panic, and never a value echoed back.
//!
//! The case counts are small so CI stays fast; `PROPTEST_CASES=100000 cargo test --release
//! --test hostile` is the long run.

mod common;
use common::{config, root};
use driftwatch::event::{Event, parse_json_lines};
use driftwatch::links::Links;
use driftwatch::rules::{RuleSet, Services};
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
        if let Err(problems) = RuleSet::load(&rules, &root().join("templates"), &services) {
            prop_assert!(!problems.0.is_empty());
            for p in &problems.0 {
                let text = p.to_string();
                prop_assert!(text.contains(".yaml"), "{text}");
            }
        }
    }
}

mod support;

/// Deeply nested JSON, far-off years and wrong types through the real API: a 4xx naming the
/// problem, and nothing stored.
#[tokio::test]
async fn the_api_refuses_deep_json_and_implausible_years_and_stores_nothing() {
    let setup = support::Setup::new();
    let daemon = support::Daemon::start(&setup, "2027-01-04T09:00:00Z");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, body) = daemon
        .request(
            reqwest::Method::POST,
            "/v1/events",
            Some(support::TOKEN),
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
            Some(support::TOKEN),
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
    let problems = engine.load_templates(&folder);
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
