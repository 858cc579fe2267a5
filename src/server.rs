//! The receiving side: a listener, a bounded pool of workers fed through a channel, and the
//! per-connection state machine of docs/protocol.md section 3.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{select, Receiver, Sender};
use rustix::event::{poll, PollFd, PollFlags};
use socket2::{Domain, SockRef, Socket, Type};
use xxhash_rust::xxh3::Xxh3;

use crate::compress;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{
    self, check_name, read_exact_or_eof, Code, Frame, Hello, Offer, ALGO_XXH3_128, MAGIC, MAX_NAME,
};
use crate::storage::{self, Overwrite, Root, StoreError, Target, TempFile};

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
const BUFFER_SIZE: usize = 256 * 1024;
const BACKLOG: i32 = 1024;

/// A file as the receiver sees it, passed to validators and handlers.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The relative name, `/`-separated. In the received handler: the name it was stored under.
    pub name: String,
    pub size: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
    pub mode: u32,
    pub peer: SocketAddr,
    /// `None` before the data; the verified temporary file for a post-data validator; the saved
    /// file for the received handler.
    pub path: Option<PathBuf>,
}

/// Returns `Err(reason)` to refuse a file; the reason reaches the sender.
impl FileInfo {
    fn from_offer(offer: &Offer, peer: SocketAddr) -> FileInfo {
        FileInfo {
            name: offer.name.clone(),
            size: offer.size,
            mtime_secs: offer.mtime_secs,
            mtime_nanos: offer.mtime_nanos,
            mode: offer.mode,
            peer,
            path: None,
        }
    }
}

pub type Validator = Arc<dyn Fn(&FileInfo) -> std::result::Result<(), String> + Send + Sync>;
/// Called once per file stored, after the sender was told.
pub type Handler = Arc<dyn Fn(&FileInfo) + Send + Sync>;
/// Called for every connection or file that failed, with the peer when there is one.
pub type ErrorHandler = Arc<dyn Fn(&Error, Option<SocketAddr>) + Send + Sync>;

/// Everything a server is started from. Setters return `&mut Self` so they chain.
#[derive(Clone)]
pub struct ServerConfig {
    dir: PathBuf,
    host: String,
    port: u16,
    max_connections: usize,
    idle_timeout: Duration,
    max_file_size: Option<u64>,
    reserve_bytes: u64,
    overwrite: Overwrite,
    resume_ttl: Duration,
    compression: bool,
    before: Vec<Validator>,
    after: Vec<Validator>,
    handlers: Vec<Handler>,
    on_error: Vec<ErrorHandler>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("dir", &self.dir)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_file_size", &self.max_file_size)
            .field("reserve_bytes", &self.reserve_bytes)
            .field("overwrite", &self.overwrite)
            .field("resume_ttl", &self.resume_ttl)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A server that stores into `dir`, on 0.0.0.0 and an ephemeral port, with kn-sock's
    /// defaults otherwise.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            dir: dir.into(),
            host: "0.0.0.0".into(),
            port: 0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_file_size: None,
            reserve_bytes: 0,
            overwrite: Overwrite::Replace,
            resume_ttl: Duration::ZERO,
            compression: true,
            before: Vec::new(),
            after: Vec::new(),
            handlers: Vec::new(),
            on_error: Vec::new(),
        }
    }

    pub fn dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.dir = dir.into();
        self
    }
    pub fn host(&mut self, host: impl Into<String>) -> &mut Self {
        self.host = host.into();
        self
    }
    /// 0 picks an ephemeral port; [`Server::local_addr`] tells which.
    pub fn port(&mut self, port: u16) -> &mut Self {
        self.port = port;
        self
    }
    /// Connections served at once; more wait in the listen backlog.
    pub fn max_connections(&mut self, n: usize) -> &mut Self {
        self.max_connections = n;
        self
    }
    /// How long a connection may make no progress before it is dropped.
    pub fn idle_timeout(&mut self, t: Duration) -> &mut Self {
        self.idle_timeout = t;
        self
    }
    pub fn max_file_size(&mut self, bytes: Option<u64>) -> &mut Self {
        self.max_file_size = bytes;
        self
    }
    /// Free space that must remain after a file is stored.
    pub fn reserve_bytes(&mut self, bytes: u64) -> &mut Self {
        self.reserve_bytes = bytes;
        self
    }
    pub fn overwrite(&mut self, policy: Overwrite) -> &mut Self {
        self.overwrite = policy;
        self
    }
    /// Keeps the data of an interrupted upload (hidden, beside its final name) for this long, so
    /// the sender's retry resumes where the data ends. Zero (the default) deletes it at once.
    /// Expired data is removed when a server starts on the directory (which walks the tree).
    pub fn resume_ttl(&mut self, ttl: Duration) -> &mut Self {
        self.resume_ttl = ttl;
        self
    }
    /// Accept zstd-compressed content (default: yes). Decoding is bounded: never more than the
    /// announced size, never a window above 8 MiB.
    pub fn accept_compression(&mut self, yes: bool) -> &mut Self {
        self.compression = yes;
        self
    }
    /// Adds a validator run on the OFFER, before any data flows. Validators run in the order
    /// added; the first refusal wins.
    pub fn validate_before(
        &mut self,
        f: impl Fn(&FileInfo) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.before.push(Arc::new(f));
        self
    }
    /// Adds a validator run on the verified, durable temporary file before it is renamed into
    /// place.
    pub fn validate_after(
        &mut self,
        f: impl Fn(&FileInfo) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.after.push(Arc::new(f));
        self
    }
    pub fn on_received(&mut self, f: impl Fn(&FileInfo) + Send + Sync + 'static) -> &mut Self {
        self.handlers.push(Arc::new(f));
        self
    }
    pub fn on_error(
        &mut self,
        f: impl Fn(&Error, Option<SocketAddr>) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_error.push(Arc::new(f));
        self
    }

    /// Binds, starts the workers, and returns at once.
    pub fn start(&self) -> Result<Server> {
        Server::start(self.clone())
    }
}

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

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

