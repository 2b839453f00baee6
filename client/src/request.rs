//! A signing request as the server sends it, and the checks it passes before it reaches a
//! screen or a token: it is the request that was asked for, it has 1 to 500 well-formed
//! SHA-256 documents, it names a printable tenant and origin, and an expected signer this
//! client understands (a requirement it cannot read refuses the request, it is never
//! ignored).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use securesign_core::deeplink::{RequestId, SignLink};
use securesign_core::digest::Sha256Digest;
use securesign_core::signer::SignerRequirement;
use securesign_core::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// Most documents in one request (the server's own limit).
pub const MAX_DOCUMENTS: usize = 500;

/// Who asks for the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// `org_…`.
    pub id: String,
    /// Name shown to the signer.
    pub display_name: String,
}

/// A document of a request, as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDocument {
    id: String,
    name: String,
    digest_algorithm: String,
    digest: String,
}

/// `GET /v1/sign-requests/{id}`'s answer, unchecked.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRequest {
    request_id: String,
    tenant: Tenant,
    origin: String,
    expires_at: String,
    documents: Vec<WireDocument>,
    /// Absent from servers that only know raw signatures.
    #[serde(default)]
    signature_format: SignatureFormat,
    /// The signer the portal expects; absent when it named none. Read as a value first so
    /// that a requirement this client cannot understand is a clear refusal, not a parse error.
    #[serde(default)]
    expected_signer: Option<serde_json::Value>,
}

/// What the portal asked to receive for each document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// The token's signature over the document digest (RSA PKCS#1 v1.5 or DER ECDSA).
    #[default]
    Raw,
    /// A detached CMS `SignedData` (DER) whose signed attributes carry the document digest.
    Cms,
}

/// A document to sign, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// The portal's id.
    pub id: String,
    /// Name shown to the signer.
    pub name: String,
    /// SHA-256 digest to sign.
    #[serde(skip)]
    pub digest: Sha256Digest,
}

/// A pending signing request, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignRequest {
    /// Its id.
    pub request_id: RequestId,
    /// Who asks.
    pub tenant: Tenant,
    /// The portal origin the server verified against the tenant's whitelist.
    pub origin: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
    /// What to sign.
    pub documents: Vec<Document>,
    /// Raw signatures or detached CMS.
    pub signature_format: SignatureFormat,
    /// The signer the portal expects (checked before any PIN is asked), if it named one.
    #[serde(skip)]
    pub expected_signer: Option<SignerRequirement>,
}

