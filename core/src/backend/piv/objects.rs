//! PIV data objects: certificate objects (SP 800-73-4 part 1, Appendix A) and the slots
//! that hold them.

use std::io::Read;

use super::tlv;
use crate::error::{Error, Result};

/// A key slot the backend signs with, and the data object holding its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Key reference, e.g. `0x9A`; also the core's [`crate::backend::KeyId`].
    pub key_ref: u8,
    /// Tag of the certificate data object, e.g. `0x5FC105`.
    pub object: u32,
    /// Name used as the certificate label.
    pub label: &'static str,
    /// The card requires VERIFY immediately before each use of the key (PIN "always").
    pub pin_always: bool,
}

/// PIV Authentication key.
pub const SLOT_9A: Slot = Slot {
    key_ref: 0x9A,
    object: 0x5FC105,
    label: "PIV Authentication",
    pin_always: false,
};

/// Digital Signature key: SP 800-73-4 requires the PIN immediately before every use.
pub const SLOT_9C: Slot = Slot {
    key_ref: 0x9C,
    object: 0x5FC10A,
    label: "Digital Signature",
    pin_always: true,
};

/// The slots whose keys sign documents.
pub const SIGNING_SLOTS: [Slot; 2] = [SLOT_9A, SLOT_9C];

/// The signing slot with key reference `key_ref`.
pub fn slot(key_ref: u8) -> Option<Slot> {
    SIGNING_SLOTS.into_iter().find(|s| s.key_ref == key_ref)
}

/// Largest certificate we decompress (a DSC certificate is 1–2 KiB).
const MAX_CERT: usize = 32 * 1024;

/// CertInfo bit: the certificate is gzip-compressed.
const CERTINFO_COMPRESSED: u8 = 0x01;

/// The certificate (DER) in a GET DATA answer `53 { 70 cert, 71 certinfo, FE lrc }`.
pub(crate) fn certificate_from_object(object: &[u8]) -> Result<Vec<u8>> {
    let invalid = |what: &str| Error::CertInvalid(format!("PIV certificate object: {what}"));
    let body = tlv::find(object, 0x53)?.ok_or_else(|| invalid("no 53 container"))?;
    let cert = tlv::find(body, 0x70)?.ok_or_else(|| invalid("no 70 certificate"))?;
    let info = tlv::find(body, 0x71)?
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    if info & CERTINFO_COMPRESSED == 0 {
        return Ok(cert.to_vec());
    }
    let mut der = Vec::new();
    flate2::read::GzDecoder::new(cert)
        .take(MAX_CERT as u64 + 1)
        .read_to_end(&mut der)
        .map_err(|e| invalid(&format!("cannot decompress: {e}")))?;
    if der.len() > MAX_CERT {
        return Err(invalid("decompressed certificate is too large"));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn object(cert: &[u8], info: Option<u8>) -> Vec<u8> {
        let mut body = tlv::encode(0x70, cert);
        if let Some(info) = info {
            body.extend(tlv::encode(0x71, &[info]));
        }
        body.extend(tlv::encode(0xFE, &[]));
        tlv::encode(0x53, &body)
    }

    #[test]
    fn plain_certificate_is_unwrapped() {
        let cert = vec![0x30, 0x03, 1, 2, 3];
        assert_eq!(
            certificate_from_object(&object(&cert, Some(0))).unwrap(),
            cert
        );
        assert_eq!(certificate_from_object(&object(&cert, None)).unwrap(), cert);
    }

    #[test]
    fn gzip_compressed_certificate_is_inflated() {
        let cert: Vec<u8> = (0..1500u32).map(|i| (i % 7) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&cert).unwrap();
        let packed = gz.finish().unwrap();
        assert!(packed.len() < cert.len());
        assert_eq!(
            certificate_from_object(&object(&packed, Some(1))).unwrap(),
            cert
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; MAX_CERT * 4]).unwrap();
        let packed = gz.finish().unwrap();
        let err = certificate_from_object(&object(&packed, Some(1))).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::CertInvalid);
    }

    #[test]
    fn a_missing_certificate_is_invalid() {
        let err = certificate_from_object(&tlv::encode(0x53, &[])).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::CertInvalid);
        assert_eq!(slot(0x9C), Some(SLOT_9C));
        assert_eq!(slot(0x9D), None);
    }
}
