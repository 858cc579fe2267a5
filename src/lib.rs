//! knsock: reliable file transfer over TCP.
//!
//! [`send_file`] succeeds only once the receiver has the bytes verified (XXH3-128), durable
//! (fsynced) and renamed into place; a [`ServerConfig`] starts a receiver that never writes
//! outside its directory and never shows a partial file under its final name. The wire protocol
//! is written down in `docs/protocol.md`; `docs/architecture.md` maps the modules.
//!
//! The core modules are safe Rust and know nothing of C; `ffi` (feature `capi`) is the C ABI
//! over them.
//!
//! Features: `tls` (TLS 1.3, tokens, client certificates) and `progress-bar` are on by default,
//! as is `capi` (the C ABI of the static and shared libraries; it needs no dependency). `s3`
//! stores received files in an S3-compatible bucket (`S3Store`). The command-line tool is
//! the `kn-sock` package (`cli/` in the repository), not part of this crate.
#![warn(missing_docs)]

mod compress;
mod error;
mod fetch;
mod hash;
mod send;
mod server;
mod storage;
mod sync;
mod text;
mod tls;
mod transport;
mod walk;

// The wire codec is internal; the `internals` feature exposes it to this crate's own tests,
// which play hostile peers byte by byte. It is not part of the API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod protocol;
#[cfg(not(feature = "internals"))]
mod protocol;

#[cfg(feature = "capi")]
#[doc(hidden)]
pub mod ffi;

pub use error::{Error, ErrorKind, PeerReason, Result};
pub use fetch::{
    fetch_file, fetch_files, FetchOptions, FetchProgressFn, FetchReport, FetchStatus, FetchedFile,
    FetchedFn, MissingName,
};
pub use send::{
    check_chunk_size, check_timeout, send_file, send_files, send_files_to_many, send_stream,
    BatchProgress, BatchProgressFn, BatchReport, CancelToken, FileOutcome, ManyReport, ProgressFn,
    Receiver, ReceiverOutcome, SendOptions, SendReport, DEFAULT_CHUNK_SIZE,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, FANOUT_WINDOW_BYTES, MAX_CHUNK_SIZE,
};
pub use server::{
    ErrorHandler, FileInfo, Handler, RefusalHandler, Refused, Server, ServerConfig, ServerStats,
    Validator, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, STATS_CODES,
};
#[cfg(feature = "s3")]
pub use storage::S3Store;
pub use storage::{
    ListedObject, ObjectError, ObjectErrorKind, ObjectMeta, ObjectReader, ObjectStore, Overwrite,
    S3Config, Upload,
};
pub use text::{printable, printable_bytes};
pub use tls::{check_pin, hash_token, split_token, ServerIdentity, TlsOptions};
pub use walk::{collect_sources, Source, WalkOptions};

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
