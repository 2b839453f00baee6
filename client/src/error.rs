//! The client's error: the core's `{code, message, resolution, retries?}` body, so an error
//! the server reported keeps the server's `SS_*` code and message.

use securesign_core::{Error, ErrorBody, ErrorCode};

/// A failure of an API call or a request check, by `SS_*` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .0.code, .0.message)]
pub struct ClientError(pub ErrorBody);

impl ClientError {
    /// An error with a code and message, and the code's standard resolution.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, message))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The JSON body (`code`, `message`, `resolution`).
    pub fn body(&self) -> &ErrorBody {
        &self.0
    }
}

impl From<Error> for ClientError {
    fn from(err: Error) -> Self {
        Self(err.body())
    }
}
