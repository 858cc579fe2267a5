//! The one way content is hashed from a file: XXH3-128 in 256 KiB reads.

use std::io::{self, Read};

use xxhash_rust::xxh3::Xxh3;

const READ_SIZE: usize = 256 * 1024;

/// Feeds exactly `len` bytes of `r` to `hasher`; a stream that ends early is an
/// `UnexpectedEof` error.
pub(crate) fn hash_exact(r: &mut impl Read, len: u64, hasher: &mut Xxh3) -> io::Result<()> {
    let mut buf = vec![0u8; READ_SIZE.min(len as usize)];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        match r.read(&mut buf[..want]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank")),
            Ok(n) => {
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The XXH3-128 of exactly `len` bytes of `r`, as the 16 big-endian bytes the protocol carries.
pub(crate) fn digest_exact(r: &mut impl Read, len: u64) -> io::Result<[u8; 16]> {
    let mut hasher = Xxh3::new();
    hash_exact(r, len, &mut hasher)?;
    Ok(hasher.digest128().to_be_bytes())
}
