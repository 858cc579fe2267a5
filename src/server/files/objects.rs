//! What a fetch lists from an object store (the requested names as keys beneath the identity's
//! prefix, a "directory" as the keys under `name/`), and where a listed file's content is read
//! back from: the directory or the store.

use std::io::Read;

use super::listing::{reopen, Filters, Item};
use crate::protocol::{
    check_name, Code, FetchRequest, Offer, FETCH_DIGESTS, FETCH_MAX_FILES, FETCH_RECURSIVE,
};
use crate::storage::Root;
use crate::storage::{guarded, ObjectError, ObjectMeta, ObjectStore};
use crate::sync::in_parallel;

/// Where the listed files are read from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// The local directory; an item's path is beneath it.
    Dir(&'a Root),
    /// The object store; an item's path is its full key.
    Objects(&'a dyn ObjectStore),
}

impl Source<'_> {
    /// Whether reading `offer`'s content may block for long (off the event loop then).
    pub(crate) fn slow(&self, offer: &Offer) -> bool {
        match self {
            Source::Dir(_) => offer.size > crate::protocol::EAGER_MAX,
            Source::Objects(_) => true,
        }
    }

    /// The content of the listed file at `path`, from its first byte, when it is still the
    /// file that was listed (size and modification time); the code and why otherwise.
    pub(crate) fn reopen(
        &self,
        path: &str,
        listed: &Offer,
    ) -> Result<Box<dyn Read + Send>, (Code, String)> {
        let store = match self {
            Source::Dir(root) => {
                let file = reopen(root, path, listed).map_err(|why| (Code::Changed, why))?;
                return Ok(Box::new(file));
            }
            Source::Objects(store) => store,
        };
        let name = &listed.name;
        let found = guarded("open", || store.open(path))
            .map_err(|e| (store_code(&e), format!("'{name}': {e}")))?;
        let gone = || {
            (
                Code::Changed,
                format!("'{name}' vanished since it was listed"),
            )
        };
        let reader = found.ok_or_else(gone)?;
        let same = reader.meta.as_ref().is_some_and(|m| {
            m.size == listed.size && (m.mtime_secs, m.mtime_nanos) == mtime(listed)
        });
        match same {
            true => Ok(reader.body),
            false => Err((
                Code::Changed,
                format!("'{name}' changed since it was listed"),
            )),
        }
    }
}

/// Wanted objects read ahead at once, whole, while serving a fetch from a store: a restore of
/// many small objects then waits for about one round trip to the store per this many objects
/// rather than one per object.
pub(crate) const READ_AHEAD: usize = 16;
/// The largest object read ahead whole; a larger one is streamed when its turn comes. With
/// [`READ_AHEAD`], at most 16 MiB per connection, taken from the work memory.
pub(crate) const READ_AHEAD_MAX: u64 = 1 << 20;

/// What a wanted file read ahead holds: its content, or the code and why it cannot be sent.
pub(crate) type ReadAhead = Result<Vec<u8>, (Code, String)>;

impl Source<'_> {
    /// The content of each of `files` (a path as listed, and its offer), each read whole after
    /// the checks of [`Source::reopen`], up to [`READ_AHEAD`] at once; in their order.
    pub(crate) fn read_whole(&self, files: Vec<(&str, &Offer)>) -> Vec<ReadAhead> {
        in_parallel(files, READ_AHEAD, |(path, listed)| {
            let mut body = self.reopen(path, listed)?;
            let mut bytes = Vec::with_capacity(listed.size as usize);
            let name = &listed.name;
            match body.by_ref().take(listed.size).read_to_end(&mut bytes) {
                Ok(n) if n as u64 == listed.size => Ok(bytes),
                Ok(n) => Err((
                    Code::StoreUnavailable,
                    format!("'{name}': the store gave {n} of its {} bytes", listed.size),
                )),
                Err(e) => Err((Code::StoreUnavailable, format!("reading '{name}': {e}"))),
            }
        })
    }
}

