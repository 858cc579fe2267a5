//! A file's future place (`Target`) and the hidden temporary file it is written to
//! (`TempFile`): created beside the final name, synced, then renamed into place.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{
    self as rfs, flock, AtFlags, FlockOperation, Mode, OFlags, RenameFlags, Timespec, Timestamps,
};
use rustix::io::Errno;

use super::names::{numbered, rel_name, temp_name};
use super::types::{Overwrite, StoreError};

/// Test hook: directory fsyncs fail while set (feature `internals`).
#[cfg(feature = "internals")]
pub static FAIL_DIR_SYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A file's future place: its open parent directory and its name there.
#[derive(Debug)]
pub struct Target {
    pub(super) dir: Arc<OwnedFd>,
    pub(super) dir_path: PathBuf,
    pub(super) rel_dir: String,
    pub(super) file_name: String,
}

impl Target {
    /// Creates a hidden temporary file (mode 0600) beside the final name.
    pub fn create_temp(&self) -> io::Result<TempFile> {
        loop {
            let name = temp_name();
            match rfs::openat(
                &*self.dir,
                &name,
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    // Locked for as long as it lives: a sweep tells a live run's temporary
                    // files from a dead one's by this lock. One the sweep took first (and
                    // unlinked) is left for a new name.
                    flock(&fd, FlockOperation::LockExclusive)?;
                    if rfs::fstat(&fd)?.st_nlink == 0 {
                        continue;
                    }
                    return Ok(TempFile {
                        path: self.dir_path.join(&name),
                        dir: Arc::clone(&self.dir),
                        name,
                        file: File::from(fd),
                        live: true,
                    });
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes renames in this directory durable.
    pub fn sync_dir(&self) -> io::Result<()> {
        #[cfg(feature = "internals")]
        if FAIL_DIR_SYNC.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5)); // EIO, as a failing disk gives
        }
        Ok(rfs::fsync(&*self.dir)?)
    }

    /// Whether two targets share their directory handle (one fsync serves both).
    pub fn same_dir(&self, other: &Target) -> bool {
        Arc::ptr_eq(&self.dir, &other.dir)
    }

    /// Takes over the partial upload `partial` left in this directory if it is a regular file
    /// younger than `ttl` and no longer than `max_len`: it becomes a temporary file positioned at
    /// its end. A stale or unusable partial is deleted. `None` when there is none to resume.
    pub fn claim_partial(
        &self,
        partial: &str,
        ttl: Duration,
        max_len: u64,
    ) -> io::Result<Option<TempFile>> {
        let fd = match rfs::openat(
            &*self.dir,
            partial,
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let st = rfs::fstat(&fd)?;
        let age = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(Duration::from_secs(st.st_mtime.max(0) as u64));
        let usable = rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile
            && age <= ttl
            && (st.st_size as u64) <= max_len;
        let name = temp_name();
        if !usable {
            let _ = rfs::unlinkat(&*self.dir, partial, AtFlags::empty());
            return Ok(None);
        }
        flock(&fd, FlockOperation::LockExclusive)?;
        // Renaming claims it: a second claimant finds nothing.
        match rfs::renameat_with(
            &*self.dir,
            partial,
            &*self.dir,
            &name,
            RenameFlags::NOREPLACE,
        ) {
            Err(Errno::NOENT) => return Ok(None),
            other => other?,
        }
        let mut file = File::from(fd);
        file.seek(SeekFrom::End(0))?;
        Ok(Some(TempFile {
            path: self.dir_path.join(&name),
            dir: Arc::clone(&self.dir),
            name,
            file,
            live: true,
        }))
    }
}

/// A temporary file being written. Dropped before [`TempFile::commit`], it deletes itself.
#[derive(Debug)]
pub struct TempFile {
    dir: Arc<OwnedFd>,
    name: String,
    path: PathBuf,
    file: File,
    live: bool,
}

/// A file committed under its final name.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Relative to the server's directory, `/`-separated.
    pub name: String,
    pub path: PathBuf,
}

impl TempFile {
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The open file, to read its content back.
    pub fn file_ref(&self) -> &File {
        &self.file
    }

    /// Bytes written so far.
    pub fn written(&mut self) -> io::Result<u64> {
        self.file.stream_position()
    }

    /// Feeds the content written so far to `hasher`, leaving the position at the end.
    pub fn reread(&mut self, hasher: &mut xxhash_rust::xxh3::Xxh3) -> io::Result<()> {
        let end = self.file.stream_position()?;
        self.file.seek(SeekFrom::Start(0))?;
        crate::hash::hash_exact(&mut self.file, end, hasher)
    }

