//! How to send: [`SendOptions`] and the range of each option, the progress callback types, the
//! [`CancelToken`], and the [`SendReport`] of a delivered file.

use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::sync::lock;
use crate::tls::{split_token, TlsOptions};

/// [`SendOptions::chunk_size`] by default: 256 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;
/// The largest [`SendOptions::chunk_size`]: 64 MiB.
pub const MAX_CHUNK_SIZE: usize = 64 * 1024 * 1024;
/// [`SendOptions::timeout`] by default: 30 s without progress.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// [`SendOptions::connect_timeout`] by default: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest idle or connect timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest first wait before a retry.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// The most retries of one transfer.
pub const MAX_RETRIES: u32 = 1000;

/// Called after each chunk with (file name, bytes sent, total bytes); return `false` to abort
/// the transfer with [`ErrorKind::AbortedByCallback`].
pub type ProgressFn = Arc<dyn Fn(&str, u64, u64) -> bool + Send + Sync>;

/// Where a batch stands, for [`SendOptions::batch_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress<'a> {
    /// The file being sent, as the receiver will name it.
    pub name: &'a str,
    /// Its place in the list (from 0).
    pub index: usize,
    /// How many files the list has.
    pub count: usize,
    /// Bytes of this file sent so far.
    pub file_sent: u64,
    /// This file's size.
    pub file_total: u64,
    /// Bytes of the whole list dealt with so far (earlier files count whole whether they were
    /// sent, skipped or failed), and the list's size. `sent == total` at the last call when
    /// every file was sent or skipped.
    pub sent: u64,
    /// The whole list's size in bytes.
    pub total: u64,
    /// Which receiver this is about: its place in the list given to
    /// [`send_files_to_many`](crate::send_files_to_many); 0 for the other sends.
    pub receiver: usize,
}

/// Called where [`ProgressFn`] is, and once for each file skipped as unchanged, with the whole
/// batch's progress; return `false` to abort like [`ProgressFn`].
pub type BatchProgressFn = Arc<dyn Fn(&BatchProgress<'_>) -> bool + Send + Sync>;

/// How to send. `SendOptions::default()` matches kn-sock's defaults: no progress bar, a 30 s
/// timeout.
#[derive(Clone)]
pub struct SendOptions {
    /// Bytes read and written per step, and the progress granularity (1 to 64 MiB).
    pub chunk_size: usize,
    /// Idle timeout: how long a read or write may make no progress.
    pub timeout: Duration,
    /// How long connecting (and the TLS handshake) may take.
    pub connect_timeout: Duration,
    /// Draw a progress bar on stderr, even when it is not a terminal (the caller decides).
    pub show_progress: bool,
    /// The name to store the file under on the receiver (may contain `/`); default: the file's
    /// base name.
    pub remote_name: Option<String>,
    /// Called with each file's progress (see [`ProgressFn`]).
    pub progress: Option<ProgressFn>,
    /// Progress of the whole list of files (also for a single file, as a list of one); not
    /// called for kn-sock 0.3 (`legacy`) sends.
    pub batch_progress: Option<BatchProgressFn>,
    /// Cancels the transfer from another thread.
    pub cancel: Option<CancelToken>,
    /// Attempts after the first when a transfer fails in a way a new connection may cure
    /// (connection lost, timeout, I/O error, corruption in transit). A receiver with resume
    /// enabled continues where its data ends.
    pub retries: u32,
    /// Wait before the first retry; it doubles with each retry, up to a minute.
    pub retry_delay: Duration,
    /// Compress with zstd when the receiver accepts it, file by file: data that does not
    /// shrink (media, archives) is sent as it is.
    pub compress: bool,
    /// Skip files the receiver already holds unchanged (the backup case). By default this is
    /// rsync's quick check: a file whose size and modification time match the receiver's copy
    /// is unchanged, and no content is read on either side. With [`checksum`](Self::checksum)
    /// the content digests are compared instead. (A receiver older than the quick check gets
    /// digests.) Off by default: every file is sent.
    pub skip_unchanged: bool,
    /// With `skip_unchanged`, compare content digests (XXH3-128, like rsync `-c`) rather than
    /// size and modification time: each file is hashed before it is offered. Off by default.
    pub checksum: bool,
    /// Delta transfer: when the receiver holds an older version of a file of at least 1 MiB,
    /// only the changed data crosses the wire (content-defined chunks of the old copy are
    /// reused). On by default; the result is verified like any other file.
    pub delta: bool,
    /// In a batch, stop offering files after the first one that fails.
    pub stop_on_error: bool,
    /// Speak kn-sock 0.3's protocol (`name`, `size`, raw bytes), to reach an existing kn-sock
    /// 0.3 server. That protocol has no checksum and no acknowledgement: success means every
    /// byte was written and the server then closed the connection, as kn-sock does once it has
    /// them all; nothing more can be known.
    pub legacy: bool,
    /// Connect with TLS 1.3 and verify the server as these options say (`None`: plain TCP).
    pub tls: Option<TlsOptions>,
    /// A token, `NAME:SECRET`, proving who we are to a server that asks (sent only inside TLS,
    /// right after the hello).
    pub token: Option<String>,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            show_progress: false,
            remote_name: None,
            progress: None,
            batch_progress: None,
            cancel: None,
            retries: 0,
            retry_delay: Duration::from_secs(1),
            compress: false,
            skip_unchanged: false,
            checksum: false,
            delta: true,
            stop_on_error: false,
            legacy: false,
            tls: None,
            token: None,
        }
    }
}

