//! Several real `securesign-server` processes on one PostgreSQL database: one truth.
//!
//! * a key's rate limit is its total over every instance (the shared GCRA row of
//!   `rate_limit::shared`), not a limit per instance;
//! * a session created through one instance is read, completed, cancelled and reported
//!   through the others;
//! * a key revoked or rolled, an origin removed, or a tenant disabled, through the admin
//!   CLI is refused by every instance, and a tenant enabled again is let in by every
//!   instance (within the propagation allowance; the p99s are measured by the benches
//!   `revocation_propagation` and `tenant_disable_propagation`, not here).
//!
//! PostgreSQL only (run through `server/tests/with-postgres.sh`): on SQLite the server
//! is one process by design, and these tests say so and return.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{
    b64, cli, cli_key, cli_tenant, curl_validate, curl_validate_after_change, session_ids, sha256,
    BinaryServer, Signer, LOCAL, PORTAL,
};
use serde_json::{json, Value};

fn skip_on_sqlite() -> bool {
    let skip = !common::is_postgres();
    if skip {
        eprintln!("skipped on SQLite (one process by design: several instances need PostgreSQL)");
    }
    skip
}

/// `n` instances of the real binary on the database `db` stands for.
struct Instances {
    _dir: tempfile::TempDir,
    db: PathBuf,
    servers: Vec<BinaryServer>,
}

impl Instances {
    fn start(n: usize, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("securesign.db");
        // Migrate once before the instances start together.
        cli(&db, &["tenant", "list"]);
        let servers = (0..n)
            .map(|i| {
                BinaryServer::spawn_with(&db, &dir.path().join(format!("server-{i}.log")), extra)
            })
            .collect();
        Self {
            _dir: dir,
            db,
            servers,
        }
    }

    fn base(&self, i: usize) -> String {
        self.servers[i % self.servers.len()].base()
    }
}

/// The id of the key whose text is `key` (its last four characters are listed).
fn key_id(db: &Path, key: &str) -> String {
    let last4 = &key[key.len() - 4..];
    cli(db, &["key", "list"])
        .lines()
        .find(|line| line.contains(&format!("…{last4}")))
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_owned()
}

