//! The console's handlers and the views their templates render: one module per page,
//! and here what they share (the signed-in admin, errors, formatting).

mod callbacks;
mod keys;
mod origins;
mod sessions;
mod sign_in;
mod usage_chart;

pub(crate) use callbacks::{callbacks, redeliver};
pub(crate) use keys::{create_key, keys, revoke_key, roll_key};
pub(crate) use origins::{add_origin, origins, remove_origin};
pub(crate) use sessions::sessions;
pub(crate) use sign_in::{home, login, login_form, logout};
pub(crate) use usage_chart::usage;

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
            tenant_disabled_since: self.0.tenant_disabled_at.map(when),
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
    /// Set while the tenant is disabled: every page says so.
    tenant_disabled_since: Option<String>,
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

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    title: &'static str,
    message: String,
}
