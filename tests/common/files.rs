//! Test helpers that need nothing but std, socket2 and the library's test hooks: the files
//! below a directory and what they hold, a tree to send and fetch back, files of random bytes,
//! a port that refuses. Shared by the library's tests and the CLI's (cli/tests).

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// Makes `root/tree`: five files with distinct sizes, modes (one read-only) and modification
/// times to the nanosecond, `sub/big.bin` of `big` bytes. Returns `root/tree`.
#[allow(dead_code)] // for the fetch tests
pub fn make_tree(root: &Path, big: usize) -> PathBuf {
    let tree = root.join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let files: [(&str, usize, u32); 5] = [
        ("a.txt", 10, 0o644),
        ("empty", 0, 0o600),
        ("run.sh", 5000, 0o755),
        ("sub/big.bin", big, 0o640),
        ("sub/deeper/c", 70_000, 0o444),
    ];
    for (i, (name, size, mode)) in files.iter().enumerate() {
        let p = tree.join(name);
        std::fs::write(&p, random_bytes(*size, i as u64)).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(t0 + Duration::from_secs(i as u64 * 1000))
            .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    tree
}

/// Each file below `root`: its relative name, bytes, mode and modification time.
#[allow(dead_code)] // for the fetch tests
pub fn snapshot(root: &Path) -> Vec<(String, Vec<u8>, u32, i64, i64)> {
    list_tree(root)
        .into_iter()
        .filter(|n| root.join(n).is_file())
        .map(|n| {
            let p = root.join(&n);
            let m = std::fs::metadata(&p).unwrap();
            let bytes = std::fs::read(&p).unwrap();
            (n, bytes, m.mode() & 0o7777, m.mtime(), m.mtime_nsec())
        })
        .collect()
}
