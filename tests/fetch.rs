//! Fetching files back (docs/protocol.md section 3.4): a tree sent to a secure receiver comes
//! back identical in bytes, modification times and modes; unchanged files are skipped; only a
//! receiver that opted in serves fetches, only to authenticated identities unless told
//! otherwise, and each identity only from its own directory.

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/secured.rs"]
mod secured;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use common::*;
use knsock::{
    collect_sources, fetch_file, fetch_files, send_file, send_files, ErrorKind, FetchOptions,
    ServerConfig, WalkOptions,
};
use pki::*;
use secured::*;

/// The secured receiver, serving fetches.
fn fetching(tune: impl FnOnce(&mut ServerConfig)) -> Secured {
    secured(|c| {
        c.allow_fetch(true);
        tune(c);
    })
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

fn send_tree(s: &Secured, tree: &Path, token: &str) {
    let walk = WalkOptions {
        recursive: true,
        ..WalkOptions::default()
    };
    let sources = collect_sources(&[tree.to_path_buf()], &walk).unwrap();
    let opts = with_token(&s.pin, token);
    let report = send_files("127.0.0.1", s.srv.port(), &sources, &opts).unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.first_error());
}

#[test]
fn a_tree_sent_then_deleted_comes_back_identical() {
    let s = fetching(|_| {});
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path(), 3 << 20);
    let original = snapshot(local.path());
    send_tree(&s, &tree, "alice:alice-secret");
    std::fs::remove_dir_all(&tree).unwrap();

    let restored = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        recursive: true,
        ..fetch_opts(&s.pin, "alice:alice-secret")
    };
    let report = fetch_files("127.0.0.1", s.srv.port(), &["tree"], restored.path(), &opts).unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.first_error());
    assert_eq!(report.files.len(), 5);
    assert_eq!(snapshot(restored.path()), original);
    assert!(temporaries(restored.path()).is_empty());

    // Again with skip_unchanged: nothing moves; then one file changed locally comes back.
    let tree = |o: &FetchOptions| {
        fetch_files("127.0.0.1", s.srv.port(), &["tree"], restored.path(), o).unwrap()
    };
    let again = FetchOptions {
        skip_unchanged: true,
        ..opts.clone()
    };
    let report = tree(&again);
    assert_eq!(report.unchanged(), 5);
    std::fs::write(restored.path().join("tree/a.txt"), b"local edit, longer").unwrap();
    let report = tree(&again);
    assert_eq!((report.unchanged(), report.delivered()), (4, 5));
    assert_eq!(snapshot(restored.path()), original);

    // With checksum: same size and mtime but other bytes is a change.
    let a = restored.path().join("tree/a.txt");
    let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&a, b"0123456789").unwrap();
    set_mtime(&a, mtime);
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
    let quick = tree(&again);
    assert_eq!(quick.unchanged(), 5, "the quick check cannot see it");
    let checksum = FetchOptions {
        checksum: true,
        ..again.clone()
    };
    let report = tree(&checksum);
    assert_eq!(report.unchanged(), 4);
    assert_eq!(snapshot(restored.path()), original);
}

#[test]
fn one_file_filters_and_missing_names() {
    let s = fetching(|_| {});
    let local = tempfile::tempdir().unwrap();
    let tree = make_tree(local.path(), 3 << 20);
    send_tree(&s, &tree, "alice:alice-secret");
    let opts = fetch_opts(&s.pin, "alice:alice-secret");
    let out = tempfile::tempdir().unwrap();

    // One file lands under its base name.
    fetch_file(
        "127.0.0.1",
        s.srv.port(),
        "tree/sub/big.bin",
        out.path(),
        &opts,
    )
    .unwrap();
    assert_eq!(
        std::fs::read(out.path().join("big.bin")).unwrap(),
        std::fs::read(tree.join("sub/big.bin")).unwrap()
    );

    // A directory without recursion, and a name that does not exist.
    let e = fetch_file("127.0.0.1", s.srv.port(), "tree", out.path(), &opts).unwrap_err();
    assert!(e.message().contains("is a directory"), "{e}");
    let e = fetch_file("127.0.0.1", s.srv.port(), "nope", out.path(), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("no such file: 'nope'"), "{e}");

    // Include and exclude globs, as send-file's.
    let filtered = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        recursive: true,
        include: vec!["*.txt".into(), "*/sub/*".into()],
        exclude: vec!["*.bin".into()],
        ..opts
    };
    let r = fetch_files("127.0.0.1", s.srv.port(), &["tree"], filtered.path(), &opts).unwrap();
    assert_eq!(r.failed(), 0);
    assert_eq!(
        list_tree(filtered.path()),
        [
            "tree",
            "tree/a.txt",
            "tree/sub",
            "tree/sub/deeper",
            "tree/sub/deeper/c"
        ]
    );
}

