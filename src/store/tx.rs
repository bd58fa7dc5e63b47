//! One write transaction: events appended and the plans they change written together, or
//! nothing.
//!
//! Owns the SQL of the write path (ingest and re-planning), written once for both databases:
//! each statement runs either through sqlx (PostgreSQL) or on the SQLite writer's own connection
//! (see [`super::writer`]), where it is a cached prepared statement run on the calling thread,
//! with no channel hop per statement or row. Must not plan: the service passes in what the
//! planner decided.

use super::{
    Backend, CaseWrite, NativeError, ObligationWrite, OutboxWrite, ROWS_PER_STATEMENT, StoreError,
    StoredPlan, json, ms, numbered, placeholders, record, time,
};
use crate::event::Event;
use chrono::{DateTime, Utc};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use std::collections::HashSet;

/// A value bound to a statement's parameter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    OptInt(Option<i64>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(text: &'a str) -> Self {
        Arg::Text(text)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        Arg::OptInt(n)
    }
}

/// A result row, by column position, from either database.
pub(super) trait Columns {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
}

impl Columns for sqlx::any::AnyRow {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i).map_err(NativeError::from)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i).map_err(NativeError::from)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i).map_err(NativeError::from)?)
    }
}

enum Conn {
    Sqlx(Transaction<'static, Any>),
    /// The SQLite writer's connection, inside the transaction the writer began.
    Native(rusqlite::Connection),
}

/// One transaction: events appended and the plans they change written together, or nothing.
/// Begun by [`super::Store::write`], which commits it when the work succeeds.
pub struct Tx {
    conn: Conn,
    backend: Backend,
    /// The last error SQLite gave on this connection: when it ended the transaction itself (a
    /// full disk), every write of the group shares it.
    last_native_error: Option<NativeError>,
}

/// SQLite numbers `$N` parameters by first appearance, not by `N`; `?N` is numbered by `N`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Tx {
    pub(super) fn sqlx(tx: Transaction<'static, Any>, backend: Backend) -> Tx {
        Tx {
            conn: Conn::Sqlx(tx),
            backend,
            last_native_error: None,
        }
    }

    pub(super) fn native(conn: rusqlite::Connection) -> Tx {
        Tx {
            conn: Conn::Native(conn),
            backend: Backend::Sqlite,
            last_native_error: None,
        }
    }

    pub(super) async fn commit(self) -> Result<(), StoreError> {
        match self.conn {
            Conn::Sqlx(tx) => Ok(tx.commit().await?),
            Conn::Native(_) => Ok(()),
        }
    }

    /// The SQLite writer's connection, for its own `BEGIN`, savepoints and `COMMIT`.
    pub(super) fn native_batch(&mut self, sql: &str) -> Result<(), NativeError> {
        let Conn::Native(conn) = &mut self.conn else {
            return Ok(());
        };
        conn.execute_batch(sql).map_err(NativeError::from)
    }

    /// Copies the whole WAL into the database file and empties it (`TRUNCATE`), waiting up to
    /// the busy timeout for readers still in it. `Ok(false)` when readers kept it from
    /// finishing: SQLite says so in its answer's first column, not as an error.
    pub(super) fn native_checkpoint_all(&mut self) -> Result<bool, NativeError> {
        let Conn::Native(conn) = &mut self.conn else {
            return Ok(true);
        };
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(NativeError::from)?;
        Ok(busy == 0)
    }

    /// Whether SQLite has no transaction open on the writer's connection (it ended one itself).
    pub(super) fn native_autocommit(&self) -> bool {
        matches!(&self.conn, Conn::Native(conn) if conn.is_autocommit())
    }

    pub(super) fn take_native_error(&mut self) -> Option<NativeError> {
        self.last_native_error.take()
    }

