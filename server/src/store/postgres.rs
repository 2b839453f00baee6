//! The PostgreSQL engine: a connection pool, its migrations, and how the server learns
//! that keys, tenants or whitelists changed (the key cache's freshness).
//!
//! Every change to `api_keys`, `tenants` or `domains` bumps the `auth_version` row and
//! sends `NOTIFY securesign_auth, '<new version>'` in the same transaction (triggers
//! of `migrations-postgres/`), whoever writes it: this server, another instance, the
//! admin CLI, `psql`. PostgreSQL delivers a notification only if its transaction
//! commits, in commit order. One connection per process LISTENs and keeps the highest
//! version heard in an atomic, which [`Postgres::auth_version`] reads: no database
//! round trip per request.
//!
//! **While the listening connection is down, the key cache is bypassed (fail closed
//! on freshness, open on availability):** [`Postgres::auth_version`] returns
//! [`StoreError::NotificationsDown`], so every request reads its key from the database
//! (as current as the database, one round trip more) until the listener is back. On
//! reconnecting it LISTENs first and then reads the `auth_version` row, so a change
//! committed while it was away moves the version and flushes the cache before anything
//! is served from it again.
//!
//! Changes made through this store are seen by its very next request: after such a
//! write the store reads the row back and moves the version itself
//! ([`Postgres::after_auth_change`]). For changes by other processes,
//! [`Postgres::catch_up`] waits until every change committed before the call has been
//! heard (a notification of our own, delivered after them: PostgreSQL delivers in commit
//! order).
//!
//! The loss of the connection is known when its socket ends (milliseconds after the
//! backend went away, measured 1.5–7 ms in the tests): until then the cache still
//! answers, so a change committed in that window is seen that much later, never lost.
//! A connection that dies silently (no reset reaches us) is caught by a heartbeat:
//! every [`HEARTBEAT`] the process notifies `ping` on the channel through its pool;
//! when nothing at all was heard for [`SILENCE_LIMIT`], the notifications count as
//! down. That bounds how long a change can stay unseen on a half-open connection.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::StoreError;

