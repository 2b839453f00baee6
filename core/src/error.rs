//! One error enum for the whole core, each variant mapped to a stable `SS_*` code.
//!
//! The six codes of the spec keep the spec's meaning and resolution text; the others
//! are ours and equally stable: front ends, the CLI's `--json` output and the REST API
//! all speak these codes.

use serde::{Deserialize, Serialize};

use crate::status::Retries;

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable machine-readable error codes (`SS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Incorrect PIN (spec).
    #[serde(rename = "SS_PIN_INVALID")]
    PinInvalid,
    /// Token blocked after max retries (spec).
    #[serde(rename = "SS_PIN_BLOCKED")]
    PinBlocked,
    /// Invalid or revoked API key (spec).
    #[serde(rename = "SS_API_KEY_INVALID")]
    ApiKeyInvalid,
    /// Origin not whitelisted (spec).
    #[serde(rename = "SS_DOMAIN_NOT_ALLOWED")]
    DomainNotAllowed,
    /// Signing session (or cached PIN session) timed out (spec).
    #[serde(rename = "SS_SESSION_EXPIRED")]
    SessionExpired,
    /// User cancelled PIN entry or signing (spec).
    #[serde(rename = "SS_SIGN_CANCELLED")]
    SignCancelled,
    /// PIN (or PUK) has the wrong length or characters; the token was not touched.
    #[serde(rename = "SS_PIN_FORMAT")]
    PinFormat,
    /// One try is left and the caller did not confirm spending it.
    #[serde(rename = "SS_PIN_FINAL_TRY")]
    PinFinalTry,
    /// Incorrect PUK / SO PIN.
    #[serde(rename = "SS_PUK_INVALID")]
    PukInvalid,
    /// PUK / SO PIN blocked: only the issuing CA can help.
    #[serde(rename = "SS_PUK_BLOCKED")]
    PukBlocked,
    /// The operation needs a verified PIN and none is active.
    #[serde(rename = "SS_PIN_REQUIRED")]
    PinRequired,
    /// No token, or the token was removed.
    #[serde(rename = "SS_TOKEN_NOT_PRESENT")]
    TokenNotPresent,
    /// The token or its driver failed.
    #[serde(rename = "SS_TOKEN_ERROR")]
    TokenError,
    /// The token or backend does not support this operation.
    #[serde(rename = "SS_NOT_SUPPORTED")]
    NotSupported,
    /// No private key / certificate with that id or label.
    #[serde(rename = "SS_KEY_NOT_FOUND")]
    KeyNotFound,
    /// The signer certificate has expired.
    #[serde(rename = "SS_CERT_EXPIRED")]
    CertExpired,
    /// The signer certificate is not valid yet.
    #[serde(rename = "SS_CERT_NOT_YET_VALID")]
    CertNotYetValid,
    /// A certificate could not be parsed.
    #[serde(rename = "SS_CERT_INVALID")]
    CertInvalid,
    /// A signature does not verify.
    #[serde(rename = "SS_SIGNATURE_INVALID")]
    SignatureInvalid,
    /// The certificate's key usage forbids signatures (e.g. an encryption certificate).
    #[serde(rename = "SS_CERT_KEY_USAGE")]
    CertKeyUsage,
    /// The signer certificate does not chain to a trusted CA, or its chain is not valid
    /// (validity, key usage, policy, revocation): the message says which.
    #[serde(rename = "SS_SIGNER_UNTRUSTED")]
    SignerUntrusted,
    /// The signer certificate is not the one the portal asked for.
    #[serde(rename = "SS_SIGNER_MISMATCH")]
    SignerMismatch,
    /// A `securesign://` link is malformed.
    #[serde(rename = "SS_DEEP_LINK_INVALID")]
    DeepLinkInvalid,
    /// Malformed request or input.
    #[serde(rename = "SS_BAD_REQUEST")]
    BadRequest,
    /// Too many requests for this API key.
    #[serde(rename = "SS_RATE_LIMITED")]
    RateLimited,
    /// Unknown session or request.
    #[serde(rename = "SS_NOT_FOUND")]
    NotFound,
    /// The request was already completed or cancelled.
    #[serde(rename = "SS_CONFLICT")]
    Conflict,
    /// Configuration problem (no PKCS#11 module, bad path, …).
    #[serde(rename = "SS_CONFIG")]
    Config,
    /// The SecureSign API could not be reached or answered nonsense.
    #[serde(rename = "SS_NETWORK")]
    Network,
    /// A bug or unexpected failure on our side.
    #[serde(rename = "SS_INTERNAL")]
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 30] = [
        Self::PinInvalid,
        Self::PinBlocked,
        Self::ApiKeyInvalid,
        Self::DomainNotAllowed,
        Self::SessionExpired,
        Self::SignCancelled,
        Self::PinFormat,
        Self::PinFinalTry,
        Self::PukInvalid,
        Self::PukBlocked,
        Self::PinRequired,
        Self::TokenNotPresent,
        Self::TokenError,
        Self::NotSupported,
        Self::KeyNotFound,
        Self::CertExpired,
        Self::CertNotYetValid,
        Self::CertInvalid,
        Self::SignatureInvalid,
        Self::CertKeyUsage,
        Self::SignerUntrusted,
        Self::SignerMismatch,
        Self::DeepLinkInvalid,
        Self::BadRequest,
        Self::RateLimited,
        Self::NotFound,
        Self::Conflict,
        Self::Config,
        Self::Network,
        Self::Internal,
    ];

    /// The code as written on the wire, e.g. `SS_PIN_INVALID`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PinInvalid => "SS_PIN_INVALID",
            Self::PinBlocked => "SS_PIN_BLOCKED",
            Self::ApiKeyInvalid => "SS_API_KEY_INVALID",
            Self::DomainNotAllowed => "SS_DOMAIN_NOT_ALLOWED",
            Self::SessionExpired => "SS_SESSION_EXPIRED",
            Self::SignCancelled => "SS_SIGN_CANCELLED",
            Self::PinFormat => "SS_PIN_FORMAT",
            Self::PinFinalTry => "SS_PIN_FINAL_TRY",
            Self::PukInvalid => "SS_PUK_INVALID",
            Self::PukBlocked => "SS_PUK_BLOCKED",
            Self::PinRequired => "SS_PIN_REQUIRED",
            Self::TokenNotPresent => "SS_TOKEN_NOT_PRESENT",
            Self::TokenError => "SS_TOKEN_ERROR",
            Self::NotSupported => "SS_NOT_SUPPORTED",
            Self::KeyNotFound => "SS_KEY_NOT_FOUND",
            Self::CertExpired => "SS_CERT_EXPIRED",
            Self::CertNotYetValid => "SS_CERT_NOT_YET_VALID",
            Self::CertInvalid => "SS_CERT_INVALID",
            Self::SignatureInvalid => "SS_SIGNATURE_INVALID",
            Self::CertKeyUsage => "SS_CERT_KEY_USAGE",
            Self::SignerUntrusted => "SS_SIGNER_UNTRUSTED",
            Self::SignerMismatch => "SS_SIGNER_MISMATCH",
            Self::DeepLinkInvalid => "SS_DEEP_LINK_INVALID",
            Self::BadRequest => "SS_BAD_REQUEST",
            Self::RateLimited => "SS_RATE_LIMITED",
            Self::NotFound => "SS_NOT_FOUND",
            Self::Conflict => "SS_CONFLICT",
            Self::Config => "SS_CONFIG",
            Self::Network => "SS_NETWORK",
            Self::Internal => "SS_INTERNAL",
        }
    }

    /// What the user or integrator should do; the spec's text for the spec's six codes.
    pub fn resolution(&self) -> &'static str {
        match self {
            Self::PinInvalid => "User retries; show remaining attempts",
            Self::PinBlocked => "PUK unlock via product settings or CA",
            Self::ApiKeyInvalid => "Check Admin Console key status",
            Self::DomainNotAllowed => "Add domain in Admin Console",
            Self::SessionExpired => "Re-initiate sign flow",
            Self::SignCancelled => "Allow user to retry",
            Self::PinFormat => "Enter a PIN of the length the token accepts",
            Self::PinFinalTry => "Confirm that you want to use the last PIN try",
            Self::PukInvalid => "Check the PUK; contact your CA if unsure",
            Self::PukBlocked => "Contact the CA that issued the token",
            Self::PinRequired => "Enter the token PIN",
            Self::TokenNotPresent => "Insert or tap the token and try again",
            Self::TokenError => "Reconnect the token; if it persists, check the token driver",
            Self::NotSupported => {
                "This token does not support the operation; contact its vendor or CA"
            }
            Self::KeyNotFound => "Check that the right token and certificate are selected",
            Self::CertExpired => "Renew the Digital Signature Certificate with your CA",
            Self::CertNotYetValid => {
                "Check the device clock, or wait until the certificate is valid"
            }
            Self::CertInvalid => "The certificate on the token is unreadable; contact your CA",
            Self::SignatureInvalid => "Sign again with the certificate's own key",
            Self::CertKeyUsage => {
                "Choose the token's signing certificate; this one may only encrypt"
            }
            Self::SignerUntrusted => {
                "Sign with a valid, unrevoked DSC issued by a licensed CA; renew it with your CA if it expired or was revoked"
            }
            Self::SignerMismatch => {
                "Insert the token holding the certificate the portal asked for, or ask the portal to update the expected signer"
            }
            Self::DeepLinkInvalid => "Open the signing link from the portal again",
            Self::BadRequest => "Fix the request and send it again",
            Self::RateLimited => "Wait and retry after the Retry-After interval",
            Self::NotFound => "Check the identifier",
            Self::Conflict => "The request is already finished; start a new one",
            Self::Config => "Check the SecureSign settings",
            Self::Network => {
                "Check the network connection and the API address in settings, then retry"
            }
            Self::Internal => "Try again; report the problem if it persists",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a cached PIN session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// No activity for the idle timeout.
    Idle,
    /// The user or app logged out.
    Explicit,
    /// The token was removed.
    Removed,
    /// The absolute maximum lifetime passed.
    Expired,
}