    /// Keeps the file under the hidden name `partial` instead of deleting it, for a later
    /// resume.
    pub fn keep_as(mut self, partial: &str) -> io::Result<()> {
        rfs::renameat(&*self.dir, &self.name, &*self.dir, partial)?;
        self.live = false;
        Ok(())
    }

    /// Where the temporary file is, for a post-data validator to read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets permission bits (the sender's `mode`, 0 giving 0o644, within `mask`) and the
    /// modification time.
    pub fn set_metadata(
        &mut self,
        mode: u32,
        mask: u32,
        mtime_secs: i64,
        mtime_nanos: u32,
    ) -> io::Result<()> {
        let mode = effective_mode(mode, mask);
        rfs::fchmod(&self.file, Mode::from_raw_mode(mode))?;
        if mtime_nanos < 1_000_000_000 {
            let t = Timespec {
                tv_sec: mtime_secs,
                tv_nsec: mtime_nanos as _,
            };
            let now = Timespec {
                tv_sec: 0,
                tv_nsec: rfs::UTIME_NOW,
            };
            rfs::futimens(
                &self.file,
                &Timestamps {
                    last_access: now,
                    last_modification: t,
                },
            )?;
        }
        Ok(())
    }

    /// Renames the (durable) file to `target`'s name under `policy`. The directory still needs
    /// [`Target::sync_dir`] before the rename is durable.
    pub fn rename_into_place(
        mut self,
        target: &Target,
        policy: Overwrite,
    ) -> Result<Stored, StoreError> {
        let stored_as = match policy {
            Overwrite::Replace => {
                rfs::renameat(&*self.dir, &self.name, &*target.dir, &target.file_name)?;
                target.file_name.clone()
            }
            Overwrite::Refuse => {
                self.rename_noreplace(target, &target.file_name)?;
                target.file_name.clone()
            }
            Overwrite::Rename => {
                let mut n = 0u32;
                loop {
                    let candidate = numbered(&target.file_name, n);
                    match self.rename_noreplace(target, &candidate) {
                        Err(StoreError::Exists) if n < 10_000 => n += 1,
                        Err(e) => return Err(e),
                        Ok(()) => break candidate,
                    }
                }
            }
        };
        self.live = false;
        Ok(Stored {
            path: target.dir_path.join(&stored_as),
            name: rel_name(&target.rel_dir, &stored_as),
        })
    }

    fn rename_noreplace(&self, target: &Target, name: &str) -> Result<(), StoreError> {
        match rfs::renameat_with(
            &*self.dir,
            &self.name,
            &*target.dir,
            name,
            RenameFlags::NOREPLACE,
        ) {
            Err(Errno::EXIST) => Err(StoreError::Exists),
            other => Ok(other?),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.live {
            let _ = rfs::unlinkat(&*self.dir, &self.name, AtFlags::empty());
        }
    }
}

/// The permission bits a received file gets: the sender's `mode` (0 giving 0o644) within
/// `mask`.
pub fn effective_mode(mode: u32, mask: u32) -> u32 {
    (match mode & 0o7777 {
        0 => 0o644,
        m => m,
    }) & mask
}

/// Whether `file` is still the file `st` described (the same file, size and modification):
/// an old copy a delta was cut against, checked again before its chunks are trusted.
pub fn same_file(file: &File, st: &rfs::Stat) -> bool {
    rfs::fstat(file).is_ok_and(|n| {
        let key = |s: &rfs::Stat| (s.st_dev, s.st_ino, s.st_size, s.st_mtime, s.st_mtime_nsec);
        key(&n) == key(st)
    })
}

/// Whether every file of `temps` is on a file system held in memory (tmpfs, ramfs), where
/// syncing and renaming never wait for a disk.
pub fn in_memory<'a>(mut temps: impl Iterator<Item = &'a TempFile>) -> bool {
    const TMPFS_MAGIC: rfs::FsWord = 0x0102_1994;
    const RAMFS_MAGIC: rfs::FsWord = 0x8584_58f6;
    temps
        .all(|t| rfs::fstatfs(&t.file).is_ok_and(|s| matches!(s.f_type, TMPFS_MAGIC | RAMFS_MAGIC)))
}

/// Makes the content of every file in `temps` durable: one fsync for a single file, otherwise
/// one `syncfs` per file system involved (a group commit).
pub fn sync_all<'a>(temps: impl IntoIterator<Item = &'a TempFile>) -> io::Result<()> {
    let temps: Vec<&TempFile> = temps.into_iter().collect();
    if let [one] = temps.as_slice() {
        return one.file.sync_all();
    }
    let mut synced: Vec<u64> = Vec::new();
    for t in temps {
        let dev = rfs::fstat(&t.file)?.st_dev;
        if !synced.contains(&dev) {
            rfs::syncfs(&t.file)?;
            synced.push(dev);
        }
    }
    Ok(())
}
