//! The secure setup from the command line: a self-signed server prints its pin on the second
//! line, `hash-token` makes the tokens file, and `send-file --pin` with KNSOCK_TOKEN gets in
//! (without the token it is refused with a one-line reason).

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::cli::CliServer;
use common::*;

#[test]
fn self_signed_server_pin_token_and_send() {
    let work = tempfile::tempdir().unwrap();
    let mut hash = Command::new(BIN)
        .args(["hash-token", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    hash.stdin
        .take()
        .unwrap()
        .write_all(b"alice-secret\n")
        .unwrap();
    let line = String::from_utf8(hash.wait_with_output().unwrap().stdout).unwrap();
    assert!(line.starts_with("alice:pbkdf2-sha256$"), "{line}");
    let tokens = work.path().join("tokens");
    std::fs::write(&tokens, &line).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = work.path().join("recv");
    std::fs::create_dir(&dir).unwrap();
    let state = work.path().join("state");
    let mut server = CliServer::start(
        &dir,
        &[
            "--tls-self-signed",
            state.to_str().unwrap(),
            "--tokens",
            tokens.to_str().unwrap(),
        ],
    );
    let port = server.port.to_string();
    let second = server.next_line();
    let pin = second.strip_prefix("tls pin ").expect(&second).to_string();
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "note.txt", b"secure");
    let send = |token: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(["send-file", "127.0.0.1", &port, "--pin", &pin])
            .arg(&p);
        c.env_remove("KNSOCK_TOKEN");
        if let Some(t) = token {
            c.env("KNSOCK_TOKEN", t);
        }
        c.output().unwrap()
    };
    let refused = send(None);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(err.contains("authentication required"), "{err}");
    assert!(!dir.join("note.txt").exists());
    let ok = send(Some("alice:alice-secret"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(std::fs::read(dir.join("note.txt")).unwrap(), b"secure");
    assert!(server.terminate().success());
}
