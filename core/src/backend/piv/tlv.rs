//! The BER-TLV subset PIV uses (SP 800-73-4 part 2, §3.3): tags of one to three bytes,
//! definite lengths of up to three bytes.

use crate::error::{Error, Result};

/// One data object: its tag (big-endian, e.g. `0x5FC105`) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// Tag bytes as a number.
    pub tag: u32,
    /// The value.
    pub value: &'a [u8],
}

fn malformed(what: &str) -> Error {
    Error::Token(format!("card sent malformed BER-TLV: {what}"))
}

/// Reads the data objects that make up `data`, in order.
pub(crate) fn parse(mut data: &[u8]) -> Result<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tlv, rest) = parse_one(data)?;
        out.push(tlv);
        data = rest;
    }
    Ok(out)
}

/// The value of the first object tagged `tag` among the objects of `data`.
pub(crate) fn find(data: &[u8], tag: u32) -> Result<Option<&[u8]>> {
    Ok(parse(data)?
        .into_iter()
        .find(|t| t.tag == tag)
        .map(|t| t.value))
}

fn parse_one(data: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let (&first, mut rest) = data.split_first().ok_or_else(|| malformed("no tag"))?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Multi-byte tag: continuation bytes have bit 8 set; PIV uses at most 3 bytes.
        loop {
            let (&b, r) = rest
                .split_first()
                .ok_or_else(|| malformed("truncated tag"))?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
            if tag > 0x00FF_FFFF {
                return Err(malformed("tag longer than 3 bytes"));
            }
        }
    }
    let (&len_byte, r) = rest.split_first().ok_or_else(|| malformed("no length"))?;
    rest = r;
    let len = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x81..=0x83 => {
            let n = usize::from(len_byte & 0x7F);
            if rest.len() < n {
                return Err(malformed("truncated length"));
            }
            let (bytes, r) = rest.split_at(n);
            rest = r;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        }
        _ => return Err(malformed("unsupported length form")),
    };
    if rest.len() < len {
        return Err(malformed("value shorter than its length"));
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// Encodes `tag` (its significant bytes) with a definite length and `value`.
pub(crate) fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let tag_bytes = tag.to_be_bytes();
    let skip = tag_bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend_from_slice(&tag_bytes[skip..]);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    let bytes = len.to_be_bytes();
    match len {
        0..=0x7F => out.push(bytes[bytes.len() - 1]),
        0x80..=0xFF => out.extend_from_slice(&[0x81, bytes[bytes.len() - 1]]),
        0x100..=0xFFFF => {
            out.extend_from_slice(&[0x82, bytes[bytes.len() - 2], bytes[bytes.len() - 1]])
        }
        _ => {
            out.push(0x83);
            out.extend_from_slice(&bytes[bytes.len() - 3..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234] {
            let value = vec![0xAB; len];
            let encoded = encode(0x53, &value);
            let parsed = parse(&encoded).unwrap();
            assert_eq!(
                parsed,
                vec![Tlv {
                    tag: 0x53,
                    value: &value
                }],
                "len {len}"
            );
        }
    }

    #[test]
    fn multi_byte_tags() {
        let encoded = encode(0x5FC105, &[1, 2]);
        assert_eq!(encoded, vec![0x5F, 0xC1, 0x05, 0x02, 1, 2]);
        assert_eq!(find(&encoded, 0x5FC105).unwrap(), Some(&[1u8, 2][..]));
        let mut two = encode(0x7F49, &[9]);
        two.extend(encode(0x82, &[]));
        let parsed = parse(&two).unwrap();
        assert_eq!(parsed[0].tag, 0x7F49);
        assert_eq!(
            parsed[1],
            Tlv {
                tag: 0x82,
                value: &[]
            }
        );
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        for bad in [
            &[0x53][..],
            &[0x53, 0x05, 1],
            &[0x53, 0x82, 0x01],
            &[0x5F],
            &[0x53, 0x84, 0, 0, 0, 1],
        ] {
            assert!(parse(bad).is_err(), "{bad:02X?}");
        }
    }
}
