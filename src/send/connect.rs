//! Connections of the sending side: connecting (within the connect timeout, registering the
//! cancel token, securing with TLS) and retrying with backoff what a new connection may cure.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::options::{cancelled, SendOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol;
use crate::tls::{self, TlsStream};
use crate::transport::Link;

/// Runs `attempt(n)` for n = 1, 2, … while it fails in a retryable way and retries are left,
/// with [`backoff`] between attempts.
pub(crate) fn retrying<T>(
    opts: &SendOptions,
    mut attempt: impl FnMut(u32) -> Result<T>,
) -> Result<T> {
    let mut delay = opts.retry_delay;
    for n in 1.. {
        match attempt(n) {
            Err(e) if n <= opts.retries && retryable(&e) => backoff(opts, &mut delay)?,
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

/// Waits `delay` (cut short by cancellation, then `Err(Cancelled)`) and doubles it, up to a
/// minute.
pub(crate) fn backoff(opts: &SendOptions, delay: &mut Duration) -> Result<()> {
    let slept = match &opts.cancel {
        Some(c) => c.sleep(*delay),
        None => {
            std::thread::sleep(*delay);
            true
        }
    };
    *delay = (*delay * 2).min(Duration::from_secs(60));
    match slept {
        true => Ok(()),
        false => Err(cancelled()),
    }
}

/// Whether a new connection may cure the failure.
pub(crate) fn retryable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::Io
            | ErrorKind::Protocol
            | ErrorKind::Integrity
            | ErrorKind::Store
            | ErrorKind::Busy
    ) && e.peer_reason().is_none_or(|p| {
        // The receiver's own account of a broken transfer (corruption, a cut or stalled
        // connection, a receiver stopping, which may be started again, a receiver at its
        // connection cap) may be cured by a new connection; a refusal never is.
        use protocol::Code;
        [
            Code::Checksum,
            Code::Protocol,
            Code::Timeout,
            Code::StoreUnavailable,
            Code::ShuttingDown,
            Code::Busy,
        ]
        .iter()
        .any(|c| p.code == *c as u16)
    })
}

/// Connects (and registers the cancel token, which shuts the TCP socket down under TLS too),
/// secures the connection when `opts.tls` asks, runs `f` on it, and reports a failure caused by
/// cancellation as [`ErrorKind::Cancelled`].
pub(crate) fn with_connection<T>(
    host: &str,
    port: u16,
    opts: &SendOptions,
    f: impl FnOnce(Link<TlsStream>) -> Result<T>,
) -> Result<T> {
    opts.validate()?;
    if host.is_empty() {
        return Err(Error::invalid("host is empty"));
    }
    let stream = connect(host, port, opts)?;
    let secure_then_f = |stream: TcpStream| {
        let link = match &opts.tls {
            None => Link::Plain(stream),
            Some(tls) => Link::Secure(tls::connect(stream, host, tls)?),
        };
        f(link)
    };
    let result = match &opts.cancel {
        // Registered under its own id: the sends of a fan-out share one token.
        Some(c) => c.attach(&stream).and_then(|id| {
            let r = secure_then_f(stream);
            c.detach(id);
            r
        }),
        None => secure_then_f(stream),
    };
    if let Some(c) = &opts.cancel {
        if c.is_cancelled() && matches!(&result, Err(e) if e.kind() != ErrorKind::Cancelled) {
            return Err(cancelled());
        }
    }
    result
}

/// Connects to the first address of `host` that answers, within the connect timeout.
fn connect(host: &str, port: u16, opts: &SendOptions) -> Result<TcpStream> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::new(ErrorKind::Connect, format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, opts.connect_timeout) {
            Ok(s) => {
                s.set_nodelay(true)
                    .and_then(|_| s.set_read_timeout(Some(opts.timeout)))
                    .and_then(|_| s.set_write_timeout(Some(opts.timeout)))
                    .map_err(|e| Error::io("configuring the socket", e))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    let mut err = Error::io(format!("cannot connect to {host}:{port}"), e);
    if err.kind() != ErrorKind::Timeout {
        err = Error::new(ErrorKind::Connect, err.message());
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_receiver_is_retried_and_its_text_escaped() {
        let busy = protocol::peer_error(protocol::Code::Busy as u16, "full\x1b[2J; retry later");
        assert_eq!(busy.kind(), ErrorKind::Busy);
        assert!(busy
            .message()
            .starts_with("receiver busy, retry later: full"));
        assert!(!busy.message().contains('\x1b'), "{busy}");
        assert_eq!(busy.peer_reason().map(|p| p.code), Some(17));
        assert!(retryable(&busy));
        let refused = protocol::peer_error(protocol::Code::Exists as u16, "exists");
        assert!(!retryable(&refused), "a refusal is not retried");
    }
}
