//! `knsock_stats`: a snapshot of a server's counters and resources, in a struct that may grow
//! (its first field says how many bytes the caller knows), filled by `knsock_server_stats()`.

use std::mem::size_of;
use std::ptr;

use super::macros::{ffi_boundary, try_ref};
use super::server::knsock_server;
use super::types::knsock_result;
use crate::{Error, ServerStats, STATS_CODES};

/// Slots of `knsock_stats`'s by-code arrays: index `c` counts the refusal code `c`
/// (docs/protocol.md section 5, 1 to 16); index 0 counts codes this library does not know.
pub const KNSOCK_STATS_CODES: usize = 17;
const _: () = assert!(KNSOCK_STATS_CODES == STATS_CODES);
// No padding: every byte copied out is a field's.
const _: () = assert!(size_of::<knsock_stats>() == 8 * (20 + 2 * KNSOCK_STATS_CODES));

/// What a server has done since it started (totals that only grow) and the use of its bounded
/// resources now. Nothing in it names a file or a sender.
///
/// Versioned by its size: set `size` to `sizeof(knsock_stats)` before the call. A library
/// fills only the first `size` bytes (a program built against an older, shorter struct gets
/// the fields it knows), and fields are only ever added at the end. On return `size` holds the
/// bytes filled: less than the caller's when the library is older than the caller's header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct knsock_stats {
    /// Set by the caller: `sizeof(knsock_stats)` as it knows it. (Every field is 64 bits wide,
    /// so the struct has no padding on any platform.)
    pub size: u64,
    /// Connections being served now.
    pub connections_open: u64,
    /// Connections accepted since the start (port probes included).
    pub connections_accepted: u64,
    /// Files stored (the sender told OK).
    pub files_received: u64,
    /// Offers answered SKIP: the receiver already had the file.
    pub files_skipped: u64,
    /// Offers refused before their data (REJECT), by code.
    pub files_rejected: [u64; KNSOCK_STATS_CODES],
    /// Files whose content came but that were not stored (FAILED), by code.
    pub files_failed: [u64; KNSOCK_STATS_CODES],
    /// Bytes read from senders, frames included (after TLS decryption).
    pub bytes_received: u64,
    /// Bytes of the files stored.
    pub bytes_stored: u64,
    /// Bytes that deltas took from the receiver's old copies.
    pub bytes_reused: u64,
    /// Accepted offers that resumed an interrupted upload.
    pub resumes: u64,
    /// Senders refused for their credentials.
    pub auth_failures: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Requests made to the object store (each try), and those that failed.
    pub store_requests: u64,
    pub store_failures: u64,
    /// The most connections served at once (`knsock_server_config_set_max_connections()`).
    pub connections_max: u64,
    /// zstd decoders in use now, and the most at once.
    pub decoders_in_use: u64,
    pub decoders_max: u64,
    /// Files admitted and not yet stored or failed.
    pub files_in_flight: u64,
    /// Disk bytes promised to files in flight.
    pub space_reserved: u64,
    /// Descriptors the process has open now (0 where it cannot tell), and its limit.
    pub descriptors_open: u64,
    pub descriptors_limit: u64,
}

impl From<ServerStats> for knsock_stats {
    fn from(s: ServerStats) -> Self {
        knsock_stats {
            size: size_of::<knsock_stats>() as u64,
            connections_open: s.connections_open,
            connections_accepted: s.connections_accepted,
            files_received: s.files_received,
            files_skipped: s.files_skipped,
            files_rejected: s.files_rejected,
            files_failed: s.files_failed,
            bytes_received: s.bytes_received,
            bytes_stored: s.bytes_stored,
            bytes_reused: s.bytes_reused,
            resumes: s.resumes,
            auth_failures: s.auth_failures,
            tls_handshakes: s.tls_handshakes,
            store_requests: s.store_requests,
            store_failures: s.store_failures,
            connections_max: s.connections_max,
            decoders_in_use: s.decoders_in_use,
            decoders_max: s.decoders_max,
            files_in_flight: s.files_in_flight,
            space_reserved: s.space_reserved,
            descriptors_open: s.descriptors_open,
            descriptors_limit: s.descriptors_limit,
        }
    }
}

/// Fills `*stats` with the server's statistics: at most `stats->size` bytes, which the caller
/// sets first (see `knsock_stats`). Fails with `KNSOCK_RESULT_INVALID_ARGUMENT` when `server`
/// or `stats` is NULL or `stats->size` is smaller than the `size` field itself; nothing is
/// written then. Any thread, at any time while the server exists, also from its callbacks.
#[no_mangle]
pub extern "C" fn knsock_server_stats(
    server: *const knsock_server,
    stats: *mut knsock_stats,
) -> knsock_result {
    ffi_boundary!({
        let s = try_ref!(server);
        if stats.is_null() {
            return Err(Error::invalid("stats output pointer is NULL"));
        }
        // SAFETY: the contract above: `stats` points to at least `size` writable bytes, of
        // which the first `size_t` is the caller's `size`.
        let known = unsafe { ptr::read_unaligned(stats.cast::<u64>()) };
        if known < size_of::<u64>() as u64 {
            return Err(Error::invalid(format!(
                "stats->size is {known}, smaller than the size field itself"
            )));
        }
        let mut full = knsock_stats::from(s.server().stats());
        let n = known.min(size_of::<knsock_stats>() as u64) as usize;
        full.size = n as u64;
        // SAFETY: `n` bytes fit both the local struct and, by the contract, the caller's.
        unsafe {
            ptr::copy_nonoverlapping((&full as *const knsock_stats).cast::<u8>(), stats.cast(), n)
        };
        Ok(())
    })
}
