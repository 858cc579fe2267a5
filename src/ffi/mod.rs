//! The C ABI: the only place with `extern "C"` and `unsafe`. One module per C type; every export
//! runs inside [`boundary`] or [`with_error`], so no panic unwinds into C.
#![allow(non_camel_case_types, clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use crate::{Error, ErrorKind};

pub mod batch;
pub mod error;
pub mod file_info;
pub mod send;
pub mod server;
pub mod transfer;

use error::knsock_error;

/// `KNSOCK_VERSION_MAJOR.MINOR.PATCH` of the header; `knsock_version()` gives the library's.
pub const KNSOCK_VERSION_MAJOR: u32 = 0;
pub const KNSOCK_VERSION_MINOR: u32 = 1;
pub const KNSOCK_VERSION_PATCH: u32 = 0;

/// What a progress callback returns to let the transfer go on. Any other value aborts it with
/// `KNSOCK_RESULT_ABORTED_BY_CALLBACK`.
pub const KNSOCK_CONTINUE: c_int = 0;

/// The outcome of every fallible call. Values are fixed forever; new ones may be added, so treat
/// an unknown value as an error.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum knsock_result {
    /// Success.
    Ok = 0,
    /// A NULL pointer, an out-of-range value, or an unusable string was passed.
    InvalidArgument = 1,
    /// The local file or directory does not exist.
    NotFound = 2,
    /// The connection could not be made.
    Connect = 3,
    /// Connecting or waiting for the peer took too long.
    Timeout = 4,
    /// The receiver refused the file; `knsock_error_peer_reason()` has its reason.
    Rejected = 5,
    /// The peer broke the protocol or speaks an unsupported version.
    Protocol = 6,
    /// The content did not match its checksum.
    Integrity = 7,
    /// Not enough space on the receiver.
    NoSpace = 8,
    /// Another input/output error.
    Io = 9,
    /// Cancelled by `knsock_transfer_cancel()` or by freeing a running transfer.
    Cancelled = 10,
    /// A progress callback returned something other than `KNSOCK_CONTINUE`.
    AbortedByCallback = 11,
    /// A bug in knsock: a panic was caught at the boundary. The handle involved should be freed.
    Panic = 12,
    /// `knsock_transfer_wait()` timed out; the transfer is still running.
    InProgress = 13,
}

/// What a server does when a received file's name exists. Passed to
/// `knsock_server_config_set_overwrite()` as a `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum knsock_overwrite {
    /// Replace the existing file atomically (the default, as kn-sock does).
    Replace = 0,
    /// Refuse the new file; the sender gets `KNSOCK_RESULT_REJECTED`.
    Refuse = 1,
    /// Keep both: store the new one as `name (1).ext`, `name (2).ext`, …
    Rename = 2,
}

impl From<ErrorKind> for knsock_result {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::InvalidArgument => knsock_result::InvalidArgument,
            ErrorKind::NotFound => knsock_result::NotFound,
            ErrorKind::Connect => knsock_result::Connect,
            ErrorKind::Timeout => knsock_result::Timeout,
            ErrorKind::Rejected => knsock_result::Rejected,
            ErrorKind::Protocol => knsock_result::Protocol,
            ErrorKind::Integrity => knsock_result::Integrity,
            ErrorKind::NoSpace => knsock_result::NoSpace,
            ErrorKind::Io => knsock_result::Io,
            ErrorKind::Cancelled => knsock_result::Cancelled,
            ErrorKind::AbortedByCallback => knsock_result::AbortedByCallback,
            // Until phase 2 of issue 10 adds KNSOCK_RESULT_AUTH.
            ErrorKind::Auth => knsock_result::Rejected,
        }
    }
}

/// Runs `f`, turning a panic into `fallback`.
pub(crate) fn boundary<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Runs a fallible `f` at the boundary. On failure (or panic), a new error object goes to
/// `*error_out` when `error_out` is not NULL; on success `*error_out` is not touched.
pub(crate) unsafe fn with_error(
    error_out: *mut *mut knsock_error,
    f: impl FnOnce() -> Result<(), Error>,
) -> knsock_result {
    let err = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return knsock_result::Ok,
        Ok(Err(e)) => knsock_error::from_error(&e),
        Err(panic) => knsock_error::panic(panic),
    };
    let code = err.code;
    if !error_out.is_null() {
        *error_out = Box::into_raw(Box::new(err));
    }
    code
}

/// Turns an `Err` into its code, for calls that return no detail.
pub(crate) fn code_of(r: Result<(), Error>) -> knsock_result {
    match r {
        Ok(()) => knsock_result::Ok,
        Err(e) => e.kind().into(),
    }
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// A NUL-terminated path argument (any bytes but NUL, as the OS allows).
pub(crate) unsafe fn arg_path(p: *const c_char, what: &str) -> Result<PathBuf, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    let bytes = CStr::from_ptr(p).to_bytes();
    if bytes.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// A C string from Rust text; an interior NUL (never expected) becomes '?'.
pub(crate) fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

/// A `void *userdata` the caller promised may be used from the threads the header names.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut c_void);
// SAFETY: the header documents on which threads each callback runs; passing userdata there is
// the caller's contract, as with libcurl's CURLOPT_XFERINFODATA.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer; a method, so closures capture the whole (Send) wrapper.
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

/// The library's version string, e.g. "0.1.0". Static: never free it.
#[no_mangle]
pub extern "C" fn knsock_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, human-readable description of a result code (never NULL, never freed). Unknown
/// codes give "unknown result code".
#[no_mangle]
pub extern "C" fn knsock_result_str(code: c_int) -> *const c_char {
    let s: &'static CStr = match code {
        0 => c"success",
        1 => c"invalid argument",
        2 => c"not found",
        3 => c"connection failed",
        4 => c"timed out",
        5 => c"rejected by the receiver",
        6 => c"protocol error",
        7 => c"integrity check failed",
        8 => c"no space on the receiver",
        9 => c"input/output error",
        10 => c"cancelled",
        11 => c"aborted by callback",
        12 => c"internal error (panic caught)",
        13 => c"still in progress",
        _ => c"unknown result code",
    };
    s.as_ptr()
}
