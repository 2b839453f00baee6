//! Time sources. The server reads time only through [`Clock`], so tests can drive
//! session expiry, key grace periods and rate-limit windows without sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time in whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64 {
        self.now_unix_millis().div_euclid(1000)
    }
    /// Wall-clock time in milliseconds since the Unix epoch (callback schedules).
    fn now_unix_millis(&self) -> i64;
    /// Monotonic time since an arbitrary fixed start; drives the rate limiter.
    fn monotonic(&self) -> Duration;
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_unix_millis(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that only moves when told to: for tests and simulations.
///
/// Wall and monotonic time advance together.
#[derive(Debug)]
pub struct ManualClock {
    unix_millis: AtomicI64,
    monotonic_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock frozen at `unix` seconds since the epoch.
    pub fn starting_at(unix: i64) -> Self {
        Self {
            unix_millis: AtomicI64::new(unix.saturating_mul(1000)),
            monotonic_nanos: AtomicU64::new(0),
        }
    }

    /// Moves both times forward by `by` (wall time with millisecond resolution).
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.unix_millis.fetch_add(millis, Ordering::SeqCst);
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.monotonic_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_millis(&self) -> i64 {
        self.unix_millis.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.monotonic_nanos.load(Ordering::SeqCst))
    }
}

/// Formats Unix seconds as RFC 3339 UTC with a `Z`, e.g. `2026-06-22T11:00:00Z`.
pub fn format_rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_at(1_000);
        assert_eq!(clock.now_unix(), 1_000);
        assert_eq!(clock.monotonic(), Duration::ZERO);
        clock.advance(Duration::from_millis(61_500));
        assert_eq!(clock.now_unix(), 1_061);
        assert_eq!(clock.monotonic(), Duration::from_millis(61_500));
        assert_eq!(clock.now_unix_millis(), 1_061_500);
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.now_unix(), 1_062, "half seconds add up");
    }

    #[test]
    fn rfc3339_is_whole_seconds_with_z() {
        assert_eq!(format_rfc3339(1_782_126_000), "2026-06-22T11:00:00Z");
    }
}
