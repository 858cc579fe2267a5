//! Streams (docs/protocol.md section 3.3): content of unknown size arrives identical, raw or
//! compressed; a source that fails, runs short or long, a stream past the maximum size and a
//! stream cut midway store nothing, the sender hears why, and the server goes on.

mod common;

use std::io::{self, Cursor, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use knsock::protocol::{Frame, Offer, ALGO_XXH3_128, CAP_STREAM, SIZE_UNKNOWN};
use knsock::{send_stream, ErrorKind, SendOptions};

/// A source that yields `good` bytes of `data`, then fails.
struct Failing {
    data: Cursor<Vec<u8>>,
    good: u64,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.position() >= self.good {
            return Err(io::Error::other("the dump program crashed"));
        }
        let left = (self.good - self.data.position()) as usize;
        let n = buf.len().min(left);
        self.data.read(&mut buf[..n])
    }
}

/// Nothing under the name, and no temporary file left.
fn nothing_stored(dir: &Path, name: &str) {
    assert!(!dir.join(name).exists(), "{name} was stored");
    wait_for("temporary files to go", || temporaries(dir).is_empty());
}

/// The server still takes a stream after whatever came before.
fn still_serves(srv: &TestServer, dir: &Path) {
    let data = random_bytes(100_000, 3);
    let r = send_stream(
        "127.0.0.1",
        srv.port(),
        "after.bin",
        &data[..],
        None,
        &SendOptions::default(),
    );
    assert_eq!(r.unwrap().bytes, data.len() as u64);
    assert_eq!(std::fs::read(dir.join("after.bin")).unwrap(), data);
}

#[test]
fn a_stream_of_unknown_size_arrives_identical_with_progress_of_total_0() {
    let srv = TestServer::start(|_| {});
    let data = random_bytes(5 << 20, 1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let opts = SendOptions {
        progress: Some(Arc::new(move |_: &str, sent, total| {
            s.lock().unwrap().push((sent, total));
            true
        })),
        ..SendOptions::default()
    };
    let r = send_stream("127.0.0.1", srv.port(), "d/s.bin", &data[..], None, &opts).unwrap();
    assert_eq!(r.bytes, data.len() as u64);
    assert_eq!(r.stored_name, "d/s.bin");
    assert_eq!(std::fs::read(srv.path("d/s.bin")).unwrap(), data);
    assert_eq!(srv.next_received().size, data.len() as u64);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|(_, total)| *total == 0));
    assert_eq!(seen.last().unwrap().0, data.len() as u64);
}

#[test]
fn an_empty_stream_and_a_compressed_one_arrive_identical() {
    let srv = TestServer::start(|_| {});
    let r = send_stream(
        "127.0.0.1",
        srv.port(),
        "empty",
        io::empty(),
        None,
        &SendOptions::default(),
    );
    assert_eq!(r.unwrap().bytes, 0);
    assert_eq!(std::fs::read(srv.path("empty")).unwrap(), b"");
    let text: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let opts = SendOptions {
        compress: true,
        ..SendOptions::default()
    };
    send_stream("127.0.0.1", srv.port(), "log.txt", &text[..], None, &opts).unwrap();
    assert_eq!(std::fs::read(srv.path("log.txt")).unwrap(), text);
}

#[test]
fn a_stream_of_stated_size_must_meet_it() {
    let srv = TestServer::start(|_| {});
    let data = random_bytes(300_000, 2);
    let opts = SendOptions::default();
    let n = data.len() as u64;
    send_stream("127.0.0.1", srv.port(), "exact", &data[..], Some(n), &opts).unwrap();
    assert_eq!(std::fs::read(srv.path("exact")).unwrap(), data);

    let e = send_stream(
        "127.0.0.1",
        srv.port(),
        "short",
        &data[..],
        Some(n + 1),
        &opts,
    )
    .unwrap_err();
    assert!(
        e.message()
            .contains("ended after 300000 of its 300001 bytes"),
        "{e}"
    );
    let e = send_stream(
        "127.0.0.1",
        srv.port(),
        "long",
        &data[..],
        Some(n - 1),
        &opts,
    )
    .unwrap_err();
    assert!(
        e.message().contains("longer than its stated 299999 bytes"),
        "{e}"
    );
    nothing_stored(srv.dir.path(), "short");
    nothing_stored(srv.dir.path(), "long");
    still_serves(&srv, srv.dir.path());
}

#[test]
fn a_source_failing_midway_stores_nothing_and_says_why() {
    let srv = TestServer::start(|_| {});
    for compress in [false, true] {
        let source = Failing {
            data: Cursor::new(random_bytes(4 << 20, 4)),
            good: 3 << 20,
        };
        let opts = SendOptions {
            compress,
            ..SendOptions::default()
        };
        let e = send_stream("127.0.0.1", srv.port(), "dump.sql", source, None, &opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("the dump program crashed"), "{e}");
        nothing_stored(srv.dir.path(), "dump.sql");
    }
    still_serves(&srv, srv.dir.path());
}

