//! SHA-256 digests as the portals send them, and the encodings tokens need around them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A SHA-256 digest of a document, computed by the portal or the CLI.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Parses 64 hex characters.
    pub fn from_hex(hex_str: &str) -> Result<Self> {
        let bytes = hex::decode(hex_str.trim())
            .map_err(|e| Error::BadRequest(format!("digest is not hex: {e}")))?;
        Self::from_slice(&bytes)
    }

    /// Takes exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::BadRequest(format!(
                "a SHA-256 digest has 32 bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(Self(array))
    }

    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(data).into())
    }

    /// Hashes everything `reader` yields, in chunks.
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<Self> {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(Self(hasher.finalize().into()));
            }
            hasher.update(&buf[..n]);
        }
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The DER `DigestInfo` that RSA PKCS#1 v1.5 signs (RFC 8017 §9.2, note 1).
    /// The prefix comes from the `rsa` crate, the same one [`crate::verify`] checks with.
    pub fn rsa_digest_info(&self) -> Vec<u8> {
        let scheme = rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
        let mut out = Vec::with_capacity(scheme.prefix.len() + self.0.len());
        out.extend_from_slice(&scheme.prefix);
        out.extend_from_slice(&self.0);
        out
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Converts a PKCS#11 `CKM_ECDSA` P-256 signature (`r || s`, 64 bytes) to the DER
/// `ECDSA-Sig-Value` that X.509/CMS verifiers expect.
pub fn ecdsa_p256_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    let sig = p256::ecdsa::Signature::from_slice(raw)
        .map_err(|e| Error::Token(format!("token returned a malformed ECDSA signature: {e}")))?;
    Ok(sig.to_der().as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_length_checks() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Digest::from_hex(&d.to_hex()).unwrap(), d);
        assert_eq!(Sha256Digest::of_reader(&b"abc"[..]).unwrap(), d);
        assert!(Sha256Digest::from_hex("abcd").is_err());
        assert!(Sha256Digest::from_hex("zz").is_err());
        assert_eq!(
            Sha256Digest::from_slice(&[0; 31]).unwrap_err().code(),
            crate::ErrorCode::BadRequest
        );
    }

    #[test]
    fn digest_info_is_the_rfc_8017_encoding() {
        let d = Sha256Digest([0xab; 32]);
        let info = d.rsa_digest_info();
        assert_eq!(info.len(), 51);
        assert_eq!(info[0], 0x30);
        assert_eq!(
            info[1] as usize,
            info.len() - 2,
            "outer length covers the rest"
        );
        assert_eq!(&info[19..], &[0xab; 32]);
    }

    #[test]
    fn ecdsa_raw_signature_becomes_der() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        let der = ecdsa_p256_raw_to_der(&raw).unwrap();
        assert_eq!(der, vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]);
        assert!(ecdsa_p256_raw_to_der(&[1u8; 10]).is_err());
        assert!(
            ecdsa_p256_raw_to_der(&[0u8; 64]).is_err(),
            "zero r/s is invalid"
        );
    }
}
