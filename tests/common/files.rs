//! Test helpers that need nothing but std, socket2 and the library's test hooks: the files
//! below a directory, files of random bytes, a port that refuses. Shared by the library's tests and the CLI's (cli/tests).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every entry below `root`, relative, sorted (temporary files included).
pub fn list_tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Deterministic pseudo-random bytes, from the library's test hooks (one generator for the
/// tests, the fuzz seeds and the benchmarks).
#[allow(unused_imports)] // not every test binary sends random data
pub use knsock::internals::random_bytes;

pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// A loopback port that refuses connections for as long as this lives: bound, never listening.
/// (A port merely closed again could be picked as a connection's own source port, and a
/// connect to it would then reach itself.)
pub struct RefusingPort {
    _socket: socket2::Socket,
    pub port: u16,
}

impl RefusingPort {
    pub fn new() -> RefusingPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        RefusingPort {
            _socket: socket,
            port,
        }
    }
}
