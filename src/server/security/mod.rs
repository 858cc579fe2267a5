//! What a server's security is configured as: its TLS identity, who may send (tokens, client
//! certificates), where each identity may write, and the unsafe opt-ins for plain senders.

pub(super) mod auth;
pub(super) mod guard;
pub(super) mod secure_setters;
pub(super) mod throttle;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::protocol::check_name;
use crate::tls::{check_identity_name, ServerIdentity};

/// The security part of a `ServerConfig` (set through its TLS and auth setters).
#[derive(Debug, Clone, Default)]
pub(crate) struct Security {
    pub(crate) identity: Option<ServerIdentity>,
    pub(crate) tokens: Option<PathBuf>,
    pub(crate) client_ca: Option<PathBuf>,
    /// Every identity without a directory of its own writes beneath `<dir>/<identity>`.
    pub(crate) confine: bool,
    /// Identity → its directory, relative to the server's.
    pub(crate) dirs: HashMap<String, String>,
    pub(crate) allow_plaintext: bool,
    pub(crate) allow_legacy: bool,
    /// Fetches are served (docs/protocol.md section 3.3): to authenticated identities, from
    /// what each may write.
    pub(crate) allow_fetch: bool,
    /// UNSAFE: fetches are served to anonymous clients too, from the whole directory.
    pub(crate) allow_anonymous_fetch: bool,
}

impl Security {
    /// Whether senders must prove who they are (inside TLS).
    pub(crate) fn auth_required(&self) -> bool {
        self.tokens.is_some() || self.client_ca.is_some()
    }

    /// Checks the combination before anything is loaded.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.identity.is_none() && (self.auth_required() || self.allow_plaintext) {
            return Err(Error::invalid(
                "tokens, a client CA and allow_plaintext need TLS: set a certificate or self-signed",
            ));
        }
        let confined = self.confine || !self.dirs.is_empty();
        if confined && !self.auth_required() {
            return Err(Error::invalid(
                "confinement needs authenticated senders: set tokens or a client CA",
            ));
        }
        if confined && (self.allow_plaintext || self.allow_legacy) {
            return Err(Error::invalid(
                "confinement cannot be combined with allow_plaintext or allow_legacy: \
                 an anonymous sender could write anywhere",
            ));
        }
        if self.allow_anonymous_fetch && !self.allow_fetch {
            return Err(Error::invalid("allow_anonymous_fetch needs allow_fetch"));
        }
        if self.allow_anonymous_fetch && confined {
            return Err(Error::invalid(
                "confinement cannot be combined with allow_anonymous_fetch: \
                 an anonymous client could read every identity's files",
            ));
        }
        for (name, dir) in &self.dirs {
            check_identity_name(name).map_err(Error::invalid)?;
            check_name(dir)
                .map_err(|why| Error::invalid(format!("directory of identity {name}: {why}")))?;
        }
        Ok(())
    }

    /// The directory an identity is confined to, if any.
    pub(crate) fn dir_of(&self, identity: &str) -> Option<String> {
        match self.dirs.get(identity) {
            Some(d) => Some(d.clone()),
            None if self.confine => Some(identity.to_string()),
            None => None,
        }
    }
}
