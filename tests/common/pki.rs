//! Test certificates made on the spot with rcgen: a CA, server certificates (valid, for another
//! name, expired) and client certificates it issues, and tokens files.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use knsock::{hash_token, SendOptions, TlsOptions};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("knsock test CA {} {n}", std::process::id());
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        Pki { dir, ca_pem, ca }
    }

    fn issue(&self, file: &str, params: CertificateParams) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (c, k) = (
            self.dir.path().join(format!("{file}.pem")),
            self.dir.path().join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    /// A server certificate for `name`, expired when `expired`.
    pub fn server(&self, file: &str, name: &str, expired: bool) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        self.issue(file, params)
    }

    /// A client certificate whose subject common name is `cn`.
    pub fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&format!("client-{cn}"), params)
    }
}

/// A tokens file (mode 0600) with a hashed line per `(name, secret)`.
pub fn tokens_file(dir: &Path, tokens: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("tokens");
    let text: String = tokens
        .iter()
        .map(|(n, s)| format!("{n}:{}\n", hash_token(s).unwrap()))
        .collect();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Options that verify the server by its pin.
pub fn pinned(pin: &str) -> SendOptions {
    SendOptions {
        tls: Some(TlsOptions {
            pin: Some(pin.to_string()),
            ..TlsOptions::default()
        }),
        ..SendOptions::default()
    }
}

/// Pinned options with a token.
pub fn with_token(pin: &str, token: &str) -> SendOptions {
    SendOptions {
        token: Some(token.to_string()),
        ..pinned(pin)
    }
}
