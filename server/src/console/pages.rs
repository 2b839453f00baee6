//! The console's handlers and the views their templates render.

use std::net::SocketAddr;
use std::time::Duration;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::accounts::{Accounts, SignIn};
use super::login_sessions::{self, random_token, tokens_match, SignedIn};
use super::tenant_data::{self, StatusFilter};
use super::usage::{self, CHART_MINUTES};
use super::{cookie, set_cookie, Console, LOGIN_COOKIE, SESSION_COOKIE};
use crate::admin::{Admin, AdminError, IssuedKey, DEFAULT_RPM};
use crate::api_key::KeyMode;
use crate::clock::format_rfc3339;
use crate::http::AppState;
use crate::rate_limit::Decision;
use crate::store::{KeyRecord, StoreError};

// ---- errors ----

/// Why a console request failed; answered as a page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Accounts(#[from] super::accounts::AccountError),
    #[error("page rendering failed: {0}")]
    Render(#[from] askama::Error),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::NotFound(what) => (StatusCode::NOT_FOUND, (*what).to_owned()),
            Self::Forbidden(why) => (StatusCode::FORBIDDEN, (*why).to_owned()),
            Self::Admin(AdminError::UnknownKey(_)) => {
                (StatusCode::NOT_FOUND, "No such API key.".to_owned())
            }
            other => {
                tracing::error!(err = %other, "admin console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server could not do this now; try again.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            nav: None,
            title: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}

type PageResult = Result<Response, ConsoleError>;

// ---- the signed-in admin ----

/// The admin a request is signed in as; without one, the request is sent to sign-in.
pub(crate) struct CurrentAdmin(SignedIn);

impl FromRequestParts<AppState> for CurrentAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to(super::LOGIN_PATH).into_response());
        };
        match login_sessions::resume(&state.store, state.clock.as_ref(), value).await {
            Ok(Some(admin)) => Ok(Self(admin)),
            Ok(None) => Err(Redirect::to(super::LOGIN_PATH).into_response()),
            Err(err) => Err(ConsoleError::from(err).into_response()),
        }
    }
}

impl CurrentAdmin {
    fn check_csrf(&self, token: &str) -> Result<(), ConsoleError> {
        if tokens_match(token, &self.0.csrf_token) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "This form has expired or did not come from the console; reload the page.",
            ))
        }
    }

    fn nav(&self, current: &'static str) -> Option<Nav> {
        Some(Nav {
            current,
            email: self.0.email.clone(),
            tenant_name: self.0.tenant_name.clone(),
            tenant_id: self.0.tenant_id.clone(),
            csrf: self.0.csrf_token.clone(),
        })
    }

    fn tenant(&self) -> &str {
        &self.0.tenant_id
    }
}

/// The page header: who is signed in, the pages, sign-out.
pub(crate) struct Nav {
    current: &'static str,
    email: String,
    tenant_name: String,
    tenant_id: String,
    csrf: String,
}

impl Nav {
    fn pages(&self) -> [(&'static str, &'static str, bool); 5] {
        [
            ("/admin/keys", "API keys", self.current == "keys"),
            (
                "/admin/origins",
                "Whitelisted origins",
                self.current == "origins",
            ),
            (
                "/admin/sessions",
                "Signing sessions",
                self.current == "sessions",
            ),
            (
                "/admin/callbacks",
                "Callback deliveries",
                self.current == "callbacks",
            ),
            ("/admin/usage", "Usage", self.current == "usage"),
        ]
    }
}

fn html(page: &impl Template, status: StatusCode) -> PageResult {
    Ok((status, Html(page.render()?)).into_response())
}

fn when(unix: i64) -> String {
    format_rfc3339(unix).replace('T', " ").replace('Z', " UTC")
}

fn when_ms(ms: i64) -> String {
    when(ms.div_euclid(1000))
}

/// A notice after a redirect, from a fixed set (no reflected text).
#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

impl Done {
    fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "revoked" => "The key was revoked: it is refused from now on.",
            "added" => "The origin was added.",
            "removed" => "The origin was removed.",
            "redelivered" => "The event was queued for delivery again.",
            _ => return None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

// ---- sign-in ----

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    title: &'static str,
    message: String,
}

/// `GET /admin`: the keys page (or sign-in).
pub(crate) async fn home() -> Redirect {
    Redirect::to("/admin/keys")
}

