//! The transport seam: both sessions speak the protocol over any [`Transport`] (plain TCP today;
//! TLS plugs in at connect and accept), through [`Wire`], one buffered duplex stream.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use rustix::event::{poll, PollFd, PollFlags};

/// A connected byte stream the protocol runs over.
pub(crate) trait Transport: Read + Write + Send {
    /// Whether a read would return at once: bytes are buffered inside the transport or readable
    /// on its socket.
    fn input_ready(&mut self) -> bool;

    /// Ends our direction of the stream once everything is written (TCP: shutdown for writing),
    /// so the peer reads the end of the stream.
    fn finish(&mut self) -> io::Result<()>;

    /// Whether the stream is TLS (so a token may be sent or accepted on it).
    fn is_tls(&self) -> bool {
        false
    }

    /// The identity the peer proved with a client certificate, if any.
    fn peer_identity(&self) -> Option<String> {
        None
    }
}

impl Transport for TcpStream {
    fn input_ready(&mut self) -> bool {
        readable(self)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Whether the socket has bytes to read (or its end), without waiting.
pub(crate) fn readable(sock: &TcpStream) -> bool {
    let mut fds = [PollFd::new(sock, PollFlags::IN)];
    let zero = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// A connection that is plain TCP or secured by `T`, chosen at connect.
pub(crate) enum Link<T: Transport> {
    Plain(TcpStream),
    Secure(T),
}

impl<T: Transport> Read for Link<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Plain(s) => s.read(buf),
            Link::Secure(s) => s.read(buf),
        }
    }
}

impl<T: Transport> Write for Link<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(s) => s.write(buf),
            Link::Secure(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(s) => s.flush(),
            Link::Secure(s) => s.flush(),
        }
    }
}

impl<T: Transport> Transport for Link<T> {
    fn input_ready(&mut self) -> bool {
        match self {
            Link::Plain(s) => s.input_ready(),
            Link::Secure(s) => s.input_ready(),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(s) => s.finish(),
            Link::Secure(s) => s.finish(),
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Link::Secure(s) if s.is_tls())
    }

    fn peer_identity(&self) -> Option<String> {
        match self {
            Link::Plain(_) => None,
            Link::Secure(s) => s.peer_identity(),
        }
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
    pub(crate) fn input_ready(&mut self) -> bool {
        !self.reader.buffer().is_empty() || self.reader.get_mut().input_ready()
    }

    /// The transport under the buffers.
    pub(crate) fn transport(&self) -> &S {
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
