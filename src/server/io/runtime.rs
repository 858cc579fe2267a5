//! The event loop's threads: a few workers (one per core) that multiplex every connection with
//! epoll (tokio over mio), and a bounded pool that takes the work that may block (fsync, rename,
//! directory sync, hashing a stored file, the callbacks, an object store's requests), so a slow
//! disk or a slow callback never stalls the network.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::error::{Error, Result};

/// Threads that may run blocking work at once (each holds one connection's disk step).
const BLOCKING_THREADS: usize = 64;

/// The runtime of one server: `workers` event-loop threads (0: one per core, at least 2).
/// `on_start` runs on each of its threads as it starts (it marks them as this server's).
pub(crate) fn build(
    workers: usize,
    on_start: impl Fn() + Send + Sync + 'static,
) -> Result<Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = match workers {
        0 => cores.max(2),
        n => n,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(KEEP_ALIVE)
        .thread_name("knsock-server")
        .on_thread_start(on_start)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the server's threads", e))?;
    warm(&runtime, workers);
    Ok(runtime)
}

/// How long an idle thread of the blocking pool is kept for the next disk step.
const KEEP_ALIVE: Duration = Duration::from_secs(300);

/// Starts `n` threads of the blocking pool now, so the first transfers do not wait for threads
/// to be created (each step that leaves the event loop needs one ready to take over).
fn warm(runtime: &Runtime, n: usize) {
    let all_started = Arc::new(Barrier::new(n + 1));
    for _ in 0..n {
        let b = Arc::clone(&all_started);
        runtime.spawn_blocking(move || {
            b.wait();
        });
    }
    all_started.wait();
}

/// Runs `f`, which may block (on the disk, in a callback), without stalling the connections
/// that share this thread: the event loop hands them to another thread meanwhile. Outside a
/// multi-threaded runtime (in-memory tests) it just runs `f`.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// [`blocking`] when `may_block`, else `f` right here: what is known to be quick (a lookup in a
/// local directory, writing a small file to the page cache) stays on the event loop, for a
/// handoff to another thread costs more than it does.
pub(crate) fn blocking_if<T>(may_block: bool, f: impl FnOnce() -> T) -> T {
    match may_block {
        true => blocking(f),
        false => f(),
    }
}

/// A future whose panic is caught and returned, so one connection's panic ends that connection
/// only.
pub(crate) struct CatchUnwind<F>(pub(crate) Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