    /// Runs a statement; the number of rows it changed.
    async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        match &mut self.conn {
            Conn::Sqlx(tx) => {
                let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for arg in args {
                    q = match *arg {
                        Arg::Text(t) => q.bind(t),
                        Arg::Int(n) => q.bind(n),
                        Arg::OptInt(n) => q.bind(n),
                    };
                }
                Ok(q.execute(&mut **tx).await?.rows_affected())
            }
            Conn::Native(conn) => {
                let done = native_exec(conn, sql, args);
                if let Err(e) = &done {
                    self.last_native_error = Some(e.clone());
                }
                Ok(done?)
            }
        }
    }

    /// Runs a query, handing each row to `each`.
    async fn each_row(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        mut each: impl FnMut(&dyn Columns) -> Result<(), StoreError> + Send,
    ) -> Result<(), StoreError> {
        match &mut self.conn {
            Conn::Sqlx(tx) => {
                let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for arg in args {
                    q = match *arg {
                        Arg::Text(t) => q.bind(t),
                        Arg::Int(n) => q.bind(n),
                        Arg::OptInt(n) => q.bind(n),
                    };
                }
                for row in q.fetch_all(&mut **tx).await? {
                    each(&row)?;
                }
                Ok(())
            }
            Conn::Native(conn) => {
                let done = native_rows(conn, sql, args, &mut each);
                if let Err(StoreError::Native(e)) = &done {
                    self.last_native_error = Some(e.clone());
                }
                done
            }
        }
    }

    /// Appends an event; `false` if an event with its id is already stored (it changes nothing).
    pub async fn append(
        &mut self,
        event: &Event,
        received_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let stored = self
            .append_all(std::slice::from_ref(event), received_at)
            .await?;
        Ok(stored.first().copied().unwrap_or(false))
    }

    /// Appends events, many to a statement (one round trip to PostgreSQL for a hundred): for
    /// each, whether it was stored, `false` when an event with its id was stored already (it
    /// changes nothing), in this call or before.
    pub async fn append_all(
        &mut self,
        events: &[Event],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let bodies = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()
            .map_err(|source| StoreError::Corrupt {
                what: "event",
                source,
            })?;
        let rows: Vec<(&Event, &String)> = events.iter().zip(&bodies).collect();
        let received_at = ms(received_at);
        let mut inserted: HashSet<String> = HashSet::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO events (id, case_ref, type, at, received_at, body) VALUES {} \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                placeholders(chunk.len(), 6)
            );
            let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * 6);
            for (event, body) in chunk {
                args.extend::<[Arg; 6]>([
                    event.id.as_str().into(),
                    event.case.as_str().into(),
                    event.kind.as_str().into(),
                    ms(event.at).into(),
                    received_at.into(),
                    body.as_str().into(),
                ]);
            }
            self.each_row(&sql, &args, |r| {
                inserted.insert(r.text(0)?);
                Ok(())
            })
            .await?;
        }
        // An id twice in the call: only its first is the one stored.
        Ok(events.iter().map(|e| inserted.remove(&e.id)).collect())
    }

    /// The stored event with this id, as this transaction sees it.
    pub async fn event(&mut self, id: &str) -> Result<Option<Event>, StoreError> {
        let mut found = None;
        self.each_row("SELECT body FROM events WHERE id = $1", &[id.into()], |r| {
            found = Some(json("event", &r.text(0)?)?);
            Ok(())
        })
        .await?;
        Ok(found)
    }

    /// The rules version in force, held (on PostgreSQL) until this transaction ends, so no
    /// daemon puts other rules in force while this one plans with these.
    pub async fn rules_in_force(&mut self) -> Result<Option<String>, StoreError> {
        let sql = match self.backend {
            Backend::Postgres => "SELECT version FROM rules_in_force WHERE id = 1 FOR SHARE",
            Backend::Sqlite => "SELECT version FROM rules_in_force WHERE id = 1",
        };
        let mut version = None;
        self.each_row(sql, &[], |r| {
            version = Some(r.text(0)?);
            Ok(())
        })
        .await?;
        Ok(version)
    }

    /// Takes the case for this transaction, so two daemons never plan one case at once.
    pub async fn lock_case(&mut self, case: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO cases (case_ref, planned_at) VALUES ($1, $2) \
             ON CONFLICT (case_ref) DO NOTHING",
            &[case.into(), ms(now).into()],
        )
        .await?;
        if self.backend == Backend::Postgres {
            self.each_row(
                "SELECT case_ref FROM cases WHERE case_ref = $1 FOR UPDATE",
                &[case.into()],
                |_| Ok(()),
            )
            .await?;
        }
        Ok(())
    }

    /// Every event of the case, oldest first.
    pub async fn case_events(&mut self, case: &str) -> Result<Vec<Event>, StoreError> {
        let mut events = Vec::new();
        self.each_row(
            "SELECT body FROM events WHERE case_ref = $1 ORDER BY at, id",
            &[case.into()],
            |r| {
                events.push(json("event", &r.text(0)?)?);
                Ok(())
            },
        )
        .await?;
        Ok(events)
    }

    /// When driftwatch first received an event of the case: its go-live.
    pub async fn first_received(
        &mut self,
        case: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut first = None;
        self.each_row(
            "SELECT MIN(received_at) FROM events WHERE case_ref = $1",
            &[case.into()],
            |r| {
                first = r.opt_int(0)?;
                Ok(())
            },
        )
        .await?;
        Ok(first.map(time))
    }

    /// The case's plan as stored: what a new plan is compared with, and which of its
    /// notifications are still waiting to go.
    pub async fn stored_plan(&mut self, case: &str) -> Result<StoredPlan, StoreError> {
        let mut stored = StoredPlan::default();
        self.each_row(
            "SELECT id, rule, state, deadline, body FROM obligations WHERE case_ref = $1",
            &[case.into()],
            |r| {
                stored
                    .obligations
                    .insert(r.text(0)?, (r.text(1)?, r.text(2)?, r.int(3)?, r.text(4)?));
                Ok(())
            },
        )
        .await?;
        self.each_row(
            "SELECT obligation, role, email FROM obligation_people WHERE case_ref = $1",
            &[case.into()],
            |r| {
                stored.people.insert((r.text(0)?, r.text(1)?, r.text(2)?));
                Ok(())
            },
        )
        .await?;
        self.each_row(
            "SELECT key, state, send_at, notification, data, hold_at FROM outbox \
             WHERE case_ref = $1",
            &[case.into()],
            |r| {
                stored.outbox.insert(
                    r.text(0)?,
                    (r.text(1)?, r.int(2)?, r.text(3)?, r.text(4)?, r.opt_int(5)?),
                );
                Ok(())
            },
        )
        .await?;
        Ok(stored)
    }

    /// Writes a case's new plan: its obligations and their people replaced, outbox rows added or
    /// updated (never one already sent, being sent or dead), rows no longer planned retired.
    /// `stored` is the case's plan as [`Tx::stored_plan`] read it in this transaction.
    pub async fn write_plan(
        &mut self,
        plan: &CaseWrite,
        stored: &StoredPlan,
    ) -> Result<(), StoreError> {
        // Only what changed is written. A new event re-plans its whole case, and most of the
        // plan comes out as stored: rewriting every row was most of the cost of ingest.
        self.write_obligations(plan, stored).await?;
        self.write_people(plan, stored).await?;
        self.write_outbox(plan, stored).await?;
        self.retire(plan).await?;
        self.exec(
            "UPDATE cases SET planned_at = $2, replan_at = $3, hold_at = $4, status = $5 \
             WHERE case_ref = $1",
            &[
                plan.case.as_str().into(),
                ms(plan.planned_at).into(),
                plan.replan_at.map(ms).into(),
                plan.hold_at.map(ms).into(),
                plan.status.as_str().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Runs `sql_for(n)` once for each chunk of `items` (at most [`ROWS_PER_STATEMENT`]), with
    /// `first` then each item's arguments: many rows to a statement, since a case's plan is tens
    /// of rows and each statement is a round trip to PostgreSQL.
    async fn each_chunk<'a, T>(
        &mut self,
        items: &'a [T],
        first: &[Arg<'a>],
        sql_for: impl Fn(usize) -> String,
        args_of: impl Fn(&'a T) -> Vec<Arg<'a>>,
    ) -> Result<(), StoreError> {
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let mut args = first.to_vec();
            for item in chunk {
                args.extend(args_of(item));
            }
            self.exec(&sql_for(chunk.len()), &args).await?;
        }
        Ok(())
    }

    /// The obligations that are new or changed replace their stored rows; those no longer
    /// planned go.
    async fn write_obligations(
        &mut self,
        plan: &CaseWrite,
        stored: &StoredPlan,
    ) -> Result<(), StoreError> {
        let case = plan.case.as_str();
        let obligations: Vec<&ObligationWrite> = plan
            .obligations
            .iter()
            .filter(|o| match stored.obligations.get(&o.id) {
                None => true,
                Some((rule, state, deadline, body)) => {
                    rule != &o.rule
                        || state != o.state
                        || *deadline != ms(o.deadline)
                        || body != &o.body
                }
            })
            .collect();
        let planned_ids: HashSet<&str> = plan.obligations.iter().map(|o| o.id.as_str()).collect();
        let gone: Vec<&str> = stored
            .obligations
            .keys()
            .map(String::as_str)
            .filter(|id| !planned_ids.contains(id))
            .chain(
                obligations
                    .iter()
                    .filter(|o| stored.obligations.contains_key(&o.id))
                    .map(|o| o.id.as_str()),
            )
            .collect();
        self.each_chunk(
            &gone,
            &[case.into()],
            |n| {
                format!(
                    "DELETE FROM obligations WHERE case_ref = $1 AND id IN ({})",
                    numbered(2, n)
                )
            },
            |id| vec![(*id).into()],
        )
        .await?;
        self.each_chunk(
            &obligations,
            &[],
            |n| {
                format!(
                    "INSERT INTO obligations (case_ref, id, rule, state, deadline, body) VALUES {}",
                    placeholders(n, 6)
                )
            },
            |o| {
                vec![
                    case.into(),
                    o.id.as_str().into(),
                    o.rule.as_str().into(),
                    o.state.into(),
                    ms(o.deadline).into(),
                    o.body.as_str().into(),
                ]
            },
        )
        .await
    }

    /// Who is told of each obligation: people no longer told go, new ones are added.
    async fn write_people(
        &mut self,
        plan: &CaseWrite,
        stored: &StoredPlan,
    ) -> Result<(), StoreError> {
        let case = plan.case.as_str();
        let people: Vec<(String, String, String)> = plan
            .people
            .iter()
            .map(|(o, p)| (o.clone(), p.role.clone(), p.email.to_lowercase()))
            .collect();
        let planned_people: HashSet<&(String, String, String)> = people.iter().collect();
        for (obligation, role, email) in
            stored.people.iter().filter(|p| !planned_people.contains(p))
        {
            self.exec(
                "DELETE FROM obligation_people WHERE case_ref = $1 AND obligation = $2 \
                 AND role = $3 AND email = $4",
                &[
                    case.into(),
                    obligation.as_str().into(),
                    role.as_str().into(),
                    email.as_str().into(),
                ],
            )
            .await?;
        }
        let new_people: Vec<&(String, String, String)> = people
            .iter()
            .filter(|p| !stored.people.contains(p))
            .collect();
        self.each_chunk(
            &new_people,
            &[],
            |n| {
                format!(
                    "INSERT INTO obligation_people (case_ref, obligation, role, email) VALUES {} \
                     ON CONFLICT DO NOTHING",
                    placeholders(n, 4)
                )
            },
            |(obligation, role, email)| {
                vec![
                    case.into(),
                    obligation.as_str().into(),
                    role.as_str().into(),
                    email.as_str().into(),
                ]
            },
        )
        .await
    }

    /// Outbox rows added or updated, never one already sent, being sent or dead.
    async fn write_outbox(
        &mut self,
        plan: &CaseWrite,
        stored: &StoredPlan,
    ) -> Result<(), StoreError> {
        let case = plan.case.as_str();
        let now = ms(plan.planned_at);
        // Each row with its notification in the store's own record format (see `record`),
        // encoded once.
        let outbox: Vec<(&OutboxWrite, String)> = plan
            .outbox
            .iter()
            .map(|n| (n, record::encode(&n.notification)))
            .filter(|(n, record)| match stored.outbox.get(&n.key) {
                None => true,
                // Never rewritten: the upsert below would leave them as they are.
                Some((state, ..)) if ["sent", "sending", "dead"].contains(&state.as_str()) => false,
                Some((state, send_at, notification, data, hold_at)) => {
                    state != n.state.as_str()
                        || *send_at != ms(n.send_at)
                        || notification != record
                        || data != &n.data
                        || *hold_at != n.hold_at.map(ms)
                }
            })
            .collect();
        self.each_chunk(
            &outbox,
            &[],
            |n| {
                format!(
                    "INSERT INTO outbox (key, case_ref, rule, channel, lane, send_at, state, \
                     attempt_at, notification, data, updated_at, hold_at) VALUES {} \
                     ON CONFLICT (key) DO UPDATE SET send_at = excluded.send_at, \
                     state = excluded.state, notification = excluded.notification, \
                     data = excluded.data, updated_at = excluded.updated_at, lane = excluded.lane, \
                     hold_at = excluded.hold_at, \
                     attempt_at = CASE WHEN outbox.attempts > 0 AND outbox.attempt_at > excluded.attempt_at \
                     THEN outbox.attempt_at ELSE excluded.attempt_at END \
                     WHERE outbox.state IN ('pending', 'cancelled', 'acknowledged') \
                     OR (outbox.state IN ('superseded', 'before_go_live', 'in_digest') \
                         AND excluded.state <> 'pending')",
                    placeholders(n, 12)
                )
            },
            |(n, record)| {
                vec![
                    n.key.as_str().into(),
                    case.into(),
                    n.rule.as_str().into(),
                    n.channel.into(),
                    n.lane.as_str().into(),
                    ms(n.send_at).into(),
                    n.state.as_str().into(),
                    ms(n.send_at).into(),
                    record.as_str().into(),
                    n.data.as_str().into(),
                    now.into(),
                    n.hold_at.map(ms).into(),
                ]
            },
        )
        .await
    }

    /// Rows still pending that the plan no longer has are cancelled.
    async fn retire(&mut self, plan: &CaseWrite) -> Result<(), StoreError> {
        let now = ms(plan.planned_at);
        // By key: SQLite otherwise took `state = 'pending'` to `outbox_waiting` and read every
        // pending row of every case for each case re-planned (8 cases a second at 100,000
        // cases); `+state` keeps it off that index.
        let state = match self.backend {
            Backend::Sqlite => "+state",
            Backend::Postgres => "state",
        };
        self.each_chunk(
            &plan.retire,
            &[now.into()],
            |n| {
                format!(
                    "UPDATE outbox SET state = 'cancelled', updated_at = $1 \
                     WHERE key IN ({}) AND {state} = 'pending'",
                    numbered(2, n)
                )
            },
            |key| vec![key.as_str().into()],
        )
        .await
    }
}

/// A statement on the SQLite writer's connection: prepared once, kept in the connection's cache.
fn native_exec(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<u64, NativeError> {
    let mut statement = conn.prepare_cached(&sqlite_sql(sql))?;
    bind(&mut statement, args)?;
    Ok(u64::try_from(statement.raw_execute()?).unwrap_or(u64::MAX))
}

fn native_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
    each: &mut dyn FnMut(&dyn Columns) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut statement = conn
        .prepare_cached(&sqlite_sql(sql))
        .map_err(NativeError::from)?;
    bind(&mut statement, args)?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next().map_err(NativeError::from)? {
        each(row)?;
    }
    Ok(())
}

fn bind(
    statement: &mut rusqlite::CachedStatement<'_>,
    args: &[Arg<'_>],
) -> Result<(), NativeError> {
    for (i, arg) in args.iter().enumerate() {
        match *arg {
            Arg::Text(t) => statement.raw_bind_parameter(i + 1, t)?,
            Arg::Int(n) => statement.raw_bind_parameter(i + 1, n)?,
            Arg::OptInt(n) => statement.raw_bind_parameter(i + 1, n)?,
        }
    }
    Ok(())
}
