//! The lab against SoftHSM2, through cryptoki.

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::session::UserType;
use securesign_testlab::Module;

const MODULE: Module = Module::SoftHsm2;

#[test]
fn token_is_listed_and_user_login_works() {
    common::token_is_listed_and_user_login_works(MODULE);
}

#[test]
fn keys_and_certs_are_found_by_id() {
    common::keys_and_certs_are_found_by_id(MODULE);
}

#[test]
fn private_keys_need_login() {
    common::private_keys_need_login(MODULE);
}

#[test]
fn rsa_pkcs_signature_verifies() {
    common::rsa_pkcs_signature_verifies(MODULE);
}

#[test]
fn ecdsa_signature_verifies() {
    common::ecdsa_signature_verifies(MODULE);
}

/// SoftHSM2 returns CKA_EC_POINT DER-wrapped: OCTET STRING (04 41) around
/// the uncompressed point (04 || X || Y).
#[test]
fn ec_point_is_der_octet_string() {
    let point = ec_point(MODULE);
    assert_eq!(point.len(), 67);
    assert_eq!(&point[..3], &[0x04, 0x41, 0x04]);
}

/// SoftHSM2 never locks the user PIN: every wrong PIN is CKR_PIN_INCORRECT,
/// it raises CKF_USER_PIN_COUNT_LOW after the first failure (and never
/// FINAL_TRY or LOCKED), and a correct PIN clears it again.
#[test]
fn wrong_pins_never_lock() {
    let tok = fresh(MODULE);
    let opened = open(&tok);
    let session = opened.pkcs11.open_ro_session(opened.slot).unwrap();
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, false),
        "fresh token"
    );

    for failures in 1..=25 {
        let result = session.login(UserType::User, Some(&pin("000000")));
        assert!(
            is_rv(&result, RvError::PinIncorrect),
            "failure {failures}: {result:?}"
        );
        let flags = user_pin_flags(&opened);
        println!("after {failures} wrong PINs: (COUNT_LOW, FINAL_TRY, LOCKED) = {flags:?}");
        assert_eq!(flags, (true, false, false), "after {failures} wrong PINs");
    }
    session
        .login(UserType::User, Some(&pin(tok.user_pin())))
        .expect("correct PIN still works after 25 failures");
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, false),
        "a good login clears COUNT_LOW"
    );
}
