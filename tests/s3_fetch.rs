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
