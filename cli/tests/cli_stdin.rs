//! `kn-sock send-file HOST PORT - --remote-name NAME`: standard input as a file of unknown
//! size; a stream cut midway, or shorter than its --size, stores nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::*;
use common::*;

/// Waits for `cond`, with a deadline: the event must happen.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    list_tree(dir)
        .into_iter()
        .filter(|e| e.contains(".knsock-"))
        .collect()
}

#[test]
fn urandom_through_tee_arrives_identical() {
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let work = tempfile::tempdir().unwrap();
    let x = work.path().join("x");
    let script = format!(
        "set -e; head -c 100000000 /dev/urandom | tee '{}' | '{BIN}' send-file 127.0.0.1 {} - \
         --remote-name s.bin --no-progress",
        x.display(),
        srv.port
    );
    let r = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stdout).contains("sent - as s.bin (100000000 bytes)"),
        "{}",
        text(&r.stdout)
    );
    assert!(srv
        .next_line()
        .starts_with("received s.bin (100000000 bytes)"));
    let sent = std::fs::read(&x).unwrap();
    assert_eq!(sent.len(), 100_000_000);
    assert!(std::fs::read(out.path().join("s.bin")).unwrap() == sent);
}

#[test]
fn a_stream_cut_midway_stores_nothing() {
    let out = tempfile::tempdir().unwrap();
    let srv = CliServer::start(out.path(), &[]);
    let mut sender = spawn_stdin(srv.port, &["--remote-name", "cut.bin"]);
    let mut stdin = sender.stdin.take().unwrap();
    stdin.write_all(&random_bytes(4 << 20, 7)).unwrap();
    // The content is on its way: the receiver's temporary file holds some of it.
    wait_for("the stream to arrive", || {
        !temporaries(out.path()).is_empty()
    });
    sender.kill().unwrap();
    sender.wait().unwrap();
    drop(stdin);
    wait_for("the temporary file to go", || {
        temporaries(out.path()).is_empty()
    });
    assert!(!out.path().join("cut.bin").exists());

    // The server goes on.
    let data = random_bytes(10_000, 8);
    let r = send_stdin(srv.port, &["--remote-name", "next.bin"], &data);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(std::fs::read(out.path().join("next.bin")).unwrap(), data);
}

/// Starts `kn-sock send-file 127.0.0.1 PORT - --no-progress ARGS...`, its standard streams
/// piped.
fn spawn_stdin(port: u16, args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args([
            "send-file",
            "127.0.0.1",
            &port.to_string(),
            "-",
            "--no-progress",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `kn-sock send-file 127.0.0.1 PORT - ARGS...` with `input` on its standard input.
fn send_stdin(port: u16, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = spawn_stdin(port, args);
    let mut stdin = child.stdin.take().unwrap();
    // A sender that gave up early closes its end: what it did not read is not an error here.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn a_writer_killed_before_the_stated_size_stores_nothing() {
    let out = tempfile::tempdir().unwrap();
    let srv = CliServer::start(out.path(), &[]);
    let data = random_bytes(1 << 20, 9);
    let r = send_stdin(
        srv.port,
        &["--remote-name", "short.bin", "--size", "2097152"],
        &data,
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("ended after 1048576 of its 2097152 bytes"),
        "{}",
        text(&r.stderr)
    );
    wait_for("the temporary file to go", || {
        temporaries(out.path()).is_empty()
    });
    assert!(!out.path().join("short.bin").exists());
    let n = data.len().to_string();
    let r = send_stdin(
        srv.port,
        &["--remote-name", "exact.bin", "--size", &n],
        &data,
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(std::fs::read(out.path().join("exact.bin")).unwrap(), data);
}

#[test]
fn a_stream_past_max_size_is_refused_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let srv = CliServer::start(out.path(), &["--max-size", "1000000"]);
    let r = send_stdin(
        srv.port,
        &["--remote-name", "big"],
        &random_bytes(3 << 20, 10),
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("exceeds the limit of 1000000 bytes"),
        "{}",
        text(&r.stderr)
    );
    wait_for("the temporary file to go", || {
        temporaries(out.path()).is_empty()
    });
    assert!(!out.path().join("big").exists());
}

#[test]
fn standard_input_needs_a_name_and_one_receiver() {
    let r = run(&["send-file", "127.0.0.1", "1", "-"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("needs --remote-name"),
        "{}",
        text(&r.stderr)
    );
    let r = run(&[
        "send-file",
        "--to",
        "127.0.0.1:1",
        "-",
        "--remote-name",
        "x",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("one receiver"),
        "{}",
        text(&r.stderr)
    );
    let r = run(&["send-file", "127.0.0.1", "1", "a", "--size", "3"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("--size is for"),
        "{}",
        text(&r.stderr)
    );
}

/// The pipe the system lets a user enlarge a pipe to (`/proc/sys/fs/pipe-max-size`).
fn pipe_max_size() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/sys/fs/pipe-max-size").ok()?;
    text.trim().parse().ok()
}

#[test]
fn a_piped_stream_gets_a_larger_pipe_and_arrives_identical() {
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let mut sender = spawn_stdin(srv.port, &["--remote-name", "piped.bin"]);
    let mut stdin = sender.stdin.take().unwrap();
    // The writer's end is the same pipe: it sees the capacity kn-sock gave it, 1 MiB, or the
    // system's maximum when that is lower.
    let want = pipe_max_size().map_or(1 << 20, |max| max.min(1 << 20));
    wait_for("kn-sock to enlarge its standard input", || {
        rustix::pipe::fcntl_getpipe_size(&stdin).unwrap() >= want
    });
    let data = random_bytes(12 << 20, 11);
    stdin.write_all(&data).unwrap();
    drop(stdin);
    let r = sender.wait_with_output().unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(srv
        .next_line()
        .starts_with("received piped.bin (12582912 bytes)"));
    assert!(std::fs::read(out.path().join("piped.bin")).unwrap() == data);
}
