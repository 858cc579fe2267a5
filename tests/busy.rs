//! A receiver at its connection cap (protocol code 17, docs/protocol.md section 1): the sender
//! reports it as `ErrorKind::Busy` with the receiver's text, and retries it with backoff as a
//! lost connection, for one file, a batch and a fan-out.

mod common;

use std::time::Duration;

use common::*;
use knsock::{send_file, send_files, send_files_to_many, ErrorKind, Receiver, SendOptions, Source};

fn retrying(retries: u32) -> SendOptions {
    SendOptions {
        retries,
        retry_delay: Duration::from_millis(10),
        ..SendOptions::default()
    }
}

/// Files `names` of a few bytes each in a fresh directory, as sources.
fn sources(names: &[&str]) -> (tempfile::TempDir, Vec<Source>) {
    let dir = tempfile::tempdir().unwrap();
    let list = names
        .iter()
        .map(|name| Source {
            path: write_file(dir.path(), name, name.as_bytes()),
            name: name.to_string(),
            size: name.len() as u64,
        })
        .collect();
    (dir, list)
}

fn assert_busy(e: &knsock::Error) {
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert!(
        e.message().starts_with("receiver busy, retry later: "),
        "{e}"
    );
    assert!(e.message().contains(BUSY_TEXT), "{e}");
    let reason = e.peer_reason().expect("the receiver's reason");
    assert_eq!((reason.code, reason.text.as_str()), (17, BUSY_TEXT));
}

#[test]
fn a_busy_receiver_fails_the_send_with_its_reason_and_no_retry_unless_asked() {
    let busy = BusyReceiver::start(BusyAt::Hello);
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f.txt", b"hello");
    let e = send_file("127.0.0.1", busy.port(), &p, &retrying(0)).unwrap_err();
    assert_busy(&e);
    assert_eq!(busy.attempts(), 1);
}

#[test]
fn a_busy_receiver_is_retried_with_backoff_as_often_as_allowed() {
    let busy = BusyReceiver::start(BusyAt::Hello);
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f.txt", b"hello");
    let e = send_file("127.0.0.1", busy.port(), &p, &retrying(2)).unwrap_err();
    assert_busy(&e);
    assert_eq!(busy.attempts(), 3, "the first attempt and two retries");
}

#[test]
fn a_receiver_busy_twice_gets_the_file_on_the_third_attempt() {
    let srv = TestServer::start(|_| {});
    let busy = BusyReceiver::busy_then(BusyAt::Hello, 2, Some(srv.addr()));
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f.txt", b"hello");
    let r = send_file("127.0.0.1", busy.port(), &p, &retrying(2)).unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(busy.attempts(), 3);
    assert_eq!(std::fs::read(srv.path("f.txt")).unwrap(), b"hello");
}

#[test]
fn an_error_17_after_the_hello_is_busy_and_retried_too() {
    let busy = BusyReceiver::start(BusyAt::FirstFrame);
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f.txt", b"hello");
    let e = send_file("127.0.0.1", busy.port(), &p, &retrying(0)).unwrap_err();
    assert_busy(&e);
    assert_eq!(busy.attempts(), 1);

    let srv = TestServer::start(|_| {});
    let busy = BusyReceiver::busy_then(BusyAt::FirstFrame, 1, Some(srv.addr()));
    let r = send_file("127.0.0.1", busy.port(), &p, &retrying(1)).unwrap();
    assert_eq!((r.attempts, busy.attempts()), (2, 2));
    assert_eq!(std::fs::read(srv.path("f.txt")).unwrap(), b"hello");
}

#[test]
fn a_batch_retries_a_busy_receiver_for_every_file() {
    let srv = TestServer::start(|_| {});
    let busy = BusyReceiver::busy_then(BusyAt::Hello, 1, Some(srv.addr()));
    let (_src, list) = sources(&["a.txt", "b.txt", "c.txt"]);
    let report = send_files("127.0.0.1", busy.port(), &list, &retrying(1)).unwrap();
    for f in &report.files {
        let r = f
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", f.source.name));
        assert_eq!(r.attempts, 2, "{}", f.source.name);
        assert_eq!(
            std::fs::read(srv.path(&f.source.name)).unwrap(),
            f.source.name.as_bytes()
        );
    }
    assert_eq!(busy.attempts(), 2);

    // Without retries each file reports the busy receiver.
    let busy = BusyReceiver::start(BusyAt::Hello);
    let report = send_files("127.0.0.1", busy.port(), &list, &retrying(0)).unwrap();
    assert_eq!(report.failed(), 3);
    report
        .files
        .iter()
        .for_each(|f| assert_busy(f.result.as_ref().unwrap_err()));
    assert_eq!(busy.attempts(), 1);
}

#[test]
fn a_fan_out_retries_the_busy_receiver_and_the_others_get_their_files() {
    let srv = TestServer::start(|_| {});
    let busy = BusyReceiver::start(BusyAt::Hello);
    let (_src, list) = sources(&["a.txt", "b.txt"]);
    let receivers = [
        Receiver::new("127.0.0.1", busy.port()),
        Receiver::new("127.0.0.1", srv.port()),
    ];
    let report = send_files_to_many(&receivers, &list, &retrying(2)).unwrap();
    let to_busy = report.receivers[0].result.as_ref().unwrap();
    assert_eq!(to_busy.failed(), 2);
    to_busy
        .files
        .iter()
        .for_each(|f| assert_busy(f.result.as_ref().unwrap_err()));
    assert_eq!(busy.attempts(), 3);
    let to_srv = report.receivers[1].result.as_ref().unwrap();
    assert_eq!(to_srv.delivered(), 2);
    for s in &list {
        assert_eq!(std::fs::read(srv.path(&s.name)).unwrap(), s.name.as_bytes());
    }
}
