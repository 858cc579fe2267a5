//! What `kn-sock` says when something is wrong, as a new user meets it: names checked when they
//! are made, flags named as flags, hints for the usual causes, one style and documented exit
//! codes (1 when something failed, 2 when the command line is wrong).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::cli::*;
use common::*;

/// `hash-token` refuses a name the tokens file would refuse, and says it is the name.
#[test]
fn hash_token_checks_the_name() {
    for bad in ["bad:name", "", ".hidden", "spa ce"] {
        let mut c = Command::new(BIN)
            .args(["hash-token", bad])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = c.stdin.take().unwrap().write_all(b"secret\n");
        let r = c.wait_with_output().unwrap();
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.starts_with("kn-sock: token name "), "{bad:?}: {err}");
        assert!(r.stdout.is_empty(), "{bad:?}");
    }
}

/// Some paths missing among others: the others are still sent, each missing one is named on
/// stderr with one wording, and the exit status is 1.
#[test]
fn a_missing_path_does_not_cancel_the_others() {
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let src = tempfile::tempdir().unwrap();
    let a = write_file(src.path(), "a.txt", b"a");
    let b = write_file(src.path(), "b.txt", b"b");
    let nope = src.path().join("nope.txt");
    let r = send(
        srv.port,
        &[
            a.to_str().unwrap(),
            nope.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    let missing = format!("kn-sock: {}: no such file or directory", nope.display());
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("1 of 3 paths could not be sent"), "{err}");
    assert_eq!(text(&r.stdout).lines().count(), 2, "{}", text(&r.stdout));
    let mut got = [srv.next_line(), srv.next_line()];
    got.sort();
    assert!(got[0].starts_with("received a.txt") && got[1].starts_with("received b.txt"));

    let r = send(srv.port, &[nope.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(text(&r.stderr), format!("{missing}\n"));
    assert!(srv.terminate().success());
}

/// Options that need TLS are named as the flags the user typed, with the flags that fix it.
#[test]
fn tls_requirements_name_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let src = tempfile::tempdir().unwrap();
    let f = write_file(src.path(), "f.txt", b"x");
    let r = Command::new(BIN)
        .args(["send-file", "127.0.0.1", "9", f.to_str().unwrap()])
        .env("KNSOCK_TOKEN", "alice:secret")
        .output()
        .unwrap();
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("add --tls"), "{err}");
    assert!(!err.contains("set tls"), "{err}");

    let r = run(&["run-file-server", "0", d, "--tokens", "/dev/null"]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--tokens needs TLS: add --tls-self-signed DIR"),
        "{err}"
    );
    let r = run(&[
        "run-file-server",
        "0",
        d,
        "--client-ca",
        "/dev/null",
        "--allow-plaintext",
    ]);
    let err = text(&r.stderr);
    assert!(
        err.contains("--client-ca, --allow-plaintext need TLS"),
        "{err}"
    );
}

/// clap's errors and kn-sock's share one style (`kn-sock: ...`); a wrong command line exits 2,
/// and the help says what the exit codes mean. Port 0 is named as the mistake it is.
#[test]
fn usage_errors_share_one_style_and_exit_2() {
    let src = tempfile::tempdir().unwrap();
    let f = write_file(src.path(), "f.txt", b"x");
    let f = f.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["send-file", "h", "1", f, "--bogus"],
            "kn-sock: unexpected argument '--bogus'",
        ),
        (&["run-file-server", "x", "d"], "kn-sock: invalid value 'x'"),
        (
            &["send-file", "127.0.0.1", "0", f],
            "kn-sock: port 0 is not a destination",
        ),
        (
            &["send-file", "--to", "127.0.0.1:0", f],
            "kn-sock: port 0 is not a destination",
        ),
        (
            &["send-file", "h", "1", f, "--timeout", "0"],
            "kn-sock: --timeout must be",
        ),
    ];
    for (args, want) in cases {
        let r = run(args);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with(want), "{args:?}: {err}");
        assert!(!err.contains("error:"), "{args:?}: {err}");
    }
    let bare = run(&[]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(text(&bare.stderr).contains("Usage: kn-sock <COMMAND>"));
    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("Exit status: 0 when"));
    let help = text(&run(&["send-file", "--help"]).stdout);
    // Its text follows the flag, on the same line or (clap's long help) the next.
    let at = help.find("--no-progress").unwrap();
    let text_after: String = help[at..].lines().take(2).collect();
    assert!(
        text_after.contains("Never show the progress bar"),
        "{text_after}"
    );
}

