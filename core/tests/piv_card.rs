//! The PIV backend and the token policy against a real (virtual) PIV card behind a real
//! pcscd: exact retry counts, blocking, PUK unblock, PIN change, signatures, and pulling
//! the card in the middle of a VERIFY or a batch. One fresh card per test.

mod piv_support;

use std::time::Duration;

use piv_support::{
    backend, card_tries, lab, next_session_end, pin, piv_key, provisioned_lab, sign_all,
    signed_in_worker, token, FreezeBefore,
};
use securesign_core::apdu::pcsc::list_readers;
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{Error, ErrorCode, FinalTry, PinStatus, Retries, SignerKey, Token};
use securesign_testlab::{PivLab, PivSlot, PIV_PIN, PIV_PUK, PIV_READER};

const WRONG: &str = "999999";

fn now() -> std::time::Instant {
    SystemClock.now()
}

fn digests(n: usize) -> Vec<Sha256Digest> {
    (0..n)
        .map(|i| Sha256Digest::of(format!("document {i}").as_bytes()))
        .collect()
}

/// The card behind the core's policy, its PIN session open, and the 9C ("PIN always")
/// signing key.
fn signed_in_9c(lab: &PivLab) -> (Token<Box<dyn TokenBackend>>, SignerKey) {
    let mut t = token(lab);
    t.verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .expect("the lab's PIN");
    let signer = t
        .signer(&piv_key(PivSlot::Sign9C), SystemClock.wall())
        .expect("the 9C key");
    (t, signer)
}

/// Another application changes the PIN (to 24681357) and logs the card out.
fn change_pin_elsewhere(lab: &PivLab) {
    let mut other = backend(lab);
    other
        .change_pin(&pin(PIV_PIN), &pin("24681357"))
        .expect("change the PIN");
    other.logout().expect("log out");
}

#[test]
fn the_reader_is_listed_with_its_card() {
    let lab = lab();
    let readers = list_readers().unwrap();
    let reader = readers
        .iter()
        .find(|r| r.name == PIV_READER)
        .expect("reader");
    assert!(reader.card_present);
    lab.kill_card().unwrap();
    let readers = list_readers().unwrap();
    let reader = readers
        .iter()
        .find(|r| r.name == PIV_READER)
        .expect("reader");
    assert!(!reader.card_present);
}

#[test]
fn status_is_exact_and_checking_it_spends_no_try() {
    let lab = lab();
    let mut t = token(&lab);
    assert!(t.info().exact_retries);
    for _ in 0..5 {
        let state = t.status(now()).unwrap();
        assert_eq!(state.status, PinStatus::NotVerified);
        assert_eq!(state.retries, Retries::exact(3));
    }
    assert_eq!(card_tries(&lab), Some(3));
}

#[test]
fn wrong_pins_count_down_exactly() {
    let lab = lab();
    let mut t = token(&lab);
    let err = t
        .verify_pin(pin(WRONG), FinalTry::NotConfirmed, now())
        .unwrap_err();
    assert!(
        matches!(err, Error::PinInvalid { retries } if retries == Retries::exact(2)),
        "{err:?}"
    );
    assert_eq!(t.status(now()).unwrap().retries, Retries::exact(2));
    let err = t
        .verify_pin(pin(WRONG), FinalTry::NotConfirmed, now())
        .unwrap_err();
    assert_eq!(err.retries(), Some(Retries::exact(1)));
    let state = t.status(now()).unwrap();
    assert_eq!(state.retries, Retries::exact(1));
    assert_eq!(state.status, PinStatus::Invalid);
    assert_eq!(card_tries(&lab), Some(1));
}

#[test]
fn the_final_try_needs_confirmation_and_refusing_spends_nothing() {
    let lab = lab();
    let mut t = token(&lab);
    for _ in 0..2 {
        let _ = t.verify_pin(pin(WRONG), FinalTry::NotConfirmed, now());
    }
    let err = t
        .verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFinalTry);
    assert_eq!(card_tries(&lab), Some(1), "no try was spent");
    let state = t
        .verify_pin(pin(PIV_PIN), FinalTry::Confirmed, now())
        .unwrap();
    assert_eq!(state.status, PinStatus::SessionActive);
    t.logout().unwrap();
    assert_eq!(t.status(now()).unwrap().retries, Retries::exact(3));
}

