//! What `kn-sock send-file` shows while it works: the progress bar (forced, default, off), and
//! the reason a receiver gives when it stops in the middle of a transfer.

mod common;

use common::cli::*;
use common::*;

/// `--show-progress` draws the bar even when stderr is a pipe, and ends its line, so the result
/// line is not glued to it; without it a pipe gets no bar, and `--no-progress` turns it off.
#[test]
fn show_progress_forces_the_bar_and_ends_its_line() {
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let src = tempfile::tempdir().unwrap();
    let f = write_file(src.path(), "bar.bin", &random_bytes(300_000, 5));
    let f = f.to_str().unwrap();

    let r = send(srv.port, &[f, "--show-progress"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let err = text(&r.stderr);
    assert!(
        err.contains("bar.bin [==============================]"),
        "no finished bar: {err:?}"
    );
    assert!(err.ends_with('\n'), "the bar's line is not ended: {err:?}");
    // Not a terminal: redrawn after a carriage return, without cursor or erase sequences that a
    // log file would keep as garbage.
    assert!(!err.contains('\x1b'), "escape sequences in a pipe: {err:?}");
    assert!(srv.next_line().starts_with("received bar.bin"));

    for quiet in [&[f][..], &[f, "--show-progress", "--no-progress"][..]] {
        let r = send(srv.port, quiet);
        assert!(r.status.success(), "{}", text(&r.stderr));
        assert_eq!(text(&r.stderr), "", "{quiet:?}");
        assert!(srv.next_line().starts_with("received bar.bin"));
    }
    assert!(srv.terminate().success());
}

/// A server stopped (SIGTERM) in the middle of a large file: the sender reports the server's
/// reason, not only its own failed write. The sender is paused (SIGSTOP) once its bar shows data
/// flowing, so the server stops while the file is surely unfinished.
#[test]
fn a_server_stopped_mid_transfer_gives_its_reason() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let src = tempfile::tempdir().unwrap();
    let f = write_file(src.path(), "large.bin", &vec![7u8; 128 << 20]);
    let mut sender = Command::new(BIN)
        .args(["send-file", "127.0.0.1", &srv.port.to_string()])
        .arg(&f)
        .arg("--show-progress")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = sender.stderr.take().unwrap();
    let mut seen = Vec::new();
    while !text(&seen).contains("large.bin [") {
        let mut buf = [0u8; 256];
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "the sender ended before its bar: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let signal = |sig: &str, pid: u32| {
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    signal("-STOP", sender.id());
    let stopped = srv.terminate_and_wait();
    signal("-CONT", sender.id());
    assert!(stopped.success());
    err.read_to_end(&mut seen).unwrap();
    let status = sender.wait().unwrap();
    let err = text(&seen);
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("server stopping"), "{err}");
    assert!(!last.contains("Broken pipe"), "{err}");
    assert!(!out.path().join("large.bin").exists());
}
