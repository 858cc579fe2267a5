//! Many files over one connection: the walk (recursion, globs, symlinks) and `send_files`
//! (one connection, per-file outcomes, stop on error, group commit).

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use knsock::{collect_sources, send_files, ErrorKind, SendOptions, WalkOptions};

/// src/logs/{a.log, b.txt, sub/c.log, sub/deeper/d.log}, src/top.log
fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("logs/sub/deeper")).unwrap();
    for (name, seed) in [
        ("logs/a.log", 1),
        ("logs/b.txt", 2),
        ("logs/sub/c.log", 3),
        ("logs/sub/deeper/d.log", 4),
        ("top.log", 5),
    ] {
        std::fs::write(
            d.path().join(name),
            random_bytes(1000 + seed * 10, seed as u64),
        )
        .unwrap();
    }
    d
}

fn names(sources: &[knsock::Source]) -> Vec<&str> {
    sources.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn walking_a_tree_with_filters_and_symlinks() {
    let d = tree();
    let logs = d.path().join("logs");
    let rec = WalkOptions {
        recursive: true,
        ..Default::default()
    };
    let all = collect_sources(&[logs.clone(), d.path().join("top.log")], &rec).unwrap();
    assert_eq!(
        names(&all),
        [
            "logs/a.log",
            "logs/b.txt",
            "logs/sub/c.log",
            "logs/sub/deeper/d.log",
            "top.log"
        ]
    );
    assert_eq!(all[0].size, 1010);

    let only_logs = WalkOptions {
        include: vec!["*.log".into()],
        exclude: vec!["*/deeper/*".into()],
        ..rec.clone()
    };
    let got = collect_sources(std::slice::from_ref(&logs), &only_logs).unwrap();
    assert_eq!(names(&got), ["logs/a.log", "logs/sub/c.log"]);

    let err = collect_sources(std::slice::from_ref(&logs), &WalkOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("is a directory"), "{err}");

    let err = collect_sources(&[d.path().join("nope")], &rec).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let bad = WalkOptions {
        include: vec!["[".into()],
        ..rec.clone()
    };
    assert_eq!(
        collect_sources(std::slice::from_ref(&logs), &bad)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );

    // Symlinks: skipped by default; followed on request, loops cut.
    std::os::unix::fs::symlink(d.path().join("top.log"), logs.join("link.log")).unwrap();
    std::os::unix::fs::symlink(&logs, logs.join("sub/loop")).unwrap();
    let skipped = collect_sources(std::slice::from_ref(&logs), &rec).unwrap();
    assert_eq!(skipped.len(), 4);
    let follow = WalkOptions {
        follow_symlinks: true,
        ..rec
    };
    let followed = collect_sources(std::slice::from_ref(&logs), &follow).unwrap();
    assert_eq!(
        names(&followed),
        [
            "logs/a.log",
            "logs/b.txt",
            "logs/link.log",
            "logs/sub/c.log",
            "logs/sub/deeper/d.log"
        ]
    );
}

#[test]
fn a_tree_arrives_over_one_connection_with_its_layout_and_metadata() {
    let peers = Arc::new(Mutex::new(HashSet::new()));
    let p2 = Arc::clone(&peers);
    let srv = TestServer::start(move |c| {
        c.validate_before(move |info| {
            p2.lock().unwrap().insert(info.peer);
            Ok(())
        });
    });
    let d = tree();
    let rec = WalkOptions {
        recursive: true,
        ..Default::default()
    };
    let sources = collect_sources(&[d.path().join("logs")], &rec).unwrap();
    let report = send_files("127.0.0.1", srv.port(), &sources, &SendOptions::default()).unwrap();
    assert_eq!(report.delivered(), 4, "{:?}", report.first_error());
    for s in &sources {
        assert_eq!(
            std::fs::read(srv.path(&s.name)).unwrap(),
            std::fs::read(&s.path).unwrap()
        );
        let (a, b) = (
            std::fs::metadata(&s.path).unwrap(),
            std::fs::metadata(srv.path(&s.name)).unwrap(),
        );
        assert_eq!(a.modified().unwrap(), b.modified().unwrap());
    }
    assert_eq!(peers.lock().unwrap().len(), 1, "more than one connection");
    for _ in 0..4 {
        srv.next_received();
    }
}

#[test]
fn many_small_files_in_one_call() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let sources: Vec<knsock::Source> = (0..600)
        .map(|i| {
            let name = format!("f{i:04}.dat");
            let data = random_bytes(4096, i);
            knsock::Source {
                path: write_file(src.path(), &name, &data),
                name,
                size: 4096,
            }
        })
        .collect();
    let report = send_files("127.0.0.1", srv.port(), &sources, &SendOptions::default()).unwrap();
    assert_eq!(report.delivered(), 600, "{:?}", report.first_error());
    assert!(report
        .files
        .iter()
        .all(|f| f.result.as_ref().unwrap().stored_name == f.source.name));
    assert_eq!(srv.entries().len(), 600);
    for s in sources.iter().step_by(37) {
        assert_eq!(
            std::fs::read(srv.path(&s.name)).unwrap(),
            std::fs::read(&s.path).unwrap()
        );
    }
}

