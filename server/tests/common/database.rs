//! The engine the tests run against.
//!
//! Tests name a database by a path in their temp directory (`dir/securesign.db`). On
//! SQLite (the default) that is the file. With `SECURESIGN_TEST_DATABASE=postgres` and
//! `SECURESIGN_TEST_POSTGRES_URL` (both set by `server/tests/with-postgres.sh`, which runs
//! a private cluster for the whole run), the path stands for a PostgreSQL database of
//! its own, named after the path's SHA-256 and created on first use; the secrets key
//! stays a file at `<path>.secrets-key`, as on SQLite.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use securesign_server::Store;
use sha2::{Digest, Sha256};

/// Whether this run is against PostgreSQL.
pub fn is_postgres() -> bool {
    match std::env::var("SECURESIGN_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("SECURESIGN_TEST_DATABASE={other}: expected sqlite or postgres"),
    }
}

/// The cluster's URL without a database.
fn server_url() -> String {
    std::env::var("SECURESIGN_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "SECURESIGN_TEST_DATABASE=postgres needs a cluster: run the tests through \
             server/tests/with-postgres.sh"
        )
    })
}

/// The PostgreSQL database a test's path stands for.
pub fn database_name(db: &Path) -> String {
    let digest = Sha256::digest(db.as_os_str().as_encoded_bytes());
    format!("t_{}", &hex::encode(digest)[..24])
}

/// The URL of the database `db` stands for (created if needed).
pub fn postgres_url(db: &Path) -> String {
    let name = database_name(db);
    create_database(&name);
    format!("{}/{name}", server_url())
}

/// The secrets key file of the database at `db`.
pub fn secrets_key_path(db: &Path) -> PathBuf {
    Store::default_secrets_key_path(db)
}

fn psql() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (server/install-test-deps.sh)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin/psql")))
        .filter(|path| path.exists())
        .collect();
    found.sort();
    found.pop().expect("a psql under /usr/lib/postgresql/*/bin")
}

/// Runs `sql` with psql on the cluster's `postgres` database; its stdout.
pub fn psql_admin(sql: &str) -> String {
    let out = Command::new(psql())
        .arg(format!("{}/postgres", server_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-At", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn create_database(name: &str) {
    static CREATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut created = CREATED.lock().unwrap();
    let created = created.get_or_insert_with(HashSet::new);
    if created.contains(name) {
        return;
    }
    let exists = psql_admin(&format!(
        "SELECT 1 FROM pg_database WHERE datname = '{name}'"
    ));
    if exists.trim().is_empty() {
        psql_admin(&format!("CREATE DATABASE {name}"));
    }
    created.insert(name.to_owned());
}

/// The arguments that point the binary at the database `db` stands for.
pub fn database_args(db: &Path) -> Vec<OsString> {
    if is_postgres() {
        vec![
            "--database-url".into(),
            postgres_url(db).into(),
            "--secrets-key".into(),
            secrets_key_path(db).into(),
        ]
    } else {
        vec!["--db".into(), db.into()]
    }
}

/// Opens the store `db` stands for (migrated).
pub async fn open_store(db: &Path) -> Store {
    if is_postgres() {
        Store::open_postgres(&postgres_url(db), &secrets_key_path(db))
            .await
            .unwrap()
    } else {
        Store::open(db).await.unwrap()
    }
}

/// Runs one statement on the database `db` stands for, through a connection of its
/// own (as another program would); the rows it changed, or the database's refusal.
pub async fn execute_sql(db: &Path, sql: &str) -> Result<u64, sqlx::Error> {
    if is_postgres() {
        let pool = sqlx::PgPool::connect(&postgres_url(db)).await?;
        let done = sqlx::query(sql).execute(&pool).await;
        pool.close().await;
        Ok(done?.rows_affected())
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
        let pool = sqlx::SqlitePool::connect_with(options).await?;
        let done = sqlx::query(sql).execute(&pool).await;
        pool.close().await;
        Ok(done?.rows_affected())
    }
}

/// Counts rows with `sql` (one `$1` parameter, one value) on the database `db` stands
/// for. The value is read as a BIGINT on both engines (PostgreSQL's `sum` of a BIGINT is
/// a NUMERIC).
pub async fn count(db: &Path, sql: &str, param: &str) -> i64 {
    let sql = &format!("SELECT CAST(({sql}) AS BIGINT)");
    if is_postgres() {
        let pool = sqlx::PgPool::connect(&postgres_url(db)).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(sql)
            .bind(param)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(sql)
            .bind(param)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

/// Everything the database `db` holds, as bytes to search: the SQLite file and its
/// sidecars, or a `pg_dump` of the PostgreSQL database.
pub fn stored_bytes(db: &Path) -> Vec<u8> {
    if is_postgres() {
        let pg_dump = psql().with_file_name("pg_dump");
        let out = Command::new(pg_dump)
            .arg(postgres_url(db))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
        out.stdout
    } else {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            if let Ok(content) = std::fs::read(PathBuf::from(name)) {
                bytes.extend(content);
            }
        }
        bytes
    }
}

/// For tests about SQLite itself (its files, their modes, its `-shm`): true (and says
/// why on stderr) when this run is against PostgreSQL, where the test has no object.
pub fn skip_on_postgres(why: &str) -> bool {
    let skip = is_postgres();
    if skip {
        eprintln!("skipped on PostgreSQL (SQLite-specific: {why})");
    }
    skip
}
