//! Locking that goes on after a panic elsewhere: every critical section in this crate leaves its
//! data consistent (a single insert, remove or assignment), so a poisoned lock is still usable.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on after a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
