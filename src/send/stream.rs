//! Sending a stream: content read from any `Read` source (a pipe, standard input, a program's
//! output), of a size stated in advance or known only at its end (docs/protocol.md section
//! 3.3). One file, one connection, no retry and no resume: a stream cannot be read twice.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh3::Xxh3;

use super::connect::with_connection;
use super::options::{SendOptions, SendReport};
use super::progress::{Bar, Progress};
use super::session::{Answer, Outstanding, Session};
use crate::compress::Compressor;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, check_name, Frame, Offer, SIZE_UNKNOWN};
use crate::transport::{Transport, Wire};

/// Content of unknown size goes as blocks of at least this many bytes (or `chunk_size` when
/// larger): the receiver takes each block's length apart from its bytes, and what it had read
/// ahead with the length is copied once more, so larger blocks cost it less (about a fifth less
/// CPU with 1 MiB than with 256 KiB, 1 GiB on loopback).
const UNSIZED_BLOCK: usize = 1024 * 1024;

/// A step's bytes go out once they have been gathering this long, full or not, so a slow
/// source's bytes reach the receiver within about this much more than the source takes.
const GATHER_AT_MOST: Duration = Duration::from_secs(1);

/// Sends what `source` yields until its end as the file `name`, and returns once the receiver
/// has it verified, durable and in place, like [`send_file`](crate::send_file).
///
/// With `size` `Some(n)` the source must yield exactly `n` bytes; with `None` the size is
/// known only at the end, which needs a receiver that speaks capability bit 4 (knsock 0.1).
/// The receiver applies its maximum file size as the bytes arrive and ends the transfer with
/// its reason once a stream passes it. Progress callbacks get a total of 0 when the size is
/// unknown. Content of unknown size goes as blocks of at least 1 MiB (`chunk_size` when
/// larger). What was read goes out when its step is full, at the source's end, or once it has
/// gathered for a second, so a slow source's bytes do not wait for a full step. The file gets
/// mode 0644 and the current time as its modification time. If the source fails (a read
/// error, a size other than the one stated), the connection is closed before the end of the
/// content, so the receiver stores nothing, and the error says why. There is no retry and no
/// resume: what was read cannot be read again.
pub fn send_stream(
    host: &str,
    port: u16,
    name: &str,
    mut source: impl Read,
    size: Option<u64>,
    opts: &SendOptions,
) -> Result<SendReport> {
    opts.validate()?;
    check_name(name).map_err(|why| Error::invalid(format!("remote name {name:?}: {why}")))?;
    if size == Some(SIZE_UNKNOWN) {
        return Err(Error::invalid("a stream's size must be below 2^64 - 1"));
    }
    // A stream is sent whole: never skipped, never a delta (it cannot be read twice).
    let opts = &SendOptions {
        skip_unchanged: false,
        delta: false,
        ..opts.clone()
    };
    with_connection(host, port, opts, |link| {
        run(link, name, &mut source, size, opts)
    })
}

/// The stream's session: hello, OFFER, content, DONE, then its verdict.
fn run<S: Transport>(
    link: S,
    name: &str,
    source: &mut dyn Read,
    size: Option<u64>,
    opts: &SendOptions,
) -> Result<SendReport> {
    let mut session = Session::new(link, opts);
    let mut results = [None];
    let bar = opts.show_progress.then(|| match size {
        Some(n) => Bar::new(n, 1),
        None => Bar::unsized_stream(name),
    });
    if let Some(b) = &bar {
        b.set_message(name);
    }
    let sent = send(
        &mut session,
        name,
        source,
        size,
        opts,
        bar.as_ref(),
        &mut results,
    );
    if let Some(b) = &bar {
        b.finish();
    }
    match sent {
        Ok(()) => {
            let _ = Frame::Bye.write_to(&mut session.wire);
            let _ = session.wire.finish();
        }
        Err(e) => return Err(session.peer_reason(e, &mut results)),
    }
    results[0]
        .take()
        .unwrap_or_else(|| Err(Error::protocol("the receiver gave no verdict")))
}

