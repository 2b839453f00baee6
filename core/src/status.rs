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
///
/// For PKCS#11 the words come from the token flags (PKCS#11 v2.40 §3.2, `CK_TOKEN_INFO`):
/// no `CKF_USER_PIN_FINAL_TRY` and no `CKF_USER_PIN_LOCKED` means a wrong PIN does not
/// block the token, so more than one try is left ([`RetryIndicator::MoreThanOne`]);
/// `CKF_USER_PIN_COUNT_LOW` adds that a wrong PIN was entered since the last success
/// ([`RetryIndicator::Low`], still more than one try).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryIndicator {
    /// The backend gave an exact count (see [`Retries::remaining`]).
    Exact,
    /// More than one try is left: the token sets neither FINAL_TRY nor LOCKED (and no
    /// failure since the last success is flagged).
    MoreThanOne,
    /// The token says the count is low (at least one failure since the last success),
    /// more than one try left, count not given.
    Low,
    /// One more failure blocks the token.
    FinalTry,
    /// The token is blocked; no try left.
    Locked,
    /// The token does not say (e.g. a bare PIV `6300` before the count is read again).
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

/// The spec's PIN status values, with the spec's meanings, and one state the spec lacks.
///
/// | Value | Meaning |
/// |---|---|
/// | `ACTIVE` | PIN accepted; signing allowed (the token reports the PIN verified, or a front end verified it for one run and caches nothing, e.g. the CLI's `pin verify`) |
/// | `INVALID` | Wrong PIN; retries remaining shown (a failure since the last success, tries left) |
/// | `BLOCKED` | Max retries exceeded; PUK unlock required |
/// | `SESSION_ACTIVE` | PIN verified; session cached for batch signing (until idle timeout, logout or removal) |
/// | `NOT_VERIFIED` | not in the spec: the PIN has not been entered (or the session ended) and no failure is counted; signing asks for the PIN |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PinStatus {
    /// PIN accepted; signing allowed (spec).
    Active,
    /// Wrong PIN; retries remaining shown (spec).
    Invalid,
    /// Max retries exceeded; PUK unlock required (spec).
    Blocked,
    /// PIN verified; session cached for batch signing (spec).
    SessionActive,
    /// Not in the spec: no PIN verified now and no failure counted; signing asks for the PIN.
    NotVerified,
}

impl PinStatus {
    /// The spec's spelling, e.g. `SESSION_ACTIVE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Invalid => "INVALID",
            Self::Blocked => "BLOCKED",
            Self::SessionActive => "SESSION_ACTIVE",
            Self::NotVerified => "NOT_VERIFIED",
        }
    }

    /// Every value, for documentation and exhaustive tests.
    pub const ALL: [PinStatus; 5] = [
        Self::Active,
        Self::Invalid,
        Self::Blocked,
        Self::SessionActive,
        Self::NotVerified,
    ];
}

impl PinState {
    /// The state to report when nothing is cached after this verification (a one-shot
    /// front end such as the CLI, whose login ends with the process): `SESSION_ACTIVE`
    /// becomes the spec's `ACTIVE`, "PIN accepted; signing allowed".
    pub fn uncached(self) -> Self {
        match self.status {
            PinStatus::SessionActive => Self {
                status: PinStatus::Active,
                ..self
            },
            _ => self,
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
    fn every_status_serializes_as_its_spelling() {
        for status in PinStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
        }
        let cached = PinState {
            status: PinStatus::SessionActive,
            retries: Retries::flagged(RetryIndicator::MoreThanOne),
        };
        assert_eq!(cached.uncached().status, PinStatus::Active);
        let invalid = PinState {
            status: PinStatus::Invalid,
            ..cached
        };
        assert_eq!(invalid.uncached().status, PinStatus::Invalid);
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
