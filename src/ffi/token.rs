//! Tokens for `knsock_server_config_set_tokens_file()`: `knsock_hash_token()` makes the hash a
//! tokens file stores, and `knsock_string_free()` frees the string it hands out.

use std::ffi::{c_char, CString};

use super::convert::arg_str;
use super::error::knsock_error;
use super::macros::{ffi_boundary, try_out};
use super::types::knsock_result;

/// Hashes a token's secret for a tokens file: on success `*hash` receives a new string,
/// `pbkdf2-sha256$ITERATIONS$SALT$KEY` (salted PBKDF2-HMAC-SHA256, a fresh random salt each
/// call, so two hashes of one secret differ), to write as the line `NAME:HASH` (then chmod 600
/// the file). The caller owns the string and frees it with `knsock_string_free()`. Takes tens of
/// milliseconds on purpose. An empty `secret` gives `KNSOCK_RESULT_INVALID_ARGUMENT`; on failure
/// `*hash` is not touched and, when `error` is not NULL, `*error` receives the detail. Any
/// thread.
#[no_mangle]
pub extern "C" fn knsock_hash_token(
    secret: *const c_char,
    hash: *mut *mut c_char,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let secret = unsafe { arg_str(secret, "secret") }?;
        let out = try_out!(hash);
        let line = crate::hash_token(secret)?;
        out.write(super::convert::to_cstring(&line).into_raw());
        Ok(())
    })
}

/// Frees a string the library handed to the caller as owned (today only `knsock_hash_token()`'s).
/// NULL is a no-op. Never pass it a borrowed string (`knsock_error_message()`, …).
#[no_mangle]
pub extern "C" fn knsock_string_free(s: *mut c_char) {
    ffi_boundary!({
        if !s.is_null() {
            // SAFETY: the header's contract: `s` came from `CString::into_raw` in this library
            // (an owned string it handed out) and is freed once.
            drop(unsafe { CString::from_raw(s) });
        }
        Ok(())
    })
}
