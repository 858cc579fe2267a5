//! Fetching back from an S3-backed receiver (a real engine, SeaweedFS on 127.0.0.1): a tree sent
//! to the bucket comes back identical in bytes, modification times and modes, its content read
//! by streamed GETs (a changed local copy as a delta); and each identity fetches only from its
//! own prefix.
#![cfg(feature = "s3")]

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/secured.rs"]
mod secured;

use std::os::unix::fs::PermissionsExt;

use common::s3::TestBucket;
use common::*;
use knsock::{
    collect_sources, fetch_file, fetch_files, send_file, send_files, ErrorKind, FetchOptions,
    WalkOptions,
};
use pki::*;
use secured::*;

/// A TLS receiver storing into `bucket`, with tokens for alice and bob (each confined to a
/// prefix of their own), serving fetches.
fn secured_bucket(bucket: &TestBucket) -> Secured {
    let store = bucket.store("");
    secured(|c| {
        c.object_store(store)
            .confine_identities(true)
            .allow_fetch(true);
    })
}

#[test]
fn a_tree_sent_to_the_bucket_comes_back_identical() {
    let bucket = TestBucket::new("fetch-tree");
    let s = secured_bucket(&bucket);
    let local = tempfile::tempdir().unwrap();
    // Large enough to go up in parts (its object then records no digest).
    make_tree(local.path(), 20 << 20);
    let original = snapshot(local.path());
    let walk = WalkOptions {
        recursive: true,
        ..WalkOptions::default()
    };
    let sources = collect_sources(&[local.path().join("tree")], &walk).unwrap();
    let opts = with_token(&s.pin, "alice:alice-secret");
    let sent = send_files("127.0.0.1", s.srv.port(), &sources, &opts).unwrap();
    assert_eq!(sent.failed(), 0, "{:?}", sent.first_error());
    assert!(bucket.keys().iter().all(|k| k.starts_with("alice/tree/")));
    assert_eq!(bucket.keys().len(), 5);

    let restored = tempfile::tempdir().unwrap();
    let fetch = FetchOptions {
        recursive: true,
        ..fetch_opts(&s.pin, "alice:alice-secret")
    };
    let port = s.srv.port();
    let report = fetch_files("127.0.0.1", port, &["tree"], restored.path(), &fetch).unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.first_error());
    assert_eq!(report.files.len(), 5);
    assert_eq!(snapshot(restored.path()), original);
    assert!(temporaries(restored.path()).is_empty());

    // By digest: the small objects' digests were recorded at upload, the large one's is
    // computed from its content; all match, nothing moves.
    let again = FetchOptions {
        skip_unchanged: true,
        checksum: true,
        ..fetch.clone()
    };
    let report = fetch_files("127.0.0.1", port, &["tree"], restored.path(), &again).unwrap();
    assert_eq!(report.unchanged(), 5, "{report:?}");
    // A local copy changed in a few places comes back as a delta, its content read from one
    // streamed GET.
    let big = restored.path().join("tree/sub/big.bin");
    let mut bytes = std::fs::read(&big).unwrap();
    for at in [1 << 20, 9 << 20, 19 << 20] {
        bytes[at..at + 100].fill(0xa5);
    }
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&big, &bytes).unwrap();
    let report = fetch_files("127.0.0.1", port, &["tree"], restored.path(), &fetch).unwrap();
    let f = report
        .files
        .iter()
        .find(|f| f.name == "tree/sub/big.bin")
        .unwrap();
    assert!(f.result.is_ok() && f.transferred < 1 << 20, "{f:?}");
    assert!(f.reused > 19 << 20, "{f:?}");
    assert_eq!(snapshot(restored.path()), original);
    // One file by name, and a name that is not there.
    let one = tempfile::tempdir().unwrap();
    let opts = fetch_opts(&s.pin, "alice:alice-secret");
    fetch_file("127.0.0.1", port, "tree/run.sh", one.path(), &opts).unwrap();
    assert_eq!(
        std::fs::read(one.path().join("run.sh")).unwrap(),
        original.iter().find(|f| f.0 == "tree/run.sh").unwrap().1
    );
    let e = fetch_file("127.0.0.1", port, "tree/nope", one.path(), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // A directory without recursion is refused with a reason.
    let e = fetch_file("127.0.0.1", port, "tree/sub", one.path(), &opts).unwrap_err();
    assert!(e.message().contains("is a directory"), "{e}");
    assert_eq!(list_tree(one.path()), vec!["run.sh".to_string()]);
}

