//! Tenants' webhook secrets and the callback signature made with them.
//!
//! A secret is `whsec_` followed by 43 random base62 characters (about 256 bits). The
//! HMAC key is the whole secret text as UTF-8, so a portal can paste it as it was shown.
//! The signature header is `X-SecureSign-Signature: v1=<hex HMAC-SHA256>` over
//! `"<X-SecureSign-Timestamp>.<raw body>"`. During the grace period of a roll
//! (`tenant webhook-secret roll --grace`), a second entry made with the replaced secret
//! follows: `v1=<new>, v1=<old>`; a portal accepts the callback when any entry matches.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ids::random_base62;

/// Prefix of every webhook secret.
pub const PREFIX: &str = "whsec_";
const BODY_LEN: usize = 43;

/// A tenant's webhook secret. `Debug` never shows it; the memory is wiped on drop.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<String>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}

/// Why stored text is not a webhook secret.
#[derive(Debug, thiserror::Error)]
#[error("not a webhook secret")]
pub struct MalformedSecret;

impl WebhookSecret {
    /// A new random secret (thread-local CSPRNG seeded from the OS).
    pub fn generate() -> Self {
        let mut text = Zeroizing::new(String::with_capacity(PREFIX.len() + BODY_LEN));
        text.push_str(PREFIX);
        text.push_str(&Zeroizing::new(random_base62(BODY_LEN)));
        Self(text)
    }

    /// Rebuilds a secret from its bytes (as unsealed from the database).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MalformedSecret> {
        let text = std::str::from_utf8(bytes).map_err(|_| MalformedSecret)?;
        let body = text.strip_prefix(PREFIX).ok_or(MalformedSecret)?;
        if body.len() != BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedSecret);
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    /// The secret text, to show once to the administrator or to seal for storage.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `X-SecureSign-Signature` value for a body sent at `timestamp` (Unix seconds):
    /// `v1=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"`.
    pub fn signature_header(&self, timestamp: i64, body: &[u8]) -> String {
        format!("v1={}", hex::encode(self.mac(timestamp, body)))
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The secrets that sign a tenant's callbacks now: the current one, and while a roll's
/// grace period lasts, the one it replaced.
#[derive(Debug, Clone)]
pub struct SigningSecrets {
    /// The tenant's secret.
    pub current: WebhookSecret,
    /// The replaced secret, until its grace period ends.
    pub previous: Option<WebhookSecret>,
}

impl SigningSecrets {
    /// The `X-SecureSign-Signature` value: the current secret's `v1=<hex>`, then
    /// `, v1=<hex>` with the previous secret while it still signs.
    pub fn signature_header(&self, timestamp: i64, body: &[u8]) -> String {
        let mut header = self.current.signature_header(timestamp, body);
        if let Some(previous) = &self.previous {
            header.push_str(", ");
            header.push_str(&previous.signature_header(timestamp, body));
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_never_debug_printed() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(a.expose().len(), PREFIX.len() + BODY_LEN);
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(&a.expose()[PREFIX.len()..]));
        let back = WebhookSecret::from_bytes(a.expose().as_bytes()).unwrap();
        assert_eq!(back.expose(), a.expose());
        assert!(WebhookSecret::from_bytes(b"whsec_short").is_err());
        assert!(WebhookSecret::from_bytes(b"ss_live_x").is_err());
    }

    #[test]
    fn signature_matches_an_independent_hmac_and_covers_timestamp_and_body() {
        // RFC 4231 style check with a fixed key: HMAC-SHA256(key, "1700000000.{}").
        let secret = WebhookSecret(Zeroizing::new(format!("{PREFIX}{}", "a".repeat(BODY_LEN))));
        let header = secret.signature_header(1_700_000_000, b"{}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes()).unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            header,
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(header, secret.signature_header(1_700_000_001, b"{}"));
        assert_ne!(header, secret.signature_header(1_700_000_000, b"{ }"));
    }

    #[test]
    fn a_grace_period_adds_the_previous_secrets_entry_after_the_current_one() {
        let current = WebhookSecret::generate();
        let previous = WebhookSecret::generate();
        let alone = SigningSecrets {
            current: current.clone(),
            previous: None,
        };
        assert_eq!(
            alone.signature_header(7, b"{}"),
            current.signature_header(7, b"{}")
        );
        let both = SigningSecrets {
            current: current.clone(),
            previous: Some(previous.clone()),
        };
        assert_eq!(
            both.signature_header(7, b"{}"),
            format!(
                "{}, {}",
                current.signature_header(7, b"{}"),
                previous.signature_header(7, b"{}")
            )
        );
    }
}
