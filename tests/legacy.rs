//! kn-sock 0.3's wire format (`name\n`, `size\n`, raw bytes, close) on the same port as the
//! native protocol, with every protection, and the legacy sender. The real kn-sock 0.3 from PyPI
//! is exercised by tests/interop.

mod common;

use std::io::Write;

use common::*;
use knsock::{send_file, ErrorKind, SendOptions};

fn legacy_upload(srv: &TestServer, bytes: &[u8]) {
    let mut c = RawClient::connect(srv.addr());
    c.stream.write_all(bytes).unwrap();
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    c.read_to_end();
}

#[test]
fn legacy_uploads_are_stored_like_native_ones() {
    let srv = TestServer::start(|_| {});
    let data = random_bytes(300_000, 1);
    legacy_upload(
        &srv,
        &[b"old client.bin\n300000\n".as_slice(), &data].concat(),
    );
    let info = srv.next_received();
    assert_eq!(info.name, "old client.bin");
    assert_eq!(std::fs::read(srv.path("old client.bin")).unwrap(), data);
    // kn-sock strips whitespace around both lines; so do we.
    legacy_upload(&srv, b"  spaced.txt \r\n 5 \nhello");
    assert_eq!(srv.next_received().name, "spaced.txt");
    assert_eq!(std::fs::read(srv.path("spaced.txt")).unwrap(), b"hello");
    legacy_upload(&srv, b"empty.txt\n0\n");
    assert_eq!(srv.next_received().name, "empty.txt");
    assert_eq!(std::fs::read(srv.path("empty.txt")).unwrap(), b"");
}

#[test]
fn legacy_uploads_pass_through_validators_and_limits() {
    let srv = TestServer::start(|c| {
        c.max_file_size(Some(100))
            .validate_before(|f| match f.name.ends_with(".exe") {
                true => Err("no executables".into()),
                false => Ok(()),
            });
    });
    legacy_upload(&srv, b"tool.exe\n3\nabc");
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Rejected);
    assert!(msg.contains("refused 'tool.exe': no executables"), "{msg}");
    legacy_upload(&srv, &[b"big.bin\n101\n".as_slice(), &[0; 101]].concat());
    let (_, msg) = srv.next_error();
    assert!(msg.contains("exceeds the limit of 100 bytes"), "{msg}");
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
}

#[test]
fn hostile_legacy_uploads_are_refused_and_leave_nothing() {
    let outside = tempfile::tempdir().unwrap();
    let srv = TestServer::start(|_| {});
    std::os::unix::fs::symlink(outside.path(), srv.path("link")).unwrap();
    let long_name = format!("{}\n1\nx", "n".repeat(5000));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"../evil.txt\n4\nevil", "'..' path component"),
        (b"/tmp/evil.txt\n4\nevil", "absolute path"),
        (b"a/../../evil.txt\n4\nevil", "'..' path component"),
        (b"link/evil.txt\n4\nevil", "symlink or not a directory"),
        (b".knsock-1.tmp\n4\nevil", "reserved"),
        (b"\n4\nevil", "empty name"),
        (b"short.bin\n1000\nonly this much", "after 14 of 1000 bytes"),
        (b"nan.bin\nlots\nxxxx", "size \"lots\" is not a number"),
        (b"neg.bin\n-5\nxxxx", "size \"-5\" is not a number"),
        (b"huge.bin\n99999999999999999999999\nx", "is not a number"),
        (b"noline", "connection closed inside the name line"),
        (b"bin\xff\xfe.txt\n1\nx", "name is not UTF-8"),
        (long_name.as_bytes(), "name line longer than 4096 bytes"),
    ];
    for (bytes, expect) in &cases {
        legacy_upload(&srv, bytes);
        let (_, msg) = srv.next_error();
        assert!(
            msg.contains(expect),
            "{:?}: {msg}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        );
    }
    assert!(list_tree(outside.path()).is_empty());
    assert_eq!(srv.entries(), vec!["link"]);
    // Still serving.
    legacy_upload(&srv, b"fine.txt\n2\nok");
    assert_eq!(srv.next_received().name, "fine.txt");
}

#[test]
fn the_legacy_sender_reaches_a_server_and_knows_when_it_closed() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 3);
    let p = write_file(src.path(), "via-legacy.bin", &data);
    let o = SendOptions {
        legacy: true,
        ..SendOptions::default()
    };
    let r = send_file("127.0.0.1", srv.port(), &p, &o).unwrap();
    assert_eq!(r.bytes, 1 << 20);
    assert_eq!(srv.next_received().name, "via-legacy.bin");
    assert_eq!(std::fs::read(srv.path("via-legacy.bin")).unwrap(), data);
}
