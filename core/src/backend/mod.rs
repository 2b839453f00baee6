//! The one trait every token backend implements, and the data it speaks.
//!
//! Backends are thin translations of a token interface (PKCS#11 today; PIV over APDUs
//! next) into these calls. Policy — PIN validation, final-try confirmation, the cached
//! session, batches — lives above them in [`crate::token::Token`], identical for all.

pub mod piv;
pub mod pkcs11;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::error::Result;
use crate::pin::{Pin, PinPolicy};
use crate::status::PinState;

/// Identifies a key pair and its certificate on a token (PKCS#11 `CKA_ID`, PIV slot).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(pub Vec<u8>);

impl KeyId {
    /// Lower-case hex, as shown to users and accepted by `--key`.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map(KeyId).map_err(serde::de::Error::custom)
    }
}

/// Signature schemes the core produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureScheme {
    /// RSA PKCS#1 v1.5 over a SHA-256 `DigestInfo`.
    #[serde(rename = "RSA-PKCS1-SHA256")]
    RsaPkcs1Sha256,
    /// ECDSA on P-256 over a SHA-256 digest, DER-encoded `ECDSA-Sig-Value`.
    #[serde(rename = "ECDSA-P256-SHA256")]
    EcdsaP256Sha256,
}

/// What a token says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Token label, e.g. `ePass2003`.
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Rules for the user PIN.
    pub pin_policy: PinPolicy,
    /// Rules for the PUK / SO PIN.
    pub puk_policy: PinPolicy,
    /// The PIN is entered on the device itself (pin pad), not in the app.
    pub protected_auth_path: bool,
    /// Whether the backend reports exact retry counts.
    pub exact_retries: bool,
}

/// A certificate stored on the token, with the id of its key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCertificate {
    /// Key pair id (`CKA_ID`).
    pub id: KeyId,
    /// Object label.
    pub label: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// One token, reached through some interface.
///
/// Implementations must never retry a PIN operation by themselves and must report a
/// lost token as [`crate::Error::TokenNotPresent`], never as a wrong PIN.
pub trait TokenBackend: Send {
    /// Label, serial, PIN rules.
    fn info(&mut self) -> Result<TokenInfo>;

    /// PIN status and tries left, **without** logging in or spending a try.
    fn pin_state(&mut self) -> Result<PinState>;

    /// Verifies the user PIN once; on success the token accepts private-key operations.
    fn login(&mut self, pin: &Pin) -> Result<()>;

    /// Drops the token's verified state.
    fn logout(&mut self) -> Result<()>;

    /// Changes the user PIN; a wrong `old` counts as a failed try on the token.
    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<()>;

    /// Resets the user PIN with the PUK / SO PIN and clears the retry counter.
    fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<()>;

    /// Certificates on the token (public objects: readable without the PIN).
    fn certificates(&mut self) -> Result<Vec<TokenCertificate>>;

    /// Signs a SHA-256 digest with the private key `key`; needs a verified PIN.
    fn sign_digest(
        &mut self,
        key: &KeyId,
        scheme: SignatureScheme,
        digest: &Sha256Digest,
    ) -> Result<Vec<u8>>;
}

impl<B: TokenBackend + ?Sized> TokenBackend for Box<B> {
    fn info(&mut self) -> Result<TokenInfo> {
        (**self).info()
    }
    fn pin_state(&mut self) -> Result<PinState> {
        (**self).pin_state()
    }
    fn login(&mut self, pin: &Pin) -> Result<()> {
        (**self).login(pin)
    }
    fn logout(&mut self) -> Result<()> {
        (**self).logout()
    }
    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<()> {
        (**self).change_pin(old, new)
    }
    fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<()> {
        (**self).unblock_pin(puk, new)
    }
    fn certificates(&mut self) -> Result<Vec<TokenCertificate>> {
        (**self).certificates()
    }
    fn sign_digest(
        &mut self,
        key: &KeyId,
        scheme: SignatureScheme,
        digest: &Sha256Digest,
    ) -> Result<Vec<u8>> {
        (**self).sign_digest(key, scheme, digest)
    }
}
