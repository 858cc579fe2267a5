//! Reading a bucket back for fetches: the objects under a prefix with the metadata stored at
//! upload (a listing, then a HEAD of each, several at once), and an object's content streamed
//! by one GET.

use std::sync::atomic::{AtomicBool, Ordering};

use rusty_s3::actions::ListObjectsV2;
use rusty_s3::S3Action;

use super::http::{get_stream, send, Body};
use super::{parse_meta, S3Store, SIGNED_FOR};
use crate::storage::object::{ListedObject, ObjectError, ObjectErrorKind, ObjectReader};
use crate::sync::in_parallel;

/// The keys under `prefix`, in the store's (byte) order, page by page.
fn keys(store: &S3Store, prefix: &str) -> Result<Vec<String>, ObjectError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut action = store.bucket.list_objects_v2(Some(&store.credentials));
        action.with_prefix(prefix.to_string());
        if let Some(t) = &token {
            action.with_continuation_token(t.clone());
        }
        let url = action.sign(SIGNED_FOR);
        let what = format!("listing '{prefix}'");
        let reply = send(
            &store.agent,
            &store.request("GET", url, Vec::new(), Body::Bytes(&[]), what.clone()),
        )?;
        let page = ListObjectsV2::parse_response(&reply.body).map_err(|e| ObjectError {
            kind: ObjectErrorKind::Refused,
            text: format!("{what}: unreadable answer ({e})"),
        })?;
        keys.extend(page.contents.into_iter().map(|o| o.key));
        match page.next_continuation_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    Ok(keys)
}

/// HEADs in flight at once while listing (the agent keeps as many idle connections): a
/// thousand objects cost about 63 round trips to the store rather than a thousand.
const HEADS_AT_ONCE: usize = 16;

/// Every object knsock stored under `prefix`, with its metadata (a HEAD each, up to
/// [`HEADS_AT_ONCE`] at a time: a listing does not carry user metadata). The first failure
/// stops the HEADs not yet made and is the answer.
pub(super) fn list(store: &S3Store, prefix: &str) -> Result<Vec<ListedObject>, ObjectError> {
    let failed = AtomicBool::new(false);
    let heads = in_parallel(keys(store, prefix)?, HEADS_AT_ONCE, |key| {
        if failed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let reply = store
            .head_reply(&key)
            .inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
        // A 404: removed since it was listed.
        let meta = (reply.status != 404).then(|| parse_meta(&reply)).flatten();
        Ok(meta.map(|meta| ListedObject { key, meta }))
    });
    let mut out = Vec::with_capacity(heads.len());
    for head in heads {
        out.extend(head?);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The object at `key`, its content streamed from one GET.
pub(super) fn open(store: &S3Store, key: &str) -> Result<Option<ObjectReader>, ObjectError> {
    let url = store
        .bucket
        .get_object(Some(&store.credentials), key)
        .sign(SIGNED_FOR);
    let what = format!("reading '{key}'");
    Ok(
        get_stream(&store.agent, &url, what)?.map(|(reply, body)| ObjectReader {
            meta: parse_meta(&reply),
            body: Box::new(body),
        }),
    )
}
