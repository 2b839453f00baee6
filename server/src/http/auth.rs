//! API key authentication and per-key rate limiting for portal routes.
//!
//! A portal route is an [`Authenticated`] handler: the service authenticates the
//! request, counts it against the key's limit, and calls the handler with a
//! [`PortalState`], which carries the key. Handlers take the key as an [`AuthedKey`]
//! argument, an extractor that exists only for that state, so a handler asking for the
//! key cannot be routed without authentication: it would not compile.
//!
//! Every request looks the key up through the [`KeyCache`](crate::key_cache::KeyCache),
//! which first checks whether anything committed to the database since it read the
//! key: a revoke (from any process), a whitelist change or a disabled tenant takes
//! effect on the very next request, and the end of a roll's grace period is checked
//! against the clock each time.

use std::convert::Infallible;
use std::future::{Future, Ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pin_project_lite::pin_project;
use tower::Service;

use securesign_core::ErrorCode;

use super::error::ApiError;
use super::AppState;
use crate::api_key::{self, KeyMode, PresentedKey};
use crate::key_cache::{rpm_of, CachedKey};
use crate::origin::Whitelist;
use crate::rate_limit::{Check, Decision, KeyLimit, LimitHeaders};

/// The `X-SecureSign-Api-Key` header.
pub const API_KEY_HEADER: &str = "x-securesign-api-key";

// Header names as constants: `HeaderName::from_static` validates its argument when it
// runs, and here it runs once, at compile time.
const API_KEY: HeaderName = HeaderName::from_static(API_KEY_HEADER);
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The key a request authenticated with.
#[derive(Debug, Clone)]
pub struct AuthedKey {
    entry: Arc<CachedKey>,
    mode: KeyMode,
    rpm: u32,
}

/// The state an [`Authenticated`] handler is called with: the server's state and the
/// request's key. Only [`Authenticated`] builds one.
#[derive(Clone)]
pub struct PortalState {
    app: AppState,
    key: AuthedKey,
}

/// Portal handlers take the server's state as `State<AppState>`, as elsewhere.
impl FromRef<PortalState> for AppState {
    fn from_ref(state: &PortalState) -> Self {
        state.app.clone()
    }
}

/// The key, for handlers called by [`Authenticated`] (the only ones it exists for).
///
/// A handler that asks for the key on a route without [`Authenticated`] does not
/// compile:
///
/// ```compile_fail
/// use axum::{routing::post, Router};
/// use securesign_server::http::auth::AuthedKey;
/// use securesign_server::AppState;
///
/// async fn unguarded(_key: AuthedKey) {}
/// let _routes: Router<AppState> = Router::new().route("/v1/unguarded", post(unguarded));
/// ```
///
/// while the same handler behind it does:
///
/// ```
/// use axum::{routing::post_service, Router};
/// use securesign_server::http::auth::{AuthedKey, Authenticated};
/// use securesign_server::AppState;
///
/// async fn guarded(_key: AuthedKey) {}
/// fn routes(state: AppState) -> Router<AppState> {
///     Router::new().route("/v1/guarded", post_service(Authenticated::new(state, guarded)))
/// }
/// ```
impl FromRequestParts<PortalState> for AuthedKey {
    type Rejection = Infallible;

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Infallible> {
        Ok(state.key.clone())
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

/// A portal route: authenticates the request, counts it against the key's limit, calls
/// `handler` with a [`PortalState`] holding the key, and adds the `RateLimit-*` headers
/// to every answer of an authenticated request.
///
/// A [`tower::Service`] for `post_service` / `get_service`, so a route is this one
/// boxed service: no layer and `Oneshot` built around the handler per request, and the
/// key reaches the handler in its state rather than in the request's extensions (an
/// allocation, and a table that grows on the fourth entry).
pub struct Authenticated<H, T> {
    state: AppState,
    handler: H,
    handler_args: PhantomData<fn() -> T>,
}

impl<H: Clone, T> Clone for Authenticated<H, T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            handler: self.handler.clone(),
            handler_args: PhantomData,
        }
    }
}

