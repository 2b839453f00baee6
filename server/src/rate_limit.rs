//! Per-key request limits (requests per minute), GCRA.
//!
//! Each key gets its own limiter with a burst of `rpm`, refilled evenly over a minute:
//! 120 requests in a burst pass, the 121st within the same minute is refused. Time
//! comes from the server's [`Clock`], so tests can move it.
//!
//! Two scopes ([`Scope`]): in this process's memory (`governor`; SQLite installs, one
//! process), or shared by every instance on a PostgreSQL database ([`shared`]: one
//! atomic step in the database per request), so a key's limit is its total across
//! instances. The same numbers either way.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use governor::clock::Clock as GovernorClock;
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

use crate::clock::Clock;
use crate::store::{Pool, Store, StoreError};

mod shared;

use shared::{Batcher, SharedLimit};

/// Where a key's count is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In this process: each instance counts on its own (exact for one instance).
    PerInstance,
    /// In the PostgreSQL database, shared by every instance on it.
    Shared,
}

/// Why the limits cannot be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// [`Scope::Shared`] needs PostgreSQL.
    #[error("a shared rate limit needs a PostgreSQL database (--database-url)")]
    SharedNeedsPostgres,
    /// The store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adapts our [`Clock`] to governor's clock trait (also used by the per-address limits
/// of `http::client_limits`).
#[derive(Clone)]
pub(crate) struct LimiterClock(pub(crate) Arc<dyn Clock>);

impl GovernorClock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

type KeyLimiter = RateLimiter<NotKeyed, InMemoryState, LimiterClock, StateInformationMiddleware>;

/// The outcome of counting one request against a key's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allowed {
        /// Requests per minute of the key.
        limit: u32,
        /// Requests left in the current burst.
        remaining: u32,
        /// Seconds until the burst is full again.
        reset_secs: u64,
    },
    /// Refused.
    Limited {
        /// Requests per minute of the key.
        limit: u32,
        /// Seconds to wait before the next request can pass (at least 1).
        retry_after_secs: u64,
    },
}

/// The `RateLimit-Limit` and `RateLimit-Policy` values of one limit, formatted once
/// (they are the same on every answer for a key) instead of on every request.
#[derive(Debug, Clone)]
pub struct LimitHeaders {
    limit: u32,
    limit_value: HeaderValue,
    policy_value: HeaderValue,
}

impl LimitHeaders {
    /// The values for `limit` requests per minute.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            limit_value: HeaderValue::from(limit),
            // Digits, `;`, `w`, `=`: always a valid header value.
            policy_value: HeaderValue::from_str(&format!("{limit};w=60"))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        }
    }

    /// Requests per minute these values are for.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// `RateLimit-Limit`.
    pub fn limit_value(&self) -> &HeaderValue {
        &self.limit_value
    }

    /// `RateLimit-Policy` (`<limit>;w=60`).
    pub fn policy_value(&self) -> &HeaderValue {
        &self.policy_value
    }
}

/// One key's limiter, the limit it was built for, and that limit's header values.
///
/// Handed out as an `Arc` that callers may keep (the key cache keeps it with the key), so
/// the hot path counts a request without the map's lock; the map still owns the limiter,
/// so a key read again from the database gets the same one and its count carries on.
pub struct KeyLimit {
    rpm: NonZeroU32,
    counter: Counter,
    clock: LimiterClock,
    headers: LimitHeaders,
}

enum Counter {
    Local(KeyLimiter),
    Shared(SharedLimit),
}

/// A database step that decides a request (see [`Check::Shared`]).
pub type SharedCheck = Pin<Box<dyn Future<Output = Result<Decision, StoreError>> + Send>>;

/// What [`KeyLimit::check`] found.
pub enum Check {
    /// Decided at once (in-process count, or a shared limit's refusal that still holds).
    Now(Decision),
    /// Decided by the shared count in the database: await it.
    Shared(SharedCheck),
}

impl Check {
    /// The decision, awaiting the database if needed.
    pub async fn decision(self) -> Result<Decision, StoreError> {
        match self {
            Self::Now(decision) => Ok(decision),
            Self::Shared(step) => step.await,
        }
    }
}

