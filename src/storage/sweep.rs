//! The start-up sweep: removing what interrupted work left in the server's directory. A
//! temporary file is locked (`flock`) by the process writing it for as long as it lives, so a
//! temporary file nobody holds a lock on belongs to a run that has died (even a moment ago, by
//! `kill -9`) and goes whatever its age. Partial uploads kept for resume (`.knsock-partial-…`)
//! survive a crash on purpose and go only once older than the resume time.

use std::fs::{self, File};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{flock, FlockOperation, OFlags};

use super::object::UPLOAD_NOTE_PREFIX;
use crate::protocol::{MAX_COMPONENTS, TEMP_PREFIX};

/// Removes beneath `root` the temporary files no live process holds and the partial uploads
/// older than `partial_age`. Symlinks are not followed. Returns how many files it removed.
pub fn sweep(root: &Path, partial_age: Duration) -> usize {
    walk(root, 0, partial_age)
}

fn walk(dir: &Path, depth: usize, partial_age: Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let (Ok(ft), name) = (e.file_type(), e.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy();
        if ft.is_dir() && depth < MAX_COMPONENTS {
            removed += walk(&e.path(), depth + 1, partial_age);
            continue;
        }
        // Notes of uploads in flight belong to the object store's own sweep.
        if !ft.is_file() || !name.starts_with(TEMP_PREFIX) || name.starts_with(UPLOAD_NOTE_PREFIX) {
            continue;
        }
        let stale = match name.starts_with(&format!("{TEMP_PREFIX}partial-")) {
            true => older_than(&e, partial_age),
            false => unlocked(&e.path()),
        };
        if stale && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn older_than(e: &fs::DirEntry, age: Duration) -> bool {
    e.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a > age)
}

/// Whether no process holds the file's lock (it is taken, and released as the file closes).
fn unlocked(path: &Path) -> bool {
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32;
    match File::options().read(true).custom_flags(flags).open(path) {
        Ok(f) => flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok(),
        Err(_) => false,
    }
}
