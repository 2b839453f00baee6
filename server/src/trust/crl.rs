//! Certificate revocation lists: loaded from a directory at start, and fetched from the
//! distribution points that certificates name, each kept until its `nextUpdate`.
//!
//! A fetch happens only while a result is being verified, never on the portal routes;
//! concurrent results that need the same CRL share one fetch (a lock per URL), and
//! results that need other CRLs do not wait for it. A failed fetch is not retried for
//! [`FAILED_FETCH_BACKOFF_SECS`], so an unreachable distribution point costs one
//! time-out, not one per result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::fetch::{FetchError, RevocationFetcher};

/// Largest CRL fetched or loaded (licensed CAs' CRLs run to a few MB).
pub const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;
/// How long a failed fetch of a URL is not retried.
pub const FAILED_FETCH_BACKOFF_SECS: i64 = 60;

/// A parsed CRL and where it came from.
#[derive(Debug)]
pub struct CrlEntry {
    /// The list, as the path validator uses it.
    pub crl: CertRevocationList<'static>,
    /// The issuer's DER `Name`.
    pub issuer: Vec<u8>,
    /// Whether the list is partitioned (an issuing distribution point): such a list is
    /// used against revoked certificates but never taken as proof that one is not.
    pub partitioned: bool,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds, when given.
    pub next_update: Option<i64>,
    /// The URL or file it came from.
    pub source: String,
}

/// Why a CRL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a CRL.
    #[error("{source_name} is not a DER or PEM X.509 CRL: {reason}")]
    Malformed {
        /// URL or file.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// This store does not fetch.
    #[error("{0}: CRLs are not fetched by this server")]
    NoFetching(String),
    /// Fetching failed a moment ago and is not tried again yet.
    #[error("{url}: {why} (not retried for {FAILED_FETCH_BACKOFF_SECS} s)")]
    RecentlyFailed {
        /// The URL.
        url: String,
        /// The last failure.
        why: String,
    },
}

impl CrlEntry {
    /// Parses a DER or PEM CRL from `source_name`.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, CrlError> {
        let malformed = |reason: String| CrlError::Malformed {
            source_name: source_name.to_owned(),
            reason,
        };
        let der = if bytes.starts_with(b"-----BEGIN") {
            CertificateRevocationListDer::from_pem_slice(bytes)
                .map_err(|e| malformed(e.to_string()))?
                .as_ref()
                .to_vec()
        } else {
            bytes.to_vec()
        };
        let (rest, parsed) =
            CertificateRevocationList::from_der(&der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes".into()));
        }
        let partitioned = parsed.extensions().iter().any(|ext| {
            ext.oid == x509_parser::oid_registry::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT
        });
        let issuer = parsed.issuer().as_raw().to_vec();
        let this_update = parsed.last_update().timestamp();
        let next_update = parsed.next_update().map(|t| t.timestamp());
        let crl =
            OwnedCertRevocationList::from_der(&der).map_err(|e| malformed(format!("{e:?}")))?;
        Ok(Self {
            crl: CertRevocationList::Owned(crl),
            issuer,
            partitioned,
            this_update,
            next_update,
            source: source_name.to_owned(),
        })
    }

    /// Whether `nextUpdate` has passed at `now` (a list without one never goes stale).
    pub fn is_stale(&self, now: i64) -> bool {
        self.next_update.is_some_and(|next| next <= now)
    }
}

/// Loads every `*.crl`, `*.der` and `*.pem` file of `dir` (not recursively).
pub fn load_dir(dir: &Path) -> Result<Vec<Arc<CrlEntry>>, CrlError> {
    let read_error = |source| CrlError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "crl" | "der" | "pem"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|source| CrlError::Read {
                path: path.clone(),
                source,
            })?;
            if bytes.len() > MAX_CRL_BYTES {
                return Err(CrlError::Malformed {
                    source_name: path.display().to_string(),
                    reason: format!("larger than {MAX_CRL_BYTES} bytes"),
                });
            }
            CrlEntry::parse(&bytes, &path.display().to_string()).map(Arc::new)
        })
        .collect()
}

#[derive(Debug, Default)]
struct Slot {
    entry: Option<Arc<CrlEntry>>,
    failed: Option<(i64, String)>,
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// The CRLs the server knows: fixed ones from the CRL directory, and fetched ones by URL.
#[derive(Debug)]
pub struct CrlStore {
    fixed: Vec<Arc<CrlEntry>>,
    fetched: Mutex<HashMap<String, Slot>>,
    fetcher: Option<RevocationFetcher>,
}

/// The CRLs gathered for one validation, newest per issuer, and the fetches that failed.
#[derive(Debug, Default)]
pub struct CrlSet {
    /// At most one list per issuer.
    pub entries: Vec<Arc<CrlEntry>>,
    /// `url: why` of each distribution point that could not be read.
    pub failures: Vec<String>,
}

impl CrlSet {
    /// The list that speaks for certificates of `issuer` (DER `Name`), if any.
    pub fn for_issuer(&self, issuer: &[u8]) -> Option<&Arc<CrlEntry>> {
        self.entries.iter().find(|e| e.issuer == issuer)
    }

