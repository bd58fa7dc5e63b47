//! Going live with a council's existing caseload: a realistic snapshot CSV (generated here,
//! a few hundred children part-way through their reviews), the dry run, the import, what the
//! daemon then sends (read from a real SMTP server), and a second import that changes nothing.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const HEADER: &str = "Case reference,Looked after since,Legal status,Date of birth,IRO,IRO email,\
Social worker,Social worker email,Team manager,Team manager email,Reviews held,Last review,\
Next review,Open recommendations,Record sent,In care proceedings,Children's guardian,\
Guardian email,Legal adviser,Legal adviser email";

/// The moment of going live: Monday 1 February 2027, 08:00.
const GO_LIVE: &str = "2027-02-01T08:00:00Z";

/// A small deterministic generator, so the snapshot is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `rows` children: some new, some mid-cycle with a review booked, some overdue for review,
/// some with open recommendations (some drifting), some in care proceedings.
fn snapshot(rows: usize) -> String {
    use chrono::{Duration, NaiveDate};
    let mut rng = Lcg(2027);
    let base = NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
    let bases = ["Section 20", "Full care order", "Interim care order", "s31"];
    let mut out = String::from(HEADER);
    out.push('\n');
    for i in 0..rows {
        let iro = i % 7;
        let since = base - Duration::days(20 + rng.next(2000) as i64);
        let dob = since - Duration::days(365 + rng.next(5000) as i64);
        let kind = rng.next(5);
        let (reviews, last, next) = match kind {
            // New to care: no review yet.
            0 => (0, String::new(), String::new()),
            // Mid-cycle: reviewed recently, next review booked.
            1 | 2 => {
                let last = base - Duration::days(10 + rng.next(100) as i64);
                let next = base + Duration::days(20 + rng.next(120) as i64);
                (
                    1 + rng.next(6),
                    last.format("%d/%m/%Y").to_string(),
                    format!("{} 10:00", next.format("%d/%m/%Y")),
                )
            }
            // Overdue: last review long ago, nothing booked.
            _ => {
                let last = base - Duration::days(200 + rng.next(200) as i64);
                (
                    2 + rng.next(5),
                    last.format("%Y-%m-%d").to_string(),
                    String::new(),
                )
            }
        };
        let recommendations = if reviews > 0 && rng.next(3) == 0 {
            let due = base + Duration::days(rng.next(60) as i64) - Duration::days(30);
            format!("R{i}-1 due {due}; R{i}-2 due {}", due + Duration::days(30))
        } else {
            String::new()
        };
        let proceedings = rng.next(6) == 0;
        let (guardian, guardian_email, adviser, adviser_email) = if proceedings {
            (
                format!("Guardian {i}"),
                format!("guardian{i}@cafcass.example"),
                "Legal team".to_string(),
                "legal@council.example".to_string(),
            )
        } else {
            Default::default()
        };
        let record = if reviews > 0 && rng.next(4) > 0 {
            "yes"
        } else {
            "no"
        };
        out.push_str(&format!(
            "G-{i:04},{since},{basis},{dob},IRO {iro},iro{iro}@council.example,Worker {sw},\
             sw{sw}@council.example,Manager {tm},tm{tm}@council.example,{reviews},{last},{next},\
             {recommendations},{record},{p},{guardian},{guardian_email},{adviser},{adviser_email}\n",
            since = since.format("%d/%m/%Y"),
            basis = bases[rng.next(4) as usize],
            sw = i % 40,
            tm = i % 8,
            p = if proceedings { "Yes" } else { "No" },
        ));
    }
    out
}

fn driftwatch(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DRIFTWATCH_DATABASE_URL")
        .output()
        .expect("run driftwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The dry run's table: rule -> (send now, next working day, later, in digest, before go-live,
/// superseded, acknowledged).
fn preview(out: &str) -> BTreeMap<String, [usize; 7]> {
    out.lines()
        .skip_while(|l| !l.trim_start().starts_with("RULE"))
        .skip(1)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let n: Vec<usize> = cells[1..].iter().filter_map(|c| c.parse().ok()).collect();
            let n: [usize; 7] = n.try_into().ok()?;
            (cells.len() == 8).then(|| (cells[0].to_string(), n))
        })
        .collect()
}

