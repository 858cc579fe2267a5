//! zstd content encoding (docs/protocol.md section 3): the compressed stream travels as blocks
//! of `u32 len` + bytes, ended by a zero length, and the receiver decodes it with bounded memory
//! into exactly the announced number of bytes.

use std::io::{self, Write};

use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

use crate::error::{Error, Result};

/// Largest block on the wire.
pub const MAX_BLOCK: usize = 128 * 1024;
/// Largest zstd window a receiver accepts (8 MiB): bounds its memory whatever the peer sends.
pub const WINDOW_LOG_MAX: u32 = 23;
/// The sender's level: fast, with a window well under [`WINDOW_LOG_MAX`].
pub const LEVEL: i32 = 3;
/// How much of a file is tried before deciding whether compressing it pays.
pub const SAMPLE: usize = 64 * 1024;

/// Whether compressing data like `sample` pays: it must shrink by a tenth at least (media and
/// archives do not).
pub fn worth_compressing(sample: &[u8]) -> bool {
    if sample.is_empty() {
        return false;
    }
    match zstd::bulk::compress(sample, 1) {
        Ok(c) => c.len() * 10 < sample.len() * 9,
        Err(_) => false,
    }
}

/// Frames everything written to it as blocks of at most [`MAX_BLOCK`] bytes.
pub struct BlockWriter<W: Write>(pub W);