    fn add(&mut self, entry: Arc<CrlEntry>) {
        match self.entries.iter_mut().find(|e| e.issuer == entry.issuer) {
            Some(known) if known.this_update >= entry.this_update => {}
            Some(known) => *known = entry,
            None => self.entries.push(entry),
        }
    }
}

impl CrlStore {
    /// A store over `fixed` lists that fetches with `fetcher` (or never, without one).
    pub fn new(fixed: Vec<Arc<CrlEntry>>, fetcher: Option<RevocationFetcher>) -> Self {
        Self {
            fixed,
            fetched: Mutex::new(HashMap::new()),
            fetcher,
        }
    }

    /// The fixed lists plus those of `urls`, fetched where not cached or past their
    /// `nextUpdate` at `now`.
    pub async fn gather(&self, urls: &[String], now: i64) -> CrlSet {
        let mut set = CrlSet::default();
        for entry in &self.fixed {
            set.add(entry.clone());
        }
        for url in urls {
            match self.get(url, now).await {
                Ok(entry) => set.add(entry),
                Err(err) => set.failures.push(err.to_string()),
            }
        }
        set
    }

    /// [`CrlStore::gather`] without fetching: `None` when some URL would need a fetch
    /// (never tried, or its list is past `nextUpdate` and its last failure is not recent).
    pub fn gather_cached(&self, urls: &[String], now: i64) -> Option<CrlSet> {
        let mut set = CrlSet::default();
        for entry in &self.fixed {
            set.add(entry.clone());
        }
        let slots = self.fetched.lock();
        for url in urls {
            let slot = slots.get(url)?;
            match (&slot.entry, &slot.failed) {
                (Some(entry), _) if !entry.is_stale(now) => set.add(entry.clone()),
                (stale, Some((at, why))) if now - at < FAILED_FETCH_BACKOFF_SECS => match stale {
                    Some(stale) => set.add(stale.clone()),
                    None => set.failures.push(
                        CrlError::RecentlyFailed {
                            url: url.clone(),
                            why: why.clone(),
                        }
                        .to_string(),
                    ),
                },
                _ => return None,
            }
        }
        Some(set)
    }

    async fn get(&self, url: &str, now: i64) -> Result<Arc<CrlEntry>, CrlError> {
        let fetching = {
            let mut slots = self.fetched.lock();
            let slot = slots.entry(url.to_owned()).or_default();
            if let Some(entry) = slot.entry.as_ref().filter(|e| !e.is_stale(now)) {
                return Ok(entry.clone());
            }
            slot.fetching.clone()
        };
        // One fetch per URL at a time; whoever waited finds the result in the slot.
        let _fetching = fetching.lock().await;
        {
            let slots = self.fetched.lock();
            if let Some(slot) = slots.get(url) {
                if let Some(entry) = slot.entry.as_ref().filter(|e| !e.is_stale(now)) {
                    return Ok(entry.clone());
                }
                if let Some((at, why)) = &slot.failed {
                    if now - at < FAILED_FETCH_BACKOFF_SECS {
                        return match &slot.entry {
                            Some(stale) => Ok(stale.clone()),
                            None => Err(CrlError::RecentlyFailed {
                                url: url.to_owned(),
                                why: why.clone(),
                            }),
                        };
                    }
                }
            }
        }
        let fetched = match &self.fetcher {
            Some(fetcher) => fetcher
                .get(url, MAX_CRL_BYTES)
                .await
                .map_err(CrlError::from)
                .and_then(|bytes| CrlEntry::parse(&bytes, url)),
            None => Err(CrlError::NoFetching(url.to_owned())),
        };
        let mut slots = self.fetched.lock();
        let slot = slots.entry(url.to_owned()).or_default();
        match fetched {
            Ok(entry) => {
                let entry = Arc::new(entry);
                slot.entry = Some(entry.clone());
                slot.failed = None;
                Ok(entry)
            }
            Err(err) => {
                tracing::warn!(url, error = %err, "CRL fetch failed");
                slot.failed = Some((now, err.to_string()));
                // A stale list still proves revocations it lists; the validator refuses
                // it as expired for anything else.
                match &slot.entry {
                    Some(stale) => Ok(stale.clone()),
                    None => Err(err),
                }
            }
        }
    }
}
