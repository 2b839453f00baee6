//! Hostile clients against the real `securesign-server` binary on loopback: huge result
//! bodies for unknown requests, slow headers, slow bodies, request floods from one
//! address. Timeouts are shortened with `serve` flags so the whole file runs in tens of
//! seconds; the bounds asserted are stated (and justified) next to each test.

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    b64, cli_key, cli_tenant, documents_json, request_id_of, sha256, BinaryServer, PORTAL,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A second loopback address: Linux routes all of 127.0.0.0/8 to `lo`, so connections
/// bound to it come from "another client" as far as the server's per-address limits go.
const OTHER_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A request id of the right shape that no session has.
const UNKNOWN_REQUEST: &str = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";

struct Setup {
    _dir: tempfile::TempDir,
    server: BinaryServer,
    key: String,
}

/// A tenant with the seed's origin and a live key (the key's rpm high enough that the
/// per-key limit never interferes), served by the binary with `flags`.
fn start(flags: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let log = dir.path().join("server.log");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let key = cli_key(&db, &tenant, "live", &["--rpm", "100000"]);
    let server = BinaryServer::spawn_with(&db, &log, flags);
    Setup {
        _dir: dir,
        server,
        key,
    }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base())
    }

    /// A pending raw session with one document; returns its request id.
    async fn pending_request(&self) -> String {
        let reply = reqwest::Client::new()
            .post(self.url("/v1/auth/session"))
            .bearer_auth(&self.key)
            .json(&json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"doc")])}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
        request_id_of(&reply.json().await.unwrap())
    }

    /// One `POST /v1/auth/validate` on a fresh connection; its status and duration.
    async fn timed_validate(&self) -> (u16, Duration) {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let started = Instant::now();
        let reply = http
            .post(self.url("/v1/auth/validate"))
            .bearer_auth(&self.key)
            .json(&json!({"origin": PORTAL, "platform": "web"}))
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let _ = reply.bytes().await.unwrap();
        (status, started.elapsed())
    }

    /// The peak resident set size of the server process so far (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.server.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .map(|kib| kib.trim().parse().unwrap())
            .expect("VmHWM in /proc/<pid>/status")
    }
}

/// Connects to `addr` from `from` (any port).
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends `head` then `body` (stopping at the first write error: the server may answer
/// and close before the body is sent), then reads the answer until the server closes or
/// `wait` passes. Returns the status of the answer, if one was read.
async fn raw_post(
    addr: SocketAddr,
    head: String,
    body: Arc<Vec<u8>>,
    wait: Duration,
) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut answer = Vec::new();
    let exchange = async {
        if stream.write_all(head.as_bytes()).await.is_ok() {
            for chunk in body.chunks(64 * 1024) {
                if stream.write_all(chunk).await.is_err() {
                    break;
                }
            }
        }
        let _ = stream.read_to_end(&mut answer).await;
    };
    let _ = tokio::time::timeout(wait, exchange).await;
    status_of(&answer)
}

