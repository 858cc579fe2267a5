//! Shared helpers for the integration tests: servers that report their events on channels, files
//! of random bytes, and a raw protocol client for inputs `send_file` would never produce.
#![allow(dead_code)]

mod busy;
mod files;
mod process;
#[cfg(feature = "s3")]
pub mod s3;

#[allow(unused_imports)]
pub use busy::*;
#[allow(unused_imports)]
pub use files::*;
#[allow(unused_imports)]
pub use process::ServerProcess;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use knsock::protocol::{self, Frame, Hello, Offer, ALGO_XXH3_128};
use knsock::{Error, ErrorKind, FileInfo, Server, ServerConfig};

/// Upper bound for waiting on an event that must happen; never a delay that hopes.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub received: Receiver<FileInfo>,
    pub errors: Receiver<(ErrorKind, String)>,
}

impl TestServer {
    /// A server on 127.0.0.1 storing into a fresh directory; `tune` adjusts its config.
    pub fn start(tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let (rtx, received) = unbounded();
        let (etx, errors) = unbounded();
        let mut cfg = ServerConfig::new(dir.path());
        cfg.host("127.0.0.1")
            .on_received(move |info| {
                let _ = rtx.send(info.clone());
            })
            .on_error(move |e: &Error, _| {
                let _ = etx.send((e.kind(), e.message().to_string()));
            });
        tune(&mut cfg);
        let server = cfg.start().unwrap();
        TestServer {
            server,
            dir,
            received,
            errors,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits for the next error the server reports.
    pub fn next_error(&self) -> (ErrorKind, String) {
        self.errors
            .recv_timeout(EVENT_TIMEOUT)
            .expect("the server reported no error")
    }

    pub fn next_received(&self) -> FileInfo {
        self.received
            .recv_timeout(EVENT_TIMEOUT)
            .expect("the server reported no received file")
    }

    /// Every entry below the directory, relative, sorted (temporary files included).
    pub fn entries(&self) -> Vec<String> {
        list_tree(self.dir.path())
    }
}

/// Waits for `cond` with a deadline; the event must happen.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A client that speaks the protocol by hand.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
        RawClient { stream }
    }

    /// Connects and completes the hello.
    pub fn hello(addr: SocketAddr) -> RawClient {
        Self::hello_with(addr, 0).0
    }

    /// Connects and completes the hello offering capabilities `caps`; returns the ones both
    /// sides have.
    pub fn hello_with(addr: SocketAddr, caps: u32) -> (RawClient, u32) {
        let mut c = Self::connect(addr);
        let mut buf = Vec::new();
        Hello::ours(caps).encode(&mut buf);
        c.stream.write_all(&buf).unwrap();
        let (version, both) = protocol::read_hello_reply(&mut c.stream).unwrap();
        assert_eq!(version, 1);
        (c, both)
    }

    pub fn send(&mut self, f: Frame) {
        f.write_to(&mut self.stream).unwrap();
    }

    pub fn offer(&mut self, name: &str, size: u64) -> Frame {
        self.offer_frame(Offer {
            mtime_secs: 0,
            ..offer_of_size(name, size)
        })
    }

    /// Sends `offer` and reads the answer.
    pub fn offer_frame(&mut self, offer: Offer) -> Frame {
        self.send(Frame::Offer(offer));
        self.read()
    }

    pub fn read(&mut self) -> Frame {
        Frame::read_from(&mut self.stream)
            .unwrap()
            .expect("server closed the connection")
    }

    /// Reads until the server closes; returns what it sent.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.stream.read_to_end(&mut out);
        out
    }
}

pub fn digest(data: &[u8]) -> Vec<u8> {
    xxhash_rust::xxh3::xxh3_128(data).to_be_bytes().to_vec()
}

/// Forwards connections to `target`; the first one is cut after `cut` bytes from the sender.
pub struct CutProxy {
    pub addr: SocketAddr,
    /// Bytes forwarded from senders to the receiver.
    pub forwarded: Arc<AtomicU64>,
    /// Connections accepted (a sender's attempts).
    pub connections: Arc<AtomicU64>,
}

impl CutProxy {
    pub fn start(target: SocketAddr, cut: u64) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (fwd, count) = (Arc::clone(&forwarded), Arc::clone(&connections));
        std::thread::spawn(move || {
            for (i, client) in listener.incoming().take(4).enumerate() {
                let client = client.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let server = TcpStream::connect(target).unwrap();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(s2, c2, u64::MAX, None));
                let limit = if i == 0 { cut } else { u64::MAX };
                let fwd = Arc::clone(&fwd);
                std::thread::spawn(move || pump(client, server, limit, Some(fwd)));
            }
        });
        CutProxy {
            addr,
            forwarded,
            connections,
        }
    }
}

/// Copies `from` → `to` until EOF or `limit` bytes; then ends both directions (a cut) or passes
/// the EOF on.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: u64, count: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    loop {
        let want = buf.len().min((limit - done).min(buf.len() as u64) as usize);
        if want == 0 {
            let _ = to.shutdown(Shutdown::Write); // the receiver sees the sender go
            let _ = from.shutdown(Shutdown::Both); // the sender sees the connection die
            drain_until_closed(to);
            return;
        }
        match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
                done += n as u64;
                if let Some(c) = &count {
                    c.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Reads and drops what the receiver still sends until it closes its end. Closing ours first
/// with unread bytes in our buffer would answer with a reset, and a reset makes the receiver's
/// kernel drop the content it has not read yet: the cut would then lose bytes the proxy counted
/// as delivered, by chance of timing.
fn drain_until_closed(mut to: TcpStream) {
    let _ = to.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = [0u8; 4096];
    while matches!(to.read(&mut buf), Ok(n) if n > 0) {}
}

/// An OFFER of `size` bytes named `name`, mode 0644, no digest, raw content.
pub fn offer_of_size(name: &str, size: u64) -> Offer {
    Offer {
        mtime_secs: 1_700_000_000,
        ..Offer::new(name, size)
    }
}

/// A tmpfs of a fixed size, mounted for one test (root only) and unmounted after it.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount(bytes: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The receiver's hidden temporary files beneath `dir`.
pub fn temporaries(dir: &Path) -> Vec<String> {
    list_tree(dir)
        .into_iter()
        .filter(|n| n.rsplit('/').next().unwrap().starts_with(".knsock-"))
        .collect()
}

/// Appends one eager file to `out`: its OFFER, the content and DONE, as a sender writes them in
/// one go.
pub fn eager_bytes(offer: Offer, data: &[u8], out: &mut Vec<u8>) {
    Frame::Offer(offer).encode(out);
    out.extend_from_slice(data);
    Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: digest(data),
    }
    .encode(out);
}

/// A raw client that offers `offer` with pipelining and delta, is answered BASIS, asks for the
/// signature and reads it; returns the client and the signature's chunk lengths.
pub fn delta_client(addr: SocketAddr, offer: Offer) -> (RawClient, Vec<u32>) {
    let caps = protocol::CAP_PIPELINE | protocol::CAP_DELTA;
    let (mut c, both) = RawClient::hello_with(addr, caps);
    assert_eq!(both, caps);
    assert!(matches!(c.offer_frame(offer), Frame::Basis { .. }));
    c.send(Frame::Delta { seq: 0 });
    let mut lens = Vec::new();
    loop {
        match c.read() {
            Frame::Sig(v) if v.is_empty() => return (c, lens),
            Frame::Sig(v) => lens.extend(v.iter().map(|(len, _)| *len)),
            f => panic!("{f:?}"),
        }
    }
}
