//! Time as an input: the system clock for the app, a hand-driven clock for tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// Where the core gets "now" from.
pub trait Clock: Send + Sync {
    /// Monotonic time, for timeouts.
    fn now(&self) -> Instant;
    /// Wall-clock time, for certificate validity.
    fn wall(&self) -> OffsetDateTime;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<(Instant, OffsetDateTime)>>);

impl ManualClock {
    /// Starts at the current real time.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new((
            Instant::now(),
            OffsetDateTime::now_utc(),
        ))))
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.times();
        t.0 += by;
        t.1 += by;
    }

    /// The shared times; a panic elsewhere cannot leave them half-updated, so a poisoned
    /// lock is still usable.
    fn times(&self) -> std::sync::MutexGuard<'_, (Instant, OffsetDateTime)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.times().0
    }
    fn wall(&self) -> OffsetDateTime {
        self.times().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = ManualClock::new();
        let other = clock.clone();
        let (t0, w0) = (clock.now(), clock.wall());
        assert_eq!(clock.now(), t0);
        other.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - t0, Duration::from_secs(90));
        assert_eq!((clock.wall() - w0).whole_seconds(), 90);
    }
}
