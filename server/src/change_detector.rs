//! Tells whether API keys, tenants or whitelists may have changed since the last look,
//! whoever wrote them (this process, the admin CLI, any other process). A look on an
//! unchanged database is two system calls and no lock: the `stat` of the replacement
//! check below and one `pread` of the wal-index header (medians on the project's shared
//! 2-core host: 0.7 µs and 0.3 µs of a 1.2 µs look; `server/benches/change_detector.rs`).
//!
//! Two signals, cheapest first:
//!
//! 1. **Did anything commit?** The database runs in WAL mode. SQLite keeps the
//!    *wal-index header* at the start of the `-shm` file and rewrites it on every
//!    commit, by any connection of any process, before the commit returns: its `mxFrame`
//!    grows with every committed frame, and a restarted WAL gets new salts (the header
//!    layout is part of SQLite's documented file format, <https://sqlite.org/walformat.html>).
//!    Comparing those 96 bytes with the last ones seen is how SQLite itself decides
//!    whether its page cache is still good (it reads them through its memory map of the
//!    `-shm` file); this module reads them with one positional read (`pread`,
//!    [`FileExt::read_exact_at`]) of the same file, which sees the same page-cache
//!    pages SQLite's maps write. No lock is taken: a look that races a writer at worst
//!    sees a header in the middle of its rewrite. The header is written twice, the
//!    second copy first; the one `pread` copies the first copy before the second (Linux
//!    copies front to back), as SQLite's own readers load them, so two copies that differ
//!    mean a writer is in the middle of it, and that look counts as "changed" (nothing is
//!    remembered from it). That a commit which returned before a look began is seen by
//!    it does not depend on this order: the commit's header is whole in the file by then.
//!    `PRAGMA data_version` answers the same question without the `-shm` file, but it
//!    runs a statement on a connection (so under that connection's lock, which every
//!    server thread would queue on), and SQLite takes and drops two shared-memory locks
//!    (`fcntl`) and `fstat`s the database file for it: several times the cost of the
//!    `pread` (`server/benches/change_detector.rs` measures both).
//! 2. **Did the commit touch authentication?** Only then is the `auth_version` row read
//!    (one indexed row, on this module's own read-only connection). Triggers on the key,
//!    tenant and whitelist tables bump it in the same transaction as the change (migration
//!    `20250301000000_auth_version.sql`), so sessions, results and webhook rows written by
//!    the server's own pool never move it.
//!
//! The detector's connection stays open as long as the detector (unless it is closed
//! after a replacement of the `-shm` file, below). A WAL-mode connection
//! keeps a shared lock on the database file, and every way around the `-shm` file needs
//! an exclusive one: deleting or reinitialising it, leaving WAL mode, or a writer in
//! `locking_mode=EXCLUSIVE` (whose wal-index lives in its own heap). So while the
//! detector lives, every commit goes through the header it reads, and the file is never
//! shortened under it (a read that still failed, or fell short, counts as "changed").
//!
//! The `-shm` descriptor this module reads through is **never closed**: SQLite's locks
//! on that file are POSIX (`fcntl`) locks, which belong to the process and inode, and
//! closing *any* descriptor of the inode drops all of them, including those SQLite's
//! own connections in this process hold (SQLite documents the same trap for database
//! files). So descriptors are kept in a process-wide list, one per `-shm` inode, and
//! shared by every detector of that file; a process opens few databases, so the list
//! stays short.
//!
//! **Replacement of the `-shm` file fails closed.** All of that holds only while the
//! `-shm` file at its path is the inode this process opened. A rename over it or an
//! unlink (a backup restored by rename, a clean-up script) needs no SQLite lock, and
//! after it every other process opens the *new* file: their commits move its header,
//! never the one read here, and this process's own SQLite connections (which share
//! one mapping per database file, see `unixOpenSharedMemory`) no longer see those
//! commits at all: a key revoked by the admin CLI would stay accepted until restart,
//! and a write from here could land over frames committed there. Reopening the file
//! here cannot repair that while this process's connections are open, so every check
//! first compares the path's device and inode with the opened file's (one `stat`, a
//! few hundred nanoseconds) and, once they differ or the file is gone, answers
//! [`ChangeDetectorError::SharedMemoryReplaced`] for good: the store refuses every
//! query ([`crate::store::Store`] runs the same check before each one), closes all its
//! connections and this detector, and opens new ones on the file that is there.
//!
//! `rusqlite` and `sqlx` link the same `libsqlite3-sys` (one bundled SQLite in the
//! binary), so both sides share SQLite's per-process table of open files and their
//! POSIX locks stay correct; Cargo refuses to build two copies (`links = "sqlite3"`).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

