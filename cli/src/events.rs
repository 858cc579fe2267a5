//! `--log-format json`: one JSON object per line on stdout for each event of a receiver (start,
//! received, refused, failed, error, auth_failed, stop) or a sender (file, summary); the fields
//! are listed in docs/operations.md. Names, identities and reasons go through
//! `knsock::printable` first: JSON escaping alone leaves bidi overrides and terminal controls in.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use knsock::{printable, Error, ErrorKind, FileInfo, Refused, SendReport, ServerStats};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Lines for people (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// Writes one event as a line of its own; a closed stdout is ignored (the server keeps serving).
pub(crate) fn emit(mut event: Value) {
    event["time"] = json!(jiff::Timestamp::now().to_string());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}").and_then(|()| out.flush());
}

/// Milliseconds, to the microsecond.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The fields every receiver event about a file has.
fn file_event(event: &str, info: &FileInfo) -> Value {
    json!({
        "event": event,
        "peer": info.peer.to_string(),
        "identity": info.identity.as_deref().map(|i| printable(i).into_owned()),
        "name": printable(&info.name).into_owned(),
        "size": info.size,
        "duration_ms": ms(info.offered_at.elapsed()),
        "code": Value::Null,
        "reason": Value::Null,
    })
}

pub(crate) fn received(info: &FileInfo) {
    emit(file_event("received", info));
}

/// REJECT ("refused") or FAILED ("failed"), with the code and text the sender was told.
pub(crate) fn refused(info: &FileInfo, r: &Refused) {
    let mut e = file_event(if r.after_data { "failed" } else { "refused" }, info);
    e["code"] = json!(r.code);
    e["reason"] = json!(r.reason);
    emit(e);
}

/// A connection's error or an authentication failure. File refusals (errors carrying the
/// reason the sender was told) are left to [`refused`], which has the file's details.
pub(crate) fn error(err: &Error, peer: Option<SocketAddr>) {
    if err.peer_reason().is_some() {
        return;
    }
    let event = match err.kind() {
        ErrorKind::Auth => "auth_failed",
        _ => "error",
    };
    emit(json!({
        "event": event,
        "peer": peer.map(|p| p.to_string()),
        "identity": Value::Null,
        "name": Value::Null,
        "size": Value::Null,
        "duration_ms": Value::Null,
        "code": Value::Null,
        "kind": format!("{:?}", err.kind()).to_lowercase(),
        "reason": err.message(),
    }));
}

pub(crate) fn start(addr: SocketAddr, metrics: Option<SocketAddr>, pin: Option<&str>) {
    emit(json!({
        "event": "start",
        "address": addr.to_string(),
        "metrics": metrics.map(|m| m.to_string()),
        "tls_pin": pin,
        "version": knsock::VERSION,
    }));
}

pub(crate) fn stop(s: &ServerStats) {
    emit(json!({
        "event": "stop",
        "connections_accepted": s.connections_accepted,
        "files_received": s.files_received,
        "files_skipped": s.files_skipped,
        "files_rejected": s.rejected(),
        "files_failed": s.failed(),
        "bytes_received": s.bytes_received,
        "bytes_stored": s.bytes_stored,
    }));
}

/// The sender's side: one `file` event per file, then a `summary`.
#[derive(Default)]
pub(crate) struct SendLog {
    files: u64,
    sent: u64,
    unchanged: u64,
    failed: u64,
    bytes_sent: u64,
    bytes_reused: u64,
}

impl SendLog {
    /// One file's outcome; `receiver` is "host:port".
    pub(crate) fn file(&mut self, receiver: &str, path: &Path, r: &knsock::Result<SendReport>) {
        self.files += 1;
        let mut e = json!({
            "event": "file",
            "receiver": receiver,
            "path": crate::shown(path),
            "name": Value::Null,
            "result": Value::Null,
            "size": Value::Null,
            "bytes_sent": 0,
            "bytes_reused": 0,
            "duration_ms": Value::Null,
            "code": Value::Null,
            "reason": Value::Null,
        });
        match r {
            Ok(rep) => {
                let result = if rep.skipped { "unchanged" } else { "sent" };
                match rep.skipped {
                    true => self.unchanged += 1,
                    false => self.sent += 1,
                }
                self.bytes_sent += rep.bytes_sent;
                self.bytes_reused += rep.bytes_reused;
                e["name"] = json!(printable(&rep.stored_name).into_owned());
                e["result"] = json!(result);
                e["size"] = json!(rep.bytes);
                e["bytes_sent"] = json!(rep.bytes_sent);
                e["bytes_reused"] = json!(rep.bytes_reused);
                e["duration_ms"] = json!(ms(rep.elapsed));
            }
            Err(err) => {
                self.failed += 1;
                e["result"] = json!("failed");
                e["code"] = json!(err.peer_reason().map(|p| p.code));
                e["reason"] = json!(err.message());
            }
        }
        emit(e);
    }

    /// A receiver that could not be reached at all (fan-out).
    pub(crate) fn unreached(&mut self, receiver: &str, err: &Error) {
        emit(json!({
            "event": "unreached",
            "receiver": receiver,
            "reason": err.message(),
        }));
    }

    pub(crate) fn summary(&self, took: Duration) {
        emit(json!({
            "event": "summary",
            "files": self.files,
            "sent": self.sent,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "bytes_sent": self.bytes_sent,
            "bytes_reused": self.bytes_reused,
            "duration_ms": ms(took),
        }));
    }
}
