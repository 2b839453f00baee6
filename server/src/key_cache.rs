//! In-memory copies of API key rows and their tenants' whitelists, revalidated on
//! every request.
//!
//! Before each lookup the cache asks the [`Store`] for its auth version (a
//! sub-microsecond check that sees commits from any connection or process, and a
//! counter that moves only when keys, tenants or whitelists change: see
//! [`crate::change_detector`] for SQLite, [`crate::store::postgres`] for PostgreSQL,
//! where a change is seen once its notification arrived, and where nothing is served
//! from memory while notifications are not received). When the version moved since the cached rows were read,
//! every entry is dropped before the lookup, so a revoke, a roll, a whitelist change or
//! a tenant disabled (or enabled) is seen by the very next request, whoever wrote it; sessions, results and callbacks
//! written meanwhile keep the cache. Time-based rules (the end of a roll's grace period)
//! are not cached: callers check the record against their clock on every request.
//!
//! Only keys that exist are cached (their number is bounded by the table); unknown
//! keys are looked up every time, so random keys cannot grow the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use nohash_hasher::BuildNoHashHasher;
use parking_lot::{Mutex, MutexGuard};

use crate::api_key::KeyHash;
use crate::origin::Whitelist;
use crate::rate_limit::KeyLimit;
use crate::store::{AuthVersion, KeyRecord, KeyWithWhitelist, Store, StoreError};

/// A key row, its tenant's whitelist and state, as read together from the database.
#[derive(Debug)]
pub struct CachedKey {
    /// The key row (revocation and grace end included).
    pub record: KeyRecord,
    /// When the key's tenant was disabled, if it is: such a key authenticates nothing
    /// (see [`CachedKey::tenant_disabled`]).
    pub tenant_disabled_at: Option<i64>,
    /// `record.key_hash` decoded (`None` if the stored text is not a hash: such a row
    /// matches no key).
    pub stored_hash: Option<KeyHash>,
    /// The tenant's origins.
    pub whitelist: Arc<Whitelist>,
    /// The key's limiter, fetched from [`RateLimits`](crate::rate_limit::RateLimits) on
    /// first use and kept here, so later requests count without the limiters' map.
    pub limit: OnceLock<Arc<KeyLimit>>,
    /// The key's `POST /v1/auth/validate` answer body, the same for every request that
    /// passes (tenant id and limit come from this row): built on first use, answered
    /// as is after that.
    pub validate_answer: OnceLock<Bytes>,
    /// The key's request counters for the Admin Console's usage chart, fetched from
    /// [`UsageCounter`](crate::console::usage::UsageCounter) on first use.
    pub usage: OnceLock<Arc<crate::console::usage::KeyUsage>>,
}

impl From<KeyWithWhitelist> for CachedKey {
    fn from(row: KeyWithWhitelist) -> Self {
        Self {
            stored_hash: KeyHash::from_hex(&row.key.key_hash),
            record: row.key,
            tenant_disabled_at: row.tenant_disabled_at,
            whitelist: Arc::new(Whitelist::from_stored(row.origins)),
            limit: OnceLock::new(),
            validate_answer: OnceLock::new(),
            usage: OnceLock::new(),
        }
    }
}

impl CachedKey {
    /// Whether the key's tenant is disabled (as of the auth version the entry was read
    /// under): its requests are refused like a revoked key's.
    pub fn tenant_disabled(&self) -> bool {
        self.tenant_disabled_at.is_some()
    }
}

/// A key's requests per minute as the rate limiter takes it (at least 1; the schema
/// refuses anything else anyway).
pub fn rpm_of(record: &KeyRecord) -> u32 {
    u32::try_from(record.rpm).unwrap_or(1).max(1)
}

/// Counters, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that read the database.
    pub misses: u64,
    /// Times the entries were dropped because keys, tenants or whitelists changed.
    pub invalidations: u64,
}