fn send<S: Transport>(
    session: &mut Session<S>,
    name: &str,
    source: &mut dyn Read,
    size: Option<u64>,
    opts: &SendOptions,
    bar: Option<&Bar>,
    results: &mut [Option<Result<SendReport>>; 1],
) -> Result<()> {
    let extra = match size {
        None => protocol::CAP_STREAM,
        Some(_) => 0,
    };
    session.hello(&[size.unwrap_or(0)], opts, extra)?;
    if size.is_none() && session.caps & protocol::CAP_STREAM == 0 {
        return Err(Error::new(
            ErrorKind::Protocol,
            "the receiver does not take content of unknown size (protocol capability bit 4): \
             state the size, or upgrade the receiver",
        ));
    }
    // The first bytes decide compression, as a file's sample does; they are sent first.
    let mut head = vec![0u8; crate::compress::SAMPLE];
    let zstd = session.caps & protocol::CAP_ZSTD != 0;
    let got = match zstd {
        true => gather(source, &mut head, name)?,
        false => 0,
    };
    head.truncate(got);
    let (mtime_secs, mtime_nanos) = now();
    let mut offer = Offer {
        mtime_secs,
        mtime_nanos,
        ..Offer::new(name, size.unwrap_or(SIZE_UNKNOWN))
    };
    if zstd && crate::compress::worth_compressing(&head) {
        offer.encoding = protocol::ENCODING_ZSTD;
    }
    let progress = Progress::new(opts, None, bar);
    let offset = match session.offer(&offer, false, 0, &progress, results)? {
        Answer::Send(0) => 0,
        Answer::Send(_) => return Err(Error::protocol("the receiver resumes a stream")),
        Answer::Settled => return Ok(()),
    };
    if session.caps & protocol::CAP_PIPELINE != 0 {
        Frame::Data { seq: 0 }
            .write_to(&mut session.wire)
            .map_err(|e| Error::io("sending data", e))?;
    }
    let started = Instant::now();
    let mut source = io::Cursor::new(head).chain(source);
    let (digest, total) = stream(session, &mut source, &offer, opts.chunk_size, &progress)?;
    session.done(digest)?;
    session.outstanding.push_back(Outstanding {
        seq: 0,
        index: 0,
        bytes: total,
        offset,
        started,
        sent: total,
        reused: 0,
    });
    session.drain(results)
}

/// The content, framed as the offer says, hashed as it goes; its digest and size.
fn stream<S: Transport>(
    session: &mut Session<S>,
    source: &mut dyn Read,
    offer: &Offer,
    chunk_size: usize,
    progress: &Progress<'_>,
) -> Result<(u128, u64)> {
    let known = (offer.size != SIZE_UNKNOWN).then_some(offer.size);
    let wire = &mut session.wire;
    let sending = |e| Error::io("sending data", e);
    match (offer.encoding == protocol::ENCODING_ZSTD, known) {
        (true, _) => {
            let mut z = Compressor::new(Checked(wire)).map_err(sending)?;
            let r = copy(source, &mut z, offer, (known, false), chunk_size, progress)?;
            z.finish().map_err(sending)?;
            Ok(r)
        }
        (false, None) => {
            let r = copy(
                source,
                &mut Checked(wire),
                offer,
                (known, true),
                chunk_size,
                progress,
            )?;
            wire.write_all(&0u32.to_be_bytes()).map_err(sending)?;
            Ok(r)
        }
        (false, Some(_)) => copy(
            source,
            &mut Checked(wire),
            offer,
            (known, false),
            chunk_size,
            progress,
        ),
    }
}

