//! The frames of a fetch (docs/protocol.md section 3.4): FETCH, FILE, LISTED, WANT and MISSING,
//! each length bounded like every frame.

use super::frame::{put_str16, truncate_text, ty, Cursor, Frame};
use super::types::{FetchRequest, Offer, FETCH_MAX_FILTERS, FETCH_MAX_NAMES, MAX_NAME, MAX_TEXT};
use crate::error::{Error, Result};

impl Frame {
    /// The frames of a fetch (docs/protocol.md 3.4).
    pub(super) fn decode_fetch(t: u8, p: &mut Cursor<'_>) -> Result<Frame> {
        Ok(match t {
            ty::FETCH => Frame::Fetch(fetch_request(p)?),
            ty::FILE => Frame::File {
                seq: p.u32()?,
                offer: p.offer()?,
            },
            ty::LISTED => Frame::Listed { count: p.u32()? },
            ty::WANT => Frame::Want {
                seq: p.u32()?,
                offset: p.u64()?,
            },
            _ => Frame::Missing {
                index: p.u16()?,
                code: p.u16()?,
                text: p.str16(MAX_TEXT, "reason")?,
            },
        })
    }

    /// The payload of the frames of a fetch; `None` for another frame.
    pub(super) fn encode_fetch(&self, out: &mut Vec<u8>) -> Option<u8> {
        Some(match self {
            Frame::Fetch(r) => {
                out.push(r.flags);
                out.extend_from_slice(&(r.names.len().min(FETCH_MAX_NAMES) as u16).to_be_bytes());
                for n in r.names.iter().take(FETCH_MAX_NAMES) {
                    put_str16(out, truncate_text(n, MAX_NAME));
                }
                let filters = r.include.iter().map(|g| (0u8, g));
                let filters: Vec<_> = filters.chain(r.exclude.iter().map(|g| (1u8, g))).collect();
                let n = filters.len().min(FETCH_MAX_FILTERS);
                out.extend_from_slice(&(n as u16).to_be_bytes());
                for (kind, glob) in filters.into_iter().take(n) {
                    out.push(kind);
                    put_str16(out, truncate_text(glob, super::types::MAX_GLOB));
                }
                ty::FETCH
            }
            Frame::File { seq, offer } => {
                out.extend_from_slice(&seq.to_be_bytes());
                let start = out.len();
                Frame::Offer(Offer {
                    flags: 0,
                    ..offer.clone()
                })
                .encode(out);
                // The OFFER's own 5-byte header is not part of FILE's payload.
                out.drain(start..start + 5);
                ty::FILE
            }
            Frame::Listed { count } => {
                out.extend_from_slice(&count.to_be_bytes());
                ty::LISTED
            }
            Frame::Want { seq, offset } => {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                ty::WANT
            }
            Frame::Missing { index, code, text } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                put_str16(out, truncate_text(text, MAX_TEXT));
                ty::MISSING
            }
            _ => return None,
        })
    }
}

/// A FETCH's payload, every count and length bounded before anything is allocated.
fn fetch_request(p: &mut Cursor<'_>) -> Result<FetchRequest> {
    let mut r = FetchRequest {
        flags: p.u8()?,
        ..FetchRequest::default()
    };
    let count = p.u16()? as usize;
    if count == 0 || count > FETCH_MAX_NAMES {
        return Err(Error::protocol(format!(
            "FETCH of {count} names (1 to {FETCH_MAX_NAMES})"
        )));
    }
    for _ in 0..count {
        r.names.push(p.str16(MAX_NAME, "name")?);
    }
    let filters = p.u16()? as usize;
    if filters > FETCH_MAX_FILTERS {
        return Err(Error::protocol(format!(
            "FETCH with {filters} filters (at most {FETCH_MAX_FILTERS})"
        )));
    }
    for _ in 0..filters {
        let kind = p.u8()?;
        let glob = p.str16(super::types::MAX_GLOB, "glob")?;
        match kind {
            0 => r.include.push(glob),
            1 => r.exclude.push(glob),
            k => return Err(Error::protocol(format!("FETCH filter of kind {k}"))),
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let mut buf = Vec::new();
        f.encode(&mut buf);
        assert_eq!(Frame::read_from(&mut &buf[..]).unwrap().unwrap(), f);
    }

    #[test]
    fn fetch_frames_round_trip() {
        round_trip(Frame::Fetch(FetchRequest {
            flags: 3,
            names: vec!["tree".into(), "a/b.txt".into()],
            include: vec!["*.txt".into()],
            exclude: vec!["*/tmp/*".into()],
        }));
        round_trip(Frame::File {
            seq: 7,
            offer: Offer {
                digest: vec![1; 16],
                mtime_secs: 1_700_000_000,
                mtime_nanos: 5,
                mode: 0o600,
                ..Offer::new("tree/a", 42)
            },
        });
        round_trip(Frame::Listed { count: 3 });
        round_trip(Frame::Want { seq: 2, offset: 9 });
        round_trip(Frame::Missing {
            index: 1,
            code: 21,
            text: "no such file".into(),
        });
    }

    #[test]
    fn a_fetch_without_names_or_with_too_many_filters_is_refused() {
        let empty = [ty::FETCH, 0, 0, 0, 5, 0, 0, 0, 0, 0];
        let e = Frame::read_from(&mut &empty[..]).unwrap_err();
        assert!(e.message().contains("FETCH of 0 names"), "{e}");
        let mut buf = vec![ty::FETCH, 0, 0, 0, 0, 0, 0, 1, 0, 1, b'a', 0, 65];
        buf[4] = (buf.len() - 5) as u8;
        let e = Frame::read_from(&mut &buf[..]).unwrap_err();
        assert!(e.message().contains("65 filters"), "{e}");
    }
}
