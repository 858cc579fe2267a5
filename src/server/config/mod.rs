//! What a server is started from: [`ServerConfig`] with its limits and defaults, the callback
//! types, and the [`FileInfo`] they are given.

pub(super) mod store_setters;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::protocol::Offer;
use crate::server::security::Security;
use crate::storage::{ObjectStore, Overwrite};

/// How long a connection may make no progress, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 65_536;
/// How long a whole frame (and a small file's eagerly sent content) may take to arrive.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections decoding zstd at once (each may need an 8 MiB window): 128 MiB at most.
pub const DEFAULT_MAX_DECODERS: usize = 16;
/// Bytes one connection may make the receiver hash to answer SKIP (digest offers).
pub const DEFAULT_HASH_BUDGET: u64 = 64 << 30;
/// Permission bits a received file may get: no setuid, setgid or sticky bit, no write for group
/// or others.
pub const DEFAULT_MODE_MASK: u32 = 0o755;
/// The most connections a server serves at once.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// The longest idle, header or connect timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest time interrupted uploads are kept for resume.
pub const MAX_RESUME_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A file as the receiver sees it, passed to validators and handlers.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The relative name, `/`-separated. In the received handler: the name it was stored under.
    pub name: String,
    /// The size the sender offered (the content is checked to have exactly this many bytes).
    pub size: u64,
    /// The sender's modification time: seconds since the Unix epoch…
    pub mtime_secs: i64,
    /// …and nanoseconds.
    pub mtime_nanos: u32,
    /// The sender's permission bits (the stored file gets them under the mode mask).
    pub mode: u32,
    /// The sender's address.
    pub peer: SocketAddr,
    /// `None` before the data; the verified temporary file for a post-data validator; the saved
    /// file for the received handler.
    pub path: Option<PathBuf>,
    /// The identity the sender proved (token name or client certificate common name); `None`
    /// for an anonymous sender.
    pub identity: Option<String>,
    /// When its offer arrived (a kn-sock 0.3 upload: its header): in a received handler,
    /// `offered_at.elapsed()` is how long the transfer took.
    pub offered_at: Instant,
}

/// A file the receiver did not store, as its sender was told: the wire code (docs/protocol.md
/// section 5) and the text.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The refusal's wire code (docs/protocol.md section 5), as in REJECT or FAILED.
    pub code: u16,
    /// Safe to print (escaped like every error message).
    pub reason: String,
    /// `false`: refused on its offer (REJECT, no content read); `true`: its content came but
    /// was not stored (FAILED).
    pub after_data: bool,
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
            offered_at: Instant::now(),
        }
    }
}

/// Accepts a file (`Ok`) or refuses it with a reason the sender is told.
pub type Validator = Arc<dyn Fn(&FileInfo) -> std::result::Result<(), String> + Send + Sync>;
/// Called once per file stored, after the sender was told, on a thread of the server's blocking
/// pool: one connection's calls one at a time and in order, while that connection goes on
/// receiving (it waits once 64 of its commits' calls are queued).
pub type Handler = Arc<dyn Fn(&FileInfo) + Send + Sync>;
/// Called for every connection or file that failed, with the peer when there is one.
pub type ErrorHandler = Arc<dyn Fn(&Error, Option<SocketAddr>) + Send + Sync>;
/// Called for every file refused or failed, with what its sender was told.
pub type RefusalHandler = Arc<dyn Fn(&FileInfo, &Refused) + Send + Sync>;

