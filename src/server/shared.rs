//! What every connection of one server shares: the config, the directory, the stop flag, the
//! registry of open connections, the resume claims, error reporting, and the counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Error, ErrorKind, Result};
use crate::server::config::{FileInfo, Refused, ServerConfig};
use crate::server::files::budget::{Budget, SPOOL_TOTAL};
use crate::server::files::refusal::Refusal;
use crate::server::files::space::Space;
use crate::server::io::cancel::Cancel;
use crate::server::io::serial::Drains;
use crate::server::security::guard::Guard;
use crate::server::stats::Stats;
use crate::storage::{DigestCache, Sink};
use crate::sync::lock;

/// The reason a sender is given when the server stops under it (code 8).
pub(crate) const STOPPING: &str = "server stopping";

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) config: ServerConfig,
    /// Where received files go.
    pub(crate) sink: Sink,
    pub(crate) stopping: AtomicBool,
    /// A graceful shutdown: nothing new is accepted or admitted, what runs may finish.
    pub(crate) draining: AtomicBool,
    /// Server threads that have ended, and a signal for each.
    pub(crate) ended: (Mutex<usize>, Condvar),
    /// Wakes the accept loop when stopping or draining.
    pub(crate) wake: Notify,
    /// Signalled whenever a connection ends.
    pub(crate) conn_ended: Notify,
    /// The connections' callback queues being drained on the blocking pool.
    pub(crate) drains: Arc<Drains>,
    /// Open connections, so stopping can end them.
    pub(crate) conns: Mutex<HashMap<u64, Arc<Cancel>>>,
    pub(crate) next_conn: AtomicU64,
    /// Connections over the cap being answered "busy" now.
    pub(crate) busy: AtomicUsize,
    /// Whether the server is near its connection cap (90% of it in use): connections must then
    /// keep up a minimum rate (`io::wire::MIN_RATE`).
    pub(crate) crowded: Arc<AtomicBool>,
    /// Resumable uploads in progress: resume key → connection id.
    pub(crate) uploads: Mutex<HashMap<u64, u64>>,
    pub(crate) upload_released: Condvar,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) joined: (Mutex<bool>, Condvar),
    /// The connection cap in force: the configured one, or less when the descriptor limit
    /// cannot hold that many (`limits::share`).
    pub(crate) conn_cap: usize,
    /// Descriptors and memory for files in flight, shared by every connection.
    pub(crate) budget: Budget,
    /// Free space promised to files in flight.
    pub(crate) space: Space,
    /// Connections decoding zstd now.
    pub(crate) decoders: AtomicUsize,
    /// Digests of stored files, for SKIP answers.
    pub(crate) digests: DigestCache,
    /// TLS, tokens and the failure throttle.
    pub(crate) guard: Guard,
    /// What the server has done, for `Server::stats`.
    pub(crate) stats: Stats,
    /// The descriptor limit in force since the start (0: not raised or read, in-memory tests).
    pub(crate) fd_limit: u64,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig, sink: Sink, guard: Guard) -> Result<Shared> {
        let conn_cap = config.max_connections;
        Ok(Shared {
            id: NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed),
            config,
            sink,
            stopping: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            ended: (Mutex::new(0), Condvar::new()),
            wake: Notify::new(),
            conn_ended: Notify::new(),
            drains: Arc::default(),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            crowded: Arc::default(),
            uploads: Mutex::new(HashMap::new()),
            upload_released: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            joined: (Mutex::new(false), Condvar::new()),
            conn_cap,
            budget: Budget::new(u64::MAX, SPOOL_TOTAL),
            space: Space::default(),
            decoders: AtomicUsize::new(0),
            digests: DigestCache::default(),
            guard,
            stats: Stats::default(),
            fd_limit: 0,
        })
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// `Err` once the server stops: a connection reads no further content, and its sender is
    /// told why as the connection ends.
    pub(crate) fn keep_reading(&self) -> Result<()> {
        match self.is_stopping() {
            true => Err(Error::new(ErrorKind::Cancelled, STOPPING)),
            false => Ok(()),
        }
    }

    /// Whether new files are refused: stopping, or draining for a graceful shutdown.
    pub(crate) fn refuses_new(&self) -> bool {
        self.is_stopping() || self.draining.load(Ordering::SeqCst)
    }

    /// Called by each server thread as it ends.
    pub(crate) fn thread_ended(&self) {
        *lock(&self.ended.0) += 1;
        self.ended.1.notify_all();
    }

    /// Waits up to `timeout` for every server thread to end; whether they did.
    pub(crate) fn wait_threads(&self, timeout: Duration) -> bool {
        let total = lock(&self.threads).len();
        // A timeout too long to add to now waits without limit.
        let deadline = Instant::now().checked_add(timeout);
        let mut ended = lock(&self.ended.0);
        while *ended < total {
            let left = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return false;
            }
            ended = self
                .ended
                .1
                .wait_timeout(ended, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Tells every error handler; a panicking handler does not reach the worker.
    pub(crate) fn report(&self, err: &Error, peer: Option<SocketAddr>) {
        for h in &self.config.on_error {
            let _ = catch_unwind(AssertUnwindSafe(|| h(err, peer)));
        }
    }

    /// Reports a file not stored (counted already): to the refusal handlers with its info, then
    /// to the error handlers. `after_data`: FAILED (its content came), else REJECT.
    pub(crate) fn report_refusal(&self, r: Refusal, info: &FileInfo, after_data: bool) {
        let refused = Refused {
            code: r.0 as u16,
            reason: crate::printable(&r.1).into_owned(),
            after_data,
        };
        for h in &self.config.on_refused {
            let _ = catch_unwind(AssertUnwindSafe(|| h(info, &refused)));
        }
        self.report(&r.into_error(&info.name), Some(info.peer));
    }

    /// Ends connection `id` (its peer is gone or superseded): its reads end at once.
    pub(crate) fn shutdown_conn(&self, id: u64) {
        if let Some(c) = lock(&self.conns).get(&id) {
            c.cut();
        }
    }
}

/// A connection's claim on one zstd decoder; dropped, it frees it.
pub(crate) struct DecoderSlot<'a>(&'a AtomicUsize);

impl Shared {
    /// A decoder slot if fewer than the configured number are in use.
    pub(crate) fn decoder_slot(&self) -> Option<DecoderSlot<'_>> {
        let max = self.config.max_decoders;
        self.decoders
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| DecoderSlot(&self.decoders))
    }
}

impl Drop for DecoderSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
