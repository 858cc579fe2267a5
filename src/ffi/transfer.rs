//! `knsock_transfer`: a send running on its own library thread (kn-sock's `send_file_async`).

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::convert::{arg_path, arg_str, UserData};
use super::error::knsock_error;
use super::macros::{
    ffi_boundary, free_box, to_boxed_mut_ptr, try_out, try_ref, Castable, OwnershipBox,
};
use super::send_options::knsock_send_options;
use super::types::knsock_result;
use crate::sync::lock;
use crate::{CancelToken, Error, SendOptions};

/// Completion callback of an async send or fetch: `code` is the result; `error` is NULL on success and
/// otherwise the detail, borrowed for the call (it stays readable through
/// `knsock_transfer_error()` until the transfer is freed). Runs exactly once, on the transfer's
/// own thread, before `knsock_transfer_wait()` returns. It may call `knsock_transfer_free()` on
/// its own transfer.
pub type knsock_done_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, code: knsock_result, error: *const knsock_error),
>;

/// What a transfer's thread and its handle share.
pub(crate) struct State {
    outcome: Mutex<Option<(knsock_result, Option<Box<knsock_error>>)>>,
    finished: Condvar,
    sent: AtomicU64,
    total: AtomicU64,
    pub(crate) cancel: CancelToken,
}

/// A send or a fetch running in the background. Created by `knsock_send_file_async()` or
/// `knsock_fetch_files_async()`, freed with `knsock_transfer_free()`.
///
/// Thread safety: its functions may be called from any thread, also at once, except
/// `knsock_transfer_free()`, which must be the last call on it (it may be made from `on_done`).
pub struct knsock_transfer {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
    /// This transfer's number, also in its thread's `ON_TRANSFER` (not `thread::current()`,
    /// which allocates a handle that outlives the main thread: a "possibly lost" block).
    id: u64,
}

static NEXT_TRANSFER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// On a transfer's own thread, that transfer's number (0 elsewhere).
    static ON_TRANSFER: Cell<u64> = const { Cell::new(0) };
}

impl Castable for knsock_transfer {
    type Ownership = OwnershipBox;
}

/// Freeing a running transfer cancels it and waits for its thread, except on that thread itself
/// (from `on_done`), where waiting would never end.
impl Drop for knsock_transfer {
    fn drop(&mut self) {
        if let Some(handle) = self.thread.take() {
            if ON_TRANSFER.with(Cell::get) != self.id {
                self.state.cancel.cancel();
                let _ = handle.join();
            }
        }
    }
}

/// The outcome the transfer's thread reports: its code and, on failure, the detail.
type Outcome = (knsock_result, Option<Box<knsock_error>>);

impl State {
    pub(crate) fn new() -> Self {
        State {
            outcome: Mutex::new(None),
            finished: Condvar::new(),
            sent: AtomicU64::new(0),
            total: AtomicU64::new(0),
            cancel: CancelToken::new(),
        }
    }
}

impl State {
    /// Where the current file stands, for `knsock_transfer_progress()`.
    pub(crate) fn record(&self, sent: u64, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.sent.store(sent, Ordering::Relaxed);
    }
}

/// Hooks the transfer's cancel token and progress counters into `opts`, keeping the caller's
/// own progress callback.
fn watch(opts: &mut SendOptions, state: &Arc<State>) {
    opts.cancel = Some(state.cancel.clone());
    let user_progress = opts.progress.take();
    let st = Arc::clone(state);
    opts.progress = Some(Arc::new(move |name: &str, sent, total| {
        st.record(sent, total);
        user_progress
            .as_ref()
            .is_none_or(|cb| cb(name, sent, total))
    }));
}

/// The transfer's thread: runs the job, calls `on_done`, then publishes the outcome.
fn run(
    state: &State,
    job: impl FnOnce() -> Result<(), Error>,
    on_done: knsock_done_cb,
    ud: UserData,
) {
    let done = catch_unwind(AssertUnwindSafe(job));
    let (code, err): Outcome = match done {
        Ok(Ok(())) => (knsock_result::Ok, None),
        Ok(Err(e)) => (
            e.kind().into(),
            Some(Box::new(knsock_error::from_error(&e))),
        ),
        Err(panic) => (
            knsock_result::Panic,
            Some(Box::new(knsock_error::panic(panic))),
        ),
    };
    let err_ptr = err
        .as_deref()
        .map_or(ptr::null(), |e| e as *const knsock_error);
    if let Some(cb) = on_done {
        // SAFETY: registered by the caller with `ud`; `err_ptr` lives in `err` through the call.
        unsafe { cb(ud.ptr(), code, err_ptr) };
    }
    *lock(&state.outcome) = Some((code, err));
    state.finished.notify_all();
}

