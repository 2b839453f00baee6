//! Which signer a portal expects: a signing session may name the certificates (SHA-256
//! thumbprints), the subject (Indian DSCs carry a PAN-derived value in the subject's
//! `serialNumber`) and the India PKI classes it accepts.
//!
//! The same check runs in the app, before any PIN is asked (no try is spent on a token
//! that holds someone else's certificate), and on the server, before a result completes.

use serde::{Deserialize, Serialize};

use crate::cert::{CertificateInfo, IndiaPkiClass};
use crate::error::{Error, Result};

/// Most thumbprints a requirement may list.
pub const MAX_THUMBPRINTS: usize = 32;
/// Longest subject value a requirement may name (characters).
pub const MAX_SUBJECT_VALUE_CHARS: usize = 256;

/// The subject attributes a signer must carry; each one given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectRequirement {
    /// The subject's `serialNumber` attribute (2.5.4.5), compared ignoring ASCII case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The subject's common name, compared exactly (surrounding spaces ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
}

/// The signer a portal expects. Every criterion given must hold; within a list, any entry
/// may match (one of these certificates, one of these classes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignerRequirement {
    /// Accepted certificates by SHA-256 of their DER, lowercase hex.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_sha256: Vec<String>,
    /// Subject attributes the certificate must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectRequirement>,
    /// India PKI classes of which the certificate must assert at least one (`class3`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_classes: Vec<IndiaPkiClass>,
}

impl SignerRequirement {
    /// Checks the requirement is well formed and names at least one criterion, and
    /// returns it normalised (thumbprints lowercase, values trimmed). The message of a
    /// `SS_BAD_REQUEST` says what is wrong.
    pub fn normalized(mut self) -> Result<Self> {
        if self.certificate_sha256.len() > MAX_THUMBPRINTS {
            return Err(Error::BadRequest(format!(
                "signer.certificateSha256 lists more than {MAX_THUMBPRINTS} certificates"
            )));
        }
        for thumbprint in &mut self.certificate_sha256 {
            thumbprint.make_ascii_lowercase();
            if thumbprint.len() != 64 || !thumbprint.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::BadRequest(
                    "signer.certificateSha256 entries are 64 hex digits (SHA-256 of the DER certificate)"
                        .into(),
                ));
            }
        }
        if let Some(subject) = &mut self.subject {
            for (name, value) in [
                ("serialNumber", &mut subject.serial_number),
                ("commonName", &mut subject.common_name),
            ] {
                if let Some(text) = value {
                    let trimmed = text.trim();
                    if trimmed.is_empty() || trimmed.chars().count() > MAX_SUBJECT_VALUE_CHARS {
                        return Err(Error::BadRequest(format!(
                            "signer.subject.{name} must be 1 to {MAX_SUBJECT_VALUE_CHARS} characters"
                        )));
                    }
                    *text = trimmed.to_owned();
                }
            }
            if subject.serial_number.is_none() && subject.common_name.is_none() {
                return Err(Error::BadRequest(
                    "signer.subject names neither serialNumber nor commonName".into(),
                ));
            }
        }
        if self.certificate_sha256.is_empty()
            && self.subject.is_none()
            && self.policy_classes.is_empty()
        {
            return Err(Error::BadRequest(
                "signer names no certificateSha256, subject or policyClasses".into(),
            ));
        }
        Ok(self)
    }

    /// `Ok` when `cert` is an acceptable signer; otherwise `SS_SIGNER_MISMATCH` saying
    /// which criterion failed and what was expected.
    pub fn check(&self, cert: &CertificateInfo) -> Result<()> {
        if !self.certificate_sha256.is_empty()
            && !self
                .certificate_sha256
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&cert.sha256_thumbprint))
        {
            return Err(Error::SignerMismatch(format!(
                "the certificate {} is not one of the {} certificate(s) the portal named",
                cert.sha256_thumbprint,
                self.certificate_sha256.len()
            )));
        }
        if let Some(subject) = &self.subject {
            if let Some(expected) = &subject.serial_number {
                let matches = cert
                    .subject_serial_number
                    .as_deref()
                    .is_some_and(|actual| actual.trim().eq_ignore_ascii_case(expected));
                if !matches {
                    return Err(Error::SignerMismatch(format!(
                        "the certificate's subject serialNumber is {}, the portal expects {expected:?}",
                        describe_value(cert.subject_serial_number.as_deref())
                    )));
                }
            }
            if let Some(expected) = &subject.common_name {
                let matches = cert
                    .common_name
                    .as_deref()
                    .is_some_and(|actual| actual.trim() == expected);
                if !matches {
                    return Err(Error::SignerMismatch(format!(
                        "the certificate names {}, the portal expects {expected:?}",
                        describe_value(cert.common_name.as_deref())
                    )));
                }
            }
        }
        if !self.policy_classes.is_empty()
            && !cert
                .india_pki
                .iter()
                .any(|class| self.policy_classes.contains(class))
        {
            let wanted: Vec<&str> = self.policy_classes.iter().map(|c| c.label()).collect();
            let has: Vec<&str> = cert.india_pki.iter().map(|c| c.label()).collect();
            return Err(Error::SignerMismatch(format!(
                "the portal accepts {} certificates; this one is {}",
                wanted.join(" or "),
                if has.is_empty() {
                    "of no India PKI class".to_owned()
                } else {
                    has.join(", ")
                }
            )));
        }
        Ok(())
    }

    /// Who is expected, in words for a screen: e.g. `"ANITA SHARMA" (serialNumber
    /// 9a1b…), Class 3`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(subject) = &self.subject {
            match (&subject.common_name, &subject.serial_number) {
                (Some(cn), Some(sn)) => parts.push(format!("{cn:?} (serialNumber {sn})")),
                (Some(cn), None) => parts.push(format!("{cn:?}")),
                (None, Some(sn)) => parts.push(format!("serialNumber {sn}")),
                (None, None) => {}
            }
        }
        if !self.policy_classes.is_empty() {
            let classes: Vec<&str> = self.policy_classes.iter().map(|c| c.label()).collect();
            parts.push(classes.join(" or "));
        }
        match self.certificate_sha256.as_slice() {
            [] => {}
            [one] => parts.push(format!("certificate SHA-256 {one}")),
            many => parts.push(format!("one of {} named certificates", many.len())),
        }
        parts.join(", ")
    }
}