struct Shared {
    id: u64,
    config: ServerConfig,
    root: Root,
    stopping: AtomicBool,
    wake: OwnedFd,
    stop_tx: Mutex<Option<Sender<()>>>,
    conns: Mutex<Vec<(u64, TcpStream)>>,
    next_conn: AtomicU64,
    /// Resumable uploads in progress: resume key → connection id.
    uploads: Mutex<HashMap<u64, u64>>,
    upload_released: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    joined: (Mutex<bool>, Condvar),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    fn start(config: ServerConfig) -> Result<Server> {
        if config.max_connections == 0 {
            return Err(Error::invalid("max_connections must be at least 1"));
        }
        if config.idle_timeout.is_zero() {
            return Err(Error::invalid("idle timeout must be above zero"));
        }
        let root = Root::open(&config.dir).map_err(|e| {
            let what = format!("server directory {}", config.dir.display());
            match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::new(ErrorKind::NotFound, format!("{what}: no such directory"))
                }
                _ => Error::io(what, e),
            }
        })?;
        // Leftovers of interrupted work (a crash, an expired resume) go before anything new.
        storage::sweep(
            root.path(),
            config.idle_timeout * 2 + Duration::from_secs(60),
            config.resume_ttl,
        );
        let listener = bind(&config.host, config.port)?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let (wake_rx, wake_tx) =
            rustix::pipe::pipe().map_err(|e| Error::io("creating a wake pipe", e.into()))?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (conn_tx, conn_rx) = crossbeam_channel::bounded::<(TcpStream, SocketAddr)>(0);
        let workers = config.max_connections;
        let shared = Arc::new(Shared {
            id: NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed),
            config,
            root,
            stopping: AtomicBool::new(false),
            wake: wake_tx,
            stop_tx: Mutex::new(Some(stop_tx)),
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
            uploads: Mutex::new(HashMap::new()),
            upload_released: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            joined: (Mutex::new(false), Condvar::new()),
        });
        let mut handles = Vec::with_capacity(workers + 1);
        for i in 0..workers {
            let (sh, rx) = (Arc::clone(&shared), conn_rx.clone());
            handles.push(spawn(&shared, format!("knsock-worker-{i}"), move || {
                sh.worker(rx)
            })?);
        }
        let sh = Arc::clone(&shared);
        handles.push(spawn(&shared, "knsock-accept".into(), move || {
            sh.accept_loop(listener, wake_rx, conn_tx, stop_rx)
        })?);
        *lock(&shared.threads) = handles;
        Ok(Server { shared, addr })
    }

    /// The address the server listens on, with the real port when 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn dir(&self) -> &Path {
        self.shared.root.path()
    }

    /// Stops accepting, aborts transfers in flight (their senders get an error, their temporary
    /// files are deleted) and waits for every worker to finish. Called from one of this server's
    /// own callbacks it only asks, and returns at once; the workers finish after the callback.
    pub fn stop(&self) {
        self.shared.request_stop();
        if !self.shared.on_own_thread() {
            self.shared.join_all();
        }
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

    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
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
            .field("dir", &self.shared.root.path())
            .finish()
    }
}

