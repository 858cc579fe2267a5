//! How to fetch: [`FetchOptions`], and what came of it: [`FetchReport`], one [`FetchedFile`]
//! per listed file.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::send::{CancelToken, SendOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
use crate::tls::TlsOptions;

/// Called after each piece of a file's content with (name as listed, bytes received, size);
/// return `false` to abort the fetch with [`ErrorKind::AbortedByCallback`](crate::ErrorKind).
pub type FetchProgressFn = Arc<dyn Fn(&str, u64, u64) -> bool + Send + Sync>;

/// Called once for each listed file, as soon as its outcome is known (fetched, unchanged, or
/// failed), on the fetching thread.
pub type FetchedFn = Arc<dyn Fn(&FetchedFile) + Send + Sync>;

/// How to fetch. `FetchOptions::default()`: one file or directory per name as given, no
/// recursion, every listed file fetched, a 30 s timeout, mode mask 0o755.
#[derive(Clone)]
pub struct FetchOptions {
    /// A requested directory brings every regular file beneath it.
    pub recursive: bool,
    /// Globs a listed name must match (any of them; none: every name), as `send-file`'s.
    pub include: Vec<String>,
    /// Globs that leave a listed name out.
    pub exclude: Vec<String>,
    /// Leave files that are already here unchanged: by size and modification time (the quick
    /// check), or by content digest with [`checksum`](Self::checksum).
    pub skip_unchanged: bool,
    /// With `skip_unchanged`, compare XXH3-128 digests instead of size and modification time.
    pub checksum: bool,
    /// Keep the data of a file whose fetch was cut short (a lost connection, a timeout, a
    /// cancel) hidden beside its final name (`.knsock-partial-…`), so that a retry or a later
    /// fetch of the same file (same name, size and modification time on the server) resumes
    /// where it ends; the whole file is still verified against the server's digest. Off by
    /// default: an interrupted fetch leaves nothing behind (rsync's `--partial`).
    pub partial: bool,
    /// Permission bits a fetched file may get: the server's mode within this mask (0o755 by
    /// default: no setuid, setgid or sticky bit, no write for group or others).
    pub mode_mask: u32,
    /// Idle timeout: how long a read or write may make no progress.
    pub timeout: Duration,
    /// How long connecting (and the TLS handshake) may take.
    pub connect_timeout: Duration,
    /// Attempts after the first when the fetch fails in a way a new connection may cure; files
    /// already fetched are not fetched again.
    pub retries: u32,
    /// Wait before the first retry; it doubles with each retry, up to a minute.
    pub retry_delay: Duration,
    /// Connect with TLS 1.3 and verify the server as these options say (`None`: plain TCP).
    pub tls: Option<TlsOptions>,
    /// A token, `NAME:SECRET`, proving who we are (sent only inside TLS).
    pub token: Option<String>,
    /// Cancels the fetch from another thread.
    pub cancel: Option<CancelToken>,
    /// Each file's progress (see [`FetchProgressFn`]).
    pub progress: Option<FetchProgressFn>,
    /// Each file's outcome as it is known (see [`FetchedFn`]).
    pub on_file: Option<FetchedFn>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            recursive: false,
            include: Vec::new(),
            exclude: Vec::new(),
            skip_unchanged: false,
            checksum: false,
            partial: false,
            mode_mask: 0o755,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: 0,
            retry_delay: Duration::from_secs(1),
            tls: None,
            token: None,
            cancel: None,
            progress: None,
            on_file: None,
        }
    }
}

impl fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOptions")
            .field("recursive", &self.recursive)
            .field("include", &self.include)
            .field("exclude", &self.exclude)
            .field("skip_unchanged", &self.skip_unchanged)
            .field("checksum", &self.checksum)
            .field("partial", &self.partial)
            .field("mode_mask", &self.mode_mask)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .finish_non_exhaustive()
    }
}

impl FetchOptions {
    /// The connection's part, as the sending side's options (which check their own ranges).
    pub(crate) fn connection(&self) -> SendOptions {
        SendOptions {
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            retries: self.retries,
            retry_delay: self.retry_delay,
            tls: self.tls.clone(),
            token: self.token.clone(),
            cancel: self.cancel.clone(),
            ..SendOptions::default()
        }
    }

    pub(crate) fn mask(&self) -> u32 {
        self.mode_mask
    }

    /// Checks every option.
    pub fn validate(&self) -> Result<()> {
        self.connection().validate()?;
        if self.mode_mask > 0o7777 {
            return Err(Error::invalid(format!(
                "mode mask {:o} has bits beyond 0o7777",
                self.mode_mask
            )));
        }
        if self.include.len() + self.exclude.len() > crate::protocol::FETCH_MAX_FILTERS {
            return Err(Error::invalid(format!(
                "at most {} include and exclude patterns",
                crate::protocol::FETCH_MAX_FILTERS
            )));
        }
        for g in self.include.iter().chain(&self.exclude) {
            glob::Pattern::new(g).map_err(|e| Error::invalid(format!("bad pattern {g:?}: {e}")))?;
        }
        Ok(())
    }
}

/// What happened to a fetched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStatus {
    /// Received, verified, durable and in place.
    Fetched,
    /// Already here unchanged (`skip_unchanged`): nothing was received.
    Unchanged,
}

/// One file the server listed.
#[derive(Debug)]
pub struct FetchedFile {
    /// Its name on the server, relative to what the client may read there.
    pub name: String,
    /// Where it is (or would have been) put locally; `None` when its name was refused.
    pub path: Option<PathBuf>,
    /// Its size in bytes.
    pub size: u64,
    /// Fetched or unchanged, or why not.
    pub result: Result<FetchStatus>,
    /// Bytes of its content that came over the network in the last attempt (raw content, or a
    /// delta's literal data); 0 when it was not fetched.
    pub transferred: u64,
    /// Bytes of it taken from the local old copy by a delta (docs/protocol.md section 3.4).
    pub reused: u64,
}

/// A requested name that gave nothing to fetch.
#[derive(Debug)]
pub struct MissingName {
    /// The name as it was requested.
    pub name: String,
    /// Why: no such file, a name the rules refuse, a directory without recursion.
    pub error: Error,
}

/// The outcome of [`fetch_files`](crate::fetch_files).
#[derive(Debug)]
pub struct FetchReport {
    /// One entry per listed file, in list order.
    pub files: Vec<FetchedFile>,
    /// Requested names that gave nothing (no such file, a refused name), in request order.
    pub missing: Vec<MissingName>,
    /// The whole fetch, retries included.
    pub elapsed: Duration,
    /// Connections made.
    pub attempts: u32,
}

impl FetchReport {
    /// Files fetched or found unchanged.
    pub fn delivered(&self) -> usize {
        self.files.iter().filter(|f| f.result.is_ok()).count()
    }

    /// Files found unchanged.
    pub fn unchanged(&self) -> usize {
        let same = |f: &&FetchedFile| matches!(f.result, Ok(FetchStatus::Unchanged));
        self.files.iter().filter(same).count()
    }

    /// Files that failed, and requested names that gave nothing.
    pub fn failed(&self) -> usize {
        self.files.len() - self.delivered() + self.missing.len()
    }

    /// The first error: a requested name that gave nothing, else the first file that failed.
    pub fn first_error(&self) -> Option<&Error> {
        let file = || self.files.iter().find_map(|f| f.result.as_ref().err());
        self.missing.first().map(|m| &m.error).or_else(file)
    }
}
