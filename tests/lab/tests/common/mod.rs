//! Shared helpers and scenarios for the lab's integration tests: they talk to
//! the real modules through `cryptoki`, exactly as the core backend will.
#![allow(dead_code, missing_docs)] // each test binary uses a different subset

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use securesign_testlab::{LabKey, LabToken, Module};
use sha2::{Digest, Sha256};

/// A module initialised (once, for this process) for one lab token.
pub struct Opened {
    pub pkcs11: Pkcs11,
    pub slot: Slot,
}

/// Provisions a fresh token on `module`; failure (e.g. kryoptic not built)
/// fails the test with the lab's message.
pub fn fresh(module: Module) -> LabToken {
    LabToken::builder(module)
        .build()
        .unwrap_or_else(|err| panic!("provisioning a {} token: {err}", module.name()))
}

/// Points the module at `tok`, loads and initialises it and finds the slot
/// whose token carries `tok`'s label.
///
/// `C_Initialize` is process-wide and the module reads its config from the
/// environment, so these tests need one process per test (cargo nextest).
pub fn open(tok: &LabToken) -> Opened {
    assert_eq!(
        std::env::var("NEXTEST_EXECUTION_MODE").as_deref(),
        Ok("process-per-test"),
        "run these tests with `cargo nextest run -p securesign-testlab` (one process per test)"
    );
    tok.apply_env();
    let pkcs11 = Pkcs11::new(tok.module_path()).expect("load module");
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = pkcs11
        .get_slots_with_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|slot| {
            pkcs11
                .get_token_info(*slot)
                .map(|info| info.label() == tok.label())
                .unwrap_or(false)
        })
        .unwrap_or_else(|| panic!("no slot holds a token labelled {:?}", tok.label()));
    Opened { pkcs11, slot }
}

pub fn pin(value: &str) -> AuthPin {
    AuthPin::from(value)
}

/// Logs the user in on a new read-only session.
pub fn user_session(opened: &Opened, tok: &LabToken) -> Session {
    let session = opened
        .pkcs11
        .open_ro_session(opened.slot)
        .expect("C_OpenSession");
    session
        .login(UserType::User, Some(&pin(tok.user_pin())))
        .expect("user C_Login with the lab PIN");
    session
}

/// The one object of `class` whose `CKA_ID` is `key`'s.
pub fn find_one(session: &Session, class: ObjectClass, key: LabKey) -> ObjectHandle {
    let found = session
        .find_objects(&[Attribute::Class(class), Attribute::Id(key.id().to_vec())])
        .expect("C_FindObjects");
    assert_eq!(
        found.len(),
        1,
        "exactly one {class} with CKA_ID {:02x?}",
        key.id()
    );
    found[0]
}

pub fn attribute(session: &Session, object: ObjectHandle, kind: AttributeType) -> Attribute {
    let mut attrs = session
        .get_attributes(object, &[kind])
        .expect("C_GetAttributeValue");
    assert_eq!(attrs.len(), 1, "attribute {kind} present");
    attrs.remove(0)
}

/// The user-PIN flags of `CK_TOKEN_INFO`, as `(COUNT_LOW, FINAL_TRY, LOCKED)`.
pub fn user_pin_flags(opened: &Opened) -> (bool, bool, bool) {
    let info = opened
        .pkcs11
        .get_token_info(opened.slot)
        .expect("C_GetTokenInfo");
    (
        info.user_pin_count_low(),
        info.user_pin_final_try(),
        info.user_pin_locked(),
    )
}

pub fn is_rv(result: &Result<(), Error>, expected: RvError) -> bool {
    matches!(result, Err(Error::Pkcs11(rv, _)) if *rv == expected)
}

/// The certificate's SubjectPublicKeyInfo (DER).
pub fn spki_der(cert_der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).expect("parse certificate");
    cert.public_key().raw.to_vec()
}

// ---------------------------------------------------------------- scenarios

/// The token is listed with its label, initialised, and the user PIN works.
pub fn token_is_listed_and_user_login_works(module: Module) {
    let tok = fresh(module);
    let opened = open(&tok);
    let info = opened
        .pkcs11
        .get_token_info(opened.slot)
        .expect("C_GetTokenInfo");
    assert_eq!(info.label(), "SecureSign Demo");
    assert!(info.token_initialized() && info.user_pin_initialized() && info.login_required());

    let session = opened
        .pkcs11
        .open_ro_session(opened.slot)
        .expect("C_OpenSession");
    let wrong = session.login(UserType::User, Some(&pin("654321")));
    assert!(
        is_rv(&wrong, RvError::PinIncorrect),
        "wrong PIN is refused: {wrong:?}"
    );
    session
        .login(UserType::User, Some(&pin(tok.user_pin())))
        .expect("the lab user PIN logs in");
}

