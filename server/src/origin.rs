//! Web origins (`scheme://host[:port]`) and the rules keys apply to them.
//!
//! Origins are normalised by the WHATWG URL parser (`url` crate: lower-case host,
//! IDNA, default port dropped) and then compared as whole strings, so
//! `https://portal.example.gov.in.evil.com` never matches `https://portal.example.gov.in`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use url::{Host, Url};

use crate::api_key::KeyMode;

/// Longest origin or callback URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a string is not an acceptable origin or callback URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not a URL at all.
    #[error("not a valid URL")]
    Unparseable,
    /// Longer than [`MAX_URL_LEN`].
    #[error("longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// Only `http` and `https` are origins here.
    #[error("scheme must be https (or http for localhost test keys)")]
    Scheme,
    /// User name or password in the URL.
    #[error("credentials are not allowed in an origin")]
    Credentials,
    /// An origin has no path, query or fragment.
    #[error("an origin is scheme://host[:port] only, without path, query or fragment")]
    NotAnOrigin,
}

/// A normalised web origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    serialized: String,
    https: bool,
    loopback_name: bool,
}

impl Origin {
    /// Parses an origin such as `https://portal.example.gov.in` (a single trailing `/`
    /// is tolerated).
    pub fn parse(input: &str) -> Result<Self, OriginError> {
        let url = parse_http_url(input)?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(OriginError::NotAnOrigin);
        }
        Ok(Self::of_url(&url))
    }

    /// The origin of a full http(s) URL (for callback URLs).
    pub fn of_callback_url(input: &str) -> Result<Self, OriginError> {
        let url = parse_http_url(input)?;
        Ok(Self::of_url(&url))
    }

    fn of_url(url: &Url) -> Self {
        let loopback_name = match url.host() {
            Some(Host::Domain(d)) => d == "localhost",
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        Self {
            serialized: url.origin().ascii_serialization(),
            https: url.scheme() == "https",
            loopback_name,
        }
    }

    /// `scheme://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// Whether a key of `mode` may be used from this origin: live keys need https;
    /// test keys also accept plain http on localhost / loopback addresses.
    pub fn allowed_for(&self, mode: KeyMode) -> bool {
        match mode {
            KeyMode::Live => self.https,
            KeyMode::Test => self.https || self.loopback_name,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialized)
    }
}

/// A tenant's whitelisted origins, parsed once when read from the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whitelist {
    /// Normal form → its parsed origin. Only normal forms are kept: a stored string
    /// that does not parse back to itself can never equal a request's normalised
    /// origin, so it could never match. Hashed with `foldhash` (randomly seeded, and
    /// several times faster than SipHash on an origin): the entries are the tenant's
    /// own, and a request can only look strings up, never add one.
    origins: HashMap<String, Origin, foldhash::fast::RandomState>,
}

impl Whitelist {
    /// Builds the whitelist from stored (normalised) origins.
    pub fn from_stored<I: IntoIterator<Item = String>>(stored: I) -> Self {
        let origins = stored
            .into_iter()
            .filter_map(|text| match Origin::parse(&text) {
                Ok(origin) if origin.as_str() == text => Some((text, origin)),
                _ => {
                    tracing::warn!(origin = %text, "stored origin is not in normal form; ignored");
                    None
                }
            })
            .collect();
        Self { origins }
    }

    /// Whether `origin` is whitelisted.
    pub fn contains(&self, origin: &Origin) -> bool {
        self.origins.contains_key(origin.as_str())
    }

    /// [`Origin::parse`], answered from the whitelist when `input` is exactly one of its
    /// normal forms (the URL parser already turned that text into this origin).
    pub fn parse<'a>(&'a self, input: &str) -> Result<Cow<'a, Origin>, OriginError> {
        match self.origins.get(input) {
            Some(origin) => Ok(Cow::Borrowed(origin)),
            None => Origin::parse(input).map(Cow::Owned),
        }
    }
}

