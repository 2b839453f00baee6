//! One signing pass (`securesign_app::signing`) on a real SoftHSM2 token, in both formats:
//! raw signatures verify against the certificate; CMS signatures are detached `SignedData`
//! that the core's verifier and `openssl cms -verify` accept, and that fail on a changed
//! document. No server: this checks what the app would post.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use securesign_app::api::{Document, SignRequest, SignatureFormat, Tenant};
use securesign_app::signing::{sign_pending, Pending};
use securesign_core::backend::pkcs11::{Pkcs11Module, TokenSelector};
use securesign_core::batch::CancelFlag;
use securesign_core::clock::SystemClock;
use securesign_core::deeplink::RequestId;
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::token::{FinalTry, KeySelector};
use securesign_core::verify::verify_digest_signature;
use securesign_core::worker::TokenWorker;
use securesign_core::{cms, Pin};
use securesign_testlab::{LabToken, USER_PIN};

fn contents() -> Vec<Vec<u8>> {
    (1..=3)
        .map(|i| format!("Contract {i}: the parties agree.\n").into_bytes())
        .collect()
}

fn request(format: SignatureFormat) -> SignRequest {
    SignRequest {
        request_id: RequestId::parse("a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV").unwrap(),
        tenant: Tenant {
            id: "org_1".into(),
            display_name: "Example Portal".into(),
        },
        origin: "https://portal.example.gov.in".into(),
        expires_at: "2099-01-01T00:00:00Z".into(),
        documents: contents()
            .iter()
            .enumerate()
            .map(|(i, c)| Document {
                id: format!("doc-{i}"),
                name: format!("Contract {i}.pdf"),
                digest: Sha256Digest::of(c),
            })
            .collect(),
        signature_format: format,
        expected_signer: None,
    }
}

fn worker(token: &LabToken) -> TokenWorker {
    token.apply_env();
    let module = Pkcs11Module::discover(Some(token.module_path())).unwrap();
    let backend = module.open(&TokenSelector::Only).unwrap();
    let (worker, _events) = TokenWorker::spawn(
        Box::new(backend),
        SessionPolicy::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    worker
        .verify_pin(Pin::new(USER_PIN.to_owned()), FinalTry::NotConfirmed)
        .unwrap();
    worker
}

fn all(request: SignRequest) -> Pending {
    Pending {
        indices: (0..request.documents.len()).collect(),
        request,
        kept_certificate: None,
    }
}

fn key() -> KeySelector {
    KeySelector::IdOrLabel("01".into())
}

#[test]
fn raw_pass_signs_the_document_digests() {
    let token = LabToken::softhsm().unwrap();
    let w = worker(&token);
    let req = request(SignatureFormat::Raw);
    let result = sign_pending(&w, key(), all(req.clone()), CancelFlag::new()).unwrap();
    assert!(result.error.is_none());
    assert_eq!(result.signed.len(), 3);
    for (index, signature) in &result.signed {
        let digest = req.documents[*index].digest;
        verify_digest_signature(&result.certificate_der, &digest.0, signature).unwrap();
    }
}

#[test]
fn cms_pass_makes_detached_signed_data_that_openssl_accepts() {
    let token = LabToken::softhsm().unwrap();
    let w = worker(&token);
    let req = request(SignatureFormat::Cms);
    // Only documents 1 and 2 are left (0 was signed before): the pass signs those.
    let pending = Pending {
        indices: vec![1, 2],
        request: req.clone(),
        kept_certificate: None,
    };
    let result = sign_pending(&w, key(), pending, CancelFlag::new()).unwrap();
    assert!(result.error.is_none());
    let indices: Vec<usize> = result.signed.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, vec![1, 2]);

    let dir = tempfile::tempdir().unwrap();
    let docs = contents();
    for (index, der) in &result.signed {
        let verified = cms::verify_detached(der, &req.documents[*index].digest).unwrap();
        assert_eq!(verified.signer_cert_der, result.certificate_der);
        assert!(cms::verify_detached(der, &req.documents[0].digest).is_err());

        let p7s = dir.path().join(format!("doc-{index}.p7s"));
        let doc = dir.path().join(format!("doc-{index}.txt"));
        std::fs::write(&p7s, der).unwrap();
        std::fs::write(&doc, &docs[*index]).unwrap();
        assert!(openssl_verifies(&p7s, &doc), "openssl refused doc {index}");
        let mut changed = docs[*index].clone();
        changed[0] ^= 1;
        std::fs::write(&doc, changed).unwrap();
        assert!(!openssl_verifies(&p7s, &doc), "a changed document verified");
    }
}

fn openssl_verifies(p7s: &Path, doc: &Path) -> bool {
    Command::new("openssl")
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
        .unwrap()
        .status
        .success()
}

#[test]
fn a_kept_signature_of_another_certificate_means_signing_everything_again() {
    let token = LabToken::softhsm().unwrap();
    let w = worker(&token);
    let pending = Pending {
        indices: vec![2],
        request: request(SignatureFormat::Raw),
        kept_certificate: Some(b"another certificate".to_vec()),
    };
    let result = sign_pending(&w, key(), pending, CancelFlag::new()).unwrap();
    let indices: Vec<usize> = result.signed.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, vec![0, 1, 2]);
}
