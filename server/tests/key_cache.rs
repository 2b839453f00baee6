//! The in-memory key cache over real HTTP and a real SQLite file: warm keys are served
//! from memory, and any commit by another connection (revoke, roll, whitelist change,
//! or anything else) is seen by the very next request.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{documents_json, sha256, Fixture, PORTAL};
use securesign_server::admin::Admin;
use securesign_server::api_key::{ApiKeySecret, KeyMode};
use securesign_server::key_cache::CacheStats;
use serde_json::json;

fn delta(after: CacheStats, before: CacheStats) -> (u64, u64, u64) {
    (
        after.hits - before.hits,
        after.misses - before.misses,
        after.invalidations - before.invalidations,
    )
}

#[tokio::test]
async fn a_warm_key_is_answered_from_memory_while_sessions_are_written() {
    let f = Fixture::start().await;
    let start = f.keys.stats();
    for _ in 0..4 {
        assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    }
    assert_eq!(
        delta(f.keys.stats(), start),
        (3, 1, 0),
        "hits, misses, drops"
    );

    // Creating a session commits rows through the server's own pool: the detector sees
    // the commit, reads the auth counter, finds it unchanged and keeps every entry.
    let reads = f.store.change_detector_stats().reads;
    let body = json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"a")])});
    for _ in 0..3 {
        let reply = f.post_bearer("/v1/auth/session", &f.live_key, &body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let before = f.keys.stats();
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(
        delta(f.keys.stats(), before),
        (1, 0, 0),
        "session writes must not flush the cache"
    );
    if !common::is_postgres() {
        // (PostgreSQL is told of auth changes only: session commits never reach it.)
        assert!(
            f.store.change_detector_stats().reads > reads,
            "the session commits were not noticed at all"
        );
    }

    // A change to authentication data still drops the entries.
    f.admin()
        .create_key(&f.tenant_id, KeyMode::Test, 10)
        .await
        .unwrap();
    let before = f.keys.stats();
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(delta(f.keys.stats(), before), (0, 1, 1));
    f.stop().await;
}

#[tokio::test]
async fn a_revoke_from_another_process_still_flushes_after_session_writes() {
    let f = Fixture::start().await;
    let body = json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"a")])});
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    let reply = f.post_bearer("/v1/auth/session", &f.live_key, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    let before = f.keys.stats();

    let status = std::process::Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(common::database_args(&f.db_path))
        .args(["key", "revoke", &f.live_key_id])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "key revoke failed: {status}");
    // (Immediate on SQLite; on PostgreSQL, until the revoke's notification arrived.)
    f.store.catch_up().await.unwrap();

    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    let (_, misses, drops) = delta(f.keys.stats(), before);
    assert_eq!((misses, drops), (1, 1), "the revoke must flush the cache");
    f.stop().await;
}

#[tokio::test]
async fn a_revoke_through_another_connection_pool_is_refused_on_the_next_request() {
    let f = Fixture::start().await;
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(f.keys.stats().hits, 1, "the key should be cached by now");

    let other = common::open_store(&f.db_path).await;
    Admin::new(&other, f.clock.as_ref())
        .revoke_key(&f.live_key_id)
        .await
        .unwrap();
    other.close().await;
    f.store.catch_up().await.unwrap();

    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    assert_eq!(f.validate(&f.test_key, PORTAL).await.status, 200);
    f.stop().await;
}

#[tokio::test]
async fn whitelist_changes_apply_to_the_next_request() {
    let f = Fixture::start().await;
    let other = "https://other.example.gov.in";
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.validate(&f.live_key, other)
        .await
        .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");

    f.admin().add_domain(&f.tenant_id, other).await.unwrap();
    assert_eq!(f.validate(&f.live_key, other).await.status, 200);

    assert!(f.admin().remove_domain(&f.tenant_id, PORTAL).await.unwrap());
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    let body = json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"a")])});
    f.post_bearer("/v1/auth/session", &f.live_key, &body)
        .await
        .assert_error(403, "SS_DOMAIN_NOT_ALLOWED");
    assert_eq!(f.validate(&f.live_key, other).await.status, 200);
    f.stop().await;
}

