//! `knsock_send_options`: every setter of a send (including the walk options of
//! `knsock_send_files()`), the progress callback types, and their translation to [`SendOptions`].

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::convert::{arg_str, to_cstring, UserData};
use super::error::knsock_error;
use super::macros::{ffi_boundary, free_box, to_boxed_mut_ptr, try_mut, try_ref};
use super::macros::{Castable, OwnershipBox};
use super::types::{knsock_result, KNSOCK_CONTINUE};
use crate::{BatchProgress, Error, SendOptions, WalkOptions};

/// Progress callback: `filename` (borrowed for the call), bytes `sent` so far and the `total`.
/// Runs on the thread doing the transfer: the caller's for `knsock_send_file()`, the transfer's
/// own thread for `knsock_send_file_async()`. Called once with `sent == 0`, then after each chunk,
/// the last time with `sent == total`. Return `KNSOCK_CONTINUE` to go on; anything else aborts
/// the transfer with `KNSOCK_RESULT_ABORTED_BY_CALLBACK`: the receiver stores no file under its
/// name, and keeps nothing unless resume is on there (`knsock_server_config_set_resume_ttl_ms()`
/// above 0), in which case the prefix it received stays hidden (`.knsock-partial-…`) for the
/// resume time so a later send of the same file resumes. It must not free the options it was
/// set on.
pub type knsock_progress_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        filename: *const c_char,
        sent: u64,
        total: u64,
    ) -> c_int,
>;

/// Batch progress callback, for `knsock_send_files()` (and `knsock_send_file()`, a list of one):
/// the current file's `filename` (borrowed for the call), its `index` in the list (from 0) of
/// `count` files, the bytes of this file sent so far and its size (`file_sent`, `file_total`),
/// and the whole list's bytes dealt with so far and its size (`sent`, `total`; earlier files
/// count whole whether they were sent, skipped or failed). Called where the per-file progress
/// callback is, and once for each file skipped as unchanged; not for kn-sock 0.3 (`legacy`)
/// sends. Runs on the thread doing the transfer. Return `KNSOCK_CONTINUE` to go on; anything
/// else aborts like the per-file callback.
pub type knsock_batch_progress_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        filename: *const c_char,
        index: usize,
        count: usize,
        file_sent: u64,
        file_total: u64,
        sent: u64,
        total: u64,
    ) -> c_int,
>;

type ProgressCb = unsafe extern "C" fn(*mut c_void, *const c_char, u64, u64) -> c_int;
type BatchProgressCb =
    unsafe extern "C" fn(*mut c_void, *const c_char, usize, usize, u64, u64, u64, u64) -> c_int;

/// Options for sending, built with the setters below. Created by `knsock_send_options_new()`,
/// freed by the caller with `knsock_send_options_free()`. A send copies what it needs, so one
/// options object may serve many sends, also concurrently, as long as no setter runs meanwhile.
///
/// Thread safety: sends may read one options object from several threads at once; a setter
/// must not run at the same time as any other call on it (another setter, a send using it, or
/// `knsock_send_options_last_error()`).
pub struct knsock_send_options {
    pub(crate) inner: SendOptions,
    pub(crate) walk: WalkOptions,
    progress: Option<(ProgressCb, UserData)>,
    batch_progress: Option<(BatchProgressCb, UserData)>,
    /// What only a fetch reads: keep partial copies, and the mode mask (`ffi/fetch.rs`).
    pub(crate) fetch_partial: bool,
    pub(crate) fetch_mode_mask: u32,
    /// The detail of the last setter call, when it failed.
    last_error: Option<knsock_error>,
}

impl Castable for knsock_send_options {
    type Ownership = OwnershipBox;
}

impl knsock_send_options {
    /// The Rust options for one send, with the C progress callbacks wrapped.
    pub(crate) fn to_rust(opts: Option<&knsock_send_options>) -> SendOptions {
        let Some(o) = opts else {
            return SendOptions::default();
        };
        let mut inner = o.inner.clone();
        if let Some((cb, ud)) = o.progress {
            inner.progress = Some(Arc::new(move |name: &str, sent, total| {
                let name = to_cstring(name);
                // SAFETY: the caller registered `cb` with `ud` for exactly this use.
                unsafe { cb(ud.ptr(), name.as_ptr(), sent, total) == KNSOCK_CONTINUE }
            }));
        }
        if let Some((cb, ud)) = o.batch_progress {
            inner.batch_progress = Some(Arc::new(move |p: &BatchProgress<'_>| {
                let name = to_cstring(p.name);
                let (i, n, fs, ft) = (p.index, p.count, p.file_sent, p.file_total);
                // SAFETY: the caller registered `cb` with `ud` for exactly this use.
                let go_on = unsafe { cb(ud.ptr(), name.as_ptr(), i, n, fs, ft, p.sent, p.total) };
                go_on == KNSOCK_CONTINUE
            }));
        }
        inner
    }
}

