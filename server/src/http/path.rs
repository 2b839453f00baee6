//! Path parameters whose rejections are answered in the API's error envelope.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use securesign_core::ErrorCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A path parameter, as axum's `Path` extracts it, except that a segment it cannot
/// extract (percent-encoded bytes that are not UTF-8) is `404 SS_NOT_FOUND` in the API's
/// JSON envelope: no session or request has such a name. (axum answers plain text.)
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => Err(ApiError::not_found(
                format!("no such resource ({})", err.body_text()),
            )),
            Err(other) => {
                tracing::error!(error = %other.body_text(), "path parameters missing");
                Err(ApiError::new(ErrorCode::Internal, "internal error"))
            }
        }
    }
}
