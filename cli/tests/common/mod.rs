//! Shared helpers for the `kn-sock` tests: the binary of this build, run as a server
//! (`cli.rs`), and the library tests' std-only helpers (files, random bytes, a refusing port, a
//! busy receiver).
#![allow(dead_code)]

#[path = "../../../tests/common/busy.rs"]
mod busy;
pub mod cli;
#[path = "../../../tests/common/files.rs"]
mod files;

#[allow(unused_imports)]
pub use busy::*;
#[allow(unused_imports)]
pub use files::*;

/// The `kn-sock` binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_kn-sock");
