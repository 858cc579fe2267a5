//! The hello and its reply (docs/protocol.md section 1): version negotiation and capabilities
//! at the first bytes of a connection.

use std::io::Read;

use super::frame::eof_is_protocol;
use super::types::{MAGIC, MAX_EXT, VERSION_MAX, VERSION_MIN};
use crate::error::{Error, Result};

/// The hello a sender opens with, and the reply a receiver gives (section 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub min_version: u16,
    pub max_version: u16,
    /// Capability bits ([`CAP_ZSTD`]), carried in the extension block.
    pub caps: u32,
}

impl Hello {
    pub fn ours(caps: u32) -> Hello {
        Hello {
            min_version: VERSION_MIN,
            max_version: VERSION_MAX,
            caps,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.min_version.to_be_bytes());
        out.extend_from_slice(&self.max_version.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&self.caps.to_be_bytes());
    }

    /// Reads a hello whose first magic byte the receiver has already consumed.
    pub fn read_after_first_byte(r: &mut impl Read) -> Result<Hello> {
        let mut b = [0u8; 13];
        r.read_exact(&mut b)
            .map_err(|e| Error::io("reading the hello", eof_is_protocol(e)))?;
        if b[..7] != MAGIC[1..] {
            return Err(Error::protocol("peer does not speak knsock (bad magic)"));
        }
        Ok(Hello {
            min_version: u16::from_be_bytes([b[7], b[8]]),
            max_version: u16::from_be_bytes([b[9], b[10]]),
            caps: read_ext(r, u16::from_be_bytes([b[11], b[12]]))?,
        })
    }

    /// The version both sides speak, if any.
    pub fn negotiate(&self) -> Option<u16> {
        let hi = self.max_version.min(VERSION_MAX);
        let lo = self.min_version.max(VERSION_MIN);
        (lo <= hi).then_some(hi)
    }
}

/// Writes the receiver's hello reply; `version` 0 refuses. `caps` are the capabilities both
/// sides have.
pub fn encode_hello_reply(version: u16, caps: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&caps.to_be_bytes());
}

/// Reads the receiver's hello reply: the chosen version (0 = refused) and the capabilities.
pub fn read_hello_reply(r: &mut impl Read) -> Result<(u16, u32)> {
    let mut b = [0u8; 12];
    r.read_exact(&mut b)
        .map_err(|e| Error::io("reading the receiver's hello", eof_is_protocol(e)))?;
    if b[..8] != MAGIC {
        return Err(Error::protocol("peer does not speak knsock (bad magic)"));
    }
    let caps = read_ext(r, u16::from_be_bytes([b[10], b[11]]))?;
    Ok((u16::from_be_bytes([b[8], b[9]]), caps))
}

/// Reads an extension block: capability bits in its first 4 bytes (0 when shorter); the rest is
/// skipped, for later versions.
fn read_ext(r: &mut impl Read, len: u16) -> Result<u32> {
    if len > MAX_EXT {
        return Err(Error::protocol(format!(
            "hello extension of {len} bytes exceeds {MAX_EXT}"
        )));
    }
    let mut ext = [0u8; MAX_EXT as usize];
    r.read_exact(&mut ext[..len as usize])
        .map_err(|e| Error::io("reading the hello", eof_is_protocol(e)))?;
    Ok(match len {
        0..=3 => 0,
        _ => u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::CAP_ZSTD;

    #[test]
    fn version_negotiation() {
        assert_eq!(Hello::ours(0).negotiate(), Some(1));
        let future = Hello {
            min_version: 2,
            max_version: 9,
            caps: 0,
        };
        assert_eq!(future.negotiate(), None);
        let wide = Hello {
            min_version: 0,
            max_version: 9,
            caps: CAP_ZSTD,
        };
        assert_eq!(wide.negotiate(), Some(VERSION_MAX));
    }
}