#[test]
fn three_wrong_pins_block_the_card() {
    let lab = lab();
    let mut t = token(&lab);
    let _ = t.verify_pin(pin(WRONG), FinalTry::NotConfirmed, now());
    let _ = t.verify_pin(pin(WRONG), FinalTry::NotConfirmed, now());
    let err = t
        .verify_pin(pin(WRONG), FinalTry::Confirmed, now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinBlocked);
    let state = t.status(now()).unwrap();
    assert_eq!(state.status, PinStatus::Blocked);
    assert_eq!(state.retries, Retries::exact(0));
    // The right PIN is refused by the policy, and by the card itself (6983).
    let err = t
        .verify_pin(pin(PIV_PIN), FinalTry::Confirmed, now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinBlocked);
    let err = backend(&lab).login(&pin(PIV_PIN)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinBlocked);
}

#[test]
fn puk_unblock_restores_three_tries_and_sets_the_new_pin() {
    let lab = lab();
    let mut t = token(&lab);
    let mut raw = backend(&lab);
    for _ in 0..3 {
        let _ = raw.login(&pin(WRONG));
    }
    assert_eq!(t.status(now()).unwrap().status, PinStatus::Blocked);
    t.unblock_pin(pin(PIV_PUK), pin("246810")).unwrap();
    let state = t.status(now()).unwrap();
    assert_eq!(state.status, PinStatus::NotVerified);
    assert_eq!(state.retries, Retries::exact(3));
    let err = t
        .verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinInvalid, "old PIN refused");
    t.verify_pin(pin("246810"), FinalTry::NotConfirmed, now())
        .unwrap();
}

#[test]
fn a_wrong_puk_counts_down_exactly_and_then_blocks() {
    let lab = lab();
    let mut t = token(&lab);
    let err = t.unblock_pin(pin("87654321"), pin("246810")).unwrap_err();
    assert!(
        matches!(err, Error::PukInvalid { retries } if retries == Retries::exact(2)),
        "{err:?}"
    );
    let err = t.unblock_pin(pin("87654321"), pin("246810")).unwrap_err();
    assert_eq!(err.retries(), Some(Retries::exact(1)));
    let err = t.unblock_pin(pin("87654321"), pin("246810")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PukBlocked);
    let err = t.unblock_pin(pin(PIV_PUK), pin("246810")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PukBlocked, "right PUK refused too");
    // The user PIN was never touched.
    assert_eq!(card_tries(&lab), Some(3));
    t.verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
}

#[test]
fn change_pin_then_the_old_pin_is_refused() {
    let lab = lab();
    let mut t = token(&lab);
    t.change_pin(pin(PIV_PIN), pin("24681357"), FinalTry::NotConfirmed)
        .unwrap();
    let err = t
        .verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap_err();
    assert_eq!(err.retries(), Some(Retries::exact(2)));
    t.verify_pin(pin("24681357"), FinalTry::NotConfirmed, now())
        .unwrap();
    // This card answers a wrong old PIN with a bare 6300; the backend reads the count
    // back with an empty VERIFY, which tells it only while the PIN is not verified.
    t.logout().unwrap();
    let err = t
        .change_pin(pin("000000"), pin("135790"), FinalTry::NotConfirmed)
        .unwrap_err();
    assert_eq!(
        err.retries(),
        Some(Retries::exact(2)),
        "wrong old PIN counted: {err:?}"
    );
    let err = t
        .change_pin(pin("24681357"), pin("12a456"), FinalTry::NotConfirmed)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFormat);
    assert_eq!(
        card_tries(&lab),
        Some(2),
        "a malformed PIN never reached the card"
    );
}

#[test]
fn signatures_from_both_slots_verify_against_their_certificates() {
    let lab = provisioned_lab();
    let mut t = token(&lab);
    let certs = t.certificates().unwrap();
    assert_eq!(certs.len(), 2);
    t.verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
    for (slot, scheme) in [
        (PivSlot::Auth9A, SignatureScheme::EcdsaP256Sha256),
        (PivSlot::Sign9C, SignatureScheme::RsaPkcs1Sha256),
    ] {
        let cert = lab.cert_der(slot).unwrap();
        let on_card = certs
            .iter()
            .find(|c| c.id == KeyId(vec![slot.key_ref()]))
            .expect("certificate on card");
        assert_eq!(on_card.der, cert);
        let signer = t.signer(&piv_key(slot), SystemClock.wall()).unwrap();
        assert_eq!(signer.scheme, scheme);
        let batch = digests(6);
        let outcome = sign_all(&mut t, &signer, &batch);
        assert!(outcome.is_complete(), "{slot:?}: {:?}", outcome.error);
        for signed in &outcome.signed {
            verify_digest_signature(&cert, &signed.digest.0, &signed.signature)
                .unwrap_or_else(|e| panic!("{slot:?} #{}: {e}", signed.index));
        }
        let other = Sha256Digest::of(b"another document");
        assert!(verify_digest_signature(&cert, &other.0, &outcome.signed[0].signature).is_err());
    }
    // After logout the card refuses to sign.
    t.logout().unwrap();
    let err = t
        .backend_mut()
        .sign_digest(
            &KeyId(vec![0x9A]),
            SignatureScheme::EcdsaP256Sha256,
            &Sha256Digest::of(b"x"),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinRequired);
}

