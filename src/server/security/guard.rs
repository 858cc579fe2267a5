//! A running server's security, built at start from its config: the TLS acceptor, the tokens,
//! and the failure throttle, with the rules for who is let in.

use crate::error::Result;
use crate::server::security::throttle::Throttle;
use crate::server::security::Security;
use crate::tls::{ServerTls, Tokens};

pub(crate) struct Guard {
    pub(crate) tls: Option<ServerTls>,
    pub(crate) tokens: Option<Tokens>,
    pub(crate) throttle: Throttle,
    pub(crate) security: Security,
}

impl Guard {
    /// Loads what the config names; a loose tokens file or a bad certificate fails the start.
    pub(crate) fn build(security: &Security) -> Result<Guard> {
        security.validate()?;
        let tokens = security.tokens.as_deref().map(Tokens::load).transpose()?;
        let tls = match &security.identity {
            Some(id) => Some(ServerTls::load(
                id,
                security.client_ca.as_deref(),
                tokens.is_none(),
            )?),
            None => None,
        };
        Ok(Guard {
            tls,
            tokens,
            throttle: Throttle::default(),
            security: security.clone(),
        })
    }

    /// A plain knsock sender is refused: TLS is on and plaintext not allowed.
    pub(crate) fn refuses_plain(&self) -> bool {
        self.tls.is_some() && !self.security.allow_plaintext
    }

    /// A kn-sock 0.3 sender is refused: TLS is on and legacy not allowed.
    pub(crate) fn refuses_legacy(&self) -> bool {
        self.tls.is_some() && !self.security.allow_legacy
    }
}