/// Everything a server is started from. Setters return `&mut Self` so they chain.
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) dir: PathBuf,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) header_timeout: Duration,
    pub(crate) raise_fd_limit: bool,
    pub(crate) max_decoders: usize,
    pub(crate) hash_budget: u64,
    pub(crate) mode_mask: u32,
    pub(crate) max_file_size: Option<u64>,
    pub(crate) reserve_bytes: u64,
    pub(crate) overwrite: Overwrite,
    pub(crate) resume_ttl: Duration,
    pub(crate) compression: bool,
    pub(crate) before: Vec<Validator>,
    pub(crate) after: Vec<Validator>,
    pub(crate) handlers: Vec<Handler>,
    pub(crate) on_error: Vec<ErrorHandler>,
    pub(crate) on_refused: Vec<RefusalHandler>,
    /// TLS, authentication and confinement (setters in `secure_setters.rs`).
    pub(crate) security: Security,
    /// Where verified files go instead of `dir`, which then spools their content.
    pub(crate) objects: Option<Arc<dyn ObjectStore>>,
    /// An S3 bucket to open at start as the object store.
    pub(crate) s3: Option<crate::storage::S3Config>,
    /// Capability bits never granted, to act as a receiver of an earlier release (tests only,
    /// through `internals::withhold_capabilities`).
    pub(crate) withheld_caps: u32,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("dir", &self.dir)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("max_file_size", &self.max_file_size)
            .field("reserve_bytes", &self.reserve_bytes)
            .field("overwrite", &self.overwrite)
            .field("resume_ttl", &self.resume_ttl)
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Checks every setting's range; each range is checked here and nowhere else.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(Error::invalid(format!(
                "max connections must be 1 to {MAX_CONNECTIONS}, not {}",
                self.max_connections
            )));
        }
        check_duration("idle timeout", self.idle_timeout, MAX_TIMEOUT)?;
        check_duration("header timeout", self.header_timeout, MAX_TIMEOUT)?;
        if self.resume_ttl > MAX_RESUME_TTL {
            return Err(Error::invalid(format!(
                "resume time must be at most {} s",
                MAX_RESUME_TTL.as_secs()
            )));
        }
        if self.mode_mask > 0o7777 {
            return Err(Error::invalid(format!(
                "mode mask {:o} has bits beyond 0o7777",
                self.mode_mask
            )));
        }
        if self.has_object_store() && self.overwrite == Overwrite::Rename {
            return Err(Error::invalid(
                "keeping both files (overwrite: rename) is not supported with an object store",
            ));
        }
        Ok(())
    }

    fn has_object_store(&self) -> bool {
        self.s3.is_some() || self.objects.is_some()
    }

    /// A server that stores into `dir`, on 0.0.0.0 and an ephemeral port, with kn-sock's
    /// defaults otherwise.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            dir: dir.into(),
            host: "0.0.0.0".into(),
            port: 0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            raise_fd_limit: true,
            max_decoders: DEFAULT_MAX_DECODERS,
            hash_budget: DEFAULT_HASH_BUDGET,
            mode_mask: DEFAULT_MODE_MASK,
            max_file_size: None,
            reserve_bytes: 0,
            overwrite: Overwrite::Replace,
            resume_ttl: Duration::ZERO,
            compression: true,
            before: Vec::new(),
            after: Vec::new(),
            handlers: Vec::new(),
            on_error: Vec::new(),
            on_refused: Vec::new(),
            security: Security::default(),
            objects: None,
            s3: None,
            withheld_caps: 0,
        }
    }

    /// The directory received files go to (it must exist).
    pub fn dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.dir = dir.into();
        self
    }
    /// Stores verified files in `store` (an S3 bucket, see `S3Store`) instead of the
    /// directory, which then holds only the content on its way there (and, with a resume time,
    /// interrupted uploads' data). A file appears in the store only whole and verified; the
    /// sender's OK comes once the store acknowledged it. Disk-space checks do not apply; the
    /// maximum file size does.
    pub fn object_store(&mut self, store: Arc<dyn ObjectStore>) -> &mut Self {
        self.objects = Some(store);
        self
    }
    /// The address to listen on (default `0.0.0.0`).
    pub fn host(&mut self, host: impl Into<String>) -> &mut Self {
        self.host = host.into();
        self
    }
    /// 0 picks an ephemeral port; [`Server::local_addr`](crate::Server::local_addr) tells which.
    pub fn port(&mut self, port: u16) -> &mut Self {
        self.port = port;
        self
    }
    /// Connections served at once (default 65,536; the descriptor limit may lower it, see
    /// docs/operations.md); a sender over it is answered "receiver busy" and retries later.
    pub fn max_connections(&mut self, n: usize) -> &mut Self {
        self.max_connections = n;
        self
    }
    /// How long a connection may make no progress before it is dropped.
    pub fn idle_timeout(&mut self, t: Duration) -> &mut Self {
        self.idle_timeout = t;
        self
    }
    /// How long a whole frame, and the content of a small file sent eagerly, may take to
    /// arrive (default 10 s): a peer that drips bytes is cut off after this, whatever the idle
    /// timeout.
    pub fn header_timeout(&mut self, t: Duration) -> &mut Self {
        self.header_timeout = t;
        self
    }
    /// At start, raise the process's soft limit on open descriptors to its hard limit, as
    /// servers commonly do (default: yes). Either way, how many verified files a connection
    /// holds for a group commit is sized by the limit in force, so honest batches never run out.
    pub fn raise_fd_limit(&mut self, yes: bool) -> &mut Self {
        self.raise_fd_limit = yes;
        self
    }
    /// Connections that may decode zstd at once (default 16; each may need an 8 MiB window).
    /// Past that, new connections are not offered compression and their senders send raw.
    pub fn max_decoders(&mut self, n: usize) -> &mut Self {
        self.max_decoders = n;
        self
    }
    /// Bytes of stored files one connection may make the receiver hash to check whether it
    /// already holds an offered file (default 64 GiB). Past that, offers are answered as if the
    /// file had changed, so its content flows. A file's digest is remembered while it does not
    /// change, so offering it again costs nothing.
    pub fn hash_budget(&mut self, bytes: u64) -> &mut Self {
        self.hash_budget = bytes;
        self
    }
    /// The permission bits a received file may keep of those its sender gave (default 0o755: no
    /// setuid, setgid or sticky bit, no write for group or others). A sender's mode of 0 gives
    /// 0o644 before the mask.
    pub fn mode_mask(&mut self, mask: u32) -> &mut Self {
        self.mode_mask = mask;
        self
    }
    /// The largest file accepted (`None`: no limit).
    pub fn max_file_size(&mut self, bytes: Option<u64>) -> &mut Self {
        self.max_file_size = bytes;
        self
    }
    /// Free space that must remain after a file is stored.
    pub fn reserve_bytes(&mut self, bytes: u64) -> &mut Self {
        self.reserve_bytes = bytes;
        self
    }
    /// What to do when a file of the same name exists.
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
    /// Adds a handler called once per file stored, after the sender was told (see [`Handler`]).
    pub fn on_received(&mut self, f: impl Fn(&FileInfo) + Send + Sync + 'static) -> &mut Self {
        self.handlers.push(Arc::new(f));
        self
    }
    /// Adds a handler called for every connection or file that failed (see [`ErrorHandler`]).
    pub fn on_error(
        &mut self,
        f: impl Fn(&Error, Option<SocketAddr>) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_error.push(Arc::new(f));
        self
    }
    /// Adds a handler called for every file not stored, with its code and reason, on the
    /// connection's worker thread (the error handlers hear of it too, as an error whose
    /// `peer_reason` is the same code and text). For logs that need the file's size, identity
    /// or duration.
    pub fn on_refused(
        &mut self,
        f: impl Fn(&FileInfo, &Refused) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_refused.push(Arc::new(f));
        self
    }
}

/// A duration above zero and at most `max`.
pub fn check_duration(what: &str, d: Duration, max: Duration) -> Result<()> {
    if d.is_zero() || d > max {
        return Err(Error::invalid(format!(
            "{what} must be above 0 and at most {} s",
            max.as_secs()
        )));
    }
    Ok(())
}
