//! The object-store setters of `knsock_server_config`: received files go to an S3-compatible
//! bucket instead of the directory, which then only spools content on its way there.
//!
//! `knsock_server_config_set_s3()` comes first; the others adjust what it set (called before it,
//! they fail with `KNSOCK_RESULT_INVALID_ARGUMENT`). Anything left unset comes from the standard
//! environment when the server starts: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. `knsock_server_start()` opens the bucket (one
//! HEAD request): an unreachable store, a missing bucket or refused keys fail it with
//! `KNSOCK_RESULT_STORE` and the store's reason. A library built without the `s3` feature fails
//! the start with `KNSOCK_RESULT_INVALID_ARGUMENT`.

use std::ffi::c_char;

use super::convert::{arg_path, arg_str};
use super::server_config::{knsock_server_config, set};
use super::types::knsock_result;
use crate::{Error, Result};

/// Stores received files in the bucket `url` names: `s3://BUCKET` or `s3://BUCKET/PREFIX`
/// (copied). A file appears there only whole and verified (large files as a multipart upload,
/// completed only after the checksum and the post-data validators pass, and aborted
/// otherwise), with its mtime and mode as object metadata, and its XXH3 digest (for a file
/// above 16 MiB only when its sender offered it: skip-unchanged with checksums), so
/// skip-unchanged works against the bucket; the sender's OK comes once the store acknowledged
/// it. Disk-space checks do not apply; the maximum file size does. The keep-both overwrite
/// policy is refused at start.
/// Called again, it starts over: what the other `knsock_server_config_set_s3_*()` set is dropped.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_s3(
    config: *mut knsock_server_config,
    url: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let url = unsafe { arg_str(url, "S3 URL") }?;
        s3_url(c, url)
    })
}

/// The store's endpoint, `http(s)://host[:port]` (copied), and whether it wants path-style
/// URLs (`ENDPOINT/BUCKET/KEY`, as MinIO and SeaweedFS do) rather than `BUCKET.ENDPOINT/KEY`.
/// Default: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, else AWS's regional endpoint;
/// virtual-hosted URLs.
/// Call it after `knsock_server_config_set_s3()`: before, it fails with
/// `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_s3_endpoint(
    config: *mut knsock_server_config,
    endpoint: *const c_char,
    path_style: bool,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let endpoint = unsafe { arg_str(endpoint, "S3 endpoint") }?.to_string();
        crate::S3Config::check_endpoint(&endpoint)?;
        s3_adjust(c, |s| {
            s.endpoint = Some(endpoint);
            s.path_style = path_style;
        })
    })
}

/// The region requests are signed for (copied), e.g. "us-east-1". Default: `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, else `us-east-1`.
/// Call it after `knsock_server_config_set_s3()`: before, it fails with
/// `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_s3_region(
    config: *mut knsock_server_config,
    region: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let region = non_empty(unsafe { arg_str(region, "S3 region") }?, "S3 region")?;
        s3_adjust(c, |s| s.region = Some(region))
    })
}

/// The keys requests are signed with (copied); `session_token` may be NULL. Prefer the
/// environment where the process has one (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, read at start): keys in a program's memory outlive their use.
/// Call it after `knsock_server_config_set_s3()`: before, it fails with
/// `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_s3_credentials(
    config: *mut knsock_server_config,
    access_key: *const c_char,
    secret_key: *const c_char,
    session_token: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let (access, secret, token) = unsafe {
            (
                non_empty(arg_str(access_key, "S3 access key")?, "S3 access key")?,
                non_empty(arg_str(secret_key, "S3 secret key")?, "S3 secret key")?,
                match session_token.is_null() {
                    true => None,
                    false => Some(arg_str(session_token, "S3 session token")?.to_string()),
                },
            )
        };
        s3_adjust(c, |s| {
            s.access_key = Some(access);
            s.secret_key = Some(secret);
            s.session_token = token;
        })
    })
}

/// Trusts the CA certificates of this PEM file (path copied; read at start) for an `https`
/// endpoint, instead of the system's trust store.
/// Call it after `knsock_server_config_set_s3()`: before, it fails with
/// `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_s3_ca_file(
    config: *mut knsock_server_config,
    path: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let path = unsafe { arg_path(path, "S3 CA file") }?;
        s3_adjust(c, |s| s.ca_file = Some(path))
    })
}

/// A setting that must not be empty (the start would fail on it, or sign with nothing).
fn non_empty(value: &str, what: &str) -> Result<String> {
    match value.is_empty() {
        true => Err(Error::invalid(format!("{what} is empty"))),
        false => Ok(value.to_string()),
    }
}

fn s3_url(c: &mut knsock_server_config, url: &str) -> Result<()> {
    c.inner.s3(crate::S3Config::from_url(url)?);
    // A store set with knsock_server_config_set_store() before is replaced.
    c.inner.objects = None;
    Ok(())
}

fn s3_adjust(c: &mut knsock_server_config, f: impl FnOnce(&mut crate::S3Config)) -> Result<()> {
    let s3 = c.inner.s3_config_mut().ok_or_else(|| {
        Error::invalid("no S3 bucket set: call knsock_server_config_set_s3() first")
    })?;
    f(s3);
    Ok(())
}
