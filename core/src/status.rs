//! PIN status values of the spec and an honest indication of the tries left.

use serde::{Deserialize, Serialize};

/// How many PIN (or PUK) tries are left, as precisely as the backend can tell.
///
/// PKCS#11 only reports flags (`CKF_USER_PIN_COUNT_LOW`, `…_FINAL_TRY`, `…_LOCKED`);
/// a smart-card application such as PIV reports the exact count. We never invent a
/// number the token did not give us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    /// Coarse indicator, always present.
    pub indicator: RetryIndicator,
    /// Exact number of tries left, only when the backend reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u8>,
}

/// Coarse retry indicator derived from what the token reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryIndicator {
    /// The backend gave an exact count (see [`Retries::remaining`]).
    Exact,
    /// The token says the count is low (at least one failure happened), count unknown.
    Low,
    /// One more failure blocks the token.
    FinalTry,
    /// The token is blocked; no try left.
    Locked,
    /// The token does not say.
    Unknown,
}

impl Retries {
    /// An exact count of tries left, as PIV's `63Cx` reports it.
    pub fn exact(remaining: u8) -> Self {
        let indicator = match remaining {
            0 => RetryIndicator::Locked,
            _ => RetryIndicator::Exact,
        };
        Self {
            indicator,
            remaining: Some(remaining),
        }
    }

    /// A flag-only indication (PKCS#11).
    pub fn flagged(indicator: RetryIndicator) -> Self {
        let remaining = match indicator {
            RetryIndicator::FinalTry => Some(1),
            RetryIndicator::Locked => Some(0),
            _ => None,
        };
        Self {
            indicator,
            remaining,
        }
    }

    /// True when the next failure blocks the token.
    pub fn is_final_try(&self) -> bool {
        self.indicator == RetryIndicator::FinalTry || self.remaining == Some(1)
    }

    /// True when no try is left.
    pub fn is_locked(&self) -> bool {
        self.indicator == RetryIndicator::Locked || self.remaining == Some(0)
    }
}

/// The spec's PIN status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PinStatus {
    /// PIN usable (or just accepted); signing allowed after verification.
    Active,
    /// The last attempt was wrong; tries remain.
    Invalid,
    /// Max retries exceeded; PUK unlock required.
    Blocked,
    /// PIN verified; a session is cached for batch signing.
    SessionActive,
}

impl PinStatus {
    /// The spec's spelling, e.g. `SESSION_ACTIVE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Invalid => "INVALID",
            Self::Blocked => "BLOCKED",
            Self::SessionActive => "SESSION_ACTIVE",
        }
    }
}

/// What a status check reports: never obtained by logging in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinState {
    /// The spec's status value.
    pub status: PinStatus,
    /// Tries left for the user PIN.
    pub retries: Retries,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counts_map_to_indicators() {
        assert_eq!(Retries::exact(0).indicator, RetryIndicator::Locked);
        assert!(Retries::exact(0).is_locked());
        assert!(Retries::exact(1).is_final_try());
        assert!(!Retries::exact(2).is_final_try());
    }

    #[test]
    fn flags_never_invent_a_count() {
        assert_eq!(Retries::flagged(RetryIndicator::Low).remaining, None);
        assert_eq!(Retries::flagged(RetryIndicator::Unknown).remaining, None);
        assert_eq!(
            Retries::flagged(RetryIndicator::FinalTry).remaining,
            Some(1)
        );
    }

    #[test]
    fn status_serializes_as_spec_spelling() {
        let json = serde_json::to_string(&PinStatus::SessionActive).unwrap();
        assert_eq!(json, "\"SESSION_ACTIVE\"");
        let retries = serde_json::to_value(Retries::flagged(RetryIndicator::FinalTry)).unwrap();
        assert_eq!(retries["indicator"], "final_try");
        assert_eq!(retries["remaining"], 1);
    }
}
