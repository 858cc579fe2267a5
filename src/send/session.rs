//! One sending connection (docs/protocol.md section 3): the hello, then for each file its OFFER,
//! its content and DONE, pipelined, while the verdicts of earlier files are read as they come.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use super::content::{compresses, digest_of, stream_content, Reader};
use super::first_flight::{self, Ran};
use super::options::{cancelled, SendOptions, SendReport};
use super::progress::{Bar, Overall, Progress};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Frame, Offer, ALGO_XXH3_128};
use crate::transport::{Transport, Wire};

/// How long a sender whose write failed waits for the receiver's reason (already sent, or on
/// its way) before it reports the failed write itself.
const REASON_WAIT: Duration = Duration::from_secs(2);

/// Opens file `i` of the list: the reader of its content and its OFFER.
pub(crate) type Open<'a> = dyn FnMut(usize) -> Result<(Reader, Offer)> + 'a;

/// Each file's result so far, by its place in the list.
pub(super) type Results = [Option<Result<SendReport>>];

/// Offers the files one after another on `stream` and collects their verdicts. `sizes` has each
/// file's expected size (for progress), `open(i)` opens file `i`. With `early`, the first
/// flight goes out without waiting for the hello reply (docs/protocol.md section 1.3). Every
/// file gets a result; a connection failure becomes the result of every file still without
/// one. [`Ran::Refused`] when the receiver did not take the first flight: nothing was stored,
/// and the caller connects again without it.
pub(crate) fn run<S: Transport>(
    stream: S,
    sizes: &[u64],
    open: &mut Open<'_>,
    opts: &SendOptions,
    early: bool,
) -> Ran<Vec<Result<SendReport>>> {
    let mut results: Vec<Option<Result<SendReport>>> = sizes.iter().map(|_| None).collect();
    let mut session = Session::new(stream, opts);
    session.early = early;
    let bar = opts
        .show_progress
        .then(|| Bar::new(sizes.iter().sum(), sizes.len()));
    let fatal = session.offer_all(sizes, open, opts, bar.as_ref(), &mut results);
    if let Some(b) = &bar {
        b.finish();
    }
    let cancelled_now = opts.cancel.as_ref().is_some_and(|c| c.is_cancelled());
    match fatal {
        Err(_) if cancelled_now => fill(&mut results, cancelled),
        Ok(()) => {
            let _ = Frame::Bye.write_to(&mut session.wire);
            let _ = session.wire.finish();
        }
        Err(e) => {
            let e = session.peer_reason(e, &mut results);
            if let Some(refused) = session.refused_early() {
                return refused;
            }
            fill(&mut results, || e.duplicate())
        }
    }
    first_flight::count_turns(session.wire.turns());
    Ran::Done(
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::new(
                        ErrorKind::Cancelled,
                        "not sent: stopped after an earlier file failed",
                    ))
                })
            })
            .collect(),
    )
}

/// Gives every file still without a result the error `e()`.
fn fill(results: &mut Results, e: impl Fn() -> Error) {
    for r in results.iter_mut().filter(|r| r.is_none()) {
        *r = Some(Err(e()));
    }
}

/// A file sent whose verdict has not come yet.
pub(super) struct Outstanding {
    pub(super) seq: u32,
    pub(super) index: usize,
    pub(super) bytes: u64,
    pub(super) offset: u64,
    pub(super) started: Instant,
    /// Content bytes that crossed the wire, and bytes the receiver took from its own copy.
    pub(super) sent: u64,
    pub(super) reused: u64,
}

/// What the receiver said to an OFFER.
pub(super) enum Answer {
    /// Send the content from this offset.
    Send(u64),
    /// Settled without content (refused or skipped).
    Settled,
}

pub(super) struct Session<S: Transport> {
    pub(super) wire: Wire<S>,
    pub(super) hello_done: bool,
    /// Send the first flight without waiting for the hello reply (section 1.3).
    pub(super) early: bool,
    /// An AUTH went out whose answer comes after the hello reply.
    pub(super) auth_pending: bool,
    /// The hello reply said the receiver does not take the first flight; `Some(true)` when it
    /// said so in its reply (remembered for the receiver), `Some(false)` when the connection
    /// ended before a reply.
    pub(super) no_first_flight: Option<bool>,
    /// Capabilities both sides have (known once the hello reply is read).
    pub(super) caps: u32,
    /// Every offer is out; only verdicts are awaited.
    draining: bool,
    pub(super) outstanding: VecDeque<Outstanding>,
}

