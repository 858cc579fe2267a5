//! Many files over one connection: the walk that turns paths into named sources (recursion,
//! include/exclude globs, symlinks), and the pipelined engine that offers the next file while the
//! receiver commits the previous ones (docs/protocol.md section 3).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use glob::{MatchOptions, Pattern};

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Frame, Hello, Offer, ALGO_XXH3_128};
use crate::sender::{self, BatchProgress, SendOptions, SendReport};

/// One file to send: where it is here, the name it gets on the receiver, its size when listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
}

/// Which files a walk picks.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Descend into directories (a directory without it is an error, as with `cp`).
    pub recursive: bool,
    /// Globs matched against the relative name (`*` also crosses `/`): when any is given, a
    /// file must match one. `*.log` selects by extension.
    pub include: Vec<String>,
    /// Globs that drop a file, whatever `include` says.
    pub exclude: Vec<String>,
    /// Follow symlinks (loops are detected); by default they are skipped.
    pub follow_symlinks: bool,
}

/// Lists the files `paths` name, in a stable order: a file stands for itself (its base name on
/// the receiver), a directory for every file beneath it (`dir/sub/file`).
pub fn collect_sources(paths: &[PathBuf], opts: &WalkOptions) -> Result<Vec<Source>> {
    let compile = |globs: &[String]| -> Result<Vec<Pattern>> {
        globs
            .iter()
            .map(|g| Pattern::new(g).map_err(|e| Error::invalid(format!("bad pattern {g:?}: {e}"))))
            .collect()
    };
    let include = compile(&opts.include)?;
    let exclude = compile(&opts.exclude)?;
    let wanted = |name: &str| {
        let m = MatchOptions {
            require_literal_separator: false,
            ..MatchOptions::new()
        };
        (include.is_empty() || include.iter().any(|p| p.matches_with(name, m)))
            && !exclude.iter().any(|p| p.matches_with(name, m))
    };
    let mut out = Vec::new();
    for path in paths {
        let meta = stat(path, opts.follow_symlinks)?;
        let Some(meta) = meta else { continue };
        let base = base_name(path)?;
        if meta.is_dir() {
            if !opts.recursive {
                return Err(Error::invalid(format!(
                    "{} is a directory (send it with recursion)",
                    path.display()
                )));
            }
            let mut seen = vec![(meta.dev(), meta.ino())];
            walk(path, &base, opts, &wanted, &mut seen, &mut out)?;
        } else if meta.is_file() && wanted(&base) {
            out.push(Source {
                path: path.clone(),
                name: base,
                size: meta.len(),
            });
        }
    }
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    opts: &WalkOptions,
    wanted: &dyn Fn(&str) -> bool,
    seen: &mut Vec<(u64, u64)>,
    out: &mut Vec<Source>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir.display(), e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(meta) = stat(&path, opts.follow_symlinks)? else {
            continue;
        };
        let name = format!("{prefix}/{}", base_name(&path)?);
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if seen.contains(&id) {
                continue; // a symlink loop
            }
            seen.push(id);
            walk(&path, &name, opts, wanted, seen, out)?;
            seen.pop();
        } else if meta.is_file() && wanted(&name) {
            out.push(Source {
                path,
                name,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// The metadata of `path`; `None` for a symlink that is not followed or a dangling one.
fn stat(path: &Path, follow: bool) -> Result<Option<fs::Metadata>> {
    let meta = fs::symlink_metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("{}: no such file or directory", path.display()),
        ),
        _ => Error::io(path.display(), e),
    })?;
    if !meta.file_type().is_symlink() {
        return Ok(Some(meta));
    }
    Ok(if follow {
        fs::metadata(path).ok()
    } else {
        None
    })
}

fn base_name(path: &Path) -> Result<String> {
    let owned;
    let p = match path.file_name() {
        Some(_) => path,
        None => {
            owned = fs::canonicalize(path).map_err(|e| Error::io(path.display(), e))?;
            &owned
        }
    };
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(format!("{}: name is not UTF-8", path.display())))
}

