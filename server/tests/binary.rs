//! The real `securesign-server` binary: admin commands, the seed's curl example run
//! with the real `curl`, revocation on the next request, restart on the same file,
//! and no plaintext key in the database or the logs.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    cli, curl_validate, curl_validate_after_change, request_id_of, sha256, BinaryServer, PORTAL,
};
use serde_json::{json, Value};

struct Setup {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    log: std::path::PathBuf,
    tenant: String,
    key: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    let tenant = cli(&db, &["tenant", "create", "--name", "Example Portal"])
        .trim()
        .to_owned();
    assert!(tenant.starts_with("org_"), "{tenant}");
    assert_eq!(
        cli(
            &db,
            &[
                "domain",
                "add",
                "--tenant",
                &tenant,
                "https://Portal.Example.gov.in/"
            ]
        )
        .trim(),
        PORTAL
    );
    let key = cli(
        &db,
        &["key", "create", "--tenant", &tenant, "--mode", "live"],
    )
    .trim()
    .to_owned();
    assert!(key.starts_with("ss_live_"), "{key}");
    Setup {
        _dir: dir,
        db,
        log,
        tenant,
        key,
    }
}

#[test]
fn seed_curl_example_answers_exactly_the_seed_shape() {
    let s = setup();
    let server = BinaryServer::spawn(&s.db, &s.log);
    let (body, status) = curl_validate(&server.base(), &s.key);
    assert_eq!(status, "200");
    assert_eq!(
        body,
        format!(
            r#"{{"success":true,"tenantId":"{}","allowed":true,"rateLimit":{{"rpm":120}}}}"#,
            s.tenant
        )
    );
    server.stop();
}

#[test]
fn revoke_from_the_cli_refuses_the_very_next_request() {
    let s = setup();
    let server = BinaryServer::spawn(&s.db, &s.log);
    assert_eq!(curl_validate(&server.base(), &s.key).1, "200");
    let listing = cli(&s.db, &["key", "list", "--tenant", &s.tenant]);
    let key_id = listing.split('\t').next().unwrap().to_owned();
    assert!(listing.contains(&format!("ss_live_…{}", &s.key[s.key.len() - 4..])));
    assert!(
        !listing.contains(&s.key[8..20]),
        "listing shows the key: {listing}"
    );
    cli(&s.db, &["key", "revoke", &key_id]);
    let (body, _) = curl_validate_after_change(&server.base(), &s.key, "401");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "SS_API_KEY_INVALID");
    assert!(cli(&s.db, &["key", "list"]).contains("revoked"));
    server.stop();
}

#[test]
fn rolled_key_from_the_cli_works_alongside_the_old_one_during_grace() {
    let s = setup();
    let key_id = cli(&s.db, &["key", "list"])
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let new_key = cli(&s.db, &["key", "roll", &key_id, "--grace", "1h"])
        .trim()
        .to_owned();
    assert!(new_key.starts_with("ss_live_") && new_key != s.key);
    let server = BinaryServer::spawn(&s.db, &s.log);
    assert_eq!(curl_validate(&server.base(), &s.key).1, "200");
    assert_eq!(curl_validate(&server.base(), &new_key).1, "200");
    let old_zero = cli(&s.db, &["key", "roll", &key_id, "--grace", "0s"])
        .trim()
        .to_owned();
    curl_validate_after_change(&server.base(), &s.key, "401");
    assert_eq!(curl_validate(&server.base(), &old_zero).1, "200");
    server.stop();
}

