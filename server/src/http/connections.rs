//! The connection loop: HTTP/1.1 over TCP with bounds on what a client can hold.
//!
//! * **Header read timeout** (hyper's): a request head (request line and headers) must
//!   arrive whole within it, else the connection is closed; it also bounds how long an
//!   idle keep-alive connection is kept, since hyper waits for the next head under it.
//! * **Body read timeout**: every request body must arrive whole within it, counted from
//!   the head ([`DeadlineBody`]).
//! * **Connections**: at most `max_connections` open (beyond, new connections wait in
//!   the listen backlog), and at most `max_connections_per_address` from one client
//!   address (beyond, a new one is closed at once), so one client holding connections
//!   open cannot take all the slots.
//!
//! Every request to an app route ([`super::APP_ROUTES_PREFIX`]) or to the console's
//! sign-in carries its client address as axum's `ConnectInfo<SocketAddr>`, for the
//! per-address request limits of those routes: the TCP peer's, or, when the peer is a
//! trusted proxy ([`ServeOptions::trusted_proxies`]), the one its `X-Forwarded-For`
//! names ([`super::client_address`]; the port is then the proxy's). A trusted proxy's
//! connections are not capped per address (they carry many clients): only by the total.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::future::RouteFuture;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::Service as _;

use super::body_deadline::DeadlineBody;
use super::client_address::TrustedProxies;
use super::client_limits::{ConnectionSlot, ConnectionsPerAddress};
use super::proxy_protocol;

/// Bounds on connections and request reads, and the proxies whose client addresses are
/// believed.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time to receive a request head; also the idle time of a keep-alive connection.
    pub header_read_timeout: Duration,
    /// Time to receive a request body, from its head.
    pub body_read_timeout: Duration,
    /// Open connections at most (0: no limit).
    pub max_connections: usize,
    /// Open connections from one client address at most (0: no limit).
    pub max_connections_per_address: usize,
    /// Reverse proxies (e.g. the load balancer) whose `X-Forwarded-For` gives the client
    /// address of their requests (default: none).
    pub trusted_proxies: TrustedProxies,
    /// Connections from a trusted proxy start with a PROXY protocol header (v1 or v2)
    /// naming the client, which then counts for the per-address connection cap too;
    /// one without it is closed (default: off, `X-Forwarded-For` only).
    pub proxy_protocol: bool,
}

impl ServeOptions {
    /// Default header read timeout: ample for any client that means to send a request.
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default body read timeout: the largest result body (~14 MB) at about 2 Mbit/s.
    pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default connection limit (below the usual 1024 open files, leaving room for the
    /// database and outgoing callbacks).
    pub const MAX_CONNECTIONS: usize = 768;
    /// Default connection limit per client address (a portal backend or a NAT of many
    /// desktops needs several; one client cannot take all [`Self::MAX_CONNECTIONS`]).
    pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::HEADER_READ_TIMEOUT,
            body_read_timeout: Self::BODY_READ_TIMEOUT,
            max_connections: Self::MAX_CONNECTIONS,
            max_connections_per_address: Self::MAX_CONNECTIONS_PER_ADDRESS,
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol: false,
        }
    }
}

/// Serves `router` on `listener` with `options` until `shutdown` completes; then stops
/// accepting, lets open connections finish their requests, and returns once all closed.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(if options.max_connections == 0 {
        Semaphore::MAX_PERMITS
    } else {
        options.max_connections
    }));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let shared = Arc::new(Shared {
        http,
        router,
        per_address: ConnectionsPerAddress::new(options.max_connections_per_address),
        trusted_proxies: Arc::new(options.trusted_proxies),
        body_timeout: options.body_read_timeout,
    });

    // Dropping `stop_rx` tells the loop and the connections to stop.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    // Each connection holds a receiver; `closed()` resolves when the last is gone.
    let (done_tx, done_rx) = watch::channel(());

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop_tx.closed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_error(&err).await;
                    continue;
                }
            },
            () = stop_tx.closed() => break,
        };
        let (stop, done) = (stop_tx.clone(), done_rx.clone());
        if options.proxy_protocol && shared.trusted_proxies.contains(peer.ip()) {
            // The client's address comes in the header: read it (within the header
            // read timeout) on the connection's own task, then admit the client.
            let shared = Arc::clone(&shared);
            let header_timeout = options.header_read_timeout;
            tokio::spawn(async move {
                let mut stream = stream;
                let header = proxy_protocol::read_header(&mut stream);
                let client = match tokio::time::timeout(header_timeout, header).await {
                    Ok(Ok(source)) => source.unwrap_or(peer),
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "connection from a trusted proxy closed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("no PROXY protocol header in time: connection closed");
                        return;
                    }
                };
                if let Some((service, slot)) = shared.admit(client) {
                    let connection = shared.http.serve_connection(TokioIo::new(stream), service);
                    drive(connection, stop, (permit, slot, done)).await;
                }
            });
            continue;
        }
        let Some((service, slot)) = shared.admit(peer) else {
            drop(stream);
            continue;
        };
        let connection = shared.http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(drive(connection, stop, (permit, slot, done)));
    }
    drop(done_rx);
    drop(listener);
    done_tx.closed().await;
    Ok(())
}

