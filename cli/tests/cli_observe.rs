//! What operators watch on a real `kn-sock run-file-server` process: `--metrics` scraped during
//! and after batches (the counters equal what was sent, refused and skipped), and every line of
//! `--log-format json` parsed on both sides.

mod common;
#[path = "../../tests/common/pki.rs"]
mod pki;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use knsock::{collect_sources, send_file, send_files, ErrorKind, SendOptions, WalkOptions};
use pki::{tokens_file, with_token};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// A JSON-logging server process; its stdout lines arrive on a channel, each parsed.
struct JsonServer {
    child: Child,
    events: mpsc::Receiver<Value>,
    port: u16,
    metrics: Option<String>,
    pin: Option<String>,
}

impl JsonServer {
    fn start(dir: &Path, extra: &[&str]) -> JsonServer {
        let mut child = Command::new(BIN)
            .args(["run-file-server", "0"])
            .arg(dir)
            .args(["--host", "127.0.0.1", "--log-format", "json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let line = line.unwrap();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut s = JsonServer {
            child,
            events,
            port: 0,
            metrics: None,
            pin: None,
        };
        let start = s.next();
        assert_eq!(start["event"], "start", "{start}");
        let addr = start["address"].as_str().unwrap();
        s.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        s.metrics = start["metrics"].as_str().map(str::to_string);
        s.pin = start["tls_pin"].as_str().map(str::to_string);
        s
    }

    /// The next event, within the deadline.
    fn next(&self) -> Value {
        self.events
            .recv_timeout(DEADLINE)
            .expect("no event from the server in time")
    }

    /// SIGTERM, then the events up to the end of its output.
    fn terminate(mut self) -> Vec<Value> {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        assert!(self.child.wait().unwrap().success());
        self.events.iter().collect()
    }
}

impl Drop for JsonServer {
    /// A test that failed before `terminate` leaves no server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET /metrics: each sample line as name (with labels) → value.
fn scrape(addr: &str) -> HashMap<String, f64> {
    let (status, body) = http_get(addr, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// Files in `dir`: `n` accepted (`.bin`) and `m` refused (`.txt`), named from `tag`.
fn files(dir: &Path, tag: &str, n: usize, m: usize) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for i in 0..n {
        let data = random_bytes(1000 + i * 700, i as u64);
        paths.push(write_file(dir, &format!("{tag}{i}.bin"), &data));
    }
    for i in 0..m {
        paths.push(write_file(dir, &format!("{tag}{i}.txt"), b"refused"));
    }
    paths
}

/// A temporary directory with `recv` (the server's) and `src` (the files sent) in it.
fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (recv, src) = (tmp.path().join("recv"), tmp.path().join("src"));
    std::fs::create_dir_all(&recv).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    (tmp, recv, src)
}

/// `kn-sock send-file 127.0.0.1 PORT OPTIONS... PATHS...`.
fn send_cli(port: u16, options: &[&str], paths: &[std::path::PathBuf]) -> std::process::Output {
    Command::new(BIN)
        .args(["send-file", "127.0.0.1", &port.to_string()])
        .args(options)
        .args(paths)
        .output()
        .unwrap()
}

fn metric(m: &HashMap<String, f64>, name: &str) -> u64 {
    *m.get(name).unwrap_or_else(|| panic!("no {name} in {m:?}")) as u64
}

#[test]
fn metrics_count_what_was_sent_refused_and_skipped() {
    let (_tmp, recv, src) = dirs();
    let server = JsonServer::start(&recv, &["--metrics", "127.0.0.1:0", "--allow-ext", ".bin"]);
    let addr = server
        .metrics
        .clone()
        .expect("the start event names the metrics address");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let (status, _) = http_get(&addr, "/");
    assert!(status.contains(" 404 "), "{status}");

    // First batch: 4 stored, 2 refused by extension (code 1). A scrape while it runs sees its
    // connection open.
    let first = files(&src, "a", 4, 2);
    let during = Arc::new(Mutex::new(None));
    let (seen, at) = (Arc::clone(&during), addr.clone());
    let opts = SendOptions {
        skip_unchanged: true,
        batch_progress: Some(Arc::new(move |_| {
            let mut seen = seen.lock().unwrap();
            if seen.is_none() {
                *seen = Some(scrape(&at));
            }
            true
        })),
        ..SendOptions::default()
    };
    let sources = collect_sources(&first, &WalkOptions::default()).unwrap();
    let report = send_files("127.0.0.1", server.port, &sources, &opts).unwrap();
    assert_eq!((report.delivered(), report.failed()), (4, 2));
    let mid = during
        .lock()
        .unwrap()
        .take()
        .expect("a scrape during the batch");
    assert_eq!(metric(&mid, "knsock_connections_open"), 1);
    assert!(metric(&mid, "knsock_files_received_total") <= 4);

    // The histograms are fed by the received handler, which runs once the sender was told.
    let mut m = scrape(&addr);
    let deadline = Instant::now() + DEADLINE;
    while metric(&m, "knsock_file_size_bytes_count") < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        m = scrape(&addr);
    }
    let stored: u64 = (0..4).map(|i| 1000 + i * 700).sum();
    assert_eq!(metric(&m, "knsock_files_received_total"), 4);
    assert_eq!(metric(&m, "knsock_stored_bytes_total"), stored);
    // Small files a probe found changed go eagerly: refused after their content (FAILED).
    assert_eq!(metric(&m, "knsock_files_failed_total{code=\"1\"}"), 2);
    assert_eq!(metric(&m, "knsock_files_skipped_total"), 0);
    assert_eq!(metric(&m, "knsock_file_size_bytes_count"), 4);
    assert_eq!(metric(&m, "knsock_transfer_duration_seconds_count"), 4);
    assert!(metric(&m, "knsock_received_bytes_total") >= stored);

