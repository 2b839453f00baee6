//! A tenant disabled (issue 12): its keys are refused on every portal route with the
//! spec's `SS_API_KEY_INVALID`, its pending sessions expire (the app is told
//! `SS_SESSION_EXPIRED`), nothing new is written for it even by a request that passed a
//! key cache which had not yet heard of the disable, and enabling it lets its keys in
//! again. Through the store (in-process server, manual clock) and through the real
//! admin CLI against the real server binary. Both engines (the PostgreSQL pass runs
//! this file through `server/tests/with-postgres.sh`); several instances:
//! `multi_instance.rs`.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{
    b64, cli, cli_full, cli_key, cli_tenant, curl_validate, curl_validate_after_change,
    database_args, documents_json, execute_sql, sha256, BinaryServer, Fixture, Reply, Signer,
    PORTAL,
};
use securesign_server::api_key::KeyMode;
use securesign_server::clock::format_rfc3339;
use securesign_server::store::{FinishOutcome, SessionRecord, StoreError};
use securesign_server::Clock;
use serde_json::{json, Value};

/// The spec's answer to a key of a disabled tenant, exactly.
fn assert_tenant_disabled(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"success": false, "error": {
            "code": "SS_API_KEY_INVALID",
            "message": "the API key's tenant is disabled",
            "resolution": "Check Admin Console key status",
        }})
    );
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"securesign\"")
    );
}

fn session_body() -> Value {
    json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"deed")])})
}

/// Another tenant ("Other Portal", whitelisting [`PORTAL`]), which a disable of the
/// fixture's tenant must not touch: its id and a live key.
async fn other_tenant(admin: &securesign_server::admin::Admin<'_>) -> (String, String) {
    let other = admin.create_tenant("Other Portal").await.unwrap();
    admin.add_domain(&other.id, PORTAL).await.unwrap();
    let key = admin
        .create_key(&other.id, KeyMode::Live, 120)
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned();
    (other.id, key)
}

/// A pending raw session of the fixture's tenant and live key, as a portal's create
/// would insert it (requestId: 32 times `fill`).
fn pending_session(f: &Fixture, id: &str, fill: char, now: i64) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        request_id: fill.to_string().repeat(32),
        tenant_id: f.tenant_id.clone(),
        key_id: f.live_key_id.clone(),
        origin: PORTAL.to_owned(),
        callback_url: None,
        status: "pending".to_owned(),
        created_at: now,
        expires_at: now + 300,
        finished_at: None,
        signer_certificate: None,
        signature_algorithm: None,
        signature_format: "raw".to_owned(),
        key_mode: "live".to_owned(),
        signer_requirement: None,
        signer_evidence: None,
    }
}

