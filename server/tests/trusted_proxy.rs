//! `serve --trusted-proxy`: behind a real HAProxy (`option forwardfor`) on loopback, the
//! per-address limits (app routes, Admin Console sign-in) count each client's own
//! address, as the balancer reports it in `X-Forwarded-For`, not the balancer's; a
//! client's own `X-Forwarded-For` is never believed, whether it comes through the
//! balancer or straight to the server. With `--proxy-protocol` (HAProxy
//! `send-proxy-v2`) the client's address comes in the connection's PROXY header, so the
//! per-address connection cap counts clients too.
//!
//! Loopback is 127.0.0.0/8: the balancer reaches the server from 127.0.0.1 (the trusted
//! proxy), the clients' sockets are bound to 127.0.0.2 and up. Runs on either engine
//! (one instance).

// Tests may unwrap: a failure should stop the test with its message.
#![allow(clippy::unwrap_used)]

mod balancer_support;
mod common;

use std::net::IpAddr;
use std::path::Path;

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

/// The real server with its database and log in `dir`, serving with `args`.
fn serve_in(dir: &Path, args: &[&str]) -> BinaryServer {
    BinaryServer::spawn_with(&dir.join("securesign.db"), &dir.join("server.log"), args)
}

/// The server of the app route budget tests, in `dir`: [`RPM`] requests per minute per
/// client address, and `trust` (its `--trusted-proxy` arguments, and any more).
fn budget_server(dir: &Path, trust: &[&str]) -> BinaryServer {
    let rpm = RPM.to_string();
    let args = [&["--app-rpm-per-ip", rpm.as_str()][..], trust].concat();
    serve_in(dir, &args)
}

#[tokio::test]
async fn behind_a_trusted_balancer_each_client_address_has_its_own_budget_and_spoofing_gains_nothing(
) {
    let dir = tempfile::tempdir().unwrap();
    let server = budget_server(dir.path(), &["--trusted-proxy", "127.0.0.1/32"]);
    let balancer =
        Haproxy::start_with(dir.path(), &[server.addr.port()], "    option forwardfor\n");
    balancer.wait_until_serving();
    let lb = balancer.base();

    // Two clients through the balancer each get the whole budget (without the trusted
    // proxy both would be 127.0.0.1, and the second would be refused at once); a third
    // naming a new address in each request's own X-Forwarded-For gains nothing (the
    // balancer appends 127.0.0.4, the rightmost untrusted entry).
    let a = each_client_gets_its_budget_and_spoofing_gains_nothing(&lb).await;
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

#[tokio::test]
async fn behind_a_balancer_speaking_the_proxy_protocol_each_client_has_its_own_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = budget_server(
        dir.path(),
        &["--trusted-proxy", "127.0.0.1", "--proxy-protocol"],
    );
    let balancer =
        Haproxy::start_configured(dir.path(), &[server.addr.port()], "", "send-proxy-v2");
    balancer.wait_until_serving();
    let lb = balancer.base();

    // The client address comes from the PROXY header the balancer writes, not from
    // anything a client sends.
    each_client_gets_its_budget_and_spoofing_gains_nothing(&lb).await;
}

/// Through the balancer at `lb`: 127.0.0.2 and 127.0.0.3 each get [`RPM`] answers, then
/// 429; 127.0.0.4, sending a new X-Forwarded-For address in each request, the same. The
/// first client, for more requests.
async fn each_client_gets_its_budget_and_spoofing_gains_nothing(lb: &str) -> reqwest::Client {
    let a = client_from("127.0.0.2");
    assert_eq!(
        app_requests(&a, lb, RPM + 1, None).await,
        budget_then_refused()
    );
    let b = client_from("127.0.0.3");
    assert_eq!(
        app_requests(&b, lb, RPM + 1, None).await,
        budget_then_refused()
    );
    let spoofer = client_from("127.0.0.4");
    let fresh_address = |i: usize| format!("198.51.100.{}", i + 1);
    assert_eq!(
        app_requests(&spoofer, lb, RPM + 1, Some(&fresh_address)).await,
        budget_then_refused()
    );
    a
}

