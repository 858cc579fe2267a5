//! The zero-configuration server identity: a key and a self-signed certificate generated on
//! first start, kept mode 0600 in a state directory, and reused on later starts.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::client::{load_certs, load_key};
use crate::error::{Error, Result};

const CERT: &str = "tls-cert.pem";
const KEY: &str = "tls-key.pem";

/// The identity kept in `dir`, created (with `dir`, mode 0700) when it is not there yet.
pub(crate) fn load_or_create(
    dir: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (cert, key) = (dir.join(CERT), dir.join(KEY));
    if !(cert.exists() && key.exists()) {
        create(dir).map_err(|e| Error::io(format!("TLS state directory {}", dir.display()), e))?;
    }
    let mode = fs::metadata(&key)
        .map_err(|e| Error::io(key.display(), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::invalid(format!(
            "{}: the private key is readable by others (mode {:o}); chmod 600 it",
            key.display(),
            mode & 0o777
        )));
    }
    Ok((load_certs(&cert)?, load_key(&key)?))
}

fn create(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let key = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(std::io::Error::other)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "knsock self-signed server");
    let cert = params.self_signed(&key).map_err(std::io::Error::other)?;
    // Written beside, then renamed: a crash leaves the old pair or the new one, never half.
    write_private(&dir.join(format!(".{CERT}.tmp")), cert.pem().as_bytes())?;
    write_private(
        &dir.join(format!(".{KEY}.tmp")),
        key.serialize_pem().as_bytes(),
    )?;
    fs::rename(dir.join(format!(".{KEY}.tmp")), dir.join(KEY))?;
    fs::rename(dir.join(format!(".{CERT}.tmp")), dir.join(CERT))?;
    fs::File::open(dir)?.sync_all()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
