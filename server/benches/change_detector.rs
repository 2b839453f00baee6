//! Cost of the per-request freshness check: `Store::data_version()` (a read-only
//! rusqlite connection asking `PRAGMA data_version`) and a whole cached key lookup,
//! each as nanoseconds per call and as a ratio to a baseline measured in the same run
//! (one uncontended mutex-guarded `HashMap` lookup of a 32-byte key).
//!
//! Run: `cargo bench -p securesign-server --bench change_detector`. Not part of CI.

// A benchmark binary: a failure should stop it with its message.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    let store = runtime
        .block_on(Store::open(&dir.path().join("bench.db")))
        .unwrap();
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
    let version = per_call(ROUNDS, || {
        black_box(store.data_version().unwrap());
    });
    let lookup = per_call(ROUNDS, || {
        black_box(runtime.block_on(cache.lookup(&hash)).unwrap());
    });
    let stats = cache.stats();
    assert_eq!(stats.misses, 1, "the key should stay cached: {stats:?}");

    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "baseline (mutex + HashMap lookup): {:>7.0} ns per call",
        ns(baseline)
    );
    println!(
        "Store::data_version():             {:>7.0} ns per call  ({:.1}x baseline)",
        ns(version),
        ratio(version)
    );
    println!(
        "KeyCache::lookup, cached key:      {:>7.0} ns per call  ({:.1}x baseline)",
        ns(lookup),
        ratio(lookup)
    );
    runtime.block_on(store.close());
}
