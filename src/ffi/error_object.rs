//! The `knsock_error` object itself: what it holds and how it is made from a core error or a
//! caught panic (its C accessors are in `error`).

use std::any::Any;
use std::ffi::CString;

use super::convert::to_cstring;
use super::types::knsock_result;
use crate::Error;

/// An error's detail: code, message and, for refusals, the receiver's reason. Created by the
/// library; freed by the caller with `knsock_error_free()`.
///
/// Thread safety: immutable; any thread may read it, also concurrently. `knsock_error_free()`
/// must be the last call, with no reader left (and never on an error a report, transfer, options
/// or config owns).
pub struct knsock_error {
    pub(crate) code: knsock_result,
    pub(crate) message: CString,
    pub(crate) peer_code: u16,
    pub(crate) peer_reason: Option<CString>,
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
