//! Keys with `CKA_ALWAYS_AUTHENTICATE` through the core's PKCS#11 backend, on two real
//! modules: OpenSC's `opensc-pkcs11.so` over the virtual PIV card (its 9C "digital
//! signature" key is always-authenticate) and kryoptic (a key generated here with the
//! attribute set). Each signature needs `C_SignInit` → `C_Login(CKU_CONTEXT_SPECIFIC)` →
//! `C_Sign`; the backend does that with the PIN kept from the user's one login.

mod common;
mod piv_support;

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use securesign_core::backend::pkcs11::{Pkcs11Backend, Pkcs11Module, TokenSelector, UnblockStyle};
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::{verify_digest_signature, VerifyingKey};
use securesign_core::{Error, ErrorCode, FinalTry, KeySelector, RetryIndicator, SignerKey, Token};
use securesign_testlab::{Module, PivSlot, OPENSC_PKCS11, PIV_PIN};

// ---------------------------------------------------------------- OpenSC, virtual PIV card

fn opensc_token() -> Token<Pkcs11Backend> {
    let backend = Pkcs11Module::load(Path::new(OPENSC_PKCS11))
        .expect("load opensc-pkcs11.so")
        .open(&TokenSelector::Only)
        .expect("open the card's token")
        .with_unblock_style(UnblockStyle::SetPinUnlogged);
    Token::new(backend, SessionPolicy::default()).expect("token info")
}

fn now() -> std::time::Instant {
    SystemClock.now()
}

fn signer_9c(t: &mut Token<Pkcs11Backend>) -> SignerKey {
    let id = KeySelector::IdOrLabel(format!("{:02x}", PivSlot::Sign9C.opensc_id()));
    t.signer(&id, SystemClock.wall()).expect("9C signer")
}

fn sign(t: &mut Token<Pkcs11Backend>, key: &SignerKey, digests: &[Sha256Digest]) -> Vec<Vec<u8>> {
    let out = t.sign_batch(key, digests, &SystemClock, &CancelFlag::new(), &mut |_| {});
    assert!(out.is_complete(), "{:?}", out.error);
    out.signed.into_iter().map(|s| s.signature).collect()
}

/// Resets the card's PIN state with VERIFY P1=FF on a connection of our own. OpenSC 0.23's
/// `C_Logout` leaves the PIV card verified, and a verified card answers the empty VERIFY
/// with `9000` instead of the tries left.
fn unverify_card(lab: &securesign_testlab::PivLab) {
    piv_support::backend(lab).logout().expect("VERIFY P1=FF");
}