/// What happened to one file of a batch.
#[derive(Debug)]
pub struct FileOutcome {
    pub source: Source,
    pub result: Result<SendReport>,
}

/// The outcome of [`send_files`]: one entry per source, in order.
#[derive(Debug)]
pub struct BatchReport {
    pub files: Vec<FileOutcome>,
    pub elapsed: std::time::Duration,
}

impl BatchReport {
    pub fn delivered(&self) -> usize {
        self.files.iter().filter(|f| f.result.is_ok()).count()
    }

    pub fn failed(&self) -> usize {
        self.files.len() - self.delivered()
    }

    pub fn first_error(&self) -> Option<&Error> {
        self.files.iter().find_map(|f| f.result.as_ref().err())
    }
}

/// Sends every source over one connection, pipelined, and returns each file's outcome. A file
/// that is refused does not stop the others unless `opts.stop_on_error`. `Err` only when no
/// file could be attempted (the connection or the hello failed).
pub fn send_files(
    host: &str,
    port: u16,
    sources: &[Source],
    opts: &SendOptions,
) -> Result<BatchReport> {
    let started = Instant::now();
    let mut results: Vec<Option<Result<SendReport>>> = sources.iter().map(|_| None).collect();
    // Each attempt is one connection for the files still to do; a retry takes only those that
    // failed in a way a new connection may cure.
    let mut todo: Vec<usize> = (0..sources.len()).collect();
    let mut delay = opts.retry_delay;
    for attempt in 1.. {
        let sizes: Vec<u64> = todo.iter().map(|&i| sources[i].size).collect();
        let mut open = |k: usize| {
            let s = &sources[todo[k]];
            sender::open_source(&s.path, Some(&s.name))
        };
        let outcome = sender::with_connection(host, port, opts, |stream| {
            Ok(run(stream, &sizes, &mut open, opts))
        });
        let retry_left = attempt <= opts.retries;
        match outcome {
            Err(e) if retry_left && sender::retryable(&e) => {}
            Err(e) if attempt == 1 => return Err(e),
            Err(e) => {
                for &i in &todo {
                    results[i] = Some(Err(e.duplicate()));
                }
                break;
            }
            Ok(round) => {
                for (&i, r) in todo.iter().zip(round) {
                    results[i] = Some(r.map(|r| SendReport {
                        attempts: attempt,
                        ..r
                    }));
                }
                todo.retain(|&i| matches!(&results[i], Some(Err(e)) if sender::retryable(e)));
            }
        }
        if todo.is_empty() || !retry_left {
            break;
        }
        if let Err(e) = sender::backoff(opts, &mut delay) {
            for &i in &todo {
                results[i] = Some(Err(e.duplicate()));
            }
            break;
        }
    }
    let files = sources
        .iter()
        .cloned()
        .zip(results)
        .map(|(source, result)| FileOutcome {
            source,
            result: result.unwrap_or_else(|| Err(Error::new(ErrorKind::Io, "not attempted"))),
        })
        .collect();
    Ok(BatchReport {
        files,
        elapsed: started.elapsed(),
    })
}

/// A file sent whose verdict has not come yet.
struct Outstanding {
    seq: u32,
    index: usize,
    bytes: u64,
    offset: u64,
    started: Instant,
}

