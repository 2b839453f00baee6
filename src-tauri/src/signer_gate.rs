//! The signer gate (expected signer and key usage, decided before any PIN screen) lives in
//! the platform-neutral `securesign-client` crate, shared with the CLI.

pub use securesign_client::signer_gate::{
    admit, decide, HeldCertificate, SignerDecision, SignerRefusal,
};
