//! Whether the certificate the token holds may sign a request, decided after the
//! certificate is read (a public object: no PIN, no login) and before any PIN is asked.
//!
//! Two refusals are shown on their own, with no PIN entry: the portal named a signer and
//! the token holds someone else's certificate (`SS_SIGNER_MISMATCH`), or the certificate's
//! key usage forbids signatures (`SS_CERT_KEY_USAGE`). Other problems (no token, expired
//! certificate, …) block signing as they are. Platform-neutral: no Tauri, no token calls;
//! the app's commands and the CLI feed it what the token read.

use securesign_core::cert::CertificateInfo;
use securesign_core::signer::SignerRequirement;
use securesign_core::{Error, ErrorBody, SignerKey};
use serde::Serialize;

/// What the token holds, as the refusal screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldCertificate {
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject `serialNumber` (on Indian DSCs derived from the holder's PAN).
    pub subject_serial_number: Option<String>,
    /// India PKI classes the certificate asserts, as people name them (`Class 3`).
    pub classes: Vec<String>,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256_thumbprint: String,
    /// Key usage bits that are set.
    pub key_usage: Vec<String>,
}

impl HeldCertificate {
    /// The parts of `cert` a person compares with what the portal expects.
    pub fn of(cert: &CertificateInfo) -> Self {
        Self {
            common_name: cert.common_name.clone(),
            subject_serial_number: cert.subject_serial_number.clone(),
            classes: cert
                .india_pki
                .iter()
                .map(|class| class.label().to_owned())
                .collect(),
            sha256_thumbprint: cert.sha256_thumbprint.clone(),
            key_usage: cert.key_usage.clone(),
        }
    }
}

/// Why this token may not sign this request: everything the refusal screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerRefusal {
    /// `SS_SIGNER_MISMATCH` or `SS_CERT_KEY_USAGE`, what differs, and what to do.
    pub error: ErrorBody,
    /// The portal (tenant display name) that asks.
    pub portal: String,
    /// The signer the portal expects, in words (`SignerRequirement::describe`), when it
    /// named one.
    pub expected: Option<String>,
    /// The certificate the token holds.
    pub holds: HeldCertificate,
}

/// What the request screen does with the token's signer.
#[derive(Debug)]
pub enum SignerDecision {
    /// The key may sign: the flow may go on to the PIN (or to signing in a PIN session).
    Proceed(Box<SignerKey>),
    /// A refusal screen without a PIN field: cancel the request, or change the token.
    Refuse(Box<SignerRefusal>),
    /// Signing is impossible for another reason (no token, expired certificate, …).
    Block(Error),
}

/// Decides, from what the token worker read without a PIN, whether the flow may go on.
///
/// `signer` is `TokenWorker::signer`'s answer; `shown` the certificate it refused, when it
/// could be read (an expired one, one that may not sign). The expected signer is checked
/// first, on whichever certificate was read: a token holding someone else's certificate is
/// the wrong token, whatever else is wrong with it.
pub fn decide(
    portal: &str,
    expected: Option<&SignerRequirement>,
    signer: Result<SignerKey, Error>,
    shown: Option<&CertificateInfo>,
) -> SignerDecision {
    let held = match &signer {
        Ok(key) => Some(&key.certificate),
        Err(_) => shown,
    };
    if let (Some(requirement), Some(cert)) = (expected, held) {
        if let Err(err) = requirement.check(cert) {
            return SignerDecision::Refuse(Box::new(refusal(portal, expected, cert, &err)));
        }
    }
    match (signer, shown) {
        (Ok(key), _) => SignerDecision::Proceed(Box::new(key)),
        (Err(err @ Error::CertKeyUsage(_)), Some(cert)) => {
            SignerDecision::Refuse(Box::new(refusal(portal, expected, cert, &err)))
        }
        (Err(err), _) => SignerDecision::Block(err),
    }
}

