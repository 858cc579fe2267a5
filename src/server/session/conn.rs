//! One connection being served, whatever its protocol: the buffered wire, reading a file's
//! content into its temporary file, and committing verified files with their verdicts.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::compress::BlockDecoder;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Code, Frame, Offer};
use crate::server::config::FileInfo;
use crate::server::files::admit::Policy;
use crate::server::files::commit::{commit_group, Pending};
use crate::server::files::objects::Source;
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::io::cancel::Cancel;
use crate::server::io::runtime::{blocking, blocking_if};
use crate::server::io::serial::Serial;
use crate::server::io::wire::{Stream, Wire};
use crate::server::shared::{Shared, STOPPING};
use crate::storage::{self, ObjectMeta, Place, StoreError, TempFile};

/// The content buffer's largest size.
const BUFFER_SIZE: usize = 256 * 1024;

pub(crate) struct Connection<'a, S: Stream> {
    pub(crate) shared: &'a Shared,
    /// The same, owned: what the callbacks that run after a commit hold.
    owner: Arc<Shared>,
    /// Those callbacks, in commit order, on the blocking pool.
    pub(crate) callbacks: Serial,
    /// This connection's id in the server's registry.
    pub(crate) id: u64,
    pub(crate) wire: Wire<S>,
    pub(crate) peer: SocketAddr,
    /// Content buffer, sized to the file being received up to [`BUFFER_SIZE`], and given back
    /// once its content is in.
    buf: Vec<u8>,
    /// A file's content is flowing: an error now loses that file.
    pub(crate) in_file: bool,
    /// Verified files waiting for the group commit, in DONE order.
    pub(crate) pending: Vec<Pending>,
    /// A kn-sock 0.3 peer: it gets no frames.
    pub(crate) legacy: bool,
}

