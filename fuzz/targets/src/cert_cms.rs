//! Certificates, raw and CMS signatures as a result posts them, the server's result
//! verification, signer trust (path building by rustls-webpki, policies) and CRLs.
//!
//! Input: a mode byte, then by mode:
//! * 0, certificate: DER → `CertificateInfo`, `VerifyingKey`, `SignerRequirement`;
//! * 1, raw signature: certificate (chunk), digest (32 bytes), signature (rest);
//! * 2, CMS: digest (32 bytes), detached CMS `SignedData` (rest);
//! * 3, trust: signer certificate (chunk), then chain certificates (chunks), judged
//!   against the fuzz anchor (`data/anchor.pem`) at [`NOW`];
//! * 4, CRL: DER or PEM CRL.
//!
//! Properties beyond "no panic": a certificate's thumbprint is the SHA-256 of its DER
//! and it meets a requirement naming that thumbprint (and its own subject values);
//! `VerifyingKey` and `CertificateInfo` agree on the scheme; a signature (raw or CMS)
//! that verifies for a digest does not verify for another one, and the server's
//! `verify_all` agrees with the core's verifiers; a trusted path runs from the signer
//! to the anchor.

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use securesign_core::cert::CertificateInfo;
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::signer::{SignerRequirement, SubjectRequirement};
use securesign_core::verify::VerifyingKey;
use securesign_server::http::verification::{verify_all, SignatureCheck, SigningWindow};
use securesign_server::signature_format::SignatureFormat;
use securesign_server::trust::crl::CrlEntry;
use securesign_server::trust::{Candidate, RevocationPolicy, SignerTrust, TrustSettings};

use crate::input::Input;

/// The time signers are judged at: 2027-01-01T00:00:00Z (the seed certificates are
/// valid then).
pub const NOW: i64 = 1_798_761_600;

/// The trust anchor of the `trust` mode (and of the seeds' certificates).
pub const ANCHOR_PEM: &str = include_str!("../data/anchor.pem");

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    match input.byte() % 5 {
        0 => certificate(input.rest()),
        1 => {
            let cert = input.chunk();
            let digest = digest_of(input.take(32));
            raw(cert, &digest, input.rest());
        }
        2 => {
            let digest = digest_of(input.take(32));
            cms_signature(&digest, input.rest());
        }
        3 => {
            let signer = input.chunk().to_vec();
            let mut chain = Vec::new();
            while !input.is_empty() && chain.len() < 8 {
                chain.push(input.chunk().to_vec());
            }
            trust(&signer, &chain);
        }
        _ => {
            let _ = CrlEntry::parse(input.rest(), "fuzz");
        }
    }
}

fn digest_of(bytes: &[u8]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest[..bytes.len()].copy_from_slice(bytes);
    digest
}

fn other(digest: &[u8; 32]) -> [u8; 32] {
    let mut changed = *digest;
    changed[31] ^= 1;
    changed
}

fn certificate(der: &[u8]) {
    let key = VerifyingKey::from_certificate_der(der);
    let Ok(info) = CertificateInfo::from_der(der) else {
        return;
    };
    assert_eq!(
        info.sha256_thumbprint,
        Sha256Digest::of(der).to_hex(),
        "thumbprint is not the SHA-256 of the DER"
    );
    if let Ok(key) = &key {
        assert_eq!(info.scheme, Some(key.algorithm()), "key and info disagree");
    }
    let _ = info.ensure_may_sign();
    let _ = info.validity_at(time::OffsetDateTime::UNIX_EPOCH);
    let by_thumbprint = SignerRequirement {
        certificate_sha256: vec![info.sha256_thumbprint.to_uppercase()],
        ..SignerRequirement::default()
    }
    .normalized()
    .expect("a thumbprint requirement is well formed");
    by_thumbprint
        .check(&info)
        .expect("a certificate meets the requirement naming its thumbprint");
    let subject = SubjectRequirement {
        serial_number: info.subject_serial_number.clone(),
        common_name: info.common_name.clone(),
    };
    let usable = |v: &Option<String>| {
        v.as_ref().is_some_and(|s| {
            let s = s.trim();
            !s.is_empty() && s.chars().count() <= 256 && !s.chars().any(char::is_control)
        })
    };
    if usable(&subject.serial_number) && usable(&subject.common_name) {
        if let Ok(by_subject) = (SignerRequirement {
            subject: Some(subject),
            ..SignerRequirement::default()
        })
        .normalized()
        {
            by_subject
                .check(&info)
                .expect("a certificate meets the requirement naming its own subject");
        }
    }
    for class in &info.india_pki {
        let by_class = SignerRequirement {
            policy_classes: vec![*class],
            ..SignerRequirement::default()
        };
        if let Ok(by_class) = by_class.normalized() {
            by_class
                .check(&info)
                .expect("a certificate meets its own class");
        }
    }
}

