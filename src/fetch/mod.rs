//! The fetching side (docs/protocol.md section 3.4): [`fetch_files`] gets files back from a
//! receiver that serves fetches, with the receiver's own guarantees on this side (`land.rs`),
//! over one connection per attempt (`session.rs`), retried as sends are.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::protocol::{check_name, FETCH_MAX_NAMES};
use crate::send::{backoff, retryable, with_connection};

mod delta;
mod land;
mod options;
mod receive;
mod session;

pub use options::{
    FetchOptions, FetchProgressFn, FetchReport, FetchStatus, FetchedFile, FetchedFn, MissingName,
};

/// Fetches `remotes` (names relative to what this client may read on the receiver: files, or
/// directories with `opts.recursive`) into the directory `dest`, created if needed. A
/// requested name's last component and what lies beneath it land under `dest` (`tree/a/b`
/// fetched as `tree` lands at `dest/tree/a/b`). Each file is verified, made durable and
/// renamed into place; a file that fails leaves nothing under its name. `Err` only when nothing
/// could be listed (connection, hello, authentication, a refused fetch); per-file outcomes are
/// in the report.
pub fn fetch_files(
    host: &str,
    port: u16,
    remotes: &[&str],
    dest: impl AsRef<Path>,
    opts: &FetchOptions,
) -> Result<FetchReport> {
    opts.validate()?;
    if remotes.is_empty() || remotes.len() > FETCH_MAX_NAMES {
        return Err(Error::invalid(format!(
            "give 1 to {FETCH_MAX_NAMES} names to fetch, not {}",
            remotes.len()
        )));
    }
    for r in remotes {
        check_name(r).map_err(|why| {
            Error::invalid(format!("cannot fetch '{}': {why}", crate::printable(r)))
        })?;
    }
    let remotes: Vec<String> = remotes.iter().map(|r| r.to_string()).collect();
    let dest = land::Dest::open(dest.as_ref(), opts.mask())?;
    let conn = opts.connection();
    let started = Instant::now();
    let mut delay = opts.retry_delay;
    let mut settled: HashSet<String> = HashSet::new();
    // Files whose delta met a changed old copy: fetched whole from then on, in an attempt of
    // their own when no retry is left.
    let mut whole: HashSet<String> = HashSet::new();
    let mut extra = 0;
    let mut report: Option<FetchReport> = None;
    for attempt in 1.. {
        let round = with_connection(host, port, &conn, |stream| {
            session::run(stream, &remotes, &dest, opts, (&settled, &whole))
        });
        let mut retry_left = attempt <= opts.retries + extra;
        let mut refetch = false;
        match round {
            Err(e) if retry_left && retryable(&e) => {}
            Err(e) => match report.as_mut() {
                Some(r) => {
                    fail_unsettled(r, &e);
                    break;
                }
                None => return Err(e),
            },
            Ok(mut round) => {
                refetch = !round.changed.is_empty();
                whole.extend(round.changed.drain(..));
                if refetch && !retry_left {
                    (extra, retry_left) = (extra + 1, true);
                }
                let r = merge(report.take(), round, attempt);
                settled.extend(
                    r.files
                        .iter()
                        .filter(|f| f.result.is_ok())
                        .map(|f| f.name.clone()),
                );
                let again = r
                    .files
                    .iter()
                    .any(|f| matches!(&f.result, Err(e) if retryable(e)));
                report = Some(r);
                if !again {
                    break;
                }
            }
        }
        if !retry_left {
            break;
        }
        // Fetching a file whole because the local copy changed needs no wait.
        if !refetch {
            backoff(&conn, &mut delay)?;
        }
    }
    let mut report = report.expect("an attempt succeeded or returned");
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Fetches one file (or one directory with `opts.recursive`) into `dest`; `Err` unless every
/// listed file was fetched or unchanged.
pub fn fetch_file(
    host: &str,
    port: u16,
    remote: &str,
    dest: impl AsRef<Path>,
    opts: &FetchOptions,
) -> Result<FetchReport> {
    let report = fetch_files(host, port, &[remote], dest, opts)?;
    match report.first_error() {
        Some(e) => Err(e.duplicate()),
        None => Ok(report),
    }
}

/// A new attempt's round over the earlier report: files settled before keep their outcome.
fn merge(before: Option<FetchReport>, round: session::Round, attempt: u32) -> FetchReport {
    let mut files = round.files;
    if let Some(before) = before {
        for f in &mut files {
            let earlier = before
                .files
                .iter()
                .find(|b| b.name == f.name && b.result.is_ok());
            if let (Some(b), Ok(_)) = (earlier, &f.result) {
                f.result = b.result.as_ref().map(|s| *s).map_err(|e| e.duplicate());
            }
        }
    }
    FetchReport {
        files,
        missing: round.missing,
        elapsed: Default::default(),
        attempts: attempt,
    }
}

/// A retry that could not connect: the files still failing keep the latest error.
fn fail_unsettled(report: &mut FetchReport, e: &Error) {
    for f in report.files.iter_mut().filter(|f| f.result.is_err()) {
        f.result = Err(e.duplicate());
    }
}
