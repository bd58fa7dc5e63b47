//! The timeliness report against a hand-computed scenario: the example case as it stood on
//! 15 February 2027 (see the README's plan of it).

use crate::common::*;
use chrono::NaiveDate;
use driftwatch::report::{self, RuleFigures};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn figures_for_the_example_case_match_its_plan() {
    let c = config();
    let events = example_events();
    let plan = c
        .planner()
        .plan_case("C-1001", &events, t("2027-02-15T12:00:00Z"));
    let r = report::compute(
        &c.rules,
        &c.calendar,
        [(&plan, &events[..])],
        d("2026-12-01"),
        d("2027-02-15"),
        plan.now,
    );
    let row = |rule: &str| -> RuleFigures {
        r.rules
            .iter()
            .find(|f| f.rule == rule)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {rule}: {r:?}"))
    };
    // Told to the IRO service on 3 December, due the 4th: on time.
    let told = row("iro_service_told");
    assert_eq!(
        (told.due, told.met_on_time, told.on_time_percent),
        (1, 1, Some(100))
    );
    // The first review, held 6 January, was due on the 4th: 20 statutory working days from
    // 2 December, the council's closure days (29 to 31 December) counting. Late.
    let first = row("first_review");
    assert_eq!((first.due, first.met_on_time, first.met_late), (1, 0, 1));
    // The invitations went on 15 December, ten working days before the meeting.
    assert_eq!(row("review_invitations").met_on_time, 1);
    // The decision due 29 January is still not carried out: overdue, 0% on time.
    let decision = row("decision_carried_out");
    assert_eq!(
        (decision.due, decision.overdue, decision.on_time_percent),
        (1, 1, Some(0))
    );
    // The second review is due in April: outside the period.
    assert!(r.rules.iter().all(|f| f.rule != "second_review"));

    assert_eq!(r.caseloads.len(), 1);
    assert_eq!(r.caseloads[0].iro, "Ira Reviewer");
    assert_eq!(
        (r.caseloads[0].children, r.caseloads[0].guidance),
        (1, "under")
    );
    assert_eq!(
        r.events.get("significant_event/placement_disruption"),
        Some(&1)
    );
    assert_eq!(r.events.get("review_held"), Some(&1));

    let csv = report::csv(&r);
    assert!(csv.starts_with("section,item,title,month,figure,value\n"));
    assert!(
        csv.contains("\nrules,decision_carried_out,Review decision carried out,,overdue,1\n"),
        "{csv}"
    );
    let table = report::table(&r);
    assert!(table.contains("Timeliness, obligations due 2026-12-01 to 2027-02-15"));
}

/// One generated child: when they came into care, who their IRO is, when (if ever) their first
/// review was held and when (if ever) they left care.
struct Child {
    case: String,
    start: NaiveDate,
    iro: usize,
    first_review: Option<NaiveDate>,
    ceased: Option<NaiveDate>,
}

const IROS: [&str; 4] = ["Ira Reviewer", "Oli Officer", "Una Umpire", "Kit Chair"];

/// A caseload whose figures are plain to work out: a child every five days from 4 May 2026 under
/// a care order; every third child's first review held ten days in (on time), every third held
/// 45 days in (late: 20 working days is never more than 34 days), the rest never held; every
/// seventh child leaves care 120 days in. Only what has happened by `now`.
fn caseload(now: NaiveDate) -> Vec<Child> {
    (0..60)
        .map(|i| {
            let start = d("2026-05-04") + chrono::Duration::days(5 * i as i64);
            let first_review = match i % 3 {
                0 => Some(start + chrono::Duration::days(10)),
                1 => Some(start + chrono::Duration::days(45)),
                _ => None,
            }
            .filter(|held| *held < now);
            let ceased = Some(start + chrono::Duration::days(120)).filter(|_| i % 7 == 0);
            Child {
                case: format!("R-{i:03}"),
                start,
                iro: i % IROS.len(),
                first_review,
                ceased: ceased.filter(|c| *c < now),
            }
        })
        .filter(|c| c.start < now)
        .collect()
}

