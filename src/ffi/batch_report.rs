//! `knsock_batch_report`: the per-file outcomes of `knsock_send_files()`.

use std::ffi::{c_char, CString};
use std::ptr;

use super::convert::{path_cstring, to_cstring};
use super::error::knsock_error;
use super::macros::{ffi_boundary, free_box, try_out, try_ref, Castable, OwnershipBox};
use super::types::knsock_result;
use crate::{BatchReport, Error, FetchReport, FetchStatus};

/// Per-file outcomes of `knsock_send_files()` (or of one receiver of
/// `knsock_send_files_multi()`), in the order the files were listed; or of
/// `knsock_fetch_files()`: the files the receiver listed (the name there, the local path, the
/// size; "skipped" means found unchanged), then one entry per requested name that gave nothing
/// (that name, an empty path, its error). Created by the library;
/// freed by the caller with `knsock_batch_report_free()`, except one a `knsock_multi_report`
/// owns. Strings it hands out are
/// owned by it.
///
/// Thread safety: read-only once returned; any thread may read it, also concurrently.
/// `knsock_batch_report_free()` must be the last call, with no reader left.
pub struct knsock_batch_report {
    files: Vec<FileEntry>,
}

impl Castable for knsock_batch_report {
    type Ownership = OwnershipBox;
}

struct FileEntry {
    name: CString,
    path: CString,
    bytes: u64,
    bytes_sent: u64,
    bytes_reused: u64,
    skipped: bool,
    error: Option<knsock_error>,
}

impl knsock_batch_report {
    /// The report of a batch with nothing in it.
    pub(crate) fn empty() -> Self {
        knsock_batch_report { files: Vec::new() }
    }

    pub(crate) fn new(report: &BatchReport) -> Self {
        let files = report
            .files
            .iter()
            .map(|f| FileEntry {
                name: to_cstring(&f.source.name),
                path: path_cstring(&f.source.path),
                bytes: f.result.as_ref().map_or(0, |r| r.bytes),
                bytes_sent: f.result.as_ref().map_or(0, |r| r.bytes_sent),
                bytes_reused: f.result.as_ref().map_or(0, |r| r.bytes_reused),
                skipped: f.result.as_ref().is_ok_and(|r| r.skipped),
                error: f.result.as_ref().err().map(knsock_error::from_error),
            })
            .collect();
        knsock_batch_report { files }
    }

    pub(crate) fn from_fetch(report: &FetchReport) -> Self {
        let files = report.files.iter().map(|f| {
            let fetched = matches!(f.result, Ok(FetchStatus::Fetched));
            FileEntry {
                name: to_cstring(&f.name),
                path: f
                    .path
                    .as_deref()
                    .map_or_else(Default::default, path_cstring),
                bytes: if f.result.is_ok() { f.size } else { 0 },
                bytes_sent: if fetched { f.transferred } else { 0 },
                bytes_reused: if fetched { f.reused } else { 0 },
                skipped: matches!(f.result, Ok(FetchStatus::Unchanged)),
                error: f.result.as_ref().err().map(knsock_error::from_error),
            }
        });
        let missing = report.missing.iter().map(|m| FileEntry {
            name: to_cstring(&m.name),
            path: CString::default(),
            bytes: 0,
            bytes_sent: 0,
            bytes_reused: 0,
            skipped: false,
            error: Some(knsock_error::from_error(&m.error)),
        });
        knsock_batch_report {
            files: files.chain(missing).collect(),
        }
    }

    /// How many files failed.
    pub(crate) fn failed(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }

    fn entry(&self, index: usize) -> Result<&FileEntry, Error> {
        self.files
            .get(index)
            .ok_or_else(|| Error::invalid(format!("index {index} is out of range")))
    }
}

/// How many files the report lists (0 for NULL).
#[no_mangle]
pub extern "C" fn knsock_batch_report_count(report: *const knsock_batch_report) -> usize {
    ffi_boundary!({ Ok(try_ref!(report).files.len()) })
}

/// How many of them failed (0 for NULL).
#[no_mangle]
pub extern "C" fn knsock_batch_report_failed(report: *const knsock_batch_report) -> usize {
    ffi_boundary!({ Ok(try_ref!(report).failed()) })
}

