//! Frames (docs/protocol.md section 2): every message after the hello but file content, with
//! each length checked before anything is allocated.

use std::io::{self, Read, Write};

pub(super) use super::cursor::Cursor;
use super::types::{Offer, Secret, MAX_FRAME, MAX_IDENTITY, MAX_NAME, MAX_SECRET, MAX_TEXT};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Offer(Offer),
    Accept {
        offset: u64,
    },
    Reject {
        code: u16,
        text: String,
    },
    Done {
        algorithm: u8,
        digest: Vec<u8>,
    },
    /// File `seq` (the index of its OFFER on the connection) is verified, durable and in place.
    Ok {
        seq: u32,
        name: String,
    },
    Bye,
    Error {
        code: u16,
        text: String,
    },
    /// File `seq` was received but not kept.
    Failed {
        seq: u32,
        code: u16,
        text: String,
    },
    /// The receiver already holds this exact file: no content follows.
    Skip,
    /// The frames that follow were sent before the hello reply (capability bit 6, docs/protocol.md
    /// section 1.3): a receiver without the bit fails on this frame, before any OFFER.
    Early,
    /// Answers a probe (a QUICK offer with capability bit 7): the file differs, nothing is held;
    /// the sender offers it again to send it.
    Changed,
    /// A token, inside TLS, right after the hello (docs/protocol.md section 1.2).
    Auth {
        name: String,
        secret: Secret,
    },
    /// The token (or client certificate) was accepted; the identity the sender now has.
    AuthOk {
        identity: String,
    },
    /// The content (raw or zstd, as after ACCEPT) of accepted file `seq` follows.
    Data {
        seq: u32,
    },
    /// Accepted (offset 0), and the receiver holds an old copy of `old_size` bytes to build a
    /// delta against.
    Basis {
        old_size: u64,
    },
    /// The sender asks for the old copy's signature of file `seq`; its delta follows.
    Delta {
        seq: u32,
    },
    /// Part of a signature: chunk lengths and XXH3-64 hashes; an empty one ends it.
    Sig(Vec<(u32, u64)>),
    /// Delta: copy `count` chunks of the old copy from chunk `index` on.
    Copy {
        index: u32,
        count: u32,
    },
    /// Delta: new bytes (zstd-compressed when the OFFER's encoding is 1).
    Literal(Vec<u8>),
    /// Fetch: what the client asks for (section 3.4).
    Fetch(super::types::FetchRequest),
    /// Fetch: one listed file, `seq` numbering the list from 0.
    File {
        seq: u32,
        offer: Offer,
    },
    /// Fetch: the list is complete, `count` files.
    Listed {
        count: u32,
    },
    /// Fetch: send file `seq`'s content from `offset`.
    Want {
        seq: u32,
        offset: u64,
    },
    /// Fetch: requested name `index` gives nothing.
    Missing {
        index: u16,
        code: u16,
        text: String,
    },
}

pub(super) mod ty {
    pub const OFFER: u8 = 1;
    pub const ACCEPT: u8 = 2;
    pub const REJECT: u8 = 3;
    pub const DONE: u8 = 4;
    pub const OK: u8 = 5;
    pub const BYE: u8 = 6;
    pub const ERROR: u8 = 7;
    pub const FAILED: u8 = 8;
    pub const SKIP: u8 = 9;
    pub const AUTH: u8 = 10;
    pub const AUTH_OK: u8 = 11;
    pub const DATA: u8 = 12;
    pub const BASIS: u8 = 13;
    pub const DELTA: u8 = 14;
    pub const SIG: u8 = 15;
    pub const COPY: u8 = 16;
    pub const LITERAL: u8 = 17;
    pub const FETCH: u8 = 20;
    pub const FILE: u8 = 21;
    pub const LISTED: u8 = 22;
    pub const WANT: u8 = 23;
    pub const MISSING: u8 = 24;
    pub const EARLY: u8 = 25;
    pub const CHANGED: u8 = 26;
}