/// The engine: offers the files one after another on `stream` and collects their verdicts.
/// `sizes` has each file's expected size (for progress), `open(i)` opens file `i`. Every file
/// gets a result; a connection failure becomes the result of every file still without one.
pub(crate) fn run(
    stream: &TcpStream,
    sizes: &[u64],
    open: &mut dyn FnMut(usize) -> Result<(File, Offer)>,
    opts: &SendOptions,
) -> Vec<Result<SendReport>> {
    let count = sizes.len();
    let total_bytes = sizes.iter().sum();
    let mut results: Vec<Option<Result<SendReport>>> = (0..count).map(|_| None).collect();
    let mut conn = Conn {
        reader: BufReader::with_capacity(16 * 1024, stream),
        writer: BufWriter::with_capacity(64 * 1024, stream),
        hello_done: false,
        caps: 0,
        draining: false,
        outstanding: VecDeque::new(),
    };
    let bar = opts
        .show_progress
        .then(|| sender::progress_bar(total_bytes, count));
    let fatal = conn.offer_all(sizes, open, opts, bar.as_ref(), &mut results);
    if let Some(b) = &bar {
        b.finish();
    }
    let cancelled = opts.cancel.as_ref().is_some_and(|c| c.is_cancelled());
    match fatal {
        Err(_) if cancelled => {
            for r in results.iter_mut().filter(|r| r.is_none()) {
                *r = Some(Err(Error::new(ErrorKind::Cancelled, "transfer cancelled")));
            }
        }
        Ok(()) => {
            let _ = Frame::Bye.write_to(&mut conn.writer);
            let _ = conn.writer.flush();
            let _ = stream.shutdown(Shutdown::Write);
        }
        Err(e) => {
            for r in results.iter_mut().filter(|r| r.is_none()) {
                *r = Some(Err(e.duplicate()));
            }
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::Cancelled,
                    "not sent: stopped after an earlier file failed",
                ))
            })
        })
        .collect()
}

/// Turns per-file progress into the batch's, for `SendOptions::batch_progress`.
struct Overall<'a> {
    opts: &'a SendOptions,
    sizes: &'a [u64],
    place: Place,
}

/// Where the current file stands in the list.
#[derive(Clone, Copy)]
struct Place {
    index: usize,
    count: usize,
    /// Bytes of the files before the current one, as listed.
    before: u64,
    total: u64,
}

impl Place {
    fn progress<'n>(&self, name: &'n str, file_sent: u64, file_total: u64) -> BatchProgress<'n> {
        BatchProgress {
            name,
            index: self.index,
            count: self.count,
            file_sent,
            file_total,
            // A file that grew since it was listed must not push the batch past its total.
            sent: (self.before + file_sent).min(self.total),
            total: self.total,
        }
    }
}

impl<'a> Overall<'a> {
    fn new(sizes: &'a [u64], opts: &'a SendOptions) -> Self {
        let place = Place {
            index: 0,
            count: sizes.len(),
            before: 0,
            total: sizes.iter().sum(),
        };
        Overall { opts, sizes, place }
    }

    /// Moves on to file `i` (files are taken in order).
    fn next(&mut self, i: usize) {
        if i > 0 {
            self.place.before += self.sizes[self.place.index];
        }
        self.place.index = i;
    }

    /// Options for streaming the current file whose progress callback also reports the batch's;
    /// `None` when there is no batch callback (the caller's options serve as they are).
    fn options(&self) -> Option<SendOptions> {
        let batch = self.opts.batch_progress.clone()?;
        let per_file = self.opts.progress.clone();
        let place = self.place;
        let progress: sender::ProgressFn = Arc::new(move |name, file_sent, file_total| {
            if let Some(f) = &per_file {
                if !f(name, file_sent, file_total) {
                    return false;
                }
            }
            batch(&place.progress(name, file_sent, file_total))
        });
        Some(SendOptions {
            progress: Some(progress),
            ..self.opts.clone()
        })
    }

    /// The receiver already holds the current file: the batch moves past it at once.
    fn skipped(&self, offer: &Offer) -> Result<()> {
        match &self.opts.batch_progress {
            Some(batch) if !batch(&self.place.progress(&offer.name, offer.size, offer.size)) => {
                Err(sender::aborted_by_callback())
            }
            _ => Ok(()),
        }
    }
}