/// What the connections of one [`serve_with`] share.
struct Shared {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    per_address: Arc<ConnectionsPerAddress>,
    trusted_proxies: Arc<TrustedProxies>,
    body_timeout: Duration,
}

impl Shared {
    /// The service for a connection from `client` (the TCP peer, or the source a
    /// PROXY protocol header gave) and its per-address slot (none for a trusted proxy,
    /// whose connections carry many clients); `None` when `client` has its cap open.
    fn admit(&self, client: SocketAddr) -> Option<(ConnectionService, Option<ConnectionSlot>)> {
        let from_proxy = self.trusted_proxies.contains(client.ip());
        let slot = if from_proxy {
            None
        } else if let Some(slot) = self.per_address.open(client.ip()) {
            Some(slot)
        } else {
            tracing::debug!("connection refused: too many open from one client address");
            return None;
        };
        let service = ConnectionService {
            router: self.router.clone(),
            peer: client,
            proxies: from_proxy.then(|| Arc::clone(&self.trusted_proxies)),
            body_timeout: self.body_timeout,
        };
        Some((service, slot))
    }
}

/// Serves one connection until it ends; on shutdown, lets its request finish. `held`
/// (the connection's permits) is released when it ends.
async fn drive(
    connection: hyper::server::conn::http1::Connection<TokioIo<TcpStream>, ConnectionService>,
    stop: watch::Sender<()>,
    held: impl Send,
) {
    let mut connection = std::pin::pin!(connection);
    let mut stopping = std::pin::pin!(async move { stop.closed().await });
    let mut told = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                break;
            }
            () = &mut stopping, if !told => {
                told = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    drop(held);
}

/// The router as hyper's service on one connection: each request's body gets its
/// deadline and, on the app routes and the console's sign-in, the client address.
/// (Called directly rather than
/// through `tower::ServiceExt::map_request` and hyper-util's adapter, which cost a few
/// hundred instructions a request more; axum's router is always ready.)
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    /// Set when the peer is a trusted proxy: the client address is then read from each
    /// request.
    proxies: Option<Arc<TrustedProxies>>,
    body_timeout: Duration,
}

impl hyper::service::Service<axum::http::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn call(&self, req: axum::http::Request<Incoming>) -> Self::Future {
        let timeout = self.body_timeout;
        let mut req = req.map(|body| Body::new(DeadlineBody::new(body, timeout)));
        // Only the app routes and the console's sign-in read the address (their
        // per-address limits). Put into every
        // request, it would make axum's extension map grow on the portal's hot path too
        // (about 400 instructions a request, callgrind).
        let path = req.uri().path();
        if path.starts_with(super::APP_ROUTES_PREFIX) || path == crate::console::LOGIN_PATH {
            let client = match &self.proxies {
                Some(proxies) => SocketAddr::new(
                    proxies.client_address(self.peer.ip(), req.headers()),
                    self.peer.port(),
                ),
                None => self.peer,
            };
            req.extensions_mut().insert(ConnectInfo(client));
        }
        self.router.clone().call(req)
    }
}

/// After a failed `accept`: a connection that failed before we took it is skipped;
/// anything else (e.g. out of file descriptors) is logged and waited out for a second,
/// as hyper's own server did, rather than spinning.
async fn accept_error(err: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
