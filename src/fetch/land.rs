//! Where fetched files land, with the receiver's guarantees: every name checked (docs/protocol.md
//! section 4) and resolved beneath the destination without following a symlink, content written
//! to a hidden temporary file, verified, given its metadata, fsynced and renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{check_name, Offer, ALGO_XXH3_128};
use crate::storage::{Overwrite, Root, StoreError, Target, TempFile};

/// The destination directory, held open.
pub(crate) struct Dest {
    root: Root,
    mask: u32,
}

/// A file on its way in: its temporary file and the digest of what was written.
pub(crate) struct Landing {
    target: Target,
    temp: TempFile,
    hasher: Xxh3,
    written: u64,
}

impl Dest {
    /// Opens (creating it if needed) the destination directory.
    pub(crate) fn open(dir: &Path, mask: u32) -> Result<Dest> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let root = Root::open(dir).map_err(|e| Error::io(dir.display(), e))?;
        Ok(Dest { root, mask })
    }

    /// Where `local` (a checked name) lands.
    pub(crate) fn path_of(&self, local: &str) -> PathBuf {
        self.root.path().join(local)
    }

    /// Whether the file the server lists is already here: same size and modification time, or
    /// with `checksum` the same digest (which the server sent). Nothing is created.
    pub(crate) fn unchanged(&self, local: &str, offer: &Offer, checksum: bool) -> bool {
        let Ok(parts) = check_name(local) else {
            return false;
        };
        let Ok(lookup) = self.root.lookup(&parts) else {
            return false;
        };
        if !checksum {
            return lookup.quick_same(offer.size, (offer.mtime_secs, offer.mtime_nanos));
        }
        match lookup.existing() {
            Some((mut f, st)) if st.st_size as u64 == offer.size && offer.digest.len() == 16 => {
                crate::hash::digest_exact(&mut f, offer.size).is_ok_and(|d| d[..] == offer.digest)
            }
            _ => false,
        }
    }

    /// The regular file under `local` now, opened for reading (never through a symlink), with
    /// its status: the old copy a delta is built against. Nothing is created.
    pub(crate) fn old_copy(&self, local: &str) -> Option<(std::fs::File, rustix::fs::Stat)> {
        let parts = check_name(local).ok()?;
        self.root.lookup(&parts).ok()?.existing()
    }

    /// Resolves `local` beneath the destination (creating missing directories, never through a
    /// symlink) and opens a hidden temporary file beside its final name.
    pub(crate) fn begin(&self, local: &str) -> Result<Landing> {
        let parts = check_name(local).map_err(|why| refused(local, &why))?;
        let lookup = self
            .root
            .lookup(&parts)
            .map_err(|e| store_error(local, e))?;
        lookup
            .check_existing(Overwrite::Replace)
            .map_err(|e| store_error(local, e))?;
        let target = lookup.create().map_err(|e| store_error(local, e))?;
        let temp = target
            .create_temp()
            .map_err(|e| Error::io(format!("creating a temporary file for '{local}'"), e))?;
        Ok(Landing {
            target,
            temp,
            hasher: Xxh3::new(),
            written: 0,
        })
    }

    /// With partial copies kept: the place of `local` made (missing directories created), and
    /// the partial copy of exactly this file (same name, size and modification time on the
    /// server) an interrupted fetch left there taken over; its length is where content resumes.
    pub(crate) fn claim_partial(&self, local: &str, offer: &Offer) -> Option<Landing> {
        let parts = check_name(local).ok()?;
        let target = self.root.lookup(&parts).ok()?.create().ok()?;
        let mut temp = target
            .claim_partial(&partial_name(offer), PARTIAL_TTL, offer.size)
            .ok()??;
        let mut hasher = Xxh3::new();
        temp.reread(&mut hasher).ok()?;
        let written = temp.written().ok()?;
        Some(Landing {
            target,
            temp,
            hasher,
            written,
        })
    }

    /// Verifies the landed content against the server's DONE, gives the file its mode (within
    /// the mask) and modification time, fsyncs it, renames it into place and fsyncs its
    /// directory. On any failure the temporary file is removed and nothing is under the name.
    pub(crate) fn commit(&self, mut l: Landing, offer: &Offer, done: (u8, Vec<u8>)) -> Result<()> {
        let name = crate::printable(&offer.name).into_owned();
        if l.written != offer.size {
            return Err(Error::protocol(format!(
                "'{name}': {} bytes received of {}",
                l.written, offer.size
            )));
        }
        let digest = l.hasher.digest128().to_be_bytes();
        if done.0 != ALGO_XXH3_128 || done.1 != digest {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("checksum mismatch for '{name}': nothing kept"),
            ));
        }
        let io = |e| Error::io(format!("storing '{name}'"), e);
        l.temp
            .set_metadata(offer.mode, self.mask, offer.mtime_secs, offer.mtime_nanos)
            .map_err(io)?;
        l.temp.file().sync_all().map_err(io)?;
        crate::storage::remember(l.temp.file(), digest);
        l.temp
            .rename_into_place(&l.target, Overwrite::Replace)
            .map_err(|e| store_error(&name, e))?;
        l.target.sync_dir().map_err(io)
    }
}

/// How long a partial copy stays usable (it is tied to the file's size and modification time
/// on the server, and verified whole at the end, so age does not make it wrong).
const PARTIAL_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// The hidden name a partial copy of `offer` is kept under beside its final name.
fn partial_name(offer: &Offer) -> String {
    let mut h = Xxh3::new();
    h.update(b"fetch\0");
    h.update(offer.name.as_bytes());
    h.update(&[0]);
    h.update(&offer.size.to_be_bytes());
    h.update(&offer.mtime_secs.to_be_bytes());
    h.update(&offer.mtime_nanos.to_be_bytes());
    format!(
        "{}partial-{:016x}",
        crate::protocol::TEMP_PREFIX,
        h.digest()
    )
}

impl Landing {
    /// Bytes of content in it so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Keeps what came, hidden beside the final name, for a later fetch of the same file to
    /// resume; nothing is kept when renaming fails.
    pub(crate) fn keep(self, offer: &Offer) {
        if self.written > 0 {
            let _ = self.temp.keep_as(&partial_name(offer));
        }
    }

    /// Writes a piece of content, hashing it.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.temp
            .file()
            .write_all(bytes)
            .map_err(|e| Error::io("writing a fetched file", e))
    }
}

/// A name from the server the rules refuse.
pub(crate) fn refused(name: &str, why: &str) -> Error {
    Error::protocol(format!(
        "the server listed an unacceptable name '{}': {why}",
        crate::printable(name)
    ))
}

fn store_error(local: &str, e: StoreError) -> Error {
    let local = crate::printable(local);
    match e {
        StoreError::BadPath(why) => Error::protocol(format!(
            "refused to write '{local}': {}",
            crate::printable(&why)
        )),
        StoreError::Io(e) => Error::io(format!("storing '{local}'"), e),
        e => Error::new(ErrorKind::Io, format!("storing '{local}': {e:?}")),
    }
}
