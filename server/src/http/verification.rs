//! Verifies posted signatures against the documents' digests, in the session's format.
//!
//! CPU-bound (RSA and ECDSA verification); the handler runs it on the blocking pool.

use securesign_core::backend::SignatureScheme;
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::verify::VerifyingKey;
use securesign_core::ErrorCode;

use super::error::ApiError;
use crate::clock::format_rfc3339;
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

/// How far a CMS signing time may lie outside its session (phone clocks drift).
pub const SIGNING_TIME_SKEW_SECS: i64 = 5 * 60;

/// When a session's signatures may say they were made (Unix seconds, inclusive): from
/// the session's creation to the moment the result arrives, each widened by
/// [`SIGNING_TIME_SKEW_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningWindow {
    /// Earliest accepted signing time.
    pub earliest: i64,
    /// Latest accepted signing time.
    pub latest: i64,
}

impl SigningWindow {
    /// The window of a session created at `created_at` whose result arrives at `now`.
    pub fn for_session(created_at: i64, now: i64) -> Self {
        Self {
            earliest: created_at.saturating_sub(SIGNING_TIME_SKEW_SECS),
            latest: now.saturating_add(SIGNING_TIME_SKEW_SECS),
        }
    }

    /// Whether a signature made at `unix` seconds fits.
    pub fn contains(&self, unix: i64) -> bool {
        (self.earliest..=self.latest).contains(&unix)
    }
}

/// What verifying a result's signatures learnt beyond "they verify".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignatures {
    /// The scheme they verified with.
    pub scheme: SignatureScheme,
    /// Other certificates the CMS signatures carried (candidates for the signer's path).
    pub cms_certs: Vec<Vec<u8>>,
    /// The distinct signing times the CMS signatures claim (Unix seconds).
    pub signing_times: Vec<i64>,
}

/// Verifies every check against the posted signer certificate.
///
/// * `raw`: each signature verifies over its digest with the certificate's key;
/// * `cms`: each is a detached CMS `SignedData` that [`cms::verify_detached`] accepts for
///   its digest, whose signer certificate is byte for byte the posted certificate, and
///   whose signing time, when it has one (the attribute is optional in CMS; the app
///   always sets it), lies in `window`: a signature claiming to predate its session, or
///   to come from the future, is not passed on to the portal.
///
/// An unreadable certificate is `SS_CERT_INVALID`; anything else that does not verify is
/// `SS_SIGNATURE_INVALID`, naming the document.
pub fn verify_all(
    format: SignatureFormat,
    certificate: &[u8],
    checks: &[SignatureCheck],
    window: SigningWindow,
) -> Result<VerifiedSignatures, ApiError> {
    let key = VerifyingKey::from_certificate_der(certificate)?;
    let mut cms_certs: Vec<Vec<u8>> = Vec::new();
    let mut signing_times: Vec<i64> = Vec::new();
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
                for cert in verified.other_certs_der {
                    if !cms_certs.contains(&cert) {
                        cms_certs.push(cert);
                    }
                }
                if let Some(signed_at) = verified.signing_time {
                    let signed_at = i64::try_from(signed_at).unwrap_or(i64::MAX);
                    if !signing_times.contains(&signed_at) {
                        signing_times.push(signed_at);
                    }
                    if !window.contains(signed_at) {
                        return Err(invalid(format!(
                            "the CMS signature of document {:?} says it was made at {}, outside its session ({} to {}, {} minutes of clock skew allowed)",
                            check.document_id,
                            format_rfc3339(signed_at),
                            format_rfc3339(window.earliest.saturating_add(SIGNING_TIME_SKEW_SECS)),
                            format_rfc3339(window.latest.saturating_sub(SIGNING_TIME_SKEW_SECS)),
                            SIGNING_TIME_SKEW_SECS / 60,
                        )));
                    }
                }
            }
        }
    }
    Ok(VerifiedSignatures {
        scheme: key.algorithm(),
        cms_certs,
        signing_times,
    })
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::SignatureInvalid, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_runs_from_creation_to_now_widened_by_the_skew() {
        let window = SigningWindow::for_session(1_000_000, 1_000_600);
        assert_eq!(
            window,
            SigningWindow {
                earliest: 1_000_000 - SIGNING_TIME_SKEW_SECS,
                latest: 1_000_600 + SIGNING_TIME_SKEW_SECS,
            }
        );
        for inside in [window.earliest, 1_000_000, 1_000_300, window.latest] {
            assert!(window.contains(inside), "{inside}");
        }
        for outside in [window.earliest - 1, window.latest + 1, 0, i64::MAX] {
            assert!(!window.contains(outside), "{outside}");
        }
        let extreme = SigningWindow::for_session(i64::MIN, i64::MAX);
        assert!(extreme.contains(0));
    }
}
