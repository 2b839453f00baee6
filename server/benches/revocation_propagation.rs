//! Revocation propagation across instances (issue 12): how long after a revoke commits
//! until every running instance refuses the key. Run by `server/bench-multi-instance.sh`
//! (which starts the instances on a private PostgreSQL cluster); not a test, no target.
//!
//! For each of `SECURESIGN_BENCH_REVOKES` (default 100) fresh live keys: every instance
//! answers it twice (so it is cached everywhere), then the key is revoked through the
//! store as the admin CLI does (`Admin::revoke_key`, its own connection and LISTEN, like
//! a separate process), and each instance is polled (back to back, one connection each)
//! until it answers 401. A revoke's propagation is the slowest instance's first 401,
//! measured from the moment the revoke's commit returned. Prints p50/p90/p99/max.
//!
//! Environment: `SECURESIGN_BENCH_DATABASE_URL`, `SECURESIGN_BENCH_SECRETS_KEY`,
//! `SECURESIGN_BENCH_TENANT` (a tenant whitelisting https://portal.example.gov.in),
//! `SECURESIGN_BENCH_INSTANCES` (comma-separated base URLs).

use std::time::{Duration, Instant};

mod propagation;

use propagation::{fail, propagation, report, status, var, Bench};

use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = Bench::from_env("SECURESIGN_BENCH_REVOKES").await;
    let tenant = var("SECURESIGN_BENCH_TENANT");
    let (store, instances, revokes) = (&bench.store, &bench.instances, bench.changes);
    let admin = Admin::new(store, &bench.clock);
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(revokes);
    for _ in 0..revokes {
        let issued = admin
            .create_key(&tenant, KeyMode::Live, 1_000_000)
            .await
            .unwrap_or_else(|err| fail("key create", err));
        let key = issued.secret.expose().to_owned();
        for base in instances {
            for _ in 0..2 {
                let got = status(&http, base, &key).await;
                if got != 200 {
                    fail(base, format!("answered {got} for a fresh key"));
                }
            }
        }
        admin
            .revoke_key(&issued.record.id)
            .await
            .unwrap_or_else(|err| fail("revoke", err));
        times.push(propagation(instances, &key, 401, Instant::now()).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
    report("revocation", times, instances.len());
}
