//! Who the sender is: right after the hello, a token (AUTH frame, inside TLS only) or the
//! identity its client certificate proved, checked against what the server requires; a failure
//! is slowed down per address and answered with ERROR code 12 (docs/protocol.md section 1.2).

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{Code, Frame};
use crate::server::io::runtime::blocking;
use crate::server::io::wire::Stream;
use crate::server::security::throttle::pause;
use crate::server::session::conn::Connection;

/// An authenticated sender: its name, and the directory it is confined to, if any.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) dir: Option<String>,
}

/// Reads an AUTH frame if one follows the hello and decides who the sender is. `Ok(None)`: an
/// anonymous sender this server lets in. `Err`: refused, the sender told, the connection over.
pub(crate) async fn authenticate<S: Stream>(
    conn: &mut Connection<'_, S>,
) -> Result<Option<Identity>> {
    let transport = conn.wire.transport();
    if !transport.is_tls() {
        return Ok(None);
    }
    let from_cert = transport.peer_identity();
    let next = match conn.wire.ensure(1).await {
        Ok(true) => conn.wire.buffered().first().copied(),
        Ok(false) => None,
        Err(e) => return Err(Error::io("reading from the sender", e)),
    };
    let token = match next {
        Some(Frame::AUTH_TYPE) => match conn.wire.read_frame().await {
            Ok(Some(Frame::Auth { name, secret })) => Some((name, secret.0)),
            Ok(_) => None,
            Err(e) => return Err(conn.fail(e).await),
        },
        _ => None,
    };
    let sent_token = token.is_some();
    // A token is checked with PBKDF2, which takes a while on purpose: off the event loop.
    match blocking(|| decide(conn, token, from_cert)) {
        Ok(None) => Ok(None),
        Ok(Some(name)) => {
            if sent_token {
                conn.send_frame(Frame::AuthOk {
                    identity: name.clone(),
                })
                .await?;
            }
            let dir = conn.shared.guard.security.dir_of(&name);
            Ok(Some(Identity { name, dir }))
        }
        Err(why) => Err(refuse(conn, why).await),
    }
}

/// The identity the credentials prove, `None` for an anonymous sender let in, or why not.
fn decide<S: Stream>(
    conn: &Connection<'_, S>,
    token: Option<(String, String)>,
    from_cert: Option<String>,
) -> std::result::Result<Option<String>, String> {
    let guard = &conn.shared.guard;
    match (token, from_cert) {
        (Some((name, secret)), cert) => {
            let Some(tokens) = &guard.tokens else {
                return Err("this server does not accept tokens".into());
            };
            if !tokens.verify(&name, &secret) {
                return Err("wrong token".into());
            }
            match cert {
                Some(c) if c != name => Err(format!(
                    "the token names {name} but the client certificate names {c}"
                )),
                _ => Ok(Some(name)),
            }
        }
        (None, Some(cert)) => Ok(Some(cert)),
        (None, None) if guard.security.auth_required() => {
            Err("authentication required: no token given".into())
        }
        (None, None) => Ok(None),
    }
}

/// Slows the address down, tells the sender why (ERROR code 12), reads what it had already
/// sent (at most 1 MiB) so the answer is not lost to a reset, and returns the error to report.
async fn refuse<S: Stream>(conn: &mut Connection<'_, S>, why: String) -> Error {
    let shared = conn.shared;
    shared.stats.auth_failed();
    pause(shared.guard.throttle.failed(conn.peer.ip()), || {
        shared.is_stopping()
    })
    .await;
    let _ = conn
        .send_frame(Frame::Error {
            code: Code::Auth as u16,
            text: format!("authentication failed: {why}"),
        })
        .await;
    let _ = conn.wire.finish().await;
    let mut sink = vec![0u8; 16 * 1024];
    let mut budget = 1 << 20;
    while budget > 0 && !shared.is_stopping() {
        match conn.wire.read_some(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => budget -= n.min(budget),
        }
    }
    Error::new(ErrorKind::Auth, format!("authentication failed: {why}"))
}
