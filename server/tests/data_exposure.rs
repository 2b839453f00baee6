//! What the server exposes, and to whom: a test key never sees its tenant's live sessions
//! (nor a live key its test sessions), the database files are `0600` whatever the umask
//! of the process that creates them, and the database keeps only the SHA-256 of each
//! requestId (the app's capability), also for rows written before it did.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{
    b64, cli, documents_json, lab_trust_args, session_ids, sha256, Fixture, Signer, LOCAL, PORTAL,
};
use serde_json::json;

/// Creates a session with `key` for `origin`; returns (sessionId, requestId).
async fn create(f: &Fixture, key: &str, origin: &str, digest: &[u8; 32]) -> (String, String) {
    let reply = f
        .post_bearer(
            "/v1/auth/session",
            key,
            &json!({"origin": origin, "documents": documents_json(&[*digest])}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    session_ids(&reply.body)
}

#[tokio::test]
async fn a_test_key_never_sees_live_sessions_and_a_live_key_never_sees_test_sessions() {
    let f = Fixture::start().await;
    let signer = Signer::new("rsa");
    let live_digest = sha256(b"live contract");
    let (live_session, live_request) = create(&f, &f.live_key, PORTAL, &live_digest).await;
    let (test_session, _) = create(&f, &f.test_key, LOCAL, &sha256(b"test contract")).await;

    // The live session completes: its signature is what a test key must not read.
    let signature = signer.sign(&live_digest);
    let done = f
        .post(
            &format!("/v1/sign-requests/{live_request}/result"),
            &json!({"certificate": b64(&signer.cert_der), "signatures": [
                {"documentId": "doc-0", "signature": b64(&signature)}]}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);

    // Each key reads its own mode's session...
    let own = f
        .get_bearer(&format!("/v1/auth/session/{live_session}"), &f.live_key)
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["documents"][0]["signature"], b64(&signature));
    let own = f
        .get_bearer(&format!("/v1/auth/session/{test_session}"), &f.test_key)
        .await;
    assert_eq!(own.status, 200, "{}", own.body);

    // ...and the other mode's session answers exactly as a session that does not exist.
    let missing = f
        .get_bearer("/v1/auth/session/sess_doesnotexist0000000000", &f.test_key)
        .await;
    missing.assert_error(404, "SS_NOT_FOUND");
    for (session, key) in [(&live_session, &f.test_key), (&test_session, &f.live_key)] {
        let other = f
            .get_bearer(&format!("/v1/auth/session/{session}"), key)
            .await;
        other.assert_error(404, "SS_NOT_FOUND");
        assert_eq!(
            other.body, missing.body,
            "the answer tells the session exists"
        );
        let text = other.body.to_string();
        assert!(!text.contains(&b64(&signature)), "{text}");
    }
    f.stop().await;
}

/// `db`, `db-wal`, `db-shm`, `db-journal` and the secrets key that exist, with their modes.
fn database_file_modes(db: &Path) -> Vec<(PathBuf, u32)> {
    let mut files = vec![db.to_owned()];
    for suffix in ["-wal", "-shm", "-journal", ".secrets-key"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, meta.permissions().mode() & 0o777))
        })
        .collect()
}

/// The real binary with `args`, under `umask` (set by `sh` before it execs the server).
fn under_umask(umask: &str, db: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_securesign-server"))
        .arg("--db")
        .arg(db)
        .args(args);
    command
}

