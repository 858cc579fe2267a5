//! The receiver's side of a connection on the event loop: [`Wire`], a buffered duplex stream
//! over any [`Stream`] (TCP, TLS, or memory in tests) whose reads wait for readiness, never
//! block a thread, end at the connection's deadline or idle timeout, end at once (as an end of
//! stream) when the server stops or the connection is cut (`io::cancel`), and below the minimum
//! rate near the connection cap. A connection that waits holds no read buffer; one whose buffer
//! grows past the small size takes that memory from the server's memory for work.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::cancel::{Cancel, MIN_RATE, RATE_WINDOW};
use crate::error::{Error, Result};
use crate::protocol::{eof_is_protocol, Frame, MAX_FRAME};

/// A connected byte stream a receiving session runs over.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {
    /// Whether the stream is TLS (so a token may be accepted on it).
    fn is_tls(&self) -> bool {
        false
    }

    /// The identity the peer proved with a client certificate, if any.
    fn peer_identity(&self) -> Option<String> {
        None
    }
}

/// The read buffer's size when bytes first arrive; it grows to what a frame or an eager file
/// needs, up to [`READ_MAX`].
const READ_MIN: usize = 16 * 1024;
/// The read buffer's largest size: room for the largest frame (65,541 bytes) and an eager
/// file's content with its DONE, so either can be checked as complete before a verdict is held.
pub(crate) const READ_MAX: usize = 160 * 1024;
/// What a buffer larger than [`READ_MIN`] takes from the server's memory for work, in KiB.
const BIG_KIB: u32 = ((READ_MAX - READ_MIN) / 1024) as u32;
/// What a connection without a buffer reads into while it waits (on its task's stack).
const FIRST_READ: usize = 512;
/// Frames and small writes are gathered up to this before they go out.
const WRITE_GATHER: usize = 16 * 1024;

pub(crate) struct Wire<S: Stream> {
    stream: S,
    /// Bytes read in: `rbuf[rpos..rend]` are not consumed yet. Empty (no allocation) while
    /// nothing is buffered and the connection waits.
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    out: Vec<u8>,
    idle: Duration,
    deadline: Option<Instant>,
    /// Bytes read from the stream since [`Wire::take_read`] last asked.
    read: u64,
    cancel: Arc<Cancel>,
    /// The last read filled the buffer: more is coming.
    flowing: bool,
    /// The read deadline's timer, kept from read to read.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Time spent waiting for the peer's bytes, and the bytes that came, in this rate window.
    waited: Duration,
    got: u64,
    /// The server's memory for work (a permit per KiB), and the share this connection holds
    /// while its buffer is larger than [`READ_MIN`].
    memory: Arc<Semaphore>,
    big: Option<OwnedSemaphorePermit>,
}

impl<S: Stream> Wire<S> {
    pub(crate) fn new(
        stream: S,
        idle: Duration,
        cancel: Arc<Cancel>,
        memory: Arc<Semaphore>,
    ) -> Self {
        Wire {
            stream,
            rbuf: Vec::new(),
            rpos: 0,
            rend: 0,
            out: Vec::new(),
            idle,
            deadline: None,
            read: 0,
            cancel,
            flowing: false,
            timer: None,
            waited: Duration::ZERO,
            got: 0,
            memory,
            big: None,
        }
    }

    /// Bytes read from the stream since the last call (for the server's statistics).
    pub(crate) fn take_read(&mut self) -> u64 {
        std::mem::take(&mut self.read)
    }

    /// The stream under the buffers.
    pub(crate) fn transport(&self) -> &S {
        &self.stream
    }

