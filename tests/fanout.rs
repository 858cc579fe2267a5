//! Fan-out (`send_files_to_many`): per-receiver, per-file outcomes when one receiver refuses
//! files, one is killed mid-transfer and one cannot be reached; a slow receiver does not hold up
//! the others.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use crossbeam_channel::{bounded, unbounded, Receiver as Events};
use knsock::{
    send_files_to_many, BatchReport, ErrorKind, FileOutcome, Receiver, SendOptions, Source,
    FANOUT_WINDOW_BYTES,
};

/// Files named `(name, size)` in a fresh directory, with their contents, as sources.
fn sources(files: &[(&str, usize)]) -> (tempfile::TempDir, Vec<Source>, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut list = Vec::new();
    let mut data = Vec::new();
    for (i, (name, size)) in files.iter().enumerate() {
        let bytes = random_bytes(*size, i as u64 + 1);
        let path = write_file(dir.path(), name, &bytes);
        list.push(Source {
            path,
            name: name.to_string(),
            size: *size as u64,
        });
        data.push(bytes);
    }
    (dir, list, data)
}

fn batch(r: &knsock::ReceiverOutcome) -> &BatchReport {
    r.result.as_ref().expect("the receiver was reached")
}

/// Each of `files` delivered, its bytes in `dir` the same as the source's.
fn assert_all_arrived(files: &[FileOutcome], dir: &Path, data: &[Vec<u8>]) {
    for (f, bytes) in files.iter().zip(data) {
        assert!(f.result.is_ok(), "{}: {:?}", f.source.name, f.result);
        assert_eq!(std::fs::read(dir.join(&f.source.name)).unwrap(), *bytes);
    }
}

#[test]
fn three_receivers_one_refusing_one_killed_one_unreachable() {
    let big = 24 << 20;
    let (_src, list, data) = sources(&[("big.bin", big), ("a.txt", 10_000), ("secret.txt", 500)]);
    let healthy = TestServer::start(|_| {});
    let picky = TestServer::start(|c| {
        c.validate_before(|f| match f.name.contains("secret") {
            true => Err("secrets stay home".into()),
            false => Ok(()),
        });
    });
    let doomed_dir = tempfile::tempdir().unwrap();
    let doomed = ServerProcess::start(doomed_dir.path(), None);
    let refusing = RefusingPort::new();
    let receivers = [
        Receiver::new("127.0.0.1", healthy.port()),
        Receiver::new("127.0.0.1", picky.port()),
        Receiver::new("127.0.0.1", doomed.port),
        Receiver::new("127.0.0.1", refusing.port),
    ];
    // The doomed receiver's sender stops once 1 MiB of big.bin is out, until the test has
    // killed that receiver.
    let (at_1mib, reached) = bounded(1);
    let (release, released) = bounded::<()>(1);
    let once = Mutex::new(Some((at_1mib, released)));
    let opts = SendOptions {
        batch_progress: Some(Arc::new(move |p| {
            if p.receiver == 2 && p.name == "big.bin" && p.file_sent >= 1 << 20 {
                if let Some((at, released)) = once.lock().unwrap().take() {
                    at.send(()).unwrap();
                    released.recv_timeout(EVENT_TIMEOUT).unwrap();
                }
            }
            true
        })),
        ..SendOptions::default()
    };
    let call = std::thread::spawn(move || send_files_to_many(&receivers, &list, &opts));
    reached.recv_timeout(EVENT_TIMEOUT).unwrap();
    wait_for(
        "part of big.bin in the doomed receiver's temporary file",
        || {
            temporaries(doomed_dir.path())
                .iter()
                .any(|t| std::fs::metadata(doomed_dir.path().join(t)).is_ok_and(|m| m.len() > 0))
        },
    );
    doomed.kill9();
    release.send(()).unwrap();
    let report = call.join().unwrap().expect("the call itself succeeds");

    assert_eq!(report.receivers.len(), 4);
    assert_eq!(report.failed_receivers(), 3);
    assert!(report.receivers[0].all_delivered());
    assert_all_arrived(
        &batch(&report.receivers[0]).files,
        healthy.dir.path(),
        &data,
    );

    let picky_files = &batch(&report.receivers[1]).files;
    assert_all_arrived(&picky_files[..2], picky.dir.path(), &data);
    let refused = picky_files[2].result.as_ref().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Rejected);
    assert_eq!(refused.peer_reason().unwrap().text, "secrets stay home");
    assert!(!picky.path("secret.txt").exists());

    // Killed while big.bin was in flight: the files after it were not sent either.
    let doomed_report = batch(&report.receivers[2]);
    assert_eq!(doomed_report.failed(), 3);
    let cut = doomed_report.files[0].result.as_ref().unwrap_err();
    assert_ne!(cut.kind(), ErrorKind::Rejected, "{cut}");
    assert!(!doomed_dir.path().join("big.bin").exists());

    let unreachable = report.receivers[3].result.as_ref().unwrap_err();
    assert_eq!(unreachable.kind(), ErrorKind::Connect, "{unreachable}");
}

/// A server whose pre-validator reports each file it is asked about and then blocks until
/// released.
fn blocked_server() -> (TestServer, Events<String>, crossbeam_channel::Sender<()>) {
    let (asked_tx, asked) = unbounded();
    let (release, released) = unbounded::<()>();
    let srv = TestServer::start(move |c| {
        c.validate_before(move |f| {
            let _ = asked_tx.send(f.name.clone());
            released
                .recv_timeout(EVENT_TIMEOUT)
                .map_err(|e| e.to_string())
        });
    });
    (srv, asked, release)
}

#[test]
fn a_slow_receiver_does_not_hold_up_the_others() {
    // Larger than the shared window: the slow receiver, once released, finds the blocks gone and
    // reads the file for itself.
    let big = FANOUT_WINDOW_BYTES + (8 << 20);
    let (_src, list, data) = sources(&[("big.bin", big), ("small.txt", 3000)]);
    let fast: Vec<TestServer> = (0..2).map(|_| TestServer::start(|_| {})).collect();
    let (slow, asked, release) = blocked_server();
    let mut receivers: Vec<Receiver> = fast
        .iter()
        .map(|s| Receiver::new("127.0.0.1", s.port()))
        .collect();
    receivers.insert(1, Receiver::new("127.0.0.1", slow.port()));
    let call =
        std::thread::spawn(move || send_files_to_many(&receivers, &list, &SendOptions::default()));
    assert_eq!(asked.recv_timeout(EVENT_TIMEOUT).unwrap(), "big.bin");
    // Both fast receivers get everything while the slow one is still blocked on its first file.
    for srv in &fast {
        let mut got: Vec<String> = (0..2).map(|_| srv.next_received().name).collect();
        got.sort();
        assert_eq!(got, ["big.bin", "small.txt"]);
    }
    assert!(slow.received.is_empty());
    assert!(!call.is_finished());
    for _ in 0..2 {
        release.send(()).unwrap();
    }
    let report = call.join().unwrap().unwrap();
    assert_eq!(report.failed_receivers(), 0);
    for (outcome, dir) in
        report
            .receivers
            .iter()
            .zip([fast[0].dir.path(), slow.dir.path(), fast[1].dir.path()])
    {
        assert_all_arrived(&batch(outcome).files, dir, &data);
    }
}
