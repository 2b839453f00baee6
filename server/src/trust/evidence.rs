//! What the server tells a portal about the signer of a completed session.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the revocation status was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevocationSource {
    /// A CRL signed by the issuer.
    Crl,
    /// An OCSP response signed by the issuer or its delegated responder.
    Ocsp,
    /// No source answered.
    None,
}

/// The revocation status of the signer certificate and of its CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevocationStatus {
    /// Every certificate of the path below the anchor is known not to be revoked.
    Good,
    /// At least one certificate's status could not be learnt.
    Unknown,
}

/// The revocation check of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevocationEvidence {
    /// `good` or `unknown` (a revoked certificate is never accepted).
    pub status: RevocationStatus,
    /// How the signer certificate's own status was learnt.
    pub source: RevocationSource,
    /// Per certificate below the anchor, signer first: `crl <url or file>`,
    /// `ocsp <url>` or `unknown: <why>`.
    pub checks: Vec<String>,
}

/// The signer of a completed session, as validated when the result arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignerEvidence {
    /// `true` when the certificate chains to a configured trust anchor and passed every
    /// check; `false` only for sessions of `ss_test_` keys, which may complete with an
    /// untrusted signer (see `untrustedReason`).
    pub trusted: bool,
    /// Why the signer is not trusted (test keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted_reason: Option<String>,
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Certificate serial number, hex.
    pub serial: String,
    /// SHA-256 of the DER certificate, hex.
    pub sha256: String,
    /// India PKI classes the certificate asserts (`class3`, `document_signer`, …).
    pub policy_classes: Vec<String>,
    /// SHA-256 of each certificate of the validated path, signer first, anchor last
    /// (empty when untrusted).
    pub chain_sha256: Vec<String>,
    /// When the path was validated, RFC 3339 UTC.
    pub validated_at: String,
    /// The revocation check (absent when untrusted before it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationEvidence>,
}
