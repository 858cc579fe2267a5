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
        Ok(self.reservation(dev, size))
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
