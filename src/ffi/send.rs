//! `knsock_send_options` and the blocking `knsock_send_file`.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use super::error::knsock_error;
use super::KNSOCK_CONTINUE;
use super::{
    arg_path, arg_str, boundary, code_of, knsock_result, to_cstring, with_error, UserData,
};
use crate::Error;
use crate::{BatchProgress, SendOptions, WalkOptions, MAX_CHUNK_SIZE};

/// Progress callback: `filename` (borrowed for the call), bytes `sent` so far and the `total`.
/// Runs on the thread doing the transfer: the caller's for `knsock_send_file()`, the transfer's
/// own thread for `knsock_send_file_async()`. Called once with `sent == 0`, then after each chunk,
/// the last time with `sent == total`. Return `KNSOCK_CONTINUE` to go on; anything else aborts
/// the transfer with `KNSOCK_RESULT_ABORTED_BY_CALLBACK` and the receiver keeps no file. It must
/// not free the options it was set on.
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

type BatchProgressCb =
    unsafe extern "C" fn(*mut c_void, *const c_char, usize, usize, u64, u64, u64, u64) -> c_int;

/// Options for sending, built with the setters below. Created by `knsock_send_options_new()`,
/// freed by the caller with `knsock_send_options_free()`. A send copies what it needs, so one
/// options object may serve many sends, also concurrently, as long as no setter runs meanwhile.
pub struct knsock_send_options {
    pub(crate) inner: SendOptions,
    pub(crate) walk: WalkOptions,
    progress: Option<(
        unsafe extern "C" fn(*mut c_void, *const c_char, u64, u64) -> c_int,
        UserData,
    )>,
    batch_progress: Option<(BatchProgressCb, UserData)>,
}

impl knsock_send_options {
    /// The Rust options for one send, with the C progress callback wrapped.
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
                // SAFETY: the caller registered `cb` with `ud` for exactly this use.
                let go_on = unsafe {
                    cb(
                        ud.ptr(),
                        name.as_ptr(),
                        p.index,
                        p.count,
                        p.file_sent,
                        p.file_total,
                        p.sent,
                        p.total,
                    )
                };
                go_on == KNSOCK_CONTINUE
            }));
        }
        inner
    }
}

/// A new options object with the defaults: no progress bar, 256 KiB chunks, a 30 s idle
/// timeout, a 10 s connect timeout. Free it with `knsock_send_options_free()`. NULL only if
/// memory ran out.
#[no_mangle]
pub extern "C" fn knsock_send_options_new() -> *mut knsock_send_options {
    boundary(ptr::null_mut(), || {
        Box::into_raw(Box::new(knsock_send_options {
            inner: SendOptions::default(),
            walk: WalkOptions::default(),
            progress: None,
            batch_progress: None,
        }))
    })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_free(options: *mut knsock_send_options) {
    boundary((), || {
        if !options.is_null() {
            drop(Box::from_raw(options));
        }
    })
}

pub(crate) unsafe fn set(
    options: *mut knsock_send_options,
    f: impl FnOnce(&mut knsock_send_options) -> Result<(), Error>,
) -> knsock_result {
    boundary(knsock_result::Panic, || match options.as_mut() {
        Some(o) => code_of(f(o)),
        None => knsock_result::InvalidArgument,
    })
}

/// Draws a progress bar on stderr (kn-sock's `show_progress`). Default: off.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_show_progress(
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
pub unsafe extern "C" fn knsock_send_options_set_progress_callback(
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
pub unsafe extern "C" fn knsock_send_options_set_batch_progress_callback(
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
pub unsafe extern "C" fn knsock_send_options_set_chunk_size(
    options: *mut knsock_send_options,
    chunk_size: usize,
) -> knsock_result {
    set(options, |o| {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::invalid("chunk size out of range"));
        }
        o.inner.chunk_size = chunk_size;
        Ok(())
    })
}

/// Idle timeout in milliseconds (above 0): a read or write that makes no progress for this long
/// fails with `KNSOCK_RESULT_TIMEOUT`. Default 30000, as kn-sock.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_timeout_ms(
    options: *mut knsock_send_options,
    timeout_ms: u64,
) -> knsock_result {
    set(options, |o| {
        if timeout_ms == 0 {
            return Err(Error::invalid("timeout must be above zero"));
        }
        o.inner.timeout = Duration::from_millis(timeout_ms);
        Ok(())
    })
}

/// Connect timeout in milliseconds (above 0). Default 10000.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_connect_timeout_ms(
    options: *mut knsock_send_options,
    timeout_ms: u64,
) -> knsock_result {
    set(options, |o| {
        if timeout_ms == 0 {
            return Err(Error::invalid("connect timeout must be above zero"));
        }
        o.inner.connect_timeout = Duration::from_millis(timeout_ms);
        Ok(())
    })
}

/// Speaks kn-sock 0.3's protocol instead of knsock's, to reach an existing kn-sock 0.3 server.
/// That protocol has no checksum and no acknowledgement: `KNSOCK_RESULT_OK` then means every
/// byte was written and the server closed the connection afterwards. Default: off.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_legacy(
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
/// receiver with resume enabled continues where its data ends. Default 0.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_retries(
    options: *mut knsock_send_options,
    retries: u32,
) -> knsock_result {
    set(options, |o| {
        o.inner.retries = retries;
        Ok(())
    })
}

/// Milliseconds before the first retry; the wait doubles with each retry, up to a minute.
/// Default 1000.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_retry_delay_ms(
    options: *mut knsock_send_options,
    delay_ms: u64,
) -> knsock_result {
    set(options, |o| {
        o.inner.retry_delay = Duration::from_millis(delay_ms);
        Ok(())
    })
}

/// Compresses with zstd when the receiver accepts it, file by file: data that does not shrink
/// (media, archives) is sent as it is. The checksum covers the original bytes. Default: off.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_compress(
    options: *mut knsock_send_options,
    compress: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.compress = compress;
        Ok(())
    })
}

/// Skips files the receiver already holds with the same size and checksum (the backup case):
/// each file is hashed before it is offered and an identical one is not sent; it still counts
/// as delivered (`knsock_batch_report_skipped()` tells). Default: off.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_skip_unchanged(
    options: *mut knsock_send_options,
    skip: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.skip_unchanged = skip;
        Ok(())
    })
}

/// The name the receiver stores the file under (UTF-8, may contain `/` for subdirectories;
/// copied). NULL restores the default, the file's base name.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_remote_name(
    options: *mut knsock_send_options,
    name: *const c_char,
) -> knsock_result {
    set(options, |o| {
        o.inner.remote_name = match name.is_null() {
            true => None,
            false => Some(arg_str(name, "name")?.to_string()),
        };
        Ok(())
    })
}

/// Sends the file at `path` to `host:port` and blocks until the receiver has verified it,
/// made it durable and put it in place (then `KNSOCK_RESULT_OK`), or until it fails.
/// `options` may be NULL for the defaults. Callbacks run on the calling thread.
///
/// On failure, when `error` is not NULL, `*error` receives a new error object with the detail
/// (free it with `knsock_error_free()`); on success `*error` is not touched.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_file(
    host: *const c_char,
    port: u16,
    path: *const c_char,
    options: *const knsock_send_options,
    error: *mut *mut knsock_error,
) -> knsock_result {
    with_error(error, || {
        let host = arg_str(host, "host")?;
        let path = arg_path(path, "path")?;
        let opts = knsock_send_options::to_rust(options.as_ref());
        crate::send_file(host, port, &path, &opts).map(|_| ())
    })
}
