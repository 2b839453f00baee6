//! Origins and callback URLs: `Origin::parse`, `Origin::of_callback_url`, the
//! whitelist's fast path, and the callback address checks.
//!
//! Properties: no panic; normalisation is idempotent (an origin's normal form parses to
//! itself); the whitelist answers exactly as the parser does, and matches only normal
//! forms; a callback URL's origin is a valid origin; an http origin is allowed for live
//! keys never, for test keys only on loopback; an IP-literal callback host is refused
//! exactly when the address classifier says it is not global, and an IPv4 address
//! embedded in IPv6 (mapped) is judged as that IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use securesign_server::api_key::KeyMode;
use securesign_server::origin::{Origin, Whitelist};
use securesign_server::webhook::address::classify;
use securesign_server::webhook::destination::check_literal_host;

/// Runs one input.
pub fn run(data: &[u8]) {
    if data.len() >= 16 {
        addresses(data);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    origin(text);
    callback(text);
}

fn origin(text: &str) {
    let Ok(origin) = Origin::parse(text) else {
        let list = Whitelist::from_stored([text.to_owned()]);
        assert!(list.parse(text).is_err(), "the whitelist accepted {text:?}");
        return;
    };
    let normal = origin.as_str();
    let again = Origin::parse(normal).expect("a normal form parses");
    assert_eq!(again, origin, "normalisation of {text:?} is not idempotent");
    assert_eq!(again.as_str(), normal);
    assert!(
        normal.starts_with("https://") || normal.starts_with("http://"),
        "{normal}"
    );
    let authority = normal.split_once("://").map_or("", |(_, rest)| rest);
    assert!(
        !authority.is_empty() && !authority.contains(['/', '?', '#', '@']),
        "origin {normal:?} has more than scheme://host[:port]"
    );
    // The whitelist, stored as the normal form, answers like the parser for the input.
    let list = Whitelist::from_stored([normal.to_owned()]);
    let fast = list
        .parse(text)
        .expect("the whitelist parses what the parser does");
    assert_eq!(*fast, origin);
    assert!(list.contains(&origin));
    // A stored non-normal spelling is never matched.
    if normal != text {
        let raw = Whitelist::from_stored([text.to_owned()]);
        assert!(!raw.contains(&origin), "non-normal stored {text:?} matched");
    }
    let https = normal.starts_with("https://");
    assert_eq!(origin.allowed_for(KeyMode::Live), https);
    if origin.allowed_for(KeyMode::Test) && !https {
        let url = url::Url::parse(normal).expect("origin is a URL");
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        assert!(
            loopback,
            "test keys may use http only on loopback: {normal}"
        );
    }
}

fn callback(text: &str) {
    let Ok(origin) = Origin::of_callback_url(text) else {
        return;
    };
    let again = Origin::parse(origin.as_str()).expect("a callback URL's origin is an origin");
    assert_eq!(again, origin);
    let url = reqwest::Url::parse(text).expect("an accepted callback URL parses");
    assert_eq!(url.origin().ascii_serialization(), origin.as_str());
    let literal = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    let checked = check_literal_host(&url);
    match literal {
        Some(ip) => assert_eq!(checked.is_ok(), classify(ip).is_ok(), "{text:?}"),
        None => assert!(
            checked.is_ok(),
            "a host name is refused before lookup: {text:?}"
        ),
    }
}

fn addresses(data: &[u8]) {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&data[..16]);
    let v6 = Ipv6Addr::from(octets);
    let v6_verdict = classify(IpAddr::V6(v6));
    let v4 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    let v4_verdict = classify(IpAddr::V4(v4));
    assert_eq!(
        classify(IpAddr::V6(v4.to_ipv6_mapped())),
        v4_verdict,
        "a mapped address is not judged as its IPv4 address: {v4}"
    );
    if v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified() {
        assert!(v4_verdict.is_err(), "{v4} is global?");
    }
    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
        assert!(v6_verdict.is_err(), "{v6} is global?");
    }
    if (octets[0] & 0xfe) == 0xfc || (octets[0] == 0xfe && octets[1] & 0xc0 == 0x80) {
        assert!(v6_verdict.is_err(), "{v6} (unique/link local) is global?");
    }
}
