//! Hooks for this crate's own tests and fuzz targets (feature `internals`): not part of the API,
//! no stability promise.

use crate::error::Result;
use crate::server::ServerConfig;

pub use crate::compress::decode_blocks;

/// Serves one connection whose whole input is `input` (an in-memory stream; the first byte picks
/// knsock or kn-sock 0.3, as on a socket) with a server configured by `config`, and returns the
/// bytes the server wrote and how the connection ended.
pub fn serve_bytes(config: &ServerConfig, input: &[u8]) -> Result<(Vec<u8>, Result<()>)> {
    crate::server::serve_in_memory(config.clone(), input)
}

/// Makes a server act as a receiver of an earlier release that does not know the capability
/// `bits` (docs/protocol.md section 1): it never grants them, and the frames only they allow
/// (such as EARLY for bit 6) are protocol errors, as unknown frames are there.
pub fn withhold_capabilities(config: &mut ServerConfig, bits: u32) {
    config.withheld_caps = bits;
}

/// The round trips the sends run on this thread waited for since the last call, the TCP and TLS
/// handshakes not included (docs/protocol.md section 1.3), and starts counting again. A wait
/// counts when a read finds nothing to read after bytes were written since the previous read:
/// on loopback at most the round trips the exchange needs over a real network.
pub fn take_send_turns() -> u32 {
    crate::send::take_turns()
}

/// Makes every directory fsync fail (as a failing disk would) while `on`: for testing what a
/// sender is told then. Process-wide.
pub fn fail_dir_sync(on: bool) {
    crate::storage::FAIL_DIR_SYNC.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Deterministic pseudo-random bytes (xorshift64), fast enough for 100 MiB: the test data of the
/// tests, the fuzz seeds and the benchmarks, one generator for all of them.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