/// The channel the triggers notify on.
pub const CHANNEL: &str = "securesign_auth";
/// `application_name` of the listening connection (visible in `pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "securesign-auth-listener";
/// How often each process pings the channel.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which the notifications count as down (several missed heartbeats,
/// so a busy machine does not flap).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(5);
/// The heartbeat's payload (versions are decimal numbers).
const PING: &str = "ping";
/// Most pool connections.
const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Postgres::open`] waits for the listener's first connection.
const FIRST_LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between reconnection attempts: from the first to the last, doubling.
const RECONNECT_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

const AUTH_VERSION_SQL: &str = "SELECT version FROM auth_version WHERE id = 1";

/// A PostgreSQL database and its auth-change listener.
#[derive(Debug)]
pub struct Postgres {
    pool: PgPool,
    notifications: Arc<Notifications>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the listener learnt, read by every request.
#[derive(Debug)]
struct Notifications {
    /// Highest `auth_version` heard (or read on connecting).
    version: AtomicI64,
    /// Whether the listening connection is up (set after its first read of the row).
    listening: AtomicBool,
    /// Milliseconds since `epoch` when anything was last heard on the channel.
    last_heard_ms: AtomicU64,
    epoch: Instant,
    /// This process's mark in `sync:<nonce>:<n>` payloads.
    sync_nonce: u64,
    /// The last `n` handed out by [`Postgres::catch_up`].
    sync_issued: AtomicU64,
    /// The highest `n` known to be caught up with.
    synced: tokio::sync::watch::Sender<u64>,
}

impl Notifications {
    fn heard(&self, version: Option<i64>) {
        if let Some(version) = version {
            self.version.fetch_max(version, Ordering::AcqRel);
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_heard_ms.store(now, Ordering::Release);
    }

    /// Handles one payload: a version, a ping, or a catch-up mark.
    fn payload(&self, payload: &str) {
        if let Some(mark) = payload.strip_prefix("sync:") {
            self.heard(None);
            let mine = mark
                .split_once(':')
                .filter(|(nonce, _)| nonce.parse() == Ok(self.sync_nonce))
                .and_then(|(_, n)| n.parse::<u64>().ok());
            if let Some(n) = mine {
                self.synced
                    .send_if_modified(|done| std::mem::replace(done, (*done).max(n)) < n);
            }
        } else if payload == PING {
            self.heard(None);
        } else {
            self.heard(payload.parse().ok());
        }
    }

    fn current(&self) -> Result<i64, StoreError> {
        if !self.listening.load(Ordering::Acquire) {
            return Err(StoreError::NotificationsDown(
                "the listening connection is down",
            ));
        }
        let heard = Duration::from_millis(self.last_heard_ms.load(Ordering::Acquire));
        if self.epoch.elapsed().saturating_sub(heard) > SILENCE_LIMIT {
            return Err(StoreError::NotificationsDown(
                "nothing heard on the channel for longer than the heartbeat allows",
            ));
        }
        Ok(self.version.load(Ordering::Acquire))
    }
}

impl Postgres {
    /// Connects to `url`, applies the migrations, and starts the listener (waiting up to
    /// a few seconds for its first connection; requests read uncached until then).
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        check_url(url)?;
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        // Takes an advisory lock: instances starting together migrate once.
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        let notifications = Arc::new(Notifications {
            version: AtomicI64::new(i64::MIN),
            listening: AtomicBool::new(false),
            last_heard_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            sync_nonce: rand::random(),
            sync_issued: AtomicU64::new(0),
            synced: tokio::sync::watch::Sender::new(0),
        });
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let listener = tokio::spawn(listen(
            options.application_name(LISTENER_APPLICATION_NAME),
            Arc::clone(&notifications),
            first_tx,
        ));
        let heartbeat = tokio::spawn(heartbeat(pool.clone()));
        if tokio::time::timeout(FIRST_LISTEN_TIMEOUT, first_rx)
            .await
            .is_err()
        {
            tracing::warn!("the PostgreSQL auth listener is not connected yet: keys are read uncached until it is");
        }
        Ok(Self {
            pool,
            notifications,
            tasks: vec![listener, heartbeat],
        })
    }

    /// The pool.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The latest auth version heard, or an error while notifications are not received.
    pub(super) fn auth_version(&self) -> Result<i64, StoreError> {
        self.notifications.current()
    }

    /// After a commit through this store that changed keys, tenants or whitelists:
    /// reads the counter and moves the version to it, so this process's next request
    /// sees the change without waiting for its notification.
    pub(super) async fn after_auth_change(&self) -> Result<(), StoreError> {
        let (version,): (i64,) = sqlx::query_as(AUTH_VERSION_SQL)
            .fetch_one(&self.pool)
            .await?;
        self.notifications
            .version
            .fetch_max(version, Ordering::AcqRel);
        Ok(())
    }

    /// Waits until every auth change committed before this call (by any process) is
    /// reflected in [`Postgres::auth_version`]: sends a mark on the channel and waits
    /// for it to come back (at most [`SILENCE_LIMIT`]). Returns at once while the
    /// listener is down (the cache is bypassed then, every read is current).
    pub(super) async fn catch_up(&self) -> Result<(), StoreError> {
        let notifications = &self.notifications;
        if !notifications.listening.load(Ordering::Acquire) {
            return Ok(());
        }
        let n = notifications.sync_issued.fetch_add(1, Ordering::AcqRel) + 1;
        let mut synced = notifications.synced.subscribe();
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("sync:{}:{n}", notifications.sync_nonce))
            .execute(&self.pool)
            .await?;
        let came_back = tokio::time::timeout(SILENCE_LIMIT, synced.wait_for(|&done| done >= n))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if came_back {
            Ok(())
        } else {
            Err(StoreError::NotificationsDown(
                "a catch-up mark did not come back in time",
            ))
        }
    }

    /// Stops the listener and the heartbeat and closes the pool.
    pub(super) async fn close(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.pool.close().await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Refuses a URL that is not PostgreSQL's.
pub(super) fn check_url(url: &str) -> Result<(), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// Keeps one listening connection up, for as long as the process runs.
async fn listen(
    options: PgConnectOptions,
    notifications: Arc<Notifications>,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut backoff = RECONNECT_BACKOFF.0;
    loop {
        match subscribe(&options, &notifications).await {
            Ok(mut listener) => {
                backoff = RECONNECT_BACKOFF.0;
                notifications.listening.store(true, Ordering::Release);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                } else {
                    tracing::info!(
                        "PostgreSQL auth listener reconnected: the key cache is used again"
                    );
                }
                let why = loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => notifications.payload(notification.payload()),
                        Ok(None) => break "connection lost".to_owned(),
                        Err(err) => break err.to_string(),
                    }
                };
                notifications.listening.store(false, Ordering::Release);
                tracing::warn!(reason = %why, "PostgreSQL auth listener down: keys are read from the database on every request until it is back");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot start the PostgreSQL auth listener; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_BACKOFF.1);
    }
}

/// A new listening connection: LISTEN first, then the row, so no change committed
/// after the read can go unheard.
async fn subscribe(
    options: &PgConnectOptions,
    notifications: &Notifications,
) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection is reported (`Ok(None)`) rather than silently replaced, so the
    // row is read again after every reconnection.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    // Every catch-up mark issued so far guards commits made before it was issued, so
    // before the row read below: they are all caught up with once it is done.
    let issued = notifications.sync_issued.load(Ordering::Acquire);
    let (version,): (i64,) = sqlx::query_as(AUTH_VERSION_SQL)
        .fetch_one(&mut listener)
        .await?;
    notifications.heard(Some(version));
    notifications
        .synced
        .send_if_modified(|done| std::mem::replace(done, (*done).max(issued)) < issued);
    Ok(listener)
}

/// Pings the channel every [`HEARTBEAT`] (errors are retried on the next beat).
async fn heartbeat(pool: PgPool) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(PING)
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %err, "PostgreSQL auth heartbeat failed");
        }
    }
}
