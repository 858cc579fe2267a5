//! The sending side: `send_file` connects, offers the file, streams it with its checksum, and
//! succeeds only on the receiver's OK (verified, durable, in place).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use xxhash_rust::xxh3::Xxh3;

use crate::compress::Compressor;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, check_name, Offer, ALGO_XXH3_128};

pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;
pub const MAX_CHUNK_SIZE: usize = 64 * 1024 * 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Called after each chunk with (file name, bytes sent, total bytes); return `false` to abort
/// the transfer with [`ErrorKind::AbortedByCallback`].
pub type ProgressFn = Arc<dyn Fn(&str, u64, u64) -> bool + Send + Sync>;

/// Where a batch stands, for [`SendOptions::batch_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress<'a> {
    /// The file being sent, as the receiver will name it.
    pub name: &'a str,
    /// Its place in the list (from 0), and how many files the list has.
    pub index: usize,
    pub count: usize,
    /// Bytes of this file sent so far, and its size.
    pub file_sent: u64,
    pub file_total: u64,
    /// Bytes of the whole list dealt with so far (earlier files count whole whether they were
    /// sent, skipped or failed), and the list's size. `sent == total` at the last call when
    /// every file was sent or skipped.
    pub sent: u64,
    pub total: u64,
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
    pub connect_timeout: Duration,
    /// Draw a progress bar on stderr.
    pub show_progress: bool,
    /// The name to store the file under on the receiver (may contain `/`); default: the file's
    /// base name.
    pub remote_name: Option<String>,
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
    /// Skip files the receiver already holds with the same size and checksum (the backup case):
    /// each file is hashed before it is offered, and an identical one is not sent.
    pub skip_unchanged: bool,
    /// In a batch, stop offering files after the first one that fails.
    pub stop_on_error: bool,
    /// Speak kn-sock 0.3's protocol (`name`, `size`, raw bytes), to reach an existing kn-sock
    /// 0.3 server. That protocol has no checksum and no acknowledgement: success means every
    /// byte was written and the server then closed the connection, as kn-sock does once it has
    /// them all; nothing more can be known.
    pub legacy: bool,
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
            stop_on_error: false,
            legacy: false,
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
            .finish()
    }
}

impl SendOptions {
    pub fn validate(&self) -> Result<()> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::invalid(format!(
                "chunk size must be 1 to {MAX_CHUNK_SIZE} bytes, not {}",
                self.chunk_size
            )));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::invalid("timeouts must be above zero"));
        }
        Ok(())
    }
}

/// Lets another thread cancel a transfer: the transfer ends with [`ErrorKind::Cancelled`], its
/// connection is shut down, and the receiver keeps no file.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    stream: Mutex<Option<TcpStream>>,
    wake: Condvar,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let stream = self.0.stream.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stream.as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.0.wake.notify_all();
    }

    /// Waits `d` unless cancelled first; `false` when cancelled.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut guard = self.0.stream.lock().unwrap_or_else(|e| e.into_inner());
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

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    fn attach(&self, stream: &TcpStream) -> Result<()> {
        let clone = stream
            .try_clone()
            .map_err(|e| Error::io("cloning the socket", e))?;
        *self.0.stream.lock().unwrap_or_else(|e| e.into_inner()) = Some(clone);
        self.check()
    }

    /// Lets go of the connection once the transfer is over.
    fn detach(&self) {
        self.0
            .stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, "transfer cancelled"));
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
    pub bytes: u64,
    pub elapsed: Duration,
    /// Where the content started in the attempt that succeeded: above 0 when the receiver
    /// still had the data of an interrupted attempt.
    pub resumed_from: u64,
    /// Connections it took (1 without retries).
    pub attempts: u32,
    /// The receiver already held this exact file (with `skip_unchanged`): nothing was sent.
    pub skipped: bool,
}

/// Sends one file and returns once the receiver has it verified, durable and in place.
pub fn send_file(
    host: &str,
    port: u16,
    path: impl AsRef<Path>,
    opts: &SendOptions,
) -> Result<SendReport> {
    opts.validate()?;
    retrying(opts, |attempt| {
        send_file_once(host, port, path.as_ref(), opts).map(|r| SendReport {
            attempts: attempt,
            ..r
        })
    })
}