#[test]
fn opensc_9c_signs_a_batch_with_one_login_and_is_refused_after_logout() {
    let lab = piv_support::provisioned_lab();
    let cert = lab.cert_der(PivSlot::Sign9C).expect("9C certificate");
    let mut t = opensc_token();
    t.verify_pin(piv_support::pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .expect("user login");
    let key = signer_9c(&mut t);
    assert_eq!(key.scheme, SignatureScheme::RsaPkcs1Sha256);
    assert_eq!(key.certificate_der, cert);

    let batch: Vec<_> = (0..3u8)
        .map(|i| Sha256Digest::of(&[b'9', b'c', i]))
        .collect();
    let signatures = sign(&mut t, &key, &batch);
    assert_eq!(signatures.len(), 3);
    for (digest, signature) in batch.iter().zip(&signatures) {
        verify_digest_signature(&cert, &digest.0, signature).expect("signature verifies");
    }

    t.logout().expect("logout");
    assert!(!t.backend_mut().token_logged_in().expect("session info"));
    // While a PIN is verified the card answers the empty VERIFY with 9000 (no count).
    unverify_card(&lab);
    assert_eq!(piv_support::card_tries(&lab), Some(3), "before");
    // The backend itself refuses (not only the cached-session policy above it): the PIN it
    // kept is gone, so nothing is sent to the card.
    let err = t
        .backend_mut()
        .sign_digest(&key.id, key.scheme, &batch[0])
        .expect_err("no PIN after logout");
    assert_eq!(err.code(), ErrorCode::PinRequired, "{err:?}");
    assert_eq!(
        piv_support::card_tries(&lab),
        Some(3),
        "after: no try spent, and no VERIFY left the card verified"
    );
}

#[test]
fn opensc_9c_after_a_pin_change_elsewhere_fails_once_then_asks_for_the_pin() {
    const NEW_PIN: &str = "24681357";
    let lab = piv_support::provisioned_lab();
    let cert = lab.cert_der(PivSlot::Sign9C).expect("9C certificate");
    let mut t = opensc_token();
    t.verify_pin(piv_support::pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .expect("user login");
    let key = signer_9c(&mut t);
    let digests: Vec<_> = (0..4u8).map(|i| Sha256Digest::of(&[b'p', i])).collect();
    let first = sign(&mut t, &key, &digests[..1]);
    verify_digest_signature(&cert, &digests[0].0, &first[0]).expect("first signature");

    // Another application changes the PIN on the card (its own PC/SC connection).
    piv_support::backend(&lab)
        .change_pin(&piv_support::pin(PIV_PIN), &piv_support::pin(NEW_PIN))
        .expect("PIN changed elsewhere");

    // The kept PIN is stale: one try is spent, once.
    let out = t.sign_batch(
        &key,
        &digests[1..],
        &SystemClock,
        &CancelFlag::new(),
        &mut |_| {},
    );
    assert!(out.signed.is_empty());
    assert!(
        matches!(out.error, Some(Error::PinInvalid { .. })),
        "{:?}",
        out.error
    );
    assert_eq!(piv_support::card_tries(&lab), Some(2));

    // Then the PIN is asked for instead of spending another try.
    let out = t.sign_batch(
        &key,
        &digests[1..],
        &SystemClock,
        &CancelFlag::new(),
        &mut |_| {},
    );
    assert_eq!(
        out.error.as_ref().map(Error::code),
        Some(ErrorCode::PinRequired)
    );
    let err = t
        .backend_mut()
        .sign_digest(&key.id, key.scheme, &digests[1])
        .expect_err("still no PIN");
    assert_eq!(err.code(), ErrorCode::PinRequired);
    assert_eq!(
        piv_support::card_tries(&lab),
        Some(2),
        "no second try spent"
    );

    // With the new PIN the batch goes through.
    t.verify_pin(piv_support::pin(NEW_PIN), FinalTry::NotConfirmed, now())
        .expect("login with the new PIN");
    let rest = sign(&mut t, &key, &digests[1..]);
    for (digest, signature) in digests[1..].iter().zip(&rest) {
        verify_digest_signature(&cert, &digest.0, signature).expect("signature verifies");
    }
    t.logout().expect("logout");
    unverify_card(&lab);
    assert_eq!(
        piv_support::card_tries(&lab),
        Some(3),
        "reset by the good PIN"
    );
}

// ---------------------------------------------------------------- kryoptic

/// `CKA_ID` of the always-authenticate key generated by the kryoptic test.
const ALWAYS_AUTH_ID: u8 = 0x5a;

/// DER of the prime256v1 OID, as `CKA_EC_PARAMS` wants it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A second, independent cryptoki client of the module in this process: "another
/// application" for the backend under test (PKCS#11 logins are shared by the process).
fn other_session(module: &Path, label: &str) -> Session {
    let ctx = Pkcs11::new(module).expect("load the module again");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .expect("token info")
                .label()
                .trim_end()
                == label
        })
        .expect("the lab token's slot");
    ctx.open_rw_session(slot).expect("open session")
}

/// Generates an EC P-256 key pair with `CKA_ALWAYS_AUTHENTICATE = true` (needs the user
/// logged in) and returns the public key.
fn generate_always_auth_key(session: &Session) -> VerifyingKey {
    let public = [
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::EcParams(P256_PARAMS.to_vec()),
        Attribute::Id(vec![ALWAYS_AUTH_ID]),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Id(vec![ALWAYS_AUTH_ID]),
        Attribute::AlwaysAuthenticate(true),
    ];
    let (public, private) = session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("generate an always-authenticate key pair");
    let attrs = session
        .get_attributes(private, &[AttributeType::AlwaysAuthenticate])
        .expect("read CKA_ALWAYS_AUTHENTICATE");
    assert_eq!(
        attrs,
        vec![Attribute::AlwaysAuthenticate(true)],
        "kryoptic keeps the attribute"
    );
    verifying_key(session, public)
}

fn verifying_key(session: &Session, public: ObjectHandle) -> VerifyingKey {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .expect("read CKA_EC_POINT");
    let Some(Attribute::EcPoint(point)) = attrs.into_iter().next() else {
        panic!("no CKA_EC_POINT");
    };
    // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point (some modules give it bare).
    let sec1 = match point.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 0x41 => rest,
        bare => bare,
    };
    VerifyingKey::EcdsaP256(p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1).expect("P-256 point"))
}

fn find_private_key(session: &Session) -> ObjectHandle {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![ALWAYS_AUTH_ID]),
        ])
        .expect("find the key")
        .into_iter()
        .next()
        .expect("the always-authenticate key")
}

