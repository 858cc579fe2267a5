//! What the CLI prints is escaped (issue 18 item 4): a name from the network cannot forge a log
//! line or move the cursor, on the receiver's side (refusals, received lines) or the sender's
//! (the stored name, a local path).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::*;
use knsock::protocol::{read_hello_reply, Frame, Hello, Offer, ALGO_XXH3_128};

/// A sender that speaks the protocol by hand, to offer names `send_file` never would.
struct Peer(TcpStream);

impl Peer {
    fn hello(port: u16) -> Peer {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut out = Vec::new();
        Hello::ours(0).encode(&mut out);
        s.write_all(&out).unwrap();
        assert_eq!(read_hello_reply(&mut s).unwrap().0, 1);
        Peer(s)
    }

    fn offer(&mut self, name: &str, size: u64) -> Frame {
        Frame::Offer(Offer::new(name, size))
            .write_to(&mut self.0)
            .unwrap();
        self.read()
    }

    /// An accepted file's content, then its DONE.
    fn content(&mut self, data: &[u8]) {
        self.0.write_all(data).unwrap();
        let digest = xxhash_rust::xxh3::xxh3_128(data).to_be_bytes().to_vec();
        Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest,
        }
        .write_to(&mut self.0)
        .unwrap();
    }

    fn read(&mut self) -> Frame {
        Frame::read_from(&mut self.0)
            .unwrap()
            .expect("the server closed")
    }
}

/// A `kn-sock run-file-server` whose stdout and stderr are read line by line.
struct Printing {
    child: std::process::Child,
    port: u16,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
    err: std::io::Lines<BufReader<std::process::ChildStderr>>,
}

impl Printing {
    fn start(dir: &std::path::Path) -> Printing {
        let mut child = Command::new(BIN)
            .args(["run-file-server", "0"])
            .arg(dir)
            .args(["--host", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let err = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = out.next().unwrap().unwrap();
        let port = first.rsplit(':').next().unwrap().parse().unwrap();
        Printing {
            child,
            port,
            out,
            err,
        }
    }
}

impl Drop for Printing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn names_from_the_network_are_escaped_in_every_line_the_cli_prints() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Printing::start(dir.path());
    // A refused name that would forge a "received" line, and terminal escapes.
    let forged = "x\nreceived alice/FORGED (1 bytes) from 6.6.6.6:1\r\x1b[2K";
    let mut c = Peer::hello(srv.port);
    assert!(matches!(c.offer(forged, 1), Frame::Reject { .. }));
    let line = srv.err.next().unwrap().unwrap();
    assert!(
        line.contains(r"refused 'x\nreceived alice/FORGED (1 bytes) from 6.6.6.6:1\r\x1b[2K'"),
        "{line}"
    );
    // A name the rules accept, with a right-to-left override: stored as sent, printed escaped.
    let spoof = "invoice\u{202e}fdp.exe";
    assert!(matches!(c.offer(spoof, 2), Frame::Accept { .. }));
    c.content(b"ok");
    assert!(matches!(c.read(), Frame::Ok { .. }));
    let line = srv.out.next().unwrap().unwrap();
    assert!(
        line.starts_with(r"received invoice\u{202e}fdp.exe (2 bytes) from 127.0.0.1:"),
        "{line}"
    );
    assert_eq!(std::fs::read(dir.path().join(spoof)).unwrap(), b"ok");

    // The sender's side: the name the receiver stored under, and a local path.
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "two\u{2066}.txt", b"22");
    let send = |path: &std::path::Path| {
        Command::new(BIN)
            .args(["send-file", "127.0.0.1", &srv.port.to_string()])
            .arg(path)
            .arg("--no-progress")
            .output()
            .unwrap()
    };
    let out = send(&p);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(r"as two\u{2066}.txt (2 bytes)"), "{stdout}");
    assert!(!stdout.contains('\u{2066}'), "{stdout}");
    let bad = write_file(src.path(), "line\nbreak", b"3");
    let out = send(&bad);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(r"line\nbreak"), "{stderr}");
}
