//! `knsock_error`: an owned error object returned per call, so no thread-local state is needed
//! (a goroutine may change OS threads between two cgo calls).

use std::any::Any;
use std::ffi::{c_char, CString};
use std::ptr;

use super::convert::to_cstring;
use super::knsock_result;
use super::macros::{ffi_boundary, free_box, try_ref, Castable, OwnershipBox};
use crate::Error;

/// An error's detail: code, message and, for refusals, the receiver's reason. Created by the
/// library; freed by the caller with `knsock_error_free()`.
///
/// Thread safety: immutable; any thread may read it, also concurrently. `knsock_error_free()`
/// must be the last call, with no reader left (and never on an error a report, transfer, options
/// or config owns).
pub struct knsock_error {
    pub(crate) code: knsock_result,
    message: CString,
    peer_code: u16,
    peer_reason: Option<CString>,
}

impl Castable for knsock_error {
    type Ownership = OwnershipBox;
}

impl knsock_error {
    pub(crate) fn from_error(e: &Error) -> Self {
        knsock_error {
            code: e.kind().into(),
            message: to_cstring(e.message()),
            peer_code: e.peer_reason().map_or(0, |p| p.code),
            peer_reason: e.peer_reason().map(|p| to_cstring(&p.text)),
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send>) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        knsock_error {
            code: knsock_result::Panic,
            message: to_cstring(&format!("internal error in knsock (panic: {what})")),
            peer_code: 0,
            peer_reason: None,
        }
    }
}

/// The error's result code. NULL gives `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn knsock_error_code(error: *const knsock_error) -> knsock_result {
    ffi_boundary!({ Ok(try_ref!(error).code) })
}

/// A one-line message for people, e.g. "cannot connect to 127.0.0.1:9: Connection refused".
/// Owned by the error: valid until `knsock_error_free()`. NULL when `error` is NULL.
#[no_mangle]
pub extern "C" fn knsock_error_message(error: *const knsock_error) -> *const c_char {
    ffi_boundary!({ Ok(try_ref!(error).message.as_ptr()) })
}

/// The receiver's own reason when it refused a file (the text a validator returned, "no space:
/// …"), or NULL when the receiver gave none. Owned by the error.
#[no_mangle]
pub extern "C" fn knsock_error_peer_reason(error: *const knsock_error) -> *const c_char {
    ffi_boundary!({
        let e = try_ref!(error);
        Ok(e.peer_reason.as_ref().map_or(ptr::null(), |r| r.as_ptr()))
    })
}

/// The receiver's wire code for its refusal (docs/protocol.md section 5), or 0.
#[no_mangle]
pub extern "C" fn knsock_error_peer_code(error: *const knsock_error) -> u16 {
    ffi_boundary!({ Ok(try_ref!(error).peer_code) })
}

/// Frees an error. NULL is a no-op.
#[no_mangle]
pub extern "C" fn knsock_error_free(error: *mut knsock_error) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or an error the library handed out, freed once.
        unsafe { free_box(error) };
        Ok(())
    })
}