#[tokio::test]
async fn restart_keeps_tenants_keys_and_sessions_and_no_plaintext_key_is_stored() {
    let s = setup();
    let http = reqwest::Client::new();
    let server = BinaryServer::spawn(&s.db, &s.log);
    let reply = http
        .post(format!("{}/v1/auth/session", server.base()))
        .header("X-SecureSign-Api-Key", &s.key)
        .json(&json!({"origin": PORTAL, "documents": [
            {"id": "a", "name": "a.pdf", "digestAlgorithm": "SHA-256", "digest": common::b64(&sha256(b"a"))}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let created: Value = reply.json().await.unwrap();
    let session_id = created["sessionId"].as_str().unwrap().to_owned();
    server.stop();

    let server = BinaryServer::spawn(&s.db, &s.log);
    let (body, status) = curl_validate(&server.base(), &s.key);
    assert_eq!(status, "200", "{body}");
    let status = server.session_status(&http, &s.key, &session_id).await;
    assert_eq!(status["status"], "pending", "{status}");
    assert_eq!(status["documents"][0]["id"], "a");
    server.stop();

    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains("securesign-server started"),
        "debug log missing"
    );
    assert!(!log.contains(&s.key[8..]), "the API key appears in the log");
    let request_id = request_id_of(&created);
    assert!(
        !log.contains(&request_id),
        "the request id appears in the log"
    );

    let stored = common::database::stored_bytes(&s.db);
    let needle = &s.key.as_bytes()[8..];
    assert!(
        !stored.windows(needle.len()).any(|w| w == needle),
        "the database holds the plaintext key"
    );
}

#[test]
fn whitelist_changes_from_the_cli_apply_to_the_very_next_request() {
    let s = setup();
    let server = BinaryServer::spawn(&s.db, &s.log);
    // Twice: the second answer comes from the server's key cache.
    assert_eq!(curl_validate(&server.base(), &s.key).1, "200");
    assert_eq!(curl_validate(&server.base(), &s.key).1, "200");
    cli(&s.db, &["domain", "remove", "--tenant", &s.tenant, PORTAL]);
    let (body, _) = curl_validate_after_change(&server.base(), &s.key, "403");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "SS_DOMAIN_NOT_ALLOWED");
    cli(&s.db, &["domain", "add", "--tenant", &s.tenant, PORTAL]);
    curl_validate_after_change(&server.base(), &s.key, "200");
    server.stop();
}

#[tokio::test]
async fn an_auth_change_by_another_process_moves_the_auth_version() {
    let s = setup();
    let store = common::open_store(&s.db).await;
    let before = store.auth_version().unwrap();
    cli(&s.db, &["key", "list"]);
    store.catch_up().await.unwrap();
    assert_eq!(
        store.auth_version().unwrap(),
        before,
        "a read by another process is not a change"
    );
    cli(&s.db, &["tenant", "create", "--name", "Second Portal"]);
    store.catch_up().await.unwrap();
    let after = store.auth_version().unwrap();
    assert!(after > before, "{after:?} after {before:?}");
    store.close().await;
}

#[test]
fn tenant_policy_classes_are_set_and_lifted_from_the_command_line() {
    let s = setup();
    let set = cli(
        &s.db,
        &[
            "tenant",
            "policy-classes",
            "--tenant",
            &s.tenant,
            "class3",
            "document_signer",
        ],
    );
    assert_eq!(set.trim(), "Class 3, Document Signer");
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(common::database_args(&s.db))
        .args(["tenant", "policy-classes", "--tenant", &s.tenant, "class9"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("unknown class"), "{stderr}");
    let lifted = cli(&s.db, &["tenant", "policy-classes", "--tenant", &s.tenant]);
    assert_eq!(lifted.trim(), "any class");
}

/// The binary with `args` and a clean environment for the database options; its
/// failure's stderr (asserts it failed).
fn refused_with(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(args)
        .env_remove("SECURESIGN_DB")
        .env_remove("SECURESIGN_DATABASE_URL")
        .env_remove("SECURESIGN_SECRETS_KEY_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_database_url_needs_a_secrets_key_file_a_postgres_url_and_no_db_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secrets-key");
    let key = key.to_str().unwrap();
    // Port 1 on loopback: nothing listens, but these are refused before connecting.
    let url = "postgres://nobody@127.0.0.1:1/none";
    let stderr = refused_with(&["--database-url", url, "tenant", "list"]);
    assert!(stderr.contains("--secrets-key"), "{stderr}");
    let stderr = refused_with(&[
        "--database-url",
        "mysql://nobody@127.0.0.1:1/none",
        "--secrets-key",
        key,
        "tenant",
        "list",
    ]);
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
    let stderr = refused_with(&[
        "--database-url",
        url,
        "--db",
        "x.db",
        "--secrets-key",
        key,
        "tenant",
        "list",
    ]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(
        !std::path::Path::new(key).exists(),
        "nothing is created for a refused command"
    );
}

#[test]
fn the_database_url_and_the_secrets_key_come_from_the_environment_too() {
    if !common::is_postgres() {
        eprintln!("skipped on SQLite (the PostgreSQL URL is the subject)");
        return;
    }
    let s = setup();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(["tenant", "list"])
        .env_remove("SECURESIGN_DB")
        .env(
            "SECURESIGN_DATABASE_URL",
            common::database::postgres_url(&s.db),
        )
        .env(
            "SECURESIGN_SECRETS_KEY_FILE",
            common::database::secrets_key_path(&s.db),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains(&s.tenant), "{listing}");
}