fn describe_value(value: Option<&str>) -> String {
    value.map_or_else(|| "absent".to_owned(), |v| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cn: &str, serial_number: Option<&str>, classes: &[IndiaPkiClass]) -> CertificateInfo {
        CertificateInfo::for_tests(cn, serial_number, classes, &"ab".repeat(32))
    }

    fn requirement(json: serde_json::Value) -> Result<SignerRequirement> {
        serde_json::from_value::<SignerRequirement>(json)
            .map_err(|e| Error::BadRequest(e.to_string()))?
            .normalized()
    }

    #[test]
    fn parses_the_documented_shape_and_normalises() {
        let req = requirement(serde_json::json!({
            "certificateSha256": ["AB".repeat(32)],
            "subject": {"serialNumber": " 9A1B ", "commonName": "Anita Sharma"},
            "policyClasses": ["class3"],
        }))
        .unwrap();
        assert_eq!(req.certificate_sha256, vec!["ab".repeat(32)]);
        assert_eq!(
            req.subject.as_ref().unwrap().serial_number.as_deref(),
            Some("9A1B")
        );
        assert_eq!(req.policy_classes, vec![IndiaPkiClass::Class3]);
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["policyClasses"][0], "class3");
    }

    #[test]
    fn malformed_requirements_are_bad_requests() {
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"certificateSha256": ["abc"]}),
            serde_json::json!({"certificateSha256": ["zz".repeat(32)]}),
            serde_json::json!({"subject": {}}),
            serde_json::json!({"subject": {"commonName": "  "}}),
            serde_json::json!({"subject": {"commonName": "x".repeat(257)}}),
            serde_json::json!({"policyClasses": ["class9"]}),
            serde_json::json!({"unknown": 1}),
            serde_json::json!({"certificateSha256": vec!["ab".repeat(32); 33]}),
        ] {
            let err = requirement(bad.clone()).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::BadRequest, "{bad}");
        }
    }

    #[test]
    fn every_criterion_must_hold_and_any_list_entry_may_match() {
        let cert = info("Anita Sharma", Some("9a1b"), &[IndiaPkiClass::Class3]);
        let ok = requirement(serde_json::json!({
            "certificateSha256": ["00".repeat(32), "ab".repeat(32)],
            "subject": {"serialNumber": "9A1B", "commonName": "Anita Sharma"},
            "policyClasses": ["class2", "class3"],
        }))
        .unwrap();
        ok.check(&cert).unwrap();

        for (json, says) in [
            (
                serde_json::json!({"certificateSha256": ["00".repeat(32)]}),
                "not one of the 1 certificate",
            ),
            (
                serde_json::json!({"subject": {"serialNumber": "ffff"}}),
                "serialNumber is \"9a1b\"",
            ),
            (
                serde_json::json!({"subject": {"commonName": "anita sharma"}}),
                "expects \"anita sharma\"",
            ),
            (
                serde_json::json!({"policyClasses": ["class2"]}),
                "accepts Class 2 certificates; this one is Class 3",
            ),
        ] {
            let err = requirement(json.clone()).unwrap().check(&cert).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::SignerMismatch, "{json}");
            assert!(err.to_string().contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn a_missing_subject_attribute_never_matches() {
        let cert = info("Anita Sharma", None, &[]);
        let err = requirement(serde_json::json!({"subject": {"serialNumber": "9a1b"}}))
            .unwrap()
            .check(&cert)
            .unwrap_err();
        assert!(err.to_string().contains("serialNumber is absent"), "{err}");
        let err = requirement(serde_json::json!({"policyClasses": ["class3"]}))
            .unwrap()
            .check(&cert)
            .unwrap_err();
        assert!(err.to_string().contains("of no India PKI class"), "{err}");
    }

    #[test]
    fn describes_the_expected_signer() {
        let req = requirement(serde_json::json!({
            "subject": {"serialNumber": "9a1b", "commonName": "Anita Sharma"},
            "policyClasses": ["class3"],
        }))
        .unwrap();
        assert_eq!(
            req.describe(),
            "\"Anita Sharma\" (serialNumber 9a1b), Class 3"
        );
    }
}