/// Creates the always-authenticate key (the token must be logged in for that), then logs
/// the user in again the way the app does: the backend keeps the PIN only when the token
/// holds such a key at login.
fn provision_always_auth_key(
    backend: &mut Pkcs11Backend,
    tok: &securesign_testlab::LabToken,
    other: &Session,
) -> VerifyingKey {
    let pin = common::pin(tok.user_pin());
    backend.login(&pin).expect("user login");
    let public = generate_always_auth_key(other);
    backend.logout().expect("logout");
    backend
        .login(&pin)
        .expect("user login with the key present");
    public
}

/// Spends `n` tries: context-specific logins with a wrong PIN on one active sign operation
/// (kryoptic keeps the operation active after a failed context-specific login).
fn spend_tries(session: &Session, key: ObjectHandle, n: usize) {
    session
        .sign_init(&Mechanism::Ecdsa, key)
        .expect("C_SignInit");
    for _ in 0..n {
        let err = session
            .login(UserType::ContextSpecific, Some(&AuthPin::from("00000000")))
            .expect_err("wrong PIN");
        assert!(
            matches!(err, CkError::Pkcs11(RvError::PinIncorrect, _)),
            "{err}"
        );
    }
}

/// A kryoptic token holding an always-authenticate key, the backend logged in with the
/// PIN kept, and another session of this process standing for another application.
/// Fields drop in order: the sessions before the token's directory.
struct AlwaysAuthToken {
    other: Session,
    backend: Pkcs11Backend,
    public: VerifyingKey,
    tok: securesign_testlab::LabToken,
}

impl AlwaysAuthToken {
    fn new() -> Self {
        let tok = common::lab(Module::Kryoptic);
        let mut backend = common::backend(&tok);
        let other = other_session(tok.module_path(), tok.label());
        let public = provision_always_auth_key(&mut backend, &tok, &other);
        Self {
            other,
            backend,
            public,
            tok,
        }
    }

    /// Signs `digest` with the always-authenticate key.
    fn sign(&mut self, digest: &Sha256Digest) -> Result<Vec<u8>, Error> {
        self.backend.sign_digest(
            &KeyId(vec![ALWAYS_AUTH_ID]),
            SignatureScheme::EcdsaP256Sha256,
            digest,
        )
    }

    /// Signs `digest` and checks the signature against the key's public half.
    fn sign_and_verify(&mut self, digest: &Sha256Digest) {
        let signature = self.sign(digest).expect("always-authenticate signature");
        self.public
            .verify_digest(&digest.0, &signature)
            .expect("signature verifies");
    }

    /// Asserts that signing now asks for the PIN and that the token's tries stand at `tries`.
    fn assert_pin_required(&mut self, digest: &Sha256Digest, tries: RetryIndicator, why: &str) {
        let err = self.sign(digest).expect_err(why);
        assert_eq!(err.code(), ErrorCode::PinRequired, "{why}: {err:?}");
        let state = self.backend.pin_state().expect("pin state");
        assert_eq!(state.retries.indicator, tries, "{why}: tries");
    }

    /// Another application changes the PIN to `new`.
    fn change_pin_elsewhere(&self, new: &str) {
        self.other
            .set_pin(&AuthPin::from(self.tok.user_pin()), &AuthPin::from(new))
            .expect("PIN changed in another session");
    }

    /// Another application spends `n` tries with wrong PINs.
    fn spend_tries_elsewhere(&self, n: usize) {
        spend_tries(&self.other, find_private_key(&self.other), n);
    }
}

#[test]
fn kryoptic_always_auth_key_signs_with_one_login_and_a_stale_pin_costs_one_try() {
    const NEW_PIN: &str = "13572468";
    let mut t = AlwaysAuthToken::new();
    let digests: Vec<_> = (0..6u8).map(|i| Sha256Digest::of(&[b'k', i])).collect();

    // One login, a batch of three: each signature needs (and gets) the context-specific login.
    for digest in &digests[..3] {
        t.sign_and_verify(digest);
    }
    // An ordinary key keeps the plain path in the same session.
    let rsa = t
        .backend
        .sign_digest(
            &KeyId(vec![0x01]),
            SignatureScheme::RsaPkcs1Sha256,
            &digests[0],
        )
        .expect("ordinary key");
    verify_digest_signature(t.tok.rsa_cert_der(), &digests[0].0, &rsa).expect("RSA verifies");

    // Another application changes the PIN, then wrong PINs bring the token to 8 failures
    // (COUNT_LOW; FINAL_TRY comes with the 9th, LOCKED with the 10th).
    t.change_pin_elsewhere(NEW_PIN);
    t.spend_tries_elsewhere(8);
    let state = t.backend.pin_state().expect("pin state");
    assert_eq!(state.retries.indicator, RetryIndicator::Low);

    // The kept PIN is stale: the next signature spends one try (the 9th failure)…
    let err = t.sign(&digests[3]).expect_err("stale PIN");
    let Error::PinInvalid { retries } = err else {
        panic!("expected SS_PIN_INVALID, got {err:?}");
    };
    assert_eq!(retries.indicator, RetryIndicator::FinalTry);

    // …and the one after asks for the PIN instead of spending the last try.
    t.assert_pin_required(
        &digests[3],
        RetryIndicator::FinalTry,
        "no PIN kept; not locked: no second try was spent",
    );

    // With the new PIN the key signs again.
    t.backend
        .login(&common::pin(NEW_PIN))
        .expect("login with the new PIN");
    for digest in &digests[3..] {
        t.sign_and_verify(digest);
    }
}

