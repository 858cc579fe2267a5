//! What a fetch lists (docs/protocol.md section 3.3): the requested names resolved beneath the
//! identity's directory, directories walked, never through a symlink, filtered by the globs.

use std::fs::File;
use std::os::fd::OwnedFd;

use glob::{MatchOptions, Pattern};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::protocol::{check_name, Code, FetchRequest, Offer, FETCH_MAX_FILES, FETCH_RECURSIVE};
use crate::storage::{Root, StoreError};

/// One entry of a fetch list, in the order it goes out.
#[derive(Debug)]
pub(crate) enum Item {
    /// A listed file: its OFFER fields (the name as the client sees it) and its path beneath
    /// the server's directory.
    File(Offer, String),
    /// Requested name `index` gives nothing: the code and why.
    Missing(u16, Code, String),
}

/// The include and exclude globs of a request, matched as `send-file` matches them.
pub(crate) struct Filters {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Filters {
    pub(crate) fn new(req: &FetchRequest) -> Result<Filters, String> {
        let compile = |globs: &[String]| -> Result<Vec<Pattern>, String> {
            globs
                .iter()
                .map(|g| Pattern::new(g).map_err(|e| format!("bad pattern {g:?}: {e}")))
                .collect()
        };
        Ok(Filters {
            include: compile(&req.include)?,
            exclude: compile(&req.exclude)?,
        })
    }

    pub(crate) fn wanted(&self, name: &str) -> bool {
        let m = MatchOptions {
            require_literal_separator: false,
            ..MatchOptions::new()
        };
        (self.include.is_empty() || self.include.iter().any(|p| p.matches_with(name, m)))
            && !self.exclude.iter().any(|p| p.matches_with(name, m))
    }
}

/// Lists what `req` asks for beneath `base` (the identity's directory, or the whole directory).
/// `Err` only for a filter that does not parse.
pub(crate) fn list(
    root: &Root,
    base: Option<&str>,
    req: &FetchRequest,
) -> Result<Vec<Item>, String> {
    let filters = Filters::new(req)?;
    let mut out = Vec::new();
    let mut files = 0u32;
    for (i, name) in req.names.iter().enumerate() {
        if let Err((code, why)) = list_name(root, base, name, req, &filters, &mut out, &mut files) {
            out.push(Item::Missing(i as u16, code, why));
        }
    }
    Ok(out)
}

/// Resolves one requested name and lists it.
fn list_name(
    root: &Root,
    base: Option<&str>,
    name: &str,
    req: &FetchRequest,
    filters: &Filters,
    out: &mut Vec<Item>,
    files: &mut u32,
) -> Result<(), (Code, String)> {
    check_name(name).map_err(|why| (Code::BadName, format!("'{name}': {why}")))?;
    let full = match base {
        Some(dir) => format!("{dir}/{name}"),
        None => name.to_string(),
    };
    let parts = check_name(&full).map_err(|why| (Code::BadName, format!("'{name}': {why}")))?;
    let lookup = root.lookup(&parts).map_err(|e| match e {
        StoreError::BadPath(why) => (Code::BadName, format!("'{name}': {why}")),
        e => (Code::Io, format!("'{name}': {}", store_text(e))),
    })?;
    let missing = || (Code::NoSuchFile, format!("no such file: '{name}'"));
    let st = lookup.entry().ok_or_else(missing)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            if filters.wanted(name) {
                push(out, files, name, &full, &st)?;
            }
            Ok(())
        }
        FileType::Directory if req.flags & FETCH_RECURSIVE != 0 => {
            let dir = lookup
                .open_dir()
                .map_err(|e| (Code::Io, format!("'{name}': {e}")))?;
            walk(&dir, name, &full, filters, out, files)
        }
        FileType::Directory => Err((
            Code::BadName,
            format!("'{name}' is a directory (fetch it with recursion)"),
        )),
        _ => Err((Code::BadName, format!("'{name}' is not a regular file"))),
    }
}

fn push(
    out: &mut Vec<Item>,
    files: &mut u32,
    name: &str,
    full: &str,
    st: &rfs::Stat,
) -> Result<(), (Code, String)> {
    if *files >= FETCH_MAX_FILES {
        return Err((
            Code::Io,
            format!("more than {FETCH_MAX_FILES} files to fetch"),
        ));
    }
    *files += 1;
    let offer = Offer {
        mtime_secs: st.st_mtime,
        mtime_nanos: st.st_mtime_nsec as u32,
        mode: st.st_mode & 0o7777,
        ..Offer::new(name, st.st_size as u64)
    };
    out.push(Item::File(offer, full.to_string()));
    Ok(())
}

/// Lists every regular file beneath `dir` in byte order of names; symlinks, devices, FIFOs,
/// temporary files and names the rules refuse are left out.
fn walk(
    dir: &OwnedFd,
    name: &str,
    full: &str,
    filters: &Filters,
    out: &mut Vec<Item>,
    files: &mut u32,
) -> Result<(), (Code, String)> {
    let io = |e: rustix::io::Errno| (Code::Io, format!("listing '{name}': {e}"));
    let mut entries = Vec::new();
    for entry in rfs::Dir::read_from(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if let Ok(n) = entry.file_name().to_str() {
            entries.push(n.to_string());
        }
    }
    entries.sort();
    for entry in entries {
        let (sub, sub_full) = (format!("{name}/{entry}"), format!("{full}/{entry}"));
        if entry == "." || entry == ".." || check_name(&sub_full).is_err() {
            continue;
        }
        let Ok(st) = rfs::statat(dir, entry.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile if filters.wanted(&sub) => {
                push(out, files, &sub, &sub_full, &st)?
            }
            FileType::Directory => {
                let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                if let Ok(fd) = rfs::openat(dir, entry.as_str(), flags, Mode::empty()) {
                    walk(&fd, &sub, &sub_full, filters, out, files)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Opens a listed file again for its content: the regular file it was (same size and
/// modification time), never through a symlink; why not otherwise.
pub(crate) fn reopen(root: &Root, full: &str, listed: &Offer) -> Result<File, String> {
    let parts = check_name(full).map_err(|why| why.to_string())?;
    let lookup = root.lookup(&parts).map_err(store_text)?;
    let gone = || format!("'{}' vanished since it was listed", listed.name);
    let (file, st) = lookup.existing().ok_or_else(gone)?;
    let same = st.st_size as u64 == listed.size
        && st.st_mtime == listed.mtime_secs
        && st.st_mtime_nsec as u32 == listed.mtime_nanos;
    match same {
        true => Ok(file),
        false => Err(format!("'{}' changed since it was listed", listed.name)),
    }
}

fn store_text(e: StoreError) -> String {
    match e {
        StoreError::BadPath(why) => why,
        StoreError::Io(e) => e.to_string(),
        e => format!("{e:?}"),
    }
}
