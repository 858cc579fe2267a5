//! Pipelined decisions on the sending side (docs/protocol.md section 3.1): offers go out ahead,
//! within a bounded window, while the receiver's answers stream back; each accepted file's
//! content follows its DATA frame (or a delta its DELTA frame) in offer order, and a file whose
//! old copy changed during its delta is offered again in full.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use super::content::{stream_content, Reader};
use super::first_flight;
use super::options::{SendOptions, SendReport};
use super::progress::{Bar, Overall, Place, Progress};
use super::session::{unexpected, Open, Outstanding, Results, Session};
use crate::error::{Error, Result};
use crate::protocol::{self, Code, Frame, Offer};
use crate::transport::Transport;

/// An offer sent whose content has not gone yet.
pub(super) struct Waiting {
    pub(super) index: usize,
    pub(super) seq: u32,
    pub(super) file: Reader,
    pub(super) offer: Offer,
    pub(super) place: Place,
    pub(super) answer: Option<Answer>,
    /// A probe (bit 7): answered SKIP or CHANGED, never followed by content.
    pub(super) probe: bool,
}

/// Where an offer comes from: the list in order, a probe's changed file, or a file sent again in
/// full after its delta failed.
enum Kind {
    First,
    Changed,
    Full,
}

/// The receiver's answer to an offer.
pub(super) enum Answer {
    Accept(u64),
    /// Accepted, with an old copy of this many bytes to build a delta against.
    Basis(u64),
    /// Refused or skipped: the file's result is settled.
    Settled,
    /// A probe's file differs from the receiver's: offered again to be sent.
    Changed,
}

/// What the pipeline holds besides the session.
pub(super) struct Pipe<'o> {
    pub(super) opts: &'o SendOptions,
    pub(super) overall: Overall<'o>,
    pub(super) queue: VecDeque<Waiting>,
    /// Files to offer again in full: their old copy changed during a delta.
    pub(super) again: Vec<usize>,
    /// Files a probe found changed, to offer again (without the quick check), in order.
    pub(super) changed: VecDeque<usize>,
    /// Probes in `queue`.
    pub(super) probes: usize,
}

