//! The receiver's storage behind one interface, with two implementations: the local directory
//! (a verified file is renamed into place) and an object store (a verified file is uploaded,
//! its content spooled meanwhile in a local directory). The receiver's protocol code sees only
//! [`Sink`], [`Entry`] and [`Place`].

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::digests::DigestCache;
use super::object::{guarded, ObjectMeta, ObjectStore, Upload};
use super::root::{Lookup, Root};
use super::target::{Stored, Target, TempFile};
use super::types::{Overwrite, StoreError};

/// The longest object key S3 (and the stores that follow it) accepts, in bytes.
const MAX_KEY: usize = 1024;

/// Where received files go.
#[derive(Debug)]
pub enum Sink {
    /// Into this directory, the default.
    Dir(Root),
    /// Into an object store; content in flight (and kept for resume) waits in `spool`.
    Objects {
        store: Arc<dyn ObjectStore>,
        spool: Root,
    },
}

impl Sink {
    /// The local directory files (or their spooled content) are written in.
    pub fn path(&self) -> &Path {
        match self {
            Sink::Dir(root) | Sink::Objects { spool: root, .. } => root.path(),
        }
    }

    /// The object store, when files go to one.
    pub fn store(&self) -> Option<&Arc<dyn ObjectStore>> {
        match self {
            Sink::Dir(_) => None,
            Sink::Objects { store, .. } => Some(store),
        }
    }

    /// Resolves a checked name (its `/`-separated components) without creating anything.
    pub fn lookup(&self, components: &[&str]) -> Result<Entry, StoreError> {
        match self {
            Sink::Dir(root) => Ok(Entry::Dir(root.lookup(components)?)),
            Sink::Objects { store, spool } => {
                let name = components.join("/");
                let key = store.key(&name);
                if key.len() > MAX_KEY {
                    return Err(StoreError::BadPath(format!(
                        "name too long for the object store: its key would be {} bytes, at \
                         most {MAX_KEY}",
                        key.len()
                    )));
                }
                Ok(Entry::Object(Object {
                    key,
                    name,
                    store: Arc::clone(store),
                    spool: spool.spool_target(),
                }))
            }
        }
    }
}

/// A name resolved to an object: the store, the object's key, the received name, and the
/// spool its content waits in.
#[derive(Debug)]
pub struct Object {
    store: Arc<dyn ObjectStore>,
    key: String,
    name: String,
    spool: Target,
}

impl Object {
    /// The stored object's metadata; a store that cannot answer knows of no copy.
    fn meta(&self) -> Option<ObjectMeta> {
        guarded("head", || self.store.head(&self.key))
            .ok()
            .flatten()
    }
}

/// A name resolved in the sink, before anything is created for it.
#[derive(Debug)]
pub enum Entry {
    Dir(Lookup),
    Object(Object),
}

impl Entry {
    /// Whether something stands under the name and the policy forbids replacing it.
    pub fn check_existing(&self, policy: Overwrite) -> Result<(), StoreError> {
        match (self, policy) {
            (Entry::Dir(lookup), _) => lookup.check_existing(policy),
            (Entry::Object(_), Overwrite::Replace) => Ok(()),
            (Entry::Object(o), _) => match guarded("exists", || o.store.exists(&o.key))? {
                true => Err(StoreError::Exists),
                false => Ok(()),
            },
        }
    }

    /// Whether the exact content (size and digest) is already stored under the name. A local
    /// file is hashed unless `cache` knows it, within `budget`; an object's digest is the one
    /// recorded, verified, when it was stored.
    pub fn holds(&self, size: u64, digest: &[u8], cache: &DigestCache, budget: &mut u64) -> bool {
        match self {
            Entry::Dir(lookup) => lookup.holds(size, digest, cache, budget),
            Entry::Object(o) => o
                .meta()
                .is_some_and(|m| m.size == size && m.digest.is_some_and(|d| d[..] == *digest)),
        }
    }

    /// The quick check: what is stored has this size and modification time.
    pub fn quick_same(&self, size: u64, mtime: (i64, u32)) -> bool {
        match self {
            Entry::Dir(lookup) => lookup.quick_same(size, mtime),
            Entry::Object(o) => o
                .meta()
                .is_some_and(|m| m.size == size && (m.mtime_secs, m.mtime_nanos) == mtime),
        }
    }

