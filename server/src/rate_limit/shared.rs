//! The per-key limit shared by every instance on one PostgreSQL database: one atomic
//! GCRA step per request in the database (`rate_limit_take`, migration
//! `migrations-postgres/20251202000000_shared_rate_limits.sql`), so a key of `rpm`
//! requests per minute gets `rpm` in total, however many instances answer it.
//!
//! Cost: one database step per counted request (an `UNLOGGED` row update: no WAL
//! flush), but not one round trip each: the steps of one process go through a
//! [`Batcher`], which sends whatever queued while its previous batches were in the
//! database as one `rate_limit_take_many` call (at most [`MAX_IN_FLIGHT`] calls at once,
//! [`MAX_BATCH`] steps each). Idle, a request waits one round trip; under load the
//! round trip and the per-statement cost are shared by the batch. Each step is still
//! its own atomic GCRA step, in arrival order per key: exactness does not depend on
//! batching.
//!
//! One thing is answered without the database, exactly: a refusal. After the database
//! refused a request, no request can pass before `TAT + I - W` (TAT only ever moves
//! forward, whoever moves it), so until then this instance refuses on its own; a key
//! hammering past its limit costs the database nothing more.
//!
//! Time is the server's clock (so tests can move it); instances are expected to keep
//! their clocks in step (NTP). A skew of `d` between two instances can at most let a
//! request through `d` earlier or later than a single clock would.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::Decision;
use crate::store::StoreError;

/// Most steps in one database call.
pub const MAX_BATCH: usize = 256;
/// Most database calls of one process's batcher at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// One GCRA step waiting for its batch.
struct Step {
    key_id: Arc<str>,
    now_us: i64,
    interval_us: i64,
    window_us: i64,
    reply: oneshot::Sender<Result<(bool, i64), String>>,
}

/// Sends the steps of every key of this process to the database in batches (one task,
/// started on first use inside the runtime).
pub(crate) struct Batcher {
    pool: PgPool,
    queue: OnceLock<mpsc::UnboundedSender<Step>>,
}

impl Batcher {
    /// A batcher over `pool`.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: OnceLock::new(),
        }
    }

    fn queue(&self) -> &mpsc::UnboundedSender<Step> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_batches(self.pool.clone(), rx));
            tx
        })
    }
}

/// Takes whatever queued (up to [`MAX_BATCH`]) as soon as a call slot is free.
async fn run_batches(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Step>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(step) => batch.push(step),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            take_many(&pool, batch).await;
            drop(slot);
        });
    }
}

/// One `rate_limit_take_many` call for `batch`; answers every step.
async fn take_many(pool: &PgPool, mut batch: Vec<Step>) {
    // One lock order for every batch (no deadlock between concurrent calls); a stable
    // sort keeps one key's steps in arrival order.
    batch.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let keys: Vec<&str> = batch.iter().map(|s| &*s.key_id).collect();
    let nows: Vec<i64> = batch.iter().map(|s| s.now_us).collect();
    let intervals: Vec<i64> = batch.iter().map(|s| s.interval_us).collect();
    let windows: Vec<i64> = batch.iter().map(|s| s.window_us).collect();
    let rows: Result<Vec<(i32, bool, i64)>, sqlx::Error> = sqlx::query_as(
        "SELECT idx, allowed, tat_after_us FROM rate_limit_take_many($1, $2, $3, $4)",
    )
    .bind(&keys)
    .bind(&nows)
    .bind(&intervals)
    .bind(&windows)
    .fetch_all(pool)
    .await;
    let mut answers: Vec<Option<(bool, i64)>> = vec![None; batch.len()];
    let failure = match rows {
        Ok(rows) => {
            for (idx, allowed, tat) in rows {
                let at = usize::try_from(idx).ok().and_then(|i| i.checked_sub(1));
                if let Some(slot) = at.and_then(|i| answers.get_mut(i)) {
                    *slot = Some((allowed, tat));
                }
            }
            "the database answered no row for this step".to_owned()
        }
        Err(err) => err.to_string(),
    };
    for (step, answer) in batch.into_iter().zip(answers) {
        let _ = step.reply.send(answer.ok_or_else(|| failure.clone()));
    }
}

/// One key's shared limit.
pub(crate) struct SharedLimit {
    batcher: Arc<Batcher>,
    key_id: Arc<str>,
    rpm: u32,
    /// Emission interval: 60 s / rpm, in microseconds (at least 1).
    interval_us: i64,
    /// Burst window: `interval_us * rpm` (so a burst is exactly `rpm` requests).
    window_us: i64,
    /// Until when (µs since the epoch) every request is refused without asking the
    /// database: the earliest time the last refusal's TAT lets one through.
    refused_until_us: AtomicI64,
}