fn events_of(children: &[Child]) -> String {
    let at = |day: NaiveDate| format!("{day}T10:00:00Z");
    let mut lines = Vec::new();
    for c in children {
        let mut push = |id: &str, kind: &str, day: NaiveDate, data: serde_json::Value| {
            lines.push(
                serde_json::json!({"id": format!("{}-{id}", c.case), "case": c.case, "type": kind,
                    "at": at(day), "data": data})
                .to_string(),
            );
        };
        push(
            "lac",
            "child_looked_after",
            c.start,
            serde_json::json!({"start": at(c.start), "legal_basis": "s31", "date_of_birth": "2014-03-01"}),
        );
        let name = IROS[c.iro];
        let email = format!("{}@council.example", name.to_lowercase().replace(' ', "."));
        push(
            "iro",
            "iro_allocated",
            c.start,
            serde_json::json!({"iro": {"name": name, "email": email}}),
        );
        push(
            "sw",
            "social_worker_allocated",
            c.start,
            serde_json::json!({"social_worker": {"name": "Sam Social", "email": "sam@council.example"},
                "team_manager": {"name": "Tara Manager", "email": "tara@council.example"}}),
        );
        if let Some(held) = c.first_review {
            push(
                "review1",
                "review_held",
                held,
                serde_json::json!({"review_id": "first", "held_at": at(held)}),
            );
        }
        if let Some(ceased) = c.ceased {
            push(
                "ceased",
                "ceased_looked_after",
                ceased,
                serde_json::json!({"ended_at": at(ceased)}),
            );
        }
    }
    lines.join("\n") + "\n"
}

