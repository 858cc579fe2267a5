//! `knsock_error`: an owned error object returned per call, so no thread-local state is needed
//! (a goroutine may change OS threads between two cgo calls).

use std::ffi::c_char;
use std::ptr;

use super::macros::{ffi_boundary, free_box, try_ref, Castable, OwnershipBox};
use super::types::knsock_result;

pub use super::error_object::knsock_error;

impl Castable for knsock_error {
    type Ownership = OwnershipBox;
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