/// Counts the bytes written through it.
pub(super) struct Counting<'w, W: Write>(pub(super) &'w mut W, pub(super) u64);

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<S: Transport> Session<S> {
    /// Offers every file, at most `PIPELINE_WINDOW` ahead of its content (1 with
    /// `stop_on_error`), and reads answers and verdicts as they come, until every file has a
    /// result.
    pub(super) fn offer_pipelined(
        &mut self,
        sizes: &'_ [u64],
        open: &mut Open<'_>,
        opts: &SendOptions,
        bar: Option<&Bar>,
        results: &mut Results,
    ) -> Result<()> {
        let window = match opts.stop_on_error {
            true => 1,
            false => protocol::PIPELINE_WINDOW,
        };
        let mut pipe = Pipe {
            opts,
            overall: Overall::new(sizes),
            queue: VecDeque::new(),
            again: Vec::new(),
            changed: VecDeque::new(),
            probes: 0,
        };
        let probing = self.caps & protocol::CAP_PROBE != 0;
        let (mut next, mut seq) = (0usize, 0u32);
        loop {
            self.send_answered(&mut pipe, opts, bar, results)?;
            let stop = opts.stop_on_error && results.iter().any(|r| matches!(r, Some(Err(_))));
            let again = !pipe.again.is_empty() || !pipe.changed.is_empty();
            let more = !stop && (next < sizes.len() || again);
            // Probes hold nothing at the receiver: they have a window of their own.
            let room = match !again && probing {
                true => pipe.probes < protocol::PROBE_WINDOW,
                false => pipe.queue.len() - pipe.probes < window,
            };
            if more && room {
                let (i, kind) = if let Some(i) = pipe.again.pop() {
                    (i, Kind::Full)
                } else if let Some(i) = pipe.changed.pop_front() {
                    (i, Kind::Changed)
                } else {
                    next += 1;
                    (next - 1, Kind::First)
                };
                let place = pipe.overall.place_of(i);
                match self.prepare(open(i), opts) {
                    Ok((file, mut offer)) => {
                        match kind {
                            Kind::Full => offer.flags = protocol::FLAG_NO_DELTA,
                            Kind::Changed => offer.flags &= !protocol::FLAG_QUICK,
                            Kind::First => {}
                        }
                        let w = (i, seq, file, offer, place);
                        seq = seq.wrapping_add(1);
                        self.offer_one(w, opts, bar, &mut pipe, results)?;
                    }
                    Err(e) => {
                        pipe.overall.pass(i);
                        results[i] = Some(Err(e));
                    }
                }
                continue;
            }
            if !more && pipe.queue.is_empty() && self.outstanding.is_empty() {
                return self.flush();
            }
            self.flush()?;
            let frame = self.next_frame()?;
            self.dispatch(frame, &mut pipe, results)?;
        }
    }

    /// Sends one OFFER: an eager file's content follows at once; any other waits in the queue
    /// for its answer.
    fn offer_one(
        &mut self,
        w: (usize, u32, Reader, Offer, Place),
        opts: &SendOptions,
        bar: Option<&Bar>,
        pipe: &mut Pipe<'_>,
        results: &mut Results,
    ) -> Result<()> {
        let (index, seq, mut file, mut offer, place) = w;
        // Files go in list order: a small file behind offers still waiting for their content is
        // not eager (probes get none).
        if pipe.queue.len() > pipe.probes && offer.is_eager() {
            offer.flags |= protocol::FLAG_DEFER;
        }
        let eager = self.caps & protocol::CAP_EAGER != 0 && offer.is_eager();
        self.early_room(first_flight::cost(&offer, eager))?;
        Frame::Offer(offer.clone())
            .write_to(&mut self.wire)
            .map_err(|e| Error::io("sending an offer", e))?;
        let probe = self.caps & protocol::CAP_PROBE != 0 && offer.flags & protocol::FLAG_QUICK != 0;
        if probe {
            // Opened again if it changed: thousands of probes hold no descriptors.
            file = Box::new(std::io::Cursor::new(Vec::new()));
            pipe.probes += 1;
        }
        let mut w = Waiting {
            index,
            seq,
            file,
            offer,
            place,
            answer: None,
            probe,
        };
        match eager {
            true => self.send_content(&mut w, 0, opts, bar, &mut pipe.overall)?,
            false => pipe.queue.push_back(w),
        }
        self.dispatch_ready(pipe, results)
    }

    /// Sends the content of the answered files at the front of the queue, in offer order.
    fn send_answered(
        &mut self,
        pipe: &mut Pipe<'_>,
        opts: &SendOptions,
        bar: Option<&Bar>,
        results: &mut Results,
    ) -> Result<()> {
        while pipe.queue.front().is_some_and(|w| w.answer.is_some()) {
            let mut w = pipe.queue.pop_front().expect("front exists");
            pipe.probes -= usize::from(w.probe);
            match w.answer.take().expect("answered") {
                Answer::Settled => continue,
                Answer::Changed => {
                    pipe.changed.push_back(w.index);
                    continue;
                }
                Answer::Accept(offset) => {
                    Frame::Data { seq: w.seq }
                        .write_to(&mut self.wire)
                        .map_err(|e| Error::io("sending data", e))?;
                    self.send_content(&mut w, offset, opts, bar, &mut pipe.overall)?;
                }
                Answer::Basis(old_size) => {
                    w.place = pipe.overall.place_of(w.index);
                    let i = w.index;
                    self.send_delta(w, old_size, opts, bar, pipe, results)?;
                    pipe.overall.pass(i);
                }
            }
            self.dispatch_ready(pipe, results)?;
        }
        Ok(())
    }

    /// A file's content from `offset` (raw or zstd) and its DONE; its verdict is awaited.
    fn send_content(
        &mut self,
        w: &mut Waiting,
        offset: u64,
        opts: &SendOptions,
        bar: Option<&Bar>,
        overall: &mut Overall<'_>,
    ) -> Result<()> {
        w.place = overall.place_of(w.index);
        let progress = Progress::new(opts, Some(w.place), bar);
        if let Some(b) = bar {
            b.set_message(&w.offer.name);
        }
        let started = Instant::now();
        let mut out = Counting(&mut self.wire, 0);
        let chunk = opts.chunk_size;
        let digest = stream_content(&mut *w.file, &mut out, &w.offer, offset, chunk, &progress)?;
        let sent = out.1;
        overall.pass(w.index);
        self.done(digest)?;
        self.outstanding.push_back(Outstanding {
            seq: w.seq,
            index: w.index,
            bytes: w.offer.size,
            offset,
            started,
            sent,
            reused: offset,
        });
        Ok(())
    }

    /// Handles the frames that have already arrived, without waiting.
    pub(super) fn dispatch_ready(
        &mut self,
        pipe: &mut Pipe<'_>,
        results: &mut Results,
    ) -> Result<()> {
        while self.wire.input_ready() {
            let frame = self.next_frame()?;
            self.dispatch(frame, pipe, results)?;
        }
        Ok(())
    }

    /// An answer goes to the first offer without one; a verdict settles its file (FAILED with
    /// code 14 puts the file back to be sent in full).
    pub(super) fn dispatch(
        &mut self,
        frame: Frame,
        pipe: &mut Pipe<'_>,
        results: &mut Results,
    ) -> Result<()> {
        let answer = match frame {
            Frame::Failed { seq, code, .. } if code == Code::BasisChanged as u16 => {
                let pos = self.outstanding.iter().position(|o| o.seq == seq);
                let Some(o) = pos.and_then(|p| self.outstanding.remove(p)) else {
                    return Err(Error::protocol(format!("verdict for unknown file {seq}")));
                };
                pipe.again.push(o.index);
                return Ok(());
            }
            Frame::Accept { offset } => Answer::Accept(offset),
            Frame::Basis { old_size } => Answer::Basis(old_size),
            Frame::Changed => Answer::Changed,
            f @ (Frame::Reject { .. } | Frame::Skip) => Answer::Settled.with(f, pipe, results)?,
            f => match self.settle(f, results)? {
                None => return Ok(()),
                Some(f) => return Err(unexpected(&f, "an answer or a verdict")),
            },
        };
        let Some(w) = pipe.queue.iter_mut().find(|w| w.answer.is_none()) else {
            return Err(Error::protocol("an answer to no offer"));
        };
        // Only a probe is answered CHANGED, and a probe never gets content.
        let fits = match answer {
            Answer::Changed => w.probe,
            Answer::Settled => true,
            Answer::Accept(_) | Answer::Basis(_) => !w.probe,
        };
        if !fits {
            return Err(Error::protocol(format!(
                "an answer that does not fit the offer of {}",
                w.offer.name
            )));
        }
        if let Answer::Accept(offset) = answer {
            if offset > w.offer.size {
                return Err(Error::protocol("ACCEPT beyond the end of the file"));
            }
        }
        w.answer = Some(answer);
        Ok(())
    }
}

impl Answer {
    /// Settles the result of the first unanswered offer for a REJECT or SKIP.
    fn with(self, f: Frame, pipe: &mut Pipe<'_>, results: &mut Results) -> Result<Answer> {
        let Some(w) = pipe.queue.iter().find(|w| w.answer.is_none()) else {
            return Err(Error::protocol("an answer to no offer"));
        };
        if matches!(f, Frame::Skip) {
            let place = pipe.overall.place_of(w.index);
            let progress = Progress::new(pipe.opts, Some(place), None);
            progress.report_batch(&w.offer.name, w.offer.size, w.offer.size)?;
        }
        pipe.overall.pass(w.index);
        results[w.index] = Some(match f {
            Frame::Reject { code, text } => Err(protocol::peer_error(code, text)),
            _ => Ok(SendReport {
                stored_name: w.offer.name.clone(),
                bytes: w.offer.size,
                elapsed: Duration::ZERO,
                resumed_from: 0,
                attempts: 1,
                skipped: true,
                bytes_sent: 0,
                bytes_reused: 0,
            }),
        });
        Ok(self)
    }
}
