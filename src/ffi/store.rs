//! `knsock_server_config_set_store`: received files go into the embedding program's own
//! storage through a vtable of callbacks (begin, write, commit, abort, and an optional stat),
//! the C form of the Rust `ObjectStore` trait. The library still verifies everything: a file
//! is begun only once its content matched its digest and the post-data validators accepted it.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::convert::{to_cstring, UserData};
use super::server_config::{knsock_server_config, set};
use super::types::{knsock_result, KNSOCK_REASON_MAX};
use crate::{Error, ObjectError, ObjectErrorKind, ObjectMeta, ObjectStore};

/// A store callback's success. For `stat`: the object exists and `*object` was filled.
pub const KNSOCK_STORE_OK: c_int = 0;
/// A store callback's failure that may pass (the sender is told code 15, "store failed for
/// now", and may retry). Any value other than the ones named here means the same.
pub const KNSOCK_STORE_FAILED: c_int = 1;
/// A store callback's refusal for good (the sender is told code 16, "store refused").
pub const KNSOCK_STORE_REFUSED: c_int = 2;
/// What `stat` returns when no object is stored under the name.
pub const KNSOCK_STORE_NOT_FOUND: c_int = 3;

/// An object as the store sees it: what `begin` is told of a verified file, and what `stat`
/// fills in.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct knsock_store_object {
    /// The content's size in bytes.
    pub size: u64,
    /// The sender's modification time: seconds since the Unix epoch…
    pub mtime_secs: i64,
    /// …and nanoseconds (below 1,000,000,000).
    pub mtime_nanos: u32,
    /// Permission bits, within the server's mode mask.
    pub mode: u32,
    /// Whether `digest` holds the content's XXH3-128 (big-endian, as on the wire). `begin` is
    /// always given it; `stat` sets it when it knows it, so skip-unchanged by checksum works.
    pub has_digest: bool,
    /// The XXH3-128 of the content, when `has_digest`.
    pub digest: [u8; 16],
}

/// The callbacks of a store (`knsock_server_config_set_store()`). Every callback gets the
/// `userdata` given with the vtable, and `reason`, a zeroed buffer of `KNSOCK_REASON_MAX` bytes
/// where a failing callback may write a NUL-terminated UTF-8 reason for the sender. They run on
/// the server's threads, several at once for different files: they must be thread-safe. One
/// file's calls come from one thread, in order: `begin`, `write`s, then `commit`; `abort`
/// instead of (or after a failed) `commit`. They may block; they must not call the server back.
///
/// A file reaches the store only verified: its digest matched and the post-data validators
/// accepted it. The sender's OK comes once `commit` returned `KNSOCK_STORE_OK`; any failure
/// makes its verdict FAILED with the reason. Resume keeps partial data in the spool directory,
/// never in the store; delta transfer does not apply (there is no old copy to read); the
/// overwrite policy "refuse" asks `stat` first.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct knsock_store_vtable {
    /// Starts storing the object `name` (a checked relative name, `/`-separated, valid during
    /// the call) described by `object`; sets `*handle` to anything the store needs to know it
    /// by. Returns `KNSOCK_STORE_OK`, or a failure (then neither `write` nor `abort` follow).
    pub begin: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            name: *const c_char,
            object: *const knsock_store_object,
            handle: *mut *mut c_void,
            reason: *mut c_char,
        ) -> c_int,
    >,
    /// The next `length` bytes of the object (`bytes` valid during the call). Returns
    /// `KNSOCK_STORE_OK`, or a failure: `abort` follows.
    pub write: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            handle: *mut c_void,
            bytes: *const u8,
            length: usize,
            reason: *mut c_char,
        ) -> c_int,
    >,
    /// The object is complete: make it appear whole and durable. Returns `KNSOCK_STORE_OK`, or
    /// a failure: `abort` follows.
    pub commit: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            handle: *mut c_void,
            reason: *mut c_char,
        ) -> c_int,
    >,
    /// Drops what was begun: nothing of it may appear. The handle is not used again.
    pub abort: Option<unsafe extern "C" fn(userdata: *mut c_void, handle: *mut c_void)>,
    /// Optional (NULL: the store knows of no object, so nothing is skipped as unchanged and
    /// the overwrite policy "refuse" never refuses): fills `*object` and returns
    /// `KNSOCK_STORE_OK` when an object is stored under `name`, `KNSOCK_STORE_NOT_FOUND` when
    /// none is, or a failure.
    pub stat: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            name: *const c_char,
            object: *mut knsock_store_object,
            reason: *mut c_char,
        ) -> c_int,
    >,
    /// Optional: called with `userdata` once the store is no longer used (the config and every
    /// server started from it freed), to release it.
    pub free_userdata: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

