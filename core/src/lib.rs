//! SecureSign core: everything between the user's PIN and the token's signature.
//!
//! No Tauri, no HTTP server. Token backends sit behind one trait ([`backend::TokenBackend`]);
//! PIN, session and batch logic are plain state machines fed with time and events.

pub mod apdu;
pub mod backend;
pub mod batch;
pub mod biometric;
pub mod ccid;
pub mod cert;
pub mod clock;
pub mod cms;
pub mod deeplink;
pub mod digest;
pub mod error;
pub mod pin;
pub mod session;
pub mod signer;
pub mod status;
pub mod token;
pub mod verify;
pub mod worker;

pub use error::{Error, ErrorBody, ErrorCode, Result, SessionEndReason};
pub use pin::{Pin, PinPolicy};
pub use status::{PinState, PinStatus, Retries, RetryIndicator};
pub use token::{FinalTry, KeySelector, SignerKey, Token};
