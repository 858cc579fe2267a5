//! What every connection of one server shares: the config, the directory, the stop flag, the
//! registry of open connections, the resume claims, and error reporting.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::config::ServerConfig;
use super::guard::Guard;
use crate::error::Error;
use crate::storage::Root;

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) config: ServerConfig,
    pub(crate) root: Root,
    pub(crate) stopping: AtomicBool,
    /// Written once to wake the accept loop when stopping.
    pub(crate) wake: OwnedFd,
    pub(crate) stop_tx: Mutex<Option<Sender<()>>>,
    /// Open connections (a clone of each socket), so stopping can shut them down.
    pub(crate) conns: Mutex<Vec<(u64, TcpStream)>>,
    pub(crate) next_conn: AtomicU64,
    /// Resumable uploads in progress: resume key → connection id.
    pub(crate) uploads: Mutex<HashMap<u64, u64>>,
    pub(crate) upload_released: Condvar,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) joined: (Mutex<bool>, Condvar),
    /// TLS, tokens and the failure throttle.
    pub(crate) guard: Guard,
}

/// Locks `m`, going on after a panic elsewhere (the data stays consistent: every critical
/// section is a single insert or remove).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Tells every error handler; a panicking handler does not reach the worker.
    pub(crate) fn report(&self, err: &Error, peer: Option<SocketAddr>) {
        for h in &self.config.on_error {
            let _ = catch_unwind(AssertUnwindSafe(|| h(err, peer)));
        }
    }

    /// Ends connection `id` (its peer is gone or superseded): its reads fail at once.
    pub(crate) fn shutdown_conn(&self, id: u64) {
        if let Some((_, s)) = lock(&self.conns).iter().find(|(i, _)| *i == id) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
