//! Reading the signer's X.509 certificate: who it names, until when, for what, at which
//! India PKI assurance class.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_X509_SERIALNUMBER,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::backend::SignatureScheme;
use crate::error::{Error, Result};

/// A certificate is flagged as expiring soon this many days before `notAfter`.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// India PKI certificate policy OIDs (CCA's DSC Interoperability Guidelines) and what they mean.
const INDIA_PKI_POLICIES: [(&str, IndiaPkiClass); 6] = [
    ("2.16.356.100.2.1", IndiaPkiClass::Class1),
    ("2.16.356.100.2.2", IndiaPkiClass::Class2),
    ("2.16.356.100.2.3", IndiaPkiClass::Class3),
    ("2.16.356.100.2.4.1", IndiaPkiClass::EkycSingleFactor),
    ("2.16.356.100.2.4.2", IndiaPkiClass::EkycMultiFactor),
    ("2.16.356.100.10.1", IndiaPkiClass::DocumentSigner),
];

/// Assurance class or purpose asserted by an India PKI policy OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndiaPkiClass {
    /// `2.16.356.100.2.1`.
    Class1,
    /// `2.16.356.100.2.2`.
    Class2,
    /// `2.16.356.100.2.3`.
    Class3,
    /// `2.16.356.100.2.4.1` — Aadhaar eKYC, single factor.
    EkycSingleFactor,
    /// `2.16.356.100.2.4.2` — Aadhaar eKYC, multi factor.
    EkycMultiFactor,
    /// `2.16.356.100.10.1` — organisational document signer.
    DocumentSigner,
}

impl IndiaPkiClass {
    /// Its certificate policy OID, e.g. `2.16.356.100.2.3`.
    pub fn oid(&self) -> &'static str {
        INDIA_PKI_POLICIES
            .iter()
            .find(|(_, class)| class == self)
            .map_or("", |(oid, _)| oid)
    }

    /// How people name it, e.g. `Class 3`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Class1 => "Class 1",
            Self::Class2 => "Class 2",
            Self::Class3 => "Class 3",
            Self::EkycSingleFactor => "eKYC single factor",
            Self::EkycMultiFactor => "eKYC multi factor",
            Self::DocumentSigner => "Document Signer",
        }
    }
}

/// Where `now` falls in the certificate's validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    tag = "state"
)]
pub enum Validity {
    /// Valid, more than [`EXPIRY_WARNING_DAYS`] left.
    Valid,
    /// Valid, but expires within [`EXPIRY_WARNING_DAYS`].
    ExpiringSoon {
        /// Whole days left.
        days_left: i64,
    },
    /// `notAfter` has passed: signing is refused.
    Expired,
    /// `notBefore` is in the future: signing is refused.
    NotYetValid,
}

/// What the app and CLI show about a signer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Subject common name, when present.
    pub common_name: Option<String>,
    /// The subject's `serialNumber` attribute (2.5.4.5), when present: on Indian DSCs a
    /// value derived from the holder's PAN.
    pub subject_serial_number: Option<String>,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    #[serde(skip)]
    not_before_unix: i64,
    #[serde(skip)]
    not_after_unix: i64,
    /// Key usage bits that are set, e.g. `digitalSignature`.
    pub key_usage: Vec<String>,
    /// SHA-256 of the DER certificate, hex.
    pub sha256_thumbprint: String,
    /// Certificate policy OIDs.
    pub policies: Vec<String>,
    /// India PKI classes asserted by the policies.
    pub india_pki: Vec<IndiaPkiClass>,
    /// The scheme the certificate's key signs with, if we support it.
    pub scheme: Option<SignatureScheme>,
}