    /// The largest file the place can take, when it has a limit of its own.
    pub fn max_size(&self) -> Option<u64> {
        match self {
            Entry::Dir(_) => None,
            Entry::Object(o) => o.store.max_object_size(),
        }
    }

    /// The old local copy a delta may be built against; objects offer none.
    pub fn existing(&self) -> Option<(File, rustix::fs::Stat)> {
        match self {
            Entry::Dir(lookup) => lookup.existing(),
            Entry::Object(_) => None,
        }
    }

    /// The device and the free bytes the file's content will take room on; `None` for an
    /// object store, where disk-space checks do not apply.
    pub fn space(&self) -> io::Result<Option<(u64, u64)>> {
        match self {
            Entry::Dir(lookup) => Ok(Some((lookup.device()?, lookup.free_bytes()?))),
            Entry::Object(_) => Ok(None),
        }
    }

    /// Gives the file its place: missing local directories are created now.
    pub fn create(self) -> Result<Place, StoreError> {
        match self {
            Entry::Dir(lookup) => Ok(Place::Dir(lookup.create()?)),
            Entry::Object(o) => Ok(Place::Object(o, None)),
        }
    }
}

/// An accepted file's place: where its temporary file is written, and where it goes once
/// verified.
#[derive(Debug)]
pub enum Place {
    Dir(Target),
    /// With the upload of a large object going up while its content arrives.
    Object(Object, Option<Box<dyn Upload>>),
}

impl Place {
    /// Where the temporary file (and kept partial data) lives.
    pub fn temp_dir(&self) -> &Target {
        match self {
            Place::Dir(t) | Place::Object(Object { spool: t, .. }, _) => t,
        }
    }

    /// The content starts arriving in `temp`: a large object starts going up now (nothing
    /// appears until [`Place::publish`]). `meta` has no digest unless the sender offered one.
    pub fn begin(
        &mut self,
        temp: &TempFile,
        meta: &ObjectMeta,
        policy: Overwrite,
    ) -> Result<(), StoreError> {
        if let Place::Object(o, upload) = self {
            let if_absent = policy == Overwrite::Refuse;
            *upload = guarded("begin", || {
                o.store.begin(&o.key, temp.file_ref(), meta, if_absent)
            })?;
        }
        Ok(())
    }

    /// The temporary file now holds `written` bytes of content (may block to pace the sender
    /// to the store).
    pub fn progress(&mut self, written: u64) -> Result<(), StoreError> {
        if let Place::Object(_, Some(u)) = self {
            guarded("progress", || u.progress(written))?;
        }
        Ok(())
    }

    /// Whether the temporary file must be made durable locally before it is published (an
    /// object store's acknowledgement is its own durability).
    pub fn is_local(&self) -> bool {
        matches!(self, Place::Dir(_))
    }

    /// Publishes the verified, durable `temp` under the name: renamed into place (the
    /// directory still needs [`Place::sync_dir`]), or uploaded with `meta`, the object appearing
    /// whole once the store acknowledged it.
    pub fn publish(
        &mut self,
        temp: TempFile,
        policy: Overwrite,
        meta: &ObjectMeta,
    ) -> Result<Stored, StoreError> {
        match self {
            Place::Dir(target) => temp.rename_into_place(target, policy),
            Place::Object(o, upload) => {
                match upload.take() {
                    Some(u) => guarded("finish", || u.finish())?,
                    None => {
                        let if_absent = policy == Overwrite::Refuse;
                        guarded("put", || {
                            o.store.put(&o.key, temp.file_ref(), meta, if_absent)
                        })?
                    }
                }
                Ok(Stored {
                    name: o.name.clone(),
                    path: PathBuf::from(o.store.url(&o.key)),
                })
            }
        }
    }

    /// Makes a rename into this place durable (nothing to do for an object).
    pub fn sync_dir(&self) -> io::Result<()> {
        match self {
            Place::Dir(t) => t.sync_dir(),
            Place::Object(..) => Ok(()),
        }
    }

    /// Whether one directory sync serves both places.
    pub fn same_dir(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Dir(a), Place::Dir(b)) => a.same_dir(b),
            _ => false,
        }
    }
}
