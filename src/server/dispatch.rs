//! Serving one accepted connection by its first byte: 0x16 starts a TLS handshake (knsock
//! inside), 0x89 the plain native protocol, anything else a kn-sock 0.3 upload; what this
//! server's security refuses is refused here, with a reason the sender can read when it can.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::conn::Connection;
use super::legacy;
use super::session;
use super::shared::Shared;
use super::throttle::pause;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, read_exact_or_eof, Code, Frame, MAGIC};
use crate::transport::Transport;

/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves the connection; also says whether it failed inside a file.
pub(crate) fn serve_stream(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
) -> (Result<()>, bool) {
    // The first byte, like every header, must come within the header timeout.
    let cfg = &shared.config;
    let deadline = Instant::now() + cfg.header_timeout;
    let mut first = [0u8; 1];
    let peeked = stream
        .set_read_timeout(Some(cfg.header_timeout.min(cfg.idle_timeout)))
        .and_then(|()| stream.peek(&mut first))
        .and_then(|n| stream.set_read_timeout(Some(cfg.idle_timeout)).map(|()| n));
    match peeked {
        Ok(0) => return (Ok(()), false), // connected and closed: a port probe
        Ok(_) => {}
        Err(e) => {
            return (
                Err(Error::io("waiting for the sender's first bytes", e)),
                false,
            )
        }
    }
    let guard = &shared.guard;
    match (first[0], &guard.tls) {
        (TLS_HANDSHAKE, Some(tls)) => {
            match tls.accept(stream, &peer.to_string(), deadline, cfg.idle_timeout) {
                Ok(s) => {
                    shared.stats.tls_handshake();
                    run(Connection::new(shared, s, peer, id))
                }
                Err(refused) => {
                    if refused.credential {
                        shared.stats.auth_failed();
                        pause(guard.throttle.failed(peer.ip()), || shared.is_stopping());
                    }
                    (Err(refused.error), false)
                }
            }
        }
        (TLS_HANDSHAKE, None) => (refuse(stream, "this server does not speak TLS"), false),
        (b, _) if b == MAGIC[0] && guard.refuses_plain() => {
            (refuse(stream, "this server requires TLS"), false)
        }
        (b, _) if b != MAGIC[0] && guard.refuses_legacy() => {
            // kn-sock 0.3 has no way to hear a reason: the connection is closed unread.
            let e = Error::new(
                ErrorKind::Auth,
                "kn-sock 0.3 upload refused: this server requires TLS",
            );
            (Err(e), false)
        }
        _ => run(Connection::new(shared, stream, peer, id)),
    }
}

fn run<S: Transport>(mut conn: Connection<'_, S>) -> (Result<()>, bool) {
    let result = serve(&mut conn);
    (result, conn.in_file)
}

/// Serves one connection by the protocol its first byte announces.
pub(crate) fn serve<S: Transport>(conn: &mut Connection<'_, S>) -> Result<()> {
    let mut first = [0u8; 1];
    if !read_exact_or_eof(&mut conn.wire, &mut first)? {
        return Ok(()); // connected and closed: a port probe
    }
    match first[0] == MAGIC[0] {
        true => session::serve(conn),
        false if conn.wire.transport().is_tls() => Err(conn.fail(Error::protocol(
            "only the knsock protocol is accepted inside TLS",
        ))),
        false => legacy::serve(conn, first[0]),
    }
}

/// Answers a sender this server will not serve with a refused hello reply and an ERROR frame
/// (code 13), then reads what it had sent (a little, briefly) so the answer is not lost to a
/// reset, and closes.
fn refuse(mut stream: TcpStream, text: &str) -> Result<()> {
    let mut out = Vec::with_capacity(64);
    protocol::encode_hello_reply(0, 0, &mut out);
    Frame::Error {
        code: Code::Tls as u16,
        text: text.to_string(),
    }
    .encode(&mut out);
    let _ = crate::transport::NoSigpipe(&stream).write_all(&out);
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 4096];
    let mut budget = 64 * 1024;
    while budget > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => budget -= n.min(budget),
        }
    }
    Err(Error::new(
        ErrorKind::Auth,
        format!("connection refused: {text}"),
    ))
}
