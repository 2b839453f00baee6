//! The per-key limit shared by every instance on one PostgreSQL database: one atomic
//! GCRA step per request in the database (`rate_limit_take`, migration
//! `migrations-postgres/20251202000000_shared_rate_limits.sql`), so a key of `rpm`
//! requests per minute gets `rpm` in total, however many instances answer it.
//!
//! Cost: one round trip per counted request (an `UNLOGGED` row update: no WAL flush).
//! One thing is answered without it, exactly: a refusal. After the database refused a
//! request, no request can pass before `TAT + I - W` (TAT only ever moves forward,
//! whoever moves it), so until then this instance refuses on its own; a key hammering
//! past its limit costs the database nothing more.
//!
//! Time is the server's clock (so tests can move it); instances are expected to keep
//! their clocks in step (NTP). A skew of `d` between two instances can at most let a
//! request through `d` earlier or later than a single clock would.

use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::postgres::PgPool;

use super::Decision;
use crate::store::StoreError;

/// One key's shared limit.
pub(crate) struct SharedLimit {
    pool: PgPool,
    key_id: String,
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
    pub(crate) fn new(pool: PgPool, key_id: &str, rpm: u32) -> Self {
        let rpm = rpm.max(1);
        let interval_us = (MINUTE_US / i64::from(rpm)).max(1);
        Self {
            pool,
            key_id: key_id.to_owned(),
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

    /// Counts one request at `now_us` in the database.
    pub(crate) async fn take(&self, now_us: i64) -> Result<Decision, StoreError> {
        let (allowed, tat_us): (bool, i64) =
            sqlx::query_as("SELECT allowed, tat_after_us FROM rate_limit_take($1, $2, $3, $4)")
                .bind(&self.key_id)
                .bind(now_us)
                .bind(self.interval_us)
                .bind(self.window_us)
                .fetch_one(&self.pool)
                .await?;
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
        SharedLimit::new(pool, "key_a", rpm)
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
