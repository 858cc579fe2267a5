//! A receiver over TLS (self-signed, pinned) that knows the tokens of alice and bob, and the
//! options that reach it: the setting of the authentication and fetch tests. Included by path
//! beside `common` and `pki`.
#![allow(dead_code)]

use knsock::{FetchOptions, ServerConfig, TlsOptions};

use crate::common::TestServer;
use crate::pki::tokens_file;

pub struct Secured {
    pub srv: TestServer,
    /// The pin of its self-signed key.
    pub pin: String,
    _keep: tempfile::TempDir,
}

/// The receiver, configured further by `tune`.
pub fn secured(tune: impl FnOnce(&mut ServerConfig)) -> Secured {
    let keep = tempfile::tempdir().unwrap();
    let tokens = tokens_file(
        keep.path(),
        &[("alice", "alice-secret"), ("bob", "bob-secret")],
    );
    let state = keep.path().join("state");
    let srv = TestServer::start(|c| {
        c.tls_self_signed(&state).tokens_file(&tokens);
        tune(c);
    });
    let pin = srv.server.tls_pin().unwrap().to_string();
    Secured {
        srv,
        pin,
        _keep: keep,
    }
}

/// Fetch options for the receiver of `pin` with `token` ("name:secret").
pub fn fetch_opts(pin: &str, token: &str) -> FetchOptions {
    FetchOptions {
        tls: Some(TlsOptions {
            pin: Some(pin.to_string()),
            ..TlsOptions::default()
        }),
        token: Some(token.to_string()),
        ..FetchOptions::default()
    }
}
