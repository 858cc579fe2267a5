//! The receiving side: a listener and every connection on one event loop (`runtime`), and the
//! server's lifecycle (start, stop, wait). Each connection is a task served by `session`
//! (knsock) or `legacy` (kn-sock 0.3), told apart by its first byte.

use std::cell::Cell;
use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{self, Root, Sink};
use crate::sync::lock;

mod config;
mod files;
mod io;
mod security;
mod session;
mod shared;
mod stats;

pub use config::{
    ErrorHandler, FileInfo, Handler, RefusalHandler, Refused, ServerConfig, Validator,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
pub use stats::{ServerStats, STATS_CODES};

use files::budget::{Budget, SPOOL_TOTAL};
use io::{limits, runtime};
use security::guard::Guard;
use shared::Shared;

const BACKLOG: i32 = 1024;

impl ServerConfig {
    /// Binds, starts the workers, and returns at once.
    pub fn start(&self) -> Result<Server> {
        Server::start(self.clone())
    }
}

/// Unfinished multipart uploads older than this are aborted when a server starts on a bucket.
const ORPHAN_UPLOAD_AGE_SECS: u64 = 24 * 3600;

/// Opens the server's directory, which must exist, and the object store when files go to one
/// (the directory then holds their content on its way there).
fn open_sink(config: &ServerConfig) -> Result<Sink> {
    let root = Root::open(&config.dir).map_err(|e| {
        let what = format!("server directory {}", config.dir.display());
        match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::new(ErrorKind::NotFound, format!("{what}: no such directory"))
            }
            _ => Error::io(what, e),
        }
    })?;
    if let (None, Some(s3)) = (&config.objects, &config.s3) {
        let store = open_s3(s3, root.path())?;
        return Ok(Sink::Objects { store, spool: root });
    }
    Ok(match &config.objects {
        None => Sink::Dir(root),
        Some(store) => Sink::Objects {
            store: Arc::clone(store),
            spool: root,
        },
    })
}

/// Opens the bucket, noting its uploads in flight in the spool (so a restart after a crash
/// aborts them).
#[cfg(feature = "s3")]
fn open_s3(s3: &crate::S3Config, spool: &Path) -> Result<Arc<dyn crate::ObjectStore>> {
    Ok(Arc::new(crate::S3Store::open(s3)?.with_journal(spool)))
}

#[cfg(not(feature = "s3"))]
fn open_s3(_: &crate::S3Config, _: &Path) -> Result<Arc<dyn crate::ObjectStore>> {
    Err(Error::invalid("this knsock was built without S3 support"))
}

/// Serves one connection whose whole input is `input`, over an in-memory stream, and returns
/// what the server wrote and how the connection ended. For fuzzing and tests.
#[cfg(feature = "internals")]
pub(crate) fn serve_in_memory(config: ServerConfig, input: &[u8]) -> Result<(Vec<u8>, Result<()>)> {
    let sink = open_sink(&config)?;
    let guard = Guard::build(&config.security)?;
    let shared = Arc::new(Shared::new(config, sink, guard)?);
    let stream = io::streams::MemStream::new(input.to_vec());
    let peer = SocketAddr::from(([127, 0, 0, 1], 9));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting a runtime", e))?;
    let mut conn = session::conn::Connection::new(&shared, stream, peer, 0, Arc::default());
    let ended = runtime.block_on(async {
        let ended = io::dispatch::serve(&mut conn).await;
        let _ = conn.commit().await;
        ended
    });
    Ok((conn.wire.get_ref().output.clone(), ended))
}

