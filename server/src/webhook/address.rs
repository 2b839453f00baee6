//! Which IP addresses a callback may be sent to: only globally routable ones.
//!
//! A tenant controls the DNS of its whitelisted hosts, so a callback host may resolve to
//! our own loopback, private network or cloud metadata service (server-side request
//! forgery). [`classify`] names the range of every address that is not global; the
//! resolver in [`super::destination`] drops those before a connection is made.
//!
//! The tables follow the IANA special-purpose address registries (RFC 6890 and later).
//! IPv6 is allowed only inside global unicast `2000::/3`, minus its special blocks; an
//! IPv4 address embedded in IPv6 (mapped, NAT64, 6to4) is judged as that IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The special-purpose range a non-global address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonGlobal {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8` ("this network").
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT).
    SharedCgnat,
    /// `169.254/16`, `fe80::/10` (includes cloud metadata at `169.254.169.254`).
    LinkLocal,
    /// `192.0.0.0/24`, `2001::/23`, `5f00::/16` (protocol assignments, SRv6).
    ProtocolAssignment,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `192.88.99.0/24` (deprecated 6to4 relay anycast).
    Relay6to4,
    /// `198.18.0.0/15` (benchmarking).
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4` (reserved).
    Reserved,
    /// `255.255.255.255`.
    Broadcast,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10` (deprecated site-local).
    SiteLocal,
    /// `::a.b.c.d` (deprecated IPv4-compatible IPv6).
    Ipv4Compatible,
    /// `64:ff9b:1::/48` (local-use NAT64).
    LocalNat64,
    /// `100::/64` (discard-only).
    DiscardOnly,
    /// Any IPv6 address outside global unicast `2000::/3` not named above.
    NotGlobalUnicast,
}

impl NonGlobal {
    /// A short name of the range, for logs and delivery errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "this-network",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "shared CGNAT",
            Self::LinkLocal => "link-local",
            Self::ProtocolAssignment => "IETF protocol assignment",
            Self::Documentation => "documentation",
            Self::Relay6to4 => "6to4 relay",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::Broadcast => "broadcast",
            Self::UniqueLocal => "unique-local",
            Self::SiteLocal => "site-local",
            Self::Ipv4Compatible => "IPv4-compatible",
            Self::LocalNat64 => "local-use NAT64",
            Self::DiscardOnly => "discard-only",
            Self::NotGlobalUnicast => "not global unicast",
        }
    }
}

impl fmt::Display for NonGlobal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Ok(())` for a globally routable address, else the range it belongs to.
pub fn classify(ip: IpAddr) -> Result<(), NonGlobal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `a.b.c.d` lies in `base/prefix`.
fn in_v4(ip: Ipv4Addr, base: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(base)) & mask
}

/// Whether `ip` lies in `base/prefix`.
fn in_v6(ip: Ipv6Addr, base: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(base) & mask
}

const V4_TABLE: &[([u8; 4], u32, NonGlobal)] = &[
    ([255, 255, 255, 255], 32, NonGlobal::Broadcast),
    ([0, 0, 0, 0], 32, NonGlobal::Unspecified),
    ([0, 0, 0, 0], 8, NonGlobal::ThisNetwork),
    ([10, 0, 0, 0], 8, NonGlobal::Private),
    ([100, 64, 0, 0], 10, NonGlobal::SharedCgnat),
    ([127, 0, 0, 0], 8, NonGlobal::Loopback),
    ([169, 254, 0, 0], 16, NonGlobal::LinkLocal),
    ([172, 16, 0, 0], 12, NonGlobal::Private),
    ([192, 0, 0, 0], 24, NonGlobal::ProtocolAssignment),
    ([192, 0, 2, 0], 24, NonGlobal::Documentation),
    ([192, 88, 99, 0], 24, NonGlobal::Relay6to4),
    ([192, 168, 0, 0], 16, NonGlobal::Private),
    ([198, 18, 0, 0], 15, NonGlobal::Benchmarking),
    ([198, 51, 100, 0], 24, NonGlobal::Documentation),
    ([203, 0, 113, 0], 24, NonGlobal::Documentation),
    ([224, 0, 0, 0], 4, NonGlobal::Multicast),
    ([240, 0, 0, 0], 4, NonGlobal::Reserved),
];

fn classify_v4(ip: Ipv4Addr) -> Result<(), NonGlobal> {
    match V4_TABLE
        .iter()
        .find(|(base, prefix, _)| in_v4(ip, *base, *prefix))
    {
        Some((_, _, range)) => Err(*range),
        None => Ok(()),
    }
}

const fn v6(segments: [u16; 8]) -> Ipv6Addr {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Addr::new(a, b, c, d, e, f, g, h)
}

/// Special blocks, checked in order (the first match names the range).
const V6_TABLE: &[(Ipv6Addr, u32, NonGlobal)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, NonGlobal::Unspecified),
    (Ipv6Addr::LOCALHOST, 128, NonGlobal::Loopback),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]),
        48,
        NonGlobal::LocalNat64,
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, NonGlobal::DiscardOnly),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]),
        32,
        NonGlobal::Documentation,
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0]),
        23,
        NonGlobal::ProtocolAssignment,
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]),
        20,
        NonGlobal::Documentation,
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]),
        16,
        NonGlobal::ProtocolAssignment,
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, NonGlobal::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, NonGlobal::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, NonGlobal::SiteLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, NonGlobal::Multicast),
];

fn classify_v6(ip: Ipv6Addr) -> Result<(), NonGlobal> {
    if let Some(embedded) = embedded_v4(ip) {
        return classify_v4(embedded);
    }
    if let Some((_, _, range)) = V6_TABLE
        .iter()
        .find(|(base, prefix, _)| in_v6(ip, *base, *prefix))
    {
        return Err(*range);
    }
    if in_v6(ip, v6([0, 0, 0, 0, 0, 0, 0, 0]), 96) {
        return Err(NonGlobal::Ipv4Compatible);
    }
    if !in_v6(ip, v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3) {
        return Err(NonGlobal::NotGlobalUnicast);
    }
    Ok(())
}

/// The IPv4 address a connection to `ip` would reach: IPv4-mapped `::ffff:a.b.c.d`,
/// well-known NAT64 `64:ff9b::a.b.c.d`, and 6to4 `2002:aabb:ccdd::/48`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if in_v6(ip, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        Some(low32)
    } else if in_v6(ip, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str) -> Result<(), NonGlobal> {
        classify(addr.parse().unwrap())
    }

    #[test]
    fn non_global_addresses_are_named_by_their_range() {
        use NonGlobal::*;
        let table: &[(&str, NonGlobal)] = &[
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("169.254.169.254", LinkLocal),
            ("192.0.0.8", ProtocolAssignment),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("192.88.99.1", Relay6to4),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.255", Broadcast),
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::127.0.0.1", Ipv4Compatible),
            ("::8.8.8.8", Ipv4Compatible),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b:1::1", LocalNat64),
            ("2002:7f00:1::1", Loopback),
            ("2002:c0a8:101::1", Private),
            ("100::1", DiscardOnly),
            ("2001::1", ProtocolAssignment),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("5f00::1", ProtocolAssignment),
            ("fc00::1", UniqueLocal),
            ("fd12:3456:789a::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", SiteLocal),
            ("ff02::1", Multicast),
            ("1234::1", NotGlobalUnicast),
            ("4000::1", NotGlobalUnicast),
        ];
        for (addr, range) in table {
            assert_eq!(check(addr), Err(*range), "{addr}");
        }
    }

    #[test]
    fn global_addresses_pass() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(check(addr), Ok(()), "{addr}");
        }
    }
}