fn raw(cert: &[u8], digest: &[u8; 32], signature: &[u8]) {
    let Ok(key) = VerifyingKey::from_certificate_der(cert) else {
        return;
    };
    let verified = key.verify_digest(digest, signature).is_ok();
    let server = verify_all(
        SignatureFormat::Raw,
        cert,
        &[SignatureCheck {
            document_id: "d".into(),
            digest: *digest,
            signature: signature.to_vec(),
        }],
        SigningWindow::for_session(NOW, NOW),
    );
    assert_eq!(
        server.is_ok(),
        verified,
        "server and core disagree on a raw signature"
    );
    if verified {
        assert!(
            key.verify_digest(&other(digest), signature).is_err(),
            "a signature verifies for two digests"
        );
    }
}

fn cms_signature(digest: &[u8; 32], der: &[u8]) {
    let Ok(verified) = cms::verify_detached(der, &Sha256Digest(*digest)) else {
        return;
    };
    assert!(
        cms::verify_detached(der, &Sha256Digest(other(digest))).is_err(),
        "a CMS signature verifies for two digests"
    );
    let key = VerifyingKey::from_certificate_der(&verified.signer_cert_der)
        .expect("the verified signer certificate has a key");
    assert_eq!(key.algorithm(), verified.scheme);
    let checks = [SignatureCheck {
        document_id: "d".into(),
        digest: *digest,
        signature: der.to_vec(),
    }];
    let window = SigningWindow::for_session(i64::MIN, i64::MAX);
    let server = verify_all(
        SignatureFormat::Cms,
        &verified.signer_cert_der,
        &checks,
        window,
    )
    .expect("the server refuses a CMS signature the core verifies");
    assert_eq!(server.scheme, verified.scheme);
    for cert in &server.cms_certs {
        assert!(
            verified.other_certs_der.contains(cert),
            "a CMS certificate from nowhere"
        );
    }
    if let Some(at) = verified.signing_time {
        let at = i64::try_from(at).unwrap_or(i64::MAX);
        assert_eq!(server.signing_times, vec![at]);
    }
    // Another certificate than the one inside is refused.
    if let Some(other_cert) = verified
        .other_certs_der
        .iter()
        .find(|c| **c != verified.signer_cert_der)
    {
        if VerifyingKey::from_certificate_der(other_cert).is_ok() {
            assert!(
                verify_all(SignatureFormat::Cms, other_cert, &checks, window).is_err(),
                "a CMS signature accepted for another posted certificate"
            );
        }
    }
}

struct TrustEnv {
    runtime: tokio::runtime::Runtime,
    trust: Arc<SignerTrust>,
    anchor_sha256: String,
    _dir: tempfile::TempDir,
}

fn trust_env() -> &'static TrustEnv {
    static ENV: OnceLock<TrustEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let anchors = dir.path().join("anchor.pem");
        std::fs::write(&anchors, ANCHOR_PEM).expect("write the anchor");
        let trust = SignerTrust::load(&TrustSettings {
            anchors: Some(anchors),
            revocation: RevocationPolicy::BestEffort,
            ..TrustSettings::default()
        })
        .expect("the fuzz anchor loads");
        let pem_body: String = ANCHOR_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let anchor_der = BASE64.decode(pem_body).expect("anchor PEM");
        TrustEnv {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            trust: Arc::new(trust),
            anchor_sha256: Sha256Digest::of(&anchor_der).to_hex(),
            _dir: dir,
        }
    })
}

/// The signer trust of the fuzz anchor (revocation best effort: the seed certificates
/// name no CRL or OCSP, so nothing is fetched).
pub fn signer_trust() -> Arc<SignerTrust> {
    trust_env().trust.clone()
}

fn trust(signer: &[u8], chain: &[Vec<u8>]) {
    let env = trust_env();
    let times = [NOW - 60];
    let judged = env.runtime.block_on(env.trust.evaluate(
        Candidate {
            signer,
            chain,
            signing_times: &times,
            policy_classes: &[],
        },
        NOW,
    ));
    if let Ok(evidence) = judged {
        assert!(evidence.trusted);
        assert_eq!(evidence.sha256, Sha256Digest::of(signer).to_hex());
        assert_eq!(evidence.chain_sha256.first(), Some(&evidence.sha256));
        assert_eq!(evidence.chain_sha256.last(), Some(&env.anchor_sha256));
        let info = CertificateInfo::from_der(signer).expect("a trusted signer parses");
        assert!(
            info.ensure_may_sign().is_ok(),
            "trusted a signer that may not sign"
        );
    }
}
