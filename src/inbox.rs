//! The drop folder a case system exports its caseload report into each night: which file to
//! import, and where each file goes afterwards. Owns the choice of file and the moves; must not
//! read a file's contents or touch the store (the caller imports what this picks).
//!
//! Why these choices:
//! - Only the newest `*.csv` is imported. Importing an older report after it would replay a
//!   caseload that has since moved on, so older files still waiting are set aside in `skipped/`.
//! - A file changed in the last `settle` seconds may still be being written (an SFTP upload, a
//!   report tool writing row by row), so nothing is imported and the caller exits with
//!   [`EX_TEMPFAIL`]; the timer's unit tries again later. Writers that upload under another name
//!   and rename to `.csv` at the end are never seen half-written at all.
//! - Every file is kept: `imported/` after an import, `rejected/` when it had problems (nothing
//!   from it was stored), each name prefixed with the moment it was filed, so the folder itself
//!   is the history an admin reads.

use chrono::{DateTime, Utc};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Exit status of an import refused because the newest file may still be being written
/// (`EX_TEMPFAIL` of sysexits.h): try again later.
pub const EX_TEMPFAIL: u8 = 75;

/// What is waiting in a drop folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Waiting {
    /// No report is waiting.
    Nothing,
    /// The newest report changed too recently to be complete; nothing should be imported yet.
    Unsettled {
        file: PathBuf,
        changed_ago: Duration,
    },
    /// The newest report, settled, and older ones that must not be imported after it.
    Ready { file: PathBuf, older: Vec<PathBuf> },
}

/// Where a file goes once it has been dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Imported,
    Rejected,
    Skipped,
}

impl Outcome {
    fn folder(self) -> &'static str {
        match self {
            Outcome::Imported => "imported",
            Outcome::Rejected => "rejected",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The reports waiting in `folder`: regular files named `*.csv` (any case) directly in it,
/// newest first by modification time, the name breaking ties.
pub fn waiting(folder: &Path, settle: Duration, now: SystemTime) -> io::Result<Waiting> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let path = entry.path();
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let meta = entry.metadata()?;
        if is_csv && meta.is_file() {
            files.push((meta.modified()?, path));
        }
    }
    files.sort_by(|a, b| b.cmp(a));
    let mut files = files.into_iter();
    let Some((modified, file)) = files.next() else {
        return Ok(Waiting::Nothing);
    };
    // A modification time in the future (a clock set wrongly on the exporting server) counts
    // as just now: the file is not known to be complete.
    let changed_ago = now.duration_since(modified).unwrap_or_default();
    if changed_ago < settle {
        return Ok(Waiting::Unsettled { file, changed_ago });
    }
    Ok(Waiting::Ready {
        file,
        older: files.map(|(_, path)| path).collect(),
    })
}

/// Moves `file` into `outcome`'s folder beside it, named `<moment>-<name>`, and returns the new
/// path. The folder is created if need be; a name already there gets a number added, so no
/// file is ever overwritten.
pub fn file_away(file: &Path, outcome: Outcome, at: DateTime<Utc>) -> io::Result<PathBuf> {
    let parent = file.parent().unwrap_or(Path::new("."));
    let folder = parent.join(outcome.folder());
    std::fs::create_dir_all(&folder)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    let mut target = folder.join(format!("{stamp}-{name}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = folder.join(format!("{stamp}-{n}-{name}"));
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn csv(dir: &Path, name: &str, modified: SystemTime) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "case\n").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        path
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const SETTLE: Duration = Duration::from_secs(120);

    #[test]
    fn an_empty_folder_has_nothing_waiting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("imported.csv")).unwrap();
        let now: SystemTime = crate::clock::wall_now().into();
        assert_eq!(waiting(dir.path(), SETTLE, now).unwrap(), Waiting::Nothing);
    }

    #[test]
    fn the_newest_settled_report_is_ready_and_older_ones_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let now: SystemTime = crate::clock::wall_now().into();
        let old = csv(dir.path(), "monday.csv", now - 48 * HOUR);
        let new = csv(dir.path(), "TUESDAY.CSV", now - HOUR);
        csv(dir.path(), "upload.csv.part", now);
        assert_eq!(
            waiting(dir.path(), SETTLE, now).unwrap(),
            Waiting::Ready {
                file: new,
                older: vec![old]
            }
        );
    }

    #[test]
    fn a_report_changed_within_the_settling_time_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let now: SystemTime = crate::clock::wall_now().into();
        csv(dir.path(), "monday.csv", now - 48 * HOUR);
        let writing = csv(dir.path(), "tuesday.csv", now - Duration::from_secs(30));
        assert_eq!(
            waiting(dir.path(), SETTLE, now).unwrap(),
            Waiting::Unsettled {
                file: writing,
                changed_ago: Duration::from_secs(30)
            }
        );
        // From the future (a wrong clock elsewhere): not known to be complete either.
        let dir = tempfile::tempdir().unwrap();
        csv(dir.path(), "x.csv", now + HOUR);
        assert!(matches!(
            waiting(dir.path(), SETTLE, now).unwrap(),
            Waiting::Unsettled { .. }
        ));
    }

    #[test]
    fn filing_away_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let at = "2027-01-04T02:30:00Z".parse().unwrap();
        let now: SystemTime = crate::clock::wall_now().into();
        let first = file_away(&csv(dir.path(), "r.csv", now), Outcome::Imported, at).unwrap();
        let second = file_away(&csv(dir.path(), "r.csv", now), Outcome::Imported, at).unwrap();
        assert_eq!(first, dir.path().join("imported/20270104T023000Z-r.csv"));
        assert_eq!(second, dir.path().join("imported/20270104T023000Z-2-r.csv"));
        assert!(first.exists() && second.exists());
        assert!(!dir.path().join("r.csv").exists());
    }
}
