//! Tenant disable propagation across instances (issue 12): how long after a tenant's
//! disable commits until every running instance refuses its key, and after its enable
//! commits until every instance lets the key in again. Run against instances someone
//! else started (as `server/bench-multi-instance.sh` does for `revocation_propagation`);
//! not a test, no target.
//!
//! The bench makes its own tenant (whitelisting https://portal.example.gov.in) and one
//! live key. Each of `SECURESIGN_BENCH_CYCLES` (default 100) cycles: every instance
//! answers the key twice (so it is cached everywhere), the tenant is disabled through
//! the store as the admin CLI does (`Admin::disable_tenant`, its own connection and
//! LISTEN, like a separate process), and each instance is polled (back to back, one
//! connection each) until it answers 401; then the tenant is enabled the same way and
//! each instance is polled until it answers 200. A change's propagation is the slowest
//! instance's first answer, measured from the moment the change's commit returned.
//! Prints p50/p90/p99/max of both.
//!
//! Environment: `SECURESIGN_BENCH_DATABASE_URL`, `SECURESIGN_BENCH_SECRETS_KEY`,
//! `SECURESIGN_BENCH_INSTANCES` (comma-separated base URLs).

use std::time::{Duration, Instant};

mod propagation;

use propagation::{fail, propagation, report, status, Bench};

use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;

const ORIGIN: &str = "https://portal.example.gov.in";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = Bench::from_env("SECURESIGN_BENCH_CYCLES").await;
    let (store, instances, cycles) = (&bench.store, &bench.instances, bench.changes);
    let admin = Admin::new(store, &bench.clock);
    let tenant = admin
        .create_tenant("Disable propagation bench")
        .await
        .unwrap_or_else(|err| fail("tenant create", err));
    admin
        .add_domain(&tenant.id, ORIGIN)
        .await
        .unwrap_or_else(|err| fail("domain add", err));
    let key = admin
        .create_key(&tenant.id, KeyMode::Live, 1_000_000)
        .await
        .unwrap_or_else(|err| fail("key create", err))
        .secret
        .expose()
        .to_owned();
    let http = reqwest::Client::new();
    let mut disables = Vec::with_capacity(cycles);
    let mut enables = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        for base in instances {
            for _ in 0..2 {
                let got = status(&http, base, &key).await;
                if got != 200 {
                    fail(base, format!("answered {got} for the enabled tenant's key"));
                }
            }
        }
        admin
            .disable_tenant(&tenant.id)
            .await
            .unwrap_or_else(|err| fail("disable", err));
        disables.push(propagation(instances, &key, 401, Instant::now()).await);
        admin
            .enable_tenant(&tenant.id)
            .await
            .unwrap_or_else(|err| fail("enable", err));
        enables.push(propagation(instances, &key, 200, Instant::now()).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
    report("tenant disable", disables, instances.len());
    report("tenant enable", enables, instances.len());
}
