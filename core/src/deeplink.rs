//! The `securesign://sign?requestId=…` deep link, parsed strictly.
//!
//! A link arrives from a browser, another app or the command line, so it is untrusted
//! input. Exactly two spellings of one link are accepted:
//!
//! ```text
//! securesign://sign?requestId=<22..=64 ASCII letters or digits>
//! https://securesign.toolsbots.com/sign?requestId=<the same>
//! ```
//!
//! The second is the verified App Link (Android) / Universal Link (iOS) form: the phone
//! opens the app for it only because the app declares [`APP_LINK_HOST`] and the host
//! proves the app is its own; without the app, the browser opens that page instead.
//!
//! Nothing else is: no other host, path, port, user info, fragment, extra or repeated
//! parameter, percent-encoding or whitespace. Schemes and hosts are compared without
//! ASCII case (RFC 3986 makes them case-insensitive, and some launchers lower-case them);
//! the path and the request id are taken byte for byte. The link never carries the API address: the
//! app reads that from its own settings, so a link cannot point the app at another server.
//!
//! Errors never echo the link back: it may be long or hostile, and it ends up on screen.

use std::fmt;

use crate::error::{Error, Result};

/// The app's own scheme.
pub const SCHEME: &str = "securesign";
/// The host of the verified `https` form of the link (App Links / Universal Links; must
/// match `plugins.deep-link.mobile` in `src-tauri/tauri.conf.json`).
pub const APP_LINK_HOST: &str = "securesign.toolsbots.com";
/// The path of the verified `https` form.
pub const APP_LINK_PATH: &str = "/sign";
/// Shortest accepted request id.
pub const REQUEST_ID_MIN_LEN: usize = 22;
/// Longest accepted request id.
pub const REQUEST_ID_MAX_LEN: usize = 64;
/// Longest link looked at; anything longer is refused before parsing.
pub const MAX_LINK_LEN: usize = 256;

/// A well-formed signing-request id (22 to 64 base62 characters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Validates an id on its own (e.g. typed into a field).
    pub fn parse(id: &str) -> Result<Self> {
        if id.len() < REQUEST_ID_MIN_LEN || id.len() > REQUEST_ID_MAX_LEN {
            return Err(invalid(format!(
                "the request id must be {REQUEST_ID_MIN_LEN} to {REQUEST_ID_MAX_LEN} characters"
            )));
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                "the request id may contain only letters and digits",
            ));
        }
        Ok(Self(id.to_owned()))
    }

    /// The id, safe to put in a URL path segment as is.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A parsed `securesign://sign` link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignLink {
    /// The signing request to open.
    pub request_id: RequestId,
}

impl SignLink {
    /// Parses a link strictly; see the module documentation for the one accepted shape.
    pub fn parse(link: &str) -> Result<Self> {
        if link.len() > MAX_LINK_LEN {
            return Err(invalid("the link is too long"));
        }
        if link.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(invalid("the link contains spaces or non-ASCII characters"));
        }
        let (scheme, rest) = link
            .split_once("://")
            .ok_or_else(|| invalid("not a securesign:// link"))?;
        if rest.contains('#') {
            return Err(invalid("the link must not have a fragment"));
        }
        let (target, query) = rest
            .split_once('?')
            .ok_or_else(|| invalid("the link has no request id"))?;
        if scheme.eq_ignore_ascii_case(SCHEME) {
            if !target.eq_ignore_ascii_case("sign") {
                return Err(invalid("only securesign://sign links are supported"));
            }
        } else if scheme.eq_ignore_ascii_case("https") {
            let is_app_link = target
                .strip_suffix(APP_LINK_PATH)
                .is_some_and(|host| host.eq_ignore_ascii_case(APP_LINK_HOST));
            if !is_app_link {
                return Err(invalid(format!(
                    "only https://{APP_LINK_HOST}{APP_LINK_PATH} links are supported"
                )));
            }
        } else {
            return Err(invalid("not a securesign:// link"));
        }
        let value = query
            .strip_prefix("requestId=")
            .ok_or_else(|| invalid("the only parameter must be requestId"))?;
        if value.contains(['&', ';', '=', '%', '+', '?', '/']) {
            return Err(invalid("the only parameter must be requestId"));
        }
        Ok(Self {
            request_id: RequestId::parse(value)?,
        })
    }

    /// The canonical (`securesign://`) form of this link.
    pub fn to_link(&self) -> String {
        format!("{SCHEME}://sign?requestId={}", self.request_id)
    }
}

