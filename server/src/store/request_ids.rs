//! The database keeps only the SHA-256 of each requestId (the app's capability: it is
//! in the deep link, so whoever reads the database must not be able to act as the app).

use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

/// The stored form of a requestId: its SHA-256, lowercase hex.
pub(super) fn stored_form(request_id: &str) -> String {
    hex::encode(Sha256::digest(request_id.as_bytes()))
}

/// Hashes the requestIds that rows written before migration
/// `20250601000000_request_id_sha256.sql` hold in clear, in one write transaction (two
/// processes opening at once convert each row once). When it converted any, it then
/// rebuilds the file (`VACUUM`: `secure_delete` zeroes freed cells and pages, but a
/// B-tree rebalance can leave old bytes in the unused middle of a page) and
/// checkpoints and truncates the WAL, so the clear values are gone from both files.
/// Returns how many rows it converted; idempotent.
pub(super) async fn hash_clear_request_ids(pool: &SqlitePool) -> Result<usize, sqlx::Error> {
    // A read first (on the partial index): most opens have nothing to convert and
    // need not take the write lock.
    let (pending,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM sessions WHERE request_id_hashed = 0)")
            .fetch_one(pool)
            .await?;
    if !pending {
        return Ok(0);
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, request_id FROM sessions WHERE request_id_hashed = 0")
            .fetch_all(&mut *tx)
            .await?;
    for (id, clear) in &rows {
        sqlx::query("UPDATE sessions SET request_id = $2, request_id_hashed = 1 WHERE id = $1")
            .bind(id)
            .bind(stored_form(clear))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if !rows.is_empty() {
        sqlx::query("VACUUM").execute(pool).await?;
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await?;
        if busy != 0 {
            tracing::warn!("another process is reading the database: the WAL may keep clear requestIds until its next checkpoint");
        }
        tracing::info!(
            sessions = rows.len(),
            "stored requestIds replaced by their SHA-256"
        );
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_is_the_hex_sha256() {
        assert_eq!(
            stored_form("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
