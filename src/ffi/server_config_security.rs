//! The security setters of `knsock_server_config` (the C side of the core's
//! `server/secure_setters.rs`): the TLS identity, who may send (tokens, client certificates),
//! where each identity may write, and the unsafe opt-ins for plain senders. docs/security.md
//! says how to combine them.
//!
//! Files named here are read when the server starts: a missing or malformed one, a tokens file
//! that group or others may read, or a combination that makes no sense (tokens without TLS,
//! confinement without authentication) fails `knsock_server_start()` with
//! `KNSOCK_RESULT_INVALID_ARGUMENT` (or `KNSOCK_RESULT_NOT_FOUND`, `KNSOCK_RESULT_IO`) and the
//! detail in its error. These settings cannot be removed once set; start from a new config.

use std::ffi::c_char;

use super::convert::{arg_path, arg_str};
use super::server_config::{knsock_server_config, set};
use super::types::knsock_result;
use crate::Error;

/// Serves TLS 1.3 with this certificate chain and private key (PEM files; paths copied, files
/// read at start). Senders verify it against their trust store or CA file, and its name. Plain
/// and kn-sock 0.3 senders are then refused (see `knsock_server_config_set_allow_plaintext()`):
/// a plain knsock sender gets `KNSOCK_RESULT_AUTH` with peer code 13 ("this server requires
/// TLS"). Replaces a self-signed identity set before. Both arguments are required.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_tls_cert(
    config: *mut knsock_server_config,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let (cert, key) = unsafe {
            (
                arg_path(cert_path, "certificate")?,
                arg_path(key_path, "key")?,
            )
        };
        c.inner.tls_cert(cert, key);
        Ok(())
    })
}

/// Serves TLS 1.3 with a self-signed identity kept in `state_dir` (path copied; the directory is
/// created mode 0700 at start if missing, the key and certificate in it mode 0600), made on the
/// first start and reused afterwards, so its pin stays the same while the directory is kept.
/// Senders verify it by its pin: `knsock_server_tls_pin()` gives it once the server runs. Keep
/// `state_dir` outside the directory files are stored in. Replaces a certificate set before.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_tls_self_signed(
    config: *mut knsock_server_config,
    state_dir: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        c.inner
            .tls_self_signed(unsafe { arg_path(state_dir, "state directory") }?);
        Ok(())
    })
}

/// Requires senders to prove who they are with a token (path copied): the file holds one
/// `NAME:HASH` line per sender, the hash made by `knsock_hash_token()` (or `kn-sock hash-token`).
/// The server refuses to start when group or others may read or write the file (chmod 600), or
/// without TLS. A sender without a valid token (or client certificate, when a client CA is set
/// too) is refused before any file with `KNSOCK_RESULT_AUTH`, peer code 12; repeated failures
/// from one address are answered more and more slowly (250 ms doubling to 8 s).
#[no_mangle]
pub extern "C" fn knsock_server_config_set_tokens_file(
    config: *mut knsock_server_config,
    path: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        c.inner
            .tokens_file(unsafe { arg_path(path, "tokens file") }?);
        Ok(())
    })
}

/// Lets senders prove who they are with a certificate issued by the CA(s) in this PEM file (path
/// copied, read at start); the identity is the certificate's subject common name. With a tokens
/// file too, either credential is accepted (both must name the same identity); alone, a
/// certificate is required. Needs TLS.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_client_ca(
    config: *mut knsock_server_config,
    path: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        c.inner
            .client_ca(unsafe { arg_path(path, "client CA file") }?);
        Ok(())
    })
}

/// Confines every identity to `<directory>/<identity>` (unless given its own directory with
/// `knsock_server_config_set_identity_dir()`): its names resolve beneath it, never elsewhere,
/// and the names handlers see start with it. Needs authentication (tokens or a client CA) and
/// excludes the plaintext and legacy opt-ins. Default: off.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_confine_identities(
    config: *mut knsock_server_config,
    confine: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.confine_identities(confine);
        Ok(())
    })
}

/// Confines `identity` (1 to 64 of letters, digits, '.', '_', '-', not starting with '.') to
/// `subdir`, a relative `/`-separated name beneath the server's directory under the same rules as
/// a file name (no `..`, no leading `/`); both copied. Setting it again for the same identity
/// replaces its directory. A bad name or directory gives `KNSOCK_RESULT_INVALID_ARGUMENT`. Needs
/// authentication, like `knsock_server_config_set_confine_identities()`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_identity_dir(
    config: *mut knsock_server_config,
    identity: *const c_char,
    subdir: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let (identity, subdir) =
            unsafe { (arg_str(identity, "identity")?, arg_str(subdir, "subdir")?) };
        crate::tls::check_identity_name(identity).map_err(Error::invalid)?;
        crate::protocol::check_name(subdir)
            .map_err(|why| Error::invalid(format!("directory of identity {identity}: {why}")))?;
        c.inner.identity_dir(identity, subdir);
        Ok(())
    })
}

/// UNSAFE: also accepts plain knsock senders (unencrypted, unauthenticated, writing anywhere in
/// the directory) on a TLS server. Needs TLS; cannot be combined with confinement. Default: off.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_allow_plaintext(
    config: *mut knsock_server_config,
    allow: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.allow_plaintext(allow);
        Ok(())
    })
}

/// UNSAFE: also accepts kn-sock 0.3 uploads (unencrypted, unauthenticated) on a TLS server;
/// without it they are cut off and reported to the error handler. Cannot be combined with
/// confinement. Default: off.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_allow_legacy(
    config: *mut knsock_server_config,
    allow: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.allow_legacy(allow);
        Ok(())
    })
}

/// Serves fetches (`knsock_fetch_files()`): each authenticated identity gets back what it may
/// write (its confined directory when confined, else the whole directory); anonymous clients
/// are refused (peer code 20) unless `knsock_server_config_set_allow_anonymous_fetch()`.
/// Default: off.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_allow_fetch(
    config: *mut knsock_server_config,
    allow: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.allow_fetch(allow);
        Ok(())
    })
}

/// UNSAFE: with `knsock_server_config_set_allow_fetch()`, also serves fetches to clients that
/// proved no identity, plain connections included: anyone who reaches the port reads every
/// file in the directory. Cannot be combined with confinement. Default: off.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_allow_anonymous_fetch(
    config: *mut knsock_server_config,
    allow: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.allow_anonymous_fetch(allow);
        Ok(())
    })
}
