//! The REST API over real HTTP on loopback against an in-process server with a real
//! SQLite file and a manual clock (expiry, grace and rate-limit windows without sleeping).

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{b64, documents_json, sha256, Fixture, Signer, LOCAL, PORTAL};
use securesign_server::api_key::{ApiKeySecret, KeyMode};
use serde_json::{json, Value};

#[tokio::test]
async fn validate_accepts_both_auth_headers_with_the_exact_seed_body() {
    let f = Fixture::start().await;
    let reply = f.validate(&f.live_key, PORTAL).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"success": true, "tenantId": f.tenant_id, "allowed": true, "rateLimit": {"rpm": 120}})
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("ratelimit-limit"), Some("120"));
    assert_eq!(reply.header("ratelimit-remaining"), Some("119"));
    let again = f.validate(&f.live_key, PORTAL).await;
    assert_eq!(again.body, reply.body, "the cached answer is the same JSON");
    assert_eq!(again.header("ratelimit-remaining"), Some("118"));

    let reply = common::Reply::from(
        f.http
            .post(f.url("/v1/auth/validate"))
            .header("X-SecureSign-Api-Key", &f.live_key)
            .json(&json!({"origin": PORTAL, "platform": "web"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["tenantId"], f.tenant_id.as_str());
    f.stop().await;
}

#[tokio::test]
async fn malformed_mistyped_unknown_missing_and_conflicting_keys_are_401() {
    let f = Fixture::start().await;
    let body = json!({"origin": PORTAL, "platform": "web"});
    let mut typo = f.live_key.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    let unknown = ApiKeySecret::generate(KeyMode::Live);
    for key in [
        "ss_live_abc123xyz",
        typo.as_str(),
        unknown.expose(),
        "",
        "sk_live_x",
    ] {
        let reply = f.post_bearer("/v1/auth/validate", key, &body).await;
        reply.assert_error(401, "SS_API_KEY_INVALID");
        assert!(reply.header("www-authenticate").is_some());
    }
    let reply = f.post("/v1/auth/validate", &body).await;
    reply.assert_error(401, "SS_API_KEY_INVALID");

    let reply = common::Reply::from(
        f.http
            .post(f.url("/v1/auth/validate"))
            .bearer_auth(&f.live_key)
            .header("X-SecureSign-Api-Key", &f.test_key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(401, "SS_API_KEY_INVALID");
    f.stop().await;
}

#[tokio::test]
async fn revoked_key_is_refused_on_the_next_request() {
    let f = Fixture::start().await;
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.admin().revoke_key(&f.live_key_id).await.unwrap();
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    f.stop().await;
}

#[tokio::test]
async fn rolled_key_works_inside_grace_and_is_refused_after_it() {
    let f = Fixture::start().await;
    let new = f
        .admin()
        .roll_key(&f.live_key_id, Duration::from_secs(3600))
        .await
        .unwrap();
    let new_key = new.secret.expose().to_owned();
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(f.validate(&new_key, PORTAL).await.status, 200);
    f.clock.advance(Duration::from_secs(3599));
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.clock.advance(Duration::from_secs(1));
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    assert_eq!(f.validate(&new_key, PORTAL).await.status, 200);
    f.stop().await;
}

#[tokio::test]
async fn wrong_missing_lookalike_and_plain_http_origins_are_refused() {
    let f = Fixture::start().await;
    for origin in [
        "https://portal.example.gov.in.evil.com",
        "https://evil.example.com",
        "https://portal.example.gov.in:8443",
        "http://portal.example.gov.in",
        LOCAL, // whitelisted, but a live key needs https
    ] {
        f.validate(&f.live_key, origin)
            .await
            .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    }
    // A test key may use http://localhost, but not a non-whitelisted port.
    assert_eq!(f.validate(&f.test_key, LOCAL).await.status, 200);
    f.validate(&f.test_key, "http://localhost:4000")
        .await
        .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    // Missing and malformed origins are bad requests.
    f.post_bearer(
        "/v1/auth/validate",
        &f.live_key,
        &json!({"platform": "web"}),
    )
    .await
    .assert_error(400, "SS_BAD_REQUEST");
    f.validate(&f.live_key, "portal.example.gov.in")
        .await
        .assert_error(400, "SS_BAD_REQUEST");
    f.stop().await;
}

#[tokio::test]
async fn non_canonical_spellings_are_normalised_or_refused_exactly_as_the_url_parser_says() {
    let f = Fixture::start().await;
    for same in [
        "https://portal.example.gov.in/",
        "HTTPS://Portal.Example.GOV.in",
        "https://portal.example.gov.in:443",
    ] {
        let reply = f.validate(&f.live_key, same).await;
        assert_eq!(reply.status, 200, "{same}: {}", reply.body);
    }
    for other in [
        "https://portal.example.gov.in.",
        "https://portal.example.gov.in.evil.com",
        "https://portal.example.gov.in:8443",
        "http://portal.example.gov.in:443",
        "https://xn--portal-example.gov.in",
    ] {
        f.validate(&f.live_key, other)
            .await
            .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    }
    for malformed in [
        "https://user@portal.example.gov.in",
        "https://user:pw@portal.example.gov.in",
        "https://portal.example.gov.in//",
        "https://portal.example.gov.in/?",
        "https://portal.example.gov.in#",
        "portal.example.gov.in",
        "",
    ] {
        f.validate(&f.live_key, malformed)
            .await
            .assert_error(400, "SS_BAD_REQUEST");
    }
    f.stop().await;
}

#[tokio::test]
async fn origin_header_must_agree_with_the_body() {
    let f = Fixture::start().await;
    let send = |origin_header: &'static str| {
        f.http
            .post(f.url("/v1/auth/validate"))
            .bearer_auth(&f.live_key)
            .header("Origin", origin_header)
            .json(&json!({"origin": PORTAL, "platform": "web"}))
            .send()
    };
    let ok = common::Reply::from(send(PORTAL).await.unwrap()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let bad = common::Reply::from(
        send("https://portal.example.gov.in.evil.com")
            .await
            .unwrap(),
    )
    .await;
    bad.assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    f.stop().await;
}

#[tokio::test]
async fn two_origin_headers_are_refused_even_when_one_matches() {
    let f = Fixture::start().await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.append("Origin", PORTAL.parse().unwrap());
    headers.append("Origin", "https://evil.example".parse().unwrap());
    let reply = common::Reply::from(
        f.http
            .post(f.url("/v1/auth/validate"))
            .bearer_auth(&f.live_key)
            .headers(headers)
            .json(&json!({"origin": PORTAL, "platform": "web"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    assert_eq!(
        reply.header("ratelimit-limit"),
        Some("120"),
        "an authenticated request's refusal still carries the RateLimit headers"
    );
    assert_eq!(reply.header("ratelimit-policy"), Some("120;w=60"));
    f.stop().await;
}

#[tokio::test]
async fn the_121st_request_in_a_minute_is_rate_limited() {
    let f = Fixture::start().await;
    for i in 0..120 {
        let reply = f.validate(&f.live_key, PORTAL).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
    }
    let reply = f.validate(&f.live_key, PORTAL).await;
    reply.assert_error(429, "SS_RATE_LIMITED");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("ratelimit-limit"), Some("120"));
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    // Other keys have their own budget.
    assert_eq!(f.validate(&f.test_key, PORTAL).await.status, 200);
    f.clock.advance(Duration::from_secs(60));
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.stop().await;
}

#[tokio::test]
async fn an_origin_with_json_escapes_is_decoded_and_a_non_json_content_type_is_400() {
    let f = Fixture::start().await;
    let raw = |content_type: &'static str, body: &'static str| {
        f.http
            .post(f.url("/v1/auth/validate"))
            .bearer_auth(&f.live_key)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let escaped = r#"{"origin":"https:\/\/portal.ex\u0061mple.gov.in","platform":"web"}"#;
    let reply = common::Reply::from(raw("application/json", escaped).await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let evil = r#"{"origin":"https:\/\/portal.example.gov.in.evil.com","platform":"web"}"#;
    common::Reply::from(raw("application/json", evil).await.unwrap())
        .await
        .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    let plain = r#"{"origin":"https://portal.example.gov.in","platform":"web"}"#;
    let reply =
        common::Reply::from(raw("application/json; charset=utf-8", plain).await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        common::Reply::from(raw(content_type, plain).await.unwrap())
            .await
            .assert_error(400, "SS_BAD_REQUEST");
    }
    f.stop().await;
}

#[tokio::test]
async fn malformed_unknown_field_and_oversize_bodies_are_400() {
    let f = Fixture::start().await;
    let raw = |body: String| {
        f.http
            .post(f.url("/v1/auth/validate"))
            .bearer_auth(&f.live_key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        r#"{"origin":"https://portal.example.gov.in","platform":"web""#.to_owned(),
        r#"{"origin":"https://portal.example.gov.in","platform":"web","extra":1}"#.to_owned(),
        r#"{"origin":"https://portal.example.gov.in","platform":"fax"}"#.to_owned(),
        format!(
            r#"{{"origin":"{}","platform":"web"}}"#,
            "a".repeat(2 * 1024 * 1024)
        ),
    ] {
        common::Reply::from(raw(body).await.unwrap())
            .await
            .assert_error(400, "SS_BAD_REQUEST");
    }
    f.stop().await;
}

#[tokio::test]
async fn session_requests_are_validated() {
    let f = Fixture::start().await;
    let digest = sha256(b"doc");
    let ok_doc =
        json!({"id": "a", "name": "a.pdf", "digestAlgorithm": "SHA-256", "digest": b64(&digest)});
    let many: Vec<[u8; 32]> = (0..501u32).map(|i| sha256(&i.to_be_bytes())).collect();
    for body in [
        json!({"origin": PORTAL, "documents": []}),
        json!({"origin": PORTAL, "documents": documents_json(&many)}),
        json!({"origin": PORTAL, "documents": [ok_doc, ok_doc]}),
        json!({"origin": PORTAL, "documents": [{"id": "a", "name": "a", "digestAlgorithm": "SHA-1", "digest": b64(&digest)}]}),
        json!({"origin": PORTAL, "documents": [{"id": "a", "name": "a", "digestAlgorithm": "SHA-256", "digest": b64(&digest[..31])}]}),
        json!({"origin": PORTAL, "documents": [ok_doc], "ttlSeconds": 3601}),
        json!({"origin": PORTAL, "documents": [ok_doc], "ttlSeconds": 0}),
        json!({"origin": PORTAL, "documents": [ok_doc], "callbackUrl": "not a url"}),
    ] {
        f.post_bearer("/v1/auth/session", &f.live_key, &body)
            .await
            .assert_error(400, "SS_BAD_REQUEST");
    }
    f.post_bearer(
        "/v1/auth/session",
        &f.live_key,
        &json!({"origin": PORTAL, "documents": [ok_doc], "callbackUrl": "https://evil.example.com/cb"}),
    )
    .await
    .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");

    let digests: Vec<[u8; 32]> = (0..500u32).map(|i| sha256(&i.to_be_bytes())).collect();
    let reply = f
        .post_bearer(
            "/v1/auth/session",
            &f.live_key,
            &json!({"origin": PORTAL, "documents": documents_json(&digests),
                    "ttlSeconds": 3600, "callbackUrl": "https://portal.example.gov.in/signed?x=1"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    f.stop().await;
}

#[tokio::test]
async fn session_answer_has_the_seed_shape_and_a_secret_free_deep_link() {
    let f = Fixture::start().await;
    let digest = sha256(b"contract");
    let reply = f
        .post_bearer(
            "/v1/auth/session",
            &f.live_key,
            &json!({"origin": PORTAL, "documents": documents_json(&[digest])}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let obj = reply.body.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["appLink", "deepLink", "expiresAt", "sessionId"]);
    assert!(reply.body["sessionId"]
        .as_str()
        .unwrap()
        .starts_with("sess_"));
    // Default TTL 600 s from T0 = 2026-06-22T10:00:00Z.
    assert_eq!(reply.body["expiresAt"], "2026-06-22T10:10:00Z");
    let link = reply.body["deepLink"].as_str().unwrap();
    let request_id = link.strip_prefix("securesign://sign?requestId=").unwrap();
    assert_eq!(request_id.len(), 32);
    assert!(request_id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(!link.contains(&f.live_key[8..]) && !link.contains(&b64(&digest)));
    f.stop().await;
}

async fn sign_flow(kind: &str) {
    let f = Fixture::start().await;
    let signer = Signer::new(kind);
    let digests = [sha256(b"one"), sha256(b"two")];
    let (session_id, request_id) = f.create_session(&digests, None).await;

    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(status.body["status"], "pending", "{}", status.body);

    let request = f.get(&format!("/v1/sign-requests/{request_id}")).await;
    assert_eq!(request.status, 200, "{}", request.body);
    assert_eq!(request.body["tenant"]["displayName"], "Example Portal");
    assert_eq!(request.body["origin"], PORTAL);
    assert_eq!(request.body["documents"][1]["digest"], b64(&digests[1]));

    // Signatures swapped between documents: each is valid, but not for its document.
    let sigs: Vec<Vec<u8>> = digests.iter().map(|d| signer.sign(d)).collect();
    let result_path = format!("/v1/sign-requests/{request_id}/result");
    let swapped = json!({"certificate": b64(&signer.cert_der), "signatures": [
        {"documentId": "doc-0", "signature": b64(&sigs[1])},
        {"documentId": "doc-1", "signature": b64(&sigs[0])},
    ]});
    f.post(&result_path, &swapped)
        .await
        .assert_error(422, "SS_SIGNATURE_INVALID");
    // Right signatures, wrong certificate.
    let stranger = Signer::new(kind);
    let good_sigs = json!([
        {"documentId": "doc-0", "signature": b64(&sigs[0])},
        {"documentId": "doc-1", "signature": b64(&sigs[1])},
    ]);
    f.post(
        &result_path,
        &json!({"certificate": b64(&stranger.cert_der), "signatures": good_sigs}),
    )
    .await
    .assert_error(422, "SS_SIGNATURE_INVALID");
    f.post(
        &result_path,
        &json!({"certificate": b64(b"junk"), "signatures": good_sigs}),
    )
    .await
    .assert_error(422, "SS_CERT_INVALID");
    f.post(
        &result_path,
        &json!({"certificate": b64(&signer.cert_der), "signatures": [good_sigs[0]]}),
    )
    .await
    .assert_error(400, "SS_BAD_REQUEST");

    let ok = f
        .post(
            &result_path,
            &json!({"certificate": b64(&signer.cert_der), "signatures": good_sigs}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["status"], "completed");

    f.post(
        &result_path,
        &json!({"certificate": b64(&signer.cert_der), "signatures": good_sigs}),
    )
    .await
    .assert_error(409, "SS_CONFLICT");
    f.get(&format!("/v1/sign-requests/{request_id}"))
        .await
        .assert_error(409, "SS_CONFLICT");

    let done = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    assert_eq!(done.body["signerCertificate"], b64(&signer.cert_der));
    assert_eq!(done.body["documents"][0]["signature"], b64(&sigs[0]));
    assert_eq!(done.body["documents"][1]["signature"], b64(&sigs[1]));
    f.stop().await;
}

#[tokio::test]
async fn rsa_result_is_verified_completes_once_and_reaches_the_portal() {
    sign_flow("rsa").await;
}

#[tokio::test]
async fn ecdsa_p256_result_is_verified_completes_once_and_reaches_the_portal() {
    sign_flow("ec").await;
}

#[tokio::test]
async fn after_expires_at_everything_answers_session_expired() {
    let f = Fixture::start().await;
    let signer = Signer::new("ec");
    let digest = sha256(b"late");
    let (session_id, request_id) = f.create_session(&[digest], Some(60)).await;
    f.clock.advance(Duration::from_secs(59));
    assert_eq!(
        f.get(&format!("/v1/sign-requests/{request_id}"))
            .await
            .status,
        200
    );
    f.clock.advance(Duration::from_secs(1));
    f.get(&format!("/v1/sign-requests/{request_id}"))
        .await
        .assert_error(410, "SS_SESSION_EXPIRED");
    let result = json!({"certificate": b64(&signer.cert_der),
        "signatures": [{"documentId": "doc-0", "signature": b64(&signer.sign(&digest))}]});
    f.post(&format!("/v1/sign-requests/{request_id}/result"), &result)
        .await
        .assert_error(410, "SS_SESSION_EXPIRED");
    f.post(
        &format!("/v1/sign-requests/{request_id}/cancel"),
        &json!({}),
    )
    .await
    .assert_error(410, "SS_SESSION_EXPIRED");
    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(status.body["status"], "expired");
    assert_eq!(status.body["error"]["code"], "SS_SESSION_EXPIRED");
    f.stop().await;
}

#[tokio::test]
async fn cancel_ends_the_request_with_sign_cancelled() {
    let f = Fixture::start().await;
    let (session_id, request_id) = f.create_session(&[sha256(b"x")], None).await;
    let cancel = f
        .post(
            &format!("/v1/sign-requests/{request_id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.body["code"], "SS_SIGN_CANCELLED");
    f.get(&format!("/v1/sign-requests/{request_id}"))
        .await
        .assert_error(409, "SS_SIGN_CANCELLED");
    f.post(
        &format!("/v1/sign-requests/{request_id}/cancel"),
        &json!({}),
    )
    .await
    .assert_error(409, "SS_SIGN_CANCELLED");
    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(status.body["status"], "cancelled");
    assert_eq!(status.body["error"]["code"], "SS_SIGN_CANCELLED");
    f.stop().await;
}

#[tokio::test]
async fn sessions_are_private_to_their_tenant_and_unknown_ids_are_404() {
    let f = Fixture::start().await;
    let (session_id, _) = f.create_session(&[sha256(b"x")], None).await;
    let other = f.admin().create_tenant("Other Portal").await.unwrap();
    let other_key = f
        .admin()
        .create_key(&other.id, KeyMode::Live, 120)
        .await
        .unwrap();
    f.get_bearer(
        &format!("/v1/auth/session/{session_id}"),
        other_key.secret.expose(),
    )
    .await
    .assert_error(404, "SS_NOT_FOUND");
    f.get("/v1/sign-requests/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .assert_error(404, "SS_NOT_FOUND");
    f.get("/v1/nothing-here")
        .await
        .assert_error(404, "SS_NOT_FOUND");
    f.stop().await;
}

#[tokio::test]
async fn openapi_document_and_health_are_served() {
    let f = Fixture::start().await;
    let health = f.get("/healthz").await;
    assert_eq!(health.body, json!({"status": "ok"}));
    let doc: Value = f.get("/v1/openapi.json").await.body;
    for path in [
        "/v1/auth/validate",
        "/v1/auth/session",
        "/v1/auth/session/{sessionId}",
        "/v1/sign-requests/{requestId}",
        "/v1/sign-requests/{requestId}/result",
        "/v1/sign-requests/{requestId}/cancel",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(doc["components"]["schemas"]["ValidateResponse"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let refusals = doc["paths"]["/v1/sign-requests/{requestId}/result"]["post"]["responses"]["422"]
        ["description"]
        .as_str()
        .unwrap();
    for code in [
        "SS_SIGNER_UNTRUSTED",
        "SS_SIGNER_MISMATCH",
        "SS_SIGNATURE_INVALID",
    ] {
        assert!(refusals.contains(code), "{code} missing: {refusals}");
    }
    assert!(doc["components"]["schemas"]["SignerEvidence"].is_object());
    f.stop().await;
}
