//! The knsock wire protocol, version 1, exactly as `docs/protocol.md` writes it down: the hello,
//! the frames, their bounds, and the rules for names.

use std::io::{self, Read, Write};

use crate::error::{Error, ErrorKind, Result};

/// The first eight bytes of every native connection. `0x89` can never start a UTF-8 file name,
/// which is how a receiver tells knsock from a kn-sock 0.3 upload.
pub const MAGIC: [u8; 8] = *b"\x89KNSOCK\0";
pub const VERSION_MIN: u16 = 1;
pub const VERSION_MAX: u16 = 1;

pub const MAX_FRAME: u32 = 65_536;
pub const MAX_EXT: u16 = 1024;
pub const MAX_TEXT: usize = 1024;
pub const MAX_NAME: usize = 4096;
pub const MAX_COMPONENTS: usize = 64;
pub const MAX_COMPONENT: usize = 255;
pub const MAX_DIGEST: usize = 64;

/// Capability bit in the hello extension: the side can send or receive zstd content.
pub const CAP_ZSTD: u32 = 1;
/// Capability bit: eager offers. When both sides have it, the content of a small file (see
/// [`Offer::is_eager`]) follows its OFFER at once, without waiting for ACCEPT, and the receiver
/// answers only with the file's verdict (OK, or FAILED after reading and dropping the content).
/// This takes the round trip per file out of a batch of small files.
pub const CAP_EAGER: u32 = 2;
/// The largest file sent eagerly: what a receiver may have to read and drop when it refuses.
pub const EAGER_MAX: u64 = 64 * 1024;
/// Content encodings of an OFFER.
pub const ENCODING_RAW: u8 = 0;
pub const ENCODING_ZSTD: u8 = 1;

/// Checksum algorithm 1: XXH3-128, 16 bytes big-endian.
pub const ALGO_XXH3_128: u8 = 1;
/// Prefix reserved for the receiver's temporary files; no name may use it.
pub const TEMP_PREFIX: &str = ".knsock-";

/// REJECT and ERROR codes (docs/protocol.md section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Code {
    Validator = 1,
    Exists = 2,
    NoSpace = 3,
    TooLarge = 4,
    BadName = 5,
    Checksum = 6,
    Io = 7,
    ShuttingDown = 8,
    Protocol = 9,
    Version = 10,
    Timeout = 11,
}

impl Code {
    pub fn from_u16(v: u16) -> Option<Code> {
        use Code::*;
        Some(match v {
            1 => Validator,
            2 => Exists,
            3 => NoSpace,
            4 => TooLarge,
            5 => BadName,
            6 => Checksum,
            7 => Io,
            8 => ShuttingDown,
            9 => Protocol,
            10 => Version,
            11 => Timeout,
            _ => return None,
        })
    }

    /// The sender's error kind for a refusal with this code.
    pub fn kind(self) -> ErrorKind {
        match self {
            Code::NoSpace => ErrorKind::NoSpace,
            Code::Checksum => ErrorKind::Integrity,
            Code::Io => ErrorKind::Io,
            Code::Protocol | Code::Version => ErrorKind::Protocol,
            Code::Timeout => ErrorKind::Timeout,
            _ => ErrorKind::Rejected,
        }
    }

    /// The wire code a receiver sends when it fails a file with an error of this kind.
    pub fn for_kind(kind: ErrorKind) -> Code {
        match kind {
            ErrorKind::NoSpace => Code::NoSpace,
            ErrorKind::Integrity => Code::Checksum,
            ErrorKind::Protocol => Code::Protocol,
            ErrorKind::Timeout => Code::Timeout,
            ErrorKind::Rejected => Code::Validator,
            _ => Code::Io,
        }
    }
}

/// What a sender announces about a file before any of its content flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub size: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
    pub mode: u32,
    pub algorithm: u8,
    pub name: String,
    /// The content's digest when the sender asks to skip an identical file; empty otherwise.
    pub digest: Vec<u8>,
    /// [`ENCODING_RAW`], or [`ENCODING_ZSTD`] when both sides have [`CAP_ZSTD`].
    pub encoding: u8,
}

impl Offer {
    /// Whether this offer's content follows it at once when [`CAP_EAGER`] was negotiated: a file
    /// of at most [`EAGER_MAX`] bytes offered without a digest (an offer with a digest may be
    /// answered SKIP, so its content waits for ACCEPT). Sender and receiver apply the same rule.
    pub fn is_eager(&self) -> bool {
        self.size <= EAGER_MAX && self.digest.is_empty()
    }
}

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
}

mod ty {
    pub const OFFER: u8 = 1;
    pub const ACCEPT: u8 = 2;
    pub const REJECT: u8 = 3;
    pub const DONE: u8 = 4;
    pub const OK: u8 = 5;
    pub const BYE: u8 = 6;
    pub const ERROR: u8 = 7;
    pub const FAILED: u8 = 8;
    pub const SKIP: u8 = 9;
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
                put_str16(out, truncate_text(&o.name, MAX_NAME));
                out.push(o.digest.len() as u8);
                out.extend_from_slice(&o.digest);
                out.push(o.encoding);
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
            ty::OFFER => Frame::Offer(Offer {
                size: p.u64()?,
                mtime_secs: p.u64()? as i64,
                mtime_nanos: p.u32()?,
                mode: p.u32()?,
                algorithm: p.u8()?,
                name: p.str16(MAX_NAME, "name")?,
                digest: p.digest()?,
                encoding: p.u8()?,
            }),
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
            ty::ERROR => Frame::Error {
                code: p.u16()?,
                text: p.str16(MAX_TEXT, "error text")?,
            },
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

/// The hello a sender opens with, and the reply a receiver gives (section 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub min_version: u16,
    pub max_version: u16,
    /// Capability bits ([`CAP_ZSTD`]), carried in the extension block.
    pub caps: u32,
}

