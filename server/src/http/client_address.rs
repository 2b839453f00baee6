//! The client address behind trusted reverse proxies (`serve --trusted-proxy CIDR`).
//!
//! The per-address limits ([`super::client_limits`], the console's sign-in limit) count
//! the client's address. Behind a balancer the TCP peer is the balancer, so every
//! client would share its budget. When — and only when — the TCP peer is inside a
//! trusted range, the client address is taken from `X-Forwarded-For`, with the standard
//! secure algorithm: the header's entries (all its lines, in order) are walked from the
//! right, skipping addresses that are themselves trusted proxies; the first untrusted
//! address is the client. Entries to its left were written by the client or by proxies
//! we do not know, so they are never believed: a client cannot choose its address by
//! sending the header itself, directly or through the balancer (which appends the
//! address it saw).
//!
//! Fallbacks, all to an address a trusted party vouched for:
//! * an untrusted peer: its own address, whatever it sends;
//! * a trusted peer without the header (e.g. the balancer's health check): the peer;
//! * a malformed entry met before any untrusted address: the peer (the chain of trusted
//!   hops is broken there, so nothing to its left can be told apart from a forgery);
//! * every entry trusted: the leftmost (the farthest hop the trusted chain reports).
//!
//! Connections are counted per address when they are accepted, before any header: a
//! trusted proxy's connections carry many clients, so they are not capped per address
//! (only by the total). Then either the balancer caps connections per client itself
//! (HAProxy: a `stick-table` tracking `conn_cur` with `tcp-request connection reject`),
//! or it speaks the PROXY protocol (`serve --proxy-protocol`, [`super::proxy_protocol`]),
//! which names the client when the connection opens: the client's address is then the
//! header's source (and `X-Forwarded-For` is read only when that source is itself a
//! trusted proxy).

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// `X-Forwarded-For` (de facto standard: the client, then each proxy's peer, comma
/// separated; a proxy appends the address it received the request from).
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Most entries of `X-Forwarded-For` looked at, from the right: more proxies than this in
/// a row are a misconfiguration (or a hostile header), answered with the peer address.
const MAX_HOPS: usize = 32;

/// A `--trusted-proxy` value that is neither a CIDR nor an address.
#[derive(Debug, thiserror::Error)]
#[error("not an IP address or CIDR range: {0:?} (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)")]
pub struct BadProxyRange(String);

/// Address ranges of the reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
}

impl TrustedProxies {
    /// Proxies in `ranges` (none: every peer is a client).
    pub fn new(ranges: Vec<IpNet>) -> Self {
        let ranges = ranges.into_iter().map(|net| net.trunc()).collect();
        Self { ranges }
    }

    /// Parses one `--trusted-proxy` value: a CIDR range (`10.0.0.0/8`, `fd00::/8`) or a
    /// single address (`192.0.2.7`, as /32 or /128).
    pub fn parse_range(text: &str) -> Result<IpNet, BadProxyRange> {
        let text = text.trim();
        IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map_err(|_| BadProxyRange(text.to_owned()))
    }

    /// Whether `ip` is inside a trusted range (IPv4-mapped IPv6 as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from TCP peer `peer` with `headers` (see the
    /// module documentation).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let mut leftmost = None;
        let entries = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .rev()
            .flat_map(|line| line.as_bytes().rsplit(|b| *b == b','))
            .take(MAX_HOPS + 1);
        for (n, entry) in entries.enumerate() {
            let Some(ip) = (n < MAX_HOPS).then(|| parse_entry(entry)).flatten() else {
                return peer;
            };
            if !self.contains(ip) {
                return ip;
            }
            leftmost = Some(ip);
        }
        leftmost.unwrap_or(peer)
    }
}