#[test]
fn alice_cannot_fetch_bobs_objects() {
    let bucket = TestBucket::new("fetch-confined");
    let s = secured_bucket(&bucket);
    let local = tempfile::tempdir().unwrap();
    let secret = write_file(local.path(), "secret.txt", b"bob's secret");
    let bob = with_token(&s.pin, "bob:bob-secret");
    send_file("127.0.0.1", s.srv.port(), &secret, &bob).unwrap();
    assert_eq!(bucket.keys(), vec!["bob/secret.txt".to_string()]);

    let out = tempfile::tempdir().unwrap();
    let alice = fetch_opts(&s.pin, "alice:alice-secret");
    let port = s.srv.port();
    for name in ["secret.txt", "bob/secret.txt", "bob"] {
        let e = fetch_file("127.0.0.1", port, name, out.path(), &alice).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
    }
    let recursive = FetchOptions {
        recursive: true,
        ..alice.clone()
    };
    let report = fetch_files("127.0.0.1", port, &["bob"], out.path(), &recursive).unwrap();
    assert!(report.files.is_empty(), "{report:?}");
    let missing = &report.missing[0].error;
    assert_eq!(missing.peer_reason().map(|r| r.code), Some(21), "{missing}");
    let e = fetch_file("127.0.0.1", port, "../bob/secret.txt", out.path(), &alice).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(list_tree(out.path()).is_empty());

    let bob = fetch_opts(&s.pin, "bob:bob-secret");
    fetch_file("127.0.0.1", port, "secret.txt", out.path(), &bob).unwrap();
    assert_eq!(
        std::fs::read(out.path().join("secret.txt")).unwrap(),
        b"bob's secret"
    );
}

/// A listing (what a fetch of a directory starts from) HEADs its objects several at a time
/// (`sync::in_parallel`, whose own test shows the overlap) and still gives every object knsock
/// stored under the prefix once, in key order, with its metadata; an object another writer
/// stored without knsock's metadata, and one beside the prefix, are left out.
#[test]
fn a_listing_of_many_objects_gives_each_once_in_key_order() {
    use knsock::{ObjectMeta, ObjectStore};
    let bucket = TestBucket::new("fetch-list");
    let store = bucket.store("");
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    let count = 150u32;
    for i in 0..count {
        std::fs::write(&content, format!("object {i}")).unwrap();
        let meta = ObjectMeta {
            size: format!("object {i}").len() as u64,
            mtime_secs: 1_700_000_000 + i as i64,
            mtime_nanos: i,
            mode: 0o640,
            digest: None,
        };
        let file = std::fs::File::open(&content).unwrap();
        store
            .put(&store.key(&format!("many/f{i:03}")), &file, &meta, false)
            .unwrap();
    }
    bucket.put("many/foreign", b"stored by another writer");
    bucket.put("many-beside", b"not under many/");
    let prefix = format!("{}/", store.key("many"));
    let listed = store.list(&prefix).unwrap();
    let names: Vec<String> = listed.iter().map(|o| o.key.clone()).collect();
    let wanted: Vec<String> = (0..count)
        .map(|i| store.key(&format!("many/f{i:03}")))
        .collect();
    assert_eq!(names, wanted);
    for (i, o) in listed.iter().enumerate() {
        assert_eq!(o.meta.mtime_secs, 1_700_000_000 + i as i64, "{o:?}");
        assert_eq!(o.meta.mtime_nanos, i as u32, "{o:?}");
        assert_eq!(o.meta.size, format!("object {i}").len() as u64, "{o:?}");
        assert_eq!(o.meta.mode, 0o640, "{o:?}");
    }
    assert!(store
        .list(&format!("{}/", store.key("none")))
        .unwrap()
        .is_empty());
}

