//! knsock: reliable file transfer over TCP.
//!
//! [`send_file`] succeeds only once the receiver has the bytes verified (XXH3-128), durable
//! (fsynced) and renamed into place; a [`ServerConfig`] starts a receiver that never writes
//! outside its directory and never shows a partial file under its final name. The wire protocol
//! is written down in `docs/protocol.md`.
//!
//! The core modules are safe Rust and know nothing of C; `ffi` is the C ABI over them.

pub mod batch;
pub mod compress;
pub mod error;
pub mod protocol;
pub mod sender;
pub mod server;
pub mod storage;

#[cfg(feature = "capi")]
#[doc(hidden)]
pub mod ffi;

pub use batch::{collect_sources, send_files, BatchReport, FileOutcome, Source, WalkOptions};
pub use error::{Error, ErrorKind, PeerReason, Result};
pub use sender::{
    send_file, BatchProgress, BatchProgressFn, CancelToken, ProgressFn, SendOptions, SendReport,
    DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
};
pub use server::{ErrorHandler, FileInfo, Handler, Server, ServerConfig, Validator};
pub use storage::Overwrite;

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
