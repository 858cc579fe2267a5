//! `knsock_transfer`: a send running on its own library thread (kn-sock's `send_file_async`).

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use super::error::knsock_error;
use super::send::knsock_send_options;
use super::{arg_path, arg_str, boundary, knsock_result, UserData};
use crate::CancelToken;
use crate::Error;

/// Completion callback of an async send: `code` is the result; `error` is NULL on success and
/// otherwise the detail, borrowed for the call (it stays readable through
/// `knsock_transfer_error()` until the transfer is freed). Runs exactly once, on the transfer's
/// own thread, before `knsock_transfer_wait()` returns. It may call `knsock_transfer_free()` on
/// its own transfer.
pub type knsock_done_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, code: knsock_result, error: *const knsock_error),
>;

struct State {
    outcome: Mutex<Option<(knsock_result, Option<Box<knsock_error>>)>>,
    finished: Condvar,
    sent: AtomicU64,
    total: AtomicU64,
    cancel: CancelToken,
}

/// A send running in the background. Created by `knsock_send_file_async()`, freed with
/// `knsock_transfer_free()`. Its functions may be called from any thread.
pub struct knsock_transfer {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

/// Starts sending `path` to `host:port` on a new library thread and returns at once with
/// `*transfer` set (free it with `knsock_transfer_free()`). Arguments are checked and copied
/// before it returns; `options` (may be NULL) can be freed right after. The progress callback
/// and `on_done` (may be NULL) run on the transfer's thread.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_file_async(
    host: *const c_char,
    port: u16,
    path: *const c_char,
    options: *const knsock_send_options,
    on_done: knsock_done_cb,
    userdata: *mut c_void,
    transfer: *mut *mut knsock_transfer,
    error: *mut *mut knsock_error,
) -> knsock_result {
    super::with_error(error, || {
        let host = arg_str(host, "host")?.to_string();
        let path = arg_path(path, "path")?;
        if transfer.is_null() {
            return Err(Error::invalid("transfer output pointer is NULL"));
        }
        let mut opts = knsock_send_options::to_rust(options.as_ref());
        opts.validate()?;
        let state = Arc::new(State {
            outcome: Mutex::new(None),
            finished: Condvar::new(),
            sent: AtomicU64::new(0),
            total: AtomicU64::new(0),
            cancel: CancelToken::new(),
        });
        opts.cancel = Some(state.cancel.clone());
        let user_progress = opts.progress.take();
        let st = Arc::clone(&state);
        opts.progress = Some(Arc::new(move |name: &str, sent, total| {
            st.total.store(total, Ordering::Relaxed);
            st.sent.store(sent, Ordering::Relaxed);
            user_progress
                .as_ref()
                .is_none_or(|cb| cb(name, sent, total))
        }));
        let ud = UserData(userdata);
        let st = Arc::clone(&state);
        let handle = thread::Builder::new()
            .name("knsock-transfer".into())
            .spawn(move || {
                let ud = ud;
                let (code, err) =
                    boundary((knsock_result::Panic, None), || {
                        match crate::send_file(&host, port, &path, &opts) {
                            Ok(_) => (knsock_result::Ok, None),
                            Err(e) => (
                                e.kind().into(),
                                Some(Box::new(knsock_error::from_error(&e))),
                            ),
                        }
                    });
                let err_ptr = err
                    .as_deref()
                    .map_or(ptr::null(), |e| e as *const knsock_error);
                if let Some(cb) = on_done {
                    // SAFETY: registered by the caller with `ud`; `err_ptr` lives in `err`.
                    unsafe { cb(ud.ptr(), code, err_ptr) };
                }
                *st.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, err));
                st.finished.notify_all();
            })
            .map_err(|e| Error::io("starting the transfer thread", e))?;
        let thread_id = handle.thread().id();
        *transfer = Box::into_raw(Box::new(knsock_transfer {
            state,
            thread: Some(handle),
            thread_id,
        }));
        Ok(())
    })
}

/// Waits up to `timeout_ms` milliseconds (a negative value waits without limit) for the
/// transfer to end. Returns its result, or `KNSOCK_RESULT_IN_PROGRESS` if it is still running.
#[no_mangle]
pub unsafe extern "C" fn knsock_transfer_wait(
    transfer: *const knsock_transfer,
    timeout_ms: i64,
) -> knsock_result {
    boundary(knsock_result::Panic, || {
        let Some(t) = transfer.as_ref() else {
            return knsock_result::InvalidArgument;
        };
        let deadline =
            (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
        let mut outcome = t.state.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((code, _)) = outcome.as_ref() {
                return *code;
            }
            outcome = match deadline {
                None => t
                    .state
                    .finished
                    .wait(outcome)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return knsock_result::InProgress;
                    }
                    let waited = t.state.finished.wait_timeout(outcome, left);
                    waited.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    })
}

/// The error of a transfer that ended in failure, borrowed: valid until the transfer is freed.
/// NULL while it runs, after success, or when `transfer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn knsock_transfer_error(
    transfer: *const knsock_transfer,
) -> *const knsock_error {
    boundary(ptr::null(), || {
        let Some(t) = transfer.as_ref() else {
            return ptr::null();
        };
        let outcome = t.state.outcome.lock().unwrap_or_else(|e| e.into_inner());
        match outcome.as_ref() {
            Some((_, Some(e))) => &**e as *const knsock_error,
            _ => ptr::null(),
        }
    })
}

/// Asks the transfer to stop: it ends with `KNSOCK_RESULT_CANCELLED` (unless it already ended)
/// and the receiver keeps no file. Returns at once; use `knsock_transfer_wait()` to see it end.
#[no_mangle]
pub unsafe extern "C" fn knsock_transfer_cancel(transfer: *const knsock_transfer) -> knsock_result {
    boundary(knsock_result::Panic, || match transfer.as_ref() {
        Some(t) => {
            t.state.cancel.cancel();
            knsock_result::Ok
        }
        None => knsock_result::InvalidArgument,
    })
}

/// Bytes sent so far and the file's size (0 until the file was opened), for polling without a
/// callback. Either output pointer may be NULL.
#[no_mangle]
pub unsafe extern "C" fn knsock_transfer_progress(
    transfer: *const knsock_transfer,
    sent: *mut u64,
    total: *mut u64,
) -> knsock_result {
    boundary(knsock_result::Panic, || {
        let Some(t) = transfer.as_ref() else {
            return knsock_result::InvalidArgument;
        };
        if !sent.is_null() {
            *sent = t.state.sent.load(Ordering::Relaxed);
        }
        if !total.is_null() {
            *total = t.state.total.load(Ordering::Relaxed);
        }
        knsock_result::Ok
    })
}

/// Frees a transfer. A running one is cancelled first and waited for (its `on_done` still runs).
/// Called from the transfer's own `on_done`, it frees without waiting. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn knsock_transfer_free(transfer: *mut knsock_transfer) {
    boundary((), || {
        if transfer.is_null() {
            return;
        }
        let mut t = Box::from_raw(transfer);
        if let Some(handle) = t.thread.take() {
            if thread::current().id() != t.thread_id {
                t.state.cancel.cancel();
                let _ = handle.join();
            }
        }
    })
}
