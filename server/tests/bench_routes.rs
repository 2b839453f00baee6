//! The benchmark's routes exist only with `bench_routes`, and do what bench.sh says.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use securesign_server::{router, serve, AppState, ManualClock, RouterOptions};
use serde_json::{json, Value};

async fn start(
    options: RouterOptions,
) -> (String, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("bench.db")).await;
    let state = AppState::new(store, Arc::new(ManualClock::starting_at(0)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router(state, options), async {
        let _ = stopped.await;
    }));
    (base, stop, dir)
}

#[tokio::test]
async fn bench_routes_answer_a_fixed_body_and_parse_checks_its_input() {
    let (base, stop, _dir) = start(RouterOptions {
        bench_routes: true,
        ..RouterOptions::default()
    })
    .await;
    let http = reqwest::Client::new();
    let body = json!({"origin": "https://portal.example.gov.in", "platform": "web"});
    for path in ["/v1/bench/trivial", "/v1/bench/parse"] {
        let reply = http
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        assert_eq!(
            reply.json::<Value>().await.unwrap(),
            json!({"success": true})
        );
    }
    let reply = http
        .post(format!("{base}/v1/bench/parse"))
        .json(&json!({"origin": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400, "parse must really parse the body");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn without_the_option_there_are_no_bench_routes() {
    let (base, stop, _dir) = start(RouterOptions::default()).await;
    let http = reqwest::Client::new();
    for path in ["/v1/bench/trivial", "/v1/bench/parse"] {
        let reply = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(reply.status(), 404, "{path}");
    }
    stop.send(()).unwrap();
}