/// Runs `attempt(n)` for n = 1, 2, … while it fails in a retryable way and retries are left,
/// with [`backoff`] between attempts.
pub(crate) fn retrying<T>(
    opts: &SendOptions,
    mut attempt: impl FnMut(u32) -> Result<T>,
) -> Result<T> {
    let mut delay = opts.retry_delay;
    for n in 1.. {
        match attempt(n) {
            Err(e) if n <= opts.retries && retryable(&e) => backoff(opts, &mut delay)?,
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

/// Waits `delay` (cut short by cancellation, then `Err(Cancelled)`) and doubles it, up to a
/// minute.
pub(crate) fn backoff(opts: &SendOptions, delay: &mut Duration) -> Result<()> {
    let slept = match &opts.cancel {
        Some(c) => c.sleep(*delay),
        None => {
            std::thread::sleep(*delay);
            true
        }
    };
    *delay = (*delay * 2).min(Duration::from_secs(60));
    match slept {
        true => Ok(()),
        false => Err(Error::new(ErrorKind::Cancelled, "transfer cancelled")),
    }
}

/// Whether a new connection may cure the failure.
pub(crate) fn retryable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::Io
            | ErrorKind::Protocol
            | ErrorKind::Integrity
    ) && e
        .peer_reason()
        .is_none_or(|p| p.code == protocol::Code::Checksum as u16)
}

fn send_file_once(host: &str, port: u16, path: &Path, opts: &SendOptions) -> Result<SendReport> {
    // Open first: a missing file is reported as such, without a connection.
    let (file, offer) = open_source(path, opts.remote_name.as_deref())?;
    let mut once = Some((file, offer));
    with_connection(host, port, opts, |stream| {
        if opts.legacy {
            let (mut file, offer) = once.take().expect("opened above");
            return send_legacy(&mut file, stream, offer, opts);
        }
        let sizes = [once.as_ref().map_or(0, |(_, o)| o.size)];
        let mut open = |_| once.take().ok_or_else(|| Error::invalid("one file only"));
        let mut results = crate::batch::run(stream, &sizes, &mut open, opts);
        results.pop().expect("one result per file")
    })
}

/// Connects (and registers the cancel token), runs `f` on the stream, and reports a failure
/// caused by cancellation as [`ErrorKind::Cancelled`].
pub(crate) fn with_connection<T>(
    host: &str,
    port: u16,
    opts: &SendOptions,
    f: impl FnOnce(&TcpStream) -> Result<T>,
) -> Result<T> {
    opts.validate()?;
    if host.is_empty() {
        return Err(Error::invalid("host is empty"));
    }
    let stream = connect(host, port, opts)?;
    let result = match &opts.cancel {
        Some(c) => c.attach(&stream).and_then(|()| f(&stream)),
        None => f(&stream),
    };
    if let Some(c) = &opts.cancel {
        c.detach();
        if c.is_cancelled() && matches!(&result, Err(e) if e.kind() != ErrorKind::Cancelled) {
            return Err(Error::new(ErrorKind::Cancelled, "transfer cancelled"));
        }
    }
    result
}

/// kn-sock 0.3's upload: `name\n`, `size\n`, the bytes; then wait for the server to close.
fn send_legacy(
    file: &mut File,
    mut stream: &TcpStream,
    offer: Offer,
    opts: &SendOptions,
) -> Result<SendReport> {
    let started = Instant::now();
    let head = format!("{}\n{}\n", offer.name, offer.size);
    stream
        .write_all(head.as_bytes())
        .map_err(|e| Error::io("sending the kn-sock header", e))?;
    let bar = opts.show_progress.then(|| progress_bar(offer.size, 1));
    stream_content(file, &mut stream, &offer, 0, opts, bar.as_ref())?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| Error::io("finishing the upload", e))?;
    let mut sink = [0u8; 512];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("waiting for the kn-sock server to close", e)),
        }
    }
    Ok(SendReport {
        stored_name: offer.name,
        bytes: offer.size,
        elapsed: started.elapsed(),
        resumed_from: 0,
        attempts: 1,
        skipped: false,
    })
}

/// Opens the local file and describes it for the OFFER.
pub(crate) fn open_source(path: &Path, remote_name: Option<&str>) -> Result<(File, Offer)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("{}: no such file", path.display()),
        ),
        _ => Error::io(path.display(), e),
    })?;
    let meta = file.metadata().map_err(|e| Error::io(path.display(), e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let name = match remote_name {
        Some(n) => n.to_string(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::invalid(format!("{}: file name is not UTF-8", path.display())))?
            .to_string(),
    };
    check_name(&name).map_err(|why| Error::invalid(format!("remote name {name:?}: {why}")))?;
    let (mtime_secs, mtime_nanos) = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(d)) => (d.as_secs() as i64, d.subsec_nanos()),
        Ok(Err(before)) => (-(before.duration().as_secs() as i64), 0),
        Err(_) => (0, 0),
    };
    use std::os::unix::fs::PermissionsExt;
    let offer = Offer {
        size: meta.len(),
        mtime_secs,
        mtime_nanos,
        mode: meta.permissions().mode() & 0o7777,
        algorithm: ALGO_XXH3_128,
        name,
        digest: Vec::new(),
        encoding: protocol::ENCODING_RAW,
    };
    Ok((file, offer))
}