/// One `X-Forwarded-For` entry: an IPv4 or IPv6 address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`) or in brackets, spaces around it allowed.
/// Anything else (`unknown`, obfuscated identifiers, garbage) is `None`.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim_matches([' ', '\t']);
    if let Ok(ip) = IpAddr::from_str(text) {
        return Some(ip.to_canonical());
    }
    let host = match text.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => text.rsplit_once(':')?.0,
    };
    IpAddr::from_str(host).ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            ranges
                .iter()
                .map(|r| TrustedProxies::parse_range(r).unwrap())
                .collect(),
        )
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(&X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const BALANCER: &str = "10.0.0.5";

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofed = headers(&["198.51.100.9"]);
        assert_eq!(
            trusted.client_address(ip("203.0.113.4"), &spoofed),
            ip("203.0.113.4")
        );
        // Claiming to come through a trusted proxy changes nothing either.
        let via = headers(&["198.51.100.9, 10.0.0.5"]);
        assert_eq!(
            trusted.client_address(ip("203.0.113.4"), &via),
            ip("203.0.113.4")
        );
        // No trusted proxies at all (the default): the header is never read.
        assert_eq!(
            TrustedProxies::default().client_address(ip(BALANCER), &spoofed),
            ip(BALANCER)
        );
    }

    #[test]
    fn a_trusted_peer_gives_the_address_it_appended() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            trusted.client_address(ip(BALANCER), &headers(&["203.0.113.4"])),
            ip("203.0.113.4")
        );
        // Without the header (a health check): the peer.
        assert_eq!(
            trusted.client_address(ip(BALANCER), &HeaderMap::new()),
            ip(BALANCER)
        );
    }

    #[test]
    fn a_spoofed_entry_left_of_the_balancers_is_ignored() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client sent "X-Forwarded-For: 198.51.100.9"; the balancer appended the
        // address it saw, in the same line or in a line of its own (HAProxy).
        let one_line = headers(&["198.51.100.9, 203.0.113.4"]);
        let two_lines = headers(&["198.51.100.9", "203.0.113.4"]);
        for h in [one_line, two_lines] {
            assert_eq!(trusted.client_address(ip(BALANCER), &h), ip("203.0.113.4"));
        }
    }

    #[test]
    fn several_trusted_hops_are_skipped_from_the_right() {
        // client → CDN edge (trusted 192.0.2.0/24) → balancer (10/8) → server.
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.0/24"]);
        let h = headers(&["198.51.100.9, 203.0.113.4, 192.0.2.10", "10.0.0.7"]);
        assert_eq!(trusted.client_address(ip(BALANCER), &h), ip("203.0.113.4"));
        // Every hop trusted: the leftmost.
        let h = headers(&["192.0.2.10, 10.0.0.7"]);
        assert_eq!(trusted.client_address(ip(BALANCER), &h), ip("192.0.2.10"));
    }

    #[test]
    fn a_malformed_header_gives_the_peer() {
        let trusted = proxies(&["10.0.0.0/8"]);
        for bad in [
            "unknown",
            "not an address",
            "203.0.113.4, ",
            ",",
            "",
            "300.1.2.3",
        ] {
            assert_eq!(
                trusted.client_address(ip(BALANCER), &headers(&[bad])),
                ip(BALANCER),
                "{bad:?}"
            );
        }
        // Malformed behind a trusted hop: still the peer.
        assert_eq!(
            trusted.client_address(ip(BALANCER), &headers(&["203.0.113.4, _hidden, 10.0.0.7"])),
            ip(BALANCER)
        );
        // Garbage left of the first untrusted address is never reached.
        assert_eq!(
            trusted.client_address(ip(BALANCER), &headers(&["garbage, 203.0.113.4"])),
            ip("203.0.113.4")
        );
        // Not UTF-8.
        let mut h = HeaderMap::new();
        h.append(
            &X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"203.0.113.\xff").unwrap(),
        );
        assert_eq!(trusted.client_address(ip(BALANCER), &h), ip(BALANCER));
    }

    #[test]
    fn too_many_hops_give_the_peer() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let chain = vec!["10.1.1.1"; MAX_HOPS + 1].join(", ");
        let h = headers(&[&format!("203.0.113.4, {chain}")]);
        assert_eq!(trusted.client_address(ip(BALANCER), &h), ip(BALANCER));
        let chain = vec!["10.1.1.1"; MAX_HOPS - 1].join(", ");
        let h = headers(&[&format!("203.0.113.4, {chain}")]);
        assert_eq!(trusted.client_address(ip(BALANCER), &h), ip("203.0.113.4"));
    }

    #[test]
    fn ports_brackets_ipv6_and_mapped_addresses() {
        let trusted = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let cases = [
            ("203.0.113.4:4711", "203.0.113.4"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            (" 203.0.113.4 ", "203.0.113.4"),
            ("::ffff:203.0.113.4", "203.0.113.4"),
        ];
        for (entry, client) in cases {
            assert_eq!(
                trusted.client_address(ip("fd00::1"), &headers(&[entry])),
                ip(client),
                "{entry}"
            );
        }
        // A dual-stack listener sees an IPv4 balancer as IPv4-mapped IPv6.
        assert_eq!(
            trusted.client_address(ip("::ffff:10.0.0.5"), &headers(&["203.0.113.4"])),
            ip("203.0.113.4")
        );
    }

    #[test]
    fn ranges_parse_as_cidr_or_single_addresses() {
        let p = proxies(&["127.0.0.1", "10.1.2.3/8", "fd00::/8"]);
        assert!(p.contains(ip("127.0.0.1")));
        assert!(!p.contains(ip("127.0.0.2")));
        assert!(p.contains(ip("10.200.0.1")));
        assert!(p.contains(ip("fd12::1")));
        assert!(!p.contains(ip("fe80::1")));
        for bad in ["", "10.0.0.0/33", "localhost", "10.0.0.0/8/8"] {
            assert!(TrustedProxies::parse_range(bad).is_err(), "{bad:?}");
        }
    }
}
