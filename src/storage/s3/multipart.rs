//! The multipart requests (start, a part, complete, abort), and the sweep of uploads an
//! interrupted run left behind. `stream.rs` drives them for one object.

use std::fs::File;
use std::time::Duration;

use jiff::Timestamp;
use rusty_s3::actions::CreateMultipartUpload;
use rusty_s3::{Map, Method, S3Action};
use url::Url;

use super::http::{blocks, send, tag, Body};
use super::{condition, meta_headers, sign_with, S3Store, PART, SIGNED_FOR};
use crate::storage::object::{ObjectError, ObjectErrorKind, ObjectMeta, ObjectStore};

/// Starts a multipart upload with `meta` as the object's metadata; returns its id.
pub(super) fn create(store: &S3Store, key: &str, meta: &ObjectMeta) -> Result<String, ObjectError> {
    let headers = meta_headers(meta);
    let mut action = store
        .bucket
        .create_multipart_upload(Some(&store.credentials), key);
    let url = sign_with(&mut action, &headers);
    let what = format!("starting the upload of '{key}'");
    let reply = send(
        &store.agent,
        &store.request("POST", url, headers, Body::Bytes(&[]), what),
    )?;
    CreateMultipartUpload::parse_response(&reply.body)
        .map(|r| r.upload_id().to_string())
        .map_err(|e| ObjectError {
            kind: ObjectErrorKind::Refused,
            text: format!("starting the upload of '{key}': unreadable answer ({e})"),
        })
}

/// The part size for `size` bytes: at least `PART`, and large enough for S3's 10,000 parts.
pub(super) fn part_size(size: u64) -> u64 {
    PART.max(size.div_ceil(10_000))
}

/// Uploads part `index` (`len` bytes of `file` from `start`); returns its ETag.
pub(super) fn upload_part(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    file: &File,
    index: usize,
    start: u64,
    len: u64,
) -> Result<String, ObjectError> {
    let body = Body::File { file, start, len };
    let number = u16::try_from(index + 1).unwrap_or(u16::MAX);
    let url = store
        .bucket
        .upload_part(Some(&store.credentials), key, number, upload_id)
        .sign(SIGNED_FOR);
    let what = format!("storing part {number} of '{key}'");
    let reply = send(
        &store.agent,
        &store.request("PUT", url, Vec::new(), body, what.clone()),
    )?;
    reply
        .header("etag")
        .map(str::to_string)
        .ok_or_else(|| ObjectError {
            kind: ObjectErrorKind::Temporary,
            text: format!("{what}: the store gave no ETag"),
        })
}

/// Completes the upload from its parts' ETags, in order.
pub(super) fn complete(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    etags: &[String],
    if_absent: bool,
) -> Result<(), ObjectError> {
    let mut action = store.bucket.complete_multipart_upload(
        Some(&store.credentials),
        key,
        upload_id,
        etags.iter().map(String::as_str),
    );
    let headers: Vec<(String, String)> = condition(if_absent).into_iter().collect();
    let url = sign_with(&mut action, &headers);
    let body = action.body();
    let what = format!("completing the upload of '{key}'");
    let reply = send(
        &store.agent,
        &store.request(
            "POST",
            url,
            headers,
            Body::Bytes(body.as_bytes()),
            what.clone(),
        ),
    )?;
    // S3 may answer 200 and still report a failure in the body.
    match tag(&reply.body, "Code") {
        Some(code) if reply.body.contains("<Error>") => Err(ObjectError {
            kind: match code.as_str() {
                "InternalError" | "SlowDown" => ObjectErrorKind::Temporary,
                "PreconditionFailed" => ObjectErrorKind::Exists,
                _ => ObjectErrorKind::Refused,
            },
            text: format!("{what}: {code}"),
        }),
        _ => Ok(()),
    }
}

/// Best effort: a failed abort leaves the upload to [`sweep`] (or the bucket's lifecycle rule).
pub(super) fn abort(store: &S3Store, key: &str, upload_id: &str) {
    let url = store
        .bucket
        .abort_multipart_upload(Some(&store.credentials), key, upload_id)
        .sign(SIGNED_FOR);
    let what = format!("aborting the upload of '{key}'");
    let _ = send(
        &store.agent,
        &store.request("DELETE", url, Vec::new(), Body::Bytes(&[]), what),
    );
}

/// Aborts the unfinished multipart uploads under the prefix that started more than `age_secs`
/// ago (younger ones may belong to another receiver sharing the bucket).
pub(super) fn sweep(store: &S3Store, age_secs: u64) -> Result<usize, ObjectError> {
    let found = list_uploads(store)?;
    let now = Timestamp::now();
    let mut aborted = 0;
    for (key, upload_id, initiated) in found {
        let old = initiated
            .parse::<Timestamp>()
            .map(|t| now.duration_since(t).as_secs() >= age_secs as i64)
            .unwrap_or(false);
        if old {
            abort(store, &key, &upload_id);
            aborted += 1;
        }
    }
    Ok(aborted)
}

/// The unfinished multipart uploads under the prefix: key, upload id, start time.
pub(super) fn list_uploads(store: &S3Store) -> Result<Vec<(String, String, String)>, ObjectError> {
    let mut action = ListUploads {
        store,
        query: Map::new(),
        headers: Map::new(),
    };
    action.query.insert("uploads", "");
    action.query.insert("prefix", store.prefix.clone());
    let url = action.sign(SIGNED_FOR);
    let what = format!("listing unfinished uploads in {}", store.describe());
    let reply = send(
        &store.agent,
        &store.request("GET", url, Vec::new(), Body::Bytes(&[]), what),
    )?;
    Ok(blocks(&reply.body, "Upload")
        .into_iter()
        .filter_map(|b| Some((tag(b, "Key")?, tag(b, "UploadId")?, tag(b, "Initiated")?)))
        .collect())
}

/// `ListMultipartUploads`, which rusty-s3 has no action for: `GET /?uploads` on the bucket.
struct ListUploads<'a> {
    store: &'a S3Store,
    query: Map<'a>,
    headers: Map<'a>,
}

impl<'a> S3Action<'a> for ListUploads<'a> {
    const METHOD: Method = Method::Get;

    fn query_mut(&mut self) -> &mut Map<'a> {
        &mut self.query
    }

    fn headers_mut(&mut self) -> &mut Map<'a> {
        &mut self.headers
    }

    fn sign_with_time(&self, expires_in: Duration, time: &Timestamp) -> Url {
        let b = &self.store.bucket;
        let c = &self.store.credentials;
        rusty_s3::signing::sign(
            time,
            Self::METHOD,
            b.object_url(""),
            c.key(),
            c.secret(),
            c.token(),
            b.region(),
            expires_in.as_secs(),
            self.query.iter(),
            self.headers.iter(),
        )
    }
}
