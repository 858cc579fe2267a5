//! Where received bytes land: names resolved beneath an open directory handle (never following a
//! symlink), hidden temporary files, the fsync-then-rename commit, and the start-up sweep.

mod digest_store;
mod digests;
mod names;
mod root;
mod sweep;
mod target;
mod types;

pub use digest_store::remember;
pub use digests::DigestCache;
pub use root::{Lookup, Root};
pub use sweep::sweep;
#[cfg(feature = "internals")]
pub use target::FAIL_DIR_SYNC;
pub use target::{sync_all, Target, TempFile};
pub use types::{Overwrite, StoreError};
