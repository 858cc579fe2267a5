//! knsock's fuzz targets, one function each, shared by the libFuzzer binaries (`fuzz_targets/`)
//! and by the corpus replay test (`tests/corpus.rs`). Each target feeds hostile bytes to one
//! decoder and asserts the invariants that must hold whatever the bytes; a panic is a finding.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use knsock::internals::{decode_blocks, serve_bytes};
use knsock::protocol::{
    check_name, encode_hello_reply, read_hello_reply, Frame, Hello, MAGIC, MAX_COMPONENT,
    MAX_COMPONENTS, MAX_EXT, MAX_FRAME, MAX_NAME, TEMP_PREFIX, VERSION_MAX, VERSION_MIN,
};
use knsock::ServerConfig;

mod bounded;
pub mod seeds;

pub use bounded::{peak_live_bytes, MAX_ALLOCATION, MAX_LIVE};

/// A fuzz target: takes any bytes, panics on a finding.
pub type Target = fn(&[u8]);

/// The targets by name, for the replay test (scripts/fuzz.sh lists the same names).
pub const TARGETS: [(&str, Target); 6] = [
    ("frame", frame),
    ("hello", hello),
    ("zstd_blocks", zstd_blocks),
    ("name", name),
    ("legacy", legacy),
    ("session", session),
];

/// Frames, read one after another until the input ends or one is refused. A decoded frame
/// re-encodes to exactly the bytes it was read from (the encoding is canonical), and those
/// decode to an equal frame.
pub fn frame(data: &[u8]) {
    let mut rest = data;
    loop {
        let before = rest;
        match Frame::read_from(&mut rest) {
            Ok(Some(f)) => {
                let consumed = &before[..before.len() - rest.len()];
                assert!(consumed.len() <= 5 + MAX_FRAME as usize);
                let mut again = Vec::new();
                f.encode(&mut again);
                assert_eq!(again, consumed, "{f:?} re-encodes differently");
                let back = Frame::read_from(&mut &again[..]).unwrap().unwrap();
                assert_eq!(back, f);
            }
            Ok(None) => {
                assert!(before.is_empty(), "clean end of stream with bytes left");
                break;
            }
            Err(_) => break,
        }
    }
}

/// The sender's hello (after its first byte, as the receiver reads it) and the receiver's reply:
/// never more than the extension bound is read, the negotiated version lies in both ranges, and
/// what decodes re-encodes to an equal value.
pub fn hello(data: &[u8]) {
    if let Some((_, after_first)) = data.split_first() {
        let mut rest = after_first;
        if let Ok(h) = Hello::read_after_first_byte(&mut rest) {
            assert!(after_first.len() - rest.len() <= 13 + MAX_EXT as usize);
            match h.negotiate() {
                Some(v) => assert!(
                    (h.min_version..=h.max_version).contains(&v)
                        && (VERSION_MIN..=VERSION_MAX).contains(&v),
                    "{h:?} negotiated {v}"
                ),
                None => assert!(h.min_version.max(VERSION_MIN) > h.max_version.min(VERSION_MAX)),
            }
            let mut again = Vec::new();
            h.encode(&mut again);
            assert_eq!(again[0], MAGIC[0]);
            assert_eq!(Hello::read_after_first_byte(&mut &again[1..]).unwrap(), h);
        }
    }
    let mut rest = data;
    if let Ok((version, caps)) = read_hello_reply(&mut rest) {
        assert!(data.len() - rest.len() <= 12 + MAX_EXT as usize);
        let mut again = Vec::new();
        encode_hello_reply(version, caps, &mut again);
        assert_eq!(read_hello_reply(&mut &again[..]).unwrap(), (version, caps));
    }
}

/// zstd block streams. Byte 0: bit 0 picks the mode, the other bits the output buffer's size
/// (512 bytes to 64 KiB). Mode 0 decodes bytes 5.. as a block stream announced (bytes 1..5, at
/// most 1 MiB) to decode to that many bytes: never more reaches the sink, and success means
/// exactly that many. Mode 1 compresses bytes 1.. with zstd, cuts the result into blocks, and
/// checks that the decoder gives them back.
pub fn zstd_blocks(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let mut out = vec![0u8; ((head >> 1) as usize + 1) * 512];
    let cap = out.len();
    let mut got = Vec::new();
    if head & 1 == 0 {
        if rest.len() < 4 {
            return;
        }
        let expected = u64::from(u32::from_be_bytes(rest[..4].try_into().unwrap()) & 0xF_FFFF);
        let mut total = 0u64;
        let ended = decode_blocks(&mut &rest[4..], expected, &mut out, |b| {
            assert!(b.len() <= cap);
            total += b.len() as u64;
            assert!(
                total <= expected,
                "{total} bytes reached the sink, {expected} announced"
            );
            Ok(())
        });
        if ended.is_ok() {
            assert_eq!(total, expected);
        }
    } else {
        let compressed = zstd::bulk::compress(rest, 1).unwrap();
        let mut wire = Vec::new();
        let cut = (head as usize % 7 + 1) * 19;
        for block in compressed.chunks(cut) {
            wire.extend_from_slice(&(block.len() as u32).to_be_bytes());
            wire.extend_from_slice(block);
        }
        wire.extend_from_slice(&[0; 4]);
        decode_blocks(&mut &wire[..], rest.len() as u64, &mut out, |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, rest);
    }
}

