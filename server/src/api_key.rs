//! API keys: `ss_live_` / `ss_test_` + 40 random base62 characters + a 6-character
//! base62 checksum.
//!
//! The checksum (SHA-256 of prefix and body, truncated to 32 bits) lets the server
//! refuse a mistyped or truncated key without a database lookup. Keys are stored only
//! as their SHA-256 hash: with ~238 bits of randomness a key cannot be brute-forced
//! from its hash, so no slow password hash is needed and lookups stay cheap.

use std::fmt;
use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ids::random_base62;

/// Random base62 characters after the prefix.
pub const BODY_LEN: usize = 40;
/// Base62 checksum characters after the body.
pub const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_DOMAIN: &[u8] = b"securesign-api-key-checksum-v1:";

/// Whether a key is for production (`live`) or integration testing (`test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyMode {
    /// `ss_live_…`: https origins only.
    Live,
    /// `ss_test_…`: https origins, or http on localhost.
    Test,
}

impl KeyMode {
    /// `live` or `test`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }

    /// The key prefix, `ss_live_` or `ss_test_`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Live => "ss_live_",
            Self::Test => "ss_test_",
        }
    }

    /// Parses `live` / `test`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

impl fmt::Display for KeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly generated API key. Shown once; its `Debug` never prints it.
pub struct ApiKeySecret {
    mode: KeyMode,
    text: Zeroizing<String>,
}

impl ApiKeySecret {
    /// Generates a new random key.
    pub fn generate(mode: KeyMode) -> Self {
        let body = Zeroizing::new(random_base62(BODY_LEN));
        let checksum = checksum(mode.prefix(), &body);
        let mut text = Zeroizing::new(String::with_capacity(8 + BODY_LEN + CHECKSUM_LEN));
        text.push_str(mode.prefix());
        text.push_str(&body);
        text.extend(checksum.iter().map(|&b| char::from(b)));
        Self { mode, text }
    }

    /// The key text, to print once to the administrator.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The key's mode.
    pub fn mode(&self) -> KeyMode {
        self.mode
    }

    /// The hash stored in the database.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.text)
    }

    /// The last four characters, kept for listings.
    pub fn last4(&self) -> String {
        let len = self.text.len();
        self.text[len - 4..].to_owned()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}…redacted)", self.mode.prefix())
    }
}

/// SHA-256 of a whole key.
///
/// `Eq` and `Hash` serve the in-memory key cache; they may leak timing about the hash,
/// which reveals nothing usable about a key with ~238 random bits. Authentication
/// still ends with the constant-time [`KeyHash::matches`] against the stored hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

/// A SHA-256 output is already uniformly spread, so its first 64 bits are its hash
/// (written as one `u64`, which lets a map skip hashing it again: see
/// [`nohash_hasher::IsEnabled`]). Only stored keys are ever put in such a map, and
/// nobody can pick a SHA-256 output, so crafted collisions are not a concern.
impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_ne_bytes([a, b, c, d, e, f, g, h]));
    }
}

impl nohash_hasher::IsEnabled for KeyHash {}

impl KeyHash {
    /// Hashes a key's text.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Lower-case hex, as stored.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Compares with a stored hex hash in constant time (for equal-length inputs).
    pub fn matches_hex(&self, stored_hex: &str) -> bool {
        Self::from_hex(stored_hex).is_some_and(|stored| self.matches(&stored))
    }

    /// A stored hash decoded from its hex form (`None` unless 64 hex digits), so a
    /// cached key is decoded once rather than on every request.
    pub fn from_hex(stored_hex: &str) -> Option<Self> {
        let mut stored = [0u8; 32];
        hex::decode_to_slice(stored_hex, &mut stored).ok()?;
        Some(Self(stored))
    }

    /// Compares with a stored hash in constant time (as four 64-bit words: the same
    /// guarantee as byte by byte, with an eighth of `subtle`'s per-element barriers).
    pub fn matches(&self, stored: &Self) -> bool {
        self.words().ct_eq(&stored.words()).into()
    }

    fn words(&self) -> [u64; 4] {
        let mut words = [0u64; 4];
        for (word, bytes) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(bytes);
            *word = u64::from_ne_bytes(eight);
        }
        words
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(…)")
    }
}

/// Why a presented key was refused before any database lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Neither `ss_live_` nor `ss_test_`.
    #[error("unknown key prefix")]
    Prefix,
    /// Wrong length or a non-base62 character.
    #[error("malformed key")]
    Malformed,
    /// The checksum does not match: a typo or a truncated key.
    #[error("key checksum mismatch")]
    Checksum,
}

/// A presented key whose format and checksum are right.
#[derive(Debug, Clone, Copy)]
pub struct PresentedKey {
    /// Mode from the prefix.
    pub mode: KeyMode,
    /// Hash to look up.
    pub hash: KeyHash,
}

/// Checks a presented key's prefix, shape and checksum, and hashes it.
pub fn parse(presented: &str) -> Result<PresentedKey, KeyFormatError> {
    let shaped = parse_shape(presented)?;
    shaped.verify_checksum()?;
    Ok(shaped.key)
}

/// A presented key whose prefix and shape are right and whose checksum is not checked
/// yet (see [`parse_shape`]).
#[derive(Clone, Copy)]
pub struct ShapedKey<'a> {
    /// Mode and hash.
    pub key: PresentedKey,
    body: &'a str,
    sum: &'a str,
}