/// Runs one setter on `options` (NULL is `KNSOCK_RESULT_INVALID_ARGUMENT`) and keeps the detail
/// of its failure for `knsock_send_options_last_error()`.
pub(crate) fn set(
    options: *mut knsock_send_options,
    f: impl FnOnce(&mut knsock_send_options) -> Result<(), Error>,
) -> knsock_result {
    ffi_boundary!({
        let o = try_mut!(options);
        let done = f(o);
        o.last_error = done.as_ref().err().map(knsock_error::from_error);
        done
    })
}

/// Makes `change` to `options` if the core's own rule ([`SendOptions::validate`]) accepts it on
/// the defaults changed only by it, so the range of each option lives in one place.
fn set_checked(options: &mut SendOptions, change: impl Fn(&mut SendOptions)) -> Result<(), Error> {
    let mut probe = SendOptions::default();
    change(&mut probe);
    probe.validate()?;
    change(options);
    Ok(())
}

/// A new options object with the defaults: no progress bar, 256 KiB chunks, a 30 s idle
/// timeout, a 10 s connect timeout. Free it with `knsock_send_options_free()`. NULL only if
/// memory ran out.
#[no_mangle]
pub extern "C" fn knsock_send_options_new() -> *mut knsock_send_options {
    ffi_boundary!({
        Ok(to_boxed_mut_ptr(knsock_send_options {
            inner: SendOptions::default(),
            walk: WalkOptions::default(),
            progress: None,
            batch_progress: None,
            fetch_partial: false,
            fetch_mode_mask: 0o755,
            last_error: None,
        }))
    })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn knsock_send_options_free(options: *mut knsock_send_options) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or options from `knsock_send_options_new()`,
        // freed once, with no send or setter using them.
        unsafe { free_box(options) };
        Ok(())
    })
}

/// Why the last setter call on `options` failed (e.g. `bad pattern "[": …` for a malformed glob),
/// or NULL when it succeeded, when no setter ran yet, or when `options` is NULL. Every setter
/// returns only a code; this is its detail, kept per options object (no thread-local state).
/// Owned by the options: valid until the next setter call on them or
/// `knsock_send_options_free()`; do not free it.
#[no_mangle]
pub extern "C" fn knsock_send_options_last_error(
    options: *const knsock_send_options,
) -> *const knsock_error {
    ffi_boundary!({
        let o = try_ref!(options);
        Ok(o.last_error
            .as_ref()
            .map_or(std::ptr::null(), |e| e as *const _))
    })
}

/// Draws a progress bar on stderr (kn-sock's `show_progress`). Default: off.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_show_progress(
    options: *mut knsock_send_options,
    show: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.show_progress = show;
        Ok(())
    })
}

/// Sets (or, with a NULL `callback`, clears) the progress callback; see `knsock_progress_cb`.
/// `userdata` is passed back untouched and must stay valid while sends using these options run.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_progress_callback(
    options: *mut knsock_send_options,
    callback: knsock_progress_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(options, |o| {
        o.progress = callback.map(|cb| (cb, UserData(userdata)));
        Ok(())
    })
}

/// Sets (or, with a NULL `callback`, clears) the batch progress callback; see
/// `knsock_batch_progress_cb`. It may be set together with the per-file one (which runs first).
/// `userdata` is passed back untouched and must stay valid while sends using these options run.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_batch_progress_callback(
    options: *mut knsock_send_options,
    callback: knsock_batch_progress_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(options, |o| {
        o.batch_progress = callback.map(|cb| (cb, UserData(userdata)));
        Ok(())
    })
}

/// Bytes read and sent per step, 1 to 67108864 (64 MiB). Default 262144.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_chunk_size(
    options: *mut knsock_send_options,
    chunk_size: usize,
) -> knsock_result {
    set(options, |o| {
        set_checked(&mut o.inner, |p| p.chunk_size = chunk_size)
    })
}

/// Idle timeout in milliseconds (above 0): a read or write that makes no progress for this long
/// fails with `KNSOCK_RESULT_TIMEOUT`. Default 30000, as kn-sock.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_timeout_ms(
    options: *mut knsock_send_options,
    timeout_ms: u64,
) -> knsock_result {
    let timeout = Duration::from_millis(timeout_ms);
    set(options, |o| {
        set_checked(&mut o.inner, |p| p.timeout = timeout)
    })
}

/// Connect timeout in milliseconds (above 0). Default 10000.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_connect_timeout_ms(
    options: *mut knsock_send_options,
    timeout_ms: u64,
) -> knsock_result {
    let timeout = Duration::from_millis(timeout_ms);
    set(options, |o| {
        set_checked(&mut o.inner, |p| p.connect_timeout = timeout)
    })
}

/// Speaks kn-sock 0.3's protocol instead of knsock's, to reach an existing kn-sock 0.3 server.
/// That protocol has no checksum and no acknowledgement: `KNSOCK_RESULT_OK` then means every
/// byte was written and the server closed the connection afterwards. Default: off.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_legacy(
    options: *mut knsock_send_options,
    legacy: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.legacy = legacy;
        Ok(())
    })
}

/// Attempts after the first when a transfer fails in a way a new connection may cure
/// (connection lost, timeout, I/O error, corruption in transit); refusals are never retried. A
/// receiver with resume enabled continues where its data ends. 0 to 1000; default 0.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_retries(
    options: *mut knsock_send_options,
    retries: u32,
) -> knsock_result {
    set(options, |o| {
        set_checked(&mut o.inner, |p| p.retries = retries)
    })
}

