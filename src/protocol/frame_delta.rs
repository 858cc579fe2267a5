//! The frames of pipelined decisions and delta transfer (docs/protocol.md sections 3.1 and
//! 3.2): DATA, BASIS, DELTA, SIG, COPY and LITERAL, each length bounded like every frame.

use super::frame::{ty, Cursor, Frame};
use super::types::MAX_FRAME;
use crate::error::{Error, Result};

/// Most chunks in one SIG frame: 4 + 12 × 5,461 bytes fit in a frame.
pub const SIG_PER_FRAME: usize = 5461;

impl Frame {
    /// The frames of pipelined decisions and delta (docs/protocol.md 3.1, 3.2).
    pub(super) fn decode_delta(t: u8, p: &mut Cursor<'_>) -> Result<Frame> {
        Ok(match t {
            ty::DATA => Frame::Data { seq: p.u32()? },
            ty::BASIS => Frame::Basis { old_size: p.u64()? },
            ty::DELTA => Frame::Delta { seq: p.u32()? },
            ty::SIG => {
                let n = p.u32()? as usize;
                if n > SIG_PER_FRAME {
                    return Err(Error::protocol(format!("SIG of {n} chunks")));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push((p.u32()?, p.u64()?));
                }
                Frame::Sig(v)
            }
            ty::COPY => Frame::Copy {
                index: p.u32()?,
                count: p.u32()?,
            },
            _ => Frame::Literal(std::mem::take(&mut p.0).to_vec()),
        })
    }

    /// The payload of the frames of pipelined decisions and delta (docs/protocol.md 3.1, 3.2).
    pub(super) fn encode_delta(&self, out: &mut Vec<u8>) -> u8 {
        match self {
            Frame::Data { seq } => {
                out.extend_from_slice(&seq.to_be_bytes());
                ty::DATA
            }
            Frame::Basis { old_size } => {
                out.extend_from_slice(&old_size.to_be_bytes());
                ty::BASIS
            }
            Frame::Delta { seq } => {
                out.extend_from_slice(&seq.to_be_bytes());
                ty::DELTA
            }
            Frame::Sig(chunks) => {
                let chunks = &chunks[..chunks.len().min(SIG_PER_FRAME)];
                out.extend_from_slice(&(chunks.len() as u32).to_be_bytes());
                for (len, hash) in chunks {
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&hash.to_be_bytes());
                }
                ty::SIG
            }
            Frame::Copy { index, count } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
                ty::COPY
            }
            Frame::Literal(bytes) => {
                out.extend_from_slice(&bytes[..bytes.len().min(MAX_FRAME as usize)]);
                ty::LITERAL
            }
            _ => unreachable!("encoded in Frame::encode"),
        }
    }
}