#[test]
fn one_refused_file_does_not_stop_the_rest_unless_asked() {
    let srv = TestServer::start(|c| {
        c.validate_before(|f| match f.name.contains("bad") {
            true => Err(format!("{} is bad", f.name)),
            false => Ok(()),
        })
        .validate_after(|f| match f.name.contains("late") {
            true => Err("refused after the data".into()),
            false => Ok(()),
        });
    });
    let src = tempfile::tempdir().unwrap();
    let mk = |name: &str| knsock::Source {
        path: write_file(src.path(), name, name.as_bytes()),
        name: name.to_string(),
        size: name.len() as u64,
    };
    let missing = knsock::Source {
        path: PathBuf::from("/nonexistent/gone.txt"),
        name: "gone.txt".into(),
        size: 0,
    };
    let sources = vec![
        mk("one.txt"),
        mk("bad.txt"),
        mk("late.txt"),
        missing,
        mk("two.txt"),
    ];
    let report = send_files("127.0.0.1", srv.port(), &sources, &SendOptions::default()).unwrap();
    let kinds: Vec<Option<ErrorKind>> = report
        .files
        .iter()
        .map(|f| f.result.as_ref().err().map(|e| e.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(ErrorKind::Rejected),
            Some(ErrorKind::Rejected),
            Some(ErrorKind::NotFound),
            None
        ]
    );
    let bad = report.files[1].result.as_ref().unwrap_err();
    assert_eq!(bad.peer_reason().unwrap().text, "bad.txt is bad");
    let late = report.files[2].result.as_ref().unwrap_err();
    assert_eq!(late.peer_reason().unwrap().text, "refused after the data");
    assert_eq!(srv.entries(), vec!["one.txt", "two.txt"]);

    let stop = SendOptions {
        stop_on_error: true,
        ..SendOptions::default()
    };
    let srv2 = TestServer::start(|c| {
        c.validate_before(|f| match f.name.contains("bad") {
            true => Err("no".into()),
            false => Ok(()),
        });
    });
    let report = send_files("127.0.0.1", srv2.port(), &sources, &stop).unwrap();
    assert!(
        report.files[0].result.is_ok(),
        "{:?}",
        report.files[0].result
    );
    assert!(report.files[1].result.is_err());
    let skipped = report.files[4].result.as_ref().unwrap_err();
    assert_eq!(skipped.kind(), ErrorKind::Cancelled);
    assert!(skipped
        .to_string()
        .contains("stopped after an earlier file failed"));
    assert_eq!(srv2.entries(), vec!["one.txt"]);
}

