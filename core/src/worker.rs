//! The driver: one thread owns the token (a PKCS#11 `Session` is `Send`, not `Sync`) and
//! runs the idle-timeout timer; everyone else talks to it through channels.
//!
//! The timer is the channel's receive deadline — the thread sleeps until the next command
//! or the session deadline, whichever comes first. No polling.
//!
//! A stall watchdog guards the callers: a token driver or reader can stop answering for
//! good (OpenSC 0.23's `sc_lock` deadlock when a card is pulled mid-APDU, a hung reader).
//! The thread beats a [`Heartbeat`] whenever it takes a command, reports batch progress
//! or finishes a command; a caller whose answer does not come and who sees no beat for
//! [`WorkerOptions::stall_limit`] gives up with [`stalled`], marks the worker stuck (every
//! later call fails at once) and the last handle then detaches the thread instead of
//! joining it. The decision is the sans-IO [`StallWatch`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use serde::Serialize;

use crate::backend::{TokenBackend, TokenCertificate, TokenInfo};
use crate::batch::{BatchOutcome, BatchProgress, CancelFlag};
use crate::clock::Clock;
use crate::digest::Sha256Digest;
use crate::error::{Error, Result, SessionEndReason};
use crate::pin::Pin;
use crate::session::SessionPolicy;
use crate::status::PinState;
use crate::token::{FinalTry, KeySelector, SignerKey, Token};

/// What the worker tells the UI without being asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TokenEvent {
    /// The PIN was verified; the session is cached.
    SessionStarted {
        /// Milliseconds until auto logout without activity.
        idle_timeout_ms: u64,
    },
    /// The cached session ended.
    SessionEnded {
        /// Why.
        reason: SessionEndReason,
    },
    /// A batch advanced.
    Progress(BatchProgress),
}

type Reply<T> = Sender<Result<T>>;

enum Command {
    Info(Sender<TokenInfo>),
    Status(Reply<PinState>),
    Verify(Pin, FinalTry, Reply<PinState>),
    Change(Pin, Pin, FinalTry, Reply<()>),
    Unblock(Pin, Pin, Reply<()>),
    Logout(Reply<bool>),
    Removed,
    Certificates(Reply<Vec<TokenCertificate>>),
    Signer(KeySelector, Reply<SignerKey>),
    Sign(
        Box<SignerKey>,
        Vec<Sha256Digest>,
        CancelFlag,
        Sender<BatchOutcome>,
    ),
    Remaining(Sender<Option<Duration>>),
    SetPolicy(SessionPolicy),
    Tick,
}

/// How a worker guards its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerOptions {
    /// A call fails with [`stalled`] (`SS_TOKEN_ERROR`) when its answer has not come and
    /// the worker thread showed no progress (a command taken or finished, a batch
    /// signature done) for this long. A long batch that keeps signing is never cut.
    pub stall_limit: Duration,
}

impl WorkerOptions {
    /// Default [`WorkerOptions::stall_limit`]: far above one signature on the slowest
    /// token, short enough that a frozen driver does not look like a frozen app.
    pub const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(30);
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            stall_limit: Self::DEFAULT_STALL_LIMIT,
        }
    }
}

/// What a waiting caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallVerdict {
    /// Keep waiting for the answer, at most until this instant, then look again.
    WaitUntil(Instant),
    /// No progress for the stall limit: give up.
    Stalled,
}

/// The stall decision for one call (sans-IO): every look passes the worker's last beat
/// and the current instant, and gets whether to wait on (and until when) or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallWatch {
    limit: Duration,
    started: Instant,
}

impl StallWatch {
    /// A watch for a call made at `started`.
    pub fn new(limit: Duration, started: Instant) -> Self {
        Self { limit, started }
    }

    /// Judges the call at `now`, the worker having last shown progress at `last_beat`
    /// (a beat from before the call counts from the call's start).
    pub fn look(&self, last_beat: Instant, now: Instant) -> StallVerdict {
        let deadline = self.started.max(last_beat) + self.limit;
        if now >= deadline {
            StallVerdict::Stalled
        } else {
            StallVerdict::WaitUntil(deadline)
        }
    }
}

/// When the worker thread last showed progress, readable from any thread without a lock:
/// nanoseconds since `base`, only ever moving forward.
#[derive(Debug)]
struct Heartbeat {
    base: Instant,
    nanos: AtomicU64,
}

