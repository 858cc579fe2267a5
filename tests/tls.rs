//! TLS 1.3 end to end: round trips (one file, 2,000 small files, resume after a cut,
//! compression), every way verification refuses a server, the plain/TLS mismatches in both
//! directions, and a standard TLS client's handshake. Each refusal checks the kind and the
//! message at the sender and that nothing was stored.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use knsock::{
    collect_sources, send_file, send_files, ErrorKind, SendOptions, TlsOptions, WalkOptions,
};
use pki::*;

fn self_signed() -> (TestServer, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    let srv = TestServer::start(|c| {
        c.tls_self_signed(&dir).resume_ttl(Duration::from_secs(600));
    });
    (srv, state)
}

fn pin_of(srv: &TestServer) -> String {
    srv.server
        .tls_pin()
        .expect("a TLS server has a pin")
        .to_string()
}

#[test]
fn one_file_over_tls_with_a_pin_and_the_identity_is_kept() {
    let (srv, state) = self_signed();
    let pin = pin_of(&srv);
    assert!(pin.starts_with("sha256//") && pin.len() == 52, "{pin}");
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20, 1);
    let p = write_file(src.path(), "one.bin", &data);
    let r = send_file("127.0.0.1", srv.port(), &p, &pinned(&pin)).unwrap();
    assert_eq!(r.stored_name, "one.bin");
    assert_eq!(std::fs::read(srv.path("one.bin")).unwrap(), data);
    assert_eq!(srv.next_received().identity, None);
    for f in ["tls-key.pem", "tls-cert.pem"] {
        let mode = std::fs::metadata(state.path().join("state").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // A restart reuses the identity: the same pin.
    drop(srv);
    let dir = state.path().join("state");
    let again = TestServer::start(|c| {
        c.tls_self_signed(&dir);
    });
    assert_eq!(pin_of(&again), pin);
}

#[test]
fn two_thousand_small_files_over_tls() {
    let (srv, _state) = self_signed();
    let src = tempfile::tempdir().unwrap();
    for i in 0..2000 {
        write_file(src.path(), &format!("f{i}.txt"), &random_bytes(4096, i));
    }
    let walk = WalkOptions {
        recursive: true,
        ..WalkOptions::default()
    };
    let sources = collect_sources(&[src.path().to_path_buf()], &walk).unwrap();
    let report = send_files("127.0.0.1", srv.port(), &sources, &pinned(&pin_of(&srv))).unwrap();
    assert_eq!(report.delivered(), 2000, "{:?}", report.first_error());
    let stored = srv.entries().iter().filter(|e| e.ends_with(".txt")).count();
    assert_eq!(stored, 2000);
}

#[test]
fn a_cut_tls_connection_resumes() {
    const SIZE: u64 = 8 << 20;
    let (srv, _state) = self_signed();
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE as usize, 7);
    let p = write_file(src.path(), "big.bin", &data);
    let proxy = CutProxy::start(srv.addr(), SIZE / 2);
    let opts = SendOptions {
        retries: 3,
        retry_delay: Duration::from_millis(10),
        ..pinned(&pin_of(&srv))
    };
    let r = send_file("127.0.0.1", proxy.addr.port(), &p, &opts).unwrap();
    assert_eq!(r.attempts, 2);
    assert!(r.resumed_from > SIZE / 4, "resumed from {}", r.resumed_from);
    assert_eq!(std::fs::read(srv.path("big.bin")).unwrap(), data);
}

#[test]
fn compression_over_tls() {
    let (srv, _state) = self_signed();
    let src = tempfile::tempdir().unwrap();
    let data = b"compressible line of text\n".repeat(100_000);
    let p = write_file(src.path(), "text.log", &data);
    let opts = SendOptions {
        compress: true,
        ..pinned(&pin_of(&srv))
    };
    send_file("127.0.0.1", srv.port(), &p, &opts).unwrap();
    assert_eq!(std::fs::read(srv.path("text.log")).unwrap(), data);
}

/// Sends one small file and returns the error, which must be an authentication failure.
fn refused(port: u16, opts: &SendOptions) -> String {
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "x.bin", b"data");
    let e = send_file("127.0.0.1", port, &p, opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    e.message().to_string()
}

fn ca_server(pki: &Pki, name: &str, expired: bool) -> TestServer {
    let (cert, key) = pki.server("server", name, expired);
    TestServer::start(|c| {
        c.tls_cert(&cert, &key);
    })
}