/// How long the detector waits when SQLite reports the file busy (WAL readers almost
/// never wait; this only covers a crash recovery by another process).
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// One copy of the wal-index header (`WalIndexHdr`), in bytes.
const HEADER_LEN: usize = 48;
/// Offset of `isInit` in a header copy: non-zero once SQLite initialised it.
const IS_INIT_OFFSET: usize = 12;

/// The read of the counter that triggers maintain.
const AUTH_VERSION_SQL: &str = "SELECT version FROM auth_version WHERE id = 1";

/// A failure of the detector.
#[derive(Debug, thiserror::Error)]
pub enum ChangeDetectorError {
    /// The detector's SQLite connection failed.
    #[error("change detector: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database is not in WAL mode, so it has no wal-index to watch.
    #[error("change detector: the database is in {0:?} journal mode, not WAL")]
    NotWal(String),
    /// The `-shm` file cannot be opened.
    #[error("change detector: cannot open {path}: {source}")]
    SharedMemory {
        /// The `-shm` file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `auth_version` row is missing (the migration did not run, or the row was
    /// removed despite its trigger).
    #[error("change detector: the auth_version row is missing")]
    MissingAuthVersion,
    /// The `-shm` file was replaced or removed while this process had the database
    /// open: it no longer sees other processes' commits (see the module docs).
    #[error(
        "{} was replaced or removed while this process had the database open: it no \
         longer sees other processes' commits (a revoked key would stay accepted), so \
         the database is refused until the process is restarted",
        path.display()
    )]
    SharedMemoryReplaced {
        /// The `-shm` file.
        path: PathBuf,
    },
}

/// A value of the `auth_version` counter. It only grows (a trigger refuses anything
/// else): equal values mean that no key, tenant or whitelist changed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthVersion(i64);

/// Counters of the detector's slow path, for tests and diagnostics. (Checks answered
/// by an unchanged header are not counted: a counter shared by every server thread
/// would cost more than the check.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Checks that read `auth_version` (something committed, or a first look).
    pub reads: u64,
}

/// Both copies of the wal-index header, as last seen.
type HeaderBytes = [u8; 2 * HEADER_LEN];

/// A header and the auth version read after it was seen.
#[derive(Debug)]
struct Seen {
    header: HeaderBytes,
    version: AuthVersion,
}

/// What the slow path (reading the counter) holds under its lock.
#[derive(Debug)]
struct Slow {
    /// `None` once [`ChangeDetector::close`]d.
    connection: Option<Connection>,
    stats: DetectorStats,
}

/// The detector: its read-only connection and the `-shm` file.
///
/// A check on an unchanged database takes no lock: it reads the 96 header bytes and
/// compares them with the last [`Seen`] pair, which any thread may replace
/// ([`ArcSwapOption`]: loading it writes nothing other threads read, so server threads
/// checking at once do not pass a cache line between them). Every pair in `seen` has
/// its version read after its header was observed, whichever thread stored it last,
/// so a current header equal to the pair's proves no commit since, and the version
/// still current. Reading the counter is serialised by the connection's lock.
#[derive(Debug)]
pub struct ChangeDetector {
    /// The `-shm` file, read at offset 0 for the header. A descriptor from the
    /// never-closed list ([`kept_open`]): dropping the detector does not close it.
    shm: Arc<File>,
    /// The last conclusive look; `None` after an inconclusive one, so the next check
    /// reads the counter again.
    seen: ArcSwapOption<Seen>,
    slow: Mutex<Slow>,
    /// Where the `-shm` file is, and the device and inode of the one opened.
    shm_path: PathBuf,
    shm_identity: (u64, u64),
    /// Set (for good) once the file at `shm_path` is another one, or none.
    replaced: AtomicBool,
}