/// Monday 1 February 2027 at 08:00: before working hours on a working day.
#[tokio::test]
async fn go_live_sends_what_the_dry_run_said_and_a_second_import_changes_nothing() {
    go_live(GO_LIVE, "2027-02-01T09:00:00Z").await;
}

/// Saturday 6 February 2027: nothing that is not urgent goes before Monday 09:00.
#[tokio::test]
async fn going_live_on_a_saturday_sends_on_monday_morning() {
    go_live("2027-02-06T10:00:00Z", "2027-02-08T09:00:00Z").await;
}

/// Imports a generated caseload at `at`, checks the daemon sends nothing before `first` (the
/// start of working hours) and then exactly what the dry run said, once, and that importing the
/// same file again, then and weeks later, stores and sends nothing.
async fn go_live(at: &'static str, first: &'static str) {
    let mailbox = Mailbox::start();
    let mut setup = Setup::new();
    setup.smtp_port = Some(mailbox.port);
    let config = setup.write();
    let csv = setup.dir.path().join("caseload.csv");
    std::fs::write(&csv, snapshot(300)).expect("write snapshot");
    let mapping = repo().join("config/snapshot-mapping.yaml");
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "import".into(),
            "--snapshot".into(),
            csv.display().to_string(),
            "--mapping".into(),
            mapping.display().to_string(),
            "--now".into(),
            at.into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&'static str]| {
        let a = args(extra);
        driftwatch(&config, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // The dry run checks and previews, and writes nothing.
    let (code, out, err) = run(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("for 300 case(s) are valid; nothing was changed (dry run)"),
        "{out}"
    );
    assert!(!setup.dir.path().join("driftwatch.db").exists());
    let expected = preview(&out);
    let total = expected.get("total").copied().expect("a total line");
    assert!(total[0] > 0, "going live sends something: {out}");
    assert!(total[4] > 0, "and records what fell before go-live: {out}");

    let (code, out, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("event(s) stored, 0 already stored, 300 case(s) planned"),
        "{out}"
    );

    // The daemon starts at go-live and sends nothing before working hours, then exactly what
    // the dry run said, once each.
    let daemon = Daemon::start(&setup, at);
    daemon.clock(at).await;
    assert!(
        daemon.outbox("sent").await.is_empty(),
        "nothing before working hours"
    );
    assert!(mailbox.mail().is_empty());
    daemon.clock(first).await;
    let sent = daemon.outbox("sent").await;
    for n in &sent {
        assert_eq!(n["send_at"].as_str(), Some(first), "{n}");
    }
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for n in &sent {
        *by_rule
            .entry(n["rule"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    for (rule, counts) in &expected {
        if rule != "total" {
            assert_eq!(by_rule.get(rule).copied().unwrap_or(0), counts[0], "{rule}");
        }
    }
    assert_eq!(sent.len(), total[0]);
    assert_eq!(mailbox.mail().len(), total[0]);
    assert_eq!(daemon.outbox("in_digest").await.len(), total[3]);
    assert_eq!(daemon.outbox("before_go_live").await.len(), total[4]);
    assert_eq!(daemon.outbox("superseded").await.len(), total[5]);
    // Overdue obligations show as overdue, and each gets one step of its ladders at most: the
    // one that applies now, marked late.
    let overdue = daemon
        .get("/v1/obligations?state=overdue&limit=10000")
        .await;
    assert!(overdue["count"].as_u64().unwrap_or(0) > 0);
    let mut steps: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for n in &sent {
        let note = &n["notification"];
        let ladder = matches!(note["kind"].as_str(), Some("reminder" | "escalation"));
        if let (true, Some(o)) = (ladder, note["obligation"].as_str()) {
            steps
                .entry(format!("{}/{o}", n["case"]))
                .or_default()
                .insert(note["step"].as_str().unwrap_or("").to_string());
        }
    }
    assert!(
        steps.values().all(|s| s.len() == 1),
        "one step per obligation: {:?}",
        steps
            .iter()
            .filter(|(_, s)| s.len() > 1)
            .take(5)
            .collect::<Vec<_>>()
    );

    // The same file again: nothing stored, nothing sent.
    let (code, out, _) = run(&[]);
    assert_eq!(code, 0);
    assert!(out.contains(" 0 event(s) stored"), "{out}");
    daemon.clock(first).await;
    assert_eq!(mailbox.mail().len(), total[0]);
    assert_eq!(daemon.outbox("sent").await.len(), total[0]);

    // And weeks later, when the reviews booked in it have been held: still nothing stored,
    // and nobody told again of a meeting already held.
    let later = [
        "import",
        "--snapshot",
        csv.to_str().unwrap_or_default(),
        "--mapping",
        mapping.to_str().unwrap_or_default(),
        "--now",
        "2027-06-01T08:00:00Z",
    ];
    let (code, out, err) = driftwatch(&config, &later);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" 0 event(s) stored"), "{out}");

    // Next week's report: one child has a new IRO. Only that is added, dated at the import, and
    // the new IRO is the one told from then on.
    let text = std::fs::read_to_string(&csv).expect("snapshot");
    let changed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("G-0000,") {
                l.replace(
                    "IRO 0,iro0@council.example",
                    "IRO New,iro.new@council.example",
                )
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&csv, changed.join("\n")).expect("next week's snapshot");
    let next_week = [
        "import",
        "--snapshot",
        csv.to_str().unwrap_or_default(),
        "--mapping",
        mapping.to_str().unwrap_or_default(),
        "--now",
        "2027-02-15T08:00:00Z",
    ];
    let (code, out, err) = driftwatch(&config, &next_week);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": 1 event(s) stored,"), "{out}");
    daemon.clock("2027-02-15T08:00:00Z").await;
    let plan = daemon.get("/v1/cases/G-0000/plan").await;
    let to_iro: Vec<&str> = plan["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["role"] == "iro" && n["send_at"].as_str().unwrap_or("") > "2027-02-15T08:00:00Z"
        })
        .filter_map(|n| n["email"].as_str())
        .collect();
    assert!(
        !to_iro.is_empty() && to_iro.iter().all(|e| *e == "iro.new@council.example"),
        "{to_iro:?}"
    );
}

