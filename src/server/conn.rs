//! One connection being served, whatever its protocol: the buffered wire, reading a file's
//! content into its temporary file, and committing verified files with their verdicts.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use xxhash_rust::xxh3::Xxh3;

use super::admit::Policy;
use super::commit::{commit_group, Pending};
use super::config::FileInfo;
use super::refusal::{io_refusal, Refusal};
use super::shared::Shared;
use crate::compress;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Code, Frame, Offer};
use crate::storage::{self, ObjectMeta, Place, TempFile};
use crate::transport::{Transport, Wire};

/// The content buffer's largest size.
const BUFFER_SIZE: usize = 256 * 1024;
/// The read buffer: room for the largest frame (65,541 bytes) and an eager file's content with
/// its DONE, so either can be checked as complete before a verdict is held for it.
const READ_BUFFER: usize = 160 * 1024;
/// The reason a sender is given when the server stops under it (code 8).
pub(crate) const STOPPING: &str = "server stopping";

pub(crate) struct Connection<'a, S: Transport> {
    pub(crate) shared: &'a Shared,
    /// This connection's id in the server's registry.
    pub(crate) id: u64,
    pub(crate) wire: Wire<S>,
    pub(crate) peer: SocketAddr,
    /// Content buffer, sized to the largest file of this connection up to [`BUFFER_SIZE`].
    buf: Vec<u8>,
    /// A file's content is flowing: an error now loses that file.
    pub(crate) in_file: bool,
    /// Verified files waiting for the group commit, in DONE order.
    pub(crate) pending: Vec<Pending>,
    /// A kn-sock 0.3 peer: it gets no frames.
    pub(crate) legacy: bool,
}

impl<'a, S: Transport> Connection<'a, S> {
    pub(crate) fn new(shared: &'a Shared, stream: S, peer: SocketAddr, id: u64) -> Self {
        Connection {
            shared,
            id,
            wire: Wire::new(
                stream,
                READ_BUFFER,
                16 * 1024,
                Some(shared.config.idle_timeout),
            ),
            peer,
            buf: Vec::new(),
            in_file: false,
            pending: Vec::new(),
            legacy: false,
        }
    }

