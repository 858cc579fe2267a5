//! The streams a receiving session runs over: an accepted TCP socket on the event loop
//! ([`Tcp`]), the same inside TLS ([`Secured`]), and, for tests and fuzzing, memory.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::server::io::wire::Stream;
use crate::tls::ServerTls;

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

/// A TLS connection, after the handshake, with the identity a client certificate proved.
pub(crate) struct Secured {
    #[cfg(feature = "tls")]
    inner: tokio_rustls::server::TlsStream<Tcp>,
    #[cfg(not(feature = "tls"))]
    inner: std::convert::Infallible,
    identity: Option<String>,
}

impl Secured {
    /// The server's side of the handshake on `sock`, complete by `deadline`.
    #[cfg(feature = "tls")]
    pub(crate) async fn accept(
        tls: &ServerTls,
        sock: Tcp,
        peer: &str,
        deadline: std::time::Instant,
    ) -> Result<Secured, crate::tls::Refused> {
        let a = tls.accept(sock, peer, deadline).await?;
        Ok(Secured {
            inner: a.stream,
            identity: a.identity,
        })
    }

    #[cfg(not(feature = "tls"))]
    pub(crate) async fn accept(
        tls: &ServerTls,
        _: Tcp,
        _: &str,
        _: std::time::Instant,
    ) -> Result<Secured, crate::tls::Refused> {
        match *tls {}
    }
}

/// Calls `method` on the TLS stream inside (which exists only with the `tls` feature).
macro_rules! inner {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        #[cfg(feature = "tls")]
        {
            Pin::new(&mut $self.get_mut().inner).$method($($arg),*)
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = ($($arg),*);
            match $self.inner {}
        }
    }};
}

impl AsyncRead for Secured {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        inner!(self.poll_read(cx, buf))
    }
}

impl AsyncWrite for Secured {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        inner!(self.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        inner!(self.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        inner!(self.poll_shutdown(cx))
    }
}

impl Stream for Secured {
    fn is_tls(&self) -> bool {
        true
    }

    fn peer_identity(&self) -> Option<String> {
        self.identity.clone()
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
