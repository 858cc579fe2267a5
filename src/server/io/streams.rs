//! The streams a receiving session runs over: an accepted TCP socket on the event loop
//! ([`Tcp`]), the same inside TLS ([`Secured`]), and, for tests and fuzzing, memory.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::server::io::wire::Stream;
use crate::tls::ServerTls;

/// Ends our side of a connection this server refuses, then reads and drops what the peer had
/// sent (at most 64 KiB, for at most 2 s) before it is closed: closing with unread bytes would
/// reset the connection, and the peer could lose the answer (a refusal, a TLS alert) to it.
pub(crate) async fn drain<S: AsyncRead + AsyncWrite + Unpin>(sock: &mut S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let linger = std::time::Duration::from_secs(2);
    let _ = tokio::time::timeout(linger, async {
        let _ = sock.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut budget = 64 * 1024;
        while budget > 0 {
            match sock.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget -= n.min(budget),
            }
        }
    })
    .await;
}

/// An accepted socket. Its writes use `MSG_NOSIGNAL` (a plain write does, through std; vectored
/// writes go through `sendmsg` here rather than `writev`): a peer that is gone gives `EPIPE`,
/// never a `SIGPIPE` that would kill a C host program.
pub(crate) struct Tcp(pub(crate) TcpStream);

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use rustix::net::{sendmsg, SendAncillaryBuffer, SendFlags};
        let sock = &self.get_mut().0;
        loop {
            std::task::ready!(sock.poll_write_ready(cx))?;
            let sent = sock.try_io(Interest::WRITABLE, || {
                let mut control = SendAncillaryBuffer::default();
                sendmsg(sock, bufs, &mut control, SendFlags::NOSIGNAL).map_err(io::Error::from)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl Stream for Tcp {}

/// A TLS connection after the handshake (done by tokio-rustls), with the identity a client
/// certificate proved. Its reads take the socket 256 KiB at a time and return the plaintext of
/// every record already read, as the sender's `tls::TlsStream` does: a large read is not cut
/// into 16 KiB records, one system call each (docs/security.md has what this saves). The raw
/// buffer is given back when the connection trickles or waits.
#[cfg(feature = "tls")]
pub(crate) struct Secured {
    conn: rustls::ServerConnection,
    sock: Tcp,
    raw: Vec<u8>,
    /// `raw[start..end]` is read from the socket but not yet given to rustls.
    start: usize,
    end: usize,
    /// The socket's stream ended.
    eof: bool,
    /// Bytes the last socket read gave.
    last_read: usize,
    /// An error met after a read had plaintext to return: the next read returns it.
    failed: Option<io::Error>,
    closing: bool,
    identity: Option<String>,
}

/// Without the `tls` feature there is no TLS connection.
#[cfg(not(feature = "tls"))]
pub(crate) struct Secured {
    conn: std::convert::Infallible,
}

/// Socket bytes read at once (the sender's `tls::stream` reads as much).
#[cfg(feature = "tls")]
const RAW_SIZE: usize = 256 * 1024;

#[cfg(feature = "tls")]
impl Secured {
    /// The server's side of the handshake on `sock`, complete by `deadline`.
    pub(crate) async fn accept(
        tls: &ServerTls,
        sock: Tcp,
        peer: &str,
        deadline: std::time::Instant,
    ) -> Result<Secured, crate::tls::Refused> {
        let a = match tls.accept(sock, peer, deadline).await {
            Ok(a) => a,
            Err((refused, sock)) => {
                if let Some(mut sock) = sock {
                    drain(&mut sock).await;
                }
                return Err(refused);
            }
        };
        let (sock, conn) = a.stream.into_inner();
        Ok(Secured {
            conn,
            sock,
            raw: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            last_read: 0,
            failed: None,
            closing: false,
            identity: a.identity,
        })
    }

    /// `e` now when nothing was read, else the bytes now and `e` at the next read.
    fn fail_after(&mut self, n: usize, e: io::Error) -> Poll<io::Result<()>> {
        if n == 0 {
            return Poll::Ready(Err(e));
        }
        self.failed = Some(e);
        Poll::Ready(Ok(()))
    }

    /// Gives rustls the raw bytes read and decrypts what they complete.
    fn feed(&mut self) -> io::Result<()> {
        let mut slice = &self.raw[self.start..self.end];
        let taken = self.conn.read_tls(&mut slice)?;
        self.start += taken;
        self.conn
            .process_new_packets()
            .map(|_| ())
            .map_err(crate::tls::tls_error)
    }

    /// Sends the TLS records rustls has ready; `Pending` while the socket cannot take them.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut out = PollWriter {
                sock: &mut self.sock,
                cx,
            };
            match self.conn.write_tls(&mut out) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A socket as `io::Write` for rustls inside a poll: `WouldBlock` while it is not writable.
#[cfg(feature = "tls")]
struct PollWriter<'a, 'b> {
    sock: &'a mut Tcp,
    cx: &'a mut Context<'b>,
}

#[cfg(feature = "tls")]
impl io::Write for PollWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.sock).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.sock).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "tls")]
impl AsyncRead for Secured {
    /// Fills `buf` with as much plaintext as the socket bytes already read hold; waits for the
    /// socket only while nothing was read.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use std::io::Read;
        let this = self.get_mut();
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        let mut n = 0;
        loop {
            match this.conn.reader().read(buf.initialize_unfilled()) {
                Ok(0) if buf.remaining() > 0 => return Poll::Ready(Ok(())),
                Ok(got) => {
                    buf.advance(got);
                    n += got;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return this.fail_after(n, e),
            }
            if buf.remaining() == 0 || (n > 0 && this.start == this.end) {
                return Poll::Ready(Ok(()));
            }
            if this.start == this.end {
                if this.eof {
                    // The socket ended: rustls now reports a clean close or a truncation.
                    return match this.conn.reader().read(buf.initialize_unfilled()) {
                        Ok(got) => {
                            buf.advance(got);
                            Poll::Ready(Ok(()))
                        }
                        Err(e) => Poll::Ready(Err(e)),
                    };
                }
                if this.raw.len() < RAW_SIZE {
                    this.raw.resize(RAW_SIZE, 0);
                }
                let mut rb = ReadBuf::new(&mut this.raw);
                match Pin::new(&mut this.sock).poll_read(cx, &mut rb) {
                    Poll::Pending => {
                        // A connection that trickles or waits gives its buffer back; one in
                        // full flow keeps it.
                        if this.last_read < RAW_SIZE / 16 {
                            this.raw = Vec::new();
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return this.fail_after(n, e),
                    Poll::Ready(Ok(())) => {
                        let got = rb.filled().len();
                        (this.start, this.end, this.last_read) = (0, got, got);
                        if got == 0 {
                            this.eof = true;
                            this.raw = Vec::new();
                            let _ = this.conn.read_tls(&mut &[][..]);
                        }
                    }
                }
            }
            if let Err(e) = this.feed() {
                // Tell the peer why (rustls queued an alert), then fail.
                let _ = this.poll_push(cx);
                return this.fail_after(n, e);
            }
        }
    }
}

#[cfg(feature = "tls")]
impl AsyncWrite for Secured {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        use std::io::Write;
        let this = self.get_mut();
        // What is already encrypted goes first: rustls' buffer does not grow without bound.
        std::task::ready!(this.poll_push(cx))?;
        let n = this.conn.writer().write(buf)?;
        match this.poll_push(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_push(cx))?;
        Pin::new(&mut this.sock).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.conn.send_close_notify();
            this.closing = true;
        }
        std::task::ready!(this.poll_push(cx))?;
        Pin::new(&mut this.sock).poll_shutdown(cx)
    }
}

