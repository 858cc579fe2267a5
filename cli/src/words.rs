//! The library's errors as `kn-sock` prints them: the library names its settings (`tls`,
//! `path_style`), the command line names its flags, and some errors get a hint of what to do.

/// A library setting as the library's messages name it, and the flag that sets it.
const FLAGS: &[(&str, &str)] = &[("(set path_style)", "(give --s3-path-style)")];

/// `e`'s message with the library's setting names replaced by kn-sock's flags, and a hint where
/// the usual cause is known (or, for a busy receiver, the flag that retries it).
pub(crate) fn explain(e: knsock::Error) -> String {
    let mut text = e.message().to_string();
    for (setting, flag) in FLAGS {
        text = text.replace(setting, flag);
    }
    if e.kind() == knsock::ErrorKind::Auth && text.contains("UnknownIssuer") {
        text.push_str(
            ": the server's certificate is not from a CA this machine trusts; for a self-signed \
             server give --pin with the pin it prints (`tls pin sha256//...`), or --ca FILE",
        );
    }
    if e.kind() == knsock::ErrorKind::Busy {
        text.push_str(" (--retries N retries a busy receiver with backoff)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_flags_and_unknown_issuer_gets_a_hint() {
        let e = knsock::Error::new(knsock::ErrorKind::Store, "S3 bucket: x (set path_style)");
        assert_eq!(explain(e), "S3 bucket: x (give --s3-path-style)");
        let e = knsock::Error::new(
            knsock::ErrorKind::Auth,
            "invalid peer certificate: UnknownIssuer",
        );
        assert!(explain(e).contains("give --pin"));
        let e = knsock::Error::new(knsock::ErrorKind::Busy, "receiver busy, retry later: full");
        assert_eq!(
            explain(e),
            "receiver busy, retry later: full (--retries N retries a busy receiver with backoff)"
        );
    }
}