/// Starts sending `path` to `host:port` on a new library thread and returns at once with
/// `*transfer` set (free it with `knsock_transfer_free()`). Arguments are checked and copied
/// before it returns; `options` (may be NULL) can be freed right after. The progress callback
/// and `on_done` (may be NULL) run on the transfer's thread.
#[no_mangle]
pub extern "C" fn knsock_send_file_async(
    host: *const c_char,
    port: u16,
    path: *const c_char,
    options: *const knsock_send_options,
    on_done: knsock_done_cb,
    userdata: *mut c_void,
    transfer: *mut *mut knsock_transfer,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let host = unsafe { arg_str(host, "host") }?.to_string();
        // SAFETY: as above.
        let path = unsafe { arg_path(path, "path") }?;
        let transfer = try_out!(transfer);
        // SAFETY: the header's contract: `options` is NULL or live, no setter running.
        let mut opts = knsock_send_options::to_rust(unsafe { options.as_ref() });
        opts.validate()?;
        let state = Arc::new(State::new());
        watch(&mut opts, &state);
        let job = move || crate::send_file(&host, port, &path, &opts).map(drop);
        let started = spawn(state, job, on_done, UserData(userdata))?;
        transfer.write(to_boxed_mut_ptr(started));
        Ok(())
    })
}

/// Runs `job` on a new library thread as a transfer sharing `state`; `on_done` runs there when
/// it ends.
pub(crate) fn spawn(
    state: Arc<State>,
    job: impl FnOnce() -> Result<(), Error> + Send + 'static,
    on_done: knsock_done_cb,
    ud: UserData,
) -> Result<knsock_transfer, Error> {
    let st = Arc::clone(&state);
    let id = NEXT_TRANSFER.fetch_add(1, Ordering::Relaxed);
    let handle = thread::Builder::new()
        .name("knsock-transfer".into())
        .spawn(move || {
            ON_TRANSFER.with(|c| c.set(id));
            run(&st, job, on_done, ud)
        })
        .map_err(|e| Error::io("starting the transfer thread", e))?;
    Ok(knsock_transfer {
        state,
        thread: Some(handle),
        id,
    })
}

/// Waits up to `timeout_ms` milliseconds (a negative value waits without limit) for the
/// transfer to end. Returns its result, or `KNSOCK_RESULT_IN_PROGRESS` if it is still running.
#[no_mangle]
pub extern "C" fn knsock_transfer_wait(
    transfer: *const knsock_transfer,
    timeout_ms: i64,
) -> knsock_result {
    ffi_boundary!({
        let state = &try_ref!(transfer).state;
        let deadline =
            (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
        let mut outcome = lock(&state.outcome);
        loop {
            if let Some((code, _)) = outcome.as_ref() {
                return Ok(*code);
            }
            outcome = match deadline {
                None => state
                    .finished
                    .wait(outcome)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(knsock_result::InProgress);
                    }
                    let waited = state.finished.wait_timeout(outcome, left);
                    waited.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    })
}

/// The error of a transfer that ended in failure, borrowed: valid until the transfer is freed.
/// NULL while it runs, after success, or when `transfer` is NULL.
#[no_mangle]
pub extern "C" fn knsock_transfer_error(transfer: *const knsock_transfer) -> *const knsock_error {
    ffi_boundary!({
        let state = &try_ref!(transfer).state;
        let outcome = lock(&state.outcome);
        Ok(match outcome.as_ref() {
            Some((_, Some(e))) => &**e as *const knsock_error,
            _ => ptr::null(),
        })
    })
}

/// Asks the transfer to stop: it ends with `KNSOCK_RESULT_CANCELLED` (unless it already ended)
/// and the receiver stores no file under its name. It keeps nothing either, unless resume is on
/// there (`knsock_server_config_set_resume_ttl_ms()` above 0): then the prefix it received stays
/// hidden (`.knsock-partial-…` beside the final name) for the resume time, so that a later send
/// of the same file resumes. Returns at once; use `knsock_transfer_wait()` to see it end.
#[no_mangle]
pub extern "C" fn knsock_transfer_cancel(transfer: *const knsock_transfer) -> knsock_result {
    ffi_boundary!({
        try_ref!(transfer).state.cancel.cancel();
        Ok(())
    })
}

/// Bytes sent so far and the file's size (0 until the file was opened), for polling without a
/// callback. Either output pointer may be NULL.
#[no_mangle]
pub extern "C" fn knsock_transfer_progress(
    transfer: *const knsock_transfer,
    sent: *mut u64,
    total: *mut u64,
) -> knsock_result {
    ffi_boundary!({
        let state = &try_ref!(transfer).state;
        for (out, value) in [(sent, &state.sent), (total, &state.total)] {
            if !out.is_null() {
                // SAFETY: the header's contract: a non-NULL output pointer is writable.
                unsafe { out.write(value.load(Ordering::Relaxed)) };
            }
        }
        Ok(())
    })
}

/// Frees a transfer. A running one is cancelled first and waited for (its `on_done` still runs).
/// Called from the transfer's own `on_done`, it frees without waiting. NULL is a no-op.
#[no_mangle]
pub extern "C" fn knsock_transfer_free(transfer: *mut knsock_transfer) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or a transfer from `knsock_send_file_async()`,
        // freed once.
        unsafe { free_box(transfer) };
        Ok(())
    })
}
