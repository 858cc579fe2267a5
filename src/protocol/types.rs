//! The protocol's constants and codes, the OFFER, and the rules for names (docs/protocol.md
//! sections 1 to 5).

use crate::error::{Error, ErrorKind};

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
/// A token name or an identity, in AUTH and AUTH_OK.
pub const MAX_IDENTITY: usize = 64;
/// A token's secret, in AUTH.
pub const MAX_SECRET: usize = 1024;

/// A token's secret: never shown by `Debug`, so no error message or log can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Capability bit in the hello extension: the side can send or receive zstd content.
pub const CAP_ZSTD: u32 = 1;
/// Capability bit: eager offers. When both sides have it, the content of a small file (see
/// [`Offer::is_eager`]) follows its OFFER at once, without waiting for ACCEPT, and the receiver
/// answers only with the file's verdict (OK, or FAILED after reading and dropping the content).
/// This takes the round trip per file out of a batch of small files.
pub const CAP_EAGER: u32 = 2;
/// The largest file sent eagerly: what a receiver may have to read and drop when it refuses.
pub const EAGER_MAX: u64 = 64 * 1024;
/// Capability bit: pipelined decisions (docs/protocol.md section 3.1). A non-eager OFFER is
/// answered at once but its content waits for the sender's DATA (or DELTA) frame, so a sender
/// offers many files before the first answer comes back; OFFER may carry `flags`.
pub const CAP_PIPELINE: u32 = 4;
/// Capability bit: delta transfer (section 3.2), only together with [`CAP_PIPELINE`].
pub const CAP_DELTA: u32 = 8;
/// Capability bit: content of unknown size (section 3.3), announced by [`SIZE_UNKNOWN`].
pub const CAP_STREAM: u32 = 16;
/// The OFFER size that announces content of unknown size, once [`CAP_STREAM`] is negotiated.
pub const SIZE_UNKNOWN: u64 = u64::MAX;
/// The largest block of raw content of unknown size (64 MiB, the largest chunk size): read as
/// it comes, never held whole.
pub const RAW_BLOCK_MAX: usize = 64 * 1024 * 1024;
/// Capability bit: fetch (docs/protocol.md section 3.4): the client gets files back; granted only
/// by a receiver that serves fetches.
pub const CAP_FETCH: u32 = 0x20;
/// Capability bit: the optimistic first flight (docs/protocol.md section 1.3). The sender sends
/// an EARLY frame after its hello (and AUTH), then its offers and eager content without waiting
/// for the hello reply, as if every bit it asked for were granted; a receiver grants this bit
/// only when it grants every other bit asked for.
pub const CAP_EARLY: u32 = 0x40;
/// The most a sender writes after its hello (AUTH and EARLY included) before it has read the
/// hello reply: what a receiver refusing the connection reads and drops so its reason arrives.
pub const EARLY_MAX: usize = 64 * 1024;
/// Capability bit: probes (section 3.1), only together with [`CAP_PIPELINE`]. A QUICK offer is
/// answered SKIP or CHANGED and holds nothing, so a sender has up to [`PROBE_WINDOW`] of them
/// unanswered besides its [`PIPELINE_WINDOW`] open offers.
pub const CAP_PROBE: u32 = 0x80;
/// Most probes a sender has unanswered: their answers (5 bytes each) fit any socket buffer, so
/// a sender writing probes never waits on a receiver waiting to write answers.
pub const PROBE_WINDOW: usize = 4096;
/// Most names in one FETCH, filters in one FETCH, and files in one fetch list.
pub const FETCH_MAX_NAMES: usize = 256;
pub const FETCH_MAX_FILTERS: usize = 64;
pub const FETCH_MAX_FILES: u32 = 1_000_000;
/// FETCH flags: a directory brings every file beneath it; FILE frames carry digests.
pub const FETCH_RECURSIVE: u8 = 1;
pub const FETCH_DIGESTS: u8 = 2;
/// The longest include or exclude glob of a FETCH.
pub const MAX_GLOB: usize = 1024;

/// What a FETCH asks for: names (files or directories), flags, include and exclude globs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchRequest {
    /// [`FETCH_RECURSIVE`](FETCH_RECURSIVE), [`FETCH_DIGESTS`](FETCH_DIGESTS).
    pub flags: u8,
    pub names: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// Most non-eager offers a sender has open (unanswered, or accepted with no DATA/DELTA yet);
