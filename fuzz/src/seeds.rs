//! The seed corpus (`corpus/<target>/`), made here so it can be regenerated and checked:
//! valid frames of every type, hellos and replies, zstd block streams, names, kn-sock 0.3
//! uploads and whole native sessions. `KNSOCK_FUZZ_BLESS=1 cargo test` writes them.

use knsock::protocol::delta::chunks;
use knsock::protocol::{
    encode_hello_reply, FetchRequest, Frame, Hello, Offer, ALGO_XXH3_128, CAP_DELTA, CAP_EAGER,
    CAP_EARLY, CAP_FETCH, CAP_PIPELINE, CAP_PROBE, CAP_STREAM, CAP_ZSTD, ENCODING_RAW,
    ENCODING_ZSTD, FETCH_DIGESTS, FLAG_DEFER, FLAG_NO_DELTA, FLAG_QUICK, SIZE_UNKNOWN,
};
use xxhash_rust::xxh3::xxh3_128;

/// Every seed: (target, file name, bytes).
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut all = Vec::new();
    for (name, f) in frames() {
        all.push(("frame", name, encode(&[f])));
    }
    all.push(("frame", "all-types", encode(&frames().map(|(_, f)| f))));
    all.push(("hello", "hello", hello(0)));
    all.push(("hello", "hello-zstd-eager", hello(CAP_ZSTD | CAP_EAGER)));
    let mut long_ext = hello(CAP_ZSTD);
    long_ext[12..14].copy_from_slice(&8u16.to_be_bytes());
    long_ext.extend_from_slice(&[0xee; 4]);
    all.push(("hello", "hello-long-ext", long_ext));
    let mut reply = Vec::new();
    encode_hello_reply(1, CAP_ZSTD, &mut reply);
    all.push(("hello", "reply", reply));
    let mut refusal = Vec::new();
    encode_hello_reply(0, 0, &mut refusal);
    all.push(("hello", "reply-refused", refusal));

    let text = b"knsock knsock knsock, a reliable file transfer, knsock knsock\n".repeat(40);
    let mut stream = vec![0u8]; // mode 0, 512-byte buffer
    stream.extend_from_slice(&(text.len() as u32).to_be_bytes());
    stream.extend_from_slice(&blocks(&zstd::bulk::compress(&text, 3).unwrap(), 100));
    all.push(("zstd_blocks", "stream", stream));
    let mut empty = vec![0x20u8];
    empty.extend_from_slice(&0u32.to_be_bytes());
    empty.extend_from_slice(&blocks(&zstd::bulk::compress(b"", 3).unwrap(), 100));
    all.push(("zstd_blocks", "empty", empty));
    let mut round = vec![0x41u8];
    round.extend_from_slice(&text[..300]);
    all.push(("zstd_blocks", "round-trip", round));

    for (file, name) in [
        ("plain", "a.txt"),
        ("nested", "dir/sub/ünïcode file.txt"),
        ("dotfile", ".config/x"),
        ("dotdot", "a/../b"),
        ("absolute", "/etc/passwd"),
        ("reserved", "d/.knsock-1.tmp"),
        ("control", "a\u{1}b"),
    ] {
        all.push(("name", file, name.as_bytes().to_vec()));
    }

    all.push(("legacy", "upload", b"notes.txt\n5\nhello".to_vec()));
    all.push(("legacy", "nested", b"d/e/f.bin\n3\n\x00\x01\x02".to_vec()));
    all.push(("legacy", "empty-file", b"empty\n0\n".to_vec()));
    all.push(("legacy", "short", b"short.txt\n10\nabc".to_vec()));
    all.push(("legacy", "escape", b"../up.txt\n2\nhi".to_vec()));

    all.push((
        "session",
        "one-file",
        session(0, &[("a.txt", b"hello, knsock\n", false)]),
    ));
    all.push((
        "session",
        "eager-zstd-batch",
        session(
            CAP_ZSTD | CAP_EAGER,
            &[
                ("logs/one.log", &text, true),
                ("logs/two.log", b"two", false),
                ("tool.exe", b"MZ", false),
                ("late.bad", b"refused after the data", false),
            ],
        ),
    ));
    all.push((
        "session",
        "zstd",
        session(CAP_ZSTD, &[("z.txt", &text, true)]),
    ));
    all.push(("session", "legacy-upload", b"notes.txt\n5\nhello".to_vec()));
    all.extend(stream_and_fetch());
    all.extend(hostile_sessions());
    all
}

/// A stream of unknown size (section 3.3: blocks, an empty one, DONE), and a fetch of the basis
/// file with its digest (section 3.4: FETCH, then WANT for the one file listed).
fn stream_and_fetch() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut stream = hello(CAP_STREAM);
    Frame::Offer(offer("piped.bin", SIZE_UNKNOWN, Vec::new(), ENCODING_RAW)).encode(&mut stream);
    stream.extend_from_slice(&blocks(b"hello, stream", 5));
    stream.extend_from_slice(&encode(&[done(b"hello, stream"), Frame::Bye]));
    let mut fetch = hello(CAP_FETCH);
    let request = FetchRequest {
        flags: FETCH_DIGESTS,
        names: vec![crate::BASIS.into()],
        ..FetchRequest::default()
    };
    let want = Frame::Want { seq: 0, offset: 0 };
    fetch.extend_from_slice(&encode(&[Frame::Fetch(request), want, Frame::Bye]));
    vec![
        ("session", "stream", stream),
        ("session", "fetch", fetch),
        ("session", "first-flight", first_flight()),
    ]
}

