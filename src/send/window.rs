//! The window a fan-out's sessions share: the most recently read blocks of the sources, bounded
//! in bytes. The first session to need a block reads it from the file; the others copy it from
//! here. A session that fell behind finds its blocks gone and reads them again itself, so no
//! session ever waits for another's network, only for a block being read from disk.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::sync::lock;

/// A block: which source (its place in the list) and which block of it.
type Key = (usize, u64);

/// Recently read blocks of the sources, shared by the sessions of one fan-out.
pub(crate) struct Window {
    state: Mutex<State>,
    /// Signalled when a block being read is ready (or its read failed).
    loaded: Condvar,
    block: usize,
    budget: usize,
    /// Bytes read from the files, for the tests that count them.
    #[cfg_attr(not(test), allow(dead_code))]
    read_bytes: AtomicU64,
}

#[derive(Default)]
struct State {
    blocks: HashMap<Key, Slot>,
    /// Ready blocks in the order they were read: the first goes when the window is full.
    order: VecDeque<Key>,
    bytes: usize,
}

enum Slot {
    /// A session is reading it; the others wait for that read rather than repeat it.
    Loading,
    Ready(Arc<Vec<u8>>),
}

impl Window {
    /// A window of blocks of `block` bytes holding at most `budget` bytes (at least one block).
    pub(crate) fn new(block: usize, budget: usize) -> Arc<Window> {
        Arc::new(Window {
            state: Mutex::new(State::default()),
            loaded: Condvar::new(),
            block: block.max(1),
            budget: budget.max(block),
            read_bytes: AtomicU64::new(0),
        })
    }

    /// A reader of source `key` (`size` bytes, opened by the session as `file`) through the
    /// window.
    pub(crate) fn reader(self: &Arc<Self>, key: usize, file: File, size: u64) -> WindowReader {
        WindowReader {
            window: Arc::clone(self),
            key,
            file,
            size,
            pos: 0,
        }
    }

    /// Bytes read from the files so far.
    #[cfg(test)]
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read_bytes.load(Ordering::Relaxed)
    }

    /// Block `k` of source `key`: from the window, or read from `file` (`size` bytes long) and
    /// kept. Shorter than a block at the end of the file, or where the file shrank.
    fn get(&self, key: usize, k: u64, file: &File, size: u64) -> io::Result<Arc<Vec<u8>>> {
        let id = (key, k);
        let mut st = lock(&self.state);
        loop {
            match st.blocks.get(&id) {
                Some(Slot::Ready(b)) => return Ok(Arc::clone(b)),
                Some(Slot::Loading) => {
                    st = self.loaded.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                None => break,
            }
        }
        st.blocks.insert(id, Slot::Loading);
        drop(st);
        let start = k * self.block as u64;
        let len = (size.saturating_sub(start)).min(self.block as u64) as usize;
        let read = read_block(file, start, len);
        let mut st = lock(&self.state);
        let result = match read {
            Ok(data) => {
                self.read_bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                let data = Arc::new(data);
                st.bytes += data.len();
                st.blocks.insert(id, Slot::Ready(Arc::clone(&data)));
                st.order.push_back(id);
                self.evict(&mut st);
                Ok(data)
            }
            Err(e) => {
                st.blocks.remove(&id);
                Err(e)
            }
        };
        drop(st);
        self.loaded.notify_all();
        result
    }

    /// Drops the oldest blocks until the window is within its budget (a reader still copying
    /// from one keeps it alive until it is done).
    fn evict(&self, st: &mut State) {
        while st.bytes > self.budget && st.order.len() > 1 {
            let id = st.order.pop_front().expect("not empty");
            if let Some(Slot::Ready(b)) = st.blocks.remove(&id) {
                st.bytes -= b.len();
            }
        }
    }
}

/// Reads `len` bytes at `start`, fewer where the file ends first.
fn read_block(file: &File, start: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// One session's view of a source through the window: `Read + Seek` over its first `size`
/// bytes (the size its OFFER announced), each read at most to the end of a block.
pub(crate) struct WindowReader {
    window: Arc<Window>,
    key: usize,
    file: File,
    size: u64,
    pos: u64,
}

impl Read for WindowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let block = self.window.block as u64;
        let k = self.pos / block;
        let data = self.window.get(self.key, k, &self.file, self.size)?;
        let from = (self.pos - k * block) as usize;
        if from >= data.len() {
            return Ok(0); // the file shrank
        }
        let n = buf.len().min(data.len() - from);
        buf[..n].copy_from_slice(&data[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for WindowReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        };
        self.pos = pos
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 1000;

    fn source(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &data).unwrap();
        (f, data)
    }

    fn reader(w: &Arc<Window>, f: &tempfile::NamedTempFile, size: usize) -> WindowReader {
        w.reader(0, f.reopen().unwrap(), size as u64)
    }

    /// Reads one step of at most `n` bytes into `out`; false at the end.
    fn step(r: &mut WindowReader, n: usize, out: &mut Vec<u8>) -> bool {
        let mut buf = vec![0u8; n];
        let got = r.read(&mut buf).unwrap();
        out.extend_from_slice(&buf[..got]);
        got > 0
    }

    #[test]
    fn readers_going_together_read_each_byte_of_the_file_once() {
        let (f, data) = source(10 * BLOCK + 123);
        let w = Window::new(BLOCK, 4 * BLOCK);
        let mut readers: Vec<_> = (0..3).map(|_| reader(&w, &f, data.len())).collect();
        let mut got = vec![Vec::new(); 3];
        // Steps that do not line up with blocks, each reader in turn.
        loop {
            let mut any = false;
            for (r, out) in readers.iter_mut().zip(&mut got) {
                any |= step(r, 300, out);
            }
            if !any {
                break;
            }
        }
        assert!(got.iter().all(|g| *g == data));
        assert_eq!(w.bytes_read(), data.len() as u64);
        assert!(lock(&w.state).bytes <= 4 * BLOCK);
    }

    #[test]
    fn a_reader_behind_the_window_reads_for_itself_and_the_bound_holds() {
        let (f, data) = source(10 * BLOCK);
        let w = Window::new(BLOCK, 3 * BLOCK);
        let (mut fast, mut slow) = (reader(&w, &f, data.len()), reader(&w, &f, data.len()));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        while step(&mut fast, BLOCK, &mut a) {
            assert!(lock(&w.state).bytes <= 3 * BLOCK);
        }
        assert_eq!(w.bytes_read(), data.len() as u64);
        // The fast reader never waited; the slow one finds only the last 3 blocks.
        while step(&mut slow, 700, &mut b) {
            assert!(lock(&w.state).bytes <= 3 * BLOCK);
        }
        assert_eq!((a == data, b == data), (true, true));
        assert_eq!(w.bytes_read(), 2 * data.len() as u64);
    }

    #[test]
    fn passes_rewind_and_a_shrunk_file_ends_early() {
        let (f, data) = source(3 * BLOCK);
        let w = Window::new(BLOCK, 10 * BLOCK);
        let mut r = reader(&w, &f, data.len());
        let mut sample = vec![0u8; 10];
        r.read_exact(&mut sample).unwrap();
        r.seek(SeekFrom::Start(0)).unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        assert_eq!(w.bytes_read(), data.len() as u64);
        // Announced larger than it is: the read stops where the file does.
        let mut long = w.reader(1, f.reopen().unwrap(), 5 * BLOCK as u64);
        let mut got = Vec::new();
        long.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
    }
}
