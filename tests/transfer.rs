//! Round trips, validators, handlers, progress, policies, limits and concurrency, through the
//! public Rust API.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use knsock::{send_file, CancelToken, ErrorKind, Overwrite, SendOptions};

fn opts() -> SendOptions {
    SendOptions {
        chunk_size: 4096,
        ..SendOptions::default()
    }
}

#[test]
fn round_trips_of_every_awkward_size() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    for (i, size) in [0usize, 1, 4095, 4096, 4097, 3 * 4096, 1_000_003]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(size, i as u64);
        let name = format!("f{size}.bin");
        let p = write_file(src.path(), &name, &data);
        let report = send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap();
        assert_eq!(report.stored_name, name);
        assert_eq!(report.bytes, size as u64);
        assert_eq!(std::fs::read(srv.path(&name)).unwrap(), data, "size {size}");
    }
}

#[test]
fn hundred_mib_of_random_bytes_arrive_intact() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(100 << 20, 7);
    let p = write_file(src.path(), "big.bin", &data);
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    let got = std::fs::read(srv.path("big.bin")).unwrap();
    assert!(got == data, "100 MiB differ");
}

#[test]
fn metadata_is_restored() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "script.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o751)).unwrap();
    let mtime = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap();
    let meta = std::fs::metadata(srv.path("script.sh")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o751);
    assert_eq!(meta.modified().unwrap(), mtime);
}

#[test]
fn pre_data_validator_refuses_with_its_reason_and_no_data_flows() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = Arc::clone(&seen);
    let srv = TestServer::start(move |c| {
        c.validate_before(move |info| {
            s2.fetch_add(1, Ordering::SeqCst);
            assert!(info.path.is_none());
            match info.name.ends_with(".exe") {
                true => Err(format!("no executables, please ({} bytes)", info.size)),
                false => Ok(()),
            }
        });
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "tool.exe", &random_bytes(10_000, 1));
    let err = send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    let reason = err.peer_reason().unwrap();
    assert_eq!(reason.code, 1);
    assert_eq!(reason.text, "no executables, please (10000 bytes)");
    assert!(err.to_string().contains("no executables, please"), "{err}");
    assert_eq!(srv.next_error().0, ErrorKind::Rejected);
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn post_data_validator_sees_the_verified_temporary_file_and_can_refuse() {
    let srv = TestServer::start(|c| {
        c.validate_after(|info| {
            let p = info.path.as_ref().expect("post validator gets a path");
            let data = std::fs::read(p).map_err(|e| e.to_string())?;
            assert_eq!(data.len() as u64, info.size);
            assert!(p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".knsock-"));
            match data.starts_with(b"%PDF") {
                true => Ok(()),
                false => Err("not a PDF".to_string()),
            }
        });
    });
    let src = tempfile::tempdir().unwrap();
    let fake = write_file(src.path(), "fake.pdf", b"hello");
    let err = send_file("127.0.0.1", srv.port(), &fake, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(err.peer_reason().unwrap().text, "not a PDF");
    srv.next_error();
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());

    let real = write_file(src.path(), "real.pdf", b"%PDF-1.7 ...");
    send_file("127.0.0.1", srv.port(), &real, &opts()).unwrap();
    assert_eq!(srv.entries(), vec!["real.pdf"]);
}

#[test]
fn a_panicking_validator_refuses_and_the_server_goes_on() {
    let srv = TestServer::start(|c| {
        c.validate_before(|info| match info.name.as_str() {
            "boom" => panic!("validator bug"),
            _ => Ok(()),
        });
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "boom", b"x");
    let err = send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap_err();
    assert_eq!(err.peer_reason().unwrap().text, "validator panicked");
    let ok = write_file(src.path(), "fine", b"y");
    send_file("127.0.0.1", srv.port(), &ok, &opts()).unwrap();
}

#[test]
fn handler_runs_once_per_file_with_the_saved_path() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let name = format!("h{i}.txt");
        let p = write_file(src.path(), &name, name.as_bytes());
        send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap();
        let info = srv.next_received();
        assert_eq!(info.name, name);
        assert_eq!(info.path.as_deref(), Some(srv.path(&name).as_path()));
        assert_eq!(info.size, name.len() as u64);
        assert!(info.peer.ip().is_loopback());
    }
    srv.server.stop();
    assert!(srv.received.try_recv().is_err(), "a handler ran twice");
}

#[test]
fn remote_name_with_subdirectories() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "x", b"nested");
    let o = SendOptions {
        remote_name: Some("a/b/c/y.txt".into()),
        ..opts()
    };
    let r = send_file("127.0.0.1", srv.port(), &p, &o).unwrap();
    assert_eq!(r.stored_name, "a/b/c/y.txt");
    assert_eq!(std::fs::read(srv.path("a/b/c/y.txt")).unwrap(), b"nested");
}

