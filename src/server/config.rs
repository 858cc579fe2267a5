//! What a server is started from: [`ServerConfig`] with its limits and defaults, the callback
//! types, and the [`FileInfo`] they are given.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::security::Security;
use crate::error::Error;
use crate::protocol::Offer;
use crate::storage::Overwrite;

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

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
    /// The identity the sender proved (token name or client certificate common name); `None`
    /// for an anonymous sender.
    pub identity: Option<String>,
}

/// Returns `Err(reason)` to refuse a file; the reason reaches the sender.
impl FileInfo {
    pub(crate) fn from_offer(offer: &Offer, peer: SocketAddr) -> FileInfo {
        FileInfo {
            name: offer.name.clone(),
            size: offer.size,
            mtime_secs: offer.mtime_secs,
            mtime_nanos: offer.mtime_nanos,
            mode: offer.mode,
            peer,
            path: None,
            identity: None,
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
    pub(crate) dir: PathBuf,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_file_size: Option<u64>,
    pub(crate) reserve_bytes: u64,
    pub(crate) overwrite: Overwrite,
    pub(crate) resume_ttl: Duration,
    pub(crate) compression: bool,
    pub(crate) before: Vec<Validator>,
    pub(crate) after: Vec<Validator>,
    pub(crate) handlers: Vec<Handler>,
    pub(crate) on_error: Vec<ErrorHandler>,
    /// TLS, authentication and confinement (setters in `secure_setters.rs`).
    pub(crate) security: Security,
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
            security: Security::default(),
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
}
