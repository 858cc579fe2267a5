//! Receiving the wanted files of a fetch (docs/protocol.md section 3.4): DATA, the content into
//! its temporary file (or onto a partial copy it resumes), DONE, the commit; a cut connection
//! keeps what came when partial copies are kept.

use std::io::Read;

use super::delta::{apply, Basis, Counts};
use super::land::{Dest, Landing};
use super::options::{FetchOptions, FetchStatus, FetchedFile};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Frame, Offer};
use crate::transport::{Transport, Wire};

/// A listed file the client accepted: where it lands, and the partial copy it resumes.
pub(super) struct Planned {
    pub(super) offer: Offer,
    pub(super) local: String,
    pub(super) resume: Option<Landing>,
    /// The local old copy, when its content is wanted as a delta.
    pub(super) basis: Option<Basis>,
}

/// Content read per step.
const CHUNK: usize = 256 * 1024;

/// Receives the wanted files in order; a failure of the connection fails every file not yet
/// complete. Returns the names whose delta found the local old copy changed.
pub(super) fn receive_all<S: Transport>(
    wire: &mut Wire<S>,
    wants: Vec<(u32, usize, Planned)>,
    files: &mut [FetchedFile],
    dest: &Dest,
    opts: &FetchOptions,
) -> Vec<String> {
    let mut broken: Option<Error> = None;
    let mut changed = Vec::new();
    for (seq, index, plan) in wants {
        let mut counts = Counts::default();
        let result = match &broken {
            Some(e) => Err(e.duplicate()),
            None => match receive_one(wire, seq, plan, dest, opts, &mut counts) {
                Ok(r) => r,
                Err(e) => {
                    broken = Some(e.duplicate());
                    Err(e)
                }
            },
        };
        let file = &mut files[index];
        file.result = result.map(|()| FetchStatus::Fetched);
        (file.transferred, file.reused) = (counts.literal, counts.reused);
        if counts.changed {
            changed.push(file.name.clone());
        }
        if let Some(f) = &opts.on_file {
            f(file);
        }
    }
    changed
}

/// One wanted file: DATA, its content, DONE, then the commit; or FAILED. `Err`: the connection
/// cannot go on (with `partial`, what came of the file is kept for a resume); `Ok(Err)`: this
/// file failed, the connection is fine.
fn receive_one<S: Transport>(
    wire: &mut Wire<S>,
    seq: u32,
    mut plan: Planned,
    dest: &Dest,
    opts: &FetchOptions,
    counts: &mut Counts,
) -> Result<Result<()>> {
    match next(wire)? {
        Frame::Data { seq: s } if s == seq => {}
        Frame::Delta { seq: s } if s == seq && plan.basis.is_some() => {
            let basis = plan.basis.take().expect("checked above");
            let mut landing = dest.begin(&plan.local);
            let done = apply(wire, &plan.offer, &basis, &mut landing, opts, counts)?;
            return Ok(landing.and_then(|l| dest.commit(l, &plan.offer, done)));
        }
        Frame::Failed { seq: s, code, text } if s == seq => {
            return Ok(Err(protocol::peer_error(code, text)))
        }
        Frame::Error { code, text } => return Err(protocol::peer_error(code, text)),
        f => {
            return Err(Error::protocol(format!(
                "expected DATA, DELTA or FAILED for file {seq}, got {f:?}"
            )))
        }
    }
    let mut landing = match plan.resume.take() {
        Some(l) => Ok(l),
        None => dest.begin(&plan.local),
    };
    let start = landing.as_ref().map_or(0, Landing::written);
    let done = content(wire, &plan, &mut landing, opts).and_then(|()| done(wire, &plan));
    counts.literal = plan.offer.size - start;
    match done {
        Ok(done) => Ok(landing.and_then(|l| dest.commit(l, &plan.offer, done))),
        Err(e) => {
            if let (true, Ok(l)) = (opts.partial, landing) {
                l.keep(&plan.offer);
            }
            Err(e)
        }
    }
}

/// Reads the file's content (from where a resumed copy ends) into `landing`, reporting
/// progress; a local write failure fails the file but the content is still read.
fn content<S: Transport>(
    wire: &mut Wire<S>,
    plan: &Planned,
    landing: &mut Result<Landing>,
    opts: &FetchOptions,
) -> Result<()> {
    let (name, size) = (&plan.offer.name, plan.offer.size);
    let mut got = landing.as_ref().map_or(0, Landing::written);
    let mut buf = vec![0u8; CHUNK.min((size - got).max(1) as usize)];
    while got < size {
        let want = buf.len().min((size - got) as usize);
        let n = match wire.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::protocol(format!(
                    "the server closed the connection after {got} of {size} bytes of '{}'",
                    crate::printable(name)
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let what = format!("receiving '{}'", crate::printable(name));
                return Err(Error::io(what, e));
            }
        };
        if let Ok(l) = landing {
            if let Err(e) = l.write(&buf[..n]) {
                *landing = Err(e);
            }
        }
        got += n as u64;
        if let Some(p) = &opts.progress {
            if !p(name, got, size) {
                let e = Error::new(
                    ErrorKind::AbortedByCallback,
                    "aborted by the progress callback",
                );
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The DONE frame that ends a file's content.
fn done<S: Transport>(wire: &mut Wire<S>, plan: &Planned) -> Result<(u8, Vec<u8>)> {
    match next(wire)? {
        Frame::Done { algorithm, digest } => Ok((algorithm, digest)),
        f => Err(Error::protocol(format!(
            "expected DONE after the content of '{}', got {f:?}",
            crate::printable(&plan.offer.name)
        ))),
    }
}

pub(super) fn next<S: Transport>(wire: &mut Wire<S>) -> Result<Frame> {
    Frame::read_from(wire)?.ok_or_else(|| Error::protocol("receiver closed the connection"))
}