#[test]
fn progress_is_monotonic_and_ends_at_the_total() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "p.bin", &random_bytes(100_000, 3));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = Arc::clone(&calls);
    let o = SendOptions {
        progress: Some(Arc::new(move |name: &str, sent, total| {
            c2.lock().unwrap().push((name.to_string(), sent, total));
            true
        })),
        ..opts()
    };
    send_file("127.0.0.1", srv.port(), &p, &o).unwrap();
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1 + 100_000usize.div_ceil(4096));
    assert!(calls.windows(2).all(|w| w[0].1 < w[1].1), "not monotonic");
    assert_eq!(calls.first().unwrap().1, 0);
    assert_eq!(
        calls.last().unwrap(),
        &("p.bin".to_string(), 100_000, 100_000)
    );
}

#[test]
fn progress_callback_aborts_and_the_receiver_keeps_nothing() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "abort.bin", &random_bytes(1 << 20, 4));
    let o = SendOptions {
        progress: Some(Arc::new(|_: &str, sent, _| sent < 100_000)),
        ..opts()
    };
    let err = send_file("127.0.0.1", srv.port(), &p, &o).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AbortedByCallback);
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Protocol, "{msg}");
    assert!(msg.contains("sender closed the connection"), "{msg}");
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
}

#[test]
fn cancel_token_cancels_from_another_thread() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "c.bin", &random_bytes(1 << 20, 5));
    let token = CancelToken::new();
    let t2 = token.clone();
    let (tx, rx) = crossbeam_channel::bounded(0);
    let o = SendOptions {
        cancel: Some(token.clone()),
        progress: Some(Arc::new(move |_: &str, sent, _| {
            if sent > 0 {
                // Let the test cancel, and wait until it has.
                let _ = tx.send(());
                let _ = tx.send(());
            }
            true
        })),
        ..opts()
    };
    let port = srv.port();
    let sender = std::thread::spawn(move || send_file("127.0.0.1", port, &p, &o));
    rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    t2.cancel();
    rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    drop(rx);
    let err = sender.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(token.is_cancelled());
}

#[test]
fn overwrite_policies() {
    let src = tempfile::tempdir().unwrap();
    let v1 = write_file(src.path(), "doc.txt", b"version 1");
    let v2dir = tempfile::tempdir().unwrap();
    let v2 = write_file(v2dir.path(), "doc.txt", b"version 2");

    let replace = TestServer::start(|_| {});
    send_file("127.0.0.1", replace.port(), &v1, &opts()).unwrap();
    send_file("127.0.0.1", replace.port(), &v2, &opts()).unwrap();
    assert_eq!(
        std::fs::read(replace.path("doc.txt")).unwrap(),
        b"version 2"
    );
    assert_eq!(replace.entries(), vec!["doc.txt"]);

    let refuse = TestServer::start(|c| {
        c.overwrite(Overwrite::Refuse);
    });
    send_file("127.0.0.1", refuse.port(), &v1, &opts()).unwrap();
    let err = send_file("127.0.0.1", refuse.port(), &v2, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(err.peer_reason().unwrap().code, 2);
    assert_eq!(std::fs::read(refuse.path("doc.txt")).unwrap(), b"version 1");

    let rename = TestServer::start(|c| {
        c.overwrite(Overwrite::Rename);
    });
    for expect in ["doc.txt", "doc (1).txt", "doc (2).txt"] {
        let r = send_file("127.0.0.1", rename.port(), &v2, &opts()).unwrap();
        assert_eq!(r.stored_name, expect);
    }
    assert_eq!(
        rename.entries(),
        vec!["doc (1).txt", "doc (2).txt", "doc.txt"]
    );
}

#[test]
fn a_directory_in_the_way_is_refused() {
    let srv = TestServer::start(|_| {});
    std::fs::create_dir(srv.path("taken")).unwrap();
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "taken", b"x");
    let err = send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap_err();
    assert_eq!(err.peer_reason().unwrap().code, 5);
    assert!(srv.path("taken").is_dir());
}

