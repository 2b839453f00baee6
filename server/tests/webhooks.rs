//! Callbacks to the portal over real HTTP on loopback: an in-process server with a real
//! SQLite file and a manual clock (backoff without sleeping), and a real receiving server
//! in the test that checks the HMAC signature of every request.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{b64, documents_json, session_ids, sha256, test_policy, Fixture, Signer, LOCAL};
use securesign_server::webhook::{DeliveryPolicy, DeliveryRecord};
use serde_json::{json, Value};

/// Whitelists the receiver's origin and creates a 2-document session (test key, as
/// plain http on loopback needs one) with its callback URL. Returns (session, request).
async fn session_with_callback(f: &Fixture, receiver: &Receiver, format: &str) -> (String, String) {
    session_with_callback_url(f, &receiver.origin(), &receiver.url(), format).await
}

/// [`session_with_callback`] with this whitelisted `origin` and callback `url`.
async fn session_with_callback_url(
    f: &Fixture,
    origin: &str,
    url: &str,
    format: &str,
) -> (String, String) {
    f.admin().add_domain(&f.tenant_id, origin).await.unwrap();
    let digests = [sha256(b"one"), sha256(b"two")];
    let reply = f
        .post_bearer(
            "/v1/auth/session",
            &f.test_key,
            &json!({"origin": LOCAL, "documents": documents_json(&digests),
                    "callbackUrl": url, "signatureFormat": format}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    session_ids(&reply.body)
}

/// Posts a valid raw result for the two documents; returns the posted body.
async fn complete(f: &Fixture, request_id: &str, signer: &Signer) -> Value {
    let digests = [sha256(b"one"), sha256(b"two")];
    let body = json!({"certificate": b64(&signer.cert_der), "signatures": [
        {"documentId": "doc-0", "signature": b64(&signer.sign(&digests[0]))},
        {"documentId": "doc-1", "signature": b64(&signer.sign(&digests[1]))},
    ]});
    let reply = f
        .post(&format!("/v1/sign-requests/{request_id}/result"), &body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    body
}

async fn deliveries(f: &Fixture, session_id: &str) -> Vec<DeliveryRecord> {
    f.admin().deliveries(session_id).await.unwrap()
}

/// Waits (polling, at most 15 s) until the session's only event satisfies `done`.
async fn wait_for_event(
    f: &Fixture,
    session_id: &str,
    done: impl Fn(&DeliveryRecord) -> bool,
) -> DeliveryRecord {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = deliveries(f, session_id).await;
        assert!(events.len() <= 1, "one event per session: {events:?}");
        if let Some(event) = events.first().filter(|e| done(e)) {
            return event.clone();
        }
        assert!(
            Instant::now() < deadline,
            "event never reached the state: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Some real time for a worker that would (wrongly) send again to do so.
async fn give_the_worker_a_chance() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_exactly_one_accepted_delivery_on_the_third_attempt() {
    let f = Fixture::start().await;
    let receiver = Receiver::start(|n| if n <= 2 { 500 } else { 200 }).await;
    let signer = Signer::new("ec");
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    let posted = complete(&f, &request_id, &signer).await;

    // Attempt 1 at once; attempt 2 only once the clock passes 1 s; attempt 3 after 2 s more.
    receiver.wait_for_hits(1).await;
    let after_first = wait_for_event(&f, &session_id, |e| {
        e.attempts == 1 && e.status == "pending"
    })
    .await;
    assert_eq!(after_first.last_status, Some(500));
    give_the_worker_a_chance().await;
    assert_eq!(
        receiver.hits().len(),
        1,
        "retried before the backoff elapsed"
    );
    f.clock.advance(Duration::from_millis(999));
    give_the_worker_a_chance().await;
    assert_eq!(
        receiver.hits().len(),
        1,
        "retried before the backoff elapsed"
    );
    f.clock.advance(Duration::from_millis(1));
    receiver.wait_for_hits(2).await;
    wait_for_event(&f, &session_id, |e| {
        e.attempts == 2 && e.status == "pending"
    })
    .await;
    f.clock.advance(Duration::from_secs(2));
    let hits = receiver.wait_for_hits(3).await;
    let event = wait_for_event(&f, &session_id, |e| e.status == "delivered").await;
    assert_eq!(event.attempts, 3);
    assert_eq!(event.last_status, Some(200));
    assert!(event.delivered_at.is_some());

    // Never sent again after the 2xx, whatever the clock does.
    f.clock.advance(Duration::from_secs(3600));
    give_the_worker_a_chance().await;
    let hits_after = receiver.hits();
    assert_eq!(hits_after.len(), 3);
    assert_eq!(hits_after.iter().filter(|h| h.answered == 200).count(), 1);

    // Every attempt: same event id and body, signed with the tenant's secret.
    for hit in &hits {
        hit.assert_signed_with(&f.webhook_secret);
        assert_eq!(hit.path, "/securesign/events");
        assert_eq!(hit.header("content-type"), "application/json");
        assert_eq!(hit.header("x-securesign-event-id"), event.id);
        assert_eq!(hit.body, hits[0].body);
    }
    // The timestamp is the send time: the clock moved between attempts.
    let stamps: Vec<i64> = hits
        .iter()
        .map(|h| h.header("x-securesign-timestamp").parse().unwrap())
        .collect();
    assert_eq!(stamps[1] - stamps[0], 1);
    assert_eq!(stamps[2] - stamps[1], 2);

    let body = hits[0].json();
    assert_eq!(body["eventId"], event.id.as_str());
    assert!(event.id.starts_with("evt_"));
    assert_eq!(body["type"], "session.completed");
    assert_eq!(body["sessionId"], session_id.as_str());
    assert_eq!(body["occurredAt"], "2026-06-22T10:00:00Z");
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(body["data"]["signatureFormat"], "raw");
    assert_eq!(body["data"]["signerCertificate"], posted["certificate"]);
    assert_eq!(body["data"]["signatureAlgorithm"], "ECDSA-P256-SHA256");
    // The signer evidence, as the session status shows it.
    let signer = &body["data"]["signer"];
    assert_eq!(signer["trusted"], true, "{signer}");
    assert_eq!(signer["policyClasses"], json!(["class3"]));
    assert_eq!(signer["revocation"]["status"], "good");
    assert_eq!(signer["chainSha256"].as_array().map(Vec::len), Some(3));
    // The session was made with the test key: only a test key sees it.
    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.test_key)
        .await;
    assert_eq!(&status.body["signer"], signer);
    for i in 0..2 {
        assert_eq!(body["data"]["documents"][i]["id"], format!("doc-{i}"));
        assert_eq!(
            body["data"]["documents"][i]["signature"],
            posted["signatures"][i]["signature"]
        );
    }
    // A forged body does not verify with the secret.
    let mut forged = hits[0].clone();
    forged.body = forged
        .body
        .iter()
        .map(|b| if *b == b'1' { b'2' } else { *b })
        .collect::<Vec<u8>>()
        .into();
    assert!(!forged.is_signed_with(&f.webhook_secret));
    f.stop().await;
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_failed_after_the_bounded_attempts() {
    let f = Fixture::start().await; // test_policy(): 3 attempts
    let receiver = Receiver::start(|_| 503).await;
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    receiver.wait_for_hits(1).await;
    wait_for_event(&f, &session_id, |e| {
        e.attempts == 1 && e.status == "pending"
    })
    .await;
    f.clock.advance(Duration::from_secs(1));
    receiver.wait_for_hits(2).await;
    wait_for_event(&f, &session_id, |e| {
        e.attempts == 2 && e.status == "pending"
    })
    .await;
    f.clock.advance(Duration::from_secs(2));
    receiver.wait_for_hits(3).await;
    let event = wait_for_event(&f, &session_id, |e| e.status == "failed").await;
    assert_eq!(event.attempts, 3);
    assert_eq!(event.last_status, Some(503));
    assert!(
        event.last_error.as_deref().unwrap().contains("503"),
        "{event:?}"
    );
    assert_eq!(event.delivered_at, None);
    f.clock.advance(Duration::from_secs(24 * 3600));
    give_the_worker_a_chance().await;
    assert_eq!(receiver.hits().len(), 3, "a failed event is not retried");
    f.stop().await;
}

#[tokio::test]
async fn a_cancel_produces_a_signed_session_cancelled_event() {
    let f = Fixture::start().await;
    let receiver = Receiver::start(|_| 204).await;
    let (session_id, request_id) = session_with_callback(&f, &receiver, "cms").await;
    let reply = f
        .post(
            &format!("/v1/sign-requests/{request_id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let hits = receiver.wait_for_hits(1).await;
    let event = wait_for_event(&f, &session_id, |e| e.status == "delivered").await;
    assert_eq!(event.event_type, "session.cancelled");
    assert_eq!(event.attempts, 1);
    assert_eq!(event.last_status, Some(204));
    hits[0].assert_signed_with(&f.webhook_secret);
    let body = hits[0].json();
    assert_eq!(body["type"], "session.cancelled");
    assert_eq!(body["sessionId"], session_id.as_str());
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(body["data"]["signatureFormat"], "cms");
    assert_eq!(body["data"]["error"]["code"], "SS_SIGN_CANCELLED");
    assert!(body["data"].get("documents").is_none(), "{body}");
    f.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed_and_count_as_failures() {
    let f = Fixture::start_with(DeliveryPolicy {
        max_attempts: 1,
        ..test_policy()
    })
    .await;
    let receiver = Receiver::start(|_| 307).await;
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let event = wait_for_event(&f, &session_id, |e| e.status == "failed").await;
    assert_eq!(event.last_status, Some(307));
    assert!(
        event.last_error.as_deref().unwrap().contains("redirect"),
        "{event:?}"
    );
    give_the_worker_a_chance().await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert!(
        hits.iter().all(|h| h.path != "/elsewhere"),
        "the redirect was followed"
    );
    f.stop().await;
}

#[tokio::test]
async fn the_callback_origin_is_checked_again_at_delivery() {
    let f = Fixture::start().await;
    let receiver = Receiver::start(|_| 200).await;
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    // The portal's callback origin is removed from the whitelist before completion.
    assert!(f
        .admin()
        .remove_domain(&f.tenant_id, &receiver.origin())
        .await
        .unwrap());
    complete(&f, &request_id, &Signer::new("ec")).await;
    let event = wait_for_event(&f, &session_id, |e| {
        e.attempts == 1 && e.status == "pending"
    })
    .await;
    assert_eq!(event.status, "pending");
    assert!(
        event
            .last_error
            .as_deref()
            .unwrap()
            .contains("no longer whitelisted"),
        "{event:?}"
    );
    assert_eq!(event.last_status, None);
    assert!(
        receiver.hits().is_empty(),
        "sent to a non-whitelisted origin"
    );
    // Whitelisted again: the retry goes out.
    f.admin()
        .add_domain(&f.tenant_id, &receiver.origin())
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(1));
    receiver.wait_for_hits(1).await;
    wait_for_event(&f, &session_id, |e| e.status == "delivered").await;
    f.stop().await;
}

#[tokio::test]
async fn a_rolled_webhook_secret_signs_from_then_on_and_sessions_without_callback_send_nothing() {
    let f = Fixture::start().await;
    let receiver = Receiver::start(|_| 200).await;
    let new_secret = f
        .admin()
        .roll_webhook_secret(&f.tenant_id, Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(new_secret.expose(), f.webhook_secret);
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let hits = receiver.wait_for_hits(1).await;
    hits[0].assert_signed_with(new_secret.expose());
    assert!(!hits[0].is_signed_with(&f.webhook_secret));
    assert_eq!(
        hits[0].signature_entries().len(),
        1,
        "no grace: one signature"
    );
    wait_for_event(&f, &session_id, |e| e.status == "delivered").await;

    // No callbackUrl: no event at all.
    let (plain_session, plain_request) = f
        .create_session(&[sha256(b"one"), sha256(b"two")], None)
        .await;
    complete(&f, &plain_request, &Signer::new("ec")).await;
    assert!(deliveries(&f, &plain_session).await.is_empty());
    give_the_worker_a_chance().await;
    assert_eq!(receiver.hits().len(), 1);
    f.stop().await;
}

/// `roll --grace`: until the grace ends, callbacks carry a signature with the new secret
/// and one with the replaced secret; after it, only the new one. A second roll during
/// the grace keeps only the secret it replaces.
#[tokio::test]
async fn a_rolled_webhook_secret_with_grace_signs_with_both_until_the_grace_ends() {
    let f = Fixture::start().await;
    let receiver = Receiver::start(|_| 200).await;
    let original = f.webhook_secret.clone();
    let rolled = f
        .admin()
        .roll_webhook_secret(&f.tenant_id, Duration::from_secs(3600))
        .await
        .unwrap();

    let (_, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let hits = receiver.wait_for_hits(1).await;
    hits[0].assert_signed_with(rolled.expose());
    hits[0].assert_signed_with(&original);
    assert_eq!(hits[0].signature_entries().len(), 2);
    assert!(
        hits[0].signature_entries()[0] != hits[0].signature_entries()[1],
        "two different secrets"
    );

    // The grace ends: only the new secret signs.
    f.clock.advance(Duration::from_secs(3600));
    let (_, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let hits = receiver.wait_for_hits(2).await;
    hits[1].assert_signed_with(rolled.expose());
    assert!(!hits[1].is_signed_with(&original), "signed after its grace");
    assert_eq!(hits[1].signature_entries().len(), 1);

    // Two rolls within a grace: the secret before the last one stops at once.
    let second = f
        .admin()
        .roll_webhook_secret(&f.tenant_id, Duration::from_secs(600))
        .await
        .unwrap();
    let third = f
        .admin()
        .roll_webhook_secret(&f.tenant_id, Duration::from_secs(600))
        .await
        .unwrap();
    let (_, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let hits = receiver.wait_for_hits(3).await;
    hits[2].assert_signed_with(third.expose());
    hits[2].assert_signed_with(second.expose());
    assert!(!hits[2].is_signed_with(rolled.expose()));
    assert_eq!(hits[2].signature_entries().len(), 2);
    f.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_formats_and_the_callback_event() {
    let f = Fixture::start().await;
    let doc = f.get("/v1/openapi.json").await.body;
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["SignatureFormat"].is_object(), "{}", schemas);
    assert!(schemas["WebhookEvent"]["properties"]["eventId"].is_object());
    assert!(schemas["WebhookEvent"]["properties"]["type"].is_object());
    assert!(schemas["CreateSessionRequest"]["properties"]["signatureFormat"].is_object());
    assert!(schemas["SignRequestView"]["properties"]["signatureFormat"].is_object());
    assert!(schemas["SessionStatusResponse"]["properties"]["signatureFormat"].is_object());
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(description.contains("X-SecureSign-Signature"));
    f.stop().await;
}

#[tokio::test]
async fn a_tenant_without_a_webhook_secret_gets_no_callback_until_one_is_rolled() {
    let f = Fixture::start().await;
    // As for a tenant created before webhook secrets existed.
    common::execute_sql(&f.db_path, "DELETE FROM webhook_secrets")
        .await
        .unwrap();
    let receiver = Receiver::start(|_| 200).await;
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let event = wait_for_event(&f, &session_id, |e| {
        e.attempts == 1 && e.status == "pending"
    })
    .await;
    assert!(
        event
            .last_error
            .as_deref()
            .unwrap()
            .contains("no webhook secret"),
        "{event:?}"
    );
    assert!(receiver.hits().is_empty(), "sent unsigned");
    let secret = f
        .admin()
        .roll_webhook_secret(&f.tenant_id, Duration::ZERO)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(1));
    let hits = receiver.wait_for_hits(1).await;
    hits[0].assert_signed_with(secret.expose());
    wait_for_event(&f, &session_id, |e| e.status == "delivered").await;
    f.stop().await;
}

#[tokio::test]
async fn an_event_that_already_used_the_allowed_attempts_fails_without_another_send() {
    // As after a restart with a lower --webhook-max-attempts than the event already used.
    let f = Fixture::start().await; // test_policy(): 3 attempts
    let receiver = Receiver::start(|_| 500).await;
    let (session_id, request_id) = session_with_callback(&f, &receiver, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    wait_for_event(&f, &session_id, |e| {
        e.attempts == 1 && e.status == "pending"
    })
    .await;
    common::execute_sql(&f.db_path, "UPDATE webhook_events SET attempts = 3")
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(1));
    let event = wait_for_event(&f, &session_id, |e| e.status == "failed").await;
    assert_eq!(event.attempts, 3);
    assert_eq!(event.last_status, Some(500), "the last answer is kept");
    give_the_worker_a_chance().await;
    assert_eq!(receiver.hits().len(), 1);
    f.stop().await;
}

/// A receiver on loopback, reached through the host name `localhost` (so the client's
/// resolver is consulted) with its URL and whitelisted origin.
fn localhost_url(receiver: &Receiver) -> (String, String) {
    let port = receiver.origin().rsplit(':').next().unwrap().to_owned();
    let origin = format!("http://localhost:{port}");
    (
        origin.clone(),
        format!("{origin}/securesign/events?portal=1"),
    )
}

/// A policy of 2 attempts that refuses non-public destinations (the default).
fn public_only_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 2,
        allow_private_destinations: false,
        ..test_policy()
    }
}

/// Completes a session whose callback goes to `url`, and checks that the event is
/// retried and then failed with a reason containing `reason`, nothing reaching `receiver`.
async fn assert_refused(f: &Fixture, receiver: &Receiver, origin: &str, url: &str, reason: &str) {
    let (session_id, request_id) = session_with_callback_url(f, origin, url, "raw").await;
    complete(f, &request_id, &Signer::new("ec")).await;
    let first = wait_for_event(f, &session_id, |e| e.attempts == 1 && e.status == "pending").await;
    assert_eq!(first.last_status, None, "{first:?}");
    assert!(
        first.last_error.as_deref().unwrap().contains(reason),
        "{first:?}"
    );
    f.clock.advance(Duration::from_secs(1));
    let event = wait_for_event(f, &session_id, |e| e.status == "failed").await;
    assert_eq!(event.attempts, 2);
    assert!(
        event.last_error.as_deref().unwrap().contains(reason),
        "{event:?}"
    );
    assert!(
        !event.last_error.as_deref().unwrap().contains("portal=1"),
        "no URL in the reason: {event:?}"
    );
    give_the_worker_a_chance().await;
    assert_eq!(receiver.hits().len(), 0, "nothing reached the receiver");
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused_by_default() {
    let f = Fixture::start_with(public_only_policy()).await;
    let receiver = Receiver::start(|_| 200).await;
    let (origin, url) = localhost_url(&receiver);
    assert_refused(
        &f,
        &receiver,
        &origin,
        &url,
        "resolves only to non-public addresses",
    )
    .await;
    f.stop().await;
}

#[tokio::test]
async fn a_loopback_ip_literal_is_refused_by_default() {
    let f = Fixture::start_with(public_only_policy()).await;
    let receiver = Receiver::start(|_| 200).await;
    assert_refused(
        &f,
        &receiver,
        &receiver.origin(),
        &receiver.url(),
        "callback address 127.0.0.1 is loopback, not public",
    )
    .await;
    f.stop().await;
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_delivered_when_private_destinations_are_allowed() {
    let f = Fixture::start_with(DeliveryPolicy {
        allow_private_destinations: true,
        ..public_only_policy()
    })
    .await;
    let receiver = Receiver::start(|_| 200).await;
    let (origin, url) = localhost_url(&receiver);
    let (session_id, request_id) = session_with_callback_url(&f, &origin, &url, "raw").await;
    complete(&f, &request_id, &Signer::new("ec")).await;
    let event = wait_for_event(&f, &session_id, |e| e.status == "delivered").await;
    assert_eq!(event.attempts, 1);
    assert_eq!(receiver.hits().len(), 1);
    receiver.hits()[0].assert_signed_with(&f.webhook_secret);
    f.stop().await;
}