struct Conn<'a> {
    reader: BufReader<&'a TcpStream>,
    writer: BufWriter<&'a TcpStream>,
    hello_done: bool,
    /// Capabilities both sides have (known once the hello reply is read).
    caps: u32,
    /// Every offer is out; only verdicts are awaited.
    draining: bool,
    outstanding: VecDeque<Outstanding>,
}

impl Conn<'_> {
    fn offer_all(
        &mut self,
        sizes: &[u64],
        open: &mut dyn FnMut(usize) -> Result<(File, Offer)>,
        opts: &SendOptions,
        bar: Option<&indicatif::ProgressBar>,
        results: &mut [Option<Result<SendReport>>],
    ) -> Result<()> {
        let mut hello = Vec::with_capacity(16);
        // Eager offers pay off for a list of files, and only when each file need not wait for
        // its answer (stop_on_error). Advertised only when used: the receiver applies the rule
        // to every offer once both sides have the bit.
        let want_eager = sizes.len() > 1 && !opts.stop_on_error;
        let mut caps = 0;
        if want_eager {
            caps |= protocol::CAP_EAGER;
        }
        if opts.compress {
            caps |= protocol::CAP_ZSTD;
        }
        Hello::ours(caps).encode(&mut hello);
        self.writer
            .write_all(&hello)
            .map_err(|e| Error::io("sending the hello", e))?;
        if caps != 0 {
            // What the receiver has decides the first offer: ask before it.
            self.flush()?;
            self.read_hello()?;
        }
        let eager_ok = self.caps & protocol::CAP_EAGER != 0;
        let mut seq = 0u32;
        let mut overall = Overall::new(sizes, opts);
        for i in 0..sizes.len() {
            overall.next(i);
            if opts.stop_on_error && results.iter().any(|r| matches!(r, Some(Err(_)))) {
                break;
            }
            let zstd = self.caps & protocol::CAP_ZSTD != 0;
            let opened = open(i).and_then(|(mut file, mut offer)| {
                if opts.skip_unchanged {
                    offer.digest = sender::digest_of(&mut file, &offer)?;
                }
                if zstd && sender::compresses(&mut file, &offer)? {
                    offer.encoding = protocol::ENCODING_ZSTD;
                }
                Ok((file, offer))
            });
            let (mut file, offer) = match opened {
                Ok(f) => f,
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            let this_seq = seq;
            seq = seq.wrapping_add(1);
            let eager = eager_ok && offer.is_eager();
            Frame::Offer(offer.clone())
                .write_to(&mut self.writer)
                .map_err(|e| Error::io("sending an offer", e))?;
            // An eager offer's content follows at once; otherwise wait for the answer, while
            // `read` settles verdicts of earlier files.
            let answer = match eager {
                true => Frame::Accept { offset: 0 },
                false => {
                    self.flush()?;
                    self.read(results)?
                }
            };
            let offset = match answer {
                Frame::Accept { offset } if offset <= offer.size => offset,
                Frame::Reject { code, text } => {
                    results[i] = Some(Err(Error::from_peer(code, text)));
                    continue;
                }
                Frame::Skip => {
                    overall.skipped(&offer)?;
                    results[i] = Some(Ok(SendReport {
                        stored_name: offer.name.clone(),
                        bytes: offer.size,
                        elapsed: std::time::Duration::ZERO,
                        resumed_from: 0,
                        attempts: 1,
                        skipped: true,
                    }));
                    continue;
                }
                f => return Err(unexpected(&f, "ACCEPT or REJECT")),
            };
            if let Some(b) = bar {
                b.set_message(offer.name.clone());
            }
            let started = Instant::now();
            let file_opts = overall.options();
            let digest = sender::stream_content(
                &mut file,
                &mut self.writer,
                &offer,
                offset,
                file_opts.as_ref().unwrap_or(opts),
                bar,
            )?;
            Frame::Done {
                algorithm: ALGO_XXH3_128,
                digest: digest.to_be_bytes().to_vec(),
            }
            .write_to(&mut self.writer)
            .map_err(|e| Error::io("sending the checksum", e))?;
            self.outstanding.push_back(Outstanding {
                seq: this_seq,
                index: i,
                bytes: offer.size,
                offset,
                started,
            });
            if eager {
                self.settle_ready(results)?;
            }
        }
        self.flush()?;
        self.draining = true;
        if !self.outstanding.is_empty() {
            // Returns `Bye` once the last verdict is in.
            match self.read(results)? {
                Frame::Bye => {}
                f => return Err(unexpected(&f, "OK or FAILED")),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| Error::io("sending to the receiver", e))
    }

    /// Reads the receiver's hello reply once: the version and the capabilities both sides have.
    fn read_hello(&mut self) -> Result<()> {
        if self.hello_done {
            return Ok(());
        }
        match protocol::read_hello_reply(&mut self.reader)? {
            (0, _) => Err(match Frame::read_from(&mut self.reader) {
                Ok(Some(Frame::Error { code, text })) => Error::from_peer(code, text),
                _ => Error::protocol("the receiver refused our protocol version"),
            }),
            (v, _) if v != protocol::VERSION_MAX => Err(Error::protocol(format!(
                "receiver chose unknown version {v}"
            ))),
            (_, caps) => {
                self.caps = caps;
                self.hello_done = true;
                Ok(())
            }
        }
    }

    /// Reads the next frame that is not a verdict, settling verdicts on the way. While
    /// draining, the last verdict returns `Bye` so the drain loop ends.
    fn read(&mut self, results: &mut [Option<Result<SendReport>>]) -> Result<Frame> {
        self.read_hello()?;
        loop {
            let frame = self.next_frame()?;
            if let Some(other) = self.settle(frame, results)? {
                return Ok(other);
            }
            if self.outstanding.is_empty() && self.draining {
                return Ok(Frame::Bye);
            }
        }
    }

    /// Settles the verdicts that have already arrived, without waiting: while eager offers go
    /// out, nothing else can come.
    fn settle_ready(&mut self, results: &mut [Option<Result<SendReport>>]) -> Result<()> {
        while protocol::input_ready(&self.reader) {
            let frame = self.next_frame()?;
            if let Some(other) = self.settle(frame, results)? {
                return Err(unexpected(&other, "OK or FAILED"));
            }
        }
        Ok(())
    }

    fn next_frame(&mut self) -> Result<Frame> {
        Frame::read_from(&mut self.reader)?
            .ok_or_else(|| Error::protocol("receiver closed the connection"))
    }

    /// Records a verdict (OK or FAILED) in `results`; any other frame is handed back.
    fn settle(
        &mut self,
        frame: Frame,
        results: &mut [Option<Result<SendReport>>],
    ) -> Result<Option<Frame>> {
        let (seq, result) = match frame {
            Frame::Ok { seq, name } => (seq, Ok(name)),
            Frame::Failed { seq, code, text } => (seq, Err(Error::from_peer(code, text))),
            Frame::Error { code, text } => return Err(Error::from_peer(code, text)),
            other => return Ok(Some(other)),
        };
        let Some(pos) = self.outstanding.iter().position(|o| o.seq == seq) else {
            return Err(Error::protocol(format!("verdict for unknown file {seq}")));
        };
        let o = self.outstanding.remove(pos).expect("position is valid");
        results[o.index] = Some(result.map(|stored_name| SendReport {
            stored_name,
            bytes: o.bytes,
            elapsed: o.started.elapsed(),
            resumed_from: o.offset,
            attempts: 1,
            skipped: false,
        }));
        Ok(None)
    }
}

fn unexpected(f: &Frame, wanted: &str) -> Error {
    Error::protocol(format!("expected {wanted} from the receiver, got {f:?}"))
}
