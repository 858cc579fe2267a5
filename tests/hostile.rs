//! What a hostile or broken peer can do to a server, and what a server can do to a sender:
//! traversal names, symlinks, garbage, truncation, stalls, protocol violations.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use knsock::protocol::{Frame, Hello, MAGIC};
use knsock::{send_file, ErrorKind, SendOptions};

#[test]
fn hostile_names_never_write_outside_the_directory() {
    let outside = tempfile::tempdir().unwrap();
    let srv = TestServer::start(|_| {});
    std::os::unix::fs::symlink(outside.path(), srv.path("link")).unwrap();
    std::fs::create_dir(srv.path("real")).unwrap();
    std::os::unix::fs::symlink(outside.path(), srv.path("real/deeper")).unwrap();
    let long = "a".repeat(5000);
    let long_component = format!("{}/x", "b".repeat(256));
    let deep = vec!["d"; 65].join("/");
    let names: Vec<&str> = vec![
        "../x",
        "../../etc/passwd",
        "/etc/passwd",
        "/tmp/x",
        "a/../../b",
        "a/../b",
        "..",
        ".",
        "./x",
        "a/./b",
        "",
        "a//b",
        "a/",
        "x\0y",
        "x\ny",
        "\u{1b}[31mred",
        "x\u{7f}",
        "..\\..\\windows\\system32",
        "a\\b",
        &long,
        &long_component,
        &deep,
        ".knsock-0000.tmp",
        "link/escaped.txt",
        "real/deeper/escaped.txt",
        "link/../../escaped.txt",
    ];
    assert!(names.len() >= 20);
    for name in &names {
        let mut c = RawClient::hello(srv.addr());
        match c.offer(name, 5) {
            Frame::Reject { code, text } => {
                assert_eq!(code, 5, "{name:?}: {text}");
                srv.next_error();
            }
            other => panic!("{name:?} was not refused: {other:?}"),
        }
    }
    assert!(
        list_tree(outside.path()).is_empty(),
        "{:?}",
        list_tree(outside.path())
    );
    assert_eq!(srv.entries(), vec!["link", "real", "real/deeper"]);

    // A symlink as the final component is replaced by a regular file in the directory; its
    // target outside is never written.
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "link", b"inside");
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert!(srv.path("link").symlink_metadata().unwrap().is_file());
    assert!(list_tree(outside.path()).is_empty());
}

#[test]
fn a_sender_that_dies_mid_file_leaves_nothing() {
    let srv = TestServer::start(|_| {});
    let mut c = RawClient::hello(srv.addr());
    assert_eq!(
        c.offer("partial.bin", 1_000_000),
        Frame::Accept { offset: 0 }
    );
    c.stream.write_all(&random_bytes(300_000, 1)).unwrap();
    drop(c); // killed
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Protocol);
    assert!(
        msg.contains("after 300000 of 1000000 bytes of 'partial.bin'"),
        "{msg}"
    );
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
}

#[test]
fn a_stalled_sender_hits_the_idle_timeout_and_frees_its_slot() {
    let srv = TestServer::start(|c| {
        c.idle_timeout(Duration::from_millis(300))
            .max_connections(1);
    });
    let mut c = RawClient::hello(srv.addr());
    assert_eq!(c.offer("stall.bin", 1000), Frame::Accept { offset: 0 });
    c.stream.write_all(&[1; 10]).unwrap();
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Timeout, "{msg}");
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
    // The only slot is free again.
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "after.txt", b"ok");
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    drop(c);
}

#[test]
fn a_receiver_that_never_answers_times_the_sender_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f", b"x");
    let o = SendOptions {
        timeout: Duration::from_millis(200),
        ..SendOptions::default()
    };
    let err = send_file("127.0.0.1", port, &p, &o).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    drop(listener);
}

#[test]
fn a_peer_that_is_not_knsock_is_a_protocol_error_for_the_sender() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f", b"x");
    let err = send_file("127.0.0.1", port, &p, &SendOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("does not speak knsock"), "{err}");
    t.join().unwrap();
}

#[test]
fn unsupported_versions_are_refused_with_a_clear_message() {
    let srv = TestServer::start(|_| {});
    let mut c = RawClient::connect(srv.addr());
    let mut buf = Vec::new();
    Hello {
        min_version: 2,
        max_version: 7,
        caps: 0,
    }
    .encode(&mut buf);
    c.stream.write_all(&buf).unwrap();
    assert_eq!(
        knsock::protocol::read_hello_reply(&mut c.stream).unwrap().0,
        0
    );
    match c.read() {
        Frame::Error { code, text } => {
            assert_eq!(code, 10);
            assert!(
                text.contains("unsupported protocol versions 2..=7"),
                "{text}"
            );
        }
        f => panic!("{f:?}"),
    }
    assert_eq!(srv.next_error().0, ErrorKind::Protocol);
}

