//! What a document signer's path must allow beyond what webpki checks: extended key
//! usage fit for signing documents, and India PKI certificate policies.

use securesign_core::cert::{CertificateInfo, IndiaPkiClass};
use webpki::{
    ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter, KeyUsage, RequiredEkuNotFoundContext,
};

use super::Untrusted;

/// `anyPolicy` (2.5.29.32.0).
const ANY_POLICY: &str = "2.5.29.32.0";

/// Extended key usages (DER OID contents) that allow signing documents. A certificate
/// without the extension may sign (RFC 5280); one with it must list one of these.
const SIGNING_EKUS: [&[u8]; 6] = [
    // anyExtendedKeyUsage 2.5.29.37.0
    &[0x55, 0x1d, 0x25, 0x00],
    // id-kp-documentSigning 1.3.6.1.5.5.7.3.36
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24],
    // id-kp-emailProtection 1.3.6.1.5.5.7.3.4 (Indian DSCs carry it)
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04],
    // id-kp-clientAuth 1.3.6.1.5.5.7.3.2 (Indian DSCs carry it)
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02],
    // Microsoft document signing 1.3.6.1.4.1.311.10.3.12
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x0c],
    // Adobe authentic documents trust 1.2.840.113583.1.1.5
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x2f, 0x01, 0x01, 0x05],
];

/// Accepts a certificate without extended key usage, or one listing a signing purpose.
#[derive(Debug, Clone, Copy)]
pub struct DocumentSigningEku;

impl ExtendedKeyUsageValidator for DocumentSigningEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for purpose in iter {
            let purpose = purpose?;
            if SIGNING_EKUS
                .iter()
                .any(|oid| KeyPurposeId::new(oid) == purpose)
            {
                return Ok(());
            }
            present.push(purpose.to_decoded_oid());
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            RequiredEkuNotFoundContext {
                required: KeyUsage::required(SIGNING_EKUS[1]),
                present,
            },
        ))
    }
}

/// With `classes` given, the path below the anchor (signer first) must be valid for one
/// of them: the signer asserts the class's policy, and every CA of the path asserts it
/// or `anyPolicy` (RFC 5280 policy processing with an explicit policy, no mappings).
pub fn check(below_anchor: &[Vec<u8>], classes: &[IndiaPkiClass]) -> Result<(), Untrusted> {
    if classes.is_empty() {
        return Ok(());
    }
    let mut parsed = Vec::with_capacity(below_anchor.len());
    for der in below_anchor {
        let cert = CertificateInfo::from_der(der)
            .map_err(|_| Untrusted("a certificate of the path is unreadable".into()))?;
        parsed.push((cert.subject, cert.policies));
    }
    let wanted: Vec<String> = classes
        .iter()
        .map(|c| format!("{} ({})", c.label(), c.oid()))
        .collect();
    let Some((signer_subject, signer_policies)) = parsed.first() else {
        return Err(Untrusted("empty path".into()));
    };
    for class in classes {
        let oid = class.oid();
        if !signer_policies.iter().any(|p| p == oid) {
            continue;
        }
        if parsed[1..]
            .iter()
            .all(|(_, ca)| ca.iter().any(|p| p == oid || p == ANY_POLICY))
        {
            return Ok(());
        }
    }
    let asserted = if signer_policies.is_empty() {
        "none".to_owned()
    } else {
        signer_policies.join(", ")
    };
    let blocking_ca = parsed[1..].iter().find(|(_, ca)| {
        !ca.iter()
            .any(|p| p == ANY_POLICY || classes.iter().any(|c| c.oid() == p))
    });
    Err(Untrusted(match blocking_ca {
        Some((ca, _)) if classes.iter().any(|c| signer_policies.iter().any(|p| p == c.oid())) => {
            format!(
                "the issuing CA {ca} does not allow the policy {} that the session requires",
                wanted.join(" or ")
            )
        }
        _ => format!(
            "the certificate {signer_subject} is not valid for the policy {} that the session requires (it asserts {asserted})",
            wanted.join(" or ")
        ),
    }))
}
