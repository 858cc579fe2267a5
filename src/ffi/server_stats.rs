//! `knsock_stats`: a snapshot of a server's counters and resources (the core's `ServerStats`,
//! `repr(C)`, as `knsock_stats_values`), behind a size that says how many bytes the caller
//! knows, filled by `knsock_server_stats()`.

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
const _: () = assert!(size_of::<knsock_stats>() == 8 + size_of::<ServerStats>());

/// A server's statistics, versioned by its size: set `size` to `sizeof(knsock_stats)` before
/// the call. A library fills only the first `size` bytes (a program built against an older,
/// shorter struct gets the fields it knows), and fields are only ever added at the end of
/// `values`. On return `size` holds the bytes filled: less than the caller's when the library is
/// older than the caller's header. Every field is 64 bits wide: no padding on any platform.
#[repr(C)]
#[derive(Clone)]
pub struct knsock_stats {
    /// Set by the caller: `sizeof(knsock_stats)` as it knows it.
    pub size: u64,
    /// What the server has done and holds now.
    pub values: ServerStats,
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
        // which the first 8 (a `uint64_t`) are the caller's `size`.
        let known = unsafe { ptr::read_unaligned(stats.cast::<u64>()) };
        if known < size_of::<u64>() as u64 {
            return Err(Error::invalid(format!(
                "stats->size is {known}, smaller than the size field itself"
            )));
        }
        let n = known.min(size_of::<knsock_stats>() as u64) as usize;
        let full = knsock_stats {
            size: n as u64,
            values: s.server().stats(),
        };
        // SAFETY: `n` bytes fit both the local struct and, by the contract, the caller's.
        unsafe {
            ptr::copy_nonoverlapping((&full as *const knsock_stats).cast::<u8>(), stats.cast(), n)
        };
        Ok(())
    })
}
