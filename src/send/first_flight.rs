//! The optimistic first flight (docs/protocol.md section 1.3) on the sending side: sessions send
//! their hello, token, offers and small files' content without waiting for the receiver's hello
//! reply. A receiver that does not take it (an earlier release) fails the connection before any
//! OFFER; the send then connects again without it, and the receiver is remembered for a while so
//! the next sends to it do not pay that twice.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::connect::with_connection;
use super::options::SendOptions;
use crate::error::Result;
use crate::protocol::Offer;
use crate::sync::lock;
use crate::tls::TlsStream;
use crate::transport::Link;

/// How a session that may send a first flight ended.
pub(crate) enum Ran<T> {
    Done(T),
    /// The receiver did not take the first flight; nothing was stored. `said`: its hello reply
    /// said so (rather than the connection ending before a reply).
    Refused {
        said: bool,
    },
}

/// How long a receiver that did not take a first flight is sent to without one.
const REMEMBERED: Duration = Duration::from_secs(600);

/// Receivers (host, port) that did not take a first flight, and when they said so.
static WITHOUT: Mutex<Option<HashMap<(String, u16), Instant>>> = Mutex::new(None);

/// Connects to `host:port` and runs `session(link, early)` on the connection, with a first
/// flight unless the receiver is known not to take one; when it does not, once more on a new
/// connection without it.
pub(crate) fn with_session<T>(
    host: &str,
    port: u16,
    opts: &SendOptions,
    mut session: impl FnMut(Link<TlsStream>, bool) -> Result<Ran<T>>,
) -> Result<T> {
    let key = (host.to_string(), port);
    let early = lock(&WITHOUT)
        .as_ref()
        .and_then(|m| m.get(&key))
        .is_none_or(|at| at.elapsed() >= REMEMBERED);
    if early {
        match with_connection(host, port, opts, |link| session(link, true))? {
            Ran::Done(t) => return Ok(t),
            Ran::Refused { said } => {
                if said {
                    let mut without = lock(&WITHOUT);
                    let without = without.get_or_insert_with(HashMap::new);
                    without.retain(|_, at| at.elapsed() < REMEMBERED);
                    without.insert(key, Instant::now());
                }
            }
        }
    }
    match with_connection(host, port, opts, |link| session(link, false))? {
        Ran::Done(t) => Ok(t),
        Ran::Refused { .. } => {
            unreachable!("a session without a first flight is never refused one")
        }
    }
}

/// An upper bound of the bytes an OFFER takes on the wire, with its content and DONE when it is
/// sent `eager`ly (zstd may add a little to content that does not compress).
pub(crate) fn cost(offer: &Offer, eager: bool) -> u64 {
    let frame = 64 + offer.name.len() as u64 + offer.digest.len() as u64;
    match eager {
        true => frame + offer.size + offer.size / 128 + 1024,
        false => frame,
    }
}

thread_local! {
    /// Round trips waited for by the sessions this thread ran, for the tests that count them.
    static TURNS: Cell<u32> = const { Cell::new(0) };
}

/// Adds a finished session's round trips to this thread's count.
pub(crate) fn count_turns(turns: u32) {
    TURNS.with(|t| t.set(t.get() + turns));
}

/// The round trips this thread's sessions waited for since the last call (the TCP and TLS
/// handshakes not included), and starts counting again.
#[cfg(feature = "internals")]
pub(crate) fn take_turns() -> u32 {
    TURNS.with(|t| t.replace(0))
}
