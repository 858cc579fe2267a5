//! The receiver under hostile load and faults (issue 9): verdicts that never wait on the peer,
//! non-regular files, reserved space, bounded hashing and decoding, masked permissions, and a
//! reason for every failure.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use knsock::protocol::{Frame, Offer, ALGO_XXH3_128, CAP_EAGER, CAP_ZSTD};
use knsock::{send_file, ErrorKind, SendOptions};

/// Long enough that a test never sees it unless the receiver waits on the peer.
const SLOW: Duration = Duration::from_secs(120);

fn offer_of(name: &str, data: &[u8]) -> Offer {
    offer_of_size(name, data.len() as u64)
}

/// Sends one file eagerly: OFFER, content and DONE in one write.
fn send_eager(c: &mut RawClient, name: &str, data: &[u8]) {
    let mut out = Vec::new();
    eager_bytes(offer_of(name, data), data, &mut out);
    c.stream.write_all(&out).unwrap();
}

fn slow_server() -> TestServer {
    TestServer::start(|c| {
        c.idle_timeout(SLOW).header_timeout(SLOW);
    })
}

#[test]
fn a_verdict_does_not_wait_for_the_next_frame() {
    let srv = slow_server();
    let (mut c, caps) = RawClient::hello_with(srv.addr(), CAP_EAGER);
    assert_eq!(caps, CAP_EAGER);
    send_eager(&mut c, "a.txt", b"hello");
    // One byte of the next frame, then nothing: the verdict must come anyway.
    c.stream.write_all(&[1]).unwrap();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    match c.read() {
        Frame::Ok { seq: 0, name } => assert_eq!(name, "a.txt"),
        other => panic!("expected OK for a.txt, got {other:?}"),
    }
    assert_eq!(std::fs::read(srv.path("a.txt")).unwrap(), b"hello");
}

#[test]
fn a_verified_file_is_kept_when_the_connection_then_breaks() {
    let srv = slow_server();
    let (mut c, _) = RawClient::hello_with(srv.addr(), CAP_EAGER);
    send_eager(&mut c, "kept.txt", b"verified");
    // A broken frame right behind it, in the same write: the file was verified first.
    c.stream.write_all(&[42, 0, 0, 0, 0]).unwrap();
    match c.read() {
        Frame::Ok { seq: 0, .. } => {}
        other => panic!("expected OK, got {other:?}"),
    }
    match c.read() {
        Frame::Error { code: 9, text } => assert!(text.contains("unknown frame type"), "{text}"),
        other => panic!("expected ERROR 9, got {other:?}"),
    }
    assert_eq!(srv.next_received().name, "kept.txt");
    assert_eq!(std::fs::read(srv.path("kept.txt")).unwrap(), b"verified");
}

#[test]
fn a_peer_that_drips_a_frame_is_cut_off_with_a_reason() {
    let srv = TestServer::start(|c| {
        c.idle_timeout(SLOW)
            .header_timeout(Duration::from_millis(300));
    });
    let (mut c, _) = RawClient::hello_with(srv.addr(), 0);
    let started = Instant::now();
    c.stream.write_all(&[1, 0]).unwrap(); // two bytes of an OFFER's header, then nothing
    match c.read() {
        Frame::Error { code: 11, text } => assert!(text.contains("in time"), "{text}"),
        other => panic!("expected ERROR 11, got {other:?}"),
    }
    assert!(started.elapsed() < SLOW);
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Timeout, "{msg}");
}

#[test]
fn a_digest_offer_for_a_fifo_does_not_block_the_worker() {
    let srv = slow_server();
    let fifo = srv.path("pipe.bin");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut c = RawClient::hello(srv.addr());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut o = offer_of("pipe.bin", b"12345");
    o.digest = digest(b"12345");
    c.send(Frame::Offer(o));
    match c.read() {
        Frame::Accept { offset: 0 } => {}
        other => panic!("expected ACCEPT (a FIFO is never the same file), got {other:?}"),
    }
    drop(c);
    // Stopping completes: no worker is stuck in open(2) on the FIFO.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let server = srv.server;
    std::thread::spawn(move || {
        server.stop();
        let _ = tx.send(());
    });
    rx.recv_timeout(EVENT_TIMEOUT)
        .expect("stop did not complete");
}

