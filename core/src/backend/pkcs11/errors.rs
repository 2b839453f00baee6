//! Translating PKCS#11 return values into the core's errors.
//!
//! The one rule that matters here: a token that went away, or a driver failure, is never
//! reported as a wrong PIN.

use cryptoki::error::{Error as CkError, RvError};

use crate::error::Error;

/// What a failed PKCS#11 call means for us, before PIN-specific context is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `CKR_PIN_INCORRECT`: the token counted a failed try.
    PinIncorrect,
    /// `CKR_PIN_LOCKED`.
    PinLocked,
    /// `CKR_PIN_LEN_RANGE` / `CKR_PIN_INVALID`: rejected for its form; no try counted.
    PinFormat,
    /// `CKR_USER_ALREADY_LOGGED_IN`.
    AlreadyLoggedIn,
    /// `CKR_USER_NOT_LOGGED_IN`.
    NotLoggedIn,
    /// The token or its session is gone (removed, or the slot vanished).
    NotPresent,
    /// The module does not implement it.
    NotSupported,
    /// Anything else: a token or driver error.
    Other,
}

/// Classifies a cryptoki error.
pub(crate) fn classify(err: &CkError) -> Failure {
    let CkError::Pkcs11(rv, _) = err else {
        return Failure::Other;
    };
    match rv {
        RvError::PinIncorrect => Failure::PinIncorrect,
        RvError::PinLocked => Failure::PinLocked,
        RvError::PinLenRange | RvError::PinInvalid => Failure::PinFormat,
        RvError::UserAlreadyLoggedIn => Failure::AlreadyLoggedIn,
        RvError::UserNotLoggedIn => Failure::NotLoggedIn,
        RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::SlotIdInvalid
        | RvError::SessionHandleInvalid
        | RvError::SessionClosed => Failure::NotPresent,
        RvError::FunctionNotSupported | RvError::MechanismInvalid => Failure::NotSupported,
        _ => Failure::Other,
    }
}

/// The core error for a failure outside PIN handling (reads, signing, sessions).
pub(crate) fn token_error(err: &CkError) -> Error {
    match classify(err) {
        Failure::NotPresent => Error::TokenNotPresent,
        Failure::NotSupported => Error::NotSupported(err.to_string()),
        Failure::NotLoggedIn => Error::PinRequired,
        // A PIN-class code outside a PIN call is a module oddity: report it as a token error.
        _ => Error::Token(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn rv(rv: RvError) -> CkError {
        CkError::Pkcs11(rv, Function::Login)
    }

    #[test]
    fn a_removed_token_is_never_a_wrong_pin() {
        for code in [
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::SessionHandleInvalid,
            RvError::SessionClosed,
        ] {
            assert_eq!(classify(&rv(code)), Failure::NotPresent, "{code:?}");
            assert_eq!(
                token_error(&rv(code)).code(),
                crate::ErrorCode::TokenNotPresent
            );
        }
        for code in [
            RvError::DeviceError,
            RvError::GeneralError,
            RvError::FunctionFailed,
        ] {
            assert_eq!(classify(&rv(code)), Failure::Other, "{code:?}");
            assert_eq!(token_error(&rv(code)).code(), crate::ErrorCode::TokenError);
        }
    }

    #[test]
    fn pin_codes_are_told_apart() {
        assert_eq!(classify(&rv(RvError::PinIncorrect)), Failure::PinIncorrect);
        assert_eq!(classify(&rv(RvError::PinLocked)), Failure::PinLocked);
        assert_eq!(classify(&rv(RvError::PinLenRange)), Failure::PinFormat);
        assert_eq!(
            classify(&rv(RvError::UserAlreadyLoggedIn)),
            Failure::AlreadyLoggedIn
        );
        assert_eq!(classify(&CkError::NotSupported), Failure::Other);
    }
}
