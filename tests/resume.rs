//! Interrupted transfers resume where the receiver's data ends: a proxy cuts the connection at
//! 10%, 50% and 99% of 100 MiB, the sender's retry continues from there, and the bytes that
//! cross the wire in all add up to little more than the file.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use common::*;
use knsock::protocol::Frame;
use knsock::{send_file, SendOptions};

fn resumable_server() -> TestServer {
    TestServer::start(|c| {
        c.resume_ttl(Duration::from_secs(600));
    })
}

fn retrying() -> SendOptions {
    SendOptions {
        retries: 3,
        retry_delay: Duration::from_millis(10),
        ..SendOptions::default()
    }
}

#[test]
fn cuts_at_10_50_and_99_percent_resume_instead_of_starting_over() {
    const SIZE: u64 = 100 << 20;
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE as usize, 42);
    let p = write_file(src.path(), "big.bin", &data);
    for percent in [10u64, 50, 99] {
        let srv = resumable_server();
        let cut = SIZE * percent / 100;
        let proxy = CutProxy::start(srv.addr(), cut);
        let report = send_file("127.0.0.1", proxy.addr.port(), &p, &retrying()).unwrap();
        assert_eq!(report.attempts, 2, "{percent}%");
        assert!(
            report.resumed_from > cut - cut / 10 && report.resumed_from <= cut,
            "{percent}%: resumed from {} after a cut at {cut}",
            report.resumed_from
        );
        // What crossed is the content up to the cut, then the rest from where the receiver's
        // data ended, plus a few frames: nothing was sent twice beyond the bytes in flight.
        let wire = proxy.forwarded.load(Ordering::SeqCst);
        let resent = cut - report.resumed_from;
        assert!(
            wire >= SIZE && wire < SIZE + resent + 4096,
            "{percent}%: {wire} bytes crossed for a {SIZE}-byte file resumed {resent} bytes early"
        );
        let got = std::fs::read(srv.path("big.bin")).unwrap();
        assert!(got == data, "{percent}%: content differs");
        assert_eq!(srv.entries(), vec!["big.bin"], "{percent}%: leftovers");
    }
}

#[test]
fn a_reconnected_sender_takes_over_from_a_connection_still_open() {
    // A half-open connection (the sender's side is gone, the receiver never hears of it) holds
    // the upload. The sender's new connection ends it after a short grace and resumes from the
    // bytes it stored, instead of waiting for the idle timeout or starting over.
    const SIZE: usize = 4 << 20;
    const SENT: usize = 1 << 20;
    let srv = resumable_server();
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE, 7);
    let p = write_file(src.path(), "held.bin", &data);
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let mut old = RawClient::hello(srv.addr());
    old.send(Frame::Offer(offer_of_size("held.bin", SIZE as u64)));
    assert_eq!(old.read(), Frame::Accept { offset: 0 });
    old.stream.write_all(&data[..SENT]).unwrap();
    wait_for("the receiver to store the first MiB", || {
        std::fs::read_dir(srv.dir.path()).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name().to_string_lossy().ends_with(".tmp")
                && e.metadata().unwrap().len() == SENT as u64
        })
    });
    let report = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert_eq!((report.attempts, report.resumed_from), (1, SENT as u64));
    assert!(std::fs::read(srv.path("held.bin")).unwrap() == data);
    let stats = srv.server.stats();
    assert_eq!((stats.resumes, stats.files_received), (1, 1));
    assert_eq!(srv.entries(), vec!["held.bin"]);
    drop(old);
}

#[test]
fn a_source_changed_between_attempts_is_sent_whole() {
    let srv = resumable_server();
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "doc.bin", &random_bytes(4 << 20, 1));
    // First attempt cut at half, no retries: the receiver keeps the data.
    let proxy = CutProxy::start(srv.addr(), 2 << 20);
    let no_retry = SendOptions::default();
    assert!(send_file("127.0.0.1", proxy.addr.port(), &p, &no_retry).is_err());
    srv.next_error();
    assert!(
        srv.entries()
            .iter()
            .any(|e| e.starts_with(".knsock-partial-")),
        "{:?}",
        srv.entries()
    );
    // The file changes (same size, new content and time): it starts over from byte 0.
    let new_data = random_bytes(4 << 20, 2);
    std::fs::write(&p, &new_data).unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let report = send_file("127.0.0.1", srv.port(), &p, &no_retry).unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(srv.path("doc.bin")).unwrap(), new_data);
}

#[test]
fn without_resume_the_receiver_keeps_nothing_and_the_retry_starts_over() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(8 << 20, 3);
    let p = write_file(src.path(), "f.bin", &data);
    let proxy = CutProxy::start(srv.addr(), 4 << 20);
    let report = send_file("127.0.0.1", proxy.addr.port(), &p, &retrying()).unwrap();
    assert_eq!((report.attempts, report.resumed_from), (2, 0));
    assert_eq!(std::fs::read(srv.path("f.bin")).unwrap(), data);
    assert_eq!(srv.entries(), vec!["f.bin"]);
}

#[test]
fn refusals_are_not_retried() {
    let srv = TestServer::start(|c| {
        c.validate_before(|_| Err("never".into()));
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "x", b"x");
    let err = send_file("127.0.0.1", srv.port(), &p, &retrying()).unwrap_err();
    assert_eq!(err.peer_reason().unwrap().text, "never");
    srv.next_error();
    assert!(srv.errors.try_recv().is_err(), "the refusal was retried");
}

#[test]
fn the_startup_sweep_removes_expired_leftovers_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let old = SystemTime::now() - Duration::from_secs(7 * 24 * 3600);
    for name in [
        ".knsock-0123.tmp",
        "sub/.knsock-partial-00ff",
        "sub/.knsock-partial-fresh",
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, b"left over").unwrap();
        if !name.ends_with("fresh") {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
    std::fs::write(dir.path().join("keep.txt"), b"user data").unwrap();
    let mut cfg = knsock::ServerConfig::new(dir.path());
    cfg.host("127.0.0.1").resume_ttl(Duration::from_secs(3600));
    let server = cfg.start().unwrap();
    assert_eq!(
        list_tree(dir.path()),
        vec!["keep.txt", "sub", "sub/.knsock-partial-fresh"]
    );
    server.stop();
}