#[tokio::test]
async fn the_end_of_a_grace_period_refuses_a_cached_key_without_any_write() {
    let f = Fixture::start().await;
    f.admin()
        .roll_key(&f.live_key_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.clock.advance(Duration::from_secs(59));
    let before = f.keys.stats();
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.clock.advance(Duration::from_secs(1));
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    assert_eq!(
        delta(f.keys.stats(), before),
        (2, 0, 0),
        "both answers should come from the cache: the clock alone refused the key"
    );
    f.stop().await;
}

#[tokio::test]
async fn unknown_keys_are_never_cached() {
    let f = Fixture::start().await;
    let unknown = ApiKeySecret::generate(KeyMode::Live);
    let before = f.keys.stats();
    for _ in 0..3 {
        f.validate(unknown.expose(), PORTAL)
            .await
            .assert_error(401, "SS_API_KEY_INVALID");
    }
    assert_eq!(delta(f.keys.stats(), before), (0, 3, 0));
    f.stop().await;
}

#[tokio::test]
async fn the_auth_version_moves_only_when_keys_tenants_or_whitelists_change() {
    let f = Fixture::start().await;
    let v1 = f.store.auth_version().unwrap();
    assert_eq!(f.store.auth_version().unwrap(), v1);
    f.store.keys(None).await.unwrap();
    assert_eq!(
        f.store.auth_version().unwrap(),
        v1,
        "a read is not a change"
    );
    let body = json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"a")])});
    let reply = f.post_bearer("/v1/auth/session", &f.live_key, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        f.store.auth_version().unwrap(),
        v1,
        "a session is not an auth change"
    );

    let mut last = v1;
    let tenant = f.admin().create_tenant("Another Portal").await.unwrap();
    for step in ["tenant", "domain add", "domain remove", "key", "revoke"] {
        match step {
            "tenant" => {}
            "domain add" => {
                f.admin()
                    .add_domain(&tenant.id, "https://another.example")
                    .await
                    .unwrap();
            }
            "domain remove" => {
                f.admin()
                    .remove_domain(&tenant.id, "https://another.example")
                    .await
                    .unwrap();
            }
            "key" => {
                f.admin()
                    .create_key(&tenant.id, KeyMode::Live, 60)
                    .await
                    .unwrap();
            }
            _ => {
                f.admin().revoke_key(&f.live_key_id).await.unwrap();
            }
        }
        let now = f.store.auth_version().unwrap();
        assert!(now > last, "{step}: {now:?} after {last:?}");
        assert_eq!(f.store.auth_version().unwrap(), now);
        last = now;
    }
    f.stop().await;
}

#[tokio::test]
async fn the_auth_version_row_can_neither_vanish_nor_go_back() {
    let f = Fixture::start().await;
    for sql in [
        "DELETE FROM auth_version",
        "UPDATE auth_version SET version = 0",
        "UPDATE auth_version SET id = 2",
    ] {
        let err = common::execute_sql(&f.db_path, sql).await.unwrap_err();
        assert!(err.to_string().contains("auth_version"), "{sql}: {err}");
    }
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.stop().await;
}

/// Requests race a revoke from another connection pool: every request sent after the
/// revoke returned must be refused; before it, they pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_sent_after_a_concurrent_revoke_passes() {
    let f = Arc::new(Fixture::start().await);
    let issued = f
        .admin()
        .create_key(&f.tenant_id, KeyMode::Live, 1_000_000)
        .await
        .unwrap();
    let key = issued.secret.expose().to_owned();
    assert_eq!(f.validate(&key, PORTAL).await.status, 200);

    let revoked_at: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (f, key, revoked_at) = (f.clone(), key.clone(), revoked_at.clone());
        clients.push(tokio::spawn(async move {
            let mut late = Vec::new();
            let mut passed_before = 0;
            loop {
                let sent = Instant::now();
                let status = f.validate(&key, PORTAL).await.status;
                match revoked_at.get() {
                    Some(done) if sent > *done => {
                        late.push(status);
                        if late.len() >= 20 {
                            return (passed_before, late);
                        }
                    }
                    _ => passed_before += u32::from(status == 200),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = common::open_store(&f.db_path).await;
    Admin::new(&other, f.clock.as_ref())
        .revoke_key(&issued.record.id)
        .await
        .unwrap();
    // On PostgreSQL the revoke reaches this server as a notification: "after the
    // revoke" starts once it arrived (immediate on SQLite).
    f.store.catch_up().await.unwrap();
    revoked_at.set(Instant::now()).unwrap();
    other.close().await;

    let mut total_before = 0;
    for client in clients {
        let (passed_before, late) = client.await.unwrap();
        total_before += passed_before;
        assert!(
            late.iter().all(|&status| status == 401),
            "a request sent after the revoke was answered {late:?}"
        );
    }
    assert!(total_before > 0, "no request passed before the revoke");
    assert!(f.keys.stats().hits > 0, "the cache was never used");
}

#[tokio::test]
async fn a_cache_flush_does_not_give_a_key_a_fresh_rate_limit() {
    let f = Fixture::start().await;
    for i in 0..100 {
        let reply = f.validate(&f.live_key, PORTAL).await;
        assert_eq!(reply.status, 200, "request {i}");
    }
    let before = f.keys.stats();
    f.admin()
        .create_key(&f.tenant_id, KeyMode::Test, 10)
        .await
        .unwrap();
    let reply = f.validate(&f.live_key, PORTAL).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        delta(f.keys.stats(), before),
        (0, 1, 1),
        "the key should have been read again"
    );
    assert_eq!(reply.header("ratelimit-remaining"), Some("19"));
    f.stop().await;
}
