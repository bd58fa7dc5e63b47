//! The SQLite writer: one thread owning the one connection that writes events and plans, running
//! each write to the end synchronously, and committing the writes that arrived together in one
//! transaction (group commit).
//!
//! Why: through sqlx, every statement and every row of the write path crossed a channel to
//! sqlx's SQLite worker thread and back, and each ingest paid its own commit. Here a write (all
//! its statements, cached and prepared) runs on this thread with no hand-off, and writes that
//! queue while one group commits share the next group's single sync to disk. Each caller is
//! answered after the commit that holds its write: "accepted" still means "on disk".
//!
//! Each write that shares its group runs inside a savepoint, so one that fails (a conflicting
//! id, other rules in force) leaves nothing and the others of its group still commit; a write
//! alone in its group that fails rolls the transaction back. If SQLite ends the transaction
//! itself (a full disk), every write of the group fails with that error. Owns no SQL of its
//! own but `BEGIN`, `SAVEPOINT`, `RELEASE`, `ROLLBACK` and `COMMIT`.

use super::{NativeError, StoreError, Tx};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Waker};

/// A write's work: a future over the transaction that never waits on anything but the
/// database, which on this thread answers at once.
pub type Work<'t, R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send + 't>>;

/// What a job hands back after running: whether its work succeeded (so its savepoint is kept),
/// and how to answer its caller once the group's commit is known.
type Finish = Box<dyn FnOnce(Result<(), NativeError>) + Send>;
type Job = Box<dyn FnOnce(Result<&mut Tx, NativeError>) -> (bool, Finish) + Send>;

/// What the writer thread is asked: a write, or to finish (see [`Writer::close`]).
enum Ask {
    Write(Job),
    Close(tokio::sync::oneshot::Sender<()>),
}

/// Writes queued at most in one group: bounds how long the first of them waits for the commit.
const GROUP_MAX: usize = 64;

/// How long the writer waits idle before it checkpoints the WAL. The scheduler's connection
/// does not checkpoint (see `sqlite_pool`): a checkpoint copies pages into the database file
/// and syncs it, milliseconds that held up every claim and record of a delivery wave behind it.
/// While the writer is busy its own commits checkpoint as SQLite does by default (every
/// thousand pages), so the WAL stays bounded either way, but for one long transaction (an
/// `import`): the file it grew to is cut back to 64 MB (`journal_size_limit`) once a
/// checkpoint has copied it all and the WAL starts again.
const CHECKPOINT_WHEN_IDLE: std::time::Duration = std::time::Duration::from_millis(200);

/// The handle to the writer thread; the thread ends when every handle is dropped, or when it is
/// closed (see [`Writer::close`]).
#[derive(Debug)]
pub struct Writer {
    jobs: mpsc::Sender<Ask>,
}

