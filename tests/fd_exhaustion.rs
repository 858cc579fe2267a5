//! A server whose process runs out of file descriptors: a connection it cannot accept waits in
//! the backlog, the error handler hears of it, and once descriptors are free again the server
//! accepts and serves it. (Its own test binary: it fills the whole process's descriptor table.)

mod common;

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;

use common::*;
use knsock::protocol::{read_hello_reply, Hello};
use rustix::process::{getrlimit, setrlimit, Resource};

#[test]
fn the_server_survives_running_out_of_descriptors() {
    let srv = TestServer::start(|c| {
        c.raise_fd_limit(false);
    });
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let saved = getrlimit(Resource::Nofile);
    let mut low = saved;
    low.current = Some(open_now + 32);
    setrlimit(Resource::Nofile, low).unwrap();
    let mut hold: Vec<File> = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hold.push(f);
    }
    // One descriptor free: our socket takes it, the server's accept finds none.
    hold.truncate(hold.len() - 1);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    let (_, msg) = srv.next_error();
    assert!(msg.contains("accepting a connection"), "{msg}");
    assert!(msg.contains("Too many open files"), "{msg}");
    drop(hold);
    setrlimit(Resource::Nofile, saved).unwrap();
    // The pressure is gone: the connection that waited is accepted and served, and new ones.
    let mut hello = Vec::new();
    Hello::ours(0).encode(&mut hello);
    c.write_all(&hello).unwrap();
    assert_ne!(read_hello_reply(&mut c).unwrap().0, 0);
    let _b = RawClient::hello(srv.addr());
}
