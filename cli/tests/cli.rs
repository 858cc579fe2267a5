//! The `kn-sock` binary as its users type it: server output, exit codes, messages, SIGTERM.

mod common;

use std::process::Command;

use common::cli::*;
use common::*;

#[test]
fn send_one_file_and_a_tree_then_stop_with_sigterm() {
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(500_000, 1);
    let f = write_file(src.path(), "one.bin", &data);
    let r = send(srv.port, &[f.to_str().unwrap(), "--no-progress"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stdout).contains("as one.bin (500000 bytes)"),
        "{}",
        text(&r.stdout)
    );
    assert!(srv
        .next_line()
        .starts_with("received one.bin (500000 bytes) from 127.0.0.1:"));
    assert_eq!(std::fs::read(out.path().join("one.bin")).unwrap(), data);

    std::fs::create_dir_all(src.path().join("tree/sub")).unwrap();
    write_file(&src.path().join("tree"), "a.log", b"a");
    write_file(&src.path().join("tree/sub"), "b.log", b"b");
    write_file(&src.path().join("tree/sub"), "c.tmp", b"c");
    let tree = src.path().join("tree");
    let r = send(
        srv.port,
        &["-r", tree.to_str().unwrap(), "--include", "*.log"],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout).lines().count(), 2, "{}", text(&r.stdout));
    let mut got = vec![srv.next_line(), srv.next_line()];
    got.sort();
    assert!(got[0].starts_with("received tree/a.log"), "{got:?}");
    assert!(got[1].starts_with("received tree/sub/b.log"), "{got:?}");
    assert!(!out.path().join("tree/sub/c.tmp").exists());

    let r = send(srv.port, &[tree.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("is a directory"),
        "{}",
        text(&r.stderr)
    );

    assert!(srv.terminate().success());
}

#[test]
fn failures_exit_1_with_a_one_line_reason() {
    let out = tempfile::tempdir().unwrap();
    let srv = CliServer::start(
        out.path(),
        &["--allow-ext", ".txt,.pdf", "--max-size", "100"],
    );
    let src = tempfile::tempdir().unwrap();

    let r = send(
        srv.port,
        &[src.path().join("missing.txt").to_str().unwrap()],
    );
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.starts_with("kn-sock: ") && err.contains("missing.txt: no such file"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    let exe = write_file(src.path(), "tool.exe", b"MZ");
    let r = send(srv.port, &[exe.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.contains("extension not allowed: tool.exe (allowed: .txt, .pdf)"),
        "{err}"
    );

    let big = write_file(src.path(), "big.txt", &[b'x'; 101]);
    let r = send(srv.port, &[big.to_str().unwrap()]);
    assert!(text(&r.stderr).contains("exceeds the limit of 100 bytes"));

    let r = send(1, &[big.to_str().unwrap(), "--timeout", "0"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("--timeout must be a positive number"));
    assert!(list_tree(out.path()).is_empty());
    assert!(srv.terminate().success());
}

/// The server keeps no data of an interrupted upload unless --resume-ttl says so, as the library.
#[test]
fn resume_ttl_defaults_to_zero_like_the_library() {
    let out = Command::new(BIN)
        .args(["run-file-server", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    let mut lines = help.lines().skip_while(|l| !l.contains("--resume-ttl"));
    let first = lines.next().unwrap_or_default();
    let rest = lines.take_while(|l| !l.trim_start().starts_with('-'));
    let line = std::iter::once(first)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(line.contains("[default: 0]"), "help: {line}");
}

/// Every numeric option is range-checked with a message that names it; none panics.
#[test]
fn numeric_options_are_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let src = tempfile::tempdir().unwrap();
    let f = write_file(src.path(), "f.txt", b"x");
    let f = f.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run-file-server", "0", d, "--idle-timeout", "1e19"],
            "--idle-timeout must be",
        ),
        (
            &["run-file-server", "0", d, "--header-timeout", "0"],
            "--header-timeout must be",
        ),
        (
            &["run-file-server", "0", d, "--resume-ttl", "1e12"],
            "--resume-ttl must be",
        ),
        (
            &["run-file-server", "0", d, "--max-connections", "0"],
            "max connections must be",
        ),
        (
            &["run-file-server", "0", d, "--max-connections", "2000000"],
            "max connections must be",
        ),
        (
            &["run-file-server", "0", d, "--mode-mask", "9"],
            "octal mode",
        ),
        (
            &["send-file", "127.0.0.1", "1", f, "--timeout", "1e19"],
            "--timeout must be",
        ),
        (
            &["send-file", "127.0.0.1", "1", f, "--retry-delay", "1e19"],
            "--retry-delay must be",
        ),
        (
            &["send-file", "127.0.0.1", "1", f, "--retries", "100000"],
            "retries must be",
        ),
        (
            &["send-file", "127.0.0.1", "1", f, "--chunk-size", "0"],
            "chunk size must be",
        ),
    ];
    for (args, want) in cases {
        let r = Command::new(BIN).args(*args).output().unwrap();
        let err = text(&r.stderr);
        assert!(
            matches!(r.status.code(), Some(1 | 2)),
            "{args:?}: {:?} {err}",
            r.status
        );
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(list_tree(dir.path()).is_empty());
}

/// `--to` several times: the same files to each receiver, a line per failure on stderr, a
/// summary per receiver on stdout, exit 1 when any receiver missed a file.
#[test]
fn send_file_to_several_receivers() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = CliServer::start(a_dir.path(), &[]);
    let b = CliServer::start(b_dir.path(), &["--allow-ext", ".bin"]);
    let refusing = RefusingPort::new();
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(700_000, 3);
    let bin = write_file(src.path(), "one.bin", &data);
    let txt = write_file(src.path(), "two.txt", b"hello");
    let to = |port: u16| format!("127.0.0.1:{port}");
    let run = |receivers: &[u16]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("send-file");
        for p in receivers {
            cmd.args(["--to", &to(*p)]);
        }
        cmd.args([&bin, &txt])
            .arg("--no-progress")
            .output()
            .unwrap()
    };

    let r = run(&[a.port, b.port, refusing.port]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r.stderr));
    let (out, err) = (text(&r.stdout), text(&r.stderr));
    assert!(
        out.contains(&format!("{}: 2 sent, 0 unchanged, 0 failed", to(a.port))),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: 1 sent, 0 unchanged, 1 failed", to(b.port))),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: not reached", to(refusing.port))),
        "{out}"
    );
    let refused = format!("kn-sock: {}: {}: ", to(b.port), txt.display());
    assert!(
        err.contains(&refused) && err.contains("extension not allowed"),
        "{err}"
    );
    assert!(
        err.contains(&format!("kn-sock: {}: cannot connect", to(refusing.port))),
        "{err}"
    );
    assert!(err.contains("2 of 3 receivers failed"), "{err}");
    assert_eq!(std::fs::read(a_dir.path().join("one.bin")).unwrap(), data);
    assert_eq!(std::fs::read(b_dir.path().join("one.bin")).unwrap(), data);
    assert!(!b_dir.path().join("two.txt").exists());
    assert!(a.next_line().starts_with("received one.bin"));

    let r = run(&[a.port]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stdout).contains("2 sent, 0 unchanged, 0 failed"));
    let r = Command::new(BIN)
        .args(["send-file", "--to", "nowhere"])
        .arg(&bin)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "a wrong command line");
    assert!(text(&r.stderr).contains("expected HOST:PORT"));
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}
