//! Many files over one connection: `knsock_send_files`, its walk options, and
//! `knsock_batch_report`.

use std::ffi::{c_char, CString};
use std::ptr;

use super::error::knsock_error;
use super::send::{knsock_send_options, set};
use super::{arg_path, arg_str, boundary, knsock_result, to_cstring, with_error};
use crate::Error;
use crate::{collect_sources, send_files, BatchReport};

/// Per-file outcomes of `knsock_send_files()`, in the order the files were listed. Created by
/// the library; freed by the caller with `knsock_batch_report_free()`. Strings it hands out are
/// owned by it.
pub struct knsock_batch_report {
    files: Vec<FileEntry>,
}

struct FileEntry {
    name: CString,
    path: CString,
    bytes: u64,
    skipped: bool,
    error: Option<knsock_error>,
}

impl knsock_batch_report {
    fn new(report: &BatchReport) -> Self {
        let files = report
            .files
            .iter()
            .map(|f| FileEntry {
                name: to_cstring(&f.source.name),
                path: to_cstring(&f.source.path.to_string_lossy()),
                bytes: f.result.as_ref().map_or(0, |r| r.bytes),
                skipped: f.result.as_ref().is_ok_and(|r| r.skipped),
                error: f.result.as_ref().err().map(knsock_error::from_error),
            })
            .collect();
        knsock_batch_report { files }
    }

    /// SAFETY: `report` is NULL or a report from `knsock_send_files()` not yet freed.
    unsafe fn entry<'a>(report: *const knsock_batch_report, index: usize) -> Option<&'a FileEntry> {
        report.as_ref().and_then(|r| r.files.get(index))
    }
}

/// Descend into directories named in `knsock_send_files()` (default: off; a directory is then an
/// error).
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_recursive(
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
pub unsafe extern "C" fn knsock_send_options_set_follow_symlinks(
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
/// `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_add_include(
    options: *mut knsock_send_options,
    glob: *const c_char,
) -> knsock_result {
    set(options, |o| {
        let g = checked_glob(glob)?;
        o.walk.include.push(g);
        Ok(())
    })
}

/// Adds a glob (copied) that drops matching files, whatever the includes say.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_add_exclude(
    options: *mut knsock_send_options,
    glob: *const c_char,
) -> knsock_result {
    set(options, |o| {
        let g = checked_glob(glob)?;
        o.walk.exclude.push(g);
        Ok(())
    })
}

unsafe fn checked_glob(glob: *const c_char) -> Result<String, Error> {
    let g = arg_str(glob, "glob")?;
    glob::Pattern::new(g).map_err(|e| Error::invalid(format!("bad glob {g:?}: {e}")))?;
    Ok(g.to_string())
}

/// Stop offering files after the first one that fails (the rest are reported as
/// `KNSOCK_RESULT_CANCELLED`). Default: off, every file is attempted.
#[no_mangle]
pub unsafe extern "C" fn knsock_send_options_set_stop_on_error(
    options: *mut knsock_send_options,
    stop: bool,
) -> knsock_result {
    set(options, |o| {
        o.inner.stop_on_error = stop;
        Ok(())
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
#[no_mangle]
pub unsafe extern "C" fn knsock_send_files(
    host: *const c_char,
    port: u16,
    paths: *const *const c_char,
    count: usize,
    options: *const knsock_send_options,
    report: *mut *mut knsock_batch_report,
    error: *mut *mut knsock_error,
) -> knsock_result {
    with_error(error, || {
        let host = arg_str(host, "host")?;
        if report.is_null() {
            return Err(Error::invalid("report output pointer is NULL"));
        }
        if paths.is_null() && count > 0 {
            return Err(Error::invalid("paths is NULL"));
        }
        let list = (0..count)
            .map(|i| arg_path(*paths.add(i), "a path"))
            .collect::<Result<Vec<_>, _>>()?;
        let walk = options.as_ref().map(|o| o.walk.clone()).unwrap_or_default();
        let opts = knsock_send_options::to_rust(options.as_ref());
        let sources = collect_sources(&list, &walk)?;
        let done = send_files(host, port, &sources, &opts)?;
        *report = Box::into_raw(Box::new(knsock_batch_report::new(&done)));
        Ok(())
    })
}

/// How many files the report lists (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_count(report: *const knsock_batch_report) -> usize {
    boundary(0, || report.as_ref().map_or(0, |r| r.files.len()))
}

/// How many of them failed (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_failed(report: *const knsock_batch_report) -> usize {
    boundary(0, || {
        report
            .as_ref()
            .map_or(0, |r| r.files.iter().filter(|f| f.error.is_some()).count())
    })
}

/// File `index`'s name on the receiver, e.g. "logs/app.log"; NULL when out of range.
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_name(
    report: *const knsock_batch_report,
    index: usize,
) -> *const c_char {
    boundary(ptr::null(), || {
        knsock_batch_report::entry(report, index).map_or(ptr::null(), |f| f.name.as_ptr())
    })
}

/// File `index`'s local path; NULL when out of range.
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_path(
    report: *const knsock_batch_report,
    index: usize,
) -> *const c_char {
    boundary(ptr::null(), || {
        knsock_batch_report::entry(report, index).map_or(ptr::null(), |f| f.path.as_ptr())
    })
}

/// File `index`'s bytes delivered (0 when it failed or is out of range).
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_bytes(
    report: *const knsock_batch_report,
    index: usize,
) -> u64 {
    boundary(0, || {
        knsock_batch_report::entry(report, index).map_or(0, |f| f.bytes)
    })
}

/// Whether file `index` was skipped because the receiver already held it unchanged (false when
/// out of range).
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_skipped(
    report: *const knsock_batch_report,
    index: usize,
) -> bool {
    boundary(false, || {
        knsock_batch_report::entry(report, index).is_some_and(|f| f.skipped)
    })
}

/// File `index`'s result: `KNSOCK_RESULT_OK` when delivered;
/// `KNSOCK_RESULT_INVALID_ARGUMENT` when out of range.
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_result(
    report: *const knsock_batch_report,
    index: usize,
) -> knsock_result {
    boundary(knsock_result::Panic, || {
        match knsock_batch_report::entry(report, index) {
            Some(f) => f.error.as_ref().map_or(knsock_result::Ok, |e| e.code),
            None => knsock_result::InvalidArgument,
        }
    })
}

/// File `index`'s error (owned by the report; read it with `knsock_error_message()`,
/// `knsock_error_peer_reason()`), or NULL when it was delivered or is out of range.
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_error(
    report: *const knsock_batch_report,
    index: usize,
) -> *const knsock_error {
    boundary(ptr::null(), || {
        knsock_batch_report::entry(report, index)
            .and_then(|f| f.error.as_ref())
            .map_or(ptr::null(), |e| e as *const knsock_error)
    })
}

/// Frees a report. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn knsock_batch_report_free(report: *mut knsock_batch_report) {
    boundary((), || {
        if !report.is_null() {
            drop(Box::from_raw(report));
        }
    })
}