/// File `index`'s name on the receiver, e.g. "logs/app.log"; NULL when out of range.
#[no_mangle]
pub extern "C" fn knsock_batch_report_name(
    report: *const knsock_batch_report,
    index: usize,
) -> *const c_char {
    ffi_boundary!({ Ok(try_ref!(report).entry(index)?.name.as_ptr()) })
}

/// File `index`'s local path, its exact bytes as the OS has them (not necessarily UTF-8), so it
/// names the file that was sent; NULL when out of range.
#[no_mangle]
pub extern "C" fn knsock_batch_report_path(
    report: *const knsock_batch_report,
    index: usize,
) -> *const c_char {
    ffi_boundary!({ Ok(try_ref!(report).entry(index)?.path.as_ptr()) })
}

/// The same bytes as `knsock_batch_report_path()` with their length: `*len` receives the length
/// without the terminating NUL (which follows the bytes as well). NULL when `report` or `len` is
/// NULL or `index` is out of range; `*len` is then untouched. Owned by the report.
#[no_mangle]
pub extern "C" fn knsock_batch_report_path_bytes(
    report: *const knsock_batch_report,
    index: usize,
    len: *mut usize,
) -> *const c_char {
    ffi_boundary!({
        let path = &try_ref!(report).entry(index)?.path;
        try_out!(len).write(path.to_bytes().len());
        Ok(path.as_ptr())
    })
}

/// File `index`'s bytes delivered (0 when it failed or is out of range).
#[no_mangle]
pub extern "C" fn knsock_batch_report_bytes(
    report: *const knsock_batch_report,
    index: usize,
) -> u64 {
    ffi_boundary!({ Ok(try_ref!(report).entry(index)?.bytes) })
}

/// File `index`'s content bytes that crossed the wire: after compression, and for a delta its
/// frames; for a fetch, what came from the receiver (0 when skipped, failed or out of range).
#[no_mangle]
pub extern "C" fn knsock_batch_report_bytes_sent(
    report: *const knsock_batch_report,
    index: usize,
) -> u64 {
    ffi_boundary!({ Ok(try_ref!(report).entry(index)?.bytes_sent) })
}

/// File `index`'s bytes the receiver took from its own older copy (a delta) or a kept partial
/// upload (a resume) instead of the wire; for a fetch, the bytes taken from the local old copy
/// (0 when failed or out of range).
#[no_mangle]
pub extern "C" fn knsock_batch_report_bytes_reused(
    report: *const knsock_batch_report,
    index: usize,
) -> u64 {
    ffi_boundary!({ Ok(try_ref!(report).entry(index)?.bytes_reused) })
}

/// Whether file `index` was skipped because the receiver already held it unchanged (false when
/// out of range).
#[no_mangle]
pub extern "C" fn knsock_batch_report_skipped(
    report: *const knsock_batch_report,
    index: usize,
) -> bool {
    ffi_boundary!({ Ok(try_ref!(report).entry(index)?.skipped) })
}

/// File `index`'s result: `KNSOCK_RESULT_OK` when delivered;
/// `KNSOCK_RESULT_INVALID_ARGUMENT` when out of range.
#[no_mangle]
pub extern "C" fn knsock_batch_report_result(
    report: *const knsock_batch_report,
    index: usize,
) -> knsock_result {
    ffi_boundary!({
        let f = try_ref!(report).entry(index)?;
        Ok(f.error.as_ref().map_or(knsock_result::Ok, |e| e.code))
    })
}

/// File `index`'s error (owned by the report; read it with `knsock_error_message()`,
/// `knsock_error_peer_reason()`), or NULL when it was delivered or is out of range.
#[no_mangle]
pub extern "C" fn knsock_batch_report_error(
    report: *const knsock_batch_report,
    index: usize,
) -> *const knsock_error {
    ffi_boundary!({
        let f = try_ref!(report).entry(index)?;
        Ok(f.error
            .as_ref()
            .map_or(ptr::null(), |e| e as *const knsock_error))
    })
}

/// Frees a report. NULL is a no-op.
#[no_mangle]
pub extern "C" fn knsock_batch_report_free(report: *mut knsock_batch_report) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or a report from `knsock_send_files()`, freed once.
        unsafe { free_box(report) };
        Ok(())
    })
}