impl ChangeDetector {
    /// Opens a read-only connection to the (existing, WAL-mode, migrated) database at
    /// `path` and the wal-index beside it.
    pub fn open(path: &Path) -> Result<Self, ChangeDetectorError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(ChangeDetectorError::NotWal(mode));
        }
        // The first read opens the wal-index (creating `-shm` if this is its first user).
        read_auth_version(&connection)?;
        let shm_path = shm_path_of(&connection, path);
        let shm_error = |source| ChangeDetectorError::SharedMemory {
            path: shm_path.clone(),
            source,
        };
        let shm = kept_open(&shm_path).map_err(shm_error)?;
        // SQLite sized the file when it first used the wal-index: a header that cannot
        // be read now is not a wal-index this module understands.
        read_header(&shm).map_err(shm_error)?;
        let meta = shm.metadata().map_err(shm_error)?;
        let detector = Self {
            shm,
            seen: ArcSwapOption::empty(),
            slow: Mutex::new(Slow {
                connection: Some(connection),
                stats: DetectorStats::default(),
            }),
            shm_identity: (meta.dev(), meta.ino()),
            shm_path,
            replaced: AtomicBool::new(false),
        };
        detector.check_shared_memory()?;
        Ok(detector)
    }

    /// Whether the `-shm` file at its path is still the one this process opened (one
    /// `stat`). Once it is not, this answers
    /// [`ChangeDetectorError::SharedMemoryReplaced`] for the life of the detector.
    pub fn check_shared_memory(&self) -> Result<(), ChangeDetectorError> {
        if !self.replaced.load(Ordering::Acquire) {
            match std::fs::metadata(&self.shm_path) {
                Ok(meta) if (meta.dev(), meta.ino()) == self.shm_identity => return Ok(()),
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ChangeDetectorError::SharedMemory {
                        path: self.shm_path.clone(),
                        source,
                    })
                }
            }
            if !self.replaced.swap(true, Ordering::AcqRel) {
                tracing::error!(
                    path = %self.shm_path.display(),
                    "the database's -shm file was replaced or removed while it was open: \
                     refusing the database until this process is restarted"
                );
            }
        }
        Err(ChangeDetectorError::SharedMemoryReplaced {
            path: self.shm_path.clone(),
        })
    }

    /// The current auth version. Call it before reading anything that must be at least
    /// as new as this moment: the value is read after every commit that had returned
    /// when the call began. Fails once the `-shm` file was replaced
    /// ([`ChangeDetector::check_shared_memory`]).
    pub fn auth_version(&self) -> Result<AuthVersion, ChangeDetectorError> {
        self.check_shared_memory()?;
        // A failed read is inconclusive, like a torn header: the counter is read.
        let header = read_header(&self.shm).ok().and_then(settled);
        if let (Some(now), Some(seen)) = (header, &*self.seen.load()) {
            if now == seen.header {
                return Ok(seen.version);
            }
        }
        let mut slow = self.slow.lock();
        slow.stats.reads += 1;
        // Read after the header: the value is at least as new as the header it is
        // remembered with, so an unchanged header later proves it still current.
        let result = match &slow.connection {
            Some(connection) => read_auth_version(connection),
            None => Err(ChangeDetectorError::SharedMemoryReplaced {
                path: self.shm_path.clone(),
            }),
        };
        let seen = match (&result, header) {
            (Ok(version), Some(header)) => Some(Arc::new(Seen {
                header,
                version: *version,
            })),
            _ => None,
        };
        self.seen.store(seen);
        result
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectorStats {
        self.slow.lock().stats
    }

    /// Closes the detector's SQLite connection now (the store does, after a
    /// replacement, so that the process's connections can map the new `-shm` file);
    /// checks fail from then on. The `-shm` descriptor stays open (see the module docs)
    /// but is never read again: a closed detector has seen a replacement, and every
    /// check stops at that.
    pub fn close(&self) {
        self.replaced.store(true, Ordering::Release);
        self.slow.lock().connection = None;
    }
}

