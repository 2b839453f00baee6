//! Random identifiers: tenants, keys, sessions and signing-request capabilities.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// `n` random base62 characters from the thread-local CSPRNG (`ThreadRng`, ChaCha
/// seeded from the OS).
pub fn random_base62(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A tenant id such as `org_9f2a61c0d4e8b7a3`.
pub fn tenant_id() -> String {
    let bytes: [u8; 8] = rand::thread_rng().gen();
    format!("org_{}", hex::encode(bytes))
}

/// An API key id such as `key_Ab3dE…` (public: it names the key in listings and logs).
pub fn key_id() -> String {
    format!("key_{}", random_base62(16))
}

/// A session id such as `sess_…` (known to the portal only).
pub fn session_id() -> String {
    format!("sess_{}", random_base62(24))
}

/// A callback event id such as `evt_…` (sent to the portal, which dedupes by it).
pub fn event_id() -> String {
    format!("evt_{}", random_base62(24))
}

/// A signing-request id: 32 base62 characters, about 190 bits of randomness. It is the
/// app's only credential for the request, so it must be unguessable.
pub fn request_id() -> String {
    random_base62(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefixes_and_lengths() {
        assert!(tenant_id().starts_with("org_"));
        assert_eq!(tenant_id().len(), 4 + 16);
        assert_eq!(request_id().len(), 32);
        assert!(event_id().starts_with("evt_"));
        assert_ne!(event_id(), event_id());
        assert!(request_id().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(request_id(), request_id());
    }
}