#[test]
fn only_a_receiver_that_opted_in_serves_fetches_and_only_to_who_it_knows() {
    let out = tempfile::tempdir().unwrap();
    // Not opted in: the hello says so before anything is asked.
    let plain = TestServer::start(|_| {});
    std::fs::write(plain.path("f"), b"x").unwrap();
    let e = fetch_file(
        "127.0.0.1",
        plain.port(),
        "f",
        out.path(),
        &FetchOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(e.message().contains("does not serve fetches"), "{e}");

    // Opted in, but an anonymous plain client: refused with code 20.
    let open = TestServer::start(|c| {
        c.allow_fetch(true);
    });
    std::fs::write(open.path("f"), b"x").unwrap();
    let e = fetch_file(
        "127.0.0.1",
        open.port(),
        "f",
        out.path(),
        &FetchOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.peer_reason().map(|p| p.code), Some(20));
    assert!(e.message().contains("only to authenticated clients"), "{e}");
    assert!(list_tree(out.path()).is_empty());

    // Anonymous fetches only when the operator opted in explicitly.
    let anyone = TestServer::start(|c| {
        c.allow_fetch(true).allow_anonymous_fetch(true);
    });
    std::fs::write(anyone.path("f"), b"x").unwrap();
    fetch_file(
        "127.0.0.1",
        anyone.port(),
        "f",
        out.path(),
        &FetchOptions::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(out.path().join("f")).unwrap(), b"x");

    let mut cfg = ServerConfig::new(out.path());
    cfg.allow_anonymous_fetch(true);
    let e = cfg.start().unwrap_err();
    assert!(
        e.message()
            .contains("allow_anonymous_fetch needs allow_fetch"),
        "{e}"
    );
}

#[test]
fn alice_cannot_fetch_bobs_files() {
    let s = fetching(|c| {
        c.confine_identities(true);
    });
    let local = tempfile::tempdir().unwrap();
    let secret = write_file(local.path(), "secret.txt", b"bob's secret");
    let bob = with_token(&s.pin, "bob:bob-secret");
    send_file("127.0.0.1", s.srv.port(), &secret, &bob).unwrap();
    assert!(s.srv.path("bob/secret.txt").is_file());

    let out = tempfile::tempdir().unwrap();
    let alice = fetch_opts(&s.pin, "alice:alice-secret");
    for name in ["secret.txt", "bob/secret.txt"] {
        let e = fetch_file("127.0.0.1", s.srv.port(), name, out.path(), &alice).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
    }
    let e = fetch_file(
        "127.0.0.1",
        s.srv.port(),
        "../bob/secret.txt",
        out.path(),
        &alice,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(list_tree(out.path()).is_empty());

    // Bob gets his own file back, under the name he sent it as.
    let bob = fetch_opts(&s.pin, "bob:bob-secret");
    fetch_file("127.0.0.1", s.srv.port(), "secret.txt", out.path(), &bob).unwrap();
    assert_eq!(
        std::fs::read(out.path().join("secret.txt")).unwrap(),
        b"bob's secret"
    );
}

#[test]
fn a_wrong_token_fetches_nothing() {
    let s = fetching(|_| {});
    std::fs::write(s.srv.path("f"), b"x").unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = fetch_opts(&s.pin, "alice:wrong");
    let e = fetch_file("127.0.0.1", s.srv.port(), "f", out.path(), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(list_tree(out.path()).is_empty());
}

#[test]
fn progress_is_reported_and_a_callback_can_abort() {
    let srv = TestServer::start(|c| {
        c.allow_fetch(true).allow_anonymous_fetch(true);
    });
    let big = random_bytes(1 << 20, 7);
    std::fs::write(srv.path("big"), &big).unwrap();
    let out = tempfile::tempdir().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = std::sync::Arc::clone(&seen);
    let files = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f2 = std::sync::Arc::clone(&files);
    let opts = FetchOptions {
        progress: Some(std::sync::Arc::new(move |name: &str, got, total| {
            s2.lock().unwrap().push((name.to_string(), got, total));
            true
        })),
        on_file: Some(std::sync::Arc::new(move |f: &knsock::FetchedFile| {
            f2.lock().unwrap().push((f.name.clone(), f.result.is_ok()));
        })),
        ..FetchOptions::default()
    };
    fetch_file("127.0.0.1", srv.port(), "big", out.path(), &opts).unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 4, "one call per piece of at most 256 KiB");
    assert_eq!(seen.last().unwrap(), &("big".to_string(), 1 << 20, 1 << 20));
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(*files.lock().unwrap(), [("big".to_string(), true)]);

    let aborting = FetchOptions {
        progress: Some(std::sync::Arc::new(|_: &str, got, _| got < 300_000)),
        ..FetchOptions::default()
    };
    let other = tempfile::tempdir().unwrap();
    let e = fetch_file("127.0.0.1", srv.port(), "big", other.path(), &aborting).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AbortedByCallback, "{e}");
    assert!(
        list_tree(other.path()).is_empty(),
        "nothing partial is left"
    );
}

#[test]
fn a_fetch_aborted_with_partial_copies_kept_resumes_from_a_real_receiver() {
    let srv = TestServer::start(|c| {
        c.allow_fetch(true).allow_anonymous_fetch(true);
    });
    let big = random_bytes(2 << 20, 9);
    std::fs::write(srv.path("big"), &big).unwrap();
    let out = tempfile::tempdir().unwrap();
    let first_bytes = std::sync::Arc::new(std::sync::Mutex::new(None));
    let fb = std::sync::Arc::clone(&first_bytes);
    let aborting = FetchOptions {
        partial: true,
        progress: Some(std::sync::Arc::new(|_: &str, got, _| got < 1 << 20)),
        ..FetchOptions::default()
    };
    let e = fetch_file("127.0.0.1", srv.port(), "big", out.path(), &aborting).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AbortedByCallback);
    assert_eq!(temporaries(out.path()).len(), 1, "the partial copy is kept");
    let resuming = FetchOptions {
        partial: true,
        progress: Some(std::sync::Arc::new(move |_: &str, got, _| {
            fb.lock().unwrap().get_or_insert(got);
            true
        })),
        ..FetchOptions::default()
    };
    fetch_file("127.0.0.1", srv.port(), "big", out.path(), &resuming).unwrap();
    let first = first_bytes.lock().unwrap().unwrap();
    assert!(first > 1 << 20, "resumed past the kept prefix: {first}");
    assert_eq!(std::fs::read(out.path().join("big")).unwrap(), big);
    assert_eq!(list_tree(out.path()), ["big"]);
}