impl<S: Transport> Session<S> {
    pub(super) fn new(stream: S, opts: &SendOptions) -> Self {
        Session {
            wire: Wire::new(stream, 16 * 1024, 64 * 1024, Some(opts.timeout)),
            hello_done: false,
            early: false,
            auth_pending: false,
            no_first_flight: None,
            caps: 0,
            draining: false,
            outstanding: VecDeque::new(),
        }
    }

    fn offer_all(
        &mut self,
        sizes: &[u64],
        open: &mut Open<'_>,
        opts: &SendOptions,
        bar: Option<&Bar>,
        results: &mut Results,
    ) -> Result<()> {
        self.hello(sizes, opts, 0)?;
        if self.caps & protocol::CAP_PIPELINE != 0 {
            return self.offer_pipelined(sizes, open, opts, bar, results);
        }
        let eager_ok = self.caps & protocol::CAP_EAGER != 0;
        let mut seq = 0u32;
        let mut overall = Overall::new(sizes);
        for i in 0..sizes.len() {
            overall.next(i);
            if opts.stop_on_error && results.iter().any(|r| matches!(r, Some(Err(_)))) {
                break;
            }
            let (mut file, offer) = match self.prepare(open(i), opts) {
                Ok(f) => f,
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            let this_seq = seq;
            seq = seq.wrapping_add(1);
            let progress = Progress::new(opts, Some(overall.place()), bar);
            let eager = eager_ok && offer.is_eager();
            self.early_room(first_flight::cost(&offer, eager))?;
            let offset = match self.offer(&offer, eager, i, &progress, results)? {
                Answer::Send(offset) => offset,
                Answer::Settled => continue,
            };
            if let Some(b) = bar {
                b.set_message(&offer.name);
            }
            let started = Instant::now();
            let digest = stream_content(
                &mut *file,
                &mut self.wire,
                &offer,
                offset,
                opts.chunk_size,
                &progress,
            )?;
            self.done(digest)?;
            self.outstanding.push_back(Outstanding {
                seq: this_seq,
                index: i,
                bytes: offer.size,
                offset,
                started,
                sent: offer.size - offset,
                reused: offset,
            });
            if eager {
                self.settle_ready(results)?;
            }
        }
        self.drain(results)
    }

    /// The opened file with its digest or the quick check flag (to skip unchanged files) and
    /// its encoding decided.
    pub(super) fn prepare(
        &self,
        opened: Result<(Reader, Offer)>,
        opts: &SendOptions,
    ) -> Result<(Reader, Offer)> {
        let (mut file, mut offer) = opened?;
        let quick = self.caps & protocol::CAP_PIPELINE != 0 && !opts.checksum;
        match (opts.skip_unchanged, quick) {
            (true, true) => offer.flags |= protocol::FLAG_QUICK,
            (true, false) => offer.digest = digest_of(&mut *file, &offer)?,
            (false, _) => {}
        }
        if self.caps & protocol::CAP_ZSTD != 0 && compresses(&mut *file, &offer)? {
            offer.encoding = protocol::ENCODING_ZSTD;
        }
        Ok((file, offer))
    }

    /// Sends the OFFER of file `i` and, unless it is eager, waits for its answer (settling
    /// earlier verdicts meanwhile). A refusal or a skip settles the file's result.
    pub(super) fn offer(
        &mut self,
        offer: &Offer,
        eager: bool,
        i: usize,
        progress: &Progress<'_>,
        results: &mut Results,
    ) -> Result<Answer> {
        Frame::Offer(offer.clone())
            .write_to(&mut self.wire)
            .map_err(|e| Error::io("sending an offer", e))?;
        if eager {
            return Ok(Answer::Send(0));
        }
        self.flush()?;
        match self.read(results)? {
            Frame::Accept { offset } if offset <= offer.size => Ok(Answer::Send(offset)),
            Frame::Reject { code, text } => {
                results[i] = Some(Err(protocol::peer_error(code, text)));
                Ok(Answer::Settled)
            }
            Frame::Skip => {
                progress.report_batch(&offer.name, offer.size, offer.size)?;
                results[i] = Some(Ok(SendReport {
                    stored_name: offer.name.clone(),
                    bytes: offer.size,
                    elapsed: Duration::ZERO,
                    resumed_from: 0,
                    attempts: 1,
                    skipped: true,
                    bytes_sent: 0,
                    bytes_reused: 0,
                }));
                Ok(Answer::Settled)
            }
            f => Err(unexpected(&f, "ACCEPT or REJECT")),
        }
    }

    pub(super) fn done(&mut self, digest: u128) -> Result<()> {
        Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest: digest.to_be_bytes().to_vec(),
        }
        .write_to(&mut self.wire)
        .map_err(|e| Error::io("sending the checksum", e))
    }

