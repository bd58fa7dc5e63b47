//! The store: the append-only event log, the obligations and the notification outbox derived
//! from it, in SQLite (the embedded default) or PostgreSQL (for more than one daemon).
//!
//! Owns the SQL, the migrations and transactions. One implementation serves both databases
//! through sqlx's `Any` driver: every statement is portable (`$N` parameters, `ON CONFLICT`,
//! `RETURNING`), except the claim, which adds `FOR UPDATE SKIP LOCKED` on PostgreSQL, and the case
//! lock, which SQLite does not need (it has one writer). The scheduler claims and records
//! deliveries over connections of its own. Times are stored as milliseconds since the epoch,
//! JSON as text. Must not plan, render or deliver: the service passes in what the
//! planner decided.

pub mod record;
mod rows;
mod tx;
mod writer;

pub use rows::*;
pub use tx::Tx;
pub use writer::Work;
use writer::Writer;

use crate::event::Event;
use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Connection, Executor, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database: {0}")]
    Native(#[from] NativeError),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the stored {what} is not valid JSON: {source}")]
    Corrupt {
        what: &'static str,
        source: serde_json::Error,
    },
    /// A row's `state` is none driftwatch knows (a newer release wrote it, or a hand edit).
    #[error("an outbox row's state `{0}` is not one driftwatch knows")]
    UnknownState(String),
    #[error("`{0}` is not a database URL driftwatch knows (use sqlite:PATH or postgres://...)")]
    Url(String),
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// An error from the SQLite writer's own connection (see [`writer`]): kept whole, so every write
/// of a group that failed together is told the same.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NativeError {
    /// SQLite's extended result code, when SQLite gave one.
    code: Option<i32>,
    message: String,
}

impl NativeError {
    fn other(message: String) -> NativeError {
        NativeError {
            code: None,
            message,
        }
    }
}

