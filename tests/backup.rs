//! Backup re-runs (issue 11): pipelined decisions, the quick check and `checksum`, digests kept
//! on stored files, and delta transfer of changed files, with the report's byte counters.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use knsock::protocol::{self, Frame, Offer, ALGO_XXH3_128};
use knsock::{send_file, send_files, ErrorKind, SendOptions, SendReport, Source};

fn sources_in(dir: &std::path::Path, files: &[(&str, Vec<u8>)]) -> Vec<Source> {
    files
        .iter()
        .map(|(name, data)| Source {
            path: write_file(dir, name, data),
            name: name.to_string(),
            size: data.len() as u64,
        })
        .collect()
}

fn reports(r: knsock::BatchReport) -> Vec<SendReport> {
    r.files.into_iter().map(|f| f.result.unwrap()).collect()
}

fn set_mtime(path: &std::path::Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn skip(checksum: bool) -> SendOptions {
    SendOptions {
        skip_unchanged: true,
        checksum,
        ..SendOptions::default()
    }
}

#[test]
fn an_unchanged_tree_sends_no_content_whatever_the_sizes() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i}"), random_bytes(1 + i * 9_000, i as u64)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let sources = sources_in(src.path(), &refs);
    for checksum in [false, true] {
        let first =
            reports(send_files("127.0.0.1", srv.port(), &sources, &skip(checksum)).unwrap());
        let again =
            reports(send_files("127.0.0.1", srv.port(), &sources, &skip(checksum)).unwrap());
        assert!(
            again.iter().all(|r| r.skipped && r.bytes_sent == 0),
            "{again:?}"
        );
        if !checksum {
            let sent: u64 = first.iter().map(|r| r.bytes_sent).sum();
            assert_eq!(sent, sources.iter().map(|s| s.size).sum::<u64>());
        }
    }
    for (name, data) in &files {
        assert_eq!(&std::fs::read(srv.path(name)).unwrap(), data);
    }
}

#[test]
fn quick_check_and_checksum_behave_as_documented() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(10_000, 1);
    let sources = sources_in(src.path(), &[("a", data.clone()), ("b", vec![7; 100])]);
    send_files("127.0.0.1", srv.port(), &sources, &skip(false)).unwrap();
    let path = &sources[0].path;
    let t0 = std::fs::metadata(path).unwrap().modified().unwrap();

    // Same content, touched: the quick check sends it again; checksum skips it.
    set_mtime(path, t0 + Duration::from_secs(5));
    let r = reports(send_files("127.0.0.1", srv.port(), &sources, &skip(true)).unwrap());
    assert!(r[0].skipped && r[1].skipped);
    let r = reports(send_files("127.0.0.1", srv.port(), &sources, &skip(false)).unwrap());
    assert!(!r[0].skipped && r[1].skipped);
    assert_eq!(r[0].bytes_sent, 10_000);

    // New content, same size and mtime: the quick check keeps the copy; checksum sends it.
    let t1 = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut changed = data.clone();
    changed[5000] ^= 1;
    std::fs::write(path, &changed).unwrap();
    set_mtime(path, t1);
    let r = reports(send_files("127.0.0.1", srv.port(), &sources, &skip(false)).unwrap());
    assert!(r[0].skipped);
    assert_eq!(std::fs::read(srv.path("a")).unwrap(), data);
    let r = reports(send_files("127.0.0.1", srv.port(), &sources, &skip(true)).unwrap());
    assert!(!r[0].skipped);
    assert_eq!(std::fs::read(srv.path("a")).unwrap(), changed);

    // Without skip_unchanged every file is sent, as before.
    let r =
        reports(send_files("127.0.0.1", srv.port(), &sources, &SendOptions::default()).unwrap());
    assert!(r.iter().all(|r| !r.skipped));
}

