//! The Admin Console: server-rendered pages at `/admin/` for a tenant's own admins.
//!
//! * Pages are askama templates (`server/templates/console/`), checked at compile time
//!   and HTML-escaped; one stylesheet (`server/static/console.css`), no script, no
//!   remote content; every answer carries a strict Content-Security-Policy
//!   ([`security_headers`]). Everything works without JavaScript: forms post, links get.
//! * Sign-in ([`accounts`]): accounts made by `securesign-server admin create`,
//!   Argon2id hashes, a lock per account after repeated failures, and a per-client
//!   limit on sign-in attempts ([`LOGIN_ATTEMPTS_PER_MINUTE`]).
//! * Sessions ([`login_sessions`]): a random cookie (`HttpOnly`, `SameSite=Strict`,
//!   `Secure` unless the console is reached on a loopback host), stored hashed, with a
//!   CSRF token that every form carries; idle and absolute expiry.
//! * Scope: everything a page reads or changes is the signed-in admin's tenant's;
//!   another tenant's key, event or origin is answered as if it did not exist.
//! * Usage ([`usage`]): requests per minute per key, counted in memory on the request
//!   path and written to `key_usage` off it; drawn as an inline SVG chart.
//!
//! `server/ADMIN_CONSOLE.md` describes the pages and which error resolution points to
//! which page.

pub mod accounts;
pub mod login_sessions;
mod pages;
pub mod tenant_data;
pub mod usage;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::client_limits::ClientRateLimit;
use crate::http::AppState;

/// Where the console lives.
pub const PREFIX: &str = "/admin";
/// The sign-in form's path (its requests carry the client's address: the per-client
/// limit on sign-in attempts).
pub const LOGIN_PATH: &str = "/admin/login";
/// Sign-in attempts per minute from one client address (IPv6: per /64).
pub const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 10;
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ss_console";
/// The sign-in form's CSRF cookie (before there is a session).
pub const LOGIN_COOKIE: &str = "ss_console_login";

/// The policy every console answer carries: only this server's stylesheet, no script,
/// no frames, forms only to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console's handlers share besides [`AppState`].
pub(crate) struct Console {
    login_limit: ClientRateLimit,
}

/// The console's routes, under [`PREFIX`].
pub fn routes(state: &AppState) -> Router<AppState> {
    let console = Arc::new(Console {
        login_limit: ClientRateLimit::new(LOGIN_ATTEMPTS_PER_MINUTE, state.clock.clone())
            .unwrap_or_else(|| unreachable!("the limit is not zero")),
    });
    Router::new()
        .route("/admin", get(pages::home))
        .route("/admin/", get(pages::home))
        .route(LOGIN_PATH, get(pages::login_form).post(pages::login))
        .route("/admin/logout", post(pages::logout))
        .route("/admin/keys", get(pages::keys).post(pages::create_key))
        .route("/admin/keys/{key_id}/revoke", post(pages::revoke_key))
        .route("/admin/keys/{key_id}/roll", post(pages::roll_key))
        .route(
            "/admin/origins",
            get(pages::origins).post(pages::add_origin),
        )
        .route("/admin/origins/remove", post(pages::remove_origin))
        .route("/admin/sessions", get(pages::sessions))
        .route("/admin/callbacks", get(pages::callbacks))
        .route(
            "/admin/callbacks/{event_id}/redeliver",
            post(pages::redeliver),
        )
        .route("/admin/usage", get(pages::usage))
        .route("/admin/static/console.css", get(stylesheet))
        .layer(axum::Extension(console))
        .layer(axum::middleware::from_fn(cross_site_posts))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/console.css"),
    )
        .into_response()
}

/// Adds the console's headers: CSP, no framing, no sniffing, no referrer to other sites, and no
/// caching of pages (they show keys and sessions).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/admin/static/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it browsers post forms with `Origin: null`, which
    // [`cross_site_posts`] refuses; `same-origin` still tells other sites nothing.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_static {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Refuses a POST that a browser says comes from another site (`Sec-Fetch-Site`) or
/// whose `Origin` is not this host: a second line behind the CSRF tokens and
/// `SameSite=Strict`.
async fn cross_site_posts(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !same_origin(req.headers()) {
        return (StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response();
    }
    next.run(req).await
}

fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// Whether the request's host is a loopback name (then the cookies are not `Secure`:
/// a browser keeps no `Secure` cookie from plain http on 127.0.0.1).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(name, _)| name)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `Set-Cookie` value for `name=value` on the console's path (`max_age` 0: delete).
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if loopback_host(headers) {
        ""
    } else {
        "; Secure"
    };
    let age = max_age.map_or(String::new(), |secs| format!("; Max-Age={secs}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={PREFIX}; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ss_console_invalid=1"))
}

/// The value of cookie `name` in the request, if any.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn cookies_are_secure_except_on_loopback_hosts() {
        for loopback in ["127.0.0.1:8080", "localhost", "[::1]:80", "127.1.2.3"] {
            assert!(loopback_host(&host(loopback)), "{loopback}");
            let cookie = set_cookie(&host(loopback), "a", "b", None);
            assert!(!cookie.to_str().unwrap().contains("Secure"));
        }
        for public in [
            "console.example.in",
            "10.0.0.1:8080",
            "localhost.example.in",
        ] {
            assert!(!loopback_host(&host(public)), "{public}");
            let cookie = set_cookie(&host(public), "a", "b", None);
            assert_eq!(
                cookie.to_str().unwrap(),
                "a=b; Path=/admin; HttpOnly; SameSite=Strict; Secure"
            );
        }
    }

    #[test]
    fn posts_from_other_origins_are_told_apart() {
        let mut headers = host("127.0.0.1:8080");
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        let mut headers = host("127.0.0.1:8080");
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }
}
