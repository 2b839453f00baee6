//! The token worker (the driver thread with the idle timer) against a real SoftHSM2 token.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{backend, lab, pin, BeforeEachSignature};
use securesign_core::batch::{BatchProgress, CancelFlag};
use securesign_core::clock::{ManualClock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::worker::{TokenEvent, TokenWorker};
use securesign_core::{Error, ErrorCode, FinalTry, KeySelector, PinStatus, SessionEndReason};
use securesign_testlab::Module;

const WAIT: Duration = Duration::from_secs(10);

fn digests(n: usize) -> Vec<Sha256Digest> {
    (0..n)
        .map(|i| Sha256Digest::of(format!("doc {i}").as_bytes()))
        .collect()
}

fn next_event(events: &crossbeam_channel::Receiver<TokenEvent>) -> TokenEvent {
    events.recv_timeout(WAIT).expect("an event within 10 s")
}

fn ended(events: &crossbeam_channel::Receiver<TokenEvent>) -> SessionEndReason {
    loop {
        if let TokenEvent::SessionEnded { reason } = next_event(events) {
            return reason;
        }
    }
}

#[test]
fn the_timer_logs_out_after_the_idle_timeout() {
    let tok = lab(Module::SoftHsm2);
    let policy = SessionPolicy::with_idle_timeout(Duration::from_millis(300));
    let (worker, events) =
        TokenWorker::spawn(Box::new(backend(&tok)), policy, Arc::new(SystemClock)).unwrap();
    let state = worker
        .verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    assert_eq!(state.status, PinStatus::SessionActive);
    assert_eq!(
        next_event(&events),
        TokenEvent::SessionStarted {
            idle_timeout_ms: 300
        }
    );
    assert!(worker.remaining().unwrap().is_some());
    // Nobody sends a command: the worker's own deadline fires.
    assert_eq!(ended(&events), SessionEndReason::Idle);
    assert_eq!(worker.remaining().unwrap(), None);
    assert_eq!(worker.status().unwrap().status, PinStatus::NotVerified);
    let key = worker.signer(KeySelector::IdOrLabel("01".into())).unwrap();
    let out = worker
        .sign_batch(key, digests(1), CancelFlag::new())
        .unwrap();
    assert_eq!(out.error.unwrap().code(), ErrorCode::SessionExpired);
}

#[test]
fn a_manual_clock_drives_the_same_logic_without_waiting() {
    let tok = lab(Module::SoftHsm2);
    let clock = ManualClock::new();
    let (worker, events) = TokenWorker::spawn(
        Box::new(backend(&tok)),
        SessionPolicy::default(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    worker
        .verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    assert_eq!(
        worker.remaining().unwrap(),
        Some(SessionPolicy::DEFAULT_IDLE_TIMEOUT)
    );
    let key = worker.signer(KeySelector::IdOrLabel("02".into())).unwrap();

    clock.advance(Duration::from_secs(14 * 60));
    let out = worker
        .sign_batch(key.clone(), digests(3), CancelFlag::new())
        .unwrap();
    assert!(out.is_complete(), "{:?}", out.error);
    let progress: Vec<TokenEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(
        progress,
        vec![
            TokenEvent::SessionStarted {
                idle_timeout_ms: 900_000
            },
            TokenEvent::Progress(BatchProgress { done: 1, total: 3 }),
            TokenEvent::Progress(BatchProgress { done: 2, total: 3 }),
            TokenEvent::Progress(BatchProgress { done: 3, total: 3 }),
        ]
    );
    for s in &out.signed {
        verify_digest_signature(tok.ec_cert_der(), &s.digest.0, &s.signature).unwrap();
    }

    // Activity at minute 14 moved the deadline to minute 29.
    clock.advance(Duration::from_secs(14 * 60));
    worker.tick().unwrap();
    assert_eq!(worker.status().unwrap().status, PinStatus::SessionActive);
    clock.advance(Duration::from_secs(60));
    worker.tick().unwrap();
    assert_eq!(ended(&events), SessionEndReason::Idle);
}

#[test]
fn logout_and_removal_end_the_session_with_their_reason() {
    let tok = lab(Module::SoftHsm2);
    let (worker, events) = TokenWorker::spawn(
        Box::new(backend(&tok)),
        SessionPolicy::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    worker
        .verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    assert!(worker.logout().unwrap());
    assert_eq!(ended(&events), SessionEndReason::Explicit);

    worker
        .verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    worker.token_removed().unwrap();
    assert_eq!(ended(&events), SessionEndReason::Removed);
    let key = worker.signer(KeySelector::IdOrLabel("01".into())).unwrap();
    let out = worker
        .sign_batch(key, digests(1), CancelFlag::new())
        .unwrap();
    assert_eq!(out.error.unwrap().code(), ErrorCode::PinRequired);
}

#[test]
fn a_token_pulled_mid_batch_keeps_completed_signatures() {
    let tok = lab(Module::SoftHsm2);
    // The token goes after four signatures, the way a pulled USB token fails the next C_Sign.
    let pulled = BeforeEachSignature::new(backend(&tok), |n| {
        if n > 4 {
            return Err(Error::TokenNotPresent);
        }
        Ok(())
    });
    let (worker, events) = TokenWorker::spawn(
        Box::new(pulled),
        SessionPolicy::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    worker
        .verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    let key = worker.signer(KeySelector::IdOrLabel("01".into())).unwrap();
    let batch = digests(10);
    let out = worker
        .sign_batch(key, batch.clone(), CancelFlag::new())
        .unwrap();
    assert_eq!(out.total, 10);
    assert_eq!(
        out.signed.len(),
        4,
        "the four completed signatures are kept"
    );
    let err = out.error.expect("the batch stopped");
    assert_eq!(err.code(), ErrorCode::TokenNotPresent, "never a PIN error");
    for (i, s) in out.signed.iter().enumerate() {
        assert_eq!(s.digest, batch[i]);
        verify_digest_signature(tok.rsa_cert_der(), &s.digest.0, &s.signature).unwrap();
    }
    assert_eq!(ended(&events), SessionEndReason::Removed);
}

#[test]
fn the_worker_stops_with_its_last_handle_and_logs_out() {
    let tok = lab(Module::SoftHsm2);
    let (worker, events) = TokenWorker::spawn(
        Box::new(backend(&tok)),
        SessionPolicy::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let clone = worker.clone();
    clone
        .verify_pin(pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    // A second session of this process sees the (per-application) login and keeps the
    // token open after the worker's session closes, so only an explicit C_Logout clears it.
    let mut probe = backend(&tok);
    assert!(probe.token_logged_in().unwrap());
    drop(worker);
    assert!(clone.status().is_ok(), "a clone keeps the worker alive");
    drop(clone);
    // The thread has been joined; its event sender is gone.
    while let Ok(_event) = events.recv_timeout(WAIT) {}
    assert!(events.recv_timeout(Duration::from_millis(10)).is_err());
    assert!(!probe.token_logged_in().unwrap(), "the worker logged out");
}
