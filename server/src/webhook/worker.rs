//! The background worker that delivers outbox events to portals' callback URLs.
//!
//! It wakes when a handler commits an event (a [`Notify`]), when the next retry falls
//! due, and at least every `poll_interval` (to see events written by other processes and
//! to follow an injected clock). Each attempt: claim, re-check that the callback URL is
//! still on a whitelisted origin of the tenant, check that it leads to a public address
//! ([`super::destination`]), sign with the tenant's webhook secret,
//! POST with short timeouts and no redirects, then settle (2xx: delivered for good;
//! otherwise retry after `base_backoff · 2^(attempt-1)`, up to `max_attempts`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::destination::{check_literal_host, PublicOnlyResolver};
use super::outbox::{self, ClaimedEvent, Settlement};
use crate::api_key::KeyMode;
use crate::clock::Clock;
use crate::origin::{Origin, Whitelist};
use crate::store::{Store, StoreError};

/// `X-SecureSign-Event-Id`.
pub const EVENT_ID_HEADER: &str = "x-securesign-event-id";
/// `X-SecureSign-Timestamp` (Unix seconds at sending).
pub const TIMESTAMP_HEADER: &str = "x-securesign-timestamp";
/// `X-SecureSign-Signature` (`v1=<hex HMAC-SHA256>`).
pub const SIGNATURE_HEADER: &str = "x-securesign-signature";

/// How callbacks are retried and timed out.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Attempts per event before it is `failed` (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub base_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Longest sleep between looks at the outbox.
    pub poll_interval: Duration,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Also send to loopback, private, link-local and other non-global addresses
    /// (local development and tests only; see [`super::destination`]).
    pub allow_private_destinations: bool,
}

impl Default for DeliveryPolicy {
    /// 8 attempts (waits of 1, 2, 4 … 64 s), 3 s to connect, 10 s per request, public
    /// destinations only.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            concurrency: 8,
            allow_private_destinations: false,
        }
    }
}

impl DeliveryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.base_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }

    /// How long a claim holds: longer than any request can take, so a live worker's
    /// attempt is never duplicated by another worker.
    pub fn lease(&self) -> Duration {
        self.connect_timeout + self.request_timeout + Duration::from_secs(30)
    }
}

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the callback HTTP client: {0}")]
pub struct WorkerError(#[from] reqwest::Error);

/// The delivery worker.
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
    client: reqwest::Client,
    wake: Arc<Notify>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Worker {
    /// A worker over `store`, woken by `wake` when an event is committed.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        policy: DeliveryPolicy,
        wake: Arc<Notify>,
    ) -> Result<Self, WorkerError> {
        let mut builder = reqwest::Client::builder();
        if !policy.allow_private_destinations {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        // No redirects: a 3xx is a failed attempt, so a public host cannot bounce the
        // POST to an address the resolver would have refused.
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .no_proxy()
            .user_agent(concat!("SecureSign-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                clock,
                policy,
                client,
                wake,
            }),
        })
    }

    /// Delivers until `shutdown` completes. A round of attempts already started is
    /// finished first (each attempt is bounded by the request timeout); if the process
    /// dies instead, the claims lapse after their lease and the next run retries them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.run_due().await {
                Ok(pause) => pause,
                Err(err) => {
                    tracing::error!(error = %err, "callback outbox unreadable; retrying");
                    self.inner.policy.poll_interval
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("callback worker stopped");
    }

    /// Makes every attempt that is due now (waiting for them), and returns how long to
    /// sleep before the next one falls due (at most `poll_interval`). Reads only (no
    /// write lock) while nothing is due.
    pub async fn run_due(&self) -> Result<Duration, StoreError> {
        let inner = &self.inner;
        let max = i64::from(inner.policy.max_attempts.max(1));
        let now = inner.clock.now_unix_millis();
        match outbox::next_due(&inner.store).await? {
            Some(due) if due <= now => {}
            Some(due) => return Ok(inner.until(due)),
            None => return Ok(inner.policy.poll_interval),
        }
        let given_up = outbox::fail_exhausted(&inner.store, now, max).await?;
        if given_up > 0 {
            tracing::warn!(events = given_up, "callbacks failed: no attempt left");
        }
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.len() >= inner.policy.concurrency.max(1) {
                in_flight.join_next().await;
            }
            let now = inner.clock.now_unix_millis();
            let lease = millis(inner.policy.lease());
            let Some(claimed) = outbox::claim_next(&inner.store, now, lease, max).await? else {
                break;
            };
            let inner = Arc::clone(inner);
            in_flight.spawn(async move { inner.attempt(claimed).await });
        }
        while in_flight.join_next().await.is_some() {}
        Ok(match outbox::next_due(&inner.store).await? {
            Some(due) => inner.until(due),
            None => inner.policy.poll_interval,
        })
    }
}

/// Why an attempt did not deliver (texts carry no URL and no secret).
enum Refusal {
    Answered(u16, String),
    NotSent(String),
}

