//! `knsock_send_stream`: one file whose content a read callback produces, in libcurl's manner
//! (`CURLOPT_READFUNCTION`), of a stated size or of one known only at its end.

use std::ffi::{c_char, c_void};
use std::io;

use super::convert::{arg_str, UserData};
use super::error::knsock_error;
use super::macros::ffi_boundary;
use super::send_options::knsock_send_options;
use super::types::knsock_result;
use crate::{Error, ErrorKind};

/// The `size` of `knsock_send_stream()` when the content's size is known only at its end.
pub const KNSOCK_SIZE_UNKNOWN: u64 = u64::MAX;

/// What a read callback returns to abort the transfer (libcurl's `CURL_READFUNC_ABORT`).
pub const KNSOCK_READ_ABORT: usize = !0;

/// Read callback of `knsock_send_stream()`: writes at most `length` bytes of the content into
/// `buffer` (valid only during the call) and returns how many, 0 at the end of the content, or
/// `KNSOCK_READ_ABORT` to stop: the transfer then fails with
/// `KNSOCK_RESULT_ABORTED_BY_CALLBACK` and the receiver stores nothing. It runs on the thread
/// that called `knsock_send_stream()`, one call at a time; it may block (a pipe, a program's
/// output). Returning more than `length` is an error (`KNSOCK_RESULT_IO`), as is a content of
/// another size than the one stated; both store nothing.
pub type knsock_read_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, buffer: *mut u8, length: usize) -> usize>;

/// Sends what `read` produces, until it returns 0, to `host:port` as the file `name`, and
/// blocks until the receiver has verified it, made it durable and put it in place (then
/// `KNSOCK_RESULT_OK`), or until it fails.
///
/// `size` is the content's size, or `KNSOCK_SIZE_UNKNOWN` when it is known only at its end
/// (the receiver must speak capability bit 4, docs/protocol.md section 3.3; it applies its
/// maximum file size as the bytes arrive and ends the transfer with its reason,
/// `KNSOCK_RESULT_REJECTED`, once the content passes it). A content that ends before `size`
/// bytes or runs past it fails, and nothing is stored: the connection is closed before the end
/// of the content. There is no retry and no resume: what was read cannot be read again.
/// `options` may be NULL; its remote name, skip-unchanged, delta and legacy settings do not
/// apply. Its progress callback gets a total of 0 when the size is unknown. The file gets mode
/// 0644 and the current time as its modification time.
///
/// On failure, when `error` is not NULL, `*error` receives a new error object with the detail
/// (free it with `knsock_error_free()`); on success `*error` is not touched.
#[no_mangle]
pub extern "C" fn knsock_send_stream(
    host: *const c_char,
    port: u16,
    name: *const c_char,
    read: knsock_read_cb,
    userdata: *mut c_void,
    size: u64,
    options: *const knsock_send_options,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let (host, name) = unsafe { (arg_str(host, "host")?, arg_str(name, "name")?) };
        let read = read.ok_or_else(|| Error::invalid("read callback is NULL"))?;
        // SAFETY: the header's contract: `options` is NULL or live, no setter running.
        let opts = knsock_send_options::to_rust(unsafe { options.as_ref() });
        let source = CRead {
            read,
            userdata: UserData(userdata),
        };
        let size = (size != KNSOCK_SIZE_UNKNOWN).then_some(size);
        crate::send_stream(host, port, name, source, size, &opts).map(drop)
    })
}

/// The read callback as a `Read` source.
struct CRead {
    read: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> usize,
    userdata: UserData,
}

impl io::Read for CRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the caller registered `read` with `userdata`; `buf` is `buf.len()` writable
        // bytes for the call.
        let n = unsafe { (self.read)(self.userdata.ptr(), buf.as_mut_ptr(), buf.len()) };
        match n {
            KNSOCK_READ_ABORT => Err(io::Error::other(Error::new(
                ErrorKind::AbortedByCallback,
                "transfer aborted by the read callback",
            ))),
            n if n > buf.len() => Err(io::Error::other(Error::new(
                ErrorKind::Io,
                format!(
                    "the read callback returned {n} for a buffer of {} bytes",
                    buf.len()
                ),
            ))),
            n => Ok(n),
        }
    }
}
