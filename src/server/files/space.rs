//! Free space promised to files in flight: a file is accepted only if it fits beside everything
//! already accepted and not yet committed, and its reservation lasts until it is committed or
//! fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::protocol::Code;
use crate::server::files::refusal::Refusal;
use crate::sync::lock;

/// Bytes reserved per file system (by device number), and how many reservations (files in
/// flight) there are.
#[derive(Default)]
pub(crate) struct Space(Arc<Mutex<HashMap<u64, u64>>>, Arc<AtomicU64>);

/// A reservation of `bytes` on device `dev`; dropped, it is released.
pub(crate) struct Reservation {
    space: Arc<Mutex<HashMap<u64, u64>>>,
    files: Arc<AtomicU64>,
    dev: u64,
    bytes: u64,
    /// The free space seen at admission and the reserve to keep, for [`Reservation::grow`];
    /// `None` for a reservation of nothing (no local room taken).
    room: Option<(u64, u64)>,
}

impl Space {
    /// Reserves `size` bytes on `dev`, where `free` bytes are free now, keeping `keep` free.
    pub(crate) fn reserve(
        &self,
        dev: u64,
        size: u64,
        free: u64,
        keep: u64,
    ) -> Result<Reservation, Refusal> {
        let mut map = lock(&self.0);
        let promised = map.get(&dev).copied().unwrap_or(0);
        let needed = size.saturating_add(keep).saturating_add(promised);
        if needed > free {
            return Err(Refusal(
                Code::NoSpace,
                format!(
                    "no space: file needs {size} bytes, {free} free, {promised} promised to \
                     files in flight, {keep} reserved"
                ),
            ));
        }
        *map.entry(dev).or_insert(0) += size;
        let mut r = self.reservation(dev, size);
        r.room = Some((free, keep));
        Ok(r)
    }

    /// A reservation of nothing, for a file whose content takes no local room once stored.
    pub(crate) fn nothing(&self) -> Reservation {
        self.reservation(u64::MAX, 0)
    }

    fn reservation(&self, dev: u64, bytes: u64) -> Reservation {
        self.1.fetch_add(1, Ordering::Relaxed);
        Reservation {
            space: Arc::clone(&self.0),
            files: Arc::clone(&self.1),
            dev,
            bytes,
            room: None,
        }
    }

    /// Bytes promised now, on every file system.
    pub(crate) fn reserved(&self) -> u64 {
        lock(&self.0).values().sum()
    }

    /// Files holding a reservation now (admitted, not yet committed or failed).
    pub(crate) fn files(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }
}

impl Reservation {
    /// Bytes reserved now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reserves `more` bytes beside this reservation, for content whose size is known only at
    /// its end: they must fit in the free space seen at admission with everything promised,
    /// this file's bytes so far included (they were not written yet when it was seen). A
    /// reservation of nothing grows without a check.
    pub(crate) fn grow(&mut self, more: u64) -> Result<(), Refusal> {
        let Some((free, keep)) = self.room else {
            self.bytes = self.bytes.saturating_add(more);
            return Ok(());
        };
        let mut map = lock(&self.space);
        let promised = map.get(&self.dev).copied().unwrap_or(0);
        if promised.saturating_add(more).saturating_add(keep) > free {
            return Err(Refusal(
                Code::NoSpace,
                format!(
                    "no space: the stream needs more than its {} bytes so far, {free} were \
                     free, {promised} promised to files in flight, {keep} reserved",
                    self.bytes
                ),
            ));
        }
        *map.entry(self.dev).or_insert(0) += more;
        self.bytes += more;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.files.fetch_sub(1, Ordering::Relaxed);
        let mut map = lock(&self.space);
        if let Some(n) = map.get_mut(&self.dev) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                map.remove(&self.dev);
            }
        }
    }
}