/// The text between `from` and the next `to` in `text`.
fn after<'t>(text: &'t str, from: &str) -> &'t str {
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` is not on the page"));
    &text[at + from.len()..]
}

/// The annual report for a generated caseload, opened in headless Chromium: the figures the page
/// shows are the ones worked out here from the caseload's own dates (first reviews due 20
/// statutory working days after coming into care, counted by the test's own calendar); printed
/// to PDF, each section is one A4 page.
#[tokio::test]
#[ignore = "needs Debian's chromium and poppler-utils packages; .ci/run runs it"]
async fn the_annual_report_page_shows_the_caseloads_figures_in_a_real_browser() {
    use crate::common::timeline::{count, working_day};
    use crate::support::browser::browse;
    use crate::support::{READ_TOKEN, Setup};

    let (from, to) = (d("2026-06-01"), d("2027-01-31"));
    let now = d("2027-02-01");
    let now_text = "2027-02-01T12:00:00Z";
    let children = caseload(now);
    let setup = Setup::new();
    let config = setup.write();
    let events = setup.dir.path().join("caseload.jsonl");
    std::fs::write(&events, events_of(&children)).unwrap();
    let (code, _, err) = driftwatch_with(
        &config,
        &["import", events.to_str().unwrap(), "--now", now_text],
    );
    assert_eq!(code, 0, "{err}");
    let (code, page, err) = driftwatch_with(
        &config,
        &[
            "report",
            "--from",
            "2026-06-01",
            "--to",
            "2027-01-31",
            "--now",
            now_text,
            "--format",
            "html",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!page.contains("<script") && !page.contains("src=\"http"));

    // What the page must say, worked out from the caseload.
    let in_period = |day: NaiveDate| day >= from && day <= to;
    let started = children.iter().filter(|c| in_period(c.start)).count();
    let ceased = children
        .iter()
        .filter(|c| c.ceased.is_some_and(in_period))
        .count();
    let mut month_ends = Vec::new();
    let mut month = from;
    while month <= to {
        let next = month.checked_add_months(chrono::Months::new(1)).unwrap();
        let end = next.pred_opt().unwrap().min(to);
        month_ends.push(
            children
                .iter()
                .filter(|c| c.start <= end && c.ceased.is_none_or(|x| x > end))
                .count(),
        );
        month = next;
    }
    let average = month_ends.iter().sum::<usize>() as f64 / month_ends.len() as f64;
    let (mut on_time, mut late, mut overdue) = (0, 0, 0);
    for c in &children {
        // "Within 20 working days" of coming into care (section 31: from the start).
        let due = count(c.start, 20, working_day);
        if !in_period(due) {
            continue;
        }
        match c.first_review {
            Some(held) if held <= due => on_time += 1,
            Some(_) => late += 1,
            // Not held: overdue once the day has passed, unless the child has left care.
            None if due < now && c.ceased.is_none() => overdue += 1,
            None => {}
        }
    }
    assert!(
        on_time > 0 && late > 0 && overdue > 0,
        "{on_time} {late} {overdue}"
    );

    // The page as Chromium builds it, its text in reading order.
    let file = setup.dir.path().join("report.html");
    std::fs::write(&file, &page).unwrap();
    let url = format!("file://{}", file.display());
    let dom = browse(&url, &["--dump-dom"]);
    let text: String = {
        let mut out = String::new();
        let mut in_tag = false;
        for ch in dom.chars() {
            match ch {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push(' ');
                }
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let card = |what: &str| -> String {
        let before = &text[..text.find(what).unwrap_or_else(|| panic!("no `{what}`"))];
        before.split_whitespace().last().unwrap().to_string()
    };
    assert_eq!(
        card("monthly average looked after"),
        format!("{average:.1}"),
        "{text}"
    );
    assert_eq!(card("started to be looked after"), started.to_string());
    assert_eq!(card("ceased to be looked after"), ceased.to_string());
    assert!(
        text.contains(&format!(
            "First review held: {on_time} on time, {late} late, {overdue} overdue"
        )),
        "{text}"
    );
    assert!(text.contains("Statutory timescale: Within 20 working days of: looked after began"));
    // Caseloads as they stand: the children still in care, by IRO, named by name.
    for (i, name) in IROS.iter().enumerate() {
        let n = children
            .iter()
            .filter(|c| c.iro == i && c.ceased.is_none())
            .count();
        let shown = after(after(&text, "IRO caseloads"), name);
        assert!(
            shown.trim_start().starts_with(&format!("{n} ")),
            "{name}: {shown:.40}"
        );
    }
    // Cases by reference only; no child's name or free text is in the caseload to leak.
    assert!(text.contains("Overdue longest"));
    assert!(text.contains("R-0"));

    // Printed: one A4 page per section, each starting with its heading.
    let pdf = setup.dir.path().join("report.pdf");
    browse(
        &url,
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
    );
    let pdfinfo = std::process::Command::new("pdfinfo")
        .arg(&pdf)
        .output()
        .expect("pdfinfo (Debian's poppler-utils)");
    let info = String::from_utf8_lossy(&pdfinfo.stdout);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a page count");
    assert!(info.contains("(A4)"), "A4: {info}");
    let sections = [
        "Children looked after",
        "Review timeliness",
        "Timeliness by duty",
        "IRO caseloads",
        "Drift and delay challenged",
        "Needs attention",
    ];
    assert_eq!(pages, sections.len(), "{info}");
    for (i, heading) in sections.iter().enumerate() {
        let page = std::process::Command::new("pdftotext")
            .args([
                "-f",
                &(i + 1).to_string(),
                "-l",
                &(i + 1).to_string(),
                "-layout",
            ])
            .arg(&pdf)
            .arg("-")
            .output()
            .expect("pdftotext");
        let page = String::from_utf8_lossy(&page.stdout);
        assert!(page.contains(heading), "page {}: {page}", i + 1);
    }
    // The first page as an image, for the README.
    let shot = setup.dir.path().join("report");
    let status = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(&shot)
        .status()
        .expect("pdftoppm");
    assert!(status.success());
    let png = shot.with_extension("png");
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    if std::env::var_os("DRIFTWATCH_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&png, crate::support::repo().join("docs/images/report.png")).unwrap();
    }

    // The API gives the same page, and the same figures as JSON and CSV.
    let daemon = crate::support::Daemon::start(&setup, now_text);
    let (status, body) = daemon
        .request(
            reqwest::Method::GET,
            "/v1/report?from=2026-06-01&to=2027-01-31&format=html",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::Value::String(page));
    let json = daemon.get("/v1/report?from=2026-06-01&to=2027-01-31").await;
    assert_eq!(json["children"]["started"], started);
    assert_eq!(json["children"]["ceased"], ceased);
}
