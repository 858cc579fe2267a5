//! The C ABI: the only place with `extern "C"` and `unsafe`; result codes and the version live
//! here, each C type in its own module. Every export's body runs in `ffi_boundary!`
//! (`macros.rs`), so no panic unwinds into C and every NULL handle is an error code.
//!
//! Exports are safe `extern "C" fn`s taking raw pointers, as in rustls-ffi and hyper: the
//! pointer contract is the C caller's and is stated once in the header's conventions; inside,
//! each dereference goes through a checked helper in an `unsafe` block with its `// SAFETY:`.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]
// Safe exports over raw pointers are the design above (C cannot see `unsafe`); each dereference
// still sits in an `unsafe` block with its `// SAFETY:` line.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_char, c_int, CStr};

pub mod batch_report;
mod convert;
pub mod error;
mod error_object;
pub mod fetch;
pub mod file_info;
pub(crate) mod macros;
pub mod multi_report;
pub mod send;
pub mod send_options;
pub mod send_options_tls;
pub mod send_stream;
pub mod server;
pub mod server_config;
pub mod server_config_limits;
pub mod server_config_security;
pub mod server_config_store;
pub mod server_stats;
pub mod store;
pub mod token;
pub mod transfer;
pub mod types;

use macros::ffi_boundary;

pub use types::*;

/// The library's version string, e.g. "0.1.0". Static: never free it.
#[no_mangle]
pub extern "C" fn knsock_version() -> *const c_char {
    ffi_boundary!({ Ok(concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()) })
}

/// The library's version as `KNSOCK_VERSION_NUM` encodes it: `(major << 16) | (minor << 8) |
/// patch`. Compare it with `KNSOCK_VERSION_NUM` to tell the library from the header built
/// against.
#[no_mangle]
pub extern "C" fn knsock_version_num() -> u32 {
    ffi_boundary!({ Ok(VERSION_NUM) })
}

/// The crate's version, encoded at compile time from Cargo.toml.
const VERSION_NUM: u32 = (decimal(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
    | (decimal(env!("CARGO_PKG_VERSION_MINOR")) << 8)
    | decimal(env!("CARGO_PKG_VERSION_PATCH"));

const fn decimal(s: &str) -> u32 {
    let (b, mut i, mut n) = (s.as_bytes(), 0, 0);
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// A static, human-readable description of a result code (never NULL, never freed). Unknown
/// codes give "unknown result code".
#[no_mangle]
pub extern "C" fn knsock_result_str(code: c_int) -> *const c_char {
    ffi_boundary!({ Ok(result_text(code).as_ptr()) })
}

fn result_text(code: c_int) -> &'static CStr {
    knsock_result::from_code(code).map_or(c"unknown result code", knsock_result::text)
}
