//! The answer to an OFFER (docs/protocol.md sections 3 to 3.2), chosen from what the receiver
//! found out about it (`session/offer.rs` finds out, on the blocking pool): [`answer`] is a pure
//! function, with a unit test per rule.

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