/// Entries valid for one auth version.
#[derive(Default)]
struct Generation {
    /// The version the entries are current for; `None` before the first check.
    version: Option<AuthVersion>,
    /// By SHA-256, which needs no hashing again (see `KeyHash`'s `Hash`).
    keys: HashMap<KeyHash, Arc<CachedKey>, BuildNoHashHasher<KeyHash>>,
    /// Lookups answered from memory (all generations). Counted here, under the lock a
    /// lookup holds anyway, rather than in an atomic that every server thread would
    /// write on every request.
    hits: u64,
}

/// What a probe of the cache found.
enum Probe {
    Hit(Arc<CachedKey>),
    /// Not cached; a row read from now on may be cached under this version.
    Miss(Option<AuthVersion>),
}

/// The key cache over a [`Store`].
pub struct KeyCache {
    store: Store,
    generation: Mutex<Generation>,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl KeyCache {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            generation: Mutex::new(Generation::default()),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// The key whose SHA-256 is `hash`, with its tenant's whitelist, as current as the
    /// database at the time of the call. `None` when no such key exists.
    pub async fn lookup(&self, hash: &KeyHash) -> Result<Option<Arc<CachedKey>>, StoreError> {
        let tag = match self.store.auth_version() {
            Ok(observed) => match self.probe(observed, hash) {
                Probe::Hit(entry) => return Ok(Some(entry)),
                Probe::Miss(tag) => tag,
            },
            Err(err) => {
                // Without a version nothing may be served from (or put into) memory.
                // (Debug: the store reports why once, not on every request.)
                tracing::debug!(error = %err, "cannot check the auth version; reading the key uncached");
                None
            }
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let Some(row) = self.store.key_with_whitelist(&hash.to_hex()).await? else {
            return Ok(None);
        };
        let entry = Arc::new(CachedKey::from(row));
        if let Some(tag) = tag {
            self.fill(tag, *hash, &entry);
        }
        Ok(Some(entry))
    }

    /// The key whose SHA-256 is `hash` if it is in memory and still current (the
    /// same freshness check as [`KeyCache::lookup`]); `None` when it is not cached or
    /// the auth version cannot be read. Never reads the database.
    pub fn cached(&self, hash: &KeyHash) -> Option<Arc<CachedKey>> {
        let observed = self.store.auth_version().ok()?;
        match self.probe(observed, hash) {
            Probe::Hit(entry) => Some(entry),
            Probe::Miss(_) => None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.generation().hits,
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }

    fn generation(&self) -> MutexGuard<'_, Generation> {
        self.generation.lock()
    }

    /// Moves the cache forward to `observed` (dropping everything if keys, tenants
    /// or whitelists changed), then looks `hash` up.
    ///
    /// Invariant: the entries of a generation were read from the database after that
    /// generation's version was observed, so they hold every commit the version
    /// reflects; an equal version observed later means no commit since.
    fn probe(&self, observed: AuthVersion, hash: &KeyHash) -> Probe {
        let mut generation = self.generation();
        match generation.version {
            Some(current) if observed <= current => {
                // Equal: nothing changed. Older: another request already moved the
                // cache to a newer version, whose entries are newer still.
            }
            _ => {
                if !generation.keys.is_empty() {
                    self.invalidations.fetch_add(1, Ordering::Relaxed);
                }
                generation.keys.clear();
                generation.version = Some(observed);
            }
        }
        match generation.keys.get(hash).map(Arc::clone) {
            Some(entry) => {
                generation.hits += 1;
                Probe::Hit(entry)
            }
            None => Probe::Miss(generation.version),
        }
    }

    /// Caches a row read after the probe that returned `tag`, unless the cache moved
    /// to another version meanwhile (the row might predate that version's commits).
    fn fill(&self, tag: AuthVersion, hash: KeyHash, entry: &Arc<CachedKey>) {
        let mut generation = self.generation();
        if generation.version == Some(tag) {
            generation.keys.insert(hash, Arc::clone(entry));
        }
    }
}
