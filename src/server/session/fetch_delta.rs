//! A fetch's delta against the client's old copy (docs/protocol.md section 3.4): the client's
//! signature read with its DELTA (bounded over the whole fetch), and the listed file sent as
//! COPY and LITERAL frames cut against it, then DONE with the whole file's XXH3-128.

use std::mem::size_of;

use tokio::sync::OwnedSemaphorePermit;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::delta::{chunks, params, MAX_SIG_CHUNKS};
use crate::protocol::delta_out::{DeltaOut, Index};
use crate::protocol::{self, Frame, Offer};
use crate::server::files::objects::Source;
use crate::server::io::runtime::blocking;
use crate::server::io::wire::Stream;
use crate::server::session::conn::Connection;

/// Bytes queued before they are sent.
const FLUSH: usize = 256 * 1024;

/// The signatures of one fetch: how many chunks so far (at most `MAX_SIG_CHUNKS` in all), and
/// their memory, taken from the memory for work at the first DELTA for the whole bound.
#[derive(Default)]
pub(super) struct Signatures {
    chunks: usize,
    _memory: Option<OwnedSemaphorePermit>,
}

/// One signature: (length, hash) of each chunk of the client's old copy, in order.
pub(super) type Sig = Vec<(u32, u64)>;

/// Reads the SIG frames that follow a DELTA, up to the empty one, and checks them: chunks of 1
/// to `4 A` bytes (A from the old copy's size, their sum), at most `MAX_SIG_CHUNKS` over the
/// fetch.
pub(super) async fn read_signature<S: Stream>(
    conn: &mut Connection<'_, S>,
    sigs: &mut Signatures,
) -> Result<Sig> {
    if sigs._memory.is_none() {
        let bytes = (MAX_SIG_CHUNKS * size_of::<(u32, u64)>()) as u64;
        sigs._memory = Some(conn.shared.budget.work_memory(bytes).await);
    }
    let mut sig = Sig::new();
    loop {
        match conn.wire.read_frame().await? {
            Some(Frame::Sig(c)) if c.is_empty() => break,
            Some(Frame::Sig(c)) => {
                sigs.chunks += c.len();
                if sigs.chunks > MAX_SIG_CHUNKS || c.iter().any(|&(len, _)| len == 0) {
                    return Err(Error::protocol(format!(
                        "corrupt signature: empty chunks, or more than {MAX_SIG_CHUNKS} in a fetch"
                    )));
                }
                sig.extend(c);
            }
            Some(f) => return Err(Error::protocol(format!("expected SIG, got {f:?}"))),
            None => {
                return Err(Error::protocol(
                    "client closed the connection in a signature",
                ))
            }
        }
    }
    let old_size: u64 = sig.iter().map(|c| c.0 as u64).sum();
    let (_, _, max) = params(old_size);
    if sig.iter().any(|&(len, _)| len > max) {
        return Err(Error::protocol(format!(
            "corrupt signature: a chunk over {max} bytes for an old copy of {old_size}"
        )));
    }
    Ok(sig)
}

/// One file wanted as a delta: DELTA, COPY and LITERAL frames cut against `sig`, DONE with the
/// digest of the whole; or FAILED, as for a WANT, when it is no longer the file listed.
pub(super) async fn send_delta<S: Stream>(
    conn: &mut Connection<'_, S>,
    source: Source<'_>,
    seq: u32,
    offer: &Offer,
    full: &str,
    sig: Sig,
) -> Result<()> {
    let Some(reader) = conn.reopen_or_fail(&source, seq, offer, full, true) else {
        return Ok(());
    };
    let old_size: u64 = sig.iter().map(|c| c.0 as u64).sum();
    let mut index = Index::with_capacity(sig.len());
    for (i, &(len, hash)) in sig.iter().enumerate() {
        index.entry(hash).or_insert((i as u32, len));
    }
    drop(sig);
    conn.queue_frame(Frame::Delta { seq });
    let name = crate::printable(&offer.name).into_owned();
    let mut out = DeltaOut::new(false);
    let mut hasher = Xxh3::new();
    let mut read = 0u64;
    let mut buf = Vec::with_capacity(FLUSH + 64 * 1024);
    let mut pieces = chunks(reader, old_size);
    while let Some(data) = blocking(|| pieces.next()) {
        let data = data.map_err(|e| Error::io(format!("reading '{name}'"), e))?;
        hasher.update(&data);
        read += data.len() as u64;
        if read > offer.size {
            break;
        }
        out.chunk(&mut buf, &index, &data)?;
        if buf.len() >= FLUSH {
            conn.wire.queue(&buf);
            buf.clear();
            conn.flush().await?;
        }
    }
    // A file that grew or shrank under us cannot be sent as listed: the connection ends.
    if read != offer.size {
        let text = format!("'{name}' changed size while it was sent");
        return Err(Error::new(ErrorKind::Io, text));
    }
    out.end(&mut buf)?;
    conn.wire.queue(&buf);
    conn.queue_frame(Frame::Done {
        algorithm: protocol::ALGO_XXH3_128,
        digest: hasher.digest128().to_be_bytes().to_vec(),
    });
    conn.shared.stats.delta_reused(out.reused);
    conn.flush().await
}
