//! JSON request bodies whose every rejection (bad syntax, unknown or missing fields,
//! wrong content type, oversize body) is a `400 SS_BAD_REQUEST` in the API's shape.
//!
//! [`ApiJson`] wraps axum's `Json` (owned values, the field path in error messages).
//! [`JsonBody`] keeps the body as [`Bytes`] and parses it in place, so a body type
//! may borrow its strings from the request (`Cow<str>` with `#[serde(borrow)]`: a
//! string without escapes costs no allocation); validate's hot path uses it. It also
//! reads the body itself rather than through axum's `Bytes` extractor (see
//! [`read_whole`]).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use axum::Json;
use axum::RequestExt;
use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use http_body_util::BodyExt;
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
        // One UTF-8 check of the whole body, rather than one per string that parsing
        // from bytes makes; a body that is not UTF-8 is parsed from bytes all the same,
        // so that serde_json words the error (and where it is) as before.
        let parsed = match std::str::from_utf8(&self.0) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(&self.0),
        };
        parsed.map_err(|err| {
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

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        // The route's `DefaultBodyLimit`, as axum's extractors apply it.
        read_whole(req.into_limited_body()).await.map(Self)
    }
}

/// Reads `req`'s JSON body, at most `limit` bytes, and parses it into `T`, with the
/// rejections (texts, field paths) of [`ApiJson`]: for a handler that learns its body's
/// limit only after looking something up (the result route caps a body by the request's
/// document count), so it reads the body itself instead of through an extractor.
pub async fn read_json_capped<T: DeserializeOwned>(
    req: Request,
    limit: usize,
) -> Result<T, ApiError> {
    require_json(req.headers())?;
    let body = Body::new(http_body_util::Limited::new(req.into_body(), limit));
    let bytes = read_whole(body).await?;
    match Json::<T>::from_bytes(&bytes) {
        Ok(Json(value)) => Ok(value),
        Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
    }
}

/// Reads and drops at most `limit` bytes of `req`'s body, for at most `wait`: before
/// answering an error without reading the body, so that a client whose (small) body is
/// already on its way finds the connection clean and reads the answer; a larger body is
/// left unread (hyper then closes the connection after the answer).
pub async fn discard_body(req: Request, limit: usize, wait: std::time::Duration) {
    let mut body = req.into_body();
    let drain = async {
        let mut seen = 0usize;
        while seen <= limit && !body.is_end_stream() {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, Bytes::len);
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(wait, drain).await;
}

/// Reads `body` to its end, with the rejections (texts) of axum's `Bytes` extractor.
///
/// What axum's extractor does for every body — collect the frames in a queue, then poll
/// once more for trailers after the last byte — costs a noticeable part of a small
/// request. Here the usual one-chunk body is returned as it came (no queue, no copy),
/// and reading stops when the body says it has ended (hyper knows from
/// `Content-Length`). Bodies in several chunks are joined; trailers are ignored, as
/// axum ignores them.
async fn read_whole(mut body: Body) -> Result<Bytes, ApiError> {
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|err| body_read_error(&err))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            Some(earlier) => {
                joined.reserve(earlier.len() + data.len());
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&data);
            }
            None => joined.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// The answer to a body that could not be read: over the route's limit (the error
/// says `length limit exceeded`), or broken off.
fn body_read_error(err: &axum::Error) -> ApiError {
    ApiError::bad_request(format!("Failed to buffer the request body: {err}"))
}

/// Whether the request says its body is JSON, by the rule of axum's `Json`: a single
/// parseable media type `application/json` or `application/*+json`, any parameters.
/// The usual exact spelling is recognised without parsing.
/// `SS_BAD_REQUEST` (axum's text) unless the request says its body is JSON.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if json_content_type(headers) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Expected request with `Content-Type: application/json`",
        ))
    }
}

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
    fn parse_errors_are_worded_as_when_parsed_from_bytes() {
        let bodies: [&[u8]; 6] = [
            b"{\"text\":\"caf\xe9\"}",
            b"{\"te\xffxt\":\"a\"}",
            b"{\"text\":\"a\"}\xff",
            br#"{"text":"a""#,
            br#"{"text":"a","other":1}"#,
            br#"{"text":1}"#,
        ];
        for body in bodies {
            let err = JsonBody(Bytes::from_static(body))
                .parse::<Borrowing<'_>>()
                .err()
                .unwrap();
            let from_bytes = serde_json::from_slice::<Borrowing<'_>>(body).err().unwrap();
            assert_eq!(err.code(), securesign_core::ErrorCode::BadRequest);
            assert!(
                err.message().ends_with(&format!(": {from_bytes}")),
                "{body:?}: {} vs {from_bytes}",
                err.message()
            );
        }
    }

    /// A body in the given chunks, of unknown length (like a chunked upload).
    struct Chunks(std::collections::VecDeque<&'static [u8]>);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            let next = self
                .0
                .pop_front()
                .map(|chunk| Ok(http_body::Frame::data(Bytes::from_static(chunk))));
            std::task::Poll::Ready(next)
        }
    }

    /// What `JsonBody` makes of `body` behind a route limited to `limit` bytes.
    async fn extracted(body: Body, limit: usize) -> Result<Bytes, ApiError> {
        use tower::ServiceExt;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let sender = std::sync::Arc::new(std::sync::Mutex::new(Some(sender)));
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::post(move |body: Result<JsonBody, ApiError>| async move {
                    let sent = sender.lock().unwrap().take().unwrap();
                    let _ = sent.send(body.map(|b| b.0));
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(limit));
        let request = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        app.oneshot(request).await.unwrap();
        receiver.await.unwrap()
    }

    #[tokio::test]
    async fn a_body_is_read_whole_whatever_its_chunks() {
        let one = extracted(Body::from(r#"{"a":1}"#), 100).await.unwrap();
        assert_eq!(one, r#"{"a":1}"#);
        let chunked = Body::new(Chunks([&b"{\"a\""[..], b"", b":", b"1}"].into()));
        assert_eq!(extracted(chunked, 100).await.unwrap(), r#"{"a":1}"#);
        assert_eq!(extracted(Body::empty(), 100).await.unwrap(), "");
    }

    #[tokio::test]
    async fn a_body_over_the_routes_limit_is_refused_like_axum_does() {
        let message = |err: ApiError| err.message().to_owned();
        let known_length = extracted(Body::from("x".repeat(11)), 10).await.unwrap_err();
        assert_eq!(known_length.code(), securesign_core::ErrorCode::BadRequest);
        assert_eq!(
            message(known_length),
            "Failed to buffer the request body: length limit exceeded"
        );
        let streamed = Body::new(Chunks([&b"12345"[..], b"67890", b"1"].into()));
        let err = extracted(streamed, 10).await.unwrap_err();
        assert_eq!(
            message(err),
            "Failed to buffer the request body: length limit exceeded"
        );
        let exactly = Body::new(Chunks([&b"12345"[..], b"67890"].into()));
        assert_eq!(extracted(exactly, 10).await.unwrap(), "1234567890");
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
