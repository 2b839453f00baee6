//! The outbox table: events written in the same transaction as the session change they
//! report, then claimed, attempted and settled by the delivery worker.
//!
//! Each attempt first *claims* the event (`pending` → `delivering`, attempts + 1, a
//! lease) in one conditional `UPDATE`, so two workers (two server processes on one
//! database) never send the same event at once; it is then *settled* by another
//! conditional `UPDATE` that only matches that very claim. A `delivered` event is never
//! claimed again. A claim whose worker died (crash mid-request) lapses after its lease
//! and the event is retried with the same event id, which receivers use to deduplicate.
//!
//! The statements are the same on SQLite and PostgreSQL except the claim's row lock
//! (see [`claim_next`]).

use sqlx::FromRow;

use crate::store::{with_pool, Store, StoreError};

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The session completed with verified signatures.
    SessionCompleted,
    /// The signer cancelled.
    SessionCancelled,
}

impl EventType {
    /// `session.completed` or `session.cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionCompleted => "session.completed",
            Self::SessionCancelled => "session.cancelled",
        }
    }
}

/// An event to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `evt_…`.
    pub id: String,
    /// The session it reports.
    pub session_id: String,
    /// Whose webhook secret signs it.
    pub tenant_id: String,
    /// What happened.
    pub event_type: EventType,
    /// The session's callback URL.
    pub url: String,
    /// The exact JSON body.
    pub payload: String,
    /// Unix milliseconds; also the first attempt's due time.
    pub created_at_ms: i64,
}

/// An event claimed for one delivery attempt.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedEvent {
    /// `evt_…`.
    pub id: String,
    /// The session it reports.
    pub session_id: String,
    /// Whose secret signs it.
    pub tenant_id: String,
    /// Where to send it.
    pub url: String,
    /// The exact JSON body.
    pub payload: String,
    /// This attempt's number (1 for the first); settling must name it.
    pub attempts: i64,
}

/// One event of a session, as the admin listing shows it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRecord {
    /// `evt_…`.
    pub id: String,
    /// `session.completed` or `session.cancelled`.
    pub event_type: String,
    /// `pending`, `delivering`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Unix ms of the next attempt (meaningful while pending).
    pub next_attempt_at: i64,
    /// HTTP status of the last answer, if there was one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the accepted delivery.
    pub delivered_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// A 2xx answer: never sent again.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// Try again at `next_attempt_at_ms`.
    Retry {
        /// HTTP status, when the receiver answered.
        status: Option<u16>,
        /// Why it failed (no secrets, no URL).
        error: String,
        /// Unix ms.
        next_attempt_at_ms: i64,
    },
    /// Out of attempts: given up.
    Failed {
        /// HTTP status, when the receiver answered.
        status: Option<u16>,
        /// Why it failed.
        error: String,
    },
}

/// Writes an event inside the caller's transaction (the store binds, in order: id,
/// session id, tenant id, event type, URL, payload, creation time in Unix ms).
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO webhook_events (id, session_id, tenant_id, event_type, url, payload, \
     created_at, status, attempts, next_attempt_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7)";

/// The claim: the oldest due event (pending and due, or delivering with a lapsed
/// lease) becomes `delivering`. `{lock}` is empty on SQLite, whose one writer at a time
/// makes the sub-select and the update one step; on PostgreSQL it is
/// `FOR UPDATE SKIP LOCKED`: the sub-select locks the row it picks (re-checking its
/// conditions on the row's latest version), and concurrent claims skip it, so two
/// workers, in one process or several, never claim the same event.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_events SET status = 'delivering', attempts = attempts + 1, \
             lease_until = $1 + $2 \
             WHERE id = (SELECT id FROM webhook_events \
                 WHERE attempts < $3 AND ((status = 'pending' AND next_attempt_at <= $1) \
                    OR (status = 'delivering' AND lease_until <= $1)) \
                 ORDER BY next_attempt_at, id LIMIT 1",
            $lock,
            ") RETURNING id, session_id, tenant_id, url, payload, attempts"
        )
    };
}