impl<H, T> Authenticated<H, T>
where
    H: Handler<T, PortalState>,
    T: 'static,
{
    /// `handler` behind authentication with `state`'s keys, clock and limits.
    pub fn new(state: AppState, handler: H) -> Self {
        Self {
            state,
            handler,
            handler_args: PhantomData,
        }
    }
}

impl<H, T> Service<Request> for Authenticated<H, T>
where
    H: Handler<T, PortalState>,
    T: 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AuthenticatedFuture<H::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Authenticates and counts the request before the handler is called: a key in the
    /// cache (the normal case) needs no `await`, so the returned future is the
    /// handler's plus the rate headers, and only a cache miss boxes a database lookup.
    fn call(&mut self, req: Request) -> Self::Future {
        match authenticate_cached(&self.state, req.headers()) {
            Ok(Cached::Hit(key)) => admit(&self.state, key, req, self.handler.clone()),
            Ok(Cached::Miss(presented)) => {
                let state = self.state.clone();
                let handler = self.handler.clone();
                AuthenticatedFuture::boxed(async move {
                    match authenticate_uncached(&state, presented).await {
                        Ok(key) => admit(&state, key, req, handler).await,
                        Err(err) => Ok(err.into_response()),
                    }
                })
            }
            Err(err) => AuthenticatedFuture::answered(err.into_response()),
        }
    }
}

pin_project! {
    /// The future of [`Authenticated`]: an answer decided before the handler was called
    /// (refused key, rate limited), the handler's answer plus the `RateLimit-*` headers,
    /// or a boxed key lookup on a cache miss.
    pub struct AuthenticatedFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Answered { answer: Ready<Response> },
        Admitted {
            #[pin]
            inner: F,
            limit: Arc<KeyLimit>,
            remaining: u32,
            reset_secs: u64,
        },
        LookingUp { future: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> },
    }
}

impl<F> AuthenticatedFuture<F> {
    fn answered(response: Response) -> Self {
        Self {
            kind: Kind::Answered {
                answer: std::future::ready(response),
            },
        }
    }

    fn boxed(future: impl Future<Output = Result<Response, Infallible>> + Send + 'static) -> Self {
        Self {
            kind: Kind::LookingUp {
                future: Box::pin(future),
            },
        }
    }
}

impl<F> Future for AuthenticatedFuture<F>
where
    F: Future<Output = Response>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Answered { answer } => Pin::new(answer).poll(cx).map(Ok),
            KindProj::Admitted {
                inner,
                limit,
                remaining,
                reset_secs,
            } => {
                let mut response = ready!(inner.poll(cx));
                add_rate_headers(
                    response.headers_mut(),
                    limit.headers(),
                    *remaining,
                    *reset_secs,
                );
                Poll::Ready(Ok(response))
            }
            KindProj::LookingUp { future } => future.as_mut().poll(cx),
        }
    }
}

/// Counts an authenticated request against its key's limit: a 429 answer, or the
/// handler called with the key in its state.
fn admit<H, T>(
    state: &AppState,
    key: AuthedKey,
    req: Request,
    handler: H,
) -> AuthenticatedFuture<H::Future>
where
    H: Handler<T, PortalState>,
    T: 'static,
{
    let limit = Arc::clone(
        key.entry
            .limit
            .get_or_init(|| state.limits.limit(key.key_id(), key.rpm)),
    );
    match limit.check() {
        Check::Now(decision) => decided(state, key, req, handler, limit, decision),
        // A limit shared by several instances: one step in the database first.
        Check::Shared(step) => {
            let state = state.clone();
            AuthenticatedFuture::boxed(async move {
                match step.await {
                    Ok(decision) => decided(&state, key, req, handler, limit, decision).await,
                    Err(err) => Ok(ApiError::from(err).into_response()),
                }
            })
        }
    }
}

