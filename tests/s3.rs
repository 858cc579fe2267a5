//! Received files into an S3 bucket of a real engine (SeaweedFS on 127.0.0.1): round trips of a
//! multipart-sized file and a 2,000-file batch, refusals and checksum lies that leave nothing in
//! the bucket, skip-unchanged and resume against it, and the store's failures as the sender and
//! the error handler see them.
#![cfg(feature = "s3")]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::s3::{Forwarder, TestBucket, READONLY_KEY, READONLY_SECRET};
use common::*;
use knsock::protocol::{Frame, ALGO_XXH3_128};
use knsock::{send_file, send_files, ErrorKind, SendOptions, Source};

/// A server storing into `bucket` under `prefix`, spooling in its own directory.
fn s3_server(
    bucket: &TestBucket,
    prefix: &str,
    tune: impl FnOnce(&mut knsock::ServerConfig),
) -> TestServer {
    s3_server_with(&bucket.config(prefix), tune)
}

/// A server storing into the bucket `cfg` names, spooling in its own directory.
fn s3_server_with(
    cfg: &knsock::S3Config,
    tune: impl FnOnce(&mut knsock::ServerConfig),
) -> TestServer {
    let store = Arc::new(knsock::S3Store::open(cfg).unwrap());
    TestServer::start(move |c| {
        c.object_store(store);
        tune(c);
    })
}

/// Sends a small file `name` with two retries allowed, through a proxy that counts the
/// attempts; it must fail with the store's `code` and a reason holding `text`, after
/// `attempts` connections, and the error handler must hear of each with `Store`.
fn send_failing_with(srv: &TestServer, name: &str, code: u16, text: &str, attempts: u64) {
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), name, b"content");
    let opts = SendOptions {
        retries: 2,
        retry_delay: Duration::from_millis(10),
        ..SendOptions::default()
    };
    let proxy = CutProxy::start(srv.addr(), u64::MAX);
    let err = send_file("127.0.0.1", proxy.addr.port(), &p, &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    let reason = err.peer_reason().unwrap();
    assert_eq!(reason.code, code);
    assert!(reason.text.contains(text), "{}", reason.text);
    assert_eq!(proxy.connections.load(Ordering::SeqCst), attempts);
    for _ in 0..attempts {
        let (kind, message) = srv.next_error();
        assert_eq!(kind, ErrorKind::Store);
        assert!(message.contains(name), "{message}");
    }
}

#[test]
fn a_multipart_file_and_a_batch_of_2000_arrive_whole_and_verified() {
    let bucket = TestBucket::new("round-trip");
    let srv = s3_server(&bucket, "backup/host1", |_| {});
    let src = tempfile::tempdir().unwrap();
    let big = random_bytes(40 << 20, 1); // three 16 MiB parts
    let p = write_file(src.path(), "big.bin", &big);
    let report = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert_eq!(report.bytes, big.len() as u64);
    assert!(bucket.get("backup/host1/big.bin").unwrap() == big);
    let received = srv.next_received();
    assert_eq!(received.name, "big.bin");
    assert_eq!(
        received.path.unwrap().to_str().unwrap(),
        bucket.url("backup/host1/big.bin")
    );

    let mut sources = Vec::new();
    for i in 0..2000 {
        let name = format!("d{}/f{i:04}.txt", i % 7);
        let data = random_bytes(4096, i);
        std::fs::create_dir_all(src.path().join(format!("d{}", i % 7))).unwrap();
        let path = write_file(src.path(), &name, &data);
        sources.push(Source {
            path,
            name,
            size: 4096,
        });
    }
    let batch = send_files("127.0.0.1", srv.port(), &sources, &SendOptions::default()).unwrap();
    assert_eq!((batch.delivered(), batch.failed()), (2000, 0));
    let keys = bucket.keys();
    assert_eq!(keys.len(), 2001);
    for (i, s) in sources.iter().enumerate().step_by(97) {
        let got = bucket.get(&format!("backup/host1/{}", s.name)).unwrap();
        assert!(got == random_bytes(4096, i as u64), "{}", s.name);
    }
    assert!(bucket.uploads().is_empty());
    assert_eq!(
        srv.entries(),
        Vec::<String>::new(),
        "the spool keeps nothing"
    );
}

