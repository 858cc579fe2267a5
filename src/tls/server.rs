//! The receiver's side of TLS: the server config from its identity (PEM files or self-signed),
//! an optional client CA for sender certificates, and the handshake at accept.

use std::path::Path;
use std::sync::Arc;

use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};

use super::client::{handshake_error, load_certs, load_key, provider};
use super::der::subject_common_name;
use super::options::{check_identity_name, ServerIdentity};
use super::pin::pin_of;
use super::self_signed;
use crate::error::{Error, ErrorKind, Result};

/// A server's TLS, ready to accept: its config and the pin of its key.
pub(crate) struct ServerTls {
    config: Arc<ServerConfig>,
    pin: String,
}

impl ServerTls {
    /// Loads (or, self-signed, creates) the identity. With `client_ca`, senders may prove who
    /// they are by certificate; `cert_required` makes it the only way in.
    pub(crate) fn load(
        identity: &ServerIdentity,
        client_ca: Option<&Path>,
        cert_required: bool,
    ) -> Result<ServerTls> {
        let (chain, key) = match identity {
            ServerIdentity::Pem { cert, key } => (load_certs(cert)?, load_key(key)?),
            ServerIdentity::SelfSigned { state_dir } => self_signed::load_or_create(state_dir)?,
        };
        let pin = pin_of(&chain[0])
            .ok_or_else(|| Error::invalid("the server certificate cannot be read"))?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::invalid(format!("TLS: {e}")))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| Error::invalid(format!("client CA {}: {e}", ca.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = match cert_required {
                    true => verifier.build(),
                    false => verifier.allow_unauthenticated().build(),
                }
                .map_err(|e| Error::invalid(format!("client CA {}: {e}", ca.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| Error::invalid(format!("server certificate and key: {e}")))?;
        // No resumption: no ticket ever arrives unasked in the middle of a transfer.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        Ok(ServerTls {
            config: Arc::new(config),
            pin,
        })
    }

    /// The rustls configuration (for tests that drive a server connection by hand).
    #[cfg(test)]
    pub(crate) fn rustls_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The pin of the server's key, `sha256//BASE64`.
    pub(crate) fn pin(&self) -> &str {
        &self.pin
    }

    /// The server side of a handshake on an accepted socket, on the event loop; it must
    /// complete by `deadline` (a peer dripping it is cut off). The identity a client
    /// certificate proves is its subject's common name, which must be usable as a directory
    /// name. Refused, the socket comes back when there is one, its alert sent, so the caller
    /// can read what the client already sent and the alert is not lost to a reset.
    pub(crate) async fn accept<S>(
        &self,
        sock: S,
        peer: &str,
        deadline: std::time::Instant,
    ) -> Result<Accepted<S>, (Refused, Option<S>)>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let refused = |error, credential| Refused { error, credential };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config));
        let handshake = acceptor.accept(sock).into_fallible();
        let stream = match tokio::time::timeout_at(deadline.into(), handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err((e, sock))) => {
                let credential = matches!(
                    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
                    Some(
                        rustls::Error::InvalidCertificate(_)
                            | rustls::Error::NoCertificatesPresented
                    )
                );
                return Err((refused(handshake_error(e, peer), credential), Some(sock)));
            }
            Err(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the TLS handshake did not complete in time",
                );
                return Err((refused(handshake_error(e, peer), false), None));
            }
        };
        let identity = match stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            None => None,
            Some(cert) => {
                let name = subject_common_name(cert)
                    .ok_or_else(|| "client certificate has no single common name".to_string())
                    .and_then(|n| check_identity_name(&n).map(|()| n));
                match name {
                    Ok(n) => Some(n),
                    Err(why) => {
                        let e = refused(Error::new(ErrorKind::Auth, why), true);
                        return Err((e, Some(stream.into_inner().0)));
                    }
                }
            }
        };
        Ok(Accepted { stream, identity })
    }
}

/// A sender's connection after the handshake, and the identity its certificate proved.
pub(crate) struct Accepted<S> {
    pub(crate) stream: tokio_rustls::server::TlsStream<S>,
    pub(crate) identity: Option<String>,
}

/// A connection refused during the handshake; `credential` when the sender's certificate was
/// the reason (which counts toward slowing its address down).
pub(crate) struct Refused {
    pub(crate) error: Error,
    pub(crate) credential: bool,
}
