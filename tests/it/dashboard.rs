//! The dashboard in a real browser: the daemon runs a seeded caseload, headless Chromium
//! (Debian's `chromium` package) opens the page with a read token, and the test reads the DOM the
//! browser built and checks the screenshot it took.
//!
//! Needs `chromium` (or `DRIFTWATCH_TEST_CHROMIUM` naming a Chromium binary), so it is ignored by
//! a plain `cargo test`; `.ci/run` installs Chromium and runs it with `--include-ignored`.
//! `DRIFTWATCH_UPDATE_SCREENSHOT=1` also copies the screenshot to `docs/images/dashboard.png`
//! for the README.

use crate::support::browser::browse;
use crate::support::*;
use serde_json::Value;

/// The text of a table cell's neighbours: the row of the DOM that mentions `needle`.
fn row_with<'a>(dom: &'a str, needle: &str) -> &'a str {
    let at = dom
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` is not on the page"));
    let start = dom[..at].rfind("<tr").expect("in a table row");
    let end = at + dom[at..].find("</tr>").expect("the row ends");
    &dom[start..end]
}

/// Numbers in the cells of a row, in order.
fn numbers(row: &str) -> Vec<i64> {
    row.split("<td")
        .skip(1)
        .filter_map(|cell| {
            let text = cell.split_once('>')?.1;
            let text = text.split('<').next()?.trim();
            text.parse().ok()
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs Debian's chromium package; .ci/run runs it"]
async fn the_dashboard_shows_what_is_drifting_in_a_real_browser() {
    let receiver = Receiver::start().await;
    let mut setup = Setup::new();
    setup.webhook_url = Some(receiver.url.clone());
    setup.extra_rules = Some(WEBHOOK_RULE.into());
    let daemon = Daemon::start(&setup, "2026-12-01T09:00:00Z");
    let cases = ["C-3001", "C-3002", "C-3003"];
    for case in cases {
        assert_eq!(daemon.post_events(&example_events_for(case)).await.0, 202);
    }
    // The Teams channel refuses its notices for good: dead deliveries.
    receiver.script(&[404, 404, 404, 404, 404, 404]);
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    while day <= chrono::NaiveDate::from_ymd_opt(2027, 2, 15).unwrap() {
        daemon.clock(&format!("{day}T08:00:00Z")).await;
        day += chrono::Duration::days(1);
    }
    daemon.clock("2027-02-15T10:00:00Z").await;
    let dead = daemon.outbox("dead").await;
    assert_eq!(dead.len(), 3, "one significant-event notice per child");

    // Without a token the browser is asked for one; a token without the read scope is refused.
    let url = format!("{}/dashboard", daemon.base);
    let res = reqwest::get(&url).await.expect("GET");
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let res = reqwest::Client::new()
        .get(&url)
        .basic_auth("manager", Some("not-a-token"))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 401);

    // What the API says is overdue, to check the page's figures against.
    let overdue: Vec<Value> = daemon
        .get("/v1/obligations?state=overdue&limit=10000")
        .await["obligations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!overdue.is_empty());
    let drifting = overdue
        .iter()
        .filter(|o| o["rule"] == "decision_carried_out")
        .count();
    assert_eq!(drifting, 3, "each child's decision R1-1 drifts");

    let authed = url.replace("http://", &format!("http://manager:{READ_TOKEN}@"));
    let dom = browse(&authed, &["--dump-dom"]);
    // Five working days on from Monday 15 February, in words.
    assert!(dom.contains("Overdue and due by Mon 22 Feb 2027"), "{dom}");
    assert!(
        dom.contains("Monday 15 February 2027 at 10:00 (UK time)"),
        "{dom}"
    );
    // The cards: overdue as the API counts it, and the dead deliveries.
    let cards = &dom[dom.find("class=\"cards\"").expect("the cards")..];
    let first_number: i64 = cards
        .split("class=\"n overdue\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.trim().parse().ok())
        .expect("the overdue count");
    assert_eq!(first_number, overdue.len() as i64);
    // By IRO, named by name: every case has Ira Reviewer, so all overdue obligations are hers.
    assert!(
        !dom.contains("ira.reviewer@council.example"),
        "IROs by name, not address"
    );
    let iro = numbers(row_with(&dom, "<td>Ira Reviewer</td>"));
    assert_eq!(iro[0], overdue.len() as i64, "{iro:?}");
    // By rule: three drifting decisions, 11 working days late on Monday 15 February (due
    // Friday 29 January).
    let rule = numbers(row_with(
        &dom,
        "<td>Review decision carried out</td><td class",
    ));
    assert_eq!(rule[0], 3, "{rule:?}");
    assert_eq!(rule[2], 11, "{rule:?}");
    for case in cases {
        assert!(dom.contains(&format!("href=\"/dashboard/cases/{case}\"")));
    }
    // Dead deliveries, with the reason and the webhook they were for.
    assert!(dom.contains("the webhook answered HTTP 404"), "{dom}");
    assert!(dom.contains("<td>Wed 10 Feb 2027, 19:30</td>"), "{dom}");
    assert!(dom.contains("<td>webhook:"), "{dom}");
    // Checks across cases have their own section.
    assert!(dom.contains("Checks across cases"), "{dom}");
    // Case references only.
    for private in [
        "Sam Social",
        "Parent One",
        "sibling contact",
        "carer@example.org",
    ] {
        assert!(!dom.contains(private), "the dashboard shows `{private}`");
    }

    // A case's timeline.
    let timeline = browse(&format!("{authed}/cases/C-3001"), &["--dump-dom"]);
    assert!(timeline.contains("Case C-3001"));
    assert!(timeline.contains("recommendations issued (from case system)"));
    assert!(
        timeline.contains("Review decision carried out (due Fri 29 Jan 2027)"),
        "{timeline}"
    );
    assert!(timeline.contains("overdue, 11 working day(s) late"));
    // A deadline shows its day, not the midnight after it.
    assert!(timeline.contains("<td>Fri 29 Jan 2027</td>"), "{timeline}");
    assert!(!timeline.contains("Sat 30 Jan 2027, 00:00"), "{timeline}");
    // Times people read are local time in words.
    assert!(
        timeline.contains("Monday 15 February 2027 at 10:00 (UK time)"),
        "{timeline}"
    );
    assert!(timeline.contains("dead"));
    assert!(!timeline.contains("Sam Social"));

    // The screenshot: the page as a manager sees it.
    let dir = tempfile::tempdir().expect("a folder");
    let shot = dir.path().join("dashboard.png");
    browse(&authed, &[&format!("--screenshot={}", shot.display())]);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("the screenshot was written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!((info.width, info.height), (1280, 1600));
    let channels = info.color_type.samples();
    let at = |x: usize, y: usize| {
        let i = (y * info.width as usize + x) * channels;
        (pixels[i], pixels[i + 1], pixels[i + 2])
    };
    // The header band is driftwatch blue, the page behind the tables is off-white, and the
    // overdue figures are drawn in red somewhere on the page.
    assert_eq!(at(4, 4), (0x1d, 0x35, 0x57));
    assert_eq!(at(1270, 1590), (0xf6, 0xf6, 0xf4));
    let red = (0..info.height as usize)
        .flat_map(|y| (0..info.width as usize).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let (r, g, b) = at(x, y);
            r > 0x90 && g < 0x40 && b < 0x40
        })
        .count();
    assert!(red > 100, "overdue figures are shown in red ({red} pixels)");
    if std::env::var_os("DRIFTWATCH_UPDATE_SCREENSHOT").is_some() {
        let target = repo().join("docs/images/dashboard.png");
        std::fs::create_dir_all(target.parent().expect("a folder")).expect("docs/images");
        std::fs::copy(&shot, target).expect("copy the screenshot");
    }
}