fn spawn(
    shared: &Arc<Shared>,
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let id = shared.id;
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            SERVER_OF_THREAD.with(|c| c.set(id));
            body()
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

    fn request_stop(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = rustix::io::write(&self.wake, &[1]);
        lock(&self.stop_tx).take();
        for (_, s) in lock(&self.conns).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
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

    fn report(&self, err: &Error, peer: Option<SocketAddr>) {
        for h in &self.config.on_error {
            let _ = catch_unwind(AssertUnwindSafe(|| h(err, peer)));
        }
    }

    fn accept_loop(
        &self,
        listener: TcpListener,
        wake: OwnedFd,
        tx: Sender<(TcpStream, SocketAddr)>,
        stop_rx: Receiver<()>,
    ) {
        loop {
            let mut fds = [
                PollFd::new(&listener, PollFlags::IN),
                PollFd::new(&wake, PollFlags::IN),
            ];
            if let Err(e) = poll(&mut fds, None) {
                if e == rustix::io::Errno::INTR {
                    continue;
                }
                self.report(&Error::io("waiting for connections", e.into()), None);
                return;
            }
            if self.stopping.load(Ordering::SeqCst) || !fds[1].revents().is_empty() {
                return;
            }
            match listener.accept() {
                Ok(conn) => select! {
                    send(tx, conn) -> _ => {},
                    recv(stop_rx) -> _ => return,
                },
                Err(e) => {
                    self.report(&Error::io("accepting a connection", e), None);
                    // Out of descriptors or memory: give the workers a moment to free some,
                    // rather than spin on a listener that stays readable.
                    let mut fds = [PollFd::new(&wake, PollFlags::IN)];
                    let _ = poll(
                        &mut fds,
                        Some(&rustix::fs::Timespec {
                            tv_sec: 0,
                            tv_nsec: 50_000_000,
                        }),
                    );
                }
            }
        }
    }

    fn worker(&self, rx: Receiver<(TcpStream, SocketAddr)>) {
        while let Ok((stream, peer)) = rx.recv() {
            let Some(id) = self.register(&stream) else {
                return;
            };
            let mut conn = Connection::new(self, stream, peer, id);
            let result = conn.run();
            let in_file = conn.in_file;
            drop(conn);
            lock(&self.conns).retain(|(i, _)| *i != id);
            if let Err(e) = result {
                if self.stopping.load(Ordering::SeqCst) {
                    if in_file {
                        self.report(
                            &Error::new(ErrorKind::Cancelled, "transfer aborted: server stopping"),
                            Some(peer),
                        );
                    }
                } else {
                    self.report(&e, Some(peer));
                }
            }
        }
    }

    /// Ends connection `id` (its peer is gone or superseded): its reads fail at once.
    fn shutdown_conn(&self, id: u64) {
        if let Some((_, s)) = lock(&self.conns).iter().find(|(i, _)| *i == id) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Configures the accepted socket and records it so `stop` can shut it down.
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let t = Some(self.config.idle_timeout);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(t).and(stream.set_write_timeout(t));
        let _ = SockRef::from(stream).set_keepalive(true);
        let clone = stream.try_clone().ok()?;
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut conns = lock(&self.conns);
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        conns.push((id, clone));
        Some(id)
    }
}

/// One connection being served.
struct Connection<'a> {
    server: &'a Shared,
    id: u64,
    reader: BufReader<TcpStream>,
    peer: SocketAddr,
    /// Content buffer, sized to the largest file of this connection up to [`BUFFER_SIZE`].
    buf: Vec<u8>,
    /// A file's content is flowing: an error now loses that file.
    in_file: bool,
    /// The seq of the next OFFER (docs/protocol.md section 2).
    next_seq: u32,
    /// Verified files waiting for the group commit, in DONE order.
    pending: Vec<Pending>,
    /// A kn-sock 0.3 peer: it gets no frames.
    legacy: bool,
    /// Capabilities both sides have.
    caps: u32,
}

/// A verified file whose verdict is deferred until its group is committed.
struct Pending {
    seq: u32,
    temp: TempFile,
    target: Target,
    info: FileInfo,
}

/// Where an interrupted upload's data is kept, and the key that finds it again.
struct Resume {
    key: u64,
    partial: String,
}

