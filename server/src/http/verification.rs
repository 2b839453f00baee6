//! Verifies posted signatures against the documents' digests, in the session's format.
//!
//! CPU-bound (RSA and ECDSA verification); the handler runs it on the blocking pool.

use securesign_core::backend::SignatureScheme;
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::VerifyingKey;
use securesign_core::ErrorCode;

use super::error::ApiError;
use crate::signature_format::SignatureFormat;

/// One document's posted signature and its digest.
#[derive(Debug)]
pub struct SignatureCheck {
    /// The portal's document id.
    pub document_id: String,
    /// The document's SHA-256 digest.
    pub digest: [u8; 32],
    /// The posted signature bytes (raw signature, or DER CMS).
    pub signature: Vec<u8>,
}

/// Verifies every check against the posted signer certificate; returns the scheme.
///
/// * `raw`: each signature verifies over its digest with the certificate's key;
/// * `cms`: each is a detached CMS `SignedData` that [`cms::verify_detached`] accepts for
///   its digest, and whose signer certificate is byte for byte the posted certificate.
///
/// An unreadable certificate is `SS_CERT_INVALID`; anything else that does not verify is
/// `SS_SIGNATURE_INVALID`, naming the document.
pub fn verify_all(
    format: SignatureFormat,
    certificate: &[u8],
    checks: &[SignatureCheck],
) -> Result<SignatureScheme, ApiError> {
    let key = VerifyingKey::from_certificate_der(certificate)?;
    for check in checks {
        match format {
            SignatureFormat::Raw => {
                key.verify_digest(&check.digest, &check.signature)
                    .map_err(|_| {
                        invalid(format!(
                            "the signature of document {:?} does not verify against the certificate",
                            check.document_id
                        ))
                    })?;
            }
            SignatureFormat::Cms => {
                let verified = cms::verify_detached(&check.signature, &Sha256Digest(check.digest))
                    .map_err(|err| {
                        invalid(format!(
                            "the CMS signature of document {:?} does not verify: {err}",
                            check.document_id
                        ))
                    })?;
                if verified.signer_cert_der != certificate {
                    return Err(invalid(format!(
                        "the CMS signature of document {:?} was made with another certificate than the posted one",
                        check.document_id
                    )));
                }
            }
        }
    }
    Ok(key.algorithm())
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::SignatureInvalid, message)
}