thread_local! {
    /// The id of the server whose thread this is (0: none), so `stop` called from a callback
    /// does not join its own thread.
    static SERVER_OF_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// A running server. Dropping it stops it.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    fn start(config: ServerConfig) -> Result<Server> {
        config.validate()?;
        let sink = open_sink(&config)?;
        let guard = Guard::build(&config.security)?;
        // Leftovers of interrupted work (a crash, an expired resume) go before anything new:
        // in the store first (its notes of uploads in flight live in the spool), then locally.
        // Best effort; of the uploads this receiver did not note, only day-old ones go (a
        // young one may be another receiver's, sharing the bucket).
        if let Some(store) = sink.store() {
            let _ = store.sweep(ORPHAN_UPLOAD_AGE_SECS);
        }
        storage::sweep(sink.path(), config.resume_ttl);
        let listener = bind(&config.host, config.port)?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let fd_limit = limits::raise_fd_limit(config.raise_fd_limit);
        limits::grow_fd_table(fd_limit, &listener);
        let connections = config.max_connections;
        let mut shared = Shared::new(config, sink, guard)?;
        let (conn_cap, file_fds) = limits::share(fd_limit, connections);
        shared.conn_cap = conn_cap;
        shared.budget = Budget::new(file_fds, SPOOL_TOTAL);
        shared.fd_limit = fd_limit;
        let shared = Arc::new(shared);
        let id = shared.id;
        let runtime = runtime::build(0, move || SERVER_OF_THREAD.with(|c| c.set(id)))?;
        let listener = {
            let _in_runtime = runtime.enter();
            listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|e| Error::io("registering the listener", e))?
        };
        let sh = Arc::clone(&shared);
        let handle = spawn(&shared, "knsock-accept".into(), move || {
            // Accepting is a task of the event loop, not of this thread: the connection tasks
            // it spawns start on the worker that accepted them, with no thread to wake.
            let serving = runtime.spawn(async move {
                sh.accept_loop(listener).await;
                sh.wait_connections().await;
                sh.drains.idle().await;
            });
            let _ = runtime.block_on(serving);
            // Whatever is left (a connection stuck writing to a sender that does not read) is
            // dropped with the runtime; a callback still running is waited for.
            drop(runtime);
        })?;
        *lock(&shared.threads) = vec![handle];
        Ok(Server { shared, addr })
    }

    /// The address the server listens on, with the real port when 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory it stores into (with an object store: its spool).
    pub fn dir(&self) -> &Path {
        self.shared.sink.path()
    }

    /// The pin of the server's TLS key, `sha256//BASE64` (what senders give as their pin);
    /// `None` without TLS.
    pub fn tls_pin(&self) -> Option<&str> {
        self.shared.guard.tls.as_ref().map(|t| t.pin())
    }

    /// Stops accepting, aborts transfers in flight (their senders get an error, their temporary
    /// files are deleted) and waits for every worker to finish. Called from one of this server's
    /// own callbacks it only asks, and returns at once; the workers finish after the callback.
    pub fn stop(&self) {
        self.shared.request_stop();
        if !self.shared.on_own_thread() {
            // Each connection stops reading and tells its sender why; one still stuck (writing
            // to a sender that does not read) is cut after a moment (`wait_connections`).
            self.shared.join_all();
        }
    }

    /// Stops gracefully: no new connection is accepted and no new file admitted (offers are
    /// refused with "receiver is shutting down"), while the files already under way finish, for
    /// at most `timeout`; then whatever is still running is aborted as by [`Server::stop`].
    /// Returns `true` when everything finished in time. From one of the server's own callbacks
    /// it only asks, like `stop`, and returns `false`.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let sh = &self.shared;
        sh.draining.store(true, Ordering::SeqCst);
        sh.wake.notify_waiters();
        if sh.on_own_thread() {
            return false;
        }
        let drained = sh.wait_threads(timeout);
        self.stop();
        drained
    }

    /// Blocks until the server has stopped (by [`Server::stop`] from another thread or a
    /// callback). From one of the server's own callbacks it would never return, so it fails.
    pub fn wait(&self) -> Result<()> {
        if self.shared.on_own_thread() {
            return Err(Error::invalid(
                "wait() called from one of the server's own callbacks",
            ));
        }
        self.shared.join_all();
        Ok(())
    }

    /// Whether [`Server::stop`] was called (or the server is stopping for another reason).
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// What the server has done since it started, and the use of its bounded resources now.
    /// Cheap enough to call every second; any thread, also from the server's own callbacks.
    pub fn stats(&self) -> ServerStats {
        let sh = &self.shared;
        let mut s = sh.stats.counters();
        s.connections_max = sh.conn_cap as u64;
        s.decoders_in_use = sh.decoders.load(Ordering::Relaxed) as u64;
        s.decoders_max = sh.config.max_decoders as u64;
        s.files_in_flight = sh.space.files();
        s.space_reserved = sh.space.reserved();
        s.descriptors_open = stats::open_descriptors();
        s.descriptors_limit = sh.fd_limit;
        if let Some(store) = sh.sink.store() {
            (s.store_requests, s.store_failures) = store.requests();
        }
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("dir", &self.shared.sink.path())
            .finish()
    }
}

fn spawn(
    shared: &Arc<Shared>,
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let id = shared.id;
    let sh = Arc::clone(shared);
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            SERVER_OF_THREAD.with(|c| c.set(id));
            body();
            sh.thread_ended();
        })
        .map_err(|e| Error::io("starting a server thread", e))
}

fn bind(host: &str, port: u16) -> Result<TcpListener> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::invalid(format!("cannot resolve listen host {host}: {e}")))?
        .next()
        .ok_or_else(|| Error::invalid(format!("listen host {host} has no address")))?;
    let what = format!("cannot listen on {addr}");
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .map_err(|e| Error::io(&what, e))?;
    socket
        .set_reuse_address(true)
        .and_then(|_| socket.bind(&addr.into()))
        .and_then(|_| socket.listen(BACKLOG))
        .map_err(|e| Error::io(&what, e))?;
    Ok(socket.into())
}

impl Shared {
    fn on_own_thread(&self) -> bool {
        SERVER_OF_THREAD.with(|c| c.get()) == self.id
    }

    fn join_all(&self) {
        let handles = std::mem::take(&mut *lock(&self.threads));
        let (done, cv) = &self.joined;
        if handles.is_empty() {
            let mut d = lock(done);
            while !*d {
                d = cv.wait(d).unwrap_or_else(|e| e.into_inner());
            }
            return;
        }
        for h in handles {
            let _ = h.join();
        }
        *lock(done) = true;
        cv.notify_all();
    }
}