impl Hello {
    pub fn ours(caps: u32) -> Hello {
        Hello {
            min_version: VERSION_MIN,
            max_version: VERSION_MAX,
            caps,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.min_version.to_be_bytes());
        out.extend_from_slice(&self.max_version.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&self.caps.to_be_bytes());
    }

    /// Reads a hello whose first magic byte the receiver has already consumed.
    pub fn read_after_first_byte(r: &mut impl Read) -> Result<Hello> {
        let mut b = [0u8; 13];
        r.read_exact(&mut b)
            .map_err(|e| Error::io("reading the hello", eof_is_protocol(e)))?;
        if b[..7] != MAGIC[1..] {
            return Err(Error::protocol("peer does not speak knsock (bad magic)"));
        }
        Ok(Hello {
            min_version: u16::from_be_bytes([b[7], b[8]]),
            max_version: u16::from_be_bytes([b[9], b[10]]),
            caps: read_ext(r, u16::from_be_bytes([b[11], b[12]]))?,
        })
    }

    /// The version both sides speak, if any.
    pub fn negotiate(&self) -> Option<u16> {
        let hi = self.max_version.min(VERSION_MAX);
        let lo = self.min_version.max(VERSION_MIN);
        (lo <= hi).then_some(hi)
    }
}

/// Writes the receiver's hello reply; `version` 0 refuses. `caps` are the capabilities both
/// sides have.
pub fn encode_hello_reply(version: u16, caps: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&caps.to_be_bytes());
}

/// Reads the receiver's hello reply: the chosen version (0 = refused) and the capabilities.
pub fn read_hello_reply(r: &mut impl Read) -> Result<(u16, u32)> {
    let mut b = [0u8; 12];
    r.read_exact(&mut b)
        .map_err(|e| Error::io("reading the receiver's hello", eof_is_protocol(e)))?;
    if b[..8] != MAGIC {
        return Err(Error::protocol("peer does not speak knsock (bad magic)"));
    }
    let caps = read_ext(r, u16::from_be_bytes([b[10], b[11]]))?;
    Ok((u16::from_be_bytes([b[8], b[9]]), caps))
}

/// Reads an extension block: capability bits in its first 4 bytes (0 when shorter); the rest is
/// skipped, for later versions.
fn read_ext(r: &mut impl Read, len: u16) -> Result<u32> {
    if len > MAX_EXT {
        return Err(Error::protocol(format!(
            "hello extension of {len} bytes exceeds {MAX_EXT}"
        )));
    }
    let mut ext = [0u8; MAX_EXT as usize];
    r.read_exact(&mut ext[..len as usize])
        .map_err(|e| Error::io("reading the hello", eof_is_protocol(e)))?;
    Ok(match len {
        0..=3 => 0,
        _ => u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]),
    })
}

/// Checks a relative name against docs/protocol.md section 4 and returns its components.
pub fn check_name(name: &str) -> std::result::Result<Vec<&str>, String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("name longer than {MAX_NAME} bytes"));
    }
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(format!("forbidden character {c:?} in name"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > MAX_COMPONENTS {
        return Err(format!("more than {MAX_COMPONENTS} path components"));
    }
    for part in &parts {
        match *part {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("'{part}' path component")),
            p if p.len() > MAX_COMPONENT => {
                return Err(format!("path component longer than {MAX_COMPONENT} bytes"))
            }
            p if p.starts_with(TEMP_PREFIX) => {
                return Err(format!("names starting with '{TEMP_PREFIX}' are reserved"))
            }
            _ => {}
        }
    }
    Ok(parts)
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
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

fn eof_is_protocol(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(e.kind(), "connection closed early")
    } else {
        e
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::protocol("frame shorter than its fields"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn digest(&mut self) -> Result<Vec<u8>> {
        let n = self.u8()? as usize;
        if n > MAX_DIGEST {
            return Err(Error::protocol(format!("digest of {n} bytes is too long")));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn str16(&mut self, max: usize, what: &str) -> Result<String> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(Error::protocol(format!(
                "{what} of {n} bytes exceeds {max}"
            )));
        }
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Error::protocol(format!("{what} is not UTF-8")))
    }
}

/// Whether the peer's next bytes are already here (buffered or readable), so reading will not
/// block.
pub(crate) fn input_ready<S: std::os::fd::AsFd>(reader: &std::io::BufReader<S>) -> bool {
    if !reader.buffer().is_empty() {
        return true;
    }
    let mut fds = [rustix::event::PollFd::new(
        reader.get_ref(),
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            digest: vec![7; 16],
            encoding: ENCODING_ZSTD,
        }));
        round_trip(Frame::Skip);
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

    #[test]
    fn names() {
        assert_eq!(check_name("a/b.txt").unwrap(), vec!["a", "b.txt"]);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            ".",
            "a/.",
            "a//b",
            "a/",
            "a\0b",
            "a\nb",
            "a\\b",
            ".knsock-x",
            "d/.knsock-1.tmp",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check_name(&"a".repeat(256)).is_err());
        assert!(check_name("a/".repeat(64).trim_end_matches('/')).is_ok());
        assert!(check_name("a/".repeat(65).trim_end_matches('/')).is_err());
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(Hello::ours(0).negotiate(), Some(1));
        let future = Hello {
            min_version: 2,
            max_version: 9,
            caps: 0,
        };
        assert_eq!(future.negotiate(), None);
        let wide = Hello {
            min_version: 0,
            max_version: 9,
            caps: CAP_ZSTD,
        };
        assert_eq!(wide.negotiate(), Some(VERSION_MAX));
    }
}
