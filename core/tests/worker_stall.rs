//! The token worker's stall watchdog against real parts: a frozen virtual PIV card (its
//! process stopped with SIGSTOP, so the APDU in flight waits in pcscd unanswered) and a
//! SoftHSM2 token with a hook before each signature that stops answering or answers slowly.

#![allow(clippy::unwrap_used)]

mod common;
mod piv_support;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::BeforeEachSignature;
use piv_support::{card_tries, piv_key, provisioned_lab};
use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::apdu::{ApduTransport, Command};
use securesign_core::backend::pkcs11::watch::STOP_WAIT;
use securesign_core::backend::pkcs11::{Pkcs11Module, SlotWatcher, TokenSelector};
use securesign_core::backend::TokenBackend;
use securesign_core::batch::CancelFlag;
use securesign_core::clock::SystemClock;
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::worker::{TokenEvent, TokenWorker, WorkerOptions};
use securesign_core::{Error, ErrorCode, FinalTry, KeySelector, Pin, SignerKey};
use securesign_testlab::{LabToken, Module, PivLab, PivSlot, OPENSC_PKCS11, PIV_PIN};

/// Upper bound for a stalled call to come back: the limit plus slack for a loaded box.
const SLACK: Duration = Duration::from_secs(20);

fn digests(n: usize) -> Vec<Sha256Digest> {
    (0..n)
        .map(|i| Sha256Digest::of(format!("doc {i}").as_bytes()))
        .collect()
}

fn worker_with_limit(
    backend: Box<dyn TokenBackend>,
    stall_limit: Duration,
) -> (TokenWorker, crossbeam_channel::Receiver<TokenEvent>) {
    TokenWorker::spawn_with(
        backend,
        SessionPolicy::default(),
        Arc::new(SystemClock),
        WorkerOptions { stall_limit },
    )
    .unwrap()
}

fn assert_stalled(err: &Error) {
    assert_eq!(err.code(), ErrorCode::TokenError, "{err:?}");
    assert!(err.to_string().contains("stopped answering"), "{err}");
}

/// The premise of the PIV test: vpcd/pcscd put no timeout on an APDU to a frozen card, so
/// `SCardTransmit` blocks until the card goes away.
#[test]
fn a_frozen_card_blocks_transmit_until_it_is_pulled() {
    let lab = piv_support::lab();
    let mut transport = PcscTransport::open(lab.reader()).unwrap();
    lab.freeze_card().unwrap();
    let (done_tx, done) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SELECT of the PIV application.
            let select = Command::new(0x00, 0xA4, 0x04, 0x00, vec![0xA0, 0x00, 0x00, 0x03, 0x08]);
            let _ = done_tx.send(transport.exchange(&select).map(|_| ()));
        });
        // Not a timing assertion on our code: the transmit must not come back on its own.
        let waited = Duration::from_secs(5);
        assert!(
            done.recv_timeout(waited).is_err(),
            "a frozen card answered (or failed) within {waited:?}: vpcd has a timeout"
        );
        lab.kill_card().unwrap();
        let pulled = done
            .recv_timeout(SLACK)
            .expect("transmit returns once pulled");
        assert!(pulled.is_err(), "the pulled card cannot have answered");
    });
    lab.restart_card().unwrap();
}

/// Signs `n` digests with `worker`: the call fails with the stalled error once the worker
/// showed no progress for `limit` (and well within the slack).
fn assert_sign_stalls(worker: &TokenWorker, key: SignerKey, n: usize, limit: Duration) {
    let started = Instant::now();
    let err = worker
        .sign_batch(key, digests(n), CancelFlag::new())
        .unwrap_err();
    let stalled_after = started.elapsed();
    eprintln!("the stalled sign returned after {stalled_after:?} (limit {limit:?})");
    assert_stalled(&err);
    assert!(stalled_after >= limit, "{stalled_after:?}");
    assert!(stalled_after < limit + SLACK, "{stalled_after:?}");
}

