//! Where received bytes land: names resolved beneath an open directory handle (never following a
//! symlink), hidden temporary files, and the fsync-then-rename commit.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::protocol::TEMP_PREFIX;

mod sweep;

pub use sweep::sweep;

/// What the receiver does when a file of the same name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Replace it atomically (kn-sock replaces too).
    #[default]
    Replace,
    /// Refuse the new file.
    Refuse,
    /// Keep both: the new file is stored as `name (1).ext`, `name (2).ext`, …
    Rename,
}

/// Why a file could not be placed: the caller turns it into a wire code.
#[derive(Debug)]
pub enum StoreError {
    /// The name leads through a symlink or something that is not a directory.
    BadPath(String),
    /// The name exists and the policy is [`Overwrite::Refuse`].
    Exists,
    Io(io::Error),
}

impl From<Errno> for StoreError {
    fn from(e: Errno) -> Self {
        StoreError::Io(e.into())
    }
}

/// The server's directory, held open so every name is resolved relative to it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Resolves `components` beneath the directory without creating anything: every existing
    /// parent is opened relative to the one before, never through a symlink. Resolved once per
    /// offer; directories are created only by [`Lookup::create`], for an accepted file.
    pub fn lookup(&self, components: &[&str]) -> Result<Lookup, StoreError> {
        let (file_name, dirs) = components
            .split_last()
            .ok_or_else(|| StoreError::BadPath("empty name".into()))?;
        let mut parent = rfs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())?;
        let mut found = 0;
        for (i, dir) in dirs.iter().enumerate() {
            match rfs::openat(&parent, *dir, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => parent = fd,
                Err(Errno::NOENT) => break,
                Err(e) => return Err(dir_error(dirs, i, e)),
            }
            found = i + 1;
        }
        Ok(Lookup {
            parent,
            found,
            dirs: dirs.iter().map(|d| d.to_string()).collect(),
            file_name: file_name.to_string(),
            root_path: self.path.clone(),
        })
    }
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

fn dir_error(dirs: &[&str], i: usize, e: Errno) -> StoreError {
    match e {
        Errno::LOOP | Errno::NOTDIR => StoreError::BadPath(format!(
            "'{}' is a symlink or not a directory",
            dirs[..=i].join("/")
        )),
        e => e.into(),
    }
}

/// A name resolved beneath the server's directory: its deepest existing parent, held open, and
/// the directories still missing below it.
#[derive(Debug)]
pub struct Lookup {
    /// The deepest existing parent directory.
    parent: OwnedFd,
    /// How many of `dirs` exist (`parent` is the last of them, or the root).
    found: usize,
    dirs: Vec<String>,
    file_name: String,
    root_path: PathBuf,
}

impl Lookup {
    /// Whether an entry of that name exists; a directory there is an error whatever the policy.
    pub fn check_existing(&self, policy: Overwrite) -> Result<(), StoreError> {
        if self.found < self.dirs.len() {
            return Ok(());
        }
        match rfs::statat(&self.parent, &self.file_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory => {
                Err(StoreError::BadPath(format!(
                    "'{}' is a directory",
                    rel_name(&self.dirs.join("/"), &self.file_name)
                )))
            }
            Ok(_) if policy == Overwrite::Refuse => Err(StoreError::Exists),
            Ok(_) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a regular file of `size` bytes whose XXH3-128 is `digest` already stands under
    /// the name. Anything but a regular file (a FIFO, a device) is never opened for reading.
    pub fn holds(&self, size: u64, digest: &[u8]) -> bool {
        if self.found < self.dirs.len() {
            return false;
        }
        let Ok(fd) = rfs::openat(
            &self.parent,
            &self.file_name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) else {
            return false;
        };
        let mut file = File::from(fd);
        match file.metadata() {
            Ok(m) if m.is_file() && m.len() == size => {}
            _ => return false,
        }
        crate::hash::digest_exact(&mut file, size).is_ok_and(|d| d[..] == *digest)
    }

    /// Free bytes on the file system the file would land on, for unprivileged users.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let st = rfs::fstatvfs(&self.parent)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Creates the missing parent directories (mode 0755) and gives the file's place.
    pub fn create(self) -> Result<Target, StoreError> {
        let Lookup {
            mut parent,
            found,
            dirs,
            file_name,
            root_path,
        } = self;
        let names: Vec<&str> = dirs.iter().map(String::as_str).collect();
        for (i, dir) in names.iter().enumerate().skip(found) {
            match rfs::mkdirat(&parent, *dir, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            parent = rfs::openat(&parent, *dir, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| dir_error(&names, i, e))?;
        }
        Ok(Target {
            dir: Arc::new(parent),
            dir_path: names.iter().fold(root_path, |p, d| p.join(d)),
            rel_dir: names.join("/"),
            file_name,
        })
    }
}

/// A file's future place: its open parent directory and its name there.
#[derive(Debug)]
pub struct Target {
    dir: Arc<OwnedFd>,
    dir_path: PathBuf,
    rel_dir: String,
    file_name: String,
}

impl Target {
    /// Creates a hidden temporary file (mode 0600) beside the final name.
    pub fn create_temp(&self) -> io::Result<TempFile> {
        loop {
            let name = format!("{TEMP_PREFIX}{:016x}.tmp", unique());
            match rfs::openat(
                &*self.dir,
                &name,
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    return Ok(TempFile {
                        path: self.dir_path.join(&name),
                        dir: Arc::clone(&self.dir),
                        name,
                        file: File::from(fd),
                        live: true,
                    })
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes renames in this directory durable.
    pub fn sync_dir(&self) -> io::Result<()> {
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
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
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
        let name = format!("{TEMP_PREFIX}{:016x}.tmp", unique());
        if !usable {
            let _ = rfs::unlinkat(&*self.dir, partial, AtFlags::empty());
            return Ok(None);
        }
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

/// `dir/file`, or `file` at the top.
fn rel_name(rel_dir: &str, file: &str) -> String {
    match rel_dir.is_empty() {
        true => file.to_string(),
        false => format!("{rel_dir}/{file}"),
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

    /// Sets permission bits (0o777 at most; 0 gives 0644) and the modification time.
    pub fn set_metadata(&mut self, mode: u32, mtime_secs: i64, mtime_nanos: u32) -> io::Result<()> {
        let mode = match mode & 0o777 {
            0 => 0o644,
            m => m,
        };
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

/// `report.txt` → `report (n).txt`; n = 0 is the name itself.
fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

fn unique() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert_eq!(numbered("a.txt", 0), "a.txt");
        assert_eq!(numbered("a.txt", 2), "a (2).txt");
        assert_eq!(numbered("archive.tar.gz", 1), "archive.tar (1).gz");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered("README", 3), "README (3)");
    }
}
