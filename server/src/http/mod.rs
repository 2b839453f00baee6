//! The HTTP API: router, shared state, and the OpenAPI document.

pub mod auth;
pub mod body_deadline;
pub mod client_address;
pub mod client_limits;
pub mod connections;
pub mod error;
pub mod json;
pub mod path;
pub mod portal;
pub mod proxy_protocol;
pub mod sign_request;
pub mod verification;
pub mod well_known;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};

use axum::routing::{get, get_service, post, post_service};
use axum::{Json, Router};
use securesign_core::ErrorCode;
use serde::Serialize;

use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::clock::Clock;
use crate::console::usage::UsageCounter;
use crate::key_cache::KeyCache;
use crate::rate_limit::RateLimits;
use crate::store::{SessionRecord, Store};
use crate::trust::SignerTrust;
use crate::webhook::worker::{DeliveryPolicy, Worker, WorkerError};
use crate::webhook::WebhookEvent;
use error::ApiError;

/// The path prefix of the app routes (no API key; the `requestId` is the capability):
/// they are limited per client address, and `serve` gives only their requests the
/// peer address.
pub const APP_ROUTES_PREFIX: &str = "/v1/sign-requests/";

/// Largest request body (500 documents or 500 signatures fit comfortably).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares: one `Arc`, so the per-request clones axum makes for
/// the middleware and the handlers cost one reference count each.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Per-key rate limits.
    pub limits: Arc<RateLimits>,
    /// API keys and whitelists, revalidated against the database on every request.
    pub keys: Arc<KeyCache>,
    /// Wakes the callback worker when a handler commits an event.
    pub webhook_wake: Arc<Notify>,
    /// Trust anchors and revocation sources that signers are validated against.
    pub trust: Arc<SignerTrust>,
    /// Requests per key and minute, for the Admin Console's usage chart.
    pub usage: Arc<UsageCounter>,
}

impl AppState {
    /// State over `store` with `clock` and no trust anchors: results of live keys are
    /// refused (`SS_SIGNER_UNTRUSTED`), those of test keys complete marked untrusted.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self::with_trust(store, clock, Arc::new(SignerTrust::none()))
    }

    /// State over `store` with `clock`, validating signers against `trust`; rate limits
    /// in the store's default scope ([`RateLimits::default_scope`]: shared by every
    /// instance on PostgreSQL, in process on SQLite).
    pub fn with_trust(store: Store, clock: Arc<dyn Clock>, trust: Arc<SignerTrust>) -> Self {
        let limits = RateLimits::with_scope(&store, clock.clone(), RateLimits::default_scope(&store))
            .unwrap_or_else(|err| {
                // Not reached: the default scope is shared only on PostgreSQL, whose pool
                // is always at hand.
                tracing::error!(error = %err, "shared rate limits unavailable; counting in this process only");
                RateLimits::new(clock.clone())
            });
        Self::with_limits(store, clock, trust, limits)
    }

    /// State over `store` with `clock`, validating signers against `trust`, counting
    /// requests with `limits`.
    pub fn with_limits(
        store: Store,
        clock: Arc<dyn Clock>,
        trust: Arc<SignerTrust>,
        limits: RateLimits,
    ) -> Self {
        Self(Arc::new(Shared {
            limits: Arc::new(limits),
            keys: Arc::new(KeyCache::new(store.clone())),
            webhook_wake: Arc::new(Notify::new()),
            usage: Arc::default(),
            trust,
            store,
            clock,
        }))
    }
}

/// Starts the callback [`Worker`] for `state` (same store, clock and wake-ups) on the
/// current Tokio runtime; it stops when `shutdown` completes.
pub fn spawn_webhook_worker(
    state: &AppState,
    policy: DeliveryPolicy,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, WorkerError> {
    let worker = Worker::new(
        state.store.clone(),
        state.clock.clone(),
        policy,
        state.webhook_wake.clone(),
    )?;
    Ok(tokio::spawn(worker.run(shutdown)))
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Router switches.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Adds `POST /v1/bench/trivial`, a handler doing no work, and `POST
    /// /v1/bench/parse`, which only parses a validate body, for the benchmark.
    pub bench_routes: bool,
    /// Requests per minute per client address on the app routes (`/v1/sign-requests/…`,
    /// which no API key limits); 0: no limit. Default
    /// [`client_limits::DEFAULT_APP_RPM_PER_ADDRESS`].
    pub app_rpm_per_address: u32,
    /// The `/.well-known/` files for the app's verified links (default: none, both
    /// answer 404).
    pub app_links: Arc<well_known::AppLinks>,
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self {
            bench_routes: false,
            app_rpm_per_address: client_limits::DEFAULT_APP_RPM_PER_ADDRESS,
            app_links: Arc::default(),
        }
    }
}