#[tokio::test]
async fn database_files_are_0600_whatever_the_umask() {
    if common::skip_on_postgres("the modes of the database file and its -wal/-shm") {
        return;
    }
    for umask in ["022", "000"] {
        let dir = tempfile::tempdir().unwrap();
        // The server creates the database (serve on a fresh path).
        let db = dir.path().join("served.db");
        let mut child = under_umask(umask, &db, &["serve", "--listen", "127.0.0.1:0"])
            .args(lab_trust_args())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on "), "{line:?}");
        // Another process writes while the server has the files open: -wal and -shm exist.
        let tenant = cli(&db, &["tenant", "create", "--name", "Example Portal"]);
        cli(&db, &["domain", "add", "--tenant", tenant.trim(), PORTAL]);
        let modes = database_file_modes(&db);
        let _ = child.kill();
        let _ = child.wait();
        let names: Vec<String> = modes
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in ["served.db", "served.db-wal", "served.db-shm"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing: {names:?}"
            );
        }
        for (path, mode) in &modes {
            assert_eq!(
                *mode,
                0o600,
                "umask {umask}: {} is {mode:o}",
                path.display()
            );
        }

        // An admin command creates the database.
        let db = dir.path().join("admin.db");
        let out = under_umask(umask, &db, &["tenant", "create", "--name", "Second"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let modes = database_file_modes(&db);
        assert!(modes.iter().any(|(p, _)| p == &db), "{modes:?}");
        for (path, mode) in &modes {
            assert_eq!(
                *mode,
                0o600,
                "umask {umask}: {} is {mode:o}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn an_existing_database_readable_by_others_is_made_0600_at_open() {
    if common::skip_on_postgres("the modes of the database file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    cli(&db, &["tenant", "create", "--name", "Example Portal"]);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = securesign_server::Store::open(&db).await.unwrap();
    let modes = database_file_modes(&db);
    store.close().await;
    for (path, mode) in &modes {
        assert_eq!(*mode, 0o600, "{} is {mode:o}", path.display());
    }
}

/// Whether `needle` occurs in the file at `path` (a missing file holds nothing).
fn file_holds(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn hex_sha256(text: &str) -> String {
    hex::encode(sha256(text.as_bytes()))
}

#[tokio::test]
async fn the_database_keeps_only_the_sha256_of_each_request_id() {
    let f = Fixture::start().await;
    let digest = sha256(b"contract");
    let (_, request_id) = f.create_session(&[digest], None).await;
    // The app's lookup by the clear id still works, and answers the clear id.
    let view = f.get(&format!("/v1/sign-requests/{request_id}")).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["requestId"], request_id.as_str());

    let stored = common::database::stored_bytes(&f.db_path);
    let holds = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(
        !holds(request_id.as_bytes()),
        "the database holds the clear requestId"
    );
    let hashed = hex_sha256(&request_id);
    assert!(
        holds(hashed.as_bytes()),
        "the hash is not where the session is (the scan looks in the wrong place)"
    );
    f.stop().await;
}

/// Sessions beside the two the test looks up, so the conversion rewrites many pages.
const MORE_SESSIONS: usize = 300;
const OTHER_REQUEST: &str = "OtherRequest0000000000000000000x";

fn more_request(i: usize) -> String {
    format!("MoreRequest{i:0>21}")
}

/// Applies the migrations before the requestId hashing one (copied into `into`) to a
/// new database at `db`, and writes a session the way the server did then.
async fn database_of_the_previous_release(db: &Path, into: &Path, request_id: &str) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::ConnectOptions as _;
    use std::str::FromStr as _;

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    std::fs::create_dir_all(into).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "20250601000000" {
            std::fs::copy(&path, into.join(&name)).unwrap();
        }
    }
    let mut connection = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .unwrap();
    let migrator = sqlx::migrate::Migrator::new(into.to_owned()).await.unwrap();
    assert_eq!(migrator.iter().count(), 6, "the releases before this one");
    migrator.run(&mut connection).await.unwrap();
    sqlx::query(
        "INSERT INTO tenants (id, display_name, created_at) VALUES ('org_old', 'Old', 1);
         INSERT INTO api_keys (id, tenant_id, mode, key_hash, last4, rpm, created_at)
           VALUES ('key_old', 'org_old', 'live', 'ab', 'abcd', 60, 1);",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let mut sessions = vec![
        ("sess_old".to_owned(), request_id.to_owned()),
        ("sess_other".to_owned(), OTHER_REQUEST.to_owned()),
    ];
    sessions.extend((0..MORE_SESSIONS).map(|i| (format!("sess_{i}"), more_request(i))));
    for (id, request) in &sessions {
        sqlx::query(
            "INSERT INTO sessions (id, request_id, tenant_id, key_id, origin, status, created_at, expires_at)
             VALUES ($1, $2, 'org_old', 'key_old', 'https://portal.example.gov.in', 'pending', 1, 4102444800)",
        )
        .bind(id)
        .bind(request)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    sqlx::Connection::close(connection).await.unwrap();
}

#[tokio::test]
async fn clear_request_ids_of_an_older_database_are_hashed_once_at_open() {
    if common::skip_on_postgres("a SQLite file of a release before the hashing; no PostgreSQL database ever held clear requestIds") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let request_id = "ClearRequestId0123456789abcdefXY";
    database_of_the_previous_release(&db, &dir.path().join("migrations"), request_id).await;
    assert!(
        file_holds(&db, request_id.as_bytes()),
        "the old release stored it in clear"
    );

    for round in 0..2 {
        let store = securesign_server::Store::open(&db).await.unwrap();
        let session = store.session_by_request(request_id).await.unwrap();
        let session = session.unwrap_or_else(|| panic!("round {round}: the old session is lost"));
        assert_eq!(session.id, "sess_old");
        assert_eq!(session.request_id, request_id);
        let other = store.session_by_request(OTHER_REQUEST).await.unwrap();
        assert_eq!(
            other.map(|s| s.id).as_deref(),
            Some("sess_other"),
            "round {round}"
        );
        assert!(
            store
                .session_by_request(&hex_sha256(request_id))
                .await
                .unwrap()
                .is_none(),
            "the stored hash is not itself a capability"
        );
        let clear: Vec<String> = [request_id.to_owned(), OTHER_REQUEST.to_owned()]
            .into_iter()
            .chain((0..MORE_SESSIONS).map(more_request))
            .collect();
        assert!(clear.iter().all(|id| id.len() == 32));
        for path in [db.clone(), with_suffix(&db, "-wal")] {
            let bytes = std::fs::read(&path).unwrap_or_default();
            // Every id is 32 characters: one pass over the file finds them all.
            let wanted: std::collections::HashSet<&[u8]> =
                clear.iter().map(|id| id.as_bytes()).collect();
            let left: std::collections::BTreeSet<&[u8]> =
                bytes.windows(32).filter(|w| wanted.contains(w)).collect();
            assert!(
                left.is_empty(),
                "round {round}: {} still holds {} clear requestIds, e.g. {:?}",
                path.display(),
                left.len(),
                left.first().map(|id| String::from_utf8_lossy(id))
            );
        }
        store.close().await;
    }
}
