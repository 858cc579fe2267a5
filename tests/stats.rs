//! `Server::stats`: the counters after files stored, skipped, refused and sent as a delta; the
//! resources a file in flight holds while it is held; TLS handshakes and authentication
//! failures; and the refusal handler's code and reason.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::time::Duration;

use common::*;
use crossbeam_channel::{bounded, unbounded};
use knsock::{send_file, ErrorKind, SendOptions};
use pki::*;

fn skip_opts() -> SendOptions {
    SendOptions {
        skip_unchanged: true,
        ..SendOptions::default()
    }
}

#[test]
fn stats_count_stored_skipped_refused_and_delta_reuse() {
    let (rtx, refusals) = unbounded();
    let srv = TestServer::start(|c| {
        c.validate_before(|i| match i.name.starts_with("no") {
            true => Err("no files named no".into()),
            false => Ok(()),
        })
        .on_refused(move |info, r| {
            let _ = rtx.send((info.name.clone(), info.size, r.clone()));
        });
    });
    let src = tempfile::tempdir().unwrap();
    let mut data = random_bytes(2 << 20, 7);
    let a = write_file(src.path(), "a.bin", &data);
    // Larger than an eager file: refused before its content (REJECT), not after it.
    let no = write_file(src.path(), "no.bin", &random_bytes(100_000, 3));
    let port = srv.port();
    send_file("127.0.0.1", port, &a, &skip_opts()).unwrap();
    assert!(
        send_file("127.0.0.1", port, &a, &skip_opts())
            .unwrap()
            .skipped
    );
    let e = send_file("127.0.0.1", port, &no, &skip_opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    // A small change in the middle: the rest comes from the receiver's old copy.
    data[1 << 20] ^= 0xff;
    let a = write_file(src.path(), "a.bin", &data);
    let r = send_file("127.0.0.1", port, &a, &SendOptions::default()).unwrap();
    assert!(r.bytes_reused > 0, "{r:?}");

    let s = srv.server.stats();
    assert_eq!((s.files_received, s.files_skipped), (2, 1));
    assert_eq!((s.files_rejected[1], s.rejected(), s.failed()), (1, 1, 0));
    assert_eq!(s.bytes_stored, 2 * (2 << 20));
    assert_eq!(s.bytes_reused, r.bytes_reused);
    assert!(s.bytes_received >= (2 << 20) + r.bytes_sent);
    assert_eq!(s.connections_accepted, 4);
    assert_eq!((s.auth_failures, s.tls_handshakes, s.resumes), (0, 0, 0));
    assert_eq!((s.store_requests, s.store_failures), (0, 0));

    let (name, size, refused) = refusals.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert_eq!((name.as_str(), size), ("no.bin", 100_000));
    assert_eq!((refused.code, refused.after_data), (1, false));
    assert_eq!(refused.reason, "no files named no");
    assert!(refusals.try_recv().is_err());
}

#[test]
fn a_held_file_shows_in_the_resources_in_use() {
    let (at_commit, held) = bounded::<()>(0);
    let (release, released) = bounded::<()>(0);
    let srv = TestServer::start(|c| {
        c.max_connections(64).validate_after(move |_| {
            at_commit.send(()).unwrap();
            released.recv_timeout(EVENT_TIMEOUT).unwrap();
            Ok(())
        });
    });
    let src = tempfile::tempdir().unwrap();
    let a = write_file(src.path(), "a.bin", &random_bytes(300_000, 1));
    let port = srv.port();
    let sender = std::thread::spawn(move || send_file("127.0.0.1", port, &a, &skip_opts()));
    held.recv_timeout(EVENT_TIMEOUT).unwrap();
    let s = srv.server.stats();
    assert_eq!((s.connections_open, s.files_in_flight), (1, 1));
    assert_eq!(s.space_reserved, 300_000);
    assert_eq!(s.files_received, 0);
    assert!(s.descriptors_open > 0 && s.descriptors_limit >= s.descriptors_open);
    assert_eq!((s.connections_max, s.decoders_max), (64, 16));
    release.send(()).unwrap();
    sender.join().unwrap().unwrap();
    let s = srv.server.stats();
    assert_eq!(
        (s.files_in_flight, s.space_reserved, s.files_received),
        (0, 0, 1)
    );
    wait_for("the connection to close", || {
        srv.server.stats().connections_open == 0
    });
}

#[test]
fn stats_count_tls_handshakes_and_authentication_failures() {
    let keep = tempfile::tempdir().unwrap();
    let tokens = tokens_file(keep.path(), &[("alice", "alice-secret")]);
    let state = keep.path().join("state");
    let srv = TestServer::start(|c| {
        c.tls_self_signed(&state).tokens_file(&tokens);
    });
    let pin = srv.server.tls_pin().unwrap().to_string();
    let src = tempfile::tempdir().unwrap();
    let a = write_file(src.path(), "a.txt", b"hello");
    let port = srv.port();
    send_file(
        "127.0.0.1",
        port,
        &a,
        &with_token(&pin, "alice:alice-secret"),
    )
    .unwrap();
    let e = send_file("127.0.0.1", port, &a, &with_token(&pin, "alice:wrong")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    wait_for("the failure to be counted", || {
        srv.server.stats().auth_failures == 1
    });
    let s = srv.server.stats();
    assert_eq!((s.tls_handshakes, s.files_received), (2, 1));
    // The authentication failure is an error, not a file refusal.
    let (kind, _) = srv.errors.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(kind, ErrorKind::Auth);
}
