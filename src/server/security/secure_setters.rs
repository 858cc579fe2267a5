//! The security setters of [`ServerConfig`]: TLS identity, tokens, client CA, confinement, and
//! the unsafe opt-ins. docs/security.md says how to combine them.

use std::path::PathBuf;

use crate::server::config::ServerConfig;
use crate::tls::ServerIdentity;

impl ServerConfig {
    /// Serves TLS 1.3 with this certificate chain and private key (PEM files). Plain and kn-sock
    /// 0.3 senders are then refused unless allowed.
    pub fn tls_cert(&mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> &mut Self {
        self.security.identity = Some(ServerIdentity::Pem {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }
    /// Serves TLS 1.3 with a self-signed identity kept in `state_dir` (created mode 0700; the
    /// key and certificate mode 0600), generated on first start and reused afterwards. Senders
    /// verify it with its pin ([`Server::tls_pin`](crate::Server)).
    pub fn tls_self_signed(&mut self, state_dir: impl Into<PathBuf>) -> &mut Self {
        self.security.identity = Some(ServerIdentity::SelfSigned {
            state_dir: state_dir.into(),
        });
        self
    }
    /// Requires senders to prove who they are with a token from this file (`NAME:HASH` lines
    /// from `kn-sock hash-token`). The server refuses to start if group or others may read it.
    pub fn tokens_file(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.security.tokens = Some(path.into());
        self
    }
    /// Lets senders prove who they are with a certificate issued by this CA (PEM); the
    /// identity is the certificate's subject common name. With a tokens file too, either way
    /// is accepted; alone, a certificate is required.
    pub fn client_ca(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.security.client_ca = Some(path.into());
        self
    }
    /// Confines every identity to `<dir>/<identity>` (unless given its own directory by
    /// [`identity_dir`](Self::identity_dir)): its names resolve beneath it, never elsewhere.
    pub fn confine_identities(&mut self, yes: bool) -> &mut Self {
        self.security.confine = yes;
        self
    }
    /// Confines `identity` to `subdir` (relative to the server's directory, `/`-separated).
    pub fn identity_dir(
        &mut self,
        identity: impl Into<String>,
        subdir: impl Into<String>,
    ) -> &mut Self {
        self.security.dirs.insert(identity.into(), subdir.into());
        self
    }
    /// UNSAFE: also accepts plain (unencrypted, unauthenticated) knsock senders on a TLS server.
    pub fn allow_plaintext(&mut self, yes: bool) -> &mut Self {
        self.security.allow_plaintext = yes;
        self
    }
    /// UNSAFE: also accepts kn-sock 0.3 uploads (unencrypted, unauthenticated) on a TLS server.
    pub fn allow_legacy(&mut self, yes: bool) -> &mut Self {
        self.security.allow_legacy = yes;
        self
    }
    /// Serves fetches (docs/protocol.md section 3.3): an authenticated identity gets back what it
    /// may write (its confined directory, or the whole directory when it is not confined). Off
    /// by default. Anonymous clients are refused unless
    /// [`allow_anonymous_fetch`](Self::allow_anonymous_fetch).
    pub fn allow_fetch(&mut self, yes: bool) -> &mut Self {
        self.security.allow_fetch = yes;
        self
    }
    /// UNSAFE: with [`allow_fetch`](Self::allow_fetch), also serves fetches to clients that
    /// proved no identity (plain connections included): anyone who reaches the port reads every
    /// file in the directory. docs/security.md.
    pub fn allow_anonymous_fetch(&mut self, yes: bool) -> &mut Self {
        self.security.allow_anonymous_fetch = yes;
        self
    }
}