/// A raw connection to `server` from `local`, starting with `prefix` (a PROXY protocol
/// header, or nothing); then `GET /healthz`. The answer's status line, or `None` when
/// the server closed the connection without one. The connection is kept open.
async fn healthz_over(
    server: std::net::SocketAddr,
    local: &str,
    prefix: &[u8],
) -> (Option<String>, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let mut request = prefix.to_vec();
    request.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: securesign\r\n\r\n");
    // A write to a connection the server already closed may fail: the read says so.
    let _ = stream.write_all(&request).await;
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("the server neither answered nor closed")
        .unwrap_or(0);
    let status = (n > 0).then(|| {
        String::from_utf8_lossy(&answer[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    (status, stream)
}

/// A PROXY protocol v2 header: a TCP over IPv4 connection from `source` to 127.0.0.1.
fn proxy_v2_from(source: [u8; 4]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&source);
    header.extend_from_slice(&[127, 0, 0, 1, 0x30, 0x39, 0x1f, 0x90]);
    header
}

/// The status line of a served `/healthz`.
const OK: Option<&str> = Some("HTTP/1.1 200 OK");

/// The server of the connection cap tests, in `dir`: at most 2 connections per client
/// address, 127.0.0.1 a trusted proxy, and `extra` arguments.
fn capped_server(dir: &Path, extra: &[&str]) -> BinaryServer {
    let args = [
        &[
            "--max-connections-per-ip",
            "2",
            "--trusted-proxy",
            "127.0.0.1",
        ][..],
        extra,
    ]
    .concat();
    serve_in(dir, &args)
}

/// `n` connections to `server` from `local`, each starting with `prefix` (as in
/// [`healthz_over`]), each served: all kept open.
async fn served_connections(
    server: std::net::SocketAddr,
    local: &str,
    prefix: &[u8],
    n: usize,
) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let (status, stream) = healthz_over(server, local, prefix).await;
        assert_eq!(status.as_deref(), OK, "from {local}");
        held.push(stream);
    }
    held
}

#[tokio::test]
async fn with_the_proxy_protocol_the_connection_cap_counts_each_client_not_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let server = capped_server(dir.path(), &["--proxy-protocol"]);
    // The proxy (127.0.0.1) forwards two connections of client 198.51.100.7: both held
    // open; its third is closed at once, while another client's passes.
    let client = [198, 51, 100, 7];
    let _held = served_connections(server.addr, "127.0.0.1", &proxy_v2_from(client), 2).await;
    let (third, _) = healthz_over(server.addr, "127.0.0.1", &proxy_v2_from(client)).await;
    assert_eq!(third, None, "a third connection of one client was served");
    let (other, _held3) =
        healthz_over(server.addr, "127.0.0.1", &proxy_v2_from([198, 51, 100, 8])).await;
    assert_eq!(other.as_deref(), OK);
    // The proxy's own connections (v2 LOCAL, e.g. its health checks) are not capped.
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    let _held_local = served_connections(server.addr, "127.0.0.1", &local, 3).await;
    // From a trusted peer, a connection without the header is closed.
    let (plain, _) = healthz_over(server.addr, "127.0.0.1", b"").await;
    assert_eq!(plain, None);
    // From any other peer the header is not read: it is no HTTP, and answered as such.
    let (spoofed, _) =
        healthz_over(server.addr, "127.0.0.5", &proxy_v2_from([198, 51, 100, 9])).await;
    assert_ne!(spoofed.as_deref(), OK);
}

/// One failed Admin Console sign-in by `http` through `base` (the form, its cookie and
/// CSRF token, then a wrong password for an unknown account): the answer's status.
async fn failed_sign_in(http: &reqwest::Client, base: &str) -> u16 {
    let form = http
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let cookie = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("ss_console_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];
    http.post(format!("{base}/admin/login"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[
            ("csrf", csrf),
            ("email", "nobody@portal.example.in"),
            ("password", "wrong password here"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_balancer_console_sign_in_attempts_are_counted_per_client() {
    let dir = tempfile::tempdir().unwrap();
    // The trusted ranges from the environment this time (comma-separated), as a
    // container would set them. (nextest runs each test in a process of its own.)
    std::env::set_var("SECURESIGN_TRUSTED_PROXIES", "192.0.2.0/24,127.0.0.1");
    let server = serve_in(dir.path(), &[]);
    let balancer =
        Haproxy::start_with(dir.path(), &[server.addr.port()], "    option forwardfor\n");
    balancer.wait_until_serving();
    let lb = balancer.base();
    let attempts = securesign_server::console::LOGIN_ATTEMPTS_PER_MINUTE as usize;

    // Client A uses up its sign-in attempts (each a 401), the next is refused (429).
    let a = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    for _ in 0..=attempts {
        statuses.push(failed_sign_in(&a, &lb).await);
    }
    let mut expected = vec![401; attempts];
    expected.push(429);
    assert_eq!(statuses, expected);
    // Client B behind the same balancer still has all of its own (without the trusted
    // proxy both would be the balancer's 127.0.0.1: refused at once).
    let b = client_from("127.0.0.3");
    assert_eq!(failed_sign_in(&b, &lb).await, 401);
    // A's X-Forwarded-For naming someone else gains it nothing.
    let spoofing_a = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse::<IpAddr>().unwrap()))
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-for"),
                reqwest::header::HeaderValue::from_static("198.51.100.1"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    assert_eq!(failed_sign_in(&spoofing_a, &lb).await, 429);
}

#[tokio::test]
async fn a_trusted_proxys_connections_are_not_capped_per_address_other_peers_are() {
    let dir = tempfile::tempdir().unwrap();
    let server = capped_server(dir.path(), &[]);
    // The balancer (127.0.0.1) carries many clients: three connections held open.
    let _held_proxy = served_connections(server.addr, "127.0.0.1", b"", 3).await;
    // Any other peer keeps its cap of 2.
    let _held_peer = served_connections(server.addr, "127.0.0.2", b"", 2).await;
    let (third, _) = healthz_over(server.addr, "127.0.0.2", b"").await;
    assert_eq!(third, None, "a third connection of 127.0.0.2 was served");
}