#[test]
fn max_file_size_refuses_before_any_data() {
    let srv = TestServer::start(|c| {
        c.max_file_size(Some(1000));
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "big", &[0; 1001]);
    let err = send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(err.peer_reason().unwrap().code, 4);
    assert!(
        err.to_string().contains("exceeds the limit of 1000 bytes"),
        "{err}"
    );
    let ok = write_file(src.path(), "small", &[0; 1000]);
    send_file("127.0.0.1", srv.port(), &ok, &opts()).unwrap();
}

#[test]
fn no_space_above_the_reserve_is_refused_with_a_clear_reason() {
    let srv = TestServer::start(|c| {
        c.reserve_bytes(u64::MAX / 2);
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f", b"tiny");
    let err = send_file("127.0.0.1", srv.port(), &p, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSpace);
    let reason = err.peer_reason().unwrap();
    assert_eq!(reason.code, 3);
    assert!(
        reason.text.starts_with("no space: file needs 4 bytes"),
        "{}",
        reason.text
    );
    assert!(srv.entries().is_empty());
}

#[test]
fn connection_refused_and_missing_file() {
    let refusing = RefusingPort::new();
    let port = refusing.port;
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f", b"x");
    let err = send_file("127.0.0.1", port, &p, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(
        err.to_string()
            .contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{err}"
    );

    let err = send_file("127.0.0.1", port, src.path().join("missing.txt"), &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.txt"), "{err}");

    let err = send_file("127.0.0.1", port, src.path(), &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let bad = SendOptions {
        chunk_size: 0,
        ..opts()
    };
    assert_eq!(
        send_file("127.0.0.1", port, &p, &bad).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn fifty_concurrent_senders_all_arrive_intact() {
    let srv = Arc::new(TestServer::start(|c| {
        c.max_connections(16); // the rest are told "busy" and retry
    }));
    let src = Arc::new(tempfile::tempdir().unwrap());
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let (srv, src) = (Arc::clone(&srv), Arc::clone(&src));
            std::thread::spawn(move || {
                let data = random_bytes(50_000 + i * 1013, i as u64);
                let name = format!("c{i:02}.bin");
                let p = write_file(src.path(), &name, &data);
                let retrying = SendOptions {
                    retries: 30,
                    retry_delay: Duration::from_millis(10),
                    ..opts()
                };
                send_file("127.0.0.1", srv.port(), &p, &retrying).unwrap();
                (name, data)
            })
        })
        .collect();
    for t in threads {
        let (name, data) = t.join().unwrap();
        assert_eq!(std::fs::read(srv.path(&name)).unwrap(), data, "{name}");
    }
    assert_eq!(srv.entries().len(), 50);
}

#[test]
fn stop_while_transfers_run_leaves_no_temporary_files() {
    let srv = TestServer::start(|_| {});
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "slow.bin", &random_bytes(8 << 20, 9));
    let (tx, rx) = crossbeam_channel::bounded::<()>(0);
    let o = SendOptions {
        progress: Some(Arc::new(move |_: &str, sent, _| {
            if sent == 4096 {
                let _ = tx.send(()); // in the middle of the content now
                let _ = tx.send(()); // wait until the server was stopped
            }
            true
        })),
        ..opts()
    };
    let port = srv.port();
    let sender = std::thread::spawn(move || send_file("127.0.0.1", port, &p, &o));
    rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    srv.server.stop();
    rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    let err = sender.join().unwrap().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Io | ErrorKind::Protocol),
        "{err:?}"
    );
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Cancelled, "{msg}");
    assert!(srv.entries().is_empty(), "{:?}", srv.entries());
}

#[test]
fn stop_from_a_handler_does_not_deadlock() {
    let holder: Arc<Mutex<Option<Arc<knsock::Server>>>> = Arc::new(Mutex::new(None));
    let h2 = Arc::clone(&holder);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = knsock::ServerConfig::new(dir.path());
    cfg.host("127.0.0.1").on_received(move |_| {
        if let Some(s) = h2.lock().unwrap().as_ref() {
            s.stop();
        }
    });
    let server = Arc::new(cfg.start().unwrap());
    *holder.lock().unwrap() = Some(Arc::clone(&server));
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "x", b"x");
    send_file("127.0.0.1", server.local_addr().port(), &p, &opts()).unwrap();
    server.wait().unwrap();
    assert!(server.is_stopping());
    holder.lock().unwrap().take();
}

/// A received handler that blocks holds up neither its sender nor its connection: the batch is
/// told OK while the first call still waits. The calls come in the order the files were stored,
/// and a server that stops waits for the calls still queued.
#[test]
fn a_blocking_handler_runs_behind_its_connection_in_order() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = knsock::ServerConfig::new(dir.path());
    cfg.host("127.0.0.1").on_received(move |info| {
        if info.name == "f00" {
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
        }
        s2.lock().unwrap().push(info.name.clone());
    });
    let server = cfg.start().unwrap();
    let src = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("f{i:02}")).collect();
    let paths: Vec<_> = names
        .iter()
        .map(|n| write_file(src.path(), n, n.as_bytes()))
        .collect();
    let sources = knsock::collect_sources(&paths, &knsock::WalkOptions::default()).unwrap();
    let port = server.local_addr().port();
    let report = knsock::send_files("127.0.0.1", port, &sources, &opts()).unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.first_error());
    // Every file is in place, and the first handler call still waits.
    for n in &names {
        assert_eq!(std::fs::read(dir.path().join(n)).unwrap(), n.as_bytes());
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    release_tx.send(()).unwrap();
    server.stop();
    server.wait().unwrap();
    assert_eq!(*seen.lock().unwrap(), names);
}