/// Small objects of a fetch are read ahead from the store, several at once
/// (`READ_AHEAD`). A client speaking the protocol by hand lists 40 of them; before its WANTs,
/// two (one in the first run read ahead, one in the second) are rewritten by another writer.
/// Every other object comes back in the order wanted, as DATA, its content and DONE with its
/// digest; those two are FAILED 22 ("changed since it was listed"), and the fetch goes on.
#[test]
fn objects_read_ahead_keep_their_order_and_each_its_own_failure() {
    use knsock::protocol::{self, FetchRequest, Frame, ALGO_XXH3_128};
    let bucket = TestBucket::new("fetch-ahead");
    let store = bucket.store("");
    let srv = TestServer::start(move |c| {
        c.object_store(store)
            .allow_fetch(true)
            .allow_anonymous_fetch(true);
    });
    let local = tempfile::tempdir().unwrap();
    let dir = local.path().join("many");
    std::fs::create_dir(&dir).unwrap();
    let content = |i: usize| format!("object {i} ").repeat(i * 50 + 1).into_bytes();
    for i in 0..40 {
        std::fs::write(dir.join(format!("f{i:02}")), content(i)).unwrap();
    }
    let walk = WalkOptions {
        recursive: true,
        ..WalkOptions::default()
    };
    let sources = collect_sources(&[dir], &walk).unwrap();
    let opts = knsock::SendOptions::default();
    let sent = send_files("127.0.0.1", srv.port(), &sources, &opts).unwrap();
    assert_eq!(sent.failed(), 0, "{:?}", sent.first_error());

    let (mut c, caps) = RawClient::hello_with(srv.addr(), protocol::CAP_FETCH);
    assert_eq!(caps, protocol::CAP_FETCH);
    c.send(Frame::Fetch(FetchRequest {
        flags: protocol::FETCH_RECURSIVE,
        names: vec!["many".into()],
        ..FetchRequest::default()
    }));
    let mut listed = Vec::new();
    loop {
        match c.read() {
            Frame::File { seq, offer } => listed.push((seq, offer)),
            Frame::Listed { count } => break assert_eq!(count, 40),
            f => panic!("{f:?}"),
        }
    }
    let changed = ["many/f05", "many/f20"];
    for name in changed {
        bucket.put(name, b"rewritten by another writer");
    }
    for (seq, _) in &listed {
        c.send(Frame::Want {
            seq: *seq,
            offset: 0,
        });
    }
    c.send(Frame::Bye);
    let rest = c.read_to_end();
    let mut r = &rest[..];
    for (seq, offer) in &listed {
        let i: usize = offer.name["many/f".len()..].parse().unwrap();
        let first = Frame::read_from(&mut r).unwrap();
        if changed.contains(&offer.name.as_str()) {
            match first {
                Some(Frame::Failed { seq: s, code, text }) => {
                    assert_eq!((s, code), (*seq, 22), "{text}");
                    assert!(text.contains("changed since it was listed"), "{text}");
                }
                f => panic!("{}: {f:?}", offer.name),
            }
            continue;
        }
        assert_eq!(first, Some(Frame::Data { seq: *seq }), "{}", offer.name);
        let bytes = content(i);
        assert_eq!(&r[..bytes.len()], &bytes[..], "{}", offer.name);
        r = &r[bytes.len()..];
        let done = Frame::read_from(&mut r).unwrap();
        let digest = digest(&bytes);
        let want = Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest,
        };
        assert_eq!(done, Some(want), "{}", offer.name);
    }
    assert!(r.is_empty(), "{} bytes more", r.len());
}