impl fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendOptions")
            .field("chunk_size", &self.chunk_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("show_progress", &self.show_progress)
            .field("remote_name", &self.remote_name)
            .field("progress", &self.progress.is_some())
            .field("batch_progress", &self.batch_progress.is_some())
            .field("legacy", &self.legacy)
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

impl SendOptions {
    /// Checks every option; each range is checked here and nowhere else.
    pub fn validate(&self) -> Result<()> {
        check_chunk_size(self.chunk_size)?;
        check_timeout(self.timeout)?;
        check_timeout(self.connect_timeout)?;
        if self.retry_delay > MAX_RETRY_DELAY {
            return Err(Error::invalid(format!(
                "retry delay must be at most {} s",
                MAX_RETRY_DELAY.as_secs()
            )));
        }
        if self.retries > MAX_RETRIES {
            return Err(Error::invalid(format!(
                "retries must be at most {MAX_RETRIES}, not {}",
                self.retries
            )));
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
            if self.legacy {
                return Err(Error::invalid("kn-sock 0.3's protocol cannot run over TLS"));
            }
        }
        if let Some(token) = &self.token {
            split_token(token)?;
            if self.tls.is_none() {
                return Err(Error::invalid("a token is sent only over TLS: set tls too"));
            }
        }
        Ok(())
    }
}

/// Lets another thread cancel a transfer: the transfer ends with [`ErrorKind::Cancelled`], its
/// connection is shut down, and the receiver keeps no file. One token may serve several
/// connections at once (the receivers of [`send_files_to_many`](crate::send_files_to_many)):
/// cancelling shuts down each of them.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// The connections in use, by the id `attach` gave them.
    streams: Mutex<Vec<(u64, TcpStream)>>,
    next_id: AtomicU64,
    wake: Condvar,
}

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every transfer using this token (from any thread): their connections are shut
    /// down, so even a blocked read or write returns at once.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let streams = self.lock_streams();
        for (_, s) in streams.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.0.wake.notify_all();
    }

    /// Waits `d` unless cancelled first; `false` when cancelled.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut guard = self.lock_streams();
        while !self.is_cancelled() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            guard = self
                .0
                .wake
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        false
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Registers a connection to shut down on cancel; returns its id for [`detach`](Self::detach).
    pub(crate) fn attach(&self, stream: &TcpStream) -> Result<u64> {
        let clone = stream
            .try_clone()
            .map_err(|e| Error::io("cloning the socket", e))?;
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_streams().push((id, clone));
        // Checked after registering: a cancel from now on shuts the connection down.
        self.check().inspect_err(|_| self.detach(id))?;
        Ok(id)
    }

    /// Lets go of connection `id` once its transfer is over.
    pub(crate) fn detach(&self, id: u64) {
        self.lock_streams().retain(|(i, _)| *i != id);
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, Vec<(u64, TcpStream)>> {
        lock(&self.0.streams)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(cancelled());
        }
        Ok(())
    }
}

/// What a successful send did.
#[derive(Debug, Clone)]
pub struct SendReport {
    /// The name the receiver stored the file under (differs from the offered one under a
    /// keep-both policy).
    pub stored_name: String,
    /// The file's size.
    pub bytes: u64,
    /// From the first connection attempt to the receiver's verdict.
    pub elapsed: Duration,
    /// Where the content started in the attempt that succeeded: above 0 when the receiver
    /// still had the data of an interrupted attempt.
    pub resumed_from: u64,
    /// Connections it took (1 without retries).
    pub attempts: u32,
    /// The receiver already held this exact file (with `skip_unchanged`): nothing was sent.
    pub skipped: bool,
    /// Content bytes that crossed the wire for this file (after compression, frames
    /// included for a delta); 0 when skipped.
    pub bytes_sent: u64,
    /// Bytes of the file the receiver took from its old copy (a delta) or from a kept partial
    /// upload (a resume) rather than from the wire.
    pub bytes_reused: u64,
}

/// The chunk size's range: 1 to [`MAX_CHUNK_SIZE`] bytes.
pub fn check_chunk_size(bytes: usize) -> Result<()> {
    if bytes == 0 || bytes > MAX_CHUNK_SIZE {
        return Err(Error::invalid(format!(
            "chunk size must be 1 to {MAX_CHUNK_SIZE} bytes, not {bytes}"
        )));
    }
    Ok(())
}

/// A timeout's range: above zero, at most a day.
pub fn check_timeout(t: Duration) -> Result<()> {
    if t.is_zero() {
        return Err(Error::invalid("timeouts must be above zero"));
    }
    if t > MAX_TIMEOUT {
        return Err(Error::invalid(format!(
            "timeouts must be at most {} s",
            MAX_TIMEOUT.as_secs()
        )));
    }
    Ok(())
}

/// The error of a transfer a progress callback stopped.
pub(crate) fn aborted_by_callback() -> Error {
    Error::new(
        ErrorKind::AbortedByCallback,
        "transfer aborted by the progress callback",
    )
}

/// The error of a cancelled transfer.
pub(crate) fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "transfer cancelled")
}