/// Every error the core reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong PIN; the token counted a failure.
    #[error("incorrect PIN")]
    PinInvalid {
        /// Tries left after this failure.
        retries: Retries,
    },
    /// The PIN is blocked.
    #[error("the PIN is blocked after too many wrong attempts")]
    PinBlocked,
    /// PIN rejected before reaching the token.
    #[error("the PIN must be {min} to {max} characters")]
    PinFormat {
        /// Minimum length the token accepts.
        min: usize,
        /// Maximum length the token accepts.
        max: usize,
    },
    /// The final try needs an explicit confirmation.
    #[error("one PIN try is left; confirm to use it")]
    PinFinalTry,
    /// Wrong PUK / SO PIN.
    #[error("incorrect PUK")]
    PukInvalid {
        /// Tries left for the PUK.
        retries: Retries,
    },
    /// PUK / SO PIN blocked.
    #[error("the PUK is blocked")]
    PukBlocked,
    /// No verified PIN for an operation that needs one.
    #[error("the PIN must be verified first")]
    PinRequired,
    /// The cached PIN session ended.
    #[error("the PIN session ended ({0:?})")]
    SessionEnded(SessionEndReason),
    /// The user cancelled.
    #[error("cancelled by the user")]
    Cancelled,
    /// No token, or the token was removed.
    #[error("token not present")]
    TokenNotPresent,
    /// The token or its driver failed.
    #[error("token error: {0}")]
    Token(String),
    /// Not supported by this token/backend.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// No key or certificate with that id or label.
    #[error("no key or certificate matches {0}")]
    KeyNotFound(String),
    /// Certificate expired.
    #[error("the certificate expired on {not_after}")]
    CertExpired {
        /// Expiry, RFC 3339.
        not_after: String,
    },
    /// Certificate not valid yet.
    #[error("the certificate is not valid before {not_before}")]
    CertNotYetValid {
        /// Start of validity, RFC 3339.
        not_before: String,
    },
    /// Certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    CertInvalid(String),
    /// A signature does not verify.
    #[error("signature does not verify: {0}")]
    SignatureInvalid(String),
    /// The certificate's key usage forbids signatures.
    #[error("the certificate may not sign: {0}")]
    CertKeyUsage(String),
    /// The signer's certificate chain is not trusted.
    #[error("untrusted signer: {0}")]
    SignerUntrusted(String),
    /// The signer is not the one asked for.
    #[error("not the expected signer: {0}")]
    SignerMismatch(String),
    /// Malformed deep link.
    #[error("invalid signing link: {0}")]
    DeepLinkInvalid(String),
    /// Malformed input.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Configuration problem.
    #[error("configuration: {0}")]
    Config(String),
    /// The API could not be reached or answered nonsense.
    #[error("network: {0}")]
    Network(String),
    /// Unexpected failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::PinInvalid { .. } => ErrorCode::PinInvalid,
            Self::PinBlocked => ErrorCode::PinBlocked,
            Self::PinFormat { .. } => ErrorCode::PinFormat,
            Self::PinFinalTry => ErrorCode::PinFinalTry,
            Self::PukInvalid { .. } => ErrorCode::PukInvalid,
            Self::PukBlocked => ErrorCode::PukBlocked,
            Self::PinRequired => ErrorCode::PinRequired,
            Self::SessionEnded(SessionEndReason::Removed) => ErrorCode::TokenNotPresent,
            Self::SessionEnded(_) => ErrorCode::SessionExpired,
            Self::Cancelled => ErrorCode::SignCancelled,
            Self::TokenNotPresent => ErrorCode::TokenNotPresent,
            Self::Token(_) => ErrorCode::TokenError,
            Self::NotSupported(_) => ErrorCode::NotSupported,
            Self::KeyNotFound(_) => ErrorCode::KeyNotFound,
            Self::CertExpired { .. } => ErrorCode::CertExpired,
            Self::CertNotYetValid { .. } => ErrorCode::CertNotYetValid,
            Self::CertInvalid(_) => ErrorCode::CertInvalid,
            Self::SignatureInvalid(_) => ErrorCode::SignatureInvalid,
            Self::CertKeyUsage(_) => ErrorCode::CertKeyUsage,
            Self::SignerUntrusted(_) => ErrorCode::SignerUntrusted,
            Self::SignerMismatch(_) => ErrorCode::SignerMismatch,
            Self::DeepLinkInvalid(_) => ErrorCode::DeepLinkInvalid,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Config(_) => ErrorCode::Config,
            Self::Network(_) => ErrorCode::Network,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Tries left, where the error carries them.
    pub fn retries(&self) -> Option<Retries> {
        match self {
            Self::PinInvalid { retries } | Self::PukInvalid { retries } => Some(*retries),
            _ => None,
        }
    }

    /// The serializable body `{"code", "message", "resolution", "retries"?}`.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            retries: self.retries(),
            ..ErrorBody::new(self.code(), self.to_string())
        }
    }
}

