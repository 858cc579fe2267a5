//! Where an S3-compatible bucket is and how to sign for it: from options, an `s3://` URL, and
//! the standard `AWS_*` environment variables.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// How to reach an S3-compatible bucket. Fields left `None` come from the standard environment
/// (`AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) when the store is opened.
#[derive(Clone, Default)]
pub struct S3Config {
    /// `http(s)://host[:port]`; default `AWS_ENDPOINT_URL`, else AWS's regional endpoint.
    pub endpoint: Option<String>,
    /// Default `AWS_REGION`, `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// The bucket's name (3 to 63 of `a-z`, `0-9`, `.`, `-`).
    pub bucket: String,
    /// Prepended to every received name (a `/` is added when missing).
    pub prefix: String,
    /// Default `AWS_ACCESS_KEY_ID`.
    pub access_key: Option<String>,
    /// Default `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Option<String>,
    /// Default `AWS_SESSION_TOKEN` (temporary credentials only).
    pub session_token: Option<String>,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key` (MinIO, SeaweedFS, most
    /// self-hosted stores need it). Used whatever this says when the endpoint's host is an IP
    /// address or `localhost`, as the AWS SDKs do: no bucket can be a subdomain of those.
    pub path_style: bool,
    /// PEM file of CA certificates to trust for an `https` endpoint, instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<hidden>"))
            .field("path_style", &self.path_style)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl S3Config {
    /// `s3://bucket` or `s3://bucket/prefix`; everything else from the environment.
    pub fn from_url(url: &str) -> Result<S3Config> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| Error::invalid(format!("{url:?} is not an s3://bucket/prefix URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let config = S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            ..S3Config::default()
        };
        config.check()?;
        Ok(config)
    }

    /// The bucket and prefix must be usable as they are, before anything is asked of the store.
    pub fn check(&self) -> Result<()> {
        let b = &self.bucket;
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c);
        if b.len() < 3 || b.len() > 63 || !b.chars().all(ok_char) {
            return Err(Error::invalid(format!(
                "bucket name {b:?}: 3 to 63 characters of a-z, 0-9, '.' and '-'"
            )));
        }
        if self.prefix.starts_with('/') || self.prefix.split('/').any(|p| p == "..") {
            return Err(Error::invalid(format!(
                "key prefix {:?} must not start with '/' or hold '..'",
                self.prefix
            )));
        }
        Ok(())
    }

    /// An endpoint must be `http(s)://HOST[:PORT]` with a host; checked when it is set and
    /// again when the store opens (an endpoint from the environment is checked only then).
    pub fn check_endpoint(endpoint: &str) -> Result<()> {
        let rest = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"));
        match rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or("")) {
            Some(host) if !host.is_empty() && !host.starts_with(':') => Ok(()),
            _ => Err(Error::invalid(format!(
                "S3 endpoint {endpoint:?} is not an http(s) URL"
            ))),
        }
    }

    /// The options completed from the environment: what the store is opened with.
    #[cfg(feature = "s3")]
    pub(crate) fn resolved(&self) -> Result<Resolved> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let region = self
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let missing = |what: &str, var: &str| {
            Error::invalid(format!("no S3 {what}: set it in the options or in {var}"))
        };
        let access_key = self
            .access_key
            .clone()
            .or_else(|| env("AWS_ACCESS_KEY_ID"))
            .ok_or_else(|| missing("access key", "AWS_ACCESS_KEY_ID"))?;
        let secret_key = self
            .secret_key
            .clone()
            .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
            .ok_or_else(|| missing("secret key", "AWS_SECRET_ACCESS_KEY"))?;
        let mut prefix = self.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Resolved {
            endpoint,
            region,
            access_key,
            secret_key,
            session_token: self
                .session_token
                .clone()
                .or_else(|| env("AWS_SESSION_TOKEN")),
            prefix,
        })
    }
}

/// The options with every default filled in.
#[cfg(feature = "s3")]
pub(crate) struct Resolved {
    pub(crate) endpoint: String,
    pub(crate) region: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) session_token: Option<String>,
    pub(crate) prefix: String,
}

/// Whether an endpoint host (as a URL gives it: IPv6 in brackets) can only be reached with
/// path-style URLs: an IP address or `localhost`.
#[cfg(feature = "s3")]
pub(crate) fn needs_path_style(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || bare.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::S3Config;

    #[test]
    fn endpoints_must_be_http_urls_with_a_host() {
        for good in [
            "http://127.0.0.1:8333",
            "https://s3.example.com",
            "http://[::1]:9000/",
        ] {
            assert!(S3Config::check_endpoint(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "127.0.0.1:8333",
            "ftp://h",
            "http://",
            "https://:80",
            "http:///x",
        ] {
            let e = S3Config::check_endpoint(bad).unwrap_err();
            assert!(e.message().contains("is not an http(s) URL"), "{bad}: {e}");
        }
    }

    #[cfg(feature = "s3")]
    #[test]
    fn ip_addresses_and_localhost_take_path_style() {
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "[::1]",
            "localhost",
            "LOCALHOST",
            "s3.localhost",
        ] {
            assert!(super::needs_path_style(host), "{host}");
        }
        for host in [
            "s3.amazonaws.com",
            "minio.example",
            "localhost.example",
            "1.2.3.4.nip.io",
        ] {
            assert!(!super::needs_path_style(host), "{host}");
        }
    }
}
