//! RSA PKCS#1 v1.5 signature padding (RFC 8017 §9.2, EMSA-PKCS1-v1_5): PIV's GENERAL
//! AUTHENTICATE applies the raw RSA private-key operation, so the host pads.

use crate::error::{Error, Result};

/// `00 01 FF…FF 00 || digest_info`, exactly `modulus_len` bytes.
pub(crate) fn pad_type1(digest_info: &[u8], modulus_len: usize) -> Result<Vec<u8>> {
    // At least 8 bytes of 0xFF padding (RFC 8017 §9.2 step 5).
    let min_len = digest_info.len() + 11;
    if modulus_len < min_len {
        return Err(Error::Internal(format!(
            "a {modulus_len}-byte RSA modulus cannot hold a {}-byte DigestInfo",
            digest_info.len()
        )));
    }
    let mut block = Vec::with_capacity(modulus_len);
    block.extend_from_slice(&[0x00, 0x01]);
    block.resize(modulus_len - digest_info.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(digest_info);
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;

    #[test]
    fn pads_a_sha256_digest_info_to_the_modulus() {
        let info = Sha256Digest([7; 32]).rsa_digest_info();
        let block = pad_type1(&info, 256).unwrap();
        assert_eq!(block.len(), 256);
        assert_eq!(&block[..2], &[0x00, 0x01]);
        let separator = 256 - info.len() - 1;
        assert!(block[2..separator].iter().all(|b| *b == 0xFF));
        assert_eq!(block[separator], 0x00);
        assert_eq!(&block[separator + 1..], info.as_slice());
    }

    #[test]
    fn refuses_a_modulus_too_small() {
        assert!(pad_type1(&[0; 51], 61).is_err());
        assert_eq!(pad_type1(&[0; 51], 62).unwrap().len(), 62);
    }
}
