//! Signature formats over real HTTP on loopback and a real SQLite file: `raw` and `cms`
//! sessions end to end, with signatures made by the `openssl` CLI (and CMS built the way
//! the app builds it: core-prepared attributes signed by the key), and every way a CMS
//! result must be refused.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{b64, documents_json, session_ids, sha256, Fixture, Signer, PORTAL, T0};
use securesign_server::http::verification::SIGNING_TIME_SKEW_SECS;
use securesign_server::Clock;
use serde_json::{json, Value};

/// Creates a session with `signatureFormat` (omitted when `None`); returns the reply.
async fn create(f: &Fixture, digests: &[[u8; 32]], format: Option<Value>) -> common::Reply {
    let mut body = json!({"origin": PORTAL, "documents": documents_json(digests)});
    if let Some(format) = format {
        body["signatureFormat"] = format;
    }
    f.post_bearer("/v1/auth/session", &f.live_key, &body).await
}

fn ids(reply: &common::Reply) -> (String, String) {
    assert_eq!(reply.status, 201, "{}", reply.body);
    session_ids(&reply.body)
}

fn result_body(cert: &[u8], signatures: &[Vec<u8>]) -> Value {
    json!({
        "certificate": b64(cert),
        "signatures": signatures.iter().enumerate().map(|(i, s)| json!({
            "documentId": format!("doc-{i}"), "signature": b64(s)
        })).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn the_format_defaults_to_raw_and_anything_but_raw_or_cms_is_refused() {
    let f = Fixture::start().await;
    let digests = [sha256(b"a")];
    for bad in [
        json!("CMS"),
        json!("pkcs7"),
        json!(""),
        json!(1),
        json!(null),
    ] {
        let reply = create(&f, &digests, Some(bad.clone())).await;
        if bad.is_null() {
            // JSON null is "not given": the default applies.
            assert_eq!(reply.status, 201, "{}", reply.body);
        } else {
            reply.assert_error(400, "SS_BAD_REQUEST");
        }
    }
    for (format, expected) in [
        (None, "raw"),
        (Some(json!("raw")), "raw"),
        (Some(json!("cms")), "cms"),
    ] {
        let (session_id, request_id) = ids(&create(&f, &digests, format).await);
        let request = f.get(&format!("/v1/sign-requests/{request_id}")).await;
        assert_eq!(
            request.body["signatureFormat"], expected,
            "{}",
            request.body
        );
        let status = f
            .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
            .await;
        assert_eq!(status.body["signatureFormat"], expected, "{}", status.body);
    }
    f.stop().await;
}

#[tokio::test]
async fn a_raw_session_completes_with_raw_signatures_and_refuses_cms_ones() {
    let f = Fixture::start().await;
    let signer = Signer::new("rsa");
    let docs: [&[u8]; 3] = [b"one", b"two", b"three"];
    let digests = docs.map(sha256);
    let (session_id, request_id) = ids(&create(&f, &digests, Some(json!("raw"))).await);
    let path = format!("/v1/sign-requests/{request_id}/result");

    // A CMS where a raw signature is expected does not verify (and is too large).
    let cms: Vec<Vec<u8>> = docs
        .iter()
        .map(|d| signer.cms_sign_with_openssl(d))
        .collect();
    let refused = f.post(&path, &result_body(&signer.cert_der, &cms)).await;
    assert!(
        [400, 422].contains(&refused.status),
        "a CMS in a raw session must be refused: {}",
        refused.body
    );

    let raw: Vec<Vec<u8>> = digests.iter().map(|d| signer.sign(d)).collect();
    let ok = f.post(&path, &result_body(&signer.cert_der, &raw)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["signatureAlgorithm"], "RSA-PKCS1-SHA256");
    let done = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["signatureFormat"], "raw");
    for (i, sig) in raw.iter().enumerate() {
        assert_eq!(done.body["documents"][i]["signature"], b64(sig));
    }
    f.stop().await;
}

async fn cms_session_end_to_end(kind: &str) {
    // openssl stamps its signatures with the real time: the server's clock starts there.
    let f = Fixture::start_now().await;
    let signer = Signer::new(kind);
    let docs: [&[u8]; 3] = [b"%PDF-1.7 first", b"%PDF-1.7 second", b"%PDF-1.7 third"];
    let digests = docs.map(sha256);
    let (session_id, request_id) = ids(&create(&f, &digests, Some(json!("cms"))).await);
    let path = format!("/v1/sign-requests/{request_id}/result");

    // Documents 0 and 2 signed by `openssl cms -sign`, document 1 the app's way.
    let cms = vec![
        signer.cms_sign_with_openssl(docs[0]),
        signer.cms_sign_with_core(&digests[1], f.clock.now_unix()),
        signer.cms_sign_with_openssl(docs[2]),
    ];

    // A bare signature where a CMS is expected is refused.
    let raw: Vec<Vec<u8>> = digests.iter().map(|d| signer.sign(d)).collect();
    f.post(&path, &result_body(&signer.cert_der, &raw))
        .await
        .assert_error(422, "SS_SIGNATURE_INVALID");

    // One flipped byte in the signature value (the CMS's last bytes) is refused.
    let mut flipped = cms.clone();
    let last = flipped[1].len() - 1;
    flipped[1][last] ^= 0x01;
    let reply = f
        .post(&path, &result_body(&signer.cert_der, &flipped))
        .await;
    reply.assert_error(422, "SS_SIGNATURE_INVALID");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("doc-1"),
        "{}",
        reply.body
    );

    // A flipped byte anywhere in the message digest attribute, too: flip each byte of
    // the document digest where it sits inside the CMS.
    let at = cms[0]
        .windows(32)
        .position(|w| w == digests[0])
        .expect("the CMS carries the document digest");
    let mut flipped = cms.clone();
    flipped[0][at + 7] ^= 0x80;
    f.post(&path, &result_body(&signer.cert_der, &flipped))
        .await
        .assert_error(422, "SS_SIGNATURE_INVALID");

    // CMS for swapped documents: each valid, but not for its document.
    let swapped = vec![cms[1].clone(), cms[0].clone(), cms[2].clone()];
    f.post(&path, &result_body(&signer.cert_der, &swapped))
        .await
        .assert_error(422, "SS_SIGNATURE_INVALID");

    // A CMS made by another key and certificate, posted with our certificate.
    let stranger = Signer::new(kind);
    let mut foreign = cms.clone();
    foreign[2] = stranger.cms_sign_with_openssl(docs[2]);
    let reply = f
        .post(&path, &result_body(&signer.cert_der, &foreign))
        .await;
    reply.assert_error(422, "SS_SIGNATURE_INVALID");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another certificate"),
        "{}",
        reply.body
    );
    // All made by the stranger, but our certificate posted: refused as well.
    let all_stranger: Vec<Vec<u8>> = docs
        .iter()
        .map(|d| stranger.cms_sign_with_openssl(d))
        .collect();
    f.post(&path, &result_body(&signer.cert_der, &all_stranger))
        .await
        .assert_error(422, "SS_SIGNATURE_INVALID");
    // Garbage where a CMS should be.
    f.post(
        &path,
        &result_body(
            &signer.cert_der,
            &[b"junk".to_vec(), cms[1].clone(), cms[2].clone()],
        ),
    )
    .await
    .assert_error(422, "SS_SIGNATURE_INVALID");

    // None of the refusals completed the session.
    let pending = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(pending.body["status"], "pending", "{}", pending.body);

    let ok = f.post(&path, &result_body(&signer.cert_der, &cms)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let expected_alg = if kind == "rsa" {
        "RSA-PKCS1-SHA256"
    } else {
        "ECDSA-P256-SHA256"
    };
    assert_eq!(ok.body["signatureAlgorithm"], expected_alg);

    let done = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    assert_eq!(done.body["signatureFormat"], "cms");
    assert_eq!(done.body["signerCertificate"], b64(&signer.cert_der));
    for (i, sig) in cms.iter().enumerate() {
        assert_eq!(
            done.body["documents"][i]["signature"],
            b64(sig),
            "as posted"
        );
    }
    f.stop().await;
}

#[tokio::test]
async fn a_cms_session_with_rsa_completes_only_with_valid_cms_by_the_posted_certificate() {
    cms_session_end_to_end("rsa").await;
}

#[tokio::test]
async fn a_cms_session_with_ecdsa_p256_completes_only_with_valid_cms_by_the_posted_certificate() {
    cms_session_end_to_end("ec").await;
}

#[tokio::test]
async fn a_500_document_cms_result_fits_the_result_body_limit() {
    let f = Fixture::start_now().await;
    // RSA-4096: a certificate and signature the size of real DSC ones.
    let signer = Signer::new("rsa4096");
    // The same document 500 times (ids differ), so one openssl run signs them all.
    let digests = vec![sha256(b"the same form, 500 times"); 500];
    let (session_id, request_id) = ids(&create(&f, &digests, Some(json!("cms"))).await);
    let cms = signer.cms_sign_with_openssl(b"the same form, 500 times");
    let body = result_body(&signer.cert_der, &vec![cms; 500]);
    assert!(
        serde_json::to_vec(&body).unwrap().len() > 1024 * 1024,
        "the body should exceed the general 1 MiB limit"
    );
    let ok = f
        .post(&format!("/v1/sign-requests/{request_id}/result"), &body)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let done = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(done.body["documents"].as_array().unwrap().len(), 500);
    f.stop().await;
}

/// A CMS whose signing time lies outside its session (before it was created, or after
/// the result arrived, beyond the allowed clock skew) is refused; inside the skew it
/// passes.
#[tokio::test]
async fn a_cms_signing_time_outside_the_session_is_refused() {
    let f = Fixture::start().await;
    let signer = Signer::new("ec");
    let digest = sha256(b"%PDF-1.7 dated");
    let (session_id, request_id) = ids(&create(&f, &[digest], Some(json!("cms"))).await);
    let path = format!("/v1/sign-requests/{request_id}/result");
    // The result arrives five minutes after the session was created at T0 (it lives 10).
    f.clock.advance(std::time::Duration::from_secs(300));
    let now = f.clock.now_unix();

    for (signed_at, why) in [
        (
            T0 - SIGNING_TIME_SKEW_SECS - 1,
            "before the session, beyond the skew",
        ),
        (T0 - 86_400, "a day before the session"),
        (
            now + SIGNING_TIME_SKEW_SECS + 1,
            "after the result, beyond the skew",
        ),
    ] {
        let cms = signer.cms_sign_with_core(&digest, signed_at);
        let reply = f.post(&path, &result_body(&signer.cert_der, &[cms])).await;
        reply.assert_error(422, "SS_SIGNATURE_INVALID");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("outside its session"), "{why}: {message}");
    }
    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(status.body["status"], "pending", "nothing was accepted");

    // A phone clock four minutes slow is within the skew.
    let cms = signer.cms_sign_with_core(&digest, T0 - 240);
    let ok = f.post(&path, &result_body(&signer.cert_der, &[cms])).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    f.stop().await;
}