impl Heartbeat {
    fn new(base: Instant) -> Self {
        Self {
            base,
            nanos: AtomicU64::new(0),
        }
    }

    fn beat(&self, now: Instant) {
        let since = now.saturating_duration_since(self.base).as_nanos();
        self.nanos
            .fetch_max(u64::try_from(since).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Handle to a token owned by a worker thread. Cheap to clone; the thread stops when
/// the last handle drops, logging the token out.
#[derive(Clone)]
pub struct TokenWorker {
    commands: Sender<Command>,
    shared: Arc<Shared>,
}

/// What the handles share. Dropped with the last handle: fields of [`TokenWorker`] drop
/// in order, so by then the last `commands` sender is gone and a healthy thread's loop
/// has ended; it is joined. A stuck thread (see [`StallWatch`]) is detached instead: it
/// ends on its own if its driver ever answers.
struct Shared {
    thread: Option<JoinHandle<()>>,
    heartbeat: Arc<Heartbeat>,
    stuck: AtomicBool,
    stall_limit: Duration,
    clock: Arc<dyn Clock>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(handle) = self.thread.take() {
            if !self.stuck.load(Ordering::SeqCst) {
                let _ = handle.join();
            }
        }
    }
}

impl TokenWorker {
    /// Starts a worker owning `backend` with the default [`WorkerOptions`]; events go to
    /// the returned receiver.
    pub fn spawn(
        backend: Box<dyn TokenBackend>,
        policy: SessionPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Receiver<TokenEvent>)> {
        Self::spawn_with(backend, policy, clock, WorkerOptions::default())
    }

    /// Starts a worker owning `backend`; events go to the returned receiver.
    pub fn spawn_with(
        backend: Box<dyn TokenBackend>,
        policy: SessionPolicy,
        clock: Arc<dyn Clock>,
        options: WorkerOptions,
    ) -> Result<(Self, Receiver<TokenEvent>)> {
        let token = Token::new(backend, policy)?;
        let (commands, inbox) = unbounded();
        let (events_tx, events) = unbounded();
        let heartbeat = Arc::new(Heartbeat::new(clock.now()));
        let thread = {
            let (clock, heartbeat) = (clock.clone(), heartbeat.clone());
            std::thread::Builder::new()
                .name("securesign-token".into())
                .spawn(move || run(token, inbox, events_tx, clock, &heartbeat))
                .map_err(|e| Error::Internal(format!("cannot start token worker: {e}")))?
        };
        let shared = Shared {
            thread: Some(thread),
            heartbeat,
            stuck: AtomicBool::new(false),
            stall_limit: options.stall_limit,
            clock,
        };
        Ok((
            Self {
                commands,
                shared: Arc::new(shared),
            },
            events,
        ))
    }

    /// True once a call gave up on this worker (see [`StallWatch`]): every call fails at
    /// once with [`stalled`]; open the token afresh (after a restart, for some drivers).
    pub fn is_stuck(&self) -> bool {
        self.shared.stuck.load(Ordering::SeqCst)
    }

    /// Hands a command to the worker without waiting for an answer.
    fn send(&self, command: Command) -> Result<()> {
        if self.is_stuck() {
            return Err(stalled());
        }
        self.commands.send(command).map_err(|_| worker_stopped())
    }

    /// Hands a command to the worker and waits for its answer while the worker shows
    /// progress (see [`StallWatch`]).
    fn call<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = bounded(1);
        self.send(make(tx))?;
        let clock = &self.shared.clock;
        let watch = StallWatch::new(self.shared.stall_limit, clock.now());
        loop {
            let now = clock.now();
            let verdict = if self.is_stuck() {
                // Another call gave up meanwhile: so do we.
                StallVerdict::Stalled
            } else {
                watch.look(self.shared.heartbeat.last(), now)
            };
            let wait = match verdict {
                StallVerdict::WaitUntil(deadline) => deadline.saturating_duration_since(now),
                StallVerdict::Stalled => {
                    // The answer may have landed just now.
                    if let Ok(answer) = rx.try_recv() {
                        return Ok(answer);
                    }
                    self.shared.stuck.store(true, Ordering::SeqCst);
                    return Err(stalled());
                }
            };
            match rx.recv_timeout(wait) {
                Ok(answer) => return Ok(answer),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(worker_stopped()),
            }
        }
    }

    /// Token description.
    pub fn info(&self) -> Result<TokenInfo> {
        self.call(Command::Info)
    }
    /// PIN status (never logs in).
    pub fn status(&self) -> Result<PinState> {
        self.call(Command::Status)?
    }
    /// Verifies the PIN once and caches the session.
    pub fn verify_pin(&self, pin: Pin, confirm: FinalTry) -> Result<PinState> {
        self.call(|tx| Command::Verify(pin, confirm, tx))?
    }
    /// Changes the PIN.
    pub fn change_pin(&self, old: Pin, new: Pin, confirm: FinalTry) -> Result<()> {
        self.call(|tx| Command::Change(old, new, confirm, tx))?
    }
    /// Unblocks the PIN with the PUK.
    pub fn unblock_pin(&self, puk: Pin, new: Pin) -> Result<()> {
        self.call(|tx| Command::Unblock(puk, new, tx))?
    }
    /// Logs out now; `true` when a session was active.
    pub fn logout(&self) -> Result<bool> {
        self.call(Command::Logout)?
    }
    /// Reports that the token was removed (from a reader/USB event).
    pub fn token_removed(&self) -> Result<()> {
        self.send(Command::Removed)
    }
    /// Certificates on the token.
    pub fn certificates(&self) -> Result<Vec<TokenCertificate>> {
        self.call(Command::Certificates)?
    }
    /// Picks and checks the signing key.
    pub fn signer(&self, selector: KeySelector) -> Result<SignerKey> {
        self.call(|tx| Command::Signer(selector, tx))?
    }
    /// Signs a batch; progress arrives as [`TokenEvent::Progress`].
    pub fn sign_batch(
        &self,
        key: SignerKey,
        digests: Vec<Sha256Digest>,
        cancel: CancelFlag,
    ) -> Result<BatchOutcome> {
        self.call(|tx| Command::Sign(Box::new(key), digests, cancel, tx))
    }
    /// Time left before auto logout.
    pub fn remaining(&self) -> Result<Option<Duration>> {
        self.call(Command::Remaining)
    }
    /// Changes the idle timeout (settings).
    pub fn set_policy(&self, policy: SessionPolicy) -> Result<()> {
        self.send(Command::SetPolicy(policy))
    }
    /// Makes the worker re-check its deadline now (tests with a manual clock).
    pub fn tick(&self) -> Result<()> {
        self.send(Command::Tick)
    }
}

fn run(
    mut token: Token<Box<dyn TokenBackend>>,
    inbox: Receiver<Command>,
    events: Sender<TokenEvent>,
    clock: Arc<dyn Clock>,
    heartbeat: &Heartbeat,
) {
    // Every event is progress (a batch's signatures above all).
    let emit = |e: TokenEvent| {
        heartbeat.beat(clock.now());
        let _ = events.send(e);
    };
    loop {
        let next = match token.deadline() {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(clock.now());
                inbox.recv_deadline(Instant::now() + wait)
            }
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let command = match next {
            Ok(command) => command,
            Err(RecvTimeoutError::Timeout) => Command::Tick,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        heartbeat.beat(clock.now());
        let ended_before = token.poll(clock.now());
        if let Some(reason) = ended_before {
            emit(TokenEvent::SessionEnded { reason });
        }
        match command {
            Command::Tick => {}
            Command::Info(tx) => {
                let _ = tx.send(token.info().clone());
            }
            Command::Status(tx) => {
                let _ = tx.send(token.status(clock.now()));
            }
            Command::Verify(pin, confirm, tx) => {
                let result = token.verify_pin(pin, confirm, clock.now());
                if result.is_ok() {
                    emit(TokenEvent::SessionStarted {
                        idle_timeout_ms: duration_ms(token.session_policy().idle_timeout),
                    });
                }
                let _ = tx.send(result);
            }
            Command::Change(old, new, confirm, tx) => {
                let _ = tx.send(token.change_pin(old, new, confirm));
            }
            Command::Unblock(puk, new, tx) => {
                let _ = tx.send(token.unblock_pin(puk, new));
            }
            Command::Logout(tx) => {
                let result = token.logout();
                if matches!(result, Ok(true)) {
                    emit(TokenEvent::SessionEnded {
                        reason: SessionEndReason::Explicit,
                    });
                }
                let _ = tx.send(result);
            }
            Command::Removed => {
                if token.removed() {
                    emit(TokenEvent::SessionEnded {
                        reason: SessionEndReason::Removed,
                    });
                }
            }
            Command::Certificates(tx) => {
                let _ = tx.send(token.certificates());
            }
            Command::Signer(selector, tx) => {
                let _ = tx.send(token.signer(&selector, clock.wall()));
            }
            Command::Sign(key, digests, cancel, tx) => {
                let was_active = token.deadline().is_some();
                let outcome = token.sign_batch(&key, &digests, clock.as_ref(), &cancel, &mut |p| {
                    emit(TokenEvent::Progress(p))
                });
                if was_active && token.deadline().is_none() {
                    // The batch ended the session: always say so, with the reason.
                    let reason = match &outcome.error {
                        Some(Error::SessionEnded(reason)) => *reason,
                        Some(Error::TokenNotPresent) => SessionEndReason::Removed,
                        // The PIN is needed again (final try left, PIN changed or the
                        // card reset elsewhere): the session was ended, not timed out.
                        _ => SessionEndReason::Explicit,
                    };
                    emit(TokenEvent::SessionEnded { reason });
                }
                let _ = tx.send(outcome);
            }
            Command::Remaining(tx) => {
                let _ = tx.send(
                    token
                        .deadline()
                        .map(|d| d.saturating_duration_since(clock.now())),
                );
            }
            Command::SetPolicy(policy) => token.set_session_policy(policy),
        }
        heartbeat.beat(clock.now());
    }
    // Last handle gone: never leave a token logged in behind us.
    let _ = token.logout();
}

fn worker_stopped() -> Error {
    Error::Internal("token worker stopped".into())
}

/// The error of a call on a stalled (stuck) worker: `SS_TOKEN_ERROR`.
pub fn stalled() -> Error {
    Error::Token(
        "the token's driver stopped answering: unplug the token and restart SecureSign".into(),
    )
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn a_call_with_no_progress_stalls_at_the_limit_from_its_start() {
        let t0 = Instant::now();
        let watch = StallWatch::new(LIMIT, t0);
        // The worker's last beat long before the call: the call's start counts.
        let old = t0.checked_sub(Duration::from_secs(600)).unwrap_or(t0);
        assert_eq!(watch.look(old, t0), StallVerdict::WaitUntil(t0 + LIMIT));
        let almost = t0 + LIMIT - Duration::from_millis(1);
        assert_eq!(watch.look(old, almost), StallVerdict::WaitUntil(t0 + LIMIT));
        assert_eq!(watch.look(old, t0 + LIMIT), StallVerdict::Stalled);
    }

    #[test]
    fn steady_progress_keeps_a_call_alive_far_past_the_limit() {
        let t0 = Instant::now();
        let watch = StallWatch::new(LIMIT, t0);
        // A 500-document batch, one signature every 20 s: 10 000 s, never cut.
        for n in 1..=500u64 {
            let beat = t0 + Duration::from_secs(20 * n);
            let now = beat + Duration::from_secs(19);
            assert_eq!(watch.look(beat, now), StallVerdict::WaitUntil(beat + LIMIT));
        }
        // Then the driver stops answering.
        let last = t0 + Duration::from_secs(20 * 500);
        assert_eq!(watch.look(last, last + LIMIT), StallVerdict::Stalled);
    }

    #[test]
    fn the_heartbeat_only_moves_forward() {
        let t0 = Instant::now();
        let heart = Heartbeat::new(t0);
        assert_eq!(heart.last(), t0);
        heart.beat(t0 + Duration::from_secs(5));
        assert_eq!(heart.last(), t0 + Duration::from_secs(5));
        heart.beat(t0 + Duration::from_secs(2));
        assert_eq!(heart.last(), t0 + Duration::from_secs(5));
    }

    #[test]
    fn a_stall_is_a_token_error() {
        let err = stalled();
        assert_eq!(err.code(), crate::error::ErrorCode::TokenError);
        assert!(err.to_string().contains("stopped answering"), "{err}");
    }

    #[test]
    fn events_serialize_with_camel_case_fields() {
        let started = serde_json::to_value(TokenEvent::SessionStarted {
            idle_timeout_ms: 900_000,
        })
        .unwrap();
        assert_eq!(
            started,
            serde_json::json!({"event": "sessionStarted", "idleTimeoutMs": 900_000})
        );
        let ended = serde_json::to_value(TokenEvent::SessionEnded {
            reason: SessionEndReason::Idle,
        })
        .unwrap();
        assert_eq!(
            ended,
            serde_json::json!({"event": "sessionEnded", "reason": "idle"})
        );
    }
}
