//! What this process knows of a user PIN's try counter beyond the module's flags.
//!
//! A successful user authentication (login, PIN change, unblock) resets the token's try
//! counter (ISO 7816-4 VERIFY; SP 800-73-4 §3.2.1 for PIV), and by PKCS#11's own words
//! `CKF_USER_PIN_COUNT_LOW` means "a wrong PIN since the last successful authentication".
//! Some modules do not refresh their flags after the success: OpenSC's PIV driver reads
//! the card's counter only while it believes the PIN is not verified (`card-piv.c`,
//! `piv_pin_cmd`, `SC_PIN_CMD_GET_INFO`), and its logout does not end the card's
//! verification, so `C_GetTokenInfo` keeps the FINAL_TRY (or COUNT_LOW) it computed before
//! the success until the card is reset.
//!
//! So right after each success the flags are read once (no try spent). If they still say
//! final try, low or locked, that indication is remembered as stale for the token (slot
//! and serial number) and read as "more than one try left" while the module keeps
//! repeating exactly it. Any change of the module's answer, a wrong PIN, removal or another
//! token in the slot forgets it: from then on the module's flags are trusted again.
//!
//! Not covered: tries spent by another process while the module in this process still
//! shows its old flags (the module itself does not see them either).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::status::RetryIndicator;

/// The indication a module kept repeating after a success, per slot.
#[derive(Debug, Default)]
pub(super) struct CounterResets {
    stale: Mutex<HashMap<u64, StaleFlags>>,
}

/// One token's stale indication.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StaleFlags {
    /// The token's serial number (another token in the slot is another counter).
    serial: String,
    /// What the module reported right after the success.
    indicator: RetryIndicator,
}

impl CounterResets {
    /// A user authentication of the token in `slot` succeeded; `after` is what the module
    /// reported right after it.
    pub(super) fn succeeded(&self, slot: u64, serial: &str, after: RetryIndicator) {
        let mut stale = self.lock();
        if after == RetryIndicator::MoreThanOne {
            stale.remove(&slot);
        } else {
            let flags = StaleFlags {
                serial: serial.to_owned(),
                indicator: after,
            };
            stale.insert(slot, flags);
        }
    }

    /// A wrong PIN, removal or a lost session: the module's flags count from now on.
    pub(super) fn forget(&self, slot: u64) {
        self.lock().remove(&slot);
    }

    /// The tries left in words for `reported` (the module's flags of the token in `slot`):
    /// "more than one" while the module repeats exactly what it kept after a success; any
    /// other answer, or another token in the slot, is trusted and ends the correction.
    pub(super) fn judge(
        &self,
        slot: u64,
        serial: &str,
        reported: RetryIndicator,
    ) -> RetryIndicator {
        let mut stale = self.lock();
        match stale.get(&slot) {
            Some(s) if s.serial == serial && s.indicator == reported => RetryIndicator::MoreThanOne,
            _ => {
                stale.remove(&slot);
                reported
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, StaleFlags>> {
        // A poisoned lock only means another thread panicked mid-update: the map is still a
        // map, and forgetting an entry is always safe.
        self.stale.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetryIndicator::{FinalTry, Locked, Low, MoreThanOne};

    #[test]
    fn a_final_try_repeated_after_a_success_reads_as_more_than_one() {
        let resets = CounterResets::default();
        resets.succeeded(1, "A", FinalTry);
        assert_eq!(resets.judge(1, "A", FinalTry), MoreThanOne);
        assert_eq!(resets.judge(1, "A", FinalTry), MoreThanOne);
        // Other slots are other tokens.
        assert_eq!(resets.judge(2, "A", FinalTry), FinalTry);
    }

    #[test]
    fn clean_flags_after_the_success_leave_nothing_to_correct() {
        let resets = CounterResets::default();
        resets.succeeded(1, "A", MoreThanOne);
        assert_eq!(resets.judge(1, "A", FinalTry), FinalTry);
    }

    #[test]
    fn a_changed_answer_is_trusted_and_ends_the_correction() {
        let resets = CounterResets::default();
        resets.succeeded(1, "A", Low);
        assert_eq!(resets.judge(1, "A", Low), MoreThanOne);
        assert_eq!(resets.judge(1, "A", Locked), Locked);
        assert_eq!(resets.judge(1, "A", Low), Low, "forgotten after the change");
    }

    #[test]
    fn another_token_in_the_slot_is_not_corrected() {
        let resets = CounterResets::default();
        resets.succeeded(1, "A", FinalTry);
        assert_eq!(resets.judge(1, "B", FinalTry), FinalTry);
        assert_eq!(resets.judge(1, "A", FinalTry), FinalTry, "forgotten");
    }

    #[test]
    fn a_failure_or_removal_forgets_the_reset() {
        let resets = CounterResets::default();
        resets.succeeded(1, "A", FinalTry);
        resets.forget(1);
        assert_eq!(resets.judge(1, "A", FinalTry), FinalTry);
    }
}