#[test]
fn a_stored_file_keeps_its_digest_for_the_next_run() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let sources = sources_in(src.path(), &[("kept", random_bytes(5000, 3))]);
    send_files("127.0.0.1", srv.port(), &sources, &skip(true)).unwrap();
    let stored = std::fs::File::open(srv.path("kept")).unwrap();
    let mut buf = [0u8; 64];
    match rustix::fs::fgetxattr(&stored, "user.knsock.xxh3", &mut buf[..]) {
        Ok(n) => {
            assert_eq!(n, 45);
            assert_eq!(
                &buf[1..17],
                &digest(&std::fs::read(&sources[0].path).unwrap())[..]
            );
        }
        // A file system without user attributes: the receiver hashes instead.
        Err(e) => assert_eq!(e, rustix::io::Errno::NOTSUP),
    }
    let r = reports(send_files("127.0.0.1", srv.port(), &sources, &skip(true)).unwrap());
    assert!(r[0].skipped);
}

/// Sends `path` to `srv` as `name`.
fn send_as(srv: &TestServer, path: &std::path::Path, name: &str, opts: &SendOptions) -> SendReport {
    let opts = SendOptions {
        remote_name: Some(name.into()),
        ..opts.clone()
    };
    send_file("127.0.0.1", srv.port(), path, &opts).unwrap()
}

#[test]
fn a_grown_log_file_sends_only_its_tail() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let mut log = random_bytes(3 << 20, 5);
    let path = write_file(src.path(), "app.log", &log);
    let first = send_as(&srv, &path, "app.log", &SendOptions::default());
    assert_eq!((first.bytes_sent, first.bytes_reused), (3 << 20, 0));
    let tail = random_bytes(100_000, 6);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&tail)
        .unwrap();
    log.extend_from_slice(&tail);
    let r = send_as(&srv, &path, "app.log", &SendOptions::default());
    assert_eq!(std::fs::read(srv.path("app.log")).unwrap(), log);
    assert!(r.bytes_sent < 200_000, "{r:?}");
    assert!(r.bytes_reused > (3 << 20) - 100_000, "{r:?}");
    // --no-delta: the whole file again.
    let plain = SendOptions {
        delta: false,
        ..SendOptions::default()
    };
    let r = send_as(&srv, &path, "app.log", &plain);
    assert_eq!((r.bytes_sent, r.bytes_reused), (log.len() as u64, 0));
}

/// `old` with a few regions changed, bytes inserted and bytes deleted.
fn edited(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    new[100_000..100_100].fill(0xAB);
    let third = old.len() / 3;
    new.splice(third..third, random_bytes(3000, 9));
    new.drain(2 * third..2 * third + 4000);
    let end = new.len() - 10;
    new[end..].fill(1);
    new
}

#[test]
fn a_large_changed_file_arrives_identical_with_far_fewer_bytes() {
    for compress in [false, true] {
        let srv = TestServer::start(|_| {});
        let src = tempfile::tempdir().unwrap();
        let old = random_bytes(8 << 20, 7);
        let path = write_file(src.path(), "big", &old);
        let opts = SendOptions {
            compress,
            ..SendOptions::default()
        };
        send_as(&srv, &path, "big", &opts);
        let new = edited(&old);
        std::fs::write(&path, &new).unwrap();
        let r = send_as(&srv, &path, "big", &opts);
        assert_eq!(std::fs::read(srv.path("big")).unwrap(), new);
        assert!(r.bytes_sent < 200_000, "{r:?}");
        assert!(r.bytes_reused + 200_000 > new.len() as u64, "{r:?}");
        assert!(!srv.entries().iter().any(|e| e.contains(".knsock-")));
    }
}