#[test]
fn refusals_and_checksum_lies_leave_no_object_and_no_upload() {
    let bucket = TestBucket::new("refusals");
    let srv = s3_server(&bucket, "", |c| {
        c.validate_after(|f| match f.name.as_str() {
            "refused.bin" => Err("not this one".into()),
            _ => Ok(()),
        })
        .max_file_size(Some(64 << 20));
    });
    let src = tempfile::tempdir().unwrap();
    // The post-data validator sees the verified content (spooled) and refuses it.
    let data = random_bytes(20 << 20, 2);
    let p = write_file(src.path(), "refused.bin", &data);
    let err = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap_err();
    assert_eq!(err.peer_reason().unwrap().text, "not this one");
    // Over the maximum size: refused before any data.
    let p = write_file(src.path(), "huge.bin", &[]);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let err = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    // A sender that lies about the checksum of a multipart-sized file.
    let mut c = RawClient::hello(srv.addr());
    c.send(Frame::Offer(offer_of_size("lie.bin", data.len() as u64)));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    use std::io::Write;
    c.stream.write_all(&data).unwrap();
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: vec![0; 16],
    });
    match c.read() {
        Frame::Failed { code, .. } => assert_eq!(code, 6),
        other => panic!("expected FAILED, got {other:?}"),
    }
    assert_eq!(bucket.keys(), Vec::<String>::new());
    assert!(bucket.uploads().is_empty());
    assert_eq!(srv.entries(), Vec::<String>::new());
}

#[test]
fn skip_unchanged_and_resume_work_against_the_bucket() {
    let bucket = TestBucket::new("rerun");
    let srv = s3_server(&bucket, "p", |c| {
        c.resume_ttl(Duration::from_secs(600));
    });
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(24 << 20, 3);
    let p = write_file(src.path(), "f.bin", &data);
    // Cut at half: the retry resumes from what the receiver kept.
    let proxy = CutProxy::start(srv.addr(), 12 << 20);
    let opts = SendOptions {
        retries: 2,
        retry_delay: Duration::from_millis(10),
        ..SendOptions::default()
    };
    let report = send_file("127.0.0.1", proxy.addr.port(), &p, &opts).unwrap();
    assert_eq!(report.attempts, 2);
    assert!(report.resumed_from > 0, "{report:?}");
    assert!(bucket.get("p/f.bin").unwrap() == data);
    // The same file again: the quick check (size and mtime, from the object's metadata)
    // skips it. The object went up while it arrived, before its digest was known, so the
    // first digest check sends it again (its offer carries the digest, which the new object
    // records); the next one skips it.
    let quick = SendOptions {
        skip_unchanged: true,
        ..SendOptions::default()
    };
    assert!(
        send_file("127.0.0.1", srv.port(), &p, &quick)
            .unwrap()
            .skipped
    );
    let by_digest = SendOptions {
        skip_unchanged: true,
        checksum: true,
        ..SendOptions::default()
    };
    assert!(
        !send_file("127.0.0.1", srv.port(), &p, &by_digest)
            .unwrap()
            .skipped
    );
    assert!(
        send_file("127.0.0.1", srv.port(), &p, &by_digest)
            .unwrap()
            .skipped
    );
    // A small file goes up whole after verification, with its digest.
    let small = write_file(src.path(), "small.txt", b"small");
    send_file("127.0.0.1", srv.port(), &small, &SendOptions::default()).unwrap();
    assert!(
        send_file("127.0.0.1", srv.port(), &small, &by_digest)
            .unwrap()
            .skipped
    );
    // Changed content, same size: sent again.
    let new_data = random_bytes(24 << 20, 4);
    std::fs::write(&p, &new_data).unwrap();
    let opts = SendOptions {
        skip_unchanged: true,
        checksum: true,
        ..SendOptions::default()
    };
    assert!(
        !send_file("127.0.0.1", srv.port(), &p, &opts)
            .unwrap()
            .skipped
    );
    assert!(bucket.get("p/f.bin").unwrap() == new_data);
    // A name valid on a disk whose key would be too long for S3 (1,024 bytes): refused.
    let long = vec!["d".repeat(250); 5].join("/");
    let mut c = RawClient::hello(srv.addr());
    match c.offer(&long, 10) {
        Frame::Reject { code, text } => {
            assert_eq!(code, 5);
            assert!(text.contains("too long for the object store"), "{text}");
        }
        other => panic!("expected REJECT, got {other:?}"),
    }
    // Beyond what S3 stores (5 TiB), with no limit of the server's own: refused before any
    // data.
    match c.offer("enormous.bin", 6 << 40) {
        Frame::Reject { code, text } => {
            assert_eq!(code, 4);
            assert!(text.contains("object store's limit"), "{text}");
        }
        other => panic!("expected REJECT, got {other:?}"),
    }
}

