//! The sender's side of TLS: a client config from [`TlsOptions`] (pin, CA file or the system's
//! roots; an optional client certificate), and the handshake at connect with its errors in words.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::options::TlsOptions;
use super::pin::PinVerifier;
use super::stream::{describe, TlsStream};
use crate::error::{Error, ErrorKind, Result};

/// The one crypto provider: ring, TLS 1.3 suites only, AES-128-GCM first. ring's default puts
/// AES-256-GCM first, whose 14 rounds cost about a third more CPU per byte than AES-128's 10
/// for no security a file transfer needs (docs/security.md); a peer that prefers another suite
/// still gets it, since the server follows the client's order.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as suite;
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    })
}

/// Connects TLS over `sock` to `host` and completes the handshake.
pub(crate) fn connect(sock: TcpStream, host: &str, opts: &TlsOptions) -> Result<TlsStream> {
    let config = client_config(opts)?;
    let name = opts.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| Error::invalid(format!("{name:?} is not a valid server name")))?;
    let conn = ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| Error::new(ErrorKind::Auth, describe(&e)))?;
    let mut stream = TlsStream::new(conn, sock);
    stream.handshake().map_err(|e| handshake_error(e, name))?;
    Ok(stream)
}

/// A handshake failure: rustls' reason when it has one (kind `Auth`), else the I/O error.
pub(crate) fn handshake_error(e: std::io::Error, peer: &str) -> Error {
    let tls = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .map(describe);
    match tls {
        Some(why) => Error::new(ErrorKind::Auth, format!("TLS with {peer}: {why}")),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => Error::new(
            ErrorKind::Auth,
            format!("TLS with {peer}: the peer closed the connection during the handshake"),
        ),
        None => Error::io(format!("TLS handshake with {peer}"), e),
    }
}

fn client_config(opts: &TlsOptions) -> Result<ClientConfig> {
    opts.validate()?;
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::invalid(format!("TLS: {e}")))?;
    let builder = match (&opts.pin, &opts.ca_file) {
        (Some(pin), _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: pin.clone(),
                provider,
            })),
        (None, Some(ca)) => builder.with_root_certificates(roots_from(ca)?),
        (None, None) => builder.with_root_certificates(system_roots()?),
    };
    let mut config = match (&opts.client_cert, &opts.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| Error::invalid(format!("client certificate: {e}")))?,
        _ => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    Ok(config)
}

fn roots_from(ca: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| Error::invalid(format!("CA file {}: {e}", ca.display())))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::Auth,
            "no trusted CA in the system's store: give a CA file or a pin",
        ));
    }
    Ok(roots)
}

/// Every certificate of a PEM file, in order (a chain: the end entity first).
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<_, _>>())
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> Error {
    match e {
        rustls::pki_types::pem::Error::Io(io) => Error::io(path.display(), io),
        e => Error::invalid(format!("{}: {e:?}", path.display())),
    }
}
