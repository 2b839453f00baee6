//! Signed-in console sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie,
//! stored only as its SHA-256; a CSRF token per session; idle and absolute expiry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::store::{with_pool, Store, StoreError};

/// A session unused for this long is over.
pub const IDLE_SECS: i64 = 30 * 60;
/// A session is over this long after sign-in, used or not.
pub const MAX_LIFETIME_SECS: i64 = 12 * 60 * 60;

/// 256 random bits, base64url (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a cookie value: what the database keeps.
fn id_hash(cookie_value: &str) -> String {
    hex::encode(Sha256::digest(cookie_value.as_bytes()))
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in admin.
#[derive(Debug, Clone, FromRow)]
pub struct SignedIn {
    /// `adm_…`.
    pub account_id: String,
    /// The tenant everything is scoped to.
    pub tenant_id: String,
    /// The tenant's display name.
    pub tenant_name: String,
    /// Since when the tenant is disabled (Unix seconds; `tenant disable`), if it is: its
    /// keys are refused and its sessions expired, which the console says on every page.
    pub tenant_disabled_at: Option<i64>,
    /// The admin's address.
    pub email: String,
    /// The token every form of this session carries.
    pub csrf_token: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    last_seen_at: i64,
}

/// Starts a session for `account_id`; returns the cookie value (shown to nobody else).
pub async fn start(
    store: &Store,
    clock: &dyn Clock,
    account_id: &str,
) -> Result<String, StoreError> {
    let value = random_token();
    let now = clock.now_unix();
    with_pool!(store.pool()?, |p| sqlx::query(
        "INSERT INTO console_sessions (id_hash, account_id, csrf_token, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id_hash(&value))
    .bind(account_id)
    .bind(random_token())
    .bind(now)
    .execute(&p)
    .await?
    .rows_affected());
    Ok(value)
}

/// The session of a cookie value, if it is current; its idle timer restarts. An
/// expired session is deleted.
pub async fn resume(
    store: &Store,
    clock: &dyn Clock,
    cookie_value: &str,
) -> Result<Option<SignedIn>, StoreError> {
    let hash = id_hash(cookie_value);
    let now = clock.now_unix();
    let found: Option<SignedIn> = with_pool!(store.pool()?, |p| {
        sqlx::query_as(
            "SELECT s.account_id, a.tenant_id, t.display_name AS tenant_name, \
         t.disabled_at AS tenant_disabled_at, a.email, s.csrf_token, \
         s.created_at, s.last_seen_at FROM console_sessions s \
         JOIN console_accounts a ON a.id = s.account_id JOIN tenants t ON t.id = a.tenant_id \
         WHERE s.id_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&p)
        .await?
    });
    let Some(session) = found else {
        return Ok(None);
    };
    if now >= session.last_seen_at.saturating_add(IDLE_SECS)
        || now >= session.created_at.saturating_add(MAX_LIFETIME_SECS)
    {
        end(store, cookie_value).await?;
        return Ok(None);
    }
    with_pool!(store.pool()?, |p| sqlx::query(
        "UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1"
    )
    .bind(&hash)
    .bind(now)
    .execute(&p)
    .await?
    .rows_affected());
    Ok(Some(session))
}

/// Ends the session of a cookie value (sign-out).
pub async fn end(store: &Store, cookie_value: &str) -> Result<(), StoreError> {
    with_pool!(store.pool()?, |p| sqlx::query(
        "DELETE FROM console_sessions WHERE id_hash = $1"
    )
    .bind(id_hash(cookie_value))
    .execute(&p)
    .await?
    .rows_affected());
    Ok(())
}