/// Answers 429 for a refused request, or calls the handler with the key in its state.
fn decided<H, T>(
    state: &AppState,
    key: AuthedKey,
    req: Request,
    handler: H,
    limit: Arc<KeyLimit>,
    decision: Decision,
) -> AuthenticatedFuture<H::Future>
where
    H: Handler<T, PortalState>,
{
    key.entry
        .usage
        .get_or_init(|| state.usage.handle(key.key_id()))
        .record(matches!(decision, Decision::Limited { .. }));
    match decision {
        Decision::Limited {
            limit: rpm,
            retry_after_secs,
        } => {
            tracing::info!(key_id = %key.key_id(), "rate limited");
            let mut response = ApiError::new(
                ErrorCode::RateLimited,
                format!("more than {rpm} requests per minute for this API key"),
            )
            .into_response();
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, number_value(retry_after_secs));
            add_rate_headers(headers, limit.headers(), 0, retry_after_secs);
            AuthenticatedFuture::answered(response)
        }
        Decision::Allowed {
            remaining,
            reset_secs,
            ..
        } => {
            let portal = PortalState {
                app: state.clone(),
                key,
            };
            AuthenticatedFuture {
                kind: Kind::Admitted {
                    inner: handler.call(req, portal),
                    limit,
                    remaining,
                    reset_secs,
                },
            }
        }
    }
}

/// Adds the `RateLimit-Limit`, `-Remaining`, `-Reset` and `-Policy` headers.
pub(crate) fn add_rate_headers(
    headers: &mut HeaderMap,
    fixed: &LimitHeaders,
    remaining: u32,
    reset_secs: u64,
) {
    headers.insert(RATELIMIT_LIMIT, fixed.limit_value().clone());
    headers.insert(RATELIMIT_REMAINING, number_value(remaining.into()));
    headers.insert(RATELIMIT_RESET, number_value(reset_secs));
    headers.insert(RATELIMIT_POLICY, fixed.policy_value().clone());
}

/// Every number from 0 to 60 written out, one after the other: the text of each is a
/// slice of it (one digit up to 9, then two).
const SMALL_NUMBERS: &str = "0123456789101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960";

/// `n` as a header value. Up to 60 (a reset in seconds, a small remainder) it is a
/// static slice of [`SMALL_NUMBERS`]: no allocation, and no shared reference count for
/// the server's threads to pass between them. Larger, one copy of its digits
/// (`HeaderValue::from(n)` allocates twice).
pub(crate) fn number_value(n: u64) -> HeaderValue {
    let small = match usize::try_from(n) {
        Ok(n @ 0..=9) => SMALL_NUMBERS.get(n..=n),
        Ok(n @ 10..=60) => {
            let at = 10 + 2 * (n - 10);
            SMALL_NUMBERS.get(at..at + 2)
        }
        _ => None,
    };
    match small {
        Some(text) => HeaderValue::from_static(text),
        None => HeaderValue::from_str(itoa::Buffer::new().format(n))
            .unwrap_or_else(|_| HeaderValue::from(n)),
    }
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
            // `to_str` admits visible ASCII and tabs only, so ASCII trimming is all of it.
            .map(|v| Some(v.trim_ascii()))
            .map_err(|_| ApiError::key_invalid("malformed API key"))
    };
    let bearer = match single(&header::AUTHORIZATION)? {
        Some(value) => Some(bearer_token(value).ok_or_else(|| {
            ApiError::key_invalid("the Authorization header must use the Bearer scheme")
        })?),
        None => None,
    };
    let custom = single(&API_KEY)?;
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

/// The token of an `Authorization` value whose scheme is `Bearer` (any case): what
/// follows the scheme's space, trimmed (empty without one). `None` for another scheme.
fn bearer_token(value: &str) -> Option<&str> {
    // Compared in place rather than split at the first space: `value` is visible ASCII
    // (see `presented_key`), so the scheme is its first six bytes.
    let (scheme, rest) = value.split_at_checked("bearer".len())?;
    let separated = rest.is_empty() || rest.starts_with(' ');
    (scheme.eq_ignore_ascii_case("bearer") && separated).then(|| rest.trim_ascii())
}

