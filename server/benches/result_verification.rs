//! Cost of verifying a signing result per document: a detached CMS (`cms::verify_detached`
//! plus the certificate comparison) against the raw signature check of the same key in
//! the same run (the baseline), for RSA-2048 and ECDSA P-256. Also the HMAC of a
//! 500-document `session.completed` callback body.
//!
//! Run: `cargo bench -p securesign-server --bench result_verification` (needs the
//! `openssl` CLI: `server/install-test-deps.sh`). Not part of CI.

// A benchmark binary: a failure should stop it with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use securesign_server::http::verification::{verify_all, SignatureCheck, SigningWindow};
use securesign_server::signature_format::SignatureFormat;
use securesign_server::webhook::WebhookSecret;
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

/// (certificate DER, raw signature over the digest, detached CMS over the document).
fn material(dir: &Path, algorithm: &[&str], document: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (key, cert_pem, doc, digest) = (p("key.pem"), p("cert.pem"), p("doc.bin"), p("digest.bin"));
    let mut genpkey = vec!["genpkey"];
    genpkey.extend_from_slice(algorithm);
    genpkey.extend_from_slice(&["-out", &key]);
    openssl(&genpkey);
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        &key,
        "-subj",
        "/CN=Bench Signer",
        "-days",
        "30",
        "-out",
        &cert_pem,
    ]);
    let cert = openssl(&["x509", "-in", &cert_pem, "-outform", "DER"]);
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
    for (name, algorithm) in [
        (
            "RSA-2048",
            ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            "ECDSA P-256",
            ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (cert, raw, cms) = material(dir.path(), &algorithm, document);
        let raw_time = per_document(SignatureFormat::Raw, &cert, &checks(&raw));
        let cms_time = per_document(SignatureFormat::Cms, &cert, &checks(&cms));
        println!(
            "{name:<12} raw (baseline): {:>8.1} us/document   cms: {:>8.1} us/document  ({:.2}x baseline)",
            us(raw_time),
            us(cms_time),
            cms_time.as_secs_f64() / raw_time.as_secs_f64()
        );
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