/// Names, checked against a second, byte-wise reading of docs/protocol.md section 4: whatever
/// `check_name` accepts, that reading accepts, and stays beneath the directory when joined to
/// it; whatever that reading accepts, `check_name` accepts too, unless it holds a C1 control
/// character (U+0080 to U+009F), which `check_name` refuses as well.
pub fn name(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let by_the_document = documented_name_rules(s);
    match check_name(s) {
        Ok(parts) => {
            assert!(by_the_document, "check_name accepted {s:?}");
            assert_eq!(parts.join("/"), s);
            assert!(!s.contains('\0') && !s.starts_with('/'));
            assert!(parts.iter().all(|p| *p != ".." && *p != "."));
            assert!(Path::new(s)
                .components()
                .all(|c| matches!(c, Component::Normal(_))));
            assert!(Path::new("/srv/in").join(s).starts_with("/srv/in"));
        }
        Err(_) => assert!(
            !by_the_document || s.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
            "check_name refused {s:?}"
        ),
    }
}

fn documented_name_rules(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=MAX_NAME).contains(&b.len())
        && !b.iter().any(|&c| c < 0x20 || c == 0x7f || c == b'\\')
        && s.split('/').count() <= MAX_COMPONENTS
        && s.split('/').all(|p| {
            (1..=MAX_COMPONENT).contains(&p.len())
                && p != "."
                && p != ".."
                && !p.starts_with(TEMP_PREFIX)
        })
}

/// One kn-sock 0.3 upload (`name\n size\n bytes`): a whole connection served as [`session`] does,
/// for inputs that do not open with the native protocol's first byte.
pub fn legacy(data: &[u8]) {
    if data.first() != Some(&MAGIC[0]) {
        serve(data);
    }
}

/// One whole server connection over an in-memory stream, into a fresh directory. Afterwards:
/// nothing was written beside that directory; it holds only regular files and directories,
/// no temporary file is left, and every file's name passes `check_name`; every file the received
/// handler was told about is there; and what a native session wrote back is a hello reply then
/// well-formed frames of the receiver's types only, with each OK naming a stored file.
pub fn session(data: &[u8]) {
    serve(data);
}

/// What [`serve`] saw: the files stored and the frames the server wrote (native sessions).
#[derive(Debug)]
pub struct Served {
    /// The files beneath the directory afterwards, [`BASIS`] left out.
    pub stored: BTreeSet<String>,
    pub replies: Vec<Frame>,
    /// What [`BASIS`] held afterwards, if it was still there.
    pub basis: Option<Vec<u8>>,
}

/// A file every session finds in its directory, so that an offer of the same name can be
/// answered BASIS and a delta (docs/protocol.md section 3.2) built against it.
pub const BASIS: &str = "basis.bin";

/// [`BASIS`]'s content: 128 KiB of fixed bytes (above the 64 KiB an old copy needs).
pub fn basis_content() -> Vec<u8> {
    knsock::internals::random_bytes(128 * 1024, 1)
}

/// Files larger than this are refused, so one small compressed input cannot fill the disk.
pub const MAX_FILE_SIZE: u64 = 4 << 20;