/// Freezes `lab`'s card, then signs with `worker`: see [`assert_sign_stalls`].
fn sign_on_a_frozen_card(lab: &PivLab, worker: &TokenWorker, key: SignerKey, limit: Duration) {
    lab.freeze_card().unwrap();
    assert_sign_stalls(worker, key, 3, limit);
}

/// The batch progress events received so far.
fn progress_events(events: &crossbeam_channel::Receiver<TokenEvent>) -> usize {
    events
        .try_iter()
        .filter(|e| matches!(e, TokenEvent::Progress(_)))
        .count()
}

#[test]
fn a_sign_on_a_frozen_piv_card_fails_after_the_stall_limit_and_the_worker_is_dropped_at_once() {
    const LIMIT: Duration = Duration::from_secs(2);
    let lab = provisioned_lab();
    let (worker, _events) = worker_with_limit(Box::new(piv_support::backend(&lab)), LIMIT);
    worker
        .verify_pin(Pin::new(PIV_PIN.to_owned()), FinalTry::NotConfirmed)
        .unwrap();
    let key = worker.signer(piv_key(PivSlot::Auth9A)).unwrap();
    let other = worker.clone();

    sign_on_a_frozen_card(&lab, &worker, key, LIMIT);
    assert!(worker.is_stuck() && other.is_stuck());

    // Every later call, on any handle, fails without a new wait.
    let started = Instant::now();
    assert_stalled(&other.status().unwrap_err());
    assert_stalled(&worker.remaining().unwrap_err());
    assert_stalled(&other.token_removed().unwrap_err());
    let again_after = started.elapsed();
    eprintln!("later calls failed after {again_after:?}");
    assert!(again_after < LIMIT, "{again_after:?}");

    // The worker thread is still inside SCardTransmit: the last handle must not join it.
    let started = Instant::now();
    drop(worker);
    drop(other);
    eprintln!("dropping the stuck worker took {:?}", started.elapsed());

    // The lab cleans up: pulling the card ends the stuck transmit; the same card comes back.
    lab.kill_card().unwrap();
    lab.restart_card().unwrap();
    assert_eq!(card_tries(&lab), Some(3));
}

/// The same through OpenSC's PKCS#11 module, whose `C_Sign` keeps the module's global
/// lock while its APDU waits: the slot watcher's `C_GetSlotInfo` then waits too, and
/// dropping the watcher must leave its thread behind instead of joining it.
#[test]
fn a_sign_through_opensc_on_a_frozen_card_stalls_and_neither_worker_nor_slot_watcher_hang() {
    const LIMIT: Duration = Duration::from_secs(2);
    let lab = provisioned_lab();
    let module = Pkcs11Module::load(std::path::Path::new(OPENSC_PKCS11)).unwrap();
    let backend = module.open(&TokenSelector::Only).unwrap();
    let slot = backend.slot_id();
    let (worker, _events) = worker_with_limit(Box::new(backend), LIMIT);
    worker
        .verify_pin(Pin::new(PIV_PIN.to_owned()), FinalTry::NotConfirmed)
        .unwrap();
    let opensc_id = format!("{:02x}", PivSlot::Auth9A.opensc_id());
    let key = worker.signer(KeySelector::IdOrLabel(opensc_id)).unwrap();
    let watcher = SlotWatcher::spawn(&module, slot, Duration::from_millis(100), |_| {}).unwrap();

    sign_on_a_frozen_card(&lab, &worker, key, LIMIT);

    // The premise: the module is locked, so any C_GetSlotInfo (a new watcher's baseline
    // look here, the running watcher's next look) waits for the frozen card.
    let (probe_tx, probe) = mpsc::channel();
    let probe_module = module.clone();
    std::thread::spawn(move || {
        let watcher = SlotWatcher::spawn(&probe_module, slot, Duration::from_secs(60), |_| {});
        let _ = probe_tx.send(watcher.is_ok());
        // The probe's own watcher is dropped here, once the module answers again.
    });
    let waited = Duration::from_secs(3);
    assert!(
        probe.recv_timeout(waited).is_err(),
        "C_GetSlotInfo answered within {waited:?} with a C_Sign stuck in OpenSC"
    );

    let started = Instant::now();
    drop(watcher);
    let watcher_drop = started.elapsed();
    let started = Instant::now();
    drop(worker);
    let worker_drop = started.elapsed();
    eprintln!("dropping the slot watcher took {watcher_drop:?}, the stuck worker {worker_drop:?}");
    assert!(watcher_drop < STOP_WAIT + SLACK, "{watcher_drop:?}");

    // Clean up the lab. On OpenSC 0.23 this pull (an APDU in flight) can deadlock the stuck
    // threads for good (see opensc_piv.rs): they are detached, and die with this process.
    lab.kill_card().unwrap();
    lab.restart_card().unwrap();
}

