//! What the console reads and changes beyond the admin operations, always within one
//! tenant: every statement names the tenant, so another tenant's row is never found.

use sqlx::FromRow;

use crate::store::{with_pool, Store, StoreError};

/// Sessions shown per page.
pub const SESSIONS_SHOWN: i64 = 200;
/// Callback events shown per page.
pub const EVENTS_SHOWN: i64 = 200;

/// A session row as the sessions page shows it.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    /// `sess_…`.
    pub id: String,
    /// Key that created it.
    pub key_id: String,
    /// `live` / `test`.
    pub key_mode: String,
    /// The portal origin.
    pub origin: String,
    /// `pending`, `completed` or `cancelled` as stored (expiry is derived).
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    /// Base64 DER, once completed.
    pub signer_certificate: Option<String>,
    /// `raw` / `cms`.
    pub signature_format: String,
    /// Documents in the request.
    pub documents: i64,
    /// The first document's name (alphabetically).
    pub first_document: Option<String>,
}

/// Which sessions to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// All.
    Any,
    /// Pending and unexpired.
    Pending,
    /// Completed.
    Completed,
    /// Cancelled.
    Cancelled,
    /// Pending past their expiry.
    Expired,
}

impl StatusFilter {
    /// From the page's `status` parameter (anything else: all).
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            Some("pending") => Self::Pending,
            Some("completed") => Self::Completed,
            Some("cancelled") => Self::Cancelled,
            Some("expired") => Self::Expired,
            _ => Self::Any,
        }
    }

    /// The parameter's value ("" for all).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "",
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// The tenant's latest sessions matching `filter` at `now`.
pub async fn sessions(
    store: &Store,
    tenant_id: &str,
    filter: StatusFilter,
    now: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    // $3: the stored status wanted (NULL: any); $4: 1 = unexpired only, 2 = expired only.
    let (status, expiry): (Option<&str>, i64) = match filter {
        StatusFilter::Any => (None, 0),
        StatusFilter::Pending => (Some("pending"), 1),
        StatusFilter::Completed => (Some("completed"), 0),
        StatusFilter::Cancelled => (Some("cancelled"), 0),
        StatusFilter::Expired => (Some("pending"), 2),
    };
    Ok(with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT s.id, s.key_id, s.key_mode, s.origin, s.status, s.created_at, s.expires_at, \
         s.finished_at, s.signer_certificate, s.signature_format, \
         (SELECT COUNT(*) FROM session_documents d WHERE d.session_id = s.id) AS documents, \
         (SELECT MIN(d.name) FROM session_documents d WHERE d.session_id = s.id) AS first_document \
         FROM sessions s WHERE s.tenant_id = $1 \
         AND ($3 IS NULL OR s.status = $3) \
         AND ($4 = 0 OR ($4 = 1 AND s.expires_at > $2) OR ($4 = 2 AND s.expires_at <= $2)) \
         ORDER BY s.created_at DESC, s.id LIMIT $5",
    )
    .bind(tenant_id)
    .bind(now)
    .bind(status)
    .bind(expiry)
    .bind(SESSIONS_SHOWN)
    .fetch_all(&p)
    .await?))
}

/// A callback event as the callbacks page shows it.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    /// `evt_…`.
    pub id: String,
    /// The session it reports.
    pub session_id: String,
    /// `session.completed` / `session.cancelled`.
    pub event_type: String,
    /// `pending`, `delivering`, `delivered`, `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// HTTP status of the last answer.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the next attempt (while pending).
    pub next_attempt_at: i64,
    /// Unix ms.
    pub delivered_at: Option<i64>,
}

/// The tenant's latest callback events.
pub async fn events(store: &Store, tenant_id: &str) -> Result<Vec<EventRow>, StoreError> {
    Ok(with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT id, session_id, event_type, status, attempts, last_status, last_error, \
         created_at, next_attempt_at, delivered_at FROM webhook_events WHERE tenant_id = $1 \
         ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(tenant_id)
    .bind(EVENTS_SHOWN)
    .fetch_all(&p)
    .await?))
}

/// Queues a failed or delivered event of the tenant for delivery again at `now_ms`
/// (its attempts start over); returns whether it was (false: no such event of this
/// tenant, or it is still pending or being delivered).
pub async fn redeliver(
    store: &Store,
    tenant_id: &str,
    event_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let done = with_pool!(store.pool()?, |p| sqlx::query(
        "UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = $3, \
         lease_until = NULL, delivered_at = NULL \
         WHERE id = $1 AND tenant_id = $2 AND status IN ('failed', 'delivered')",
    )
    .bind(event_id)
    .bind(tenant_id)
    .bind(now_ms)
    .execute(&p)
    .await?
    .rows_affected());
    Ok(done == 1)
}
