//! The lab against kryoptic, through cryptoki. Needs
//! `tests/lab/build-kryoptic.sh`; without it every test fails saying so.

mod common;

use std::process::Command;

use common::*;
use cryptoki::error::RvError;
use cryptoki::session::UserType;
use securesign_testlab::Module;

const MODULE: Module = Module::Kryoptic;

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

/// For keys imported by `pkcs11-tool`, kryoptic (default `ec_point_encoding`)
/// returns CKA_EC_POINT DER-wrapped like SoftHSM2: OCTET STRING (04 41)
/// around the uncompressed point (04 || X || Y).
#[test]
fn ec_point_is_der_octet_string() {
    let point = ec_point(MODULE);
    assert_eq!(point.len(), 67);
    assert_eq!(&point[..3], &[0x04, 0x41, 0x04]);
}

/// Wrong user PINs on kryoptic (10 allowed):
/// failures 1..=6 -> no flag; 7, 8 -> COUNT_LOW; 9 -> FINAL_TRY;
/// 10 -> LOCKED, and that 10th attempt already returns CKR_PIN_LOCKED.
/// Afterwards even the correct PIN gets CKR_PIN_LOCKED.
#[test]
fn wrong_pins_raise_count_low_then_final_try_then_locked() {
    let tok = fresh(MODULE);
    let opened = open(&tok);
    let session = opened
        .pkcs11
        .open_ro_session(opened.slot)
        .expect("C_OpenSession");
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, false),
        "fresh token"
    );

    let mut observed = Vec::new();
    for failures in 1..=10 {
        let result = session.login(UserType::User, Some(&pin("00000000")));
        let flags = user_pin_flags(&opened);
        println!(
            "after {failures} wrong PINs: {result:?}; (COUNT_LOW, FINAL_TRY, LOCKED) = {flags:?}"
        );
        let expected_rv = if failures < 10 {
            RvError::PinIncorrect
        } else {
            RvError::PinLocked
        };
        assert!(
            is_rv(&result, expected_rv),
            "failure {failures}: {result:?}"
        );
        observed.push(flags);
    }
    let none = (false, false, false);
    let count_low = (true, false, false);
    let expected = [
        none,
        none,
        none,
        none,
        none,
        none,
        count_low,
        count_low,
        (false, true, false),
        (false, false, true),
    ];
    assert_eq!(observed, expected);

    let correct = session.login(UserType::User, Some(&pin(tok.user_pin())));
    assert!(
        is_rv(&correct, RvError::PinLocked),
        "locked token refuses the right PIN too: {correct:?}"
    );
}

/// A successful login resets the failure counter (and clears COUNT_LOW).
#[test]
fn successful_login_resets_the_failure_counter() {
    let tok = fresh(MODULE);
    let opened = open(&tok);
    let session = opened
        .pkcs11
        .open_ro_session(opened.slot)
        .expect("C_OpenSession");
    for _ in 0..8 {
        let _ = session.login(UserType::User, Some(&pin("00000000")));
    }
    assert_eq!(
        user_pin_flags(&opened),
        (true, false, false),
        "8 failures -> COUNT_LOW"
    );
    session
        .login(UserType::User, Some(&pin(tok.user_pin())))
        .expect("correct PIN before the lock");
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, false),
        "counter reset"
    );
    session.logout().expect("C_Logout");
    for _ in 0..6 {
        let _ = session.login(UserType::User, Some(&pin("00000000")));
    }
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, false),
        "6 fresh failures stay below COUNT_LOW"
    );
}

/// The lock is persisted in the token storage (another process sees it).
/// SO login + `C_InitPIN` unblocks it, with one quirk: in the process that
/// ran `C_InitPIN`, `C_GetTokenInfo` keeps reporting `CKF_USER_PIN_LOCKED`
/// until the next user `C_Login` attempt (a fresh process does not see it);
/// the old PIN then gets `CKR_PIN_INCORRECT`, not `CKR_PIN_LOCKED`, and the
/// new PIN logs in and clears the flags.
#[test]
fn lock_persists_and_so_init_pin_unblocks() {
    let tok = fresh(MODULE);
    let opened = open(&tok);
    let session = opened
        .pkcs11
        .open_rw_session(opened.slot)
        .expect("C_OpenSession");
    for _ in 0..10 {
        let _ = session.login(UserType::User, Some(&pin("00000000")));
    }
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, true),
        "locked after 10 failures"
    );
    assert!(
        token_flags_in_another_process(&tok).contains("user PIN locked"),
        "another process sees the lock"
    );

    session
        .login(UserType::So, Some(&pin(tok.so_pin())))
        .expect("SO login works while the user PIN is locked");
    session.init_pin(&pin("87654321")).expect("C_InitPIN as SO");
    session.logout().expect("C_Logout");
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, true),
        "stale LOCKED flag in this process"
    );
    let elsewhere = token_flags_in_another_process(&tok);
    assert!(
        !elsewhere.contains("user PIN locked"),
        "a fresh process sees the unblocked token:\n{elsewhere}"
    );

    let old = session.login(UserType::User, Some(&pin(tok.user_pin())));
    assert!(
        is_rv(&old, RvError::PinIncorrect),
        "the old PIN is gone, the lock too: {old:?}"
    );
    session
        .login(UserType::User, Some(&pin("87654321")))
        .expect("the new PIN logs in");
    assert_eq!(
        user_pin_flags(&opened),
        (false, false, false),
        "flags clear after the good login"
    );
}

/// The token flags line as `pkcs11-tool` prints it from a separate process
/// that gets the token through `LabToken::env` (as CLI tests will).
fn token_flags_in_another_process(tok: &securesign_testlab::LabToken) -> String {
    let output = Command::new("pkcs11-tool")
        .envs(tok.env())
        .arg("--module")
        .arg(tok.module_path())
        .arg("--list-token-slots")
        .output()
        .expect("run pkcs11-tool");
    assert!(
        output.status.success(),
        "pkcs11-tool --list-token-slots: {output:?}"
    );
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    let flags = listing.lines().find(|line| line.contains("token flags"));
    flags
        .unwrap_or_else(|| panic!("no token flags in:\n{listing}"))
        .to_owned()
}