impl<'a, S: Stream> Connection<'a, S> {
    pub(crate) fn new(
        shared: &'a Arc<Shared>,
        stream: S,
        peer: SocketAddr,
        id: u64,
        cancel: Arc<Cancel>,
    ) -> Self {
        Connection {
            shared,
            owner: Arc::clone(shared),
            callbacks: Serial::new(Arc::clone(&shared.drains)),
            id,
            wire: Wire::new(
                stream,
                shared.config.idle_timeout,
                cancel,
                shared.budget.work(),
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
    /// An error that carries a refusal's code (content of unknown size past a limit) sends that
    /// code and text, then reads and drops what the sender still sends for a moment, so the
    /// frame is not lost to a reset while the sender writes (docs/protocol.md section 3.3).
    pub(crate) async fn fail(&mut self, e: Error) -> Error {
        if !self.legacy {
            let refusal = e
                .peer_reason()
                .and_then(|r| Some((Code::from_u16(r.code)?, &r.text)));
            let (code, text) = match (self.shared.is_stopping(), refusal) {
                (true, _) => (Code::ShuttingDown, STOPPING),
                (false, Some((code, text))) => (code, text.as_str()),
                (false, None) => (Code::for_kind(e.kind()), e.message()),
            };
            let frame = Frame::Error {
                code: code as u16,
                text: text.to_string(),
            };
            self.queue_frame(frame);
            let _ = self.wire.flush().await;
            if refusal.is_some() && self.in_file {
                self.linger().await;
            }
        }
        e
    }

    /// [`Connection::fail`], then reads what the peer had sent (as a refusal in a file does).
    pub(crate) async fn fail_and_drain(&mut self, e: Error) -> Error {
        let e = self.fail(e).await;
        self.linger().await;
        e
    }

    /// Reads and drops what the peer sends, until it closes or for at most 2 seconds.
    async fn linger(&mut self) {
        let _ = self.wire.finish().await;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        self.wire.set_deadline(Some(until));
        let mut sink = vec![0u8; 64 * 1024];
        while let Ok(1..) = self.wire.read_some(&mut sink).await {}
    }

    /// Listed file `seq` of a fetch opened again for its content (off the event loop when
    /// `slow`), or `None` once FAILED was queued for it: it is no longer the file that was
    /// listed (code 22), or the store failed to give it (15, 16).
    pub(crate) fn reopen_or_fail(
        &mut self,
        source: &Source<'_>,
        seq: u32,
        offer: &Offer,
        full: &str,
        slow: bool,
    ) -> Option<Box<dyn Read + Send>> {
        match blocking_if(slow, || source.reopen(full, offer)) {
            Ok(f) => Some(f),
            Err(why) => {
                self.queue_failed(seq, why);
                None
            }
        }
    }

    /// Queues FAILED for listed file `seq` of a fetch, with its code and why.
    pub(crate) fn queue_failed(&mut self, seq: u32, (code, text): (Code, String)) {
        let code = code as u16;
        self.queue_frame(Frame::Failed { seq, code, text });
    }

    /// Writes `bytes` and flushes them.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.wire.queue(bytes);
        self.flush().await
    }

    /// Writes a frame without flushing it: it goes out with the next flush.
    pub(crate) fn queue_frame(&mut self, f: Frame) {
        let mut out = Vec::with_capacity(64);
        f.encode(&mut out);
        self.wire.queue(&out);
    }

    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.wire
            .flush()
            .await
            .map_err(|e| Error::io("writing to the sender", e))
    }

    pub(crate) async fn send_frame(&mut self, f: Frame) -> Result<()> {
        self.queue_frame(f);
        self.flush().await
    }

    /// The content buffer, at least big enough for a file of `size` bytes (up to its limit).
    pub(super) fn take_buffer(&mut self, size: u64) -> Vec<u8> {
        let want = BUFFER_SIZE.min(size.max(1) as usize);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        buf
    }

    /// Gives the content buffer back; one larger than a frame is freed (an idle connection
    /// holds little).
    pub(super) fn return_buffer(&mut self, buf: Vec<u8>) {
        if buf.len() <= 64 * 1024 {
            self.buf = buf;
        }
    }

    /// Reads exactly the offered bytes into the temporary file, hashing them; a large file
    /// bound for an object store goes up as it arrives (`place`). A local write or store
    /// failure does not end the connection: the rest is read and dropped, and the file refused.
    /// With `partial`, an interrupted upload keeps its data under that name for a resume.
    pub(crate) async fn read_content(
        &mut self,
        mut temp: TempFile,
        place: &mut Place,
        offer: &Offer,
        mut hasher: Xxh3,
        partial: Option<&str>,
    ) -> Result<(std::result::Result<TempFile, Refusal>, u128)> {
        let mut buf = self.take_buffer(offer.size);
        let start = temp
            .written()
            .map_err(|e| Error::io("reading the temporary file", e))?;
        let remaining = offer.size.saturating_sub(start);
        let mut store_err = match place.is_local() {
            true => None,
            false => blocking(|| self.begin_upload(place, &temp, offer, start).err()),
        };
        let (mut write_err, mut written) = (None, start);
        let shared = self.shared;
        let mut store = |b: &[u8]| -> Result<()> {
            shared.keep_reading()?;
            hasher.update(b);
            if write_err.is_none() {
                if let Err(e) = temp.file().write_all(b) {
                    write_err = Some(e);
                }
                written += b.len() as u64;
                // An upload to an object store may block to pace the sender to the store.
                if store_err.is_none() && !place.is_local() {
                    store_err = blocking(|| place.progress(written)).err();
                }
            }
            Ok(())
        };
        let received = match offer.encoding {
            protocol::ENCODING_ZSTD => {
                decode_blocks(&mut self.wire, remaining, &mut buf, &mut store)
                    .await
                    .map_err(|e| e.context(format!("receiving '{}'", offer.name)))
            }
            _ => read_raw(&mut self.wire, &mut buf, remaining, offer, &mut store).await,
        };
        self.return_buffer(buf);
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

    /// The content starts arriving in `temp`, `written` bytes of it there already: a large
    /// object starts going up (nothing for a local directory).
    pub(super) fn begin_upload(
        &self,
        place: &mut Place,
        temp: &TempFile,
        offer: &Offer,
        written: u64,
    ) -> std::result::Result<(), StoreError> {
        let meta = self.object_meta(offer);
        place
            .begin(temp, &meta, self.shared.config.overwrite)
            .and_then(|()| place.progress(written))
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
    pub(crate) async fn drop_content(&mut self, offer: &Offer) -> Result<()> {
        let mut buf = self.take_buffer(16 * 1024);
        let mut nothing = |_: &[u8]| Ok(());
        let dropped = match offer.encoding {
            protocol::ENCODING_ZSTD => {
                decode_blocks(&mut self.wire, offer.size, &mut buf, &mut nothing).await
            }
            _ => read_raw(&mut self.wire, &mut buf, offer.size, offer, &mut nothing).await,
        };
        self.return_buffer(buf);
        dropped
    }

    /// Commits the pending group, then sends the verdicts (not to a kn-sock 0.3 peer, which
    /// gets none) and queues the handlers' calls. The commit leaves the event loop unless it
    /// cannot block: local files on a memory file system, no post-data validator.
    pub(crate) async fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.pending);
        let cfg = &self.shared.config;
        let quick = cfg.after.is_empty()
            && group.iter().all(|p| p.place.is_local())
            && storage::in_memory(group.iter().map(|p| &p.temp));
        let done = blocking_if(!quick, || commit_group(group, cfg));
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
            false => self.send(&out).await,
        };
        let handlers = !cfg.handlers.is_empty() && !done.stored.is_empty();
        if handlers || !done.failed.is_empty() {
            let shared = Arc::clone(&self.owner);
            let job = move || {
                for (r, info) in done.failed {
                    shared.report_refusal(r, &info, true);
                }
                for info in &done.stored {
                    for h in &shared.config.handlers {
                        let _ = catch_unwind(AssertUnwindSafe(|| h(info)));
                    }
                }
            };
            self.callbacks.run(job).await;
        }
        sent
    }

