//! The receiver's own note of each multipart upload it has in flight: a small file in its spool
//! directory, locked (`flock`) while the upload runs. A receiver killed mid-upload leaves the
//! note unlocked; when it starts again with the same spool, it aborts those uploads, however
//! young, so no orphaned upload stays behind. Uploads of other receivers sharing the bucket are
//! never touched: their notes are in their own spools, or locked.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use super::multipart::abort;
use super::S3Store;
use crate::storage::object::ObjectStore;

use crate::storage::object::UPLOAD_NOTE_PREFIX as NOTE_PREFIX;

/// A note of one upload in flight; dropped, it is removed.
pub(super) struct Note {
    path: PathBuf,
    _file: File,
}

impl Note {
    /// Notes the upload `upload_id` of `key` in the store described as `store` (its bucket,
    /// prefix and endpoint: spools may be shared by receivers of different buckets).
    pub(super) fn write(dir: &Path, store: &str, key: &str, upload_id: &str) -> io::Result<Note> {
        let id = xxhash_rust::xxh3::xxh3_64(upload_id.as_bytes());
        let path = dir.join(format!("{NOTE_PREFIX}{id:016x}"));
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        flock(&file, FlockOperation::LockExclusive)?;
        file.write_all(format!("{store}\n{key}\n{upload_id}\n").as_bytes())?;
        Ok(Note { path, _file: file })
    }
}

impl Drop for Note {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Aborts the uploads of this store's unlocked notes in `dir` and removes the notes; returns
/// how many. Notes of other stores are left to their receivers.
pub(super) fn sweep(store: &S3Store, dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut aborted = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(NOTE_PREFIX) {
            continue;
        }
        let Ok(file) = File::open(e.path()) else {
            continue;
        };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live receiver's upload
        }
        let text = fs::read_to_string(e.path()).unwrap_or_default();
        let mut lines = text.lines();
        let (Some(owner), Some(key), Some(upload_id)) = (lines.next(), lines.next(), lines.next())
        else {
            continue;
        };
        if owner != store.describe() {
            continue;
        }
        abort(store, key, upload_id);
        aborted += 1;
        let _ = fs::remove_file(e.path());
    }
    aborted
}
