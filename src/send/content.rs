//! A source file's content: opening and describing it for the OFFER, the compression decision,
//! its digest, and streaming it (raw or zstd) while hashing. A session reads the bytes through
//! the [`Content`] it is given: the file itself, or for a fan-out a window shared with the other
//! receivers' sessions (`send/window.rs`).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use xxhash_rust::xxh3::Xxh3;

use super::progress::Progress;
use crate::compress::Compressor;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, check_name, Offer};

/// Where a session reads a source's bytes: any `Read + Seek` from its start, read in order
/// within each pass (the compression sample, the digest, the content), rewound between passes.
pub(crate) trait Content: Read + Seek {}

impl<T: Read + Seek> Content for T {}

/// An opened source as a session holds it.
pub(crate) type Reader = Box<dyn Content>;

/// [`open_source`] as a session reads it: the file itself.
pub(crate) fn open_reader(path: &Path, remote_name: Option<&str>) -> Result<(Reader, Offer)> {
    let (file, offer) = open_source(path, remote_name)?;
    Ok((Box::new(file), offer))
}

/// Opens the local file and describes it for the OFFER.
pub(crate) fn open_source(path: &Path, remote_name: Option<&str>) -> Result<(File, Offer)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("{}: no such file or directory", path.display()),
        ),
        _ => Error::io(path.display(), e),
    })?;
    let meta = file.metadata().map_err(|e| Error::io(path.display(), e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let name = match remote_name {
        Some(n) => n.to_string(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::invalid(format!("{}: file name is not UTF-8", path.display())))?
            .to_string(),
    };
    check_name(&name).map_err(|why| Error::invalid(format!("remote name {name:?}: {why}")))?;
    let (mtime_secs, mtime_nanos) = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(d)) => (d.as_secs() as i64, d.subsec_nanos()),
        Ok(Err(before)) => (-(before.duration().as_secs() as i64), 0),
        Err(_) => (0, 0),
    };
    let offer = Offer {
        mtime_secs,
        mtime_nanos,
        mode: meta.permissions().mode() & 0o7777,
        ..Offer::new(name, meta.len())
    };
    Ok((file, offer))
}

/// Streams the content from `offset` on (where the receiver resumes; the bytes before it are
/// only hashed), raw or compressed as `offer.encoding` says, in reads of `chunk_size`, and
/// returns the XXH3-128 of the whole original content.
pub(crate) fn stream_content(
    file: &mut dyn Content,
    out: &mut impl Write,
    offer: &Offer,
    offset: u64,
    chunk_size: usize,
    progress: &Progress<'_>,
) -> Result<u128> {
    if offer.encoding != protocol::ENCODING_ZSTD {
        return copy_content(file, out, offer, offset, chunk_size, progress);
    }
    let compressing = |e| Error::io("compressing", e);
    let mut z = Compressor::new(&mut *out).map_err(compressing)?;
    let digest = copy_content(file, &mut z, offer, offset, chunk_size, progress)?;
    z.finish().map_err(|e| Error::io("sending data", e))?;
    Ok(digest)
}

/// The content, written as it is to `out`.
fn copy_content(
    file: &mut dyn Content,
    out: &mut impl Write,
    offer: &Offer,
    offset: u64,
    chunk_size: usize,
    progress: &Progress<'_>,
) -> Result<u128> {
    let mut hasher = Xxh3::new();
    crate::hash::hash_exact(&mut &mut *file, offset, &mut hasher)
        .map_err(|e| source_error(&offer.name, e))?;
    progress.advance(offset);
    progress.report(&offer.name, offset, offer.size)?;
    let mut buf = vec![0u8; chunk_size.min(offer.size.max(1) as usize)];
    let mut sent = offset;
    while sent < offer.size {
        let want = buf.len().min((offer.size - sent) as usize);
        let n = read_some(file, &mut buf[..want], &offer.name)?;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Error::io("sending data", e))?;
        sent += n as u64;
        progress.advance(n as u64);
        progress.report(&offer.name, sent, offer.size)?;
    }
    Ok(hasher.digest128())
}

/// Whether the start of the file compresses well enough to send it compressed; the file is
/// left positioned at its start.
pub(crate) fn compresses(file: &mut dyn Content, offer: &Offer) -> Result<bool> {
    let mut sample = vec![0u8; crate::compress::SAMPLE.min(offer.size as usize)];
    let n = read_some(file, &mut sample, &offer.name).or_else(|e| match sample.is_empty() {
        true => Ok(0),
        false => Err(e),
    })?;
    rewind(file, &offer.name)?;
    Ok(crate::compress::worth_compressing(&sample[..n]))
}

/// The XXH3-128 of the whole file, which is left positioned at its start.
pub(crate) fn digest_of(file: &mut dyn Content, offer: &Offer) -> Result<Vec<u8>> {
    let digest = crate::hash::digest_exact(&mut &mut *file, offer.size)
        .map_err(|e| source_error(&offer.name, e))?;
    rewind(file, &offer.name)?;
    Ok(digest.to_vec())
}

fn rewind(file: &mut dyn Content, name: &str) -> Result<()> {
    file.seek(io::SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| Error::io(format!("reading {name}"), e))
}

/// One read of the source; the end of the file before its announced size is an error.
fn read_some(file: &mut dyn Content, buf: &mut [u8], name: &str) -> Result<usize> {
    loop {
        return match file.read(buf) {
            Ok(0) => Err(shrank(name)),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(Error::io(format!("reading {name}"), e)),
        };
    }
}

fn source_error(name: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => shrank(name),
        _ => Error::io(format!("reading {name}"), e),
    }
}

fn shrank(name: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{name}: file shrank while being sent"),
    )
}
