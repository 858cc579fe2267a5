//! Admission: from an offer, the config and the directory to accept, reject or skip, before any
//! content is stored. The name is resolved once; directories are created only for an accepted
//! file.

use crate::protocol::{self, check_name, Code, Offer, ALGO_XXH3_128};
use crate::server::config::{FileInfo, ServerConfig, Validator};
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::files::space::{Reservation, Space};
use crate::storage::{DigestCache, Entry, Place, Sink, StoreError, TempFile};

/// An offer's name, checked and resolved beneath the directory once.
pub(crate) enum Resolved {
    BadName(String),
    Found(Result<Entry, StoreError>),
}

impl Resolved {
    pub(crate) fn new(sink: &Sink, offer: &Offer) -> Resolved {
        if offer.raw_name.is_some() {
            return Resolved::BadName("name is not UTF-8".into());
        }
        match check_name(&offer.name) {
            Ok(parts) => Resolved::Found(sink.lookup(&parts)),
            Err(why) => Resolved::BadName(why),
        }
    }

    /// Whether the offer carries a digest and the exact file is already in place (hashing it,
    /// unless `cache` knows it, within `budget`).
    pub(crate) fn unchanged(&self, offer: &Offer, cache: &DigestCache, budget: &mut u64) -> bool {
        match self {
            Resolved::Found(Ok(lookup)) if !offer.digest.is_empty() => {
                offer.algorithm == ALGO_XXH3_128
                    && lookup.holds(offer.size, &offer.digest, cache, budget)
            }
            _ => false,
        }
    }
}

impl Resolved {
    /// The quick check: a regular file of the offer's size and modification time stands there.
    pub(crate) fn quick_same(&self, offer: &Offer) -> bool {
        match self {
            Resolved::Found(Ok(lookup)) => {
                lookup.quick_same(offer.size, (offer.mtime_secs, offer.mtime_nanos))
            }
            _ => false,
        }
    }

    /// The old copy a delta may be built against (docs/protocol.md section 3.2): a regular
    /// file of at least `DELTA_MIN_BASIS` bytes, for an offer of at least `DELTA_MIN` bytes
    /// that does not refuse deltas.
    pub(crate) fn basis(&self, offer: &Offer) -> Option<(std::fs::File, rustix::fs::Stat)> {
        let wanted =
            offer.size >= protocol::DELTA_MIN && offer.flags & protocol::FLAG_NO_DELTA == 0;
        match self {
            Resolved::Found(Ok(lookup)) if wanted => lookup
                .existing()
                .filter(|(_, st)| st.st_size as u64 >= protocol::DELTA_MIN_BASIS),
            _ => None,
        }
    }
}

/// What admission weighs besides the offer.
pub(crate) struct Policy<'a> {
    pub(crate) config: &'a ServerConfig,
    /// Capabilities both sides have.
    pub(crate) caps: u32,
    pub(crate) stopping: bool,
    /// Free space promised to files in flight.
    pub(crate) space: &'a Space,
}

/// The checks made on an OFFER, before any data: name, encoding, size, policy, space,
/// validators. Accepted, the file gets its share of free space; nothing is created yet (see
/// [`open`]), so an accepted file waiting for its content holds no descriptor.
pub(crate) fn admit(
    offer: &Offer,
    info: &FileInfo,
    resolved: Resolved,
    policy: &Policy<'_>,
) -> Result<(Entry, Reservation), Refusal> {
    let cfg = policy.config;
    if policy.stopping {
        return Err(Refusal(
            Code::ShuttingDown,
            "receiver is shutting down".into(),
        ));
    }
    let found = match resolved {
        Resolved::BadName(why) => {
            return Err(Refusal(Code::BadName, format!("unacceptable name: {why}")))
        }
        Resolved::Found(found) => found,
    };
    check_offer(offer, policy)?;
    let lookup = found?;
    // Content of unknown size is held to the limits and given room as it arrives.
    let size = match offer.is_unsized(policy.caps) {
        true => 0,
        false => offer.size,
    };
    if let Some(max) = lookup.max_size().filter(|m| size > *m) {
        return Err(Refusal(
            Code::TooLarge,
            format!(
                "file of {} bytes exceeds the object store's limit of {max} bytes",
                offer.size
            ),
        ));
    }
    lookup.check_existing(cfg.overwrite)?;
    let space = match lookup.space().map_err(io_refusal)? {
        Some((device, free)) => policy
            .space
            .reserve(device, size, free, cfg.reserve_bytes)?,
        None => policy.space.nothing(),
    };
    run_validators(&cfg.before, info)?;
    Ok((lookup, space))
}

/// Gives an admitted file its place (missing directories are created now) and, unless
/// `partial` names kept data to resume, a new temporary file.
pub(crate) fn open(
    entry: Entry,
    cfg: &ServerConfig,
    size: u64,
    partial: Option<&str>,
) -> Result<(Place, TempFile), Refusal> {
    let place = entry.create()?;
    let temp = match resumed(&place, cfg, size, partial)? {
        Some(t) => t,
        None => place.temp_dir().create_temp().map_err(io_refusal)?,
    };
    Ok((place, temp))
}

/// The kept data of an interrupted upload, as a temporary file positioned at its end.
pub(crate) fn resumed(
    place: &Place,
    cfg: &ServerConfig,
    size: u64,
    partial: Option<&str>,
) -> Result<Option<TempFile>, Refusal> {
    match partial {
        Some(p) => place
            .temp_dir()
            .claim_partial(p, cfg.resume_ttl, size)
            .map_err(io_refusal),
        None => Ok(None),
    }
}

/// Resolves an admitted offer's name again when its content comes (nothing was kept open
/// meanwhile) and opens its place and a temporary file.
pub(crate) fn reopen(
    sink: &Sink,
    offer: &Offer,
    cfg: &ServerConfig,
) -> Result<(Place, TempFile), Refusal> {
    match Resolved::new(sink, offer) {
        Resolved::BadName(why) => Err(Refusal(Code::BadName, format!("unacceptable name: {why}"))),
        Resolved::Found(found) => open(found?, cfg, offer.size, None),
    }
}

/// The offer's own fields against what was negotiated and the size limit: the cheap checks.
pub(crate) fn check_offer(offer: &Offer, policy: &Policy<'_>) -> Result<(), Refusal> {
    match offer.encoding {
        protocol::ENCODING_RAW => {}
        protocol::ENCODING_ZSTD if policy.caps & protocol::CAP_ZSTD != 0 => {}
        e => {
            return Err(Refusal(
                Code::Protocol,
                format!("content encoding {e} was not negotiated"),
            ))
        }
    }
    if offer.algorithm != ALGO_XXH3_128 {
        return Err(Refusal(
            Code::Protocol,
            format!("unknown checksum algorithm {}", offer.algorithm),
        ));
    }
    let streamed = offer.is_unsized(policy.caps);
    if let Some(max) = policy
        .config
        .max_file_size
        .filter(|m| offer.size > *m && !streamed)
    {
        return Err(Refusal(
            Code::TooLarge,
            format!(
                "file of {} bytes exceeds the limit of {max} bytes",
                offer.size
            ),
        ));
    }
    Ok(())
}

/// Runs validators in order; the first refusal wins, and a panicking one refuses.
pub(crate) fn run_validators(validators: &[Validator], info: &FileInfo) -> Result<(), Refusal> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    for v in validators {
        match catch_unwind(AssertUnwindSafe(|| v(info))) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(Refusal(Code::Validator, reason)),
            Err(_) => return Err(Refusal(Code::Validator, "validator panicked".into())),
        }
    }
    Ok(())
}