#[test]
fn a_bad_row_is_reported_by_line_and_column_and_nothing_is_imported() {
    let setup = Setup::new();
    let config = setup.write();
    let mut text = snapshot(40);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Line 6: a date that is not a date; line 9: an email that is not one; line 12: a legal
    // status the mapping does not know.
    lines[5] = lines[5].replacen(",IRO 4,iro4@council.example,", ",IRO 4,iro4 at council,", 1);
    let cells: Vec<&str> = lines[8].split(',').collect();
    let mut cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    cells[1] = "31/02/2020".into();
    lines[8] = cells.join(",");
    let cells: Vec<&str> = lines[11].split(',').collect();
    let mut cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    cells[2] = "Special guardianship".into();
    lines[11] = cells.join(",");
    text = lines.join("\n");
    let csv = setup.dir.path().join("bad.csv");
    std::fs::write(&csv, &text).unwrap();
    let (code, _, err) = driftwatch(
        &config,
        &[
            "import",
            "--snapshot",
            csv.to_str().unwrap(),
            "--mapping",
            repo()
                .join("config/snapshot-mapping.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(code, 1);
    let file = csv.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:6:6: column `IRO email`: is not an email address"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:9:2: column `Looked after since`: is not a date"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:12:3: column `Legal status`: is not a legal basis"
        )),
        "{err}"
    );
    assert!(
        err.contains("3 problem(s) in the snapshot; nothing was changed"),
        "{err}"
    );
    assert!(
        !err.contains("Special guardianship") && !err.contains("iro4 at council"),
        "no values echoed"
    );
    assert!(!setup.dir.path().join("driftwatch.db").exists());
}

