//! The sending side of a delta (docs/protocol.md section 3.2): DELTA, the receiver's signature
//! of its old copy (checked: bounded, adding up to the old size), then the new version cut into
//! the same content-defined chunks, each one the receiver holds sent as COPY and the rest as
//! LITERAL data, and DONE with the whole file's XXH3-128.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use super::options::SendOptions;
use super::pipeline::{Pipe, Waiting};
use super::progress::{Bar, Progress};
use super::session::{unexpected, Outstanding, Results, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::delta::{chunk_hash, chunks, params, LITERAL_BLOCK, MAX_SIG_CHUNKS};
use crate::protocol::{self, Frame};
use crate::transport::Transport;

/// The receiver's chunks: hash → (index, length), the first of equal chunks.
type Index = HashMap<u64, (u32, u32)>;

/// What the new version is being turned into.
struct Out {
    /// A run of chunks to copy: first index, count.
    run: Option<(u32, u32)>,
    literal: Vec<u8>,
    /// Bytes written to the wire, bytes reused from the old copy.
    sent: u64,
    reused: u64,
    zstd: bool,
}

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
        let mut out = Out {
            run: None,
            literal: Vec::with_capacity(LITERAL_BLOCK),
            sent: 0,
            reused: 0,
            zstd: w.offer.encoding == protocol::ENCODING_ZSTD,
        };
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
            match index.get(&chunk_hash(&data)) {
                Some(&(i, len)) if len as usize == data.len() => {
                    out.copy(&mut self.wire, i, len)?
                }
                _ => out.add_literal(&mut self.wire, &data)?,
            }
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

impl Out {
    /// Chunk `i` of the old copy: extends the current run or starts one.
    fn copy(&mut self, w: &mut impl Write, i: u32, len: u32) -> Result<()> {
        self.flush_literal(w)?;
        self.reused += len as u64;
        match &mut self.run {
            Some((first, n)) if *first + *n == i => *n += 1,
            _ => {
                self.flush_run(w)?;
                self.run = Some((i, 1));
            }
        }
        Ok(())
    }

    fn add_literal(&mut self, w: &mut impl Write, data: &[u8]) -> Result<()> {
        self.flush_run(w)?;
        for piece in data.chunks(LITERAL_BLOCK) {
            let room = LITERAL_BLOCK - self.literal.len();
            let (now, later) = piece.split_at(room.min(piece.len()));
            self.literal.extend_from_slice(now);
            if self.literal.len() == LITERAL_BLOCK {
                self.flush_literal(w)?;
            }
            self.literal.extend_from_slice(later);
        }
        Ok(())
    }

    fn flush_run(&mut self, w: &mut impl Write) -> Result<()> {
        if let Some((index, count)) = self.run.take() {
            self.write(w, Frame::Copy { index, count })?;
        }
        Ok(())
    }

    fn flush_literal(&mut self, w: &mut impl Write) -> Result<()> {
        if self.literal.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.literal);
        let data = match self.zstd {
            true => zstd::bulk::compress(&data, 3).map_err(|e| Error::io("compressing", e))?,
            false => data,
        };
        self.write(w, Frame::Literal(data))?;
        self.literal = Vec::with_capacity(LITERAL_BLOCK);
        Ok(())
    }

    fn write(&mut self, w: &mut impl Write, f: Frame) -> Result<()> {
        let mut buf = Vec::with_capacity(64);
        f.encode(&mut buf);
        self.sent += buf.len() as u64;
        w.write_all(&buf)
            .map_err(|e| Error::io("sending a delta", e))
    }

    fn end(&mut self, w: &mut impl Write) -> Result<()> {
        self.flush_run(w)?;
        self.flush_literal(w)
    }
}
