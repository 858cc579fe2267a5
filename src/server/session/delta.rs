//! The receiving side of a delta (docs/protocol.md section 3.2): the old copy's signature sent
//! on DELTA, then the new version built in the temporary file from chunks of the old copy
//! (each checked against its hash as it is read) and literal data, verified like any content.
//! An old copy that changed underneath fails the file with code 14, and the sender sends it in
//! full.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::protocol::delta::{chunk_hash, chunks, LITERAL_DECODED_MAX};
use crate::protocol::{self, Code, Frame, SIG_PER_FRAME};
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::io::runtime::blocking;
use crate::server::io::wire::Stream;
use crate::server::session::native::{failed, Admitted, Received, Session};
use crate::storage::TempFile;

/// One chunk of the old copy.
struct Chunk {
    offset: u64,
    len: u32,
    hash: u64,
}

/// How building the new version went, apart from the connection.
enum Built {
    Ok,
    /// The old copy changed: a chunk read back differs from its signature.
    BasisChanged,
    Failed(Refusal),
}

impl<'a, S: Stream> Session<'_, 'a, S> {
    /// DELTA: sends the signature of the old copy of file `seq`, then reads its delta and DONE.
    pub(super) async fn receive_delta(&mut self, seq: u32) -> Result<()> {
        let adm = self.next_waiting(seq)?;
        let Some((basis, st)) = adm.basis else {
            return Err(Error::protocol(format!(
                "DELTA for file {seq}, which was not offered a basis"
            )));
        };
        let Admitted {
            offer,
            info,
            place,
            mut temp,
            mut hasher,
            space,
            ..
        } = adm;
        self.before_content(&offer, false).await?;
        let sig = self.send_signature(&basis, st.st_size as u64).await?;
        self.conn.in_file = true;
        let (mut built, done, copied) = self
            .apply(&basis, &sig, &offer, &mut temp, &mut hasher)
            .await?;
        self.conn.in_file = false;
        let now = rustix::fs::fstat(&basis).ok();
        let same = now.is_some_and(|n| {
            (n.st_size, n.st_mtime, n.st_mtime_nsec) == (st.st_size, st.st_mtime, st.st_mtime_nsec)
        });
        if matches!(built, Built::Ok) && !same {
            built = Built::BasisChanged;
        }
        if matches!(built, Built::Ok) {
            self.conn.shared.stats.delta_reused(copied);
        }
        let temp = match built {
            Built::Ok => Ok(temp),
            Built::Failed(r) => Err(r),
            Built::BasisChanged => Err(Refusal(
                Code::BasisChanged,
                format!("'{}' changed during the delta; send it in full", offer.name),
            )),
        };
        if let Err(r) = &temp {
            if r.0 == Code::BasisChanged {
                self.conn.commit().await?;
                let r = Refusal(r.0, r.1.clone());
                return self.conn.refuse(failed(seq, &r), r, &info).await;
            }
        }
        let file = Received {
            seq,
            offer,
            info,
            place,
            space,
        };
        self.finish(file, temp, done, hasher.digest128()).await
    }

    /// Cuts the old copy into chunks and sends their lengths and hashes in SIG frames, then
    /// the empty SIG that ends them. A read error ends the signature early: the sender then
    /// sends more literal data.
    async fn send_signature(&mut self, basis: &File, size: u64) -> Result<Vec<Chunk>> {
        // Reading and hashing the whole old copy: off the event loop.
        let sig = blocking(|| signature(basis, size));
        for (i, frame) in sig.chunks(SIG_PER_FRAME).enumerate() {
            let entries = frame.iter().map(|c| (c.len, c.hash)).collect();
            self.conn.queue_frame(Frame::Sig(entries));
            if i % 16 == 15 {
                self.conn.flush().await?;
            }
        }
        self.conn.queue_frame(Frame::Sig(Vec::new()));
        self.conn.flush().await?;
        Ok(sig)
    }

    /// Reads COPY and LITERAL frames up to DONE (returned, with the bytes copied from the old
    /// copy), writing the new version into `temp` and hashing it, one chunk at a time: the
    /// memory a delta takes does not grow with the file. A delta that refers past the
    /// signature, or builds more or fewer than the offered size, is a protocol error.
    async fn apply(
        &mut self,
        basis: &File,
        sig: &[Chunk],
        offer: &protocol::Offer,
        temp: &mut TempFile,
        hasher: &mut Xxh3,
    ) -> Result<(Built, (u8, Vec<u8>), u64)> {
        let mut out = Builder {
            built: Built::Ok,
            written: 0,
            copied: 0,
            size: offer.size,
            temp,
            hasher,
        };
        let mut buf = Vec::new();
        loop {
            match self.conn.wire.read_frame().await? {
                None => return Err(Error::protocol("sender closed the connection in a delta")),
                Some(Frame::Done { algorithm, digest }) => {
                    if out.written != offer.size {
                        return Err(Error::protocol(format!(
                            "delta built {} of the {} bytes offered",
                            out.written, offer.size
                        )));
                    }
                    return Ok((out.built, (algorithm, digest), out.copied));
                }
                Some(Frame::Copy { index, count }) => {
                    let (i, n) = (index as usize, count as usize);
                    if n == 0 || i.checked_add(n).is_none_or(|end| end > sig.len()) {
                        return Err(Error::protocol(format!(
                            "delta copies chunks {i}+{n} of a {}-chunk signature",
                            sig.len()
                        )));
                    }
                    for c in &sig[i..i + n] {
                        if !read_chunk(basis, c, &mut buf) {
                            out.built = Built::BasisChanged;
                        }
                        out.add(&buf)?;
                        out.copied += buf.len() as u64;
                    }
                }
                Some(Frame::Literal(data)) => out.add(&literal(data, offer)?)?,
                Some(f) => return Err(Error::protocol(format!("unexpected {f:?} in a delta"))),
            }
        }
    }
}

