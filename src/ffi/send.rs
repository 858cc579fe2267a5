//! The blocking sends: `knsock_send_file` (one file), `knsock_send_files` (many over one
//! connection), both on the caller's thread, callbacks included; and `knsock_send_files_multi`
//! (the same files to several receivers, a thread each).

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use super::batch_report::knsock_batch_report;
use super::convert::{arg_path, arg_str, to_cstring, UserData};
use super::error::knsock_error;
use super::macros::{ffi_boundary, to_boxed_mut_ptr, try_out};
use super::multi_report::knsock_multi_report;
use super::send_options::knsock_send_options;
use super::types::{knsock_result, KNSOCK_CONTINUE};
use crate::{BatchProgress, Error, Receiver, SendOptions, Source};

/// Sends the file at `path` to `host:port` and blocks until the receiver has verified it,
/// made it durable and put it in place (then `KNSOCK_RESULT_OK`), or until it fails.
/// `options` may be NULL for the defaults. Callbacks run on the calling thread.
///
/// On failure, when `error` is not NULL, `*error` receives a new error object with the detail
/// (free it with `knsock_error_free()`); on success `*error` is not touched.
#[no_mangle]
pub extern "C" fn knsock_send_file(
    host: *const c_char,
    port: u16,
    path: *const c_char,
    options: *const knsock_send_options,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let (host, path) = unsafe { (arg_str(host, "host")?, arg_path(path, "path")?) };
        // SAFETY: the header's contract: `options` is NULL or live, no setter running.
        let opts = knsock_send_options::to_rust(unsafe { options.as_ref() });
        crate::send_file(host, port, &path, &opts).map(drop)
    })
}

/// Sends `count` paths (files, and directories when recursive) to `host:port` over one
/// connection, pipelined, each file delivered like `knsock_send_file()`. Blocks; callbacks run on
/// the calling thread (the progress callback once per chunk of each file).
///
/// Returns `KNSOCK_RESULT_OK` when the batch ran, even if some files failed: `*report` then
/// receives the per-file outcomes (free it with `knsock_batch_report_free()`); check
/// `knsock_batch_report_failed()`. Fails without a report when nothing could be attempted (a bad
/// path list, a walk error, no connection); then `*error` receives the detail when not NULL.
///
/// A list that names no file (`paths` NULL with `count` 0, or directories holding nothing the
/// filters keep) is an empty batch: `KNSOCK_RESULT_OK` with an empty report, and `host` is not
/// contacted. A bad include or exclude glob fails here too, with the pattern and the reason in
/// `*error` (the setters that add globs refuse a bad one already; see
/// `knsock_send_options_last_error()`).
#[no_mangle]
pub extern "C" fn knsock_send_files(
    host: *const c_char,
    port: u16,
    paths: *const *const c_char,
    count: usize,
    options: *const knsock_send_options,
    report: *mut *mut knsock_batch_report,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: `host` is NULL or NUL-terminated.
        let host = unsafe { arg_str(host, "host") }?;
        let report = try_out!(report);
        // SAFETY: the header's contract: `paths` holds `count` strings, `options` is NULL or
        // live with no setter running.
        let (sources, opts) = unsafe { batch_args(paths, count, options) }?;
        let done = match sources.is_empty() {
            true => knsock_batch_report::empty(),
            false => knsock_batch_report::new(&crate::send_files(host, port, &sources, &opts)?),
        };
        report.write(to_boxed_mut_ptr(done));
        Ok(())
    })
}

/// The files `paths` name, walked as `options` say, and the options for sending them.
///
/// # Safety
/// `paths` is NULL or holds `count` NULL or NUL-terminated strings; `options` is NULL or live
/// with no setter running.
unsafe fn batch_args(
    paths: *const *const c_char,
    count: usize,
    options: *const knsock_send_options,
) -> Result<(Vec<Source>, SendOptions), Error> {
    if paths.is_null() && count > 0 {
        return Err(Error::invalid("paths is NULL"));
    }
    let list = (0..count)
        // SAFETY: by this function's contract.
        .map(|i| unsafe { arg_path(*paths.add(i), "a path") })
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: by this function's contract.
    let options = unsafe { options.as_ref() };
    let walk = options.map(|o| o.walk.clone()).unwrap_or_default();
    let sources = crate::collect_sources(&list, &walk)?;
    Ok((sources, knsock_send_options::to_rust(options)))
}

/// One receiver of `knsock_send_files_multi()`: a host name or address (NUL-terminated, borrowed
/// for the call) and a port.
#[repr(C)]
pub struct knsock_receiver {
    pub host: *const c_char,
    pub port: u16,
}

