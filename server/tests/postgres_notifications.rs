//! PostgreSQL only: what the key cache does while the LISTEN connection that tells the
//! server of auth changes is down or silent. The answer (see
//! `securesign_server::store::postgres`): nothing is served from memory then, every key
//! is read from the database, so a revoke committed meanwhile is refused at once; once
//! the listener is back, it reads the counter again, so the entries cached before it
//! went down are dropped when anything changed meanwhile.
//!
//! On SQLite (no LISTEN connection) these tests say so and return.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::database::{database_name, postgres_url, psql_admin};
use common::{Fixture, PORTAL};
use securesign_server::store::postgres::{LISTENER_APPLICATION_NAME, SILENCE_LIMIT};

fn skip_on_sqlite() -> bool {
    let skip = !common::is_postgres();
    if skip {
        eprintln!("skipped on SQLite (the PostgreSQL LISTEN connection is the subject)");
    }
    skip
}

/// Waits (at most `limit`) until the store's listener is up (`true`) or down.
async fn wait_listening(f: &Fixture, up: bool, limit: Duration) {
    let start = Instant::now();
    while f.store.notifications_listening() != Some(up) {
        assert!(
            start.elapsed() < limit,
            "the listener is still {} after {limit:?}",
            if up { "down" } else { "up" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The listener's backend process id.
fn listener_pid(db: &str) -> String {
    let pid = psql_admin(&format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = '{db}' \
         AND application_name = '{LISTENER_APPLICATION_NAME}'"
    ));
    let pid = pid.trim().to_owned();
    assert!(
        !pid.is_empty() && !pid.contains('\n'),
        "one listener: {pid:?}"
    );
    pid
}

/// A connection of the test's own, opened while the database still accepts them.
async fn own_pool(f: &Fixture) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect(&postgres_url(&f.db_path))
        .await
        .unwrap()
}

async fn revoke(pool: &sqlx::PgPool, key_id: &str) {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = 1 WHERE id = $1")
        .bind(key_id)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_listener_is_down_keys_are_read_uncached_and_a_revoke_is_refused_at_once() {
    if skip_on_sqlite() {
        return;
    }
    let f = Fixture::start().await;
    let db = database_name(&f.db_path);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert!(f.keys.stats().hits >= 1, "the key should be cached");
    let pool = own_pool(&f).await;

    // The listener cannot come back while the database refuses new connections (the
    // server's pool keeps the ones it has).
    psql_admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"));
    let pid = listener_pid(&db);
    assert_eq!(
        psql_admin(&format!("SELECT pg_terminate_backend({pid})")).trim(),
        "t"
    );
    wait_listening(&f, false, Duration::from_secs(5)).await;

    let before = f.keys.stats();
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    let during = f.keys.stats();
    assert_eq!(
        (during.hits - before.hits, during.misses - before.misses),
        (0, 1),
        "while the listener is down the key must be read from the database"
    );
    revoke(&pool, &f.live_key_id).await;
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");

    psql_admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"));
    wait_listening(&f, true, Duration::from_secs(10)).await;
    // The live key's entry from before the outage must not come back.
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    assert_eq!(f.validate(&f.test_key, PORTAL).await.status, 200);
    let before = f.keys.stats();
    assert_eq!(f.validate(&f.test_key, PORTAL).await.status, 200);
    assert_eq!(
        f.keys.stats().hits - before.hits,
        1,
        "the cache is used again once the listener is back"
    );
    pool.close().await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_whose_notification_was_lost_is_seen_once_the_listener_reconnects() {
    if skip_on_sqlite() {
        return;
    }
    let f = Fixture::start().await;
    let db = database_name(&f.db_path);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    let pool = own_pool(&f).await;

    // One transaction ends the listener's connection and then revokes: its notification
    // is sent when no listener of this server exists.
    let pid = listener_pid(&db);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("SELECT pg_terminate_backend({pid})"))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE api_keys SET revoked_at = 1 WHERE id = $1")
        .bind(&f.live_key_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Until the server notices the lost connection (the socket's end: milliseconds) the
    // cache still answers; from then on the key is read uncached (down) or the counter
    // was read again (back): refused either way, never accepted again.
    let committed = Instant::now();
    loop {
        if f.validate(&f.live_key, PORTAL).await.status == 401 {
            break;
        }
        assert!(
            committed.elapsed() < SILENCE_LIMIT,
            "the revoke was not seen after the lost connection"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("revoke seen {:?} after the commit", committed.elapsed());
    for _ in 0..20 {
        f.validate(&f.live_key, PORTAL)
            .await
            .assert_error(401, "SS_API_KEY_INVALID");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_listening(&f, true, Duration::from_secs(10)).await;
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    pool.close().await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_listener_is_given_up_after_the_heartbeat_limit() {
    if skip_on_sqlite() {
        return;
    }
    let f = Fixture::start().await;
    let db = database_name(&f.db_path);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    let pool = own_pool(&f).await;

    // A stopped backend keeps its socket open but delivers nothing: a half-open
    // connection, as after a network partition.
    let pid = listener_pid(&db);
    let stop = |signal: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    stop("-STOP");
    let stopped = Instant::now();
    revoke(&pool, &f.live_key_id).await;
    wait_listening(&f, false, SILENCE_LIMIT + Duration::from_secs(3)).await;
    let noticed = stopped.elapsed();
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    stop("-CONT");
    eprintln!("a silent listener was given up after {noticed:?} (limit {SILENCE_LIMIT:?})");
    assert!(
        noticed >= SILENCE_LIMIT - Duration::from_secs(1),
        "{noticed:?}"
    );
    wait_listening(&f, true, Duration::from_secs(10)).await;
    f.validate(&f.live_key, PORTAL)
        .await
        .assert_error(401, "SS_API_KEY_INVALID");
    pool.close().await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_key_is_looked_up_without_any_database_round_trip() {
    if skip_on_sqlite() {
        return;
    }
    let f = Fixture::start().await;
    let db = database_name(&f.db_path);
    let hash = securesign_server::api_key::KeyHash::of(&f.live_key);
    assert!(f.keys.lookup(&hash).await.unwrap().is_some());

    // The server's pool loses every connection and cannot open another: only the
    // listener's connection is left. A lookup that needed the database would fail.
    psql_admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"));
    let others = format!(
        "FROM pg_stat_activity WHERE datname = '{db}' \
         AND application_name <> '{LISTENER_APPLICATION_NAME}' AND pid <> pg_backend_pid()"
    );
    psql_admin(&format!("SELECT pg_terminate_backend(pid) {others}"));
    let start = Instant::now();
    while psql_admin(&format!("SELECT count(*) {others}")).trim() != "0" {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let before = f.keys.stats();
    for _ in 0..1000 {
        let entry = tokio::time::timeout(Duration::from_secs(1), f.keys.lookup(&hash))
            .await
            .expect("a cached lookup waited for the database")
            .unwrap();
        assert!(entry.is_some());
    }
    let after = f.keys.stats();
    assert_eq!(
        (after.hits - before.hits, after.misses - before.misses),
        (1000, 0)
    );
    assert_eq!(
        psql_admin(&format!("SELECT count(*) {others}")).trim(),
        "0",
        "no connection of the server's pool exists"
    );
    assert_eq!(f.store.notifications_listening(), Some(true));
    psql_admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"));
    f.stop().await;
}
