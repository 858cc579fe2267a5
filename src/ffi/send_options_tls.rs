//! The TLS and token setters of `knsock_send_options` (kept apart from `send_options.rs`, as the
//! core keeps `TlsOptions` apart): how a sender verifies its server and proves who it is.
//!
//! Setting any TLS detail (CA file, pin, server name, client certificate) or a token turns TLS
//! on; `knsock_send_options_set_tls(options, false)` turns it off and forgets the TLS details.
//! Each setter checks the combination with the core's own rule ([`TlsOptions::validate`],
//! [`split_token`]), so a bad value is refused when it is set, with its detail in
//! `knsock_send_options_last_error()`, and the options keep their previous value.

use std::ffi::c_char;
use std::path::PathBuf;

use super::convert::{arg_path, arg_str};
use super::send_options::{knsock_send_options, set};
use super::types::knsock_result;
use crate::{split_token, Error, TlsOptions};

/// Applies `change` to a copy of the options' TLS settings (default ones when TLS is off),
/// checks the copy, and keeps it only when it passes: TLS is then on. Forgetting a detail
/// (`forget`, a NULL argument) while TLS is off changes nothing.
fn change_tls(
    o: &mut knsock_send_options,
    forget: bool,
    change: impl FnOnce(&mut TlsOptions),
) -> Result<(), Error> {
    if forget && o.inner.tls.is_none() {
        return Ok(());
    }
    let mut probe = o.inner.tls.clone().unwrap_or_default();
    change(&mut probe);
    probe.validate()?;
    o.inner.tls = Some(probe);
    Ok(())
}

/// A path argument where NULL means "none".
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid during the call.
unsafe fn optional_path(p: *const c_char, what: &str) -> Result<Option<PathBuf>, Error> {
    match p.is_null() {
        true => Ok(None),
        // SAFETY: by this function's contract.
        false => unsafe { arg_path(p, what) }.map(Some),
    }
}

/// Turns TLS 1.3 on or off for sends with these options. Default: off (plain TCP, as kn-sock).
///
/// With TLS on, the server is always verified; there is no way to turn verification off. It is
/// checked against the pin when one is set (`knsock_send_options_set_pin()`), else against the
/// CA file (`knsock_send_options_set_ca_file()`), else against the system's trust store; in the
/// last two cases its certificate must also name the host connected to (or the name set with
/// `knsock_send_options_set_server_name()`). A server that fails verification, or that does not
/// speak TLS, fails the send with `KNSOCK_RESULT_AUTH` before any file data leaves.
///
/// Turning TLS on keeps the TLS details already set; turning it off forgets them (CA file, pin,
/// server name, client certificate). A token set with `knsock_send_options_set_token()` is kept,
/// but a send with a token and without TLS fails with `KNSOCK_RESULT_INVALID_ARGUMENT` (a token
/// is only ever sent inside TLS). Setting any TLS detail or a token turns TLS on by itself.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_tls(
    options: *mut knsock_send_options,
    on: bool,
) -> knsock_result {
    set(options, |o| {
        match on {
            true => change_tls(o, false, |_| {})?,
            false => o.inner.tls = None,
        }
        Ok(())
    })
}

/// Trusts only the CA certificate(s) in this PEM file (path copied; the file is read at each
/// send) instead of the system's trust store, and turns TLS on. The server's certificate must
/// chain to one of them and name the host. NULL forgets the CA file (and leaves TLS as it is). Cannot be
/// combined with a pin: setting one while the other is set gives
/// `KNSOCK_RESULT_INVALID_ARGUMENT` ("give a pin or a CA file, not both") and changes nothing.
/// Default: none.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_ca_file(
    options: *mut knsock_send_options,
    path: *const c_char,
) -> knsock_result {
    set(options, |o| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let path = unsafe { optional_path(path, "CA file") }?;
        change_tls(o, path.is_none(), |t| t.ca_file = path)
    })
}

