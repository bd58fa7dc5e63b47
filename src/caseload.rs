//! A caseload file (JSON Lines) on its way into the store by `import`, held as where each event
//! is rather than as the events: a whole council's history is a million events, which as parsed
//! JSON would take gigabytes. The file is read and checked once, line by line; the service then
//! reads it again a few cases at a time ([`CaseChunks`]) inside the import's one transaction, and
//! each line read again must be what was checked, or nothing is stored.
//!
//! Owns reading and indexing the file; must not store or plan anything (the service does) and
//! must not print (the caller reports what it returns).

use crate::event::{Event, json_line};
use crate::service::{CONFLICT_IN_BATCH, CaseChunks};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// About how many events the service is handed at once (a case is never split).
const CHUNK_EVENTS: usize = 4096;

/// Where one event is, and enough of it to order, check and find it again.
struct Entry {
    /// The case's place in [`Caseload::cases`].
    case: u32,
    at: DateTime<Utc>,
    id: Box<str>,
    offset: u64,
    len: u32,
    line: u32,
    /// A digest of the event as parsed: the same id with another digest is another event, and
    /// the line read again must give the same.
    digest: u64,
}

/// Where the lines are read again from.
enum Text {
    /// A regular file, read again where each event is.
    File(std::fs::File),
    /// Anything that cannot be read twice (a pipe, `/dev/stdin`), kept whole as it was read.
    Kept(Vec<u8>),
}

impl Text {
    fn read_exact_at(&self, bytes: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Text::File(file) => file.read_exact_at(bytes, offset),
            Text::Kept(all) => {
                let start = usize::try_from(offset).map_err(std::io::Error::other)?;
                let line = all
                    .get(start..start + bytes.len())
                    .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
                bytes.copy_from_slice(line);
                Ok(())
            }
        }
    }
}

/// A checked caseload file, its events in case order (then time, then id).
pub struct Caseload {
    path: PathBuf,
    text: Text,
    cases: Vec<String>,
    entries: Vec<Entry>,
    next: usize,
}

/// Why a file was not taken: every bad line, each as `line N: ...`, or an id used twice.
#[derive(Debug)]
pub enum Refused {
    Lines(Vec<String>),
    Conflict(String),
}

fn digest(event: &Event) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    // Serialising cannot fail for an event that was parsed from JSON.
    serde_json::to_vec(event)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

impl Caseload {
    /// Reads and checks `path` in one pass, each event with `check` (the rules' vocabulary).
    /// `Ok(Err(_))` names every bad line; an `Err` is a file that could not be read.
    pub fn read(
        path: &Path,
        check: impl Fn(&Event) -> Result<(), String>,
    ) -> std::io::Result<Result<Caseload, Refused>> {
        let mut file = std::fs::File::open(path)?;
        let text = if file.metadata()?.is_file() {
            Text::File(file)
        } else {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut all)?;
            Text::Kept(all)
        };
        let mut reader: Box<dyn BufRead> = match &text {
            Text::File(file) => Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
            Text::Kept(all) => Box::new(all.as_slice()),
        };
        let mut bad = Vec::new();
        let mut by_name: HashMap<String, u32> = HashMap::new();
        let mut entries = Vec::new();
        let (mut offset, mut number, mut line) = (0u64, 0usize, String::new());
        loop {
            line.clear();
            let read = reader.read_line(&mut line)?;
            if read == 0 {
                break;
            }
            number += 1;
            let at = offset;
            offset += read as u64;
            let event = match json_line(&line, number) {
                None => continue,
                Some(Err(e)) => {
                    bad.push(e.to_string());
                    continue;
                }
                Some(Ok(e)) => e,
            };
            if let Err(e) = check(&event) {
                bad.push(format!("line {number}: {e}"));
                continue;
            }
            let next = u32::try_from(by_name.len()).map_err(std::io::Error::other)?;
            let case = *by_name.entry(event.case.clone()).or_insert(next);
            entries.push(Entry {
                case,
                at: event.at,
                digest: digest(&event),
                id: event.id.into_boxed_str(),
                offset: at,
                len: u32::try_from(read).map_err(std::io::Error::other)?,
                line: u32::try_from(number).map_err(std::io::Error::other)?,
            });
        }
        drop(reader);
        if !bad.is_empty() {
            return Ok(Err(Refused::Lines(bad)));
        }
        // An id used by two events with different contents: the file cannot say which happened.
        let mut by_id: Vec<u32> = (0..entries.len() as u32).collect();
        by_id.sort_by(|a, b| {
            let (a, b) = (&entries[*a as usize], &entries[*b as usize]);
            (&a.id, a.line).cmp(&(&b.id, b.line))
        });
        if let Some(pair) = by_id.windows(2).find(|w| {
            let (a, b) = (&entries[w[0] as usize], &entries[w[1] as usize]);
            a.id == b.id && a.digest != b.digest
        }) {
            let id = &entries[pair[1] as usize].id;
            return Ok(Err(Refused::Conflict(format!(
                "event {id}: id: {CONFLICT_IN_BATCH}"
            ))));
        }
        drop(by_id);
        // Cases in order of their references, events in case order.
        let mut cases: Vec<(String, u32)> = by_name.into_iter().collect();
        cases.sort();
        let mut rank = vec![0u32; cases.len()];
        for (place, (_, first_seen)) in cases.iter().enumerate() {
            rank[*first_seen as usize] = place as u32;
        }
        for e in &mut entries {
            e.case = rank[e.case as usize];
        }
        entries.sort_by(|a, b| (a.case, a.at, &a.id, a.line).cmp(&(b.case, b.at, &b.id, b.line)));
        Ok(Ok(Caseload {
            path: path.to_path_buf(),
            text,
            cases: cases.into_iter().map(|(name, _)| name).collect(),
            entries,
            next: 0,
        }))
    }

    /// How many events the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Line `e` read again, as it was checked.
    fn reread(&self, e: &Entry) -> Result<Event, String> {
        let changed = || {
            format!(
                "{}: line {} changed after it was checked; nothing was imported",
                self.path.display(),
                e.line
            )
        };
        let mut bytes = vec![0; e.len as usize];
        self.text
            .read_exact_at(&mut bytes, e.offset)
            .map_err(|err| format!("{}: cannot be read again: {err}", self.path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| changed())?;
        match json_line(&text, e.line as usize) {
            Some(Ok(event)) if digest(&event) == e.digest => Ok(event),
            _ => Err(changed()),
        }
    }
}