impl SignRequest {
    /// True when the request's expiry is at or before `now` (an unparsable expiry counts
    /// as expired: the server's word decides, we only avoid a useless token operation).
    pub fn expired_at(&self, now: time::OffsetDateTime) -> bool {
        time::OffsetDateTime::parse(
            &self.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_or(true, |expiry| expiry <= now)
    }
}

/// The request id of `text`: a signing link (`securesign://sign?requestId=…` or the
/// verified `https` App Link, parsed strictly by the core) or a bare request id.
/// Anything else is `SS_DEEP_LINK_INVALID`.
pub fn request_id_of(text: &str) -> Result<RequestId, ClientError> {
    let parsed = if text.contains("://") {
        SignLink::parse(text).map(|link| link.request_id)
    } else {
        RequestId::parse(text)
    };
    Ok(parsed?)
}

/// The API answered something we cannot use: a network-side problem, not the client's.
pub(crate) fn bad_answer(why: &str) -> ClientError {
    ClientError::new(ErrorCode::Network, format!("SecureSign API: {why}"))
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// Checks a request before it reaches a screen or the token.
pub(crate) fn check_request(
    asked: &RequestId,
    wire: WireRequest,
) -> Result<SignRequest, ClientError> {
    if wire.request_id != asked.as_str() {
        return Err(bad_answer("the answer is for another request"));
    }
    if wire.documents.is_empty() || wire.documents.len() > MAX_DOCUMENTS {
        return Err(bad_answer("the request has no or too many documents"));
    }
    if !printable(&wire.tenant.display_name, 200) || !printable(&wire.origin, 300) {
        return Err(bad_answer("the request names no tenant or origin"));
    }
    let documents = wire
        .documents
        .into_iter()
        .map(|d| {
            if d.digest_algorithm != "SHA-256" || !printable(&d.id, 200) || !printable(&d.name, 300)
            {
                return Err(bad_answer("a document is malformed"));
            }
            let bytes = BASE64
                .decode(&d.digest)
                .map_err(|_| bad_answer("a document digest is malformed"))?;
            let digest = Sha256Digest::from_slice(&bytes)
                .map_err(|_| bad_answer("a document digest is malformed"))?;
            Ok(Document {
                id: d.id,
                name: d.name,
                digest,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expected_signer = match wire.expected_signer {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            serde_json::from_value::<SignerRequirement>(value)
                .ok()
                .and_then(|requirement| requirement.normalized().ok())
                .ok_or_else(|| {
                    ClientError::new(
                        ErrorCode::SignerMismatch,
                        "the portal names its expected signer in a way this app does not understand; update SecureSign",
                    )
                })?,
        ),
    };
    Ok(SignRequest {
        request_id: asked.clone(),
        tenant: wire.tenant,
        origin: wire.origin,
        expires_at: wire.expires_at,
        documents,
        signature_format: wire.signature_format,
        expected_signer,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id() -> RequestId {
        RequestId::parse("a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV").unwrap()
    }

    fn wire(digest: &str) -> WireRequest {
        serde_json::from_value(serde_json::json!({
            "requestId": id().as_str(),
            "tenant": {"id": "org_1", "displayName": "Example Portal"},
            "origin": "https://portal.example.gov.in",
            "expiresAt": "2026-06-22T11:00:00Z",
            "documents": [{"id": "d1", "name": "a.pdf", "digestAlgorithm": "SHA-256", "digest": digest}]
        }))
        .unwrap()
    }

    #[test]
    fn a_good_request_is_accepted() {
        let digest = BASE64.encode([7u8; 32]);
        let req = check_request(&id(), wire(&digest)).unwrap();
        assert_eq!(req.documents[0].digest.0, [7u8; 32]);
        assert_eq!(req.tenant.display_name, "Example Portal");
    }

    #[test]
    fn signature_format_defaults_to_raw_and_unknown_formats_are_refused() {
        let digest = BASE64.encode([7u8; 32]);
        assert_eq!(
            check_request(&id(), wire(&digest))
                .unwrap()
                .signature_format,
            SignatureFormat::Raw
        );
        let mut value = serde_json::json!({
            "requestId": id().as_str(),
            "tenant": {"id": "org_1", "displayName": "Example Portal"},
            "origin": "https://portal.example.gov.in",
            "expiresAt": "2026-06-22T11:00:00Z",
            "documents": [{"id": "d1", "name": "a.pdf", "digestAlgorithm": "SHA-256", "digest": digest}],
            "signatureFormat": "cms"
        });
        let cms: WireRequest = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(cms.signature_format, SignatureFormat::Cms);
        value["signatureFormat"] = "pades".into();
        assert!(serde_json::from_value::<WireRequest>(value).is_err());
    }

    #[test]
    fn the_expected_signer_is_parsed_normalised_and_never_ignored() {
        let digest = BASE64.encode([7u8; 32]);
        assert_eq!(
            check_request(&id(), wire(&digest)).unwrap().expected_signer,
            None
        );
        let with = |signer: serde_json::Value| {
            let mut value = serde_json::json!({
                "requestId": id().as_str(),
                "tenant": {"id": "org_1", "displayName": "Example Portal"},
                "origin": "https://portal.example.gov.in",
                "expiresAt": "2026-06-22T11:00:00Z",
                "documents": [{"id": "d1", "name": "a.pdf", "digestAlgorithm": "SHA-256", "digest": digest}],
            });
            value["expectedSigner"] = signer;
            check_request(&id(), serde_json::from_value(value).unwrap())
        };
        let req = with(serde_json::json!({
            "certificateSha256": ["AB".repeat(32)],
            "subject": {"serialNumber": " 9a1b "},
            "policyClasses": ["class3"],
        }))
        .unwrap();
        let expected = req.expected_signer.unwrap();
        assert_eq!(expected.certificate_sha256, vec!["ab".repeat(32)]);
        assert_eq!(
            expected.subject.unwrap().serial_number.as_deref(),
            Some("9a1b")
        );
        assert_eq!(with(serde_json::Value::Null).unwrap().expected_signer, None);
        // A criterion this client does not know, or a malformed one, refuses the request.
        for bad in [
            serde_json::json!({"issuerSha256": ["ab"]}),
            serde_json::json!({"certificateSha256": ["abc"]}),
            serde_json::json!({}),
            serde_json::json!("anyone"),
        ] {
            let err = with(bad.clone()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SignerMismatch, "{bad}");
        }
    }

    #[test]
    fn expiry_is_checked_against_now_and_garbage_counts_as_expired() {
        let mut req = check_request(&id(), wire(&BASE64.encode([7u8; 32]))).unwrap();
        let at = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        assert!(!req.expired_at(at("2026-06-22T10:59:59Z")));
        assert!(req.expired_at(at("2026-06-22T11:00:00Z")));
        req.expires_at = "soon".into();
        assert!(req.expired_at(at("2000-01-01T00:00:00Z")));
    }

    #[test]
    fn malformed_digests_and_mismatched_ids_are_refused() {
        assert!(check_request(&id(), wire(&BASE64.encode([7u8; 31]))).is_err());
        assert!(check_request(&id(), wire("***")).is_err());
        let other = RequestId::parse("Z1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV").unwrap();
        let err = check_request(&other, wire(&BASE64.encode([7u8; 32]))).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Network);
    }

    #[test]
    fn a_link_or_a_bare_id_names_the_request_and_anything_else_is_a_link_error() {
        let id = id();
        for text in [
            format!("securesign://sign?requestId={id}"),
            format!("https://securesign.toolsbots.com/sign?requestId={id}"),
            id.to_string(),
        ] {
            assert_eq!(request_id_of(&text).unwrap(), id, "{text}");
        }
        for bad in [
            "securesign://sign?requestId=short",
            "https://evil.example/sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV",
            "securesign://sign?requestId=a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV&x=1",
            "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTu!",
            "",
        ] {
            let err = request_id_of(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::DeepLinkInvalid, "{bad:?}");
        }
    }
}
