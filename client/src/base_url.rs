//! The API base URL rule: `https`, or plain `http` only on this computer (loopback), no
//! user name, path, query or fragment. The base URL comes from the user's settings or
//! command line, never from a signing link, so a link cannot point a client at another
//! server.

use securesign_core::{Error, Result};
use url::Url;

/// Parses and checks an API base URL (`SS_CONFIG` when it breaks the rule).
pub fn parse(text: &str) -> Result<Url> {
    let bad = |why: &str| Error::Config(format!("API base URL: {why}"));
    let url = Url::parse(text).map_err(|_| bad("not a valid URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => return Err(bad("no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("must use https (http only on this computer)")),
        _ => return Err(bad("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if url.path() != "/" {
        return Err(bad("must not have a path"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_must_be_https_or_loopback_http() {
        for ok in [
            "https://api.example.in",
            "https://api.example.in:8443/",
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "http://[::1]:9",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.example.in",
            "ftp://api.example.in",
            "https://user:pw@api.example.in",
            "https://api.example.in/v1",
            "https://api.example.in/?x=1",
            "https://api.example.in/#f",
            "securesign://sign",
            "not a url",
            "",
        ] {
            let err = parse(bad).err();
            assert_eq!(
                err.map(|e| e.code()),
                Some(securesign_core::ErrorCode::Config),
                "{bad}"
            );
        }
    }
}