impl std::str::FromStr for SignLink {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The first argument that looks like a link of our scheme (desktop argv: the `.desktop`
/// entry passes the URL as `%u`; a second launch forwards its argv to the running app).
pub fn link_in_args<I, S>(args: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    args.into_iter().find_map(|arg| {
        let arg = arg.as_ref();
        // Bytes, not `str` slices: an argument may have a multi-byte character anywhere,
        // including across the end of the scheme, and must never make this panic.
        let (scheme, colon) = arg.as_bytes().split_at_checked(SCHEME.len())?;
        (scheme.eq_ignore_ascii_case(SCHEME.as_bytes()) && colon.first() == Some(&b':'))
            .then(|| arg.to_owned())
    })
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::DeepLinkInvalid(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    const ID32: &str = "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV";

    fn rejects(link: &str) -> String {
        match SignLink::parse(link) {
            Err(err) => {
                assert_eq!(err.code(), ErrorCode::DeepLinkInvalid, "{link}");
                err.to_string()
            }
            Ok(parsed) => panic!("accepted {link:?} as {parsed:?}"),
        }
    }

    #[test]
    fn accepts_the_one_shape() {
        let link = SignLink::parse(&format!("securesign://sign?requestId={ID32}")).unwrap();
        assert_eq!(link.request_id.as_str(), ID32);
        assert_eq!(
            link.to_link(),
            format!("securesign://sign?requestId={ID32}")
        );
    }

    #[test]
    fn accepts_the_verified_https_form() {
        for link in [
            format!("https://securesign.toolsbots.com/sign?requestId={ID32}"),
            format!("HTTPS://SecureSign.ToolsBots.com/sign?requestId={ID32}"),
        ] {
            let parsed = SignLink::parse(&link).unwrap();
            assert_eq!(parsed.request_id.as_str(), ID32);
            assert_eq!(
                parsed.to_link(),
                format!("securesign://sign?requestId={ID32}")
            );
        }
    }

    #[test]
    fn rejects_other_https_links() {
        for link in [
            format!("http://securesign.toolsbots.com/sign?requestId={ID32}"),
            format!("https://securesign.toolsbots.com.evil.com/sign?requestId={ID32}"),
            format!("https://evil.com/securesign.toolsbots.com/sign?requestId={ID32}"),
            format!("https://xsecuresign.toolsbots.com/sign?requestId={ID32}"),
            format!("https://evil.securesign.toolsbots.com/sign?requestId={ID32}"),
            format!("https://user@securesign.toolsbots.com/sign?requestId={ID32}"),
            format!("https://securesign.toolsbots.com:8443/sign?requestId={ID32}"),
            format!("https://securesign.toolsbots.com/sign/?requestId={ID32}"),
            format!("https://securesign.toolsbots.com/SIGN?requestId={ID32}"),
            format!("https://securesign.toolsbots.com/signx?requestId={ID32}"),
            format!("https://securesign.toolsbots.com/x/sign?requestId={ID32}"),
            format!("https://securesign.toolsbots.com?requestId={ID32}"),
            format!("https://securesign.toolsbots.com/sign?requestId={ID32}&x=1"),
            format!("https://securesign.toolsbots.com/sign?requestId={ID32}#x"),
            format!("https://sign?requestId={ID32}"),
            "https://securesign.toolsbots.com/sign".to_owned(),
        ] {
            rejects(&link);
        }
    }

    #[test]
    fn scheme_and_host_ignore_case_but_the_id_does_not() {
        let link = SignLink::parse(&format!("SecureSign://SIGN?requestId={ID32}")).unwrap();
        assert_eq!(link.request_id.as_str(), ID32);
        rejects(&format!("securesign://sign?requestid={ID32}"));
    }

    #[test]
    fn id_length_bounds_are_inclusive() {
        for len in [REQUEST_ID_MIN_LEN, REQUEST_ID_MAX_LEN] {
            let id = "x".repeat(len);
            assert!(SignLink::parse(&format!("securesign://sign?requestId={id}")).is_ok());
        }
        for len in [0, REQUEST_ID_MIN_LEN - 1, REQUEST_ID_MAX_LEN + 1] {
            let id = "x".repeat(len);
            rejects(&format!("securesign://sign?requestId={id}"));
        }
    }

    #[test]
    fn rejects_other_schemes_hosts_and_paths() {
        for link in [
            format!("ftp://sign?requestId={ID32}"),
            format!("securesign:sign?requestId={ID32}"),
            format!("securesignx://sign?requestId={ID32}"),
            format!("securesign://verify?requestId={ID32}"),
            format!("securesign://sign/?requestId={ID32}"),
            format!("securesign://sign/x?requestId={ID32}"),
            format!("securesign://sign:443?requestId={ID32}"),
            format!("securesign://user@sign?requestId={ID32}"),
            format!("securesign://evil.example/sign?requestId={ID32}"),
            "securesign://sign".to_owned(),
            "securesign://sign?".to_owned(),
            "".to_owned(),
        ] {
            rejects(&link);
        }
    }

    #[test]
    fn rejects_extra_repeated_encoded_or_injected_parameters() {
        for link in [
            format!("securesign://sign?requestId={ID32}&api=https://evil.example"),
            format!("securesign://sign?api=https://evil.example&requestId={ID32}"),
            format!("securesign://sign?requestId={ID32}&requestId={ID32}"),
            format!("securesign://sign?requestId={ID32};x=1"),
            format!("securesign://sign?requestId={ID32}#frag"),
            format!("securesign://sign?requestId=%41{ID32}"),
            format!("securesign://sign?requestId=../../{ID32}"),
            format!("securesign://sign?requestId={ID32}?x"),
            format!("securesign://sign?requestId= {ID32}"),
            format!("securesign://sign?requestId={ID32}\n"),
            format!("securesign://sign?requestId={ID32}é"),
            format!("securesign://sign?requestId={}-x", &ID32[..30]),
        ] {
            rejects(&link);
        }
    }

    #[test]
    fn long_links_are_refused_without_echoing_them() {
        let link = format!("securesign://sign?requestId={}", "A".repeat(10_000));
        let message = rejects(&link);
        assert!(message.len() < 100, "{message}");
        assert!(!message.contains("AAAA"));
    }

    #[test]
    fn errors_never_echo_the_link() {
        let message = rejects("securesign://sign?requestId=<script>alert(1)</script>");
        assert!(!message.contains("script"), "{message}");
    }

    #[test]
    fn finds_the_link_among_arguments() {
        let link = format!("securesign://sign?requestId={ID32}");
        let args = ["/usr/bin/securesign-app", "--flag", link.as_str()];
        assert_eq!(link_in_args(args), Some(link.clone()));
        assert_eq!(link_in_args(["app", "securesignx://a"]), None);
        assert_eq!(link_in_args(["app", "é"]), None);
        assert_eq!(link_in_args(Vec::<String>::new()), None);
        // Found even when malformed, so that the app can show why it is refused.
        assert_eq!(
            link_in_args(["app", "SECURESIGN://nope"]),
            Some("SECURESIGN://nope".to_owned())
        );
    }

    /// A multi-byte character across the scheme prefix (or anywhere in the first
    /// bytes) is not our link, and never panics: every char boundary, many characters.
    #[test]
    fn multi_byte_characters_near_the_scheme_never_panic() {
        assert_eq!(link_in_args(["securesig\u{e9}://sign?requestId=x"]), None);
        assert_eq!(link_in_args(["securesign\u{e9}//x"]), None);
        assert_eq!(link_in_args(["\u{1F600}"]), None);
        let base = format!("securesign://sign?requestId={ID32}");
        for ch in ['\u{e9}', '\u{20AC}', '\u{1F600}', '\u{0}', 'S'] {
            for cut in 0..=base.len() {
                let mut arg = base.clone();
                arg.insert(cut, ch);
                let found = link_in_args([arg.as_str()]);
                // Still ours only when the character landed after `securesign:`.
                let ours = cut > SCHEME.len();
                assert_eq!(found.is_some(), ours, "{ch:?} at {cut}");
                if let Some(link) = found {
                    assert!(SignLink::parse(&link).is_err() || ch == 'S' || cut == base.len());
                }
                let _ = SignLink::parse(&arg);
                // Truncations at every byte that is a char boundary.
                for end in (0..=arg.len()).filter(|&i| arg.is_char_boundary(i)) {
                    let _ = link_in_args([&arg[..end]]);
                    let _ = SignLink::parse(&arg[..end]);
                }
            }
        }
    }

    #[test]
    fn request_ids_validate_alone() {
        assert!(RequestId::parse(ID32).is_ok());
        assert!(RequestId::parse("short").is_err());
        assert!(RequestId::parse(&format!("{}_", &ID32[..31])).is_err());
    }
}
