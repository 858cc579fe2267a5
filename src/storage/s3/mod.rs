//! An S3-compatible bucket as the receiver's object store: requests signed by `rusty-s3`, sent
//! by a blocking `ureq` agent shared by the connection threads.

mod http;
mod journal;
mod multipart;
mod read;
mod stream;

use std::fs::File;
use std::time::Duration;

use rusty_s3::{actions, Bucket, Credentials, S3Action, UrlStyle};
use url::Url;

use super::s3_config::{needs_path_style, S3Config};
use http::{send, Body, Reply, Request};

use super::object::{
    ListedObject, ObjectError, ObjectErrorKind, ObjectMeta, ObjectReader, ObjectStore, Upload,
};
use crate::error::{Error, Result};

/// How long a signed request stays valid: long enough for one slow part.
const SIGNED_FOR: Duration = Duration::from_secs(3600);

/// Objects up to this size go in one PUT; larger ones in parts of this size (or more, to stay
/// within S3's 10,000 parts).
const PART: u64 = 16 << 20;

/// Metadata header names (`x-amz-meta-` is S3's prefix for user metadata).
const META_MTIME: &str = "x-amz-meta-knsock-mtime";
const META_MODE: &str = "x-amz-meta-knsock-mode";
const META_XXH3: &str = "x-amz-meta-knsock-xxh3";

/// An S3-compatible bucket (and key prefix) that received files are stored in. Cloning it is
/// cheap (an upload in flight holds a clone).
#[derive(Clone)]
pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    agent: http::Agent,
    /// Where this receiver notes the multipart uploads it has in flight (see `journal.rs`).
    journal: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl S3Store {
    /// Opens the bucket `config` names and checks it can be reached and written to (a HEAD of
    /// the bucket), so a wrong endpoint, key or bucket fails here rather than on the first file.
    pub fn open(config: &S3Config) -> Result<S3Store> {
        config.check()?;
        let r = config.resolved()?;
        // The setters' own check (scheme and host), then what only a URL parser can tell.
        S3Config::check_endpoint(&r.endpoint)?;
        let url = Url::parse(&r.endpoint).map_err(|e| {
            Error::invalid(format!(
                "S3 endpoint {:?} is not an http(s) URL: {e}",
                r.endpoint
            ))
        })?;
        let path_style = config.path_style || needs_path_style(url.host_str().unwrap_or(""));
        let style = match path_style {
            true => UrlStyle::Path,
            false => UrlStyle::VirtualHost,
        };
        let bucket = Bucket::new(url, style, config.bucket.clone(), r.region).map_err(|e| {
            let hint = match path_style {
                true => "",
                false => " (set path_style)",
            };
            Error::invalid(format!(
                "S3 bucket {:?} at {}: {e}: the endpoint cannot take the bucket in its host name{hint}",
                config.bucket, r.endpoint
            ))
        })?;
        let credentials = match r.session_token {
            Some(t) => Credentials::new_with_token(r.access_key, r.secret_key, t),
            None => Credentials::new(r.access_key, r.secret_key),
        };
        let store = S3Store {
            bucket,
            credentials,
            prefix: r.prefix,
            agent: http::agent(roots(config)?),
            journal: None,
        };
        store.check_bucket()?;
        Ok(store)
    }

    /// Notes each multipart upload in flight in `dir` (a file per upload, locked while it
    /// runs), so a receiver that was killed aborts its own unfinished uploads when it starts
    /// again with the same directory, whatever their age. The server gives its spool.
    pub fn with_journal(mut self, dir: impl Into<std::path::PathBuf>) -> S3Store {
        self.journal = Some(dir.into());
        self
    }

    /// The unfinished multipart uploads under the prefix, as (key, start time): what an
    /// interrupted run may have left (and the start-up sweep aborts once a day old).
    pub fn unfinished_uploads(&self) -> Result<Vec<(String, String)>> {
        let found = multipart::list_uploads(self)
            .map_err(|e| Error::new(crate::ErrorKind::Store, e.text))?;
        Ok(found.into_iter().map(|(key, _, at)| (key, at)).collect())
    }

    fn check_bucket(&self) -> Result<()> {
        let url = actions::HeadBucket::new(&self.bucket, Some(&self.credentials)).sign(SIGNED_FOR);
        let what = format!("opening {}", self.describe());
        let reply = send(
            &self.agent,
            &self.request("HEAD", url, Vec::new(), Body::Bytes(&[]), what),
        )
        .map_err(|e| Error::new(crate::ErrorKind::Store, e.text))?;
        if reply.status == 404 {
            return Err(Error::new(
                crate::ErrorKind::Store,
                format!("{}: the bucket does not exist", self.describe()),
            ));
        }
        Ok(())
    }

    fn request<'a>(
        &self,
        method: &'static str,
        url: Url,
        headers: Vec<(String, String)>,
        body: Body<'a>,
        what: String,
    ) -> Request<'a> {
        Request {
            method,
            url,
            headers,
            body,
            what,
        }
    }

    fn head_reply(&self, key: &str) -> Result<Reply, ObjectError> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let what = format!("looking up '{key}'");
        send(
            &self.agent,
            &self.request("HEAD", url, Vec::new(), Body::Bytes(&[]), what),
        )
    }

    fn put_small(
        &self,
        key: &str,
        file: &File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<(), ObjectError> {
        let body = Body::File {
            file,
            start: 0,
            len: meta.size,
        };
        let mut headers = meta_headers(meta);
        headers.extend(condition(if_absent));
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        let url = sign_with(&mut action, &headers);
        let what = format!("storing '{key}'");
        send(&self.agent, &self.request("PUT", url, headers, body, what)).map(drop)
    }
}

