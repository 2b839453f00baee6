//! The error every command returns: the core's `{code, message, resolution, retries?}`.

use securesign_core::{Error, ErrorBody, ErrorCode};
use serde::Serialize;

/// A command failure as the UI receives it (JSON [`ErrorBody`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
#[error("{}: {}", .0.code, .0.message)]
pub struct CommandError(pub ErrorBody);

impl CommandError {
    /// An error with a code and message, and the code's standard resolution.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, message))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

impl From<Error> for CommandError {
    fn from(err: Error) -> Self {
        Self(err.body())
    }
}

/// Result of a command.
pub type CommandResult<T> = Result<T, CommandError>;
