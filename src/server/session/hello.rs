//! The start of a native connection (docs/protocol.md sections 1 and 1.3): the hello, its
//! reply with the capabilities both sides have, and the EARLY frame that opens an optimistic
//! first flight.

use crate::error::{Error, Result};
use crate::protocol::{self, Code, Frame, Hello};
use crate::server::io::wire::{Stream, Wire};
use crate::server::session::conn::Connection;

/// Reads a hello whose first magic byte was read: decoded once whole.
pub(super) async fn read_hello<S: Stream>(wire: &mut Wire<S>) -> Result<Hello> {
    let io = |e| Error::io("reading the hello", e);
    let eof = || {
        io(protocol::eof_is_protocol(
            std::io::ErrorKind::UnexpectedEof.into(),
        ))
    };
    if !wire.ensure(13).await.map_err(io)? {
        return Err(eof());
    }
    let b = wire.buffered();
    // An extension over the limit is refused by the decoder, before it is waited for.
    let whole = match u16::from_be_bytes([b[11], b[12]]) {
        len if len > protocol::MAX_EXT => 13,
        len => 13 + len as usize,
    };
    if !wire.ensure(whole).await.map_err(io)? {
        return Err(eof());
    }
    let hello = Hello::read_after_first_byte(&mut &wire.buffered()[..whole]);
    wire.consume(whole);
    hello
}

/// Answers the hello: the version and the capabilities both sides have (zstd only with a
/// decoder for it).
pub(super) async fn answer_hello<S: Stream>(
    conn: &mut Connection<'_, S>,
    hello: &Hello,
    zstd: bool,
) -> Result<u32> {
    let mut out = Vec::with_capacity(64);
    let Some(version) = hello.negotiate() else {
        let text = format!(
            "unsupported protocol versions {}..={}; this receiver speaks {}..={}",
            hello.min_version,
            hello.max_version,
            protocol::VERSION_MIN,
            protocol::VERSION_MAX
        );
        protocol::encode_hello_reply(0, 0, &mut out);
        Frame::Error {
            code: Code::Version as u16,
            text: text.clone(),
        }
        .encode(&mut out);
        let _ = conn.send(&out).await;
        return Err(Error::protocol(text));
    };
    let config = &conn.shared.config;
    let caps = grant(
        hello.caps,
        zstd,
        config.security.allow_fetch,
        config.withheld_caps,
    );
    protocol::encode_hello_reply(version, caps, &mut out);
    conn.send(&out).await?;
    Ok(caps)
}

/// The capabilities granted to a sender asking for `asked`: always eager offers, pipelined
/// decisions, delta, streams, probes and the first flight; zstd and fetch when allowed. Delta and
/// probes only with pipelined decisions; the first flight only when every other bit asked for is
/// granted, so its early frames mean what the sender meant. `withheld` bits are never granted.
pub(crate) fn grant(asked: u32, zstd: bool, fetch: bool, withheld: u32) -> u32 {
    use protocol::*;
    let mut ours = CAP_EAGER | CAP_PIPELINE | CAP_DELTA | CAP_STREAM | CAP_PROBE | CAP_EARLY;
    ours |= [0, CAP_ZSTD][usize::from(zstd)];
    ours |= [0, CAP_FETCH][usize::from(fetch)];
    ours &= !withheld;
    let mut caps = asked & ours;
    if caps & CAP_PIPELINE == 0 {
        caps &= !(CAP_DELTA | CAP_PROBE);
    }
    if asked & !CAP_EARLY != caps & !CAP_EARLY {
        caps &= !CAP_EARLY;
    }
    caps
}

/// After the hello reply (and AUTH): a sender that asked for the first flight (bit 6) sent EARLY
/// next. Granted, the frame is read and the early frames follow as any others. Not granted, the
/// sender is told to connect again without it, and what it already sent is read and dropped so
/// the answer is not lost to a reset.
pub(super) async fn first_flight<S: Stream>(
    conn: &mut Connection<'_, S>,
    asked: u32,
    caps: u32,
) -> Result<()> {
    if asked & protocol::CAP_EARLY == 0 {
        return Ok(());
    }
    if caps & protocol::CAP_EARLY == 0 {
        let e = Error::protocol(
            "the first flight needs capabilities this receiver did not grant: connect again \
             without capability bit 6",
        );
        return Err(conn.fail_and_drain(e).await);
    }
    match conn.wire.read_frame().await {
        Ok(Some(Frame::Early)) => Ok(()),
        Ok(f) => {
            let e = format!("expected EARLY after the hello (capability bit 6), got {f:?}");
            Err(conn.fail(Error::protocol(e)).await)
        }
        Err(e) => Err(conn.fail(e).await),
    }
}

#[cfg(test)]
mod tests {
    use super::grant;
    use crate::protocol::*;

    #[test]
    fn the_first_flight_is_granted_only_with_every_other_bit_asked_for() {
        let asked = CAP_EAGER | CAP_PIPELINE | CAP_PROBE | CAP_EARLY;
        assert_eq!(grant(asked, true, false, 0), asked);
        let zstd = asked | CAP_ZSTD;
        assert_eq!(grant(zstd, true, false, 0), zstd);
        // No decoder left for zstd: everything else, but no first flight.
        assert_eq!(grant(zstd, false, false, 0), asked & !CAP_EARLY);
        // A bit from a later version this receiver does not know.
        assert_eq!(grant(asked | 1 << 20, true, false, 0), asked & !CAP_EARLY);
        // A receiver acting as an earlier release.
        let old = grant(asked, true, false, CAP_PROBE | CAP_EARLY);
        assert_eq!(old, CAP_EAGER | CAP_PIPELINE);
    }

    #[test]
    fn probes_and_delta_need_pipelined_decisions() {
        let asked = CAP_PROBE | CAP_DELTA | CAP_EAGER;
        assert_eq!(grant(asked, true, true, 0), CAP_EAGER);
    }
}
