//! The sending side's entry points: [`send_file`] and [`send_files`] connect, run a session,
//! and retry with backoff what a new connection may cure; [`send_files_to_many`] does the
//! latter for several receivers at once (`fanout.rs`).

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::protocol;
use crate::tls::{self, TlsStream};
use crate::transport::Link;
use crate::walk::Source;

mod content;
mod delta;
mod fanout;
mod legacy;
mod options;
mod pipeline;
mod progress;
mod session;
mod window;

pub use options::{
    check_chunk_size, check_timeout, BatchProgress, BatchProgressFn, CancelToken, ProgressFn,
    SendOptions, SendReport, DEFAULT_CHUNK_SIZE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT,
    MAX_CHUNK_SIZE,
};

pub use fanout::{
    send_files_to_many, ManyReport, Receiver, ReceiverOutcome, FANOUT_WINDOW_BYTES,
};

use content::{open_reader, open_source, Reader};
use options::cancelled;
use protocol::Offer;

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
        false => Err(cancelled()),
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
    ) && e.peer_reason().is_none_or(|p| {
        // The receiver's own account of a broken transfer (corruption, a cut or stalled
        // connection) may be cured by a new connection; a refusal never is.
        use protocol::Code;
        [Code::Checksum, Code::Protocol, Code::Timeout]
            .iter()
            .any(|c| p.code == *c as u16)
    })
}

fn send_file_once(host: &str, port: u16, path: &Path, opts: &SendOptions) -> Result<SendReport> {
    // Open first: a missing file is reported as such, without a connection.
    let (file, offer) = open_source(path, opts.remote_name.as_deref())?;
    let mut once = Some((file, offer));
    with_connection(host, port, opts, |stream| {
        if let (Link::Plain(stream), true) = (&stream, opts.legacy) {
            let (mut file, offer) = once.take().expect("opened above");
            return legacy::send_legacy(&mut file, stream, offer, opts);
        }
        let sizes = [once.as_ref().map_or(0, |(_, o)| o.size)];
        // Opened again only to resend it in full after a delta whose old copy changed.
        let mut open = |_| match once.take() {
            Some((file, offer)) => Ok((Box::new(file) as Reader, offer)),
            None => open_reader(path, opts.remote_name.as_deref()),
        };
        let mut results = session::run(stream, &sizes, &mut open, opts);
        results.pop().expect("one result per file")
    })
}

/// Connects (and registers the cancel token, which shuts the TCP socket down under TLS too),
/// secures the connection when `opts.tls` asks, runs `f` on it, and reports a failure caused by
/// cancellation as [`ErrorKind::Cancelled`].
pub(crate) fn with_connection<T>(
    host: &str,
    port: u16,
    opts: &SendOptions,
    f: impl FnOnce(Link<TlsStream>) -> Result<T>,
) -> Result<T> {
    opts.validate()?;
    if host.is_empty() {
        return Err(Error::invalid("host is empty"));
    }
    let stream = connect(host, port, opts)?;
    let secure_then_f = |stream: TcpStream| {
        let link = match &opts.tls {
            None => Link::Plain(stream),
            Some(tls) => Link::Secure(tls::connect(stream, host, tls)?),
        };
        f(link)
    };
    let result = match &opts.cancel {
        // Registered under its own id: the sends of a fan-out share one token.
        Some(c) => c.attach(&stream).and_then(|id| {
            let r = secure_then_f(stream);
            c.detach(id);
            r
        }),
        None => secure_then_f(stream),
    };
    if let Some(c) = &opts.cancel {
        if c.is_cancelled() && matches!(&result, Err(e) if e.kind() != ErrorKind::Cancelled) {
            return Err(cancelled());
        }
    }
    result
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

/// What happened to one file of a batch.
#[derive(Debug)]
pub struct FileOutcome {
    pub source: Source,
    pub result: Result<SendReport>,
}

/// The outcome of [`send_files`]: one entry per source, in order.
#[derive(Debug)]
pub struct BatchReport {
    pub files: Vec<FileOutcome>,
    pub elapsed: std::time::Duration,
}

impl BatchReport {
    pub fn delivered(&self) -> usize {
        self.files.iter().filter(|f| f.result.is_ok()).count()
    }

    pub fn failed(&self) -> usize {
        self.files.len() - self.delivered()
    }

    pub fn first_error(&self) -> Option<&Error> {
        self.files.iter().find_map(|f| f.result.as_ref().err())
    }
}

/// Sends every source over one connection, pipelined, and returns each file's outcome. A file
/// that is refused does not stop the others unless `opts.stop_on_error`. `Err` only when no
/// file could be attempted (the connection or the hello failed).
pub fn send_files(
    host: &str,
    port: u16,
    sources: &[Source],
    opts: &SendOptions,
) -> Result<BatchReport> {
    let open = |i: usize| open_reader(&sources[i].path, Some(&sources[i].name));
    send_batch(host, port, sources, opts, &open)
}

/// [`send_files`] with the sources' content read through `open(i)` (source `i`'s reader and
/// OFFER), and its retries: each attempt is one connection for the files still to do; a retry
/// takes only those that failed in a way a new connection may cure.
pub(crate) fn send_batch(
    host: &str,
    port: u16,
    sources: &[Source],
    opts: &SendOptions,
    open: &dyn Fn(usize) -> Result<(Reader, Offer)>,
) -> Result<BatchReport> {
    let started = Instant::now();
    let mut results: Vec<Option<Result<SendReport>>> = sources.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = (0..sources.len()).collect();
    let mut delay = opts.retry_delay;
    for attempt in 1.. {
        let sizes: Vec<u64> = todo.iter().map(|&i| sources[i].size).collect();
        let mut open_k = |k: usize| open(todo[k]);
        let outcome = with_connection(host, port, opts, |stream| {
            Ok(session::run(stream, &sizes, &mut open_k, opts))
        });
        let retry_left = attempt <= opts.retries;
        match outcome {
            Err(e) if retry_left && retryable(&e) => {}
            Err(e) if attempt == 1 => return Err(e),
            Err(e) => {
                for &i in &todo {
                    results[i] = Some(Err(e.duplicate()));
                }
                break;
            }
            Ok(round) => {
                for (&i, r) in todo.iter().zip(round) {
                    results[i] = Some(r.map(|r| SendReport {
                        attempts: attempt,
                        ..r
                    }));
                }
                todo.retain(|&i| matches!(&results[i], Some(Err(e)) if retryable(e)));
            }
        }
        if todo.is_empty() || !retry_left {
            break;
        }
        if let Err(e) = backoff(opts, &mut delay) {
            for &i in &todo {
                results[i] = Some(Err(e.duplicate()));
            }
            break;
        }
    }
    let files = sources
        .iter()
        .cloned()
        .zip(results)
        .map(|(source, result)| FileOutcome {
            source,
            result: result.unwrap_or_else(|| Err(Error::new(ErrorKind::Io, "not attempted"))),
        })
        .collect();
    Ok(BatchReport {
        files,
        elapsed: started.elapsed(),
    })
}
