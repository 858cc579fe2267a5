//! A fetch's delta against the local old copy (docs/protocol.md section 3.4): a large file
//! changed in a few places on the receiver comes back as a delta (few bytes over the network)
//! and byte-identical; a file with no old copy comes whole; an old copy that changes during
//! the delta fails safely and the file is fetched again whole; a hostile server's delta that
//! copies past the signature or builds too much is refused, the old copy untouched; a hostile
//! client's signature is refused, and the receiver goes on serving.

mod common;

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use knsock::protocol::{self, Frame, Hello, Offer};
use knsock::{fetch_file, ErrorKind, FetchOptions};

const SIZE: usize = 8 << 20;

/// A receiver serving anonymous fetches, holding `big.bin` (its `SIZE` bytes `old`, then three
/// small edits) with a modification time of its own; returns the new content.
fn receiver_with_edited(old: &[u8]) -> (TestServer, Vec<u8>) {
    let srv = TestServer::start(|c| {
        c.allow_fetch(true).allow_anonymous_fetch(true);
    });
    let mut new = old.to_vec();
    for at in [100_000, SIZE / 2, SIZE - 5_000] {
        new[at..at + 200].copy_from_slice(&[0x5a; 200]);
    }
    std::fs::write(srv.path("big.bin"), &new).unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(srv.path("big.bin"))
        .unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000))
        .unwrap();
    (srv, new)
}

#[test]
fn a_changed_large_file_comes_back_as_a_delta_and_whole_without_an_old_copy() {
    let old = random_bytes(SIZE, 7);
    let (srv, new) = receiver_with_edited(&old);
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("big.bin"), &old).unwrap();
    let opts = FetchOptions::default();
    let report = fetch_file("127.0.0.1", srv.port(), "big.bin", dest.path(), &opts).unwrap();
    let f = &report.files[0];
    assert!(f.transferred < 512 << 10, "{f:?}");
    assert!(f.reused > SIZE as u64 - (512 << 10), "{f:?}");
    assert!(std::fs::read(dest.path().join("big.bin")).unwrap() == new);
    let mtime = std::fs::metadata(dest.path().join("big.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    );
    assert!(temporaries(dest.path()).is_empty());

    let empty = tempfile::tempdir().unwrap();
    let report = fetch_file("127.0.0.1", srv.port(), "big.bin", empty.path(), &opts).unwrap();
    let f = &report.files[0];
    assert_eq!((f.transferred, f.reused), (SIZE as u64, 0), "{f:?}");
    assert!(std::fs::read(empty.path().join("big.bin")).unwrap() == new);
}

#[test]
fn an_old_copy_that_changes_during_the_delta_is_fetched_again_whole() {
    let old = random_bytes(SIZE, 8);
    let (srv, new) = receiver_with_edited(&old);
    let dest = tempfile::tempdir().unwrap();
    let local = dest.path().join("big.bin");
    std::fs::write(&local, &old).unwrap();
    // Overwrites the start of the old copy in place once, while the delta is being built.
    let touched = Arc::new(AtomicBool::new(false));
    let (t, path) = (Arc::clone(&touched), local.clone());
    let opts = FetchOptions {
        progress: Some(Arc::new(move |_, _, _| {
            if !t.swap(true, Ordering::SeqCst) {
                let f = std::fs::File::options().write(true).open(&path).unwrap();
                f.write_all_at(&[0xff; 4096], 0).unwrap();
                f.set_modified(SystemTime::UNIX_EPOCH).unwrap();
            }
            true
        })),
        ..FetchOptions::default()
    };
    let report = fetch_file("127.0.0.1", srv.port(), "big.bin", dest.path(), &opts).unwrap();
    assert!(touched.load(Ordering::SeqCst));
    assert_eq!(report.attempts, 2, "{report:?}");
    let f = &report.files[0];
    assert_eq!((f.transferred, f.reused), (SIZE as u64, 0), "{f:?}");
    assert!(std::fs::read(&local).unwrap() == new);
    assert!(temporaries(dest.path()).is_empty());
}

/// A server that lists one file of `size` bytes, expects it wanted as a delta (DELTA, a
/// signature, BYE) and answers with `frames` after DELTA; returns how many chunks were signed.
fn hostile_delta(size: u64, frames: Vec<Frame>) -> (u16, std::thread::JoinHandle<usize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
        let mut first = [0u8; 1];
        s.read_exact(&mut first).unwrap();
        Hello::read_after_first_byte(&mut s).unwrap();
        let mut out = Vec::new();
        protocol::encode_hello_reply(1, protocol::CAP_FETCH, &mut out);
        let offer = Offer::new("big.bin", size);
        Frame::File { seq: 0, offer }.encode(&mut out);
        Frame::Listed { count: 1 }.encode(&mut out);
        s.write_all(&out).unwrap();
        let mut chunks = 0;
        loop {
            match Frame::read_from(&mut s).unwrap() {
                Some(Frame::Sig(c)) => chunks += c.len(),
                Some(Frame::Bye) => break,
                Some(Frame::Fetch(_) | Frame::Delta { seq: 0 }) => {}
                f => panic!("unexpected {f:?}"),
            }
        }
        let mut out = Vec::new();
        Frame::Delta { seq: 0 }.encode(&mut out);
        for f in frames {
            f.encode(&mut out);
        }
        let _ = s.write_all(&out);
        chunks
    });
    (port, serve)
}

