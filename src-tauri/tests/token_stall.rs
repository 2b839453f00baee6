//! A token driver that stops answering while the app opens the token: the virtual PIV card
//! behind a real pcscd, frozen (SIGSTOP) before the first token command, so opening its
//! reader waits in pcscd unanswered. The open is bounded by the stall limit, later commands
//! fail at once while it is stuck, and the app opens the token again once it ended. Settings'
//! certificate look (which opens the reader itself) gives up at the same limit.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{code, fresh_piv_card, reader_settings, TestApp};
use securesign_app::state::AppState;
use securesign_core::biometric::{BiometricAuthenticator, NoBiometrics};
use securesign_core::worker::WorkerOptions;
use securesign_testlab::PivLab;
use serde_json::{json, Value};
use tauri::Manager;

/// The stall limit under test (the app's default is 30 s).
const LIMIT: Duration = Duration::from_secs(2);
/// Upper bound for a stalled command to come back: the limit plus slack for a loaded box.
const SLACK: Duration = Duration::from_secs(20);

fn desktop() -> Arc<dyn BiometricAuthenticator> {
    Arc::new(NoBiometrics {
        reason: "desktop".into(),
    })
}

fn assert_stalled(err: &Value) {
    assert_eq!(code(err), "SS_TOKEN_ERROR", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("stopped answering"),
        "{err}"
    );
}

/// A provisioned card, freshly inserted, and the app with its reader as the token source
/// and the stall limit under test.
fn card_and_app() -> (PivLab, TestApp) {
    let lab = fresh_piv_card();
    let app = TestApp::start(&reader_settings(&lab), desktop());
    app.app
        .state::<AppState>()
        .set_worker_options(WorkerOptions { stall_limit: LIMIT });
    (lab, app)
}

#[test]
fn an_open_on_a_frozen_card_stalls_later_commands_fail_at_once_and_the_thawed_card_opens_again() {
    let (lab, app) = card_and_app();
    let state = app.app.state::<AppState>();

    // No token is open yet: the first command opens it, and the card never answers.
    lab.freeze_card().unwrap();
    let started = Instant::now();
    let err = app.invoke("pin_status", json!({})).unwrap_err();
    let first = started.elapsed();
    eprintln!("the open on the frozen card failed after {first:?} (limit {LIMIT:?})");
    assert_stalled(&err);
    assert!(first >= LIMIT, "{first:?}");
    assert!(first < LIMIT + SLACK, "{first:?}");
    assert!(state.opening_stuck());

    // The open is still stuck on its thread: no second open, no second wait.
    let started = Instant::now();
    let err = app.invoke("pin_status", json!({})).unwrap_err();
    let second = started.elapsed();
    eprintln!("the next command failed after {second:?}");
    assert_stalled(&err);
    assert!(second < LIMIT, "{second:?}");
    assert!(state.opening_stuck());

    // Pulling the card ends the transmit the open waits in, and so the stuck open.
    let pulled = Instant::now();
    lab.kill_card().unwrap();
    while state.opening_stuck() {
        assert!(
            pulled.elapsed() < SLACK,
            "the stuck open did not end within {SLACK:?} of the pull"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("the stuck open ended {:?} after the pull", pulled.elapsed());

    // The card is back: the next command opens it normally.
    lab.restart_card().unwrap();
    let started = Instant::now();
    let status = app.invoke("pin_status", json!({})).unwrap();
    eprintln!("the reopened card answered after {:?}", started.elapsed());
    assert_eq!(status["pin"]["status"], "NOT_VERIFIED", "{status}");
    assert_eq!(status["pin"]["retries"]["remaining"], 3, "{status}");
    assert!(!state.opening_stuck());
}

#[test]
fn settings_reading_a_frozen_card_s_certificates_gives_up_at_the_stall_limit() {
    let (lab, app) = card_and_app();
    let certificates = || app.invoke("token_certificates", json!({ "reader": lab.reader() }));

    lab.freeze_card().unwrap();
    let started = Instant::now();
    let err = certificates().unwrap_err();
    let took = started.elapsed();
    eprintln!("reading the frozen card's certificates failed after {took:?} (limit {LIMIT:?})");
    assert_stalled(&err);
    assert!(took >= LIMIT, "{took:?}");
    assert!(took < LIMIT + SLACK, "{took:?}");

    // Pulled and inserted again, the card's two certificates (9A, 9C) are read.
    lab.kill_card().unwrap();
    lab.restart_card().unwrap();
    let certs = certificates().unwrap();
    assert_eq!(certs.as_array().unwrap().len(), 2, "{certs:#}");
}
