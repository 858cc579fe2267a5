//! Delta transfer's shared rules (docs/protocol.md section 3.2): how both sides cut a file into
//! content-defined chunks (FastCDC 2020, parameters from the old copy's size), the chunk hash,
//! and the bounds of a signature and of literal data.

use std::io::{self, Read};

/// Most chunks a signature may have.
pub const MAX_SIG_CHUNKS: usize = 1 << 21;
/// Most new bytes one LITERAL frame carries before compression (its zstd form then fits a
/// frame whatever the data).
pub const LITERAL_BLOCK: usize = 60 * 1024;
/// Most bytes one compressed LITERAL frame may decode to.
pub const LITERAL_DECODED_MAX: usize = LITERAL_BLOCK;

/// FastCDC's minimum, average and maximum chunk sizes for an old copy of `old_size` bytes: the
/// average is `old_size / 32768` rounded up to a power of two, within 8 KiB and 1 MiB; the
/// minimum a quarter of it, the maximum four times.
pub fn params(old_size: u64) -> (u32, u32, u32) {
    let avg = (old_size / 32768)
        .next_power_of_two()
        .clamp(8 * 1024, 1024 * 1024) as u32;
    (avg / 4, avg, avg * 4)
}

/// The hash that names a chunk: XXH3-64 of its bytes.
pub fn chunk_hash(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

/// The chunks of `r` (a file whose old copy had `old_size` bytes), each with its bytes.
pub fn chunks<R: Read>(r: R, old_size: u64) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    let (min, avg, max) = params(old_size);
    fastcdc::v2020::StreamCDC::new(r, min, avg, max).map(|c| match c {
        Ok(c) => Ok(c.data),
        Err(fastcdc::v2020::Error::IoError(e)) => Err(e),
        Err(e) => Err(io::Error::other(format!("{e:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_follow_the_size() {
        assert_eq!(params(0), (2048, 8192, 32768));
        assert_eq!(params(256 << 20), (2048, 8192, 32768));
        assert_eq!(params(1 << 30).1, 32768);
        assert_eq!(params(u64::MAX / 2).1, 1 << 20);
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let mut x = 1u64;
        let data: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut edited = data.clone();
        edited.splice(500_000..500_000, [1u8, 2, 3].iter().copied());
        let hashes = |d: &[u8]| -> Vec<u64> {
            chunks(d, 1 << 20)
                .map(|c| chunk_hash(&c.unwrap()))
                .collect()
        };
        let (a, b) = (hashes(&data), hashes(&edited));
        let shared = b.iter().filter(|h| a.contains(h)).count();
        assert!(shared + 3 >= a.len(), "{shared} of {}", a.len());
    }
}