/// A first flight (section 1.3): EARLY, a probe (section 3.1, bit 7) and an eager file, sent
/// without waiting for the hello reply.
fn first_flight() -> Vec<u8> {
    let mut s = hello(CAP_EARLY | CAP_EAGER | CAP_PIPELINE | CAP_PROBE);
    let mut probe = offer("seen.txt", 5, Vec::new(), ENCODING_RAW);
    probe.flags = FLAG_QUICK;
    let early = offer("early.txt", 5, Vec::new(), ENCODING_RAW);
    s.extend_from_slice(&encode(&[
        Frame::Early,
        Frame::Offer(probe),
        Frame::Offer(early),
    ]));
    s.extend_from_slice(b"hello");
    s.extend_from_slice(&encode(&[done(b"hello"), Frame::Bye]));
    s
}

/// Sessions that reproduce defects fixed in issue 18: a delta that builds fewer bytes than
/// offered, flags bytes without capability bit 2, a name that is not UTF-8.
fn hostile_sessions() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let basis = crate::basis_content();
    let first = chunks(&basis[..], basis.len() as u64)
        .next()
        .unwrap()
        .unwrap();
    let short = |copy: &[u8]| {
        let mut out = hello(CAP_PIPELINE | CAP_DELTA);
        let o = offer(crate::BASIS, 1 << 20, Vec::new(), ENCODING_RAW);
        let mut frames = vec![Frame::Offer(o), Frame::Delta { seq: 0 }];
        if !copy.is_empty() {
            frames.push(Frame::Copy { index: 0, count: 1 });
        }
        frames.push(Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest: xxh3_128(copy).to_be_bytes().to_vec(),
        });
        frames.push(Frame::Bye);
        out.extend_from_slice(&encode(&frames));
        out
    };
    let flagged = |caps: u32, flags: u8| {
        let mut out = hello(caps);
        let mut o = offer("flagged.txt", 5, Vec::new(), ENCODING_RAW);
        o.flags = flags;
        Frame::Offer(o).encode(&mut out);
        out.extend_from_slice(b"hello");
        out.extend_from_slice(&encode(&[done(b"hello"), Frame::Bye]));
        out
    };
    let mut not_utf8 = hello(CAP_EAGER);
    let mut bad = offer("", 3, Vec::new(), ENCODING_RAW);
    bad.raw_name = Some(b"bad\xff.txt".to_vec());
    Frame::Offer(bad).encode(&mut not_utf8);
    not_utf8.extend_from_slice(b"abc");
    done(b"abc").encode(&mut not_utf8);
    Frame::Offer(offer("good.txt", 2, Vec::new(), ENCODING_RAW)).encode(&mut not_utf8);
    not_utf8.extend_from_slice(b"ok");
    not_utf8.extend_from_slice(&encode(&[done(b"ok"), Frame::Bye]));
    vec![
        ("session", "delta-short", short(&first)),
        ("session", "delta-empty", short(&[])),
        ("session", "flags-without-bit2", flagged(0, FLAG_NO_DELTA)),
        (
            "session",
            "defer-without-bit2",
            flagged(CAP_EAGER, FLAG_DEFER),
        ),
        ("session", "name-not-utf8", not_utf8),
    ]
}

fn done(content: &[u8]) -> Frame {
    Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: xxh3_128(content).to_be_bytes().to_vec(),
    }
}

fn frames() -> [(&'static str, Frame); 11] {
    [
        (
            "offer",
            Frame::Offer(offer("dir/file.txt", 5, vec![7; 16], ENCODING_RAW)),
        ),
        ("accept", Frame::Accept { offset: 1024 }),
        (
            "reject",
            Frame::Reject {
                code: 5,
                text: "unacceptable name".into(),
            },
        ),
        (
            "done",
            Frame::Done {
                algorithm: ALGO_XXH3_128,
                digest: vec![9; 16],
            },
        ),
        (
            "ok",
            Frame::Ok {
                seq: 3,
                name: "dir/file.txt".into(),
            },
        ),
        ("bye", Frame::Bye),
        (
            "error",
            Frame::Error {
                code: 9,
                text: "protocol violation".into(),
            },
        ),
        (
            "failed",
            Frame::Failed {
                seq: 4,
                code: 6,
                text: "checksum mismatch".into(),
            },
        ),
        ("skip", Frame::Skip),
        ("early", Frame::Early),
        ("changed", Frame::Changed),
    ]
}

fn offer(name: &str, size: u64, digest: Vec<u8>, encoding: u8) -> Offer {
    Offer {
        mtime_secs: 1_764_000_000,
        mtime_nanos: 5,
        digest,
        encoding,
        ..Offer::new(name, size)
    }
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out);
    }
    out
}

fn hello(caps: u32) -> Vec<u8> {
    let mut out = Vec::new();
    Hello::ours(caps).encode(&mut out);
    out
}

fn blocks(compressed: &[u8], cut: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for block in compressed.chunks(cut) {
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0; 4]);
    out
}

/// A whole sender's side of a native connection: hello, then OFFER, content, DONE per file
/// (content right after the OFFER, as an eager or accepted offer has it), then BYE.
fn session(caps: u32, files: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = hello(caps);
    for &(name, content, compress) in files {
        let encoding = if compress {
            ENCODING_ZSTD
        } else {
            ENCODING_RAW
        };
        Frame::Offer(offer(name, content.len() as u64, Vec::new(), encoding)).encode(&mut out);
        match compress {
            true => {
                out.extend_from_slice(&blocks(&zstd::bulk::compress(content, 3).unwrap(), 4096))
            }
            false => out.extend_from_slice(content),
        }
        let digest = xxh3_128(content).to_be_bytes().to_vec();
        Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest,
        }
        .encode(&mut out);
    }
    Frame::Bye.encode(&mut out);
    out
}
