//! The callback outbox's claim on both engines: workers claiming at the same time (the
//! delivery worker runs several attempts at once, and on PostgreSQL several instances
//! share the table) never get the same event, and together get every due event.
//!
//! On SQLite one writer at a time makes the claim's sub-select and update one step; on
//! PostgreSQL the sub-select locks the row it picks (`FOR UPDATE SKIP LOCKED`): without
//! that, two claims under READ COMMITTED pick the same row and both update it.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;
use securesign_server::webhook::outbox;
use securesign_server::ManualClock;

const EVENTS: usize = 60;
const WORKERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_share_an_event_and_miss_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.db");
    let store = common::open_store(&db).await;
    let clock = ManualClock::starting_at(common::T0);
    let admin = Admin::new(&store, &clock);
    let tenant = admin.create_tenant("Example Portal").await.unwrap();
    let key = admin
        .create_key(&tenant.id, KeyMode::Live, 60)
        .await
        .unwrap();
    for i in 0..EVENTS {
        common::execute_sql(
            &db,
            &format!(
                "INSERT INTO sessions (id, request_id, tenant_id, key_id, origin, status, \
                 created_at, expires_at, request_id_hashed) \
                 VALUES ('sess_{i}', 'req_{i}', '{}', '{}', 'https://portal.example', \
                 'completed', 1, 2, 1)",
                tenant.id, key.record.id
            ),
        )
        .await
        .unwrap();
        common::execute_sql(
            &db,
            &format!(
                "INSERT INTO webhook_events (id, session_id, tenant_id, event_type, url, \
                 payload, created_at, status, attempts, next_attempt_at) \
                 VALUES ('evt_{i}', 'sess_{i}', '{}', 'session.completed', \
                 'https://portal.example/cb', '{{}}', 1, 'pending', 0, 1)",
                tenant.id
            ),
        )
        .await
        .unwrap();
    }

    let store = Arc::new(store);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let store = Arc::clone(&store);
        workers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            while let Some(event) = outbox::claim_next(&store, 1_000, 60_000, 5).await.unwrap() {
                assert_eq!(event.attempts, 1, "{} claimed twice", event.id);
                claimed.push(event.id);
                tokio::task::yield_now().await;
            }
            claimed
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "an event was claimed twice");
    assert_eq!(all.len(), EVENTS, "every due event is claimed once");
    store.close().await;
}
