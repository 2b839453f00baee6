//! The database: one SQLite file in WAL mode (the default), or a PostgreSQL database
//! (`--database-url`), both through `sqlx`.
//!
//! One query text serves both engines: the SQL sticks to portable types and `$n`
//! placeholders (which sqlx-sqlite accepts), and [`with_pool!`] runs it on whichever
//! pool the store has (each arm is compiled for its engine, so rows are decoded by the
//! engine's own driver, without `sqlx::Any`'s conversions). What differs per engine is
//! kept in one place each: opening and freshness ([`connections`] and the change
//! detector for SQLite, [`postgres`] and its LISTEN/NOTIFY for PostgreSQL) and the
//! few statements that must differ (the outbox claim takes `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, where writers do not serialise as SQLite's do).
//!
//! Migrations live in `server/migrations/` (SQLite) and `server/migrations-postgres/`
//! (the same resulting schema), both embedded in the binary.
//!
//! What the files hold is guarded here: they are `0600` ([`files`]), requestIds are
//! stored only as their SHA-256 ([`request_ids`]), deleted content is overwritten
//! (`secure_delete`), and a session is read by a portal only with a key of the mode
//! that created it ([`Store::session_of_key`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::api_key::KeyMode;
use crate::change_detector::{self, ChangeDetector, ChangeDetectorError, DetectorStats};
use crate::secrets_key::{default_key_path, SecretsKey, SecretsKeyError};
use crate::webhook::outbox::{self, NewEvent};
use crate::webhook::secret::{MalformedSecret, SigningSecrets, WebhookSecret};
use connections::{Connections, Reopener};

mod connections;
mod files;
pub mod postgres;
mod request_ids;
mod tenant_state;

pub use tenant_state::DisabledTenant;

/// Runs `$body` with `$p` bound to the pool (or connection) inside a [`Pool`]-shaped
/// enum: the same query text, compiled once per engine.
macro_rules! with_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A connection pool of either engine (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// The SQLite file's pool.
    Sqlite(SqlitePool),
    /// The PostgreSQL database's pool.
    Postgres(PgPool),
}

