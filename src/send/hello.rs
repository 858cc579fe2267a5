//! The start of a sending session (docs/protocol.md sections 1, 1.2 and 1.3): the hello with
//! the capabilities the files and options call for, the token, and the EARLY frame of a first
//! flight; then the receiver's reply, read before the first offer or, after a first flight,
//! when the first answer is needed.

use std::io::Write;

use super::first_flight::Ran;
use super::options::SendOptions;
use super::session::{unexpected, Session};
use crate::error::{Error, Result};
use crate::protocol::{self, Frame, Hello};
use crate::transport::Transport;

/// [`protocol::EARLY_MAX`] as a byte count of the wire.
const EARLY_MAX: u64 = protocol::EARLY_MAX as u64;

impl<S: Transport> Session<S> {
    /// Sends the hello, with `extra` capabilities besides those the files and options call
    /// for, and the token when there is one. Without the first flight, reads the reply (and the
    /// token's answer) when the capabilities decide the first offer; with it, sends EARLY and
    /// goes on as if every bit asked for were granted (section 1.3).
    pub(super) fn hello(&mut self, sizes: &[u64], opts: &SendOptions, extra: u32) -> Result<()> {
        // Eager offers pay off for a list of files, and only when each file need not wait for
        // its answer (stop_on_error). Advertised only when used: the receiver applies the rule
        // to every offer once both sides have the bit. Pipelined decisions likewise, and for
        // the quick check; delta when a file is large enough for one. A first flight sends a
        // small file eagerly; probes go ahead of a quick check.
        let mut caps = extra;
        let files = sizes.len();
        if files > 1 && !opts.stop_on_error {
            caps |= protocol::CAP_EAGER | protocol::CAP_PIPELINE;
        }
        let large = sizes.iter().any(|s| *s >= protocol::DELTA_MIN);
        if opts.skip_unchanged || (opts.delta && large) {
            caps |= protocol::CAP_PIPELINE;
        }
        if opts.skip_unchanged && !opts.checksum {
            caps |= protocol::CAP_PROBE;
        }
        if opts.delta && large {
            caps |= protocol::CAP_DELTA;
        }
        if opts.compress {
            caps |= protocol::CAP_ZSTD;
        }
        if self.early {
            caps |= protocol::CAP_EARLY;
        }
        if self.early && (files == 1 || !opts.stop_on_error) {
            caps |= protocol::CAP_EAGER;
        }
        let mut hello = Vec::with_capacity(16);
        Hello::ours(caps).encode(&mut hello);
        if let Some(token) = &opts.token {
            crate::tls::auth_frame(token)?.encode(&mut hello);
            self.auth_pending = true;
        }
        if self.early {
            Frame::Early.encode(&mut hello);
            self.caps = caps;
        }
        self.wire
            .write_all(&hello)
            .map_err(|e| Error::io("sending the hello", e))?;
        if !self.early && (caps != 0 || self.auth_pending) {
            self.flush()?;
            self.read_hello()?;
        }
        Ok(())
    }

    /// Makes room for `next` more bytes of a first flight: past [`protocol::EARLY_MAX`] bytes
    /// written, the hello reply is read first, so a receiver that refuses the connection reads
    /// all we sent and its reason is not lost to a reset.
    pub(super) fn early_room(&mut self, next: u64) -> Result<()> {
        if self.early && !self.hello_done && self.wire.written() + next > EARLY_MAX {
            self.flush()?;
            self.read_hello()?;
        }
        Ok(())
    }

    /// How the receiver answered a first flight it did not take, if it did not.
    pub(super) fn refused_early<T>(&self) -> Option<Ran<T>> {
        self.no_first_flight.map(|said| Ran::Refused { said })
    }

    /// Reads the receiver's hello reply once: the version and the capabilities both sides have;
    /// then the answer to the token, if one went out. After a first flight the reply must grant
    /// it (bit 6) and so every bit asked for; a reply without it, or a connection that ends
    /// before its reply, is recorded for the caller to connect again without it.
    pub(super) fn read_hello(&mut self) -> Result<()> {
        if self.hello_done {
            return Ok(());
        }
        let reply = match protocol::read_hello_reply(&mut self.wire) {
            Err(e) if self.early && cut_short(&e) => {
                self.no_first_flight = Some(false);
                return Err(e);
            }
            reply => reply?,
        };
        match reply {
            (0, _) => {
                return Err(match Frame::read_from(&mut self.wire) {
                    Ok(Some(Frame::Error { code, text })) => protocol::peer_error(code, text),
                    _ => Error::protocol("the receiver refused our protocol version"),
                })
            }
            (v, _) if v != protocol::VERSION_MAX => {
                return Err(Error::protocol(format!(
                    "receiver chose unknown version {v}"
                )))
            }
            (_, caps) if self.early && caps & protocol::CAP_EARLY == 0 => {
                self.no_first_flight = Some(true);
                return Err(Error::protocol(
                    "the receiver does not take a first flight (capability bit 6)",
                ));
            }
            (_, caps) if self.early && caps != self.caps => {
                return Err(Error::protocol(format!(
                    "the receiver granted the first flight with capabilities {caps:#x}, not the \
                     {:#x} asked for",
                    self.caps
                )))
            }
            (_, caps) => self.caps = caps,
        }
        self.hello_done = true;
        if std::mem::take(&mut self.auth_pending) {
            // No offer is read before the token is accepted: a wrong one ends the connection.
            match self.next_frame()? {
                Frame::AuthOk { .. } => {}
                Frame::Error { code, text } => return Err(protocol::peer_error(code, text)),
                f => return Err(unexpected(&f, "AUTH_OK")),
            }
        }
        Ok(())
    }
}

/// Whether the connection ended (closed or reset) under a read or write: what an earlier
/// release's receiver does after the EARLY frame it does not know.
fn cut_short(e: &Error) -> bool {
    use std::error::Error as _;
    use std::io::ErrorKind as K;
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|s| {
            matches!(
                s.kind(),
                K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
            )
        })
}