/// An open `-shm` file and the inode it is.
struct KeptFile {
    device: u64,
    inode: u64,
    file: Arc<File>,
}

/// Every `-shm` descriptor this process opened; never closed (see the module docs).
static KEPT_OPEN: std::sync::Mutex<Vec<KeptFile>> = std::sync::Mutex::new(Vec::new());

/// A read-only descriptor of the file at `path`, shared with earlier callers when it is
/// the same inode, and kept open until the process exits.
fn kept_open(path: &Path) -> std::io::Result<Arc<File>> {
    let mut kept = KEPT_OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Ok(meta) = std::fs::metadata(path) {
        if let Some(known) = kept
            .iter()
            .find(|k| k.device == meta.dev() && k.inode == meta.ino())
        {
            return Ok(Arc::clone(&known.file));
        }
    }
    let file = Arc::new(File::open(path)?);
    // Kept before anything else can fail: dropping it here would close it.
    let (device, inode) = file
        .metadata()
        .map_or((0, 0), |meta| (meta.dev(), meta.ino()));
    kept.push(KeptFile {
        device,
        inode,
        file: Arc::clone(&file),
    });
    Ok(file)
}

/// Both copies of the wal-index header at the start of `shm`, as they are now: one
/// `pread` of [`HeaderBytes`] at offset 0, which copies the first copy before the
/// second. A file shorter than that is an [`io::ErrorKind::UnexpectedEof`] error.
fn read_header(shm: &File) -> io::Result<HeaderBytes> {
    let mut bytes = [0u8; 2 * HEADER_LEN];
    shm.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// Both header copies, or `None` when they differ (a writer is rewriting them) or are
/// not initialised.
fn settled(bytes: HeaderBytes) -> Option<HeaderBytes> {
    let (first, second) = bytes.split_at(HEADER_LEN);
    (first == second && first[IS_INIT_OFFSET] != 0).then_some(bytes)
}

fn read_auth_version(connection: &Connection) -> Result<AuthVersion, ChangeDetectorError> {
    let mut statement = connection.prepare_cached(AUTH_VERSION_SQL)?;
    let mut rows = statement.query([])?;
    match rows.next()? {
        Some(row) => Ok(AuthVersion(row.get(0)?)),
        None => Err(ChangeDetectorError::MissingAuthVersion),
    }
}

/// SQLite names the wal-index after the database file as it opened it.
fn shm_path_of(connection: &Connection, path: &Path) -> PathBuf {
    let mut name = connection
        .path()
        .filter(|p| !p.is_empty())
        .map_or_else(|| path.as_os_str().to_owned(), Into::into);
    name.push("-shm");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_database(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE auth_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
                 INSERT INTO auth_version VALUES (1, 0);
                 CREATE TABLE other (x INTEGER);",
            )
            .unwrap();
        (path, writer)
    }

    #[test]
    fn only_a_moved_counter_changes_the_version_and_unchanged_files_cost_no_read() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(dir.path());
        let detector = ChangeDetector::open(&path).unwrap();
        let v1 = detector.auth_version().unwrap();
        assert_eq!(detector.auth_version().unwrap(), v1);
        assert_eq!(detector.stats(), DetectorStats { reads: 1 });

        writer.execute("INSERT INTO other VALUES (1)", []).unwrap();
        assert_eq!(detector.auth_version().unwrap(), v1, "not an auth change");
        assert_eq!(detector.stats().reads, 2, "a commit is noticed");
        assert_eq!(detector.auth_version().unwrap(), v1);
        assert_eq!(detector.stats().reads, 2);

        writer
            .execute("UPDATE auth_version SET version = version + 1", [])
            .unwrap();
        let v2 = detector.auth_version().unwrap();
        assert!(v2 > v1, "{v2:?} after {v1:?}");
    }

    /// Threads checking at once, while another connection commits auth changes: a
    /// check that starts after a commit returned never answers an older version.
    #[test]
    fn concurrent_checks_never_answer_a_version_older_than_a_returned_commit() {
        use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(dir.path());
        let detector = ChangeDetector::open(&path).unwrap();
        let committed = AtomicI64::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    let mut checks = 0u64;
                    while !done.load(Ordering::Acquire) {
                        let floor = committed.load(Ordering::Acquire);
                        let AuthVersion(seen) = detector.auth_version().unwrap();
                        assert!(seen >= floor, "answered {seen} after {floor} was committed");
                        checks += 1;
                    }
                    assert!(checks > 0);
                });
            }
            for version in 1..=200 {
                writer
                    .execute("UPDATE auth_version SET version = ?1", [version])
                    .unwrap();
                committed.store(version, Ordering::Release);
                if version % 50 == 0 {
                    // Commits that are not auth changes, in between.
                    writer.execute("INSERT INTO other VALUES (1)", []).unwrap();
                }
            }
            done.store(true, Ordering::Release);
        });
        assert_eq!(detector.auth_version().unwrap(), AuthVersion(200));
    }

    #[test]
    fn a_header_whose_copies_differ_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _writer) = wal_database(dir.path());
        let detector = ChangeDetector::open(&path).unwrap();
        assert!(
            settled(read_header(&detector.shm).unwrap()).is_some(),
            "a real header"
        );

        assert!(settled([1u8; 2 * HEADER_LEN]).is_some());
        let mut torn = [1u8; 2 * HEADER_LEN];
        torn[HEADER_LEN + 20] = 2;
        assert!(settled(torn).is_none(), "copies differ");
        let mut uninitialised = [1u8; 2 * HEADER_LEN];
        uninitialised[IS_INIT_OFFSET] = 0;
        uninitialised[HEADER_LEN + IS_INIT_OFFSET] = 0;
        assert!(settled(uninitialised).is_none(), "not initialised");
    }

    #[test]
    fn a_look_reads_what_the_file_holds_now() {
        use std::io::{Seek, SeekFrom, Write};

        let mut file = tempfile::tempfile().unwrap();
        let first: Vec<u8> = (0..2 * HEADER_LEN as u8).collect();
        file.write_all(&first).unwrap();
        file.write_all(&[0xAA; 4096]).unwrap();
        assert_eq!(read_header(&file).unwrap().as_slice(), first.as_slice());

        file.seek(SeekFrom::Start(60)).unwrap();
        file.write_all(&[9, 9, 9, 9]).unwrap();
        let mut expected = first.clone();
        expected[60..64].copy_from_slice(&[9; 4]);
        assert_eq!(read_header(&file).unwrap().as_slice(), expected.as_slice());
    }

    #[test]
    fn a_file_shorter_than_the_header_is_an_error() {
        use std::io::Write;

        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[1; 2 * HEADER_LEN - 1]).unwrap();
        let err = read_header(&file).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn shm_descriptors_are_shared_per_file_and_outlive_their_detectors() {
        /// Descriptors of this process open on `path`, by `/proc/self/fd`.
        fn open_descriptors(path: &Path) -> usize {
            let target = std::fs::canonicalize(path).unwrap();
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter(|link| *link == target)
                .count()
        }
        fn kept_entries(path: &Path) -> usize {
            let meta = std::fs::metadata(path).unwrap();
            let kept = KEPT_OPEN.lock().unwrap();
            kept.iter()
                .filter(|k| k.device == meta.dev() && k.inode == meta.ino())
                .count()
        }

        let dir = tempfile::tempdir().unwrap();
        let (path, _writer) = wal_database(dir.path());
        let shm = dir.path().join("t.db-shm");
        let first = ChangeDetector::open(&path).unwrap();
        let second = ChangeDetector::open(&path).unwrap();
        assert_eq!(kept_entries(&shm), 1, "one descriptor per -shm file");
        let with_detectors = open_descriptors(&shm);
        drop(first);
        drop(second);
        assert_eq!(
            open_descriptors(&shm),
            with_detectors,
            "dropping a detector closes no -shm descriptor"
        );
        assert_eq!(kept_entries(&shm), 1);

        std::fs::create_dir(dir.path().join("other")).unwrap();
        let (other, _other_writer) = wal_database(&dir.path().join("other"));
        let _third = ChangeDetector::open(&other).unwrap();
        assert_eq!(kept_entries(&dir.path().join("other/t.db-shm")), 1);
        assert_eq!(kept_entries(&shm), 1);
    }

    /// The module's argument: while a detector is open, no other connection can take
    /// the file out of WAL mode or write with a private (heap) wal-index.
    #[test]
    fn an_open_detector_keeps_every_writer_on_the_shared_wal_index() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(dir.path());
        let detector = ChangeDetector::open(&path).unwrap();
        detector.auth_version().unwrap();

        let mode: rusqlite::Result<String> =
            writer.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0));
        assert!(
            !matches!(&mode, Ok(m) if m.eq_ignore_ascii_case("delete")),
            "left WAL mode: {mode:?}"
        );

        drop(writer);
        let exclusive = Connection::open(&path).unwrap();
        exclusive.busy_timeout(Duration::ZERO).unwrap();
        exclusive
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .unwrap();
        let wrote = exclusive.execute("INSERT INTO other VALUES (2)", []);
        assert!(wrote.is_err(), "an exclusive-mode writer got in");

        drop(exclusive);
        let again = Connection::open(&path).unwrap();
        again.execute("INSERT INTO other VALUES (3)", []).unwrap();
        assert_eq!(detector.stats().reads, 1);
        detector.auth_version().unwrap();
        assert_eq!(detector.stats().reads, 2, "a commit after all that is seen");
    }

    #[test]
    fn a_replaced_or_removed_shm_file_fails_closed_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(dir.path());
        let shm = dir.path().join("t.db-shm");
        let detector = ChangeDetector::open(&path).unwrap();
        detector.auth_version().unwrap();
        detector.check_shared_memory().unwrap();

        let copy = dir.path().join("copy");
        std::fs::copy(&shm, &copy).unwrap();
        std::fs::rename(&copy, &shm).unwrap();
        for _ in 0..2 {
            assert!(matches!(
                detector.auth_version(),
                Err(ChangeDetectorError::SharedMemoryReplaced { .. })
            ));
        }
        // Still refused after this process's own connection commits.
        writer
            .execute("UPDATE auth_version SET version = version + 1", [])
            .unwrap();
        assert!(detector.check_shared_memory().is_err());

        let second = tempfile::tempdir().unwrap();
        let (path, _writer) = wal_database(second.path());
        let detector = ChangeDetector::open(&path).unwrap();
        std::fs::remove_file(second.path().join("t.db-shm")).unwrap();
        assert!(matches!(
            detector.auth_version(),
            Err(ChangeDetectorError::SharedMemoryReplaced { .. })
        ));
    }

    #[test]
    fn a_database_outside_wal_mode_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollback.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE auth_version (id INTEGER PRIMARY KEY, version INTEGER);")
            .unwrap();
        assert!(matches!(
            ChangeDetector::open(&path),
            Err(ChangeDetectorError::NotWal(_))
        ));
    }
}