/// JSON shape of an error: `{"code":"SS_…","message":…,"resolution":…,"retries"?:…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable message (never contains a PIN or key).
    pub message: String,
    /// What to do about it.
    pub resolution: String,
    /// Tries left, for PIN/PUK errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
}

impl ErrorBody {
    /// The body of `code` with `message` and the code's standard resolution, no tries.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            resolution: code.resolution().to_owned(),
            retries: None,
        }
    }
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RetryIndicator;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn spec_codes_carry_spec_resolutions() {
        assert_eq!(
            ErrorCode::PinInvalid.resolution(),
            "User retries; show remaining attempts"
        );
        assert_eq!(
            ErrorCode::PinBlocked.resolution(),
            "PUK unlock via product settings or CA"
        );
        assert_eq!(
            ErrorCode::SessionExpired.resolution(),
            "Re-initiate sign flow"
        );
    }

    #[test]
    fn pin_error_serializes_with_retries() {
        let err = Error::PinInvalid {
            retries: Retries::flagged(RetryIndicator::FinalTry),
        };
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["code"], "SS_PIN_INVALID");
        assert_eq!(v["retries"]["indicator"], "final_try");
        assert_eq!(v["message"], "incorrect PIN");
    }

    #[test]
    fn removal_ends_a_session_as_token_not_present_not_as_wrong_pin() {
        let err = Error::SessionEnded(SessionEndReason::Removed);
        assert_eq!(err.code(), ErrorCode::TokenNotPresent);
        let err = Error::SessionEnded(SessionEndReason::Idle);
        assert_eq!(err.code(), ErrorCode::SessionExpired);
    }
}