impl std::fmt::Debug for KeyLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLimit")
            .field("rpm", &self.rpm)
            .finish_non_exhaustive()
    }
}

impl KeyLimit {
    /// Counts one request: decided at once in process, or a step in the database for a
    /// shared limit.
    pub fn check(self: &Arc<Self>) -> Check {
        match &self.counter {
            Counter::Local(limiter) => Check::Now(decide(self.rpm, limiter.check(), &self.clock)),
            Counter::Shared(shared) => {
                let now_us = self.clock.0.now_unix_millis().saturating_mul(1000);
                if let Some(refused) = shared.refused_locally(now_us) {
                    return Check::Now(refused);
                }
                let this = Arc::clone(self);
                Check::Shared(Box::pin(async move {
                    match &this.counter {
                        Counter::Shared(shared) => shared.take(now_us).await,
                        Counter::Local(limiter) => {
                            Ok(decide(this.rpm, limiter.check(), &this.clock))
                        }
                    }
                }))
            }
        }
    }

    /// The `RateLimit-Limit` and `RateLimit-Policy` values.
    pub fn headers(&self) -> &LimitHeaders {
        &self.headers
    }
}

/// All keys' limiters, by key id.
pub struct RateLimits {
    clock: LimiterClock,
    /// The database of shared limits (through this process's batcher); `None`: counted
    /// in this process.
    shared: Option<Arc<Batcher>>,
    limiters: Mutex<HashMap<String, Arc<KeyLimit>>>,
}

impl RateLimits {
    /// In-process limiters driven by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock: LimiterClock(clock),
            shared: None,
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// Limiters of `scope` over `store`, driven by `clock` ([`Scope::Shared`] needs
    /// PostgreSQL).
    pub fn with_scope(
        store: &Store,
        clock: Arc<dyn Clock>,
        scope: Scope,
    ) -> Result<Self, RateLimitError> {
        let mut limits = Self::new(clock);
        if scope == Scope::Shared {
            match store.pool()? {
                Pool::Postgres(pool) => limits.shared = Some(Arc::new(Batcher::new(pool))),
                Pool::Sqlite(_) => return Err(RateLimitError::SharedNeedsPostgres),
            }
        }
        Ok(limits)
    }

    /// The default scope for `store`: shared on PostgreSQL (where several instances may
    /// run), in process on SQLite (one process).
    pub fn default_scope(store: &Store) -> Scope {
        if store.is_postgres() {
            Scope::Shared
        } else {
            Scope::PerInstance
        }
    }

    /// The scope these limits count in.
    pub fn scope(&self) -> Scope {
        if self.shared.is_some() {
            Scope::Shared
        } else {
            Scope::PerInstance
        }
    }

    /// Counts one request for `key_id`, whose limit is `rpm` requests per minute.
    pub async fn check(&self, key_id: &str, rpm: u32) -> Result<Decision, StoreError> {
        self.limit(key_id, rpm).check().decision().await
    }