    /// What admission weighs for this connection.
    pub(crate) fn policy(&self, caps: u32) -> Policy<'a> {
        Policy {
            config: &self.shared.config,
            caps,
            stopping: self.shared.refuses_new(),
            space: &self.shared.space,
        }
    }

    /// Tells the peer why the connection ends (an ERROR frame with the code for the error's
    /// kind, or code 8 when the server is stopping, whatever the error it caused), unless it is
    /// a kn-sock 0.3 peer, which cannot read one.
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        if !self.legacy {
            let (code, text) = match self.shared.is_stopping() {
                true => (Code::ShuttingDown, STOPPING),
                false => (Code::for_kind(e.kind()), e.message()),
            };
            let frame = Frame::Error {
                code: code as u16,
                text: text.to_string(),
            };
            let _ = frame
                .write_to(&mut self.wire)
                .and_then(|()| self.wire.flush());
        }
        e
    }

    /// Writes `bytes` and flushes them.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.wire
            .write_all(bytes)
            .and_then(|()| self.wire.flush())
            .map_err(|e| Error::io("writing to the sender", e))
    }

    /// Writes a frame without flushing it: it goes out with the next flush.
    pub(crate) fn queue_frame(&mut self, f: Frame) -> Result<()> {
        f.write_to(&mut self.wire)
            .map_err(|e| Error::io("writing to the sender", e))
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        self.wire
            .flush()
            .map_err(|e| Error::io("writing to the sender", e))
    }

    pub(crate) fn send_frame(&mut self, f: Frame) -> Result<()> {
        let mut out = Vec::with_capacity(64);
        f.encode(&mut out);
        self.send(&out)
    }

    fn grow_buffer(&mut self, size: u64) {
        let want = BUFFER_SIZE.min(size.max(1) as usize);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
    }

    /// Reads exactly the offered bytes into the temporary file, hashing them; a large file
    /// bound for an object store goes up as it arrives (`place`). A local write or store
    /// failure does not end the connection: the rest is read and dropped, and the file refused.
    /// With `partial`, an interrupted upload keeps its data under that name for a resume.
    pub(crate) fn read_content(
        &mut self,
        mut temp: TempFile,
        place: &mut Place,
        offer: &Offer,
        mut hasher: Xxh3,
        partial: Option<&str>,
    ) -> Result<(std::result::Result<TempFile, Refusal>, u128)> {
        self.grow_buffer(offer.size);
        let start = temp
            .written()
            .map_err(|e| Error::io("reading the temporary file", e))?;
        let remaining = offer.size.saturating_sub(start);
        let meta = self.object_meta(offer);
        let mut store_err = place
            .begin(&temp, &meta, self.shared.config.overwrite)
            .and_then(|()| place.progress(start))
            .err();
        let (mut write_err, mut written) = (None, start);
        let shared = self.shared;
        // A stopping server reads no further: the sender is told why as the connection ends.
        let mut store = |b: &[u8]| -> Result<()> {
            if shared.is_stopping() {
                return Err(Error::new(ErrorKind::Cancelled, STOPPING));
            }
            hasher.update(b);
            if write_err.is_none() {
                if let Err(e) = temp.file().write_all(b) {
                    write_err = Some(e);
                }
                written += b.len() as u64;
                if store_err.is_none() {
                    store_err = place.progress(written).err();
                }
            }
            Ok(())
        };
        let received = match offer.encoding {
            protocol::ENCODING_ZSTD => {
                compress::decode_blocks(&mut self.wire, remaining, &mut self.buf, &mut store)
                    .map_err(|e| e.context(format!("receiving '{}'", offer.name)))
            }
            _ => read_raw(&mut self.wire, &mut self.buf, remaining, offer, &mut store),
        };
        if let Err(e) = received {
            // A lost connection keeps its data for a resume; corrupt compressed content does not.
            let corrupt =
                offer.encoding == protocol::ENCODING_ZSTD && e.kind() == ErrorKind::Protocol;
            if let (Some(p), None, false) = (partial, &write_err, corrupt) {
                let _ = temp.keep_as(p);
            }
            return Err(e);
        }
        let temp = match (write_err, store_err) {
            (Some(e), _) => Err(io_refusal(e)),
            (None, Some(e)) => Err(Refusal::from(e)),
            (None, None) => Ok(temp),
        };
        Ok((temp, hasher.digest128()))
    }

    /// An object's metadata as the offer gives it: the digest only if the sender sent one.
    fn object_meta(&self, offer: &Offer) -> ObjectMeta {
        let digest = (offer.algorithm == protocol::ALGO_XXH3_128)
            .then(|| <[u8; 16]>::try_from(offer.digest.as_slice()).ok())
            .flatten();
        ObjectMeta {
            size: offer.size,
            mtime_secs: offer.mtime_secs,
            mtime_nanos: offer.mtime_nanos,
            mode: storage::effective_mode(offer.mode, self.shared.config.mode_mask),
            digest,
        }
    }

    /// Reads and drops a refused file's content (at most `offer.size` bytes once decoded).
    pub(crate) fn drop_content(&mut self, offer: &Offer) -> Result<()> {
        self.grow_buffer(16 * 1024);
        match offer.encoding {
            protocol::ENCODING_ZSTD => {
                compress::decode_blocks(&mut self.wire, offer.size, &mut self.buf, |_| Ok(()))
            }
            _ => read_raw(
                &mut self.wire,
                &mut self.buf,
                offer.size,
                offer,
                &mut |_| Ok(()),
            ),
        }
    }

    /// Commits the pending group, then sends the verdicts (not to a kn-sock 0.3 peer, which
    /// gets none) and tells the handlers.
    pub(crate) fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.pending);
        let done = commit_group(group, &self.shared.config);
        let mut out = Vec::with_capacity(64 * done.verdicts.len());
        for f in &done.verdicts {
            f.encode(&mut out);
        }
        // Counted before the sender hears, so its OK is never ahead of the statistics.
        let stats = &self.shared.stats;
        stats.wire_bytes(self.wire.take_read());
        done.failed
            .iter()
            .for_each(|(r, _)| stats.file_refused(r.0, true));
        done.stored.iter().for_each(|i| stats.file_received(i.size));
        let sent = match self.legacy {
            true => Ok(()),
            false => self.send(&out),
        };
        for (r, info) in done.failed {
            self.shared.report_refusal(r, &info, true);
        }
        for info in &done.stored {
            for h in &self.shared.config.handlers {
                let _ = catch_unwind(AssertUnwindSafe(|| h(info)));
            }
        }
        sent
    }

    /// Sends a refusal (REJECT for an offer, FAILED for content) and reports it.
    pub(crate) fn refuse(&mut self, frame: Frame, r: Refusal, info: &FileInfo) -> Result<()> {
        let after_data = matches!(frame, Frame::Failed { .. });
        self.shared.stats.file_refused(r.0, after_data);
        self.send_frame(frame)?;
        self.shared.report_refusal(r, info, after_data);
        Ok(())
    }
}

impl<S: Transport> Drop for Connection<'_, S> {
    /// The bytes read since the last commit count too.
    fn drop(&mut self) {
        self.shared.stats.wire_bytes(self.wire.take_read());
    }
}

/// Reads exactly `len` raw content bytes of `offer`, handing each piece to `store`.
fn read_raw(
    r: &mut impl Read,
    buf: &mut [u8],
    len: u64,
    offer: &Offer,
    store: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut remaining = len;
    while remaining > 0 {
        let want = buf.len().min(remaining as usize);
        match r.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::protocol(format!(
                    "sender closed the connection after {} of {} bytes of '{}'",
                    offer.size - remaining,
                    offer.size,
                    offer.name
                )))
            }
            Ok(n) => {
                store(&buf[..n])?;
                remaining -= n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("receiving '{}'", offer.name), e)),
        }
    }
    Ok(())
}

/// Checks the DONE frame's digest against the content's, gives the file its metadata and
/// records the digest on it (so a later run need not hash it).
pub(super) fn verify(
    mut temp: TempFile,
    offer: &Offer,
    done: (u8, Vec<u8>),
    digest: u128,
    mask: u32,
) -> std::result::Result<TempFile, Refusal> {
    if done.0 != protocol::ALGO_XXH3_128 || done.1 != digest.to_be_bytes() {
        return Err(Refusal(
            Code::Checksum,
            format!("checksum mismatch for '{}'", offer.name),
        ));
    }
    temp.set_metadata(offer.mode, mask, offer.mtime_secs, offer.mtime_nanos)
        .map_err(io_refusal)?;
    crate::storage::remember(temp.file(), digest.to_be_bytes());
    Ok(temp)
}