#[test]
fn a_connection_failure_fails_every_file_without_a_verdict() {
    let refusing = RefusingPort::new();
    let port = refusing.port;
    let src = tempfile::tempdir().unwrap();
    let s = knsock::Source {
        path: write_file(src.path(), "x", b"x"),
        name: "x".into(),
        size: 1,
    };
    let err = send_files("127.0.0.1", port, &[s], &SendOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
}

#[test]
fn unchanged_files_are_skipped_and_changed_ones_sent() {
    let srv = TestServer::start(|_| {});
    let d = tree();
    let rec = WalkOptions {
        recursive: true,
        ..Default::default()
    };
    let sources = collect_sources(&[d.path().join("logs")], &rec).unwrap();
    let skip = SendOptions {
        skip_unchanged: true,
        ..SendOptions::default()
    };
    let first = send_files("127.0.0.1", srv.port(), &sources, &skip).unwrap();
    assert!(first
        .files
        .iter()
        .all(|f| !f.result.as_ref().unwrap().skipped));
    for _ in 0..4 {
        srv.next_received();
    }
    // Same size, new content: sent; the others: skipped, and no handler runs for them.
    let changed = &sources[1];
    let mut data = std::fs::read(&changed.path).unwrap();
    data[0] ^= 0xff;
    std::fs::write(&changed.path, &data).unwrap();
    // skip_unchanged is the quick check (size and mtime): give the rewrite a later mtime even
    // where the clock's granularity would not.
    let later = std::fs::metadata(&changed.path)
        .unwrap()
        .modified()
        .unwrap()
        + std::time::Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&changed.path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let second = send_files("127.0.0.1", srv.port(), &sources, &skip).unwrap();
    let skipped: Vec<bool> = second
        .files
        .iter()
        .map(|f| f.result.as_ref().unwrap().skipped)
        .collect();
    assert_eq!(skipped, [true, false, true, true]);
    assert_eq!(srv.next_received().name, changed.name);
    assert!(srv.received.try_recv().is_err());
    assert_eq!(std::fs::read(srv.path(&changed.name)).unwrap(), data);
}

/// One call of the batch progress callback, owned.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    name: String,
    index: usize,
    count: usize,
    file_sent: u64,
    file_total: u64,
    sent: u64,
    total: u64,
}

fn recording(log: &Arc<Mutex<Vec<Seen>>>) -> knsock::BatchProgressFn {
    let log = log.clone();
    Arc::new(move |p: &knsock::BatchProgress<'_>| {
        log.lock().unwrap().push(Seen {
            name: p.name.to_string(),
            index: p.index,
            count: p.count,
            file_sent: p.file_sent,
            file_total: p.file_total,
            sent: p.sent,
            total: p.total,
        });
        true
    })
}

#[test]
fn batch_progress_covers_the_whole_list_including_skips_and_refusals() {
    let srv = TestServer::start(|c| {
        c.validate_before(|f| match f.name.contains("refused") {
            true => Err("no".into()),
            false => Ok(()),
        });
    });
    let src = tempfile::tempdir().unwrap();
    let mk = |name: &str, size: usize, seed: u64| knsock::Source {
        path: write_file(src.path(), name, &random_bytes(size, seed)),
        name: name.to_string(),
        size: size as u64,
    };
    let sources = vec![
        mk("a.bin", 300_000, 1),
        mk("refused.bin", 5_000, 2),
        mk("b.bin", 100_000, 3),
        mk("c.bin", 0, 4),
    ];
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let log = Arc::new(Mutex::new(Vec::new()));
    let per_file = Arc::new(Mutex::new(0usize));
    let per_file_calls = per_file.clone();
    let opts = SendOptions {
        chunk_size: 64 * 1024,
        skip_unchanged: true,
        batch_progress: Some(recording(&log)),
        progress: Some(Arc::new(move |_, _, _| {
            *per_file_calls.lock().unwrap() += 1;
            true
        })),
        ..SendOptions::default()
    };
    let report = send_files("127.0.0.1", srv.port(), &sources, &opts).unwrap();
    assert_eq!(report.failed(), 1);
    let seen = log.lock().unwrap().clone();
    // Every call knows the list; overall bytes never go back and end at the total.
    assert!(seen.iter().all(|s| s.count == 4 && s.total == total));
    assert!(seen.windows(2).all(|w| w[0].sent <= w[1].sent), "{seen:?}");
    assert_eq!(seen.last().unwrap().sent, total);
    // a.bin: 0, then five chunks; the refused file never streams; b.bin starts where a.bin
    // and the refused file end.
    let a: Vec<&Seen> = seen.iter().filter(|s| s.name == "a.bin").collect();
    assert_eq!(a.len(), 1 + 5);
    assert!(a.iter().all(|s| s.index == 0 && s.sent == s.file_sent));
    assert!(!seen.iter().any(|s| s.name == "refused.bin"));
    let b_first = seen.iter().find(|s| s.name == "b.bin").unwrap();
    assert_eq!((b_first.index, b_first.file_sent), (2, 0));
    assert_eq!(b_first.sent, 305_000);
    // The per-file callback ran for each of those calls too.
    assert_eq!(*per_file.lock().unwrap(), seen.len());

    // Again: the receiver holds a, b and c, so they are skipped, and still reported. Their
    // probes find refused.bin changed (the receiver has none): offered again, small and alone,
    // it goes eagerly and is refused after its content, which the progress shows.
    log.lock().unwrap().clear();
    let again = send_files("127.0.0.1", srv.port(), &sources, &opts).unwrap();
    assert_eq!(
        again
            .files
            .iter()
            .filter(|f| f.result.as_ref().is_ok_and(|r| r.skipped))
            .count(),
        3
    );
    let seen = log.lock().unwrap().clone();
    let names: Vec<(&str, usize, u64)> = seen
        .iter()
        .map(|s| (s.name.as_str(), s.index, s.sent))
        .collect();
    assert_eq!(
        names,
        [
            ("a.bin", 0, 300_000),
            ("refused.bin", 1, 300_000),
            ("refused.bin", 1, 305_000),
            ("b.bin", 2, 405_000),
            ("c.bin", 3, 405_000)
        ]
    );
}

