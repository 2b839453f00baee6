//! What PIV status words mean for PIN operations, in the core's terms.
//!
//! The one rule that matters: only the card's own `63Cx` / `6983` answers are PIN
//! failures. A transport failure or a removed card is [`Error::TokenNotPresent`].

use crate::apdu::StatusWord;
use crate::error::{Error, Result};
use crate::status::{Retries, RetryIndicator};

/// `6982`: security status not satisfied (PIN not verified).
pub(crate) const NOT_VERIFIED: StatusWord = StatusWord(0x6982);
/// `6983`: authentication method blocked.
pub(crate) const BLOCKED: StatusWord = StatusWord(0x6983);
/// `6A82`: file or application not found.
pub(crate) const NOT_FOUND: StatusWord = StatusWord(0x6A82);
/// `6A88`: referenced data (key) not found.
pub(crate) const REFERENCE_NOT_FOUND: StatusWord = StatusWord(0x6A88);
/// `6A80`: incorrect data field.
pub(crate) const WRONG_DATA: StatusWord = StatusWord(0x6A80);
/// `6300`: verification failed, without a count (some cards, for CHANGE REFERENCE DATA).
pub(crate) const VERIFICATION_FAILED: StatusWord = StatusWord(0x6300);

/// Tries left in a `63Cx` answer.
pub(crate) fn tries_left(sw: StatusWord) -> Option<u8> {
    (sw.sw1() == 0x63 && sw.sw2() & 0xF0 == 0xC0).then_some(sw.sw2() & 0x0F)
}

/// Outcome of a user-PIN check (VERIFY, CHANGE REFERENCE DATA). A bare `6300` is a
/// wrong PIN without a count: [`Error::PinInvalid`] with an unknown count, which the
/// backend then reads with an empty VERIFY.
pub(crate) fn pin_result(sw: StatusWord, operation: &str) -> Result<()> {
    match (sw, tries_left(sw)) {
        (StatusWord::OK, _) => Ok(()),
        (_, Some(0)) => Err(Error::PinBlocked),
        (_, Some(n)) => Err(Error::PinInvalid {
            retries: Retries::exact(n),
        }),
        (BLOCKED, _) => Err(Error::PinBlocked),
        (VERIFICATION_FAILED, _) => Err(Error::PinInvalid {
            retries: Retries::flagged(RetryIndicator::Unknown),
        }),
        (WRONG_DATA, _) => Err(Error::PinFormat { min: 6, max: 8 }),
        _ => Err(unexpected(operation, sw)),
    }
}

/// Outcome of RESET RETRY COUNTER (the PUK check).
pub(crate) fn puk_result(sw: StatusWord) -> Result<()> {
    match (sw, tries_left(sw)) {
        (StatusWord::OK, _) => Ok(()),
        (_, Some(0)) => Err(Error::PukBlocked),
        (_, Some(n)) => Err(Error::PukInvalid {
            retries: Retries::exact(n),
        }),
        (BLOCKED, _) => Err(Error::PukBlocked),
        (VERIFICATION_FAILED, _) => Err(Error::PukInvalid {
            retries: Retries::flagged(RetryIndicator::Unknown),
        }),
        (WRONG_DATA, _) => Err(Error::PinFormat { min: 6, max: 8 }),
        _ => Err(unexpected("RESET RETRY COUNTER", sw)),
    }
}

/// A status word the operation does not expect.
pub(crate) fn unexpected(operation: &str, sw: StatusWord) -> Error {
    Error::Token(format!("{operation} answered {sw}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn counter_answers_map_to_exact_retries() {
        for n in 1..=9u8 {
            let err = pin_result(StatusWord(0x63C0 | u16::from(n)), "VERIFY").unwrap_err();
            assert_eq!(err.retries(), Some(Retries::exact(n)));
            assert_eq!(err.code(), ErrorCode::PinInvalid);
        }
        assert_eq!(
            pin_result(StatusWord(0x63C0), "VERIFY").unwrap_err().code(),
            ErrorCode::PinBlocked
        );
        assert_eq!(
            pin_result(BLOCKED, "VERIFY").unwrap_err().code(),
            ErrorCode::PinBlocked
        );
        assert!(pin_result(StatusWord::OK, "VERIFY").is_ok());
        let err = pin_result(VERIFICATION_FAILED, "CHANGE").unwrap_err();
        assert_eq!(err.code(), ErrorCode::PinInvalid);
        assert_eq!(
            err.retries().and_then(|r| r.remaining),
            None,
            "no invented count"
        );
    }

    #[test]
    fn puk_answers_are_puk_errors() {
        let err = puk_result(StatusWord(0x63C2)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PukInvalid);
        assert_eq!(err.retries(), Some(Retries::exact(2)));
        assert_eq!(
            puk_result(StatusWord(0x63C0)).unwrap_err().code(),
            ErrorCode::PukBlocked
        );
        assert_eq!(
            puk_result(BLOCKED).unwrap_err().code(),
            ErrorCode::PukBlocked
        );
    }

    #[test]
    fn other_answers_are_never_pin_failures() {
        for sw in [0x6982u16, 0x6A82, 0x6F00, 0x6D00, 0x6381, 0x6400] {
            let err = pin_result(StatusWord(sw), "VERIFY").unwrap_err();
            assert_eq!(err.code(), ErrorCode::TokenError, "{sw:04X}");
        }
    }
}
