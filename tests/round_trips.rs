//! Round trips (docs/protocol.md sections 1.3 and 3.1, issue 22): one small file in one exchange
//! after connecting, in plaintext and over TLS with a token; a batch's quick check decided by
//! probes in one exchange; a receiver of the previous release (without bits 6 and 7) still
//! served, through one more connection, and remembered. The sender counts the round trips it
//! waited for (`internals::take_send_turns`): a read that found nothing to read after it wrote.
//! On loopback an answer may already be there, so the count is at most what the exchange needs
//! over a real network; the old exchange needed one more each time.

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/secured.rs"]
mod secured;

use std::path::PathBuf;

use common::*;
use knsock::internals::{take_send_turns, withhold_capabilities};
use knsock::protocol::{self, Frame, Hello};
use knsock::{send_file, send_files, SendOptions, Source, TlsOptions};
use secured::secured;

/// `n` files of 4 KiB under `dir/` in a new directory, as sources named `dir/fNNNN`.
fn small_files(n: usize, seed: u64) -> (tempfile::TempDir, Vec<Source>) {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("dir")).unwrap();
    let sources = (0..n)
        .map(|i| {
            let name = format!("dir/f{i:04}");
            let path = write_file(src.path(), &name, &random_bytes(4096, seed + i as u64));
            Source {
                path,
                name,
                size: 4096,
            }
        })
        .collect();
    (src, sources)
}

fn skipping() -> SendOptions {
    SendOptions {
        skip_unchanged: true,
        ..SendOptions::default()
    }
}

fn one_file(data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f.bin", data);
    (src, p)
}

#[test]
fn one_small_file_takes_one_exchange_after_connecting() {
    let srv = TestServer::start(|_| {});
    let data = random_bytes(4096, 1);
    let (_src, p) = one_file(&data);
    take_send_turns();
    let r = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert!(take_send_turns() <= 1, "more than one round trip");
    assert_eq!((r.attempts, r.bytes_sent), (1, 4096));
    assert_eq!(std::fs::read(srv.path("f.bin")).unwrap(), data);
    assert_eq!(srv.server.stats().connections_accepted, 1);
}

#[test]
fn over_tls_with_a_token_too() {
    let s = secured(|_| {});
    let data = random_bytes(4096, 2);
    let (_src, p) = one_file(&data);
    let opts = SendOptions {
        tls: Some(TlsOptions {
            pin: Some(s.pin.clone()),
            ..TlsOptions::default()
        }),
        token: Some("alice:alice-secret".into()),
        ..SendOptions::default()
    };
    take_send_turns();
    send_file("127.0.0.1", s.srv.port(), &p, &opts).unwrap();
    // The TLS 1.3 handshake is one more, before the session starts.
    assert!(take_send_turns() <= 1, "more than one round trip");
    assert_eq!(std::fs::read(s.srv.path("f.bin")).unwrap(), data);
    // A wrong token sent in the first flight: refused with the reason, nothing stored.
    let (_src2, other) = {
        let src = tempfile::tempdir().unwrap();
        let p = write_file(src.path(), "g.bin", b"not stored");
        (src, p)
    };
    let wrong = SendOptions {
        token: Some("alice:wrong".into()),
        ..opts
    };
    let e = send_file("127.0.0.1", s.srv.port(), &other, &wrong).unwrap_err();
    assert_eq!(e.kind(), knsock::ErrorKind::Auth, "{e}");
    assert!(e.message().contains("authentication failed"), "{e}");
    assert_eq!(s.srv.entries(), ["f.bin"]);
}

#[test]
fn an_unchanged_rerun_of_1000_files_is_decided_in_one_exchange() {
    let srv = TestServer::start(|_| {});
    let (_src, sources) = small_files(1000, 10);
    take_send_turns();
    let first = send_files("127.0.0.1", srv.port(), &sources, &skipping()).unwrap();
    assert_eq!(first.failed(), 0);
    // Probes, then the changed (all new) files eagerly, then their verdicts.
    assert!(take_send_turns() <= 2, "more than two round trips");
    let again = send_files("127.0.0.1", srv.port(), &sources, &skipping()).unwrap();
    assert!(take_send_turns() <= 1, "more than one round trip");
    let skipped = again.files.iter().filter(|f| {
        f.result
            .as_ref()
            .is_ok_and(|r| r.skipped && r.bytes_sent == 0)
    });
    assert_eq!(skipped.count(), 1000);
    for s in sources.iter().step_by(97) {
        let stored = std::fs::read(srv.path(&s.name)).unwrap();
        assert_eq!(stored, std::fs::read(&s.path).unwrap(), "{}", s.name);
    }
    assert_eq!(srv.server.stats().files_skipped, 1000);
}

