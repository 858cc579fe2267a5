//! The receiving side of a delta (docs/protocol.md section 3.2): the old copy's signature sent
//! on DELTA, then the new version built in the temporary file from chunks of the old copy
//! (each checked against its hash as it is read) and literal data, verified like any content.
//! An old copy that changed underneath fails the file with code 14, and the sender sends it in
//! full.

use std::fs::File;
use std::io::Write;
use std::mem::size_of;
use std::os::unix::fs::FileExt;

use tokio::sync::OwnedSemaphorePermit;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::protocol::delta::{chunk_hash, chunks, LITERAL_DECODED_MAX};
use crate::protocol::{self, Code, Frame, SIG_PER_FRAME};
use crate::server::files::admit::Resolved;
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::io::runtime::blocking;
use crate::server::io::wire::Stream;
use crate::server::session::native::{failed, Admitted, Received, Session};
use crate::storage::{self, TempFile};

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

/// The old copy a delta is built against: the file, opened again when the delta comes, and
/// its signature as sent.
struct Old<'f> {
    file: &'f File,
    sig: Vec<Chunk>,
    /// The signature's share of the server's memory for work.
    _memory: OwnedSemaphorePermit,
}

impl<'a, S: Stream> Session<'_, 'a, S> {
    /// DELTA: sends the signature of the old copy of file `seq`, then reads its delta and DONE.
    /// Nothing was kept open while the file waited: the old copy is opened again (it must be
    /// the file BASIS described; gone or changed, it gets an empty signature and the whole new
    /// version comes as literal data), and so are the new version's place and temporary file.
    pub(super) async fn receive_delta(&mut self, seq: u32) -> Result<()> {
        let adm = self.next_waiting(seq)?;
        let Some(st) = adm.basis else {
            return Err(Error::protocol(format!(
                "DELTA for file {seq}, which was not offered a basis"
            )));
        };
        let Admitted {
            offer,
            info,
            storage,
            mut hasher,
            space,
            ..
        } = adm;
        self.before_content(&offer, false).await?;
        let (opened, fds) = self.conn.open_storage(&offer, storage).await?;
        let shared = self.conn.shared;
        let basis = blocking(|| {
            Resolved::new(&shared.sink, &offer)
                .basis(&offer)
                .map(|(f, _)| f)
                .filter(|f| storage::same_file(f, &st))
        });
        let old = self
            .send_signature(basis.as_ref(), st.st_size as u64)
            .await?;
        let (mut place, mut temp, mut built) = match opened {
            Ok((place, temp)) => (Some(place), Some(temp), Built::Ok),
            Err(r) => (None, None, Built::Failed(r)),
        };
        self.conn.in_file = true;
        let (built_now, done, copied) = self
            .apply(old.as_ref(), &offer, temp.as_mut(), &mut hasher, built)
            .await?;
        built = built_now;
        self.conn.in_file = false;
        // The old copy must not have changed while it was read.
        if matches!(built, Built::Ok)
            && !old.as_ref().is_none_or(|o| storage::same_file(o.file, &st))
        {
            built = Built::BasisChanged;
        }
        if matches!(built, Built::Ok) {
            self.conn.shared.stats.delta_reused(copied);
        }
        let landed = match (built, place.take(), temp.take()) {
            (Built::Ok, Some(place), Some(temp)) => Ok((place, temp)),
            (built, place, _) => {
                blocking(|| drop(place));
                Err(match built {
                    Built::Failed(r) => r,
                    _ => Refusal(
                        Code::BasisChanged,
                        format!("'{}' changed during the delta; send it in full", offer.name),
                    ),
                })
            }
        };
        if let Err(r) = &landed {
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
            space,
            fds: Some(fds),
        };
        self.finish(file, landed, done, hasher.digest128()).await
    }

    /// Cuts the old copy into chunks and sends their lengths and hashes in SIG frames, then
    /// the empty SIG that ends them (at once, without an old copy). A read error ends the
    /// signature early: the sender then sends more literal data.
    async fn send_signature<'f>(
        &mut self,
        basis: Option<&'f File>,
        size: u64,
    ) -> Result<Option<Old<'f>>> {
        let old = match basis {
            Some(file) => {
                // Its memory first (a connection waits when others hold it all), then reading
                // and hashing the whole old copy, off the event loop.
                let most = most_chunks(size);
                let memory = (self.conn.shared.budget)
                    .work_memory((most * size_of::<Chunk>()) as u64)
                    .await;
                Some(Old {
                    file,
                    sig: blocking(|| signature(file, size, most)),
                    _memory: memory,
                })
            }
            None => None,
        };
        let sig = old.as_ref().map_or(&[][..], |o| &o.sig[..]);
        for (i, frame) in sig.chunks(SIG_PER_FRAME).enumerate() {
            let entries = frame.iter().map(|c| (c.len, c.hash)).collect();
            self.conn.queue_frame(Frame::Sig(entries));
            if i % 16 == 15 {
                self.conn.flush().await?;
            }
        }
        self.conn.queue_frame(Frame::Sig(Vec::new()));
        self.conn.flush().await?;
        Ok(old)
    }

    /// Reads COPY and LITERAL frames up to DONE (returned, with the bytes copied from the old
    /// copy), writing the new version into `temp` (when there is one: else the delta is read
    /// and dropped) and hashing it, one chunk at a time: the memory a delta takes does not grow
    /// with the file. A delta that refers past the signature, or builds more or fewer than the
    /// offered size, is a protocol error.
    async fn apply(
        &mut self,
        old: Option<&Old<'_>>,
        offer: &protocol::Offer,
        temp: Option<&mut TempFile>,
        hasher: &mut Xxh3,
        built: Built,
    ) -> Result<(Built, (u8, Vec<u8>), u64)> {
        let mut out = Builder {
            built,
            written: 0,
            copied: 0,
            size: offer.size,
            temp,
            hasher,
        };
        let sig = old.map_or(&[][..], |o| &o.sig[..]);
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
                    let end = i.checked_add(n).filter(|&e| n > 0 && e <= sig.len());
                    let (Some(end), Some(old)) = (end, old) else {
                        return Err(Error::protocol(format!(
                            "delta copies chunks {i}+{n} of a {}-chunk signature",
                            sig.len()
                        )));
                    };
                    for c in &sig[i..end] {
                        if !read_chunk(old.file, c, &mut buf) {
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

/// The most chunks an old copy of `size` bytes is cut into: one per minimum chunk size.
fn most_chunks(size: u64) -> usize {
    let (min, _, _) = protocol::delta::params(size);
    usize::try_from(size / min as u64 + 1).map_or(protocol::delta::MAX_SIG_CHUNKS, |n| {
        n.min(protocol::delta::MAX_SIG_CHUNKS)
    })
}

/// The signature of the old copy, at most `most` chunks (its memory is reserved once). A read
/// error ends it early: the sender then sends more literal data.
fn signature(basis: &File, size: u64, most: usize) -> Vec<Chunk> {
    let mut sig = Vec::with_capacity(most);
    let mut offset = 0u64;
    for data in chunks(basis, size) {
        let Ok(data) = data else { break };
        sig.push(Chunk {
            offset,
            len: data.len() as u32,
            hash: chunk_hash(&data),
        });
        offset += data.len() as u64;
        if sig.len() >= most {
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
    temp: Option<&'t mut TempFile>,
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
        if let (Built::Ok, Some(temp)) = (&self.built, self.temp.as_mut()) {
            if let Err(e) = temp.file().write_all(piece) {
                self.built = Built::Failed(io_refusal(e));
            }
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
