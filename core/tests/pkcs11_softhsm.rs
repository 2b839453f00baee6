//! The PKCS#11 backend and the token policy against a real SoftHSM2 token.
//!
//! SoftHSM2 never locks a PIN (it only sets COUNT_LOW), so locking is tested on kryoptic.

mod common;

use std::time::Duration;

use common::{backend, lab, pin, token};
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::batch::CancelFlag;
use securesign_core::cert::{CertificateInfo, IndiaPkiClass, Validity};
use securesign_core::clock::{Clock, ManualClock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{
    Error, ErrorCode, FinalTry, KeySelector, PinStatus, RetryIndicator, SessionEndReason,
};
use securesign_testlab::{CertValidity, LabKey, LabToken, Module};

const MIN: Duration = Duration::from_secs(60);

fn digests(n: usize) -> Vec<Sha256Digest> {
    (0..n)
        .map(|i| Sha256Digest::of(format!("document {i}").as_bytes()))
        .collect()
}

fn rsa() -> KeySelector {
    KeySelector::IdOrLabel(hex(LabKey::Rsa.id()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn describes_the_token_and_reads_status_without_logging_in() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    assert_eq!(t.info().label, tok.label());
    assert!(t.info().pin_policy.min_len >= 1);
    assert!(t.info().pin_policy.max_len <= 64);
    assert!(!t.info().exact_retries);

    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::NotVerified);
    assert_eq!(state.retries.indicator, RetryIndicator::MoreThanOne);
    // A status check did not log in: the private key cannot be used.
    let err = t
        .backend_mut()
        .sign_digest(
            &KeyId(LabKey::Rsa.id().to_vec()),
            SignatureScheme::RsaPkcs1Sha256,
            &Sha256Digest::of(b"x"),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinRequired);
}

#[test]
fn a_malformed_pin_never_reaches_the_token() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    let min = t.info().pin_policy.min_len;
    let too_short = "1".repeat(min - 1);
    let err = t
        .verify_pin(pin(&too_short), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFormat);
    let err = t
        .verify_pin(pin("12345\u{7}"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFormat);
    // No failure was counted: SoftHSM2 would have set COUNT_LOW.
    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::NotVerified);
    assert_eq!(state.retries.indicator, RetryIndicator::MoreThanOne);
}

#[test]
fn wrong_pin_is_invalid_with_an_honest_retry_indication() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    let err = t
        .verify_pin(pin("654321"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap_err();
    let Error::PinInvalid { retries } = err else {
        panic!("expected PinInvalid, got {err:?}");
    };
    // SoftHSM2 sets COUNT_LOW after a failure and never gives a count.
    assert_eq!(retries.indicator, RetryIndicator::Low);
    assert_eq!(retries.remaining, None);
    let state = t.status(SystemClock.now()).unwrap();
    assert_eq!(state.status, PinStatus::Invalid);

    // The right PIN still works and clears the indication.
    let state = t
        .verify_pin(
            pin(tok.user_pin()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .unwrap();
    assert_eq!(state.status, PinStatus::SessionActive);
}

#[test]
fn batch_signs_with_one_login_and_every_signature_verifies() {
    let tok = lab(Module::SoftHsm2);
    let clock = ManualClock::new();
    let mut t = token(&tok, SessionPolicy::default());
    t.verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed, clock.now())
        .unwrap();
    for (selector, cert, scheme) in [
        (rsa(), tok.rsa_cert_der(), SignatureScheme::RsaPkcs1Sha256),
        (
            KeySelector::IdOrLabel(LabKey::Ec.label().to_owned()),
            tok.ec_cert_der(),
            SignatureScheme::EcdsaP256Sha256,
        ),
    ] {
        let key = t.signer(&selector, clock.wall()).unwrap();
        assert_eq!(key.scheme, scheme);
        assert_eq!(key.certificate_der, cert);
        let batch = digests(25);
        let mut seen = Vec::new();
        let outcome = t.sign_batch(&key, &batch, &clock, &CancelFlag::new(), &mut |p| {
            seen.push(p.done)
        });
        assert!(outcome.is_complete(), "{:?}", outcome.error);
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
        for (i, signed) in outcome.signed.iter().enumerate() {
            assert_eq!(signed.index, i);
            assert_eq!(signed.digest, batch[i]);
            verify_digest_signature(cert, &signed.digest.0, &signed.signature)
                .unwrap_or_else(|e| panic!("signature {i} does not verify: {e}"));
        }
        // A signature does not verify against another document.
        let other = Sha256Digest::of(b"another document");
        assert!(verify_digest_signature(cert, &other.0, &outcome.signed[0].signature).is_err());
    }
}

#[test]
fn idle_timeout_logs_out_and_the_next_batch_needs_the_pin() {
    let tok = lab(Module::SoftHsm2);
    let clock = ManualClock::new();
    let mut t = token(&tok, SessionPolicy::default());
    // A second session of this process sees the token's (per-application) login state.
    let mut probe = backend(&tok);
    t.verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed, clock.now())
        .unwrap();
    assert!(probe.token_logged_in().unwrap());
    let key = t.signer(&rsa(), clock.wall()).unwrap();

    // Activity every 10 minutes keeps the session.
    for _ in 0..3 {
        clock.advance(10 * MIN);
        let out = t.sign_batch(&key, &digests(1), &clock, &CancelFlag::new(), &mut |_| {});
        assert!(out.is_complete(), "{:?}", out.error);
        assert_eq!(
            t.status(clock.now()).unwrap().status,
            PinStatus::SessionActive
        );
    }
    // 15 idle minutes end it.
    clock.advance(15 * MIN);
    assert_eq!(t.poll(clock.now()), Some(SessionEndReason::Idle));
    assert_eq!(
        t.status(clock.now()).unwrap().status,
        PinStatus::NotVerified
    );
    let out = t.sign_batch(&key, &digests(2), &clock, &CancelFlag::new(), &mut |_| {});
    assert!(out.signed.is_empty());
    let err = out.error.unwrap();
    assert_eq!(err.code(), ErrorCode::SessionExpired);
    // And the token itself was logged out, not just our bookkeeping.
    assert!(!probe.token_logged_in().unwrap());
}

#[test]
fn explicit_logout_ends_the_session() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    t.verify_pin(
        pin(tok.user_pin()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    assert!(t.logout().unwrap());
    assert!(!t.logout().unwrap(), "second logout finds no session");
    let key = t.signer(&rsa(), SystemClock.wall()).unwrap();
    let out = t.sign_batch(
        &key,
        &digests(1),
        &SystemClock,
        &CancelFlag::new(),
        &mut |_| {},
    );
    assert_eq!(out.error.unwrap().code(), ErrorCode::PinRequired);
}

#[test]
fn cancellation_keeps_what_was_signed() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    t.verify_pin(
        pin(tok.user_pin()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    let key = t.signer(&rsa(), SystemClock.wall()).unwrap();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let out = t.sign_batch(&key, &digests(10), &SystemClock, &cancel, &mut |p| {
        if p.done == 3 {
            flag.cancel();
        }
    });
    assert_eq!(out.signed.len(), 3);
    assert_eq!(out.error.unwrap().code(), ErrorCode::SignCancelled);
    for s in &out.signed {
        verify_digest_signature(tok.rsa_cert_der(), &s.digest.0, &s.signature).unwrap();
    }
}

#[test]
fn change_pin_then_the_old_pin_is_refused() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    t.change_pin(pin(tok.user_pin()), pin("246810"), FinalTry::NotConfirmed)
        .unwrap();
    let err = t
        .verify_pin(
            pin(tok.user_pin()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinInvalid);
    t.verify_pin(pin("246810"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap();
    // A wrong old PIN is a counted failure, reported as such.
    let err = t
        .change_pin(pin("000000"), pin("135790"), FinalTry::NotConfirmed)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinInvalid);
    // A malformed new PIN is refused before the token is asked.
    let err = t
        .change_pin(pin("246810"), pin("1"), FinalTry::NotConfirmed)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinFormat);
}

#[test]
fn unblock_with_the_so_pin_sets_a_new_pin() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    let err = t.unblock_pin(pin("87654321"), pin("112233")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PukInvalid);
    t.unblock_pin(pin(tok.so_pin()), pin("112233")).unwrap();
    t.verify_pin(pin("112233"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap();
}

#[test]
fn certificate_details_and_india_pki_class() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    let certs = t.certificates().unwrap();
    assert_eq!(certs.len(), 2);
    let rsa = certs
        .iter()
        .find(|c| c.id.0 == LabKey::Rsa.id())
        .expect("RSA cert");
    assert_eq!(rsa.label, LabKey::Rsa.label());
    assert_eq!(rsa.der, tok.rsa_cert_der());
    let info = CertificateInfo::from_der(&rsa.der).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("Demo Signer"));
    assert!(info.subject.contains("C=IN"), "{}", info.subject);
    assert_eq!(info.india_pki, vec![IndiaPkiClass::Class3]);
    assert!(info.key_usage.contains(&"digitalSignature".to_owned()));
    assert!(info.key_usage.contains(&"nonRepudiation".to_owned()));
    assert_eq!(info.sha256_thumbprint, Sha256Digest::of(&rsa.der).to_hex());
    assert_eq!(info.scheme, Some(SignatureScheme::RsaPkcs1Sha256));
    assert_eq!(info.validity_at(SystemClock.wall()), Validity::Valid);

    let ec = CertificateInfo::from_der(tok.ec_cert_der()).unwrap();
    assert_eq!(ec.highest_india_class(), Some(IndiaPkiClass::Class2));
    assert_eq!(ec.scheme, Some(SignatureScheme::EcdsaP256Sha256));
}

fn lab_with_rsa_cert(validity: CertValidity) -> LabToken {
    let tok = LabToken::builder(Module::SoftHsm2)
        .rsa_cert(validity)
        .build()
        .unwrap_or_else(|e| panic!("token lab: {e}"));
    tok.apply_env();
    tok
}

#[test]
fn an_expired_certificate_is_refused_before_any_pin_is_asked() {
    let tok = lab_with_rsa_cert(CertValidity::Expired);
    let mut t = token(&tok, SessionPolicy::default());
    let err = t.signer(&rsa(), SystemClock.wall()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::CertExpired);
    let info = CertificateInfo::from_der(tok.rsa_cert_der()).unwrap();
    assert_eq!(info.validity_at(SystemClock.wall()), Validity::Expired);
}

#[test]
fn a_certificate_that_expires_during_the_session_stops_the_batch() {
    let tok = lab_with_rsa_cert(CertValidity::ExpiringSoon);
    let clock = ManualClock::new();
    let mut t = token(&tok, SessionPolicy::default());
    let key = t.signer(&rsa(), clock.wall()).unwrap();
    assert!(matches!(
        key.certificate.validity_at(clock.wall()),
        Validity::ExpiringSoon { days_left } if days_left <= 10
    ));
    t.verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed, clock.now())
        .unwrap();
    clock.advance(Duration::from_secs(11 * 86_400));
    let out = t.sign_batch(&key, &digests(1), &clock, &CancelFlag::new(), &mut |_| {});
    assert!(out.signed.is_empty());
    assert_eq!(out.error.unwrap().code(), ErrorCode::CertExpired);
}

#[test]
fn an_already_logged_in_token_still_checks_the_typed_pin() {
    // Two backends of one process share the token's login state (PKCS#11 login is
    // per application). The second must not take "already logged in" as success.
    let tok = lab(Module::SoftHsm2);
    let mut first = backend(&tok);
    first.login(&pin(tok.user_pin())).unwrap();
    let mut second = token(&tok, SessionPolicy::default());
    let err = second
        .verify_pin(pin("999999"), FinalTry::NotConfirmed, SystemClock.now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinInvalid);
    second
        .verify_pin(
            pin(tok.user_pin()),
            FinalTry::NotConfirmed,
            SystemClock.now(),
        )
        .unwrap();
}
