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

use securesign_server::admin::Admin;
use securesign_server::api_key::KeyMode;
use securesign_server::{Store, SystemClock};

const BODY: &str = r#"{"origin":"https://portal.example.gov.in","platform":"web"}"#;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set (run server/bench-multi-instance.sh)");
        std::process::exit(2)
    })
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

/// Polls `base` until it refuses `key`; the time since `since`.
async fn first_refusal(base: String, key: String, since: Instant) -> Duration {
    let http = reqwest::Client::new();
    loop {
        if status(&http, &base, &key).await == 401 {
            return since.elapsed();
        }
        if since.elapsed() > Duration::from_secs(10) {
            return since.elapsed();
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = var("SECURESIGN_BENCH_DATABASE_URL");
    let secrets = var("SECURESIGN_BENCH_SECRETS_KEY");
    let tenant = var("SECURESIGN_BENCH_TENANT");
    let instances: Vec<String> = var("SECURESIGN_BENCH_INSTANCES")
        .split(',')
        .map(str::to_owned)
        .collect();
    let revokes: usize = std::env::var("SECURESIGN_BENCH_REVOKES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let store = match Store::open_postgres(&url, std::path::Path::new(&secrets)).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("cannot open {url}: {err}");
            std::process::exit(1)
        }
    };
    let clock = SystemClock::new();
    let admin = Admin::new(&store, &clock);
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(revokes);
    for _ in 0..revokes {
        let issued = match admin.create_key(&tenant, KeyMode::Live, 1_000_000).await {
            Ok(issued) => issued,
            Err(err) => {
                eprintln!("key create: {err}");
                std::process::exit(1)
            }
        };
        let key = issued.secret.expose().to_owned();
        for base in &instances {
            for _ in 0..2 {
                let got = status(&http, base, &key).await;
                if got != 200 {
                    eprintln!("{base} answered {got} for a fresh key");
                    std::process::exit(1)
                }
            }
        }
        if let Err(err) = admin.revoke_key(&issued.record.id).await {
            eprintln!("revoke: {err}");
            std::process::exit(1)
        }
        let committed = Instant::now();
        let polls: Vec<_> = instances
            .iter()
            .map(|base| tokio::spawn(first_refusal(base.clone(), key.clone(), committed)))
            .collect();
        let mut slowest = Duration::ZERO;
        for poll in polls {
            slowest = slowest.max(poll.await.unwrap_or(Duration::MAX));
        }
        times.push(slowest);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let over = times
        .iter()
        .filter(|d| **d > Duration::from_millis(100))
        .count();
    println!(
        "revocation propagation over {} revokes, {} instances: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; over 100 ms: {over} (target p99 <= 100 ms)",
        times.len(),
        instances.len(),
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(percentile(&times, 99.0)),
        ms(times[times.len() - 1]),
    );
}