#[test]
fn probes_send_only_the_changed_files_and_a_large_one_as_a_delta() {
    let srv = TestServer::start(|_| {});
    let (src, mut sources) = small_files(300, 20);
    let big = random_bytes(3 << 20, 5);
    let path = write_file(src.path(), "big.bin", &big);
    sources.push(Source {
        path,
        name: "big.bin".into(),
        size: big.len() as u64,
    });
    send_files("127.0.0.1", srv.port(), &sources, &skipping()).unwrap();
    // Ten small files and the large one change; a small change in the middle of the large one.
    for s in sources.iter().take(10) {
        write_file(src.path(), &s.name, &random_bytes(4096, 99));
    }
    let mut changed = big.clone();
    changed[3 << 19] ^= 0xff;
    write_file(src.path(), "big.bin", &changed);
    let again = send_files("127.0.0.1", srv.port(), &sources, &skipping()).unwrap();
    assert_eq!(again.failed(), 0);
    let sent: Vec<&str> = again
        .files
        .iter()
        .filter(|f| !f.result.as_ref().unwrap().skipped)
        .map(|f| f.source.name.as_str())
        .collect();
    let mut expected: Vec<&str> = sources.iter().take(10).map(|s| s.name.as_str()).collect();
    expected.push("big.bin");
    assert_eq!(sent, expected);
    let big_report = again.files.last().unwrap().result.as_ref().unwrap();
    assert!(big_report.bytes_reused > 2 << 20, "{big_report:?}");
    assert_eq!(std::fs::read(srv.path("big.bin")).unwrap(), changed);
    assert_eq!(
        std::fs::read(srv.path(&sources[3].name)).unwrap(),
        random_bytes(4096, 99)
    );
}

#[test]
fn a_receiver_of_the_previous_release_gets_a_second_connection_once() {
    let srv =
        TestServer::start(|c| withhold_capabilities(c, protocol::CAP_EARLY | protocol::CAP_PROBE));
    let data = random_bytes(4096, 3);
    let (_src, p) = one_file(&data);
    let r = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert_eq!(r.attempts, 1);
    assert_eq!(std::fs::read(srv.path("f.bin")).unwrap(), data);
    assert_eq!(srv.entries(), ["f.bin"]);
    // The first connection ended at the EARLY frame, before any offer.
    let (kind, text) = srv.next_error();
    assert_eq!(kind, knsock::ErrorKind::Protocol, "{text}");
    assert!(text.contains("Early"), "{text}");
    assert_eq!(srv.server.stats().connections_accepted, 2);
    // Remembered: the next sends, a batch with the quick check too, take one connection.
    let (_src2, sources) = small_files(50, 30);
    let report = send_files("127.0.0.1", srv.port(), &sources, &skipping()).unwrap();
    assert_eq!(report.failed(), 0);
    let again = send_files("127.0.0.1", srv.port(), &sources, &skipping()).unwrap();
    assert!(again
        .files
        .iter()
        .all(|f| f.result.as_ref().unwrap().skipped));
    assert_eq!(srv.server.stats().connections_accepted, 4);
    assert_eq!(srv.server.stats().files_received, 51);
}

/// The hello of a sender asking for `caps`, its EARLY frame when it asks for bit 6, then `rest`.
fn session_bytes(caps: u32, rest: &[Frame]) -> Vec<u8> {
    let mut input = Vec::new();
    Hello::ours(caps).encode(&mut input);
    if caps & protocol::CAP_EARLY != 0 {
        Frame::Early.encode(&mut input);
    }
    for f in rest {
        f.encode(&mut input);
    }
    input
}

fn frames(mut out: &[u8]) -> (u32, Vec<Frame>) {
    let (_, caps) = protocol::read_hello_reply(&mut out).unwrap();
    let mut all = Vec::new();
    while let Some(f) = Frame::read_from(&mut out).unwrap() {
        all.push(f);
    }
    (caps, all)
}

