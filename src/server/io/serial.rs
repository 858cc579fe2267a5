//! One connection's callbacks (the received handlers, the refusal and error reports of a group
//! commit), run in order on the blocking pool while the connection goes on receiving. One job
//! of the pool drains the queue for as long as it has work, so a stream of small files wakes a
//! thread of the pool once, not once per commit; the queue is bounded, so a slow callback
//! slows its connection instead of growing memory. A connection does not wait for its queue
//! when it ends (a one-file connection would pay a second thread handoff); a server that stops
//! waits for every queue of its connections ([`Drains`]).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Notify;

use crate::sync::lock;

/// Jobs waiting at most; the connection that would queue one more waits for the queue to
/// shorten.
const MAX_QUEUED: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// A queue of jobs run one at a time, in the order they were queued.
#[derive(Default)]
pub(crate) struct Serial {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// A job ended, or the queue went idle.
    changed: Notify,
    /// The server's count of queues being drained.
    drains: Arc<Drains>,
}

/// How many queues of a server are being drained: what a server that stops waits for, once its
/// connections (which do not wait for their own callbacks) have ended.
#[derive(Default)]
pub(crate) struct Drains {
    count: Mutex<usize>,
    none: Notify,
}

impl Drains {
    /// Waits until no queue is being drained.
    pub(crate) async fn idle(&self) {
        loop {
            let none = self.none.notified();
            if *lock(&self.count) == 0 {
                return;
            }
            none.await;
        }
    }

    fn add(&self, n: isize) {
        let mut count = lock(&self.count);
        *count = count.saturating_add_signed(n);
        if *count == 0 {
            self.none.notify_waiters();
        }
    }
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// A job of the pool is draining `jobs`.
    running: bool,
}

impl Serial {
    /// A queue counted in `drains` while a job of the pool drains it.
    pub(crate) fn new(drains: Arc<Drains>) -> Serial {
        Serial {
            inner: Arc::new(Inner {
                drains,
                ..Inner::default()
            }),
        }
    }

    /// Queues `job` behind the jobs already queued, waiting while the queue is full. Outside a
    /// multi-threaded runtime (in-memory serving) it runs `job` here, after the queued ones.
    pub(crate) async fn run(&self, job: impl FnOnce() + Send + 'static) {
        let pool = matches!(
            Handle::try_current().map(|h| h.runtime_flavor()),
            Ok(RuntimeFlavor::MultiThread)
        );
        if !pool {
            self.idle().await;
            return job();
        }
        let mut job: Option<Job> = Some(Box::new(job));
        loop {
            // Created before the check, so an end of job between the two is not missed.
            let changed = self.inner.changed.notified();
            {
                let mut st = lock(&self.inner.state);
                if st.jobs.len() < MAX_QUEUED {
                    st.jobs.extend(job.take());
                    if !st.running {
                        st.running = true;
                        self.inner.drains.add(1);
                        let inner = Arc::clone(&self.inner);
                        tokio::task::spawn_blocking(move || inner.drain());
                    }
                    return;
                }
            }
            changed.await;
        }
    }

    /// Waits until every queued job has run.
    pub(crate) async fn idle(&self) {
        loop {
            let changed = self.inner.changed.notified();
            {
                let st = lock(&self.inner.state);
                if st.jobs.is_empty() && !st.running {
                    return;
                }
            }
            changed.await;
        }
    }
}

impl Inner {
    /// Runs the queued jobs until there are none; a job's panic ends that job only.
    fn drain(&self) {
        loop {
            let job = {
                let mut st = lock(&self.state);
                match st.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        st.running = false;
                        drop(st);
                        self.changed.notify_waiters();
                        self.drains.add(-1);
                        return;
                    }
                }
            };
            self.changed.notify_waiters();
            let _ = catch_unwind(AssertUnwindSafe(job));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Jobs run in order, all of them, on threads of the pool, and the server's count of queues
    /// being drained waits for the last.
    #[test]
    fn jobs_run_in_order_and_idle_waits_for_them() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let drains = Arc::new(Drains::default());
        let serial = Serial::new(Arc::clone(&drains));
        let here = std::thread::current().id();
        rt.block_on(async {
            for i in 0..500 {
                let seen = Arc::clone(&seen);
                serial
                    .run(move || {
                        assert_ne!(std::thread::current().id(), here, "not on the pool");
                        lock(&seen).push(i);
                    })
                    .await;
            }
            // What a stopping server waits for.
            drains.idle().await;
        });
        assert_eq!(*lock(&seen), (0..500).collect::<Vec<_>>());
    }

    /// A job that panics does not stop the jobs behind it.
    #[test]
    fn a_panicking_job_ends_alone() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let serial = Serial::default();
        rt.block_on(async {
            serial.run(|| panic!("a handler's panic")).await;
            let r = Arc::clone(&ran);
            serial
                .run(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .await;
            serial.idle().await;
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