/// A child waiting for an IRO is a fact of the caseload, not a bad cell: the file goes in, and
/// the allocation shows as overdue.
#[tokio::test]
async fn a_child_with_no_iro_yet_is_imported_with_the_allocation_overdue() {
    let setup = Setup::new();
    let config = setup.write();
    let mut lines: Vec<String> = snapshot(3).lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    cells[4] = String::new();
    cells[5] = String::new();
    lines[1] = cells.join(",");
    let csv = setup.dir.path().join("waiting.csv");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let mapping = repo().join("config/snapshot-mapping.yaml");
    let (code, out, err) = driftwatch(
        &config,
        &[
            "import",
            "--snapshot",
            csv.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
            "--now",
            GO_LIVE,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 case(s) planned"), "{out}");
    let daemon = Daemon::start(&setup, GO_LIVE);
    let plan = daemon.get("/v1/cases/G-0000/plan").await;
    let allocation = plan["obligations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["rule"] == "iro_allocation")
        .expect("the allocation");
    assert_eq!(allocation["state"], "overdue", "{allocation}");
    assert!(plan["status"]["iro"].is_null(), "{}", plan["status"]);
}

/// A file in the drop folder, last changed `ago` before now.
fn drop_file(
    folder: &Path,
    name: &str,
    text: &str,
    ago: std::time::Duration,
) -> std::path::PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - ago)
        .unwrap();
    path
}

/// Names in a folder, sorted.
fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The nightly import (systemd/driftwatch-import.service): the newest report in the drop folder
/// goes in once it has stopped changing, what changed is logged in counts, and every file is
/// kept, filed by what became of it.
#[test]
fn the_nightly_import_takes_the_newest_settled_report_and_keeps_every_file() {
    use std::time::Duration;
    let setup = Setup::new();
    let config = setup.write();
    let folder = setup.dir.path().join("caseload");
    std::fs::create_dir(&folder).unwrap();
    let mapping = repo().join("config/snapshot-mapping.yaml");
    let nightly = |now: &str| {
        driftwatch(
            &config,
            &[
                "import",
                "--snapshot",
                folder.to_str().unwrap(),
                "--mapping",
                mapping.to_str().unwrap(),
                "--now",
                now,
            ],
        )
    };
    let hour = Duration::from_secs(3600);

    // Nothing dropped yet: nothing to do, and that is not a failure.
    let (code, out, err) = nightly(GO_LIVE);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("no caseload report (*.csv) is waiting"),
        "{out}"
    );

    // Monday's report was never imported; Tuesday's is still being written; an upload under a
    // temporary name is not a report yet.
    drop_file(&folder, "monday.csv", &snapshot(20), 48 * hour);
    let tuesday = drop_file(
        &folder,
        "tuesday.csv",
        &snapshot(25),
        Duration::from_secs(5),
    );
    drop_file(&folder, "wednesday.csv.part", &snapshot(3), Duration::ZERO);
    let (code, out, err) = nightly(GO_LIVE);
    assert_eq!(code, 75, "{out}{err}");
    assert!(err.contains("may still be being written"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(!setup.dir.path().join("driftwatch.db").exists());
    assert_eq!(
        names(&folder),
        ["monday.csv", "tuesday.csv", "wednesday.csv.part"]
    );

    // Settled: Tuesday's goes in; Monday's is older, so it is set aside, not replayed after it.
    std::fs::File::options()
        .write(true)
        .open(&tuesday)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - hour)
        .unwrap();
    let (code, out, err) = nightly(GO_LIVE);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("25 case(s) planned"), "{out}");
    assert!(
        out.contains("cases: 25 new, 0 changed, 0 unchanged"),
        "{out}"
    );
    assert!(out.contains("stored by type: "), "{out}");
    assert!(out.contains("child_looked_after 25"), "{out}");
    assert_eq!(
        names(&folder),
        ["imported", "skipped", "wednesday.csv.part"]
    );
    assert_eq!(
        names(&folder.join("imported")),
        ["20270201T080000Z-tuesday.csv"]
    );
    assert_eq!(
        names(&folder.join("skipped")),
        ["20270201T080000Z-monday.csv"]
    );
    // What changed is told in counts, never a name.
    assert!(
        !out.contains("Guardian ") && !err.contains("Guardian "),
        "{out}{err}"
    );

    // The next night: one child more, nothing else changed.
    drop_file(&folder, "wednesday.csv", &snapshot(26), hour);
    let (code, out, err) = nightly("2027-02-02T02:30:00Z");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cases: 1 new, 0 changed, 25 unchanged"),
        "{out}"
    );
    assert_eq!(
        names(&folder.join("imported")),
        [
            "20270201T080000Z-tuesday.csv",
            "20270202T023000Z-wednesday.csv"
        ]
    );

    // A report with problems stores nothing and is kept apart for an admin.
    let mut bad = snapshot(27);
    bad.push_str("G-9999,not a date,s20,,,,,,,,0,,,,,No,,,,\n");
    drop_file(&folder, "thursday.csv", &bad, hour);
    let (code, _, err) = nightly("2027-02-03T02:30:00Z");
    assert_eq!(code, 1);
    assert!(
        err.contains("column `Looked after since`: is not a date"),
        "{err}"
    );
    assert!(err.contains("nothing from"), "{err}");
    assert_eq!(
        names(&folder.join("rejected")),
        ["20270203T023000Z-thursday.csv"]
    );
    // Nothing from it was stored: the same rows without the bad one add only the new child.
    drop_file(&folder, "friday.csv", &snapshot(27), hour);
    let (code, out, err) = nightly("2027-02-04T02:30:00Z");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cases: 1 new, 0 changed, 26 unchanged"),
        "{out}"
    );
}

