//! The server's directory, held open, and names resolved beneath it (`Lookup`): every existing
//! parent is opened relative to the one before, never through a symlink, and missing
//! directories are created only for an accepted file.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::digest_store;
use super::digests::{self, DigestCache};
use super::names::rel_name;
use super::target::Target;
use super::types::{Overwrite, StoreError};

/// The server's directory, held open so every name is resolved relative to it.
#[derive(Debug)]
pub struct Root {
    /// Shared with the spool's `Target` when the directory spools for an object store.
    fd: Arc<OwnedFd>,
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
            fd: Arc::new(fd),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory itself as a place for hidden temporary files: the spool of content on its
    /// way to an object store. It shares the directory's handle.
    pub fn spool_target(&self) -> Target {
        Target {
            dir: Arc::clone(&self.fd),
            dir_path: self.path.clone(),
            rel_dir: String::new(),
            file_name: String::new(),
        }
    }
    /// Resolves `components` beneath the directory without creating anything: every existing
    /// parent is opened relative to the one before, never through a symlink. Resolved once per
    /// offer; directories are created only by [`Lookup::create`], for an accepted file.
    pub fn lookup(&self, components: &[&str]) -> Result<Lookup, StoreError> {
        let (file_name, dirs) = components
            .split_last()
            .ok_or_else(|| StoreError::BadPath("empty name".into()))?;
        let mut parent = rfs::openat(&*self.fd, ".", DIR_FLAGS, Mode::empty())?;
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
    /// the name. Anything but a regular file (a FIFO, a device) is never opened for reading. A
    /// digest `cache` remembers holds; a file not in it is hashed only while `budget` (bytes)
    /// lasts, and the budget shrinks by what is hashed.
    pub fn holds(&self, size: u64, digest: &[u8], cache: &DigestCache, budget: &mut u64) -> bool {
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
        let Ok(st) = rfs::fstat(&fd) else {
            return false;
        };
        let regular = rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile;
        if !regular || st.st_size as u64 != size {
            return false;
        }
        let key = digests::Key::of(&st);
        if let Some(known) = cache.get(&key) {
            return known[..] == *digest;
        }
        if let Some(known) = digest_store::recall(&fd, &st) {
            cache.put(key, known);
            return known[..] == *digest;
        }
        if *budget < size {
            return false;
        }
        *budget -= size;
        let mut file = File::from(fd);
        match crate::hash::digest_exact(&mut file, size) {
            Ok(d) => {
                // Recording changes the change time: the cache keys the file as it is after.
                digest_store::remember(&file, d);
                let key = rfs::fstat(&file).map_or(key, |st| digests::Key::of(&st));
                cache.put(key, d);
                d[..] == *digest
            }
            Err(_) => false,
        }
    }

    /// The regular file under the name, opened for reading (never a FIFO or a device), with
    /// its status: the quick check and a delta's old copy.
    pub fn existing(&self) -> Option<(File, rfs::Stat)> {
        if self.found < self.dirs.len() {
            return None;
        }
        let fd = rfs::openat(
            &self.parent,
            &self.file_name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .ok()?;
        let st = rfs::fstat(&fd).ok()?;
        let regular = rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile;
        regular.then(|| (File::from(fd), st))
    }

    /// The entry under the name, never through a symlink (a symlink is itself the entry).
    pub fn entry(&self) -> Option<rfs::Stat> {
        if self.found < self.dirs.len() {
            return None;
        }
        rfs::statat(&self.parent, &self.file_name, AtFlags::SYMLINK_NOFOLLOW).ok()
    }

    /// The directory under the name, opened without following a symlink: a fetch walks it.
    pub fn open_dir(&self) -> io::Result<OwnedFd> {
        Ok(rfs::openat(
            &self.parent,
            &self.file_name,
            DIR_FLAGS | OFlags::NOFOLLOW,
            Mode::empty(),
        )?)
    }

    /// The quick check: a regular file of `size` bytes modified at exactly `mtime` stands under
    /// the name. Nothing is read.
    pub fn quick_same(&self, size: u64, mtime: (i64, u32)) -> bool {
        if self.found < self.dirs.len() {
            return false;
        }
        match rfs::statat(&self.parent, &self.file_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile
                    && st.st_size as u64 == size
                    && st.st_mtime == mtime.0
                    && st.st_mtime_nsec as u32 == mtime.1
            }
            Err(_) => false,
        }
    }

    /// The device of the file system the file would land on.
    pub fn device(&self) -> io::Result<u64> {
        Ok(rfs::fstat(&self.parent)?.st_dev)
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
