//! The server-wide budgets of files in flight: descriptors (each file being written holds two,
//! its temporary file and its directory) and memory (a small file's content gathers in memory
//! and is written out whole, so a slow sender of a small file holds no descriptor at all).
//! When descriptors run short a connection waits for them before it reads further: back-pressure
//! on that sender, never a failure. A third budget, the memory for work, bounds what the
//! connections' large read buffers and the delta signatures hold together: a connection that
//! finds none left reads with its small buffer, or waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors one file being written holds: its temporary file and its directory.
const PER_FILE: u32 = 2;
/// The largest file whose content gathers in memory.
pub(crate) const SPOOL_FILE_MAX: u64 = 64 * 1024;
/// Memory all connections together may hold in gathered content.
pub(crate) const SPOOL_TOTAL: u64 = 256 << 20;
/// Memory all connections together may hold in read buffers above their small size and in
/// delta signatures, counted in KiB.
pub(crate) const WORK_TOTAL_KIB: u32 = 512 * 1024;

/// `bytes` of work memory as permits: KiB, at least one, at most all of them.
fn kib_of(bytes: u64) -> u32 {
    bytes.div_ceil(1024).clamp(1, WORK_TOTAL_KIB as u64) as u32
}

pub(crate) struct Budget {
    descriptors: Arc<Semaphore>,
    total: usize,
    spool_left: AtomicU64,
    /// The memory for work, a permit per KiB.
    work: Arc<Semaphore>,
}

/// One file's descriptors, given back when it is dropped (after its commit or failure).
pub(crate) struct Descriptors {
    _permit: OwnedSemaphorePermit,
}

/// Memory for one small file's content, given back when it is dropped.
pub(crate) struct Spool<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// `descriptors` for files in flight, `spool` bytes for gathered content.
    pub(crate) fn new(descriptors: u64, spool: u64) -> Budget {
        let permits = descriptors.clamp(PER_FILE as u64, Semaphore::MAX_PERMITS as u64) as usize;
        Budget {
            descriptors: Arc::new(Semaphore::new(permits)),
            total: permits,
            spool_left: AtomicU64::new(spool),
            work: Arc::new(Semaphore::new(WORK_TOTAL_KIB as usize)),
        }
    }

    /// The memory for work, a permit per KiB (what a connection's `Wire` takes from).
    pub(crate) fn work(&self) -> Arc<Semaphore> {
        Arc::clone(&self.work)
    }

    /// `bytes` of the memory for work (all of it at most), waiting for other connections to
    /// give some back when too little is left.
    pub(crate) async fn work_memory(&self, bytes: u64) -> OwnedSemaphorePermit {
        Arc::clone(&self.work)
            .acquire_many_owned(kib_of(bytes))
            .await
            .expect("the budget's semaphore is never closed")
    }

    /// [`Budget::work_memory`] when that much is free now, else `None` (for what can be done
    /// without it, and must not wait while its connection holds work memory already).
    pub(crate) fn try_work_memory(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.work)
            .try_acquire_many_owned(kib_of(bytes))
            .ok()
    }

    /// One file's descriptors, if free now.
    pub(crate) fn try_descriptors(&self) -> Option<Descriptors> {
        Arc::clone(&self.descriptors)
            .try_acquire_many_owned(PER_FILE)
            .ok()
            .map(|p| Descriptors { _permit: p })
    }

    /// One file's descriptors while more than half the budget is free: for an accepted file to
    /// keep its directory open until its content comes. The other half stays for files whose
    /// content is flowing, so files that wait never hold back those that flow.
    pub(crate) fn try_spare(&self) -> Option<Descriptors> {
        match self.descriptors.available_permits() > self.total / 2 {
            true => self.try_descriptors(),
            false => None,
        }
    }

    /// One file's descriptors, waiting for other files to finish when there are none free.
    pub(crate) async fn descriptors(&self) -> Descriptors {
        let permit = Arc::clone(&self.descriptors)
            .acquire_many_owned(PER_FILE)
            .await
            .expect("the budget's semaphore is never closed");
        Descriptors { _permit: permit }
    }

    /// Memory for a file of `size` bytes to gather in, if it is small and memory is left.
    pub(crate) fn spool(&self, size: u64) -> Option<Spool<'_>> {
        if size > SPOOL_FILE_MAX {
            return None;
        }
        self.spool_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(size)
            })
            .ok()
            .map(|_| Spool {
                budget: self,
                bytes: size,
            })
    }
}

impl Drop for Spool<'_> {
    fn drop(&mut self) {
        self.budget
            .spool_left
            .fetch_add(self.bytes, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_shared_out_two_per_file_and_come_back() {
        let b = Budget::new(5, 0);
        let first = b.try_descriptors().expect("room for one");
        let second = b.try_descriptors().expect("room for two");
        assert!(
            b.try_descriptors().is_none(),
            "4 of 5 taken, a third needs 2"
        );
        drop(first);
        assert!(b.try_descriptors().is_some());
        drop(second);
    }

    #[test]
    fn waiting_files_keep_descriptors_only_while_half_the_budget_is_free() {
        let b = Budget::new(8, 0);
        let kept = b.try_spare().expect("8 free");
        let _flowing = b.try_descriptors().expect("6 free");
        assert!(b.try_spare().is_none(), "4 of 8 free: not more than half");
        assert!(
            b.try_descriptors().is_some(),
            "files that flow still get theirs"
        );
        drop(kept);
    }

    #[test]
    fn only_small_files_gather_in_memory_within_its_total() {
        let b = Budget::new(8, 100_000);
        assert!(b.spool(SPOOL_FILE_MAX + 1).is_none());
        let a = b.spool(60_000).expect("fits");
        assert!(b.spool(60_000).is_none(), "over the total");
        drop(a);
        assert!(b.spool(60_000).is_some());
    }

    /// Delta work takes its share of the memory for work, all of it at most, and gives it back.
    #[test]
    fn work_memory_is_taken_and_given_back() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let b = Budget::new(8, 0);
        let total = WORK_TOTAL_KIB as usize;
        let three = rt.block_on(b.work_memory(3 << 20));
        assert_eq!(b.work().available_permits(), total - 3 * 1024);
        drop(three);
        let all = rt.block_on(b.work_memory(u64::MAX));
        assert_eq!(
            b.work().available_permits(),
            0,
            "more than the total takes the total"
        );
        drop(all);
        assert_eq!(b.work().available_permits(), total);
    }

    /// Reading ahead takes work memory only when it is free now, and never waits for it.
    #[test]
    fn work_memory_is_tried_without_waiting() {
        let b = Budget::new(8, 0);
        let total = WORK_TOTAL_KIB as usize;
        let most = b
            .try_work_memory(((total - 1024) as u64) << 10)
            .expect("free");
        assert!(b.try_work_memory(2 << 20).is_none(), "1 MiB is left");
        let last = b.try_work_memory(1 << 20).expect("exactly what is left");
        assert_eq!(b.work().available_permits(), 0);
        drop((most, last));
        assert_eq!(b.work().available_permits(), total);
    }
}
