//! The few fields knsock reads from an X.509 certificate (its public key for a pin, its subject's
//! common name for a client identity), found by a small, bounds-checked DER walk.

/// One DER element: its tag, its content, and the whole encoding.
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads the element at the start of `input`; `None` if it is malformed or truncated. Returns
/// the element and what follows it.
fn element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (n as usize, rest),
        0x81..=0x84 => {
            let count = (first & 0x7f) as usize;
            if rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            (len, &rest[count..])
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let element = Element {
        tag,
        content: &rest[..len],
        whole: &input[..header + len],
    };
    Some((element, &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// The OID of the common name attribute, 2.5.4.3.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// The fields of a certificate's tbsCertificate, in order.
fn tbs_fields(cert: &[u8]) -> Option<Vec<Element<'_>>> {
    let (certificate, _) = element(cert).filter(|(e, _)| e.tag == SEQUENCE)?;
    let (tbs, _) = element(certificate.content).filter(|(e, _)| e.tag == SEQUENCE)?;
    let mut fields = Vec::new();
    let mut rest = tbs.content;
    while !rest.is_empty() {
        let (e, next) = element(rest)?;
        fields.push(e);
        rest = next;
    }
    // The optional explicit version [0] comes first; skip it so the indices are fixed.
    if fields.first().is_some_and(|f| f.tag == 0xa0) {
        fields.remove(0);
    }
    Some(fields)
}

/// The certificate's SubjectPublicKeyInfo, whole (what a `sha256//` pin hashes).
pub(crate) fn public_key_info(cert: &[u8]) -> Option<&[u8]> {
    // serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    let fields = tbs_fields(cert)?;
    fields.get(5).filter(|f| f.tag == SEQUENCE).map(|f| f.whole)
}

/// The subject's common name, when it has exactly one that is a text string.
pub(crate) fn subject_common_name(cert: &[u8]) -> Option<String> {
    let fields = tbs_fields(cert)?;
    let subject = fields.get(4).filter(|f| f.tag == SEQUENCE)?;
    let mut names = Vec::new();
    let mut rdns = subject.content;
    while !rdns.is_empty() {
        let (rdn, next) = element(rdns).filter(|(e, _)| e.tag == SET)?;
        rdns = next;
        let mut attrs = rdn.content;
        while !attrs.is_empty() {
            let (attr, next) = element(attrs).filter(|(e, _)| e.tag == SEQUENCE)?;
            attrs = next;
            let (oid, value) = element(attr.content)?;
            let (value, _) = element(value)?;
            if oid.tag == OID && oid.content == COMMON_NAME {
                names.push(text(value.tag, value.content)?);
            }
        }
    }
    match names.len() {
        1 => names.pop(),
        _ => None,
    }
}

/// A directory string: UTF8String, PrintableString or IA5String.
fn text(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 => String::from_utf8(content.to_vec()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_rcgen_wrote() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "knsock");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_common_name(cert.der()).as_deref(), Some("alice"));
        use rcgen::PublicKeyData;
        assert_eq!(
            public_key_info(cert.der()),
            Some(&key.subject_public_key_info()[..])
        );
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x05, 0x30],
        ] {
            assert!(public_key_info(bad).is_none());
            assert!(subject_common_name(bad).is_none());
        }
    }
}
