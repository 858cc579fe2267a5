//! The transport seam: both sessions speak the protocol over any [`Transport`] (plain TCP today;
//! TLS plugs in at connect and accept), through [`Wire`], one buffered duplex stream with an
//! optional deadline for reads.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

/// A connected byte stream the protocol runs over.
pub(crate) trait Transport: Read + Write + Send {
    /// Whether a read would return at once: bytes are buffered inside the transport or readable
    /// on its socket.
    fn input_ready(&mut self) -> bool;

    /// Ends our direction of the stream once everything is written (TCP: shutdown for writing),
    /// so the peer reads the end of the stream.
    fn finish(&mut self) -> io::Result<()>;

    /// How long one read may wait for the peer (`None`: forever).
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;

    /// Writes some of `buf`, like `Write::write`, but a peer that is gone gives `EPIPE`, never
    /// `SIGPIPE`, which would kill a C host program that has not ignored it.
    fn send(&mut self, buf: &[u8]) -> io::Result<usize>;
}

impl Transport for TcpStream {
    fn input_ready(&mut self) -> bool {
        readable(self)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        NoSigpipe(self).write(buf)
    }
}

/// A TCP socket whose writes use `MSG_NOSIGNAL`: a peer that is gone gives `EPIPE`, never a
/// `SIGPIPE` that would kill a C host program. Every write to a socket goes through it.
pub(crate) struct NoSigpipe<'a>(pub(crate) &'a TcpStream);

impl Read for NoSigpipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for NoSigpipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(self.0, buf, rustix::net::SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }

    /// One `sendmsg` for many buffers (rustls hands over its TLS records this way).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        use rustix::net::{sendmsg, SendAncillaryBuffer, SendFlags};
        loop {
            let mut control = SendAncillaryBuffer::default();
            match sendmsg(self.0, bufs, &mut control, SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
        self.send(buf)
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

    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Link::Plain(s) => Transport::set_read_timeout(s, t),
            Link::Secure(s) => s.set_read_timeout(t),
        }
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(s) => s.send(buf),
            Link::Secure(s) => s.send(buf),
        }
    }
}

/// A transport with a read buffer and a write buffer. Large reads and writes (content chunks)
/// go straight through; small ones (frames) are buffered. Written bytes leave on
/// [`Write::flush`] or when the buffer is full.
pub(crate) struct Wire<S: Transport> {
    stream: S,
    rbuf: Box<[u8]>,
    rpos: usize,
    rend: usize,
    out: Vec<u8>,
    out_cap: usize,
    /// The stream's own read timeout (the idle timeout), restored when a deadline ends.
    idle: Option<Duration>,
    deadline: Option<Instant>,
    /// The read timeout last given to the stream while a deadline runs.
    applied: Option<Duration>,
    /// Bytes read from the stream since [`Wire::take_read`] last asked.
    read: u64,
    /// Bytes written through the wire since it was made.
    written: u64,
    /// Whether bytes were written since the last read from the stream.
    wrote: bool,
    /// Round trips waited for: reads that had to wait for the peer after we wrote.
    turns: u32,
}

impl<S: Transport> Wire<S> {
    /// `idle` is the read timeout the stream already has.
    pub(crate) fn new(
        stream: S,
        read_capacity: usize,
        write_capacity: usize,
        idle: Option<Duration>,
    ) -> Self {
        Wire {
            stream,
            rbuf: vec![0u8; read_capacity].into_boxed_slice(),
            rpos: 0,
            rend: 0,
            out: Vec::with_capacity(write_capacity),
            out_cap: write_capacity,
            idle,
            deadline: None,
            applied: None,
            read: 0,
            written: 0,
            wrote: false,
            turns: 0,
        }
    }

    /// Bytes written through the wire so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Round trips this side waited for: each read that found nothing to read after bytes were
    /// written since the previous read. Waits for answers that were already on their way when
    /// the read came are not counted, so over a real network the count is the number of round
    /// trips the exchange needs, and on loopback at most that. Counted only with the feature
    /// `internals` (0 otherwise).
    pub(crate) fn turns(&self) -> u32 {
        self.turns
    }

    /// Whether the peer's next bytes are already here, so reading will not block.
    pub(crate) fn input_ready(&mut self) -> bool {
        self.rpos < self.rend || self.stream.input_ready()
    }

    /// Reads from now on must complete by `deadline` (`None`: only the idle timeout applies).
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.deadline = deadline;
        if deadline.is_none() && self.applied.is_some() {
            self.applied = None;
            self.stream.set_read_timeout(self.idle)?;
        }
        Ok(())
    }

    /// Flushes, then ends our direction of the stream.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.stream.finish()
    }

    /// One read from the stream, cut short by the deadline, counted.
    fn read_stream(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Counted for the tests only (feature `internals`): the check costs a system call
        // each time a read follows writes.
        if cfg!(feature = "internals")
            && std::mem::take(&mut self.wrote)
            && !self.stream.input_ready()
        {
            self.turns += 1;
        }
        let n = self.read_deadline(buf)?;
        self.read += n as u64;
        Ok(n)
    }

    fn read_deadline(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(deadline) = self.deadline else {
            return self.stream.read(buf);
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not send a whole message in time",
                ));
            }
            // The timeout already on the socket serves while it is within a second of what is
            // wanted: no system call for most reads. One that ends a read early is retried.
            let wait = self.idle.map_or(left, |idle| idle.min(left));
            let close = |a: Duration| a <= wait + SLACK && wait <= a + SLACK;
            if !self.applied.is_some_and(close) {
                self.stream.set_read_timeout(Some(wait))?;
                self.applied = Some(wait);
            }
            match self.stream.read(buf) {
                // Past the deadline: the loop says so. Before it, a timeout shorter than the
                // idle one only ended early: read on.
                Err(e)
                    if is_timeout(&e)
                        && (deadline_passed(deadline) || wait < self.idle_or_max()) => {}
                other => return other,
            }
        }
    }

    /// The idle timeout, or forever.
    fn idle_or_max(&self) -> Duration {
        self.idle.unwrap_or(Duration::MAX)
    }

    fn write_out(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let result = send_all(&mut self.stream, &out);
        self.out = out;
        self.out.clear();
        result
    }
}

impl<S: Transport> Read for Wire<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rpos == self.rend && buf.len() >= self.rbuf.len() {
            return self.read_stream(buf);
        }
        let have = self.fill_buf()?;
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<S: Transport> BufRead for Wire<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
            let mut buf = std::mem::take(&mut self.rbuf);
            let got = self.read_stream(&mut buf);
            self.rbuf = buf;
            self.rend = got?;
        }
        Ok(&self.rbuf[self.rpos..self.rend])
    }

    fn consume(&mut self, amt: usize) {
        self.rpos = (self.rpos + amt).min(self.rend);
    }
}

impl<S: Transport> Write for Wire<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.out_cap {
            self.write_out()?;
        }
        let n = match buf.len() >= self.out_cap {
            true => self.stream.send(buf)?,
            false => {
                self.out.extend_from_slice(buf);
                buf.len()
            }
        };
        self.written += n as u64;
        self.wrote |= n > 0;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.write_out()?;
        }
        self.stream.flush()
    }
}

/// `Write::write_all` through [`Transport::send`].
fn send_all<S: Transport>(stream: &mut S, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.send(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How far a read timeout may be from the one wanted before it is set again.
const SLACK: Duration = Duration::from_millis(100);

fn deadline_passed(deadline: Instant) -> bool {
    Instant::now() >= deadline
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