fn mtime(o: &Offer) -> (i64, u32) {
    (o.mtime_secs, o.mtime_nanos)
}

/// The code a store's failure is told with.
fn store_code(e: &ObjectError) -> Code {
    match e.is_temporary() {
        true => Code::StoreUnavailable,
        false => Code::StoreRefused,
    }
}

/// Lists what `req` asks for in `store`, beneath `base` (the identity's directory, or
/// everything). `Err` only for a filter that does not parse.
pub(crate) fn list_objects(
    store: &dyn ObjectStore,
    base: Option<&str>,
    req: &FetchRequest,
) -> Result<Vec<Item>, String> {
    let filters = Filters::new(req)?;
    let mut out = Vec::new();
    let mut files = 0u32;
    for (i, name) in req.names.iter().enumerate() {
        let mut found = Vec::new();
        match list_name(store, base, name, req, &filters, &mut found) {
            Ok(()) => {
                for (offer, key) in found {
                    if files >= FETCH_MAX_FILES {
                        let why = format!("more than {FETCH_MAX_FILES} files to fetch");
                        out.push(Item::Missing(i as u16, Code::Io, why));
                        break;
                    }
                    files += 1;
                    out.push(Item::File(offer, key));
                }
            }
            Err((code, why)) => out.push(Item::Missing(i as u16, code, why)),
        }
    }
    Ok(out)
}

/// Resolves one requested name: the object of that name, else the objects under `name/` (with
/// recursion).
fn list_name(
    store: &dyn ObjectStore,
    base: Option<&str>,
    name: &str,
    req: &FetchRequest,
    filters: &Filters,
    out: &mut Vec<(Offer, String)>,
) -> Result<(), (Code, String)> {
    let bad = |why: &str| (Code::BadName, format!("'{name}': {why}"));
    check_name(name).map_err(|why| bad(&why.to_string()))?;
    let full = match base {
        Some(dir) => format!("{dir}/{name}"),
        None => name.to_string(),
    };
    check_name(&full).map_err(|why| bad(&why.to_string()))?;
    let key = store.key(&full);
    let failed = |e: ObjectError| (store_code(&e), format!("'{name}': {e}"));
    let digests = req.flags & FETCH_DIGESTS != 0;
    if let Some(meta) = guarded("head", || store.head(&key)).map_err(failed)? {
        if filters.wanted(name) {
            out.push((offer(name, &meta, digests), key));
        }
        return Ok(());
    }
    let dir = format!("{key}/");
    let under = guarded("list", || store.list(&dir)).map_err(failed)?;
    if under.is_empty() {
        return Err((Code::NoSuchFile, format!("no such file: '{name}'")));
    }
    if req.flags & FETCH_RECURSIVE == 0 {
        let why = format!("'{name}' is a directory (fetch it with recursion)");
        return Err((Code::BadName, why));
    }
    for obj in under {
        let Some(rest) = obj.key.strip_prefix(&dir) else {
            continue;
        };
        let (sub, sub_full) = (format!("{name}/{rest}"), format!("{full}/{rest}"));
        // Keys the name rules refuse are left out, as a walk leaves such files out.
        if check_name(&sub_full).is_ok() && filters.wanted(&sub) {
            out.push((offer(&sub, &obj.meta, digests), obj.key));
        }
    }
    Ok(())
}

/// A listed object as the client is offered it; the digest recorded at upload when the client
/// asked for digests (one missing is computed from the content later).
fn offer(name: &str, meta: &ObjectMeta, digests: bool) -> Offer {
    let digest = match (digests, meta.digest) {
        (true, Some(d)) => d.to_vec(),
        _ => Vec::new(),
    };
    Offer {
        mtime_secs: meta.mtime_secs,
        mtime_nanos: meta.mtime_nanos,
        mode: meta.mode & 0o7777,
        digest,
        ..Offer::new(name, meta.size)
    }
}