#[test]
fn a_batch_progress_callback_can_abort() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let sources: Vec<knsock::Source> = (0..3)
        .map(|i| {
            let name = format!("f{i}");
            knsock::Source {
                path: write_file(src.path(), &name, &random_bytes(200_000, i)),
                name,
                size: 200_000,
            }
        })
        .collect();
    let opts = SendOptions {
        chunk_size: 64 * 1024,
        batch_progress: Some(Arc::new(|p: &knsock::BatchProgress<'_>| p.index < 1)),
        ..SendOptions::default()
    };
    let report = send_files("127.0.0.1", srv.port(), &sources, &opts).unwrap();
    // The abort ends the connection: f1 and f2 fail with it, and so does f0 unless its verdict
    // came in first (it may be stored without the sender knowing; never the reverse).
    for (i, f) in report.files.iter().enumerate() {
        match &f.result {
            Ok(_) => assert_eq!(i, 0),
            Err(e) => assert_eq!(e.kind(), ErrorKind::AbortedByCallback, "{e}"),
        }
    }
    let (kind, _) = srv.next_error(); // the server saw f1 cut short and dropped it
    assert_ne!(kind, ErrorKind::Rejected);
    let entries = srv.entries();
    assert!(entries.is_empty() || entries == ["f0"], "{entries:?}");
}

/// An offer of `data` under `name`, raw, no digest.
fn offer_of(name: &str, data: &[u8]) -> knsock::protocol::Offer {
    knsock::protocol::Offer {
        size: data.len() as u64,
        mtime_secs: 0,
        mtime_nanos: 0,
        mode: 0o644,
        algorithm: knsock::protocol::ALGO_XXH3_128,
        name: name.to_string(),
        raw_name: None,
        digest: Vec::new(),
        encoding: 0,
        flags: 0,
    }
}

/// Sends OFFER, content and DONE in one go, as an eager sender does.
fn send_eagerly(c: &mut RawClient, name: &str, data: &[u8], digest_of: &[u8]) {
    use knsock::protocol::{Frame, ALGO_XXH3_128};
    use std::io::Write;
    c.send(Frame::Offer(offer_of(name, data)));
    c.stream.write_all(data).unwrap();
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(digest_of),
    });
}

