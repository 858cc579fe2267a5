//! What the storage layer tells its callers: the overwrite policy and why a file could not be
//! placed.

use std::io;

use rustix::io::Errno;

use super::object::ObjectError;

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
    /// The object store failed or refused.
    Object(ObjectError),
}

impl From<ObjectError> for StoreError {
    fn from(e: ObjectError) -> Self {
        StoreError::Object(e)
    }
}

impl From<Errno> for StoreError {
    fn from(e: Errno) -> Self {
        StoreError::Io(e.into())
    }
}