/// Trusts exactly the server key with this pin (copied), and turns TLS on: `sha256//` and the
/// base64 of the SHA-256 of the server's public key (curl's `CURLOPT_PINNEDPUBLICKEY` form,
/// what `knsock_server_tls_pin()` and `kn-sock run-file-server` print). With a pin, neither CA
/// nor host name is checked: the key is. A malformed pin, or a pin while a CA file is set, gives
/// `KNSOCK_RESULT_INVALID_ARGUMENT` (detail in `knsock_send_options_last_error()`) and changes
/// nothing. NULL forgets the pin (and leaves TLS as it is). Default: none.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_pin(
    options: *mut knsock_send_options,
    pin: *const c_char,
) -> knsock_result {
    set(options, |o| {
        let pin = match pin.is_null() {
            true => None,
            // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
            false => Some(unsafe { arg_str(pin, "pin") }?.to_string()),
        };
        change_tls(o, pin.is_none(), |t| t.pin = pin)
    })
}

/// The name the server's certificate must carry, when it differs from the host connected to
/// (e.g. connecting to an IP address whose certificate names "files.example"); copied; turns TLS
/// on. Not used with a pin. An empty name gives `KNSOCK_RESULT_INVALID_ARGUMENT`; NULL restores
/// the default, the host passed to the send (and leaves TLS as it is).
#[no_mangle]
pub extern "C" fn knsock_send_options_set_server_name(
    options: *mut knsock_send_options,
    name: *const c_char,
) -> knsock_result {
    set(options, |o| {
        let name = match name.is_null() {
            true => None,
            // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
            false => Some(unsafe { arg_str(name, "server name") }?.to_string()),
        };
        if name.as_deref() == Some("") {
            return Err(Error::invalid("server name is empty"));
        }
        change_tls(o, name.is_none(), |t| t.server_name = name)
    })
}

/// A client certificate chain and its private key (PEM files; paths copied, files read at each
/// send) to show a server that authenticates senders by certificate; turns TLS on. The identity
/// the server sees is the certificate's subject common name. Both NULL forget them (and leave TLS as
/// it is); one NULL and not the other gives `KNSOCK_RESULT_INVALID_ARGUMENT`. Default: none.
#[no_mangle]
pub extern "C" fn knsock_send_options_set_client_cert(
    options: *mut knsock_send_options,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> knsock_result {
    set(options, |o| {
        // SAFETY: the header's contract: string arguments are NULL or NUL-terminated.
        let (cert, key) = unsafe {
            (
                optional_path(cert_path, "certificate")?,
                optional_path(key_path, "key")?,
            )
        };
        let forget = cert.is_none() && key.is_none();
        change_tls(o, forget, |t| (t.client_cert, t.client_key) = (cert, key))
    })
}

/// A token, `NAME:SECRET` (copied), proving who the sender is to a server that requires it;
/// turns TLS on, since a token is only ever sent inside TLS, after the server was verified. The
/// name is 1 to 64 of letters, digits, '.', '_' and '-' (not starting with '.'), the secret not
/// empty; anything else gives `KNSOCK_RESULT_INVALID_ARGUMENT` and changes nothing. A server that
/// refuses it fails the send with `KNSOCK_RESULT_AUTH` (peer code 12) before any file is offered.
/// NULL forgets the token. Default: none.
///
/// The secret stays in the options' memory until they are freed or the token is replaced; do not
/// put it on a command line (other users can read those).
#[no_mangle]
pub extern "C" fn knsock_send_options_set_token(
    options: *mut knsock_send_options,
    token: *const c_char,
) -> knsock_result {
    set(options, |o| {
        if token.is_null() {
            o.inner.token = None;
            return Ok(());
        }
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        let token = unsafe { arg_str(token, "token") }?;
        split_token(token)?;
        change_tls(o, false, |_| {})?;
        o.inner.token = Some(token.to_string());
        Ok(())
    })
}