impl CertificateInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| Error::CertInvalid(format!("not a DER X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::CertInvalid(
                "trailing bytes after the certificate".into(),
            ));
        }
        let validity = cert.validity();
        let not_before_unix = validity.not_before.timestamp();
        let not_after_unix = validity.not_after.timestamp();
        let policies = policy_oids(&cert);
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let subject_serial_number = cert
            .subject()
            .iter_by_oid(&OID_X509_SERIALNUMBER)
            .next()
            .and_then(|sn| sn.as_str().ok())
            .map(str::to_owned);
        let india_pki = policies
            .iter()
            .filter_map(|oid| {
                INDIA_PKI_POLICIES
                    .iter()
                    .find(|(known, _)| known == oid)
                    .map(|(_, class)| *class)
            })
            .collect();
        Ok(Self {
            subject: cert.subject().to_string(),
            common_name,
            subject_serial_number,
            issuer: cert.issuer().to_string(),
            serial: hex::encode(cert.raw_serial()),
            not_before: rfc3339(not_before_unix),
            not_after: rfc3339(not_after_unix),
            not_before_unix,
            not_after_unix,
            key_usage: key_usage(&cert)?,
            sha256_thumbprint: hex::encode(sha2::Sha256::digest(der)),
            policies,
            india_pki,
            scheme: scheme(&cert),
        })
    }

    /// Where `now` falls in the validity period.
    pub fn validity_at(&self, now: OffsetDateTime) -> Validity {
        let now = now.unix_timestamp();
        if now < self.not_before_unix {
            Validity::NotYetValid
        } else if now > self.not_after_unix {
            Validity::Expired
        } else {
            let days_left = (self.not_after_unix - now) / 86_400;
            if days_left < EXPIRY_WARNING_DAYS {
                Validity::ExpiringSoon { days_left }
            } else {
                Validity::Valid
            }
        }
    }

    /// Refuses a certificate that is expired or not yet valid at `now`.
    pub fn ensure_usable_at(&self, now: OffsetDateTime) -> Result<()> {
        match self.validity_at(now) {
            Validity::Expired => Err(Error::CertExpired {
                not_after: self.not_after.clone(),
            }),
            Validity::NotYetValid => Err(Error::CertNotYetValid {
                not_before: self.not_before.clone(),
            }),
            Validity::Valid | Validity::ExpiringSoon { .. } => Ok(()),
        }
    }

    /// Refuses a certificate whose key usage extension allows neither `digitalSignature`
    /// nor `nonRepudiation` (an encryption-only certificate): `SS_CERT_KEY_USAGE`. A
    /// certificate without the extension may sign (RFC 5280: no restriction).
    pub fn ensure_may_sign(&self) -> Result<()> {
        if self.key_usage.is_empty()
            || self
                .key_usage
                .iter()
                .any(|bit| bit == "digitalSignature" || bit == "nonRepudiation")
        {
            return Ok(());
        }
        Err(Error::CertKeyUsage(format!(
            "its key usage allows only {}, not digitalSignature or nonRepudiation",
            self.key_usage.join(", ")
        )))
    }

    /// The signature scheme, or `SS_NOT_SUPPORTED` for other key types.
    pub fn require_scheme(&self) -> Result<SignatureScheme> {
        self.scheme.ok_or_else(|| {
            Error::NotSupported("only RSA and ECDSA P-256 signer keys are supported".into())
        })
    }

    /// The highest India PKI class asserted, if any.
    pub fn highest_india_class(&self) -> Option<IndiaPkiClass> {
        self.india_pki.iter().copied().max()
    }
}

#[cfg(test)]
impl CertificateInfo {
    /// A certificate description with these names, classes and thumbprint (for tests of
    /// code that only reads the description).
    pub(crate) fn for_tests(
        common_name: &str,
        subject_serial_number: Option<&str>,
        india_pki: &[IndiaPkiClass],
        sha256_thumbprint: &str,
    ) -> Self {
        Self {
            subject: format!("CN={common_name}"),
            common_name: Some(common_name.to_owned()),
            subject_serial_number: subject_serial_number.map(str::to_owned),
            issuer: "CN=Test CA".to_owned(),
            serial: "01".to_owned(),
            not_before: rfc3339(0),
            not_after: rfc3339(i64::from(i32::MAX)),
            not_before_unix: 0,
            not_after_unix: i64::from(i32::MAX),
            key_usage: vec!["digitalSignature".to_owned()],
            sha256_thumbprint: sha256_thumbprint.to_owned(),
            policies: Vec::new(),
            india_pki: india_pki.to_vec(),
            scheme: None,
        }
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

fn policy_oids(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => Some(policies),
            _ => None,
        })
        .flatten()
        .map(|p| p.policy_id.to_id_string())
        .collect()
}

fn key_usage(cert: &X509Certificate<'_>) -> Result<Vec<String>> {
    let usage = cert
        .key_usage()
        .map_err(|e| Error::CertInvalid(format!("key usage: {e}")))?;
    let Some(usage) = usage else {
        return Ok(Vec::new());
    };
    let ku = usage.value;
    let bits = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
    ];
    Ok(bits
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name.to_owned())
        .collect())
}

fn scheme(cert: &X509Certificate<'_>) -> Option<SignatureScheme> {
    let spki = cert.public_key();
    let alg = &spki.algorithm;
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Some(SignatureScheme::RsaPkcs1Sha256);
    }
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref()?.as_oid().ok()?;
        if curve == OID_EC_P256 {
            return Some(SignatureScheme::EcdsaP256Sha256);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_as_cert_invalid() {
        let err = CertificateInfo::from_der(b"not a certificate").unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::CertInvalid);
    }

    #[test]
    fn validity_serializes_with_camel_case_fields() {
        let v = serde_json::to_value(Validity::ExpiringSoon { days_left: 9 }).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"state": "expiring_soon", "daysLeft": 9})
        );
    }

    #[test]
    fn key_usage_must_allow_signatures_when_present() {
        let mut cert = CertificateInfo::for_tests("A", None, &[], "00");
        cert.ensure_may_sign().unwrap();
        cert.key_usage = vec!["nonRepudiation".into()];
        cert.ensure_may_sign().unwrap();
        cert.key_usage = Vec::new();
        cert.ensure_may_sign().unwrap();
        cert.key_usage = vec!["keyEncipherment".into(), "dataEncipherment".into()];
        let err = cert.ensure_may_sign().unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::CertKeyUsage);
        assert!(err
            .to_string()
            .contains("keyEncipherment, dataEncipherment"));
    }

    #[test]
    fn every_class_has_its_oid() {
        for (oid, class) in INDIA_PKI_POLICIES {
            assert_eq!(class.oid(), oid);
        }
    }

    #[test]
    fn india_classes_order_by_assurance() {
        assert!(IndiaPkiClass::Class3 > IndiaPkiClass::Class2);
        assert!(IndiaPkiClass::Class2 > IndiaPkiClass::Class1);
    }
}
