//! Batch signing results: what was signed, and why the rest was not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::backend::{KeyId, SignatureScheme};
use crate::digest::Sha256Digest;
use crate::error::Error;

/// A flag another thread (the UI's cancel button) sets to stop a batch between items.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the batch to stop before its next item.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Progress of a batch, reported after every item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchProgress {
    /// Items signed so far.
    pub done: usize,
    /// Items in the batch.
    pub total: usize,
}

/// One completed signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedDigest {
    /// Position in the batch.
    pub index: usize,
    /// The digest that was signed.
    pub digest: Sha256Digest,
    /// The signature (RSA: PKCS#1 v1.5; ECDSA: DER).
    #[serde(with = "base64_bytes")]
    pub signature: Vec<u8>,
}

/// What a batch produced: every completed signature, and the error that stopped it, if any.
///
/// Signatures before a failure are kept; nothing after it is reported as done.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The key that signed.
    pub key: KeyId,
    /// Its scheme.
    pub scheme: SignatureScheme,
    /// Items asked for.
    pub total: usize,
    /// Completed signatures, in batch order (`signed[i].index == i`).
    pub signed: Vec<SignedDigest>,
    /// Why the batch stopped early.
    pub error: Option<Error>,
}

impl BatchOutcome {
    /// True when every item was signed.
    pub fn is_complete(&self) -> bool {
        self.error.is_none() && self.signed.len() == self.total
    }
}

mod base64_bytes {
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}