fn parse_http_url(input: &str) -> Result<Url, OriginError> {
    if input.len() > MAX_URL_LEN {
        return Err(OriginError::TooLong);
    }
    let url = Url::parse(input).map_err(|_| OriginError::Unparseable)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OriginError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OriginError::Credentials);
    }
    if url.host().is_none() {
        return Err(OriginError::Unparseable);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise_case_and_default_ports() {
        let a = Origin::parse("HTTPS://Portal.Example.gov.in:443").unwrap();
        assert_eq!(a.as_str(), "https://portal.example.gov.in");
        let b = Origin::parse("https://portal.example.gov.in/").unwrap();
        assert_eq!(a, b);
        let c = Origin::parse("https://portal.example.gov.in:8443").unwrap();
        assert_eq!(c.as_str(), "https://portal.example.gov.in:8443");
    }

    #[test]
    fn look_alikes_do_not_normalise_to_the_real_origin() {
        let real = Origin::parse("https://portal.example.gov.in").unwrap();
        for other in [
            "https://portal.example.gov.in.evil.com",
            "http://portal.example.gov.in",
            "https://evil-portal.example.gov.in",
            "https://portal.example.gov.in:444",
        ] {
            assert_ne!(Origin::parse(other).unwrap(), real, "{other}");
        }
    }

    #[test]
    fn non_origins_are_refused() {
        assert_eq!(
            Origin::parse("https://a.example/path").unwrap_err(),
            OriginError::NotAnOrigin
        );
        assert_eq!(
            Origin::parse("https://user:pw@a.example").unwrap_err(),
            OriginError::Credentials
        );
        assert_eq!(
            Origin::parse("ftp://a.example").unwrap_err(),
            OriginError::Scheme
        );
        assert_eq!(
            Origin::parse("portal.example.gov.in").unwrap_err(),
            OriginError::Unparseable
        );
    }

    #[test]
    fn the_whitelist_parses_like_the_parser_and_matches_only_normal_forms() {
        let list = Whitelist::from_stored([
            "https://portal.example.gov.in".to_owned(),
            "http://localhost:3000".to_owned(),
            "HTTPS://Not.Normal.example".to_owned(),
        ]);
        for input in [
            "https://portal.example.gov.in",
            "https://portal.example.gov.in/",
            "HTTPS://PORTAL.example.gov.in:443",
            "http://localhost:3000",
            "https://portal.example.gov.in.evil.com",
            "http://portal.example.gov.in",
            "https://not.normal.example",
        ] {
            let fast = list.parse(input).unwrap();
            let slow = Origin::parse(input).unwrap();
            assert_eq!(*fast, slow, "{input}");
            assert_eq!(
                fast.allowed_for(KeyMode::Live),
                slow.allowed_for(KeyMode::Live)
            );
            assert_eq!(
                fast.allowed_for(KeyMode::Test),
                slow.allowed_for(KeyMode::Test)
            );
        }
        let allowed = |s: &str| list.contains(&Origin::parse(s).unwrap());
        assert!(allowed("https://Portal.Example.gov.in/"));
        assert!(allowed("http://localhost:3000"));
        assert!(!allowed("https://portal.example.gov.in.evil.com"));
        assert!(!allowed("http://portal.example.gov.in"));
        assert!(
            !allowed("https://not.normal.example"),
            "a stored non-normal form is ignored"
        );
        assert_eq!(
            list.parse("https://a.example/path").unwrap_err(),
            OriginError::NotAnOrigin
        );
    }

    #[test]
    fn live_keys_need_https_and_test_keys_may_use_http_localhost() {
        let http_local = Origin::parse("http://localhost:3000").unwrap();
        let http_remote = Origin::parse("http://portal.example.gov.in").unwrap();
        let https = Origin::parse("https://portal.example.gov.in").unwrap();
        assert!(!http_local.allowed_for(KeyMode::Live));
        assert!(http_local.allowed_for(KeyMode::Test));
        assert!(!http_remote.allowed_for(KeyMode::Test));
        assert!(https.allowed_for(KeyMode::Live));
    }
}