#[test]
fn a_stream_past_the_maximum_size_is_refused_while_it_arrives() {
    let srv = TestServer::start(|c| {
        c.max_file_size(Some(1 << 20));
    });
    // Endless: only the receiver's limit ends it.
    let endless = io::repeat(7);
    let e = send_stream(
        "127.0.0.1",
        srv.port(),
        "big",
        endless,
        None,
        &SendOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert_eq!(e.peer_reason().map(|r| r.code), Some(4), "{e}");
    assert!(
        e.message().contains("exceeds the limit of 1048576 bytes"),
        "{e}"
    );
    nothing_stored(srv.dir.path(), "big");
    let (_, msg) = srv.next_error();
    assert!(msg.contains("exceeds the limit"), "{msg}");
    still_serves(&srv, srv.dir.path());
}

#[test]
fn a_stream_cut_midway_stores_nothing() {
    let srv = TestServer::start(|_| {});
    let (mut c, both) = RawClient::hello_with(srv.addr(), CAP_STREAM);
    assert_eq!(both, CAP_STREAM);
    let offer = Offer {
        algorithm: ALGO_XXH3_128,
        ..Offer::new("cut.bin", SIZE_UNKNOWN)
    };
    assert_eq!(c.offer_frame(offer), Frame::Accept { offset: 0 });
    let block = vec![5u8; 100_000];
    for _ in 0..10 {
        c.stream
            .write_all(&(block.len() as u32).to_be_bytes())
            .unwrap();
        c.stream.write_all(&block).unwrap();
    }
    drop(c);
    let (kind, msg) = srv.next_error();
    assert_eq!(kind, ErrorKind::Protocol, "{msg}");
    nothing_stored(srv.dir.path(), "cut.bin");
    still_serves(&srv, srv.dir.path());
}

#[test]
fn a_block_over_the_bound_is_a_protocol_error() {
    let srv = TestServer::start(|_| {});
    let (mut c, _) = RawClient::hello_with(srv.addr(), CAP_STREAM);
    assert_eq!(
        c.offer_frame(Offer::new("x", SIZE_UNKNOWN)),
        Frame::Accept { offset: 0 }
    );
    c.stream
        .write_all(&(64u32 * 1024 * 1024 + 1).to_be_bytes())
        .unwrap();
    match c.read() {
        Frame::Error { code, text } => assert_eq!(code, 9, "{text}"),
        f => panic!("expected ERROR, got {f:?}"),
    }
    nothing_stored(srv.dir.path(), "x");
}

#[test]
fn without_the_capability_an_unknown_size_is_just_too_large() {
    let srv = TestServer::start(|c| {
        c.max_file_size(Some(1 << 30));
    });
    let mut c = RawClient::hello(srv.addr());
    match c.offer("x", SIZE_UNKNOWN) {
        Frame::Reject { code, .. } => assert_eq!(code, 4),
        f => panic!("expected REJECT, got {f:?}"),
    }
}

#[test]
fn a_stream_gets_free_space_as_it_comes_and_is_refused_when_there_is_none() {
    let Some(fs) = SmallFs::mount(8 << 20) else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let srv = TestServer::start(|c| {
        c.dir(fs.path());
    });
    let opts = SendOptions::default();
    let small = random_bytes(1 << 20, 5);
    send_stream("127.0.0.1", srv.port(), "fits", &small[..], None, &opts).unwrap();
    assert_eq!(std::fs::read(fs.path().join("fits")).unwrap(), small);
    let e = send_stream("127.0.0.1", srv.port(), "huge", io::repeat(1), None, &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert_eq!(e.peer_reason().map(|r| r.code), Some(3), "{e}");
    assert!(e.message().contains("no space"), "{e}");
    nothing_stored(fs.path(), "huge");
    still_serves(&srv, fs.path());
}

#[test]
fn a_stream_of_stated_size_replaces_an_old_copy_whole() {
    let srv = TestServer::start(|_| {});
    let old = random_bytes(2 << 20, 11);
    std::fs::write(srv.path("db.dump"), &old).unwrap();
    // Options that ask for a delta and for skipping: a stream gets neither.
    let opts = SendOptions {
        skip_unchanged: true,
        delta: true,
        ..SendOptions::default()
    };
    let mut new = old.clone();
    new[1000] ^= 1;
    let n = new.len() as u64;
    let r = send_stream("127.0.0.1", srv.port(), "db.dump", &new[..], Some(n), &opts).unwrap();
    assert!(!r.skipped);
    assert_eq!(std::fs::read(srv.path("db.dump")).unwrap(), new);
    send_stream("127.0.0.1", srv.port(), "db.dump", &old[..], None, &opts).unwrap();
    assert_eq!(std::fs::read(srv.path("db.dump")).unwrap(), old);
}

/// A source that yields `piece` bytes of `data` at a time, each after `pause`, and says when it
/// has yielded everything.
struct Trickle {
    data: Cursor<Vec<u8>>,
    piece: usize,
    pause: std::time::Duration,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::thread::sleep(self.pause);
        let n = buf.len().min(self.piece);
        let got = self.data.read(&mut buf[..n])?;
        if got == 0 {
            self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(got)
    }
}

#[test]
fn a_slow_sources_bytes_arrive_before_a_full_block() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let srv = TestServer::start(|_| {});
    // 600 KB in 3 s: less than one block of unknown size, so only the second a step may gather
    // sends any of it before the end.
    let data = random_bytes(600_000, 12);
    let done = Arc::new(AtomicBool::new(false));
    let source = Trickle {
        data: Cursor::new(data.clone()),
        piece: 10_000,
        pause: std::time::Duration::from_millis(50),
        done: Arc::clone(&done),
    };
    let port = srv.port();
    let sender = std::thread::spawn(move || {
        send_stream(
            "127.0.0.1",
            port,
            "slow.bin",
            source,
            None,
            &SendOptions::default(),
        )
    });
    let dir = srv.dir.path();
    let arrived = |dir: &Path| {
        temporaries(dir)
            .iter()
            .any(|t| std::fs::metadata(dir.join(t)).is_ok_and(|m| m.len() > 0))
    };
    let mut early = false;
    while !done.load(Ordering::SeqCst) && !early {
        early = arrived(dir);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let r = sender.join().unwrap().unwrap();
    assert!(early, "nothing arrived before the source's end");
    assert_eq!(r.bytes, data.len() as u64);
    assert_eq!(std::fs::read(dir.join("slow.bin")).unwrap(), data);
}
