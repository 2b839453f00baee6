//! What the propagation benches share: validate answers polled on every instance until
//! they say what a change should make them say, and the percentiles of how long that took.

use std::time::{Duration, Instant};

use securesign_server::{Store, SystemClock};

/// The validate body every instance is asked with.
pub const BODY: &str = r#"{"origin":"https://portal.example.gov.in","platform":"web"}"#;
/// A poll that has not seen the answer after this long gives up (and counts as this).
const GIVE_UP: Duration = Duration::from_secs(10);

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!(
            "{name} is not set (see the bench's header; server/bench-multi-instance.sh sets it)"
        );
        std::process::exit(2)
    })
}

pub fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {err}");
    std::process::exit(1)
}

pub async fn status(http: &reqwest::Client, base: &str, key: &str) -> u16 {
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
pub async fn propagation(
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

pub fn report(what: &str, mut times: Vec<Duration>, instances: usize) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let over = times
        .iter()
        .filter(|d| **d > Duration::from_millis(100))
        .count();
    println!(
        "{what} propagation over {} changes, {instances} instances: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; over 100 ms: {over} (target p99 <= 100 ms)",
        times.len(),
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(percentile(&times, 99.0)),
        ms(times[times.len() - 1]),
    );
}

/// What both benches start from: the database (as the admin CLI opens it, a separate
/// process's connection and LISTEN), a clock, the running instances' base URLs and how
/// many changes to make (`count_var`, default 100).
pub struct Bench {
    /// The instances' database.
    pub store: Store,
    /// The admin's clock.
    pub clock: SystemClock,
    /// The running instances' base URLs.
    pub instances: Vec<String>,
    /// How many changes to time.
    pub changes: usize,
}

impl Bench {
    /// From `SECURESIGN_BENCH_DATABASE_URL`, `SECURESIGN_BENCH_SECRETS_KEY`,
    /// `SECURESIGN_BENCH_INSTANCES` (comma-separated) and `count_var`.
    pub async fn from_env(count_var: &str) -> Self {
        let url = var("SECURESIGN_BENCH_DATABASE_URL");
        let secrets = var("SECURESIGN_BENCH_SECRETS_KEY");
        let instances = var("SECURESIGN_BENCH_INSTANCES")
            .split(',')
            .map(str::to_owned)
            .collect();
        let changes = std::env::var(count_var)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100)
            .max(1);
        let store = Store::open_postgres(&url, std::path::Path::new(&secrets))
            .await
            .unwrap_or_else(|err| fail(&format!("cannot open {url}"), err));
        Self {
            store,
            clock: SystemClock::new(),
            instances,
            changes,
        }
    }
}
