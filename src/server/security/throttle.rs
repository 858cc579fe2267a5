//! Slowing down repeated authentication failures from one address, in bounded memory: a table
//! of at most `MAX_ADDRESSES` entries, the stalest evicted first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

const MAX_ADDRESSES: usize = 4096;
/// An address that has not failed for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(120);
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(8);

#[derive(Default)]
pub(crate) struct Throttle {
    /// Address → (failures, last failure).
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    /// Records a failure from `ip` and returns how long to wait before answering it: nothing
    /// the first time, then 250 ms doubling up to 8 s.
    pub(crate) fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut table = lock(&self.failures);
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&ip) {
            table.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
            if table.len() >= MAX_ADDRESSES {
                let stalest = table
                    .iter()
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(a, _)| *a);
                if let Some(a) = stalest {
                    table.remove(&a);
                }
            }
        }
        let entry = table.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        match entry.0 {
            1 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(1 << (n - 2).min(16))
                .min(MAX_DELAY),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.lock().unwrap().len()
    }
}

/// Waits `d`, in short steps, unless `stopping()` turns true first.
pub(crate) async fn pause(d: Duration, stopping: impl Fn() -> bool) {
    let until = Instant::now() + d;
    while !stopping() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(Duration::from_millis(50))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_memory_is_bounded() {
        let t = Throttle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let delays: Vec<_> = (0..5).map(|_| t.failed(ip)).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert_eq!(delays[1], FIRST_DELAY);
        assert_eq!(delays[2], FIRST_DELAY * 2);
        assert!(delays[4] <= MAX_DELAY);
        for i in 0..(MAX_ADDRESSES as u32 + 100) {
            t.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(t.len() <= MAX_ADDRESSES);
    }
}
