//! The C ABI's result codes, enums and constants, shared by every C type's module.

use std::ffi::c_int;

use crate::ErrorKind;

/// `KNSOCK_VERSION_MAJOR.MINOR.PATCH` of the header; `knsock_version()` gives the library's.
pub const KNSOCK_VERSION_MAJOR: u32 = 0;
pub const KNSOCK_VERSION_MINOR: u32 = 1;
pub const KNSOCK_VERSION_PATCH: u32 = 0;

/// `KNSOCK_VERSION_NUM` is the header's version as one number, `(MAJOR << 16) | (MINOR << 8) |
/// PATCH` (0x000100 for 0.1.0), to compare in `#if` like `LIBCURL_VERSION_NUM`;
/// `knsock_version_num()` gives the library's.
pub const KNSOCK_VERSION_NUM: u32 =
    (KNSOCK_VERSION_MAJOR << 16) | (KNSOCK_VERSION_MINOR << 8) | KNSOCK_VERSION_PATCH;

/// What a validator returns to accept a file (`knsock_validator_cb`).
pub const KNSOCK_VALIDATOR_ACCEPT: c_int = 0;

/// What a validator returns to refuse a file; any value other than `KNSOCK_VALIDATOR_ACCEPT`
/// refuses too.
pub const KNSOCK_VALIDATOR_REJECT: c_int = 1;

/// The size a validator's `reason` buffer always has at least: room for the longest reason the
/// protocol carries (1024 bytes) and its NUL.
pub const KNSOCK_REASON_MAX: usize = 1025;
const _: () = assert!(KNSOCK_REASON_MAX == crate::protocol::MAX_TEXT + 1);

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
    /// Authentication failed: the server's certificate or pin did not verify, the server refused
    /// our token or certificate (`knsock_error_peer_code()` 12), or one side speaks TLS and the
    /// other does not (peer code 13). `knsock_error_message()` says which.
    Auth = 14,
    /// The receiver's object store failed: `knsock_error_peer_code()` 15 when it is unreachable
    /// or slowing down (a retry may succeed; retries are made), 16 when it refused (access
    /// denied, no such bucket). A server's error handler gets it for a file it could not store.
    Store = 15,
    /// The receiver is at its connection cap (`knsock_error_peer_code()` 17): retry later.
    /// Retried with backoff when the options allow retries.
    Busy = 16,
}

/// The highest value of `knsock_result` this header knows: codes run from 0 to it without a
/// gap. A library newer than the header may return higher ones; treat them as errors.
pub const KNSOCK_RESULT_LAST: c_int = 16;

impl knsock_result {
    /// Every code, in order: `ALL[c]` is code `c`. The test below checks that the array and
    /// [`KNSOCK_RESULT_LAST`] follow the enum, whose [`knsock_result::text`] match the compiler
    /// keeps exhaustive.
    pub(crate) const ALL: [knsock_result; KNSOCK_RESULT_LAST as usize + 1] = {
        use knsock_result::*;
        [
            Ok,
            InvalidArgument,
            NotFound,
            Connect,
            Timeout,
            Rejected,
            Protocol,
            Integrity,
            NoSpace,
            Io,
            Cancelled,
            AbortedByCallback,
            Panic,
            InProgress,
            Auth,
            Store,
            Busy,
        ]
    };

    /// The code whose value is `code`, if this library has one.
    pub(crate) fn from_code(code: c_int) -> Option<knsock_result> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The static text `knsock_result_str()` gives for this code.
    pub(crate) fn text(self) -> &'static std::ffi::CStr {
        use knsock_result::*;
        match self {
            Ok => c"success",
            InvalidArgument => c"invalid argument",
            NotFound => c"not found",
            Connect => c"connection failed",
            Timeout => c"timed out",
            Rejected => c"rejected by the receiver",
            Protocol => c"protocol error",
            Integrity => c"integrity check failed",
            NoSpace => c"no space on the receiver",
            Io => c"input/output error",
            Cancelled => c"cancelled",
            AbortedByCallback => c"aborted by callback",
            Panic => c"internal error (panic caught)",
            InProgress => c"still in progress",
            Auth => c"authentication failed",
            Store => c"the receiver's object store failed",
            Busy => c"the receiver is busy: retry later",
        }
    }

    /// The last code, found from the enum itself: a variant added after `Busy` must be named
    /// here (the match is exhaustive), and the test then sees `ALL` and `KNSOCK_RESULT_LAST`
    /// lag behind it.
    #[cfg(test)]
    fn successor(self) -> Option<knsock_result> {
        use knsock_result::*;
        match self {
            Busy => None,
            Ok | InvalidArgument | NotFound | Connect | Timeout | Rejected | Protocol
            | Integrity | NoSpace | Io | Cancelled | AbortedByCallback | Panic | InProgress
            | Auth | Store => Self::from_code(self as c_int + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_code_has_its_text_and_the_table_follows_the_enum() {
        for (i, code) in knsock_result::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i, "ALL[{i}] is {code:?}");
            assert_eq!(knsock_result::from_code(i as c_int), Some(*code));
        }
        let mut last = knsock_result::Ok;
        while let Some(next) = last.successor() {
            last = next;
        }
        assert_eq!(last as c_int, KNSOCK_RESULT_LAST);
        assert_eq!(knsock_result::from_code(KNSOCK_RESULT_LAST + 1), None);
        assert_eq!(knsock_result::from_code(-1), None);
    }
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
            ErrorKind::Auth => knsock_result::Auth,
            ErrorKind::Store => knsock_result::Store,
            ErrorKind::Busy => knsock_result::Busy,
        }
    }
}