#[test]
fn a_missing_bucket_and_wrong_keys_fail_clearly() {
    let bucket = TestBucket::new("errors");
    let mut cfg = bucket.config("");
    cfg.secret_key = Some("wrong".into());
    let err = knsock::S3Store::open(&cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.message().contains("access denied"), "{err}");
    let mut cfg = bucket.config("");
    cfg.bucket = "no-such-bucket-here".into();
    cfg.prefix = String::new();
    let err = knsock::S3Store::open(&cfg).unwrap_err();
    assert!(err.message().contains("does not exist"), "{err}");
    let refusing = RefusingPort::new();
    let mut cfg = bucket.config("");
    cfg.endpoint = Some(format!("http://127.0.0.1:{}", refusing.port));
    let err = knsock::S3Store::open(&cfg).unwrap_err();
    assert!(err.message().contains("unreachable"), "{err}");
    cfg.endpoint = Some("ftp://example".into());
    let err = knsock::S3Store::open(&cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // Keys that may read but not write: the server starts (the bucket answers), and each file
    // is refused by the store. The sender is told why, not retried, and the error handler gets
    // the store's code.
    let mut cfg = bucket.config("");
    cfg.access_key = Some(READONLY_KEY.into());
    cfg.secret_key = Some(READONLY_SECRET.into());
    let srv = s3_server_with(&cfg, |_| {});
    // Not retried: one attempt.
    send_failing_with(&srv, "denied.txt", 16, "access denied", 1);
    assert_eq!(bucket.keys(), Vec::<String>::new());
    assert_eq!(srv.entries(), Vec::<String>::new());
}

#[test]
fn a_store_that_becomes_unreachable_fails_files_with_a_code_the_sender_retries() {
    let bucket = TestBucket::new("unreachable");
    let forwarder = Forwarder::start();
    let mut cfg = bucket.config("");
    cfg.endpoint = Some(forwarder.endpoint.clone());
    let srv = s3_server_with(&cfg, |_| {});
    forwarder.cut();
    // Retried: three attempts.
    send_failing_with(&srv, "late.txt", 15, "unreachable", 3);
    assert_eq!(srv.entries(), Vec::<String>::new());
    // The statistics count the store's requests (the bucket check at open among them) and
    // failures, and the three files refused with code 15.
    let s = srv.server.stats();
    assert!(
        s.store_failures >= 3 && s.store_requests > s.store_failures,
        "{s:?}"
    );
    assert_eq!(s.files_rejected[15] + s.files_failed[15], 3);
}

#[test]
fn the_refuse_policy_keeps_an_object_another_writer_stored_first() {
    // The validator plays another receiver sharing the bucket: it stores the object after
    // this one found the name free, before this one uploads (or completes) it.
    let bucket = Arc::new(TestBucket::new("refuse"));
    let b = Arc::clone(&bucket);
    let srv = s3_server(&bucket, "", move |c| {
        c.overwrite(knsock::Overwrite::Refuse)
            .validate_after(move |f| {
                b.put(&f.name, b"the other writer's");
                Ok(())
            });
    });
    let src = tempfile::tempdir().unwrap();
    for (name, size) in [("small.bin", 1000usize), ("large.bin", 20 << 20)] {
        let p = write_file(src.path(), name, &random_bytes(size, 5));
        let err = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap_err();
        let reason = err.peer_reason().unwrap();
        assert_eq!(reason.code, 2, "{name}: {}", reason.text);
        assert_eq!(bucket.get(name).unwrap(), b"the other writer's", "{name}");
        // Found at admission the second time: refused before any data.
        let err = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap_err();
        assert_eq!(err.peer_reason().unwrap().code, 2);
    }
    assert!(bucket.uploads().is_empty());
}

#[test]
fn keep_both_is_refused_with_an_object_store() {
    let bucket = TestBucket::new("rename");
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = knsock::ServerConfig::new(spool.path());
    cfg.object_store(bucket.store("") as Arc<dyn knsock::ObjectStore>)
        .overwrite(knsock::Overwrite::Rename);
    let err = cfg.start().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("object store"), "{err}");
}
