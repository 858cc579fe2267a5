//! The interface to an object store (an S3-compatible bucket): what the receiver asks of one
//! when its files go there instead of into a local directory.

use std::fmt;
use std::fs::File;
use std::io::Read;

/// What an object store's note of an upload in flight is named after, in the spool. The
/// spool's own sweep leaves these to the store (`storage/s3/journal.rs`), which knows whose
/// each one is.
pub(crate) const UPLOAD_NOTE_PREFIX: &str = ".knsock-upload-";

/// What travels with a stored object, so a later offer can be compared with it without reading
/// the content back (the quick check, or the digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The content's size.
    pub size: u64,
    /// The sender's modification time: seconds since the Unix epoch…
    pub mtime_secs: i64,
    /// …and nanoseconds.
    pub mtime_nanos: u32,
    /// Permission bits, as the local directory would have set them.
    pub mode: u32,
    /// The XXH3-128 of the content, verified before the object was completed. Known when the
    /// object went up in one piece, or when the sender's offer carried it; a large object
    /// streamed while it arrived has none (the quick check, size and mtime, still works).
    pub digest: Option<[u8; 16]>,
}

/// Why the store did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError {
    /// Whether it may pass, or what the sender is told.
    pub kind: ObjectErrorKind,
    /// The store's own account, for people.
    pub text: String,
}

/// What kind of failure an [`ObjectError`] is: what the sender is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectErrorKind {
    /// Trying again later may succeed: unreachable, slow down, a server error.
    Temporary,
    /// The store refused for good: access denied, no such bucket.
    Refused,
    /// An object was stored under the key meanwhile, and the policy forbids replacing it.
    Exists,
}

impl ObjectError {
    /// A failure that may pass ([`ObjectErrorKind::Temporary`]).
    pub fn temporary(text: impl Into<String>) -> ObjectError {
        ObjectError {
            kind: ObjectErrorKind::Temporary,
            text: text.into(),
        }
    }

    /// A refusal for good ([`ObjectErrorKind::Refused`]).
    pub fn refused(text: impl Into<String>) -> ObjectError {
        ObjectError {
            kind: ObjectErrorKind::Refused,
            text: text.into(),
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind == ObjectErrorKind::Temporary
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An object store. The receiver calls it from its connection threads, so it is shared and
/// blocking. Keys are built only from names that passed every check of a local name.
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// The metadata of the object at `key`, or `None` when there is none (or it was not written
    /// by knsock, so nothing is known of it).
    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectError>;

    /// Whether any object is stored at `key`.
    fn exists(&self, key: &str) -> Result<bool, ObjectError>;

    /// Stores the verified content of `file` (read from its start) at `key` with `meta`. The
    /// object appears complete or not at all: an upload that fails is aborted, never left
    /// behind. Returns only once the store acknowledged it. With `if_absent`, an object stored
    /// at `key` meanwhile is kept and this fails with [`ObjectErrorKind::Exists`] (a
    /// conditional write, so two receivers sharing the bucket cannot both win).
    fn put(
        &self,
        key: &str,
        file: &File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<(), ObjectError>;

    /// Starts storing an object of `meta.size` bytes while its content still arrives in `file`
    /// (the spool), or `None` when the store would rather take it whole at the end (a small
    /// one). Nothing appears at `key` until [`Upload::finish`]; `if_absent` as for `put`. The
    /// default: `None`, every object goes up whole through `put` once verified.
    fn begin(
        &self,
        key: &str,
        file: &File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<Option<Box<dyn Upload>>, ObjectError> {
        let _ = (key, file, meta, if_absent);
        Ok(None)
    }

    /// Removes what interrupted runs left in the store: the unfinished uploads this store
    /// knows an earlier run of this receiver left, and any older than `age_secs`. Returns how
    /// many were removed. The default, for a store that leaves nothing unfinished: 0.
    fn sweep(&self, age_secs: u64) -> Result<usize, ObjectError> {
        let _ = age_secs;
        Ok(0)
    }

    /// Where the objects go, for messages and logs: `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// The largest object the store takes, if it has a limit: larger offers are refused
    /// before any data.
    fn max_object_size(&self) -> Option<u64> {
        None
    }

    /// The full key for `name`, a checked `/`-separated name. The default: the name itself.
    fn key(&self, name: &str) -> String {
        name.to_string()
    }

    /// The object's address as the handlers are told of it: `s3://bucket/key`.
    fn url(&self, key: &str) -> String;

    /// Requests made to the store so far, and how many of them failed, for the server's
    /// statistics (`Server::stats`). A store that does not count says (0, 0).
    fn requests(&self) -> (u64, u64) {
        (0, 0)
    }

    /// Whether the store implements [`ObjectStore::list`] and [`ObjectStore::open`], so a
    /// receiver can serve fetches from it. A store that does not (the default) has fetches
    /// refused with code 20.
    fn readable(&self) -> bool {
        false
    }

    /// Every object knsock stored under the key prefix `prefix` (a full key up to and including
    /// its last `/`), with its metadata as stored at upload, in byte order of keys. Objects
    /// without knsock's metadata are left out. The default: not supported.
    fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, ObjectError> {
        let _ = prefix;
        Err(ObjectError::refused(
            "this object store cannot list its objects",
        ))
    }

    /// The content of the object at `key`, streamed (never read whole into memory), with its
    /// metadata as it is now; `None` when there is no object there. The default: not supported.
    fn open(&self, key: &str) -> Result<Option<ObjectReader>, ObjectError> {
        let _ = key;
        Err(ObjectError::refused(
            "this object store cannot read objects",
        ))
    }
}

/// One object of a [`ObjectStore::list`]: its full key and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The full key, prefix included.
    pub key: String,
    /// What was stored with it at upload.
    pub meta: ObjectMeta,
}

/// An object being read ([`ObjectStore::open`]): its metadata (`None` when knsock did not write
/// it) and its content, read as it arrives.
pub struct ObjectReader {
    /// The object's metadata at the time of reading.
    pub meta: Option<ObjectMeta>,
    /// The content, from its first byte.
    pub body: Box<dyn Read + Send>,
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// An object going up while its content arrives. Dropped before [`Upload::finish`], it is
/// aborted: nothing appears, nothing is left in the store.
pub trait Upload: Send + fmt::Debug {
    /// The spool now holds the first `written` bytes: what completes a part goes up. Blocks
    /// while the store is behind by more than a few parts, so the sender is paced to the
    /// store and little is left to do after the last byte.
    fn progress(&mut self, written: u64) -> Result<(), ObjectError>;

    /// The content is complete, verified and accepted: uploads the rest and completes the
    /// object. Returns once the store acknowledged it.
    fn finish(self: Box<Self>) -> Result<(), ObjectError>;
}

/// Runs a call into the store; a panic in it (the store is the embedding program's code) is
/// its failure for now, with the panic's message, so the file fails and the server goes on.
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, ObjectError>,
) -> Result<T, ObjectError> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let text = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
            (Some(s), _) => s.to_string(),
            (_, Some(s)) => s.clone(),
            _ => "no message".to_string(),
        };
        Err(ObjectError::temporary(format!(
            "the store panicked in {what}: {text}"
        )))
    })
}
