//! The group commit: one sync for the contents of many verified files, the post-data
//! validators, the renames, one fsync per directory, and the verdicts, returned rather than
//! written.

use crate::protocol::Frame;
use crate::server::config::{FileInfo, ServerConfig};
use crate::server::files::admit::run_validators;
use crate::server::files::budget::Descriptors;
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::files::space::Reservation;
use crate::storage::{self, ObjectMeta, Place, Stored, TempFile};

/// Most files committed together, as the protocol allows.
pub(crate) const GROUP_MAX: usize = 256;

/// A verified file whose verdict is deferred until its group is committed.
pub(crate) struct Pending {
    pub(crate) seq: u32,
    pub(crate) temp: TempFile,
    pub(crate) place: Place,
    pub(crate) info: FileInfo,
    /// The verified XXH3-128 of its content.
    pub(crate) digest: [u8; 16],
    /// Its share of free space, released once it is committed or has failed.
    pub(crate) space: Reservation,
    /// Its descriptors, given back to the server's budget with it.
    pub(crate) fds: Option<Descriptors>,
}

/// What a commit decided.
pub(crate) struct Committed {
    /// One verdict per file (OK or FAILED), in seq order.
    pub(crate) verdicts: Vec<Frame>,
    /// Files now durable in place, for the received handlers: `name` is the stored name and
    /// `path` the final path.
    pub(crate) stored: Vec<FileInfo>,
    /// Files that were not kept, for the error handlers.
    pub(crate) failed: Vec<(Refusal, FileInfo)>,
}

/// A file renamed into place, waiting for its directory's fsync.
struct Renamed {
    seq: u32,
    place: Place,
    info: FileInfo,
}

/// Commits `group`: a file fails alone (validator, rename), but if a directory cannot be made
/// durable, every file of the group is told FAILED (its rename may not survive a crash) and no
/// handler runs.
pub(crate) fn commit_group(group: Vec<Pending>, cfg: &ServerConfig) -> Committed {
    // Content bound for an object store is made durable by the store's acknowledgement.
    let local = group.iter().filter(|p| p.place.is_local());
    let synced = storage::sync_all(local.map(|p| &p.temp)).map_err(io_refusal);
    // Post-data validators run here, on the connection's thread, in order.
    let checked: Vec<(Pending, Result<(), Refusal>)> = group
        .into_iter()
        .map(|p| {
            let ok = match &synced {
                Err(r) => Err(Refusal(r.0, r.1.clone())),
                Ok(()) => run_validators(&cfg.after, &p.info),
            };
            (p, ok)
        })
        .collect();
    let mut renamed: Vec<Renamed> = Vec::with_capacity(checked.len());
    let mut failed: Vec<(u32, Refusal, FileInfo)> = Vec::new();
    for Published {
        seq,
        place,
        mut info,
        result,
    } in publish_all(checked, cfg)
    {
        match result {
            Ok(stored) => {
                info.path = Some(stored.path);
                info.name = stored.name;
                renamed.push(Renamed { seq, place, info });
            }
            Err(r) => failed.push((seq, r, info)),
        }
    }
    let dir_error = sync_dirs(&renamed);
    let mut verdicts: Vec<(u32, Frame)> = Vec::with_capacity(renamed.len() + failed.len());
    for r in &renamed {
        verdicts.push((r.seq, verdict(r.seq, Ok(&r.info.name), dir_error.as_ref())));
    }
    for (seq, r, _) in &failed {
        verdicts.push((*seq, verdict(*seq, Err(r), None)));
    }
    verdicts.sort_by_key(|(seq, _)| *seq);
    // A file whose directory could not be synced is in place but may not survive a crash:
    // its sender is told FAILED and the error handler hears of it; no received handler runs.
    let mut failed: Vec<(Refusal, FileInfo)> =
        failed.into_iter().map(|(_, r, info)| (r, info)).collect();
    let stored = match dir_error {
        None => renamed.into_iter().map(|r| r.info).collect(),
        Some(r) => {
            failed.extend(
                renamed
                    .into_iter()
                    .map(|x| (Refusal(r.0, r.1.clone()), x.info)),
            );
            Vec::new()
        }
    };
    Committed {
        verdicts: verdicts.into_iter().map(|(_, f)| f).collect(),
        stored,
        failed,
    }
}

/// A file after its publication was tried.
struct Published {
    seq: u32,
    place: Place,
    info: FileInfo,
    result: Result<Stored, Refusal>,
}

/// Uploads to an object store in flight at once for one connection's group.
const PUBLISHERS: usize = 8;

/// Publishes every file that passed its checks: renamed into place, or uploaded. Uploads (a
/// round trip each) go up to `PUBLISHERS` at a time; the results keep the group's order.
fn publish_all(checked: Vec<(Pending, Result<(), Refusal>)>, cfg: &ServerConfig) -> Vec<Published> {
    let uploads = checked
        .iter()
        .filter(|(p, ok)| !p.place.is_local() && ok.is_ok())
        .count();
    if uploads < 2 {
        return checked
            .into_iter()
            .map(|(p, ok)| publish(p, ok, cfg))
            .collect();
    }
    crate::sync::in_parallel(checked, PUBLISHERS.min(uploads), |(p, ok)| {
        publish(p, ok, cfg)
    })
}

/// Publishes one file whose checks gave `ok`, with its metadata.
fn publish(p: Pending, ok: Result<(), Refusal>, cfg: &ServerConfig) -> Published {
    let Pending {
        seq,
        temp,
        mut place,
        info,
        digest,
        space: _space,
        fds: _fds,
    } = p;
    let meta = ObjectMeta {
        size: info.size,
        mtime_secs: info.mtime_secs,
        mtime_nanos: info.mtime_nanos,
        mode: storage::effective_mode(info.mode, cfg.mode_mask),
        digest: Some(digest),
    };
    let result = ok.and_then(|()| Ok(place.publish(temp, cfg.overwrite, &meta)?));
    Published {
        seq,
        place,
        info,
        result,
    }
}

/// One fsync per directory the group renamed into; the last failure, if any.
fn sync_dirs(renamed: &[Renamed]) -> Option<Refusal> {
    let mut done: Vec<&Place> = Vec::new();
    let mut error = None;
    for r in renamed {
        if !done.iter().any(|t| t.same_dir(&r.place)) {
            if let Err(e) = r.place.sync_dir() {
                let text = format!(
                    "stored in place, but its directory could not be synced ({e}): it may not \
                     survive a crash"
                );
                error = Some(Refusal(io_refusal(e).0, text));
            }
            done.push(&r.place);
        }
    }
    error
}

/// OK for a stored file unless its directory sync failed; FAILED otherwise.
fn verdict(seq: u32, outcome: Result<&String, &Refusal>, dir_error: Option<&Refusal>) -> Frame {
    match (outcome, dir_error) {
        (Ok(name), None) => Frame::Ok {
            seq,
            name: name.clone(),
        },
        (Err(r), _) | (Ok(_), Some(r)) => Frame::Failed {
            seq,
            code: r.0 as u16,
            text: r.1.clone(),
        },
    }
}