/// This connection is the one uploading a resumable file; dropping it lets another take over.
struct Claim<'a> {
    shared: &'a Shared,
    key: u64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        lock(&self.shared.uploads).remove(&self.key);
        self.shared.upload_released.notify_all();
    }
}

/// Most files committed together, as the protocol allows.
const GROUP_MAX: usize = 256;

/// A refusal of one file: the wire code and the text the sender sees.
struct Refusal(Code, String);

impl Refusal {
    /// The refusal as the error handler sees it.
    fn into_error(self, name: &str) -> Error {
        let Refusal(code, text) = self;
        let kind = Error::from_peer(code as u16, "").kind();
        Error::new(kind, format!("refused '{name}': {text}"))
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadPath(why) => Refusal(Code::BadName, why),
            StoreError::Exists => Refusal(Code::Exists, "a file with that name exists".into()),
            StoreError::Io(e) => io_refusal(e),
        }
    }
}

fn io_refusal(e: std::io::Error) -> Refusal {
    let err = Error::io("receiver", e);
    Refusal(Code::for_kind(err.kind()), err.message().to_string())
}

impl<'a> Connection<'a> {
    fn new(server: &'a Shared, stream: TcpStream, peer: SocketAddr, id: u64) -> Self {
        Connection {
            server,
            id,
            reader: BufReader::with_capacity(64 * 1024, stream),
            peer,
            buf: Vec::new(),
            in_file: false,
            next_seq: 0,
            pending: Vec::new(),
            legacy: false,
            caps: 0,
        }
    }

    fn run(&mut self) -> Result<()> {
        let mut first = [0u8; 1];
        if !read_exact_or_eof(&mut self.reader, &mut first)? {
            return Ok(()); // connected and closed: a port probe
        }
        if first[0] != MAGIC[0] {
            return self.receive_legacy(first[0]);
        }
        let hello = Hello::read_after_first_byte(&mut self.reader)?;
        let mut out = Vec::with_capacity(64);
        let Some(version) = hello.negotiate() else {
            let text = format!(
                "unsupported protocol versions {}..={}; this receiver speaks {}..={}",
                hello.min_version,
                hello.max_version,
                protocol::VERSION_MIN,
                protocol::VERSION_MAX
            );
            protocol::encode_hello_reply(0, 0, &mut out);
            Frame::Error {
                code: Code::Version as u16,
                text: text.clone(),
            }
            .encode(&mut out);
            let _ = self.send(&out);
            return Err(Error::protocol(text));
        };
        let mut ours = protocol::CAP_EAGER;
        if self.server.config.compression {
            ours |= protocol::CAP_ZSTD;
        }
        self.caps = hello.caps & ours;
        protocol::encode_hello_reply(version, self.caps, &mut out);
        self.send(&out)?;
        loop {
            // Never hold a verdict while waiting for the sender.
            if !self.pending.is_empty() && !protocol::input_ready(&self.reader) {
                self.commit_group()?;
            }
            let frame = match Frame::read_from(&mut self.reader) {
                Ok(Some(f)) => f,
                Ok(None) => return self.commit_group(),
                Err(e) => return Err(self.fail(e)),
            };
            match frame {
                Frame::Offer(offer) => self.receive_file(offer)?,
                Frame::Bye => return self.commit_group(),
                f => {
                    let e = Error::protocol(format!("unexpected frame from sender: {f:?}"));
                    return Err(self.fail(e));
                }
            }
        }
    }

    /// Tells the peer about a protocol error before the connection closes.
    fn fail(&mut self, e: Error) -> Error {
        if e.kind() == ErrorKind::Protocol {
            let frame = Frame::Error {
                code: Code::Protocol as u16,
                text: e.message().to_string(),
            };
            let _ = frame.write_to(&mut self.reader.get_ref());
        }
        e
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.reader
            .get_ref()
            .write_all(bytes)
            .map_err(|e| Error::io("writing to the sender", e))
    }

    fn send_frame(&mut self, f: Frame) -> Result<()> {
        let mut out = Vec::with_capacity(64);
        f.encode(&mut out);
        self.send(&out)
    }

