//! Limits per client address, for what no API key identifies: the app routes (the
//! `requestId` is the only credential) and connections themselves.
//!
//! * [`ClientRateLimit`]: requests per minute per address on the app routes
//!   (`governor`'s keyed GCRA limiter, burst = the per-minute limit, as for keys); over
//!   it, `429 SS_RATE_LIMITED` with `Retry-After` and the `RateLimit-*` headers, before
//!   the handler runs (so before any body is read).
//! * [`ConnectionsPerAddress`]: open connections per address (see `serve`).
//!
//! An address is the TCP peer's, or behind a trusted reverse proxy (`serve
//! --trusted-proxy`) the client's as the proxy reports it in `X-Forwarded-For`
//! ([`super::client_address`]); connections from a trusted proxy are not capped per
//! address (the proxy must cap its clients' connections). IPv6 addresses are counted by
//! their /64 prefix (one subscriber's usual allocation), and IPv4-mapped IPv6 addresses
//! as the IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;
use securesign_core::ErrorCode;

use super::auth::{add_rate_headers, number_value};
use super::error::ApiError;
use crate::clock::Clock;
use crate::rate_limit::{decide, Decision, LimitHeaders, LimiterClock};

/// Requests per minute per address on the app routes, by default: generous for many
/// signers behind one NAT (each signing is two or three requests), small against a flood.
pub const DEFAULT_APP_RPM_PER_ADDRESS: u32 = 600;

/// The address limits count `ip` under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from_bits(prefix))
            }
        },
    }
}

type AddressLimiter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, LimiterClock, StateInformationMiddleware>;

/// Checks between two sweeps of addresses whose limit is full again (so the map does not
/// keep every address ever seen).
const SWEEP_EVERY: u32 = 1024;

/// Requests per minute per client address.
pub struct ClientRateLimit {
    rpm: NonZeroU32,
    limiter: AddressLimiter,
    clock: LimiterClock,
    headers: LimitHeaders,
    checks: AtomicU32,
}

impl std::fmt::Debug for ClientRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRateLimit")
            .field("rpm", &self.rpm)
            .finish_non_exhaustive()
    }
}

impl ClientRateLimit {
    /// `rpm` requests per minute per address (burst `rpm`), on `clock`; `None` for 0 (no
    /// limit).
    pub fn new(rpm: u32, clock: Arc<dyn Clock>) -> Option<Self> {
        let rpm = NonZeroU32::new(rpm)?;
        let clock = LimiterClock(clock);
        Some(Self {
            rpm,
            limiter: RateLimiter::dashmap_with_clock(Quota::per_minute(rpm), clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            clock,
            headers: LimitHeaders::new(rpm.get()),
            checks: AtomicU32::new(0),
        })
    }

    /// Counts one request from `ip`.
    pub fn check(&self, ip: IpAddr) -> Decision {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        decide(
            self.rpm,
            self.limiter.check_key(&client_key(ip)),
            &self.clock,
        )
    }

    /// Addresses currently tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// Middleware: counts the request against its client address (from the `ConnectInfo`
/// that `serve` puts on every app route request: the peer, or the client a trusted
/// proxy names; a request without one, e.g. in a router test, is not counted).
pub async fn limit_per_address(
    State(limit): State<Arc<ClientRateLimit>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return next.run(req).await;
    };
    match limit.check(peer.ip()) {
        Decision::Limited {
            limit: rpm,
            retry_after_secs,
        } => {
            tracing::info!("app route rate limited for a client address");
            let mut response = ApiError::new(
                ErrorCode::RateLimited,
                format!("more than {rpm} requests per minute from this address"),
            )
            .into_response();
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, number_value(retry_after_secs));
            add_rate_headers(headers, &limit.headers, 0, retry_after_secs);
            response
        }
        Decision::Allowed {
            remaining,
            reset_secs,
            ..
        } => {
            let mut response = next.run(req).await;
            add_rate_headers(
                response.headers_mut(),
                &limit.headers,
                remaining,
                reset_secs,
            );
            response
        }
    }
}

/// Open connections per client address, at most `max` each.
#[derive(Debug)]
pub struct ConnectionsPerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    owner: Arc<ConnectionsPerAddress>,
    key: IpAddr,
}

impl ConnectionsPerAddress {
    /// At most `max` open connections per address (0: no limit).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when the address has `max` open.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let key = client_key(ip);
        let mut open = self.open.lock();
        let count = open.entry(key).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            owner: Arc::clone(self),
            key,
        })
    }

    /// Connections open from `ip` (counted under its [`client_key`]).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.lock().get(&client_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn an_address_over_its_limit_is_refused_others_pass_and_time_refills() {
        let clock = Arc::new(ManualClock::starting_at(0));
        let limit = ClientRateLimit::new(3, clock.clone()).unwrap();
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        for _ in 0..3 {
            assert!(matches!(limit.check(a), Decision::Allowed { .. }));
        }
        let Decision::Limited {
            retry_after_secs, ..
        } = limit.check(a)
        else {
            panic!("the 4th request passed");
        };
        assert_eq!(retry_after_secs, 20);
        assert!(matches!(
            limit.check(b),
            Decision::Allowed { remaining: 2, .. }
        ));
        clock.advance(Duration::from_secs(60));
        assert!(matches!(
            limit.check(a),
            Decision::Allowed { remaining: 2, .. }
        ));
        assert!(ClientRateLimit::new(0, clock).is_none());
    }

    #[test]
    fn addresses_whose_limit_is_full_again_are_swept() {
        let clock = Arc::new(ManualClock::starting_at(0));
        let limit = ClientRateLimit::new(60, clock.clone()).unwrap();
        for i in 0..100u32 {
            limit.check(IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + i)));
        }
        assert_eq!(limit.tracked(), 100);
        clock.advance(Duration::from_secs(120));
        for _ in 0..SWEEP_EVERY {
            limit.check(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        assert!(limit.tracked() <= 1, "{}", limit.tracked());
    }

    #[test]
    fn connections_per_address_are_capped_and_released_on_drop() {
        let limits = ConnectionsPerAddress::new(2);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let first = limits.open(a).unwrap();
        let second = limits.open(a).unwrap();
        assert!(limits.open(a).is_none());
        assert!(limits
            .open(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))
            .is_some());
        drop(first);
        assert_eq!(limits.open_from(a), 1);
        let third = limits.open(a).unwrap();
        drop((second, third));
        assert_eq!(limits.open_from(a), 0);
        assert!(limits.open.lock().is_empty());
    }
}