#[test]
fn card_pulled_mid_verify_is_not_present_and_spends_no_try() {
    let lab = lab();
    // Freeze the card just before the VERIFY carrying the (wrong) PIN goes out.
    let (transport, frozen) = FreezeBefore::new(&lab, 0x20, 1);
    let mut t = Token::new(
        PivBackend::open(transport).unwrap(),
        SessionPolicy::default(),
    )
    .unwrap();
    std::thread::scope(|s| {
        let verify = s.spawn(|| t.verify_pin(pin(WRONG), FinalTry::NotConfirmed, now()));
        frozen.recv().expect("the VERIFY went out");
        std::thread::sleep(Duration::from_millis(300));
        lab.kill_card().unwrap();
        let err = verify.join().unwrap().unwrap_err();
        assert_eq!(err.code(), ErrorCode::TokenNotPresent, "{err:?}");
    });
    lab.restart_card().unwrap();
    // The same token object recovers, and the card counted nothing.
    let state = t.status(now()).unwrap();
    assert_eq!(state.retries, Retries::exact(3));
    assert_eq!(card_tries(&lab), Some(3));
}

#[test]
fn card_pulled_mid_batch_keeps_completed_signatures_and_spends_no_try() {
    let lab = provisioned_lab();
    let cert = lab.cert_der(PivSlot::Auth9A).unwrap();
    // The 6th GENERAL AUTHENTICATE is in flight when the card goes.
    let (transport, frozen) = FreezeBefore::new(&lab, 0x87, 6);
    let mut t = Token::new(
        PivBackend::open(transport).unwrap(),
        SessionPolicy::default(),
    )
    .unwrap();
    t.verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
    let signer = t
        .signer(&piv_key(PivSlot::Auth9A), SystemClock.wall())
        .unwrap();
    let batch = digests(20);
    let outcome = std::thread::scope(|s| {
        let run = s.spawn(|| sign_all(&mut t, &signer, &batch));
        frozen.recv().expect("the 6th signature went out");
        std::thread::sleep(Duration::from_millis(300));
        lab.kill_card().unwrap();
        run.join().unwrap()
    });
    assert_eq!(
        outcome.error.as_ref().map(Error::code),
        Some(ErrorCode::TokenNotPresent)
    );
    assert_eq!(outcome.signed.len(), 5);
    for (i, signed) in outcome.signed.iter().enumerate() {
        assert_eq!(signed.index, i);
        verify_digest_signature(&cert, &signed.digest.0, &signed.signature).unwrap();
    }
    lab.restart_card().unwrap();
    assert_eq!(t.status(now()).unwrap().retries, Retries::exact(3));
    // The session ended with the card: signing again needs the PIN.
    let again = sign_all(&mut t, &signer, &batch[5..]);
    assert!(again.signed.is_empty());
    assert_eq!(again.error.map(|e| e.code()), Some(ErrorCode::PinRequired));
    t.verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
    let rest = sign_all(&mut t, &signer, &batch[5..]);
    assert!(rest.is_complete(), "{:?}", rest.error);
}

#[test]
fn a_pin_changed_elsewhere_costs_one_try_in_a_pin_always_batch_never_more() {
    let lab = provisioned_lab();
    let (mut t, signer) = signed_in_9c(&lab);
    // Another application changes the PIN and logs the card out.
    change_pin_elsewhere(&lab);

    // 9C needs VERIFY before each signature: the kept PIN is now wrong, once.
    let out = sign_all(&mut t, &signer, &digests(3));
    assert!(out.signed.is_empty());
    let err = out.error.unwrap();
    assert_eq!(err.retries(), Some(Retries::exact(2)), "{err:?}");
    // The kept PIN is gone: the next batch asks for the PIN instead of trying again.
    let out = sign_all(&mut t, &signer, &digests(3));
    assert_eq!(out.error.map(|e| e.code()), Some(ErrorCode::PinRequired));
    assert_eq!(card_tries(&lab), Some(2), "exactly one try spent");
}