#[test]
fn kryoptic_always_auth_key_is_refused_after_logout_without_spending_a_try() {
    let mut t = AlwaysAuthToken::new();
    let digest = Sha256Digest::of(b"after logout");
    t.sign_and_verify(&digest);
    // 8 failures (COUNT_LOW): one more would show as FINAL_TRY.
    t.spend_tries_elsewhere(8);

    t.backend.logout().expect("logout");
    assert!(!t.backend.token_logged_in().expect("session info"));
    t.assert_pin_required(
        &digest,
        RetryIndicator::Low,
        "no PIN after logout; no try spent",
    );
}

#[test]
fn kryoptic_a_pin_change_through_the_backend_drops_the_kept_pin() {
    const NEW_PIN: &str = "13572468";
    let mut t = AlwaysAuthToken::new();
    let digest = Sha256Digest::of(b"before and after a PIN change");
    t.sign_and_verify(&digest);

    let old_pin = common::pin(t.tok.user_pin());
    t.backend
        .change_pin(&old_pin, &common::pin(NEW_PIN))
        .expect("PIN change");
    // 8 failures (COUNT_LOW) after the change (which reset the count): one more would
    // show as FINAL_TRY.
    t.spend_tries_elsewhere(8);
    // Still logged in, but the kept (old) PIN is gone: no stale context-specific login.
    assert!(t.backend.token_logged_in().expect("session info"));
    t.assert_pin_required(
        &digest,
        RetryIndicator::Low,
        "kept PIN dropped by the change; no try spent",
    );
    // An ordinary key still signs in the same login.
    t.backend
        .sign_digest(&KeyId(vec![0x01]), SignatureScheme::RsaPkcs1Sha256, &digest)
        .expect("ordinary key");
}

#[test]
fn kryoptic_a_kept_pin_never_spends_the_final_try() {
    const NEW_PIN: &str = "13572468";
    let mut t = AlwaysAuthToken::new();
    let digest = Sha256Digest::of(b"final try");
    t.sign_and_verify(&digest);

    // Elsewhere: the PIN is changed, then 9 wrong PINs leave only the final try.
    t.change_pin_elsewhere(NEW_PIN);
    t.spend_tries_elsewhere(9);
    assert_eq!(
        t.backend.pin_state().expect("pin state").retries.indicator,
        RetryIndicator::FinalTry
    );

    // The stale kept PIN is not sent: it would lock the token without the user's say.
    t.assert_pin_required(
        &digest,
        RetryIndicator::FinalTry,
        "final try left; not locked",
    );
    let err = t.sign(&digest).expect_err("no PIN kept");
    assert_eq!(err.code(), ErrorCode::PinRequired, "{err:?}");
}

/// The PIN stays in memory only when it may be needed: a token that held no
/// always-authenticate key at login gets no kept PIN, so a key that appears later asks
/// for the PIN (one more login) instead of being signed with a PIN kept for nothing.
#[test]
fn kryoptic_no_pin_is_kept_when_no_key_needs_it_at_login() {
    let tok = common::lab(Module::Kryoptic);
    let mut backend = common::backend(&tok);
    let other = other_session(tok.module_path(), tok.label());
    let key = KeyId(vec![ALWAYS_AUTH_ID]);
    let digest = Sha256Digest::of(b"no kept PIN");

    backend
        .login(&common::pin(tok.user_pin()))
        .expect("user login");
    let public = generate_always_auth_key(&other);
    let err = backend
        .sign_digest(&key, SignatureScheme::EcdsaP256Sha256, &digest)
        .expect_err("no PIN was kept");
    assert_eq!(err.code(), ErrorCode::PinRequired, "{err:?}");

    backend.logout().expect("logout");
    backend
        .login(&common::pin(tok.user_pin()))
        .expect("user login with the key present");
    let signature = backend
        .sign_digest(&key, SignatureScheme::EcdsaP256Sha256, &digest)
        .expect("signature");
    public
        .verify_digest(&digest.0, &signature)
        .expect("signature verifies");
}
