//! The store's SQLite connections (the pool and the change detector), and their
//! replacement when the `-shm` file was replaced under them.
//!
//! After a replacement this process's connections share SQLite's mapping of the old
//! file (one per database file and process), so no new connection can see the new one
//! while any old connection is open. [`reopen`] closes them all (the pool, then the
//! detector's connection), then opens new ones, which map the file now there; until it
//! is done every query is refused (fail closed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;

use super::StoreError;
use crate::change_detector::ChangeDetector;

/// Most pool connections.
const MAX_CONNECTIONS: u32 = 8;

/// One generation of connections.
#[derive(Debug)]
pub(super) struct Connections {
    pub(super) pool: SqlitePool,
    pub(super) changes: ChangeDetector,
}

impl Connections {
    /// A pool and a detector over the (migrated) database at `path`.
    pub(super) async fn open(
        path: &Path,
        options: &SqliteConnectOptions,
    ) -> Result<Self, StoreError> {
        let pool = pool(options).await?;
        let changes = ChangeDetector::open(path)?;
        Ok(Self { pool, changes })
    }
}

/// The pool over `options`.
pub(super) async fn pool(options: &SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    Ok(SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options.clone())
        .await?)
}

/// What a reopening needs, shared by every clone of the store.
#[derive(Debug)]
pub(super) struct Reopener {
    pub(super) path: PathBuf,
    pub(super) options: SqliteConnectOptions,
    running: AtomicBool,
}

impl Reopener {
    pub(super) fn new(path: &Path, options: SqliteConnectOptions) -> Self {
        Self {
            path: path.to_owned(),
            options,
            running: AtomicBool::new(false),
        }
    }
}

/// Starts replacing the connections in `current` (once at a time) on the running
/// tokio runtime; without one (a synchronous caller outside it) nothing happens and
/// the store keeps refusing.
pub(super) fn start_reopen(current: &Arc<ArcSwap<Connections>>, reopener: &Arc<Reopener>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if reopener.running.swap(true, Ordering::AcqRel) {
        return;
    }
    let current = Arc::clone(current);
    let reopener = Arc::clone(reopener);
    runtime.spawn(async move {
        reopen(&current, &reopener).await;
        reopener.running.store(false, Ordering::Release);
    });
}

async fn reopen(current: &ArcSwap<Connections>, reopener: &Reopener) {
    let old = current.load_full();
    // Waits for every checked-out connection; queries meanwhile are refused.
    old.pool.close().await;
    old.changes.close();
    drop(old);
    match Connections::open(&reopener.path, &reopener.options).await {
        Ok(fresh) => {
            current.store(Arc::new(fresh));
            tracing::warn!(path = %reopener.path.display(),
                "database connections reopened on the replaced -shm file: serving again");
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot reopen the database after its -shm file was replaced; the next query tries again");
        }
    }
}