impl Inner {
    /// The sleep until `due` (Unix ms), at most `poll_interval`.
    fn until(&self, due: i64) -> Duration {
        let wait = due.saturating_sub(self.clock.now_unix_millis());
        Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(self.policy.poll_interval)
    }

    async fn attempt(&self, event: ClaimedEvent) {
        let outcome = self.send(&event).await;
        let attempt = u32::try_from(event.attempts).unwrap_or(u32::MAX);
        let now = self.clock.now_unix_millis();
        let settlement = match outcome {
            Ok(status) => Settlement::Delivered { status },
            Err(refusal) => {
                let (status, error) = match refusal {
                    Refusal::Answered(code, error) => (Some(code), error),
                    Refusal::NotSent(error) => (None, error),
                };
                if attempt >= self.policy.max_attempts {
                    Settlement::Failed { status, error }
                } else {
                    Settlement::Retry {
                        status,
                        error,
                        next_attempt_at_ms: now
                            .saturating_add(millis(self.policy.backoff(attempt))),
                    }
                }
            }
        };
        match outbox::settle(&self.store, &event, &settlement, now).await {
            Ok(true) => tracing::info!(
                event_id = %event.id, session_id = %event.session_id, attempt,
                outcome = settlement_name(&settlement), "callback attempt settled"
            ),
            Ok(false) => tracing::warn!(
                event_id = %event.id, attempt, "callback claim lapsed before the attempt was recorded"
            ),
            Err(err) => {
                tracing::error!(event_id = %event.id, error = %err, "cannot record a callback attempt")
            }
        }
    }

    /// One POST; `Ok(status)` for a 2xx answer.
    async fn send(&self, event: &ClaimedEvent) -> Result<u16, Refusal> {
        self.check_destination(event).await?;
        self.check_address(event)?;
        let timestamp = self.clock.now_unix();
        let secrets = self
            .store
            .webhook_secrets(&event.tenant_id, timestamp)
            .await
            .map_err(|err| {
                tracing::error!(event_id = %event.id, error = %err, "cannot read the webhook secret");
                Refusal::NotSent("the tenant's webhook secret is unreadable".to_owned())
            })?
            .ok_or_else(|| {
                Refusal::NotSent(
                    "the tenant has no webhook secret (run `tenant webhook-secret roll`)".to_owned(),
                )
            })?;
        let signature = secrets.signature_header(timestamp, event.payload.as_bytes());
        let response = self
            .client
            .post(&event.url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(EVENT_ID_HEADER, &event.id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(event.payload.clone())
            .send()
            .await
            .map_err(|err| Refusal::NotSent(describe(&err)))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else if status.is_redirection() {
            Err(Refusal::Answered(
                status.as_u16(),
                format!("HTTP {status}: redirects are not followed"),
            ))
        } else {
            Err(Refusal::Answered(status.as_u16(), format!("HTTP {status}")))
        }
    }

    /// The callback URL must still be on one of the tenant's whitelisted origins, with
    /// the scheme rule of the key that created the session.
    async fn check_destination(&self, event: &ClaimedEvent) -> Result<(), Refusal> {
        let policy = outbox::callback_policy(&self.store, &event.session_id)
            .await
            .map_err(|err| {
                tracing::error!(event_id = %event.id, error = %err, "cannot read the whitelist");
                Refusal::NotSent("the whitelist is unreadable".to_owned())
            })?;
        let not_allowed =
            || Refusal::NotSent("the callback URL's origin is no longer whitelisted".to_owned());
        let (mode, origins) = policy.ok_or_else(not_allowed)?;
        let mode = KeyMode::parse(&mode).ok_or_else(not_allowed)?;
        let origin = Origin::of_callback_url(&event.url).map_err(|_| not_allowed())?;
        if origin.allowed_for(mode) && Whitelist::from_stored(origins).contains(&origin) {
            Ok(())
        } else {
            Err(not_allowed())
        }
    }

    /// An IP-literal callback host must be a global address (unless private
    /// destinations are allowed); host names are checked by the client's resolver.
    fn check_address(&self, event: &ClaimedEvent) -> Result<(), Refusal> {
        if self.policy.allow_private_destinations {
            return Ok(());
        }
        let url = reqwest::Url::parse(&event.url)
            .map_err(|_| Refusal::NotSent("the callback URL is malformed".to_owned()))?;
        check_literal_host(&url).map_err(|err| {
            tracing::warn!(event_id = %event.id, reason = %err, "callback destination refused");
            Refusal::NotSent(err.to_string())
        })
    }
}

fn settlement_name(settlement: &Settlement) -> &'static str {
    match settlement {
        Settlement::Delivered { .. } => "delivered",
        Settlement::Retry { .. } => "retry",
        Settlement::Failed { .. } => "failed",
    }
}

/// A transport error in words, without the URL (it may carry the portal's tokens); also
/// used for revocation fetches (`trust::fetch`).
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // `without_url` needs ownership; the kind and the source chain say enough.
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let policy = DeliveryPolicy {
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..DeliveryPolicy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(10));
        assert!(policy.lease() > policy.connect_timeout + policy.request_timeout);
    }
}