#[test]
fn hashing_for_skip_comes_after_the_cheap_checks_and_once_per_file() {
    let srv = TestServer::start(|c| {
        c.max_file_size(Some(1 << 20)).hash_budget(3 << 20);
    });
    let big = random_bytes(2 << 20, 1);
    std::fs::write(srv.path("big.bin"), &big).unwrap();
    let mut c = RawClient::hello(srv.addr());
    // Over the size limit: refused before anything is hashed.
    let mut o = offer_of("big.bin", &big);
    o.digest = digest(&big);
    c.send(Frame::Offer(o.clone()));
    assert!(matches!(c.read(), Frame::Reject { code: 4, .. }));
    srv.next_error();
    drop(c);
    // Within the limit: the first check hashes the 2 MiB file, later ones are remembered, so a
    // budget of 3 MiB answers SKIP every time.
    let srv2 = TestServer::start(|c| {
        c.hash_budget(3 << 20);
    });
    std::fs::write(srv2.path("big.bin"), &big).unwrap();
    let mut c = RawClient::hello(srv2.addr());
    for _ in 0..5 {
        c.send(Frame::Offer(o.clone()));
        assert_eq!(c.read(), Frame::Skip);
    }
    // A budget that cannot cover the file: no SKIP, the content flows instead.
    let srv3 = TestServer::start(|c| {
        c.hash_budget(1 << 20);
    });
    std::fs::write(srv3.path("big.bin"), &big).unwrap();
    let mut c = RawClient::hello(srv3.addr());
    c.send(Frame::Offer(o));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
}

#[test]
fn zstd_decoders_are_capped_and_the_rest_send_raw() {
    let srv = TestServer::start(|c| {
        c.max_decoders(1);
    });
    let (_first, caps) = RawClient::hello_with(srv.addr(), CAP_ZSTD);
    assert_eq!(caps, CAP_ZSTD);
    let (second, caps) = RawClient::hello_with(srv.addr(), CAP_ZSTD);
    assert_eq!(caps, 0, "a second decoder was granted");
    drop(second);
    // The sender's compression falls back to raw and the file still arrives.
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "log.txt", &b"line\n".repeat(10_000));
    let opts = SendOptions {
        compress: true,
        ..SendOptions::default()
    };
    send_file("127.0.0.1", srv.port(), &p, &opts).unwrap();
    assert_eq!(
        std::fs::read(srv.path("log.txt")).unwrap(),
        b"line\n".repeat(10_000)
    );
}

#[test]
fn corrupt_compressed_content_gets_an_error_with_a_reason() {
    let srv = TestServer::start(|_| {});
    let (mut c, caps) = RawClient::hello_with(srv.addr(), CAP_ZSTD);
    assert_eq!(caps, CAP_ZSTD);
    let mut o = offer_of("z.bin", &[0u8; 100]);
    o.encoding = 1;
    c.send(Frame::Offer(o));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    let mut block = 10u32.to_be_bytes().to_vec();
    block.extend_from_slice(b"not zstd!!");
    c.stream.write_all(&block).unwrap();
    match c.read() {
        Frame::Error { code: 9, text } => assert!(text.contains("compressed"), "{text}"),
        other => panic!("expected ERROR 9, got {other:?}"),
    }
    srv.next_error();
    assert_eq!(srv.entries(), Vec::<String>::new());
}

#[test]
fn a_senders_mode_is_masked() {
    let srv = TestServer::start(|_| {});
    let mut c = RawClient::hello(srv.addr());
    for (name, mode, want) in [
        ("suid", 0o4777, 0o755),
        ("world", 0o666, 0o644),
        ("zero", 0, 0o644),
        ("exec", 0o750, 0o750),
    ] {
        let mut o = offer_of(name, b"x");
        o.mode = mode;
        c.send(Frame::Offer(o));
        assert_eq!(c.read(), Frame::Accept { offset: 0 });
        c.stream.write_all(b"x").unwrap();
        c.send(Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest: digest(b"x"),
        });
        assert!(matches!(c.read(), Frame::Ok { .. }));
        let got = std::fs::metadata(srv.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(got, want, "{name}: mode {mode:o}");
    }
}