impl Pool {
    /// Whether this is PostgreSQL (for the few statements that differ).
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// A value of the `auth_version` counter, as the store's engine observes it: equal
/// values mean that no key, tenant or whitelist changed in between, a greater one that
/// something did. Values of one store only are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthVersion {
    /// Read by the SQLite change detector.
    Sqlite(change_detector::AuthVersion),
    /// The latest version PostgreSQL announced (or the row read on (re)connecting).
    Postgres(i64),
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query or connection failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The change detector's connection failed.
    #[error(transparent)]
    ChangeDetector(#[from] ChangeDetectorError),
    /// The secrets key is unusable, or a sealed secret does not open with it.
    #[error(transparent)]
    Secrets(#[from] SecretsKeyError),
    /// A stored webhook secret opened but is not a webhook secret.
    #[error("a stored webhook secret is malformed")]
    MalformedSecret(#[from] MalformedSecret),
    /// PostgreSQL's change notifications are not being received (see [`postgres`]):
    /// nothing may be served from the key cache until they are again.
    #[error("the PostgreSQL change notifications are not being received: {0}")]
    NotificationsDown(&'static str),
    /// The tenant is disabled: nothing new is written for it.
    #[error("the tenant is disabled")]
    TenantDisabled,
    /// `--database-url` is not a PostgreSQL URL.
    #[error("unsupported database URL (expected postgres://… or postgresql://…)")]
    UnsupportedUrl,
    /// The database file (or a file beside it) cannot be created or restricted to its owner.
    #[error("database file {path}: {source}")]
    Files {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A tenant (an organisation running a portal).
#[derive(Debug, Clone, FromRow)]
pub struct TenantRecord {
    /// `org_…`.
    pub id: String,
    /// Shown to the signer in the app.
    pub display_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the tenant was disabled (Unix seconds); `None` while it is enabled. A
    /// disabled tenant's keys are refused (see [`Store::disable_tenant`]).
    pub disabled_at: Option<i64>,
}

/// An API key row (no key text, only its hash).
#[derive(Debug, Clone, FromRow)]
pub struct KeyRecord {
    /// `key_…`.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// `live` or `test`.
    pub mode: String,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// Last four characters of the key.
    pub last4: String,
    /// Requests per minute.
    pub rpm: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// End of the grace period after a roll.
    pub expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// The key that replaced it in a roll.
    pub replaced_by: Option<String>,
}

impl KeyRecord {
    /// Whether the key may authenticate a request at `now`.
    pub fn usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|end| now < end)
    }
}

/// A whitelisted origin.
#[derive(Debug, Clone, FromRow)]
pub struct DomainRecord {
    /// Owner.
    pub tenant_id: String,
    /// Normalised origin.
    pub origin: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A signing session.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    /// `sess_…`.
    pub id: String,
    /// The app's capability (the requestId of the deep link), in clear: as given to
    /// [`Store::insert_session`] or to [`Store::session_by_request`]; empty when the
    /// session was read by its id (the database keeps only its SHA-256).
    pub request_id: String,
    /// Owner.
    pub tenant_id: String,
    /// Key that created it.
    pub key_id: String,
    /// Origin it was created for.
    pub origin: String,
    /// Where the portal wants to be told: the server POSTs signed events to it.
    pub callback_url: Option<String>,
    /// `pending`, `completed` or `cancelled` (expiry is derived from `expires_at`).
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it completed or was cancelled.
    pub finished_at: Option<i64>,
    /// Base64 DER signer certificate, once completed.
    pub signer_certificate: Option<String>,
    /// Algorithm the signatures verified with.
    pub signature_algorithm: Option<String>,
    /// `raw` or `cms` (see [`crate::signature_format::SignatureFormat`]).
    pub signature_format: String,
    /// `live` or `test`: the mode of the key that created it.
    pub key_mode: String,
    /// The signer the portal expects (JSON `SignerRequirement`), if it named one.
    pub signer_requirement: Option<String>,
    /// How the signer was validated (JSON `SignerEvidence`), once completed.
    pub signer_evidence: Option<String>,
}

/// One document of a session.
#[derive(Debug, Clone, FromRow)]
pub struct DocumentRecord {
    /// Order in the request.
    pub position: i64,
    /// The portal's id for the document.
    pub document_id: String,
    /// Display name.
    pub name: String,
    /// Base64 SHA-256 digest.
    pub digest: String,
    /// Base64 signature (raw) or base64 DER CMS (cms), once completed.
    pub signature: Option<String>,
}

/// What a conditional finish of a session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishOutcome {
    /// The session was pending and unexpired, and is now finished.
    Done,
    /// Someone else finished it first, or it expired.
    NotPending,
}

/// A key row with its tenant's whitelist and state, read by one query.
#[derive(Debug, Clone)]
pub struct KeyWithWhitelist {
    /// The key.
    pub key: KeyRecord,
    /// The tenant's normalised whitelisted origins.
    pub origins: Vec<String>,
    /// When the key's tenant was disabled, if it is.
    pub tenant_disabled_at: Option<i64>,
}

/// One row of the key-and-whitelist join.
#[derive(FromRow)]
struct KeyOriginRow {
    #[sqlx(flatten)]
    key: KeyRecord,
    tenant_disabled_at: Option<i64>,
    origin: Option<String>,
}

/// Writes an outbox event ([`outbox::INSERT_SQL`]) inside the transaction `$tx`.
macro_rules! insert_event {
    ($tx:ident, $event:expr) => {{
        let event: &NewEvent = $event;
        sqlx::query(outbox::INSERT_SQL)
            .bind(&event.id)
            .bind(&event.session_id)
            .bind(&event.tenant_id)
            .bind(event.event_type.as_str())
            .bind(&event.url)
            .bind(&event.payload)
            .bind(event.created_at_ms)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// The database handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    secrets: Arc<SecretsKey>,
}

/// The engine behind a store.
#[derive(Debug, Clone)]
enum Backend {
    /// The current connections: replaced as a whole when the `-shm` file was
    /// replaced (see [`connections`]).
    Sqlite {
        connections: Arc<ArcSwap<Connections>>,
        reopener: Arc<Reopener>,
    },
    Postgres(Arc<postgres::Postgres>),
}

impl Store {
    /// Opens (creating if needed) the SQLite file at `path` and applies migrations;
    /// secrets are sealed with the key in `<path>.secrets-key` (created if missing).
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_secrets_key(path, &default_key_path(path)).await
    }

    /// [`Store::open`] with the secrets key read from (or created at) `key_path`.
    ///
    /// The database file is created `0600` (its `-wal` and `-shm` follow it), and
    /// requestIds older rows hold in clear are hashed before this returns.
    pub async fn open_with_secrets_key(path: &Path, key_path: &Path) -> Result<Self, StoreError> {
        let secrets = Arc::new(SecretsKey::load_or_create(key_path)?);
        files::prepare(path).map_err(|source| StoreError::Files {
            path: path.to_owned(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed, not left in free space.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5));
        let pool = connections::pool(&options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        request_ids::hash_clear_request_ids(&pool).await?;
        let changes = ChangeDetector::open(path)?;
        Ok(Self {
            backend: Backend::Sqlite {
                connections: Arc::new(ArcSwap::from_pointee(Connections { pool, changes })),
                reopener: Arc::new(Reopener::new(path, options)),
            },
            secrets,
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`), applies its
    /// migrations and starts listening for auth changes (see [`postgres`]); secrets are
    /// sealed with the key in `key_path` (created if missing), which is never kept in
    /// the database.
    pub async fn open_postgres(url: &str, key_path: &Path) -> Result<Self, StoreError> {
        // The URL first: a refused command creates no key file.
        postgres::check_url(url)?;
        let secrets = Arc::new(SecretsKey::load_or_create(key_path)?);
        let backend = postgres::Postgres::open(url).await?;
        Ok(Self {
            backend: Backend::Postgres(Arc::new(backend)),
            secrets,
        })
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// On PostgreSQL, whether the auth-change notifications are being received now
    /// (`None` on SQLite).
    pub fn notifications_listening(&self) -> Option<bool> {
        match &self.backend {
            Backend::Sqlite { .. } => None,
            Backend::Postgres(pg) => Some(pg.auth_version().is_ok()),
        }
    }

    /// The secrets key file a database uses unless told otherwise.
    pub fn default_secrets_key_path(db: &Path) -> PathBuf {
        default_key_path(db)
    }

    /// The connection pool, for the query modules of this crate, once the `-shm` file
    /// is found to be the one this process's connections map (see
    /// [`ChangeDetector::check_shared_memory`]): after it was replaced, this process's
    /// view of the database is stale and its writes could land over other processes'
    /// commits, so every query is refused until the connections are reopened.
    pub(crate) fn pool(&self) -> Result<Pool, StoreError> {
        self.db()
    }

    fn db(&self) -> Result<Pool, StoreError> {
        match &self.backend {
            Backend::Sqlite {
                connections,
                reopener,
            } => {
                let current = connections.load();
                match current.changes.check_shared_memory() {
                    Ok(()) => Ok(Pool::Sqlite(current.pool.clone())),
                    Err(err) => Err(refused(connections, reopener, err)),
                }
            }
            Backend::Postgres(pg) => Ok(Pool::Postgres(pg.pool().clone())),
        }
    }

    /// The auth version: it moves when a key, tenant or whitelist changes, from this
    /// process or another one. Synchronous and cheap; call it before reading what must
    /// be current.
    ///
    /// SQLite: read by the [`ChangeDetector`] (a `stat` and a `pread` of the WAL-index
    /// header; the counter's row only when something committed), exact at the time of the call. PostgreSQL: the
    /// latest version announced by `NOTIFY` (an atomic load), so a change is seen once
    /// its notification arrived (milliseconds after its commit); an error while the
    /// notifications are not being received (see [`postgres`]).
    pub fn auth_version(&self) -> Result<AuthVersion, StoreError> {
        match &self.backend {
            Backend::Sqlite {
                connections,
                reopener,
            } => connections
                .load()
                .changes
                .auth_version()
                .map(AuthVersion::Sqlite)
                .map_err(|err| refused(connections, reopener, err)),
            Backend::Postgres(pg) => pg.auth_version().map(AuthVersion::Postgres),
        }
    }

    /// After a write through this store to keys, tenants or whitelists: on PostgreSQL,
    /// moves the auth version to the counter's value now, so this process's next request
    /// sees the change without waiting for its notification (SQLite's detector sees it
    /// anyway).
    async fn after_auth_change(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(pg) => pg.after_auth_change().await,
        }
    }

    /// Waits until every change to keys, tenants or whitelists committed before this
    /// call, by any process, is reflected in [`Store::auth_version`]. Immediate on
    /// SQLite, whose version is exact at every call; on PostgreSQL, waits for the
    /// notifications to arrive (milliseconds; see [`postgres`]).
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(pg) => pg.catch_up().await,
        }
    }

    /// How often [`Store::auth_version`] had to read the counter (SQLite; zero on
    /// PostgreSQL, which never reads it per request).
    pub fn change_detector_stats(&self) -> DetectorStats {
        match &self.backend {
            Backend::Sqlite { connections, .. } => connections.load().changes.stats(),
            Backend::Postgres(_) => DetectorStats::default(),
        }
    }

    /// Closes all connections (waits for them to be returned).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { connections, .. } => {
                let pool = connections.load().pool.clone();
                pool.close().await;
            }
            Backend::Postgres(pg) => pg.close().await,
        }
    }

    // ---- tenants ----

    /// Inserts a tenant.
    pub async fn insert_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        with_pool!(self.db()?, |p| sqlx::query(
            "INSERT INTO tenants (id, display_name, created_at) VALUES ($1, $2, $3)"
        )
        .bind(&tenant.id)
        .bind(&tenant.display_name)
        .bind(tenant.created_at)
        .execute(&p)
        .await?
        .rows_affected());
        self.after_auth_change().await?;
        Ok(())
    }

    /// Inserts a tenant and its webhook secret (sealed), atomically.
    pub async fn insert_tenant_with_secret(
        &self,
        tenant: &TenantRecord,
        secret: &WebhookSecret,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_webhook_secret(&tenant.id, secret)?;
        with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO tenants (id, display_name, created_at) VALUES ($1, $2, $3)")
                .bind(&tenant.id)
                .bind(&tenant.display_name)
                .bind(tenant.created_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO webhook_secrets (tenant_id, sealed, created_at) VALUES ($1, $2, $3)",
            )
            .bind(&tenant.id)
            .bind(&sealed)
            .bind(tenant.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.after_auth_change().await?;
        Ok(())
    }

    fn seal_webhook_secret(
        &self,
        tenant_id: &str,
        secret: &WebhookSecret,
    ) -> Result<String, StoreError> {
        Ok(self.secrets.seal(
            secret.expose().as_bytes(),
            &webhook_secret_context(tenant_id),
        )?)
    }

    /// Replaces a tenant's webhook secret. With `keep_previous_until` (Unix seconds), the
    /// secret it replaces keeps signing beside it until then; a roll during a grace
    /// period keeps only the secret it replaces (the one before that stops at once).
    pub async fn set_webhook_secret(
        &self,
        tenant_id: &str,
        secret: &WebhookSecret,
        now: i64,
        keep_previous_until: Option<i64>,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_webhook_secret(tenant_id, secret)?;
        // The new row's `previous_*` come from the old row (on conflict), or are NULL.
        with_pool!(self.db()?, |p| sqlx::query(
            "INSERT INTO webhook_secrets (tenant_id, sealed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET \
               previous_sealed = CASE WHEN $4 IS NULL THEN NULL ELSE webhook_secrets.sealed END, \
               previous_until = $4, \
               sealed = excluded.sealed, created_at = excluded.created_at",
        )
        .bind(tenant_id)
        .bind(&sealed)
        .bind(now)
        .bind(keep_previous_until)
        .execute(&p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The secrets that sign a tenant's callbacks at `now` (Unix seconds): the current
    /// one, and the rolled one while its grace period lasts. `None` when it has none.
    pub async fn webhook_secrets(
        &self,
        tenant_id: &str,
        now: i64,
    ) -> Result<Option<SigningSecrets>, StoreError> {
        let row: Option<(String, Option<String>, Option<i64>)> = with_pool!(self.db()?, |p| {
            sqlx::query_as(
            "SELECT sealed, previous_sealed, previous_until FROM webhook_secrets WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&p)
        .await?
        });
        let Some((sealed, previous_sealed, previous_until)) = row else {
            return Ok(None);
        };
        let open = |sealed: &str| -> Result<WebhookSecret, StoreError> {
            let plain = self
                .secrets
                .open(sealed, &webhook_secret_context(tenant_id))?;
            Ok(WebhookSecret::from_bytes(&plain)?)
        };
        let previous = match (previous_sealed, previous_until) {
            (Some(sealed), Some(until)) if now < until => Some(open(&sealed)?),
            _ => None,
        };
        Ok(Some(SigningSecrets {
            current: open(&sealed)?,
            previous,
        }))
    }

    /// A tenant by id.
    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(with_pool!(self.db()?, |p| sqlx::query_as(
            "SELECT id, display_name, created_at, disabled_at FROM tenants WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&p)
        .await?))
    }

    /// The India PKI classes a tenant accepts (JSON array of class names), if it restricts
    /// them; `None` also for an unknown tenant.
    pub async fn tenant_policy_classes(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = with_pool!(self.db()?, |p| sqlx::query_as(
            "SELECT policy_classes FROM tenants WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&p)
        .await?);
        Ok(row.and_then(|(classes,)| classes))
    }

    /// Sets (or, with `None`, lifts) the classes a tenant accepts.
    pub async fn set_tenant_policy_classes(
        &self,
        id: &str,
        classes: Option<&str>,
    ) -> Result<(), StoreError> {
        with_pool!(self.db()?, |p| sqlx::query(
            "UPDATE tenants SET policy_classes = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(classes)
        .execute(&p)
        .await?
        .rows_affected());
        self.after_auth_change().await?;
        Ok(())
    }

    /// All tenants, oldest first.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        Ok(with_pool!(self.db()?, |p| sqlx::query_as(
            "SELECT id, display_name, created_at, disabled_at FROM tenants ORDER BY created_at, id",
        )
        .fetch_all(&p)
        .await?))
    }

    // ---- keys ----

    /// Inserts a key row.
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        with_pool!(self.db()?, |p| {
            sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, mode, key_hash, last4, rpm, created_at, expires_at, revoked_at, replaced_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.mode)
        .bind(&key.key_hash)
        .bind(&key.last4)
        .bind(key.rpm)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .bind(&key.replaced_by)
        .execute(&p)
        .await?.rows_affected()
        });
        self.after_auth_change().await?;
        Ok(())
    }

    const KEY_COLUMNS: &'static str =
        "id, tenant_id, mode, key_hash, last4, rpm, created_at, expires_at, revoked_at, replaced_by";

    /// The key with this hash (hex SHA-256), its tenant's whitelist and whether the
    /// tenant is disabled, in one query.
    pub async fn key_with_whitelist(
        &self,
        hash_hex: &str,
    ) -> Result<Option<KeyWithWhitelist>, StoreError> {
        let rows: Vec<KeyOriginRow> = with_pool!(self.db()?, |p| {
            sqlx::query_as(
            "SELECT k.id, k.tenant_id, k.mode, k.key_hash, k.last4, k.rpm, k.created_at, \
             k.expires_at, k.revoked_at, k.replaced_by, t.disabled_at AS tenant_disabled_at, d.origin \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             LEFT JOIN domains d ON d.tenant_id = k.tenant_id \
             WHERE k.key_hash = $1",
        )
        .bind(hash_hex)
        .fetch_all(&p)
        .await?
        });
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let origins = std::iter::once(first.origin)
            .chain(rows.map(|row| row.origin))
            .flatten()
            .collect();
        Ok(Some(KeyWithWhitelist {
            key: first.key,
            origins,
            tenant_disabled_at: first.tenant_disabled_at,
        }))
    }

    /// The key with this id.
    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {} FROM api_keys WHERE id = $1", Self::KEY_COLUMNS);
        Ok(with_pool!(self.db()?, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&p)
            .await?))
    }

    /// Keys, optionally of one tenant, oldest first.
    pub async fn keys(&self, tenant_id: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM api_keys WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at, id",
            Self::KEY_COLUMNS
        );
        Ok(with_pool!(self.db()?, |p| sqlx::query_as(&sql)
            .bind(tenant_id)
            .fetch_all(&p)
            .await?))
    }

    /// Marks a key revoked at `now`; returns whether a live key was revoked.
    pub async fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self.db()?, |p| sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .execute(&p)
        .await?
        .rows_affected());
        self.after_auth_change().await?;
        Ok(done == 1)
    }

    /// Inserts `new_key` and limits `old_id` to `old_expires_at`, atomically.
    pub async fn roll_key(
        &self,
        old_id: &str,
        old_expires_at: i64,
        new_key: &KeyRecord,
    ) -> Result<(), StoreError> {
        with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, mode, key_hash, last4, rpm, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&new_key.id)
            .bind(&new_key.tenant_id)
            .bind(&new_key.mode)
            .bind(&new_key.key_hash)
            .bind(&new_key.last4)
            .bind(new_key.rpm)
            .bind(new_key.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 \
                 THEN $2 ELSE expires_at END, replaced_by = $3 WHERE id = $1",
            )
            .bind(old_id)
            .bind(old_expires_at)
            .bind(&new_key.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.after_auth_change().await?;
        Ok(())
    }

    // ---- domains ----

    /// Whitelists an origin; returns false when it was already there.
    pub async fn add_domain(
        &self,
        tenant_id: &str,
        origin: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self.db()?, |p| sqlx::query(
            "INSERT INTO domains (tenant_id, origin, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, origin) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(origin)
        .bind(now)
        .execute(&p)
        .await?
        .rows_affected());
        self.after_auth_change().await?;
        Ok(done == 1)
    }

    /// Removes an origin; returns whether it was there.
    pub async fn remove_domain(&self, tenant_id: &str, origin: &str) -> Result<bool, StoreError> {
        let done = with_pool!(self.db()?, |p| sqlx::query(
            "DELETE FROM domains WHERE tenant_id = $1 AND origin = $2"
        )
        .bind(tenant_id)
        .bind(origin)
        .execute(&p)
        .await?
        .rows_affected());
        self.after_auth_change().await?;
        Ok(done == 1)
    }

    /// A tenant's origins.
    pub async fn domains(&self, tenant_id: &str) -> Result<Vec<DomainRecord>, StoreError> {
        Ok(with_pool!(self.db()?, |p| {
            sqlx::query_as(
            "SELECT tenant_id, origin, created_at FROM domains WHERE tenant_id = $1 ORDER BY origin",
        )
        .bind(tenant_id)
        .fetch_all(&p)
        .await?
        }))
    }

    // ---- sessions ----

    /// Inserts a session with its documents, atomically. The requestId is stored as its
    /// SHA-256 only. A session of a disabled tenant is not inserted
    /// ([`StoreError::TenantDisabled`]): its key may have passed a cache that had not
    /// yet heard of the disable.
    pub async fn insert_session(
        &self,
        session: &SessionRecord,
        documents: &[DocumentRecord],
    ) -> Result<(), StoreError> {
        // PostgreSQL: the tenant row is share-locked, so an insert that overlaps a disable
        // waits for its commit and then sees the tenant disabled (without the lock it went
        // in as a pending session the disable never expired). SQLite has one writer.
        let lock = if self.is_postgres() { " FOR SHARE" } else { "" };
        let sql = format!(
            "INSERT INTO sessions (id, request_id, tenant_id, key_id, origin, callback_url, status, \
             created_at, expires_at, signature_format, key_mode, signer_requirement, request_id_hashed) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1 \
             WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $3 AND disabled_at IS NULL{lock})"
        );
        with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            let inserted = sqlx::query(&sql)
                .bind(&session.id)
                .bind(request_ids::stored_form(&session.request_id))
                .bind(&session.tenant_id)
                .bind(&session.key_id)
                .bind(&session.origin)
                .bind(&session.callback_url)
                .bind(&session.status)
                .bind(session.created_at)
                .bind(session.expires_at)
                .bind(&session.signature_format)
                .bind(&session.key_mode)
                .bind(&session.signer_requirement)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted != 1 {
                return Err(StoreError::TenantDisabled);
            }
            for doc in documents {
                sqlx::query(
                    "INSERT INTO session_documents (session_id, position, document_id, name, digest) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&session.id)
                .bind(doc.position)
                .bind(&doc.document_id)
                .bind(&doc.name)
                .bind(&doc.digest)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The session columns, the requestId's hash read as an empty `request_id` (the
    /// hash is not given out: it is not the capability, but nobody needs it).
    const SESSION_COLUMNS: &'static str =
        "id, '' AS request_id, tenant_id, key_id, origin, callback_url, status, \
         created_at, expires_at, finished_at, signer_certificate, signature_algorithm, signature_format, \
         key_mode, signer_requirement, signer_evidence";

    /// A session by id, as a portal key of `tenant_id` and `mode` may see it: another
    /// tenant's session, and a session created by a key of the other mode (test keys
    /// see only test sessions, live keys only live ones), are `None`, as for an id
    /// that does not exist.
    pub async fn session_of_key(
        &self,
        session_id: &str,
        tenant_id: &str,
        mode: KeyMode,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM sessions WHERE id = $1 AND tenant_id = $2 AND key_mode = $3",
            Self::SESSION_COLUMNS
        );
        Ok(with_pool!(self.db()?, |p| sqlx::query_as(&sql)
            .bind(session_id)
            .bind(tenant_id)
            .bind(mode.as_str())
            .fetch_optional(&p)
            .await?))
    }

    /// A session by its requestId (given in clear, looked up by its SHA-256); the
    /// record carries the requestId it was looked up by.
    pub async fn session_by_request(
        &self,
        request_id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM sessions WHERE request_id = $1",
            Self::SESSION_COLUMNS
        );
        let session: Option<SessionRecord> = with_pool!(self.db()?, |p| sqlx::query_as(&sql)
            .bind(request_ids::stored_form(request_id))
            .fetch_optional(&p)
            .await?);
        Ok(session.map(|session| SessionRecord {
            request_id: request_id.to_owned(),
            ..session
        }))
    }

    /// A session's documents in request order.
    pub async fn documents(&self, session_id: &str) -> Result<Vec<DocumentRecord>, StoreError> {
        Ok(with_pool!(self.db()?, |p| sqlx::query_as(
            "SELECT position, document_id, name, digest, signature FROM session_documents \
             WHERE session_id = $1 ORDER BY position",
        )
        .bind(session_id)
        .fetch_all(&p)
        .await?))
    }

    /// Completes a pending, unexpired session of an enabled tenant with its verified
    /// signatures (one per document id) and the signer's validation `evidence` (JSON),
    /// and queues its callback `event`, atomically. Completes at most once.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_session(
        &self,
        session_id: &str,
        now: i64,
        certificate_b64: &str,
        algorithm: &str,
        evidence: &str,
        signatures: &[(String, String)],
        event: Option<&NewEvent>,
    ) -> Result<FinishOutcome, StoreError> {
        with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE sessions SET status = 'completed', finished_at = $2, signer_certificate = $3, \
                 signature_algorithm = $4, signer_evidence = $5 \
                 WHERE id = $1 AND status = 'pending' AND expires_at > $2 AND NOT EXISTS \
                 (SELECT 1 FROM tenants t WHERE t.id = sessions.tenant_id AND t.disabled_at IS NOT NULL)",
            )
            .bind(session_id)
            .bind(now)
            .bind(certificate_b64)
            .bind(algorithm)
            .bind(evidence)
            .execute(&mut *tx)
            .await?.rows_affected();
            if done != 1 {
                return Ok(FinishOutcome::NotPending);
            }
            for (document_id, signature) in signatures {
                sqlx::query(
                    "UPDATE session_documents SET signature = $3 WHERE session_id = $1 AND document_id = $2",
                )
                .bind(session_id)
                .bind(document_id)
                .bind(signature)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(event) = event {
                insert_event!(tx, event);
            }
            tx.commit().await?;
        });
        Ok(FinishOutcome::Done)
    }

    /// Cancels a pending, unexpired session of an enabled tenant and queues its callback
    /// `event`, atomically.
    pub async fn cancel_session(
        &self,
        session_id: &str,
        now: i64,
        event: Option<&NewEvent>,
    ) -> Result<FinishOutcome, StoreError> {
        with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE sessions SET status = 'cancelled', finished_at = $2 \
                 WHERE id = $1 AND status = 'pending' AND expires_at > $2 AND NOT EXISTS \
                 (SELECT 1 FROM tenants t WHERE t.id = sessions.tenant_id AND t.disabled_at IS NOT NULL)",
            )
            .bind(session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(FinishOutcome::NotPending);
            }
            if let Some(event) = event {
                insert_event!(tx, event);
            }
            tx.commit().await?;
        });
        Ok(FinishOutcome::Done)
    }
}

/// Starts reopening the SQLite connections when `err` says the `-shm` file was replaced.
fn refused(
    connections: &Arc<ArcSwap<Connections>>,
    reopener: &Arc<Reopener>,
    err: ChangeDetectorError,
) -> StoreError {
    if matches!(err, ChangeDetectorError::SharedMemoryReplaced { .. }) {
        connections::start_reopen(connections, reopener);
    }
    err.into()
}

/// The associated data that binds a sealed webhook secret to its tenant.
fn webhook_secret_context(tenant_id: &str) -> String {
    format!("securesign webhook secret v1 for {tenant_id}")
}
