//! The two migration sets build the same schema: the same tables, columns (type
//! family, nullability, default, primary key) and explicit indexes on SQLite
//! (`server/migrations/`) and PostgreSQL (`server/migrations-postgres/`). The triggers
//! are compared by what they do: the key-cache tests (`the_auth_version_*`) run on
//! both engines.
//!
//! Needs both engines, so it runs in the PostgreSQL pass (on SQLite alone it says so).

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

/// (type family, nullable, default, position in the primary key) per column.
type Columns = BTreeMap<String, (String, bool, Option<String>, i64)>;
/// A column as `information_schema` describes it: name, type, `YES`/`NO` nullable,
/// default, position in the primary key.
type PostgresColumn = (String, String, String, Option<String>, Option<i32>);

fn family(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer".to_owned(),
        "text" => "text".to_owned(),
        other => other.to_owned(),
    }
}

fn default_of(value: Option<String>) -> Option<String> {
    value.map(|v| {
        v.trim_end_matches("::text")
            .trim_end_matches("::bigint")
            .to_owned()
    })
}

async fn sqlite_schema(
    db: &std::path::Path,
) -> (
    BTreeMap<String, Columns>,
    std::collections::BTreeSet<String>,
) {
    let store = securesign_server::Store::open(db).await.unwrap();
    store.close().await;
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(db))
            .await
            .unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut schema = BTreeMap::new();
    for (table,) in tables {
        let rows: Vec<(String, String, bool, Option<String>, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info($1)",
        )
        .bind(&table)
        .fetch_all(&pool)
        .await
        .unwrap();
        let columns = rows
            .into_iter()
            .map(|(name, declared, not_null, default, pk)| {
                let nullable = !(not_null || pk > 0);
                (name, (family(&declared), nullable, default_of(default), pk))
            })
            .collect();
        schema.insert(table, columns);
    }
    let indexes: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    (schema, indexes.into_iter().map(|(n,)| n).collect())
}

async fn postgres_schema(
    db: &std::path::Path,
) -> (
    BTreeMap<String, Columns>,
    std::collections::BTreeSet<String>,
) {
    let store = common::open_store(db).await;
    store.close().await;
    let pool = sqlx::PgPool::connect(&common::database::postgres_url(db))
        .await
        .unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut schema = BTreeMap::new();
    for (table,) in tables {
        let rows: Vec<PostgresColumn> = sqlx::query_as(
            "SELECT c.column_name::text, c.data_type::text, c.is_nullable::text, \
             c.column_default::text, k.ordinal_position::int \
             FROM information_schema.columns c \
             LEFT JOIN information_schema.table_constraints t \
               ON t.table_name = c.table_name AND t.constraint_type = 'PRIMARY KEY' \
             LEFT JOIN information_schema.key_column_usage k \
               ON k.constraint_name = t.constraint_name AND k.column_name = c.column_name \
             WHERE c.table_schema = 'public' AND c.table_name = $1",
        )
        .bind(&table)
        .fetch_all(&pool)
        .await
        .unwrap();
        let columns = rows
            .into_iter()
            .map(|(name, declared, nullable, default, pk)| {
                (
                    name,
                    (
                        family(&declared),
                        nullable == "YES",
                        default_of(default),
                        i64::from(pk.unwrap_or(0)),
                    ),
                )
            })
            .collect();
        schema.insert(table, columns);
    }
    // Explicit indexes only (not those of primary keys and UNIQUE constraints).
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    (schema, indexes.into_iter().map(|(n,)| n).collect())
}

/// Tables only PostgreSQL has, by design: the rate limiter's shared state (a limit
/// exact across instances needs a shared store; one SQLite process keeps it in memory).
const POSTGRES_ONLY: &[&str] = &["rate_limits"];

#[tokio::test]
async fn both_migration_sets_build_the_same_schema() {
    if !common::is_postgres() {
        eprintln!("skipped without PostgreSQL (it compares both engines: run it through server/tests/with-postgres.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, sqlite_indexes) = sqlite_schema(&dir.path().join("schema.db")).await;
    let (mut postgres, postgres_indexes) = postgres_schema(&dir.path().join("schema-pg")).await;
    for table in POSTGRES_ONLY {
        postgres.remove(*table);
    }
    assert!(sqlite.contains_key("sessions") && sqlite.contains_key("auth_version"));
    // A tenant's disable state (issue 12), a nullable time on both engines.
    assert_eq!(
        sqlite["tenants"].get("disabled_at"),
        Some(&("integer".to_owned(), true, None, 0)),
        "tenants.disabled_at"
    );
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (table, columns) in &sqlite {
        assert_eq!(columns, &postgres[table], "columns of {table}");
    }
    assert_eq!(sqlite_indexes, postgres_indexes, "explicit indexes");
}