/// a receiver holds at most this many accepted files waiting for their content.
pub const PIPELINE_WINDOW: usize = 256;
/// OFFER flag: answer SKIP when a regular file of the same size and modification time (to the
/// nanosecond) stands under the name; no content is read on either side (the quick check).
pub const FLAG_QUICK: u8 = 1;
/// OFFER flag: the sender will not build a delta; answer ACCEPT, never BASIS.
pub const FLAG_NO_DELTA: u8 = 2;
/// OFFER flag: not eager even if small; answered like any other offer (a sender keeps its files
/// in list order behind earlier offers still waiting for their answer).
pub const FLAG_DEFER: u8 = 4;
/// The smallest offered file a receiver proposes a delta for, and the smallest old copy.
pub const DELTA_MIN: u64 = 1024 * 1024;
pub const DELTA_MIN_BASIS: u64 = 64 * 1024;
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
    /// Authentication failed: no credential, or a wrong one.
    Auth = 12,
    /// The two ends disagree on TLS: the receiver requires it, or does not speak it.
    Tls = 13,
    /// The receiver's old copy changed during a delta: the sender sends the file in full.
    BasisChanged = 14,
    /// The receiver's object store failed for now (unreachable, slow down): a retry may cure it.
    StoreUnavailable = 15,
    /// The receiver's object store refused (access denied, no such bucket): retrying does not
    /// help until its operator acts.
    StoreRefused = 16,
    /// The receiver is at its connection cap (after a refused hello, or ending a connection):
    /// the sender retries later, with backoff, as after a lost connection.
    Busy = 17,
    /// A FETCH this receiver does not serve to this client (section 3.4).
    FetchRefused = 20,
    /// A requested name gives nothing to fetch.
    NoSuchFile = 21,
    /// A listed file changed or vanished before its content was sent.
    Changed = 22,
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
            12 => Auth,
            13 => Tls,
            14 => BasisChanged,
            15 => StoreUnavailable,
            16 => StoreRefused,
            17 => Busy,
            20 => FetchRefused,
            21 => NoSuchFile,
            22 => Changed,
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
            Code::Auth | Code::Tls | Code::FetchRefused => ErrorKind::Auth,
            Code::NoSuchFile => ErrorKind::NotFound,
            Code::Changed => ErrorKind::Io,
            Code::BasisChanged => ErrorKind::Io,
            Code::StoreUnavailable | Code::StoreRefused => ErrorKind::Store,
            Code::Busy => ErrorKind::Busy,
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
            ErrorKind::Auth => Code::Auth,
            ErrorKind::Store => Code::StoreUnavailable,
            _ => Code::Io,
        }
    }
}

/// The error a sender reports for a REJECT, FAILED or ERROR with `code`; a code it does not
/// know is "rejected" with the receiver's text.
pub fn peer_error(code: u16, text: impl Into<String>) -> Error {
    let kind = Code::from_u16(code).map_or(ErrorKind::Rejected, Code::kind);
    Error::from_peer(kind, code, text)
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
    /// The name's bytes as they came when they are not UTF-8 (docs/protocol.md section 4):
    /// `name` then holds them escaped for messages, and the receiver refuses the offer with
    /// code 5. A sender never sets it; encoding sends these bytes instead of `name`.
    pub raw_name: Option<Vec<u8>>,
    /// The content's digest when the sender asks to skip an identical file; empty otherwise.
    pub digest: Vec<u8>,
    /// [`ENCODING_RAW`], or [`ENCODING_ZSTD`] when both sides have [`CAP_ZSTD`].
    pub encoding: u8,
    /// [`FLAG_QUICK`], [`FLAG_NO_DELTA`]; on the wire only when not 0 (and then only with
    /// [`CAP_PIPELINE`]).
    pub flags: u8,
}

impl Offer {
    /// An offer of `size` raw bytes named `name`: mode 0644, modification time 0, XXH3-128, no
    /// digest, no flags. The fields are public: change what differs.
    pub fn new(name: impl Into<String>, size: u64) -> Offer {
        Offer {
            size,
            mtime_secs: 0,
            mtime_nanos: 0,
            mode: 0o644,
            algorithm: ALGO_XXH3_128,
            name: name.into(),
            raw_name: None,
            digest: Vec::new(),
            encoding: ENCODING_RAW,
            flags: 0,
        }
    }

    /// Whether this offer's content follows it at once when [`CAP_EAGER`] was negotiated: a file
    /// of at most [`EAGER_MAX`] bytes offered without a digest (an offer with a digest may be
    /// answered SKIP, so its content waits for ACCEPT), nor one asking for the quick check or
    /// deferred.
    /// Sender and receiver apply the same rule.
    pub fn is_eager(&self) -> bool {
        self.size <= EAGER_MAX
            && self.digest.is_empty()
            && self.flags & (FLAG_QUICK | FLAG_DEFER) == 0
    }

    /// Whether this offer announces content of unknown size on a connection with `caps`.
    pub fn is_unsized(&self, caps: u32) -> bool {
        caps & CAP_STREAM != 0 && self.size == SIZE_UNKNOWN
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
