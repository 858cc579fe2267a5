//! Who may send: tokens (right, wrong, missing, a loose tokens file), client certificates, the
//! slow-down of repeated failures, and confinement (hostile names, another identity's file,
//! another identity's partial upload).

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/secured.rs"]
mod secured;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use knsock::{send_file, ErrorKind, SendOptions, ServerConfig, TlsOptions};
use pki::*;
use secured::{secured, Secured};

/// The secured receiver, keeping interrupted uploads for resume.
fn resuming(tune: impl FnOnce(&mut ServerConfig)) -> Secured {
    secured(|c| {
        c.resume_ttl(Duration::from_secs(600));
        tune(c);
    })
}

fn one_file(name: &str, data: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), name, data);
    (src, p)
}

#[test]
fn a_right_token_gives_the_identity() {
    let s = resuming(|_| {});
    let (_src, p) = one_file("a.txt", b"from alice");
    send_file(
        "127.0.0.1",
        s.srv.port(),
        &p,
        &with_token(&s.pin, "alice:alice-secret"),
    )
    .unwrap();
    let info = s.srv.next_received();
    assert_eq!(info.identity.as_deref(), Some("alice"));
    assert_eq!(std::fs::read(s.srv.path("a.txt")).unwrap(), b"from alice");
}

fn auth_refusal(s: &Secured, opts: &SendOptions) -> String {
    let (_src, p) = one_file("x.txt", b"data");
    let e = send_file("127.0.0.1", s.srv.port(), &p, opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_eq!(e.peer_reason().map(|r| r.code), Some(12), "{e}");
    let (kind, _) = s.srv.next_error();
    assert_eq!(kind, ErrorKind::Auth);
    assert!(s.srv.entries().is_empty(), "{:?}", s.srv.entries());
    e.message().to_string()
}

#[test]
fn no_token_is_refused() {
    let s = resuming(|_| {});
    let m = auth_refusal(&s, &pinned(&s.pin));
    assert!(m.contains("authentication required"), "{m}");
}

#[test]
fn a_wrong_token_is_refused_and_repeated_failures_slow_down() {
    let s = resuming(|_| {});
    let m = auth_refusal(&s, &with_token(&s.pin, "alice:guess"));
    assert!(m.contains("wrong token"), "{m}");
    let m = auth_refusal(&s, &with_token(&s.pin, "nobody:guess"));
    assert!(m.contains("wrong token"), "{m}");
    // The third failure from this address waits at least 500 ms before its answer.
    let started = Instant::now();
    auth_refusal(&s, &with_token(&s.pin, "alice:guess2"));
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn a_loose_tokens_file_stops_the_server_from_starting() {
    let keep = tempfile::tempdir().unwrap();
    let tokens = tokens_file(keep.path(), &[("alice", "s")]);
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::new(dir.path());
    cfg.host("127.0.0.1")
        .tls_self_signed(keep.path().join("state"))
        .tokens_file(&tokens);
    let e = cfg.start().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("chmod 600"), "{e}");
}

fn mtls_options(pin: &str, cert: &(std::path::PathBuf, std::path::PathBuf)) -> SendOptions {
    SendOptions {
        tls: Some(TlsOptions {
            pin: Some(pin.to_string()),
            client_cert: Some(cert.0.clone()),
            client_key: Some(cert.1.clone()),
            ..TlsOptions::default()
        }),
        ..SendOptions::default()
    }
}

#[test]
fn client_certificates_prove_the_identity() {
    let pki = Pki::new();
    let state = tempfile::tempdir().unwrap();
    let srv = TestServer::start(|c| {
        c.tls_self_signed(state.path()).client_ca(&pki.ca_pem);
    });
    let pin = srv.server.tls_pin().unwrap().to_string();
    let (_src, p) = one_file("c.txt", b"by certificate");
    send_file(
        "127.0.0.1",
        srv.port(),
        &p,
        &mtls_options(&pin, &pki.client("carol")),
    )
    .unwrap();
    assert_eq!(srv.next_received().identity.as_deref(), Some("carol"));
    // Without a certificate: refused, and nothing more stored.
    let (_src, p) = one_file("d.txt", b"anonymous");
    let e = send_file("127.0.0.1", srv.port(), &p, &pinned(&pin)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.message().contains("client certificate"), "{e}");
    assert_eq!(srv.entries(), vec!["c.txt".to_string()]);
    // A certificate from another CA: refused too.
    let stranger = Pki::new();
    let e = send_file(
        "127.0.0.1",
        srv.port(),
        &p,
        &mtls_options(&pin, &stranger.client("carol")),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_eq!(srv.entries(), vec!["c.txt".to_string()]);
}

fn named(opts: SendOptions, name: &str) -> SendOptions {
    SendOptions {
        remote_name: Some(name.to_string()),
        ..opts
    }
}

#[test]
fn a_confined_identity_cannot_write_outside_its_directory() {
    let s = resuming(|c| {
        c.confine_identities(true);
    });
    let alice = with_token(&s.pin, "alice:alice-secret");
    let bob = with_token(&s.pin, "bob:bob-secret");
    let (_src, p) = one_file("f.txt", b"bob's");
    let r = send_file("127.0.0.1", s.srv.port(), &p, &bob).unwrap();
    assert_eq!(r.stored_name, "bob/f.txt");
    // Alice's f.txt lands in her directory; bob's is untouched.
    let (_src, q) = one_file("f.txt", b"alice's");
    send_file("127.0.0.1", s.srv.port(), &q, &alice).unwrap();
    assert_eq!(std::fs::read(s.srv.path("bob/f.txt")).unwrap(), b"bob's");
    assert_eq!(
        std::fs::read(s.srv.path("alice/f.txt")).unwrap(),
        b"alice's"
    );
    for hostile in [
        "../bob/f.txt",
        "/bob/f.txt",
        "x/../../bob/f.txt",
        "..",
        "",
        "a//b",
        ".knsock-partial-0",
    ] {
        let e = send_file(
            "127.0.0.1",
            s.srv.port(),
            &q,
            &named(alice.clone(), hostile),
        )
        .unwrap_err();
        // The sender's own check refuses most before they leave; the receiver applies the
        // same rules to `<identity dir>/<name>`.
        assert!(
            matches!(e.kind(), ErrorKind::Rejected | ErrorKind::InvalidArgument),
            "{hostile:?}: {e}"
        );
    }
    assert_eq!(std::fs::read(s.srv.path("bob/f.txt")).unwrap(), b"bob's");
    let mut all = s.srv.entries();
    all.retain(|e| !e.starts_with("alice") && !e.starts_with("bob"));
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn a_confined_identity_cannot_take_over_another_ones_partial_upload() {
    const SIZE: u64 = 4 << 20;
    let s = resuming(|c| {
        c.confine_identities(true);
    });
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE as usize, 3);
    let p = write_file(src.path(), "big.bin", &data);
    // Bob's upload is cut halfway: its data is kept for his retry.
    let proxy = CutProxy::start(s.srv.addr(), SIZE / 2);
    let bob = with_token(&s.pin, "bob:bob-secret");
    assert!(send_file("127.0.0.1", proxy.addr.port(), &p, &bob).is_err());
    let partial = |srv: &TestServer| {
        srv.entries()
            .into_iter()
            .filter(|e| e.starts_with("bob/.knsock-partial-"))
            .count()
    };
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while partial(&s.srv) == 0 {
        assert!(Instant::now() < deadline, "bob's partial data was not kept");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Alice offers the same file (name, size, mtime): she starts from zero in her own directory.
    let alice = with_token(&s.pin, "alice:alice-secret");
    let r = send_file("127.0.0.1", s.srv.port(), &p, &alice).unwrap();
    assert_eq!(r.resumed_from, 0);
    assert_eq!(r.stored_name, "alice/big.bin");
    assert_eq!(partial(&s.srv), 1, "bob's partial data is still his");
    assert!(!s.srv.path("bob/big.bin").exists());
    // Bob resumes his own.
    let r = send_file("127.0.0.1", s.srv.port(), &p, &bob).unwrap();
    assert!(r.resumed_from > 0);
    assert_eq!(std::fs::read(s.srv.path("bob/big.bin")).unwrap(), data);
}