/// Copies the source to `out` in reads of `chunk_size`, hashing and reporting progress (total
/// 0 when unknown); a known size must be met exactly.
fn copy(
    source: &mut dyn Read,
    out: &mut dyn Write,
    offer: &Offer,
    (known, framed): (Option<u64>, bool),
    chunk_size: usize,
    progress: &Progress<'_>,
) -> Result<(u128, u64)> {
    let mut hasher = Xxh3::new();
    // Framed: each step goes out as one block, its length before it, in one write.
    let (head, step) = match framed {
        true => (4, chunk_size.max(UNSIZED_BLOCK)),
        false => (0, chunk_size),
    };
    let mut buf = vec![0u8; head + step.min(protocol::RAW_BLOCK_MAX)];
    let mut sent = 0u64;
    let name = offer.name.as_str();
    progress.report(name, 0, known.unwrap_or(0))?;
    loop {
        let room = buf.len() - head;
        let want = known.map_or(room, |k| room.min((k - sent) as usize));
        if want == 0 {
            break;
        }
        let n = gather(source, &mut buf[head..head + want], name)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[head..head + n]);
        if framed {
            buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
        }
        out.write_all(&buf[..head + n])
            .map_err(|e| ours_or(e, |e| Error::io("sending data", e)))?;
        sent += n as u64;
        progress.advance(n as u64);
        progress.report(name, sent, known.unwrap_or(0))?;
    }
    if let Some(k) = known {
        check_size(source, name, sent, k)?;
    }
    Ok((hasher.digest128(), sent))
}

/// A stream of known size must end exactly there.
fn check_size(source: &mut dyn Read, name: &str, sent: u64, size: u64) -> Result<()> {
    if sent < size {
        return Err(Error::new(
            ErrorKind::Io,
            format!("{name}: the stream ended after {sent} of its {size} bytes"),
        ));
    }
    match fill(source, &mut [0u8; 1], name)? {
        0 => Ok(()),
        _ => Err(Error::new(
            ErrorKind::Io,
            format!("{name}: the stream is longer than its stated {size} bytes"),
        )),
    }
}

/// Reads until `buf` is full, the source ends, or bytes have gathered for [`GATHER_AT_MOST`];
/// the number of bytes read.
fn gather(source: &mut dyn Read, buf: &mut [u8], name: &str) -> Result<usize> {
    read_into(source, buf, name, Some(Instant::now() + GATHER_AT_MOST))
}

/// Reads until `buf` is full or the source ends; the number of bytes read.
fn fill(source: &mut dyn Read, buf: &mut [u8], name: &str) -> Result<usize> {
    read_into(source, buf, name, None)
}

/// Reads until `buf` is full, the source ends, or (with some bytes read) `until` has passed.
fn read_into(
    source: &mut dyn Read,
    buf: &mut [u8],
    name: &str,
    until: Option<Instant>,
) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ours_or(e, |e| {
                    Error::io(format!("reading the stream for {name}"), e)
                }))
            }
        }
        if got > 0 && until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
    }
    Ok(got)
}

/// The error an I/O error carries when it is one of ours (the receiver's reason read between
/// blocks, a read callback's abort), else `or(e)`.
fn ours_or(e: io::Error, or: impl FnOnce(io::Error) -> Error) -> Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return or(e);
    }
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(ours)) => *ours,
        _ => Error::new(ErrorKind::Io, "an error was lost on its way"),
    }
}

fn now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// The wire, with the receiver's word checked before each write: an ERROR it sent while the
/// content flows (a stream past its maximum size) ends the send with its reason.
struct Checked<'w, S: Transport>(&'w mut Wire<S>);

impl<S: Transport> Write for Checked<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.input_ready() {
            let e = match Frame::read_from(&mut *self.0) {
                Ok(Some(Frame::Error { code, text })) => protocol::peer_error(code, text),
                Ok(Some(f)) => Error::protocol(format!("unexpected {f:?} while sending")),
                Ok(None) => Error::protocol("the receiver closed the connection"),
                Err(e) => e,
            };
            return Err(io::Error::other(e));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
