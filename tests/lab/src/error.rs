//! Errors raised while locating modules and provisioning lab tokens.

use std::fmt;
use std::path::PathBuf;

/// Why a lab token could not be provisioned.
///
/// `Debug` prints the same human-readable message as `Display` (plus the
/// cause chain), so a test returning `Result<(), LabError>` fails with a
/// message that says what to run.
#[derive(thiserror::Error)]
pub enum LabError {
    /// The kryoptic module has not been built on this machine.
    #[error(
        "kryoptic PKCS#11 module not found at {}: run `tests/lab/build-kryoptic.sh` first \
         (after `tests/lab/install.sh`)",
        path.display()
    )]
    KryopticNotBuilt {
        /// Where the module was expected.
        path: PathBuf,
    },

    /// The SoftHSM2 module is not installed.
    #[error(
        "SoftHSM2 PKCS#11 module not found at {}: run `tests/lab/install.sh` first",
        path.display()
    )]
    SoftHsmNotInstalled {
        /// Where the module was expected.
        path: PathBuf,
    },

    /// A command-line tool the lab relies on is not installed.
    #[error("`{tool}` is not installed or not on PATH: run `tests/lab/install.sh` first")]
    ToolMissing {
        /// The program name.
        tool: &'static str,
    },

    /// A tool ran but failed. PIN arguments are redacted from `command`.
    #[error("`{command}` failed ({status}): {stderr}")]
    ToolFailed {
        /// The command line, with secret arguments replaced by `<redacted>`.
        command: String,
        /// The exit status.
        status: String,
        /// The tool's standard error, trimmed.
        stderr: String,
    },

    /// A token label that PKCS#11 cannot hold (more than 32 bytes, or empty).
    #[error("token label {0:?} must be 1..=32 bytes")]
    InvalidLabel(String),

    /// A certificate validity window that is empty or out of range.
    #[error("invalid certificate validity window: {not_before}..{not_after} days from now (must be non-empty and representable)")]
    InvalidValidity {
        /// Start, in days relative to now.
        not_before: i64,
        /// End, in days relative to now.
        not_after: i64,
    },

    /// A file-system operation failed.
    #[error("{context}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LabError {
    /// Wraps an I/O error with a description of what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

impl fmt::Debug for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            write!(f, "\n  caused by: {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}
