//! Fan-out: [`send_files_to_many`] sends the same sources to several receivers at once, one
//! connection (and thread) per receiver, each a `send_files` with its own
//! decisions and retries. Only the reading of the files is shared, through a bounded
//! [`Window`]: each file is read once while the receivers keep up with one another.

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::batch::{send_batch, BatchReport};
use super::content::{open_source, Reader};
use super::options::SendOptions;
use super::window::Window;
use crate::error::{Error, Result};
use crate::protocol::Offer;
use crate::walk::Source;

/// The most bytes of recently read blocks a fan-out keeps for the receivers that follow.
pub const FANOUT_WINDOW_BYTES: usize = 16 << 20;

/// Block sizes of the window: the chunk size, within these bounds.
const MIN_BLOCK: usize = 64 << 10;
const MAX_BLOCK: usize = 2 << 20;

/// One receiver of a fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receiver {
    /// A name or an address (IPv6 without brackets).
    pub host: String,
    /// The port it listens on.
    pub port: u16,
}

impl Receiver {
    /// The receiver at `host`:`port`.
    ///
    /// ```
    /// let r = knsock::Receiver::new("::1", 9000);
    /// assert_eq!(r.to_string(), "[::1]:9000");
    /// ```
    pub fn new(host: impl Into<String>, port: u16) -> Receiver {
        Receiver {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Receiver {
    /// `host:port`, an IPv6 address in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// What happened at one receiver: its per-file outcomes, or why it could not be reached at all
/// (the `Err` `send_files` would have returned).
#[derive(Debug)]
pub struct ReceiverOutcome {
    /// The receiver, as given.
    pub receiver: Receiver,
    /// Its files' outcomes, or why it was not reached.
    pub result: Result<BatchReport>,
}

impl ReceiverOutcome {
    /// Whether every file reached this receiver (delivered or skipped as unchanged).
    pub fn all_delivered(&self) -> bool {
        self.result.as_ref().is_ok_and(|r| r.failed() == 0)
    }
}

/// The outcome of [`send_files_to_many`]: one entry per receiver, in the order given.
#[derive(Debug)]
pub struct ManyReport {
    /// One outcome per receiver, in the order given.
    pub receivers: Vec<ReceiverOutcome>,
    /// The whole fan-out, until the last receiver was done.
    pub elapsed: Duration,
}

impl ManyReport {
    /// Receivers that could not be reached or failed at least one file.
    pub fn failed_receivers(&self) -> usize {
        self.receivers.iter().filter(|r| !r.all_delivered()).count()
    }
}

/// Sends every source to every receiver, one connection per receiver, all at once; each
/// receiver's files go as `send_files` sends them (pipelined, retried
/// with `opts.retries`, each receiver deciding for itself what to accept, skip, resume or take as
/// a delta). Each file is read once for receivers that keep up with one another; one that falls
/// behind reads for itself, so a slow or dead receiver never holds up the others.
///
/// `Err` only for unusable arguments (no receivers, an empty host, invalid options, `legacy`);
/// a receiver that cannot be reached has its own `Err` in the report. Callbacks in `opts` run
/// on the receivers' threads, at the same time: `BatchProgress::receiver`
/// tells them apart. No progress bar is drawn.
pub fn send_files_to_many(
    receivers: &[Receiver],
    sources: &[Source],
    opts: &SendOptions,
) -> Result<ManyReport> {
    opts.validate()?;
    if receivers.is_empty() {
        return Err(Error::invalid("no receivers"));
    }
    if let Some(i) = receivers.iter().position(|r| r.host.is_empty()) {
        return Err(Error::invalid(format!("receiver {i}: host is empty")));
    }
    if opts.legacy {
        return Err(Error::invalid(
            "kn-sock 0.3's protocol takes one file per connection: no fan-out",
        ));
    }
    let started = Instant::now();
    let block = opts.chunk_size.clamp(MIN_BLOCK, MAX_BLOCK);
    let window = Window::new(block, FANOUT_WINDOW_BYTES);
    // Plain threads over shared copies rather than scoped ones: a scope would give the calling
    // thread (a C caller's) a `std::thread::Thread` handle that std keeps for good.
    let shared: Arc<[Source]> = sources.into();
    let threads: Vec<_> = receivers
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (opts, window) = (for_receiver(opts, i), Arc::clone(&window));
            let (sources, r) = (Arc::clone(&shared), r.clone());
            thread::Builder::new()
                .name(format!("knsock-fanout-{i}"))
                .spawn(move || {
                    let open = |k: usize| open_shared(&window, k, &sources[k]);
                    send_batch(&r.host, r.port, &sources, &opts, &open)
                })
        })
        .collect();
    let results: Vec<Result<BatchReport>> = threads
        .into_iter()
        .map(|t| match t {
            Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => Err(Error::io("starting a sending thread", e)),
        })
        .collect();
    let receivers = receivers
        .iter()
        .cloned()
        .zip(results)
        .map(|(receiver, result)| ReceiverOutcome { receiver, result })
        .collect();
    Ok(ManyReport {
        receivers,
        elapsed: started.elapsed(),
    })
}

/// Receiver `i`'s options: no progress bar (several would garble the terminal), and the batch
/// progress marked with `i`.
fn for_receiver(opts: &SendOptions, i: usize) -> SendOptions {
    let mut o = opts.clone();
    o.show_progress = false;
    if let Some(cb) = opts.batch_progress.clone() {
        o.batch_progress = Some(Arc::new(move |p| {
            let mut p = *p;
            p.receiver = i;
            cb(&p)
        }));
    }
    o
}

/// Source `k` opened by one session, its content read through the shared window.
fn open_shared(window: &Arc<Window>, k: usize, source: &Source) -> Result<(Reader, Offer)> {
    let (file, offer) = open_source(&source.path, Some(&source.name))?;
    Ok((Box::new(window.reader(k, file, offer.size)), offer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn unusable_arguments_are_refused_before_any_connection() {
        let opts = SendOptions::default();
        let err = send_files_to_many(&[], &[], &opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("no receivers"), "{err}");
        let two = [Receiver::new("127.0.0.1", 1), Receiver::new("", 2)];
        let err = send_files_to_many(&two, &[], &opts).unwrap_err();
        assert!(
            err.to_string().contains("receiver 1: host is empty"),
            "{err}"
        );
        let legacy = SendOptions {
            legacy: true,
            ..SendOptions::default()
        };
        let err = send_files_to_many(&two[..1], &[], &legacy).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn receivers_print_as_addresses() {
        assert_eq!(Receiver::new("a.example", 9).to_string(), "a.example:9");
        assert_eq!(Receiver::new("::1", 9).to_string(), "[::1]:9");
    }
}
