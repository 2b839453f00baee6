//! Detached CMS signatures made on a real SoftHSM2 token, checked by our verifier and by
//! `openssl cms -verify`, a verifier that knows nothing about SecureSign.

mod common;

use std::path::Path;
use std::process::Command;

use common::{lab, pin, token};
use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::{ErrorCode, FinalTry, KeySelector};
use securesign_testlab::Module;

fn openssl_verifies(p7s: &Path, doc: &Path) -> bool {
    let out = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-noverify",
            "-in",
        ])
        .arg(p7s)
        .arg("-content")
        .arg(doc)
        .args(["-out", "/dev/null"])
        .output()
        .expect("run openssl");
    out.status.success()
}

#[test]
fn cms_signatures_from_the_token_verify_with_openssl_and_refuse_tampering() {
    let tok = lab(Module::SoftHsm2);
    let mut t = token(&tok, SessionPolicy::default());
    t.verify_pin(
        pin(tok.user_pin()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for key_id in ["01", "02"] {
        let key = t
            .signer(&KeySelector::IdOrLabel(key_id.into()), SystemClock.wall())
            .unwrap();
        let docs: Vec<Vec<u8>> = (0..3)
            .map(|i| format!("%PDF-1.7 contract {i} for key {key_id}").into_bytes())
            .collect();
        let digests: Vec<Sha256Digest> = docs.iter().map(|d| Sha256Digest::of(d)).collect();
        let prepared: Vec<cms::PreparedSignature> = digests
            .iter()
            .map(|d| cms::prepare(d, SystemClock.wall()).unwrap())
            .collect();
        let to_sign: Vec<Sha256Digest> = prepared.iter().map(|p| p.to_sign).collect();
        let out = t.sign_batch(
            &key,
            &to_sign,
            &SystemClock,
            &CancelFlag::new(),
            &mut |_| {},
        );
        assert!(out.is_complete(), "{:?}", out.error);

        for signed in &out.signed {
            let i = signed.index;
            let p7s = cms::assemble(
                &prepared[i],
                &key.certificate_der,
                key.scheme,
                &signed.signature,
            )
            .unwrap();
            let verified = cms::verify_detached(&p7s, &digests[i]).unwrap();
            assert_eq!(verified.signer_cert_der, key.certificate_der);
            assert_eq!(verified.scheme, key.scheme);
            assert!(verified.signing_time.is_some());
            // Our verifier refuses another document.
            let other = Sha256Digest::of(b"another document");
            let err = cms::verify_detached(&p7s, &other).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SignatureInvalid);

            let doc_path = dir.path().join(format!("{key_id}-{i}.pdf"));
            let p7s_path = dir.path().join(format!("{key_id}-{i}.p7s"));
            std::fs::write(&doc_path, &docs[i]).unwrap();
            std::fs::write(&p7s_path, &p7s).unwrap();
            assert!(
                openssl_verifies(&p7s_path, &doc_path),
                "openssl refused {key_id}-{i}"
            );

            // A flipped byte in the document is refused.
            let mut tampered = docs[i].clone();
            tampered[0] ^= 0x01;
            let tampered_path = dir.path().join(format!("{key_id}-{i}.tampered.pdf"));
            std::fs::write(&tampered_path, &tampered).unwrap();
            assert!(!openssl_verifies(&p7s_path, &tampered_path));
            // A flipped byte in the signature is refused (by openssl and by us).
            let mut bad = p7s.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x01;
            let bad_path = dir.path().join(format!("{key_id}-{i}.bad.p7s"));
            std::fs::write(&bad_path, &bad).unwrap();
            assert!(!openssl_verifies(&bad_path, &doc_path));
            assert!(cms::verify_detached(&bad, &digests[i]).is_err());
        }
    }
}

#[test]
fn garbage_is_not_a_cms_signature() {
    let d = Sha256Digest::of(b"doc");
    for junk in [&b""[..], b"\x30\x03\x02\x01\x01", b"not der at all"] {
        let err = cms::verify_detached(junk, &d).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SignatureInvalid);
    }
}
