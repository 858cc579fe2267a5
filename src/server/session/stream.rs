//! Content of unknown size (docs/protocol.md section 3.3): blocks read as they come, held to
//! the maximum file size and given free space as the bytes arrive. Past a limit nothing is
//! stored and the connection ends with the refusal's code; a file that cannot be written is
//! read to its end and refused, as any other.

use std::io::Write;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::protocol::{self, Code, Offer};
use crate::server::config::FileInfo;
use crate::server::files::budget::Descriptors;
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::files::space::Reservation;
use crate::server::io::runtime::blocking;
use crate::server::io::wire::{Stream, Wire};
use crate::server::session::conn::{decode_blocks, Connection};
use crate::server::session::content::{Landed, Storage};
use crate::server::session::native::Session;

/// Free space is reserved in steps of this many bytes as a stream's content arrives.
pub(crate) const SPACE_STEP: u64 = 64 * 1024 * 1024;

impl<'a, S: Stream> Session<'_, 'a, S> {
    /// Receives a file's content, of its offered size or (section 3.3) of unknown size, whose
    /// size then becomes the offer's and the info's.
    pub(super) async fn receive_either(
        &mut self,
        offer: &mut Offer,
        info: &mut FileInfo,
        storage: Storage,
        hasher: Xxh3,
        partial: Option<&str>,
        space: &mut Reservation,
    ) -> Result<(Landed, u128, Option<Descriptors>)> {
        if !offer.is_unsized(self.caps) {
            return self.conn.receive(offer, storage, hasher, partial).await;
        }
        let (landed, digest, size, fds) = self
            .conn
            .receive_unsized(offer, storage, hasher, space)
            .await?;
        (offer.size, info.size) = (size, size);
        Ok((landed, digest, fds))
    }
}

impl<S: Stream> Connection<'_, S> {
    /// Receives content of unknown size into its temporary file, hashing it. Returns where it
    /// landed (or why it is refused), its digest and its size. `Err` ends the connection: a
    /// limit passed (with the refusal's code, which `fail` sends), or the connection lost.
    pub(crate) async fn receive_unsized(
        &mut self,
        offer: &Offer,
        storage: Storage,
        mut hasher: Xxh3,
        space: &mut Reservation,
    ) -> Result<(Landed, u128, u64, Option<Descriptors>)> {
        let (opened, fds) = self.open_storage(offer, storage).await?;
        let limit = self.unsized_limit();
        let mut opened = opened.map(|(place, temp)| (place, temp, None));
        let mut written = 0u64;
        let mut buf = self.take_buffer(u64::MAX);
        let shared = self.shared;
        let mut store = |b: &[u8]| -> Result<()> {
            shared.keep_reading()?;
            let total = written + b.len() as u64;
            if let Some(max) = limit.filter(|m| total > *m) {
                return Err(limit_error(offer, Refusal(Code::TooLarge, too_large(max))));
            }
            if total > space.bytes() {
                // A step when it fits, else what these bytes need.
                let needed = total - space.bytes();
                space
                    .grow(needed.max(SPACE_STEP))
                    .or_else(|_| space.grow(needed))
                    .map_err(|r| limit_error(offer, r))?;
            }
            hasher.update(b);
            written = total;
            if let Ok((_, temp, err @ None)) = &mut opened {
                *err = temp.file().write_all(b).err();
            }
            Ok(())
        };
        let received = match offer.encoding {
            protocol::ENCODING_ZSTD => {
                decode_blocks(&mut self.wire, u64::MAX, &mut buf, &mut store).await
            }
            _ => read_blocks(&mut self.wire, &mut buf, &mut store).await,
        };
        self.return_buffer(buf);
        received.map_err(|e| match e.peer_reason() {
            Some(_) => e,
            None => e.context(format!("receiving '{}'", offer.name)),
        })?;
        let landed = match opened {
            Ok((place, temp, None)) => Ok((place, temp)),
            Ok((place, _, Some(e))) => {
                // An upload under way is aborted (a request to the store).
                blocking(|| drop(place));
                Err(io_refusal(e))
            }
            Err(r) => Err(r),
        };
        Ok((landed, hasher.digest128(), written, Some(fds)))
    }

    /// The most a stream may bring: the maximum file size, and the object store's limit.
    fn unsized_limit(&self) -> Option<u64> {
        let store = self.shared.sink.store().and_then(|s| s.max_object_size());
        match (self.shared.config.max_file_size, store) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn too_large(max: u64) -> String {
    format!("the stream exceeds the limit of {max} bytes")
}

/// A limit passed while a stream arrives: an error that ends the connection with the
/// refusal's code and text.
fn limit_error(offer: &Offer, r: Refusal) -> Error {
    let Refusal(code, text) = r;
    Error::new(code.kind(), format!("refused '{}': {text}", offer.name))
        .with_reason(code as u16, text)
}

/// Reads raw content sent as blocks (`u32 len`, then `len` bytes; a length of 0 ends it),
/// handing `store` each piece. A block's bytes are read as a file's content is: what the wire
/// has buffered (handed over from its buffer), then reads of up to `buf`'s size straight from
/// the connection.
async fn read_blocks<S: Stream>(
    r: &mut Wire<S>,
    buf: &mut [u8],
    store: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<()> {
    let cut = || Error::protocol("sender closed the connection inside content of unknown size");
    let here = async |r: &mut Wire<S>, n: usize| match r.ensure(n).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(cut()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(cut()),
        Err(e) => Err(Error::io("reading content of unknown size", e)),
    };
    loop {
        here(r, 4).await?;
        let b = r.buffered();
        let mut left = match u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize {
            0 => {
                r.consume(4);
                return Ok(());
            }
            len if len > protocol::RAW_BLOCK_MAX => {
                return Err(Error::protocol(format!(
                    "block of {len} bytes exceeds {}",
                    protocol::RAW_BLOCK_MAX
                )))
            }
            len => len,
        };
        r.consume(4);
        // What is buffered goes to `store` from the wire's buffer, without a copy.
        let ready = r.buffered().len().min(left);
        if ready > 0 {
            store(&r.buffered()[..ready])?;
            r.consume(ready);
            left -= ready;
        }
        // The rest as a file's content: large reads straight into `buf`.
        while left > 0 {
            let want = left.min(buf.len());
            let n = match r.read_some(&mut buf[..want]).await {
                Ok(0) => return Err(cut()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(cut()),
                Err(e) => return Err(Error::io("reading content of unknown size", e)),
            };
            store(&buf[..n])?;
            left -= n;
        }
    }
}
