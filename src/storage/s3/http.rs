//! Sending a signed S3 request: blocking, with retries of what may succeed on a second try
//! (unreachable, slow down, server errors), and the store's answers turned into clear reasons.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ureq::SendBody;
use url::Url;

use crate::storage::object::{ObjectError, ObjectErrorKind};

/// Tries per request before a temporary failure is reported; the waits between them grow
/// fourfold from 100 ms, as the AWS SDKs' standard mode does.
const TRIES: u32 = 3;

/// What the store answered.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a request carries.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `start`, streamed (never held in memory whole).
    File {
        file: &'a File,
        start: u64,
        len: u64,
    },
}

/// Reads a range of a file by position, so retries and parallel parts share the descriptor.
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A request to send: signed URL, method, the headers that were signed, and a body.
pub(super) struct Request<'a> {
    pub(super) method: &'static str,
    pub(super) url: Url,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Body<'a>,
    /// What the request does, for messages: "storing 'a/b.txt'".
    pub(super) what: String,
}

/// The HTTP agent of a store and its counts of requests and failures, shared by its clones.
#[derive(Clone)]
pub(super) struct Agent {
    agent: ureq::Agent,
    requests: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Agent {
    /// Requests sent so far (each try), and the tries that failed.
    pub(super) fn counts(&self) -> (u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (get(&self.requests), get(&self.failures))
    }
}

/// Sends `req`, retrying temporary failures; a reply that is not 2xx (or 404 for a HEAD) is an
/// error.
pub(super) fn send(agent: &Agent, req: &Request<'_>) -> Result<Reply, ObjectError> {
    retrying(agent, || {
        send_once(&agent.agent, req).and_then(|r| judge(req, r))
    })
}

/// Runs `once` (one request, counted) until it succeeds, fails for good, or [`TRIES`] tries
/// failed for now, waiting longer after each.
fn retrying<T>(
    agent: &Agent,
    mut once: impl FnMut() -> Result<T, ObjectError>,
) -> Result<T, ObjectError> {
    let mut wait = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        tries += 1;
        agent.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = once();
        if outcome.is_err() {
            agent.failures.fetch_add(1, Ordering::Relaxed);
        }
        match outcome {
            Err(e) if e.is_temporary() && tries < TRIES => {
                std::thread::sleep(wait);
                wait *= 4;
            }
            other => return other,
        }
    }
}

/// Sends a GET of an object, retrying temporary failures until the store answers; the content
/// is then read as it arrives (a failure while reading it is not retried: the caller's reader
/// fails). `None` for 404.
pub(super) fn get_stream(
    agent: &Agent,
    url: &Url,
    what: String,
) -> Result<Option<(Reply, ureq::BodyReader<'static>)>, ObjectError> {
    let req = Request {
        method: "GET",
        url: url.clone(),
        headers: Vec::new(),
        body: Body::Bytes(&[]),
        what,
    };
    retrying(agent, || get_once(&agent.agent, &req))
}

/// A response's headers as names and values (a value that is not text reads as empty).
fn headers_of<B>(response: &ureq::http::Response<B>) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

fn get_once(
    agent: &ureq::Agent,
    req: &Request<'_>,
) -> Result<Option<(Reply, ureq::BodyReader<'static>)>, ObjectError> {
    let response = agent
        .get(req.url.as_str())
        .call()
        .map_err(|e| unreachable(req, &e))?;
    let headers = headers_of(&response);
    let status = response.status().as_u16();
    let mut body = response.into_body().into_reader();
    if status == 404 {
        return Ok(None);
    }
    if !(200..300).contains(&status) {
        let mut text = String::new();
        let _ = (&mut body).take(1 << 20).read_to_string(&mut text);
        let reply = Reply {
            status,
            headers,
            body: text,
        };
        return judge(req, reply).map(|_| None);
    }
    let reply = Reply {
        status,
        headers,
        body: String::new(),
    };
    Ok(Some((reply, body)))
}

