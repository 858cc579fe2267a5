//! The sending side's entry points: [`send_file`] and [`send_files`] connect, run a session,
//! and retry with backoff what a new connection may cure; [`send_files_to_many`] does the
//! latter for several receivers at once (`fanout.rs`); [`send_stream`] sends what a `Read`
//! source yields (`stream.rs`).

use std::path::Path;

use crate::error::Result;
use crate::transport::Link;
use crate::walk::Source;

mod batch;
mod connect;
mod content;
mod delta;
mod fanout;
mod first_flight;
mod hello;
mod legacy;
mod options;
mod pipeline;
mod progress;
mod session;
mod stream;
mod window;

pub use options::{
    check_chunk_size, check_timeout, BatchProgress, BatchProgressFn, CancelToken, ProgressFn,
    SendOptions, SendReport, DEFAULT_CHUNK_SIZE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT,
    MAX_CHUNK_SIZE,
};

pub use fanout::{send_files_to_many, ManyReport, Receiver, ReceiverOutcome, FANOUT_WINDOW_BYTES};

pub use batch::{BatchReport, FileOutcome};

pub use stream::send_stream;

use batch::send_batch;
use connect::retrying;
pub(crate) use connect::{backoff, retryable, with_connection};
use content::{open_reader, open_source, Reader};
#[cfg(feature = "internals")]
pub(crate) use first_flight::take_turns;
use first_flight::{with_session, Ran};

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

fn send_file_once(host: &str, port: u16, path: &Path, opts: &SendOptions) -> Result<SendReport> {
    // Open first: a missing file is reported as such, without a connection.
    let (file, offer) = open_source(path, opts.remote_name.as_deref())?;
    let size = offer.size;
    let mut once = Some((file, offer));
    with_session(host, port, opts, |stream, early| {
        if let (Link::Plain(stream), true) = (&stream, opts.legacy) {
            let (mut file, offer) = match once.take() {
                Some(opened) => opened,
                None => open_source(path, opts.remote_name.as_deref())?,
            };
            return legacy::send_legacy(&mut file, stream, offer, opts).map(Ran::Done);
        }
        // Opened again to resend it in full after a delta whose old copy changed, or without
        // the first flight its receiver did not take.
        let mut open = |_| match once.take() {
            Some((file, offer)) => Ok((Box::new(file) as Reader, offer)),
            None => open_reader(path, opts.remote_name.as_deref()),
        };
        let early = early && !opts.legacy;
        match session::run(stream, &[size], &mut open, opts, early) {
            Ran::Done(mut results) => results.pop().expect("one result per file").map(Ran::Done),
            Ran::Refused { said } => Ok(Ran::Refused { said }),
        }
    })
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