/// Another application spends tries with wrong PINs on its own connection while our PIN
/// session is active (a failed VERIFY also ends the card's verified state).
fn spend_tries_elsewhere(lab: &PivLab, n: usize) {
    let mut other = backend(lab);
    for _ in 0..n {
        let err = other.login(&pin(WRONG)).expect_err("a wrong PIN");
        assert_eq!(err.code(), ErrorCode::PinInvalid, "{err:?}");
    }
    drop(other);
}

/// The kept 9C PIN is right, but only one try is left: sending it would spend the user's
/// final try without asking (had it been stale, it would have blocked the card). The
/// signature is refused as the PKCS#11 backend refuses it: `SS_PIN_REQUIRED`, no APDU
/// with the PIN, and the PIN is no longer kept.
#[test]
fn a_kept_pin_is_not_sent_at_the_final_try() {
    let lab = provisioned_lab();
    let (mut t, signer) = signed_in_9c(&lab);
    let first = sign_all(&mut t, &signer, &digests(1));
    assert!(first.is_complete(), "{:?}", first.error);

    spend_tries_elsewhere(&lab, 2);
    assert_eq!(card_tries(&lab), Some(1));

    let out = sign_all(&mut t, &signer, &digests(2));
    assert!(out.signed.is_empty());
    let err = out.error.expect("refused");
    assert_eq!(err.code(), ErrorCode::PinRequired, "{err:?}");
    assert_eq!(card_tries(&lab), Some(1), "no try spent, none reset either");
    // The session is over and the PIN gone: the user is asked, with the final-try guard.
    let err = t
        .verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFinalTry);
    t.verify_pin(pin(PIV_PIN), FinalTry::Confirmed, now())
        .unwrap();
    let again = sign_all(&mut t, &signer, &digests(2));
    assert!(again.is_complete(), "{:?}", again.error);
}

/// The dangerous case: the PIN was changed elsewhere (the kept one is stale) and then
/// two tries were spent there. Sending the kept PIN would block the card.
#[test]
fn a_stale_kept_pin_never_blocks_the_card_at_the_final_try() {
    let lab = provisioned_lab();
    let (mut t, signer) = signed_in_9c(&lab);
    change_pin_elsewhere(&lab);
    spend_tries_elsewhere(&lab, 2);
    assert_eq!(card_tries(&lab), Some(1));

    let out = sign_all(&mut t, &signer, &digests(3));
    assert!(out.signed.is_empty());
    let err = out.error.expect("refused");
    assert_eq!(err.code(), ErrorCode::PinRequired, "{err:?}");
    assert_eq!(card_tries(&lab), Some(1), "not blocked: no try spent");
    // And nothing is tried again on the next batch.
    let out = sign_all(&mut t, &signer, &digests(1));
    assert_eq!(out.error.map(|e| e.code()), Some(ErrorCode::PinRequired));
    assert_eq!(card_tries(&lab), Some(1));
}

/// A blocked card (blocked elsewhere) gets no VERIFY with the kept PIN either.
#[test]
fn a_kept_pin_is_not_sent_to_a_card_blocked_elsewhere() {
    let lab = provisioned_lab();
    let (mut t, signer) = signed_in_9c(&lab);
    spend_tries_elsewhere(&lab, 2);
    let mut other = backend(&lab);
    assert_eq!(
        other.login(&pin(WRONG)).unwrap_err().code(),
        ErrorCode::PinBlocked
    );
    drop(other);
    let out = sign_all(&mut t, &signer, &digests(1));
    assert_eq!(out.error.map(|e| e.code()), Some(ErrorCode::PinBlocked));
    assert_eq!(card_tries(&lab), Some(0));
}

/// The worker tells the app when the final-try refusal ended the PIN session (the banner
/// must not say "signed in" while the next signature needs the PIN).
#[test]
fn the_worker_announces_the_session_a_final_try_refusal_ended() {
    use securesign_core::SessionEndReason;

    let lab = provisioned_lab();
    let (worker, events) = signed_in_worker(Box::new(backend(&lab)));
    let signer = worker.signer(piv_key(PivSlot::Sign9C)).unwrap();
    let first = worker
        .sign_batch(signer.clone(), digests(1), CancelFlag::new())
        .unwrap();
    assert!(first.is_complete(), "{:?}", first.error);
    spend_tries_elsewhere(&lab, 2);
    let out = worker
        .sign_batch(signer, digests(1), CancelFlag::new())
        .unwrap();
    assert_eq!(out.error.map(|e| e.code()), Some(ErrorCode::PinRequired));
    assert_eq!(worker.remaining().unwrap(), None);
    let reason = next_session_end(&events, Duration::from_secs(5));
    assert_eq!(reason, SessionEndReason::Explicit);
    assert_eq!(card_tries(&lab), Some(1));
}
