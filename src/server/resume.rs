//! Resuming interrupted uploads: the key that finds an upload's kept data again (same file from
//! the same host), and the claim that makes one connection at a time its uploader.

use std::net::SocketAddr;
use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use super::refusal::Refusal;
use super::shared::{lock, Shared};
use crate::protocol::{self, Code, Offer};

/// Where an interrupted upload's data is kept, and the key that finds it again.
pub(crate) struct Resume {
    pub(crate) key: u64,
    /// The hidden name the data is kept under, beside the final name.
    pub(crate) partial: String,
}

impl Resume {
    /// The resume identity of an offer: the same file (name, size, mtime) from the same
    /// authenticated identity, or, for an anonymous sender, from the same host.
    pub(crate) fn of(offer: &Offer, peer: SocketAddr, identity: Option<&str>) -> Resume {
        let mut h = Xxh3::new();
        h.update(offer.name.as_bytes());
        h.update(&offer.size.to_be_bytes());
        h.update(&offer.mtime_secs.to_be_bytes());
        h.update(&offer.mtime_nanos.to_be_bytes());
        match identity {
            Some(name) => h.update(format!("identity:{name}").as_bytes()),
            None => h.update(peer.ip().to_string().as_bytes()),
        }
        let key = h.digest();
        Resume {
            key,
            partial: format!("{}partial-{key:016x}", protocol::TEMP_PREFIX),
        }
    }
}

/// This connection is the one uploading a resumable file; dropping it lets another take over.
pub(crate) struct Claim<'a> {
    shared: &'a Shared,
    key: u64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        lock(&self.shared.uploads).remove(&self.key);
        self.shared.upload_released.notify_all();
    }
}

/// Registers connection `conn` as the one uploading `resume`'s file. A connection that still
/// holds it belongs to the same sender before it reconnected: it is ended, and its data kept,
/// before this one takes over.
pub(crate) fn claim<'a>(
    shared: &'a Shared,
    conn: u64,
    resume: Option<&Resume>,
) -> Result<Option<Claim<'a>>, Refusal> {
    let Some(r) = resume else {
        return Ok(None);
    };
    let mut uploads = lock(&shared.uploads);
    if let Some(&holder) = uploads.get(&r.key) {
        shared.shutdown_conn(holder);
        let deadline = Instant::now() + shared.config.idle_timeout;
        while uploads.contains_key(&r.key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Refusal(
                    Code::Io,
                    "the same upload is still in progress on another connection".into(),
                ));
            }
            uploads = shared
                .upload_released
                .wait_timeout(uploads, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    uploads.insert(r.key, conn);
    Ok(Some(Claim { shared, key: r.key }))
}