/// What the in-memory cache knew about a well-formed key.
enum Cached {
    /// A stored key, checked usable now.
    Hit(AuthedKey),
    /// Not in memory (or the cache cannot tell): its checksum is right, so the database
    /// is asked.
    Miss(PresentedKey),
}

/// Authenticates from the headers and the cache alone, never reading the database.
fn authenticate_cached(state: &AppState, headers: &HeaderMap) -> Result<Cached, ApiError> {
    let presented = presented_key(headers)?;
    let shaped = api_key::parse_shape(presented).map_err(format_refused)?;
    // A cached entry is a stored key with this very hash, so the presented key is that
    // key and its checksum is right; only a key read from the database is checked first
    // (the checksum spares the lookup of a mistyped key).
    match state.keys.cached(&shaped.key.hash) {
        Some(entry) => usable_key(state, entry, shaped.key).map(Cached::Hit),
        None => {
            shaped.verify_checksum().map_err(format_refused)?;
            Ok(Cached::Miss(shaped.key))
        }
    }
}

/// Authenticates a well-formed key the cache did not hold, from the database.
async fn authenticate_uncached(
    state: &AppState,
    presented: PresentedKey,
) -> Result<AuthedKey, ApiError> {
    let entry = state
        .keys
        .lookup(&presented.hash)
        .await?
        .ok_or_else(refused)?;
    usable_key(state, entry, presented)
}

/// `entry` as the key of this request, unless it is revoked, expired, of the other
/// mode, not the presented key after all, or its tenant is disabled.
fn usable_key(
    state: &AppState,
    entry: Arc<CachedKey>,
    presented: PresentedKey,
) -> Result<AuthedKey, ApiError> {
    let record = &entry.record;
    let now = state.clock.now_unix();
    let hash_matches = entry
        .stored_hash
        .is_some_and(|stored| presented.hash.matches(&stored));
    if !hash_matches || record.mode != presented.mode.as_str() || !record.usable_at(now) {
        tracing::info!(key_id = %record.id, "revoked or expired API key refused");
        return Err(refused());
    }
    if entry.tenant_disabled() {
        tracing::info!(key_id = %record.id, tenant_id = %record.tenant_id, "API key of a disabled tenant refused");
        return Err(ApiError::tenant_disabled());
    }
    let rpm = rpm_of(record);
    Ok(AuthedKey {
        entry,
        mode: presented.mode,
        rpm,
    })
}

fn format_refused(err: api_key::KeyFormatError) -> ApiError {
    tracing::debug!(reason = %err, "API key refused before lookup");
    ApiError::key_invalid(format!("invalid API key ({err})"))
}

fn refused() -> ApiError {
    ApiError::key_invalid("invalid or revoked API key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_what_follows_the_scheme_and_a_space() {
        for (value, token) in [
            ("Bearer sk_live_abc", Some("sk_live_abc")),
            ("bEaReR   sk_live_abc ", Some("sk_live_abc")),
            ("Bearer", Some("")),
            ("Bearer ", Some("")),
            ("Bearersk_live_abc", None),
            ("Bearer\tsk_live_abc", None),
            ("Basic sk_live_abc", None),
            ("Bear", None),
            ("", None),
        ] {
            // The rule it replaces: split at the first space, compare the scheme.
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            let split = scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim_ascii());
            assert_eq!(bearer_token(value), token, "{value:?}");
            assert_eq!(split, token, "{value:?}");
        }
    }

    #[test]
    fn number_values_spell_the_number_in_and_beyond_the_table() {
        for n in (0..=70).chain([999_999, 1_000_000, u64::MAX]) {
            assert_eq!(number_value(n), HeaderValue::from(n), "{n}");
            assert_eq!(number_value(n).to_str().unwrap(), n.to_string());
        }
    }
}