/// Milliseconds before the first retry; the wait doubles with each retry, up to a minute.
/// 0 to 3600000 (an hour); default 1000.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_retry_delay_ms(
    options: *mut knsock_send_options,
    delay_ms: u64,
) -> knsock_result {
    let delay = Duration::from_millis(delay_ms);
    set(options, |o| {
        set_checked(&mut o.inner, |p| p.retry_delay = delay)
    })
}

/// Compresses with zstd when the receiver accepts it, file by file: data that does not shrink
/// (media, archives) is sent as it is. The checksum covers the original bytes. Default: off.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_compress(
    options: *mut knsock_send_options,
    compress: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.compress = compress;
        Ok(())
    })
}

/// Skips files the receiver already holds unchanged (the backup case); a skipped file still
/// counts as delivered (`knsock_batch_report_skipped()` tells). "Unchanged" is rsync's quick
/// check by default: the same size and modification time, no content read on either side;
/// `knsock_send_options_set_checksum(options, true)` compares content digests instead.
/// Default: off (every file is sent).
#[no_mangle]
pub extern "C" fn knsock_send_options_set_skip_unchanged(
    options: *mut knsock_send_options,
    skip: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.skip_unchanged = skip;
        Ok(())
    })
}

/// With skip_unchanged, compares content digests (XXH3-128, like rsync `-c`) instead of size
/// and modification time: each file is hashed before it is offered. Default: off.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_checksum(
    options: *mut knsock_send_options,
    checksum: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.checksum = checksum;
        Ok(())
    })
}

/// Delta transfer: when the receiver holds an older version of a file of at least 1 MiB, only
/// the changed data is sent (`knsock_batch_report_bytes_reused()` tells how much was not).
/// Default: on.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_delta(
    options: *mut knsock_send_options,
    delta: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.delta = delta;
        Ok(())
    })
}

/// The name the receiver stores the file under (UTF-8, may contain `/` for subdirectories;
/// copied). NULL restores the default, the file's base name.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_remote_name(
    options: *mut knsock_send_options,
    name: *const c_char,
) -> knsock_result {
    set(options, |o| {
        o.inner.remote_name = match name.is_null() {
            true => None,
            // SAFETY: the header's contract: a non-NULL string argument is NUL-terminated.
            false => Some(unsafe { arg_str(name, "name") }?.to_string()),
        };
        Ok(())
    })
}

/// Stop offering files after the first one that fails (the rest are reported as
/// `KNSOCK_RESULT_CANCELLED`). Default: off, every file is attempted.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_stop_on_error(
    options: *mut knsock_send_options,
    stop: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.stop_on_error = stop;
        Ok(())
    })
}

/// Descend into directories named in `knsock_send_files()` (default: off; a directory is then an
/// error).
#[no_mangle]
pub extern "C" fn knsock_send_options_set_recursive(
    options: *mut knsock_send_options,
    recursive: bool,
) -> knsock_result {
    set(options, |o| {
        o.walk.recursive = recursive;
        Ok(())
    })
}

/// Follow symlinks while walking (loops are detected). Default: symlinks are skipped.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_follow_symlinks(
    options: *mut knsock_send_options,
    follow: bool,
) -> knsock_result {
    set(options, |o| {
        o.walk.follow_symlinks = follow;
        Ok(())
    })
}

/// Adds a glob (copied) a file's relative name must match, e.g. "*.log" (`*` also crosses `/`).
/// With several, a file must match one. A malformed glob gives
/// `KNSOCK_RESULT_INVALID_ARGUMENT` and is not added; `knsock_send_options_last_error()` says
/// what is wrong with it.
#[no_mangle]
pub extern "C" fn knsock_send_options_add_include(
    options: *mut knsock_send_options,
    glob: *const c_char,
) -> knsock_result {
    set(options, |o| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let g = unsafe { arg_str(glob, "glob") }?;
        let walk = WalkOptions {
            include: vec![g.to_string()],
            ..WalkOptions::default()
        };
        check_walk(&walk)?;
        o.walk.include.extend(walk.include);
        Ok(())
    })
}

/// Adds a glob (copied) that drops matching files, whatever the includes say. A malformed glob
/// is refused as by `knsock_send_options_add_include()`.
#[no_mangle]
pub extern "C" fn knsock_send_options_add_exclude(
    options: *mut knsock_send_options,
    glob: *const c_char,
) -> knsock_result {
    set(options, |o| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let g = unsafe { arg_str(glob, "glob") }?;
        let walk = WalkOptions {
            exclude: vec![g.to_string()],
            ..WalkOptions::default()
        };
        check_walk(&walk)?;
        o.walk.exclude.extend(walk.exclude);
        Ok(())
    })
}

/// Checks globs with the core's own rule: a walk of no paths compiles them and does nothing else.
fn check_walk(walk: &WalkOptions) -> Result<(), Error> {
    crate::collect_sources(&[], walk).map(drop)
}
