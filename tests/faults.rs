//! Fault injection: senders that die at arbitrary offsets, a server killed with `kill -9` and
//! restarted on its directory, a disk that fills during a transfer, a descriptor limit of
//! 1,024 under honest batches, and 200 senders at once. Each asserts that nothing is lost,
//! nothing partial stands under a final name, nothing is left behind, and the server still
//! serves at full capacity.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use knsock::protocol::{Frame, ALGO_XXH3_128};
use knsock::{send_file, send_files, SendOptions, Source};

/// Sends a small file and checks it arrived: the server still serves.
fn still_serves(port: u16, dir: &Path, name: &str) {
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(10_000, name.len() as u64);
    let p = write_file(src.path(), name, &data);
    send_file("127.0.0.1", port, &p, &SendOptions::default()).unwrap();
    assert_eq!(std::fs::read(dir.join(name)).unwrap(), data);
}

#[test]
fn a_sender_killed_at_any_offset_leaves_nothing_behind() {
    let srv = TestServer::start(|_| {});
    let size = 3 << 20;
    let data = random_bytes(size as usize, 7);
    // Offsets spread over the file, the first and last byte included.
    for (i, cut) in [0u64, 1, 65_536, 1_000_003, size - 1]
        .into_iter()
        .enumerate()
    {
        let name = format!("cut{i}.bin");
        let mut c = RawClient::hello(srv.addr());
        c.send(Frame::Offer(offer_of_size(&name, size)));
        assert_eq!(c.read(), Frame::Accept { offset: 0 });
        c.stream.write_all(&data[..cut as usize]).unwrap();
        // Dies: the kernel resets the connection (no orderly close).
        socket2::SockRef::from(&c.stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
        let (_, msg) = srv.next_error();
        assert!(msg.contains(&name), "{msg}");
        wait_for("the temporary file to go", || {
            temporaries(srv.dir.path()).is_empty()
        });
        assert!(
            !srv.path(&name).exists(),
            "{name} stands under its final name"
        );
    }
    still_serves(srv.port(), srv.dir.path(), "after.bin");
    assert_eq!(srv.entries(), vec!["after.bin"]);
}

#[test]
fn a_server_killed_mid_upload_leaves_nothing_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), None);
    let mut c = RawClient::hello(([127, 0, 0, 1], server.port).into());
    c.send(Frame::Offer(offer_of_size("sub/big.bin", 8 << 20)));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    c.stream.write_all(&random_bytes(1 << 20, 3)).unwrap();
    wait_for("the upload's temporary file", || {
        !temporaries(dir.path()).is_empty()
    });
    server.kill9();
    drop(c);
    // Restarted at once: the dead run's temporary file goes, whatever its age.
    let again = ServerProcess::start(dir.path(), None);
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    assert!(!dir.path().join("sub/big.bin").exists());
    still_serves(again.port, dir.path(), "after.bin");
}

#[test]
fn a_disk_that_fills_mid_transfer_fails_the_file_cleanly() {
    let Some(fs) = SmallFs::mount(4 << 20) else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let srv = TestServer::start(|c| {
        c.dir(fs.path());
    });
    let size = 2 << 20;
    let mut c = RawClient::hello(srv.addr());
    c.send(Frame::Offer(offer_of_size("big.bin", size)));
    assert_eq!(c.read(), Frame::Accept { offset: 0 });
    // Someone else fills the disk after the file was accepted.
    let filler = fs.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 3 << 20]);
    let data = random_bytes(size as usize, 9);
    c.stream.write_all(&data).unwrap();
    c.send(Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(&data),
    });
    match c.read() {
        Frame::Failed { seq: 0, code, text } => {
            assert!(code == 3 || code == 7, "code {code}: {text}");
            assert!(
                text.contains("space") || text.contains("No space"),
                "{text}"
            );
        }
        other => panic!("expected FAILED, got {other:?}"),
    }
    assert!(!fs.path().join("big.bin").exists());
    assert_eq!(temporaries(fs.path()), Vec::<String>::new());
    std::fs::remove_file(&filler).unwrap();
    still_serves(srv.port(), fs.path(), "after.bin");
}

#[test]
fn honest_batches_never_run_out_of_descriptors_at_1024() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), Some(1024));
    let port = server.port;
    // Four batches of 400 files, each in a directory of its own (a descriptor each).
    let trees: Vec<(tempfile::TempDir, Vec<Source>)> = (0..4)
        .map(|t| {
            let src = tempfile::tempdir().unwrap();
            let sources = (0..400)
                .map(|i| {
                    let name = format!("t{t}/d{i:03}/f.dat");
                    let path = src.path().join(&name);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, random_bytes(2048, t * 1000 + i)).unwrap();
                    Source {
                        path,
                        name,
                        size: 2048,
                    }
                })
                .collect();
            (src, sources)
        })
        .collect();
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = trees
            .iter()
            .map(|(_, sources)| {
                s.spawn(move || {
                    send_files("127.0.0.1", port, sources, &SendOptions::default()).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &reports {
        assert_eq!(r.delivered(), 400, "{:?}", r.first_error());
    }
    for (src, sources) in &trees {
        for s in sources.iter().step_by(41) {
            assert_eq!(
                std::fs::read(dir.path().join(&s.name)).unwrap(),
                std::fs::read(src.path().join(&s.name)).unwrap()
            );
        }
    }
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
}

#[test]
fn two_hundred_senders_at_once_all_arrive() {
    let srv = TestServer::start(|c| {
        c.max_connections(64);
    });
    let src = tempfile::tempdir().unwrap();
    let files: Vec<(PathBuf, Vec<u8>)> = (0..200)
        .map(|i| {
            let data = random_bytes(20_000 + i * 13, i as u64);
            (write_file(src.path(), &format!("s{i:03}.bin"), &data), data)
        })
        .collect();
    let port = srv.port();
    std::thread::scope(|s| {
        for (p, _) in &files {
            s.spawn(move || {
                // Over the cap a sender is told "busy" and retries.
                let opts = SendOptions {
                    timeout: Duration::from_secs(60),
                    retries: 30,
                    retry_delay: Duration::from_millis(10),
                    ..SendOptions::default()
                };
                send_file("127.0.0.1", port, p, &opts).unwrap();
            });
        }
    });
    for (p, data) in &files {
        let name = p.file_name().unwrap();
        assert_eq!(&std::fs::read(srv.dir.path().join(name)).unwrap(), data);
    }
    assert_eq!(srv.entries().len(), 200);
    // Full capacity afterwards: 64 connections served at once.
    let clients: Vec<RawClient> = (0..64).map(|_| RawClient::hello(srv.addr())).collect();
    drop(clients);
    let _ = TcpStream::connect(srv.addr());
}
