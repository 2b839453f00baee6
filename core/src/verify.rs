//! Verifying a signature over a SHA-256 digest against a signer certificate.
//!
//! The app, the CLI and the REST server all check a token's signature the same way:
//! the signer certificate's SubjectPublicKeyInfo is read with `x509-parser`, and the
//! signature is checked over the *prehashed* SHA-256 digest with RustCrypto:
//!
//! * RSA: PKCS#1 v1.5 with a SHA-256 `DigestInfo` (what `CKM_RSA_PKCS` over a
//!   DigestInfo and `openssl pkeyutl -sign -pkeyopt digest:sha256` produce);
//! * ECDSA on P-256: the signature may be DER (`ECDSA-Sig-Value`, what OpenSSL and
//!   most libraries produce) or raw `r || s` (64 bytes, what PKCS#11 `CKM_ECDSA`
//!   returns). Both are accepted; a 64-byte input is read as raw `r || s`, anything
//!   else as DER.
//!
//! Certificate validity dates and chains are *not* checked here: this module only
//! answers "did the certificate's key sign this digest?".

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs8::DecodePublicKey;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::backend::SignatureScheme;
use crate::Error;

/// OID of `rsaEncryption` (RFC 8017).
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// OID of `id-ecPublicKey` (RFC 5480).
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// Length of a raw `r || s` P-256 signature.
const P256_RAW_SIGNATURE_LEN: usize = 64;

/// The public key of a signer certificate, ready to verify signatures.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    /// An RSA public key.
    Rsa(rsa::RsaPublicKey),
    /// A P-256 public key.
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

impl VerifyingKey {
    /// Reads the public key of a DER-encoded X.509 certificate.
    ///
    /// Errors with [`Error::CertInvalid`] when the certificate does not parse or its key
    /// is neither RSA nor EC P-256.
    pub fn from_certificate_der(cert_der: &[u8]) -> Result<Self, Error> {
        let (rest, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| Error::CertInvalid(format!("not a DER X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::CertInvalid(
                "trailing bytes after the certificate".to_owned(),
            ));
        }
        let spki = cert.public_key();
        let algorithm = spki.algorithm.algorithm.to_id_string();
        match algorithm.as_str() {
            OID_RSA_ENCRYPTION => rsa::RsaPublicKey::from_public_key_der(spki.raw)
                .map(Self::Rsa)
                .map_err(|e| Error::CertInvalid(format!("unreadable RSA public key: {e}"))),
            OID_EC_PUBLIC_KEY => p256::PublicKey::from_public_key_der(spki.raw)
                .map(|key| Self::EcdsaP256(key.into()))
                .map_err(|e| {
                    Error::CertInvalid(format!("EC key is not a valid P-256 public key: {e}"))
                }),
            other => Err(Error::CertInvalid(format!(
                "unsupported public key algorithm {other}"
            ))),
        }
    }

    /// The algorithm signatures by this key are verified with.
    pub fn algorithm(&self) -> SignatureScheme {
        match self {
            Self::Rsa(_) => SignatureScheme::RsaPkcs1Sha256,
            Self::EcdsaP256(_) => SignatureScheme::EcdsaP256Sha256,
        }
    }

    /// Verifies `signature` over the SHA-256 `digest` (already hashed).
    ///
    /// Errors with [`Error::SignatureInvalid`] when the signature is malformed or does
    /// not verify.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        match self {
            Self::Rsa(key) => key
                .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest, signature)
                .map_err(|_| {
                    Error::SignatureInvalid("RSA PKCS#1 v1.5 SHA-256 check failed".to_owned())
                }),
            Self::EcdsaP256(key) => {
                let parsed = if signature.len() == P256_RAW_SIGNATURE_LEN {
                    p256::ecdsa::Signature::from_slice(signature)
                } else {
                    p256::ecdsa::Signature::from_der(signature)
                }
                .map_err(|_| {
                    Error::SignatureInvalid("malformed ECDSA P-256 signature".to_owned())
                })?;
                key.verify_prehash(digest, &parsed).map_err(|_| {
                    Error::SignatureInvalid("ECDSA P-256 SHA-256 check failed".to_owned())
                })
            }
        }
    }
}

