//! Turning a new version into a delta (docs/protocol.md sections 3.2 and 3.4): each chunk the
//! other side's signature holds becomes a COPY (consecutive ones one COPY), the rest LITERAL
//! data; used by a sender and by a receiver serving a fetch.

use std::collections::HashMap;
use std::io::Write;

use super::delta::LITERAL_BLOCK;
use super::Frame;
use crate::error::{Error, Result};

/// A signature's chunks by hash: hash → (index, length), the first of equal chunks.
pub(crate) type Index = HashMap<u64, (u32, u32)>;

/// The frames of a delta being written.
pub(crate) struct DeltaOut {
    /// A run of chunks to copy: first index, count.
    run: Option<(u32, u32)>,
    literal: Vec<u8>,
    /// Bytes written to the wire, bytes reused from the old copy.
    pub(crate) sent: u64,
    pub(crate) reused: u64,
    zstd: bool,
}

impl DeltaOut {
    /// A delta whose LITERAL data is compressed (one zstd frame each) when `zstd`.
    pub(crate) fn new(zstd: bool) -> DeltaOut {
        DeltaOut {
            run: None,
            literal: Vec::with_capacity(LITERAL_BLOCK),
            sent: 0,
            reused: 0,
            zstd,
        }
    }

    /// One chunk of the new version: a COPY when `index` holds it, else literal data.
    pub(crate) fn chunk(&mut self, w: &mut impl Write, index: &Index, data: &[u8]) -> Result<()> {
        match index.get(&super::delta::chunk_hash(data)) {
            Some(&(i, len)) if len as usize == data.len() => self.copy(w, i, len),
            _ => self.add_literal(w, data),
        }
    }

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

    /// Writes what is still pending: the last run or literal data.
    pub(crate) fn end(&mut self, w: &mut impl Write) -> Result<()> {
        self.flush_run(w)?;
        self.flush_literal(w)
    }
}
