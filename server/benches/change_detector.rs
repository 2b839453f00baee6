//! Cost of the per-request freshness check, as nanoseconds per call and as a ratio to
//! a baseline measured in the same run (one uncontended mutex-guarded `HashMap` lookup
//! of a 32-byte key):
//!
//! * `PRAGMA data_version` on a read-only rusqlite connection behind a mutex (the check
//!   used before issue 3, kept here for comparison);
//! * a whole look built on it instead of the header: the `stat` below, then that
//!   `PRAGMA data_version` (the alternative to the `pread`, measured in issue 12);
//! * `pread` of the wal-index header alone (what the detector reads per look);
//! * `stat` of the `-shm` path alone (the check that the file is still the one opened,
//!   which every `Store::auth_version()` makes first: issue 13);
//! * `Store::auth_version()` on an unchanged database (that `stat`, the `pread` of the
//!   header and the compare);
//! * `Store::auth_version()` after a commit that is not an auth change (the header
//!   compare plus the read of the `auth_version` row);
//! * a whole cached `KeyCache::lookup`.
//!
//! Run: `cargo bench -p securesign-server --bench change_detector`. Not part of CI.

// A benchmark binary: a failure should stop it with its message.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use securesign_server::admin::Admin;
use securesign_server::api_key::{self, KeyMode};
use securesign_server::key_cache::KeyCache;
use securesign_server::{ManualClock, Store};

const ROUNDS: u32 = 200_000;

fn per_call(rounds: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..rounds / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed() / rounds
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let store = runtime.block_on(Store::open(&db)).unwrap();
    let clock = ManualClock::starting_at(1_782_122_400);
    let admin = Admin::new(&store, &clock);
    let key = runtime.block_on(async {
        let tenant = admin.create_tenant("Bench").await.unwrap();
        admin
            .add_domain(&tenant.id, "https://portal.example.gov.in")
            .await
            .unwrap();
        admin
            .create_key(&tenant.id, KeyMode::Live, 120)
            .await
            .unwrap()
    });
    let hash = api_key::parse(key.secret.expose()).unwrap().hash;
    let cache = KeyCache::new(store.clone());

    let map: Mutex<HashMap<[u8; 32], Arc<u64>>> =
        Mutex::new((0..1000u64).map(|i| ([i as u8; 32], Arc::new(i))).collect());
    let baseline = per_call(ROUNDS, || {
        let probe = [7u8; 32];
        black_box(map.lock().unwrap().get(black_box(&probe)).cloned());
    });

    let pragma_connection = Mutex::new(
        Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap(),
    );
    let pragma = per_call(ROUNDS, || {
        let connection = pragma_connection.lock().unwrap();
        let mut statement = connection.prepare_cached("PRAGMA data_version").unwrap();
        black_box(statement.query_row([], |row| row.get::<_, i64>(0)).unwrap());
    });

    let shm_path = dir.path().join("bench.db-shm");
    let data_version_look = per_call(ROUNDS, || {
        black_box(std::fs::metadata(black_box(&shm_path)).unwrap());
        let connection = pragma_connection.lock().unwrap();
        let mut statement = connection.prepare_cached("PRAGMA data_version").unwrap();
        black_box(statement.query_row([], |row| row.get::<_, i64>(0)).unwrap());
    });

    let shm = std::fs::File::open(&shm_path).unwrap();
    let header = per_call(ROUNDS, || {
        let mut bytes = [0u8; 96];
        shm.read_exact_at(&mut bytes, 0).unwrap();
        black_box(bytes);
    });

    let stat = per_call(ROUNDS, || {
        black_box(std::fs::metadata(black_box(&shm_path)).unwrap());
    });

    let unchanged = per_call(ROUNDS, || {
        black_box(store.auth_version().unwrap());
    });

    // Another connection commits a non-auth row before every check.
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch("CREATE TABLE IF NOT EXISTS bench_noise (x INTEGER)")
        .unwrap();
    let mut insert = writer
        .prepare("INSERT INTO bench_noise (x) VALUES (1)")
        .unwrap();
    let write_only = per_call(ROUNDS / 10, || {
        insert.execute([]).unwrap();
    });
    let write_and_check = per_call(ROUNDS / 10, || {
        insert.execute([]).unwrap();
        black_box(store.auth_version().unwrap());
    });
    let after_commit = write_and_check.saturating_sub(write_only);

    let lookup = per_call(ROUNDS, || {
        black_box(runtime.block_on(cache.lookup(&hash)).unwrap());
    });
    let stats = cache.stats();
    assert_eq!(stats.misses, 1, "the key should stay cached: {stats:?}");

    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    let line = |name: &str, d: Duration| {
        println!(
            "{name:<48} {:>7.0} ns per call  ({:.1}x baseline)",
            ns(d),
            ratio(d)
        );
    };
    line("baseline (mutex + HashMap lookup)", baseline);
    line("PRAGMA data_version (the check before issue 3)", pragma);
    line("a look by stat + PRAGMA data_version", data_version_look);
    line("pread of the wal-index header", header);
    line("stat of the -shm path (the replacement check)", stat);
    line("Store::auth_version(), nothing committed", unchanged);
    line(
        "Store::auth_version(), after a non-auth commit",
        after_commit,
    );
    line("KeyCache::lookup, cached key", lookup);
    runtime.block_on(store.close());
    // Closing a second descriptor of the -shm file would drop the process's POSIX locks
    // on it while the detector's connection is still open (see `change_detector`).
    std::mem::forget(shm);
}
