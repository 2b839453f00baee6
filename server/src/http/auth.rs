//! API key authentication and per-key rate limiting, as a layer on portal routes.
//!
//! Every request looks the key up through the [`KeyCache`](crate::key_cache::KeyCache),
//! which first checks whether anything committed to the database since it read the
//! key: a revoke (from any process) or a whitelist change takes effect on the very next
//! request, and the end of a roll's grace period is checked against the clock each time.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tower::{Layer, Service};

use securesign_core::ErrorCode;

use super::error::ApiError;
use super::AppState;
use crate::api_key::{self, KeyMode};
use crate::key_cache::{rpm_of, CachedKey};
use crate::origin::Whitelist;
use crate::rate_limit::{Decision, LimitHeaders};

/// The `X-SecureSign-Api-Key` header.
pub const API_KEY_HEADER: &str = "x-securesign-api-key";

/// The key a request authenticated with, put in the request's extensions.
#[derive(Debug, Clone)]
pub struct AuthedKey {
    entry: Arc<CachedKey>,
    mode: KeyMode,
    rpm: u32,
}

/// Handlers behind [`RequireApiKeyLayer`] take the key as an argument; it is moved out
/// of the request's extensions (no copy). A route without the layer answers 500.
impl<S: Send + Sync> FromRequestParts<S> for AuthedKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.remove::<Self>().ok_or_else(|| {
            tracing::error!("a portal handler is not behind RequireApiKeyLayer");
            ApiError::new(ErrorCode::Internal, "internal error")
        })
    }
}

impl AuthedKey {
    /// `key_…`.
    pub fn key_id(&self) -> &str {
        &self.entry.record.id
    }

    /// The key's tenant.
    pub fn tenant_id(&self) -> &str {
        &self.entry.record.tenant_id
    }

    /// Live or test.
    pub fn mode(&self) -> KeyMode {
        self.mode
    }

    /// Requests per minute.
    pub fn rpm(&self) -> u32 {
        self.rpm
    }

    /// The tenant's whitelisted origins, read with the key.
    pub fn whitelist(&self) -> &Whitelist {
        &self.entry.whitelist
    }

    /// The validate answer body cached with the key, built by `build` the first time
    /// (a failed build is not cached).
    pub fn validate_answer<E>(
        &self,
        build: impl FnOnce(&Self) -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let cached = &self.entry.validate_answer;
        if let Some(answer) = cached.get() {
            return Ok(answer.clone());
        }
        let answer = build(self)?;
        // Another request may have built it meanwhile: the same bytes either way.
        Ok(cached.get_or_init(|| answer).clone())
    }
}

/// Layer for portal routes: authenticate, count against the key's limit, and add the
/// `RateLimit-*` headers to every answer of an authenticated request.
///
/// A plain [`tower::Layer`] rather than `axum::middleware::from_fn`: `from_fn` boxes
/// the rest of the stack into a fresh `Next` service for each request, an allocation
/// and an indirection this hot path does not need.
#[derive(Clone)]
pub struct RequireApiKeyLayer {
    state: AppState,
}

impl RequireApiKeyLayer {
    /// The layer over `state`'s key cache, clock and limits.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for RequireApiKeyLayer {
    type Service = RequireApiKey<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireApiKey {
            state: self.state.clone(),
            inner,
        }
    }
}

/// The service [`RequireApiKeyLayer`] puts in front of each portal route.
#[derive(Clone)]
pub struct RequireApiKey<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for RequireApiKey<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this request; a fresh one stays.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let state = self.state.clone();
        Box::pin(async move { Ok(require_api_key(&state, req, ready).await) })
    }
}

async fn require_api_key<S>(state: &AppState, mut req: Request, mut inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let key = match authenticate(state, req.headers()).await {
        Ok(key) => key,
        Err(err) => return err.into_response(),
    };
    let key_limit = Arc::clone(
        key.entry
            .limit
            .get_or_init(|| state.limits.limit(key.key_id(), key.rpm)),
    );
    let limit_headers = key_limit.headers();
    let decision = key_limit.check();
    match decision {
        Decision::Limited {
            limit,
            retry_after_secs,
        } => {
            tracing::info!(key_id = %key.key_id(), "rate limited");
            let mut response = ApiError::new(
                ErrorCode::RateLimited,
                format!("more than {limit} requests per minute for this API key"),
            )
            .into_response();
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            add_rate_headers(headers, limit_headers, 0, retry_after_secs);
            response
        }
        Decision::Allowed {
            remaining,
            reset_secs,
            ..
        } => {
            req.extensions_mut().insert(key);
            let Ok(mut response) = inner.call(req).await;
            add_rate_headers(response.headers_mut(), limit_headers, remaining, reset_secs);
            response
        }
    }
}

fn add_rate_headers(
    headers: &mut HeaderMap,
    fixed: &LimitHeaders,
    remaining: u32,
    reset_secs: u64,
) {
    headers.insert(
        HeaderName::from_static("ratelimit-limit"),
        fixed.limit_value().clone(),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-remaining"),
        HeaderValue::from(remaining),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-reset"),
        HeaderValue::from(reset_secs),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-policy"),
        fixed.policy_value().clone(),
    );
}

/// Finds the key in `Authorization: Bearer …` or `X-SecureSign-Api-Key`.
fn presented_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let single = |name: &HeaderName| -> Result<Option<&str>, ApiError> {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiError::key_invalid(format!(
                "more than one {name} header"
            )));
        }
        first
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| ApiError::key_invalid("malformed API key"))
    };
    let bearer = match single(&header::AUTHORIZATION)? {
        Some(value) => {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::key_invalid(
                    "the Authorization header must use the Bearer scheme",
                ));
            }
            Some(token.trim())
        }
        None => None,
    };
    let custom = single(&HeaderName::from_static(API_KEY_HEADER))?;
    match (bearer, custom) {
        (Some(a), Some(b)) if a != b => Err(ApiError::key_invalid(
            "Authorization and X-SecureSign-Api-Key carry different keys",
        )),
        (Some(key), _) | (None, Some(key)) => Ok(key),
        (None, None) => Err(ApiError::key_invalid(
            "missing API key: send Authorization: Bearer <key> or X-SecureSign-Api-Key",
        )),
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<AuthedKey, ApiError> {
    let presented = presented_key(headers)?;
    let format_refused = |err: api_key::KeyFormatError| {
        tracing::debug!(reason = %err, "API key refused before lookup");
        ApiError::key_invalid(format!("invalid API key ({err})"))
    };
    let shaped = api_key::parse_shape(presented).map_err(format_refused)?;
    let parsed = shaped.key;
    let refused = || ApiError::key_invalid("invalid or revoked API key");
    // A cached entry is a stored key with this very hash, so the presented key is that
    // key and its checksum is right; only a key read from the database is checked first
    // (the checksum spares the lookup of a mistyped key).
    let entry = match state.keys.cached(&parsed.hash) {
        Some(entry) => entry,
        None => {
            shaped.verify_checksum().map_err(format_refused)?;
            state.keys.lookup(&parsed.hash).await?.ok_or_else(refused)?
        }
    };
    let record = &entry.record;
    let now = state.clock.now_unix();
    let hash_matches = entry
        .stored_hash
        .is_some_and(|stored| parsed.hash.matches(&stored));
    if !hash_matches || record.mode != parsed.mode.as_str() || !record.usable_at(now) {
        tracing::info!(key_id = %record.id, "revoked or expired API key refused");
        return Err(refused());
    }
    let rpm = rpm_of(record);
    Ok(AuthedKey {
        entry,
        mode: parsed.mode,
        rpm,
    })
}
