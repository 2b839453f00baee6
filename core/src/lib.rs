//! SecureSign core: everything between the user's PIN and the token's signature.
//!
//! No Tauri, no HTTP server. Token backends sit behind one trait; PIN, session and
//! batch logic are plain state machines fed with time and events.

pub mod error;
pub mod status;
pub mod verify;

pub use error::{Error, ErrorBody, ErrorCode, Result, SessionEndReason};
pub use status::{PinState, PinStatus, Retries, RetryIndicator};
