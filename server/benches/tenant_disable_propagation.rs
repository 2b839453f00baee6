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

use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;
use securesign_server::{Store, SystemClock};

const ORIGIN: &str = "https://portal.example.gov.in";
const BODY: &str = r#"{"origin":"https://portal.example.gov.in","platform":"web"}"#;
/// A poll that has not seen the answer after this long gives up (and counts as this).
const GIVE_UP: Duration = Duration::from_secs(10);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set (see the header of benches/tenant_disable_propagation.rs)");
        std::process::exit(2)
    })
}

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {err}");
    std::process::exit(1)
}

async fn status(http: &reqwest::Client, base: &str, key: &str) -> u16 {
    http.post(format!("{base}/v1/auth/validate"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Polls `base` until it answers `expected` for `key`; the time since `since`.
async fn first_answer(base: String, key: String, expected: u16, since: Instant) -> Duration {
    let http = reqwest::Client::new();
    loop {
        if status(&http, &base, &key).await == expected || since.elapsed() > GIVE_UP {
            return since.elapsed();
        }
    }
}

/// The slowest instance's first `expected` answer after `committed`.
async fn propagation(
    instances: &[String],
    key: &str,
    expected: u16,
    committed: Instant,
) -> Duration {
    let polls: Vec<_> = instances
        .iter()
        .map(|base| {
            tokio::spawn(first_answer(
                base.clone(),
                key.to_owned(),
                expected,
                committed,
            ))
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for poll in polls {
        slowest = slowest.max(poll.await.unwrap_or(Duration::MAX));
    }
    slowest
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut times: Vec<Duration>, instances: usize) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let over = times
        .iter()
        .filter(|d| **d > Duration::from_millis(100))
        .count();
    println!(
        "{what} propagation over {} cycles, {instances} instances: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; over 100 ms: {over} (target p99 <= 100 ms)",
        times.len(),
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(percentile(&times, 99.0)),
        ms(times[times.len() - 1]),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = var("SECURESIGN_BENCH_DATABASE_URL");
    let secrets = var("SECURESIGN_BENCH_SECRETS_KEY");
    let instances: Vec<String> = var("SECURESIGN_BENCH_INSTANCES")
        .split(',')
        .map(str::to_owned)
        .collect();
    let cycles: usize = std::env::var("SECURESIGN_BENCH_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
        .max(1);
    let store = Store::open_postgres(&url, std::path::Path::new(&secrets))
        .await
        .unwrap_or_else(|err| fail(&format!("cannot open {url}"), err));
    let clock = SystemClock::new();
    let admin = Admin::new(&store, &clock);
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
        for base in &instances {
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
        disables.push(propagation(&instances, &key, 401, Instant::now()).await);
        admin
            .enable_tenant(&tenant.id)
            .await
            .unwrap_or_else(|err| fail("enable", err));
        enables.push(propagation(&instances, &key, 200, Instant::now()).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
    report("tenant disable", disables, instances.len());
    report("tenant enable", enables, instances.len());
}
