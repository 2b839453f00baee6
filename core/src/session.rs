//! The cached PIN session as a plain state machine (sans-IO).
//!
//! It never reads a clock: every event carries the instant it happened, and the driver
//! asks [`PinSession::deadline`] when to wake up next. Tests therefore advance time by
//! passing later instants, without sleeping.

use std::time::{Duration, Instant};

use crate::error::SessionEndReason;

/// How long a verified PIN stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Log out after this long without activity (spec default: 15 minutes).
    pub idle_timeout: Duration,
    /// Log out this long after the PIN was verified, whatever the activity.
    pub max_lifetime: Duration,
}

impl SessionPolicy {
    /// The spec's default idle timeout.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    /// Our default absolute lifetime of one PIN session.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

    /// A policy with the given idle timeout and the default lifetime (never shorter than the idle timeout).
    pub fn with_idle_timeout(idle_timeout: Duration) -> Self {
        Self {
            idle_timeout,
            max_lifetime: Self::DEFAULT_MAX_LIFETIME.max(idle_timeout),
        }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self::with_idle_timeout(Self::DEFAULT_IDLE_TIMEOUT)
    }
}

/// State of the cached PIN session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// No verified PIN.
    LoggedOut {
        /// Why the last session ended, if there was one.
        last_end: Option<SessionEndReason>,
    },
    /// PIN verified; signing allowed without re-entry.
    Active {
        /// When the PIN was verified.
        started: Instant,
        /// Last signing or other token activity.
        last_activity: Instant,
    },
}

/// The cached PIN session: events in, decisions out.
#[derive(Debug, Clone)]
pub struct PinSession {
    policy: SessionPolicy,
    state: SessionState,
}

impl PinSession {
    /// A logged-out session with the given policy.
    pub fn new(policy: SessionPolicy) -> Self {
        Self {
            policy,
            state: SessionState::LoggedOut { last_end: None },
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Changes the policy; an active session is re-judged at the next event.
    pub fn set_policy(&mut self, policy: SessionPolicy) {
        self.policy = policy;
    }

    /// Current state.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The PIN was verified at `now`.
    pub fn verified(&mut self, now: Instant) {
        self.state = SessionState::Active {
            started: now,
            last_activity: now,
        };
    }

    /// The instant the session ends unless there is activity first; `None` when logged out.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            SessionState::LoggedOut { .. } => None,
            SessionState::Active {
                started,
                last_activity,
            } => Some(
                (last_activity + self.policy.idle_timeout).min(started + self.policy.max_lifetime),
            ),
        }
    }