#[test]
fn eager_offers_need_no_accept_and_a_refused_one_is_drained() {
    use knsock::protocol::{Frame, CAP_EAGER, EAGER_MAX};
    let srv = TestServer::start(|c| {
        c.validate_before(|f| match f.name.starts_with("no") {
            true => Err("not that one".into()),
            false => Ok(()),
        });
    });
    let (mut c, caps) = RawClient::hello_with(srv.addr(), CAP_EAGER);
    assert_eq!(caps, CAP_EAGER);
    let a = random_bytes(5000, 1);
    let refused = random_bytes(EAGER_MAX as usize, 2);
    let bad_name = random_bytes(300, 3);
    let corrupt = random_bytes(100, 4);
    let b = random_bytes(7000, 5);
    // Five files back to back, no answer awaited: accepted, refused by the validator (its
    // 64 KiB must be read and dropped), refused for its name, corrupt, accepted.
    send_eagerly(&mut c, "a.bin", &a, &a);
    send_eagerly(&mut c, "no.bin", &refused, &refused);
    send_eagerly(&mut c, "../escape.bin", &bad_name, &bad_name);
    send_eagerly(&mut c, "corrupt.bin", &corrupt, b"something else");
    send_eagerly(&mut c, "b.bin", &b, &b);
    c.send(Frame::Bye);
    let mut verdicts = Vec::new();
    for _ in 0..5 {
        verdicts.push(c.read());
    }
    let summary: Vec<(u32, bool)> = verdicts
        .iter()
        .map(|f| match f {
            Frame::Ok { seq, .. } => (*seq, true),
            Frame::Failed { seq, .. } => (*seq, false),
            other => panic!("expected a verdict, got {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [(0, true), (1, false), (2, false), (3, false), (4, true)]
    );
    match &verdicts[1] {
        Frame::Failed { text, .. } => assert_eq!(text, "not that one"),
        f => panic!("{f:?}"),
    }
    match &verdicts[2] {
        Frame::Failed { text, .. } => assert!(text.contains("unacceptable name"), "{text}"),
        f => panic!("{f:?}"),
    }
    match &verdicts[3] {
        Frame::Failed { text, .. } => assert!(text.contains("checksum"), "{text}"),
        f => panic!("{f:?}"),
    }
    assert_eq!(std::fs::read(srv.path("a.bin")).unwrap(), a);
    assert_eq!(std::fs::read(srv.path("b.bin")).unwrap(), b);
    assert_eq!(srv.entries(), vec!["a.bin", "b.bin"]);
}

#[test]
fn without_the_eager_capability_or_above_its_size_an_offer_waits_for_accept() {
    use knsock::protocol::{Frame, CAP_EAGER, EAGER_MAX};
    let srv = TestServer::start(|_| {});
    // Not negotiated: the receiver answers the offer before any content.
    let mut c = RawClient::hello(srv.addr());
    assert_eq!(c.offer("small.bin", 10), Frame::Accept { offset: 0 });
    // Negotiated, but one byte over the limit: the same.
    let (mut c, _) = RawClient::hello_with(srv.addr(), CAP_EAGER);
    assert_eq!(
        c.offer("big.bin", EAGER_MAX + 1),
        Frame::Accept { offset: 0 }
    );
}

#[test]
fn a_batch_with_compression_and_refusals_goes_eagerly() {
    let srv = TestServer::start(|c| {
        c.validate_before(|f| match f.name.contains("refused") {
            true => Err("no".into()),
            false => Ok(()),
        });
    });
    let src = tempfile::tempdir().unwrap();
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("line {i} INFO ok\n").into_bytes())
        .take(60_000)
        .collect();
    let mut sources = Vec::new();
    for (i, name) in ["a.log", "refused.log", "b.log", "refused2.log", "c.log"]
        .iter()
        .enumerate()
    {
        let mut data = text.clone();
        data[0] = b'0' + i as u8;
        sources.push(knsock::Source {
            path: write_file(src.path(), name, &data),
            name: name.to_string(),
            size: data.len() as u64,
        });
    }
    let opts = SendOptions {
        compress: true,
        ..SendOptions::default()
    };
    let report = send_files("127.0.0.1", srv.port(), &sources, &opts).unwrap();
    let ok: Vec<bool> = report.files.iter().map(|f| f.result.is_ok()).collect();
    assert_eq!(ok, [true, false, true, false, true]);
    let refused = report.files[1].result.as_ref().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Rejected);
    assert_eq!(refused.peer_reason().unwrap().text, "no");
    for s in [&sources[0], &sources[2], &sources[4]] {
        assert_eq!(
            std::fs::read(srv.path(&s.name)).unwrap(),
            std::fs::read(&s.path).unwrap()
        );
    }
    assert_eq!(srv.entries(), vec!["a.log", "b.log", "c.log"]);
}