/// A single refused file is named, as each file of a batch is.
#[test]
fn a_refused_file_is_named() {
    let out = tempfile::tempdir().unwrap();
    let srv = CliServer::start(out.path(), &["--allow-ext", ".txt"]);
    let src = tempfile::tempdir().unwrap();
    let exe = write_file(src.path(), "tool.exe", b"MZ");
    let r = send(srv.port, &[exe.to_str().unwrap()]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    let named = format!(
        "kn-sock: {}: rejected by receiver: extension not allowed",
        exe.display()
    );
    assert!(err.starts_with(&named), "{err}");
    assert!(srv.terminate().success());
}

/// `--tls` against a self-signed server: the certificate error says to give its pin.
#[test]
fn an_unknown_issuer_suggests_the_pin() {
    let work = tempfile::tempdir().unwrap();
    let srv = CliServer::start(
        work.path(),
        &[
            "--tls-self-signed",
            work.path().join("state").to_str().unwrap(),
        ],
    );
    let f = write_file(work.path(), "f.txt", b"x");
    let r = send(srv.port, &[f.to_str().unwrap(), "--tls"]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("UnknownIssuer") && err.contains("give --pin"),
        "{err}"
    );
    assert!(err.contains("tls pin sha256//"), "{err}");
    assert!(srv.terminate().success());
}

/// The server creates its directory when only the last component is missing (and says so);
/// a missing parent is refused, naming it.
#[test]
fn the_server_creates_its_last_directory_component() {
    let work = tempfile::tempdir().unwrap();
    let incoming = work.path().join("incoming");
    let mut c = Command::new(BIN);
    c.args(["run-file-server", "0"])
        .arg(&incoming)
        .args(["--host", "127.0.0.1"])
        .stderr(Stdio::piped());
    let mut srv = CliServer::spawn(c);
    assert!(incoming.is_dir());
    assert!(srv.terminate_and_wait().success());
    let mut said = String::new();
    let mut stderr = srv.child.stderr.take().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert!(
        said.starts_with("kn-sock: created the directory "),
        "{said}"
    );

    let deep = work.path().join("typo/incoming");
    let r = run(&["run-file-server", "0", deep.to_str().unwrap()]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("nor its parent"), "{err}");
    assert!(!work.path().join("typo").exists());
}

/// An S3 endpoint given as an IP address is reached with path-style URLs (no store needs to
/// run: the connection is refused, and the error shows the URL it tried).
#[test]
fn an_s3_endpoint_by_ip_address_uses_path_style() {
    let refusing = RefusingPort::new();
    let endpoint = format!("http://127.0.0.1:{}", refusing.port);
    // A spool of its own: the default one, knsock-spool-UID, would outlive the test.
    let spool = tempfile::tempdir().unwrap();
    let r = Command::new(BIN)
        .args([
            "run-file-server",
            "0",
            "s3://bucket/in",
            "--s3-endpoint",
            &endpoint,
        ])
        .arg("--spool-dir")
        .arg(spool.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(!err.contains("invalid IPv4"), "{err}");
    assert!(err.contains(&format!("{endpoint}/bucket/")), "{err}");
}

/// A receiver at its connection cap: the sender says it is busy with the receiver's own text and
/// how to retry, exits 1 as for any failure, and `--retries` retries it with backoff.
#[test]
fn a_busy_receiver_is_named_busy_and_retried_with_retries() {
    let busy = BusyReceiver::start(BusyAt::Hello);
    let src = tempfile::tempdir().unwrap();
    let a = write_file(src.path(), "a.txt", b"a");
    let r = send(busy.port(), &[a.to_str().unwrap()]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    let said = format!(
        "kn-sock: {}: receiver busy, retry later: {BUSY_TEXT} (--retries N retries a busy \
         receiver with backoff)\n",
        a.display()
    );
    assert_eq!(err, said);
    assert_eq!(busy.attempts(), 1);

    let r = send(
        busy.port(),
        &[
            a.to_str().unwrap(),
            "--retries",
            "2",
            "--retry-delay",
            "0.01",
        ],
    );
    assert_eq!(r.status.code(), Some(1), "{}", text(&r.stderr));
    assert_eq!(busy.attempts(), 4, "one more attempt, then two retries");
}