    /// Time left before auto logout, for a countdown banner.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline().map(|d| d.saturating_duration_since(now))
    }

    /// Checks whether the session has run out by `now`; if so, ends it and says why.
    ///
    /// The driver calls this when its timer fires; operations call it before using the
    /// session. Returns `Some(reason)` exactly once per ended session.
    pub fn poll(&mut self, now: Instant) -> Option<SessionEndReason> {
        let SessionState::Active {
            started,
            last_activity,
        } = self.state
        else {
            return None;
        };
        let reason = if now >= started + self.policy.max_lifetime {
            SessionEndReason::Expired
        } else if now >= last_activity + self.policy.idle_timeout {
            SessionEndReason::Idle
        } else {
            return None;
        };
        self.end(reason);
        Some(reason)
    }

    /// Whether a verified PIN may be used at `now` (ends the session if it ran out).
    pub fn is_active(&mut self, now: Instant) -> bool {
        self.poll(now);
        matches!(self.state, SessionState::Active { .. })
    }

    /// Records activity at `now`, pushing the idle deadline back. Returns the end reason
    /// instead if the session had already run out (activity never revives it).
    pub fn touch(&mut self, now: Instant) -> Result<(), Option<SessionEndReason>> {
        if let Some(reason) = self.poll(now) {
            return Err(Some(reason));
        }
        match &mut self.state {
            SessionState::Active { last_activity, .. } => {
                *last_activity = now.max(*last_activity);
                Ok(())
            }
            SessionState::LoggedOut { .. } => Err(None),
        }
    }

    /// Ends an active session for `reason`; returns `false` when there was none.
    pub fn end(&mut self, reason: SessionEndReason) -> bool {
        let was_active = matches!(self.state, SessionState::Active { .. });
        if was_active {
            self.state = SessionState::LoggedOut {
                last_end: Some(reason),
            };
        }
        was_active
    }

    /// Why the last session ended, when logged out.
    pub fn last_end(&self) -> Option<SessionEndReason> {
        match self.state {
            SessionState::LoggedOut { last_end } => last_end,
            SessionState::Active { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn session() -> (PinSession, Instant) {
        let policy = SessionPolicy {
            idle_timeout: 15 * MIN,
            max_lifetime: 60 * MIN,
        };
        (PinSession::new(policy), Instant::now())
    }

    #[test]
    fn default_idle_timeout_is_fifteen_minutes() {
        assert_eq!(SessionPolicy::default().idle_timeout, 15 * MIN);
        assert!(SessionPolicy::default().max_lifetime >= 15 * MIN);
    }

    #[test]
    fn starts_logged_out_with_no_deadline() {
        let (mut s, t0) = session();
        assert_eq!(s.deadline(), None);
        assert!(!s.is_active(t0));
        assert_eq!(s.touch(t0), Err(None));
    }

    #[test]
    fn idle_timeout_ends_the_session_once() {
        let (mut s, t0) = session();
        s.verified(t0);
        assert_eq!(s.deadline(), Some(t0 + 15 * MIN));
        assert_eq!(s.poll(t0 + 15 * MIN - Duration::from_millis(1)), None);
        assert_eq!(s.poll(t0 + 15 * MIN), Some(SessionEndReason::Idle));
        assert_eq!(s.poll(t0 + 16 * MIN), None, "reported once");
        assert_eq!(s.last_end(), Some(SessionEndReason::Idle));
    }

    #[test]
    fn activity_pushes_the_idle_deadline() {
        let (mut s, t0) = session();
        s.verified(t0);
        assert_eq!(s.touch(t0 + 10 * MIN), Ok(()));
        assert_eq!(s.deadline(), Some(t0 + 25 * MIN));
        assert!(s.is_active(t0 + 24 * MIN));
        assert!(!s.is_active(t0 + 25 * MIN));
    }

    #[test]
    fn activity_after_the_deadline_does_not_revive() {
        let (mut s, t0) = session();
        s.verified(t0);
        assert_eq!(s.touch(t0 + 20 * MIN), Err(Some(SessionEndReason::Idle)));
        assert!(!s.is_active(t0 + 20 * MIN));
    }

    #[test]
    fn max_lifetime_wins_over_activity() {
        let (mut s, t0) = session();
        s.verified(t0);
        for k in 1..=5 {
            assert_eq!(s.touch(t0 + 10 * k * MIN), Ok(()));
        }
        assert_eq!(s.deadline(), Some(t0 + 60 * MIN));
        assert_eq!(s.poll(t0 + 60 * MIN), Some(SessionEndReason::Expired));
    }

    #[test]
    fn explicit_end_and_removal_are_recorded() {
        let (mut s, t0) = session();
        s.verified(t0);
        assert!(s.end(SessionEndReason::Explicit));
        assert!(!s.end(SessionEndReason::Explicit), "nothing to end");
        assert_eq!(s.last_end(), Some(SessionEndReason::Explicit));
        s.verified(t0);
        assert!(s.end(SessionEndReason::Removed));
        assert_eq!(s.last_end(), Some(SessionEndReason::Removed));
    }

    #[test]
    fn remaining_counts_down() {
        let (mut s, t0) = session();
        assert_eq!(s.remaining(t0), None);
        s.verified(t0);
        assert_eq!(s.remaining(t0 + 5 * MIN), Some(10 * MIN));
        assert_eq!(s.remaining(t0 + 20 * MIN), Some(Duration::ZERO));
    }

    #[test]
    fn shorter_policy_applies_to_the_running_session() {
        let (mut s, t0) = session();
        s.verified(t0);
        s.set_policy(SessionPolicy::with_idle_timeout(MIN));
        assert_eq!(s.poll(t0 + MIN), Some(SessionEndReason::Idle));
    }
}
