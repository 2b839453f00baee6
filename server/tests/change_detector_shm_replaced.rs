//! The change detector fails closed when the `-shm` file (the WAL-index the server's
//! SQLite connections and the detector share) is replaced under a running server, as a
//! restore by rename does: from then on the server's view of the database no longer
//! follows other processes' commits, so a key revoked by the admin CLI must not be
//! accepted, and the server must reopen its connections on the new file to serve again;
//! the real server binary, the real admin CLI as the other process.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{cli, cli_key, cli_tenant, curl_validate, BinaryServer, PORTAL};
use serde_json::Value;

/// `POST /v1/auth/validate` with the real curl: (status, error code if any).
fn validate(base: &str, key: &str) -> (u16, Option<String>) {
    let (body, status) = curl_validate(base, key);
    let body: Value = serde_json::from_str(&body).unwrap();
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status.parse().unwrap(), code)
}

fn shm_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// A copy of the `-shm` file renamed over it: same bytes, another inode.
fn replace_by_rename(shm: &Path) {
    let copy = shm.with_extension("restored");
    std::fs::copy(shm, &copy).unwrap();
    std::fs::rename(&copy, shm).unwrap();
}

fn key_id(db: &Path, key: &str) -> String {
    let listing = cli(db, &["key", "list"]);
    let last4 = &key[key.len() - 4..];
    listing
        .lines()
        .find(|line| line.contains(&format!("…{last4}")))
        .and_then(|line| line.split('\t').next())
        .unwrap()
        .to_owned()
}

#[test]
fn a_key_revoked_after_the_shm_file_was_replaced_is_refused_on_the_next_request() {
    if common::skip_on_postgres("the -shm file of the SQLite database") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let revoked = cli_key(&db, &tenant, "live", &[]);
    let kept = cli_key(&db, &tenant, "live", &[]);

    let server = BinaryServer::spawn(&db, &log);
    // Twice each: the second answers come from the key cache.
    for key in [&revoked, &kept, &revoked, &kept] {
        assert_eq!(validate(&server.base(), key), (200, None));
    }

    replace_by_rename(&shm_of(&db));
    cli(&db, &["key", "revoke", &key_id(&db, &revoked)]);
    let (status, code) = validate(&server.base(), &revoked);
    assert_ne!(
        status, 200,
        "the revoked key was accepted: the detector failed open"
    );
    assert!(
        matches!(
            (status, code.as_deref()),
            (401, Some("SS_API_KEY_INVALID")) | (500, Some("SS_INTERNAL"))
        ),
        "{status} {code:?}"
    );
    // The server then closes all its connections and opens new ones on the file now
    // there: the other key works again and the revoked one stays refused, without a
    // restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match validate(&server.base(), &kept) {
            (200, None) => break,
            (500, Some(code)) if code == "SS_INTERNAL" => {}
            other => panic!("the kept key got {other:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never reopened the database"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        validate(&server.base(), &revoked),
        (401, Some("SS_API_KEY_INVALID".to_owned()))
    );
    // And a revoke after the reopening is seen on the next request as usual.
    cli(&db, &["key", "revoke", &key_id(&db, &kept)]);
    assert_eq!(
        validate(&server.base(), &kept),
        (401, Some("SS_API_KEY_INVALID".to_owned()))
    );
    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("was replaced"),
        "the log does not say why: {text}"
    );
    assert!(
        text.contains("reopened"),
        "the log does not say it recovered"
    );

    // A restarted server sees the same.
    let server = BinaryServer::spawn(&db, &log);
    for key in [&revoked, &kept] {
        assert_eq!(
            validate(&server.base(), key),
            (401, Some("SS_API_KEY_INVALID".to_owned()))
        );
    }
    server.stop();
}

/// The same with the `-shm` file removed instead (no file at the path): refused too.
#[test]
fn a_removed_shm_file_fails_closed_too() {
    if common::skip_on_postgres("the -shm file of the SQLite database") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let key = cli_key(&db, &tenant, "live", &[]);
    let server = BinaryServer::spawn(&db, &log);
    assert_eq!(validate(&server.base(), &key), (200, None));
    std::fs::remove_file(shm_of(&db)).unwrap();
    cli(&db, &["key", "revoke", &key_id(&db, &key)]);
    let (status, _) = validate(&server.base(), &key);
    assert_ne!(
        status, 200,
        "the revoked key was accepted: the detector failed open"
    );
    server.stop();
}
