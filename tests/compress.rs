//! zstd on the wire: logs shrink, random data goes as it is, a receiver can refuse it, bombs and
//! unnegotiated encodings are refused, and a compressed upload resumes.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use knsock::protocol::{Frame, Hello, Offer, CAP_ZSTD, ENCODING_ZSTD};
use knsock::{send_file, ErrorKind, SendOptions};

fn log_lines(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 100);
    let mut i = 0u64;
    while out.len() < bytes {
        writeln!(
            out,
            "2026-11-24T12:{:02}:{:02}Z INFO api request id={} path=/v1/items/{} status=200 ms={}",
            (i / 60) % 60,
            i % 60,
            i * 7919,
            i % 1000,
            i % 97
        )
        .unwrap();
        i += 1;
    }
    out.truncate(bytes);
    out
}

fn compressing() -> SendOptions {
    SendOptions {
        compress: true,
        ..SendOptions::default()
    }
}

/// Sends through a counting proxy (that never cuts) and returns the bytes that crossed.
fn wire_bytes(srv: &TestServer, path: &std::path::Path, opts: &SendOptions) -> u64 {
    let proxy = CutProxy::start(srv.addr(), u64::MAX);
    send_file("127.0.0.1", proxy.addr.port(), path, opts).unwrap();
    proxy.forwarded.load(Ordering::SeqCst)
}

#[test]
fn logs_shrink_on_the_wire_and_arrive_identical() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let data = log_lines(20 << 20);
    let p = write_file(src.path(), "app.log", &data);
    let wire = wire_bytes(&srv, &p, &compressing());
    assert!(
        wire * 5 < data.len() as u64,
        "{wire} bytes for {}",
        data.len()
    );
    assert_eq!(std::fs::read(srv.path("app.log")).unwrap(), data);
}

#[test]
fn random_data_goes_as_it_is_and_a_refusing_receiver_gets_raw() {
    let src = tempfile::tempdir().unwrap();
    let noise = random_bytes(8 << 20, 9);
    let p = write_file(src.path(), "media.bin", &noise);
    let srv = TestServer::start(|_| {});
    let wire = wire_bytes(&srv, &p, &compressing());
    assert!(
        wire >= noise.len() as u64 && wire < noise.len() as u64 + 4096,
        "{wire}"
    );
    assert_eq!(std::fs::read(srv.path("media.bin")).unwrap(), noise);

    let plain = TestServer::start(|c| {
        c.accept_compression(false);
    });
    let logs = write_file(src.path(), "app.log", &log_lines(2 << 20));
    let wire = wire_bytes(&plain, &logs, &compressing());
    assert!(
        wire >= 2 << 20,
        "compressed although the receiver refused: {wire}"
    );
    assert_eq!(
        std::fs::read(plain.path("app.log")).unwrap(),
        std::fs::read(&logs).unwrap()
    );
}

fn zstd_client(srv: &TestServer) -> RawClient {
    let mut c = RawClient::connect(srv.addr());
    let mut hello = Vec::new();
    Hello::ours(CAP_ZSTD).encode(&mut hello);
    c.stream.write_all(&hello).unwrap();
    let (version, caps) = knsock::protocol::read_hello_reply(&mut c.stream).unwrap();
    assert_eq!((version, caps & CAP_ZSTD), (1, CAP_ZSTD));
    c
}

fn zstd_offer(name: &str, size: u64) -> Frame {
    Frame::Offer(Offer {
        size,
        mtime_secs: 0,
        mtime_nanos: 0,
        mode: 0o644,
        algorithm: 1,
        name: name.into(),
        raw_name: None,
        digest: Vec::new(),
        encoding: ENCODING_ZSTD,
        flags: 0,
    })
}

#[test]
fn a_decompression_bomb_is_refused_and_leaves_nothing() {
    let srv = TestServer::start(|_| {});
    let mut c = zstd_client(&srv);
    c.send(zstd_offer("bomb.bin", 1000));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    let bomb = zstd::bulk::compress(&vec![0u8; 50 << 20], 19).unwrap();
    assert!(bomb.len() < 64 * 1024);
    c.stream
        .write_all(&(bomb.len() as u32).to_be_bytes())
        .unwrap();
    c.stream.write_all(&bomb).unwrap();
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Protocol);
    assert!(msg.contains("more than the announced 1000 bytes"), "{msg}");
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
}

#[test]
fn an_encoding_that_was_not_negotiated_is_refused() {
    let srv = TestServer::start(|_| {});
    let mut c = RawClient::hello(srv.addr()); // no capabilities
    c.send(zstd_offer("x.bin", 10));
    match c.read() {
        Frame::Reject { code, text } => {
            assert_eq!(code, 9);
            assert!(text.contains("encoding 1 was not negotiated"), "{text}");
        }
        f => panic!("{f:?}"),
    }
}

#[test]
fn a_compressed_upload_resumes_after_a_cut() {
    let srv = TestServer::start(|c| {
        c.resume_ttl(Duration::from_secs(600));
    });
    let src = tempfile::tempdir().unwrap();
    let data = log_lines(40 << 20);
    let p = write_file(src.path(), "big.log", &data);
    let proxy = CutProxy::start(srv.addr(), 1 << 20); // about half of the compressed stream
    let opts = SendOptions {
        retries: 2,
        retry_delay: Duration::from_millis(10),
        ..compressing()
    };
    let report = send_file("127.0.0.1", proxy.addr.port(), &p, &opts).unwrap();
    assert_eq!(report.attempts, 2);
    assert!(report.resumed_from > 0, "did not resume");
    assert!(std::fs::read(srv.path("big.log")).unwrap() == data);
}