/// Received files go into the store `vtable` describes (copied; `begin`, `write`, `commit`
/// and `abort` are required) instead of the directory, which then only spools content on its
/// way there (and keeps resumable partial uploads). `userdata` is passed to every callback and
/// to `free_userdata`. Replaces an S3 bucket set before; `knsock_server_config_set_s3()`
/// afterwards replaces this store. Disk-space checks do not apply; the maximum file size does.
/// The keep-both overwrite policy is refused at start.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_store(
    config: *mut knsock_server_config,
    vtable: *const knsock_store_vtable,
    userdata: *mut c_void,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: `vtable` is NULL or points to a vtable.
        let v = *unsafe { vtable.as_ref() }.ok_or_else(|| Error::invalid("vtable is NULL"))?;
        if v.begin.is_none() || v.write.is_none() || v.commit.is_none() || v.abort.is_none() {
            return Err(Error::invalid(
                "a store needs begin, write, commit and abort callbacks",
            ));
        }
        c.inner.s3 = None;
        c.inner.object_store(Arc::new(CStore {
            v,
            userdata: UserData(userdata),
        }));
        Ok(())
    })
}

/// The vtable as an `ObjectStore`.
struct CStore {
    v: knsock_store_vtable,
    userdata: UserData,
}

impl std::fmt::Debug for CStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the embedding program's store")
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        if let Some(free) = self.v.free_userdata {
            // SAFETY: registered with this userdata; called once, as the header says.
            unsafe { free(self.userdata.ptr()) }
        }
    }
}

/// A callback's failure with the reason it wrote.
fn failure(code: c_int, reason: &[c_char], what: &str) -> ObjectError {
    // SAFETY: the buffer ends with a NUL the callback cannot overwrite (see `reason_buf`).
    let text = unsafe { CStr::from_ptr(reason.as_ptr()) }.to_string_lossy();
    let text = match text.is_empty() {
        true => format!("the store's {what} failed"),
        false => format!("the store's {what} failed: {text}"),
    };
    match code {
        KNSOCK_STORE_REFUSED => ObjectError::refused(text),
        _ => ObjectError::temporary(text),
    }
}

/// A zeroed reason buffer; the callback is told it is one byte shorter, so the last NUL stays.
fn reason_buf() -> Vec<c_char> {
    vec![0; KNSOCK_REASON_MAX + 1]
}

impl CStore {
    fn stat(&self, key: &str) -> Result<Option<knsock_store_object>, ObjectError> {
        let Some(stat) = self.v.stat else {
            return Ok(None);
        };
        let (name, mut reason) = (to_cstring(key), reason_buf());
        let mut o = knsock_store_object {
            size: 0,
            mtime_secs: 0,
            mtime_nanos: 0,
            mode: 0,
            has_digest: false,
            digest: [0; 16],
        };
        // SAFETY: registered with this userdata; every pointer is valid during the call.
        let code = unsafe {
            stat(
                self.userdata.ptr(),
                name.as_ptr(),
                &mut o,
                reason.as_mut_ptr(),
            )
        };
        match code {
            KNSOCK_STORE_OK => Ok(Some(o)),
            KNSOCK_STORE_NOT_FOUND => Ok(None),
            code => Err(failure(code, &reason, "stat")),
        }
    }