    /// Sends a refusal (REJECT for an offer, FAILED for content) and reports it.
    pub(crate) async fn refuse(&mut self, frame: Frame, r: Refusal, info: &FileInfo) -> Result<()> {
        let after_data = matches!(frame, Frame::Failed { .. });
        self.shared.stats.file_refused(r.0, after_data);
        self.send_frame(frame).await?;
        blocking(|| self.shared.report_refusal(r, info, after_data));
        Ok(())
    }
}

impl<S: Stream> Drop for Connection<'_, S> {
    /// The bytes read since the last commit count too.
    fn drop(&mut self) {
        self.shared.stats.wire_bytes(self.wire.take_read());
    }
}

/// Reads exactly `len` raw content bytes of `offer`, handing each piece to `store`.
pub(super) async fn read_raw<S: Stream>(
    r: &mut Wire<S>,
    buf: &mut [u8],
    len: u64,
    offer: &Offer,
    store: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<()> {
    let mut remaining = len;
    while remaining > 0 {
        let want = buf.len().min(remaining as usize);
        let n = read_piece(r, &mut buf[..want], offer, offer.size - remaining).await?;
        store(&buf[..n])?;
        remaining -= n as u64;
    }
    Ok(())
}

/// One read of `offer`'s raw content into `buf`, `got` bytes of it read before: some bytes,
/// or the error of a connection that ended or failed.
pub(super) async fn read_piece<S: Stream>(
    r: &mut Wire<S>,
    buf: &mut [u8],
    offer: &Offer,
    got: u64,
) -> Result<usize> {
    match r.read_some(buf).await {
        Ok(0) => Err(Error::protocol(format!(
            "sender closed the connection after {got} of {} bytes of '{}'",
            offer.size, offer.name
        ))),
        Ok(n) => Ok(n),
        Err(e) => Err(Error::io(format!("receiving '{}'", offer.name), e)),
    }
}

/// Reads a file's compressed blocks as they come and decodes each (`compress::BlockDecoder`).
pub(super) async fn decode_blocks<S: Stream>(
    r: &mut Wire<S>,
    expected: u64,
    out: &mut [u8],
    sink: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<()> {
    let io = |e| Error::io("reading compressed content", e);
    let mut decoder = BlockDecoder::new(expected)?;
    let mut block = Vec::new();
    loop {
        let mut header = [0u8; 4];
        r.read_exact(&mut header).await.map_err(io)?;
        let Some(len) = BlockDecoder::block_len(header)? else {
            break;
        };
        block.resize(len, 0);
        r.read_exact(&mut block).await.map_err(io)?;
        decoder.feed(&block, out, &mut *sink)?;
    }
    decoder.finish(out, &mut *sink)
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