/// The status code of an HTTP/1.1 answer.
fn status_of(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// The JSON body of a complete HTTP/1.1 answer (with `Content-Length`).
fn json_of(answer: &[u8]) -> Value {
    let text = String::from_utf8_lossy(answer);
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

/// A syntactically valid result body of exactly `len` bytes: one huge signature.
fn huge_result_body(len: usize) -> Vec<u8> {
    let prefix = format!(
        r#"{{"certificate":"{}","signatures":[{{"documentId":"doc-0","signature":""#,
        b64(b"not a certificate")
    );
    let suffix = r#""}]}"#;
    let mut body = prefix.into_bytes();
    body.resize(len - suffix.len(), b'A');
    body.extend_from_slice(suffix.as_bytes());
    body
}

fn result_head(addr: SocketAddr, request_id: &str, len: usize) -> String {
    format!(
        "POST /v1/sign-requests/{request_id}/result HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// 30 clients post 13 MB results at once, first for an unknown request, then for a
/// pending request of one document. The server must look the request up before reading
/// a body, and cap a known request's body by its document count (a raw one-document
/// result is at most ~200 KiB: certificate, 8 chain certificates, one signature).
///
/// Bound: the server's peak RSS may grow by at most 64 MiB over the whole run. What the
/// server may legitimately hold per connection is hyper's read buffer (at most ~400 KiB)
/// plus, for the known request, the capped body (~200 KiB) and its parse: 30 × ~1 MiB ≈
/// 30 MiB, and allocator slack. Reading the bodies whole, as before, needs 30 × 13 MB for
/// the bytes alone (~390 MB) plus their parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_13_mb_results_leave_the_server_memory_bounded() {
    const BODY: usize = 13_000_000;
    const CLIENTS: usize = 30;
    const BOUND_KIB: u64 = 64 * 1024;
    let s = start(&["--app-rpm-per-ip", "1000"]);
    let addr = s.server.addr;
    let request_id = s.pending_request().await;
    // Warm the paths once (first-use allocations are not what is measured).
    let small = Arc::new(huge_result_body(1000));
    assert_eq!(
        raw_post(
            addr,
            result_head(addr, UNKNOWN_REQUEST, 1000),
            small.clone(),
            Duration::from_secs(10)
        )
        .await,
        Some(404)
    );
    assert_eq!(s.timed_validate().await.0, 200);
    let before = s.peak_rss_kib();

    let body = Arc::new(huge_result_body(BODY));
    let mut statuses = Vec::new();
    for target in [UNKNOWN_REQUEST, request_id.as_str()] {
        let started = Instant::now();
        let posts: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::spawn(raw_post(
                    addr,
                    result_head(addr, target, BODY),
                    body.clone(),
                    Duration::from_secs(30),
                ))
            })
            .collect();
        let mut answered = Vec::new();
        for post in posts {
            answered.push(post.await.unwrap());
        }
        eprintln!(
            "{} posts of {BODY} bytes for {}: answers {answered:?} in {:?}",
            CLIENTS,
            if target == UNKNOWN_REQUEST {
                "an unknown request"
            } else {
                "a one-document request"
            },
            started.elapsed()
        );
        statuses.push(answered);
    }
    let after = s.peak_rss_kib();
    let growth = after.saturating_sub(before);
    eprintln!("server peak RSS: {before} KiB before, {after} KiB after (growth {growth} KiB; bound {BOUND_KIB} KiB)");

    // Whatever answers the clients managed to read (a client still sending when the
    // server closes may see a reset instead) are the right ones.
    for answer in statuses[0].iter().flatten() {
        assert_eq!(*answer, 404, "unknown request");
    }
    for answer in statuses[1].iter().flatten() {
        assert_eq!(*answer, 400, "over the one-document cap");
    }
    assert!(
        growth < BOUND_KIB,
        "the server's peak RSS grew by {growth} KiB (bound {BOUND_KIB} KiB)"
    );
    // Nothing was lost: the request is still pending and the server still answers.
    let reply = reqwest::get(s.url(&format!("/v1/sign-requests/{request_id}")))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

/// 150 connections that send part of a request head and hold it must not delay a normal
/// validate (≤ 200 ms, median of 5, each on a fresh connection), and the server must close
/// them once the header read timeout (2 s here) passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_header_connections_neither_delay_validate_nor_stay_open() {
    const SLOW: usize = 150;
    let s = start(&[
        "--header-read-timeout",
        "2s",
        "--max-connections-per-ip",
        "64",
    ]);
    let addr = s.server.addr;
    assert_eq!(s.timed_validate().await.0, 200);

    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut stream = connect_from(OTHER_CLIENT, addr).await;
        // Refused connections (over the per-address cap) may already be closed.
        let _ = stream
            .write_all(
                format!("POST /v1/auth/validate HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes(),
            )
            .await;
        slow.push(stream);
    }
    let opened = Instant::now();
    let mut timings = Vec::new();
    for _ in 0..5 {
        let (status, took) = s.timed_validate().await;
        assert_eq!(status, 200);
        timings.push(took);
    }
    timings.sort();
    let median = timings[timings.len() / 2];
    eprintln!("validate with {SLOW} slow-header connections open: {timings:?}, median {median:?}");
    assert!(
        median <= Duration::from_millis(200),
        "validate took {median:?} (median) with {SLOW} slow-header connections open"
    );

    // Every slow connection is closed by the server by the header timeout (plus margin).
    let deadline = opened + Duration::from_secs(2) + Duration::from_secs(3);
    let mut still_open = 0;
    for stream in &mut slow {
        let wait = deadline.saturating_duration_since(Instant::now());
        let mut buf = [0u8; 1024];
        let closed = loop {
            match tokio::time::timeout(wait, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        if !closed {
            still_open += 1;
        }
    }
    eprintln!(
        "slow-header connections still open {:?} after they were opened: {still_open}",
        opened.elapsed()
    );
    assert_eq!(
        still_open, 0,
        "slow-header connections outlived the header read timeout"
    );
    assert_eq!(s.timed_validate().await.0, 200);
}

/// Sends `head` and the first `sent` bytes of a `Content-Length` body, then one byte
/// every 300 ms; returns the answer and how long after the head it came (or `None` after
/// `wait`).
async fn drip_body(
    addr: SocketAddr,
    head: String,
    sent: usize,
    wait: Duration,
) -> Option<(Vec<u8>, Duration)> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let drip = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    drip.abort();
    read.ok().map(|()| (answer, started.elapsed()))
}

/// A body sent one byte at a time is cut off by the body read timeout (2 s here) with an
/// `SS_BAD_REQUEST` answer, on the result route (for a pending request, which the server
/// then reads) and on a portal route; the request stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_body_is_cut_off_by_the_body_read_timeout() {
    let s = start(&["--body-read-timeout", "2s"]);
    let addr = s.server.addr;
    let request_id = s.pending_request().await;
    let heads = [
        result_head(addr, &request_id, 100_000),
        format!(
            "POST /v1/auth/validate HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            s.key
        ),
    ];
    for head in heads {
        let route = head.split_whitespace().nth(1).unwrap().to_owned();
        let Some((answer, took)) = drip_body(addr, head, 100, Duration::from_secs(8)).await else {
            panic!("{route}: no answer within 8 s to a body dripping one byte per 300 ms");
        };
        eprintln!("{route}: slow body answered after {took:?}");
        assert_eq!(
            status_of(&answer),
            Some(400),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let body = json_of(&answer);
        assert_eq!(body["error"]["code"], "SS_BAD_REQUEST", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("timed out"),
            "{body}"
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(4),
            "{took:?}"
        );
    }
    let reply = reqwest::get(s.url(&format!("/v1/sign-requests/{request_id}")))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

/// The app routes (no API key) are limited per client address: over the limit (5 per
/// minute here), `429 SS_RATE_LIMITED` with `Retry-After` and the `RateLimit-*` headers,
/// for lookups and result posts alike (the latter before any body is read); another
/// address and the portal's keyed routes are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_routes_are_limited_per_client_address() {
    let s = start(&["--app-rpm-per-ip", "5"]);
    let http = reqwest::Client::new();
    let lookup = s.url(&format!("/v1/sign-requests/{UNKNOWN_REQUEST}"));
    for i in 0..5 {
        let reply = http.get(&lookup).send().await.unwrap();
        assert_eq!(reply.status(), 404, "request {i}");
    }
    let limited = http.get(&lookup).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-limit"], "5");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    assert_eq!(limited.headers()["ratelimit-policy"], "5;w=60");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "SS_RATE_LIMITED", "{body}");
    assert!(body["error"]["resolution"].is_string(), "{body}");

    let posted = http
        .post(s.url(&format!("/v1/sign-requests/{UNKNOWN_REQUEST}/result")))
        .json(&json!({"certificate": "", "signatures": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 429);

    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(OTHER_CLIENT))
        .build()
        .unwrap();
    assert_eq!(other.get(&lookup).send().await.unwrap().status(), 404);
    assert_eq!(s.timed_validate().await.0, 200);
}

/// A result for an unknown request is answered `404 SS_NOT_FOUND` without waiting for
/// its body: the head promises 13 MB, none comes, and the answer is there within the
/// short drain wait (1 s) instead of after the body (never, before the lookup came
/// first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_for_an_unknown_request_is_answered_before_its_body() {
    let s = start(&[]);
    let addr = s.server.addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(result_head(addr, UNKNOWN_REQUEST, 13_000_000).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    eprintln!("answered after {took:?}");
    assert!(read.is_ok(), "no answer within 10 s without the body");
    assert_eq!(
        status_of(&answer),
        Some(404),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(json_of(&answer)["error"]["code"], "SS_NOT_FOUND");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
