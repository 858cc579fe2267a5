//! `knsock_multi_report`: the outcomes of `knsock_send_files_multi()`, per receiver and, through
//! a borrowed `knsock_batch_report`, per file.

use std::ptr;

use super::batch_report::knsock_batch_report;
use super::error::knsock_error;
use super::macros::{ffi_boundary, free_box, try_ref, Castable, OwnershipBox};
use super::types::knsock_result;
use crate::{Error, ManyReport};

/// Outcomes of `knsock_send_files_multi()`, one entry per receiver in the order they were
/// passed. Created by the library; freed by the caller with `knsock_multi_report_free()`. The
/// batch reports and errors it hands out are owned by it.
///
/// Thread safety: read-only once returned; any thread may read it, also concurrently.
/// `knsock_multi_report_free()` must be the last call, with no reader left.
pub struct knsock_multi_report {
    receivers: Vec<ReceiverEntry>,
}

impl Castable for knsock_multi_report {
    type Ownership = OwnershipBox;
}

/// A receiver that was reached has its batch; one that was not, its error.
enum ReceiverEntry {
    Reached(knsock_batch_report),
    Unreached(knsock_error),
}

impl knsock_multi_report {
    /// `receivers` empty batches: nothing to send.
    pub(crate) fn empty(receivers: usize) -> Self {
        let receivers = (0..receivers)
            .map(|_| ReceiverEntry::Reached(knsock_batch_report::empty()))
            .collect();
        knsock_multi_report { receivers }
    }

    pub(crate) fn new(report: &ManyReport) -> Self {
        let receivers = report
            .receivers
            .iter()
            .map(|r| match &r.result {
                Ok(batch) => ReceiverEntry::Reached(knsock_batch_report::new(batch)),
                Err(e) => ReceiverEntry::Unreached(knsock_error::from_error(e)),
            })
            .collect();
        knsock_multi_report { receivers }
    }

    fn entry(&self, receiver: usize) -> Result<&ReceiverEntry, Error> {
        self.receivers
            .get(receiver)
            .ok_or_else(|| Error::invalid(format!("receiver {receiver} is out of range")))
    }
}

/// How many receivers the report lists (0 for NULL).
#[no_mangle]
pub extern "C" fn knsock_multi_report_count(report: *const knsock_multi_report) -> usize {
    ffi_boundary!({ Ok(try_ref!(report).receivers.len()) })
}

/// How many receivers could not be reached or failed at least one file (0 for NULL).
#[no_mangle]
pub extern "C" fn knsock_multi_report_failed(report: *const knsock_multi_report) -> usize {
    ffi_boundary!({
        let failed = |r: &&ReceiverEntry| match r {
            ReceiverEntry::Reached(b) => b.failed() > 0,
            ReceiverEntry::Unreached(_) => true,
        };
        Ok(try_ref!(report).receivers.iter().filter(failed).count())
    })
}

/// Receiver `receiver`'s result: `KNSOCK_RESULT_OK` when it was reached (each file's outcome is
/// in `knsock_multi_report_batch()`), else why it could not be (`KNSOCK_RESULT_CONNECT`, …);
/// `KNSOCK_RESULT_INVALID_ARGUMENT` when out of range.
#[no_mangle]
pub extern "C" fn knsock_multi_report_result(
    report: *const knsock_multi_report,
    receiver: usize,
) -> knsock_result {
    ffi_boundary!({
        Ok(match try_ref!(report).entry(receiver)? {
            ReceiverEntry::Reached(_) => knsock_result::Ok,
            ReceiverEntry::Unreached(e) => e.code,
        })
    })
}

/// Why receiver `receiver` could not be reached (owned by the report; read it with
/// `knsock_error_message()`), or NULL when it was reached or is out of range.
#[no_mangle]
pub extern "C" fn knsock_multi_report_error(
    report: *const knsock_multi_report,
    receiver: usize,
) -> *const knsock_error {
    ffi_boundary!({
        Ok(match try_ref!(report).entry(receiver)? {
            ReceiverEntry::Reached(_) => ptr::null(),
            ReceiverEntry::Unreached(e) => e as *const knsock_error,
        })
    })
}

/// Receiver `receiver`'s per-file outcomes, read with the `knsock_batch_report_*()` accessors
/// (result, error, bytes, …; files in the order they were listed), or NULL when it could not be
/// reached or is out of range. Owned by the report: never pass it to
/// `knsock_batch_report_free()`.
#[no_mangle]
pub extern "C" fn knsock_multi_report_batch(
    report: *const knsock_multi_report,
    receiver: usize,
) -> *const knsock_batch_report {
    ffi_boundary!({
        Ok(match try_ref!(report).entry(receiver)? {
            ReceiverEntry::Reached(b) => b as *const knsock_batch_report,
            ReceiverEntry::Unreached(_) => ptr::null(),
        })
    })
}

/// Frees a report, with the batch reports and errors it owns. NULL is a no-op.
#[no_mangle]
pub extern "C" fn knsock_multi_report_free(report: *mut knsock_multi_report) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or a report from `knsock_send_files_multi()`,
        // freed once.
        unsafe { free_box(report) };
        Ok(())
    })
}