/// The same snapshot under rules whose vocabulary calls the allocations and the meeting's time
/// by other names: the import learns them from the case model, so the dry run shows the same
/// obligations and messages, and a contact changed in next week's file is still dated at that
/// import (it follows the old one).
#[tokio::test]
async fn a_snapshot_follows_the_names_in_the_rules_vocabulary() {
    let renames = [
        ("social_worker_allocated", "worker_assigned"),
        ("iro_allocated", "iro_appointed"),
        ("meeting_at", "starts_at"),
    ];
    let rename = |folder: &Path| {
        let mut files = vec![folder.to_path_buf()];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let mut text = std::fs::read_to_string(&path).unwrap();
            for (from, to) in renames {
                text = text.replace(from, to);
            }
            std::fs::write(&path, text).unwrap();
        }
    };
    let default = Setup::new();
    let default_config = default.write();
    let mut renamed = Setup::new();
    // A template of its own makes the setup copy the shipped templates, so they can be renamed.
    renamed.extra_templates = vec![("unused".into(), "Unused".into(), "Unused.".into())];
    let renamed_config = renamed.write();
    rename(&renamed.rules_dir());
    rename(&renamed.dir.path().join("templates"));
    let vocabulary = std::fs::read_to_string(renamed.rules_dir().join("vocabulary.yaml")).unwrap();
    assert!(vocabulary.contains("iro_appointed:") && !vocabulary.contains("iro_allocated"));

    let csv = renamed.dir.path().join("caseload.csv");
    std::fs::write(&csv, snapshot(60)).unwrap();
    let mapping = repo().join("config/snapshot-mapping.yaml");
    let import = |config: &Path, now: &str, extra: &[&str]| {
        let mut args = vec![
            "import",
            "--snapshot",
            csv.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
            "--now",
            now,
        ];
        args.extend(extra);
        driftwatch(config, &args)
    };
    let (code, default_out, err) = import(&default_config, GO_LIVE, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let (code, renamed_out, err) = import(&renamed_config, GO_LIVE, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let expected = preview(&default_out);
    assert!(
        expected["review_invitations"][0] + expected["review_invitations"][2] > 0,
        "{default_out}"
    );
    assert_eq!(preview(&renamed_out), expected, "{renamed_out}");

    let (code, out, err) = import(&renamed_config, GO_LIVE, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("iro_appointed 60") && out.contains("worker_assigned 60"),
        "{out}"
    );

    // Next week G-0000 has a new IRO: the appointment is dated at that import.
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(
        &csv,
        text.replacen("iro0@council.example", "new.iro@council.example", 1),
    )
    .unwrap();
    let week_on = "2027-02-08T08:00:00Z";
    let (code, out, err) = import(&renamed_config, week_on, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stored by type: iro_appointed 1"), "{out}");
    let store = driftwatch::store::Store::open(&renamed.database_url)
        .await
        .unwrap();
    let appointed: Vec<driftwatch::event::Event> = store
        .case_events("G-0000")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "iro_appointed")
        .collect();
    store.close().await;
    assert_eq!(appointed.len(), 2, "{appointed:?}");
    assert_eq!(
        appointed[1].at,
        week_on.parse::<chrono::DateTime<chrono::Utc>>().unwrap()
    );
    assert_eq!(appointed[1].data["iro"]["email"], "new.iro@council.example");
}