impl<W: Write> Write for BlockWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(MAX_BLOCK);
        if n > 0 {
            self.0.write_all(&(n as u32).to_be_bytes())?;
            self.0.write_all(&buf[..n])?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Compresses everything written to it onto `out` as blocks; [`Compressor::finish`] writes the
/// end of the stream and the terminating empty block.
pub struct Compressor<W: Write>(zstd::stream::write::Encoder<'static, BlockWriter<W>>);

impl<W: Write> Compressor<W> {
    pub fn new(out: W) -> io::Result<Self> {
        Ok(Compressor(zstd::stream::write::Encoder::new(
            BlockWriter(out),
            LEVEL,
        )?))
    }

    pub fn finish(self) -> io::Result<()> {
        let BlockWriter(mut out) = self.0.finish()?;
        out.write_all(&0u32.to_be_bytes())
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Decodes a file's compressed blocks one at a time, as they arrive: the receiver's event loop
/// feeds it whole blocks, [`decode_blocks`] reads them from a stream. The decoded total must be
/// exactly `expected`: more is a decompression bomb, less a truncated stream; both are protocol
/// errors.
pub struct BlockDecoder {
    decoder: Decoder<'static>,
    produced: u64,
    expected: u64,
}

impl BlockDecoder {
    /// A decoder for content announced as `expected` bytes.
    pub fn new(expected: u64) -> Result<BlockDecoder> {
        let mut decoder = Decoder::new().map_err(|e| Error::io("starting zstd", e))?;
        decoder
            .set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
            .map_err(|e| Error::io("starting zstd", e))?;
        Ok(BlockDecoder {
            decoder,
            produced: 0,
            expected,
        })
    }

    /// The length a block header announces: `None` for the empty block that ends the content.
    pub fn block_len(header: [u8; 4]) -> Result<Option<usize>> {
        match u32::from_be_bytes(header) as usize {
            0 => Ok(None),
            len if len > MAX_BLOCK => Err(Error::protocol(format!(
                "compressed block of {len} bytes exceeds {MAX_BLOCK}"
            ))),
            len => Ok(Some(len)),
        }
    }

    /// Decodes one block, handing `sink` the decoded bytes through `out` (the caller's buffer).
    pub fn feed(
        &mut self,
        block: &[u8],
        out: &mut [u8],
        sink: &mut (impl FnMut(&[u8]) -> Result<()> + ?Sized),
    ) -> Result<()> {
        let mut inb = InBuffer::around(block);
        while inb.pos() < block.len() {
            self.run(&mut inb, out, sink)?;
        }
        Ok(())
    }

    /// After the empty block: whatever the decoder still holds, then the size check.
    pub fn finish(
        mut self,
        out: &mut [u8],
        sink: &mut (impl FnMut(&[u8]) -> Result<()> + ?Sized),
    ) -> Result<()> {
        loop {
            let (n, more) = self.run(&mut InBuffer::around(&[]), out, sink)?;
            if n == 0 || more == 0 {
                break;
            }
        }
        // Content of unknown size (`u64::MAX`) decodes to whatever arrives.
        if self.expected != u64::MAX && self.produced != self.expected {
            return Err(Error::protocol(format!(
                "compressed content decodes to {} bytes, {} were announced",
                self.produced, self.expected
            )));
        }
        Ok(())
    }

    /// One step of the decoder: the bytes it produced and what it says is left.
    fn run(
        &mut self,
        inb: &mut InBuffer<'_>,
        out: &mut [u8],
        sink: &mut (impl FnMut(&[u8]) -> Result<()> + ?Sized),
    ) -> Result<(usize, usize)> {
        let mut outb = OutBuffer::around(out);
        let more = self
            .decoder
            .run(inb, &mut outb)
            .map_err(|e| Error::protocol(format!("corrupt compressed content: {e}")))?;
        let n = outb.pos();
        self.produced += n as u64;
        if self.produced > self.expected {
            return Err(Error::protocol(format!(
                "compressed content decodes to more than the announced {} bytes",
                self.expected
            )));
        }
        sink(&outb.as_slice()[..n])?;
        Ok((n, more))
    }
}

/// Reads blocks from `input` and decodes them, handing `sink` the decoded bytes through `out`
/// (the caller's buffer), until the empty block ([`BlockDecoder`] has the rules). For the fuzz
/// targets and tests; the receiver feeds its blocks as they arrive.
#[cfg(any(test, feature = "internals"))]
pub fn decode_blocks(
    input: &mut impl io::Read,
    expected: u64,
    out: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut decoder = BlockDecoder::new(expected)?;
    let mut block = Vec::new();
    loop {
        let mut header = [0u8; 4];
        input
            .read_exact(&mut header)
            .map_err(|e| Error::io("reading compressed content", e))?;
        let Some(len) = BlockDecoder::block_len(header)? else {
            break;
        };
        block.resize(len, 0);
        input
            .read_exact(&mut block)
            .map_err(|e| Error::io("reading compressed content", e))?;
        decoder.feed(&block, out, &mut sink)?;
    }
    decoder.finish(out, &mut sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(data: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut c = Compressor::new(&mut wire).unwrap();
        c.write_all(data).unwrap();
        c.finish().unwrap();
        wire
    }

    fn decode(wire: &[u8], expected: u64) -> Result<Vec<u8>> {
        let mut got = Vec::new();
        let mut out = vec![0u8; 4096];
        decode_blocks(&mut &wire[..], expected, &mut out, |b| {
            got.extend_from_slice(b);
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn round_trip_and_ratio() {
        let text: Vec<u8> = (0..200_000)
            .flat_map(|i| {
                format!("2026-11-24 12:00:{:02} INFO request {i} ok\n", i % 60).into_bytes()
            })
            .collect();
        let wire = encode(&text);
        assert!(
            wire.len() * 5 < text.len(),
            "logs should shrink: {}",
            wire.len()
        );
        assert_eq!(decode(&wire, text.len() as u64).unwrap(), text);
        assert!(worth_compressing(&text[..SAMPLE]));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..SAMPLE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!worth_compressing(&noise));
        assert!(!worth_compressing(&[]));
    }

    #[test]
    fn bombs_truncation_and_garbage_are_refused() {
        let zeros = vec![0u8; 10 << 20];
        let wire = encode(&zeros);
        assert!(wire.len() < 4096);
        let e = decode(&wire, 1000).unwrap_err();
        assert!(
            e.message().contains("more than the announced 1000 bytes"),
            "{e}"
        );
        let e = decode(&wire, 20 << 20).unwrap_err();
        assert!(e.message().contains("were announced"), "{e}");
        let mut bad = encode(b"hello hello hello");
        let n = bad.len();
        bad[n - 8] ^= 0x55;
        assert!(decode(&bad, 17).is_err());
        let huge = [0xff, 0xff, 0xff, 0xff];
        let e = decode(&huge, 1).unwrap_err();
        assert!(e.message().contains("exceeds"), "{e}");
    }
}
