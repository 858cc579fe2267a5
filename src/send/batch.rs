//! Many files to one receiver: [`BatchReport`] and the retry loop of
//! `send_files`, each attempt one connection for the files still to do.

use std::time::Instant;

use super::connect::{backoff, retryable};
use super::content::Reader;
use super::first_flight::with_session;
use super::options::{SendOptions, SendReport};
use super::session;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::Offer;
use crate::walk::Source;

/// What happened to one file of a batch.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file as it was listed.
    pub source: Source,
    /// Its report once delivered (or skipped as unchanged), or why not.
    pub result: Result<SendReport>,
}

/// The outcome of [`send_files`](crate::send_files): one entry per source, in order.
#[derive(Debug)]
pub struct BatchReport {
    /// One outcome per source, in the order given.
    pub files: Vec<FileOutcome>,
    /// The whole batch, retries included.
    pub elapsed: std::time::Duration,
}

impl BatchReport {
    /// Files delivered or skipped as unchanged.
    pub fn delivered(&self) -> usize {
        self.files.iter().filter(|f| f.result.is_ok()).count()
    }

    /// Files that did not reach the receiver.
    pub fn failed(&self) -> usize {
        self.files.len() - self.delivered()
    }

    /// The error of the first file that failed, in list order.
    pub fn first_error(&self) -> Option<&Error> {
        self.files.iter().find_map(|f| f.result.as_ref().err())
    }
}

/// `send_files` with the sources' content read through `open(i)` (source `i`'s reader and
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
        let outcome = with_session(host, port, opts, |stream, early| {
            Ok(session::run(stream, &sizes, &mut open_k, opts, early))
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