#[cfg(not(feature = "tls"))]
impl Secured {
    pub(crate) async fn accept(
        tls: &ServerTls,
        _: Tcp,
        _: &str,
        _: std::time::Instant,
    ) -> Result<Secured, crate::tls::Refused> {
        match *tls {}
    }
}

#[cfg(not(feature = "tls"))]
impl AsyncRead for Secured {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.conn {}
    }
}

#[cfg(not(feature = "tls"))]
impl AsyncWrite for Secured {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        match self.conn {}
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.conn {}
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.conn {}
    }
}

impl Stream for Secured {
    fn is_tls(&self) -> bool {
        true
    }

    fn peer_identity(&self) -> Option<String> {
        #[cfg(feature = "tls")]
        return self.identity.clone();
        #[cfg(not(feature = "tls"))]
        match self.conn {}
    }
}

/// A stream whose input is given whole and whose output is kept, for fuzzing and tests.
#[cfg(feature = "internals")]
pub(crate) struct MemStream {
    input: Vec<u8>,
    at: usize,
    pub(crate) output: Vec<u8>,
}

#[cfg(feature = "internals")]
impl MemStream {
    pub(crate) fn new(input: Vec<u8>) -> MemStream {
        MemStream {
            input,
            at: 0,
            output: Vec::new(),
        }
    }
}

#[cfg(feature = "internals")]
impl AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = buf.remaining().min(this.input.len() - this.at);
        buf.put_slice(&this.input[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "internals")]
impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "internals")]
impl Stream for MemStream {}
