//! What a sender asks of TLS ([`TlsOptions`]: how to verify the server, which name to check,
//! which client certificate to show) and where a server's identity comes from.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// How a sender secures its connection. Verification cannot be turned off: the server is
/// checked against a pin when one is given, else against `ca_file`, else against the system's
/// trust store, and in the last two cases its certificate must name the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trust only certificates issued by the CA(s) in this PEM file (instead of the system's).
    pub ca_file: Option<PathBuf>,
    /// Trust exactly the server key with this pin, `sha256//BASE64` (curl's
    /// `CURLOPT_PINNEDPUBLICKEY` form, printed by the server); no CA and no host name are
    /// checked then.
    pub pin: Option<String>,
    /// The name the certificate must carry, when it differs from the host connected to.
    pub server_name: Option<String>,
    /// A client certificate chain and its key (PEM), for servers that authenticate senders
    /// by certificate.
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert` (PEM).
    pub client_key: Option<PathBuf>,
}

impl TlsOptions {
    /// Checks the combination: a pin or a CA file, not both; a client certificate with its key.
    pub fn validate(&self) -> Result<()> {
        if self.pin.is_some() && self.ca_file.is_some() {
            return Err(Error::invalid("give a pin or a CA file, not both"));
        }
        if let Some(pin) = &self.pin {
            check_pin(pin)?;
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(Error::invalid(
                "a client certificate needs its key, and a key its certificate",
            ));
        }
        Ok(())
    }
}

/// A pin's form: `sha256//` and the base64 of 32 bytes (44 characters).
pub fn check_pin(pin: &str) -> Result<()> {
    let ok = pin.strip_prefix("sha256//").is_some_and(|b| {
        b.len() == 44
            && b.ends_with('=')
            && b[..43]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    });
    match ok {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "pin must look like sha256//BASE64 (44 characters of base64), not {pin:?}"
        ))),
    }
}

/// A token credential's form: `NAME:SECRET`. Returns the two parts.
pub fn split_token(token: &str) -> Result<(&str, &str)> {
    let token = token.trim_end_matches(['\n', '\r']);
    match token.split_once(':') {
        Some((name, secret)) if check_identity_name(name).is_ok() && !secret.is_empty() => {
            Ok((name, secret))
        }
        _ => Err(Error::invalid(
            "a token must be NAME:SECRET (name of letters, digits, '.', '_', '-')",
        )),
    }
}

/// The AUTH frame that presents `token` (docs/protocol.md section 1.2).
pub(crate) fn auth_frame(token: &str) -> Result<crate::protocol::Frame> {
    let (name, secret) = split_token(token)?;
    Ok(crate::protocol::Frame::Auth {
        name: name.to_string(),
        secret: crate::protocol::Secret(secret.to_string()),
    })
}

/// An identity name usable as a directory: 1 to 64 of `[A-Za-z0-9._-]`, not starting with '.'.
pub fn check_identity_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "identity {name:?} is not 1 to 64 of letters, digits, '.', '_', '-' (not starting with '.')"
        )),
    }
}

/// Where a server's certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerIdentity {
    /// A certificate chain and its private key, PEM files.
    Pem {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// Generated on first start and kept (mode 0600) in this directory, reused afterwards.
    SelfSigned {
        /// Where the key and certificate are kept.
        state_dir: PathBuf,
    },
}