/// Connects to the first address of `host` that answers, within the connect timeout.
fn connect(host: &str, port: u16, opts: &SendOptions) -> Result<TcpStream> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::new(ErrorKind::Connect, format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, opts.connect_timeout) {
            Ok(s) => {
                s.set_nodelay(true)
                    .and_then(|_| s.set_read_timeout(Some(opts.timeout)))
                    .and_then(|_| s.set_write_timeout(Some(opts.timeout)))
                    .map_err(|e| Error::io("configuring the socket", e))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    let mut err = Error::io(format!("cannot connect to {host}:{port}"), e);
    if err.kind() != ErrorKind::Timeout {
        err = Error::new(ErrorKind::Connect, err.message());
    }
    Err(err)
}

/// Streams the content from `offset` on (where the receiver resumes; the bytes before it are
/// only hashed), raw or compressed as `offer.encoding` says, and returns the XXH3-128 of the
/// whole original content.
pub(crate) fn stream_content(
    file: &mut File,
    stream: &mut impl Write,
    offer: &Offer,
    offset: u64,
    opts: &SendOptions,
    bar: Option<&ProgressBar>,
) -> Result<u128> {
    if offer.encoding != protocol::ENCODING_ZSTD {
        return copy_content(file, stream, offer, offset, opts, bar);
    }
    let compressing = |e| Error::io("compressing", e);
    let mut z = Compressor::new(&mut *stream).map_err(compressing)?;
    let digest = copy_content(file, &mut z, offer, offset, opts, bar)?;
    z.finish().map_err(|e| Error::io("sending data", e))?;
    Ok(digest)
}

/// The content, written as it is to `stream`.
fn copy_content(
    file: &mut File,
    stream: &mut impl Write,
    offer: &Offer,
    offset: u64,
    opts: &SendOptions,
    bar: Option<&ProgressBar>,
) -> Result<u128> {
    let mut buf = vec![0u8; opts.chunk_size.min(offer.size.max(1) as usize)];
    let mut hasher = Xxh3::new();
    let mut sent = 0u64;
    while sent < offset {
        let want = buf.len().min((offset - sent) as usize);
        let n = read_some(file, &mut buf[..want], &offer.name)?;
        hasher.update(&buf[..n]);
        sent += n as u64;
    }
    if let Some(b) = bar {
        b.inc(offset);
    }
    report_progress(opts, &offer.name, sent, offer.size)?;
    while sent < offer.size {
        let want = buf.len().min((offer.size - sent) as usize);
        let n = read_some(file, &mut buf[..want], &offer.name)?;
        hasher.update(&buf[..n]);
        stream
            .write_all(&buf[..n])
            .map_err(|e| Error::io("sending data", e))?;
        sent += n as u64;
        if let Some(b) = bar {
            b.inc(n as u64);
        }
        report_progress(opts, &offer.name, sent, offer.size)?;
    }
    Ok(hasher.digest128())
}

/// Whether the start of the file compresses well enough to send it compressed; the file is
/// left positioned at its start.
pub(crate) fn compresses(file: &mut File, offer: &Offer) -> Result<bool> {
    let mut sample = vec![0u8; crate::compress::SAMPLE.min(offer.size as usize)];
    let n = read_some(file, &mut sample, &offer.name).or_else(|e| match sample.is_empty() {
        true => Ok(0),
        false => Err(e),
    })?;
    file.seek(io::SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("reading {}", offer.name), e))?;
    Ok(crate::compress::worth_compressing(&sample[..n]))
}

/// The XXH3-128 of the whole file, which is left positioned at its start.
pub(crate) fn digest_of(file: &mut File, offer: &Offer) -> Result<Vec<u8>> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = offer.size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = read_some(file, &mut buf[..want], &offer.name)?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    file.seek(io::SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("reading {}", offer.name), e))?;
    Ok(hasher.digest128().to_be_bytes().to_vec())
}

/// One read of the source; the end of the file before its announced size is an error.
fn read_some(file: &mut File, buf: &mut [u8], name: &str) -> Result<usize> {
    loop {
        return match file.read(buf) {
            Ok(0) => Err(Error::new(
                ErrorKind::Io,
                format!("{name}: file shrank while being sent"),
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(Error::io(format!("reading {name}"), e)),
        };
    }
}

fn report_progress(opts: &SendOptions, name: &str, sent: u64, total: u64) -> Result<()> {
    if let Some(c) = &opts.cancel {
        c.check()?;
    }
    match &opts.progress {
        Some(cb) if !cb(name, sent, total) => Err(aborted_by_callback()),
        _ => Ok(()),
    }
}

/// The error of a transfer a progress callback stopped.
pub(crate) fn aborted_by_callback() -> Error {
    Error::new(
        ErrorKind::AbortedByCallback,
        "transfer aborted by the progress callback",
    )
}

/// One bar for the whole transfer (all files), the current file as its message.
pub(crate) fn progress_bar(total_bytes: u64, files: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    let template = match files {
        1 => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        _ => "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
