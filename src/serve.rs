//! Serving the API over HTTP/1.1 so that no client, slow or hostile, can take the daemon's
//! file descriptors or hold it up: connections opened and left silent, requests sent a byte at a
//! time, thousands at once.
//!
//! Owns the accept loop and each connection's life. A client has [`HEADER_READ_TIMEOUT`] to send
//! a request's headers, which is also how long a kept-alive connection may sit idle; at most
//! [`Limits::connections`] are open at once, a number kept well under the process's limit on
//! open files so the database, mail and webhooks always have theirs. When the limit is reached,
//! the connection waiting longest for a request is closed to make room (one waiting for its
//! answer never is), so a flood of silent connections cannot lock anyone out. On stop, each
//! connection finishes the request it is answering and closes; whatever is still running after
//! [`DRAIN_LIMIT`] is cut. Must not know routes or the store: `api.rs` does.

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long a client has to send a request's headers, from when the connection opens or its
/// last answer went; a kept-alive connection silent for longer is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a stopping daemon waits for requests in progress before cutting them.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Open files kept back from connections for the database, SMTP, webhooks, the spool and logs.
const RESERVED_FILES: u64 = 256;

/// The most connections served at once, whatever the open-files limit allows.
const MAX_CONNECTIONS: usize = 1024;

/// The fewest connections served at once, even under a tiny open-files limit.
const MIN_CONNECTIONS: usize = 16;

/// How often a full table of connections all answering requests is looked at again.
const BUSY_RECHECK: Duration = Duration::from_millis(100);

/// How often the log says the connection limit was reached, at most.
const FULL_LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most connections open at once.
    pub connections: usize,
}

impl Limits {
    /// Limits for this process: its open-files limit is raised as far as the system allows
    /// (the unit's `LimitNOFILE=` sets it), and connections are kept [`RESERVED_FILES`] under it.
    pub fn for_this_process() -> Limits {
        let files = raise_open_files_limit();
        let connections = match files {
            Some(n) => usize::try_from(n.saturating_sub(RESERVED_FILES)).unwrap_or(MAX_CONNECTIONS),
            None => MAX_CONNECTIONS,
        }
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS);
        Limits { connections }
    }
}

/// Raises the soft limit on open files to the hard limit; returns the limit in force (`None`
/// for unlimited or where there is no such limit).
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> Option<u64> {
    None
}

/// Serves `app` on `listener` until `stop` turns true, then drains (see the module's notes).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let table = Arc::new(Table::new(limits.connections));
    let mut connections = JoinSet::new();
    tracing::info!(connections = limits.connections, "serving HTTP");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: the
                // listener is fine; pause briefly so an error that persists does not spin.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopping(&mut stop) => break,
                }
                continue;
            }
        };
        let slot = tokio::select! {
            slot = Arc::clone(&table).admit() => slot,
            _ = stopping(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(stream, app.clone(), slot, stop.clone()));
    }
    drop(listener);
    // Each connection has seen the stop and is finishing its request; wait for them, up to a
    // point.
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "requests still in progress when stopping were cut"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection until it closes, is closed to make room, or the daemon stops.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    let state = Arc::clone(&slot.state);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = Busy::enter(&state);
        let app = app.clone();
        async move {
            let answer = app.oneshot(request).await;
            drop(busy);
            answer
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        // Dropping the connection closes it.
        _ = slot.state.evict.notified() => {}
        _ = stopping(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Resolves once the daemon is asked to stop (or whoever would ask has gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The open connections, oldest first.
struct Table {
    max: usize,
    open: Mutex<Open>,
    /// A connection closed: there may be room.
    freed: Notify,
}

#[derive(Default)]
struct Open {
    next: u64,
    connections: BTreeMap<u64, Arc<ConnectionState>>,
    /// When the log last said the limit was reached.
    said_full: Option<Instant>,
}

#[derive(Default)]
struct ConnectionState {
    /// Requests being answered.
    busy: AtomicUsize,
    /// Asked to close to make room.
    evicted: AtomicBool,
    evict: Notify,
}

/// A connection's place in the table, given up when dropped.
struct Slot {
    id: u64,
    state: Arc<ConnectionState>,
    table: Arc<Table>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.lock().connections.remove(&self.id);
        self.table.freed.notify_waiters();
    }
}

/// A request being answered on a connection.
struct Busy(Arc<ConnectionState>);

impl Busy {
    fn enter(state: &Arc<ConnectionState>) -> Busy {
        state.busy.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(state))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Table {
    fn new(max: usize) -> Table {
        Table {
            max: max.max(1),
            open: Mutex::new(Open::default()),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        match self.open.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A place for a new connection. When every place is taken, the connection that has waited
    /// longest for a request is asked to close, and this waits until it has (or, if every
    /// connection is answering a request, until one finishes).
    async fn admit(self: Arc<Self>) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let evicting = match self.try_admit() {
                Ok(slot) => return slot,
                Err(evicting) => evicting,
            };
            if evicting {
                freed.await;
            } else {
                // Every connection is answering a request: look again when one closes, or
                // shortly, when one of them may be waiting for its next request.
                tokio::select! {
                    _ = freed => {}
                    _ = tokio::time::sleep(BUSY_RECHECK) => {}
                }
            }
        }
    }

    /// A place, if one is free; otherwise asks the connection waiting longest for a request to
    /// close and says whether there was one.
    fn try_admit(self: &Arc<Self>) -> Result<Slot, bool> {
        let mut open = self.lock();
        if open.connections.len() < self.max {
            let id = open.next;
            open.next += 1;
            let state = Arc::new(ConnectionState::default());
            open.connections.insert(id, Arc::clone(&state));
            return Ok(Slot {
                id,
                state,
                table: Arc::clone(self),
            });
        }
        let now = Instant::now();
        if open
            .said_full
            .is_none_or(|t| now.duration_since(t) >= FULL_LOG_EVERY)
        {
            open.said_full = Some(now);
            tracing::warn!(
                connections = self.max,
                "the connection limit is reached; closing the connections waiting longest for \
                 a request to make room"
            );
        }
        let waiting = open
            .connections
            .values()
            .find(|c| c.busy.load(Ordering::SeqCst) == 0 && !c.evicted.load(Ordering::SeqCst));
        match waiting {
            Some(idle) => {
                idle.evicted.store(true, Ordering::SeqCst);
                idle.evict.notify_one();
                Err(true)
            }
            // Already asked to close, some of them: room is coming.
            None => Err(open
                .connections
                .values()
                .any(|c| c.evicted.load(Ordering::SeqCst))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_table_closes_the_oldest_idle_connection_never_a_busy_one() {
        let table = Arc::new(Table::new(2));
        let first = Arc::clone(&table).admit().await;
        let second = Arc::clone(&table).admit().await;
        let busy = Busy::enter(&first.state);
        let third = tokio::spawn(Arc::clone(&table).admit());
        // The second is the oldest one waiting for a request: it is asked to close.
        second.state.evict.notified().await;
        assert!(!first.state.evicted.load(Ordering::SeqCst));
        assert!(!third.is_finished());
        drop(second);
        let third = third.await.expect("admitted");
        assert_eq!(table.lock().connections.len(), 2);
        drop(busy);
        drop((first, third));
        assert!(table.lock().connections.is_empty());
    }

    #[test]
    fn connections_stay_under_the_open_files_limit() {
        let limits = Limits::for_this_process();
        assert!((MIN_CONNECTIONS..=MAX_CONNECTIONS).contains(&limits.connections));
    }
}
