//! The fetches: `knsock_fetch_files()` on the caller's thread and `knsock_fetch_files_async()`
//! on a transfer's own thread, with their callbacks (progress, a file fetched, an error).

use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;

use super::batch_report::knsock_batch_report;
use super::convert::{arg_path, arg_str, path_cstring, to_cstring, UserData};
use super::error::knsock_error;
use super::macros::{ffi_boundary, to_boxed_mut_ptr, try_out};
use super::send_options::{knsock_progress_cb, knsock_send_options, set};
use super::transfer::{knsock_done_cb, knsock_transfer, spawn, State};
use super::types::{knsock_result, KNSOCK_CONTINUE};
use crate::{Error, FetchOptions, FetchReport, FetchStatus, FetchedFile};

/// A file fetched (or, with skip-unchanged, found unchanged): its `name` on the receiver and
/// the local `path` it is now at (both borrowed for the call), its `size`, and whether it was
/// `unchanged` (nothing was received). Runs on the thread doing the fetch, once per file, as
/// soon as the file is verified, durable and in place.
pub type knsock_fetched_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        name: *const c_char,
        path: *const c_char,
        size: u64,
        unchanged: bool,
    ),
>;

/// A listed file that failed (nothing is under its local name), or a requested name that gave
/// nothing: that `name` and the `error` (both borrowed for the call). Runs on the thread doing the
/// fetch, once per failure, after the fetch and its retries ended (a file a retry fetched is not
/// reported), before `knsock_fetch_files()` returns or the transfer's `on_done` runs.
pub type knsock_fetch_error_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, name: *const c_char, error: *const knsock_error),
>;

/// The callbacks of a fetch, each may be NULL; `userdata` is passed back to each untouched.
/// `progress` is `knsock_progress_cb`: a file's name on the receiver, bytes received and its
/// size, after each piece; anything but `KNSOCK_CONTINUE` aborts the fetch with
/// `KNSOCK_RESULT_ABORTED_BY_CALLBACK` (the file being received leaves nothing behind). The
/// structure is read during the call that takes it; it need not outlive it.
#[repr(C)]
pub struct knsock_fetch_callbacks {
    pub progress: knsock_progress_cb,
    pub fetched: knsock_fetched_cb,
    pub error: knsock_fetch_error_cb,
    pub userdata: *mut c_void,
}

type ErrorCb = unsafe extern "C" fn(*mut c_void, *const c_char, *const knsock_error);

/// The Rust options of a fetch: from `options` the connection (timeouts, retries, TLS, token),
/// the walk (recursion, include and exclude globs) and skip-unchanged with checksum; the
/// callbacks wrapped. The error callback is returned to be called with the report.
fn fetch_options(
    options: Option<&knsock_send_options>,
    callbacks: Option<&knsock_fetch_callbacks>,
) -> (FetchOptions, Option<(ErrorCb, UserData)>) {
    let send = knsock_send_options::to_rust(options);
    let walk = options.map(|o| o.walk.clone()).unwrap_or_default();
    let mut opts = FetchOptions {
        recursive: walk.recursive,
        include: walk.include,
        exclude: walk.exclude,
        skip_unchanged: send.skip_unchanged,
        checksum: send.checksum,
        timeout: send.timeout,
        connect_timeout: send.connect_timeout,
        retries: send.retries,
        retry_delay: send.retry_delay,
        tls: send.tls,
        token: send.token,
        partial: options.is_some_and(|o| o.fetch_partial),
        mode_mask: options.map_or(0o755, |o| o.fetch_mode_mask),
        ..FetchOptions::default()
    };
    let Some(cbs) = callbacks else {
        return (opts, None);
    };
    let ud = UserData(cbs.userdata);
    if let Some(cb) = cbs.progress {
        opts.progress = Some(Arc::new(move |name: &str, got, total| {
            let name = to_cstring(name);
            // SAFETY: the caller registered `cb` with `ud` for exactly this use.
            unsafe { cb(ud.ptr(), name.as_ptr(), got, total) == KNSOCK_CONTINUE }
        }));
    }
    if let Some(cb) = cbs.fetched {
        opts.on_file = Some(Arc::new(move |f: &FetchedFile| {
            let Ok(status) = &f.result else { return };
            let name = to_cstring(&f.name);
            let path = f
                .path
                .as_deref()
                .map_or_else(Default::default, path_cstring);
            let unchanged = *status == FetchStatus::Unchanged;
            // SAFETY: the caller registered `cb` with `ud` for exactly this use.
            unsafe { cb(ud.ptr(), name.as_ptr(), path.as_ptr(), f.size, unchanged) };
        }));
    }
    (opts, cbs.error.map(|cb| (cb, ud)))
}