impl Writer {
    /// Opens the writer's own connection to the SQLite file at `path` (after the migrations
    /// ran) and starts its thread.
    pub fn start(path: &str, turn: Arc<tokio::sync::Mutex<()>>) -> Result<Writer, StoreError> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(NativeError::from)?;
        // As the sqlx connections (see `sqlite_pool`): WAL and synchronous=FULL make a commit
        // durable before the API answers.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
             PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY; \
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(NativeError::from)?;
        // The write path's statements stay prepared; a multi-row one is prepared for each row
        // count it meets, and a hundred-row statement's program is large, so only the most
        // recently used are kept: resident memory is capped (8 MB of pages, these statements).
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(Tx::native(conn), &queue, &turn))
            .map_err(|e| NativeError::other(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` in the writer's next group; answers once the group is committed (or with the
    /// error that stopped it, having kept nothing of it).
    pub async fn run<R, E, F>(&self, work: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> Work<'t, R, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<R, E>>();
        let job: Job = Box::new(move |tx| {
            let outcome = match tx {
                Err(e) => Err(E::from(e.into())),
                Ok(tx) => run_now(|| work(tx)),
            };
            let kept = outcome.is_ok();
            let finish: Finish = Box::new(move |committed| {
                let answer = match (outcome, committed) {
                    (Ok(done), Ok(())) => Ok(done),
                    (Ok(_), Err(e)) => Err(E::from(e.into())),
                    (Err(e), _) => Err(e),
                };
                // The caller may have gone (a client hung up): its write stands all the same.
                let _ = reply.send(answer);
            });
            (kept, finish)
        });
        let stopped = || E::from(NativeError::other("the SQLite writer has stopped".into()).into());
        self.jobs.send(Ask::Write(job)).map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Finishes the writer once what is queued before this is written: if it wrote anything,
    /// copies the whole WAL into the database file and empties it; then ends the thread,
    /// closing its connection, and answers. Later writes answer that the writer has stopped.
    /// Why: a command that wrote much and then exits (an `import` of a national caseload, whose
    /// one transaction grows the WAL to gigabytes) otherwise leaves the copying to whoever opens
    /// the file next: the daemon, which then answers `503` for a minute while its first reads
    /// wait on it. A command that only read (`report`, `preview`, beside a running daemon)
    /// checkpoints nothing: a full checkpoint holds the write lock while it waits for readers.
    pub async fn close(&self) {
        let (done, finished) = tokio::sync::oneshot::channel();
        if self.jobs.send(Ask::Close(done)).is_ok() {
            let _ = finished.await;
        }
    }
}

/// Makes a write's future and polls it once: on the writer's connection nothing it awaits can
/// wait. A panic in either is that write's error, never the writer thread's end.
fn run_now<'t, R, E: From<StoreError>>(work: impl FnOnce() -> Work<'t, R, E>) -> Result<R, E> {
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work()
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }));
    match polled {
        Ok(Poll::Ready(done)) => done,
        Ok(Poll::Pending) => Err(E::from(
            NativeError::other("a write waited on something other than the database".into()).into(),
        )),
        Err(_) => Err(E::from(
            NativeError::other("a write stopped with a panic; nothing of it was kept".into())
                .into(),
        )),
    }
}

/// The writer thread: takes what is queued, up to [`GROUP_MAX`], runs it in one transaction,
/// commits, answers each caller; checkpoints the WAL when idle; until every [`Writer`] is
/// dropped or it is closed.
fn serve(mut tx: Tx, queue: &mpsc::Receiver<Ask>, turn: &tokio::sync::Mutex<()>) {
    // Whether the last checkpoint failed: a failure (a full disk) is logged once, not every
    // 200 ms, until a checkpoint works again.
    let mut checkpoint_failing = false;
    // Whether anything was written since memory was last given back.
    let mut worked = false;
    // Whether anything was ever written: only then is there a WAL of ours to copy at close.
    let mut wrote = false;
    loop {
        let first = match queue.recv_timeout(CHECKPOINT_WHEN_IDLE) {
            Ok(Ask::Write(job)) => job,
            Ok(Ask::Close(done)) => return close_now(tx, wrote, done),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // PASSIVE: never waits for a reader or a writer; what it cannot copy now is
                // copied next time. Nothing to copy costs a look at the WAL's header.
                match tx.native_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    Ok(()) if checkpoint_failing => {
                        checkpoint_failing = false;
                        tracing::info!("checkpointing the SQLite WAL works again");
                    }
                    Ok(()) => {}
                    Err(e) if !checkpoint_failing => {
                        checkpoint_failing = true;
                        tracing::warn!(error = %e, "checkpointing the SQLite WAL failed; tried again every 200 ms, said again once it works");
                    }
                    Err(_) => {}
                }
                if worked {
                    worked = false;
                    release_freed_memory();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut group = vec![first];
        // A close asked for while a group gathers waits for that group's commit.
        let mut close = None;
        while group.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(Ask::Write(job)) => group.push(job),
                Ok(Ask::Close(done)) => {
                    close = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        worked = true;
        wrote = true;
        // Our turn to write, after whoever asked first (see `Store::write_turn`).
        let my_turn = turn.blocking_lock();
        let committed = run_group(&mut tx, group);
        drop(my_turn);
        for finish in committed.1 {
            finish(committed.0.clone());
        }
        if let Some(done) = close {
            return close_now(tx, wrote, done);
        }
    }
}

/// The writer's last act (see [`Writer::close`]): when it `wrote`, a full checkpoint, which
/// waits (up to the busy timeout) for readers still in the WAL. One that cannot finish leaves
/// the rest of the WAL for the next opener to copy, as it would have been without this. The
/// connection is closed before the caller is answered.
fn close_now(mut tx: Tx, wrote: bool, done: tokio::sync::oneshot::Sender<()>) {
    if wrote {
        match tx.native_checkpoint_all() {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "readers kept the SQLite WAL from being copied whole at close; the next start copies the rest"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "checkpointing the SQLite WAL at close failed; the next start copies it")
            }
        }
    }
    drop(tx);
    let _ = done.send(());
}

/// Gives the memory freed since the last call back to the system, once the writer has been idle
/// for a moment after working. glibc's malloc keeps what a burst of work freed (a reload's
/// re-planning, a morning's catch-up) for re-use, and resident memory stays at the burst's
/// high-water mark: 150 MB at 10,000 cases, 50 MB once given back. It takes milliseconds and
/// runs only after work, never on the write path.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory held by the allocator to the system; it
    // takes the allocator's own locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One group in one transaction: each job in a savepoint of its own when it has company. Returns the commit's
/// outcome and how to answer each job.
fn run_group(tx: &mut Tx, group: Vec<Job>) -> (Result<(), NativeError>, Vec<Finish>) {
    let mut finishes = Vec::with_capacity(group.len());
    // A transaction a failed ROLLBACK left open would hold the write lock for ever.
    let begun = match tx.native_autocommit() {
        true => tx.native_batch("BEGIN IMMEDIATE"),
        false => tx
            .native_batch("ROLLBACK")
            .and_then(|()| tx.native_batch("BEGIN IMMEDIATE")),
    };
    if let Err(e) = begun {
        for job in group {
            finishes.push(job(Err(e.clone())).1);
        }
        return (Err(e), finishes);
    }
    // A write alone in its group needs no savepoint: if it fails, the whole transaction is
    // rolled back. A savepoint keeps, in memory, the original of every page its write changes
    // (`temp_store = MEMORY`): a re-planned batch of cases changes thousands, so the scheduler's
    // re-planning, which queues one write at a time, held a hundred megabytes at 10,000 cases.
    let alone = group.len() == 1;
    let mut failed: Option<NativeError> = None;
    for job in group {
        if let Some(e) = &failed {
            finishes.push(job(Err(e.clone())).1);
            continue;
        }
        if !alone && let Err(e) = tx.native_batch("SAVEPOINT write") {
            finishes.push(job(Err(e.clone())).1);
            failed = Some(e);
            continue;
        }
        let (kept, finish) = job(Ok(tx));
        finishes.push(finish);
        let job_error = tx.take_native_error();
        let ended = match (kept, alone) {
            (true, true) => Ok(()),
            (true, false) => tx.native_batch("RELEASE write"),
            // The transaction ends here, so nothing is committed.
            (false, true) => tx.native_batch("ROLLBACK"),
            (false, false) => tx.native_batch("ROLLBACK TO write; RELEASE write"),
        };
        // SQLite may end the whole transaction itself (a full disk): then what ran before in
        // this group is gone too, and the rest must not run outside a transaction.
        // The job's own error explains the group's end only when SQLite ended the transaction
        // itself; otherwise it was the job's alone, and the savepoint's end failed.
        let ended = match (ended, tx.native_autocommit()) {
            (_, true) => Some(
                job_error.unwrap_or_else(|| NativeError::other("the transaction ended".into())),
            ),
            (Err(e), false) => Some(e),
            (Ok(()), false) => None,
        };
        if ended.is_some() {
            failed = ended;
        }
    }
    let committed = match failed {
        Some(e) => Err(e),
        None => tx.native_batch("COMMIT"),
    };
    if committed.is_err() && !tx.native_autocommit() {
        // Nothing of a failed group is kept; the connection is ready for the next one.
        let _ = tx.native_batch("ROLLBACK");
    }
    (committed, finishes)
}