    /// The key's limiter (a new, full one when the key is new or its rpm changed; an
    /// rpm of 0 counts as 1). Looks up by `&str`, so a known key costs no allocation.
    pub fn limit(&self, key_id: &str, rpm: u32) -> Arc<KeyLimit> {
        let rpm = NonZeroU32::new(rpm).unwrap_or(NonZeroU32::MIN);
        let mut map = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = map.get(key_id) {
            if entry.rpm == rpm {
                return Arc::clone(entry);
            }
        }
        let counter = match &self.shared {
            Some(batcher) => {
                Counter::Shared(SharedLimit::new(Arc::clone(batcher), key_id, rpm.get()))
            }
            None => Counter::Local(
                RateLimiter::direct_with_clock(Quota::per_minute(rpm), self.clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            ),
        };
        let limit = Arc::new(KeyLimit {
            rpm,
            counter,
            clock: self.clock.clone(),
            headers: LimitHeaders::new(rpm.get()),
        });
        map.insert(key_id.to_owned(), Arc::clone(&limit));
        limit
    }
}

/// The [`Decision`] for one check of a `governor` limiter of `rpm` requests per minute
/// (burst `rpm`): shared by the per-key limiters here and the per-address one of
/// `http::client_limits`, so both answer with the same numbers.
pub(crate) fn decide(
    rpm: NonZeroU32,
    outcome: Result<StateSnapshot, NotUntil<Duration>>,
    clock: &LimiterClock,
) -> Decision {
    let rpm = rpm.get();
    match outcome {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            let used = rpm.saturating_sub(remaining);
            let per_request = snapshot.quota().replenish_interval();
            let reset = per_request.saturating_mul(used);
            Decision::Allowed {
                limit: rpm,
                remaining,
                reset_secs: ceil_secs(reset),
            }
        }
        Err(not_until) => Decision::Limited {
            limit: rpm,
            retry_after_secs: ceil_secs(not_until.wait_time_from(clock.now())).max(1),
        },
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn now(check: Check) -> Decision {
        match check {
            Check::Now(decision) => decision,
            Check::Shared(_) => panic!("an in-process limit asked the database"),
        }
    }

    fn check(limits: &RateLimits, key_id: &str, rpm: u32) -> Decision {
        now(limits.limit(key_id, rpm).check())
    }

    #[test]
    fn the_121st_request_in_a_minute_is_refused_and_time_refills() {
        let clock = Arc::new(ManualClock::starting_at(0));
        let limits = RateLimits::new(clock.clone());
        for i in 0..120 {
            assert!(
                matches!(check(&limits, "key_a", 120), Decision::Allowed { .. }),
                "request {i}"
            );
        }
        let Decision::Limited {
            retry_after_secs, ..
        } = check(&limits, "key_a", 120)
        else {
            panic!("121st request passed");
        };
        assert_eq!(retry_after_secs, 1);
        assert!(matches!(
            check(&limits, "key_b", 120),
            Decision::Allowed { .. }
        ));
        clock.advance(Duration::from_secs(60));
        assert!(matches!(
            check(&limits, "key_a", 120),
            Decision::Allowed { remaining: 119, .. }
        ));
    }

    #[test]
    fn limit_headers_hold_the_limit_and_the_policy() {
        let headers = LimitHeaders::new(120);
        assert_eq!(headers.limit(), 120);
        assert_eq!(headers.limit_value(), "120");
        assert_eq!(headers.policy_value(), "120;w=60");
    }

    #[test]
    fn a_kept_limit_counts_with_the_map_and_a_new_rpm_replaces_it() {
        let clock = Arc::new(ManualClock::starting_at(0));
        let limits = RateLimits::new(clock);
        let kept = limits.limit("key_a", 2);
        assert!(matches!(
            now(kept.check()),
            Decision::Allowed { remaining: 1, .. }
        ));
        assert!(matches!(
            check(&limits, "key_a", 2),
            Decision::Allowed { remaining: 0, .. }
        ));
        assert!(matches!(now(kept.check()), Decision::Limited { .. }));
        assert!(Arc::ptr_eq(&kept, &limits.limit("key_a", 2)));
        let changed = limits.limit("key_a", 3);
        assert!(!Arc::ptr_eq(&kept, &changed));
        assert_eq!(changed.headers().policy_value(), "3;w=60");
    }

    #[test]
    fn a_changed_rpm_starts_a_fresh_limiter_and_an_unchanged_one_keeps_counting() {
        let clock = Arc::new(ManualClock::starting_at(0));
        let limits = RateLimits::new(clock);
        for _ in 0..2 {
            assert!(matches!(
                check(&limits, "key_a", 2),
                Decision::Allowed { .. }
            ));
        }
        assert!(matches!(
            check(&limits, "key_a", 2),
            Decision::Limited { .. }
        ));
        assert!(matches!(
            check(&limits, "key_a", 3),
            Decision::Allowed {
                limit: 3,
                remaining: 2,
                ..
            }
        ));
        assert!(matches!(
            check(&limits, "key_a", 3),
            Decision::Allowed { remaining: 1, .. }
        ));
    }
}