fn quick(name: &str) -> Frame {
    let mut o = offer_of_size(name, 4096);
    o.flags = protocol::FLAG_QUICK;
    Frame::Offer(o)
}

#[test]
fn a_receiver_holds_nothing_for_probes_past_the_offer_window() {
    let dir = tempfile::tempdir().unwrap();
    let config = knsock::ServerConfig::new(dir.path());
    let caps = protocol::CAP_PIPELINE | protocol::CAP_PROBE | protocol::CAP_EARLY;
    let probes: Vec<Frame> = (0..protocol::PIPELINE_WINDOW + 100)
        .map(|i| quick(&format!("p{i}")))
        .chain([Frame::Bye])
        .collect();
    let input = session_bytes(caps, &probes);
    let (out, ended) = knsock::internals::serve_bytes(&config, &input).unwrap();
    ended.unwrap();
    let (granted, answers) = frames(&out);
    assert_eq!(granted, caps);
    assert_eq!(answers.len(), protocol::PIPELINE_WINDOW + 100);
    assert!(answers.iter().all(|f| *f == Frame::Changed), "{answers:?}");
    // Without bit 7 the same offers hold accepted files: the 257th is a protocol error.
    let input = session_bytes(protocol::CAP_PIPELINE, &probes);
    let (out, ended) = knsock::internals::serve_bytes(&config, &input).unwrap();
    assert!(ended.is_err());
    let (_, answers) = frames(&out);
    assert!(matches!(answers.last(), Some(Frame::Error { code: 9, .. })));
}

#[test]
fn an_early_frame_is_read_once_and_only_where_the_first_flight_was_granted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = knsock::ServerConfig::new(dir.path());
    let caps = protocol::CAP_EAGER | protocol::CAP_EARLY;
    // Twice: the second is a protocol error.
    let input = session_bytes(caps, &[Frame::Early]);
    let (out, _) = knsock::internals::serve_bytes(&config, &input).unwrap();
    let (_, answers) = frames(&out);
    assert!(
        matches!(&answers[..], [Frame::Error { code: 9, .. }]),
        "{answers:?}"
    );
    // A sender asking for bit 6 that does not send EARLY.
    let mut input = Vec::new();
    Hello::ours(caps).encode(&mut input);
    Frame::Bye.encode(&mut input);
    let (out, _) = knsock::internals::serve_bytes(&config, &input).unwrap();
    let (_, answers) = frames(&out);
    match &answers[..] {
        [Frame::Error { code: 9, text }] => assert!(text.contains("expected EARLY"), "{text}"),
        other => panic!("{other:?}"),
    }
    // A receiver that does not grant bit 6 says why, and a sender connects again without it.
    withhold_capabilities(&mut config, protocol::CAP_EARLY);
    let input = session_bytes(caps, &[quick("x"), Frame::Bye]);
    let (out, _) = knsock::internals::serve_bytes(&config, &input).unwrap();
    let (granted, answers) = frames(&out);
    assert_eq!(granted, protocol::CAP_EAGER);
    match &answers[..] {
        [Frame::Error { code: 9, text }] => assert!(text.contains("Early"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn a_receiver_that_cannot_grant_every_bit_asked_for_refuses_the_first_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = knsock::ServerConfig::new(dir.path());
    config.accept_compression(false);
    let caps = protocol::CAP_EAGER | protocol::CAP_EARLY | protocol::CAP_ZSTD;
    let input = session_bytes(caps, &[quick("x"), Frame::Bye]);
    let (out, _) = knsock::internals::serve_bytes(&config, &input).unwrap();
    let (granted, answers) = frames(&out);
    assert_eq!(granted, protocol::CAP_EAGER);
    match &answers[..] {
        [Frame::Error { code: 9, text }] => {
            assert!(text.contains("connect again without"), "{text}")
        }
        other => panic!("{other:?}"),
    }
    // A compressing sender then sends without the first flight, once.
    let srv = TestServer::start(|c| {
        c.accept_compression(false);
    });
    let data = random_bytes(4096, 4);
    let (_src, p) = one_file(&data);
    let opts = SendOptions {
        compress: true,
        ..SendOptions::default()
    };
    send_file("127.0.0.1", srv.port(), &p, &opts).unwrap();
    assert_eq!(std::fs::read(srv.path("f.bin")).unwrap(), data);
    assert_eq!(srv.server.stats().connections_accepted, 2);
}
