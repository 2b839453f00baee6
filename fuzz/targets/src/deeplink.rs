//! The deep-link parser: `SignLink::parse` and `link_in_args` on any string.
//!
//! Properties: no panic; an accepted link names a valid request id, and its canonical
//! form (`to_link`) parses back to the same id and is itself canonical; a link of our
//! scheme that parses is found by `link_in_args`; whatever `link_in_args` finds starts
//! with `securesign:` (any ASCII case) and is the argument itself.

use securesign_core::deeplink::{link_in_args, RequestId, SignLink, SCHEME};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let found = link_in_args(["/usr/bin/securesign-app", "--flag", text]);
    if let Some(found) = &found {
        assert_eq!(found, text, "link_in_args returned something else");
        let prefix = found.as_bytes().get(..SCHEME.len() + 1);
        assert!(
            prefix.is_some_and(
                |p| p[..SCHEME.len()].eq_ignore_ascii_case(SCHEME.as_bytes())
                    && p[SCHEME.len()] == b':'
            ),
            "link_in_args found {text:?}, which is not of our scheme"
        );
    }
    match SignLink::parse(text) {
        Ok(link) => {
            let id = link.request_id.as_str();
            assert!((22..=64).contains(&id.len()), "accepted id {id:?}");
            assert!(
                id.bytes().all(|b| b.is_ascii_alphanumeric()),
                "accepted id {id:?}"
            );
            assert_eq!(RequestId::parse(id).ok().as_ref(), Some(&link.request_id));
            let canonical = link.to_link();
            let again = SignLink::parse(&canonical).expect("the canonical form parses");
            assert_eq!(again, link, "canonical form names another request");
            assert_eq!(again.to_link(), canonical, "canonical form is not stable");
            assert!(text.ends_with(id), "the id is not the end of the link");
            let lower = text.to_ascii_lowercase();
            if lower.starts_with("securesign:") {
                assert!(found.is_some(), "a valid link is not found among arguments");
            } else {
                assert!(lower.starts_with("https://"), "accepted scheme of {text:?}");
            }
        }
        Err(err) => {
            assert_eq!(err.code(), securesign_core::ErrorCode::DeepLinkInvalid);
            // Errors never echo the link (it may be long or hostile and is shown on screen).
            let message = err.to_string();
            assert!(message.len() < 200, "long error message: {message}");
            // (Longer than any fixed phrase of the messages, so a match is an echo.)
            if text.len() > 70 {
                assert!(
                    !message.contains(text),
                    "the error echoes the link: {message}"
                );
            }
        }
    }
}
