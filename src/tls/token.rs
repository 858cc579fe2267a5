//! Sender tokens: the tokens file (`NAME:HASH` lines, refused unless mode 0600 or stricter),
//! the salted PBKDF2-HMAC-SHA256 hash stored there, and the constant-time check of a secret.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

use super::options::check_identity_name;
use crate::error::{Error, Result};

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const SCHEME: &str = "pbkdf2-sha256";
/// Enough to slow down guessing a weak secret offline; a few tens of milliseconds per
/// connection that authenticates.
const ITERATIONS: u32 = 100_000;

/// One stored hash: the iterations, the salt and the derived key.
#[derive(Clone)]
struct Hash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    derived: Vec<u8>,
}

/// The tokens a server accepts: name → hash of its secret.
pub(crate) struct Tokens {
    by_name: HashMap<String, Hash>,
    /// Checked against when the name is unknown, so the time taken does not tell.
    decoy: Hash,
}

/// The line to put in a tokens file for `secret`: `pbkdf2-sha256$ITER$SALT$KEY` (base64).
pub fn hash_token(secret: &str) -> Result<String> {
    if secret.is_empty() {
        return Err(Error::invalid("the secret is empty"));
    }
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::new(crate::error::ErrorKind::Io, "no randomness available"))?;
    let iterations = NonZeroU32::new(ITERATIONS).expect("nonzero");
    let mut derived = [0u8; 32];
    pbkdf2::derive(
        ALGORITHM,
        iterations,
        &salt,
        secret.as_bytes(),
        &mut derived,
    );
    Ok(format!(
        "{SCHEME}${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(derived)
    ))
}

fn parse_hash(text: &str) -> Option<Hash> {
    let mut parts = text.split('$');
    if parts.next()? != SCHEME {
        return None;
    }
    let iterations = NonZeroU32::new(parts.next()?.parse().ok()?)?;
    let salt = B64.decode(parts.next()?).ok()?;
    let derived = B64.decode(parts.next()?).ok()?;
    (parts.next().is_none() && !derived.is_empty()).then_some(Hash {
        iterations,
        salt,
        derived,
    })
}

impl Tokens {
    /// Reads a tokens file. Like ssh with a private key, it is refused when group or others
    /// may read or write it.
    pub(crate) fn load(path: &Path) -> Result<Tokens> {
        let what = format!("tokens file {}", path.display());
        let meta = std::fs::metadata(path).map_err(|e| Error::io(&what, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::invalid(format!(
                "{what} has mode {mode:o}: it must not be readable by group or others (chmod 600)"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(&what, e))?;
        let mut by_name = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| Error::invalid(format!("{what}, line {}: {why}", n + 1));
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("expected NAME:HASH".into()))?;
            check_identity_name(name).map_err(bad)?;
            let hash = parse_hash(hash)
                .ok_or_else(|| bad(format!("not a hash from `kn-sock hash-token` ({SCHEME})")))?;
            if by_name.insert(name.to_string(), hash).is_some() {
                return Err(bad(format!("{name} appears twice")));
            }
        }
        let decoy = Hash {
            iterations: NonZeroU32::new(ITERATIONS).expect("nonzero"),
            salt: vec![0; 16],
            derived: vec![0; 32],
        };
        Ok(Tokens { by_name, decoy })
    }

    /// Whether `secret` is `name`'s. PBKDF2's verify compares in constant time, and an unknown
    /// name costs the same work.
    pub(crate) fn verify(&self, name: &str, secret: &str) -> bool {
        let (hash, known) = match self.by_name.get(name) {
            Some(h) => (h, true),
            None => (&self.decoy, false),
        };
        let ok = pbkdf2::verify(
            ALGORITHM,
            hash.iterations,
            &hash.salt,
            secret.as_bytes(),
            &hash.derived,
        )
        .is_ok();
        ok && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let line = format!("alice:{}\n# comment\n", hash_token("s3cret").unwrap());
        std::fs::write(&path, line).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(tokens.verify("alice", "s3cret"));
        assert!(!tokens.verify("alice", "s3cret "));
        assert!(!tokens.verify("bob", "s3cret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(Tokens::load(&path).is_err());
    }
}