/// A session's state as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Waiting for the signer.
    Pending,
    /// Signed and verified.
    Completed,
    /// The signer cancelled.
    Cancelled,
    /// Timed out while pending.
    Expired,
}

impl SessionState {
    /// The state of `session` at `now` (a pending session past `expires_at` is expired;
    /// completed and cancelled ones keep their state).
    pub fn of(session: &SessionRecord, now: i64) -> Self {
        match session.status.as_str() {
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ if now >= session.expires_at => Self::Expired,
            _ => Self::Pending,
        }
    }
}

/// `GET /healthz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn bench_trivial() -> Json<serde_json::Value> {
    Json(serde_json::json!({"success": true}))
}

/// The trivial answer after reading and parsing a validate body: in the benchmark it
/// tells how much of validate's cost is reading a request body at all.
async fn bench_parse(body: json::JsonBody) -> Result<Json<serde_json::Value>, ApiError> {
    let _parsed: portal::ValidateRequest<'_> = body.parse()?;
    Ok(Json(serde_json::json!({"success": true})))
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

/// The OpenAPI description, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SecureSign REST API",
        description = "API keys, domain whitelist, signing sessions (raw or detached CMS signatures). \
            Sessions with a `callbackUrl` receive `WebhookEvent` POSTs signed with the tenant's webhook \
            secret: `X-SecureSign-Signature: v1=<hex HMAC-SHA256 of \"<X-SecureSign-Timestamp>.<body>\">` \
            (during the grace period of a secret roll, a second `, v1=<hex>` made with the replaced secret \
            follows: accept the event when any entry matches), deduplicate by `X-SecureSign-Event-Id`."
    ),
    paths(
        portal::validate,
        portal::create_session,
        portal::session_status,
        sign_request::get_sign_request,
        sign_request::submit_result,
        sign_request::cancel,
        well_known::assetlinks,
        well_known::apple_app_site_association,
        healthz,
        openapi_json,
    ),
    components(schemas(WebhookEvent)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKeyHeader",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-SecureSign-Api-Key"))),
        );
    }
}

/// The whole API.
pub fn router(state: AppState, options: RouterOptions) -> Router {
    // Each portal route is one service: authentication around the handler (see
    // `auth::Authenticated`).
    let portal = Router::new()
        .route(
            "/v1/auth/validate",
            post_service(auth::Authenticated::new(state.clone(), portal::validate)),
        )
        .route(
            "/v1/auth/session",
            post_service(auth::Authenticated::new(
                state.clone(),
                portal::create_session,
            )),
        )
        .route(
            "/v1/auth/session/{session_id}",
            get_service(auth::Authenticated::new(
                state.clone(),
                portal::session_status,
            )),
        );
    let mut app = Router::new()
        .route(
            "/v1/sign-requests/{request_id}",
            get(sign_request::get_sign_request),
        )
        .route(
            "/v1/sign-requests/{request_id}/result",
            // Reads its body itself, after the lookup, capped by the request's documents.
            post(sign_request::submit_result),
        )
        .route(
            "/v1/sign-requests/{request_id}/cancel",
            post(sign_request::cancel),
        );
    if let Some(limit) =
        client_limits::ClientRateLimit::new(options.app_rpm_per_address, state.clock.clone())
    {
        app = app.route_layer(axum::middleware::from_fn_with_state(
            Arc::new(limit),
            client_limits::limit_per_address,
        ));
    }
    let mut router = Router::new()
        .merge(portal)
        .merge(app)
        .merge(well_known::routes(options.app_links))
        .merge(crate::console::routes(&state))
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi_json));
    if options.bench_routes {
        router = router
            .route("/v1/bench/trivial", post(bench_trivial))
            .route("/v1/bench/parse", post(bench_parse));
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            // Spans name the route template, never the raw path: request ids are
            // capabilities and stay out of logs, as do all headers (API keys).
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!("request", method = %req.method(), route = %route)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Serves `router` on `listener` with the default [`connections::ServeOptions`] until
/// `shutdown` completes (see [`connections::serve_with`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve_with(
        listener,
        router,
        connections::ServeOptions::default(),
        shutdown,
    )
    .await
}
