//! Cost of verifying a signing result per document: a detached CMS (`cms::verify_detached`
//! plus the certificate comparison) against the raw signature check of the same key in
//! the same run (the baseline), for RSA-2048 and ECDSA P-256; then the same results with
//! the signer's trust judged as the server does it (path to the lab root through the
//! licensed CA, key usage, class 3 policy, CRLs of both CAs loaded from a directory, i.e.
//! cached), for results of 1 and of 10 documents. Also the HMAC of a 500-document
//! `session.completed` callback body.
//!
//! Run: `cargo bench -p securesign-server --bench result_verification` (needs the
//! `openssl` CLI: `server/install-test-deps.sh`). Not part of CI.

// A benchmark binary: a failure should stop it with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use securesign_core::cert::IndiaPkiClass;
use securesign_server::http::verification::{verify_all, SignatureCheck, SigningWindow};
use securesign_server::signature_format::SignatureFormat;
use securesign_server::trust::{Candidate, RevocationPolicy, SignerTrust, TrustSettings};
use securesign_server::webhook::WebhookSecret;
use securesign_testlab::{CrlFreshness, DscSpec, LabKey, LabPki, PkiUrls};
use sha2::{Digest, Sha256};

const DOCUMENTS: usize = 100;
const ROUNDS: u32 = 20;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// (certificate DER, raw signature over the digest, detached CMS over the document), the
/// certificate a class 3 DSC of the lab's licensed CA.
fn material(
    dir: &Path,
    pki: &LabPki,
    key_kind: LabKey,
    document: &[u8],
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (doc, digest) = (p("doc.bin"), p("digest.bin"));
    let issued = pki
        .issue(&DscSpec {
            key: key_kind,
            crl_dp: false,
            ocsp: false,
            ..DscSpec::class3("Bench Signer")
        })
        .unwrap();
    let key = issued.key_pem.to_str().unwrap().to_owned();
    let cert_pem = issued.cert_pem.to_str().unwrap().to_owned();
    let cert = issued.cert_der.clone();
    std::fs::write(&doc, document).unwrap();
    std::fs::write(&digest, Sha256::digest(document)).unwrap();
    let raw = openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        &key,
        "-pkeyopt",
        "digest:sha256",
        "-in",
        &digest,
    ]);
    let cms = openssl(&[
        "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-in", &doc, "-signer",
        &cert_pem, "-inkey", &key,
    ]);
    (cert, raw, cms)
}

/// A session created a minute ago, its result arriving now (openssl signs at "now").
fn window_now() -> SigningWindow {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    SigningWindow::for_session(now - 60, now)
}

fn per_document(format: SignatureFormat, cert: &[u8], checks: &[SignatureCheck]) -> Duration {
    let window = window_now();
    verify_all(format, cert, checks, window).unwrap();
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(verify_all(format, black_box(cert), black_box(checks), window).unwrap());
    }
    start.elapsed() / (ROUNDS * u32::try_from(checks.len()).unwrap())
}

/// [`per_document`] plus the signer's trust judged as the result handler does it.
fn per_document_trusted(
    trust: &SignerTrust,
    runtime: &tokio::runtime::Runtime,
    format: SignatureFormat,
    cert: &[u8],
    checks: &[SignatureCheck],
) -> Duration {
    let window = window_now();
    let now = window.latest - 5 * 60;
    let judge = || {
        let verified = verify_all(format, black_box(cert), black_box(checks), window).unwrap();
        let evidence = runtime
            .block_on(trust.evaluate(
                Candidate {
                    signer: cert,
                    chain: &verified.cms_certs,
                    signing_times: &verified.signing_times,
                    policy_classes: &[IndiaPkiClass::Class3],
                },
                now,
            ))
            .unwrap();
        assert!(evidence.trusted);
        black_box(evidence);
    };
    judge();
    let start = Instant::now();
    for _ in 0..ROUNDS {
        judge();
    }
    start.elapsed() / (ROUNDS * u32::try_from(checks.len()).unwrap())
}

fn main() {
    let document = b"%PDF-1.7 a form to sign".as_slice();
    let digest: [u8; 32] = Sha256::digest(document).into();
    let checks = |signature: &[u8]| -> Vec<SignatureCheck> {
        (0..DOCUMENTS)
            .map(|i| SignatureCheck {
                document_id: format!("doc-{i}"),
                digest,
                signature: signature.to_vec(),
            })
            .collect()
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = LabPki::create(pki_dir.path(), PkiUrls::default()).unwrap();
    let trust = SignerTrust::load(&TrustSettings {
        anchors: Some(pki.root_pem().to_owned()),
        intermediates: Some(pki.ca_pem().to_owned()),
        crl_dir: Some(pki.publish_crls(CrlFreshness::Current).unwrap()),
        revocation: RevocationPolicy::Required,
        allow_private_fetches: false,
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, key_kind) in [("RSA-2048", LabKey::Rsa), ("ECDSA P-256", LabKey::Ec)] {
        let dir = tempfile::tempdir().unwrap();
        let (cert, raw, cms) = material(dir.path(), &pki, key_kind, document);
        let raw_time = per_document(SignatureFormat::Raw, &cert, &checks(&raw));
        let cms_time = per_document(SignatureFormat::Cms, &cert, &checks(&cms));
        println!(
            "{name:<12} raw (baseline): {:>8.1} us/document   cms: {:>8.1} us/document  ({:.2}x baseline)",
            us(raw_time),
            us(cms_time),
            cms_time.as_secs_f64() / raw_time.as_secs_f64()
        );
        for documents in [1, 10] {
            for (format, signature) in [(SignatureFormat::Raw, &raw), (SignatureFormat::Cms, &cms)]
            {
                let checks: Vec<SignatureCheck> =
                    checks(signature).into_iter().take(documents).collect();
                let plain = per_document(format, &cert, &checks);
                let trusted = per_document_trusted(&trust, &runtime, format, &cert, &checks);
                println!(
                    "{name:<12} {:<3} {documents:>2} document(s): signatures only {:>8.1} us/document, with chain + cached CRLs {:>8.1} us/document  ({:.2}x)",
                    format.as_str(),
                    us(plain),
                    us(trusted),
                    trusted.as_secs_f64() / plain.as_secs_f64()
                );
            }
        }
    }

    // The HMAC over the largest common callback: 500 CMS documents of ~2 KB each.
    let body = "x".repeat(500 * 2900);
    let secret = WebhookSecret::generate();
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(secret.signature_header(1_782_122_400, black_box(body.as_bytes())));
    }
    let hmac = start.elapsed() / ROUNDS;
    println!(
        "HMAC of a {} KB callback body: {:.0} us",
        body.len() / 1024,
        us(hmac)
    );
}
