//! `serve --trusted-proxy`: behind a real HAProxy (`option forwardfor`) on loopback, the
//! per-address limit of the app routes counts each client's own address, as the
//! balancer reports it in `X-Forwarded-For`, not the balancer's; a client's own
//! `X-Forwarded-For` is never believed, whether it comes through the balancer or
//! straight to the server.
//!
//! Loopback is 127.0.0.0/8: the balancer reaches the server from 127.0.0.1 (the trusted
//! proxy), the clients' sockets are bound to 127.0.0.2 and up. Runs on either engine
//! (one instance).

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod balancer_support;
mod common;

use std::net::IpAddr;

use balancer_support::Haproxy;
use common::BinaryServer;

/// Requests per minute per address on the app routes, in these tests.
const RPM: usize = 5;

/// A well-formed requestId no session has: the app route answers 404 (after the
/// per-address limit counted it).
const UNKNOWN_REQUEST: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// An HTTP client whose connections come from `local` (a loopback address).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(local.parse::<IpAddr>().unwrap()))
        .build()
        .unwrap()
}

/// `n` app route requests from `http` to `base`, each with `spoof(i)` as its
/// `X-Forwarded-For` when given; their statuses.
async fn app_requests(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    spoof: Option<&dyn Fn(usize) -> String>,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let mut request = http.get(format!("{base}/v1/sign-requests/{UNKNOWN_REQUEST}"));
        if let Some(spoof) = spoof {
            request = request.header("X-Forwarded-For", spoof(i));
        }
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    statuses
}

/// `RPM` answers 404 (counted, passed), then 429.
fn budget_then_refused() -> Vec<u16> {
    let mut expected = vec![404; RPM];
    expected.push(429);
    expected
}

#[tokio::test]
async fn behind_a_trusted_balancer_each_client_address_has_its_own_budget_and_spoofing_gains_nothing(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let rpm = RPM.to_string();
    let server = BinaryServer::spawn_with(
        &db,
        &dir.path().join("server.log"),
        &["--app-rpm-per-ip", &rpm, "--trusted-proxy", "127.0.0.1/32"],
    );
    let balancer =
        Haproxy::start_with(dir.path(), &[server.addr.port()], "    option forwardfor\n");
    balancer.wait_until_serving();
    let lb = balancer.base();

    // Two clients through the balancer: each gets the whole budget (without the trusted
    // proxy both would be 127.0.0.1, and the second would be refused at once).
    let a = client_from("127.0.0.2");
    assert_eq!(
        app_requests(&a, &lb, RPM + 1, None).await,
        budget_then_refused()
    );
    let b = client_from("127.0.0.3");
    assert_eq!(
        app_requests(&b, &lb, RPM + 1, None).await,
        budget_then_refused()
    );

    // A client through the balancer naming a new address in each request's own
    // X-Forwarded-For: the balancer appends 127.0.0.4, the rightmost untrusted entry.
    let spoofer = client_from("127.0.0.4");
    let fresh_address = |i: usize| format!("198.51.100.{}", i + 1);
    assert_eq!(
        app_requests(&spoofer, &lb, RPM + 1, Some(&fresh_address)).await,
        budget_then_refused()
    );
    // The same straight to the server: 127.0.0.5 is no trusted proxy, so its header is
    // not read at all (not even one naming the balancer's address).
    let direct = client_from("127.0.0.5");
    let claims_to_be_balanced = |i: usize| format!("198.51.100.{}, 127.0.0.1", i + 1);
    assert_eq!(
        app_requests(
            &direct,
            &server.base(),
            RPM + 1,
            Some(&claims_to_be_balanced)
        )
        .await,
        budget_then_refused()
    );
    // Each refused address stays refused; a new one behind the balancer still passes.
    assert_eq!(app_requests(&a, &lb, 1, None).await, vec![429]);
    let c = client_from("127.0.0.6");
    assert_eq!(app_requests(&c, &lb, 1, None).await, vec![404]);
}