impl From<rusqlite::Error> for NativeError {
    fn from(e: rusqlite::Error) -> NativeError {
        NativeError {
            code: e.sqlite_error().map(|f| f.extended_code),
            message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// The scheduler's own connection(s), for claiming and recording deliveries: the API,
    /// however busy, never holds what the scheduler needs to send what is due.
    scheduler: AnyPool,
    backend: Backend,
    /// SQLite: the writer thread that runs every write of events and plans (see [`writer`]),
    /// started once the migrations have run; until then (and on PostgreSQL, or for an
    /// in-memory database) writes run through the pool.
    writer: Arc<std::sync::OnceLock<Writer>>,
    sqlite_path: Option<String>,
    /// PostgreSQL: a connection of its own that only asks whether the server answers (see
    /// [`Store::probe`]), so a busy API never makes it look down.
    prober: Option<AnyPool>,
    /// Whether the database answered the latest probe. While it does not, the API answers
    /// `503` at once rather than after waiting out a connection attempt.
    answering: Arc<AtomicBool>,
    /// SQLite: whose turn it is to write, between the writer thread and every write made
    /// outside it (the scheduler's, the API's own: see `turn_to_write`), first come first
    /// served. SQLite's own wait for its write lock polls, with sleeps growing to 100 ms, and
    /// the writer, re-planning batch after batch, takes the lock again within microseconds of
    /// each commit: at 100,000 cases the scheduler's claims and
    /// records waited out their 10 s and failed ("database is locked") all through a
    /// re-plan. With a turn each, a write waits for at most the group being written.
    write_turn: Arc<tokio::sync::Mutex<()>>,
}

/// How long a probe waits for the database to answer before counting it down.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// Rows in one multi-row statement: at twelve parameters a row at most, well inside SQLite's and
/// PostgreSQL's limits on parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// A case's plan as stored: obligations by id (rule, state, deadline, body), the people told,
/// outbox rows by key (state, send_at, notification, data).
#[derive(Default)]
pub struct StoredPlan {
    obligations: HashMap<String, (String, String, i64, String)>,
    people: HashSet<(String, String, String)>,
    outbox: HashMap<String, (String, i64, String, String, Option<i64>)>,
}

impl StoredPlan {
    /// The keys of the case's notifications still waiting to go, in key order.
    pub fn pending_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .outbox
            .iter()
            .filter(|(_, (state, ..))| state == "pending")
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// `$from, $from+1, ...`: `count` numbered placeholders.
fn numbered(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters: the portable placeholders of a
/// multi-row `VALUES`.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { what, source })
}

impl StoreError {
    /// Whether the database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's disk_full): an
    /// operator must free space, and nothing written since the last commit was kept.
    pub fn is_disk_full(&self) -> bool {
        if let StoreError::Native(e) = self {
            return e.code.is_some_and(|n| n & 0xff == 13);
        }
        let StoreError::Database(sqlx::Error::Database(d)) = self else {
            return false;
        };
        d.code().is_some_and(|code| match code.parse::<i32>() {
            Ok(n) => n & 0xff == 13,
            Err(_) => code == "53100",
        })
    }

    /// Whether PostgreSQL ended this transaction to break a cycle of transactions waiting on
    /// each other (40P01) or as a serialization failure (40001): trying it again may succeed.
    pub fn is_deadlock(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(d)) = self else {
            return false;
        };
        d.code()
            .is_some_and(|code| code == "40P01" || code == "40001")
    }

    /// Whether only an operator can fix this: the server refuses the user or password, the
    /// database does not exist or is not a database, the migrations do not match it, the URL is
    /// wrong. Anything else (a server down, starting up or restarting, a network not up, a proxy
    /// hanging up) may pass, and is worth waiting for.
    pub fn needs_operator(&self) -> bool {
        use sqlx::migrate::MigrateError;
        if let StoreError::Native(e) = self {
            // SQLITE_CORRUPT, SQLITE_NOTADB, as below.
            return e.code.is_some_and(|n| matches!(n & 0xff, 11 | 26));
        }
        let e = match self {
            StoreError::Database(e)
            | StoreError::Migrate(MigrateError::Execute(e))
            | StoreError::Migrate(MigrateError::ExecuteMigration(e, _)) => e,
            _ => return true,
        };
        match e {
            sqlx::Error::Configuration(_) => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|code| {
                match code.parse::<i32>() {
                    // SQLite (extended result codes): SQLITE_CORRUPT, SQLITE_NOTADB.
                    Ok(n) => matches!(n & 0xff, 11 | 26),
                    // PostgreSQL: user or password refused (class 28), no such database.
                    Err(_) => code.starts_with("28") || code == "3D000",
                }
            }),
            _ => false,
        }
    }
}

/// What an outbox row's `data` column holds: the data itself, or where in the event log it is
/// (so a long list in one event is stored once, not once per recipient).
enum DataRef {
    Inline(serde_json::Map<String, serde_json::Value>),
    /// The data of these events laid one over the other, then `patch` laid over that.
    Events {
        from: Vec<String>,
        patch: serde_json::Map<String, serde_json::Value>,
    },
}

impl DataRef {
    /// Empty: the notification's own event's data. An object with `$from` (event ids): those
    /// events' data, then the rest of the object. Any other object: the data itself.
    fn of(text: &str, event: &str) -> Result<DataRef, StoreError> {
        if text.is_empty() {
            return Ok(DataRef::Events {
                from: vec![event.to_string()],
                patch: serde_json::Map::new(),
            });
        }
        let mut map: serde_json::Map<String, serde_json::Value> = json("notification data", text)?;
        match map.remove(DATA_FROM) {
            Some(serde_json::Value::Array(ids)) => Ok(DataRef::Events {
                from: ids
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                patch: map,
            }),
            _ => Ok(DataRef::Inline(map)),
        }
    }
}

pub use driftwatch_core::outbox::DATA_FROM;

impl Store {
    /// Connects, creating a SQLite file (and its folder) on first start, and runs the
    /// migrations shipped in the binary.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store that connects when first used: nothing is asked of the database yet, so the
    /// daemon can start, and answer `503`, while its database is still down. [`Store::migrate`]
    /// must succeed before anything else is asked of it.
    pub fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            // Only the scheme: a URL may carry a password.
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Url(format!("{scheme}:...")));
        };
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .after_release(|conn, _| {
                Box::pin(async move {
                    // A transaction dropped without a commit queues its ROLLBACK; the ping
                    // runs it. When SQLite has already rolled the transaction back itself (a
                    // full disk at COMMIT), that ROLLBACK fails and sqlx still counts the
                    // transaction open: the next BEGIN would become a SAVEPOINT whose
                    // rollback never ends it, holding the write lock for ever. Such a
                    // connection is closed, never handed out again.
                    if conn.is_in_transaction() {
                        conn.ping().await?;
                    }
                    Ok(!conn.is_in_transaction())
                })
            });
        let (pool, scheduler) = match backend {
            Backend::Sqlite => {
                create_sqlite_folder(url)?;
                // One connection for the API and one for the scheduler. Every write
                // transaction starts with a write, so neither meets SQLITE_BUSY on upgrading a
                // read transaction; one waits for the other's commit (busy_timeout).
                (
                    sqlite_pool(options.clone(), url, Sync::Full)?,
                    sqlite_pool(options.clone(), url, Sync::Normal)?,
                )
            }
            Backend::Postgres => (
                options.clone().max_connections(10).connect_lazy(url)?,
                options.clone().max_connections(2).connect_lazy(url)?,
            ),
        };
        let prober = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                options
                    .max_connections(1)
                    .acquire_timeout(PROBE_WAIT)
                    .connect_lazy(url)?,
            ),
        };
        Ok(Store {
            pool,
            scheduler,
            writer: Arc::default(),
            sqlite_path: match backend {
                Backend::Sqlite => sqlite_file(url).map(str::to_string),
                Backend::Postgres => None,
            },
            backend,
            prober,
            answering: Arc::new(AtomicBool::new(true)),
            write_turn: Arc::default(),
        })
    }

    /// A turn to write outside the writer thread (see `write_turn`): the scheduler's claims and
    /// records, and the API's few writes of its own (a digest taken, a dead notification sent
    /// again, the rules put in force). Held for one statement or transaction. The scheduler
    /// takes it before its own connection (which nothing else uses); the API's writes take it
    /// after theirs, so the turn never waits behind a long read on the API's connection.
    /// Nothing to wait for on PostgreSQL, whose writers queue for row locks.
    async fn turn_to_write(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Runs the migrations shipped in the binary; the first call that needs the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
                if let Some(path) = self.sqlite_path.as_deref()
                    && self.writer.get().is_none()
                {
                    let _ = self
                        .writer
                        .set(Writer::start(path, Arc::clone(&self.write_turn))?);
                }
            }
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file, if this is one (not PostgreSQL, not in memory).
    pub fn sqlite_file(&self) -> Option<&str> {
        self.sqlite_path.as_deref()
    }

    /// Runs `work` in a write transaction and commits it: `Ok` only once what it wrote is on
    /// disk; on `Err` nothing of it is kept. On SQLite the work runs on the writer thread,
    /// committed with the other writes queued beside it (see [`writer`]); it must await nothing
    /// but the transaction.
    pub async fn write<R, E, F>(&self, work: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> Work<'t, R, E> + Send + 'static,
    {
        if let Some(writer) = self.writer.get() {
            return writer.run(work).await;
        }
        let mut tx = Tx::sqlx(
            self.pool.begin().await.map_err(StoreError::from)?,
            self.backend,
        );
        let done = work(&mut tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Asks a PostgreSQL server whether it answers, waiting at most two seconds, and records
    /// the answer for [`Store::is_answering`]. Returns the answer when it differs from the
    /// previous one (so the caller says so once), `None` when nothing changed. SQLite, a file,
    /// always answers.
    pub async fn probe(&self) -> Option<Result<(), StoreError>> {
        let prober = self.prober.as_ref()?;
        let answer =
            match tokio::time::timeout(PROBE_WAIT, sqlx::query("SELECT 1").execute(prober)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(StoreError::from(e)),
                Err(_) => Err(StoreError::from(sqlx::Error::PoolTimedOut)),
            };
        let before = self.answering.swap(answer.is_ok(), Ordering::SeqCst);
        (before != answer.is_ok()).then_some(answer)
    }

    /// Whether the database answered the latest probe.
    pub fn is_answering(&self) -> bool {
        self.answering.load(Ordering::SeqCst)
    }

    /// Closes every connection. On SQLite the API's and the scheduler's go first, then the
    /// writer thread's, once what was queued is written and the WAL copied into the database
    /// file (see [`Writer::close`]).
    pub async fn close(&self) {
        self.pool.close().await;
        self.scheduler.close().await;
        if let Some(prober) = &self.prober {
            prober.close().await;
        }
        if let Some(writer) = self.writer.get() {
            writer.close().await;
        }
    }

    pub async fn count_events(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// When driftwatch first received an event of the case: its go-live.
    pub async fn first_received(&self, case: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        first_received(&self.pool, case).await
    }

    /// The case's outbox keys already sent, being sent or dead.
    pub async fn settled_keys(
        &self,
        case: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT key FROM outbox WHERE case_ref = $1 AND state IN ('sent', 'sending', 'dead')",
        )
        .bind(case)
        .fetch_all(&self.pool)
        .await?;
        strings(&rows, "key")
    }

    /// Open obligations by rule, split into `open` and `overdue` at `now`.
    pub async fn obligation_counts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, &'static str, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, CASE WHEN deadline <= $1 THEN 1 ELSE 0 END AS overdue, COUNT(*) AS n \
             FROM obligations WHERE state = 'open' GROUP BY rule, overdue",
        )
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let overdue: i64 = r.try_get("overdue")?;
                Ok((
                    r.try_get("rule")?,
                    if overdue == 1 { "overdue" } else { "open" },
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Outbox rows by state.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// The data of a stored event.
    pub async fn event_data(
        &self,
        id: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let row = sqlx::query("SELECT body FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(
                json::<Event>("event", &r.try_get::<String, _>("body")?)?.data,
            )),
            None => Ok(None),
        }
    }

    /// Takes the digest `key` for this daemon; `false` if it was taken (sent) already.
    pub async fn claim_digest(
        &self,
        key: &str,
        day: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let _turn = self.turn_to_write().await;
        let done = sqlx::query(
            "INSERT INTO digests (key, day, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(day)
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back a digest that could not be sent, so the next run tries again.
    pub async fn release_digest(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let _turn = self.turn_to_write().await;
        sqlx::query("DELETE FROM digests WHERE key = $1")
            .bind(key)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Puts `version` in force for every daemon sharing this database (a daemon starting, or
    /// reloaded). Returns the version it replaced, if another was in force.
    pub async fn put_rules_in_force(
        &self,
        version: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        // Read apart from the write (only the log says what it replaced): a SQLite transaction
        // that began by reading could not then write if the scheduler had written meanwhile.
        let mut conn = self.pool.acquire().await?;
        let before = rules_in_force(&mut *conn, false).await?;
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "INSERT INTO rules_in_force (id, version, recorded_by, recorded_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET version = $1, recorded_by = $2, recorded_at = $3",
        )
        .bind(version)
        .bind(by)
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
        Ok(before.filter(|b| b != version))
    }

    /// The rules version in force, if any daemon has recorded one.
    pub async fn rules_in_force(&self) -> Result<Option<String>, StoreError> {
        rules_in_force(&self.pool, false).await
    }

    /// As [`Store::rules_in_force`], through the scheduler's own connection.
    pub async fn rules_in_force_for_scheduler(&self) -> Result<Option<String>, StoreError> {
        rules_in_force(&self.scheduler, false).await
    }

    /// Everyone told about an obligation (their addresses, lower-cased).
    pub async fn people(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT email FROM obligation_people ORDER BY email")
            .fetch_all(&self.pool)
            .await?;
        strings(&rows, "email")
    }

    /// Whether an event with this id is stored.
    pub async fn has_event(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Which of `cases` the store knows (a hundred to a query: an import asks of every case in
    /// its file).
    pub async fn known_cases<'a>(
        &self,
        cases: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashSet<String>, StoreError> {
        self.known("SELECT case_ref FROM cases WHERE case_ref IN", cases)
            .await
    }

    /// Which of `ids` are stored events' ids.
    pub async fn known_events<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashSet<String>, StoreError> {
        self.known("SELECT id FROM events WHERE id IN", ids).await
    }

    async fn known<'a>(
        &self,
        select: &str,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashSet<String>, StoreError> {
        let keys: Vec<&str> = keys.into_iter().collect();
        let mut known = HashSet::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{select} ({})", numbered(1, chunk.len()));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for key in chunk {
                q = q.bind(*key);
            }
            for row in q.fetch_all(&self.pool).await? {
                known.insert(row.try_get::<String, _>(0)?);
            }
        }
        Ok(known)
    }

    /// Every event of a case, oldest first.
    pub async fn case_events(&self, case: &str) -> Result<Vec<Event>, StoreError> {
        case_events(&self.pool, case).await
    }

    /// Every case reference, in order, from `after` on, at most `limit`: for re-planning all.
    pub async fn cases_after(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT case_ref FROM cases WHERE case_ref > $1 ORDER BY case_ref LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        strings(&rows, "case_ref")
    }

    /// Where each case stands as last planned (the planner's `CaseStatus` as JSON), a page at a
    /// time in case order after `after`, for checks across cases. Cases planned before the
    /// status was kept have none.
    pub async fn case_statuses(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT case_ref, status FROM cases WHERE case_ref > $1 ORDER BY case_ref LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("case_ref")?, r.try_get("status")?)))
            .collect()
    }

    /// Cases whose plan changes by `now` in a way that may touch a notification waiting to go
    /// (see [`CaseWrite::hold_at`]), or with a reminder or escalation due but held (see
    /// [`OutboxWrite::hold_at`]): those notifications are not claimed until they are planned
    /// again.
    pub async fn cases_held(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        // Each side read from its index up to `limit`, the earliest held first: ordered by case
        // over the union, every call sorted all that was held (4 to 6 s a batch of 200, most of
        // a morning, at 100,000 cases). The batch is sorted by case before it is planned.
        // SQLite would otherwise read the outbox by `outbox_waiting` (every pending row due)
        // and sort.
        let by_hold = match self.backend {
            Backend::Sqlite => "INDEXED BY outbox_pending_by_hold",
            Backend::Postgres => "",
        };
        let sql = format!(
            "SELECT case_ref FROM (SELECT case_ref FROM cases WHERE hold_at <= $1 \
             ORDER BY hold_at LIMIT $2) AS held UNION \
             SELECT case_ref FROM (SELECT case_ref FROM outbox {by_hold} \
             WHERE state = 'pending' AND hold_at <= $1 AND attempt_at <= $1 \
             ORDER BY hold_at LIMIT $2) AS waiting LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(ms(now))
            .bind(limit)
            .fetch_all(&self.scheduler)
            .await?;
        strings(&rows, "case_ref")
    }

    /// Cases whose stored plan changes by `now` (a future-dated or derived event falls due, a
    /// deadline action happens): planned again so that their obligations say what the plan says.
    pub async fn cases_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT case_ref FROM cases WHERE replan_at <= $1 ORDER BY replan_at LIMIT $2",
        )
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&self.scheduler)
        .await?;
        strings(&rows, "case_ref")
    }

    /// Cases with a notification due to go by `now` that has gone stale (more than `stale` late)
    /// since the case was last planned: the catch-up rules judge it again before it may go (only
    /// the step of a ladder that applies now goes late). Normally none: a notification goes at
    /// its time. After downtime, a clock that jumped or retries that took long, these are the
    /// cases to plan again first.
    pub async fn cases_stale(
        &self,
        now: DateTime<Utc>,
        stale: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT o.case_ref FROM outbox o JOIN cases c ON c.case_ref = o.case_ref \
             WHERE o.state = 'pending' AND o.send_at < $1 AND o.attempt_at <= $2 \
             AND c.planned_at <= o.send_at + $3 ORDER BY o.case_ref LIMIT $4",
        )
        .bind(ms(now - stale))
        .bind(ms(now))
        .bind(stale.num_milliseconds())
        .bind(limit)
        .fetch_all(&self.scheduler)
        .await?;
        strings(&rows, "case_ref")
    }

    /// The earliest moment something needs doing: a notification of one of `lanes` to (re)try,
    /// a lease to expire, a case to re-plan. (A lane busy delivering is left out: what waits in
    /// it goes when it is free, which wakes the scheduler anyway.) Each lookup uses an index, so
    /// this costs the same however much is stored.
    pub async fn next_wake(&self, lanes: &[Lane]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut times: Vec<Option<i64>> = Vec::new();
        for lane in lanes {
            times.push(
                sqlx::query(
                    "SELECT MIN(attempt_at) AS t FROM outbox WHERE state = 'pending' AND lane = $1",
                )
                .bind(lane.as_str())
                .fetch_one(&self.scheduler)
                .await?
                .try_get("t")?,
            );
        }
        times.push(
            sqlx::query("SELECT MIN(attempt_at) AS t FROM outbox WHERE state = 'sending'")
                .fetch_one(&self.scheduler)
                .await?
                .try_get("t")?,
        );
        times.push(
            sqlx::query("SELECT MIN(replan_at) AS t FROM cases WHERE replan_at IS NOT NULL")
                .fetch_one(&self.scheduler)
                .await?
                .try_get("t")?,
        );
        Ok(times.into_iter().flatten().min().map(time))
    }

    /// Claims up to `limit` notifications of `lane` due by `now` for `owner`, until
    /// `lease_until`, oldest first. Only notifications whose case's stored plan holds for them at
    /// `now` are taken: none of a case whose plan changed with time in a way that may touch them
    /// since it was last planned (see [`Store::cases_held`]), nor one gone stale since (see
    /// [`Store::cases_stale`]); those wait until the case is planned again, so what goes is what
    /// the plan says at the moment of sending. On PostgreSQL two daemons never claim the same row
    /// (`FOR UPDATE SKIP LOCKED`). Nothing is claimed while the rules in force in the database
    /// are not `rules` (see [`crate::service::OtherRules`]): checked in the same statement, so a
    /// daemon reloaded elsewhere a moment earlier stops this one at once.
    pub async fn claim(
        &self,
        lane: Lane,
        now: DateTime<Utc>,
        terms: &ClaimTerms<'_>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let ClaimTerms {
            owner,
            lease_until,
            stale,
            limit,
            rules,
        } = *terms;
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = CLAIM_SQL.replace("{lock}", lock);
        let turn = self.turn_to_write().await;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(limit)
            .bind(ms(now - stale))
            .bind(stale.num_milliseconds())
            .bind(lane.as_str())
            .bind(rules)
            .fetch_all(&self.scheduler)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        // Rows whose data is read from the event log: (index, the events laid one over the
        // other, what is laid over them).
        let mut from_log: Vec<(
            usize,
            Vec<String>,
            serde_json::Map<String, serde_json::Value>,
        )> = Vec::new();
        for r in &rows {
            let key: String = r.try_get("key")?;
            let decoded = (|| -> Result<(Claimed, Option<DataRef>), StoreError> {
                let data: String = r.try_get("data")?;
                let notification = record::decode(&r.try_get::<String, _>("notification")?)?;
                let (data, reference) = match DataRef::of(&data, &notification.event)? {
                    DataRef::Inline(map) => (map, None),
                    reference => (serde_json::Map::new(), Some(reference)),
                };
                Ok((
                    Claimed {
                        key: key.clone(),
                        owner: owner.to_string(),
                        case: r.try_get("case_ref")?,
                        attempts: r.try_get("attempts")?,
                        notification,
                        data,
                    },
                    reference,
                ))
            })();
            match decoded {
                Ok((c, reference)) => {
                    if let Some(DataRef::Events { from, patch }) = reference {
                        from_log.push((claimed.len(), from, patch));
                    }
                    claimed.push(c)
                }
                // One unreadable row must not hold up the rest, nor come back for ever.
                Err(e) => {
                    tracing::error!(key = key.as_str(), error = %e, "a stored notification cannot be read; kept as dead");
                    sqlx::query(
                        "UPDATE outbox SET state = 'dead', last_error = $2, claimed_by = NULL \
                         WHERE key = $1",
                    )
                    .bind(&key)
                    .bind("the stored notification cannot be read")
                    .execute(&self.scheduler)
                    .await?;
                }
            }
        }
        drop(turn);
        self.event_data_into(&mut claimed, &from_log).await?;
        claimed.sort_by(|a, b| {
            (a.notification.send_at, &a.key).cmp(&(b.notification.send_at, &b.key))
        });
        Ok(claimed)
    }

    /// Puts back the claims of other daemons whose lease ran out by `now` (a daemon died
    /// mid-send): they wait again, and their cases are planned again before they go, so one the
    /// plan no longer wants is not sent. (`owner`'s own claims are being delivered right now,
    /// each attempt bounded by a timeout shorter than the lease; a clock moved by hand past
    /// their lease must not have them sent twice.) Returns how many.
    pub async fn release_expired(
        &self,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.put_back(
            "state = 'sending' AND attempt_at <= $1 AND claimed_by <> $2",
            &[owner],
            now,
        )
        .await
    }

    /// Puts back `owner`'s claims in `lane`: its batch ended without recording them.
    pub async fn release_lane(
        &self,
        owner: &str,
        lane: Lane,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.put_back(
            "state = 'sending' AND claimed_by = $2 AND lane = $3",
            &[owner, lane.as_str()],
            now,
        )
        .await
    }

    /// Gives the claimed notifications at `which` their data from the event log: the data of
    /// the events named, laid one over the other, then what the row lays over them. Each event is
    /// read once however many notifications it is behind.
    async fn event_data_into(
        &self,
        claimed: &mut [Claimed],
        which: &[(
            usize,
            Vec<String>,
            serde_json::Map<String, serde_json::Value>,
        )],
    ) -> Result<(), StoreError> {
        let mut ids: Vec<&str> = which
            .iter()
            .flat_map(|(_, from, _)| from.iter().map(String::as_str))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found: HashMap<String, serde_json::Map<String, serde_json::Value>> = HashMap::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT body FROM events WHERE id IN ({})",
                numbered(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.scheduler).await? {
                let event: Event = json("event", &r.try_get::<String, _>("body")?)?;
                found.insert(event.id, event.data);
            }
        }
        for (i, from, patch) in which {
            let data = &mut claimed[*i].data;
            for id in from {
                if let Some(d) = found.get(id) {
                    data.extend(d.clone());
                }
            }
            data.extend(patch.clone());
        }
        Ok(())
    }

    /// Puts back every claim at once: on SQLite, where only one daemon runs, a claim left at
    /// start-up was cut short by a crash and is sent again now rather than when its lease ends.
    pub async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.put_back("state = 'sending'", &[], now).await
    }

    /// Claims matching `which` (`$1` is `now`, `$2` on are `binds`) wait again from `now`, and
    /// their cases are planned again before they go.
    async fn put_back(
        &self,
        which: &str,
        binds: &[&str],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let _turn = self.turn_to_write().await;
        let mut tx = self.scheduler.begin().await?;
        let sql = format!(
            "UPDATE outbox SET state = 'pending', attempt_at = $1, claimed_by = NULL, \
             updated_at = $1 WHERE {which} RETURNING case_ref"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(ms(now));
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&mut *tx).await?;
        let cases: std::collections::BTreeSet<String> = strings(&rows, "case_ref")?;
        for case in &cases {
            replan_now(&mut tx, case, now).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Recorded only by the daemon still holding the claim: one whose lease ran out and was
    /// claimed again by another must not overwrite what the other records.
    /// Marks a round's deliveries sent in one transaction: one sync to disk for the round, not
    /// one per notification. Until it commits, a crash sends them again under the same keys.
    pub async fn mark_sent(&self, sent: &[&Claimed], now: DateTime<Utc>) -> Result<(), StoreError> {
        let _turn = self.turn_to_write().await;
        let mut tx = self.scheduler.begin().await?;
        // On SQLite (one writer at a time, no row locks) a statement for a hundred rows of one
        // owner (a batch has one: the lane's daemon). On PostgreSQL a row a statement, in the
        // caller's (case, key) order: row locks taken in a known order, so two daemons never
        // wait on each other in a cycle.
        let per_statement = match self.backend {
            Backend::Sqlite => ROWS_PER_STATEMENT,
            Backend::Postgres => 1,
        };
        // A stable sort: within an owner, the caller's order stands.
        let mut by_owner: Vec<&&Claimed> = sent.iter().collect();
        by_owner.sort_by(|a, b| a.owner.cmp(&b.owner));
        for group in by_owner.chunk_by(|a, b| a.owner == b.owner) {
            for chunk in group.chunks(per_statement) {
                let sql = format!(
                    "UPDATE outbox SET state = 'sent', sent_at = $1, claimed_by = NULL, \
                     last_error = NULL, updated_at = $1 \
                     WHERE state = 'sending' AND claimed_by = $2 AND key IN ({})",
                    numbered(3, chunk.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql))
                    .bind(ms(now))
                    .bind(&chunk[0].owner);
                for c in chunk {
                    q = q.bind(&c.key);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Back to pending until `retry_at`; `error` says why (no personal data). The retry is
    /// claimed like any waiting notification: only while its case's plan still wants it.
    pub async fn mark_retry(
        &self,
        c: &Claimed,
        retry_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "UPDATE outbox SET state = 'pending', attempt_at = $2, last_error = $3, \
             claimed_by = NULL, updated_at = $4 WHERE key = $1 AND state = 'sending' AND claimed_by = $5",
        )
        .bind(&c.key)
        .bind(ms(retry_at))
        .bind(error)
        .bind(ms(now))
        .bind(&c.owner)
        .execute(&self.scheduler)
        .await?;
        Ok(())
    }

    pub async fn mark_dead(
        &self,
        c: &Claimed,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "UPDATE outbox SET state = 'dead', last_error = $2, claimed_by = NULL, updated_at = $3 \
             WHERE key = $1 AND state = 'sending' AND claimed_by = $4",
        )
        .bind(&c.key)
        .bind(error)
        .bind(ms(now))
        .bind(&c.owner)
        .execute(&self.scheduler)
        .await?;
        Ok(())
    }

    /// A dead notification goes again at once, with a fresh count of attempts, if its case's
    /// plan (planned again first) still wants it.
    pub async fn retry_dead(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // The connection first (a deferred transaction writes nothing yet), then the turn: the
        // turn is never held waiting for the API's connection, which a long read may hold.
        let mut tx = self.pool.begin().await?;
        let _turn = self.turn_to_write().await;
        let rows = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempt_at = $2, attempts = 0, updated_at = $2 \
             WHERE key = $1 AND state = 'dead' RETURNING case_ref",
        )
        .bind(key)
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await?;
        for case in strings::<Vec<String>>(&rows, "case_ref")? {
            replan_now(&mut tx, &case, now).await?;
        }
        tx.commit().await?;
        Ok(rows.len() == 1)
    }

    /// The outbox, filtered, oldest first.
    pub async fn notifications(
        &self,
        filter: &NotificationFilter,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT key, case_ref, rule, channel, send_at, state, attempts, last_error, sent_at, \
             notification FROM outbox WHERE 1 = 1",
        );
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("state", &filter.state.map(|s| s.as_str().to_string())),
            ("case_ref", &filter.case),
            ("key", &filter.key),
        ] {
            if let Some(value) = value {
                let p = param(&mut binds, value);
                sql.push_str(&format!(" AND {column} = {p}"));
            }
        }
        sql.push_str(&format!(
            " ORDER BY send_at, key LIMIT {}",
            filter.limit.max(1)
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(rows::outbox_entry).collect()
    }

    /// Obligations that are open at `now` (or in the filter's state), with who is told of them.
    pub async fn obligations(
        &self,
        filter: &ObligationFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredObligation>, StoreError> {
        let mut sql = String::from(
            "SELECT o.case_ref, o.id, o.deadline, o.state, o.body FROM obligations o WHERE 1 = 1",
        );
        let mut binds: Vec<String> = Vec::new();
        match filter.state {
            ObligationQueryState::Outstanding => sql.push_str(" AND o.state = 'open'"),
            ObligationQueryState::Open => sql.push_str(&format!(
                " AND o.state = 'open' AND o.deadline > {}",
                ms(now)
            )),
            ObligationQueryState::Overdue => sql.push_str(&format!(
                " AND o.state = 'open' AND o.deadline <= {}",
                ms(now)
            )),
            ObligationQueryState::Met => sql.push_str(" AND o.state = 'met'"),
            ObligationQueryState::MetLate => sql.push_str(" AND o.state = 'met_late'"),
            ObligationQueryState::Cancelled => sql.push_str(" AND o.state = 'cancelled'"),
        }
        if let Some(rule) = &filter.rule {
            let p = param(&mut binds, rule);
            sql.push_str(&format!(" AND o.rule = {p}"));
        }
        if let Some(case) = &filter.case {
            let p = param(&mut binds, case);
            sql.push_str(&format!(" AND o.case_ref = {p}"));
        }
        if filter.role.is_some() || filter.email.is_some() {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM obligation_people p WHERE p.case_ref = o.case_ref \
                 AND p.obligation = o.id",
            );
            if let Some(role) = &filter.role {
                let p = param(&mut binds, role);
                sql.push_str(&format!(" AND p.role = {p}"));
            }
            if let Some(email) = &filter.email {
                let p = param(&mut binds, &email.to_lowercase());
                sql.push_str(&format!(" AND p.email = {p}"));
            }
            sql.push(')');
        }
        sql.push_str(&format!(
            " ORDER BY o.deadline, o.case_ref, o.id LIMIT {}",
            filter.limit.max(1)
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            let case: String = r.try_get("case_ref")?;
            let id: String = r.try_get("id")?;
            let people = sqlx::query(
                "SELECT role, email FROM obligation_people WHERE case_ref = $1 AND obligation = $2 \
                 ORDER BY role, email",
            )
            .bind(&case)
            .bind(&id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|p| {
                Ok(Person {
                    role: p.try_get("role")?,
                    email: p.try_get("email")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            found.push(StoredObligation {
                case,
                deadline: time(r.try_get("deadline")?),
                open: r.try_get::<String, _>("state")? == "open",
                body: json("obligation", &r.try_get::<String, _>("body")?)?,
                people,
            });
        }
        Ok(found)
    }
}

/// Adds a bound value to a query being built and returns its placeholder (`$N`).
fn param(binds: &mut Vec<String>, value: &str) -> String {
    binds.push(value.to_string());
    format!("${}", binds.len())
}

/// `$1` owner, `$2` lease end, `$3` now, `$4` limit, `$5` now less the stale limit, `$6` the
/// stale limit, `$7` the lane. A row is held back while it or its case must be planned again
/// before it goes (the row's or the case's `hold_at` passed) or it went stale after its case was
/// last planned: the catch-up rules have not judged it yet.
const CLAIM_SQL: &str = "UPDATE outbox SET state = 'sending', claimed_by = $1, attempt_at = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE key IN (SELECT o.key FROM outbox o WHERE o.state = 'pending' AND o.lane = $7 \
     AND o.attempt_at <= $3 AND (o.hold_at IS NULL OR o.hold_at > $3) \
     AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.case_ref = o.case_ref \
         AND (c.hold_at <= $3 OR (o.send_at < $5 AND c.planned_at <= o.send_at + $6))) \
     ORDER BY o.attempt_at, o.key LIMIT $4 {lock}) \
     AND NOT EXISTS (SELECT 1 FROM rules_in_force r WHERE r.version <> $8) \
     RETURNING key, case_ref, attempts, notification, data";

/// Who claims notifications, for how long, and with which rules: see [`Store::claim`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimTerms<'a> {
    /// Names the daemon, so a second daemon's claims are told apart.
    pub owner: &'a str,
    pub lease_until: DateTime<Utc>,
    /// How long a waiting notification may go unplanned before it counts as stale.
    pub stale: chrono::Duration,
    pub limit: i64,
    /// The rules version the claimer holds.
    pub rules: &'a str,
}

/// The rules version in force. `share` (PostgreSQL, inside a transaction): a daemon putting
/// other rules in force waits until the transaction that planned with these has committed.
async fn rules_in_force<'e, E: sqlx::Executor<'e, Database = Any>>(
    e: E,
    share: bool,
) -> Result<Option<String>, StoreError> {
    let sql = if share {
        "SELECT version FROM rules_in_force WHERE id = 1 FOR SHARE"
    } else {
        "SELECT version FROM rules_in_force WHERE id = 1"
    };
    let row = sqlx::query(sql).fetch_optional(e).await?;
    row.map(|r| r.try_get("version"))
        .transpose()
        .map_err(Into::into)
}

/// Asks for `case` to be planned again at `now`, before any of its notifications is claimed.
async fn replan_now(
    tx: &mut Transaction<'static, Any>,
    case: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cases SET replan_at = $2, hold_at = $2 WHERE case_ref = $1 \
         AND (hold_at IS NULL OR hold_at > $2)",
    )
    .bind(case)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How a SQLite connection's commits reach the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// `synchronous = FULL`: on disk when the commit returns, before the API answers.
    Full,
    /// `synchronous = NORMAL` (WAL): a commit survives the process being killed, and the
    /// database stays whole through a power cut, which may lose the latest commits. For the
    /// scheduler's bookkeeping alone: a claim or a "sent" lost that way leaves the notification
    /// waiting or sending, so it goes again under the same idempotency key (as after a crash
    /// between sending and recording); nothing is lost. It spares a sync to disk per claim and
    /// per batch recorded sent, which paced delivery.
    Normal,
}

/// A pool of one SQLite connection. WAL and synchronous=FULL make a commit durable before the
/// API answers. The connection, once open, stays open (no idle timeout, no lifetime) and sorts
/// in memory: it never needs another file descriptor, even when something else has used them
/// all, so "unable to open database file" cannot stop the daemon.
fn sqlite_pool(options: AnyPoolOptions, url: &str, sync: Sync) -> Result<AnyPool, StoreError> {
    let synchronous = match sync {
        Sync::Full => "PRAGMA synchronous = FULL",
        Sync::Normal => "PRAGMA synchronous = NORMAL",
    };
    Ok(options
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute(synchronous).await?;
                if sync == Sync::Normal {
                    // The scheduler's connection leaves checkpoints to the writer thread (see
                    // `writer::CHECKPOINT_WHEN_IDLE`): a wave's claims do not wait for them.
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                // 4 MB of pages: the API's reads and the scheduler's claims touch few pages
                // each (the writer thread, which reads whole cases, keeps 8 MB). Resident
                // memory counts every connection's cache once it has filled.
                conn.execute("PRAGMA cache_size = -4096").await?;
                conn.execute("PRAGMA temp_store = MEMORY").await?;
                Ok(())
            })
        })
        .connect_lazy(url)?)
}

/// The file a `sqlite:` URL names; `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || options.contains("mode=memory");
    (!memory).then_some(path)
}

fn create_sqlite_folder(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// One text column of every row.
fn strings<C: FromIterator<String>>(rows: &[AnyRow], column: &str) -> Result<C, StoreError> {
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>(column)?))
        .collect()
}

/// Every event of a case, oldest first, in a transaction or not.
async fn case_events<'e, E: Executor<'e, Database = Any>>(
    e: E,
    case: &str,
) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query("SELECT body FROM events WHERE case_ref = $1 ORDER BY at, id")
        .bind(case)
        .fetch_all(e)
        .await?;
    rows.iter()
        .map(|r| json("event", &r.try_get::<String, _>("body")?))
        .collect()
}

/// When driftwatch first received an event of the case, in a transaction or not.
async fn first_received<'e, E: Executor<'e, Database = Any>>(
    e: E,
    case: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let first: Option<i64> =
        sqlx::query("SELECT MIN(received_at) AS t FROM events WHERE case_ref = $1")
            .bind(case)
            .fetch_one(e)
            .await?
            .try_get("t")?;
    Ok(first.map(time))
}