/// Claims the oldest due event (pending and due, or delivering with a lapsed lease),
/// if any, for one attempt that holds the claim until `now_ms + lease_ms`.
pub async fn claim_next(
    store: &Store,
    now_ms: i64,
    lease_ms: i64,
    max_attempts: i64,
) -> Result<Option<ClaimedEvent>, StoreError> {
    let pool = store.pool()?;
    let sql = if pool.is_postgres() {
        claim_sql!(" FOR UPDATE SKIP LOCKED")
    } else {
        claim_sql!("")
    };
    Ok(with_pool!(pool, |p| sqlx::query_as(sql)
        .bind(now_ms)
        .bind(lease_ms)
        .bind(max_attempts)
        .fetch_optional(&p)
        .await?))
}

/// Gives up on events that may not be attempted again: a last allowed attempt claimed
/// by a worker that never settled it (the process stopped mid-request), or a pending
/// event that already had `max_attempts` (the limit was lowered since). Returns how many.
pub async fn fail_exhausted(
    store: &Store,
    now_ms: i64,
    max_attempts: i64,
) -> Result<u64, StoreError> {
    let done = with_pool!(store.pool()?, |p| sqlx::query(
        "UPDATE webhook_events SET status = 'failed', lease_until = NULL, \
         last_error = CASE WHEN status = 'delivering' \
             THEN 'the server stopped during the last attempt; no answer was recorded' \
             ELSE last_error END \
         WHERE attempts >= $2 \
           AND (status = 'pending' OR (status = 'delivering' AND lease_until <= $1))",
    )
    .bind(now_ms)
    .bind(max_attempts)
    .execute(&p)
    .await?
    .rows_affected());
    Ok(done)
}

/// Settles the claim `claimed` made. Returns false when the claim was lost (its lease
/// lapsed and another worker took the event over): nothing is written then.
pub async fn settle(
    store: &Store,
    claimed: &ClaimedEvent,
    settlement: &Settlement,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (status, http_status, error, next_at, delivered_at) = match settlement {
        Settlement::Delivered { status } => ("delivered", Some(*status), None, None, Some(now_ms)),
        Settlement::Retry {
            status,
            error,
            next_attempt_at_ms,
        } => (
            "pending",
            *status,
            Some(error.as_str()),
            Some(*next_attempt_at_ms),
            None,
        ),
        Settlement::Failed { status, error } => {
            ("failed", *status, Some(error.as_str()), None, None)
        }
    };
    let done = with_pool!(store.pool()?, |p| sqlx::query(
        "UPDATE webhook_events SET status = $3, lease_until = NULL, last_status = $4, \
         last_error = $5, next_attempt_at = COALESCE($6, next_attempt_at), delivered_at = $7 \
         WHERE id = $1 AND status = 'delivering' AND attempts = $2",
    )
    .bind(&claimed.id)
    .bind(claimed.attempts)
    .bind(status)
    .bind(http_status.map(i64::from))
    .bind(error)
    .bind(next_at)
    .bind(delivered_at)
    .execute(&p)
    .await?
    .rows_affected());
    Ok(done == 1)
}

/// The earliest time (Unix ms) at which an unfinished event needs the worker: a
/// pending event's next attempt, or the end of a delivering event's lease.
pub async fn next_due(store: &Store) -> Result<Option<i64>, StoreError> {
    let row: (Option<i64>,) = with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) \
         FROM webhook_events WHERE status IN ('pending', 'delivering')",
    )
    .fetch_one(&p)
    .await?);
    Ok(row.0)
}

/// A session's events, oldest first.
pub async fn for_session(
    store: &Store,
    session_id: &str,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    Ok(with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT id, event_type, status, attempts, next_attempt_at, last_status, last_error, \
         created_at, delivered_at FROM webhook_events WHERE session_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(session_id)
    .fetch_all(&p)
    .await?))
}

/// The key mode (`live` / `test`) of the key that created the session, and the
/// tenant's whitelisted origins now: what the callback URL is re-checked against.
pub async fn callback_policy(
    store: &Store,
    session_id: &str,
) -> Result<Option<(String, Vec<String>)>, StoreError> {
    let mode: Option<(String,)> = with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT k.mode FROM sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.id = $1",
    )
    .bind(session_id)
    .fetch_optional(&p)
    .await?);
    let Some((mode,)) = mode else {
        return Ok(None);
    };
    let origins: Vec<(String,)> = with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT d.origin FROM domains d JOIN sessions s ON s.tenant_id = d.tenant_id \
         WHERE s.id = $1",
    )
    .bind(session_id)
    .fetch_all(&p)
    .await?);
    Ok(Some((mode, origins.into_iter().map(|(o,)| o).collect())))
}
