//! The lab's certificates look like an Indian DSC and honour the validity
//! options. Parsed with x509-parser, independently of how they were made.

use std::time::{SystemTime, UNIX_EPOCH};

use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use securesign_testlab::{CertValidity, LabKey, LabToken, Module};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

const DAY: i64 = 86_400;
/// Slack for the seconds between "now" here and "now" at issuance.
const SLACK: i64 = 600;

fn now() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_secs()).expect("seconds fit i64")
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("valid DER certificate");
    assert!(rest.is_empty(), "no trailing bytes");
    cert
}

fn policy_oids(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => Some(policies),
            _ => None,
        })
        .flat_map(|policies| policies.iter().map(|p| p.policy_id.to_id_string()))
        .collect()
}

fn window(cert: &X509Certificate<'_>) -> (i64, i64) {
    (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    )
}

fn assert_near(actual: i64, expected: i64, what: &str) {
    assert!(
        (actual - expected).abs() <= SLACK,
        "{what}: {actual} is not within {SLACK} s of {expected}"
    );
}

#[test]
fn default_certificates_look_like_an_indian_dsc() {
    let tok = LabToken::softhsm().expect("provision");
    let ca = parse(tok.ca_cert_der());
    assert_eq!(
        ca.subject().to_string(),
        "CN=SecureSign Lab Licensed CA, O=SecureSign Lab, C=IN"
    );
    assert!(ca.is_ca());

    for key in LabKey::ALL {
        let cert = parse(tok.cert_der(key));
        let subject = cert.subject().to_string();
        assert!(
            subject.starts_with("CN=Demo Signer, serialNumber=")
                && subject.ends_with(", O=Personal, ST=Karnataka, C=IN"),
            "{subject}"
        );
        assert_eq!(
            cert.issuer(),
            ca.subject(),
            "{key:?} issued by the licensed CA"
        );
        assert!(!cert.is_ca());

        let usage = cert
            .key_usage()
            .expect("well-formed")
            .expect("keyUsage present");
        assert!(usage.critical);
        assert!(usage.value.digital_signature() && usage.value.non_repudiation());
        assert!(!usage.value.key_cert_sign() && !usage.value.key_encipherment());
        assert_eq!(policy_oids(&cert), vec![key.policy_oid().to_owned()]);

        let (not_before, not_after) = window(&cert);
        assert_near(not_before, now() - DAY, "notBefore = now - 1 day");
        assert_near(not_after, now() + 730 * DAY, "notAfter = now + 2 years");
        let (ca_from, ca_to) = window(&ca);
        assert!(
            ca_from <= not_before && not_after <= ca_to,
            "CA validity covers the certificate"
        );
    }

    assert_eq!(
        policy_oids(&parse(tok.rsa_cert_der())),
        vec!["2.16.356.100.2.3"]
    );
    assert_eq!(
        policy_oids(&parse(tok.ec_cert_der())),
        vec!["2.16.356.100.2.2"]
    );
    let rsa_spki = parse(tok.rsa_cert_der()).public_key().raw.to_vec();
    let rsa = rsa::RsaPublicKey::from_public_key_der(&rsa_spki).expect("RSA key");
    assert_eq!(rsa.size() * 8, 2048);
    let ec_spki = parse(tok.ec_cert_der()).public_key().raw.to_vec();
    p256::PublicKey::from_public_key_der(&ec_spki).expect("EC key on P-256");
}

#[test]
fn expired_certificate_option() {
    let tok = LabToken::builder(Module::SoftHsm2)
        .rsa_cert(CertValidity::Expired)
        .build()
        .expect("provision");
    let (not_before, not_after) = window(&parse(tok.rsa_cert_der()));
    assert_near(not_after, now() - DAY, "expired: notAfter = now - 1 day");
    assert_near(
        not_before,
        now() - 730 * DAY,
        "expired: notBefore = now - 2 years",
    );
    let (_, ec_not_after) = window(&parse(tok.ec_cert_der()));
    assert!(
        ec_not_after > now(),
        "the other certificate keeps its default (valid)"
    );
}

#[test]
fn expiring_soon_certificate_option() {
    let tok = LabToken::builder(Module::SoftHsm2)
        .ec_cert(CertValidity::ExpiringSoon)
        .build()
        .expect("provision");
    let (not_before, not_after) = window(&parse(tok.ec_cert_der()));
    assert!(not_before < now(), "already valid");
    assert!(
        not_after > now() && not_after - now() < 30 * DAY,
        "expires within 30 days"
    );
}

#[test]
fn custom_window_option() {
    let validity = CertValidity::DaysFromNow {
        not_before: 3,
        not_after: 40,
    };
    let tok = LabToken::builder(Module::SoftHsm2)
        .rsa_cert(validity)
        .build()
        .expect("provision");
    let (not_before, not_after) = window(&parse(tok.rsa_cert_der()));
    assert_near(not_before, now() + 3 * DAY, "not yet valid");
    assert_near(not_after, now() + 40 * DAY, "custom end");
}
