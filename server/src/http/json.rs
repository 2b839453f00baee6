//! JSON request bodies whose every rejection (bad syntax, unknown or missing fields,
//! wrong content type, oversize body) is a `400 SS_BAD_REQUEST` in the API's shape.
//!
//! [`ApiJson`] wraps axum's `Json` (owned values, the field path in error messages).
//! [`JsonBody`] keeps the body as [`Bytes`] and parses it in place, so a body type
//! may borrow its strings from the request (`Cow<str>` with `#[serde(borrow)]`: a
//! string without escapes costs no allocation); validate's hot path uses it.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::ApiError;

/// A request body parsed as JSON into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// A JSON request body, read whole (within the router's body limit) after its
/// `Content-Type` was checked, not yet parsed: [`JsonBody::parse`] borrows from it.
#[derive(Debug, Clone)]
pub struct JsonBody(Bytes);

impl JsonBody {
    /// Parses the body into `T`, which may borrow from it. Errors are the same
    /// `SS_BAD_REQUEST` answers as [`ApiJson`]'s (without a field path prefix).
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(|err| {
            let what = match err.classify() {
                serde_json::error::Category::Data => {
                    "Failed to deserialize the JSON body into the target type"
                }
                _ => "Failed to parse the request body as JSON",
            };
            ApiError::bad_request(format!("{what}: {err}"))
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::bad_request(
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        Ok(Self(bytes))
    }
}

/// Whether the request says its body is JSON, by the rule of axum's `Json`: a single
/// parseable media type `application/json` or `application/*+json`, any parameters.
/// The usual exact spelling is recognised without parsing.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    if value.as_bytes().eq_ignore_ascii_case(b"application/json") {
        return true;
    }
    let Ok(text) = value.to_str() else {
        return false;
    };
    let Ok(mime) = text.parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == "application"
        && (mime.subtype() == "json" || mime.suffix().is_some_and(|name| name == "json"))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use axum::http::HeaderValue;

    use super::*;

    fn with_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_content_types_follow_axums_rule() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(json_content_type(&with_type(ok)), "{ok}");
        }
        for refused in [
            "text/plain",
            "application/jsonx",
            "application/json; charset",
            "application/xml",
            "",
        ] {
            assert!(!json_content_type(&with_type(refused)), "{refused}");
        }
        assert!(!json_content_type(&HeaderMap::new()));
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Borrowing<'a> {
        #[serde(borrow)]
        text: Cow<'a, str>,
    }

    #[test]
    fn plain_strings_are_borrowed_and_escaped_ones_decoded() {
        let plain = JsonBody(Bytes::from_static(br#"{"text":"https://a.example"}"#));
        let parsed: Borrowing<'_> = plain.parse().unwrap();
        assert!(matches!(parsed.text, Cow::Borrowed("https://a.example")));
        let escaped = JsonBody(Bytes::from_static(
            br#"{"text":"https:\/\/a.ex\u0061mple"}"#,
        ));
        let parsed: Borrowing<'_> = escaped.parse().unwrap();
        assert_eq!(parsed.text, "https://a.example");
        assert!(matches!(parsed.text, Cow::Owned(_)));
    }

    #[test]
    fn syntax_and_data_errors_are_bad_requests() {
        for body in [
            &br#"{"text":"a""#[..],
            br#"{"text":"a","extra":1}"#,
            br#"{"text":1}"#,
            b"",
        ] {
            let err = JsonBody(Bytes::from_static(body))
                .parse::<Borrowing<'_>>()
                .err()
                .unwrap();
            assert_eq!(err.code(), securesign_core::ErrorCode::BadRequest);
        }
    }
}