fn login_page(
    headers: &HeaderMap,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let csrf = random_token();
    let page = LoginPage {
        nav: None,
        csrf: csrf.clone(),
        email,
        error,
    };
    let mut response = html(&page, status)?;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &csrf, None),
    );
    Ok(response)
}

/// `GET /admin/login`.
pub(crate) async fn login_form(headers: HeaderMap) -> PageResult {
    login_page(&headers, String::new(), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

/// `POST /admin/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(console): Extension<std::sync::Arc<Console>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let password = Zeroizing::new(form.password);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_match(&form.csrf, expected) {
        return Err(ConsoleError::Forbidden(
            "The sign-in form has expired; reload the page and sign in again.",
        ));
    }
    if let Some(Extension(ConnectInfo(peer))) = connect {
        if let Decision::Limited { .. } = console.login_limit.check(peer.ip()) {
            return login_page(
                &headers,
                form.email,
                Some(
                    "Too many sign-in attempts from your address; wait a minute and try again."
                        .to_owned(),
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
    }
    let accounts = Accounts::new(&state.store, state.clock.as_ref());
    match accounts.sign_in(&form.email, password).await? {
        SignIn::Accepted { account_id, .. } => {
            let value =
                login_sessions::start(&state.store, state.clock.as_ref(), &account_id).await?;
            tracing::info!(%account_id, "admin console sign-in");
            let mut response = Redirect::to("/admin/keys").into_response();
            let out = response.headers_mut();
            out.append(
                header::SET_COOKIE,
                set_cookie(&headers, SESSION_COOKIE, &value, None),
            );
            out.append(
                header::SET_COOKIE,
                set_cookie(&headers, LOGIN_COOKIE, "", Some(0)),
            );
            Ok(response)
        }
        SignIn::Refused => login_page(
            &headers,
            form.email,
            Some("Wrong e-mail address or password.".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
        SignIn::Locked { until } => login_page(
            &headers,
            form.email,
            Some(format!(
                "Too many failed sign-ins: this account is locked until {}.",
                when(until)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
    }
}

/// `POST /admin/logout`.
pub(crate) async fn logout(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        login_sessions::end(&state.store, value).await?;
    }
    let mut response = Redirect::to(super::LOGIN_PATH).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", Some(0)),
    );
    Ok(response)
}

// ---- API keys ----

struct KeyView {
    id: String,
    mode: String,
    shown: String,
    rpm: i64,
    created: String,
    last_used: String,
    status: String,
    active: bool,
}

struct NewSecret {
    key_id: String,
    secret: String,
    rolled_from: Option<String>,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    nav: Option<Nav>,
    csrf: String,
    keys: Vec<KeyView>,
    new_secret: Option<NewSecret>,
    notice: Option<&'static str>,
    error: Option<String>,
    default_rpm: u32,
}

fn key_status(key: &KeyRecord, now: i64) -> (String, bool) {
    if let Some(at) = key.revoked_at {
        (format!("revoked {}", when(at)), false)
    } else if let Some(end) = key.expires_at {
        if now < end {
            (format!("rolled; works until {}", when(end)), false)
        } else {
            ("expired".to_owned(), false)
        }
    } else {
        ("active".to_owned(), true)
    }
}

async fn keys_page(
    state: &AppState,
    admin: &CurrentAdmin,
    new_secret: Option<NewSecret>,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let now = state.clock.now_unix();
    let last_used = usage::last_used(&state.store, admin.tenant()).await?;
    let keys = Admin::new(&state.store, state.clock.as_ref())
        .keys(Some(admin.tenant()))
        .await?
        .into_iter()
        .rev()
        .map(|key| {
            let (status, active) = key_status(&key, now);
            KeyView {
                shown: format!("ss_{}_…{}", key.mode, key.last4),
                last_used: last_used
                    .get(&key.id)
                    .map_or_else(|| "never".to_owned(), |minute| when(minute * 60)),
                created: when(key.created_at),
                rpm: key.rpm,
                mode: key.mode,
                id: key.id,
                status,
                active,
            }
        })
        .collect();
    let mut response = html(
        &KeysPage {
            nav: admin.nav("keys"),
            csrf: admin.0.csrf_token.clone(),
            keys,
            new_secret,
            notice,
            error,
            default_rpm: DEFAULT_RPM,
        },
        status,
    )?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /admin/keys`.
pub(crate) async fn keys(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(done): Query<Done>,
) -> PageResult {
    keys_page(&state, &admin, None, done.notice(), None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct CreateKeyForm {
    csrf: String,
    mode: String,
    rpm: String,
}

/// `POST /admin/keys`: a new key, shown once on the answer page.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Form(form): Form<CreateKeyForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let Some(mode) = KeyMode::parse(&form.mode) else {
        return keys_page(
            &state,
            &admin,
            None,
            None,
            Some("Choose live or test.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let rpm = form.rpm.trim().parse::<u32>().unwrap_or(0);
    let created = Admin::new(&state.store, state.clock.as_ref())
        .create_key(admin.tenant(), mode, rpm)
        .await;
    match created {
        Ok(issued) => {
            tracing::info!(key_id = %issued.record.id, tenant = %admin.tenant(), "key created in the admin console");
            keys_page(
                &state,
                &admin,
                Some(shown_once(issued, None)),
                None,
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(AdminError::Invalid(why)) => {
            keys_page(
                &state,
                &admin,
                None,
                None,
                Some(why),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

fn shown_once(issued: IssuedKey, rolled_from: Option<String>) -> NewSecret {
    NewSecret {
        key_id: issued.record.id,
        secret: issued.secret.expose().to_owned(),
        rolled_from,
    }
}

/// The admin's tenant's key `key_id`; another tenant's is "no such key".
async fn own_key(
    state: &AppState,
    admin: &CurrentAdmin,
    key_id: &str,
) -> Result<KeyRecord, ConsoleError> {
    match state.store.key(key_id).await? {
        Some(key) if key.tenant_id == admin.tenant() => Ok(key),
        _ => Err(ConsoleError::NotFound("No such API key.")),
    }
}

/// `POST /admin/keys/{key_id}/revoke`.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Path(key_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let key = own_key(&state, &admin, &key_id).await?;
    match Admin::new(&state.store, state.clock.as_ref())
        .revoke_key(&key.id)
        .await
    {
        Ok(()) => {
            tracing::info!(key_id = %key.id, "key revoked in the admin console");
            Ok(Redirect::to("/admin/keys?done=revoked").into_response())
        }
        Err(AdminError::KeyRevoked(_)) => {
            keys_page(
                &state,
                &admin,
                None,
                None,
                Some("That key was revoked already.".to_owned()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct RollForm {
    csrf: String,
    grace: String,
}

/// The grace periods the roll form offers, in seconds.
const GRACE_CHOICES: [u64; 4] = [0, 3600, 86_400, 7 * 86_400];

/// `POST /admin/keys/{key_id}/roll`: a replacement key, shown once; the old one works
/// for the chosen grace period.
pub(crate) async fn roll_key(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Path(key_id): Path<String>,
    Form(form): Form<RollForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let key = own_key(&state, &admin, &key_id).await?;
    let Some(grace) = form
        .grace
        .parse::<u64>()
        .ok()
        .filter(|g| GRACE_CHOICES.contains(g))
    else {
        return keys_page(
            &state,
            &admin,
            None,
            None,
            Some("Choose a grace period from the list.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if key.revoked_at.is_some() || key.expires_at.is_some() {
        return keys_page(
            &state,
            &admin,
            None,
            None,
            Some("Only an active key can be rolled.".to_owned()),
            StatusCode::CONFLICT,
        )
        .await;
    }
    let issued = Admin::new(&state.store, state.clock.as_ref())
        .roll_key(&key.id, Duration::from_secs(grace))
        .await?;
    tracing::info!(old = %key.id, new = %issued.record.id, grace, "key rolled in the admin console");
    keys_page(
        &state,
        &admin,
        Some(shown_once(issued, Some(key.id))),
        None,
        None,
        StatusCode::CREATED,
    )
    .await
}

// ---- origins ----

struct OriginView {
    origin: String,
    added: String,
}

#[derive(Template)]
#[template(path = "console/origins.html")]
struct OriginsPage {
    nav: Option<Nav>,
    csrf: String,
    origins: Vec<OriginView>,
    notice: Option<&'static str>,
    error: Option<String>,
    value: String,
}

async fn origins_page(
    state: &AppState,
    admin: &CurrentAdmin,
    notice: Option<&'static str>,
    error: Option<String>,
    value: String,
    status: StatusCode,
) -> PageResult {
    let origins = Admin::new(&state.store, state.clock.as_ref())
        .domains(admin.tenant())
        .await?
        .into_iter()
        .map(|d| OriginView {
            added: when(d.created_at),
            origin: d.origin,
        })
        .collect();
    html(
        &OriginsPage {
            nav: admin.nav("origins"),
            csrf: admin.0.csrf_token.clone(),
            origins,
            notice,
            error,
            value,
        },
        status,
    )
}

/// `GET /admin/origins`.
pub(crate) async fn origins(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(done): Query<Done>,
) -> PageResult {
    origins_page(
        &state,
        &admin,
        done.notice(),
        None,
        String::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct OriginForm {
    csrf: String,
    origin: String,
}

/// `POST /admin/origins`: whitelists an origin, validated as the CLI's `domain add`.
pub(crate) async fn add_origin(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Form(form): Form<OriginForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    match Admin::new(&state.store, state.clock.as_ref())
        .add_domain(admin.tenant(), &form.origin)
        .await
    {
        Ok(origin) => {
            tracing::info!(%origin, tenant = %admin.tenant(), "origin added in the admin console");
            Ok(Redirect::to("/admin/origins?done=added").into_response())
        }
        Err(err @ (AdminError::InvalidOrigin(_) | AdminError::UnusableOrigin(_))) => {
            origins_page(
                &state,
                &admin,
                None,
                Some(err.to_string()),
                form.origin,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /admin/origins/remove`.
pub(crate) async fn remove_origin(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Form(form): Form<OriginForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    match Admin::new(&state.store, state.clock.as_ref())
        .remove_domain(admin.tenant(), &form.origin)
        .await
    {
        Ok(true) => Ok(Redirect::to("/admin/origins?done=removed").into_response()),
        Ok(false) | Err(AdminError::InvalidOrigin(_)) => {
            Err(ConsoleError::NotFound("That origin is not whitelisted."))
        }
        Err(err) => Err(err.into()),
    }
}

// ---- signing sessions ----

struct SessionView {
    id: String,
    status: &'static str,
    key_id: String,
    mode: String,
    origin: String,
    format: String,
    documents: i64,
    first_document: String,
    signer: Option<SignerView>,
    created: String,
    expires: String,
    finished: String,
}

struct SignerView {
    name: String,
    issuer: String,
    serial: String,
    thumbprint: String,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    nav: Option<Nav>,
    sessions: Vec<SessionView>,
    filter: &'static str,
    filters: [(&'static str, &'static str); 5],
}

fn signer_view(certificate_b64: &str) -> Option<SignerView> {
    let der = STANDARD.decode(certificate_b64).ok()?;
    let info = securesign_core::cert::CertificateInfo::from_der(&der).ok()?;
    Some(SignerView {
        name: info
            .common_name
            .clone()
            .unwrap_or_else(|| info.subject.clone()),
        issuer: info.issuer,
        serial: info.serial,
        thumbprint: info.sha256_thumbprint,
    })
}

#[derive(Deserialize)]
pub(crate) struct SessionsQuery {
    status: Option<String>,
}

/// `GET /admin/sessions?status=…`.
pub(crate) async fn sessions(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(query): Query<SessionsQuery>,
) -> PageResult {
    let now = state.clock.now_unix();
    let filter = StatusFilter::parse(query.status.as_deref());
    let sessions = tenant_data::sessions(&state.store, admin.tenant(), filter, now)
        .await?
        .into_iter()
        .map(|s| {
            let status = match s.status.as_str() {
                "completed" => "completed",
                "cancelled" => "cancelled",
                _ if now >= s.expires_at => "expired",
                _ => "pending",
            };
            SessionView {
                signer: s.signer_certificate.as_deref().and_then(signer_view),
                status,
                created: when(s.created_at),
                expires: when(s.expires_at),
                finished: s.finished_at.map_or_else(String::new, when),
                first_document: s.first_document.unwrap_or_default(),
                documents: s.documents,
                id: s.id,
                key_id: s.key_id,
                mode: s.key_mode,
                origin: s.origin,
                format: s.signature_format,
            }
        })
        .collect();
    html(
        &SessionsPage {
            nav: admin.nav("sessions"),
            sessions,
            filter: filter.as_str(),
            filters: [
                ("", "All"),
                ("pending", "Pending"),
                ("completed", "Completed"),
                ("cancelled", "Cancelled"),
                ("expired", "Expired"),
            ],
        },
        StatusCode::OK,
    )
}

// ---- callback deliveries ----

struct EventView {
    id: String,
    session_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    last_status: String,
    last_error: String,
    created: String,
    settled: String,
    can_redeliver: bool,
}

#[derive(Template)]
#[template(path = "console/callbacks.html")]
struct CallbacksPage {
    nav: Option<Nav>,
    csrf: String,
    events: Vec<EventView>,
    notice: Option<&'static str>,
}

/// `GET /admin/callbacks`.
pub(crate) async fn callbacks(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Query(done): Query<Done>,
) -> PageResult {
    let events = tenant_data::events(&state.store, admin.tenant())
        .await?
        .into_iter()
        .map(|e| EventView {
            settled: match (e.status.as_str(), e.delivered_at) {
                (_, Some(at)) => format!("delivered {}", when_ms(at)),
                ("pending", None) => format!("next attempt {}", when_ms(e.next_attempt_at)),
                _ => String::new(),
            },
            can_redeliver: matches!(e.status.as_str(), "failed" | "delivered"),
            last_status: e.last_status.map_or_else(String::new, |s| s.to_string()),
            last_error: e.last_error.unwrap_or_default(),
            created: when_ms(e.created_at),
            attempts: e.attempts,
            id: e.id,
            session_id: e.session_id,
            event_type: e.event_type,
            status: e.status,
        })
        .collect();
    html(
        &CallbacksPage {
            nav: admin.nav("callbacks"),
            csrf: admin.0.csrf_token.clone(),
            events,
            notice: done.notice(),
        },
        StatusCode::OK,
    )
}

/// `POST /admin/callbacks/{event_id}/redeliver`.
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    Path(event_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    admin.check_csrf(&form.csrf)?;
    let now_ms = state.clock.now_unix_millis();
    if !tenant_data::redeliver(&state.store, admin.tenant(), &event_id, now_ms).await? {
        return Err(ConsoleError::NotFound(
            "No such event, or it is still being delivered.",
        ));
    }
    state.webhook_wake.notify_one();
    Ok(Redirect::to("/admin/callbacks?done=redelivered").into_response())
}

// ---- usage ----

/// One bar of the chart: a minute's requests, and its 429s drawn over them.
struct Bar {
    x: i64,
    y: i64,
    height: i64,
    limited_y: i64,
    limited_height: i64,
    label: String,
}

struct KeyChart {
    key_id: String,
    shown: String,
    requests: i64,
    limited: i64,
    peak: i64,
    bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "console/usage.html")]
struct UsagePage {
    nav: Option<Nav>,
    charts: Vec<KeyChart>,
    from: String,
    to: String,
}

/// The chart's drawing area (SVG user units).
const CHART_HEIGHT: i64 = 120;
const BAR_WIDTH: i64 = 10;

/// `GET /admin/usage`: requests per minute per key over the last hour, and 429s.
pub(crate) async fn usage(State(state): State<AppState>, admin: CurrentAdmin) -> PageResult {
    state
        .usage
        .flush(&state.store, state.clock.as_ref())
        .await?;
    let now_minute = state.clock.now_unix().div_euclid(60);
    let first = now_minute - CHART_MINUTES + 1;
    let rows = usage::tenant_usage(&state.store, admin.tenant(), first).await?;
    let keys = Admin::new(&state.store, state.clock.as_ref())
        .keys(Some(admin.tenant()))
        .await?;
    let charts = keys
        .iter()
        .rev()
        .filter_map(|key| {
            let mine: Vec<_> = rows.iter().filter(|r| r.key_id == key.id).collect();
            if mine.is_empty() {
                return None;
            }
            let peak = mine.iter().map(|r| r.requests).max().unwrap_or(1).max(1);
            let scale = |n: i64| (n * CHART_HEIGHT + peak - 1) / peak;
            let bars = mine
                .iter()
                .map(|r| {
                    let height = scale(r.requests);
                    let limited_height = scale(r.limited);
                    Bar {
                        x: (r.minute - first) * BAR_WIDTH,
                        y: CHART_HEIGHT - height,
                        height,
                        limited_y: CHART_HEIGHT - limited_height,
                        limited_height,
                        label: format!(
                            "{}: {} requests, {} answered 429",
                            when(r.minute * 60),
                            r.requests,
                            r.limited
                        ),
                    }
                })
                .collect();
            Some(KeyChart {
                key_id: key.id.clone(),
                shown: format!("ss_{}_…{}", key.mode, key.last4),
                requests: mine.iter().map(|r| r.requests).sum(),
                limited: mine.iter().map(|r| r.limited).sum(),
                peak,
                bars,
            })
        })
        .collect();
    html(
        &UsagePage {
            nav: admin.nav("usage"),
            charts,
            from: when(first * 60),
            to: when((now_minute + 1) * 60),
        },
        StatusCode::OK,
    )
}