const MINUTE_US: i64 = 60_000_000;

impl SharedLimit {
    /// The limit of `rpm` (at least 1) requests per minute for `key_id`.
    pub(crate) fn new(batcher: Arc<Batcher>, key_id: &str, rpm: u32) -> Self {
        let rpm = rpm.max(1);
        let interval_us = (MINUTE_US / i64::from(rpm)).max(1);
        Self {
            batcher,
            key_id: Arc::from(key_id),
            rpm,
            interval_us,
            window_us: interval_us * i64::from(rpm),
            refused_until_us: AtomicI64::new(i64::MIN),
        }
    }

    /// The answer at `now_us` without the database, when there is one: a refusal
    /// while the last refusal still holds.
    pub(crate) fn refused_locally(&self, now_us: i64) -> Option<Decision> {
        let until = self.refused_until_us.load(Ordering::Acquire);
        (now_us < until).then(|| Decision::Limited {
            limit: self.rpm,
            retry_after_secs: ceil_secs_us(until - now_us).max(1),
        })
    }

    /// Counts one request at `now_us` in the database (in the process's next batch).
    pub(crate) async fn take(&self, now_us: i64) -> Result<Decision, StoreError> {
        let (reply, answer) = oneshot::channel();
        let step = Step {
            key_id: Arc::clone(&self.key_id),
            now_us,
            interval_us: self.interval_us,
            window_us: self.window_us,
            reply,
        };
        let outcome = match self.batcher.queue().send(step) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err("the rate-limit batcher stopped".to_owned())),
            Err(_) => Err("the rate-limit batcher stopped".to_owned()),
        };
        let (allowed, tat_us) =
            outcome.map_err(|message| StoreError::Database(sqlx::Error::Protocol(message)))?;
        Ok(self.decision(allowed, tat_us, now_us))
    }

    /// The [`Decision`] for the database's answer.
    fn decision(&self, allowed: bool, tat_us: i64, now_us: i64) -> Decision {
        let ahead = tat_us.saturating_sub(now_us).max(0);
        if allowed {
            let free = self.window_us.saturating_sub(ahead).max(0);
            Decision::Allowed {
                limit: self.rpm,
                remaining: u32::try_from(free / self.interval_us).unwrap_or(u32::MAX),
                reset_secs: ceil_secs_us(ahead),
            }
        } else {
            let until = tat_us
                .saturating_add(self.interval_us)
                .saturating_sub(self.window_us);
            self.refused_until_us.fetch_max(until, Ordering::AcqRel);
            Decision::Limited {
                limit: self.rpm,
                retry_after_secs: ceil_secs_us(until.saturating_sub(now_us)).max(1),
            }
        }
    }
}

/// Whole seconds, rounded up, of `us` microseconds (0 for none or less).
fn ceil_secs_us(us: i64) -> u64 {
    u64::try_from(us).map_or(0, |us| us.div_ceil(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rpm: u32) -> SharedLimit {
        // A lazy pool never connects: these tests only do the arithmetic.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap_or_else(|e| panic!("{e}"));
        SharedLimit::new(Arc::new(Batcher::new(pool)), "key_a", rpm)
    }

    #[tokio::test]
    async fn answers_read_like_the_in_process_limiter() {
        let l = limit(120);
        assert_eq!(l.interval_us, 500_000);
        assert_eq!(l.window_us, MINUTE_US);
        // First request of a full bucket: TAT = now + I.
        assert_eq!(
            l.decision(true, 1_000_000 + 500_000, 1_000_000),
            Decision::Allowed {
                limit: 120,
                remaining: 119,
                reset_secs: 1
            }
        );
        // Refused with TAT = now + W: the next one passes after I.
        assert_eq!(
            l.decision(false, 1_000_000 + MINUTE_US, 1_000_000),
            Decision::Limited {
                limit: 120,
                retry_after_secs: 1
            }
        );
        assert!(l.refused_locally(1_000_000 + 499_999).is_some());
        assert!(l.refused_locally(1_000_000 + 500_000).is_none());
    }

    #[tokio::test]
    async fn a_burst_is_exactly_rpm_even_when_a_minute_does_not_divide() {
        for rpm in [1, 7, 120, 9_999, 1_000_000] {
            let l = limit(rpm);
            assert_eq!(l.window_us / l.interval_us, i64::from(rpm), "rpm {rpm}");
        }
    }
}