/// Refuses `key` when the portal named a signer and `key` is not it (`SS_SIGNER_MISMATCH`).
/// Run again before a PIN goes to the token and before signing, in case the token was
/// changed after the request screen was shown.
pub fn admit(expected: Option<&SignerRequirement>, key: &SignerKey) -> Result<(), Error> {
    expected.map_or(Ok(()), |requirement| requirement.check(&key.certificate))
}

fn refusal(
    portal: &str,
    expected: Option<&SignerRequirement>,
    cert: &CertificateInfo,
    err: &Error,
) -> SignerRefusal {
    SignerRefusal {
        error: err.body(),
        portal: portal.to_owned(),
        expected: expected.map(SignerRequirement::describe),
        holds: HeldCertificate::of(cert),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use securesign_core::backend::{KeyId, SignatureScheme};
    use securesign_core::ErrorCode;

    /// `C=IN, O=Test, serialNumber=9a1b2c, CN=Anita Sharma`, Class 3 policy, keyUsage
    /// digitalSignature + nonRepudiation (self-signed P-256, made with openssl).
    const SIGNING: &[u8] = include_bytes!("../tests/fixtures/signing-cert.der");
    const SIGNING_SHA256: &str = "39762748aa150cce6b9d3e43a1d6befd91cce0d1db3ed4881e9887639d292303";
    /// The same subject, keyUsage keyEncipherment + keyAgreement only.
    const ENCRYPTION: &[u8] = include_bytes!("../tests/fixtures/encryption-cert.der");

    fn info(der: &[u8]) -> CertificateInfo {
        CertificateInfo::from_der(der).unwrap()
    }

    fn key(der: &[u8]) -> SignerKey {
        SignerKey {
            id: KeyId(vec![1]),
            scheme: SignatureScheme::EcdsaP256Sha256,
            certificate_der: der.to_vec(),
            certificate: info(der),
        }
    }

    fn requirement(json: serde_json::Value) -> SignerRequirement {
        serde_json::from_value::<SignerRequirement>(json)
            .unwrap()
            .normalized()
            .unwrap()
    }

    fn refused(decision: SignerDecision) -> SignerRefusal {
        match decision {
            SignerDecision::Refuse(refusal) => *refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn without_an_expected_signer_a_usable_key_proceeds() {
        let decision = decide("Example Portal", None, Ok(key(SIGNING)), None);
        assert!(
            matches!(decision, SignerDecision::Proceed(_)),
            "{decision:?}"
        );
    }

    #[test]
    fn the_expected_certificate_proceeds_by_thumbprint_subject_or_class() {
        for json in [
            serde_json::json!({"certificateSha256": [SIGNING_SHA256.to_uppercase()]}),
            serde_json::json!({"subject": {"serialNumber": "9A1B2C", "commonName": "Anita Sharma"}}),
            serde_json::json!({"policyClasses": ["class2", "class3"]}),
        ] {
            let req = requirement(json.clone());
            let decision = decide("Example Portal", Some(&req), Ok(key(SIGNING)), None);
            assert!(matches!(decision, SignerDecision::Proceed(_)), "{json}");
            admit(Some(&req), &key(SIGNING)).unwrap();
        }
    }

    #[test]
    fn another_signer_is_refused_with_the_portal_the_expectation_and_the_token_s_certificate() {
        let req = requirement(serde_json::json!({"subject": {"serialNumber": "NOT-THIS-ONE"}}));
        let refusal = refused(decide("Example Portal", Some(&req), Ok(key(SIGNING)), None));
        assert_eq!(refusal.error.code, ErrorCode::SignerMismatch);
        assert!(
            refusal.error.message.contains("\"9a1b2c\"")
                && refusal.error.message.contains("NOT-THIS-ONE"),
            "{}",
            refusal.error.message
        );
        assert_eq!(
            refusal.error.resolution,
            ErrorCode::SignerMismatch.resolution()
        );
        assert_eq!(refusal.portal, "Example Portal");
        assert_eq!(
            refusal.expected.as_deref(),
            Some("serialNumber NOT-THIS-ONE")
        );
        assert_eq!(
            refusal.holds,
            HeldCertificate {
                common_name: Some("Anita Sharma".into()),
                subject_serial_number: Some("9a1b2c".into()),
                classes: vec!["Class 3".into()],
                sha256_thumbprint: SIGNING_SHA256.into(),
                key_usage: vec!["digitalSignature".into(), "nonRepudiation".into()],
            }
        );
        let err = admit(Some(&req), &key(SIGNING)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SignerMismatch);
    }

    #[test]
    fn a_wrong_thumbprint_or_class_is_refused_too() {
        for json in [
            serde_json::json!({"certificateSha256": ["00".repeat(32)]}),
            serde_json::json!({"policyClasses": ["class2"]}),
            serde_json::json!({"subject": {"commonName": "Someone Else"}}),
        ] {
            let req = requirement(json.clone());
            let refusal = refused(decide("P", Some(&req), Ok(key(SIGNING)), None));
            assert_eq!(refusal.error.code, ErrorCode::SignerMismatch, "{json}");
        }
    }

    #[test]
    fn a_certificate_that_may_not_sign_is_refused_without_pin() {
        let cert = info(ENCRYPTION);
        let err = cert.ensure_may_sign().unwrap_err();
        let refusal = refused(decide("Example Portal", None, Err(err), Some(&cert)));
        assert_eq!(refusal.error.code, ErrorCode::CertKeyUsage);
        assert!(refusal.error.message.contains("keyEncipherment"));
        assert_eq!(refusal.expected, None);
        assert_eq!(
            refusal.holds.key_usage,
            vec!["keyEncipherment".to_owned(), "keyAgreement".to_owned()]
        );
        // The portal's expectation is reported with it when it holds.
        let req = requirement(serde_json::json!({"subject": {"commonName": "Anita Sharma"}}));
        let err = cert.ensure_may_sign().unwrap_err();
        let refusal = refused(decide("P", Some(&req), Err(err), Some(&cert)));
        assert_eq!(refusal.error.code, ErrorCode::CertKeyUsage);
        assert_eq!(refusal.expected.as_deref(), Some("\"Anita Sharma\""));
    }

    #[test]
    fn someone_else_s_certificate_is_a_mismatch_before_anything_else_wrong_with_it() {
        let cert = info(ENCRYPTION);
        let req = requirement(serde_json::json!({"subject": {"serialNumber": "ffff"}}));
        let expired = Error::CertExpired {
            not_after: cert.not_after.clone(),
        };
        let refusal = refused(decide("P", Some(&req), Err(expired), Some(&cert)));
        assert_eq!(refusal.error.code, ErrorCode::SignerMismatch);
    }

    #[test]
    fn other_problems_stay_blockers() {
        let req = requirement(serde_json::json!({"policyClasses": ["class3"]}));
        for err in [Error::TokenNotPresent, Error::KeyNotFound("none".into())] {
            let code = err.code();
            match decide("P", Some(&req), Err(err), None) {
                SignerDecision::Block(e) => assert_eq!(e.code(), code),
                other => panic!("{other:?}"),
            }
        }
        // Key usage refused but the certificate could not be shown: still no PIN.
        let err = info(ENCRYPTION).ensure_may_sign().unwrap_err();
        assert!(matches!(
            decide("P", None, Err(err), None),
            SignerDecision::Block(Error::CertKeyUsage(_))
        ));
        // An expired certificate of the expected signer is the usual blocker.
        let cert = info(SIGNING);
        let expired = Error::CertExpired {
            not_after: cert.not_after.clone(),
        };
        assert!(matches!(
            decide("P", Some(&req), Err(expired), Some(&cert)),
            SignerDecision::Block(Error::CertExpired { .. })
        ));
    }
}