fn send_once(agent: &ureq::Agent, req: &Request<'_>) -> Result<Reply, ObjectError> {
    let mut builder = ureq::http::Request::builder()
        .method(req.method)
        .uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    // Always an explicit length: S3 refuses chunked uploads.
    let (mut bytes, mut range);
    let body = match req.body {
        Body::Bytes(b) => {
            builder = builder.header("content-length", b.len());
            bytes = b;
            SendBody::from_reader(&mut bytes)
        }
        Body::File { file, start, len } => {
            builder = builder.header("content-length", len);
            range = RangeReader {
                file,
                pos: start,
                end: start + len,
            };
            SendBody::from_reader(&mut range)
        }
    };
    let request = builder.body(body).map_err(|e| ObjectError {
        kind: ObjectErrorKind::Refused,
        text: format!("{}: bad request: {e}", req.what),
    })?;
    let mut response = agent.run(request).map_err(|e| unreachable(req, &e))?;
    let headers = headers_of(&response);
    let status = response.status().as_u16();
    let mut body = String::new();
    if req.method != "HEAD" {
        // Error bodies and XML answers are small; a cap keeps a hostile store from filling
        // memory.
        let _ = response
            .body_mut()
            .as_reader()
            .take(1 << 20)
            .read_to_string(&mut body);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A request that got no answer at all.
fn unreachable(req: &Request<'_>, e: &ureq::Error) -> ObjectError {
    let host = req.url.host_str().unwrap_or("?");
    ObjectError {
        kind: ObjectErrorKind::Temporary,
        text: format!(
            "{}: the object store at {host} is unreachable ({e})",
            req.what
        ),
    }
}

/// Turns an answer that is not a success into a reason, temporary or not.
fn judge(req: &Request<'_>, reply: Reply) -> Result<Reply, ObjectError> {
    if reply.ok() || (req.method == "HEAD" && reply.status == 404) {
        return Ok(reply);
    }
    let code = tag(&reply.body, "Code").unwrap_or_default();
    let message = tag(&reply.body, "Message").unwrap_or_default();
    use ObjectErrorKind::{Exists, Refused, Temporary};
    let (kind, why) = match (reply.status, code.as_str()) {
        (_, "NoSuchBucket") => (Refused, "the bucket does not exist"),
        (403, _) | (_, "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            (Refused, "access denied by the object store")
        }
        // A conditional write (If-None-Match: *) found an object there.
        (412, _) | (_, "PreconditionFailed") => (Exists, "an object with that name exists"),
        (503, _) | (_, "SlowDown") => (Temporary, "the object store asks to slow down"),
        (500..=599, _) => (Temporary, "the object store failed"),
        (404, _) if req.method == "HEAD" => (Refused, "the bucket does not exist"),
        _ => (Refused, "the object store refused the request"),
    };
    let detail = match (code.is_empty(), message.is_empty()) {
        (true, _) => format!("HTTP {}", reply.status),
        (false, true) => format!("HTTP {}, {code}", reply.status),
        (false, false) => format!("HTTP {}, {code}: {message}", reply.status),
    };
    Err(ObjectError {
        kind,
        text: format!("{}: {why} ({detail})", req.what),
    })
}

/// The text of the first `<name>…</name>` in an XML answer (S3's answers are flat enough that
/// this is all the parsing they need here), with the five standard entities decoded.
pub(super) fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

/// Every `<name>…</name>` block in an XML answer, in order.
pub(super) fn blocks<'x>(xml: &'x str, name: &str) -> Vec<&'x str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(&after[..e]);
        rest = &after[e + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Builds the agent: bounded waits, no redirects into another host, HTTPS verified against the
/// system's roots (or `ca_pem`).
pub(super) fn agent(roots: Vec<ureq::tls::Certificate<'static>>) -> Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(if roots.is_empty() {
            ureq::tls::RootCerts::WebPki
        } else {
            ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots))
        })
        .build();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_send_body(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(16)
        .tls_config(tls)
        .build()
        .into();
    Agent {
        agent,
        requests: Arc::default(),
        failures: Arc::default(),
    }
}