/// A worker with `limit` over `backend` on the lab token `tok`, the PIN verified, and its
/// signing key.
fn signing_worker(
    tok: &LabToken,
    backend: impl TokenBackend + 'static,
    limit: Duration,
) -> (
    TokenWorker,
    crossbeam_channel::Receiver<TokenEvent>,
    SignerKey,
) {
    let (worker, events) = worker_with_limit(Box::new(backend), limit);
    worker
        .verify_pin(common::pin(tok.user_pin()), FinalTry::NotConfirmed)
        .unwrap();
    let key = worker.signer(KeySelector::IdOrLabel("01".into())).unwrap();
    (worker, events, key)
}

#[test]
fn a_batch_that_keeps_signing_is_not_cut_however_long_it_takes() {
    // 30 signatures, each 100 ms apart: 3 s, twice the limit; progress every 100 ms, so a
    // busy machine has 1.4 s to spare between two of them.
    const LIMIT: Duration = Duration::from_millis(1500);
    let tok = common::lab(Module::SoftHsm2);
    // A slow token: pacing, nothing waits on it.
    let slow = BeforeEachSignature::new(common::backend(&tok), |_| {
        std::thread::sleep(Duration::from_millis(100));
        Ok(())
    });
    let (worker, events, key) = signing_worker(&tok, slow, LIMIT);
    let started = Instant::now();
    let out = worker
        .sign_batch(key, digests(30), CancelFlag::new())
        .unwrap();
    eprintln!(
        "batch of 30 took {:?} with a {LIMIT:?} limit",
        started.elapsed()
    );
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.signed.len(), 30);
    assert!(!worker.is_stuck());
    assert_eq!(progress_events(&events), 30);
    // A healthy worker still joins and logs out on drop.
    assert!(worker.status().is_ok());
    drop(worker);
    assert!(!common::backend(&tok).token_logged_in().unwrap());
}

#[test]
fn a_driver_that_stops_mid_batch_is_cut_and_left_behind() {
    const LIMIT: Duration = Duration::from_secs(1);
    let tok = common::lab(Module::SoftHsm2);
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    // The third signature waits until the test lets it go: a driver that stopped answering.
    let hangs = BeforeEachSignature::new(common::backend(&tok), move |n| {
        if n == 3 {
            let _ = entered_tx.send(());
            let _ = release_rx.recv();
        }
        Ok(())
    });
    let (worker, events, key) = signing_worker(&tok, hangs, LIMIT);
    assert_sign_stalls(&worker, key, 10, LIMIT);
    entered.recv().unwrap();
    // Two signatures were done before the driver hung: progress, then silence.
    assert_eq!(progress_events(&events), 2);
    let started = Instant::now();
    assert_stalled(&worker.status().unwrap_err());
    assert!(started.elapsed() < LIMIT);
    // The last handle goes while the driver still hangs: no join.
    drop(worker);
    // The driver answers at last; the detached thread finishes on its own.
    release.send(()).unwrap();
    for _ in events.iter() {}
}