    #[cfg(feature = "internals")]
    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reads from now on must complete by `deadline` (`None`: only the idle timeout applies).
    pub(crate) fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.deadline = deadline.map(Instant::from_std);
    }

    /// The bytes read in but not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..self.rend]
    }

    /// Consumes `n` buffered bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.rpos = (self.rpos + n).min(self.rend);
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        }
    }

    /// Room for `n` bytes from `rpos`: the unread bytes move to the front when needed.
    fn make_room(&mut self, n: usize) {
        if self.rpos > 0 && self.rbuf.len() - self.rpos < n {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        if self.rbuf.len() < n {
            self.rbuf.resize(n.max(READ_MIN), 0);
        }
    }

    /// The room to make for `want` unread bytes before a read: while bytes flow (the last read
    /// filled what room there was), the buffer grows to its largest, many small files a read.
    /// Past [`READ_MIN`] it needs its share of the memory for work: without it, a flowing
    /// connection reads with its small buffer, and `None` says `want` must wait for memory.
    fn room_for(&mut self, want: usize) -> Option<usize> {
        let room = match self.flowing {
            true => want.max(READ_MAX),
            false => want,
        };
        if room <= READ_MIN || self.big.is_some() {
            return Some(room);
        }
        self.big = Arc::clone(&self.memory)
            .try_acquire_many_owned(BIG_KIB)
            .ok();
        match (self.big.is_some(), want <= READ_MIN) {
            (true, _) => Some(room),
            (false, true) => Some(want),
            (false, false) => None,
        }
    }

    /// Waits for this connection's share of the memory for work; `false` if it was stopped
    /// meanwhile.
    async fn wait_memory(&mut self) -> bool {
        let share = Arc::clone(&self.memory).acquire_many_owned(BIG_KIB);
        tokio::select! {
            p = share => self.big = p.ok(),
            () = self.cancel.stopped() => {}
        }
        self.big.is_some()
    }

    /// Whether at least `n` bytes can be read without waiting: those buffered, plus what the
    /// stream has ready (read in now). `n` above [`READ_MAX`] is never ready.
    pub(crate) fn ready(&mut self, n: usize) -> bool {
        if n > READ_MAX {
            return false;
        }
        while self.rend - self.rpos < n {
            if self.cancel.is_stopped() {
                return false;
            }
            let Some(room) = self.room_for(n) else {
                return false;
            };
            self.make_room(room);
            let mut buf = std::mem::take(&mut self.rbuf);
            let room = buf.len() - self.rend;
            let got = self.read_ready(&mut buf[self.rend..]);
            self.rbuf = buf;
            match got {
                Some(Ok(got)) if got > 0 => {
                    self.flowing = got == room;
                    self.rend += got;
                }
                _ => return false,
            }
        }
        true
    }

    /// One read from the stream into `buf`, waiting at most until the deadline and the idle
    /// timeout; `Ok(0)` at the end of the stream or once the connection was stopped.
    async fn read_stream(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_stopped() {
            return Ok(0);
        }
        // Bytes already here are read at once, with no timer to set up for them.
        match self.read_ready(buf) {
            Some(ready) => ready,
            None => self.wait_stream(buf).await,
        }
    }

    /// [`Wire::read_stream`] once nothing is ready: waits for the stream.
    async fn wait_stream(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let idle_end = Instant::now() + self.idle;
        let (until, by_deadline) = match self.deadline {
            Some(d) if d <= idle_end => (d, true),
            _ => (idle_end, false),
        };
        let started = Instant::now();
        // One timer for the connection's life: set again only when it would fire too late; one
        // that fires early (it was set for an earlier read) is set again and the read goes on.
        // Most reads then touch no timer at all.
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        if timer.deadline() > until {
            timer.as_mut().reset(until);
        }
        let mut read = ReadSome {
            stream: &mut self.stream,
            buf,
        };
        let n = loop {
            tokio::select! {
                r = &mut read => break r?,
                () = timer.as_mut() => {
                    if Instant::now() < until {
                        timer.as_mut().reset(until);
                        continue;
                    }
                    return Err(match by_deadline {
                        true => io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the peer did not send a whole message in time",
                        ),
                        false => io::ErrorKind::TimedOut.into(),
                    });
                }
                () = self.cancel.stopped() => break 0,
            }
        };
        self.read += n as u64;
        self.pace(n, started.elapsed())?;
        Ok(n)
    }

    /// Counts `n` bytes that took `waited` to come; at the end of a rate window, a connection
    /// under [`MIN_RATE`] is cut if the server is near its connection cap.
    fn pace(&mut self, n: usize, waited: Duration) -> io::Result<()> {
        self.waited += waited;
        self.got += n as u64;
        if self.waited < RATE_WINDOW {
            return Ok(());
        }
        let (got, secs) = (self.got, self.waited.as_secs());
        (self.waited, self.got) = (Duration::ZERO, 0);
        if got >= MIN_RATE * secs || !self.cancel.crowded() {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the peer sent {got} bytes in {secs} s, under the {MIN_RATE} bytes/s asked \
                 while the server is near its connection cap"
            ),
        ))
    }

    /// One read that does not wait, counted: `None` when the stream has nothing yet.
    fn read_ready(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        let mut cx = Context::from_waker(Waker::noop());
        let n = match Pin::new(&mut self.stream).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) => rb.filled().len(),
            Poll::Ready(Err(e)) if e.kind() != io::ErrorKind::Interrupted => return Some(Err(e)),
            _ => return None,
        };
        self.read += n as u64;
        Some(self.pace(n, Duration::ZERO).map(|()| n))
    }

    /// Reads more bytes into the buffer, which has room for `want` unread bytes; 0 at the end.
    /// A connection without a buffer waits with a small one of its own and takes the buffer
    /// only once bytes came.
    async fn fill(&mut self, want: usize) -> io::Result<usize> {
        let room = match self.room_for(want) {
            Some(room) => room,
            None if self.wait_memory().await => want,
            None => return Ok(0),
        };
        self.make_room(room);
        let mut buf = std::mem::take(&mut self.rbuf);
        let room = buf.len() - self.rend;
        let now = self.read_ready(&mut buf[self.rend..]);
        self.rbuf = buf;
        if let Some(got) = now {
            let n = got?;
            self.flowing = n == room;
            self.rend += n;
            return Ok(n);
        }
        self.flowing = false;
        if self.rpos < self.rend {
            // Part of a message is here: wait with the buffer that holds it.
            let mut buf = std::mem::take(&mut self.rbuf);
            let got = self.wait_stream(&mut buf[self.rend..]).await;
            self.rbuf = buf;
            let n = got?;
            self.rend += n;
            return Ok(n);
        }
        // Nothing buffered and nothing to read: a waiting connection gives its buffer back and
        // waits with a small one of its own.
        self.rbuf = Vec::new();
        self.big = None;
        let mut first = [0u8; FIRST_READ];
        let n = self.wait_stream(&mut first).await?;
        if n > 0 {
            self.make_room(want);
            self.rbuf[self.rend..self.rend + n].copy_from_slice(&first[..n]);
            self.rend += n;
        }
        Ok(n)
    }

    /// Waits until `n` bytes are buffered; `false` when the stream ends with none buffered, an
    /// error when it ends inside them.
    pub(crate) async fn ensure(&mut self, n: usize) -> io::Result<bool> {
        while self.rend - self.rpos < n {
            if self.fill(n).await? == 0 {
                if self.rend == self.rpos {
                    return Ok(false);
                }
                return Err(eof_is_protocol(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(true)
    }

    /// Fills `buf` exactly; the end of the stream first is an error.
    pub(crate) async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_some(&mut buf[done..]).await? {
                0 => return Err(eof_is_protocol(io::ErrorKind::UnexpectedEof.into())),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Reads some bytes into `buf` (a large read goes straight from the stream); 0 at the end.
    pub(crate) async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rpos == self.rend {
            if buf.len() >= READ_MIN {
                return self.read_stream(buf).await;
            }
            if self.fill(READ_MIN).await? == 0 {
                return Ok(0);
            }
        }
        let have = self.buffered();
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Reads one frame. `Ok(None)` is a clean end of stream before the frame's first byte.
    /// The frame is decoded only once whole (never more than [`MAX_FRAME`] bytes are taken).
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Frame>> {
        let io = |e| Error::io("reading a frame", e);
        if !self.ensure(5).await.map_err(io)? {
            return Ok(None);
        }
        let b = self.buffered();
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
        if len > MAX_FRAME {
            return Err(Error::protocol(format!(
                "frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"
            )));
        }
        let whole = 5 + len as usize;
        if !self.ensure(whole).await.map_err(io)? {
            return Err(io(eof_is_protocol(io::ErrorKind::UnexpectedEof.into())));
        }
        let frame = Frame::read_from(&mut &self.buffered()[..whole]);
        self.consume(whole);
        frame
    }

    /// Appends `bytes` to what goes out with the next flush.
    pub(crate) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Sends what was queued. A cut connection writes nothing more.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.cancel.is_cut() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            let sent = self.write_all(&out).await;
            self.out = out;
            self.out.clear();
            if self.out.capacity() > WRITE_GATHER {
                self.out = Vec::new();
            }
            sent?;
        }
        self.stream.flush().await
    }

    /// Writes `bytes` whole, within the idle timeout.
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(self.idle, self.stream.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Flushes, then ends our direction of the stream (TLS: close_notify first).
    pub(crate) async fn finish(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.stream.shutdown().await
    }
}

/// One `poll_read` as a future: the bytes it read, 0 at the end of the stream.
struct ReadSome<'a, S> {
    stream: &'a mut S,
    buf: &'a mut [u8],
}

impl<S: AsyncRead + Unpin> Future for ReadSome<'_, S> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut rb = ReadBuf::new(this.buf);
        match Pin::new(&mut *this.stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests;