    // Second batch, through the CLI: the same files again (4 skipped, 2 refused) and 1 new.
    let mut second = first.clone();
    second.extend(files(&src, "b", 1, 0));
    let out = send_cli(server.port, &["--skip-unchanged"], &second);
    assert!(!out.status.success()); // the refused files fail the batch
    let m = scrape(&addr);
    assert_eq!(metric(&m, "knsock_files_received_total"), 5);
    assert_eq!(metric(&m, "knsock_files_skipped_total"), 4);
    assert_eq!(metric(&m, "knsock_files_failed_total{code=\"1\"}"), 4);
    let rejected: u64 = (0..17)
        .map(|c| metric(&m, &format!("knsock_files_rejected_total{{code=\"{c}\"}}")))
        .sum();
    assert_eq!(rejected, 0);
    assert_eq!(metric(&m, "knsock_connections_accepted_total"), 2);
    assert_eq!(metric(&m, "knsock_up"), 1);
    // Nothing in the metrics names a file or a peer.
    let (_, body) = http_get(&addr, "/metrics");
    assert!(
        !body.contains("a0.bin") && !body.contains("127.0.0.1"),
        "{body}"
    );
    server.terminate();
}

/// The fields every receiver event has.
const SERVER_FIELDS: [&str; 9] = [
    "time",
    "event",
    "peer",
    "identity",
    "name",
    "size",
    "duration_ms",
    "code",
    "reason",
];

#[test]
fn json_logs_parse_line_by_line_on_both_sides() {
    let (_tmp, recv, src) = dirs();
    let server = JsonServer::start(&recv, &["--allow-ext", ".bin"]);
    let mut paths = files(&src, "f", 2, 1);
    // A name with a bidi override: escaped in both logs, so nothing is shown reordered.
    paths.push(write_file(&src, "\u{202e}nib.bin", b"x"));
    let out = send_cli(server.port, &["--log-format", "json"], &paths);
    assert!(!out.status.success());
    let sender: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert_eq!(sender.len(), 5, "{sender:?}");
    let results: Vec<&str> = sender[..4]
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| **r == "sent").count(), 3);
    assert_eq!(results.iter().filter(|r| **r == "failed").count(), 1);
    let refused = sender.iter().find(|e| e["result"] == "failed").unwrap();
    assert_eq!(refused["code"], 1);
    let summary = &sender[4];
    assert_eq!(summary["event"], "summary");
    assert_eq!(
        (summary["files"].as_u64(), summary["sent"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(summary["failed"], 1);
    assert_eq!(
        summary["bytes_sent"],
        sender[..4]
            .iter()
            .map(|e| e["bytes_sent"].as_u64().unwrap())
            .sum::<u64>()
    );

    // The receiver: 3 received and 1 refused, each with every field, then stop.
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while seen.len() < 4 && Instant::now() < deadline {
        seen.push(server.next());
    }
    let events = server.terminate();
    seen.extend(events);
    for e in &seen[..4] {
        for f in SERVER_FIELDS {
            assert!(e.get(f).is_some(), "{f} missing in {e}");
        }
        assert_eq!(
            e["peer"].as_str().unwrap().split(':').next(),
            Some("127.0.0.1")
        );
    }
    let of = |kind: &str| seen.iter().filter(|e| e["event"] == kind).count();
    // The refused file is small: sent eagerly, so refused after its data ("failed").
    let refused = of("refused") + of("failed");
    assert_eq!((of("received"), refused, of("stop")), (3, 1, 1));
    let no = seen.iter().find(|e| e["code"] == 1).unwrap();
    assert!(no["name"].as_str().unwrap().ends_with(".txt"), "{no}");
    let evil = seen.iter().find(|e| e["size"] == 1).unwrap();
    let name = evil["name"].as_str().unwrap();
    assert!(
        !name.contains('\n') && !name.contains('\u{202e}'),
        "{name:?}"
    );
    let stop = seen.last().unwrap();
    assert_eq!(stop["event"], "stop");
    let not_stored =
        stop["files_rejected"].as_u64().unwrap() + stop["files_failed"].as_u64().unwrap();
    assert_eq!((stop["files_received"].as_u64(), not_stored), (Some(3), 1));
}

#[test]
fn json_logs_tell_authentication_failures_and_connection_errors() {
    let (tmp, recv, src) = dirs();
    let tokens = tokens_file(tmp.path(), &[("alice", "alice-secret")]);
    let state = tmp.path().join("state");
    let server = JsonServer::start(
        &recv,
        &[
            "--tls-self-signed",
            state.to_str().unwrap(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--allow-plaintext",
        ],
    );
    let pin = server.pin.clone().expect("the start event has the pin");
    let a = write_file(&src, "a.txt", b"hello");
    let opts = with_token(&pin, "alice:wrong");
    let e = send_file("127.0.0.1", server.port, &a, &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    let auth = server.next();
    assert_eq!(
        (&auth["event"], &auth["kind"]),
        (&"auth_failed".into(), &"auth".into())
    );
    assert!(
        auth["reason"].as_str().unwrap().contains("wrong token"),
        "{auth}"
    );
    assert!(
        auth["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{auth}"
    );

    // A peer that is not knsock: its connection ends in a protocol error.
    let mut junk = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    junk.write_all(b"\x89NOTKNSOCK-AT-ALL-JUNK").unwrap();
    let err = server.next();
    assert_eq!(
        (&err["event"], &err["kind"]),
        (&"error".into(), &"protocol".into())
    );
    for f in SERVER_FIELDS {
        assert!(err.get(f).is_some(), "{f} missing in {err}");
    }
    drop(junk);
    let rest = server.terminate();
    assert_eq!(rest.last().unwrap()["event"], "stop");
}
