//! The transport seam: both sessions speak the protocol over any [`Transport`] (plain TCP today;
//! TLS plugs in at connect and accept), through [`Wire`], one buffered duplex stream.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use rustix::event::{poll, PollFd, PollFlags};

/// A connected byte stream the protocol runs over.
pub(crate) trait Transport: Read + Write + Send {
    /// Whether a read would return at once: bytes are buffered inside the transport or readable
    /// on its socket.
    fn input_ready(&self) -> bool;

    /// Ends our direction of the stream once everything is written (TCP: shutdown for writing),
    /// so the peer reads the end of the stream.
    fn finish(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn input_ready(&self) -> bool {
        let mut fds = [PollFd::new(self, PollFlags::IN)];
        let zero = rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// A transport with a read buffer and a write buffer. Large writes (a content chunk) go straight
/// through; small ones (frames) collect until [`Write::flush`] or until the buffer is full.
pub(crate) struct Wire<S: Transport> {
    reader: BufReader<S>,
    out: Vec<u8>,
    out_cap: usize,
}

impl<S: Transport> Wire<S> {
    pub(crate) fn new(stream: S, read_capacity: usize, write_capacity: usize) -> Self {
        Wire {
            reader: BufReader::with_capacity(read_capacity, stream),
            out: Vec::with_capacity(write_capacity),
            out_cap: write_capacity,
        }
    }

    /// Whether the peer's next bytes are already here, so reading will not block.
    pub(crate) fn input_ready(&self) -> bool {
        !self.reader.buffer().is_empty() || self.reader.get_ref().input_ready()
    }

    #[cfg(feature = "internals")]
    pub(crate) fn get_ref(&self) -> &S {
        self.reader.get_ref()
    }

    /// Flushes, then ends our direction of the stream.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.reader.get_mut().finish()
    }

    fn write_out(&mut self) -> io::Result<()> {
        let result = self.reader.get_mut().write_all(&self.out);
        self.out.clear();
        result
    }
}

impl<S: Transport> Read for Wire<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl<S: Transport> BufRead for Wire<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.reader.consume(amt)
    }
}

impl<S: Transport> Write for Wire<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.out_cap {
            self.write_out()?;
        }
        if buf.len() >= self.out_cap {
            return self.reader.get_mut().write(buf);
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.write_out()?;
        }
        self.reader.get_mut().flush()
    }
}

/// A stream whose input is given whole and whose output is kept, for fuzzing and tests.
#[cfg(feature = "internals")]
pub(crate) struct MemStream {
    input: io::Cursor<Vec<u8>>,
    pub(crate) output: Vec<u8>,
}

#[cfg(feature = "internals")]
impl MemStream {
    pub(crate) fn new(input: Vec<u8>) -> MemStream {
        MemStream {
            input: io::Cursor::new(input),
            output: Vec::new(),
        }
    }
}

#[cfg(feature = "internals")]
impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

#[cfg(feature = "internals")]
impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "internals")]
impl Transport for MemStream {
    fn input_ready(&self) -> bool {
        self.input.position() < self.input.get_ref().len() as u64
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}