/// Cuts `text` to at most `max` bytes on a character boundary, so a long reason never breaks
/// the frame bound.
pub fn truncate_text(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Frame {
    /// The type byte of AUTH, which a receiver looks for right after the hello.
    pub const AUTH_TYPE: u8 = ty::AUTH;

    /// Appends the frame's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 5]);
        let t = match self {
            Frame::Offer(o) => {
                out.extend_from_slice(&o.size.to_be_bytes());
                out.extend_from_slice(&o.mtime_secs.to_be_bytes());
                out.extend_from_slice(&o.mtime_nanos.to_be_bytes());
                out.extend_from_slice(&o.mode.to_be_bytes());
                out.push(o.algorithm);
                match &o.raw_name {
                    Some(raw) => put_bytes16(out, &raw[..raw.len().min(MAX_NAME)]),
                    None => put_str16(out, truncate_text(&o.name, MAX_NAME)),
                }
                out.push(o.digest.len() as u8);
                out.extend_from_slice(&o.digest);
                out.push(o.encoding);
                if o.flags != 0 {
                    out.push(o.flags);
                }
                ty::OFFER
            }
            Frame::Accept { offset } => {
                out.extend_from_slice(&offset.to_be_bytes());
                ty::ACCEPT
            }
            Frame::Reject { code, text } | Frame::Error { code, text } => {
                out.extend_from_slice(&code.to_be_bytes());
                put_str16(out, truncate_text(text, MAX_TEXT));
                if matches!(self, Frame::Reject { .. }) {
                    ty::REJECT
                } else {
                    ty::ERROR
                }
            }
            Frame::Done { algorithm, digest } => {
                out.push(*algorithm);
                out.push(digest.len() as u8);
                out.extend_from_slice(digest);
                ty::DONE
            }
            Frame::Ok { seq, name } => {
                out.extend_from_slice(&seq.to_be_bytes());
                put_str16(out, truncate_text(name, MAX_NAME));
                ty::OK
            }
            Frame::Failed { seq, code, text } => {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                put_str16(out, truncate_text(text, MAX_TEXT));
                ty::FAILED
            }
            Frame::Bye => ty::BYE,
            Frame::Skip => ty::SKIP,
            Frame::Early => ty::EARLY,
            Frame::Changed => ty::CHANGED,
            Frame::Auth { name, secret } => {
                put_str16(out, truncate_text(name, MAX_IDENTITY));
                put_str16(out, truncate_text(&secret.0, MAX_SECRET));
                ty::AUTH
            }
            Frame::AuthOk { identity } => {
                put_str16(out, truncate_text(identity, MAX_IDENTITY));
                ty::AUTH_OK
            }
            other => match other.encode_fetch(out) {
                Some(t) => t,
                None => other.encode_delta(out),
            },
        };
        let len = (out.len() - start - 5) as u32;
        out[start] = t;
        out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(64);
        self.encode(&mut buf);
        w.write_all(&buf)
    }

    /// Reads one frame. `Ok(None)` is a clean end of stream before the frame's first byte.
    /// Never allocates more than [`MAX_FRAME`] bytes, whatever the peer sends.
    pub fn read_from(r: &mut impl Read) -> Result<Option<Frame>> {
        let mut head = [0u8; 5];
        if !read_exact_or_eof(r, &mut head)? {
            return Ok(None);
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return Err(Error::protocol(format!(
                "frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)
            .map_err(|e| Error::io("reading a frame", eof_is_protocol(e)))?;
        let mut p = Cursor(&payload);
        let frame = match head[0] {
            ty::OFFER => Frame::Offer(p.offer()?),
            ty::ACCEPT => Frame::Accept { offset: p.u64()? },
            ty::REJECT => Frame::Reject {
                code: p.u16()?,
                text: p.str16(MAX_TEXT, "reason")?,
            },
            ty::DONE => Frame::Done {
                algorithm: p.u8()?,
                digest: p.digest()?,
            },
            ty::OK => Frame::Ok {
                seq: p.u32()?,
                name: p.str16(MAX_NAME, "name")?,
            },
            ty::FAILED => Frame::Failed {
                seq: p.u32()?,
                code: p.u16()?,
                text: p.str16(MAX_TEXT, "reason")?,
            },
            ty::BYE => Frame::Bye,
            ty::SKIP => Frame::Skip,
            ty::EARLY => Frame::Early,
            ty::CHANGED => Frame::Changed,
            ty::ERROR => Frame::Error {
                code: p.u16()?,
                text: p.str16(MAX_TEXT, "error text")?,
            },
            ty::AUTH => Frame::Auth {
                name: p.str16(MAX_IDENTITY, "token name")?,
                secret: Secret(p.str16(MAX_SECRET, "token secret")?),
            },
            ty::AUTH_OK => Frame::AuthOk {
                identity: p.str16(MAX_IDENTITY, "identity")?,
            },
            t @ ty::DATA..=ty::LITERAL => Frame::decode_delta(t, &mut p)?,
            t @ ty::FETCH..=ty::MISSING => Frame::decode_fetch(t, &mut p)?,
            t => return Err(Error::protocol(format!("unknown frame type {t}"))),
        };
        if !p.0.is_empty() {
            return Err(Error::protocol(format!(
                "frame type {} has {} bytes more than its fields",
                head[0],
                p.0.len()
            )));
        }
        Ok(Some(frame))
    }
}

pub(super) fn put_str16(out: &mut Vec<u8>, s: &str) {
    put_bytes16(out, s.as_bytes());
}

fn put_bytes16(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first byte.
pub fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::protocol(
                    "connection closed in the middle of a frame",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading from the peer", e)),
        }
    }
    Ok(true)
}

pub(crate) fn eof_is_protocol(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(e.kind(), "connection closed early")
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::protocol::types::{ALGO_XXH3_128, ENCODING_ZSTD};

    fn round_trip(f: Frame) {
        let mut buf = Vec::new();
        f.encode(&mut buf);
        let back = Frame::read_from(&mut &buf[..]).unwrap().unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn frames_round_trip() {
        round_trip(Frame::Offer(Offer {
            size: u64::MAX,
            mtime_secs: -5,
            mtime_nanos: 999_999_999,
            mode: 0o644,
            algorithm: ALGO_XXH3_128,
            name: "dir/ünïcode.txt".into(),
            raw_name: None,
            digest: vec![7; 16],
            encoding: ENCODING_ZSTD,
            flags: 3,
        }));
        round_trip(Frame::Data { seq: 9 });
        round_trip(Frame::Basis { old_size: 1 << 40 });
        round_trip(Frame::Delta { seq: 2 });
        round_trip(Frame::Sig(vec![(4096, 7), (1, u64::MAX)]));
        round_trip(Frame::Sig(vec![]));
        round_trip(Frame::Copy { index: 1, count: 2 });
        round_trip(Frame::Literal(vec![1, 2, 3]));
        round_trip(Frame::Skip);
        round_trip(Frame::Early);
        round_trip(Frame::Changed);
        round_trip(Frame::Auth {
            name: "alice".into(),
            secret: Secret("s3cret".into()),
        });
        round_trip(Frame::AuthOk {
            identity: "alice".into(),
        });
        round_trip(Frame::Accept { offset: 7 });
        round_trip(Frame::Reject {
            code: 1,
            text: "no".into(),
        });
        round_trip(Frame::Done {
            algorithm: 1,
            digest: vec![9; 16],
        });
        round_trip(Frame::Ok {
            seq: 3,
            name: "a".into(),
        });
        round_trip(Frame::Failed {
            seq: 4,
            code: 6,
            text: "bad".into(),
        });
        round_trip(Frame::Bye);
        round_trip(Frame::Error {
            code: 9,
            text: "bad".into(),
        });
    }

    #[test]
    fn an_offer_has_one_encoding_an_explicit_zero_flags_byte_is_refused() {
        let mut buf = Vec::new();
        Frame::Offer(Offer::new("a", 5)).encode(&mut buf);
        buf.push(0);
        buf[4] += 1; // the payload length now counts the extra byte
        let e = Frame::read_from(&mut &buf[..]).unwrap_err();
        assert!(e.message().contains("flags byte present but 0"), "{e}");
    }

    #[test]
    fn a_name_that_is_not_utf8_decodes_with_its_bytes_kept() {
        let offer = Offer {
            raw_name: Some(b"caf\xe9\n".to_vec()),
            ..Offer::new("", 5)
        };
        let mut buf = Vec::new();
        Frame::Offer(offer.clone()).encode(&mut buf);
        match Frame::read_from(&mut &buf[..]).unwrap() {
            Some(Frame::Offer(o)) => {
                assert_eq!(o.raw_name, offer.raw_name);
                assert_eq!(o.name, "caf\\xe9\\n");
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn oversized_and_malformed_frames_are_protocol_errors() {
        let huge = [ty::OFFER, 0xff, 0xff, 0xff, 0xff];
        let e = Frame::read_from(&mut &huge[..]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("exceeds"), "{e}");

        let unknown = [42, 0, 0, 0, 0];
        let e = Frame::read_from(&mut &unknown[..]).unwrap_err();
        assert!(e.message().contains("unknown frame type 42"), "{e}");

        let short = [ty::ACCEPT, 0, 0, 0, 2, 0, 0];
        let e = Frame::read_from(&mut &short[..]).unwrap_err();
        assert!(e.message().contains("shorter"), "{e}");

        let long = [ty::BYE, 0, 0, 0, 1, 0];
        let e = Frame::read_from(&mut &long[..]).unwrap_err();
        assert!(e.message().contains("more than its fields"), "{e}");

        let truncated = [ty::ACCEPT, 0, 0];
        let e = Frame::read_from(&mut &truncated[..]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);

        assert!(Frame::read_from(&mut &[][..]).unwrap().is_none());
    }

    #[test]
    fn long_text_is_truncated_on_a_char_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let t = truncate_text(&text, MAX_TEXT);
        assert!(t.len() <= MAX_TEXT && t.is_char_boundary(t.len()));
        round_trip(Frame::Reject {
            code: 1,
            text: t.to_string(),
        });
    }
}