#[test]
fn space_is_reserved_for_files_in_flight() {
    let Some(fs) = SmallFs::mount(4 << 20) else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let srv = TestServer::start(|c| {
        c.dir(fs.path());
    });
    let half = 2_500_000u64;
    let mut a = RawClient::hello(srv.addr());
    let mut b = RawClient::hello(srv.addr());
    // Each fits alone, not both: the second is refused before any data flows.
    a.send(Frame::Offer(offer_of("a.bin", &vec![1; half as usize])));
    assert_eq!(a.read(), Frame::Accept { offset: 0 });
    b.send(Frame::Offer(offer_of("b.bin", &vec![2; half as usize])));
    match b.read() {
        Frame::Reject { code: 3, text } => assert!(text.contains("in flight"), "{text}"),
        other => panic!("expected REJECT 3, got {other:?}"),
    }
    let data = vec![1u8; half as usize];
    a.stream.write_all(&data).unwrap();
    a.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(&data),
    });
    assert!(matches!(a.read(), Frame::Ok { .. }));
    assert_eq!(std::fs::read(fs.path().join("a.bin")).unwrap(), data);
    assert!(!fs.path().join("b.bin").exists());
}

#[test]
fn a_silent_connection_or_a_dripped_handshake_is_cut_off() {
    let state = tempfile::tempdir().unwrap();
    let srv = TestServer::start(|c| {
        c.idle_timeout(SLOW)
            .header_timeout(Duration::from_millis(300))
            .tls_self_signed(state.path())
            .allow_plaintext(true);
    });
    // Connected, nothing sent.
    let mut silent = RawClient::connect(srv.addr());
    assert!(silent.read_to_end().len() < 64);
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Timeout, "{msg}");
    // A TLS record header's first byte, then nothing: the handshake has a deadline too.
    let mut dripped = RawClient::connect(srv.addr());
    dripped.stream.write_all(&[0x16, 3]).unwrap();
    let _ = dripped.read_to_end();
    let (_, msg) = srv.next_error();
    assert!(msg.contains("handshake did not complete in time"), "{msg}");
}

#[test]
fn a_graceful_shutdown_lets_the_file_under_way_finish_and_refuses_new_ones() {
    let srv = slow_server();
    let addr = srv.addr();
    let data = random_bytes(1 << 20, 4);
    let mut c = RawClient::hello(addr);
    c.send(Frame::Offer(offer_of("under-way.bin", &data)));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    c.stream.write_all(&data[..1000]).unwrap();
    let server = srv.server;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let drained = server.shutdown(EVENT_TIMEOUT);
        let _ = tx.send(drained);
    });
    // No new connection is served once the listener is gone.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The file under way finishes; the next offer is refused; the sender leaves.
    c.stream.write_all(&data[1000..]).unwrap();
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(&data),
    });
    assert!(matches!(c.read(), Frame::Ok { seq: 0, .. }));
    c.send(Frame::Offer(offer_of("late.bin", b"late")));
    match c.read() {
        Frame::Reject { code: 8, text } => assert!(text.contains("shutting down"), "{text}"),
        other => panic!("expected REJECT 8, got {other:?}"),
    }
    c.send(Frame::Bye);
    drop(c);
    assert!(
        rx.recv_timeout(EVENT_TIMEOUT).unwrap(),
        "not drained in time"
    );
    assert_eq!(
        std::fs::read(srv.dir.path().join("under-way.bin")).unwrap(),
        data
    );
    assert!(!srv.dir.path().join("late.bin").exists());
}

#[test]
fn a_shutdown_that_runs_out_of_time_aborts_and_keeps_nothing_partial() {
    let srv = slow_server();
    let mut c = RawClient::hello(srv.addr());
    c.send(Frame::Offer(offer_of("stalled.bin", &[0u8; 100_000])));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    c.stream.write_all(&[0u8; 10]).unwrap();
    assert!(!srv.server.shutdown(Duration::from_millis(200)));
    assert_eq!(srv.entries(), Vec::<String>::new());
}

#[test]
fn a_dripped_hello_or_kn_sock_header_is_cut_off() {
    let srv = TestServer::start(|c| {
        c.idle_timeout(SLOW)
            .header_timeout(Duration::from_millis(300));
    });
    for start in [&b"\x89KN"[..], &b"notes.txt\n12"[..]] {
        let mut c = RawClient::connect(srv.addr());
        c.stream.write_all(start).unwrap();
        let _ = c.read_to_end();
        let (kind, msg) = srv.next_error();
        assert_eq!(kind, ErrorKind::Timeout, "{msg}");
        assert!(msg.contains("in time"), "{msg}");
    }
    assert_eq!(srv.entries(), Vec::<String>::new());
}
