//! Where received bytes land: names resolved beneath an open directory handle (never following a
//! symlink), hidden temporary files, the fsync-then-rename commit, and the start-up sweep.

mod digest_store;
mod digests;
mod names;
mod object;
pub(crate) use object::guarded;
mod root;
#[cfg(feature = "s3")]
mod s3;
mod s3_config;
mod sink;
mod sweep;
mod target;
mod types;

pub use digest_store::remember;
pub use digests::DigestCache;
pub use object::{
    ListedObject, ObjectError, ObjectErrorKind, ObjectMeta, ObjectReader, ObjectStore, Upload,
};
pub use root::Root;
#[cfg(feature = "s3")]
pub use s3::S3Store;
pub use s3_config::S3Config;
pub use sink::{Entry, Place, Sink};
pub use sweep::sweep;
#[cfg(feature = "internals")]
pub use target::FAIL_DIR_SYNC;
pub use target::{effective_mode, in_memory, same_file, sync_all, Stored, Target, TempFile};
pub use types::{Overwrite, StoreError};