/// Serves `data` as one connection and checks what [`session`] promises.
pub fn serve(data: &[u8]) -> Served {
    let sandbox = Sandbox::new();
    let dir = sandbox.0.join("srv");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(BASIS), basis_content()).unwrap();
    let received = Arc::new(Mutex::new(BTreeSet::new()));
    let mut config = ServerConfig::new(&dir);
    let seen = received.clone();
    config
        .max_file_size(Some(MAX_FILE_SIZE))
        .validate_before(|f| match f.name.ends_with(".exe") {
            true => Err("executables are not accepted".into()),
            false => Ok(()),
        })
        .validate_after(|f| match f.name.ends_with(".bad") {
            true => Err("refused after the data".into()),
            false => Ok(()),
        })
        .on_received(move |f| {
            assert!(check_name(&f.name).is_ok(), "received {:?}", f.name);
            seen.lock().unwrap().insert(f.name.clone());
        })
        .on_error(|_, _| {})
        // Fetches too, to anyone: the fuzzer reaches the serving side of section 3.4.
        .allow_fetch(true)
        .allow_anonymous_fetch(true);
    let (wrote, _ended) = serve_bytes(&config, data).expect("the server directory opens");

    let beside: Vec<_> = fs::read_dir(&sandbox.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["srv"], "the server wrote beside its directory");
    let mut stored = tree(&dir);
    for name in received.lock().unwrap().iter() {
        assert!(stored.contains(name), "{name:?} was reported received");
    }
    let replies = match data.first() == Some(&MAGIC[0]) {
        true => check_replies(&wrote, &stored),
        false => Vec::new(),
    };
    stored.remove(BASIS);
    let basis = fs::read(dir.join(BASIS)).ok();
    Served {
        stored,
        replies,
        basis,
    }
}

/// The regular files beneath `dir`, by relative name, after checking that nothing else is there.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for entry in fs::read_dir(dir.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
            let name = rel.to_str().expect("names are UTF-8").to_string();
            let ty = entry.file_type().unwrap();
            let leaf = entry.file_name();
            let leaf = leaf.to_str().unwrap();
            assert!(!leaf.starts_with(TEMP_PREFIX), "left behind: {name:?}");
            if ty.is_dir() {
                todo.push(rel);
            } else {
                assert!(ty.is_file(), "{name:?} is neither a file nor a directory");
                assert!(
                    check_name(&name).is_ok(),
                    "stored under a bad name: {name:?}"
                );
                files.insert(name);
            }
        }
    }
    files
}

/// What a receiver may write: a hello reply (possibly refusing), then frames of its own types.
fn check_replies(wrote: &[u8], stored: &BTreeSet<String>) -> Vec<Frame> {
    if wrote.is_empty() {
        return Vec::new();
    }
    let mut rest = wrote;
    let (version, _) = read_hello_reply(&mut rest).expect("the server opened with a hello reply");
    let mut frames = Vec::new();
    loop {
        match Frame::read_from(&mut rest) {
            // Serving a fetch: a file's content follows DATA (or its delta follows DELTA);
            // frames are checked up to it.
            Ok(Some(f @ (Frame::Data { .. } | Frame::Delta { .. }))) => {
                frames.push(f);
                break;
            }
            Ok(Some(f)) => frames.push(f),
            Ok(None) => break,
            Err(e) => panic!("the server wrote a bad frame: {e}"),
        }
    }
    if version == 0 {
        assert!(matches!(frames[..], [Frame::Error { .. }]), "{frames:?}");
    }
    for f in &frames {
        match f {
            Frame::Ok { name, .. } => assert!(stored.contains(name), "OK for {name:?}"),
            // A fetch lists only what lies in the directory, by names a sender could offer.
            Frame::File { offer, .. } => {
                assert!(check_name(&offer.name).is_ok(), "listed {:?}", offer.name)
            }
            Frame::Accept { .. }
            | Frame::Reject { .. }
            | Frame::Failed { .. }
            | Frame::Error { .. }
            | Frame::Skip
            | Frame::Changed
            | Frame::AuthOk { .. }
            | Frame::Basis { .. }
            | Frame::Sig(_)
            | Frame::Listed { .. }
            | Frame::Missing { .. }
            | Frame::Data { .. }
            | Frame::Delta { .. } => {}
            Frame::Offer(_)
            | Frame::Done { .. }
            | Frame::Bye
            | Frame::Early
            | Frame::Auth { .. }
            | Frame::Copy { .. }
            | Frame::Literal(_)
            | Frame::Fetch(_)
            | Frame::Want { .. } => {
                panic!("the server sent a sender's frame: {f:?}")
            }
        }
    }
    frames
}

/// A fresh directory beneath the temporary directory (`TMPDIR`; scripts/fuzz.sh points it at
/// /dev/shm when there is one), removed afterwards.
struct Sandbox(PathBuf);

impl Sandbox {
    fn new() -> Sandbox {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("knsock-fuzz-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        Sandbox(dir)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.0).is_err() {
            let _ = writeln!(std::io::stderr(), "could not remove {}", self.0.display());
        }
    }
}