impl ObjectStore for S3Store {
    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectError> {
        let reply = self.head_reply(key)?;
        if reply.status == 404 {
            return Ok(None);
        }
        Ok(parse_meta(&reply))
    }

    fn exists(&self, key: &str) -> Result<bool, ObjectError> {
        Ok(self.head_reply(key)?.status != 404)
    }

    fn put(
        &self,
        key: &str,
        file: &File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<(), ObjectError> {
        match self.begin(key, file, meta, if_absent)? {
            Some(mut upload) => {
                upload.progress(meta.size)?;
                upload.finish()
            }
            None => self.put_small(key, file, meta, if_absent),
        }
    }

    fn begin(
        &self,
        key: &str,
        file: &File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<Option<Box<dyn Upload>>, ObjectError> {
        if meta.size <= PART {
            return Ok(None);
        }
        let file = file.try_clone().map_err(|e| local_error(key, &e))?;
        Ok(Some(Box::new(stream::S3Upload::start(
            self.clone(),
            key,
            file,
            meta,
            if_absent,
        )?)))
    }

    fn sweep(&self, age_secs: u64) -> Result<usize, ObjectError> {
        let own = match &self.journal {
            Some(dir) => journal::sweep(self, dir),
            None => 0,
        };
        Ok(own + multipart::sweep(self, age_secs)?)
    }

    /// S3's limit: 5 TiB (10,000 parts of at most 5 GiB).
    fn max_object_size(&self) -> Option<u64> {
        Some(5 << 40)
    }

    fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.bucket.name(),
            self.prefix,
            self.bucket.base_url()
        )
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name())
    }

    fn requests(&self) -> (u64, u64) {
        self.agent.counts()
    }

    fn readable(&self) -> bool {
        true
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, ObjectError> {
        read::list(self, prefix)
    }

    fn open(&self, key: &str) -> Result<Option<ObjectReader>, ObjectError> {
        read::open(self, key)
    }
}

/// The trust roots for an `https` endpoint: the CA file if one is given, else the system's.
fn roots(config: &S3Config) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let ders: Vec<Vec<u8>> = match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
            let certs: Vec<Vec<u8>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.der().to_vec()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(Error::invalid(format!(
                    "{}: no certificate in this PEM file",
                    path.display()
                )));
            }
            certs
        }
        None => rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .map(|c| c.to_vec())
            .collect(),
    };
    Ok(ders
        .iter()
        .map(|d| ureq::tls::Certificate::from_der(d).to_owned())
        .collect())
}

/// Signs `action` with `headers` among the signed ones (they must then be sent as they are).
fn sign_with<'a>(action: &mut impl S3Action<'a>, headers: &[(String, String)]) -> Url {
    for (k, v) in headers {
        action.headers_mut().insert(k.clone(), v.clone());
    }
    action.sign(SIGNED_FOR)
}

/// The header of a conditional write that keeps an object already there (S3 answers 412).
fn condition(if_absent: bool) -> Option<(String, String)> {
    if_absent.then(|| ("if-none-match".to_string(), "*".to_string()))
}

fn meta_headers(meta: &ObjectMeta) -> Vec<(String, String)> {
    let mut headers = vec![
        (
            META_MTIME.to_string(),
            format!("{}.{:09}", meta.mtime_secs, meta.mtime_nanos),
        ),
        (META_MODE.to_string(), format!("{:o}", meta.mode)),
    ];
    if let Some(d) = meta.digest {
        headers.push((
            META_XXH3.to_string(),
            format!("{:032x}", u128::from_be_bytes(d)),
        ));
    }
    headers
}

/// The metadata of a HEAD answer; `None` for an object knsock did not write.
fn parse_meta(reply: &Reply) -> Option<ObjectMeta> {
    let size = reply.header("content-length")?.parse().ok()?;
    let (secs, nanos) = reply.header(META_MTIME)?.split_once('.')?;
    let digest = match reply.header(META_XXH3) {
        Some(hex) => Some(u128::from_str_radix(hex, 16).ok()?.to_be_bytes()),
        None => None,
    };
    Some(ObjectMeta {
        size,
        mtime_secs: secs.parse().ok()?,
        mtime_nanos: nanos.parse().ok()?,
        mode: u32::from_str_radix(reply.header(META_MODE)?, 8).ok()?,
        digest,
    })
}

/// A failure to read the receiver's own spooled copy.
fn local_error(key: &str, e: &std::io::Error) -> ObjectError {
    ObjectError {
        kind: ObjectErrorKind::Refused,
        text: format!("reading the received content of '{key}': {e}"),
    }
}