/// Progress callback of `knsock_send_files_multi()`: as `knsock_batch_progress_cb`, with the
/// `receiver` it is about (its index in the array passed). It runs on that receiver's own
/// thread, so calls for different receivers come at the same time from different threads: it
/// must be thread-safe. Return `KNSOCK_CONTINUE` to go on; anything else aborts the transfer to
/// that receiver only (its files not yet delivered fail with
/// `KNSOCK_RESULT_ABORTED_BY_CALLBACK`); to stop them all, return it for every receiver.
pub type knsock_multi_progress_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        receiver: usize,
        filename: *const c_char,
        index: usize,
        count: usize,
        file_sent: u64,
        file_total: u64,
        sent: u64,
        total: u64,
    ) -> c_int,
>;

/// Sends `count` paths (walked as for `knsock_send_files()`) to each of `receiver_count`
/// receivers, one connection and one thread per receiver, all at once; each receiver's files are
/// delivered as by `knsock_send_files()` (retries, resume, skip, delta and compression decided
/// per receiver). Each file is read once while the receivers keep up with one another, through a
/// window of recently read data (16 MiB at most); a receiver that falls behind reads for
/// itself, so a slow or dead receiver never holds up the others. Blocks until every receiver is
/// done.
///
/// `callback` (may be NULL) reports progress with the receiver's index, on the receivers'
/// threads; see `knsock_multi_progress_cb`. The progress callbacks set on `options` are not
/// called by this function, and no progress bar is drawn. `userdata` is passed back untouched.
///
/// Returns `KNSOCK_RESULT_OK` when the receivers were tried, even if some could not be reached
/// or failed files: `*report` then receives the outcomes per receiver and per file (free it with
/// `knsock_multi_report_free()`); check `knsock_multi_report_failed()`. Fails without a report
/// for bad arguments (`receivers` NULL, `receiver_count` 0, a receiver whose host is NULL (or
/// empty, when there are files to send), a bad path list, a walk error, legacy options); then
/// `*error` receives the detail when not NULL. A list that names no file gives a report of
/// empty batches, and no receiver is contacted.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature: arrays with their lengths, a callback
pub extern "C" fn knsock_send_files_multi(
    receivers: *const knsock_receiver,
    receiver_count: usize,
    paths: *const *const c_char,
    count: usize,
    options: *const knsock_send_options,
    callback: knsock_multi_progress_cb,
    userdata: *mut c_void,
    report: *mut *mut knsock_multi_report,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: `receivers` holds `receiver_count` receivers.
        let receivers = unsafe { receivers_arg(receivers, receiver_count) }?;
        let report = try_out!(report);
        // SAFETY: as in `knsock_send_files()`.
        let (sources, mut opts) = unsafe { batch_args(paths, count, options) }?;
        opts.progress = None;
        opts.batch_progress = callback.map(|cb| multi_progress(cb, UserData(userdata)));
        let done = match sources.is_empty() {
            true => knsock_multi_report::empty(receivers.len()),
            false => {
                knsock_multi_report::new(&crate::send_files_to_many(&receivers, &sources, &opts)?)
            }
        };
        report.write(to_boxed_mut_ptr(done));
        Ok(())
    })
}

/// The receivers C passed, checked.
///
/// # Safety
/// `receivers` is NULL or holds `count` receivers whose hosts are NULL or NUL-terminated.
unsafe fn receivers_arg(
    receivers: *const knsock_receiver,
    count: usize,
) -> Result<Vec<Receiver>, Error> {
    if count == 0 {
        return Err(Error::invalid("no receivers (receiver_count is 0)"));
    }
    if receivers.is_null() {
        return Err(Error::invalid("receivers is NULL"));
    }
    (0..count)
        .map(|i| {
            // SAFETY: by this function's contract.
            let r = unsafe { &*receivers.add(i) };
            // SAFETY: by this function's contract.
            let host = unsafe { arg_str(r.host, &format!("receiver {i}: host")) }?;
            Ok(Receiver::new(host, r.port))
        })
        .collect()
}

type MultiProgressCb = unsafe extern "C" fn(
    *mut c_void,
    usize,
    *const c_char,
    usize,
    usize,
    u64,
    u64,
    u64,
    u64,
) -> c_int;

/// The C multi progress callback as the core's batch progress.
fn multi_progress(cb: MultiProgressCb, ud: UserData) -> crate::BatchProgressFn {
    Arc::new(move |p: &BatchProgress<'_>| {
        let name = to_cstring(p.name);
        let (i, n, fs, ft) = (p.index, p.count, p.file_sent, p.file_total);
        // SAFETY: the caller registered `cb` with `ud` for exactly this use, from any thread.
        let go_on = unsafe {
            cb(
                ud.ptr(),
                p.receiver,
                name.as_ptr(),
                i,
                n,
                fs,
                ft,
                p.sent,
                p.total,
            )
        };
        go_on == KNSOCK_CONTINUE
    })
}
