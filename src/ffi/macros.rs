//! The one way in for every export: the panic boundary, the fallback value chosen by the return
//! type, pointer checks, and the `knsock_error **` out-parameter (after rustls-ffi's
//! `ffi_panic_boundary!` and `try_ref_from_ptr!`, and hyper's `ffi_fn!`).
//!
//! An export is a plain `#[no_mangle] pub extern "C" fn` (so cbindgen sees its signature) whose
//! body is `ffi_boundary!({ … })` or `ffi_boundary!(error: error, { … })`. The body returns
//! `Result<_, Error>`; a failure becomes the return type's [`Fallback`] and, where the export has
//! an out-parameter, an error object.

use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::error_object::knsock_error;
use super::types::knsock_result;
use crate::Error;

/// What an export returns when its body fails (`failed`) or panics (`panicked`), by return type
/// (rustls-ffi's `PanicOrDefault`): a result code gives the error's code or
/// `KNSOCK_RESULT_PANIC`; a pointer gives NULL; a number 0; a bool false.
pub(crate) trait Fallback {
    fn failed(e: &Error) -> Self;
    fn panicked() -> Self;
}

impl Fallback for knsock_result {
    fn failed(e: &Error) -> Self {
        e.kind().into()
    }
    fn panicked() -> Self {
        knsock_result::Panic
    }
}

impl<T> Fallback for *const T {
    fn failed(_: &Error) -> Self {
        ptr::null()
    }
    fn panicked() -> Self {
        ptr::null()
    }
}

impl<T> Fallback for *mut T {
    fn failed(_: &Error) -> Self {
        ptr::null_mut()
    }
    fn panicked() -> Self {
        ptr::null_mut()
    }
}

macro_rules! fallback_default {
    ($($t:ty),*) => {$(
        impl Fallback for $t {
            fn failed(_: &Error) -> Self {
                Self::default()
            }
            fn panicked() -> Self {
                Self::default()
            }
        }
    )*};
}
fallback_default!((), bool, u16, u32, u64, i64, usize);

/// A body that ran to its end succeeded: `Ok(())` is `KNSOCK_RESULT_OK`.
impl From<()> for knsock_result {
    fn from(_: ()) -> Self {
        knsock_result::Ok
    }
}

/// Runs an export's body; no panic leaves it.
pub(crate) fn call<T: Fallback, V: Into<T>>(body: impl FnOnce() -> Result<V, Error>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v.into(),
        Ok(Err(e)) => T::failed(&e),
        Err(_) => T::panicked(),
    }
}

/// Runs the body of an export with a `knsock_error **error` out-parameter: on failure (or
/// panic) a new error object goes to `*error` when `error` is not NULL; on success `*error` is
/// not touched.
pub(crate) fn call_with_error(
    error: *mut *mut knsock_error,
    body: impl FnOnce() -> Result<(), Error>,
) -> knsock_result {
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return knsock_result::Ok,
        Ok(Err(e)) => knsock_error::from_error(&e),
        Err(panic) => knsock_error::panic(panic),
    };
    let code = err.code;
    if !error.is_null() {
        // SAFETY: a non-NULL `knsock_error **` is a writable slot (the header's convention).
        unsafe { *error = to_boxed_mut_ptr(err) };
    }
    code
}

/// The body of every export. `ffi_boundary!({ … })` returns the body's value, or the return
/// type's [`Fallback`] on failure or panic; `ffi_boundary!(error: out, { … })` returns a
/// `knsock_result` and puts the detail of a failure into the `knsock_error **out`.
macro_rules! ffi_boundary {
    (error: $out:expr, $body:block) => {
        $crate::ffi::macros::call_with_error($out, move || $body)
    };
    ($body:block) => {
        $crate::ffi::macros::call(move || $body)
    };
}
pub(crate) use ffi_boundary;

/// `&T` from a handle argument; NULL is `KNSOCK_RESULT_INVALID_ARGUMENT` (`"NAME is NULL"`).
macro_rules! try_ref {
    ($p:ident) => {
        // SAFETY: the header's contract: a handle argument is NULL or a live object of its type
        // that no other thread mutates during the call.
        unsafe { $crate::ffi::macros::ref_from_ptr($p, stringify!($p)) }?
    };
}
pub(crate) use try_ref;

/// `&mut T` from a handle argument; NULL is `KNSOCK_RESULT_INVALID_ARGUMENT`.
macro_rules! try_mut {
    ($p:ident) => {
        // SAFETY: the header's contract: a mutable handle is NULL or a live object that no other
        // thread uses during the call.
        unsafe { $crate::ffi::macros::mut_from_ptr($p, stringify!($p)) }?
    };
}
pub(crate) use try_mut;

/// An [`Out`] from an output argument (`T **out`), checked for NULL before any work is done.
macro_rules! try_out {
    ($p:ident) => {
        // SAFETY: the header's contract: an output pointer is NULL or writable during the call.
        unsafe { $crate::ffi::macros::out_from_ptr($p, stringify!($p)) }?
    };
}
pub(crate) use try_out;

/// How C holds a handle type (rustls-ffi's `Castable`): [`OwnershipBox`] for objects C owns and
/// releases with their `_free` function; [`OwnershipRef`] for objects C only borrows during a
/// call or callback and never frees.
pub(crate) trait Castable {
    type Ownership;
}

/// Created by `Box::into_raw` in [`to_boxed_mut_ptr`], released by [`free_box`].
pub(crate) struct OwnershipBox(PhantomData<()>);

/// Lent to C for the duration of a call or callback.
pub(crate) struct OwnershipRef(PhantomData<()>);

/// Hands a new object to C; it comes back through [`free_box`].
pub(crate) fn to_boxed_mut_ptr<T: Castable<Ownership = OwnershipBox>>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Releases an object handed out by [`to_boxed_mut_ptr`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from [`to_boxed_mut_ptr`] and was not freed yet, and nothing uses it
/// any more.
pub(crate) unsafe fn free_box<T: Castable<Ownership = OwnershipBox>>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: by this function's contract `p` came from `Box::into_raw` and is released once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// # Safety
/// `p` is NULL or points to a live `T` not mutated during `'a`.
pub(crate) unsafe fn ref_from_ptr<'a, T: Castable>(
    p: *const T,
    name: &str,
) -> Result<&'a T, Error> {
    // SAFETY: by this function's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Error::invalid(format!("{name} is NULL")))
}

/// # Safety
/// `p` is NULL or points to a live `T` used by no one else during `'a`.
pub(crate) unsafe fn mut_from_ptr<'a, T: Castable<Ownership = OwnershipBox>>(
    p: *mut T,
    name: &str,
) -> Result<&'a mut T, Error> {
    // SAFETY: by this function's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{name} is NULL")))
}

/// An output slot known to be writable; written once, on success.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    pub(crate) fn write(self, v: T) {
        // SAFETY: `out_from_ptr` only builds an `Out` from a non-NULL pointer its caller vouched is
        // writable during the call; `write` does not read the (maybe uninitialised) old value.
        unsafe { self.0.write(v) }
    }
}

/// # Safety
/// `p` is NULL or writable during the call that uses the returned [`Out`].
pub(crate) unsafe fn out_from_ptr<T>(p: *mut T, name: &str) -> Result<Out<T>, Error> {
    match p.is_null() {
        true => Err(Error::invalid(format!("{name} output pointer is NULL"))),
        false => Ok(Out(p)),
    }
}
