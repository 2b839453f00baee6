//! Callbacks from the real `securesign-server` binary: the webhook secret shown by
//! `tenant create` and made by `tenant webhook-secret roll`, a crash (SIGKILL) and
//! restart in the middle of the retries that still delivers exactly once, the
//! `webhook deliveries` admin listing, no secret in the database file or the log, and
//! callbacks to a host resolving to loopback refused unless `--allow-private-callbacks`.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{b64, cli, cli_full, session_ids, sha256, BinaryServer, Signer, LOCAL};
use serde_json::{json, Value};

/// Polls `webhook deliveries` until its only line contains every one of `parts`.
fn wait_for_listing(db: &Path, session_id: &str, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listing = cli(db, &["webhook", "deliveries", "--session", session_id]);
        if parts.iter().all(|p| listing.contains(p)) {
            assert_eq!(listing.lines().count(), 1, "{listing}");
            return listing;
        }
        assert!(
            Instant::now() < deadline,
            "listing never showed {parts:?}: {listing}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_the_retries_still_delivers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    // The first attempt fails; any later one is accepted.
    let receiver = Receiver::start(|n| if n == 1 { 500 } else { 200 }).await;

    let (tenant, stderr) = cli_full(&db, &["tenant", "create", "--name", "Example Portal"]);
    let tenant = tenant.trim().to_owned();
    let first_secret = stderr.lines().last().unwrap().trim().to_owned();
    assert!(first_secret.starts_with("whsec_"), "{stderr}");
    let secret = cli(
        &db,
        &["tenant", "webhook-secret", "roll", "--tenant", &tenant],
    )
    .trim()
    .to_owned();
    assert!(secret.starts_with("whsec_") && secret != first_secret);
    for origin in [LOCAL.to_owned(), receiver.origin()] {
        cli(&db, &["domain", "add", "--tenant", &tenant, &origin]);
    }
    let key = cli(
        &db,
        &["key", "create", "--tenant", &tenant, "--mode", "test"],
    )
    .trim()
    .to_owned();

    // The receiver listens on 127.0.0.1.
    let backoff = [
        "--webhook-backoff",
        "3s",
        "--webhook-max-attempts",
        "4",
        "--allow-private-callbacks",
    ];
    let server = BinaryServer::spawn_with(&db, &log, &backoff);
    let http = reqwest::Client::new();
    let digest = sha256(b"contract");
    let created: Value = http
        .post(format!("{}/v1/auth/session", server.base()))
        .bearer_auth(&key)
        .json(&json!({"origin": LOCAL, "callbackUrl": receiver.url(), "signatureFormat": "cms",
            "documents": [{"id": "c", "name": "c.pdf", "digestAlgorithm": "SHA-256", "digest": b64(&digest)}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (session_id, request_id) = session_ids(&created);
    let signer = Signer::new("rsa");
    let result = http
        .post(format!("{}/v1/sign-requests/{request_id}/result", server.base()))
        .json(&json!({"certificate": b64(&signer.cert_der),
            "signatures": [{"documentId": "c", "signature": b64(&signer.cms_sign_with_openssl(b"contract"))}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), 200);

    // The first attempt fails and is recorded; the server dies before the retry (3 s).
    receiver.wait_for_hits(1).await;
    let listing = wait_for_listing(&db, &session_id, &["pending", "attempts=1", "http=500"]);
    assert!(
        listing.contains("session.completed") && listing.contains("next-attempt"),
        "{listing}"
    );
    server.crash();
    assert_eq!(receiver.hits().len(), 1);

    // A new process on the same file picks the event up from the outbox.
    let server = BinaryServer::spawn_with(&db, &log, &backoff);
    let hits = receiver.wait_for_hits(2).await;
    let listing = wait_for_listing(&db, &session_id, &["delivered", "attempts=2", "http=200"]);
    assert!(listing.contains("delivered-at"), "{listing}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits().len(), 2, "sent again after a 2xx");
    server.stop();

    assert_eq!(
        hits[0].header("x-securesign-event-id"),
        hits[1].header("x-securesign-event-id")
    );
    assert_eq!(hits[0].body, hits[1].body);
    for hit in &hits {
        hit.assert_signed_with(&secret);
        assert!(
            !hit.is_signed_with(&first_secret),
            "the rolled secret still signs"
        );
    }
    let event = hits[1].json();
    assert_eq!(event["data"]["signatureFormat"], "cms");
    assert_eq!(event["data"]["documents"][0]["digest"], b64(&digest));

    // Neither secret in plaintext in the database files, nor in the debug log.
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("callback attempt settled"),
        "debug log missing"
    );
    for needle in [&secret, &first_secret, &key] {
        let needle = &needle.as_bytes()[6..];
        assert!(
            !log_text
                .as_bytes()
                .windows(needle.len())
                .any(|w| w == needle),
            "secret in the log"
        );
        let stored = common::database::stored_bytes(&db);
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "the database holds a secret in plaintext"
        );
    }
    assert!(dir.path().join("securesign.db.secrets-key").exists());
}

#[test]
fn deliveries_of_an_unknown_session_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(common::database_args(&db))
        .args(["webhook", "deliveries", "--session", "sess_nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session sess_nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_callback_host_resolving_to_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    let receiver = Receiver::start(|_| 200).await;
    let port = receiver.origin().rsplit(':').next().unwrap().to_owned();
    let origin = format!("http://localhost:{port}");
    let tenant = cli(&db, &["tenant", "create", "--name", "Example Portal"]);
    let tenant = tenant.trim();
    for o in [LOCAL, origin.as_str()] {
        cli(&db, &["domain", "add", "--tenant", tenant, o]);
    }
    let key = cli(
        &db,
        &["key", "create", "--tenant", tenant, "--mode", "test"],
    );
    let key = key.trim();

    let refused = ["--webhook-max-attempts", "1"];
    let allowed = ["--webhook-max-attempts", "1", "--allow-private-callbacks"];
    for (args, expected) in [
        (
            &refused[..],
            ["failed", "attempts=1", "non-public addresses"],
        ),
        (&allowed[..], ["delivered", "attempts=1", "http=200"]),
    ] {
        let server = BinaryServer::spawn_with(&db, &log, args);
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{}/v1/auth/session", server.base()))
            .bearer_auth(key)
            .json(
                &json!({"origin": LOCAL, "callbackUrl": format!("{origin}/cb?portal=1"),
                "documents": [{"id": "c", "name": "c.pdf", "digestAlgorithm": "SHA-256",
                               "digest": b64(&sha256(b"one"))}]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (session_id, request_id) = session_ids(&created);
        let signer = Signer::new("ec");
        let result = http
            .post(format!(
                "{}/v1/sign-requests/{}/result",
                server.base(),
                request_id
            ))
            .json(&json!({"certificate": b64(&signer.cert_der),
                "signatures": [{"documentId": "c", "signature": b64(&signer.sign(&sha256(b"one")))}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(result.status(), 200);
        let listing = wait_for_listing(&db, &session_id, &expected);
        assert!(
            !listing.contains("portal=1"),
            "no URL in the reason: {listing}"
        );
        server.stop();
    }
    assert_eq!(
        receiver.hits().len(),
        1,
        "only the allowed server delivered"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("callback destination refused"),
        "refusal not logged"
    );
    assert!(
        log_text.contains("--allow-private-callbacks"),
        "the flag's warning is not logged"
    );
}

/// `tenant webhook-secret roll --grace` from the command line: a new secret on stdout,
/// the grace on stderr, and the replaced secret kept (sealed) until it ends.
#[tokio::test]
async fn webhook_secret_roll_takes_a_grace_period_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let (tenant, stderr) = cli_full(&db, &["tenant", "create", "--name", "Example Portal"]);
    let tenant = tenant.trim().to_owned();
    let first = stderr.lines().last().unwrap().trim().to_owned();
    let (rolled, stderr) = cli_full(
        &db,
        &[
            "tenant",
            "webhook-secret",
            "roll",
            "--tenant",
            &tenant,
            "--grace",
            "2h",
        ],
    );
    let rolled = rolled.trim().to_owned();
    assert!(rolled.starts_with("whsec_") && rolled != first);
    assert!(
        stderr.contains("the old one signs beside it for 2h"),
        "{stderr}"
    );

    let store = common::open_store(&db).await;
    let now = common::now_unix();
    let during = store.webhook_secrets(&tenant, now).await.unwrap().unwrap();
    assert_eq!(during.current.expose(), rolled);
    assert_eq!(during.previous.unwrap().expose(), first);
    let after = store
        .webhook_secrets(&tenant, now + 2 * 3600 + 60)
        .await
        .unwrap()
        .unwrap();
    assert!(after.previous.is_none(), "kept after its grace");
    store.close().await;
}