    /// `write` for each piece of the spooled file, then `commit`.
    fn fill(&self, handle: *mut c_void, file: &File, size: u64) -> Result<(), ObjectError> {
        let (write, commit) = (
            self.v.write.expect("checked"),
            self.v.commit.expect("checked"),
        );
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = 0u64;
        while at < size {
            let want = buf.len().min((size - at) as usize);
            let n = file
                .read_at(&mut buf[..want], at)
                .map_err(|e| ObjectError::temporary(format!("reading the spool: {e}")))?;
            if n == 0 {
                return Err(ObjectError::temporary("the spooled file shrank"));
            }
            let mut reason = reason_buf();
            // SAFETY: registered with this userdata; `buf[..n]` and `reason` are valid.
            let code = unsafe {
                write(
                    self.userdata.ptr(),
                    handle,
                    buf.as_ptr(),
                    n,
                    reason.as_mut_ptr(),
                )
            };
            if code != KNSOCK_STORE_OK {
                return Err(failure(code, &reason, "write"));
            }
            at += n as u64;
        }
        let mut reason = reason_buf();
        // SAFETY: registered with this userdata; `reason` is valid.
        match unsafe { commit(self.userdata.ptr(), handle, reason.as_mut_ptr()) } {
            KNSOCK_STORE_OK => Ok(()),
            code => Err(failure(code, &reason, "commit")),
        }
    }
}

impl ObjectStore for CStore {
    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectError> {
        Ok(self.stat(key)?.map(|o| ObjectMeta {
            size: o.size,
            mtime_secs: o.mtime_secs,
            mtime_nanos: o.mtime_nanos,
            mode: o.mode,
            digest: o.has_digest.then_some(o.digest),
        }))
    }

    fn exists(&self, key: &str) -> Result<bool, ObjectError> {
        Ok(self.stat(key)?.is_some())
    }

    fn put(
        &self,
        key: &str,
        file: &File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<(), ObjectError> {
        if if_absent && self.exists(key)? {
            return Err(ObjectError {
                kind: ObjectErrorKind::Exists,
                text: "a file with that name exists".into(),
            });
        }
        let (name, object) = (to_cstring(key), knsock_store_object::from(meta));
        let (mut handle, mut reason) = (std::ptr::null_mut(), reason_buf());
        let begin = self.v.begin.expect("checked at set");
        // SAFETY: registered with this userdata; every pointer is valid during the call.
        let code = unsafe {
            begin(
                self.userdata.ptr(),
                name.as_ptr(),
                &object,
                &mut handle,
                reason.as_mut_ptr(),
            )
        };
        if code != KNSOCK_STORE_OK {
            return Err(failure(code, &reason, "begin"));
        }
        let filled = self.fill(handle, file, meta.size);
        if filled.is_err() {
            let abort = self.v.abort.expect("checked at set");
            // SAFETY: registered with this userdata; the handle `begin` gave, not used again.
            unsafe { abort(self.userdata.ptr(), handle) };
        }
        filled
    }

    // `begin`, `sweep` and `key` as the trait does: a file goes up whole, once verified.

    fn describe(&self) -> String {
        "the embedding program's store".into()
    }

    fn url(&self, key: &str) -> String {
        key.to_string()
    }
}

impl From<&ObjectMeta> for knsock_store_object {
    fn from(m: &ObjectMeta) -> Self {
        knsock_store_object {
            size: m.size,
            mtime_secs: m.mtime_secs,
            mtime_nanos: m.mtime_nanos,
            mode: m.mode,
            has_digest: m.digest.is_some(),
            digest: m.digest.unwrap_or_default(),
        }
    }
}