impl fmt::Debug for ShapedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShapedKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ShapedKey<'_> {
    /// Checks the checksum: a mistyped or truncated key is refused here, before any
    /// lookup. A key whose hash equals a stored key's needs no check (it is that key).
    pub fn verify_checksum(&self) -> Result<(), KeyFormatError> {
        let expected = checksum(self.key.mode.prefix(), self.body);
        if bool::from(expected.ct_eq(self.sum.as_bytes())) {
            Ok(())
        } else {
            Err(KeyFormatError::Checksum)
        }
    }
}

/// Checks a presented key's prefix and shape, and hashes it; the checksum is left to
/// [`ShapedKey::verify_checksum`], for callers that may skip it.
pub fn parse_shape(presented: &str) -> Result<ShapedKey<'_>, KeyFormatError> {
    let (mode, rest) = if let Some(rest) = presented.strip_prefix(KeyMode::Live.prefix()) {
        (KeyMode::Live, rest)
    } else if let Some(rest) = presented.strip_prefix(KeyMode::Test.prefix()) {
        (KeyMode::Test, rest)
    } else {
        return Err(KeyFormatError::Prefix);
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Malformed);
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    Ok(ShapedKey {
        key: PresentedKey {
            mode,
            hash: KeyHash::of(presented),
        },
        body,
        sum,
    })
}

/// The checksum characters (base62, so ASCII) of a key's prefix and body.
fn checksum(prefix: &str, body: &str) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(prefix.as_bytes())
        .chain_update(body.as_bytes())
        .finalize();
    let mut value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_consistently() {
        for mode in [KeyMode::Live, KeyMode::Test] {
            let key = ApiKeySecret::generate(mode);
            assert!(key.expose().starts_with(mode.prefix()));
            assert_eq!(key.expose().len(), 8 + BODY_LEN + CHECKSUM_LEN);
            let parsed = parse(key.expose()).unwrap();
            assert_eq!(parsed.mode, mode);
            assert!(parsed.hash.matches_hex(&key.hash().to_hex()));
            let stored = KeyHash::from_hex(&key.hash().to_hex()).unwrap();
            assert!(parsed.hash.matches(&stored));
            let other = ApiKeySecret::generate(mode).hash();
            assert!(!parsed.hash.matches(&other));
            assert!(!parsed.hash.matches_hex(&other.to_hex()));
            assert!(KeyHash::from_hex("abc").is_none());
        }
    }

    #[test]
    fn hashes_differing_in_any_one_byte_do_not_match() {
        let hash = KeyHash::of("ss_test_example");
        assert!(hash.matches(&hash));
        for index in 0..32 {
            let mut other = hash;
            other.0[index] ^= 0x01;
            assert!(!hash.matches(&other), "byte {index}");
            assert_ne!(hash, other);
        }
    }

    #[test]
    fn a_map_without_rehashing_tells_apart_hashes_sharing_their_first_bytes() {
        let mut map: std::collections::HashMap<
            KeyHash,
            u8,
            nohash_hasher::BuildNoHashHasher<KeyHash>,
        > = Default::default();
        let first = KeyHash::of("a");
        let mut second = first;
        second.0[31] ^= 0xff;
        map.insert(first, 1);
        map.insert(second, 2);
        assert_eq!((map.get(&first), map.get(&second)), (Some(&1), Some(&2)));
        assert_eq!(map.get(&KeyHash::of("b")), None);
    }

    #[test]
    fn a_single_typo_is_caught_by_the_checksum() {
        let key = ApiKeySecret::generate(KeyMode::Live);
        let text = key.expose();
        for i in 8..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse(&typo).unwrap_err(),
                KeyFormatError::Checksum,
                "typo at {i} not caught"
            );
        }
    }

    #[test]
    fn bad_prefix_length_and_characters_are_refused() {
        assert_eq!(
            parse("ss_live_abc123xyz").unwrap_err(),
            KeyFormatError::Malformed
        );
        assert_eq!(parse("sk_live_abc").unwrap_err(), KeyFormatError::Prefix);
        let key = ApiKeySecret::generate(KeyMode::Test);
        let with_dash = key.expose().replacen('A', "-", 1).replacen('0', "-", 1);
        if with_dash != key.expose() {
            assert_eq!(parse(&with_dash).unwrap_err(), KeyFormatError::Malformed);
        }
        let swapped = key.expose().replacen("ss_test_", "ss_live_", 1);
        assert_eq!(parse(&swapped).unwrap_err(), KeyFormatError::Checksum);
    }

    #[test]
    fn a_shaped_key_checks_its_checksum_only_when_asked() {
        let key = ApiKeySecret::generate(KeyMode::Live);
        let shaped = parse_shape(key.expose()).unwrap();
        assert_eq!(shaped.verify_checksum(), Ok(()));
        assert!(shaped.key.hash.matches_hex(&key.hash().to_hex()));
        let mut typo = key.expose().as_bytes().to_vec();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        let shaped = parse_shape(&typo).unwrap();
        assert_eq!(shaped.verify_checksum(), Err(KeyFormatError::Checksum));
        assert_eq!(
            parse_shape("ss_live_abc").unwrap_err(),
            KeyFormatError::Malformed
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = ApiKeySecret::generate(KeyMode::Live);
        let shaped = parse_shape(key.expose()).unwrap();
        assert!(!format!("{shaped:?}").contains(&key.expose()[8..]));
        let debug = format!("{key:?} {:?}", key.hash());
        assert!(!debug.contains(&key.expose()[8..]));
    }
}