    /// Receives one file. `Err` only when the connection cannot go on; a refused file is
    /// answered with REJECT or FAILED and the connection stays usable.
    fn receive_file(&mut self, offer: Offer) -> Result<()> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let mut info = FileInfo::from_offer(&offer, self.peer);
        // An eager offer's content is already on its way: no SKIP, no resume, no ACCEPT.
        let eager = self.caps & protocol::CAP_EAGER != 0 && offer.is_eager();
        if !eager && self.unchanged(&offer) {
            return self.send_frame(Frame::Skip);
        }
        let resume = if eager { None } else { self.resume_for(&offer) };
        let admitted = self.claim(resume.as_ref()).and_then(|claim| {
            let (target, mut temp) = self.admit(&offer, &info, resume.as_ref())?;
            // A resumed upload: the checksum covers the data already here too.
            let mut hasher = Xxh3::new();
            let offset = temp
                .reread(|b| hasher.update(b))
                .and_then(|()| temp.written())
                .map_err(io_refusal)?;
            Ok((claim, target, temp, hasher, offset))
        });
        // Refused: an eager offer's content is on its way and must be drained first.
        let (_claim, target, temp, hasher, offset) = match admitted {
            Ok(t) => t,
            Err(r) if eager => return self.drop_eager(r, seq, &offer, &info),
            Err(r) => return self.reject_offer(r, &info),
        };
        if !eager {
            self.send_frame(Frame::Accept { offset })?;
        }
        self.in_file = true;
        let (temp, digest) = self.read_content(temp, &offer, hasher, resume.as_ref())?;
        let done = self.read_done()?;
        self.in_file = false;
        let verified = temp.and_then(|mut temp| {
            if done.0 != ALGO_XXH3_128 || done.1 != digest.to_be_bytes() {
                return Err(Refusal(
                    Code::Checksum,
                    format!("checksum mismatch for '{}'", offer.name),
                ));
            }
            temp.set_metadata(offer.mode, offer.mtime_secs, offer.mtime_nanos)
                .map_err(io_refusal)?;
            Ok(temp)
        });
        match verified {
            Ok(temp) => {
                info.path = Some(temp.path().to_path_buf());
                self.pending.push(Pending {
                    seq,
                    temp,
                    target,
                    info,
                });
                if self.pending.len() >= GROUP_MAX {
                    self.commit_group()?;
                }
                Ok(())
            }
            Err(r) => {
                // Verdicts go out in DONE order: the group before this file first.
                self.commit_group()?;
                self.refuse(
                    Frame::Failed {
                        seq,
                        code: r.0 as u16,
                        text: r.1.clone(),
                    },
                    r,
                    &info,
                )
            }
        }
    }

    /// Commits the pending group: one sync for all contents, the post-data validators, the
    /// renames, one fsync per directory, and only then the verdicts and the handlers.
    fn commit_group(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.pending);
        let cfg = &self.server.config;
        let synced = storage::sync_all(group.iter().map(|p| &p.temp)).map_err(io_refusal);
        let mut renamed: Vec<(u32, Target, FileInfo, String)> = Vec::with_capacity(group.len());
        let mut failed: Vec<(u32, Refusal, FileInfo)> = Vec::new();
        for Pending {
            seq,
            temp,
            target,
            mut info,
        } in group
        {
            let placed = match &synced {
                Err(r) => Err(Refusal(r.0, r.1.clone())),
                Ok(()) => run_validators(&cfg.after, &info)
                    .and_then(|()| Ok(temp.rename_into_place(&target, cfg.overwrite)?)),
            };
            match placed {
                Ok(stored) => {
                    info.path = Some(stored.path);
                    renamed.push((seq, target, info, stored.name));
                }
                Err(r) => failed.push((seq, r, info)),
            }
        }
        let mut dirs_synced: Vec<&Target> = Vec::new();
        let mut dir_error = None;
        for (_, target, _, _) in &renamed {
            if !dirs_synced.iter().any(|t| t.same_dir(target)) {
                if let Err(e) = target.sync_dir() {
                    dir_error = Some(io_refusal(e));
                }
                dirs_synced.push(target);
            }
        }
        let mut out = Vec::with_capacity(64 * (renamed.len() + failed.len()));
        let mut verdicts: Vec<(u32, Frame)> = Vec::new();
        for (seq, _, _, name) in &renamed {
            verdicts.push((
                *seq,
                match &dir_error {
                    None => Frame::Ok {
                        seq: *seq,
                        name: name.clone(),
                    },
                    Some(r) => Frame::Failed {
                        seq: *seq,
                        code: r.0 as u16,
                        text: r.1.clone(),
                    },
                },
            ));
        }
        for (seq, r, _) in &failed {
            verdicts.push((
                *seq,
                Frame::Failed {
                    seq: *seq,
                    code: r.0 as u16,
                    text: r.1.clone(),
                },
            ));
        }
        verdicts.sort_by_key(|(seq, _)| *seq);
        for (_, f) in &verdicts {
            f.encode(&mut out);
        }
        let sent = match self.legacy {
            true => Ok(()),
            false => self.send(&out),
        };
        for (_, r, info) in failed {
            self.server
                .report(&r.into_error(&info.name), Some(self.peer));
        }
        if dir_error.is_none() {
            for (_, _, info, name) in renamed {
                self.announce(info, name);
            }
        }
        sent
    }

    /// The checks made on the OFFER, before any data: name, size, policy, space, validators.
    fn admit(
        &self,
        offer: &Offer,
        info: &FileInfo,
        resume: Option<&Resume>,
    ) -> std::result::Result<(Target, TempFile), Refusal> {
        let cfg = &self.server.config;
        if self.server.stopping.load(Ordering::SeqCst) {
            return Err(Refusal(
                Code::ShuttingDown,
                "receiver is shutting down".into(),
            ));
        }
        let parts = check_name(&offer.name)
            .map_err(|why| Refusal(Code::BadName, format!("unacceptable name: {why}")))?;
        match offer.encoding {
            protocol::ENCODING_RAW => {}
            protocol::ENCODING_ZSTD if self.caps & protocol::CAP_ZSTD != 0 => {}
            e => {
                return Err(Refusal(
                    Code::Protocol,
                    format!("content encoding {e} was not negotiated"),
                ))
            }
        }
        if offer.algorithm != ALGO_XXH3_128 {
            return Err(Refusal(
                Code::Protocol,
                format!("unknown checksum algorithm {}", offer.algorithm),
            ));
        }
        if let Some(max) = cfg.max_file_size.filter(|m| offer.size > *m) {
            return Err(Refusal(
                Code::TooLarge,
                format!(
                    "file of {} bytes exceeds the limit of {max} bytes",
                    offer.size
                ),
            ));
        }
        let target = self.server.root.target(&parts)?;
        target.check_existing(cfg.overwrite)?;
        let free = target.free_bytes().map_err(io_refusal)?;
        if offer.size.saturating_add(cfg.reserve_bytes) > free {
            return Err(Refusal(
                Code::NoSpace,
                format!(
                    "no space: file needs {} bytes, {free} free, {} reserved",
                    offer.size, cfg.reserve_bytes
                ),
            ));
        }
        run_validators(&cfg.before, info)?;
        let resumed = match resume {
            Some(r) => target
                .claim_partial(&r.partial, cfg.resume_ttl, offer.size)
                .map_err(io_refusal)?,
            None => None,
        };
        let temp = match resumed {
            Some(t) => t,
            None => target.create_temp().map_err(io_refusal)?,
        };
        Ok((target, temp))
    }

    /// Reads exactly the offered bytes into the temporary file, hashing them. A local write
    /// failure does not end the connection: the rest is read and dropped, and the file refused.
    /// With `resume`, an interrupted upload keeps its data for the sender's retry.
    fn read_content(
        &mut self,
        mut temp: TempFile,
        offer: &Offer,
        mut hasher: Xxh3,
        resume: Option<&Resume>,
    ) -> Result<(std::result::Result<TempFile, Refusal>, u128)> {
        let want_buf = BUFFER_SIZE.min(offer.size.max(1) as usize);
        if self.buf.len() < want_buf {
            self.buf.resize(want_buf, 0);
        }
        let start = temp
            .written()
            .map_err(|e| Error::io("reading the temporary file", e))?;
        let mut remaining = offer.size.saturating_sub(start);
        let mut write_err = None;
        if offer.encoding == protocol::ENCODING_ZSTD {
            let decoded =
                compress::decode_blocks(&mut self.reader, remaining, &mut self.buf, |b| {
                    hasher.update(b);
                    if write_err.is_none() {
                        if let Err(e) = temp.file().write_all(b) {
                            write_err = Some(e);
                        }
                    }
                    Ok(())
                });
            if let Err(e) = decoded {
                // A lost connection keeps its data for a resume; corrupt content does not.
                if let (Some(r), None, false) =
                    (resume, &write_err, e.kind() == ErrorKind::Protocol)
                {
                    let _ = temp.keep_as(&r.partial);
                }
                return Err(e.context(format!("receiving '{}'", offer.name)));
            }
            remaining = 0;
        }
        while remaining > 0 {
            let want = self.buf.len().min(remaining as usize);
            let failure = match self.reader.read(&mut self.buf[..want]) {
                Ok(0) => Error::protocol(format!(
                    "sender closed the connection after {} of {} bytes of '{}'",
                    offer.size - remaining,
                    offer.size,
                    offer.name
                )),
                Ok(n) => {
                    hasher.update(&self.buf[..n]);
                    if write_err.is_none() {
                        if let Err(e) = temp.file().write_all(&self.buf[..n]) {
                            write_err = Some(e);
                        }
                    }
                    remaining -= n as u64;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Error::io(format!("receiving '{}'", offer.name), e),
            };
            if let (Some(r), None) = (resume, &write_err) {
                let _ = temp.keep_as(&r.partial);
            }
            return Err(failure);
        }
        let temp = match write_err {
            None => Ok(temp),
            Some(e) => Err(io_refusal(e)),
        };
        Ok((temp, hasher.digest128()))
    }

    /// Whether the offer carries a digest and the exact file is already in place.
    fn unchanged(&self, offer: &Offer) -> bool {
        if offer.digest.is_empty() || offer.algorithm != ALGO_XXH3_128 {
            return false;
        }
        let Ok(parts) = check_name(&offer.name) else {
            return false;
        };
        match self.server.root.target(&parts) {
            Ok(target) => target.holds(offer.size, &offer.digest),
            Err(_) => false,
        }
    }

    /// The resume identity of an offer, when resuming is on: the same file (name, size, mtime)
    /// from the same host.
    fn resume_for(&self, offer: &Offer) -> Option<Resume> {
        if self.server.config.resume_ttl.is_zero() || self.legacy {
            return None;
        }
        let mut h = Xxh3::new();
        h.update(offer.name.as_bytes());
        h.update(&offer.size.to_be_bytes());
        h.update(&offer.mtime_secs.to_be_bytes());
        h.update(&offer.mtime_nanos.to_be_bytes());
        h.update(self.peer.ip().to_string().as_bytes());
        let key = h.digest();
        Some(Resume {
            key,
            partial: format!("{}partial-{key:016x}", protocol::TEMP_PREFIX),
        })
    }

    /// Registers this connection as the one uploading `resume`'s file. A connection that still
    /// holds it belongs to the same sender before it reconnected: it is ended, and its data kept,
    /// before this one takes over.
    fn claim(&self, resume: Option<&Resume>) -> std::result::Result<Option<Claim<'a>>, Refusal> {
        let Some(r) = resume else {
            return Ok(None);
        };
        let shared = self.server;
        let mut uploads = lock(&shared.uploads);
        if let Some(&holder) = uploads.get(&r.key) {
            shared.shutdown_conn(holder);
            let deadline = std::time::Instant::now() + shared.config.idle_timeout;
            while uploads.contains_key(&r.key) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(Refusal(
                        Code::Io,
                        "the same upload is still in progress on another connection".into(),
                    ));
                }
                uploads = shared
                    .upload_released
                    .wait_timeout(uploads, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        uploads.insert(r.key, self.id);
        Ok(Some(Claim { shared, key: r.key }))
    }

    /// The DONE frame that ends a file's content.
    fn read_done(&mut self) -> Result<(u8, Vec<u8>)> {
        match Frame::read_from(&mut self.reader) {
            Ok(Some(Frame::Done { algorithm, digest })) => Ok((algorithm, digest)),
            Ok(other) => {
                let e = Error::protocol(format!("expected DONE after the content, got {other:?}"));
                Err(self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Refuses an eager offer: its content and DONE are read and dropped (at most
    /// `EAGER_MAX` bytes once decoded), then the verdict FAILED goes out in its turn.
    fn drop_eager(&mut self, r: Refusal, seq: u32, offer: &Offer, info: &FileInfo) -> Result<()> {
        self.in_file = true;
        if self.buf.len() < 16 * 1024 {
            self.buf.resize(16 * 1024, 0);
        }
        let dropped = match offer.encoding {
            protocol::ENCODING_ZSTD => {
                compress::decode_blocks(&mut self.reader, offer.size, &mut self.buf, |_| Ok(()))
            }
            _ => std::io::copy(
                &mut (&mut self.reader).take(offer.size),
                &mut std::io::sink(),
            )
            .map_err(|e| Error::io(format!("receiving '{}'", offer.name), e))
            .and_then(|n| match n == offer.size {
                true => Ok(()),
                false => Err(Error::protocol(format!(
                    "sender closed the connection inside '{}'",
                    offer.name
                ))),
            }),
        };
        dropped.map_err(|e| self.fail(e))?;
        self.read_done()?;
        self.in_file = false;
        self.commit_group()?;
        let frame = Frame::Failed {
            seq,
            code: r.0 as u16,
            text: r.1.clone(),
        };
        self.refuse(frame, r, info)
    }

    fn reject_offer(&mut self, r: Refusal, info: &FileInfo) -> Result<()> {
        let frame = Frame::Reject {
            code: r.0 as u16,
            text: r.1.clone(),
        };
        self.refuse(frame, r, info)
    }

    /// Sends a refusal (REJECT for an offer, FAILED for content) and reports it.
    fn refuse(&mut self, frame: Frame, r: Refusal, info: &FileInfo) -> Result<()> {
        self.send_frame(frame)?;
        self.server
            .report(&r.into_error(&info.name), Some(self.peer));
        Ok(())
    }

    /// Tells the received handlers about a stored file.
    fn announce(&self, mut info: FileInfo, stored_name: String) {
        info.name = stored_name;
        for h in &self.server.config.handlers {
            let _ = catch_unwind(AssertUnwindSafe(|| h(&info)));
        }
    }

    /// A kn-sock 0.3 upload, told apart by its first byte: `name\n`, `size\n`, exactly `size` raw
    /// bytes, then the sender closes. Every protection of the native protocol applies (names,
    /// limits, validators, temporary file, fsync, rename); that protocol has no checksum and no
    /// answer, so the upload counts when exactly `size` bytes arrived, and a refusal or a short
    /// upload can only be reported to the error handler.
    fn receive_legacy(&mut self, first: u8) -> Result<()> {
        self.legacy = true;
        let name = self.legacy_line(vec![first], MAX_NAME, "name")?;
        let size_text = self.legacy_line(Vec::new(), 24, "size")?;
        let size = size_text.parse::<u64>().map_err(|_| {
            Error::protocol(format!(
                "kn-sock upload of '{name}': size {size_text:?} is not a number"
            ))
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let offer = Offer {
            size,
            mtime_secs: now.as_secs() as i64,
            mtime_nanos: now.subsec_nanos(),
            mode: 0,
            algorithm: ALGO_XXH3_128,
            name,
            digest: Vec::new(),
            encoding: protocol::ENCODING_RAW,
        };
        let mut info = FileInfo::from_offer(&offer, self.peer);
        let (target, temp) = self
            .admit(&offer, &info, None)
            .map_err(|r| r.into_error(&offer.name))?;
        self.in_file = true;
        let (temp, _) = self.read_content(temp, &offer, Xxh3::new(), None)?;
        self.in_file = false;
        let mut temp = temp.map_err(|r| r.into_error(&offer.name))?;
        temp.set_metadata(offer.mode, offer.mtime_secs, offer.mtime_nanos)
            .map_err(|e| io_refusal(e).into_error(&offer.name))?;
        info.path = Some(temp.path().to_path_buf());
        self.pending.push(Pending {
            seq: 0,
            temp,
            target,
            info,
        });
        // No one to tell: the outcome reaches the handlers or the error handler.
        let _ = self.commit_group();
        Ok(())
    }

    /// One `\n`-terminated line of a kn-sock 0.3 header (its first bytes already in `line`),
    /// whitespace-trimmed as kn-sock does, at most `max` bytes.
    fn legacy_line(&mut self, mut line: Vec<u8>, max: usize, what: &str) -> Result<String> {
        if line.last() != Some(&b'\n') {
            let limit = (max + 2 - line.len()) as u64;
            (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(format!("reading a kn-sock {what} line"), e))?;
        }
        if line.pop() != Some(b'\n') {
            return Err(Error::protocol(match line.len() > max {
                true => format!("kn-sock upload: {what} line longer than {max} bytes"),
                false => format!("kn-sock upload: connection closed inside the {what} line"),
            }));
        }
        let text = String::from_utf8(line)
            .map_err(|_| Error::protocol(format!("kn-sock upload: {what} is not UTF-8")))?;
        Ok(text.trim().to_string())
    }
}

fn run_validators(validators: &[Validator], info: &FileInfo) -> std::result::Result<(), Refusal> {
    for v in validators {
        match catch_unwind(AssertUnwindSafe(|| v(info))) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(Refusal(Code::Validator, reason)),
            Err(_) => return Err(Refusal(Code::Validator, "validator panicked".into())),
        }
    }
    Ok(())
}
