//! Requests per minute per API key, for the console's usage chart.
//!
//! Counting stays off the request path's critical work: each key's counters are two
//! atomics held in the key's cache entry ([`KeyUsage`], found once per entry through
//! [`UsageCounter::handle`]), so a request costs two relaxed additions and no lock. A
//! flusher ([`spawn_flusher`], every [`FLUSH_EVERY`]) drains them into the `key_usage`
//! table, adding to the row of the minute it drains in (so a request may be counted up
//! to one flush interval late, in the next minute). The console flushes this process's
//! counts before it reads. The rows are additive, so several server processes on one
//! database add up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sqlx::FromRow;

use crate::clock::Clock;
use crate::store::{with_pool, Store, StoreError};

/// How often the flusher drains the counters.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Minutes the chart shows.
pub const CHART_MINUTES: i64 = 60;
/// Rows older than this many minutes are deleted by the flusher.
pub const KEEP_MINUTES: i64 = 7 * 24 * 60;

/// One key's counts since the last flush.
#[derive(Debug, Default)]
pub struct KeyUsage {
    requests: AtomicU64,
    limited: AtomicU64,
}

impl KeyUsage {
    /// Counts one authenticated request (`limited`: answered 429).
    pub fn record(&self, limited: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if limited {
            self.limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take(&self) -> (u64, u64) {
        // The limited count is taken first: a request counted between the two swaps
        // adds to `requests` only, never a 429 without its request.
        let limited = self.limited.swap(0, Ordering::Relaxed);
        let requests = self.requests.swap(0, Ordering::Relaxed);
        (requests.max(limited), limited)
    }
}

/// Every key's [`KeyUsage`] in this process.
#[derive(Debug, Default)]
pub struct UsageCounter {
    keys: Mutex<HashMap<String, Arc<KeyUsage>>>,
}

impl UsageCounter {
    /// The counters of `key_id` (kept by the key's cache entry, so looked up once).
    pub fn handle(&self, key_id: &str) -> Arc<KeyUsage> {
        let mut keys = self.keys.lock();
        if let Some(usage) = keys.get(key_id) {
            return usage.clone();
        }
        let usage = Arc::new(KeyUsage::default());
        keys.insert(key_id.to_owned(), usage.clone());
        usage
    }

    /// Adds the counts since the last flush to the current minute's rows.
    pub async fn flush(&self, store: &Store, clock: &dyn Clock) -> Result<(), StoreError> {
        let drained: Vec<(String, u64, u64)> = {
            let keys = self.keys.lock();
            keys.iter()
                .map(|(id, usage)| {
                    let (requests, limited) = usage.take();
                    (id.clone(), requests, limited)
                })
                .filter(|(_, requests, _)| *requests > 0)
                .collect()
        };
        if drained.is_empty() {
            return Ok(());
        }
        let minute = clock.now_unix().div_euclid(60);
        let result = add(store, minute, &drained).await;
        if result.is_err() {
            // Not lost: put back for the next flush.
            let keys = self.keys.lock();
            for (id, requests, limited) in &drained {
                if let Some(usage) = keys.get(id) {
                    usage.requests.fetch_add(*requests, Ordering::Relaxed);
                    usage.limited.fetch_add(*limited, Ordering::Relaxed);
                }
            }
        }
        result
    }
}

async fn add(store: &Store, minute: i64, rows: &[(String, u64, u64)]) -> Result<(), StoreError> {
    with_pool!(store.pool()?, |p| {
        let mut tx = p.begin().await?;
        for (key_id, requests, limited) in rows {
            sqlx::query(
                "INSERT INTO key_usage (key_id, minute, requests, limited) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key_id, minute) DO UPDATE SET \
                 requests = key_usage.requests + excluded.requests, \
                 limited = key_usage.limited + excluded.limited",
            )
            .bind(key_id)
            .bind(minute)
            .bind(i64::try_from(*requests).unwrap_or(i64::MAX))
            .bind(i64::try_from(*limited).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Flushes `counter` every [`FLUSH_EVERY`] (and once more when `shutdown` completes),
/// deleting rows older than [`KEEP_MINUTES`] now and then.
pub fn spawn_flusher(
    store: Store,
    clock: Arc<dyn Clock>,
    counter: Arc<UsageCounter>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = 0_u64;
        loop {
            let stop = tokio::select! {
                () = tokio::time::sleep(FLUSH_EVERY) => false,
                () = &mut shutdown => true,
            };
            if let Err(err) = counter.flush(&store, clock.as_ref()).await {
                tracing::warn!(%err, "usage counts not written yet");
            }
            ticks += 1;
            if ticks % 720 == 1 {
                let oldest = clock.now_unix().div_euclid(60) - KEEP_MINUTES;
                if let Err(err) = prune(&store, oldest).await {
                    tracing::warn!(%err, "old usage rows not deleted");
                }
            }
            if stop {
                break;
            }
        }
    })
}

async fn prune(store: &Store, oldest_minute: i64) -> Result<(), StoreError> {
    with_pool!(store.pool()?, |p| sqlx::query(
        "DELETE FROM key_usage WHERE minute < $1"
    )
    .bind(oldest_minute)
    .execute(&p)
    .await?
    .rows_affected());
    Ok(())
}

/// One key's count in one minute.
#[derive(Debug, Clone, FromRow)]
pub struct UsageRow {
    /// `key_…`.
    pub key_id: String,
    /// Unix seconds / 60.
    pub minute: i64,
    /// Authenticated requests (429s included).
    pub requests: i64,
    /// Of which answered 429.
    pub limited: i64,
}

/// The tenant's rows from `since_minute` on.
pub async fn tenant_usage(
    store: &Store,
    tenant_id: &str,
    since_minute: i64,
) -> Result<Vec<UsageRow>, StoreError> {
    Ok(with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT u.key_id, u.minute, u.requests, u.limited FROM key_usage u \
         JOIN api_keys k ON k.id = u.key_id WHERE k.tenant_id = $1 AND u.minute >= $2 \
         ORDER BY u.key_id, u.minute",
    )
    .bind(tenant_id)
    .bind(since_minute)
    .fetch_all(&p)
    .await?))
}

/// The last minute (Unix seconds / 60) each of the tenant's keys was used in.
pub async fn last_used(store: &Store, tenant_id: &str) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, Option<i64>)> = with_pool!(store.pool()?, |p| sqlx::query_as(
        "SELECT u.key_id, MAX(u.minute) FROM key_usage u JOIN api_keys k ON k.id = u.key_id \
         WHERE k.tenant_id = $1 GROUP BY u.key_id",
    )
    .bind(tenant_id)
    .fetch_all(&p)
    .await?);
    Ok(rows
        .into_iter()
        .filter_map(|(id, minute)| minute.map(|m| (id, m)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_shared_per_key_and_taking_empties_them() {
        let counter = UsageCounter::default();
        let a = counter.handle("key_a");
        a.record(false);
        counter.handle("key_a").record(true);
        counter.handle("key_b").record(false);
        assert_eq!(a.take(), (2, 1));
        assert_eq!(a.take(), (0, 0));
        assert_eq!(counter.handle("key_b").take(), (1, 0));
    }
}
