//! The answer to an OFFER (docs/protocol.md sections 3 to 3.2). Finding out about an offer
//! reads the disk ([`Session::find_out`], on the blocking pool: the stored copy, a digest, an
//! old copy for a delta, the admission with its validators and temporary file); choosing the
//! answer from what was found is [`answer`], a pure function with a unit test per rule.

use std::fs::File;

use xxhash_rust::xxh3::Xxh3;

use crate::protocol::{self, Offer};
use crate::server::config::FileInfo;
use crate::server::files::admit::{admit, check_offer, resumed, Resolved};
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::files::resume::{claim, Claim, Resume};
use crate::server::files::space::Reservation;
use crate::server::io::wire::Stream;
use crate::server::session::content::Storage;
use crate::server::session::native::Session;

/// What the receiver found out about an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// Its content is already on its way (an eager offer): no SKIP, no resume, no ACCEPT.
    pub(crate) eager: bool,
    /// The receiver holds this exact file (quick check or digest).
    pub(crate) unchanged: bool,
    /// Admission refused it.
    pub(crate) refused: bool,
    /// Where its content starts: the end of a kept partial upload, or 0.
    pub(crate) offset: u64,
    /// The size of an old copy a delta may be built against.
    pub(crate) basis: Option<u64>,
}

/// What an offer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// SKIP: nothing is sent.
    Skip,
    /// REJECT, before any content.
    Reject,
    /// An eager file refused: its content is read and dropped, then FAILED.
    DrainThenFail,
    /// An eager file admitted: its content follows at once, unanswered.
    ReceiveNow,
    /// ACCEPT: the content from `offset`.
    Accept { offset: u64 },
    /// BASIS: the sender may send a delta against the old copy of `old_size` bytes.
    Basis { old_size: u64 },
}

/// The answer to an offer from what was found out about it.
pub(crate) fn answer(f: &Found) -> Answer {
    match (f.eager, f.unchanged, f.refused) {
        (false, true, _) => Answer::Skip,
        (true, _, true) => Answer::DrainThenFail,
        (false, _, true) => Answer::Reject,
        (true, _, false) => Answer::ReceiveNow,
        // A resumed upload goes on from its offset: a delta starts from nothing.
        (false, false, false) => match f.basis.filter(|_| f.offset == 0) {
            Some(old_size) => Answer::Basis { old_size },
            None => Answer::Accept { offset: f.offset },
        },
    }
}

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
    /// Finds out what [`answer`] needs. Reads the disk, may hash a stored file, runs the
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
        if !eager && self.unchanged(offer, &resolved) {
            found.unchanged = true;
            return (found, None, None, None);
        }
        let basis = match self.caps & protocol::CAP_DELTA != 0 && !eager {
            true => resolved.basis(offer),
            false => None,
        };
        found.basis = basis.as_ref().map(|(_, st)| st.st_size as u64);
        let resume = match eager {
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
                None => Storage::Deferred,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Found {
        Found {
            eager: false,
            unchanged: false,
            refused: false,
            offset: 0,
            basis: None,
        }
    }

    #[test]
    fn a_new_file_is_accepted_from_its_start() {
        assert_eq!(answer(&found()), Answer::Accept { offset: 0 });
    }

    #[test]
    fn an_unchanged_file_is_skipped_before_admission_is_weighed() {
        let f = Found {
            unchanged: true,
            refused: true,
            ..found()
        };
        assert_eq!(answer(&f), Answer::Skip);
    }

    #[test]
    fn an_eager_file_is_never_skipped_its_content_is_on_its_way() {
        let f = Found {
            eager: true,
            unchanged: true,
            ..found()
        };
        assert_eq!(answer(&f), Answer::ReceiveNow);
    }

    #[test]
    fn a_refused_offer_is_rejected_and_a_refused_eager_file_drained_first() {
        let f = Found {
            refused: true,
            ..found()
        };
        assert_eq!(answer(&f), Answer::Reject);
        let eager = Found { eager: true, ..f };
        assert_eq!(answer(&eager), Answer::DrainThenFail);
    }

    #[test]
    fn an_old_copy_is_offered_as_a_basis() {
        let f = Found {
            basis: Some(1 << 20),
            ..found()
        };
        assert_eq!(answer(&f), Answer::Basis { old_size: 1 << 20 });
    }

    #[test]
    fn a_resumed_upload_goes_on_from_its_offset_even_with_an_old_copy() {
        let f = Found {
            basis: Some(1 << 20),
            offset: 4096,
            ..found()
        };
        assert_eq!(answer(&f), Answer::Accept { offset: 4096 });
    }

    #[test]
    fn a_refusal_wins_over_a_basis() {
        let f = Found {
            basis: Some(1 << 20),
            refused: true,
            ..found()
        };
        assert_eq!(answer(&f), Answer::Reject);
    }
}
