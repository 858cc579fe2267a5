//! The event loop's front: accepting connections, each served as a task of its own (or refused
//! as "busy" at the connection cap), the registry that lets a stop reach every connection, and
//! the wait for them to end when the server stops or drains.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind};
use crate::protocol::Code;
use crate::server::io::cancel::Cancel;
use crate::server::io::dispatch;
use crate::server::io::runtime::{blocking, CatchUnwind};
use crate::server::io::streams::Tcp;
use crate::server::shared::Shared;
use crate::sync::lock;

/// How long a stopping server waits for its connections to tell their senders why before it
/// cuts them.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Connections over the cap answered "busy" at once; beyond, they are closed unanswered.
const BUSY_ANSWERS: usize = 64;

impl Shared {
    pub(crate) fn request_stop(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.wake.notify_waiters();
        // Reads end (at once when nothing is buffered); writes still work, so each connection
        // can send its peer the reason (`Connection::fail`) before it closes.
        for c in lock(&self.conns).values() {
            c.stop();
        }
    }

    /// Completes once the server stops or drains.
    async fn stop_requested(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.refuses_new() {
                return;
            }
            woken.await;
        }
    }

    /// After the accept loop: waits for the connections to end. Draining, they may take as
    /// long as they need until a stop; stopping, they have [`STOP_GRACE`] to tell their
    /// senders why, then the rest are cut.
    pub(crate) async fn wait_connections(&self) {
        let grace = loop {
            let ended = self.conn_ended.notified();
            let woken = self.wake.notified();
            tokio::pin!(ended, woken);
            ended.as_mut().enable();
            woken.as_mut().enable();
            if lock(&self.conns).is_empty() {
                return;
            }
            if self.is_stopping() {
                break tokio::time::Instant::now() + STOP_GRACE;
            }
            tokio::select! {
                () = ended => {}
                () = woken => {}
            }
        };
        loop {
            let ended = self.conn_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if lock(&self.conns).is_empty() {
                return;
            }
            if tokio::time::timeout_at(grace, ended).await.is_err() {
                break;
            }
        }
        for c in lock(&self.conns).values() {
            c.cut();
        }
    }

    pub(crate) async fn accept_loop(self: &Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = self.stop_requested() => return,
            };
            match accepted {
                Ok((stream, peer)) => self.open(stream, peer),
                Err(e) => {
                    blocking(|| self.report(&Error::io("accepting a connection", e), None));
                    // Out of descriptors or memory: give the connections a moment to free
                    // some, rather than spin on a listener that stays readable.
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                        () = self.stop_requested() => return,
                    }
                }
            }
        }
    }

    /// Serves a new connection as a task of its own, or refuses it when the server is at its
    /// connection cap. Whatever one connection does (an error, a panic), only that connection
    /// ends.
    fn open(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let _ = SockRef::from(&stream).set_keepalive(true);
        let Some((id, cancel)) = self.register() else {
            return self.refuse_busy(stream);
        };
        self.stats.connection_opened();
        let sh = Arc::clone(self);
        tokio::spawn(async move {
            let serve = dispatch::serve_stream(&sh, stream, peer, id, cancel);
            let outcome = CatchUnwind(Box::pin(serve)).await;
            sh.unregister(id);
            sh.stats.connection_closed();
            sh.conn_ended.notify_waiters();
            // A clean end reports nothing, so it does not leave the event loop.
            match outcome {
                Ok((Ok(()), _)) => {}
                Ok((Err(e), in_file)) => blocking(|| sh.report_end(e, in_file, peer)),
                Err(_) => blocking(|| {
                    sh.report(
                        &Error::new(
                            ErrorKind::Io,
                            "internal error: a connection's task panicked",
                        ),
                        Some(peer),
                    )
                }),
            }
        });
    }

    /// Answers a connection over the cap with ERROR 17 ("receiver busy"), so its sender knows
    /// to retry later; at most [`BUSY_ANSWERS`] at once, the rest are closed unanswered.
    fn refuse_busy(self: &Arc<Self>, stream: TcpStream) {
        self.stats.connection_busy();
        if self.busy.fetch_add(1, Ordering::SeqCst) >= BUSY_ANSWERS {
            self.busy.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let sh = Arc::clone(self);
        let text = format!(
            "receiver busy: {} connections, the most it serves; retry later",
            self.conn_cap
        );
        tokio::spawn(async move {
            dispatch::refuse(Tcp(stream), Code::Busy, &text).await;
            sh.busy.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Reports how a connection ended in error: while stopping, only a transfer it cut short.
    fn report_end(&self, e: Error, in_file: bool, peer: SocketAddr) {
        match self.is_stopping() {
            true if in_file => self.report(
                &Error::new(ErrorKind::Cancelled, "transfer aborted: server stopping"),
                Some(peer),
            ),
            true => {}
            false => self.report(&e, Some(peer)),
        }
    }

    /// Records a new connection so `stop` can end it; `None` at the connection cap.
    fn register(&self) -> Option<(u64, Arc<Cancel>)> {
        let mut conns = lock(&self.conns);
        if conns.len() >= self.conn_cap {
            return None;
        }
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(Cancel::new(Arc::clone(&self.crowded)));
        if self.is_stopping() {
            cancel.stop();
        }
        conns.insert(id, Arc::clone(&cancel));
        self.note_crowding(conns.len());
        Some((id, cancel))
    }

    /// Ends connection `id`'s registration.
    fn unregister(&self, id: u64) {
        let mut conns = lock(&self.conns);
        conns.remove(&id);
        self.note_crowding(conns.len());
    }

    /// Whether `open` connections are near the cap (90% of it).
    fn note_crowding(&self, open: usize) {
        let crowded = open.saturating_mul(10) >= self.conn_cap.saturating_mul(9);
        self.crowded.store(crowded, Ordering::Relaxed);
    }
}
