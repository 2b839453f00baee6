//! Where a callback connection may go: the DNS resolver of the callback client keeps
//! only global addresses ([`super::address`]), so a whitelisted host whose DNS points
//! at our loopback, private network or cloud metadata service is never connected to.
//!
//! The check sits where the connection is made (the client's resolver), so the
//! addresses checked are the ones connected to: a host that answers differently on a
//! second lookup (DNS rebinding) gains nothing. The client does not consult a resolver
//! for IP-literal hosts, so [`check_literal_host`] checks those before sending.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::{classify, NonGlobal};

/// Why a callback destination was refused (no URL, path or query in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Every address of the host is non-global.
    #[error("callback host resolves only to non-public addresses ({0}); refused")]
    NoPublicAddress(String),
    /// The host resolved to nothing.
    #[error("callback host has no address")]
    NoAddress,
    /// The system resolver failed.
    #[error("callback host lookup failed: {0}")]
    Lookup(String),
    /// The URL's host is an IP literal outside global address space.
    #[error("callback address {addr} is {range}, not public; refused")]
    NonGlobalLiteral {
        /// The literal address.
        addr: IpAddr,
        /// Its range.
        range: NonGlobal,
    },
}

/// Keeps the global addresses of `addrs`; fails naming the ranges when none is left.
pub fn keep_global(
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, DestinationError> {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for addr in addrs {
        match classify(addr.ip()) {
            Ok(()) => kept.push(addr),
            Err(range) => dropped.push(format!("{} {range}", addr.ip())),
        }
    }
    if !kept.is_empty() {
        Ok(kept)
    } else if dropped.is_empty() {
        Err(DestinationError::NoAddress)
    } else {
        dropped.dedup();
        Err(DestinationError::NoPublicAddress(dropped.join(", ")))
    }
}

/// A [`Resolve`] over the system resolver (Tokio's `lookup_host`, which runs
/// `getaddrinfo` on the blocking pool) that answers only global addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is set by the connector; 0 is a placeholder, as in reqwest's own.
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|err| DestinationError::Lookup(err.to_string()))?;
            let kept = keep_global(found).inspect_err(|err| {
                tracing::warn!(reason = %err, "callback destination refused");
            })?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Refuses a callback URL whose host is a non-global IP literal (the resolver is not
/// consulted for those). Host names pass here; [`PublicOnlyResolver`] checks them.
pub fn check_literal_host(url: &reqwest::Url) -> Result<(), DestinationError> {
    let addr = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) | None => return Ok(()),
    };
    classify(addr).map_err(|range| DestinationError::NonGlobalLiteral { addr, range })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(addr: &str) -> SocketAddr {
        SocketAddr::new(addr.parse().unwrap(), 0)
    }

    #[test]
    fn mixed_answers_keep_only_the_global_addresses() {
        let kept = keep_global([sock("127.0.0.1"), sock("8.8.8.8"), sock("fd00::1")]).unwrap();
        assert_eq!(kept, [sock("8.8.8.8")]);
    }

    #[test]
    fn only_private_answers_are_refused_naming_their_ranges() {
        let err = keep_global([sock("10.0.0.1"), sock("169.254.169.254")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "callback host resolves only to non-public addresses \
             (10.0.0.1 private, 169.254.169.254 link-local); refused"
        );
        assert_eq!(keep_global([]), Err(DestinationError::NoAddress));
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        for url in [
            "http://127.0.0.1:3000/cb",
            "http://2130706433/cb",
            "http://0x7f.1/cb",
            "https://[::1]/cb",
            "https://[::ffff:169.254.169.254]/cb",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(
                matches!(
                    check_literal_host(&url),
                    Err(DestinationError::NonGlobalLiteral { .. })
                ),
                "{url}"
            );
        }
        for url in ["https://8.8.8.8/cb", "https://portal.example.gov.in/cb"] {
            let url = reqwest::Url::parse(url).unwrap();
            assert_eq!(check_literal_host(&url), Ok(()), "{url}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost() {
        let name: Name = "localhost".parse().unwrap();
        let err = PublicOnlyResolver.resolve(name).await.err().unwrap();
        assert!(
            err.to_string()
                .contains("resolves only to non-public addresses"),
            "{err}"
        );
    }
}
