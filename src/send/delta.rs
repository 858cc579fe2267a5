//! The sending side of a delta (docs/protocol.md section 3.2): DELTA, the receiver's signature
//! of its old copy (checked: bounded, adding up to the old size), then the new version cut into
//! the same content-defined chunks, each one the receiver holds sent as COPY and the rest as
//! LITERAL data, and DONE with the whole file's XXH3-128.

use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use super::options::SendOptions;
use super::pipeline::{Pipe, Waiting};
use super::progress::{Bar, Progress};
use super::session::{unexpected, Outstanding, Results, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::delta::{chunks, params, MAX_SIG_CHUNKS};
use crate::protocol::delta_out::{DeltaOut, Index};
use crate::protocol::{self, Frame};
use crate::transport::Transport;

impl<S: Transport> Session<S> {
    /// Sends file `w` as a delta against the receiver's old copy of `old_size` bytes.
    pub(super) fn send_delta(
        &mut self,
        mut w: Waiting,
        old_size: u64,
        opts: &SendOptions,
        bar: Option<&Bar>,
        pipe: &mut Pipe<'_>,
        results: &mut Results,
    ) -> Result<()> {
        let started = Instant::now();
        Frame::Delta { seq: w.seq }
            .write_to(&mut self.wire)
            .map_err(|e| Error::io("asking for a signature", e))?;
        self.flush()?;
        let index = self.read_signature(old_size, pipe, results)?;
        let progress = Progress::new(opts, Some(w.place), bar);
        if let Some(b) = bar {
            b.set_message(&w.offer.name);
        }
        let mut out = DeltaOut::new(w.offer.encoding == protocol::ENCODING_ZSTD);
        let mut hasher = Xxh3::new();
        let mut read = 0u64;
        // Progress goes in steps of chunk_size, as for a full send, whatever the chunks' sizes.
        let step = opts.chunk_size as u64;
        let mut next_report = step;
        progress.report(&w.offer.name, 0, w.offer.size)?;
        for data in chunks(&mut w.file, old_size) {
            let data = data.map_err(|e| Error::io(format!("reading {}", w.offer.name), e))?;
            hasher.update(&data);
            read += data.len() as u64;
            out.chunk(&mut self.wire, &index, &data)?;
            progress.advance(data.len() as u64);
            while next_report < read.min(w.offer.size) {
                progress.report(&w.offer.name, next_report, w.offer.size)?;
                next_report += step;
            }
        }
        if w.offer.size > 0 {
            progress.report(&w.offer.name, read.min(w.offer.size), w.offer.size)?;
        }
        if read != w.offer.size {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{}: file changed size while being sent", w.offer.name),
            ));
        }
        out.end(&mut self.wire)?;
        self.done(hasher.digest128())?;
        self.outstanding.push_back(Outstanding {
            seq: w.seq,
            index: w.index,
            bytes: w.offer.size,
            offset: 0,
            started,
            sent: out.sent,
            reused: out.reused,
        });
        Ok(())
    }

    /// Reads SIG frames up to the empty one (handling answers and verdicts that come first)
    /// and checks them: at most `MAX_SIG_CHUNKS` chunks, each within the chunking's bounds,
    /// adding up to `old_size`. Anything else is a corrupt signature.
    fn read_signature(
        &mut self,
        old_size: u64,
        pipe: &mut Pipe<'_>,
        results: &mut Results,
    ) -> Result<Index> {
        let (_, _, max) = params(old_size);
        let mut index = Index::new();
        let (mut count, mut total) = (0usize, 0u64);
        loop {
            let chunks = match self.next_frame()? {
                Frame::Sig(c) if c.is_empty() => break,
                Frame::Sig(c) => c,
                f @ (Frame::Accept { .. }
                | Frame::Basis { .. }
                | Frame::Reject { .. }
                | Frame::Skip
                | Frame::Ok { .. }
                | Frame::Failed { .. }
                | Frame::Error { .. }) => {
                    self.dispatch(f, pipe, results)?;
                    continue;
                }
                f => return Err(unexpected(&f, "a signature")),
            };
            for (len, hash) in chunks {
                if len == 0 || len > max || count >= MAX_SIG_CHUNKS {
                    return Err(Error::protocol("corrupt signature from the receiver"));
                }
                index.entry(hash).or_insert((count as u32, len));
                count += 1;
                total += len as u64;
            }
        }
        if total != old_size {
            return Err(Error::protocol(format!(
                "corrupt signature: its chunks add up to {total} bytes, not {old_size}"
            )));
        }
        Ok(index)
    }
}
