//! A server whose process runs out of file descriptors: each connection it cannot register
//! ends alone, the error handler hears of it, and once descriptors are free again every worker
//! serves. (Its own test binary: it fills the whole process's descriptor table.)

mod common;

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use rustix::process::{getrlimit, setrlimit, Resource};

#[test]
fn workers_survive_running_out_of_descriptors() {
    let srv = TestServer::start(|c| {
        c.max_connections(2).raise_fd_limit(false);
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
    let full = hold.len();
    // Twice, as many times as there are workers: two descriptors free, one for our socket and
    // one for the server's accept, none left for registering the connection.
    for _ in 0..2 {
        hold.truncate(hold.len() - 2);
        let mut c = TcpStream::connect(srv.addr()).unwrap();
        c.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
        let (_, msg) = srv.next_error();
        assert!(msg.contains("registering a connection"), "{msg}");
        let mut buf = [0u8; 1];
        assert_eq!(
            c.read(&mut buf).unwrap_or(0),
            0,
            "the connection was not closed"
        );
        drop(c);
        // The two descriptors are free again: take them back.
        let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
        while hold.len() < full {
            match File::open("/dev/null") {
                Ok(f) => hold.push(f),
                Err(_) if std::time::Instant::now() < deadline => {
                    // The server closes its side as it reports: wait for that event.
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("the server never released its descriptor: {e}"),
            }
        }
    }
    drop(hold);
    setrlimit(Resource::Nofile, saved).unwrap();
    // The pressure is gone: both workers serve at once.
    let _a = RawClient::hello(srv.addr());
    let _b = RawClient::hello(srv.addr());
}
