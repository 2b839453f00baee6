//! The API's error answer: `{"success":false,"error":{"code":"SS_…","message":…,"resolution":…}}`
//! with the HTTP status that belongs to the code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use securesign_core::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with a code and a message (the message must hold no secret).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `400 SS_BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `401 SS_API_KEY_INVALID`.
    pub fn key_invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ApiKeyInvalid, message)
    }

    /// `401 SS_API_KEY_INVALID` for a key whose tenant is disabled (said only to a
    /// caller holding the very key).
    pub fn tenant_disabled() -> Self {
        Self::key_invalid("the API key's tenant is disabled")
    }

    /// `403 SS_DOMAIN_NOT_ALLOWED`.
    pub fn domain_not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DomainNotAllowed, message)
    }

    /// `404 SS_NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status for the code.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status that answers an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ApiKeyInvalid => StatusCode::UNAUTHORIZED,
        ErrorCode::DomainNotAllowed => StatusCode::FORBIDDEN,
        ErrorCode::SessionExpired => StatusCode::GONE,
        ErrorCode::SignCancelled | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::CertInvalid
        | ErrorCode::CertExpired
        | ErrorCode::CertNotYetValid
        | ErrorCode::SignatureInvalid
        | ErrorCode::CertKeyUsage
        | ErrorCode::SignerUntrusted
        | ErrorCode::SignerMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Internal | ErrorCode::Config => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// JSON envelope of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorEnvelope`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable `SS_*` code.
    #[schema(example = "SS_API_KEY_INVALID")]
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// What to do about it.
    pub resolution: String,
}

impl ErrorDetail {
    /// The detail of a code with a message.
    pub fn of(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            resolution: code.resolution().to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorEnvelope {
            success: false,
            error: ErrorDetail::of(self.code, self.message),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"securesign\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if matches!(err, StoreError::TenantDisabled) {
            // The key passed a cache that had not yet heard of the disable.
            tracing::info!("a disabled tenant's write refused");
            return Self::tenant_disabled();
        }
        tracing::error!(error = %err, "database failure");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<securesign_core::Error> for ApiError {
    fn from(err: securesign_core::Error) -> Self {
        Self::new(err.code(), err.to_string())
    }
}
