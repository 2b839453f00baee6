//! Card removal on the PC/SC path: the reader watcher (SCardGetStatusChange in its own
//! thread) tells the token worker, which ends the PIN session as "removed".

mod piv_support;

use std::sync::mpsc;
use std::time::Duration;

use piv_support::{backend, lab, next_session_end, signed_in_worker};
use securesign_core::apdu::pcsc::{CardEvent, ReaderWatcher};
use securesign_core::{ErrorCode, PinStatus, Retries, SessionEndReason};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn pulling_the_card_ends_the_session_via_the_reader_watcher() {
    let lab = lab();
    let (worker, events) = signed_in_worker(Box::new(backend(&lab)));
    assert_eq!(worker.status().unwrap().status, PinStatus::SessionActive);

    let (seen_tx, seen) = mpsc::channel();
    let notify = worker.clone();
    let watcher = ReaderWatcher::spawn(lab.reader(), move |event| {
        if event == CardEvent::Removed {
            let _ = notify.token_removed();
        }
        let _ = seen_tx.send(event);
    })
    .unwrap();

    lab.kill_card().unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), CardEvent::Removed);
    assert_eq!(next_session_end(&events, WAIT), SessionEndReason::Removed);
    assert_eq!(worker.remaining().unwrap(), None, "no session left");
    let err = worker.status().unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenNotPresent);

    lab.restart_card().unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), CardEvent::Inserted);
    // The same worker talks to the card again; the PIN is no longer verified there.
    let state = worker.status().unwrap();
    assert_eq!(state.status, PinStatus::NotVerified);
    assert_eq!(state.retries, Retries::exact(3));
    drop(watcher);
}

#[test]
fn the_watcher_stops_promptly_when_dropped() {
    let lab = lab();
    let watcher = ReaderWatcher::spawn(lab.reader(), |_| {}).unwrap();
    let started = std::time::Instant::now();
    drop(watcher);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        started.elapsed()
    );
}
