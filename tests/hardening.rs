//! Issue 18: a delta's memory does not grow with the file, a delta builds exactly the offered
//! size, an OFFER has one encoding without capability bit 2, and a name that is not UTF-8 costs
//! only its own file. (What the CLI prints is escaped: cli/tests/cli_escaping.rs.)

mod common;

use std::io::Write;

use common::*;
use knsock::protocol::{self, Code, Frame, Offer, ALGO_XXH3_128};
use knsock::{send_file, SendOptions};

/// Writes the same `len` bytes of pseudo-random data (no chunk repeats) to every path in
/// `paths`, 1 MiB at a time.
fn write_large(paths: &[&std::path::Path], len: usize) {
    let mut files: Vec<_> = paths
        .iter()
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).unwrap()))
        .collect();
    for i in 0..len >> 20 {
        let block = random_bytes(1 << 20, 1000 + i as u64);
        for f in &mut files {
            f.write_all(&block).unwrap();
        }
    }
    for f in &mut files {
        f.flush().unwrap();
    }
}

/// The peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_delta_of_an_unchanged_256_mib_file_keeps_the_receivers_memory_flat() {
    const SIZE: usize = 256 << 20;
    let dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("disk.img");
    write_large(&[&dir.path().join("disk.img"), &path], SIZE);
    let srv = ServerProcess::start(dir.path(), None);
    let before = peak_rss(srv.child.id());

    let r = send_file("127.0.0.1", srv.port, &path, &SendOptions::default()).unwrap();
    // All of it came from the receiver's own copy.
    assert_eq!(r.bytes_reused, SIZE as u64, "{r:?}");
    assert!(r.bytes_sent < 1 << 20, "{r:?}");
    let peak = peak_rss(srv.child.id());
    eprintln!(
        "receiver peak RSS {} MiB (at start {} MiB)",
        peak >> 20,
        before >> 20
    );
    assert!(
        peak < 32 << 20,
        "the receiver peaked at {} MiB (at start {} MiB) building a 256 MiB delta",
        peak >> 20,
        before >> 20
    );
    srv.kill9();
    let stored = std::fs::metadata(dir.path().join("disk.img")).unwrap();
    assert_eq!(stored.len(), SIZE as u64);
}

/// Reads the ERROR a receiver ends the connection with; returns its code and text.
fn read_error(c: &mut RawClient) -> (u16, String) {
    match c.read() {
        Frame::Error { code, text } => (code, text),
        f => panic!("expected ERROR, got {f:?}"),
    }
}

#[test]
fn a_delta_that_builds_fewer_bytes_than_offered_is_refused_and_nothing_replaced() {
    let srv = TestServer::start(|_| {});
    let old = random_bytes(4 << 20, 31);
    std::fs::write(srv.path("f"), &old).unwrap();

    // Every chunk but the last, with the digest of what that builds.
    let (mut c, lens) = delta_client(srv.addr(), offer_of_size("f", old.len() as u64));
    assert!(lens.len() > 2);
    let built: usize = lens[..lens.len() - 1].iter().map(|l| *l as usize).sum();
    c.send(Frame::Copy {
        index: 0,
        count: lens.len() as u32 - 1,
    });
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(&old[..built]),
    });
    let (code, text) = read_error(&mut c);
    assert_eq!(code, Code::Protocol as u16, "{text}");
    assert!(
        text.contains(&format!("delta built {built} of the 4194304 bytes offered")),
        "{text}"
    );

    // An empty delta: DONE at once, with the digest of nothing.
    let (mut c, _) = delta_client(srv.addr(), offer_of_size("f", old.len() as u64));
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(b""),
    });
    let (code, text) = read_error(&mut c);
    assert_eq!(code, Code::Protocol as u16, "{text}");
    assert!(text.contains("delta built 0 of the 4194304"), "{text}");

    assert_eq!(std::fs::read(srv.path("f")).unwrap(), old);
    assert_eq!(srv.entries(), ["f"]);
}

#[test]
fn an_offer_without_capability_bit_2_has_no_flags_byte() {
    let srv = TestServer::start(|_| {});
    // No capabilities: NO_DELTA's byte is one byte too many.
    let (mut c, caps) = RawClient::hello_with(srv.addr(), 0);
    assert_eq!(caps, 0);
    let mut offer = offer_of_size("plain.txt", 5);
    offer.flags = protocol::FLAG_NO_DELTA;
    c.send(Frame::Offer(offer));
    let (code, text) = read_error(&mut c);
    assert_eq!(code, Code::Protocol as u16, "{text}");
    assert!(text.contains("needs capability bit 2"), "{text}");

    // Eager offers only: a 5-byte file whose DEFER byte would change how it is handled.
    let (mut c, caps) = RawClient::hello_with(srv.addr(), protocol::CAP_EAGER);
    assert_eq!(caps, protocol::CAP_EAGER);
    let mut offer = offer_of_size("eager.txt", 5);
    offer.flags = protocol::FLAG_DEFER;
    let mut out = Vec::new();
    eager_bytes(offer, b"hello", &mut out);
    c.stream.write_all(&out).unwrap();
    let (code, text) = read_error(&mut c);
    assert_eq!(code, Code::Protocol as u16, "{text}");
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
}

/// An offer whose name is the bytes `raw`, not UTF-8.
fn offer_not_utf8(raw: &[u8], size: u64) -> Offer {
    Offer {
        raw_name: Some(raw.to_vec()),
        ..offer_of_size("", size)
    }
}

#[test]
fn a_name_that_is_not_utf8_is_rejected_and_the_connection_goes_on() {
    let srv = TestServer::start(|_| {});
    // Stop and wait: REJECT 5, then the next offer is served on the same connection.
    let mut c = RawClient::hello(srv.addr());
    match c.offer_frame(offer_not_utf8(b"bad\xff\xfe.txt", 3)) {
        Frame::Reject { code, text } => {
            assert_eq!(code, Code::BadName as u16);
            assert!(text.contains("name is not UTF-8"), "{text}");
        }
        f => panic!("{f:?}"),
    }
    let (kind, message) = srv.next_error();
    assert_eq!(kind, knsock::ErrorKind::Rejected);
    assert!(message.contains("'bad\\xff\\xfe.txt'"), "{message}");
    assert!(matches!(
        c.offer("good.txt", 2),
        Frame::Accept { offset: 0 }
    ));
    c.stream.write_all(b"ok").unwrap();
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(b"ok"),
    });
    assert!(matches!(c.read(), Frame::Ok { seq: 1, .. }));

    // Eager: the content is read and dropped, FAILED 5, then the next file is stored.
    let (mut c, _) = RawClient::hello_with(srv.addr(), protocol::CAP_EAGER);
    let mut out = Vec::new();
    eager_bytes(offer_not_utf8(b"\xc3\x28.log", 3), b"abc", &mut out);
    eager_bytes(offer_of_size("after.log", 2), b"hi", &mut out);
    c.stream.write_all(&out).unwrap();
    match c.read() {
        Frame::Failed { seq: 0, code, text } => {
            assert_eq!(code, Code::BadName as u16);
            assert!(text.contains("name is not UTF-8"), "{text}");
        }
        f => panic!("{f:?}"),
    }
    assert!(matches!(c.read(), Frame::Ok { seq: 1, .. }));
    assert_eq!(srv.entries(), ["after.log", "good.txt"]);
}
