//! `kn-sock fetch-file`: after `send-file -r tree` to a secure, confining receiver that serves
//! fetches, `fetch-file -r tree --to restored` gives the tree back identical in bytes, mtimes
//! and modes; a receiver without --allow-fetch, or an anonymous client, is refused in one line.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::cli::{text, CliServer};
use common::*;

/// Each file below `root`: name, bytes, mode, mtime (seconds, nanoseconds).
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>, u32, i64, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, u32, i64, i64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(root, &p, out);
                continue;
            }
            let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            out.push((name, bytes, m.mode() & 0o7777, m.mtime(), m.mtime_nsec()));
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn a_tree_sent_to_a_secure_receiver_comes_back_identical() {
    let work = tempfile::tempdir().unwrap();
    let tokens = work.path().join("tokens");
    let line = format!("alice:{}\n", knsock::hash_token("alice-secret").unwrap());
    std::fs::write(&tokens, line).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (dir, state) = (work.path().join("recv"), work.path().join("state"));
    std::fs::create_dir(&dir).unwrap();
    let mut server = CliServer::start(
        &dir,
        &[
            "--tls-self-signed",
            state.to_str().unwrap(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--confine",
            "--allow-fetch",
        ],
    );
    let port = server.port.to_string();
    let pin = server
        .next_line()
        .strip_prefix("tls pin ")
        .unwrap()
        .to_string();

    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 987_654_321);
    for (i, (name, mode)) in [("a", 0o644), ("sub/b.sh", 0o755), ("sub/c", 0o600)]
        .iter()
        .enumerate()
    {
        let p = tree.join(name);
        std::fs::write(&p, random_bytes(1000 * (i + 1) * (i + 1), i as u64)).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(t0 + Duration::from_secs(i as u64)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    let original = snapshot(src.path());
    let kn = |args: &[&str], token: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(args).env_remove("KNSOCK_TOKEN");
        if let Some(t) = token {
            c.env("KNSOCK_TOKEN", t);
        }
        c.output().unwrap()
    };
    let token = Some("alice:alice-secret");
    let tree_arg = tree.to_str().unwrap();
    let sent = kn(
        &[
            "send-file",
            "127.0.0.1",
            &port,
            "--pin",
            &pin,
            "-r",
            tree_arg,
        ],
        token,
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    std::fs::remove_dir_all(&tree).unwrap();

    let restored = work.path().join("restored");
    let to = restored.to_str().unwrap();
    let fetch = [
        "fetch-file",
        "127.0.0.1",
        &port,
        "tree",
        "--to",
        to,
        "--pin",
        &pin,
    ];
    let got = kn(&[&fetch[..], &["-r"]].concat(), token);
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert!(
        text(&got.stdout).contains("fetched tree/sub/c to "),
        "{}",
        text(&got.stdout)
    );
    assert_eq!(snapshot(&restored), original);

    let again = kn(&[&fetch[..], &["-r", "--skip-unchanged"]].concat(), token);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout).matches("unchanged ").count(), 3);

    // Without a token: refused in one line, exit status 1, nothing written.
    let anon = work.path().join("anon");
    let fetch_anon = ["fetch-file", "127.0.0.1", &port, "tree", "-r", "--to"];
    let refused = kn(
        &[&fetch_anon[..], &[anon.to_str().unwrap(), "--pin", &pin]].concat(),
        None,
    );
    assert_eq!(refused.status.code(), Some(1));
    let err = text(&refused.stderr);
    assert!(err.contains("authentication required"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(snapshot(&anon).is_empty());
    assert!(server.terminate().success());
}

#[test]
fn a_receiver_without_allow_fetch_is_refused_in_one_line() {
    let work = tempfile::tempdir().unwrap();
    let server = CliServer::start(work.path(), &[]);
    std::fs::write(work.path().join("f"), b"x").unwrap();
    let out = work.path().join("out");
    let port = server.port.to_string();
    let o = Command::new(BIN)
        .args(["fetch-file", "127.0.0.1", &port, "f", "--to"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(
        err.trim_end(),
        "kn-sock: the receiver does not serve fetches (it needs --allow-fetch)"
    );
    let no_to = Command::new(BIN)
        .args(["fetch-file", "127.0.0.1", &port, "f"])
        .output()
        .unwrap();
    assert_eq!(no_to.status.code(), Some(2), "--to is required");
}
