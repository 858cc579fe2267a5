//! What a server has done and what it holds now: counters bumped at the few points of the
//! receiver where something happens (a connection accepted, a file stored, skipped, refused),
//! and the [`ServerStats`] snapshot `Server::stats` gives.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::Code;

/// Slots of the by-code arrays: index `c` counts wire code `c` (docs/protocol.md section 5,
/// 1 to 16); index 0 counts codes this build does not know.
pub const STATS_CODES: usize = 17;
const _: () = assert!(std::mem::size_of::<ServerStats>() == 8 * (20 + 2 * STATS_CODES));

/// A snapshot of a server's counters (totals since it started) and of its bounded resources
/// (in use now, with their limits). Counters only grow; nothing here names a file or a sender.
///
/// Its layout is also the C ABI's (`knsock_stats_values`, inside the size-versioned
/// `knsock_stats`): fields are only ever added at the end, and all are 64 bits wide.
#[repr(C)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections being served now.
    pub connections_open: u64,
    /// Connections accepted since the start (a port probe included).
    pub connections_accepted: u64,
    /// Files stored (renamed into place or uploaded, the sender told OK).
    pub files_received: u64,
    /// Offers answered SKIP: the receiver already had the file.
    pub files_skipped: u64,
    /// Offers refused before their data (REJECT), by refusal code: slot `c` counts code `c`
    /// (1 to 16), slot 0 codes this build does not know.
    pub files_rejected: [u64; 17],
    /// Files whose content came but that were not stored (FAILED), by refusal code, as above.
    pub files_failed: [u64; 17],
    /// Bytes read from senders, frames included (after TLS decryption).
    pub bytes_received: u64,
    /// Bytes of the files stored (their full sizes).
    pub bytes_stored: u64,
    /// Bytes of stored files that a delta took from the receiver's old copies.
    pub bytes_reused: u64,
    /// Accepted offers that resumed an interrupted upload's kept data.
    pub resumes: u64,
    /// Senders refused for their credentials (token, client certificate, none given).
    pub auth_failures: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Requests made to the object store (each attempt of a retried request counts).
    pub store_requests: u64,
    /// Of those, the ones that failed.
    pub store_failures: u64,
    /// The most connections served at once.
    pub connections_max: u64,
    /// zstd decoders in use now (each may hold an 8 MiB window).
    pub decoders_in_use: u64,
    /// The most decoders in use at once.
    pub decoders_max: u64,
    /// Files admitted and not yet stored or failed (each holds a temporary file).
    pub files_in_flight: u64,
    /// Disk bytes promised to files in flight.
    pub space_reserved: u64,
    /// Descriptors this process has open now (0 where it cannot tell).
    pub descriptors_open: u64,
    /// The process's limit on open descriptors, as in force when the server started.
    pub descriptors_limit: u64,
    /// Connections refused because the server was at its connection cap (answered ERROR 17,
    /// "receiver busy", or closed unanswered when too many were being answered at once).
    pub connections_busy: u64,
}

impl ServerStats {
    /// Files refused before their data, whatever the code.
    pub fn rejected(&self) -> u64 {
        self.files_rejected.iter().sum()
    }

    /// Files not stored after their data, whatever the code.
    pub fn failed(&self) -> u64 {
        self.files_failed.iter().sum()
    }
}

/// The server's counters. The receiver calls these methods where the events happen; nothing
/// else writes them.
#[derive(Default)]
pub(crate) struct Stats {
    open: AtomicU64,
    accepted: AtomicU64,
    received: AtomicU64,
    skipped: AtomicU64,
    rejected: [AtomicU64; STATS_CODES],
    failed: [AtomicU64; STATS_CODES],
    wire: AtomicU64,
    stored: AtomicU64,
    reused: AtomicU64,
    resumes: AtomicU64,
    auth_failures: AtomicU64,
    tls_handshakes: AtomicU64,
    busy: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    pub(crate) fn connection_opened(&self) {
        add(&self.accepted, 1);
        add(&self.open, 1);
    }

    pub(crate) fn connection_busy(&self) {
        add(&self.busy, 1);
    }

    pub(crate) fn connection_closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A file of `size` bytes was stored.
    pub(crate) fn file_received(&self, size: u64) {
        add(&self.received, 1);
        add(&self.stored, size);
    }

    pub(crate) fn file_skipped(&self) {
        add(&self.skipped, 1);
    }

    /// A file was refused with `code`: FAILED when its content had come, else REJECT.
    pub(crate) fn file_refused(&self, code: Code, after_data: bool) {
        let by_code = match after_data {
            true => &self.failed,
            false => &self.rejected,
        };
        add(&by_code[code as usize % STATS_CODES], 1);
    }

    /// `n` more bytes were read from a sender.
    pub(crate) fn wire_bytes(&self, n: u64) {
        add(&self.wire, n);
    }

    /// A delta took `n` bytes from an old copy.
    pub(crate) fn delta_reused(&self, n: u64) {
        add(&self.reused, n);
    }

    pub(crate) fn resumed(&self) {
        add(&self.resumes, 1);
    }

    pub(crate) fn auth_failed(&self) {
        add(&self.auth_failures, 1);
    }

    pub(crate) fn tls_handshake(&self) {
        add(&self.tls_handshakes, 1);
    }

    /// The counters; the resource fields are left for the server to fill.
    pub(crate) fn counters(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            connections_open: get(&self.open),
            connections_accepted: get(&self.accepted),
            files_received: get(&self.received),
            files_skipped: get(&self.skipped),
            files_rejected: self.rejected.each_ref().map(get),
            files_failed: self.failed.each_ref().map(get),
            bytes_received: get(&self.wire),
            bytes_stored: get(&self.stored),
            bytes_reused: get(&self.reused),
            resumes: get(&self.resumes),
            auth_failures: get(&self.auth_failures),
            connections_busy: get(&self.busy),
            tls_handshakes: get(&self.tls_handshakes),
            ..ServerStats::default()
        }
    }
}

/// Descriptors this process has open (0 where `/proc` cannot tell).
pub(crate) fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_land_in_their_slot() {
        let s = Stats::default();
        s.file_refused(Code::Exists, false);
        s.file_refused(Code::StoreRefused, true);
        s.file_received(10);
        let snap = s.counters();
        assert_eq!(snap.files_rejected[2], 1);
        assert_eq!(snap.files_failed[16], 1);
        assert_eq!((snap.rejected(), snap.failed()), (1, 1));
        assert_eq!((snap.files_received, snap.bytes_stored), (1, 10));
    }
}
