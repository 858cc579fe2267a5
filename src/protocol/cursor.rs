//! Decoding a frame's payload (docs/protocol.md section 2): fields read in order, each length
//! checked against its bound before anything is allocated, and the OFFER's fields.

use super::types::{Offer, MAX_DIGEST, MAX_NAME};
use crate::error::{Error, Result};

/// The unread rest of a frame's payload.
pub(super) struct Cursor<'a>(pub(super) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::protocol("frame shorter than its fields"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub(super) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub(super) fn digest(&mut self) -> Result<Vec<u8>> {
        let n = self.u8()? as usize;
        if n > MAX_DIGEST {
            return Err(Error::protocol(format!("digest of {n} bytes is too long")));
        }
        Ok(self.take(n)?.to_vec())
    }
    pub(super) fn str16(&mut self, max: usize, what: &str) -> Result<String> {
        String::from_utf8(self.bytes16(max, what)?.to_vec())
            .map_err(|_| Error::protocol(format!("{what} is not UTF-8")))
    }
    pub(super) fn bytes16(&mut self, max: usize, what: &str) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(Error::protocol(format!(
                "{what} of {n} bytes exceeds {max}"
            )));
        }
        self.take(n)
    }
    /// An OFFER's payload. A name that is not UTF-8 is no protocol error: the receiver refuses
    /// the offer with code 5 and the connection goes on (docs/protocol.md section 4).
    pub(super) fn offer(&mut self) -> Result<Offer> {
        let (size, mtime_secs, mtime_nanos) = (self.u64()?, self.u64()? as i64, self.u32()?);
        let (mode, algorithm) = (self.u32()?, self.u8()?);
        let raw = self.bytes16(MAX_NAME, "name")?;
        let (name, raw_name) = match std::str::from_utf8(raw) {
            Ok(name) => (name.to_string(), None),
            Err(_) => (crate::printable_bytes(raw).into_owned(), Some(raw.to_vec())),
        };
        Ok(Offer {
            size,
            mtime_secs,
            mtime_nanos,
            mode,
            algorithm,
            name,
            raw_name,
            digest: self.digest()?,
            encoding: self.u8()?,
            flags: match self.0.is_empty() {
                true => 0,
                // Present only when not 0: one encoding per OFFER.
                false => match self.u8()? {
                    0 => return Err(Error::protocol("OFFER flags byte present but 0")),
                    f => f,
                },
            },
        })
    }
}
