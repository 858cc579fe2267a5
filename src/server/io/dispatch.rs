//! Serving one accepted connection by its first byte: 0x16 starts a TLS handshake (knsock
//! inside), 0x89 the plain native protocol, anything else a kn-sock 0.3 upload; what this
//! server's security refuses is refused here, with a reason the sender can read when it can.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Code, Frame, MAGIC};
use crate::server::io::cancel::Cancel;
use crate::server::io::streams::{drain, Secured, Tcp};
use crate::server::io::wire::Stream;
use crate::server::security::throttle::pause;
use crate::server::session::conn::Connection;
use crate::server::session::legacy;
use crate::server::session::native;
use crate::server::shared::Shared;

/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves the connection; also says whether it failed inside a file.
pub(crate) async fn serve_stream(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    cancel: Arc<Cancel>,
) -> (Result<()>, bool) {
    // The first byte, like every header, must come within the header timeout.
    let cfg = &shared.config;
    let deadline = Instant::now() + cfg.header_timeout;
    let mut first = [0u8; 1];
    let wait = cfg.header_timeout.min(cfg.idle_timeout);
    let peeked = tokio::select! {
        r = tokio::time::timeout(wait, stream.peek(&mut first)) => match r {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        },
        () = cancel.stopped() => Ok(0),
    };
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
    let stream = Tcp(stream);
    match (first[0], &guard.tls) {
        (TLS_HANDSHAKE, Some(tls)) => {
            match Secured::accept(tls, stream, &peer.to_string(), deadline).await {
                Ok(s) => {
                    shared.stats.tls_handshake();
                    run(Connection::new(shared, s, peer, id, cancel)).await
                }
                Err(refused) => {
                    if refused.credential {
                        shared.stats.auth_failed();
                        pause(guard.throttle.failed(peer.ip()), || shared.is_stopping()).await;
                    }
                    (Err(refused.error), false)
                }
            }
        }
        (TLS_HANDSHAKE, None) => (
            refuse_tls(stream, "this server does not speak TLS").await,
            false,
        ),
        (b, _) if b == MAGIC[0] && guard.refuses_plain() => {
            (refuse_tls(stream, "this server requires TLS").await, false)
        }
        (b, _) if b != MAGIC[0] && guard.refuses_legacy() => {
            // kn-sock 0.3 has no way to hear a reason: the connection is closed unread.
            let e = Error::new(
                ErrorKind::Auth,
                "kn-sock 0.3 upload refused: this server requires TLS",
            );
            (Err(e), false)
        }
        _ => run(Connection::new(shared, stream, peer, id, cancel)).await,
    }
}

async fn run<S: Stream>(mut conn: Connection<'_, S>) -> (Result<()>, bool) {
    let result = serve(&mut conn).await;
    (result, conn.in_file)
}

/// Serves one connection by the protocol its first byte announces.
pub(crate) async fn serve<S: Stream>(conn: &mut Connection<'_, S>) -> Result<()> {
    let first = match conn.wire.ensure(1).await {
        Ok(false) => return Ok(()), // connected and closed: a port probe
        Ok(true) => conn.wire.buffered()[0],
        Err(e) => return Err(Error::io("reading from the sender", e)),
    };
    conn.wire.consume(1);
    match first == MAGIC[0] {
        true => native::serve(conn).await,
        false if conn.wire.transport().is_tls() => {
            let e = Error::protocol("only the knsock protocol is accepted inside TLS");
            Err(conn.fail(e).await)
        }
        false => legacy::serve(conn, first).await,
    }
}

/// Refuses a sender whose TLS does not match this server's (code 13).
async fn refuse_tls(stream: Tcp, text: &str) -> Result<()> {
    refuse(stream, Code::Tls, text).await;
    Err(Error::new(
        ErrorKind::Auth,
        format!("connection refused: {text}"),
    ))
}

/// Answers a sender this server will not serve with a refused hello reply and an ERROR frame
/// (`code`: 13 for TLS, 17 when busy), then reads what it had sent (a little, briefly) so the
/// answer is not lost to a reset, and closes.
pub(crate) async fn refuse(mut stream: Tcp, code: Code, text: &str) {
    let mut out = Vec::with_capacity(64);
    protocol::encode_hello_reply(0, 0, &mut out);
    Frame::Error {
        code: code as u16,
        text: text.to_string(),
    }
    .encode(&mut out);
    let linger = Duration::from_secs(2);
    if let Ok(Ok(())) = tokio::time::timeout(linger, stream.write_all(&out)).await {
        drain(&mut stream).await;
    }
}
