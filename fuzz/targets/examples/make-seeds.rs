//! Writes the fuzz seeds (see `fuzz/make-seeds.sh`, which makes the PKI with openssl and
//! runs this): `make-seeds <pki dir> <seeds dir> [target...]` (every target when none is
//! named; `piv_card` needs only the certificates of the PKI, not its keys).

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use securesign_core::backend::SignatureScheme;
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_fuzz_targets::input::encode_chunk;
use securesign_fuzz_targets::server_bodies::{DOCUMENTS, LOCAL, NOW, PORTAL};
use serde_json::json;

const ID32: &str = "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV";

struct Seeds {
    root: PathBuf,
    /// Targets to write (all when empty).
    only: Vec<String>,
}

impl Seeds {
    fn wants(&self, target: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|t| t == target)
    }

    fn put(&self, target: &str, name: &str, data: &[u8]) {
        if !self.wants(target) {
            return;
        }
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

/// Signs a SHA-256 `digest` with `key` (PKCS#1 v1.5 DigestInfo for RSA, DER ECDSA for EC).
fn sign(pki: &Path, key: &str, digest: &[u8; 32]) -> Vec<u8> {
    let input = pki.join("to-sign.bin");
    std::fs::write(&input, digest).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-inkey"])
        .arg(pki.join(key))
        .arg("-in")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn cms_for(
    pki: &Path,
    key: &str,
    cert: &[u8],
    scheme: SignatureScheme,
    digest: &[u8; 32],
) -> Vec<u8> {
    let at = time::OffsetDateTime::from_unix_timestamp(NOW - 60).unwrap();
    let prepared = cms::prepare(&Sha256Digest(*digest), at).unwrap();
    let signature = sign(pki, key, &prepared.to_sign.0);
    cms::assemble(&prepared, cert, scheme, &signature).unwrap()
}

fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

fn with_sw(mut data: Vec<u8>, sw: [u8; 2]) -> Vec<u8> {
    data.extend_from_slice(&sw);
    data
}

fn cert_object(cert: &[u8], compressed: bool) -> Vec<u8> {
    let (body, info) = if compressed {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(cert).unwrap();
        (gz.finish().unwrap(), 1u8)
    } else {
        (cert.to_vec(), 0u8)
    };
    let mut inner = tlv(&[0x70], &body);
    inner.extend(tlv(&[0x71], &[info]));
    inner.extend(tlv(&[0xFE], &[]));
    tlv(&[0x53], &inner)
}

fn script(head: &[u8], answers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = head.to_vec();
    for answer in answers {
        encode_chunk(&mut out, answer);
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pki = PathBuf::from(&args[1]);
    let seeds = Seeds {
        root: PathBuf::from(&args[2]),
        only: args[3..].to_vec(),
    };
    let pki_file = |name: &str| std::fs::read(pki.join(name)).unwrap();

    // deeplink
    for (name, link) in [
        ("canonical", format!("securesign://sign?requestId={ID32}")),
        (
            "app-link",
            format!("https://securesign.toolsbots.com/sign?requestId={ID32}"),
        ),
        ("cases", format!("SecureSign://SIGN?requestId={ID32}")),
        (
            "extra",
            format!("securesign://sign?requestId={ID32}&api=https://evil.example"),
        ),
        ("prefix-only", "SECURESIGN:".to_owned()),
        (
            "other-host",
            format!("https://evil.example/sign?requestId={ID32}"),
        ),
        (
            "non-ascii",
            format!("securesign://sign?requestId={ID32}\u{e9}"),
        ),
    ] {
        seeds.put("deeplink", name, link.as_bytes());
    }

    // origin_url
    for (name, text) in [
        ("https", "https://portal.example.gov.in"),
        ("normalise", "HTTPS://Portal.Example.gov.in:443/"),
        ("local", "http://localhost:3000"),
        ("v6-loopback", "http://[::1]:8080"),
        ("idna", "https://b\u{fc}cher.example"),
        ("callback", "https://portal.example.gov.in/cb?x=1#f"),
        ("literal-v4", "http://127.0.0.1/cb"),
        ("hex-v4", "http://0x7f.1/cb"),
        ("mapped-v6", "https://[::ffff:169.254.169.254]/cb"),
        ("nat64", "https://[64:ff9b::a00:1]/cb"),
        ("credentials", "https://user:pw@a.example"),
        ("ftp", "ftp://a.example"),
    ] {
        seeds.put("origin_url", name, text.as_bytes());
    }
    let mut v6to4 = vec![0x20, 0x02, 10, 0, 0, 1];
    v6to4.extend_from_slice(&[0; 10]);
    seeds.put("origin_url", "address-6to4", &v6to4);
    let mut mapped = vec![0u8; 10];
    mapped.extend_from_slice(&[0xff, 0xff, 8, 8, 8, 8]);
    seeds.put("origin_url", "address-mapped", &mapped);

    // apdu_chain
    let mut get_data = vec![0x00, 0xCB, 0x3F, 0xFF, 0x01];
    encode_chunk(&mut get_data, &[0x5C, 0x03, 0x5F, 0xC1, 0x05]);
    seeds.put(
        "apdu_chain",
        "61xx",
        &script(
            &get_data,
            &[vec![1, 2, 0x61, 0x03], vec![3, 4, 5, 0x90, 0x00]],
        ),
    );
    let mut get = vec![0x00, 0xCA, 0x00, 0x00, 0x01];
    encode_chunk(&mut get, &[]);
    let mut sixteen = vec![7u8; 16];
    sixteen.extend_from_slice(&[0x90, 0x00]);
    seeds.put(
        "apdu_chain",
        "6cxx",
        &script(&get, &[vec![0x6C, 0x10], sixteen]),
    );
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x00];
    encode_chunk(
        &mut verify,
        &[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0xFF],
    );
    seeds.put(
        "apdu_chain",
        "verify-6cxx",
        &script(&verify, &[vec![0x6C, 0x10], vec![0x90, 0]]),
    );
    let mut long = vec![0x00, 0x87, 0x07, 0x9C, 0x01];
    encode_chunk(&mut long, &(0..300u16).map(|i| i as u8).collect::<Vec<_>>());
    seeds.put(
        "apdu_chain",
        "command-chaining",
        &script(
            &long,
            &[
                vec![0x90, 0x00],
                vec![9, 0x61, 0x02],
                vec![8, 7, 0x90, 0x00],
            ],
        ),
    );

    // piv_card: ops 0 info, 1 pin state, 2 login, 3 logout, 4 change, 5 unblock,
    // 6 certificates, 7 sign 9A EC, 8 sign 9C EC, 9 sign 9A RSA, 10 sign 9C RSA. The
    // signatures are shapes only (the backend checks the form, not the value): a DER
    // ECDSA (r = s = 1) and 256 bytes for RSA-2048.
    if seeds.wants("piv_card") {
        let ok = || vec![0x90, 0x00];
        let ec_sig = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
        let rsa_sig = [0x01; 256];
        let template = |sig: &[u8]| with_sw(tlv(&[0x7C], &tlv(&[0x82], sig)), [0x90, 0x00]);
        let head = |ops: &[u8], flags: u8| {
            let mut out = Vec::new();
            encode_chunk(&mut out, ops);
            out.push(flags);
            out
        };
        let (ec, rsa) = (pki_file("ec.der"), pki_file("rsa.der"));
        let object = cert_object(&ec, true);
        let (first, second) = object.split_at(object.len() / 2);
        for (name, ops, answers) in [
            (
                "certificates",
                &[6, 0][..],
                vec![
                    ok(),
                    with_sw(cert_object(&ec, false), [0x90, 0]),
                    with_sw(cert_object(&rsa, true), [0x90, 0]),
                ],
            ),
            (
                "certificate-chained",
                &[6],
                vec![
                    ok(),
                    with_sw(first.to_vec(), [0x61, second.len().min(255) as u8]),
                    with_sw(second.to_vec(), [0x90, 0]),
                    vec![0x6A, 0x82],
                ],
            ),
            // 9C: the status VERIFY (empty), VERIFY with the kept PIN, the signature.
            (
                "login-sign-ec",
                &[1, 2, 7, 8, 3],
                vec![
                    ok(),
                    vec![0x63, 0xC3],
                    ok(),
                    template(&ec_sig),
                    ok(),
                    ok(),
                    template(&ec_sig),
                    ok(),
                ],
            ),
            (
                "login-sign-rsa",
                &[2, 9, 10, 3],
                vec![
                    ok(),
                    ok(),
                    template(&rsa_sig),
                    ok(),
                    ok(),
                    template(&rsa_sig),
                    ok(),
                ],
            ),
            // Failures elsewhere since the login: two tries left, the kept PIN is wrong.
            (
                "9c-stale-pin",
                &[2, 8, 8],
                vec![
                    ok(),
                    ok(),
                    vec![0x63, 0xC2],
                    vec![0x63, 0xC1],
                    vec![0x63, 0xC1],
                ],
            ),
            // One try left: the kept PIN must not be sent.
            ("9c-final-try", &[2, 8], vec![ok(), ok(), vec![0x63, 0xC1]]),
            (
                "pin-errors",
                &[2, 4, 5, 1],
                vec![
                    ok(),
                    vec![0x63, 0x00],
                    vec![0x63, 0xC2],
                    vec![0x63, 0xC1],
                    vec![0x69, 0x83],
                    vec![0x63, 0xC1],
                ],
            ),
        ] {
            seeds.put("piv_card", name, &script(&head(ops, 0), &answers));
        }
    }

    if seeds.wants("cert_cms") {
        let (ca, ec, rsa) = (pki_file("ca.der"), pki_file("ec.der"), pki_file("rsa.der"));
        // cert_cms
        for (name, der) in [("ca", &ca), ("ec", &ec), ("rsa", &rsa)] {
            let mut data = vec![0];
            data.extend_from_slice(der);
            seeds.put("cert_cms", &format!("certificate-{name}"), &data);
        }
        let digest = [0x42u8; 32];
        for (name, cert, key, scheme) in [
            ("ec", &ec, "ec.key", SignatureScheme::EcdsaP256Sha256),
            ("rsa", &rsa, "rsa.key", SignatureScheme::RsaPkcs1Sha256),
        ] {
            let mut data = vec![1];
            encode_chunk(&mut data, cert);
            data.extend_from_slice(&digest);
            data.extend(sign(&pki, key, &digest));
            seeds.put("cert_cms", &format!("raw-{name}"), &data);
            let mut data = vec![2];
            data.extend_from_slice(&digest);
            data.extend(cms_for(&pki, key, cert, scheme, &digest));
            seeds.put("cert_cms", &format!("cms-{name}"), &data);
            let mut data = vec![3];
            encode_chunk(&mut data, cert);
            encode_chunk(&mut data, &ca);
            seeds.put("cert_cms", &format!("trust-{name}"), &data);
        }
        let mut crl = vec![4];
        crl.extend(pki_file("crl.der"));
        seeds.put("cert_cms", "crl-der", &crl);
        let mut crl = vec![4];
        crl.extend(pki_file("crl.pem"));
        seeds.put("cert_cms", "crl-pem", &crl);
    }

    if seeds.wants("server_bodies") {
        let (ca, ec, rsa) = (pki_file("ca.der"), pki_file("ec.der"), pki_file("rsa.der"));
        // server_bodies: selector bits 0-2 route, bit 4 live key.
        let body = |selector: u8, value: serde_json::Value| {
            let mut out = vec![selector];
            out.extend(value.to_string().into_bytes());
            out
        };
        for (name, selector, origin) in [
            ("validate-test", 0x00, PORTAL),
            ("validate-live", 0x10, PORTAL),
            ("validate-local", 0x00, LOCAL),
            ("validate-live-local", 0x10, LOCAL),
            (
                "validate-evil",
                0x00,
                "https://portal.example.gov.in.evil.com",
            ),
        ] {
            seeds.put(
                "server_bodies",
                name,
                &body(selector, json!({"origin": origin, "platform": "web"})),
            );
        }
        let documents: Vec<_> = DOCUMENTS
        .iter()
        .map(|(id, d)| json!({"id": id, "name": format!("{id}.pdf"), "digestAlgorithm": "SHA-256", "digest": BASE64.encode(d)}))
        .collect();
        seeds.put(
        "server_bodies",
        "session-full",
        &body(
            0x11,
            json!({"origin": PORTAL, "documents": documents, "ttlSeconds": 900,
                   "callbackUrl": "https://portal.example.gov.in/cb", "signatureFormat": "cms",
                   "signer": {"certificateSha256": [Sha256Digest::of(&ec).to_hex()],
                              "subject": {"serialNumber": "abcde1234f", "commonName": "Fuzz EC Signer"},
                              "policyClasses": ["class3"]}}),
        ),
    );
        seeds.put(
            "server_bodies",
            "session-local",
            &body(0x01, json!({"origin": LOCAL, "documents": documents})),
        );
        for (name, cert, key, scheme) in [
            ("ec", &ec, "ec.key", SignatureScheme::EcdsaP256Sha256),
            ("rsa", &rsa, "rsa.key", SignatureScheme::RsaPkcs1Sha256),
        ] {
            let raw: Vec<_> = DOCUMENTS
            .iter()
            .map(
                |(id, d)| json!({"documentId": id, "signature": BASE64.encode(sign(&pki, key, d))}),
            )
            .collect();
            let cms: Vec<_> = DOCUMENTS
            .iter()
            .map(|(id, d)| json!({"documentId": id, "signature": BASE64.encode(cms_for(&pki, key, cert, scheme, d))}))
            .collect();
            let raw = json!({"certificate": BASE64.encode(cert), "chain": [BASE64.encode(&ca)], "signatures": raw});
            let cms = json!({"certificate": BASE64.encode(cert), "signatures": cms});
            seeds.put(
                "server_bodies",
                &format!("result-raw-{name}"),
                &body(0x02, raw.clone()),
            );
            seeds.put(
                "server_bodies",
                &format!("result-raw-{name}-live"),
                &body(0x12, raw),
            );
            seeds.put(
                "server_bodies",
                &format!("result-cms-{name}"),
                &body(0x03, cms.clone()),
            );
            seeds.put(
                "server_bodies",
                &format!("result-cms-{name}-live"),
                &body(0x13, cms),
            );
        }
        seeds.put(
            "server_bodies",
            "request-id",
            format!("\x04{ID32}").as_bytes(),
        );
        seeds.put(
            "server_bodies",
            "origin-header",
            format!("\x05{PORTAL}").as_bytes(),
        );
        seeds.put(
            "server_bodies",
            "origin-header-other",
            b"\x05https://evil.example",
        );
    }
    println!("seeds written to {}", seeds.root.display());
}
