//! `knsock_file_info`: what a server callback is told about a file, borrowed for the callback.

use std::ffi::{c_char, CString};
use std::ptr;

use super::convert::{path_cstring, to_cstring};
use super::macros::{ffi_boundary, try_out, try_ref, Castable, OwnershipRef};
use crate::FileInfo;

/// A file as the server sees it. Borrowed: valid only during the callback that received it, and
/// so are the strings its accessors return.
///
/// Thread safety: read-only; it may be read from any thread while the callback runs, never after
/// it returns.
pub struct knsock_file_info {
    name: CString,
    size: u64,
    mtime: i64,
    mode: u32,
    peer: CString,
    path: Option<CString>,
    identity: Option<CString>,
}

impl Castable for knsock_file_info {
    type Ownership = OwnershipRef;
}

impl knsock_file_info {
    pub(crate) fn new(info: &FileInfo) -> Self {
        knsock_file_info {
            name: to_cstring(&info.name),
            size: info.size,
            mtime: info.mtime_secs,
            mode: info.mode,
            peer: to_cstring(&info.peer.to_string()),
            path: info.path.as_deref().map(path_cstring),
            identity: info.identity.as_deref().map(to_cstring),
        }
    }
}

/// The relative name, `/`-separated, UTF-8. In a received handler: the name it was stored under.
#[no_mangle]
pub extern "C" fn knsock_file_info_name(info: *const knsock_file_info) -> *const c_char {
    ffi_boundary!({ Ok(try_ref!(info).name.as_ptr()) })
}

/// The size in bytes (0 when `info` is NULL).
#[no_mangle]
pub extern "C" fn knsock_file_info_size(info: *const knsock_file_info) -> u64 {
    ffi_boundary!({ Ok(try_ref!(info).size) })
}

/// The sender's modification time, seconds since the Unix epoch.
#[no_mangle]
pub extern "C" fn knsock_file_info_mtime(info: *const knsock_file_info) -> i64 {
    ffi_boundary!({ Ok(try_ref!(info).mtime) })
}

/// The sender's permission bits (e.g. 0644).
#[no_mangle]
pub extern "C" fn knsock_file_info_mode(info: *const knsock_file_info) -> u32 {
    ffi_boundary!({ Ok(try_ref!(info).mode) })
}

/// The sender's address, "ip:port".
#[no_mangle]
pub extern "C" fn knsock_file_info_peer(info: *const knsock_file_info) -> *const c_char {
    ffi_boundary!({ Ok(try_ref!(info).peer.as_ptr()) })
}

/// NULL before the data (pre-data validator); the verified temporary file in a post-data
/// validator; the saved file in a received handler. The path's exact bytes as the OS has them
/// (not necessarily UTF-8: the server's directory may have any name), so it can be opened or
/// `stat()`ed as it is.
#[no_mangle]
pub extern "C" fn knsock_file_info_path(info: *const knsock_file_info) -> *const c_char {
    ffi_boundary!({
        let i = try_ref!(info);
        Ok(i.path.as_ref().map_or(ptr::null(), |p| p.as_ptr()))
    })
}

/// The same bytes as `knsock_file_info_path()` with their length, for bindings that carry
/// byte strings (Go, Python): `*len` receives the length without the terminating NUL, which
/// follows the bytes as well. When there is no path yet (pre-data validator) it returns NULL
/// and `*len` receives 0. NULL `info` or `len` gives NULL and leaves `*len` untouched. Borrowed
/// like the info.
#[no_mangle]
pub extern "C" fn knsock_file_info_path_bytes(
    info: *const knsock_file_info,
    len: *mut usize,
) -> *const c_char {
    ffi_boundary!({
        let i = try_ref!(info);
        let len = try_out!(len);
        let path = i.path.as_deref();
        len.write(path.map_or(0, |p| p.to_bytes().len()));
        Ok(path.map_or(ptr::null(), |p| p.as_ptr()))
    })
}

/// The identity the sender proved (its token's name, or its client certificate's subject common
/// name), or NULL for an anonymous sender (a server that requires no authentication, a
/// plaintext or kn-sock 0.3 sender) or when `info` is NULL. Borrowed like the info. With
/// confinement, `knsock_file_info_name()` begins with the identity's directory.
#[no_mangle]
pub extern "C" fn knsock_file_info_identity(info: *const knsock_file_info) -> *const c_char {
    ffi_boundary!({
        let i = try_ref!(info);
        Ok(i.identity.as_ref().map_or(ptr::null(), |p| p.as_ptr()))
    })
}
