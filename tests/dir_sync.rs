//! What a sender is told when the receiver cannot make a rename durable: the directory fsync
//! after the rename fails. (Its own test binary: the failure is injected process-wide.)

mod common;

use common::*;
use knsock::{send_file, ErrorKind, SendOptions};

#[test]
fn a_failed_directory_sync_is_reported_failed_with_the_file_in_place() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(50_000, 5);
    let p = write_file(src.path(), "doc.bin", &data);
    knsock::internals::fail_dir_sync(true);
    let err = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap_err();
    knsock::internals::fail_dir_sync(false);
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    let peer = err.peer_reason().expect("the receiver's reason");
    assert_eq!(peer.code, 7);
    assert!(
        peer.text.contains("directory could not be synced"),
        "{}",
        peer.text
    );
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Io);
    assert!(
        msg.contains("doc.bin") && msg.contains("may not survive a crash"),
        "{msg}"
    );
    // As documented: complete and verified under its final name, only not known durable.
    assert_eq!(std::fs::read(srv.path("doc.bin")).unwrap(), data);
    assert!(srv.received.try_recv().is_err(), "the received handler ran");
    // Once the disk behaves, sending again succeeds and replaces it.
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert_eq!(srv.next_received().name, "doc.bin");
}
