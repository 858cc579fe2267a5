//! Digests of stored files, remembered with what they were computed from (device, inode, size,
//! modification and change times), so an unchanged file is hashed once however often it is
//! offered again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rustix::fs::Stat;

use crate::sync::lock;

/// How many digests are remembered; the oldest go first.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Key {
    pub fn of(st: &Stat) -> Key {
        Key {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime, st.st_ctime_nsec as i64),
        }
    }
}

#[derive(Default)]
pub struct DigestCache(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    map: HashMap<Key, [u8; 16]>,
    order: VecDeque<Key>,
}

impl DigestCache {
    pub fn get(&self, key: &Key) -> Option<[u8; 16]> {
        lock(&self.0).map.get(key).copied()
    }

    pub fn put(&self, key: Key, digest: [u8; 16]) {
        let mut inner = lock(&self.0);
        if inner.map.insert(key, digest).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.map.remove(&old);
            }
        }
    }
}