#[test]
fn garbage_and_violations_close_the_connection_and_the_server_keeps_serving() {
    let srv = TestServer::start(|_| {});
    let mut cases: Vec<Vec<u8>> = vec![
        random_bytes(10_000, 1),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        [&MAGIC[..7], b"X".as_slice(), &[0; 6]].concat(), // bad magic
        [MAGIC.as_slice(), &[0, 1, 0, 1, 0xff, 0xff]].concat(), // oversized extension
    ];
    let mut hello = Vec::new();
    Hello::ours(0).encode(&mut hello);
    // A frame claiming 4 GiB, an unknown frame type, DONE before any OFFER, a short OFFER.
    cases.push([hello.as_slice(), &[1, 0xff, 0xff, 0xff, 0xff]].concat());
    cases.push([hello.as_slice(), &[99, 0, 0, 0, 0]].concat());
    let mut done = hello.clone();
    Frame::Done {
        algorithm: 1,
        digest: vec![0; 16],
    }
    .encode(&mut done);
    cases.push(done);
    cases.push([hello.as_slice(), &[1, 0, 0, 0, 3, 1, 2, 3]].concat());
    for (i, bytes) in cases.iter().enumerate() {
        let mut c = RawClient::connect(srv.addr());
        c.stream.write_all(bytes).unwrap();
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        c.read_to_end();
        let (kind, msg) = srv.next_error();
        assert_eq!(kind, ErrorKind::Protocol, "case {i}: {msg}");
    }
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "still.txt", b"serving");
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert_eq!(srv.entries(), vec!["still.txt"]);
}

#[test]
fn a_wrong_checksum_is_refused_and_nothing_is_kept() {
    let srv = TestServer::start(|_| {});
    let mut c = RawClient::hello(srv.addr());
    let data = random_bytes(10_000, 2);
    assert_eq!(c.offer("corrupt.bin", 10_000), Frame::Accept { offset: 0 });
    c.stream.write_all(&data).unwrap();
    let mut wrong = digest(&data);
    wrong[0] ^= 1;
    c.send(Frame::Done {
        algorithm: 1,
        digest: wrong,
    });
    match c.read() {
        Frame::Failed { seq, code, text } => {
            assert_eq!((seq, code), (0, 6));
            assert!(text.contains("checksum mismatch"), "{text}");
        }
        f => panic!("{f:?}"),
    }
    assert_eq!(srv.next_error().0, ErrorKind::Integrity);
    // The connection stays usable for the next file, which the raw client sends correctly.
    assert_eq!(c.offer("good.bin", 10_000), Frame::Accept { offset: 0 });
    c.stream.write_all(&data).unwrap();
    c.send(Frame::Done {
        algorithm: 1,
        digest: digest(&data),
    });
    assert_eq!(
        c.read(),
        Frame::Ok {
            seq: 1,
            name: "good.bin".into()
        }
    );
    c.send(Frame::Bye);
    assert_eq!(srv.entries(), vec!["good.bin"]);
    assert_eq!(std::fs::read(srv.path("good.bin")).unwrap(), data);
}

#[test]
fn pipelined_offers_get_their_verdicts_by_seq() {
    let srv = TestServer::start(|_| {});
    let mut c = RawClient::hello(srv.addr());
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("p{i}.txt"), random_bytes(100 + i * 7, i as u64)))
        .collect();
    // Content waits for ACCEPT; DONE goes out with the next OFFER, and verdicts (deferred for
    // the group commit) are collected whenever they come.
    let mut verdicts = Vec::new();
    let mut out = Vec::new();
    for (name, data) in &files {
        Frame::Offer(knsock::protocol::Offer {
            size: data.len() as u64,
            mtime_secs: 0,
            mtime_nanos: 0,
            mode: 0o600,
            algorithm: 1,
            name: name.clone(),
            raw_name: None,
            digest: Vec::new(),
            encoding: 0,
            flags: 0,
        })
        .encode(&mut out);
        c.stream.write_all(&out).unwrap();
        out.clear();
        loop {
            match c.read() {
                Frame::Accept { offset: 0 } => break,
                ok @ Frame::Ok { .. } => verdicts.push(ok),
                f => panic!("{f:?}"),
            }
        }
        out.extend_from_slice(data);
        Frame::Done {
            algorithm: 1,
            digest: digest(data),
        }
        .encode(&mut out);
    }
    c.stream.write_all(&out).unwrap();
    while verdicts.len() < files.len() {
        verdicts.push(c.read());
    }
    let expected: Vec<Frame> = files
        .iter()
        .enumerate()
        .map(|(i, (name, _))| Frame::Ok {
            seq: i as u32,
            name: name.clone(),
        })
        .collect();
    assert_eq!(verdicts, expected);
    for (name, data) in &files {
        assert_eq!(&std::fs::read(srv.path(name)).unwrap(), data);
    }
}

#[test]
fn a_refused_offer_leaves_no_directory_behind() {
    // Refused at each step of admission: the pre-data validator, the size limit, the space
    // reserve, the overwrite policy, and the name itself. None may create a directory.
    let srv = TestServer::start(|c| {
        c.max_file_size(Some(1000))
            .overwrite(knsock::Overwrite::Refuse)
            .validate_before(|f| match f.name.starts_with("v/") {
                true => Err("no v/ here".into()),
                false => Ok(()),
            });
    });
    std::fs::create_dir(srv.path("exists")).unwrap();
    std::fs::write(srv.path("exists/x.bin"), b"old").unwrap();
    for (name, size, code) in [
        ("v/a/b/c/x.bin", 5, 1),
        ("a/b/c/x.bin", 5000, 4),
        ("exists/x.bin", 5, 2),
        ("n/a/b/c/.knsock-x", 5, 5),
    ] {
        let mut c = RawClient::hello(srv.addr());
        match c.offer(name, size) {
            Frame::Reject { code: got, text } => assert_eq!(got, code, "{name}: {text}"),
            other => panic!("{name} was not refused: {other:?}"),
        }
        srv.next_error();
    }
    assert_eq!(srv.entries(), vec!["exists", "exists/x.bin"]);
}