#[test]
fn a_hostile_delta_is_refused_and_the_old_copy_kept() {
    let old = random_bytes(2 << 20, 9);
    let cases = [
        vec![Frame::Copy {
            index: 1 << 30,
            count: 1,
        }],
        vec![Frame::Literal(vec![1; 60 << 10]); 40],
    ];
    for frames in cases {
        let dest = tempfile::tempdir().unwrap();
        std::fs::write(dest.path().join("big.bin"), &old).unwrap();
        let (port, serve) = hostile_delta(old.len() as u64, frames);
        let opts = FetchOptions::default();
        let e = fetch_file("127.0.0.1", port, "big.bin", dest.path(), &opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(serve.join().unwrap() > 0, "the old copy was signed");
        assert!(std::fs::read(dest.path().join("big.bin")).unwrap() == old);
        assert_eq!(list_tree(dest.path()), vec!["big.bin".to_string()]);
    }
}

/// The other way round: a hostile client's signature (an empty chunk, a chunk larger than any
/// old copy of that size has) ends its connection with a protocol error and sends nothing of
/// the file; the receiver goes on serving.
#[test]
fn a_hostile_clients_signature_is_refused() {
    let srv = TestServer::start(|c| {
        c.allow_fetch(true).allow_anonymous_fetch(true);
    });
    std::fs::write(srv.path("f.bin"), random_bytes(1 << 20, 7)).unwrap();
    for (what, sig) in [
        ("an empty chunk", vec![(0u32, 1u64)]),
        (
            "a chunk of 64 MiB for an old copy of 64 MiB",
            vec![(64 << 20, 1)],
        ),
    ] {
        let (mut c, caps) = RawClient::hello_with(srv.addr(), protocol::CAP_FETCH);
        assert_eq!(caps, protocol::CAP_FETCH);
        c.send(Frame::Fetch(protocol::FetchRequest {
            names: vec!["f.bin".into()],
            ..protocol::FetchRequest::default()
        }));
        assert!(matches!(c.read(), Frame::File { seq: 0, .. }), "{what}");
        assert_eq!(c.read(), Frame::Listed { count: 1 }, "{what}");
        c.send(Frame::Delta { seq: 0 });
        c.send(Frame::Sig(sig));
        c.send(Frame::Sig(Vec::new()));
        match c.read() {
            Frame::Error { code, text } => {
                assert_eq!(code, protocol::Code::Protocol as u16, "{what}: {text}");
                assert!(text.contains("corrupt signature"), "{what}: {text}");
            }
            f => panic!("{what}: {f:?}"),
        }
        assert!(
            c.read_to_end().is_empty(),
            "{what}: nothing after the ERROR"
        );
    }
    // Still serving: the file comes whole to an honest client.
    let to = tempfile::tempdir().unwrap();
    let port = srv.port();
    let got = fetch_file(
        "127.0.0.1",
        port,
        "f.bin",
        to.path(),
        &FetchOptions::default(),
    );
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(
        std::fs::read(to.path().join("f.bin")).unwrap(),
        std::fs::read(srv.path("f.bin")).unwrap()
    );
}
