//! Locking that goes on after a panic elsewhere: every critical section in this crate leaves its
//! data consistent (a single insert, remove or assignment), so a poisoned lock is still usable.
//! And work that waits on a peer spread over a few threads, from a bounded pool of helpers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on after a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads that may help [`in_parallel`] callers at once, in the whole process: a receiver with
/// a thousand connections restoring from a bucket at the same time starts this many, not 15 for
/// each of them. A caller that finds none free does its work alone.
const HELPERS_MAX: usize = 256;

/// Threads that may help: how many are at work, and how many may be.
struct Pool {
    busy: AtomicUsize,
    max: usize,
}

impl Pool {
    const fn new(max: usize) -> Pool {
        Pool {
            busy: AtomicUsize::new(0),
            max,
        }
    }
}

/// The helpers of the whole process.
static HELPERS: Pool = Pool::new(HELPERS_MAX);

/// Helpers taken from a [`Pool`], given back when dropped.
struct Helpers<'p> {
    pool: &'p Pool,
    count: usize,
}

impl Helpers<'_> {
    /// Up to `wanted` helpers of `pool`: as many as are free.
    fn take(pool: &Pool, wanted: usize) -> Helpers<'_> {
        let free = |busy: usize| wanted.min(pool.max.saturating_sub(busy));
        let before = match pool
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |busy| {
                Some(busy + free(busy))
            }) {
            Ok(before) | Err(before) => before,
        };
        Helpers {
            pool,
            count: free(before),
        }
    }
}

impl Drop for Helpers<'_> {
    fn drop(&mut self) {
        self.pool.busy.fetch_sub(self.count, Ordering::AcqRel);
    }
}

/// `f` applied to every item by up to `at_most` threads at once, the calling thread among them
/// and the others helpers while [`HELPERS_MAX`] allows; the results in the items' order. For
/// work that mostly waits on a peer (an object store's round trips): the waits overlap
/// instead of following one another. A thread that cannot be started leaves its share to the
/// others; a panic in `f` reaches the caller once every thread has stopped.
pub(crate) fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    at_most: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    in_parallel_from(&HELPERS, items, at_most, f)
}

/// [`in_parallel`] with the helpers of `pool`.
fn in_parallel_from<T: Send, R: Send>(
    pool: &Pool,
    items: Vec<T>,
    at_most: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let count = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(Vec::with_capacity(count));
    let work = || loop {
        let Some((i, item)) = lock(&queue).next() else {
            return;
        };
        let r = f(item);
        lock(&done).push((i, r));
    };
    let helpers = Helpers::take(pool, at_most.min(count).saturating_sub(1));
    std::thread::scope(|s| {
        for _ in 0..helpers.count {
            if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
    drop(helpers);
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::time::{Duration, Instant};

    #[test]
    fn every_item_once_and_the_results_in_order() {
        let calls = AtomicUsize::new(0);
        let out = in_parallel((0..1000u32).collect(), 7, |x| {
            calls.fetch_add(1, Ordering::Relaxed);
            x * 2
        });
        assert_eq!(out, (0..1000u32).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::Relaxed), 1000);
        assert!(in_parallel(Vec::<u32>::new(), 4, |x| x).is_empty());
        assert_eq!(in_parallel(vec![5u32], 0, |x| x + 1), vec![6]);
    }

    /// Each call waits (10 s at most) until `at_most` calls run at once: one after another, the
    /// first would wait out its deadline and see only itself.
    #[test]
    fn at_most_calls_run_at_once_and_no_more() {
        let at_most = 3;
        let running = Mutex::new((0usize, 0usize)); // (now, most)
        let changed = Condvar::new();
        let out = in_parallel((0..30).collect(), at_most, |i: usize| {
            let mut r = lock(&running);
            r.0 += 1;
            r.1 = r.1.max(r.0);
            changed.notify_all();
            let deadline = Instant::now() + Duration::from_secs(10);
            // The first `at_most` calls meet; the later ones need not wait for anybody.
            while i < at_most && r.1 < at_most && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                r = changed.wait_timeout(r, left).unwrap().0;
            }
            r.0 -= 1;
            i
        });
        assert_eq!(out, (0..30).collect::<Vec<_>>());
        assert_eq!(lock(&running).1, at_most);
    }

    /// With every helper of its pool taken elsewhere, a caller does all its work itself;
    /// helpers come back once their callers are done.
    #[test]
    fn helpers_are_bounded_and_given_back() {
        let pool = Pool::new(4);
        let elsewhere = Helpers::take(&pool, 9);
        assert_eq!(elsewhere.count, 4);
        assert_eq!(Helpers::take(&pool, 3).count, 0);
        let me = std::thread::current().id();
        let threads = in_parallel_from(&pool, (0..50).collect(), 8, |_: u32| {
            std::thread::current().id()
        });
        assert!(threads.iter().all(|t| *t == me), "no helper was free");
        drop(elsewhere);
        let used = in_parallel_from(&pool, (0..50).collect(), 8, |_: u32| {
            pool.busy.load(Ordering::Acquire)
        });
        assert!(used.iter().all(|&busy| busy <= 4), "{used:?}");
        assert_eq!(pool.busy.load(Ordering::Acquire), 0);
        assert_eq!(Helpers::take(&pool, 3).count, 3);
        assert_eq!(pool.busy.load(Ordering::Acquire), 0, "given back at once");
    }
}
