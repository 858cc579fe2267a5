//! Where an admitted file's content lands. Nothing is opened for it until its content comes:
//! a small file's content gathers in memory and is written out whole once it is all here (a
//! slow sender of a small file holds no descriptor); a larger one gets its descriptors from the
//! server's budget, waiting for other files to finish when there are none, then its place and
//! temporary file, and its content is written as it arrives.

use std::io::Write;

use xxhash_rust::xxh3::Xxh3;

use crate::error::Result;
use crate::protocol::{self, Offer};
use crate::server::files::admit::{open, reopen};
use crate::server::files::budget::Descriptors;
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::io::runtime::{blocking, blocking_if};
use crate::server::io::wire::Stream;
use crate::server::session::conn::{decode_blocks, read_piece, Connection};
use crate::storage::{Entry, Place, TempFile};

/// What an admitted file holds before its content comes.
pub(crate) enum Storage {
    /// Its place and temporary file, opened at the offer: a resumed upload's kept data.
    Open(Box<(Place, TempFile)>),
    /// Its name resolved at the offer, its directory held open, with the descriptors it will
    /// use: while more than half the server's budget was free (`Budget::try_spare`).
    Resolved(Box<(Entry, Descriptors)>),
    /// Nothing: the name is resolved again when the content comes.
    Deferred,
}

/// Where a received file's content went: its place and temporary file, or why it is not kept.
pub(crate) type Landed = std::result::Result<(Place, TempFile), Refusal>;

impl<S: Stream> Connection<'_, S> {
    /// Receives a file's content (exactly the offered bytes once decoded), hashing it. `Err`
    /// only when the connection cannot go on; a file that cannot be stored is read to its end
    /// and comes back as a refusal. Also returns the descriptors the file holds until its
    /// commit.
    pub(crate) async fn receive(
        &mut self,
        offer: &Offer,
        storage: Storage,
        hasher: Xxh3,
        partial: Option<&str>,
    ) -> Result<(Landed, u128, Option<Descriptors>)> {
        let shared = self.shared;
        // A resumable upload writes as it comes, so what arrived is kept if the connection breaks.
        let spool = match (&storage, partial) {
            (Storage::Deferred | Storage::Resolved(_), None) => shared.budget.spool(offer.size),
            _ => None,
        };
        if let Some(spool) = spool {
            let (data, digest) = self.gather(offer, hasher).await?;
            let (opened, fds) = self.open_storage(offer, storage).await?;
            let landed = opened.and_then(|(place, temp)| {
                blocking_if(!self.local(), || self.land(offer, place, temp, &data))
            });
            drop(spool);
            return Ok((landed, digest, Some(fds)));
        }
        let (opened, fds) = self.open_storage(offer, storage).await?;
        let (mut place, temp) = match opened {
            Ok(o) => o,
            Err(r) => {
                self.drop_content(offer).await?;
                return Ok((Err(r), 0, None));
            }
        };
        let (temp, digest) = self
            .read_content(temp, &mut place, offer, hasher, partial)
            .await?;
        let landed = match temp {
            Ok(t) => Ok((place, t)),
            Err(r) => {
                // An upload under way is aborted (a request to the store).
                blocking(|| drop(place));
                Err(r)
            }
        };
        Ok((landed, digest, Some(fds)))
    }

    /// An admitted file's place and temporary file, opened now that its content comes, with
    /// the descriptors they take.
    pub(crate) async fn open_storage(
        &mut self,
        offer: &Offer,
        storage: Storage,
    ) -> Result<(Landed, Descriptors)> {
        let (shared, local) = (self.shared, self.local());
        let cfg = &shared.config;
        Ok(match storage {
            Storage::Open(opened) => (Ok(*opened), self.descriptors().await?),
            Storage::Resolved(resolved) => {
                let (entry, fds) = *resolved;
                (
                    blocking_if(!local, || open(entry, cfg, offer.size, None)),
                    fds,
                )
            }
            Storage::Deferred => {
                let fds = self.descriptors().await?;
                (
                    blocking_if(!local, || reopen(&shared.sink, offer, cfg)),
                    fds,
                )
            }
        })
    }

    /// One file's descriptors from the server's budget. When there are none free the verified
    /// files this connection holds are committed first (their descriptors may be the ones
    /// others wait for), then it waits: this sender is held back, none fails.
    pub(crate) async fn descriptors(&mut self) -> Result<Descriptors> {
        if let Some(fds) = self.shared.budget.try_descriptors() {
            return Ok(fds);
        }
        self.commit().await?;
        Ok(self.shared.budget.descriptors().await)
    }

    /// Whether files land in a local directory (quick to open and write: no object store).
    pub(crate) fn local(&self) -> bool {
        self.shared.sink.store().is_none()
    }

    /// A small file's content, gathered in memory and hashed.
    async fn gather(&mut self, offer: &Offer, mut hasher: Xxh3) -> Result<(Vec<u8>, u128)> {
        if offer.encoding != protocol::ENCODING_ZSTD {
            // Straight into its place in memory: no other buffer while a slow sender trickles.
            let mut data = vec![0u8; offer.size as usize];
            let mut filled = 0;
            while filled < data.len() {
                self.shared.keep_reading()?;
                let piece = &mut data[filled..];
                filled += read_piece(&mut self.wire, piece, offer, filled as u64).await?;
            }
            hasher.update(&data);
            return Ok((data, hasher.digest128()));
        }
        let mut data = Vec::with_capacity(offer.size as usize);
        let mut buf = vec![0u8; (offer.size as usize).clamp(1, 16 * 1024)];
        let shared = self.shared;
        let mut store = |b: &[u8]| -> Result<()> {
            shared.keep_reading()?;
            hasher.update(b);
            data.extend_from_slice(b);
            Ok(())
        };
        decode_blocks(&mut self.wire, offer.size, &mut buf, &mut store)
            .await
            .map_err(|e| e.context(format!("receiving '{}'", offer.name)))?;
        Ok((data, hasher.digest128()))
    }

    /// Writes a gathered file to its temporary file.
    fn land(&self, offer: &Offer, mut place: Place, mut temp: TempFile, data: &[u8]) -> Landed {
        temp.file().write_all(data).map_err(io_refusal)?;
        self.begin_upload(&mut place, &temp, offer, data.len() as u64)
            .map_err(Refusal::from)?;
        Ok((place, temp))
    }
}