    /// Every offer is out: waits for the verdicts still to come.
    pub(super) fn drain(&mut self, results: &mut Results) -> Result<()> {
        self.flush()?;
        self.draining = true;
        if !self.outstanding.is_empty() {
            // Returns `Bye` once the last verdict is in.
            match self.read(results)? {
                Frame::Bye => {}
                f => return Err(unexpected(&f, "OK or FAILED")),
            }
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        self.wire
            .flush()
            .map_err(|e| Error::io("sending to the receiver", e))
    }

    /// Reads the next frame that is not a verdict, settling verdicts on the way. While
    /// draining, the last verdict returns `Bye` so the drain loop ends.
    fn read(&mut self, results: &mut Results) -> Result<Frame> {
        self.read_hello()?;
        loop {
            let frame = self.next_frame()?;
            if let Some(other) = self.settle(frame, results)? {
                return Ok(other);
            }
            if self.outstanding.is_empty() && self.draining {
                return Ok(Frame::Bye);
            }
        }
    }

    /// Settles the verdicts that have already arrived, without waiting: while eager offers go
    /// out, nothing else can come.
    fn settle_ready(&mut self, results: &mut Results) -> Result<()> {
        while self.wire.input_ready() {
            let frame = self.next_frame()?;
            if let Some(other) = self.settle(frame, results)? {
                return Err(unexpected(&other, "OK or FAILED"));
            }
        }
        Ok(())
    }

    /// After a write the receiver broke off (a broken pipe, a reset): its own reason when it
    /// sent one before it closed, an ERROR frame still to be read (verdicts before it are
    /// settled), or its busy refusal (code 17) as such; `e` when there is none. The read ends at
    /// the end of what the receiver sent, or after [`REASON_WAIT`].
    pub(super) fn peer_reason(&mut self, e: Error, results: &mut Results) -> Error {
        use std::error::Error as _;
        let broken = e
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|s| {
                use std::io::ErrorKind as K;
                matches!(s.kind(), K::BrokenPipe | K::ConnectionReset)
            });
        if !broken
            || self
                .wire
                .set_deadline(Some(Instant::now() + REASON_WAIT))
                .is_err()
        {
            return e;
        }
        // A first flight cut short: the hello reply may still be readable, with the reason.
        if let Err(reply) = self.read_hello() {
            return match reply.peer_reason() {
                Some(_) => reply,
                None => e,
            };
        }
        loop {
            let frame = match Frame::read_from(&mut self.wire) {
                // A busy receiver asks for a later try whatever broke our write.
                Ok(Some(Frame::Error { code, text })) if code == protocol::Code::Busy as u16 => {
                    return protocol::peer_error(code, text)
                }
                Ok(Some(Frame::Error { text, .. })) => return Error::peer_ended(e.kind(), &text),
                Ok(Some(f)) => f,
                _ => return e,
            };
            if self.settle(frame, results).is_err() {
                return e;
            }
        }
    }

    pub(super) fn next_frame(&mut self) -> Result<Frame> {
        self.read_hello()?;
        Frame::read_from(&mut self.wire)?
            .ok_or_else(|| Error::protocol("receiver closed the connection"))
    }

    /// Records a verdict (OK or FAILED) in `results`; any other frame is handed back.
    pub(super) fn settle(&mut self, frame: Frame, results: &mut Results) -> Result<Option<Frame>> {
        let (seq, result) = match frame {
            Frame::Ok { seq, name } => (seq, Ok(name)),
            Frame::Failed { seq, code, text } => (seq, Err(protocol::peer_error(code, text))),
            Frame::Error { code, text } => return Err(protocol::peer_error(code, text)),
            other => return Ok(Some(other)),
        };
        let Some(pos) = self.outstanding.iter().position(|o| o.seq == seq) else {
            return Err(Error::protocol(format!("verdict for unknown file {seq}")));
        };
        let o = self.outstanding.remove(pos).expect("position is valid");
        results[o.index] = Some(result.map(|stored_name| SendReport {
            stored_name,
            bytes: o.bytes,
            elapsed: o.started.elapsed(),
            resumed_from: o.offset,
            attempts: 1,
            skipped: false,
            bytes_sent: o.sent,
            bytes_reused: o.reused,
        }));
        Ok(None)
    }
}

pub(super) fn unexpected(f: &Frame, wanted: &str) -> Error {
    Error::protocol(format!("expected {wanted} from the receiver, got {f:?}"))
}
