//! Verifying a signature over a SHA-256 digest against a signer certificate.
