//! PIN retries, blocking and unblocking against kryoptic, a real PKCS#11 module that locks
//! (after 10 failures: COUNT_LOW from the 7th, FINAL_TRY at the 9th, LOCKED at the 10th).

mod common;

use common::{lab, pin, token};
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{Error, ErrorCode, FinalTry, KeySelector, PinStatus, RetryIndicator};
use securesign_testlab::Module;

const WRONG: &str = "99999999";

fn wrong_attempt(
    t: &mut securesign_core::Token<Box<dyn securesign_core::backend::TokenBackend>>,
    confirm: FinalTry,
) -> Error {
    t.verify_pin(pin(WRONG), confirm, SystemClock.now())
        .expect_err("a wrong PIN must fail")
}

#[test]
fn the_pin_policy_comes_from_the_token() {
    let tok = lab(Module::Kryoptic);
    let mut t = token(&tok, SessionPolicy::default());
    // kryoptic declares a minimum of 8: a 6-digit PIN is refused before the token sees it.
    assert_eq!(t.info().pin_policy.min_len, 8);
    let err = t
        .verify_pin(pin("123456"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFormat);
    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::NotVerified, "no try was spent");
}

#[test]
fn retries_count_down_final_try_needs_confirmation_then_blocked_then_unblocked() {
    let tok = lab(Module::Kryoptic);
    let mut t = token(&tok, SessionPolicy::default());

    for n in 1..=8 {
        let err = wrong_attempt(&mut t, FinalTry::NotConfirmed);
        let Error::PinInvalid { retries } = err else {
            panic!("failure {n}: expected PinInvalid, got {err:?}");
        };
        let expected = if n >= 7 {
            RetryIndicator::Low
        } else {
            RetryIndicator::MoreThanOne
        };
        assert_eq!(retries.indicator, expected, "after {n} failures");
        assert_eq!(retries.remaining, None, "PKCS#11 never gives a count");
    }
    // The 9th failure leaves the final try.
    let err = wrong_attempt(&mut t, FinalTry::NotConfirmed);
    assert_eq!(err.retries().unwrap().indicator, RetryIndicator::FinalTry);
    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::Invalid);
    assert!(state.retries.is_final_try());

    // Without confirmation nothing reaches the token — not even the right PIN.
    for attempt in [WRONG, tok.user_pin()] {
        let err = t
            .verify_pin(pin(attempt), FinalTry::NotConfirmed, SystemClock.now())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PinFinalTry);
    }
    let state = t.status(SystemClock.now()).unwrap();
    assert!(
        state.retries.is_final_try(),
        "still one try left: {state:?}"
    );

    // Confirmed and wrong: blocked.
    let err = wrong_attempt(&mut t, FinalTry::Confirmed);
    assert_eq!(err.code(), ErrorCode::PinBlocked);
    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::Blocked);
    assert!(state.retries.is_locked());
    let err = t
        .verify_pin(pin(tok.user_pin()), FinalTry::Confirmed, SystemClock.now())
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::PinBlocked,
        "the right PIN cannot help"
    );

    // A wrong SO PIN is its own error; the right one unblocks with a new PIN.
    let err = t.unblock_pin(pin("11111111"), pin("13572468")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PukInvalid);
    t.unblock_pin(pin(tok.so_pin()), pin("13572468")).unwrap();

    // The new PIN logs in (kryoptic still reports LOCKED in-process until this login).
    let state = t
        .verify_pin(pin("13572468"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap();
    assert_eq!(state.status, PinStatus::SessionActive);
    let key = t
        .signer(&KeySelector::IdOrLabel("01".into()), SystemClock.wall())
        .unwrap();
    let digest = [Sha256Digest::of(b"after unblock")];
    let out = t.sign_batch(&key, &digest, &SystemClock, &CancelFlag::new(), &mut |_| {});
    assert!(out.is_complete(), "{:?}", out.error);
    verify_digest_signature(tok.rsa_cert_der(), &digest[0].0, &out.signed[0].signature).unwrap();
}

#[test]
fn a_successful_login_resets_the_indication() {
    let tok = lab(Module::Kryoptic);
    let mut t = token(&tok, SessionPolicy::default());
    for _ in 0..7 {
        wrong_attempt(&mut t, FinalTry::NotConfirmed);
    }
    assert_eq!(
        t.status(SystemClock.now()).unwrap().retries.indicator,
        RetryIndicator::Low
    );
    t.verify_pin(
        pin(tok.user_pin()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    t.logout().unwrap();
    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::NotVerified);
    assert_eq!(state.retries.indicator, RetryIndicator::MoreThanOne);
}