fn with_ca(ca: &std::path::Path, server_name: Option<&str>) -> SendOptions {
    SendOptions {
        tls: Some(TlsOptions {
            ca_file: Some(ca.to_path_buf()),
            server_name: server_name.map(str::to_string),
            ..TlsOptions::default()
        }),
        ..SendOptions::default()
    }
}

#[test]
fn a_ca_signed_server_is_verified_with_its_host_name() {
    let pki = Pki::new();
    let srv = ca_server(&pki, "localhost", false);
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "ok.txt", b"hello");
    send_file("localhost", srv.port(), &p, &with_ca(&pki.ca_pem, None)).unwrap();
    assert_eq!(std::fs::read(srv.path("ok.txt")).unwrap(), b"hello");
}

#[test]
fn refusals_of_the_server_certificate() {
    let pki = Pki::new();
    // Hostname mismatch: the certificate is for another name.
    let srv = ca_server(&pki, "other.example", false);
    let m = refused(srv.port(), &with_ca(&pki.ca_pem, Some("localhost")));
    assert!(m.to_lowercase().contains("not valid for name"), "{m}");
    assert!(srv.entries().is_empty());
    // Unknown CA: issued by a CA the sender does not trust.
    let stranger = Pki::new();
    let srv = ca_server(&stranger, "localhost", false);
    let m = refused(srv.port(), &with_ca(&pki.ca_pem, Some("localhost")));
    assert!(m.to_lowercase().contains("unknownissuer"), "{m}");
    assert!(srv.entries().is_empty());
    // Expired.
    let srv = ca_server(&pki, "localhost", true);
    let m = refused(srv.port(), &with_ca(&pki.ca_pem, Some("localhost")));
    assert!(m.to_lowercase().contains("expired"), "{m}");
    assert!(srv.entries().is_empty());
    // Wrong pin.
    let (srv, _state) = self_signed();
    let wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let m = refused(srv.port(), &pinned(wrong));
    assert!(m.contains("does not match the pin"), "{m}");
    // The key it was offered is not shown (a pin pasted from here would pin whoever answered);
    // the message says where the right one comes from.
    let real = srv.server.tls_pin().unwrap();
    assert!(!m.contains(real), "{m}");
    assert!(!m.contains("its pin is"), "{m}");
    assert!(m.contains("tls pin sha256//"), "{m}");
    assert!(m.contains("never from this connection"), "{m}");
    assert!(srv.entries().is_empty());
}

#[test]
fn a_plain_client_is_told_the_server_requires_tls() {
    let (srv, _state) = self_signed();
    let m = refused(srv.port(), &SendOptions::default());
    assert!(m.contains("this server requires TLS"), "{m}");
    assert_eq!(srv.next_error().0, ErrorKind::Auth);
    assert!(srv.entries().is_empty());
}

#[test]
fn a_kn_sock_0_3_client_is_cut_off_and_the_server_says_why() {
    let (srv, _state) = self_signed();
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "old.txt", b"legacy data");
    let opts = SendOptions {
        legacy: true,
        ..SendOptions::default()
    };
    // kn-sock 0.3 has no way to hear a reason: the sender only sees the connection reset.
    let e = send_file("127.0.0.1", srv.port(), &p, &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    let (kind, message) = srv.next_error();
    assert_eq!(kind, ErrorKind::Auth);
    assert!(message.contains("requires TLS"), "{message}");
    assert!(srv.entries().is_empty());
}

#[test]
fn a_tls_client_against_a_plain_server_gets_a_clear_error_at_once() {
    let srv = TestServer::start(|_| {});
    let started = Instant::now();
    let pin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let m = refused(srv.port(), &pinned(pin));
    assert!(m.contains("does not speak TLS"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    assert!(srv.entries().is_empty());
}

#[test]
fn allow_plaintext_lets_a_plain_sender_in() {
    let state = tempfile::tempdir().unwrap();
    let srv = TestServer::start(|c| {
        c.tls_self_signed(state.path()).allow_plaintext(true);
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "plain.txt", b"plain");
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    assert_eq!(std::fs::read(srv.path("plain.txt")).unwrap(), b"plain");
}

#[test]
fn openssl_s_client_completes_a_handshake() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        let status = std::process::Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/install-deps.sh"
            ))
            .status();
        assert!(status.is_ok_and(|s| s.success()), "openssl is needed");
    }
    let (srv, _state) = self_signed();
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-brief", "-tls1_3", "-connect"])
        .arg(format!("127.0.0.1:{}", srv.port()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONNECTION ESTABLISHED"), "{text}");
    assert!(text.contains("TLSv1.3"), "{text}");
}