/// Both identities: private key, public key and certificate share `CKA_ID`
/// and `CKA_LABEL`, and the certificate bytes are the lab's.
pub fn keys_and_certs_are_found_by_id(module: Module) {
    let tok = fresh(module);
    let opened = open(&tok);
    let session = user_session(&opened, &tok);
    for key in LabKey::ALL {
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, key);
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, key);
        let cert = find_one(&session, ObjectClass::CERTIFICATE, key);
        for object in [private, public, cert] {
            assert_eq!(
                attribute(&session, object, AttributeType::Label),
                Attribute::Label(key.label().as_bytes().to_vec())
            );
        }
        let expected_type = match key {
            LabKey::Rsa => KeyType::RSA,
            LabKey::Ec => KeyType::EC,
        };
        assert_eq!(
            attribute(&session, private, AttributeType::KeyType),
            Attribute::KeyType(expected_type)
        );
        assert_eq!(
            attribute(&session, private, AttributeType::Sign),
            Attribute::Sign(true)
        );
        assert_eq!(
            attribute(&session, private, AttributeType::Private),
            Attribute::Private(true)
        );
        assert_eq!(
            attribute(&session, private, AttributeType::Sensitive),
            Attribute::Sensitive(true)
        );
        assert_eq!(
            attribute(&session, cert, AttributeType::Value),
            Attribute::Value(tok.cert_der(key).to_vec())
        );
    }
}

/// Before login the private keys are invisible (CKA_PRIVATE), the
/// certificates are not.
pub fn private_keys_need_login(module: Module) {
    let tok = fresh(module);
    let opened = open(&tok);
    let session = opened
        .pkcs11
        .open_ro_session(opened.slot)
        .expect("C_OpenSession");
    let private = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .expect("C_FindObjects");
    let certs = session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .expect("C_FindObjects");
    assert!(private.is_empty(), "private keys hidden before login");
    assert_eq!(certs.len(), 2, "both certificates are public objects");
}

/// `CKM_RSA_PKCS` over a SHA-256 DigestInfo verifies with the certificate's key.
pub fn rsa_pkcs_signature_verifies(module: Module) {
    use rsa::pkcs8::DecodePublicKey;
    let tok = fresh(module);
    let opened = open(&tok);
    let session = user_session(&opened, &tok);
    let key = find_one(&session, ObjectClass::PRIVATE_KEY, LabKey::Rsa);

    let digest = Sha256::digest(b"SecureSign lab: RSA document");
    // DER DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1).
    let mut digest_info = hex_bytes("3031300d060960864801650304020105000420");
    digest_info.extend_from_slice(&digest);
    let signature = session
        .sign(&Mechanism::RsaPkcs, key, &digest_info)
        .expect("C_Sign CKM_RSA_PKCS");
    assert_eq!(signature.len(), 256, "RSA-2048 signature length");

    let public =
        rsa::RsaPublicKey::from_public_key_der(&spki_der(tok.rsa_cert_der())).expect("RSA SPKI");
    let scheme = || rsa::Pkcs1v15Sign::new::<Sha256>();
    public
        .verify(scheme(), &digest, &signature)
        .expect("signature verifies with the certificate key");
    let other = Sha256::digest(b"a different document");
    assert!(
        public.verify(scheme(), &other, &signature).is_err(),
        "and only for the signed digest"
    );
}

/// `CKM_ECDSA` over a SHA-256 digest verifies with the certificate's key.
pub fn ecdsa_signature_verifies(module: Module) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePublicKey;
    let tok = fresh(module);
    let opened = open(&tok);
    let session = user_session(&opened, &tok);
    let key = find_one(&session, ObjectClass::PRIVATE_KEY, LabKey::Ec);

    let digest = Sha256::digest(b"SecureSign lab: EC document");
    let signature = session
        .sign(&Mechanism::Ecdsa, key, &digest)
        .expect("C_Sign CKM_ECDSA");
    assert_eq!(signature.len(), 64, "CKM_ECDSA returns raw r||s for P-256");

    let public = p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der(tok.ec_cert_der()))
        .expect("P-256 SPKI");
    let signature = p256::ecdsa::Signature::from_slice(&signature).expect("r||s signature");
    public
        .verify_prehash(&digest, &signature)
        .expect("signature verifies with the certificate key");
    let other = Sha256::digest(b"a different document");
    assert!(
        public.verify_prehash(&other, &signature).is_err(),
        "and only for the signed digest"
    );
}

/// The `CKA_EC_POINT` of the EC public key, as the module returns it.
pub fn ec_point(module: Module) -> Vec<u8> {
    let tok = fresh(module);
    let opened = open(&tok);
    let session = user_session(&opened, &tok);
    let public = find_one(&session, ObjectClass::PUBLIC_KEY, LabKey::Ec);
    match attribute(&session, public, AttributeType::EcPoint) {
        Attribute::EcPoint(point) => point,
        other => panic!("unexpected attribute {other:?}"),
    }
}

pub fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}
