//! The driver: one thread owns the token (a PKCS#11 `Session` is `Send`, not `Sync`) and
//! runs the idle-timeout timer; everyone else talks to it through channels.
//!
//! The timer is the channel's receive deadline — the thread sleeps until the next command
//! or the session deadline, whichever comes first. No polling.

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

/// Handle to a token owned by a worker thread. Cheap to clone; the thread stops when
/// the last handle drops, logging the token out.
#[derive(Clone)]
pub struct TokenWorker {
    commands: Sender<Command>,
    _thread: Arc<ThreadGuard>,
}

/// Joins the thread when the last handle drops. Fields drop in order, so by then the
/// last `commands` sender is gone and the thread's loop has ended.
struct ThreadGuard(Option<JoinHandle<()>>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

impl TokenWorker {
    /// Starts a worker owning `backend`; events go to the returned receiver.
    pub fn spawn(
        backend: Box<dyn TokenBackend>,
        policy: SessionPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Receiver<TokenEvent>)> {
        let token = Token::new(backend, policy)?;
        let (commands, inbox) = unbounded();
        let (events_tx, events) = unbounded();
        let thread = std::thread::Builder::new()
            .name("securesign-token".into())
            .spawn(move || run(token, inbox, events_tx, clock))
            .map_err(|e| Error::Internal(format!("cannot start token worker: {e}")))?;
        let guard = ThreadGuard(Some(thread));
        Ok((
            Self {
                commands,
                _thread: Arc::new(guard),
            },
            events,
        ))
    }

    /// Hands a command to the worker without waiting for an answer.
    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| worker_stopped())
    }

    /// Hands a command to the worker and waits for its answer.
    fn call<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = bounded(1);
        self.send(make(tx))?;
        rx.recv().map_err(|_| worker_stopped())
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
) {
    let emit = |e: TokenEvent| {
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
    }
    // Last handle gone: never leave a token logged in behind us.
    let _ = token.logout();
}

fn worker_stopped() -> Error {
    Error::Internal("token worker stopped".into())
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

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
