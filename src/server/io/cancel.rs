//! How a connection is reached from outside its task: [`Cancel`] stops its reads or cuts it
//! (a server stopping, a superseded resume), and says whether the server is near its
//! connection cap, when a connection must keep up [`MIN_RATE`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How one connection is ended from outside: `stop` ends its reads (it can still tell its peer
/// why), `cut` its writes too. It also knows whether the server is near its connection cap,
/// when a connection must keep up [`MIN_RATE`].
#[derive(Default)]
pub(crate) struct Cancel {
    stopped: AtomicBool,
    cut: AtomicBool,
    notify: Notify,
    crowded: Option<Arc<AtomicBool>>,
}

/// Near its connection cap, a server cuts a connection whose sender, over [`RATE_WINDOW`] of
/// waiting for its bytes, averaged less than this many bytes a second (as Apache's
/// `mod_reqtimeout` asks a minimum rate of request bodies): the slowest give their place to
/// new senders. Far from the cap, only the header and idle timeouts apply.
pub(crate) const MIN_RATE: u64 = 100;
/// How long a connection's rate is measured over (time spent waiting for its bytes).
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(30);

impl Cancel {
    /// A connection's: `crowded` says whether the server is near its connection cap.
    pub(crate) fn new(crowded: Arc<AtomicBool>) -> Cancel {
        Cancel {
            crowded: Some(crowded),
            ..Cancel::default()
        }
    }

    pub(crate) fn crowded(&self) -> bool {
        self.crowded
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Ends the connection's reads: buffered bytes are still read, then the stream ends.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Ends reads and writes: the peer gets nothing more.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.stop();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    pub(crate) fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Completes once [`Cancel::stop`] was called.
    pub(crate) async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}
