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

/// Makes every directory fsync fail (as a failing disk would) while `on`: for testing what a
/// sender is told then. Process-wide.
pub fn fail_dir_sync(on: bool) {
    crate::storage::FAIL_DIR_SYNC.store(on, std::sync::atomic::Ordering::SeqCst);
}