/// Verifies `signature` over a SHA-256 `digest` with the public key of `cert_der`.
///
/// Returns the algorithm used. Errors: [`Error::CertInvalid`] for an unparseable
/// certificate or unsupported key, [`Error::SignatureInvalid`] for a bad signature.
pub fn verify_digest_signature(
    cert_der: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<SignatureScheme, Error> {
    let key = VerifyingKey::from_certificate_der(cert_der)?;
    key.verify_digest(digest, signature)?;
    Ok(key.algorithm())
}

#[cfg(test)]
mod tests {
    //! Keys, certificates and signatures are made by the `openssl` CLI at test time.

    use std::path::{Path, PathBuf};
    use std::process::Command;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::ErrorCode;

    /// A throwaway key + self-signed certificate made by `openssl`.
    struct OpensslSigner {
        dir: tempdir::Dir,
        key: PathBuf,
        cert_der: Vec<u8>,
    }

    mod tempdir {
        //! A unique temporary directory removed on drop (no extra dev-dependency).
        use std::path::{Path, PathBuf};

        pub struct Dir(PathBuf);

        impl Dir {
            pub fn new(tag: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!(
                    "ss-verify-{tag}-{}-{n}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                ));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn openssl(args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("the openssl CLI must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn path_str(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    impl OpensslSigner {
        fn new(kind: &str) -> Self {
            let dir = tempdir::Dir::new(kind);
            let key = dir.path().join("key.pem");
            let cert = dir.path().join("cert.der");
            let algorithm_args: &[&str] = match kind {
                "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "ed25519" => &["-algorithm", "ED25519"],
                "ec384" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                other => panic!("unknown key kind {other}"),
            };
            let mut genpkey = vec!["genpkey", "-out", path_str(&key)];
            genpkey.extend_from_slice(algorithm_args);
            openssl(&genpkey);
            openssl(&[
                "req",
                "-new",
                "-x509",
                "-key",
                path_str(&key),
                "-subj",
                "/CN=SecureSign verify test",
                "-days",
                "2",
                "-outform",
                "DER",
                "-out",
                path_str(&cert),
            ]);
            let cert_der = std::fs::read(&cert).unwrap();
            Self { dir, key, cert_der }
        }

        /// Signs a prehashed SHA-256 digest like a token would.
        fn sign_digest(&self, digest: &[u8; 32]) -> Vec<u8> {
            let input = self.dir.path().join("digest.bin");
            std::fs::write(&input, digest).unwrap();
            openssl(&[
                "pkeyutl",
                "-sign",
                "-inkey",
                path_str(&self.key),
                "-pkeyopt",
                "digest:sha256",
                "-in",
                path_str(&input),
            ])
        }
    }

    fn digest_of(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn verify_rsa_pkcs1v15_signature_made_by_openssl() {
        let signer = OpensslSigner::new("rsa");
        let digest = digest_of(b"contract.pdf");
        let signature = signer.sign_digest(&digest);
        assert_eq!(signature.len(), 256);
        let alg = verify_digest_signature(&signer.cert_der, &digest, &signature).unwrap();
        assert_eq!(alg, SignatureScheme::RsaPkcs1Sha256);
    }

    #[test]
    fn verify_ecdsa_p256_der_and_raw_signatures_made_by_openssl() {
        let signer = OpensslSigner::new("ec");
        let digest = digest_of(b"invoice.pdf");
        let der = signer.sign_digest(&digest);
        let alg = verify_digest_signature(&signer.cert_der, &digest, &der).unwrap();
        assert_eq!(alg, SignatureScheme::EcdsaP256Sha256);

        let raw = p256::ecdsa::Signature::from_der(&der).unwrap().to_bytes();
        assert_eq!(raw.len(), 64);
        verify_digest_signature(&signer.cert_der, &digest, &raw).unwrap();
    }

    #[test]
    fn verify_rejects_flipped_signature_byte_and_wrong_digest() {
        for kind in ["rsa", "ec"] {
            let signer = OpensslSigner::new(kind);
            let digest = digest_of(kind.as_bytes());
            let signature = signer.sign_digest(&digest);

            let mut flipped = signature.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 0x01;
            let err = verify_digest_signature(&signer.cert_der, &digest, &flipped).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{kind}: {err}");

            let other = digest_of(b"another document");
            let err = verify_digest_signature(&signer.cert_der, &other, &signature).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{kind}: {err}");
        }
    }

    #[test]
    fn verify_rejects_signature_by_another_key() {
        let signer = OpensslSigner::new("ec");
        let stranger = OpensslSigner::new("ec");
        let digest = digest_of(b"doc");
        let signature = stranger.sign_digest(&digest);
        let err = verify_digest_signature(&signer.cert_der, &digest, &signature).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SignatureInvalid);
    }

    #[test]
    fn verify_rejects_garbage_certificate_and_unsupported_keys() {
        let digest = digest_of(b"doc");
        let err = verify_digest_signature(b"not a certificate", &digest, &[0; 64]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::CertInvalid);

        for kind in ["ed25519", "ec384"] {
            let signer = OpensslSigner::new(kind);
            let err = verify_digest_signature(&signer.cert_der, &digest, &[0; 64]).unwrap_err();
            assert_eq!(err.code(), ErrorCode::CertInvalid, "{kind}: {err}");
        }
    }

    #[test]
    fn verify_rejects_truncated_certificate() {
        let signer = OpensslSigner::new("ec");
        let cut = &signer.cert_der[..signer.cert_der.len() - 10];
        let err = verify_digest_signature(cut, &digest_of(b"x"), &[0; 64]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::CertInvalid);
    }
}
