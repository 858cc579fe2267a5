//! Resuming interrupted uploads: the key that finds an upload's kept data again (same file from
//! the same host), and the claim that makes one connection at a time its uploader.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::Xxh3;

use crate::protocol::{self, Code, Offer};
use crate::server::files::refusal::Refusal;
use crate::server::shared::Shared;
use crate::sync::lock;

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

/// How long a new connection waits for the previous holder of the same upload to end by
/// itself (it usually has the rest of the old connection's bytes in its buffers, and ends at
/// their EOF) before it ends that connection, losing what had not reached its socket yet.
const HANDOVER_GRACE: Duration = Duration::from_secs(2);

/// Registers connection `conn` as the one uploading `resume`'s file. A connection that still
/// holds it belongs to the same sender before it reconnected: it gets a short grace to store
/// what it has received, is then ended, and its data is kept, before this one takes over.
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
        let grace = HANDOVER_GRACE.min(shared.config.idle_timeout);
        uploads = wait_for_release(shared, uploads, r.key, Instant::now() + grace);
        if uploads.contains_key(&r.key) {
            shared.shutdown_conn(holder);
            let deadline = Instant::now() + shared.config.idle_timeout;
            uploads = wait_for_release(shared, uploads, r.key, deadline);
        }
        if uploads.contains_key(&r.key) {
            return Err(Refusal(
                Code::Io,
                "the same upload is still in progress on another connection".into(),
            ));
        }
    }
    uploads.insert(r.key, conn);
    Ok(Some(Claim { shared, key: r.key }))
}

/// Waits until no connection holds upload `key`, or until `deadline`.
fn wait_for_release<'g>(
    shared: &Shared,
    mut uploads: MutexGuard<'g, HashMap<u64, u64>>,
    key: u64,
    deadline: Instant,
) -> MutexGuard<'g, HashMap<u64, u64>> {
    while uploads.contains_key(&key) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        uploads = shared
            .upload_released
            .wait_timeout(uploads, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    uploads
}
