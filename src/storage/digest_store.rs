//! Digests that outlive the receiver's process: a stored file's XXH3-128 kept in its extended
//! attribute `user.knsock.xxh3` with the size, modification time and inode it was computed from,
//! so a restarted receiver does not hash an unchanged file again. Stale or missing (a file
//! system without user attributes), it is ignored and the file is hashed.

use std::os::fd::AsFd;

use rustix::fs::{self as rfs, Stat, XattrFlags};

/// The attribute's name.
pub const XATTR: &str = "user.knsock.xxh3";
const VERSION: u8 = 1;
/// version, digest, size, mtime seconds, mtime nanoseconds, inode.
const LEN: usize = 1 + 16 + 8 + 8 + 4 + 8;

/// What the digest of a file with status `st` is recorded with.
fn record(st: &Stat, digest: &[u8; 16]) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[0] = VERSION;
    out[1..17].copy_from_slice(digest);
    out[17..25].copy_from_slice(&(st.st_size as u64).to_be_bytes());
    out[25..33].copy_from_slice(&st.st_mtime.to_be_bytes());
    out[33..37].copy_from_slice(&(st.st_mtime_nsec as u32).to_be_bytes());
    out[37..45].copy_from_slice(&st.st_ino.to_be_bytes());
    out
}

/// Records `digest` on the open file as it is now. Best effort: a file system without user
/// attributes only means the next run hashes the file.
pub fn remember(fd: impl AsFd, digest: [u8; 16]) {
    if let Ok(st) = rfs::fstat(&fd) {
        let _ = rfs::fsetxattr(&fd, XATTR, &record(&st, &digest), XattrFlags::empty());
    }
}

/// The digest recorded on the file, if it was computed from what the file is now (`st`).
pub(crate) fn recall(fd: impl AsFd, st: &Stat) -> Option<[u8; 16]> {
    let mut buf = [0u8; LEN];
    let n = rfs::fgetxattr(&fd, XATTR, &mut buf[..]).ok()?;
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&buf[1..17]);
    (n == LEN && buf == record(st, &digest)).then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        remember(&f, [7; 16]);
        let st = rfs::fstat(&f).unwrap();
        if rfs::fgetxattr(&f, XATTR, &mut [0u8; LEN][..]).is_err() {
            return; // no user attributes on this file system: nothing to check
        }
        assert_eq!(recall(&f, &st), Some([7; 16]));
        std::fs::write(&path, b"hello, world").unwrap();
        let st = rfs::fstat(&f).unwrap();
        assert_eq!(recall(&f, &st), None);
    }
}
