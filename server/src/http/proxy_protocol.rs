//! The PROXY protocol (HAProxy's `send-proxy` / `send-proxy-v2`, also spoken by nginx's
//! stream module and cloud TCP balancers): a trusted proxy writes the client's address
//! in a header at the start of each connection, before the HTTP bytes. Unlike
//! `X-Forwarded-For` it is known when the connection is accepted, so the per-address
//! connection cap counts the real client too (`serve --proxy-protocol`).
//!
//! Only a trusted peer's connection is read this way (see `connections`); exactly the
//! header's bytes are consumed (the fixed part of v2, then its announced length; v1 up
//! to its CRLF), so the HTTP request after it is untouched. The header is parsed by the
//! `ppp` crate (v1 text and v2 binary).

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 header's first 12 bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 header's first bytes.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header (`PROXY TCP6` with two full IPv6 addresses, ports, CRLF).
const V1_MAX: usize = 107;
/// The longest v2 header taken (addresses and TLVs): what balancers send is far below.
const V2_MAX: usize = 16 + 1024;

/// Why a trusted peer's connection was closed before HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// The connection ended or failed while the header was read.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
    /// The connection did not start with a PROXY protocol header.
    #[error("a trusted proxy's connection without a PROXY protocol header")]
    Missing,
    /// A header that does not parse, or is longer than allowed.
    #[error("a malformed PROXY protocol header")]
    Malformed,
}

/// Reads the PROXY protocol header at the start of `stream`: the client's address for a
/// proxied TCP connection; `None` for the proxy's own connection (v2 `LOCAL`, e.g. its
/// health check, or v1 `UNKNOWN`, or a non-IP family), which then counts as the peer's.
pub async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    // 12 bytes: no shorter than any header (the shortest, "PROXY UNKNOWN\r\n", has 15).
    let mut header = vec![0u8; V2_SIGNATURE.len()];
    stream.read_exact(&mut header).await?;
    if header == V2_SIGNATURE {
        header.resize(16, 0);
        stream.read_exact(&mut header[12..]).await?;
        let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
        if 16 + length > V2_MAX {
            return Err(ProxyHeaderError::Malformed);
        }
        header.resize(16 + length, 0);
        stream.read_exact(&mut header[16..]).await?;
        return parse_v2(&header);
    }
    if !header.starts_with(V1_PREFIX) {
        return Err(ProxyHeaderError::Missing);
    }
    while !header.ends_with(b"\r\n") {
        if header.len() == V1_MAX {
            return Err(ProxyHeaderError::Malformed);
        }
        header.push(stream.read_u8().await?);
    }
    parse_v1(&header)
}

fn parse_v2(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    use ppp::v2::{Addresses, Command, Header};
    let header = Header::try_from(header).map_err(|_| ProxyHeaderError::Malformed)?;
    if header.command == Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    })
}

fn parse_v1(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    use ppp::v1::{Addresses, Header};
    let header = Header::try_from(header).map_err(|_| ProxyHeaderError::Malformed)?;
    Ok(match header.addresses {
        Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unknown => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a header from `bytes`; what was left unread after it.
    async fn read(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
        let mut input = bytes;
        let result = read_header(&mut input).await;
        (result, input.to_vec())
    }

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(addresses.len()).unwrap().to_be_bytes());
        h.extend_from_slice(addresses);
        h
    }

    const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\n\r\n";

    #[tokio::test]
    async fn v2_gives_the_source_and_leaves_the_request() {
        let addresses = [203, 0, 113, 4, 10, 0, 0, 5, 0x12, 0x34, 0x1f, 0x90];
        let mut bytes = v2(1, 0x11, &addresses);
        bytes.extend_from_slice(REQUEST);
        let (result, rest) = read(&bytes).await;
        assert_eq!(result.unwrap(), Some("203.0.113.4:4660".parse().unwrap()));
        assert_eq!(rest, REQUEST);

        let mut v6 = Vec::new();
        v6.extend_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&[0, 80, 0, 80]);
        let (result, _) = read(&v2(1, 0x21, &v6)).await;
        assert_eq!(result.unwrap(), Some("[2001:db8::1]:80".parse().unwrap()));
    }

    #[tokio::test]
    async fn v2_local_and_unspecified_are_the_proxy_itself() {
        let mut bytes = v2(0, 0x00, &[]);
        bytes.extend_from_slice(REQUEST);
        let (result, rest) = read(&bytes).await;
        assert_eq!(result.unwrap(), None);
        assert_eq!(rest, REQUEST);
    }

    #[tokio::test]
    async fn v1_gives_the_source_and_leaves_the_request() {
        let mut bytes = b"PROXY TCP4 203.0.113.4 10.0.0.5 4660 8080\r\n".to_vec();
        bytes.extend_from_slice(REQUEST);
        let (result, rest) = read(&bytes).await;
        assert_eq!(result.unwrap(), Some("203.0.113.4:4660".parse().unwrap()));
        assert_eq!(rest, REQUEST);
        let (result, _) = read(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(result.unwrap(), None);
    }

    #[tokio::test]
    async fn no_header_a_bad_one_or_a_cut_one_is_refused() {
        let (result, _) = read(REQUEST).await;
        assert!(
            matches!(result, Err(ProxyHeaderError::Missing)),
            "{result:?}"
        );
        let (result, _) = read(b"PROXY TCP4 not-an-address 10.0.0.5 1 2\r\n").await;
        assert!(
            matches!(result, Err(ProxyHeaderError::Malformed)),
            "{result:?}"
        );
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(V1_MAX));
        let (result, _) = read(long.as_bytes()).await;
        assert!(
            matches!(result, Err(ProxyHeaderError::Malformed)),
            "{result:?}"
        );
        // v2 announcing more than allowed: refused before reading it.
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let (result, _) = read(&huge).await;
        assert!(
            matches!(result, Err(ProxyHeaderError::Malformed)),
            "{result:?}"
        );
        // Cut short: the connection's end.
        let cut = &v2(
            1,
            0x11,
            &[203, 0, 113, 4, 10, 0, 0, 5, 0x12, 0x34, 0x1f, 0x90],
        )[..20];
        let (result, _) = read(cut).await;
        assert!(matches!(result, Err(ProxyHeaderError::Io(_))), "{result:?}");
        // v2 with a wrong version nibble.
        let mut bad = v2(
            1,
            0x11,
            &[203, 0, 113, 4, 10, 0, 0, 5, 0x12, 0x34, 0x1f, 0x90],
        );
        bad[12] = 0x11;
        let (result, _) = read(&bad).await;
        assert!(
            matches!(result, Err(ProxyHeaderError::Malformed)),
            "{result:?}"
        );
    }
}