#[test]
fn an_old_copy_changed_during_the_delta_falls_back_to_a_full_send() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let old = random_bytes(4 << 20, 11);
    let path = write_file(src.path(), "db", &old);
    send_as(&srv, &path, "db", &SendOptions::default());
    let new = edited(&old);
    std::fs::write(&path, &new).unwrap();
    // On the first progress report of the delta, the receiver's copy changes near its end,
    // before the sender has asked for those chunks.
    let stored = srv.path("db");
    let once = Arc::new(AtomicBool::new(false));
    let opts = SendOptions {
        progress: Some(Arc::new(move |_, sent, _| {
            if sent > 0 && !once.swap(true, Ordering::SeqCst) {
                let f = std::fs::File::options().write(true).open(&stored).unwrap();
                use std::os::unix::fs::FileExt;
                f.write_all_at(&[0x5A; 8192], (4 << 20) - 20_000).unwrap();
            }
            true
        })),
        ..SendOptions::default()
    };
    let r = send_as(&srv, &path, "db", &opts);
    assert_eq!(std::fs::read(srv.path("db")).unwrap(), new);
    assert_eq!(
        (r.bytes_sent, r.bytes_reused),
        (new.len() as u64, 0),
        "sent in full"
    );
}

/// A raw client that offers `name` (of `data`) with pipelining and delta, asks for the
/// signature and reads it; returns the client and the signature's chunk count.
fn delta_client(srv: &TestServer, name: &str, data: &[u8]) -> (RawClient, usize) {
    let (c, lens) = common::delta_client(
        srv.addr(),
        Offer {
            mtime_secs: 0,
            ..offer_of_size(name, data.len() as u64)
        },
    );
    (c, lens.len())
}

#[test]
fn a_corrupt_delta_is_refused_and_nothing_replaced() {
    let srv = TestServer::start(|_| {});
    let old = random_bytes(2 << 20, 13);
    std::fs::write(srv.path("f"), &old).unwrap();
    let new = random_bytes(2 << 20, 14);

    // A copy past the signature: a protocol error, the connection ends.
    let (mut c, chunks) = delta_client(&srv, "f", &new);
    c.send(Frame::Copy {
        index: chunks as u32,
        count: 1,
    });
    match c.read() {
        Frame::Error { code, .. } => assert_eq!(code, protocol::Code::Protocol as u16),
        f => panic!("{f:?}"),
    }
    // Well formed, exactly the offered size, but wrong: the whole-file checksum refuses it.
    let (mut c, _) = delta_client(&srv, "f", &new);
    let mut wrong = new.clone();
    wrong[1000] ^= 1;
    for piece in wrong.chunks(protocol::delta::LITERAL_BLOCK) {
        c.send(Frame::Literal(piece.to_vec()));
    }
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(&new),
    });
    match c.read() {
        Frame::Failed { code, .. } => assert_eq!(code, protocol::Code::Checksum as u16),
        f => panic!("{f:?}"),
    }
    assert_eq!(std::fs::read(srv.path("f")).unwrap(), old);
    assert_eq!(srv.entries(), ["f"]);
}

#[test]
fn a_corrupt_signature_is_refused_by_the_sender() {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut s, &mut first).unwrap();
        let hello = protocol::Hello::read_after_first_byte(&mut s).unwrap();
        let mut out = Vec::new();
        // Everything asked is granted: a first flight follows its EARLY frame.
        protocol::encode_hello_reply(1, hello.caps, &mut out);
        s.write_all(&out).unwrap();
        if hello.caps & protocol::CAP_EARLY != 0 {
            assert_eq!(Frame::read_from(&mut s).unwrap(), Some(Frame::Early));
        }
        assert!(matches!(
            Frame::read_from(&mut s).unwrap(),
            Some(Frame::Offer(_))
        ));
        Frame::Basis { old_size: 2 << 20 }.write_to(&mut s).unwrap();
        assert!(matches!(
            Frame::read_from(&mut s).unwrap(),
            Some(Frame::Delta { seq: 0 })
        ));
        // Chunks that do not add up to the old size.
        Frame::Sig(vec![(4096, 1), (4096, 2)])
            .write_to(&mut s)
            .unwrap();
        Frame::Sig(vec![]).write_to(&mut s).unwrap();
        // The sender sends nothing more: it closes.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut rest);
        rest
    });
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "f", &random_bytes(2 << 20, 1));
    let e = send_file("127.0.0.1", port, &path, &SendOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.message().contains("signature"), "{e}");
    assert!(
        fake.join().unwrap().len() < 64,
        "no content after a corrupt signature"
    );
}