/// Calls the error callback for each failure in `report`.
fn report_errors(report: &FetchReport, on_error: Option<(ErrorCb, UserData)>) {
    let Some((cb, ud)) = on_error else { return };
    let files = report
        .files
        .iter()
        .filter_map(|f| Some((&f.name, f.result.as_ref().err()?)));
    let missing = report.missing.iter().map(|m| (&m.name, &m.error));
    for (name, e) in files.chain(missing) {
        let (name, e) = (to_cstring(name), knsock_error::from_error(e));
        // SAFETY: the caller registered `cb` with `ud`; both pointers live through the call.
        unsafe { cb(ud.ptr(), name.as_ptr(), &e) };
    }
}

/// The names C passed and the destination, checked.
///
/// # Safety
/// `remotes` is NULL or holds `count` NULL or NUL-terminated strings; `dest` is NULL or
/// NUL-terminated.
unsafe fn fetch_args(
    remotes: *const *const c_char,
    count: usize,
    dest: *const c_char,
) -> Result<(Vec<String>, PathBuf), Error> {
    if remotes.is_null() {
        return Err(Error::invalid("remotes is NULL"));
    }
    let names = (0..count)
        // SAFETY: by this function's contract.
        .map(|i| unsafe { arg_str(*remotes.add(i), "a remote name") }.map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: by this function's contract.
    Ok((names, unsafe { arg_path(dest, "dest") }?))
}

/// Fetches `count` names from `host:port` (a receiver that serves fetches: `kn-sock run-file-server
/// --allow-fetch`, `knsock_server_config_set_allow_fetch()`) into the directory `dest` (created if
/// missing). A name is a file or, when `options` is recursive, a directory, relative to what this
/// client may read there (its confined directory); its last component and what lies beneath it land
/// under `dest`. Every name the receiver lists is checked (no `..`, absolute path, symlink
/// followed, name not asked for); each file is written to a hidden temporary file, verified against
/// the receiver's XXH3-128 digest, given its modification time and its mode (within the mask, 0755
/// by default), fsynced and renamed into place, so a failed or interrupted fetch leaves nothing
/// under a final name. Blocks; callbacks (may be NULL) run on the calling thread.
///
/// From `options` (may be NULL for the defaults) it takes the timeouts, retries and retry
/// delay, TLS and token, recursion, include and exclude globs, skip-unchanged with checksum,
/// and the fetch-only `knsock_send_options_set_fetch_partial()` and
/// `knsock_send_options_set_fetch_mode_mask()`; the progress callbacks set there are not called
/// (give `callbacks->progress`).
///
/// Returns `KNSOCK_RESULT_OK` when the receiver listed what was asked, even if some files
/// failed: `*report` then receives a `knsock_batch_report` (free it with
/// `knsock_batch_report_free()`) with one entry per listed file, then one per requested name
/// that gave nothing; check `knsock_batch_report_failed()`. Fails without a report when nothing
/// could be listed (bad arguments, no connection, authentication, a receiver that does not
/// serve fetches or refuses this client: `KNSOCK_RESULT_AUTH`, peer code 20); then `*error`
/// receives the detail when not NULL.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature: an array with its length, callbacks
pub extern "C" fn knsock_fetch_files(
    host: *const c_char,
    port: u16,
    remotes: *const *const c_char,
    count: usize,
    dest: *const c_char,
    options: *const knsock_send_options,
    callbacks: *const knsock_fetch_callbacks,
    report: *mut *mut knsock_batch_report,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: the header's contract: strings NULL or NUL-terminated, `remotes` holds
        // `count` of them, `options` and `callbacks` NULL or live.
        let (host, (names, dest)) = unsafe { (arg_str(host, "host")?, fetch_args(remotes, count, dest)?) };
        let report = try_out!(report);
        // SAFETY: as above.
        let (opts, on_error) = unsafe { fetch_options(options.as_ref(), callbacks.as_ref()) };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let done = crate::fetch_files(host, port, &names, &dest, &opts)?;
        report_errors(&done, on_error);
        report.write(to_boxed_mut_ptr(knsock_batch_report::from_fetch(&done)));
        Ok(())
    })
}