async fn validate(http: &reqwest::Client, base: &str, key: &str) -> (u16, Value) {
    let response = http
        .post(format!("{base}/v1/auth/validate"))
        .bearer_auth(key)
        .json(&json!({"origin": LOCAL, "platform": "web"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gets_its_rpm_in_total_across_three_instances_not_per_instance() {
    if skip_on_sqlite() {
        return;
    }
    let cluster = Instances::start(3, &[]);
    let tenant = cli_tenant(&cluster.db, &[LOCAL]);
    // 6 per minute: the next request is let through 10 s after the burst, far longer
    // than the 24 requests below take.
    let key = cli_key(&cluster.db, &tenant, "test", &["--rpm", "6"]);
    let http = reqwest::Client::new();

    // Spread over the instances, at once.
    let answers = futures_join_all((0..24).map(|i| {
        let http = http.clone();
        let base = cluster.base(i);
        let key = key.clone();
        async move { validate(&http, &base, &key).await }
    }))
    .await;
    let passed = answers.iter().filter(|(status, _)| *status == 200).count();
    let limited: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 429)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(passed, 6, "{answers:?}");
    assert_eq!(limited.len(), 18, "{answers:?}");
    for body in limited {
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["error"]["code"], "SS_RATE_LIMITED", "{body}");
    }
    // And each instance refuses on its own now, whichever answered before.
    for i in 0..3 {
        let (status, body) = validate(&http, &cluster.base(i), &key).await;
        assert_eq!(status, 429, "instance {i}: {body}");
    }
}

/// `join_all` without the futures crate: spawned tasks, awaited in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

async fn create_session(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    document: &[u8],
) -> (String, String) {
    let created = http
        .post(format!("{base}/v1/auth/session"))
        .bearer_auth(key)
        .json(&json!({"origin": LOCAL, "signatureFormat": "cms",
            "documents": [{"id": "c", "name": "c.pdf", "digestAlgorithm": "SHA-256",
                "digest": b64(&sha256(document))}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    session_ids(&created.json().await.unwrap())
}

async fn status_of(http: &reqwest::Client, base: &str, key: &str, session: &str) -> Value {
    let reply = http
        .get(format!("{base}/v1/auth/session/{session}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    reply.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_through_one_instance_is_read_completed_cancelled_and_reported_through_others(
) {
    if skip_on_sqlite() {
        return;
    }
    let cluster = Instances::start(3, &[]);
    let tenant = cli_tenant(&cluster.db, &[LOCAL]);
    let key = cli_key(&cluster.db, &tenant, "test", &[]);
    let http = reqwest::Client::new();
    let (a, b, c) = (cluster.base(0), cluster.base(1), cluster.base(2));

    // Created through A; the app reads it through B and completes it through C.
    let (session, request_id) = create_session(&http, &a, &key, b"contract").await;
    assert_eq!(
        status_of(&http, &b, &key, &session).await["status"],
        "pending"
    );
    let request = http
        .get(format!("{b}/v1/sign-requests/{request_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(request.status(), 200);
    let signer = Signer::new("rsa");
    let result = http
        .post(format!("{c}/v1/sign-requests/{request_id}/result"))
        .json(&json!({"certificate": b64(&signer.cert_der),
            "signatures": [{"documentId": "c", "signature": b64(&signer.cms_sign_with_openssl(b"contract"))}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), 200, "{}", result.text().await.unwrap());
    // Reported through A and B.
    for base in [&a, &b] {
        let done = status_of(&http, base, &key, &session).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["documents"][0]["id"], "c", "{done}");
        assert!(done["documents"][0]["signature"].is_string(), "{done}");
    }
    // A second result through A is refused: the session is done everywhere.
    let again = http
        .post(format!("{a}/v1/sign-requests/{request_id}/result"))
        .json(&json!({"certificate": b64(&signer.cert_der),
            "signatures": [{"documentId": "c", "signature": b64(&signer.cms_sign_with_openssl(b"contract"))}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "{}", again.text().await.unwrap());

    // Created through B, cancelled through C, reported cancelled through A.
    let (session, request_id) = create_session(&http, &b, &key, b"lease").await;
    let cancel = http
        .post(format!("{c}/v1/sign-requests/{request_id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200, "{}", cancel.text().await.unwrap());
    assert_eq!(
        status_of(&http, &a, &key, &session).await["status"],
        "cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_a_roll_and_an_origin_removal_through_the_cli_are_refused_by_every_instance() {
    if skip_on_sqlite() {
        return;
    }
    let cluster = Instances::start(3, &[]);
    let tenant = cli_tenant(&cluster.db, &[PORTAL]);
    let revoked = cli_key(&cluster.db, &tenant, "live", &[]);
    let rolled = cli_key(&cluster.db, &tenant, "live", &[]);
    // Every instance has both keys cached (a second request is a cache hit).
    for i in 0..3 {
        for key in [&revoked, &rolled] {
            for _ in 0..2 {
                assert_eq!(curl_validate(&cluster.base(i), key).1, "200");
            }
        }
    }

    cli(
        &cluster.db,
        &["key", "revoke", &key_id(&cluster.db, &revoked)],
    );
    for i in 0..3 {
        let (body, _) = curl_validate_after_change(&cluster.base(i), &revoked, "401");
        assert!(body.contains("SS_API_KEY_INVALID"), "instance {i}: {body}");
    }

    // A roll with no grace: the old key is refused everywhere, the new one accepted.
    let new_key = cli(
        &cluster.db,
        &[
            "key",
            "roll",
            &key_id(&cluster.db, &rolled),
            "--grace",
            "0s",
        ],
    )
    .trim()
    .to_owned();
    for i in 0..3 {
        curl_validate_after_change(&cluster.base(i), &rolled, "401");
        assert_eq!(curl_validate(&cluster.base(i), &new_key).1, "200");
    }

    // The origin removed: every instance refuses it.
    cli(
        &cluster.db,
        &["domain", "remove", "--tenant", &tenant, PORTAL],
    );
    for i in 0..3 {
        let (body, _) = curl_validate_after_change(&cluster.base(i), &new_key, "403");
        assert!(
            body.contains("SS_DOMAIN_NOT_ALLOWED"),
            "instance {i}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_disabled_through_the_cli_is_refused_by_every_instance_and_let_in_again_once_enabled(
) {
    if skip_on_sqlite() {
        return;
    }
    let cluster = Instances::start(3, &[]);
    let tenant = cli_tenant(&cluster.db, &[PORTAL, LOCAL]);
    let other = cli_tenant(&cluster.db, &[PORTAL]);
    // Limits far above what the polls below send: only the disable may refuse them.
    let live = cli_key(&cluster.db, &tenant, "live", &["--rpm", "100000"]);
    let test = cli_key(&cluster.db, &tenant, "test", &["--rpm", "100000"]);
    let other_key = cli_key(&cluster.db, &other, "live", &["--rpm", "100000"]);
    let http = reqwest::Client::new();
    // A pending session created through instance 0, readable by the app through 2.
    let (session, request_id) = create_session(&http, &cluster.base(0), &test, b"deed").await;
    let read = format!("{}/v1/sign-requests/{request_id}", cluster.base(2));
    assert_eq!(http.get(&read).send().await.unwrap().status(), 200);

    for cycle in 0..3 {
        // Every instance has the keys cached (a second request is a cache hit).
        for i in 0..3 {
            for key in [&live, &test, &live, &test] {
                assert_eq!(
                    curl_validate(&cluster.base(i), key).1,
                    "200",
                    "cycle {cycle}"
                );
            }
        }
        cli(&cluster.db, &["tenant", "disable", "--tenant", &tenant]);
        for i in 0..3 {
            for key in [&live, &test] {
                let (body, _) = curl_validate_after_change(&cluster.base(i), key, "401");
                let body: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(
                    body["error"]["code"], "SS_API_KEY_INVALID",
                    "instance {i}: {body}"
                );
                assert_eq!(
                    body["error"]["message"], "the API key's tenant is disabled",
                    "instance {i}: {body}"
                );
            }
            // Session create and status are refused too; the other tenant is not.
            let create = http
                .post(format!("{}/v1/auth/session", cluster.base(i)))
                .bearer_auth(&test)
                .json(
                    &json!({"origin": LOCAL, "documents": [{"id": "d", "name": "d.pdf",
                    "digestAlgorithm": "SHA-256", "digest": b64(&sha256(b"d"))}]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(create.status(), 401, "instance {i}");
            let status = http
                .get(format!("{}/v1/auth/session/{session}", cluster.base(i)))
                .bearer_auth(&test)
                .send()
                .await
                .unwrap();
            assert_eq!(status.status(), 401, "instance {i}");
            assert_eq!(curl_validate(&cluster.base(i), &other_key).1, "200");
        }
        // The pending session expired with the disable, for the app on any instance.
        for i in 0..3 {
            let reply = http
                .get(format!("{}/v1/sign-requests/{request_id}", cluster.base(i)))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 410, "instance {i}");
            let body: Value = reply.json().await.unwrap();
            assert_eq!(body["error"]["code"], "SS_SESSION_EXPIRED", "{body}");
        }

        cli(&cluster.db, &["tenant", "enable", "--tenant", &tenant]);
        for i in 0..3 {
            for key in [&live, &test] {
                curl_validate_after_change(&cluster.base(i), key, "200");
            }
        }
        // Enabled: the expired session stays expired.
        let done = status_of(&http, &cluster.base(1), &test, &session).await;
        assert_eq!(done["status"], "expired", "{done}");
    }
}
