//! Encryption at rest for secrets the server must be able to use again (tenants' webhook
//! secrets, which sign callbacks and so cannot be stored as a hash like API keys).
//!
//! A 256-bit key lives in its own file (by default `<database>.secrets-key`, created on
//! first use with mode `0600`), never in the database: a copy of the database or of a
//! backup alone reveals no webhook secret. Each secret is sealed with ChaCha20-Poly1305
//! (`ring`, already in the build through rustls) under a fresh random 96-bit nonce, and
//! bound to its purpose and owner by the associated data, so a sealed value moved to
//! another tenant's row does not open.
//!
//! Sealed form: `v1.<base64 nonce>.<base64 ciphertext‖tag>`.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const SEALED_PREFIX: &str = "v1.";

/// Why the secrets key could not be loaded or a value could not be (un)sealed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsKeyError {
    /// Reading or creating the key file failed.
    #[error("secrets key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key file does not hold 64 hex digits.
    #[error("secrets key file {0} must hold 64 hex digits")]
    Malformed(PathBuf),
    /// A sealed value is malformed, was sealed with another key or for another owner,
    /// or was tampered with.
    #[error("a sealed secret does not open with this secrets key")]
    Unsealable,
}

/// The key that seals secrets at rest. `Debug` never shows it.
pub struct SecretsKey {
    key: LessSafeKey,
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

/// The default key file of a database: `<database>.secrets-key`.
pub fn default_key_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".secrets-key");
    PathBuf::from(name)
}

impl SecretsKey {
    /// Loads the key from `path`, creating it (random, mode `0600`, atomically: two
    /// processes racing end up with the same key) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretsKeyError> {
        let io = |source| SecretsKeyError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::from_file_text(path, &Zeroizing::new(text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
        let text = Zeroizing::new(hex::encode(&bytes[..]));
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // tempfile creates the file with mode 0600; persist_noclobber links it into
        // place only if no other process did first.
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        match file.persist_noclobber(path) {
            Ok(_) => {
                tracing::info!(path = %path.display(), "created a new secrets key file");
                Self::from_bytes(&bytes)
            }
            Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
                Self::from_file_text(path, &text)
            }
            Err(err) => Err(io(err.error)),
        }
    }

    fn from_file_text(path: &Path, text: &str) -> Result<Self, SecretsKeyError> {
        warn_if_readable_by_others(path);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), &mut bytes[..])
            .map_err(|_| SecretsKeyError::Malformed(path.to_owned()))?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, SecretsKeyError> {
        let unbound =
            UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| SecretsKeyError::Unsealable)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals `plaintext`, bound to `context` (purpose and owner, e.g. the tenant id).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SecretsKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut in_out = Zeroizing::new(plaintext.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut *in_out,
            )
            .map_err(|_| SecretsKeyError::Unsealable)?;
        Ok(format!(
            "{SEALED_PREFIX}{}.{}",
            BASE64.encode(nonce),
            BASE64.encode(&*in_out)
        ))
    }

    /// Opens a value sealed by [`SecretsKey::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, SecretsKeyError> {
        let rest = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretsKeyError::Unsealable)?;
        let (nonce_b64, body_b64) = rest.split_once('.').ok_or(SecretsKeyError::Unsealable)?;
        let nonce: [u8; NONCE_LEN] = BASE64
            .decode(nonce_b64)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SecretsKeyError::Unsealable)?;
        let mut in_out = Zeroizing::new(
            BASE64
                .decode(body_b64)
                .map_err(|_| SecretsKeyError::Unsealable)?,
        );
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SecretsKeyError::Unsealable)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the secrets key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.secrets-key");
        let key = SecretsKey::load_or_create(&path).unwrap();
        let sealed = key.seal(b"whsec_example", "tenant:org_1").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("whsec_example"));
        assert_eq!(
            &*key.open(&sealed, "tenant:org_1").unwrap(),
            b"whsec_example"
        );
        assert!(key.open(&sealed, "tenant:org_2").is_err(), "other owner");

        // The same file gives the same key; another file another key.
        let again = SecretsKey::load_or_create(&path).unwrap();
        assert_eq!(
            &*again.open(&sealed, "tenant:org_1").unwrap(),
            b"whsec_example"
        );
        let other = SecretsKey::load_or_create(&dir.path().join("other")).unwrap();
        assert!(other.open(&sealed, "tenant:org_1").is_err());

        // A flipped bit anywhere in the ciphertext is refused.
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(key.open(&tampered, "tenant:org_1").is_err());
        assert_eq!(format!("{key:?}"), "SecretsKey(..)");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = default_key_path(&dir.path().join("securesign.db"));
        assert!(path.ends_with("securesign.db.secrets-key"));
        SecretsKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            SecretsKey::load_or_create(&path),
            Err(SecretsKeyError::Malformed(_))
        ));
    }
}
