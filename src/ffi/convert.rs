//! Conversions at the boundary: C string and path arguments in, C strings out, and the
//! `void *userdata` that travels with callbacks.

use std::ffi::{c_char, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that stays valid and unchanged during `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by this function's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// A NUL-terminated path argument (any bytes but NUL, as the OS allows).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid during the call.
pub(crate) unsafe fn arg_path(p: *const c_char, what: &str) -> Result<PathBuf, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by this function's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// A C string from Rust text; an interior NUL (never expected) becomes '?'.
pub(crate) fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

/// A C string holding a path's exact bytes: no UTF-8 conversion, so a path in a directory whose
/// name is not UTF-8 still names a file that exists. (A path never holds a NUL.)
pub(crate) fn path_cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// A `void *userdata` the caller promised may be used from the threads the header names.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut c_void);

// SAFETY: the header documents on which threads each callback runs; passing userdata there is
// the caller's contract, as with libcurl's CURLOPT_XFERINFODATA.
unsafe impl Send for UserData {}
// SAFETY: as for Send: knsock never dereferences it, it only hands it back to the caller.
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer; a method, so closures capture the whole (Send) wrapper.
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}
