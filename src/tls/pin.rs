//! Public-key pins in curl's form, `sha256//BASE64` of the certificate's SubjectPublicKeyInfo,
//! and the verifier that trusts exactly the pinned key (no CA, no host name, no dates).

use std::sync::Arc;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use super::der::public_key_info;

/// The pin of a certificate's public key, or `None` if the certificate cannot be read.
pub(crate) fn pin_of(cert: &[u8]) -> Option<String> {
    let spki = public_key_info(cert)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    Some(format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    ))
}

/// Trusts the server whose end-entity key has the pin; the handshake signature is still
/// checked against that key, so only its holder passes.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    pub(crate) pin: String,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match pin_of(end_entity) {
            // Both are public; a plain comparison leaks nothing.
            Some(p) if p == self.pin => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch)),
            ))),
            None => Err(Error::InvalidCertificate(CertificateError::BadEncoding)),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server's key is not the pinned one. The message does not show the key this server
/// presented: a pin copied from the error would pin whoever is in the middle (curl shows
/// nothing either; docs/security.md). It says where the right pin comes from instead.
#[derive(Debug)]
struct PinMismatch;

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the server's key does not match the pin: this may be another server, or its key \
             changed. Get its pin from the server itself, never from this connection: \
             `kn-sock run-file-server` prints it at start as its `tls pin sha256//…` line \
             (knsock_server_tls_pin() in the library); see docs/security.md",
        )
    }
}

impl std::error::Error for PinMismatch {}
