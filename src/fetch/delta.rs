//! A fetch's delta against the local old copy (docs/protocol.md section 3.4): the old copy's
//! signature sent with DELTA in place of a WANT, then the new version built from chunks of the
//! old copy (each checked against its hash as it is read) and literal data. An old copy that
//! changed meanwhile fails the file, and the next attempt fetches it in full.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::land::{Dest, Landing};
use super::options::FetchOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::delta::{chunk_hash, chunks, MAX_SIG_CHUNKS};
use crate::protocol::{self, Frame, Offer, SIG_PER_FRAME};
use crate::storage;
use crate::transport::{Transport, Wire};

/// The local old copy a delta is built against, as it was signed.
pub(super) struct Basis {
    file: File,
    st: rustix::fs::Stat,
    /// Its chunks: offset, length, hash.
    sig: Vec<(u64, u32, u64)>,
}

/// What a delta brought: bytes of literal data, bytes taken from the old copy.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) literal: u64,
    pub(super) reused: u64,
    /// The old copy changed during the delta: the file is to be fetched again in full.
    pub(super) changed: bool,
}

/// The old copy under `local` when a delta is worth it (a listed file of at least 1 MiB, an
/// old copy of at least 64 KiB) and its signature fits in what is left of the fetch's bound
/// (`room` chunks, reduced by what it takes).
pub(super) fn basis(dest: &Dest, local: &str, offer: &Offer, room: &mut usize) -> Option<Basis> {
    if offer.size < protocol::DELTA_MIN {
        return None;
    }
    let (file, st) = dest.old_copy(local)?;
    let size = st.st_size as u64;
    if size < protocol::DELTA_MIN_BASIS {
        return None;
    }
    let mut sig = Vec::new();
    let mut offset = 0u64;
    for data in chunks(&file, size) {
        let data = data.ok()?;
        sig.push((offset, data.len() as u32, chunk_hash(&data)));
        offset += data.len() as u64;
        if sig.len() > *room {
            return None;
        }
    }
    *room -= sig.len();
    (offset == size).then_some(Basis { file, st, sig })
}

/// The most chunks the signatures of one fetch may have.
pub(super) const ROOM: usize = MAX_SIG_CHUNKS;

/// Writes DELTA (seq) and the old copy's signature, ended by an empty SIG.
pub(super) fn write_want(w: &mut impl Write, seq: u32, b: &Basis) -> std::io::Result<()> {
    Frame::Delta { seq }.write_to(w)?;
    for part in b.sig.chunks(SIG_PER_FRAME) {
        Frame::Sig(part.iter().map(|&(_, len, hash)| (len, hash)).collect()).write_to(w)?;
    }
    Frame::Sig(Vec::new()).write_to(w)
}

/// Reads the delta (COPY and LITERAL frames up to DONE, returned) into `landing`, reporting
/// progress. A COPY past the signature or more or fewer bytes than listed is a protocol error
/// (the connection cannot go on); an old copy that no longer reads back as signed, or whose
/// status changed, fails the file alone (`changed` is set).
pub(super) fn apply<S: Transport>(
    wire: &mut Wire<S>,
    offer: &Offer,
    b: &Basis,
    landing: &mut Result<Landing>,
    opts: &FetchOptions,
    counts: &mut Counts,
) -> Result<(u8, Vec<u8>)> {
    let (name, size) = (crate::printable(&offer.name), offer.size);
    let mut built = 0u64;
    let mut changed = false;
    let mut buf = Vec::new();
    loop {
        let frame = Frame::read_from(wire)?;
        let closed = || Error::protocol("receiver closed the connection in a delta");
        let piece = match frame.ok_or_else(closed)? {
            Frame::Done { algorithm, digest } if built == size => {
                if changed || !storage::same_file(&b.file, &b.st) {
                    counts.changed = true;
                    *landing = Err(Error::new(
                        ErrorKind::Integrity,
                        format!("'{name}': the local old copy changed during the delta; fetch it again in full"),
                    ));
                }
                return Ok((algorithm, digest));
            }
            Frame::Copy { index, count } => {
                let (i, n) = (index as usize, count as usize);
                let end = i.checked_add(n).filter(|&e| n > 0 && e <= b.sig.len());
                let Some(end) = end else {
                    return Err(Error::protocol(format!(
                        "the delta of '{name}' copies chunks {i}+{n} of {}",
                        b.sig.len()
                    )));
                };
                buf.clear();
                for &(offset, len, hash) in &b.sig[i..end] {
                    let at = buf.len();
                    buf.resize(at + len as usize, 0);
                    let ok = b.file.read_exact_at(&mut buf[at..], offset).is_ok();
                    changed |= !ok || chunk_hash(&buf[at..]) != hash;
                }
                counts.reused += buf.len() as u64;
                std::mem::take(&mut buf)
            }
            Frame::Literal(data) => {
                counts.literal += data.len() as u64;
                data
            }
            f => {
                return Err(Error::protocol(format!(
                    "expected COPY, LITERAL or DONE in the delta of '{name}' ({built} of {size} bytes), got {f:?}"
                )))
            }
        };
        built += piece.len() as u64;
        if built > size {
            return Err(Error::protocol(format!(
                "the delta of '{name}' builds more than its {size} bytes"
            )));
        }
        if let Ok(l) = landing {
            if let Err(e) = l.write(&piece) {
                *landing = Err(e);
            }
        }
        buf = piece;
        if let Some(p) = &opts.progress {
            if !p(&offer.name, built, size) {
                let e = Error::new(
                    ErrorKind::AbortedByCallback,
                    "aborted by the progress callback",
                );
                return Err(e);
            }
        }
    }
}
