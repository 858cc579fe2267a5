//! The blocking sends: `knsock_send_file` (one file) and `knsock_send_files` (many over one
//! connection). Both run on the caller's thread, callbacks included.

use std::ffi::c_char;

use super::batch_report::knsock_batch_report;
use super::convert::{arg_path, arg_str};
use super::error::knsock_error;
use super::macros::{ffi_boundary, to_boxed_mut_ptr, try_out};
use super::send_options::knsock_send_options;
use super::types::knsock_result;

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
        if paths.is_null() && count > 0 {
            return Err(crate::Error::invalid("paths is NULL"));
        }
        let list = (0..count)
            // SAFETY: the header's contract: `paths` holds `count` string pointers.
            .map(|i| unsafe { arg_path(*paths.add(i), "a path") })
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: the header's contract: `options` is NULL or live, no setter running.
        let options = unsafe { options.as_ref() };
        let walk = options.map(|o| o.walk.clone()).unwrap_or_default();
        let opts = knsock_send_options::to_rust(options);
        let sources = crate::collect_sources(&list, &walk)?;
        let done = match sources.is_empty() {
            true => knsock_batch_report::empty(),
            false => knsock_batch_report::new(&crate::send_files(host, port, &sources, &opts)?),
        };
        report.write(to_boxed_mut_ptr(done));
        Ok(())
    })
}
