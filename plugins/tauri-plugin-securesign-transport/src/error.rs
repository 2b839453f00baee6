//! The plugin's error, and what it means for the core.

use securesign_core::ccid::CcidError;

use crate::raw::RawError;

/// What went wrong reaching a token through the platform.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A raw transfer or platform call failed.
    #[error(transparent)]
    Raw(#[from] RawError),
    /// The USB reader's CCID layer failed.
    #[error(transparent)]
    Ccid(#[from] CcidError),
    /// The core refused the token (no PIV application, a card error).
    #[error(transparent)]
    Core(securesign_core::Error),
    /// The setting does not say which token to use and several are there.
    #[error("{0}")]
    Choice(String),
    /// The native plugin could not be registered.
    #[cfg(mobile)]
    #[error(transparent)]
    PluginInvoke(#[from] tauri::plugin::mobile::PluginInvokeError),
}

/// Into the core's one error: no card, no reader, a cancelled NFC prompt →
/// `SS_TOKEN_NOT_PRESENT`; no such hardware here → `SS_NOT_SUPPORTED`; several tokens and no
/// choice → `SS_CONFIG`; anything else →
/// `SS_TOKEN_ERROR`.
impl From<Error> for securesign_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Raw(RawError::CardAbsent | RawError::Disconnected | RawError::Cancelled) => {
                Self::TokenNotPresent
            }
            Error::Raw(RawError::NotAvailable(detail)) => Self::NotSupported(detail),
            Error::Ccid(e) => e.into(),
            Error::Core(e) => e,
            Error::Choice(detail) => Self::Config(detail),
            other => Self::Token(other.to_string()),
        }
    }
}