/// The old copy's chunks, at most `MAX_SIG_CHUNKS`. A read error ends the signature early: the
/// sender then sends more literal data.
fn signature(basis: &File, size: u64) -> Vec<Chunk> {
    let mut sig = Vec::new();
    let mut offset = 0u64;
    for data in chunks(basis, size) {
        let Ok(data) = data else { break };
        sig.push(Chunk {
            offset,
            len: data.len() as u32,
            hash: chunk_hash(&data),
        });
        offset += data.len() as u64;
        if sig.len() >= protocol::delta::MAX_SIG_CHUNKS {
            break;
        }
    }
    sig
}

/// The new version as a delta builds it: its bytes written to the temporary file and hashed as
/// they come, never more than the offered size.
struct Builder<'t> {
    built: Built,
    written: u64,
    /// Of `written`, the bytes taken from the old copy.
    copied: u64,
    size: u64,
    temp: &'t mut TempFile,
    hasher: &'t mut Xxh3,
}

impl Builder<'_> {
    /// Appends `piece` (a chunk of the old copy or literal data) to the new version.
    fn add(&mut self, piece: &[u8]) -> Result<()> {
        self.written += piece.len() as u64;
        if self.written > self.size {
            return Err(Error::protocol(format!(
                "delta builds more than the {} bytes offered",
                self.size
            )));
        }
        self.hasher.update(piece);
        if let (Built::Ok, Err(e)) = (&self.built, self.temp.file().write_all(piece)) {
            self.built = Built::Failed(io_refusal(e));
        }
        Ok(())
    }
}

/// Reads chunk `c` of the old copy into `buf` (which is reused: it never holds more than one
/// chunk); false when it no longer reads back as signed.
fn read_chunk(basis: &File, c: &Chunk, buf: &mut Vec<u8>) -> bool {
    buf.resize(c.len as usize, 0);
    basis.read_exact_at(buf, c.offset).is_ok() && chunk_hash(buf) == c.hash
}

/// A LITERAL frame's new bytes, decompressed when the file's encoding is zstd.
fn literal(data: Vec<u8>, offer: &protocol::Offer) -> Result<Vec<u8>> {
    if offer.encoding != protocol::ENCODING_ZSTD {
        return Ok(data);
    }
    zstd::bulk::decompress(&data, LITERAL_DECODED_MAX)
        .map_err(|e| Error::protocol(format!("corrupt compressed delta data: {e}")))
}