#[tokio::test]
async fn a_disabled_tenants_keys_are_refused_on_every_portal_route_and_let_in_again_once_enabled() {
    let f = Fixture::start().await;
    let admin = f.admin();
    // Another tenant, untouched by the disable.
    let (other_id, other_key) = other_tenant(&admin).await;
    let (session_id, _) = f.create_session(&[sha256(b"before")], None).await;
    // Both keys cached (a second request is answered from memory).
    for key in [&f.live_key, &f.test_key, &f.live_key, &f.test_key] {
        assert_eq!(f.validate(key, PORTAL).await.status, 200);
    }
    let hits_before = f.keys.stats().hits;
    assert!(hits_before >= 2, "{:?}", f.keys.stats());

    let disabled = admin.disable_tenant(&f.tenant_id).await.unwrap();
    assert!(!disabled.already);
    assert_eq!(disabled.disabled_at, f.clock.now_unix());

    for key in [&f.live_key, &f.test_key] {
        assert_tenant_disabled(&f.validate(key, PORTAL).await);
        assert_tenant_disabled(
            &f.post_bearer("/v1/auth/session", key, &session_body())
                .await,
        );
        assert_tenant_disabled(
            &f.get_bearer(&format!("/v1/auth/session/{session_id}"), key)
                .await,
        );
    }
    // Refused before the rate limiter: no RateLimit headers.
    assert!(f
        .validate(&f.live_key, PORTAL)
        .await
        .header("ratelimit-limit")
        .is_none());
    let other_reply = f.validate(&other_key, PORTAL).await;
    assert_eq!(other_reply.status, 200, "{}", other_reply.body);
    assert_eq!(other_reply.body["tenantId"], other_id.as_str());
    let listed = admin.tenants().await.unwrap();
    let state = |id: &str| listed.iter().find(|t| t.id == id).unwrap().disabled_at;
    assert_eq!(state(&f.tenant_id), Some(disabled.disabled_at));
    assert_eq!(state(&other_id), None);

    // Disabling again keeps the first time.
    f.clock.advance(Duration::from_secs(30));
    let again = admin.disable_tenant(&f.tenant_id).await.unwrap();
    assert!(again.already);
    assert_eq!(again.disabled_at, disabled.disabled_at);

    assert!(admin.enable_tenant(&f.tenant_id).await.unwrap());
    assert!(!admin.enable_tenant(&f.tenant_id).await.unwrap());
    for key in [&f.live_key, &f.test_key] {
        let reply = f.validate(key, PORTAL).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let created = f
        .post_bearer("/v1/auth/session", &f.live_key, &session_body())
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    f.stop().await;
}

#[tokio::test]
async fn unknown_tenants_are_neither_disabled_nor_enabled() {
    let f = Fixture::start().await;
    let admin = f.admin();
    for err in [
        admin.disable_tenant("org_nosuchtenant").await.unwrap_err(),
        admin
            .enable_tenant("org_nosuchtenant")
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(err.to_string(), "no tenant org_nosuchtenant");
    }
    assert_eq!(f.validate(&f.live_key, PORTAL).await.status, 200);
    f.stop().await;
}

#[tokio::test]
async fn a_disabled_tenants_pending_sessions_expire_for_the_app_and_stay_expired_once_enabled() {
    let f = Fixture::start().await;
    let admin = f.admin();
    let signer = Signer::new("ec");
    let digest = sha256(b"lease");
    let (session_id, request_id) = f.create_session(&[digest], None).await;
    let (done_id, done_request) = f.create_session(&[digest], None).await;
    let result = json!({"certificate": b64(&signer.cert_der),
        "signatures": [{"documentId": "doc-0", "signature": b64(&signer.sign(&digest))}]});
    let completed = f
        .post(&format!("/v1/sign-requests/{done_request}/result"), &result)
        .await;
    assert_eq!(completed.status, 200, "{}", completed.body);
    // Another tenant's pending session is not touched.
    let (_, other_key) = other_tenant(&admin).await;
    let other_created = f
        .post_bearer("/v1/auth/session", &other_key, &session_body())
        .await;
    assert_eq!(other_created.status, 201, "{}", other_created.body);
    let (_, other_request) = common::session_ids(&other_created.body);

    f.clock.advance(Duration::from_secs(10));
    let disabled = admin.disable_tenant(&f.tenant_id).await.unwrap();
    assert_eq!(disabled.expired_sessions, 1, "only the pending one");

    let app_routes = |request_id: &str| {
        [
            format!("/v1/sign-requests/{request_id}"),
            format!("/v1/sign-requests/{request_id}/result"),
            format!("/v1/sign-requests/{request_id}/cancel"),
        ]
    };
    let [read, post_result, cancel] = app_routes(&request_id);
    f.get(&read).await.assert_error(410, "SS_SESSION_EXPIRED");
    f.post(&post_result, &result)
        .await
        .assert_error(410, "SS_SESSION_EXPIRED");
    f.post(&cancel, &json!({}))
        .await
        .assert_error(410, "SS_SESSION_EXPIRED");
    // The completed one stays completed; the other tenant's stays pending.
    f.get(&app_routes(&done_request)[0])
        .await
        .assert_error(409, "SS_CONFLICT");
    assert_eq!(f.get(&app_routes(&other_request)[0]).await.status, 200);

    // Enabled again: the expired session stays expired (the portal starts a new one),
    // and its status says when it expired: at the disable.
    f.clock.advance(Duration::from_secs(10));
    admin.enable_tenant(&f.tenant_id).await.unwrap();
    f.get(&read).await.assert_error(410, "SS_SESSION_EXPIRED");
    f.post(&post_result, &result)
        .await
        .assert_error(410, "SS_SESSION_EXPIRED");
    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(status.body["status"], "expired", "{}", status.body);
    assert_eq!(
        status.body["expiresAt"],
        format_rfc3339(disabled.disabled_at)
    );
    let done = f
        .get_bearer(&format!("/v1/auth/session/{done_id}"), &f.live_key)
        .await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    let (_, fresh) = f.create_session(&[digest], None).await;
    let signed = f
        .post(&format!("/v1/sign-requests/{fresh}/result"), &result)
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    f.stop().await;
}

#[tokio::test]
async fn a_request_that_passed_a_stale_key_cache_writes_nothing_for_a_disabled_tenant() {
    // What an instance whose cache has not yet heard of the disable would do next: the
    // tenant row is disabled underneath it (raw SQL: no session expired with it, as for
    // a session written in the instant between the disable and its notification).
    let f = Fixture::start().await;
    let (session_id, request_id) = f.create_session(&[sha256(b"race")], None).await;
    let now = f.clock.now_unix();
    let changed = execute_sql(
        &f.db_path,
        &format!(
            "UPDATE tenants SET disabled_at = {now} WHERE id = '{}'",
            f.tenant_id
        ),
    )
    .await
    .unwrap();
    assert_eq!(changed, 1);

    let store = &f.store;
    let completed = store
        .complete_session(&session_id, now, "cert", "alg", "{}", &[], None)
        .await
        .unwrap();
    assert_eq!(completed, FinishOutcome::NotPending);
    let cancelled = store.cancel_session(&session_id, now, None).await.unwrap();
    assert_eq!(cancelled, FinishOutcome::NotPending);
    let record = pending_session(&f, "sess_raceraceraceracerace", 'R', now);
    assert!(matches!(
        store.insert_session(&record, &[]).await,
        Err(StoreError::TenantDisabled)
    ));
    assert!(store
        .session_by_request(&record.request_id)
        .await
        .unwrap()
        .is_none());
    // Nothing of the first session moved either.
    let pending = store
        .session_by_request(&request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.status, "pending");
    // The same insert for an enabled tenant goes in.
    execute_sql(
        &f.db_path,
        &format!(
            "UPDATE tenants SET disabled_at = NULL WHERE id = '{}'",
            f.tenant_id
        ),
    )
    .await
    .unwrap();
    store.insert_session(&record, &[]).await.unwrap();
    f.stop().await;
}

/// The race a single statement's check leaves on PostgreSQL: a portal's session insert
/// running while a disable is committing. The disable's transaction is opened by hand and
/// held; the insert must wait for it, then see the tenant disabled and write nothing (it
/// used to go in as a pending session the disable never expired). SQLite serialises
/// writers, so the race cannot happen there.
#[tokio::test]
async fn a_session_inserted_while_a_disable_commits_waits_for_it_and_is_not_written() {
    if !common::is_postgres() {
        eprintln!("skipped on SQLite: one writer at a time, an insert cannot overlap a disable");
        return;
    }
    use sqlx::Connection as _;
    let f = Fixture::start().await;
    let now = f.clock.now_unix();
    let url = common::database::postgres_url(&f.db_path);
    let mut disabling = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = disabling.begin().await.unwrap();
    sqlx::query("UPDATE tenants SET disabled_at = $2 WHERE id = $1")
        .bind(&f.tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();

    let record = pending_session(&f, "sess_whiledisablingwhiledis", 'W', now);
    let store = f.store.clone();
    let inserting = tokio::spawn({
        let record = record.clone();
        async move { store.insert_session(&record, &[]).await }
    });
    // The insert waits on the tenant row the disable holds (seen in pg_stat_activity).
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            !inserting.is_finished(),
            "the insert did not wait for the disable: {:?}",
            inserting.await.unwrap()
        );
        assert!(std::time::Instant::now() < deadline, "no insert waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The rest of the disable: pending sessions expire; commit.
    sqlx::query(
        "UPDATE sessions SET expires_at = $2 \
         WHERE tenant_id = $1 AND status = 'pending' AND expires_at > $2",
    )
    .bind(&f.tenant_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    assert!(matches!(
        inserting.await.unwrap(),
        Err(StoreError::TenantDisabled)
    ));
    assert!(f
        .store
        .session_by_request(&record.request_id)
        .await
        .unwrap()
        .is_none());
    f.stop().await;
}

fn run_cli(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(database_args(db))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tenant_disable_and_enable_through_the_cli_reach_a_running_server_and_show_in_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let key = cli_key(&db, &tenant, "live", &[]);
    let server = BinaryServer::spawn(&db, &dir.path().join("server.log"));
    let base = server.base();
    for _ in 0..2 {
        assert_eq!(curl_validate(&base, &key).1, "200");
    }
    let listed = cli(&db, &["tenant", "list"]);
    let line = listed.lines().find(|l| l.starts_with(&tenant)).unwrap();
    assert_eq!(line.split('\t').nth(2), Some("active"), "{listed}");

    let (stdout, stderr) = cli_full(&db, &["tenant", "disable", "--tenant", &tenant]);
    assert!(stdout.starts_with("disabled since "), "{stdout}");
    assert!(
        stderr.contains("disabled: its API keys are refused"),
        "{stderr}"
    );
    let (body, _) = curl_validate_after_change(&base, &key, "401");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "SS_API_KEY_INVALID", "{body}");
    assert_eq!(
        body["error"]["message"], "the API key's tenant is disabled",
        "{body}"
    );
    let listed = cli(&db, &["tenant", "list"]);
    let line = listed.lines().find(|l| l.starts_with(&tenant)).unwrap();
    let state = line.split('\t').nth(2).unwrap();
    assert_eq!(state, stdout.trim(), "{listed}");
    // Again: succeeds, says so, keeps the time.
    let (again, stderr) = cli_full(&db, &["tenant", "disable", "--tenant", &tenant]);
    assert_eq!(again, stdout);
    assert!(stderr.contains("was already disabled"), "{stderr}");

    let (stdout, _) = cli_full(&db, &["tenant", "enable", "--tenant", &tenant]);
    assert_eq!(stdout.trim(), "active");
    curl_validate_after_change(&base, &key, "200");
    let listed = cli(&db, &["tenant", "list"]);
    let line = listed.lines().find(|l| l.starts_with(&tenant)).unwrap();
    assert_eq!(line.split('\t').nth(2), Some("active"), "{listed}");
    let (_, stderr) = cli_full(&db, &["tenant", "enable", "--tenant", &tenant]);
    assert!(stderr.contains("was not disabled"), "{stderr}");

    // Unknown tenant, or none named: a clear error and a nonzero exit, nothing changed.
    for command in ["disable", "enable"] {
        let out = run_cli(&db, &["tenant", command, "--tenant", "org_nosuchtenant"]);
        assert!(!out.status.success(), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no tenant org_nosuchtenant"), "{stderr}");
        let out = run_cli(&db, &["tenant", command]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--tenant <TENANT>"), "{stderr}");
    }
    assert_eq!(curl_validate(&base, &key).1, "200");
    server.stop();
}