impl CaseChunks for Caseload {
    fn cases(&self) -> &[String] {
        &self.cases
    }

    fn rewind(&mut self) {
        self.next = 0;
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<Event>>, String> {
        let start = self.next;
        if start >= self.entries.len() {
            return Ok(None);
        }
        let end = chunk_end(start, self.entries.len(), |i| self.entries[i].case);
        self.next = end;
        self.entries[start..end]
            .iter()
            .map(|e| self.reread(e))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Where the chunk that starts at `start` of `len` events ends: about [`CHUNK_EVENTS`] on, and
/// then the rest of the last case.
fn chunk_end<C: PartialEq>(start: usize, len: usize, case: impl Fn(usize) -> C) -> usize {
    let mut end = (start + CHUNK_EVENTS).min(len);
    while end < len && case(end) == case(end - 1) {
        end += 1;
    }
    end
}

/// Events already in memory (a snapshot read from CSV), handed over the same way.
pub struct InMemory {
    cases: Vec<String>,
    events: Vec<Event>,
    next: usize,
}

impl InMemory {
    pub fn new(mut events: Vec<Event>) -> InMemory {
        events.sort_by(|a, b| (&a.case, a.at, &a.id).cmp(&(&b.case, b.at, &b.id)));
        let mut cases: Vec<String> = events.iter().map(|e| e.case.clone()).collect();
        cases.dedup();
        InMemory {
            cases,
            events,
            next: 0,
        }
    }
}

impl CaseChunks for InMemory {
    fn cases(&self) -> &[String] {
        &self.cases
    }

    fn rewind(&mut self) {
        self.next = 0;
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<Event>>, String> {
        let start = self.next;
        if start >= self.events.len() {
            return Ok(None);
        }
        self.next = chunk_end(start, self.events.len(), |i| &self.events[i].case);
        Ok(Some(self.events[start..self.next].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(lines: &[String]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, lines.join("\n").as_bytes()).expect("write");
        f
    }

    fn line(id: &str, case: &str, at: &str) -> String {
        format!(r#"{{"id":"{id}","case":"{case}","type":"review_held","at":"{at}","data":{{}}}}"#)
    }

    fn all(c: &mut Caseload) -> Vec<Vec<String>> {
        let mut chunks = Vec::new();
        while let Some(chunk) = c.next_chunk().expect("chunk") {
            chunks.push(chunk.into_iter().map(|e| e.id).collect());
        }
        chunks
    }

    #[test]
    fn events_come_back_in_case_order_each_case_whole() {
        let mut lines = Vec::new();
        // Cases interleaved, out of time order, and more events than a chunk holds.
        for i in 0..CHUNK_EVENTS + 10 {
            let case = ["C-2", "C-1", "C-3"][i % 3];
            let minute = (CHUNK_EVENTS + 10 - i) % 60;
            lines.push(line(
                &format!("e{i:05}"),
                case,
                &format!("2027-01-04T10:{minute:02}:00Z"),
            ));
        }
        lines.insert(5, String::new());
        let f = file(&lines);
        let mut c = Caseload::read(f.path(), |_| Ok(()))
            .expect("read")
            .expect("valid");
        assert_eq!(c.cases(), ["C-1", "C-2", "C-3"]);
        assert_eq!(c.len(), CHUNK_EVENTS + 10);
        let chunks = all(&mut c);
        let flat: Vec<&String> = chunks.iter().flatten().collect();
        assert_eq!(flat.len(), CHUNK_EVENTS + 10);
        // No case is split between two chunks.
        let case_of = |id: &str| ["C-2", "C-1", "C-3"][id[1..].parse::<usize>().unwrap() % 3];
        for pair in chunks.windows(2) {
            let (last, first) = (pair[0].last().unwrap(), pair[1].first().unwrap());
            assert_ne!(case_of(last), case_of(first));
        }
        // Handed over again from the start when the transaction is tried again.
        c.rewind();
        assert_eq!(all(&mut c), chunks);
    }

    #[test]
    fn bad_lines_are_all_named_and_an_id_with_two_contents_is_refused() {
        let lines = vec![
            line("a", "C-1", "2027-01-04T10:00:00Z"),
            "{not json".to_string(),
            line("b", "C-1", "not a time"),
        ];
        let f = file(&lines);
        match Caseload::read(f.path(), |_| Ok(())).expect("read") {
            Err(Refused::Lines(bad)) => {
                assert_eq!(bad.len(), 2, "{bad:?}");
                assert!(bad[0].starts_with("line 2: "), "{bad:?}");
                assert!(bad[1].starts_with("line 3: "), "{bad:?}");
            }
            _ => panic!("bad lines accepted"),
        }
        let lines = vec![
            line("a", "C-1", "2027-01-04T10:00:00Z"),
            line("a", "C-1", "2027-01-04T10:00:00Z"),
            line("b", "C-1", "2027-01-04T10:00:00Z"),
            line("b", "C-1", "2027-01-05T10:00:00Z"),
        ];
        let f = file(&lines);
        match Caseload::read(f.path(), |_| Ok(())).expect("read") {
            Err(Refused::Conflict(why)) => assert!(why.starts_with("event b: id: "), "{why}"),
            _ => panic!("an id with two contents accepted"),
        }
        let f = file(&lines[..2]);
        let read = Caseload::read(f.path(), |e| Err(format!("no {}", e.kind))).expect("read");
        assert!(matches!(read, Err(Refused::Lines(bad)) if bad[1] == "line 2: no review_held"));
    }

    #[test]
    fn a_pipe_is_read_once_and_kept() {
        let lines = [
            line("b", "C-2", "2027-01-04T10:00:00Z"),
            line("a", "C-1", "2027-01-04T10:00:00Z"),
        ];
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("events");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let writer = {
            let (fifo, text) = (fifo.clone(), lines.join("\n"));
            std::thread::spawn(move || std::fs::write(fifo, text).expect("write the pipe"))
        };
        let mut c = Caseload::read(&fifo, |_| Ok(()))
            .expect("read")
            .expect("valid");
        writer.join().expect("writer");
        assert_eq!(all(&mut c), [["a", "b"]]);
    }

    #[test]
    fn a_line_changed_after_it_was_checked_stops_the_import() {
        let lines = vec![
            line("a", "C-1", "2027-01-04T10:00:00Z"),
            line("b", "C-1", "2027-01-04T11:00:00Z"),
        ];
        let f = file(&lines);
        let mut c = Caseload::read(f.path(), |_| Ok(()))
            .expect("read")
            .expect("valid");
        // The same length, another time.
        let changed = [lines[0].clone(), line("b", "C-1", "2027-01-04T12:00:00Z")];
        std::fs::write(f.path(), changed.join("\n")).expect("rewrite");
        let why = c.next_chunk().expect_err("changed");
        assert!(why.contains("line 2 changed after it was checked"), "{why}");
    }
}
