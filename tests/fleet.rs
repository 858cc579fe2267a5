//! A receiver for many senders at once: accepted files waiting for their content hold no
//! descriptor, so connections that keep full pipelined windows open lock nobody out, and a
//! connection over the cap is told "busy". (Its own test binary: it lowers the process's
//! descriptor limit.)

mod common;

use std::time::Duration;

use common::*;
use knsock::protocol::{Frame, CAP_PIPELINE, PIPELINE_WINDOW};
use knsock::{send_file, ErrorKind, SendOptions};
use rustix::process::{getrlimit, setrlimit, Resource};

/// 50 connections × 256 accepted files would have taken 25,600 descriptors (two per file) when
/// a file was opened at ACCEPT; under a limit of 1,024 every later sender was locked out.
#[test]
fn fifty_connections_holding_full_pipelined_windows_lock_nobody_out() {
    let saved = getrlimit(Resource::Nofile);
    let mut low = saved;
    low.current = Some(1024);
    setrlimit(Resource::Nofile, low).unwrap();
    let srv = TestServer::start(|c| {
        c.raise_fd_limit(false);
    });
    let mut holders = Vec::new();
    for h in 0..50 {
        let (mut c, caps) = RawClient::hello_with(srv.addr(), CAP_PIPELINE);
        assert_eq!(caps & CAP_PIPELINE, CAP_PIPELINE);
        for f in 0..PIPELINE_WINDOW {
            c.send(Frame::Offer(offer_of_size(&format!("h{h}/f{f}"), 1000)));
        }
        for f in 0..PIPELINE_WINDOW {
            match c.read() {
                Frame::Accept { offset: 0 } => {}
                other => panic!("holder {h}, file {f}: {other:?}"),
            }
        }
        holders.push(c);
    }
    // A new sender is served at once, descriptors to spare.
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "late.txt", b"not locked out");
    let opts = SendOptions {
        timeout: Duration::from_secs(10),
        ..SendOptions::default()
    };
    send_file("127.0.0.1", srv.port(), &p, &opts).unwrap();
    assert_eq!(
        std::fs::read(srv.path("late.txt")).unwrap(),
        b"not locked out"
    );
    let open = srv.server.stats().descriptors_open;
    assert!(open < 512, "{open} descriptors open");
    // The holders' files are still theirs to send.
    let data = vec![7u8; 1000];
    let c = &mut holders[49];
    c.send(Frame::Data { seq: 0 });
    std::io::Write::write_all(&mut c.stream, &data).unwrap();
    c.send(Frame::Done {
        algorithm: knsock::protocol::ALGO_XXH3_128,
        digest: digest(&data),
    });
    match c.read() {
        Frame::Ok { seq: 0, name } => assert_eq!(name, "h49/f0"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(srv.path("h49/f0")).unwrap(), data);
    drop(holders);
    setrlimit(Resource::Nofile, saved).unwrap();
}

#[test]
fn a_connection_over_the_cap_is_told_the_receiver_is_busy() {
    // Not raising the descriptor limit: the other test of this binary lowers it meanwhile.
    let srv = TestServer::start(|c| {
        c.max_connections(2).raise_fd_limit(false);
    });
    let _a = RawClient::hello(srv.addr());
    let _b = RawClient::hello(srv.addr());
    wait_for("two connections", || {
        srv.server.stats().connections_open == 2
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "third.txt", b"x");
    let e = send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert!(
        e.message().contains("receiver busy: 2 connections"),
        "{}",
        e.message()
    );
    assert_eq!(srv.server.stats().connections_busy, 1);
    assert!(!srv.path("third.txt").exists());
}