/// Starts `knsock_fetch_files()` on a new library thread and returns at once with `*transfer`
/// set (free it with `knsock_transfer_free()`); arguments are checked and copied first, so
/// `options` and `callbacks` may be freed right after. The callbacks and then `on_done` run on
/// the transfer's thread. The transfer succeeds when every listed file was fetched or found
/// unchanged and every name gave something; otherwise its result is the first error's (which
/// `knsock_transfer_error()` then holds; the error callback has seen each of them).
/// `knsock_transfer_progress()` gives the current file's bytes; `knsock_transfer_cancel()`
/// stops it with `KNSOCK_RESULT_CANCELLED`, leaving nothing partial under any name.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature: an array with its length, callbacks
pub extern "C" fn knsock_fetch_files_async(
    host: *const c_char,
    port: u16,
    remotes: *const *const c_char,
    count: usize,
    dest: *const c_char,
    options: *const knsock_send_options,
    callbacks: *const knsock_fetch_callbacks,
    on_done: knsock_done_cb,
    userdata: *mut c_void,
    transfer: *mut *mut knsock_transfer,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        // SAFETY: as in `knsock_fetch_files()`.
        let (host, (names, dest)) = unsafe { (arg_str(host, "host")?.to_string(), fetch_args(remotes, count, dest)?) };
        let transfer = try_out!(transfer);
        // SAFETY: as above.
        let (mut opts, on_error) = unsafe { fetch_options(options.as_ref(), callbacks.as_ref()) };
        opts.validate()?;
        let state = Arc::new(State::new());
        opts.cancel = Some(state.cancel.clone());
        let (st, user_progress) = (Arc::clone(&state), opts.progress.take());
        opts.progress = Some(Arc::new(move |name: &str, got, total| {
            st.record(got, total);
            user_progress.as_ref().is_none_or(|cb| cb(name, got, total))
        }));
        let job = move || {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let done = crate::fetch_files(&host, port, &names, &dest, &opts)?;
            report_errors(&done, on_error);
            done.first_error().map_or(Ok(()), |e| Err(e.duplicate()))
        };
        transfer.write(to_boxed_mut_ptr(spawn(state, job, on_done, UserData(userdata))?));
        Ok(())
    })
}

/// For `knsock_fetch_files()` only: keep the data of a file whose fetch was cut short (a lost
/// connection, a timeout, a cancel) hidden beside its final name, so that a retry or a later
/// fetch of the same file resumes where it ends (the whole file is still verified). Default:
/// off, an interrupted fetch leaves nothing. Sends ignore it.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_fetch_partial(
    options: *mut knsock_send_options,
    partial: bool,
) -> knsock_result {
    set(options, |o| {
        o.fetch_partial = partial;
        Ok(())
    })
}

/// For `knsock_fetch_files()` only: the permission bits a fetched file may keep (the receiver's
/// mode within this mask; at most 07777). Default: 0755 (no setuid, setgid or sticky bit, no
/// write for group or others). Sends ignore it.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_fetch_mode_mask(
    options: *mut knsock_send_options,
    mask: u32,
) -> knsock_result {
    set(options, |o| {
        if mask > 0o7777 {
            return Err(Error::invalid(format!(
                "mode mask {mask:o} has bits beyond 0o7777"
            )));
        }
        o.fetch_mode_mask = mask;
        Ok(())
    })
}
