//! Finding out about an OFFER before it is answered: the stored copy (SKIP), an old copy for a
//! delta (BASIS), kept data to resume, and the admission with its validators. It reads the disk
//! and may run callbacks, so it runs on the blocking pool; `session/decide.rs` then chooses the
//! answer.

use std::fs::File;

use xxhash_rust::xxh3::Xxh3;

use crate::error::Result;
use crate::protocol::{self, Frame, Offer};
use crate::server::config::FileInfo;
use crate::server::files::admit::{admit, check_offer, resumed, Resolved};
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::files::resume::{claim, Claim, Resume};
use crate::server::files::space::Reservation;
use crate::server::io::runtime::blocking_if;
use crate::server::io::wire::Stream;
use crate::server::session::content::Storage;
use crate::server::session::decide::Found;
use crate::server::session::native::Session;

/// An admitted offer's claim, place, temporary file, running hash, resume offset and space.
pub(super) type AdmittedParts<'a> = (Option<Claim<'a>>, Storage, Xxh3, u64, Reservation);

/// What finding out gives: the facts, the admission (none when SKIP made it needless), the old
/// copy a delta may use, and the resume identity.
pub(super) type FoundOut<'a> = (
    Found,
    Option<Result<AdmittedParts<'a>, Refusal>>,
    Option<(File, rustix::fs::Stat)>,
    Option<Resume>,
);

impl<'a, S: Stream> Session<'_, 'a, S> {
    /// Finds out what `decide::answer` needs. Reads the disk, may hash a stored file, runs the
    /// pre-data validators, may wait for another connection's claim: it runs on the blocking
    /// pool.
    pub(super) fn find_out(&mut self, offer: &Offer, info: &FileInfo, eager: bool) -> FoundOut<'a> {
        let mut found = Found {
            eager,
            unchanged: false,
            refused: false,
            offset: 0,
            basis: None,
        };
        let resolved = Resolved::new(&self.conn.shared.sink, offer);
        // Content of unknown size is never skipped, resumed or sent as a delta (section 3.3).
        let streamed = offer.is_unsized(self.caps);
        if !eager && !streamed && self.unchanged(offer, &resolved) {
            found.unchanged = true;
            return (found, None, None, None);
        }
        let basis = match self.caps & protocol::CAP_DELTA != 0 && !eager && !streamed {
            true => resolved.basis(offer),
            false => None,
        };
        found.basis = basis.as_ref().map(|(_, st)| st.st_size as u64);
        let resume = match eager || streamed {
            true => None,
            false => self.resume_for(offer),
        };
        let partial = resume.as_ref().map(|r| r.partial.as_str());
        let policy = self.conn.policy(self.caps);
        let cfg = &self.conn.shared.config;
        let admitted = claim(self.conn.shared, self.conn.id, resume.as_ref()).and_then(|claim| {
            let (entry, space) = admit(offer, info, resolved, &policy)?;
            let mut hasher = Xxh3::new();
            // Kept data to resume is taken over now (its length is the ACCEPT's offset);
            // anything else opens nothing until its content comes.
            let storage = match partial {
                None => match self.conn.shared.budget.try_spare() {
                    Some(fds) => Storage::Resolved(Box::new((entry, fds))),
                    None => Storage::Deferred,
                },
                Some(_) => {
                    let place = entry.create()?;
                    match resumed(&place, cfg, offer.size, partial)? {
                        Some(temp) => Storage::Open(Box::new((place, temp))),
                        None => Storage::Deferred,
                    }
                }
            };
            let (storage, offset) = match storage {
                // A resumed upload: the checksum covers the data already here too.
                Storage::Open(mut opened) => {
                    let temp = &mut opened.1;
                    let offset = temp
                        .reread(&mut hasher)
                        .and_then(|()| temp.written())
                        .map_err(io_refusal)?;
                    (Storage::Open(opened), offset)
                }
                deferred => (deferred, 0),
            };
            Ok((claim, storage, hasher, offset, space))
        });
        found.refused = admitted.is_err();
        found.offset = admitted.as_ref().map_or(0, |a| a.3);
        (found, Some(admitted), basis, resume)
    }

    /// Whether `offer` is a probe (docs/protocol.md section 3.1, bit 7): a QUICK offer of a known
    /// size on a connection with probes.
    pub(super) fn is_probe(&self, offer: &Offer) -> bool {
        self.caps & protocol::CAP_PROBE != 0
            && offer.flags & protocol::FLAG_QUICK != 0
            && !offer.is_unsized(self.caps)
    }

    /// Answers a probe: SKIP when the quick check finds the file unchanged, CHANGED otherwise.
    /// Nothing is admitted or held either way; a changed file comes again as an offer.
    pub(super) async fn probe(&mut self, offer: &Offer) -> Result<()> {
        let slow = self.slow_to_find_out(offer, false);
        let same = blocking_if(slow, || {
            let resolved = Resolved::new(&self.conn.shared.sink, offer);
            self.unchanged(offer, &resolved)
        });
        let answer = match same {
            true => {
                self.conn.shared.stats.file_skipped();
                Frame::Skip
            }
            false => Frame::Changed,
        };
        self.answer(answer).await
    }

    /// Whether finding out about `offer` may block for long, so it must leave the event loop:
    /// a pre-data validator (the caller's code), an object store (requests), a digest to
    /// compare (hashing a stored file), resuming (another connection's claim may be waited
    /// for). Lookups and opens in a local directory are quick.
    pub(super) fn slow_to_find_out(&self, offer: &Offer, eager: bool) -> bool {
        let shared = self.conn.shared;
        // An eager offer neither skips nor resumes: no hashing, no claim to wait for.
        !shared.config.before.is_empty()
            || shared.sink.store().is_some()
            || (!eager && (!offer.digest.is_empty() || !shared.config.resume_ttl.is_zero()))
    }

    /// Whether the offer may be answered SKIP: the quick check (same size and mtime, when the
    /// offer asks for it) or the same digest. Hashing a stored file comes last: only for an
    /// offer that passes the cheap checks, within the connection's budget, and once per
    /// unchanged file (the digest cache, the file's recorded digest).
    fn unchanged(&mut self, offer: &Offer, resolved: &Resolved) -> bool {
        let policy = self.conn.policy(self.caps);
        if check_offer(offer, &policy).is_err() {
            return false;
        }
        let quick = self.pipelined() && offer.flags & protocol::FLAG_QUICK != 0;
        (quick && resolved.quick_same(offer))
            || resolved.unchanged(offer, &self.conn.shared.digests, &mut self.hash_budget)
    }

    /// The resume identity of an offer, when resuming is on.
    fn resume_for(&self, offer: &Offer) -> Option<Resume> {
        match self.conn.shared.config.resume_ttl.is_zero() {
            true => None,
            false => Some(Resume::of(
                offer,
                self.conn.peer,
                self.identity.as_ref().map(|i| i.name.as_str()),
            )),
        }
    }
}
